// cast between float32 and float64 (values and gradients both ways), constants on the tape
// (full / zeros / ones / arange: values, no gradient, re-made by replay, released by reset),
// and bad input.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>

#include "support/expect.h"
#include "support/opcheck.h"

static void cast_both_ways(void **state) {
    (void)state;
    nb_tensor *x64 = nb_tensor_create(NB_F64, 1, (int64_t[]){3});
    nb_tensor_copy_in(x64, (double[]){0.1, -2.5, 1e300}, NB_F64, 3);
    nb_tensor_set_requires_grad(x64, true);
    nb_graph *g = nb_graph_create();
    nb_tensor *x32 = nb_cast(g, x64, NB_F32);
    assert_int_equal(nb_tensor_dtype(x32), NB_F32);
    assert_true(nb_tensor_get(x32, 0) == (double)0.1f && nb_tensor_get(x32, 1) == -2.5);
    assert_true(isinf(nb_tensor_get(x32, 2))); // out of float range, as a C conversion gives
    nb_tensor *back = nb_cast(g, nb_scale(g, x32, 3.0), NB_F64);
    assert_int_equal(nb_tensor_dtype(back), NB_F64);
    nb_tensor *up = nb_tensor_create(NB_F64, 1, (int64_t[]){3});
    nb_tensor_copy_in(up, (double[]){1, 0.25, 0}, NB_F64, 3);
    assert_int_equal(nb_backward_with(g, back, up), NB_OK);
    assert_true(nb_tensor_grad_get(x64, 0) == 3.0 && nb_tensor_grad_get(x64, 1) == 0.75);
    // mixing dtypes still needs the cast
    nb_graph_reset(g);
    assert_true(oc_expect_error(g, nb_add(g, x64, nb_cast(g, x64, NB_F32)), NB_ERR_DTYPE, "add",
                                "mixed dtypes", NULL));
    nb_graph_destroy(g);
    nb_tensor_destroy(x64);
    nb_tensor_destroy(up);
}

// Second order across dtypes, exactly: y = Σ cast(x32²) with x32 = cast(x64). The gradient
// 2x comes back as float64 through cast's vjp (a cast); differentiating <gx, x> again gives
// 4x. Values are chosen representable in float32, so every step is exact.
static void cast_second_order(void **state) {
    (void)state;
    const double xv[3] = {0.5, -1.25, 3};
    nb_tensor *x = nb_tensor_create(NB_F64, 1, (int64_t[]){3});
    nb_tensor_copy_in(x, xv, NB_F64, 3);
    nb_tensor_set_requires_grad(x, true);
    nb_graph *g = nb_graph_create();
    nb_tensor *x32 = nb_cast(g, x, NB_F32);
    nb_tensor *y = nb_sum(g, nb_cast(g, nb_mul(g, x32, x32), NB_F64));
    nb_tensor *gx = NULL;
    assert_int_equal(nb_grad(g, &y, NULL, 1, &x, 1, true, &gx), NB_OK);
    assert_int_equal(nb_tensor_dtype(gx), NB_F64);
    assert_true(nb_tensor_requires_grad(gx)); // on the tape, differentiable again
    for (int i = 0; i < 3; i++)
        assert_true(nb_tensor_get(gx, i) == 2 * xv[i]);
    nb_tensor_zero_grad(x);
    assert_int_equal(nb_backward(g, nb_sum(g, nb_mul(g, gx, x))), NB_OK); // d Σ 2x² = 4x
    for (int i = 0; i < 3; i++)
        assert_true(nb_tensor_grad_get(x, i) == 4 * xv[i]);
    nb_graph_destroy(g);
    nb_tensor_destroy(x);
}

