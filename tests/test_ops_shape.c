// src/ops/shape.c: reshape, slice and concat: values and gradients computed by hand and every
// error path. Error codes: NB_ERR_ARG for a caller-supplied value out of range (axis, slice
// bounds, a reshape dim < -1 or two -1s, ndim, concat's n); NB_ERR_SHAPE when the input shapes
// themselves do not fit (reshape element counts, concat dims that disagree). pad and the
// reshape conveniences: tests/test_ops_permute.c and the case tables (tests/cases_shape.c).
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "support/expect.h"
#include "support/opcheck.h"

static const double X23[] = {1, 2, 3, 4, 5, 6}; // [[1, 2, 3], [4, 5, 6]]

static void reshape_values_and_grad(void **state) {
    (void)state;
    nb_tensor *x = mk(NB_F64, SHAPE(2, 3), X23, true);
    nb_graph *g = nb_graph_create();
    nb_tensor *y = nb_reshape(g, x, 2, (int64_t[]){3, -1});
    expect_shape(y, SHAPE(3, 2));
    expect_values(y, X23, 6);
    expect_shape(nb_reshape(g, x, 1, (int64_t[]){-1}), SHAPE(6));
    nb_tensor *up = mk(NB_F64, SHAPE(3, 2), (double[]){6, 5, 4, 3, 2, 1}, false);
    assert_int_equal(nb_backward_with(g, y, up), NB_OK);
    expect_grad(x, (double[]){6, 5, 4, 3, 2, 1}, 6);
    // An empty tensor reshapes too when the -1 is determined.
    nb_tensor *e = mk(NB_F64, SHAPE(0, 3), NULL, false);
    expect_shape(nb_reshape(g, e, 2, (int64_t[]){3, -1}), SHAPE(3, 0));
    nb_graph_destroy(g);
    nb_tensor_destroy(x);
    nb_tensor_destroy(e);
    nb_tensor_destroy(up);
}

static void slice_values_and_grad(void **state) {
    (void)state;
    double v[12];
    for (int i = 0; i < 12; i++)
        v[i] = i;
    nb_tensor *x = mk(NB_F64, SHAPE(3, 4), v, true);
    nb_graph *g = nb_graph_create();
    nb_tensor *y = nb_slice(g, x, 1, 1, 3);
    expect_shape(y, SHAPE(3, 2));
    expect_values(y, (double[]){1, 2, 5, 6, 9, 10}, 6);
    assert_int_equal(nb_backward(g, nb_sum(g, y)), NB_OK);
    expect_grad(x, (double[]){0, 1, 1, 0, 0, 1, 1, 0, 0, 1, 1, 0}, 12);
    y = nb_slice(g, x, -2, 2, 3);
    expect_shape(y, SHAPE(1, 4));
    expect_values(y, (double[]){8, 9, 10, 11}, 4);
    expect_shape(nb_slice(g, x, 0, 3, 3), SHAPE(0, 4)); // empty but valid
    nb_graph_destroy(g);
    nb_tensor_destroy(x);
}

static void concat_values_and_grad(void **state) {
    (void)state;
    nb_tensor *a = mk(NB_F64, SHAPE(2, 1), (double[]){1, 2}, true);
    nb_tensor *b = mk(NB_F64, SHAPE(2, 2), (double[]){3, 4, 5, 6}, false);
    nb_tensor *c = mk(NB_F64, SHAPE(2, 1), (double[]){7, 8}, true);
    nb_graph *g = nb_graph_create();
    nb_tensor *y = nb_concat(g, (nb_tensor *[]){a, b, c}, 3, -1);
    expect_shape(y, SHAPE(2, 4));
    expect_values(y, (double[]){1, 3, 4, 7, 2, 5, 6, 8}, 8);
    nb_tensor *up = mk(NB_F64, SHAPE(2, 4), (double[]){1, 2, 3, 4, 5, 6, 7, 8}, false);
    assert_int_equal(nb_backward_with(g, y, up), NB_OK);
    expect_grad(a, (double[]){1, 5}, 2);
    expect_grad(c, (double[]){4, 8}, 2);
    assert_null(nb_tensor_grad(b));
    y = nb_concat(g, (nb_tensor *[]){a, c}, 2, 0);
    expect_shape(y, SHAPE(4, 1));
    expect_values(y, (double[]){1, 2, 7, 8}, 4);
    nb_graph_destroy(g);
    nb_tensor_destroy(a);
    nb_tensor_destroy(b);
    nb_tensor_destroy(c);
    nb_tensor_destroy(up);
}

