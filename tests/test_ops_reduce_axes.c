// Reductions over axis sets (sum, mean, var / std with the unbiased flag, logsumexp),
// softmax / log_softmax along any axis, softplus with β and threshold: values against direct
// computation here, the -inf conventions, and bad input.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>

#include "support/expect.h"
#include "support/opcheck.h"

// x (2, 3, 2) = 0..11: x[a, b, c] = 6a + 2b + c
static const double X[] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};

static void sums_means_over_axis_sets(void **state) {
    (void)state;
    for (int d = 0; d < 2; d++) {
        nb_dtype dt = d ? NB_F64 : NB_F32;
        nb_tensor *x = mk(dt, 3, (int64_t[]){2, 3, 2}, X, true);
        nb_graph *g = nb_graph_create();
        nb_tensor *s = nb_sum_axes(g, x, 2, (const int[]){0, -1}, false); // (3)
        assert_int_equal(nb_tensor_ndim(s), 1);
        for (int b = 0; b < 3; b++) // Σ_a,c 6a + 2b + c = 6 + 8b + 2 = 8b + 8... per b: 4 terms
            assert_true(nb_tensor_get(s, b) == 6.0 * 2 + 2.0 * b * 4 + 2.0);
        nb_tensor *m = nb_mean_axes(g, x, 2, (const int[]){2, 0}, true); // (1, 3, 1)
        assert_int_equal(nb_tensor_ndim(m), 3);
        assert_int_equal(nb_tensor_dim(m, 1), 3);
        assert_true(nb_tensor_get(m, 1) == (6.0 * 2 + 2.0 * 4 + 2.0) / 4);
        nb_tensor *all = nb_sum_axes(g, x, 0, NULL, false);
        assert_int_equal(nb_tensor_ndim(all), 0);
        assert_true(nb_tensor_get(all, 0) == 66.0);
        assert_int_equal(nb_backward(g, nb_add(g, nb_sum(g, s), nb_sum(g, m))), NB_OK);
        for (int i = 0; i < 12; i++)
            assert_true(nb_tensor_grad_get(x, i) == 1.25);
        nb_graph_destroy(g);
        nb_tensor_destroy(x);
    }
}

static void var_std_unbiased_flag(void **state) {
    (void)state;
    nb_tensor *x = mk(NB_F64, 2, (int64_t[]){2, 4}, (double[]){1, 2, 3, 6, -1, -1, -1, -1}, true);
    nb_graph *g = nb_graph_create();
    nb_tensor *vu = nb_var_axes(g, x, 1, (const int[]){1}, true, false);
    nb_tensor *vb = nb_var_axes(g, x, 1, (const int[]){1}, false, false);
    nb_tensor *su = nb_std_axes(g, x, 1, (const int[]){-1}, true, true);
    // row 0: mean 3, Σ (x - 3)² = 4 + 1 + 0 + 9 = 14; row 1: constant, var 0
    assert_true(oc_near(nb_tensor_get(vu, 0), 14.0 / 3, 1e-15));
    assert_true(oc_near(nb_tensor_get(vb, 0), 14.0 / 4, 1e-15));
    assert_true(nb_tensor_get(vu, 1) == 0.0);
    assert_true(oc_near(nb_tensor_get(su, 0), sqrt(14.0 / 3), 1e-15));
    assert_int_equal(nb_backward(g, nb_sum(g, vu)), NB_OK);
    const double gv[] = {-2, -1, 0, 3}; // 2 (x - μ) / 3
    for (int i = 0; i < 4; i++)
        assert_true(oc_near(nb_tensor_grad_get(x, i), 2 * gv[i] / 3, 1e-15));
    nb_graph_destroy(g);
    nb_tensor_destroy(x);
}

static void logsumexp_and_softmax_axis(void **state) {
    (void)state;
    nb_tensor *x =
        mk(NB_F64, 2, (int64_t[]){2, 3}, (double[]){1000, 1000, -INFINITY, 0, 1, 2}, true);
    nb_tensor *ninf = mk(NB_F64, 1, (int64_t[]){2}, (double[]){-INFINITY, -INFINITY}, true);
    nb_graph *g = nb_graph_create();
    nb_tensor *l = nb_logsumexp_axes(g, x, 1, (const int[]){1}, false);
    assert_true(oc_near(nb_tensor_get(l, 0), 1000 + log(2.0), 1e-12));
    assert_true(oc_near(nb_tensor_get(l, 1), log(exp(0.0) + exp(1.0) + exp(2.0)), 1e-14));
    nb_tensor *ln = nb_logsumexp_axes(g, ninf, 0, NULL, false);
    assert_true(isinf(nb_tensor_get(ln, 0)) && nb_tensor_get(ln, 0) < 0);
    // softmax along axis 0 of (2, 3): columns
    nb_tensor *s0 = nb_softmax_axis(g, x, 0);
    assert_true(nb_tensor_get(s0, 0) == 1.0 && nb_tensor_get(s0, 3) == 0.0);
    assert_true(nb_tensor_get(s0, 2) == 0.0 && nb_tensor_get(s0, 5) == 1.0);
    // along the last axis it equals nb_softmax
    nb_tensor *a = nb_softmax_axis(g, x, -1), *b = nb_softmax(g, x);
    nb_tensor *la = nb_log_softmax_axis(g, x, 1), *lb = nb_log_softmax(g, x);
    for (int i = 0; i < 6; i++) {
        assert_true(oc_near(nb_tensor_get(a, i), nb_tensor_get(b, i), 1e-15));
        if (i != 2)
            assert_true(oc_near(nb_tensor_get(la, i), nb_tensor_get(lb, i), 1e-12));
    }
    assert_int_equal(nb_backward(g, nb_add(g, nb_sum(g, l), nb_sum(g, ln))), NB_OK);
    // e^(x - lse): lse = 1000 + ln 2 is stored to an ulp of 1.1e-13, which bounds the error
    assert_true(oc_near(nb_tensor_grad_get(x, 0), 0.5, 2e-13));
    assert_true(nb_tensor_grad_get(x, 2) == 0.0);
    assert_true(nb_tensor_grad_get(ninf, 0) == 0.0);
    nb_graph_destroy(g);
    nb_tensor_destroy(x);
    nb_tensor_destroy(ninf);
}