static void constants_on_the_tape(void **state) {
    (void)state;
    nb_tensor *x = nb_tensor_create(NB_F32, 2, (int64_t[]){2, 3});
    nb_tensor_fill(x, 2.0);
    nb_tensor_set_requires_grad(x, true);
    nb_graph *g = nb_graph_create();
    nb_tensor *z = nb_zeros(g, NB_F32, 2, (int64_t[]){2, 3});
    nb_tensor *o = nb_ones(g, NB_F64, 0, NULL);
    nb_tensor *f = nb_full(g, NB_F32, 1, (int64_t[]){3}, -INFINITY);
    assert_false(nb_tensor_requires_grad(z));
    assert_int_equal(nb_tensor_ndim(o), 0);
    assert_true(nb_tensor_get(o, 0) == 1.0 && nb_tensor_dtype(o) == NB_F64);
    for (int i = 0; i < 6; i++)
        assert_true(nb_tensor_get(z, i) == 0.0);
    assert_true(isinf(nb_tensor_get(f, 2)));
    nb_tensor *a = nb_arange(g, NB_F32, 0, 3, 1);
    assert_int_equal(nb_tensor_dim(a, 0), 3);
    nb_tensor *y = nb_sum(g, nb_mul(g, nb_add(g, x, z), a)); // Σ x_ij j
    assert_true(nb_tensor_get(y, 0) == 2.0 * (0 + 1 + 2) * 2);
    assert_int_equal(nb_backward(g, y), NB_OK);
    for (int i = 0; i < 6; i++)
        assert_true(nb_tensor_grad_get(x, i) == (double)(i % 3));
    // replay re-makes everything from the leaves
    nb_tensor_fill(x, 1.0);
    assert_int_equal(nb_graph_replay(g), NB_OK);
    assert_true(nb_tensor_get(y, 0) == 6.0);
    // lengths like torch.arange
    nb_tensor *r = nb_arange(g, NB_F64, 5, 0, -2); // 5 3 1
    assert_int_equal(nb_tensor_dim(r, 0), 3);
    assert_true(nb_tensor_get(r, 2) == 1.0);
    assert_int_equal(nb_tensor_dim(nb_arange(g, NB_F64, 0, 1, 0.3), 0), 4);
    assert_int_equal(nb_tensor_dim(nb_arange(g, NB_F64, 3, 1, 1), 0), 0);
    nb_graph_destroy(g);
    nb_tensor_destroy(x);
}

static void bad_input(void **state) {
    (void)state;
    nb_tensor *x = nb_tensor_create(NB_F64, 2, (int64_t[]){2, 3});
    nb_tensor *lab = nb_tensor_create(NB_I32, 1, (int64_t[]){3});
    nb_graph *g = nb_graph_create();
    EXPECT_ERR(nb_cast(g, x, NB_I32), NB_ERR_ARG, "cast", "float32 or float64", "(2, 3)");
    EXPECT_ERR(nb_cast(g, lab, NB_F32), NB_ERR_DTYPE, "cast", "int32");
    EXPECT_ERR(nb_cast(g, NULL, NB_F32), NB_ERR_NULL, "cast");
    EXPECT_ERR(nb_full(g, NB_I32, 1, (int64_t[]){2}, 0), NB_ERR_ARG, "full", "dtype");
    EXPECT_ERR(nb_full(g, NB_F32, 1, (int64_t[]){-2}, 0), NB_ERR_ARG, "full", "dim 0 is -2");
    EXPECT_ERR(nb_zeros(g, NB_F32, 2, NULL), NB_ERR_ARG, "full", "ndim");
    EXPECT_ERR(nb_ones(g, NB_F32, 9, (int64_t[]){1, 1, 1, 1, 1, 1, 1, 1, 1}), NB_ERR_ARG, "full");
    EXPECT_ERR(nb_full(g, NB_F32, 2, (int64_t[]){INT64_MAX, 4}, 0), NB_ERR_SHAPE, "full");
    EXPECT_ERR(nb_arange(g, NB_F32, 0, 1, 0), NB_ERR_ARG, "arange", "step 0");
    EXPECT_ERR(nb_arange(g, NB_F32, 0, INFINITY, 1), NB_ERR_ARG, "arange", "stop inf");
    EXPECT_ERR(nb_arange(g, NB_F32, 0, 1e300, 1), NB_ERR_SHAPE, "arange");
    EXPECT_ERR(nb_arange(g, NB_I32, 0, 3, 1), NB_ERR_ARG, "arange", "dtype");
    nb_graph_destroy(g);
    nb_tensor_destroy(x);
    nb_tensor_destroy(lab);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(cast_both_ways),
        cmocka_unit_test(cast_second_order),
        cmocka_unit_test(constants_on_the_tape),
        cmocka_unit_test(bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
