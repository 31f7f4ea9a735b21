// Every op in ops.def must have at least one case in the case tables, and every case must
// pass the float64 gradient check and the float32 agreement check. An op added without a
// case fails this test: coverage is enforced, not hoped for.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "support/opcheck.h"

static const oc_case *const tables[] = {
    oc_cases_linalg,       oc_cases_pointwise,    oc_cases_binary,
    oc_cases_reduce_shape, oc_cases_softmax_loss,
};
#define N_TABLES (sizeof tables / sizeof tables[0])

static void every_op_has_a_case(void **state) {
    (void)state;
    int missing = 0;
    for (int i = 0; i < nb_op_count(); i++) {
        int n = 0;
        for (size_t t = 0; t < N_TABLES; t++)
            for (const oc_case *c = tables[t]; c->op; c++)
                n += strcmp(c->op, nb_op_name(i)) == 0;
        if (n == 0) {
            fprintf(stderr, "  op '%s' has no gradient-check case\n", nb_op_name(i));
            missing++;
        }
    }
    assert_int_equal(missing, 0);
}

static void every_case_names_a_real_op(void **state) {
    (void)state;
    for (size_t t = 0; t < N_TABLES; t++)
        for (const oc_case *c = tables[t]; c->op; c++) {
            bool found = false;
            for (int i = 0; i < nb_op_count(); i++)
                found = found || strcmp(c->op, nb_op_name(i)) == 0;
            if (!found)
                fprintf(stderr, "  case names unknown op '%s'\n", c->op);
            assert_true(found);
        }
}

// Seed each case from its own name, so adding a case elsewhere never changes its inputs.
static uint64_t case_seed(const oc_case *c) {
    uint64_t h = 1469598103934665603ull; // FNV-1a
    for (const char *s = c->op; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    for (const char *s = c->label ? c->label : ""; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static void every_case_passes(void **state) {
    (void)state;
    int failed = 0, run = 0;
    for (size_t t = 0; t < N_TABLES; t++)
        for (const oc_case *c = tables[t]; c->op; c++) {
            run++;
            if (!oc_run_case(c, case_seed(c)))
                failed++;
        }
    fprintf(stderr, "  %d cases, %d failed\n", run, failed);
    assert_int_equal(failed, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_op_has_a_case),
        cmocka_unit_test(every_case_names_a_real_op),
        cmocka_unit_test(every_case_passes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
