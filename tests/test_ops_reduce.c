// src/ops/reduce.c: sum, mean, max, min over all elements and along one axis: values and
// gradients computed by hand, the multi-threaded paths against plain loops, every error path
// and the sticky first error. Error codes, chosen once for all reductions and shape ops:
// NB_ERR_ARG for a caller-supplied value out of range (axis), NB_ERR_SHAPE when the input
// shape does not fit (mean / max over an empty axis).
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "support/expect.h"
#include "support/opcheck.h"

static const double X23[] = {1, 2, 3, 4, 5, 6}; // [[1, 2, 3], [4, 5, 6]]

static void sum_axis_shapes_and_values(void **state) {
    (void)state;
    for (int d = 0; d < 2; d++) {
        nb_tensor *x = mk(d ? NB_F64 : NB_F32, SHAPE(2, 3), X23, false);
        nb_graph *g = nb_graph_create();
        nb_tensor *y = nb_sum_axis(g, x, 0, false);
        expect_shape(y, SHAPE(3));
        expect_values(y, (double[]){5, 7, 9}, 3);
        expect_shape(nb_sum_axis(g, x, 0, true), SHAPE(1, 3));
        expect_shape(nb_sum_axis(g, x, -2, true), SHAPE(1, 3));
        y = nb_sum_axis(g, x, 1, false);
        expect_shape(y, SHAPE(2));
        expect_values(y, (double[]){6, 15}, 2);
        y = nb_sum_axis(g, x, -1, true);
        expect_shape(y, SHAPE(2, 1));
        expect_values(y, (double[]){6, 15}, 2);
        expect_values(nb_mean_axis(g, x, 1, false), (double[]){2, 5}, 2);
        expect_values(nb_mean_axis(g, x, 0, true), (double[]){2.5, 3.5, 4.5}, 3);
        y = nb_sum(g, x);
        expect_shape(y, 0, NULL);
        expect_values(y, (double[]){21}, 1);
        y = nb_mean(g, x);
        expect_shape(y, 0, NULL);
        expect_values(y, (double[]){3.5}, 1);
        assert_int_equal(nb_graph_status(g), NB_OK);
        nb_graph_destroy(g);
        nb_tensor_destroy(x);
    }
}

// A middle axis of a 3-D tensor against a direct triple loop.
static void sum_axis_middle_of_3d(void **state) {
    (void)state;
    double v[24];
    for (int i = 0; i < 24; i++)
        v[i] = i * i % 7 - 3;
    nb_tensor *x = mk(NB_F64, SHAPE(2, 3, 4), v, false);
    nb_graph *g = nb_graph_create();
    nb_tensor *s = nb_sum_axis(g, x, 1, true), *m = nb_max_axis(g, x, -2, false);
    expect_shape(s, SHAPE(2, 1, 4));
    expect_shape(m, SHAPE(2, 4));
    for (int o = 0; o < 2; o++)
        for (int i = 0; i < 4; i++) {
            double sum = 0, max = v[o * 12 + i];
            for (int k = 0; k < 3; k++) {
                sum += v[o * 12 + k * 4 + i];
                max = v[o * 12 + k * 4 + i] > max ? v[o * 12 + k * 4 + i] : max;
            }
            assert_true(nb_tensor_get(s, o * 4 + i) == sum);
            assert_true(nb_tensor_get(m, o * 4 + i) == max);
        }
    nb_graph_destroy(g);
    nb_tensor_destroy(x);
}

// Gradient goes to the argmax only, and to the first one on a tie.
static void max_axis_grad_goes_to_argmax(void **state) {
    (void)state;
    for (int d = 0; d < 2; d++) {
        nb_dtype dt = d ? NB_F64 : NB_F32;
        nb_tensor *x = mk(dt, SHAPE(2, 3), (double[]){1, 5, 2, 7, 3, 7}, true);
        nb_graph *g = nb_graph_create();
        nb_tensor *y = nb_max_axis(g, x, 1, false);
        expect_values(y, (double[]){5, 7}, 2);
        nb_tensor *up = mk(dt, SHAPE(2), (double[]){10, 20}, false);
        assert_int_equal(nb_backward_with(g, y, up), NB_OK);
        expect_grad(x, (double[]){0, 10, 0, 20, 0, 0}, 6);
        nb_tensor_zero_grad(x);
        y = nb_max_axis(g, x, 0, true); // [[7, 5, 7]]
        expect_shape(y, SHAPE(1, 3));
        expect_values(y, (double[]){7, 5, 7}, 3);
        assert_int_equal(nb_backward(g, nb_sum(g, y)), NB_OK);
        expect_grad(x, (double[]){0, 1, 0, 1, 0, 1}, 6);
        nb_graph_destroy(g);
        nb_tensor_destroy(x);
        nb_tensor_destroy(up);
    }
}

