// Every public op function (src/ops/ops.def: the ops and their composites, as registry.c
// enumerates them) has at least one gradient-check case and at least one bad-input case in the
// family tables (tests/cases.def), every case names a real op, every gradient-check case passes
// the float64 gradient check and the float32 agreement check, and every bad-input case is
// refused with the expected status and a message naming the op. An op added without its cases
// fails here, naming the op and the missing step (docs/adding-an-op.md).
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "support/opcheck.h"

static const oc_case *const tables[] = {
#define FAMILY(f) oc_cases_##f,
#include "cases.def"
#undef FAMILY
};
static const oc_bad_case *const bad_tables[] = {
#define FAMILY(f) oc_bad_##f,
#include "cases.def"
#undef FAMILY
};
static const char *const family_names[] = {
#define FAMILY(f) #f,
#include "cases.def"
#undef FAMILY
};
#define N_TABLES (sizeof tables / sizeof tables[0])

// `--family <name>` runs only that family's cases (ctest registers one test per family, so the
// families run in parallel and each stays far below the timeout); NULL runs them all.
static const char *only_family;
static bool family_selected(size_t t) {
    return !only_family || strcmp(only_family, family_names[t]) == 0;
}

static int n_cases(const char *op) {
    int n = 0;
    for (size_t t = 0; t < N_TABLES; t++)
        for (const oc_case *c = tables[t]; c->op; c++)
            n += strcmp(c->op, op) == 0;
    return n;
}
static int n_bad_cases(const char *op) {
    int n = 0;
    for (size_t t = 0; t < N_TABLES; t++)
        for (const oc_bad_case *c = bad_tables[t]; c->op; c++)
            n += strcmp(c->op, op) == 0;
    return n;
}
static bool is_op(const char *name) {
    for (const char *const *p = oc_op_names; *p; p++)
        if (strcmp(*p, name) == 0)
            return true;
    return false;
}

// The list the tests iterate is the library's: every registered op is in it.
static void op_list_matches_registry(void **state) {
    (void)state;
    for (int i = 0; i < nb_op_count(); i++)
        assert_true(is_op(nb_op_name(i)));
}

static void every_op_has_a_gradcheck_case(void **state) {
    (void)state;
    int missing = 0;
    for (const char *const *op = oc_op_names; *op; op++)
        if (n_cases(*op) == 0) {
            fprintf(stderr,
                    "  op '%s' has no gradient-check case (step 4 of docs/adding-an-op.md: add one "
                    "to oc_cases_<family>[] in tests/cases_<family>.c)\n",
                    *op);
            missing++;
        }
    assert_int_equal(missing, 0);
}

static void every_op_has_a_bad_input_case(void **state) {
    (void)state;
    int missing = 0;
    for (const char *const *op = oc_op_names; *op; op++)
        if (n_bad_cases(*op) == 0) {
            fprintf(stderr,
                    "  op '%s' has no bad-input case (step 5 of docs/adding-an-op.md: add one to "
                    "oc_bad_<family>[] in tests/cases_<family>.c)\n",
                    *op);
            missing++;
        }
    assert_int_equal(missing, 0);
}

static void every_case_names_a_real_op(void **state) {
    (void)state;
    int unknown = 0;
    for (size_t t = 0; t < N_TABLES; t++) {
        for (const oc_case *c = tables[t]; c->op; c++)
            if (!is_op(c->op)) {
                fprintf(stderr,
                        "  gradient-check case [%s] names op '%s', which is not in "
                        "src/ops/ops.def (step 1 of docs/adding-an-op.md)\n",
                        c->label, c->op);
                unknown++;
            }
        for (const oc_bad_case *c = bad_tables[t]; c->op; c++)
            if (!is_op(c->op)) {
                fprintf(stderr,
                        "  bad-input case [%s] names op '%s', which is not in src/ops/ops.def "
                        "(step 1 of docs/adding-an-op.md)\n",
                        c->label, c->op);
                unknown++;
            }
    }
    assert_int_equal(unknown, 0);
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

static void every_gradcheck_case_passes(void **state) {
    (void)state;
    int failed = 0, run = 0;
    for (size_t t = 0; t < N_TABLES; t++)
        for (const oc_case *c = tables[t]; c->op && family_selected(t); c++) {
            run++;
            if (!oc_run_case(c, case_seed(c)))
                failed++;
        }
    fprintf(stderr, "  %d gradient-check cases, %d failed\n", run, failed);
    assert_int_equal(failed, 0);
}

static void every_bad_input_case_is_refused(void **state) {
    (void)state;
    int failed = 0, run = 0;
    for (size_t t = 0; t < N_TABLES; t++)
        for (const oc_bad_case *c = bad_tables[t]; c->op && family_selected(t); c++) {
            run++;
            if (!oc_run_bad_case(c))
                failed++;
        }
    fprintf(stderr, "  %d bad-input cases, %d failed\n", run, failed);
    assert_int_equal(failed, 0);
}

// No arguments: every check and every case. `--coverage`: the coverage checks only.
// `--family <name>`: that family's gradient-check and bad-input cases only.
// `--list-ops`: one line per registered op, "<name> 2nd" or "<name> 1st" (first-order only),
// read by tests/check_op_table.sh to check README's op table. `--list-cases`: one line per
// case, "<family> <op>", however the table builds it (literal or macro), read by
// tests/check_case_files.sh.
int main(int argc, char **argv) {
    const struct CMUnitTest coverage[] = {
        cmocka_unit_test(op_list_matches_registry),
        cmocka_unit_test(every_op_has_a_gradcheck_case),
        cmocka_unit_test(every_op_has_a_bad_input_case),
        cmocka_unit_test(every_case_names_a_real_op),
    };
    const struct CMUnitTest cases[] = {
        cmocka_unit_test(every_gradcheck_case_passes),
        cmocka_unit_test(every_bad_input_case_is_refused),
    };
    if (argc == 2 && strcmp(argv[1], "--coverage") == 0)
        return cmocka_run_group_tests(coverage, NULL, NULL);
    if (argc == 2 && strcmp(argv[1], "--list-ops") == 0) {
        for (int i = 0; i < nb_op_count(); i++)
            printf("%s %s\n", nb_op_name(i), nb_op_first_order_reason(i) ? "1st" : "2nd");
        return 0;
    }
    if (argc == 2 && strcmp(argv[1], "--list-cases") == 0) {
        for (size_t t = 0; t < N_TABLES; t++) {
            for (const oc_case *c = tables[t]; c->op; c++)
                printf("%s %s\n", family_names[t], c->op);
            for (const oc_bad_case *c = bad_tables[t]; c->op; c++)
                printf("%s %s\n", family_names[t], c->op);
        }
        return 0;
    }
    if (argc == 3 && strcmp(argv[1], "--family") == 0) {
        only_family = argv[2];
        bool known = false;
        for (size_t t = 0; t < N_TABLES; t++)
            known = known || strcmp(family_names[t], only_family) == 0;
        if (!known) {
            fprintf(stderr, "test_ops_registry: no family '%s' in tests/cases.def\n", only_family);
            return 2;
        }
        return cmocka_run_group_tests(cases, NULL, NULL);
    }
    if (argc != 1) {
        fprintf(stderr, "usage: test_ops_registry [--coverage | --family <name> | --list-ops | "
                        "--list-cases]\n");
        return 2;
    }
    return cmocka_run_group_tests(coverage, NULL, NULL) | cmocka_run_group_tests(cases, NULL, NULL);
}