static void softplus_beta_threshold(void **state) {
    (void)state;
    const double xs[] = {-30, -1, 0, 0.5, 19.9, 25, 800};
    nb_tensor *x = mk(NB_F64, 1, (int64_t[]){7}, xs, true);
    nb_graph *g = nb_graph_create();
    nb_tensor *y = nb_softplus_bt(g, x, 1, 20); // PyTorch's defaults
    nb_tensor *y2 = nb_softplus_bt(g, x, 2, 20);
    assert_int_equal(nb_backward(g, nb_sum(g, y)), NB_OK);
    for (int i = 0; i < 7; i++) {
        double want = xs[i] > 20 ? xs[i] : log1p(exp(xs[i]));
        double dwant = xs[i] > 20 ? 1 : 1 / (1 + exp(-xs[i]));
        assert_true(oc_near(nb_tensor_get(y, i), want, 1e-15 * fmax(1, fabs(want))));
        assert_true(oc_near(nb_tensor_grad_get(x, i), dwant, 1e-15));
        double want2 = 2 * xs[i] > 20 ? xs[i] : log1p(exp(2 * xs[i])) / 2;
        assert_true(oc_near(nb_tensor_get(y2, i), want2, 1e-15 * fmax(1, fabs(want2))));
    }
    nb_graph_destroy(g);
    nb_tensor_destroy(x);
}

static void bad_input(void **state) {
    (void)state;
    nb_tensor *x = mk(NB_F64, 2, (int64_t[]){2, 3}, X, false);
    nb_tensor *one = mk(NB_F64, 1, (int64_t[]){1}, X, false);
    nb_tensor *e = nb_tensor_create(NB_F64, 2, (int64_t[]){2, 0});
    nb_tensor *lab = nb_tensor_create(NB_I32, 1, (int64_t[]){3});
    nb_graph *g = nb_graph_create();
    EXPECT_ERR(nb_sum_axes(g, x, 1, (const int[]){2}, false), NB_ERR_ARG, "sum_axes", "axis 2",
               "(2, 3)");
    EXPECT_ERR(nb_sum_axes(g, x, 2, (const int[]){1, -1}, false), NB_ERR_ARG, "sum_axes",
               "given twice");
    EXPECT_ERR(nb_sum_axes(g, x, 2, NULL, false), NB_ERR_ARG, "sum_axes", "axes");
    EXPECT_ERR(nb_mean_axes(g, x, 7, (const int[]){0, 1, 0, 1, 0, 1, 0}, false), NB_ERR_ARG,
               "mean_axes");
    EXPECT_ERR(nb_mean_axes(g, e, 1, (const int[]){1}, false), NB_ERR_SHAPE, "mean_axes", "(2, 0)",
               "mean of 0 elements");
    EXPECT_ERR(nb_var_axes(g, one, 0, NULL, true, false), NB_ERR_SHAPE, "var_axes",
               "unbiased var of 1 element");
    EXPECT_ERR(nb_std_axes(g, e, 1, (const int[]){-1}, false, false), NB_ERR_SHAPE, "std_axes");
    EXPECT_ERR(nb_logsumexp_axes(g, e, 1, (const int[]){1}, false), NB_ERR_SHAPE, "logsumexp_axes");
    EXPECT_ERR(nb_logsumexp_axes(g, lab, 0, NULL, false), NB_ERR_DTYPE, "logsumexp_axes");
    EXPECT_ERR(nb_softmax_axis(g, x, 2), NB_ERR_ARG, "softmax_axis", "axis 2", "(2, 3)");
    EXPECT_ERR(nb_log_softmax_axis(g, x, -3), NB_ERR_ARG, "log_softmax_axis", "axis -3");
    EXPECT_ERR(nb_softmax_axis(g, NULL, 0), NB_ERR_NULL, "softmax_axis");
    EXPECT_ERR(nb_softplus_bt(g, x, 0, 20), NB_ERR_ARG, "softplus_bt", "beta 0");
    EXPECT_ERR(nb_softplus_bt(g, x, -1, 20), NB_ERR_ARG, "softplus_bt", "beta -1");
    EXPECT_ERR(nb_softplus_bt(g, x, 1, NAN), NB_ERR_ARG, "softplus_bt", "threshold");
    EXPECT_ERR(nb_softplus_bt(g, lab, 1, 20), NB_ERR_DTYPE, "softplus_bt");
    nb_graph_destroy(g);
    nb_tensor_destroy(x);
    nb_tensor_destroy(one);
    nb_tensor_destroy(e);
    nb_tensor_destroy(lab);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sums_means_over_axis_sets),
        cmocka_unit_test(var_std_unbiased_flag),
        cmocka_unit_test(logsumexp_and_softmax_axis),
        cmocka_unit_test(softplus_beta_threshold),
        cmocka_unit_test(bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