static void mean_grad_divides(void **state) {
    (void)state;
    nb_tensor *x = mk(NB_F64, SHAPE(2, 4), NULL, true);
    nb_graph *g = nb_graph_create();
    assert_int_equal(nb_backward(g, nb_mean(g, x)), NB_OK);
    for (int i = 0; i < 8; i++)
        assert_true(nb_tensor_grad_get(x, i) == 0.125);
    nb_tensor_zero_grad(x);
    nb_tensor *y = nb_mean_axis(g, x, 1, false);
    nb_tensor *up = mk(NB_F64, SHAPE(2), (double[]){4, 8}, false);
    assert_int_equal(nb_backward_with(g, y, up), NB_OK);
    expect_grad(x, (double[]){1, 1, 1, 1, 2, 2, 2, 2}, 8);
    nb_graph_destroy(g);
    nb_tensor_destroy(x);
    nb_tensor_destroy(up);
}

// float32 sums accumulate in double: 1e8 + 1000 ones is exact, while a float accumulator
// would stay at 1e8 (its spacing there is 8).
static void f32_sums_accumulate_in_double(void **state) {
    (void)state;
    double v[1001];
    v[0] = 1e8;
    for (int i = 1; i < 1001; i++)
        v[i] = 1;
    nb_tensor *x = mk(NB_F32, SHAPE(1, 1001), v, false);
    nb_graph *g = nb_graph_create();
    assert_true(nb_tensor_get(nb_sum(g, x), 0) == 100001000.0);
    assert_true(nb_tensor_get(nb_sum_axis(g, x, 1, false), 0) == 100001000.0);
    nb_graph_destroy(g);
    nb_tensor_destroy(x);
}

// Above NB_OMP_MIN elements the kernels run multi-threaded: results must match a plain loop.
static void large_inputs_match_plain_loops(void **state) {
    (void)state;
    enum { R = 300, C = 200 };
    nb_tensor *x = mk(NB_F64, SHAPE(R, C), NULL, true);
    double *v = nb_tensor_data_f64(x);
    for (int i = 0; i < R * C; i++)
        v[i] = (i * 7919) % 1009; // small integers: every sum is exact
    nb_graph *g = nb_graph_create();
    nb_tensor *s0 = nb_sum_axis(g, x, 0, false), *m1 = nb_max_axis(g, x, 1, false);
    assert_non_null(s0);
    assert_non_null(m1);
    for (int j = 0; j < C; j++) {
        double sum = 0;
        for (int i = 0; i < R; i++)
            sum += v[i * C + j];
        assert_true(nb_tensor_get(s0, j) == sum);
    }
    for (int i = 0; i < R; i++) {
        double max = v[i * C];
        for (int j = 1; j < C; j++)
            max = v[i * C + j] > max ? v[i * C + j] : max;
        assert_true(nb_tensor_get(m1, i) == max);
    }
    // Two backward passes accumulate: d Σ sum_axis(x) / dx twice = 2.
    assert_int_equal(nb_backward(g, nb_sum(g, s0)), NB_OK);
    assert_int_equal(nb_backward(g, nb_sum(g, s0)), NB_OK);
    for (int i = 0; i < R * C; i++)
        assert_true(nb_tensor_grad_get(x, i) == 2.0);
    nb_graph_destroy(g);
    nb_tensor_destroy(x);
}

