// Pointwise ops: reference values computed independently with libm, the conventions at the
// kinks (relu'(0) = 0, step' = 0), saturation without NaN, and bad input.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>
#include <string.h>

#include "support/opcheck.h"

typedef nb_tensor *(*unary_fn)(nb_graph *, nb_tensor *);

// Applies f to xs (float64), returns y[i] and dy/dx[i] through backward with dy = 1.
static void eval(unary_fn f, const double *xs, int n, double *y, double *dydx) {
    nb_tensor *x = nb_tensor_from_data(NB_F64, 1, (int64_t[]){n}, xs);
    nb_tensor_set_requires_grad(x, true);
    nb_graph *g = nb_graph_create();
    nb_tensor *out = f(g, x);
    assert_non_null(out);
    nb_tensor *ones = nb_tensor_create(NB_F64, 1, (int64_t[]){n});
    nb_tensor_fill(ones, 1.0);
    assert_int_equal(nb_backward_with(g, out, ones), NB_OK);
    for (int i = 0; i < n; i++) {
        y[i] = nb_tensor_get(out, i);
        dydx[i] = nb_tensor_grad_get(x, i);
    }
    nb_graph_destroy(g);
    nb_tensor_destroy(x);
    nb_tensor_destroy(ones);
}

static void reference_values(void **state) {
    (void)state;
    const double xs[] = {-3, -0.5, 0.7, 2};
    double y[4], d[4];
    eval(nb_sigmoid, xs, 4, y, d);
    for (int i = 0; i < 4; i++) {
        double s = 1 / (1 + exp(-xs[i]));
        assert_true(oc_near(y[i], s, 1e-15));
        assert_true(oc_near(d[i], s * (1 - s), 1e-15));
    }
    eval(nb_gelu, xs, 4, y, d);
    for (int i = 0; i < 4; i++) // x Φ(x) with Φ from erfc, an independent route
        assert_true(oc_near(y[i], xs[i] * 0.5 * erfc(-xs[i] / sqrt(2.0)), 1e-14));
    eval(nb_softplus, xs, 4, y, d);
    for (int i = 0; i < 4; i++)
        assert_true(oc_near(y[i], log(1 + exp(xs[i])), 1e-14));
    eval(nb_silu, xs, 4, y, d);
    for (int i = 0; i < 4; i++)
        assert_true(oc_near(y[i], xs[i] / (1 + exp(-xs[i])), 1e-14));
    eval(nb_gelu_tanh, xs, 4, y, d);
    for (int i = 0; i < 4; i++) // the approximation stays within 1e-3 of exact GELU
        assert_true(oc_near(y[i], xs[i] * 0.5 * erfc(-xs[i] / sqrt(2.0)), 1e-3));
}

static void kink_conventions(void **state) {
    (void)state;
    const double xs[] = {-1, 0, 1};
    double y[3], d[3];
    eval(nb_relu, xs, 3, y, d);
    assert_true(y[0] == 0 && y[1] == 0 && y[2] == 1);
    assert_true(d[0] == 0 && d[1] == 0 && d[2] == 1); // relu'(0) = 0
    eval(nb_step, xs, 3, y, d);
    assert_true(y[0] == 0 && y[1] == 0 && y[2] == 1);
    assert_true(d[0] == 0 && d[1] == 0 && d[2] == 0); // zero gradient everywhere
}

// relu's loops run in ISA clones (16 / 8 / 4 floats): lengths 1, around the vector widths and
// with a remainder, both dtypes, values at the kink (±0), ±inf and NaN, against the scalar
// definition bit for bit: y = x > 0 ? x : 0; dx = dy · [x > 0] stored when relu writes dx first
// (its input is the output of another op) and added to the prior gradient of a leaf.
static void relu_clones_match_scalar(void **state) {
    (void)state;
    const int64_t lens[] = {1, 3, 4, 7, 8, 15, 16, 17, 31, 33, 100};
    const nb_dtype dts[] = {NB_F32, NB_F64};
    for (int d = 0; d < 2; d++)
        for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
            int64_t n = lens[li];
            nb_tensor *x = nb_tensor_create(dts[d], 1, (int64_t[]){n});
            nb_tensor *gy = nb_tensor_create(dts[d], 1, (int64_t[]){n});
            assert_true(x && gy);
            const double special[] = {0.0, -0.0, INFINITY, -INFINITY, NAN};
            for (int64_t i = 0; i < n; i++) {
                nb_tensor_set(x, i, i % 7 == 6 ? special[(i / 7) % 5] : sin(1.3 * (double)i));
                nb_tensor_set(gy, i, 0.5 + cos(0.9 * (double)i));
            }
            nb_tensor_set_requires_grad(x, true);
            for (int first = 0; first < 2; first++) {
                nb_tensor_zero_grad(x);
                nb_graph *g = nb_graph_create();
                nb_tensor *in = first ? nb_scale(g, x, 1.0) : x; // scale: x · 1 is x exactly
                nb_tensor *y = nb_relu(g, in);
                assert_non_null(y);
                // a leaf's gradient accumulates: backward twice adds dy · [x > 0] twice
                int passes = first ? 1 : 2;
                for (int p = 0; p < passes; p++)
                    assert_int_equal(nb_backward_with(g, y, gy), NB_OK);
                for (int64_t i = 0; i < n; i++) {
                    double xv = nb_tensor_get(x, i), dv = nb_tensor_get(gy, i);
                    double want_y = xv > 0 ? xv : 0, want_g = passes * (dv * (xv > 0 ? 1 : 0));
                    double got_y = nb_tensor_get(y, i), got_g = nb_tensor_grad_get(x, i);
                    if (memcmp(&got_y, &want_y, sizeof got_y) || got_g != want_g)
                        fail_msg("%s n %lld first %d: i %lld x %g: y %g (want %g), dx %g (want %g)",
                                 nb_dtype_name(dts[d]), (long long)n, first, (long long)i, xv,
                                 got_y, want_y, got_g, want_g);
                }
                nb_graph_destroy(g);
            }
            nb_tensor_destroy(x);
            nb_tensor_destroy(gy);
        }
}