static void shape_errors(void **state) {
    (void)state;
    nb_tensor *x = mk(NB_F64, SHAPE(2, 3), X23, false);
    nb_tensor *t3 = mk(NB_F64, SHAPE(2, 3, 4), NULL, false);
    nb_tensor *y = mk(NB_F64, SHAPE(3, 3), NULL, false);
    nb_tensor *f = mk(NB_F32, SHAPE(2, 3), NULL, false);
    nb_tensor *e = mk(NB_F64, SHAPE(0, 3), NULL, false);
    nb_graph *g = nb_graph_create();
    // reshape
    EXPECT_ERR(nb_reshape(g, x, 2, (int64_t[]){4, 2}), NB_ERR_SHAPE, "reshape", "(2, 3)", "(4, 2)",
               "element counts differ");
    EXPECT_ERR(nb_reshape(g, x, 2, (int64_t[]){4, -1}), NB_ERR_SHAPE, "reshape", "(2, 3)",
               "(4, -1)");
    EXPECT_ERR(nb_reshape(g, x, 3, (int64_t[]){-1, 2, -1}), NB_ERR_ARG, "reshape", "(-1, 2, -1)",
               "more than one -1");
    EXPECT_ERR(nb_reshape(g, x, 2, (int64_t[]){-2, -3}), NB_ERR_ARG, "reshape", "dim 0 is -2");
    EXPECT_ERR(nb_reshape(g, x, 7, (int64_t[]){1, 1, 1, 1, 1, 1, 6}), NB_ERR_ARG, "reshape",
               "ndim 7");
    EXPECT_ERR(nb_reshape(g, x, -1, NULL), NB_ERR_ARG, "reshape", "ndim -1");
    EXPECT_ERR(nb_reshape(g, x, 2, NULL), NB_ERR_NULL, "reshape", "shape is NULL");
    EXPECT_ERR(nb_reshape(g, e, 2, (int64_t[]){-1, 0}), NB_ERR_SHAPE, "reshape", "(0, 3)");
    EXPECT_ERR(nb_reshape(g, x, 3, (int64_t[]){INT64_MAX, 4, 2}), NB_ERR_SHAPE, "reshape");
    EXPECT_ERR(nb_reshape(g, NULL, 1, (int64_t[]){6}), NB_ERR_NULL, "reshape");
    // slice
    EXPECT_ERR(nb_slice(g, x, 1, 2, 4), NB_ERR_ARG, "slice", "[2, 4)", "axis 1", "(2, 3)");
    EXPECT_ERR(nb_slice(g, x, 0, -1, 1), NB_ERR_ARG, "slice", "[-1, 1)", "(2, 3)");
    EXPECT_ERR(nb_slice(g, x, 0, 2, 1), NB_ERR_ARG, "slice", "[2, 1)", "(2, 3)");
    EXPECT_ERR(nb_slice(g, x, 2, 0, 1), NB_ERR_ARG, "slice: axis 2", "(2, 3)");
    EXPECT_ERR(nb_slice(g, x, -3, 0, 1), NB_ERR_ARG, "slice: axis -3", "(2, 3)");
    EXPECT_ERR(nb_slice(g, NULL, 0, 0, 1), NB_ERR_NULL, "slice");
    // concat
    EXPECT_ERR(nb_concat(g, (nb_tensor *[]){x, y}, 2, 1), NB_ERR_SHAPE, "concat", "(3, 3)",
               "(2, 3)", "axis 1");
    EXPECT_ERR(nb_concat(g, (nb_tensor *[]){x, t3}, 2, 0), NB_ERR_SHAPE, "concat", "(2, 3, 4)",
               "(2, 3)");
    EXPECT_ERR(nb_concat(g, (nb_tensor *[]){x, y}, 2, 2), NB_ERR_ARG, "concat: axis 2", "(2, 3)");
    EXPECT_ERR(nb_concat(g, (nb_tensor *[]){x, f}, 2, 0), NB_ERR_DTYPE, "concat");
    EXPECT_ERR(nb_concat(g, (nb_tensor *[]){x, NULL}, 2, 0), NB_ERR_NULL, "concat", "input 1");
    EXPECT_ERR(nb_concat(g, (nb_tensor *[]){x}, 0, 0), NB_ERR_ARG, "concat", "n = 0");
    EXPECT_ERR(nb_concat(g, NULL, 2, 0), NB_ERR_NULL, "concat", "xs is NULL");
    nb_graph_destroy(g);
    nb_tensor_destroy(x);
    nb_tensor_destroy(t3);
    nb_tensor_destroy(y);
    nb_tensor_destroy(f);
    nb_tensor_destroy(e);
}

