// src/ops/linear.c: y = x wᵀ + b: values computed by hand, gradients against the formulas, and
// bad input.
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "support/opcheck.h"

static nb_tensor *mk(nb_dtype dt, int64_t r, int64_t c, const double *v, bool grad) {
    nb_tensor *t = nb_tensor_create(dt, 2, (int64_t[]){r, c});
    nb_tensor_copy_in(t, v, NB_F64, r * c);
    nb_tensor_set_requires_grad(t, grad);
    return t;
}

static void linear_is_x_wT_plus_b(void **state) {
    (void)state;
    // Neuron j computes Σ_i w_ji x_i + b_j: W has shape (out, in).
    nb_tensor *x = mk(NB_F64, 1, 3, (double[]){1, 2, 3}, false);
    nb_tensor *w = mk(NB_F64, 2, 3, (double[]){1, 1, 1, 0, -1, 2}, true);
    nb_tensor *b = nb_tensor_from_data(NB_F64, 1, (int64_t[]){2}, (double[]){0.5, -1});
    nb_tensor_set_requires_grad(b, true);
    nb_graph *g = nb_graph_create();
    nb_tensor *y = nb_linear(g, x, w, b);
    assert_true(nb_tensor_get(y, 0) == 6.5 && nb_tensor_get(y, 1) == 3.0);
    nb_tensor *up = mk(NB_F64, 1, 2, (double[]){1, 1}, false);
    assert_int_equal(nb_backward_with(g, y, up), NB_OK);
    for (int i = 0; i < 6; i++) // dW = dyᵀ x: every row is x
        assert_true(nb_tensor_grad_get(w, i) == (double)(i % 3 + 1));
    assert_true(nb_tensor_grad_get(b, 0) == 1.0 && nb_tensor_grad_get(b, 1) == 1.0);
    assert_null(nb_tensor_grad(x)); // x does not require grad
    nb_graph_destroy(g);
    nb_tensor_destroy(x);
    nb_tensor_destroy(w);
    nb_tensor_destroy(b);
    nb_tensor_destroy(up);
}

static void bad_shapes_record_errors(void **state) {
    (void)state;
    nb_tensor *x = nb_tensor_create(NB_F32, 2, (int64_t[]){64, 784});
    nb_tensor *w = nb_tensor_create(NB_F32, 2, (int64_t[]){128, 748});
    nb_tensor *b = nb_tensor_create(NB_F32, 1, (int64_t[]){10});
    nb_graph *g = nb_graph_create();
    assert_true(oc_expect_error(g, nb_linear(g, x, w, NULL), NB_ERR_SHAPE,
                                "linear: x is (64, 784) but w is (128, 748): in-features differ",
                                NULL));
    nb_graph_reset(g);
    nb_tensor *s0 = nb_tensor_create(NB_F32, 0, NULL);
    assert_true(oc_expect_error(g, nb_linear(g, s0, w, NULL), NB_ERR_SHAPE, "linear",
                                "must be (..., in)", NULL));
    nb_graph_reset(g);
    nb_tensor *b3 = nb_tensor_create(NB_F32, 3, (int64_t[]){3, 4, 5});
    nb_tensor *c3 = nb_tensor_create(NB_F32, 3, (int64_t[]){2, 5, 6});
    assert_true(
        oc_expect_error(g, nb_linear(g, b3, c3, NULL), NB_ERR_SHAPE, "linear", "(2, 5, 6)", NULL));
    nb_graph_reset(g);
    nb_tensor *w_ok = nb_tensor_create(NB_F32, 2, (int64_t[]){128, 784});
    assert_true(oc_expect_error(g, nb_linear(g, x, w_ok, b), NB_ERR_SHAPE, "linear", "(10)",
                                "(128, 784)", NULL));
    nb_graph_reset(g);
    nb_tensor *d64 = nb_tensor_create(NB_F64, 2, (int64_t[]){128, 784});
    assert_true(oc_expect_error(g, nb_linear(g, x, d64, NULL), NB_ERR_DTYPE, "linear", NULL));
    nb_graph_reset(g);
    assert_true(oc_expect_error(g, nb_linear(g, x, NULL, NULL), NB_ERR_NULL, "linear", NULL));
    nb_graph_destroy(g);
    nb_tensor_destroy(s0);
    nb_tensor_destroy(b3);
    nb_tensor_destroy(c3);
    nb_tensor_destroy(d64);
    nb_tensor_destroy(x);
    nb_tensor_destroy(w);
    nb_tensor_destroy(w_ok);
    nb_tensor_destroy(b);
}

// The bias gradient of a (600, 150) gy (above the parallel threshold; column blocks of 64, 64
// and 22) is each column summed over the rows in order, bit for bit, at 1 and 2 threads, as a
// first write (one linear) and accumulated (b used by two linears: the second adds its rows to
// the first's sums).
static void bias_grad_sums_rows_in_order(void **state) {
    (void)state;
    enum { R = 600, O = 150 };
    for (int dt = 0; dt < 2; dt++) {
        nb_dtype t = dt ? NB_F64 : NB_F32;
        nb_tensor *x = nb_tensor_create(t, 2, (int64_t[]){R, 1});
        nb_tensor *w = nb_tensor_create(t, 2, (int64_t[]){O, 1});
        nb_tensor *b = nb_tensor_create(t, 1, (int64_t[]){O});
        nb_tensor *up = nb_tensor_create(t, 2, (int64_t[]){R, O});
        nb_tensor_set_requires_grad(b, true);
        for (int64_t i = 0; i < R * O; i++) // mixed magnitudes: the order shows in the bits
            nb_tensor_set(up, i, sin(0.37 * (double)i) * (i % 7 == 0 ? 1e3 : 1.0));
        for (int uses = 1; uses <= 2; uses++)
            for (int th = 1; th <= 2; th++) {
                nb_set_num_threads(th);
                nb_tensor_zero_grad(b);
                nb_graph *g = nb_graph_create();
                nb_tensor *y = nb_linear(g, x, w, b);
                if (uses == 2)
                    y = nb_add(g, y, nb_linear(g, x, w, b));
                assert_int_equal(nb_backward_with(g, y, up), NB_OK);
                for (int64_t j = 0; j < O; j++) {
                    float s32 = 0;
                    double s64 = 0;
                    for (int u = 0; u < uses; u++)
                        for (int64_t r = 0; r < R; r++) {
                            s32 += (float)nb_tensor_get(up, r * O + j);
                            s64 += nb_tensor_get(up, r * O + j);
                        }
                    double want = dt ? s64 : (double)s32;
                    if (nb_tensor_grad_get(b, j) != want)
                        fail_msg("%s, %d use(s), %d thread(s): db[%lld] = %.17g, rows in order "
                                 "give %.17g",
                                 dt ? "f64" : "f32", uses, th, (long long)j,
                                 nb_tensor_grad_get(b, j), want);
                }
                nb_graph_destroy(g);
            }
        nb_tensor_destroy(x);
        nb_tensor_destroy(w);
        nb_tensor_destroy(b);
        nb_tensor_destroy(up);
    }
    nb_set_num_threads(1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(linear_is_x_wT_plus_b),
        cmocka_unit_test(bad_shapes_record_errors),
        cmocka_unit_test(bias_grad_sums_rows_in_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