static nb_tensor *leaky(nb_graph *g, nb_tensor *x) {
    return nb_leaky_relu(g, x, 0.01);
}
static nb_tensor *elu1(nb_graph *g, nb_tensor *x) {
    return nb_elu(g, x, 1.0);
}

static void parameterised_ops(void **state) {
    (void)state;
    const double xs[] = {-2, 3};
    double y[2], d[2];
    eval(leaky, xs, 2, y, d);
    assert_true(oc_near(y[0], -0.02, 1e-15));
    assert_true(oc_near(d[0], 0.01, 1e-15));
    assert_true(d[1] == 1);
    eval(elu1, xs, 2, y, d);
    assert_true(oc_near(y[0], exp(-2.0) - 1, 1e-15));
    assert_true(oc_near(d[0], exp(-2.0), 1e-15));
}

static nb_tensor *pow0(nb_graph *g, nb_tensor *x) {
    return nb_pow_scalar(g, x, 0.0);
}
static nb_tensor *pow1(nb_graph *g, nb_tensor *x) {
    return nb_pow_scalar(g, x, 1.0);
}
static nb_tensor *pow2(nb_graph *g, nb_tensor *x) {
    return nb_pow_scalar(g, x, 2.0);
}

// x^0 = 1 everywhere, so its derivative is exactly 0, at x = 0 too (0 * 0^-1 would be NaN).
static void pow_at_zero(void **state) {
    (void)state;
    const double xs[] = {0, -0.0, 2};
    double y[3], d[3];
    eval(pow0, xs, 3, y, d);
    for (int i = 0; i < 3; i++)
        assert_true(y[i] == 1 && d[i] == 0 && !signbit(d[i]));
    eval(pow1, xs, 3, y, d);
    assert_true(d[0] == 1 && d[1] == 1 && d[2] == 1);
    eval(pow2, xs, 3, y, d);
    assert_true(d[0] == 0 && d[2] == 4);
}

static void saturation_stays_finite(void **state) {
    (void)state;
    const double xs[] = {-1000, 1000};
    unary_fn fns[] = {nb_sigmoid, nb_tanh, nb_softplus, nb_silu, nb_gelu, nb_gelu_tanh};
    for (size_t k = 0; k < sizeof fns / sizeof fns[0]; k++) {
        double y[2], d[2];
        eval(fns[k], xs, 2, y, d);
        for (int i = 0; i < 2; i++)
            assert_true(isfinite(y[i]) && isfinite(d[i]));
    }
}

static void bad_input(void **state) {
    (void)state;
    nb_graph *g = nb_graph_create();
    assert_true(oc_expect_error(g, nb_sigmoid(g, NULL), NB_ERR_NULL, "sigmoid", "NULL", NULL));
    nb_graph_reset(g);
    nb_tensor *labels = nb_tensor_create(NB_I32, 1, (int64_t[]){3});
    assert_true(oc_expect_error(g, nb_relu(g, labels), NB_ERR_DTYPE, "relu", "(3)", "int32", NULL));
    nb_graph_destroy(g);
    nb_tensor_destroy(labels);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(reference_values),
        cmocka_unit_test(kink_conventions),
        cmocka_unit_test(relu_clones_match_scalar),
        cmocka_unit_test(parameterised_ops),
        cmocka_unit_test(pow_at_zero),
        cmocka_unit_test(saturation_stays_finite),
        cmocka_unit_test(bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
