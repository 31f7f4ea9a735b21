// Test support: tensors from literal values and checks of an op's shape, values and gradient,
// for the op tests (tests/test_ops_*.c). Include after <cmocka.h>.
#ifndef NABLA_TEST_EXPECT_H
#define NABLA_TEST_EXPECT_H

#include "nabla.h"

// A tensor of dtype dt and the given shape, filled from v (NULL: zeros), requiring grad or not.
static inline nb_tensor *mk(nb_dtype dt, int ndim, const int64_t *shape, const double *v,
                            bool grad) {
    nb_tensor *t = nb_tensor_create(dt, ndim, shape);
    if (v)
        nb_tensor_copy_in(t, v, NB_F64, nb_tensor_numel(t));
    if (grad)
        nb_tensor_set_requires_grad(t, true);
    return t;
}
// SHAPE(2, 3) expands to the ndim, shape pair: 2, (int64_t[]){2, 3}.
#define SHAPE(...) (sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), ((int64_t[]){__VA_ARGS__})

static inline void expect_shape(const nb_tensor *t, int ndim, const int64_t *shape) {
    assert_non_null(t);
    assert_int_equal(nb_tensor_ndim(t), ndim);
    for (int i = 0; i < ndim; i++)
        assert_int_equal(nb_tensor_shape(t)[i], shape[i]);
}
// Exactly equal (the tests use values whose results are exact).
static inline void expect_values(const nb_tensor *t, const double *v, int64_t n) {
    assert_int_equal(nb_tensor_numel(t), n);
    for (int64_t i = 0; i < n; i++)
        assert_true(nb_tensor_get(t, i) == v[i]);
}
static inline void expect_grad(const nb_tensor *t, const double *v, int64_t n) {
    assert_int_equal(nb_tensor_numel(t), n);
    for (int64_t i = 0; i < n; i++)
        assert_true(nb_tensor_grad_get(t, i) == v[i]);
}

#endif
