// Higher-order gradients. For every gradient-check case of every op (the tables of
// test_ops_registry): the vjp path (nb_grad with create_graph) must agree with the kernel
// backward (nb_backward_with) to 1e-12 relative in float64, and gradgradcheck must pass.
// Every op must have a vjp or be listed as first-order only with a reason, and create_graph
// through a listed op must be an error naming it. Then nb_grad / nb_hvp / nb_jvp against
// closed forms and finite differences, and their bad input.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "graph/graph_impl.h"
#include "support/opcheck.h"

// Every family of tests/cases.def: the same tables test_ops_registry runs.
static const oc_case *const tables[] = {
#define FAMILY(f) oc_cases_##f,
#include "cases.def"
#undef FAMILY
};
#define N_TABLES (sizeof tables / sizeof tables[0])

static int op_index(const char *name) {
    for (int i = 0; i < nb_op_count(); i++)
        if (strcmp(nb_op_name(i), name) == 0)
            return i;
    return -1;
}

static uint64_t case_seed(const oc_case *c) {
    uint64_t h = 1469598103934665603ull; // FNV-1a of op and label, as test_ops_registry
    for (const char *s = c->op; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    for (const char *s = c->label ? c->label : ""; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static nb_tensor *gc_build(nb_graph *g, nb_tensor *const *in, int n, void *ctx) {
    const oc_case *c = ctx;
    return c->build(g, in, n);
}

// The case's float64 inputs (caller destroys them).
static int make_inputs(const oc_case *c, nb_tensor **in) {
    nb_rng rng;
    nb_rng_seed(&rng, case_seed(c));
    for (int i = 0; i < c->n_in; i++) {
        in[i] = oc_make_input(&c->in[i], NB_F64, &rng);
        assert_non_null(in[i]);
    }
    return c->n_in;
}

// Kernel backward and vjp agree: |k - v| <= 1e-12 max(|k|_inf, 1e-300) elementwise per input.
// *composed is set when the case's expression also uses a first-order-only op (argmax cases
// read their indices through gather): then nothing is checked.
static bool vjp_matches_kernel(const oc_case *c, nb_tensor **in, bool *composed) {
    nb_graph *g = nb_graph_create();
    nb_tensor *y = c->build(g, in, c->n_in);
    assert_non_null(y);
    nb_tensor *w = nb_tensor_create(NB_F64, nb_tensor_ndim(y), nb_tensor_shape(y));
    nb_rng rng;
    nb_rng_seed(&rng, 7);
    nb_init_uniform(w, &rng, -1, 1);
    nb_tensor *req[4];
    int k = 0;
    for (int i = 0; i < c->n_in; i++)
        if (nb_tensor_requires_grad(in[i])) {
            nb_tensor_zero_grad(in[i]);
            req[k++] = in[i];
        }
    assert_int_equal(nb_backward_with(g, y, w), NB_OK);
    nb_tensor *grads[4] = {0};
    bool ok = nb_grad(g, &y, &w, 1, req, k, true, grads) == NB_OK;
    *composed =
        !ok && strstr(nb_graph_error(g), "first-order only") && !strstr(nb_graph_error(g), c->op);
    if (*composed) {
        nb_tensor_destroy(w);
        nb_graph_destroy(g);
        return true;
    }
    if (!ok)
        fprintf(stderr, "  %s [%s]: nb_grad failed: %s\n", c->op, c->label, nb_graph_error(g));
    for (int j = 0; ok && j < k; j++) {
        int64_t n = nb_tensor_numel(req[j]);
        double scale = 0, worst = 0;
        for (int64_t e = 0; e < n; e++)
            scale = fmax(scale, fabs(nb_tensor_grad_get(req[j], e)));
        for (int64_t e = 0; e < n; e++)
            worst = fmax(worst, fabs(nb_tensor_grad_get(req[j], e) - nb_tensor_get(grads[j], e)));
        if (!(worst <= 1e-12 * fmax(scale, 1e-300))) {
            fprintf(stderr,
                    "  %s [%s]: vjp and kernel differ for input %d: max diff %.3g, scale %.3g\n",
                    c->op, c->label, j, worst, scale);
            ok = false;
        }
    }
    nb_tensor_destroy(w);
    nb_graph_destroy(g);
    return ok;
}

static void every_op_has_vjp_or_reason(void **state) {
    (void)state;
    int listed = 0;
    for (int i = 0; i < nb_op_count(); i++) {
        const char *why = nb_op_first_order_reason(i);
        if (why) {
            if (strlen(why) <= 10) // a reason, not a placeholder
                fprintf(stderr,
                        "  op '%s' has no vjp and no reason (\"%s\"): write its vjp, or set "
                        "first_order_only to why it has none (docs/adding-an-op.md)\n",
                        nb_op_name(i), why);
            assert_true(strlen(why) > 10);
            fprintf(stderr, "  first-order only: %s (%s)\n", nb_op_name(i), why);
            listed++;
        }
    }
    fprintf(stderr, "  %d of %d ops support higher-order gradients\n", nb_op_count() - listed,
            nb_op_count());
}

// create_graph through a first-order-only op: an error naming the op, never a value.
static void first_order_ops_refuse_create_graph(void **state) {
    (void)state;
    for (size_t t = 0; t < N_TABLES; t++)
        for (const oc_case *c = tables[t]; c->op; c++) {
            if (!nb_op_first_order_reason(op_index(c->op)))
                continue;
            nb_tensor *in[4];
            make_inputs(c, in);
            nb_graph *g = nb_graph_create();
            nb_tensor *y = nb_sum(g, c->build(g, in, c->n_in));
            nb_tensor *gr[4], *req[4];
            int k = 0;
            for (int i = 0; i < c->n_in; i++)
                if (nb_tensor_requires_grad(in[i]))
                    req[k++] = in[i];
            assert_int_equal(nb_grad(g, &y, NULL, 1, req, k, true, gr), NB_ERR_STATE);
            if (!strstr(nb_graph_error(g), c->op))
                fprintf(stderr, "  %s [%s]: %s\n", c->op, c->label, nb_graph_error(g));
            assert_non_null(strstr(nb_graph_error(g), c->op));
            assert_non_null(strstr(nb_graph_error(g), "first-order only"));
            nb_graph_clear_error(g); // the kernel path still works through it
            assert_int_equal(nb_grad(g, &y, NULL, 1, req, k, false, gr), NB_OK);
            nb_graph_destroy(g);
            for (int i = 0; i < c->n_in; i++)
                nb_tensor_destroy(in[i]);
        }
}

// Ops whose every case composes them with a first-order-only op, and why that is acceptable.
static const char *const composed_only[] = {
    "argmax", // int32 output, no gradient: its cases differentiate through gather
    "argmin",
};

static void every_case_vjp_and_gradgradcheck(void **state) {
    (void)state;
    int run = 0, failed = 0, skipped = 0, composed = 0;
    int checked[256] = {0};
    assert_true(nb_op_count() <= 256);
    for (size_t t = 0; t < N_TABLES; t++)
        for (const oc_case *c = tables[t]; c->op; c++) {
            if (op_index(c->op) >= 0 && nb_op_first_order_reason(op_index(c->op))) {
                skipped++;
                continue;
            }
            nb_tensor *in[4];
            make_inputs(c, in);
            bool comp = false, ok = vjp_matches_kernel(c, in, &comp);
            if (!comp) {
                nb_gradcheck_result r =
                    nb_gradgradcheck(gc_build, (void *)(uintptr_t)c, in, c->n_in, 1e-6, 1e-6, 1e-5);
                if (!r.ok) {
                    fprintf(stderr, "  %s [%s]: %s\n", c->op, c->label, r.message);
                    ok = false;
                }
                run++;
                if (op_index(c->op) >= 0) // composites (matmul_t, embedding) record another op
                    checked[op_index(c->op)] += ok;
            }
            composed += comp;
            failed += !ok;
            for (int i = 0; i < c->n_in; i++)
                nb_tensor_destroy(in[i]);
        }
    fprintf(stderr,
            "  %d cases: vjp == kernel and gradgradcheck; %d failed; %d of first-order ops; %d "
            "composed with one\n",
            run, failed, skipped, composed);
    assert_int_equal(failed, 0);
    // Every op with a vjp has at least one case that was checked.
    for (int i = 0; i < nb_op_count(); i++) {
        bool exempt = nb_op_first_order_reason(i) != NULL;
        for (size_t k = 0; k < sizeof composed_only / sizeof composed_only[0]; k++)
            exempt = exempt || strcmp(nb_op_name(i), composed_only[k]) == 0;
        if (!exempt && checked[i] == 0)
            fprintf(stderr, "  op '%s' has a vjp but no second-order-checked case\n",
                    nb_op_name(i));
        assert_true(exempt || checked[i] > 0);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_op_has_vjp_or_reason),
        cmocka_unit_test(first_order_ops_refuse_create_graph),
        cmocka_unit_test(every_case_vjp_and_gradgradcheck),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