// Integer tensors (ids, labels) reshape as data, as in PyTorch: values and dtype kept, no grad
// even on a graph recording gradients; the conveniences over reshape take them too. Float ops
// still refuse them, and reshape's own errors are the same.
static void reshape_integers(void **state) {
    (void)state;
    nb_graph *g = nb_graph_create();
    nb_dtype dts[] = {NB_I32, NB_I64};
    for (int k = 0; k < 2; k++) {
        nb_graph_reset(g); // EXPECT_ERR below leaves the graph in error
        nb_tensor *ids = mk(dts[k], SHAPE(2, 3), (double[]){7, -1, 3, 100000, 0, 42}, false);
        nb_tensor *y = nb_reshape(g, ids, 2, (int64_t[]){3, -1});
        expect_shape(y, SHAPE(3, 2));
        assert_int_equal(nb_tensor_dtype(y), dts[k]);
        assert_false(nb_tensor_requires_grad(y));
        for (int64_t i = 0; i < 6; i++)
            assert_true(nb_tensor_get(y, i) == nb_tensor_get(ids, i));
        nb_tensor *u = nb_unsqueeze(g, ids, 0);
        expect_shape(u, SHAPE(1, 2, 3));
        expect_shape(nb_squeeze(g, u, 0), SHAPE(2, 3));
        nb_tensor *f = nb_flatten(g, u, 0, -1);
        expect_shape(f, SHAPE(6));
        assert_int_equal(nb_tensor_dtype(f), dts[k]);
        assert_true(nb_tensor_get(f, 3) == 100000);
        EXPECT_ERR(nb_reshape(g, ids, 2, (int64_t[]){4, 2}), NB_ERR_SHAPE, "reshape", "(2, 3)",
                   "element counts differ");
        EXPECT_ERR(nb_exp(g, ids), NB_ERR_DTYPE, "exp", "expected float32 or float64");
        nb_tensor_destroy(ids);
    }
    // Beside a float leaf that requires grad, the integer branch stays out of backward.
    nb_graph_reset(g);
    nb_tensor *x = mk(NB_F64, SHAPE(2, 3), X23, true);
    nb_tensor *lab = mk(NB_I64, SHAPE(2, 3), (double[]){0, 1, 2, 2, 1, 0}, false);
    nb_tensor *flat = nb_reshape(g, lab, 1, (int64_t[]){6});
    nb_tensor *loss = nb_sum(g, nb_reshape(g, x, 1, (int64_t[]){6}));
    assert_non_null(flat);
    assert_int_equal(nb_backward(g, loss), NB_OK);
    expect_grad(x, (double[]){1, 1, 1, 1, 1, 1}, 6);
    nb_graph_destroy(g);
    nb_tensor_destroy(x);
    nb_tensor_destroy(lab);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(reshape_values_and_grad),
        cmocka_unit_test(reshape_integers),
        cmocka_unit_test(slice_values_and_grad),
        cmocka_unit_test(concat_values_and_grad),
        cmocka_unit_test(shape_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
