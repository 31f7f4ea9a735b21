// Test support: tensors from literal values or smooth patterns, and checks of a shape, values,
// gradients and error messages, for the op and layer tests (tests/test_ops_*.c, test_nn_*.c).
// Include after <cmocka.h>.
#ifndef NABLA_TEST_EXPECT_H
#define NABLA_TEST_EXPECT_H

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "nabla.h"

// A tensor of dtype dt and the given shape, filled from v (NULL: zeros), requiring grad or not.
static inline nb_tensor *mk(nb_dtype dt, int ndim, const int64_t *shape, const double *v,
                            bool grad) {
    nb_tensor *t = nb_tensor_create(dt, ndim, shape);
    assert_non_null(t);
    if (v)
        assert_int_equal(nb_tensor_copy_in(t, v, NB_F64, nb_tensor_numel(t)), NB_OK);
    if (grad)
        assert_int_equal(nb_tensor_set_requires_grad(t, true), NB_OK);
    return t;
}
// The same, r x c.
static inline nb_tensor *mk2(nb_dtype dt, int64_t r, int64_t c, const double *v, bool grad) {
    return mk(dt, 2, (int64_t[]){r, c}, v, grad);
}
// offset + scale f(a i) at flat index i: smooth inputs, the same as the reference scripts made
// for the values compared against PyTorch.
static inline nb_tensor *pattern(nb_dtype dt, int ndim, const int64_t *shape, double (*f)(double),
                                 double a, double scale, double offset, bool grad) {
    nb_tensor *t = nb_tensor_create(dt, ndim, shape);
    assert_non_null(t);
    for (int64_t i = 0; i < nb_tensor_numel(t); i++)
        nb_tensor_set(t, i, offset + scale * f(a * (double)i));
    nb_tensor_set_requires_grad(t, grad);
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

// t's values (grad: its gradient) within tol of ref[0..n), printing the first that is not.
static inline bool all_near(const nb_tensor *t, bool grad, const double *ref, int64_t n,
                            double tol) {
    bool ok = t && nb_tensor_numel(t) == n;
    for (int64_t i = 0; ok && i < n; i++) {
        double v = grad ? nb_tensor_grad_get(t, i) : nb_tensor_get(t, i);
        if (!(fabs(v - ref[i]) <= tol)) { // NaN fails too
            fprintf(stderr, "  element %lld: %.12g vs reference %.12g\n", (long long)i, v, ref[i]);
            ok = false;
        }
    }
    return ok;
}
// Every value (grad: gradient) of t is finite.
static inline bool all_finite(const nb_tensor *t, bool grad) {
    for (int64_t i = 0; i < nb_tensor_numel(t); i++)
        if (!isfinite(grad ? nb_tensor_grad_get(t, i) : nb_tensor_get(t, i)))
            return false;
    return true;
}
// |a - b| within an f32-sized tolerance relative to the magnitude.
static inline void near(double a, double b, double tol) {
    if (!(fabs(a - b) <= tol * fmax(1.0, fabs(b))))
        fail_msg("got %.12g, expected %.12g", a, b);
}

// msg contains s (an error message naming what it must).
#define assert_has(msg, s)                                                                         \
    do {                                                                                           \
        if (!strstr((msg), (s))) {                                                                 \
            print_error("message \"%s\" lacks \"%s\"\n", (msg), (s));                              \
            fail();                                                                                \
        }                                                                                          \
    } while (0)
// sin(freq i) + 0.1 (i mod 5) at flat index i: inputs for the layer tests.
static inline nb_tensor *filled(nb_dtype dt, int ndim, const int64_t *shape, double freq) {
    nb_tensor *t = nb_tensor_create(dt, ndim, shape);
    assert_non_null(t);
    for (int64_t i = 0; i < nb_tensor_numel(t); i++)
        nb_tensor_set(t, i, sin(freq * (double)i) + 0.1 * (double)(i % 5));
    return t;
}
// a and b have the same shape and the same values, bit for bit.
static inline void assert_same(const nb_tensor *a, const nb_tensor *b) {
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal(nb_tensor_ndim(a), nb_tensor_ndim(b));
    for (int d = 0; d < nb_tensor_ndim(a); d++)
        assert_int_equal(nb_tensor_dim(a, d), nb_tensor_dim(b, d));
    for (int64_t i = 0; i < nb_tensor_numel(a); i++)
        assert_true(nb_tensor_get(a, i) == nb_tensor_get(b, i));
}

#endif