static void reduce_errors(void **state) {
    (void)state;
    nb_tensor *x = mk(NB_F64, SHAPE(2, 3), X23, false);
    nb_tensor *e = mk(NB_F64, SHAPE(0, 3), NULL, false);
    nb_tensor *s = mk(NB_F64, 0, NULL, NULL, false);
    nb_graph *g = nb_graph_create();
    EXPECT_ERR(nb_sum_axis(g, x, 2, false), NB_ERR_ARG, "sum_axis: axis 2", "(2, 3)");
    EXPECT_ERR(nb_sum_axis(g, x, -3, true), NB_ERR_ARG, "sum_axis: axis -3", "(2, 3)");
    EXPECT_ERR(nb_mean_axis(g, x, 5, false), NB_ERR_ARG, "mean_axis: axis 5", "(2, 3)");
    EXPECT_ERR(nb_max_axis(g, x, -4, false), NB_ERR_ARG, "max_axis: axis -4", "(2, 3)");
    EXPECT_ERR(nb_sum_axis(g, s, 0, false), NB_ERR_ARG, "sum_axis: axis 0", "()");
    EXPECT_ERR(nb_mean(g, e), NB_ERR_SHAPE, "mean", "(0, 3)", "empty");
    EXPECT_ERR(nb_mean_axis(g, e, 0, false), NB_ERR_SHAPE, "mean_axis", "axis 0", "(0, 3)");
    EXPECT_ERR(nb_max_axis(g, e, -2, true), NB_ERR_SHAPE, "max_axis", "axis -2", "(0, 3)");
    EXPECT_ERR(nb_sum(g, NULL), NB_ERR_NULL, "sum");
    EXPECT_ERR(nb_mean(g, NULL), NB_ERR_NULL, "mean");
    EXPECT_ERR(nb_sum_axis(g, NULL, 0, false), NB_ERR_NULL, "sum_axis");
    EXPECT_ERR(nb_mean_axis(g, NULL, 0, false), NB_ERR_NULL, "mean_axis");
    EXPECT_ERR(nb_max_axis(g, NULL, 0, false), NB_ERR_NULL, "max_axis");
    // Empty is fine where the result is defined: a sum over no elements is 0.
    nb_graph_reset(g);
    nb_tensor *z = nb_sum_axis(g, e, 0, false);
    expect_shape(z, SHAPE(3));
    expect_values(z, (double[]){0, 0, 0}, 3);
    expect_values(nb_sum(g, e), (double[]){0}, 1);
    expect_shape(nb_max_axis(g, e, 1, false), SHAPE(0));
    nb_graph_destroy(g);
    nb_tensor_destroy(x);
    nb_tensor_destroy(e);
    nb_tensor_destroy(s);
}

// The first error is kept; every later op returns NULL without touching the message.
static void errors_are_sticky(void **state) {
    (void)state;
    nb_tensor *x = mk(NB_F64, SHAPE(2, 3), X23, true);
    nb_graph *g = nb_graph_create();
    nb_tensor *bad = nb_sum_axis(g, x, 3, false);
    assert_null(bad);
    assert_true(
        oc_expect_error(g, nb_max_axis(g, x, 0, false), NB_ERR_ARG, "sum_axis: axis 3", NULL));
    assert_null(nb_sum(g, x));
    assert_null(nb_mean(g, bad));
    assert_null(nb_mean_axis(g, x, 0, true));
    assert_null(nb_reshape(g, x, 1, (int64_t[]){6}));
    assert_null(nb_transpose(g, x));
    assert_null(nb_slice(g, x, 0, 0, 1));
    assert_null(nb_concat(g, (nb_tensor *[]){x, x}, 2, 0));
    assert_null(nb_concat(g, NULL, 0, 0));
    assert_true(oc_expect_error(g, NULL, NB_ERR_ARG, "sum_axis: axis 3", NULL));
    // A NULL graph is reported through nb_last_error.
    assert_null(nb_sum(NULL, x));
    assert_null(nb_concat(NULL, (nb_tensor *[]){x}, 1, 0));
    nb_graph_destroy(g);
    nb_tensor_destroy(x);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sum_axis_shapes_and_values),
        cmocka_unit_test(sum_axis_middle_of_3d),
        cmocka_unit_test(max_axis_grad_goes_to_argmax),
        cmocka_unit_test(mean_grad_divides),
        cmocka_unit_test(f32_sums_accumulate_in_double),
        cmocka_unit_test(large_inputs_match_plain_loops),
        cmocka_unit_test(reduce_errors),
        cmocka_unit_test(errors_are_sticky),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
