// Gradient-check and bad-input cases for src/ops/create.c: cast between float32 and float64 and
// the constants on the tape (full and its composites zeros / ones, arange).
#include <math.h>

#include "support/case_shapes.h"

#define CREATE_BUILD(tag, call)                                                                    \
    static nb_tensor *cr_##tag(nb_graph *g, nb_tensor *const *in, int n) {                         \
        (void)n;                                                                                   \
        nb_tensor *x = in[0];                                                                      \
        return call;                                                                               \
    }
// cast to the input's own dtype (float64 here, float32 in the agreement run); the cross-dtype
// gradient is checked exactly in test_ops_create.c (finite differences cannot cross float32).
CREATE_BUILD(cast_same, nb_cast(g, x, nb_tensor_dtype(x)))
// Constants carry no gradient: the cases multiply x by one.
CREATE_BUILD(mul_full,
             nb_mul(g, x,
                    nb_full(g, nb_tensor_dtype(x), nb_tensor_ndim(x), nb_tensor_shape(x), -2.5)))
CREATE_BUILD(mul_ones,
             nb_mul(g, x, nb_ones(g, nb_tensor_dtype(x), nb_tensor_ndim(x), nb_tensor_shape(x))))
CREATE_BUILD(add_zeros, nb_add(g, x, nb_zeros(g, nb_tensor_dtype(x), 1, (int64_t[]){1})))
CREATE_BUILD(mul_arange,
             nb_mul(g, x,
                    nb_arange(g, nb_tensor_dtype(x), 1,
                              0.9 + (double)nb_tensor_dim(x, nb_tensor_ndim(x) - 1) * 0.5, 0.5)))

const oc_case oc_cases_create[] = {
    {"cast", "(3, 5)", cr_cast_same, 1, {M2(3, 5)}},
    {"cast", "(1)", cr_cast_same, 1, {V1(1)}},
    {"cast", "(2, 3, 4)", cr_cast_same, 1, {T3(2, 3, 4)}},
    {"full", "(3, 5) * full", cr_mul_full, 1, {M2(3, 5)}},
    {"full", "(2, 3, 4) * full", cr_mul_full, 1, {T3(2, 3, 4)}},
    {"full", "() * full", cr_mul_full, 1, {S0}},
    {"arange", "(3, 5) * arange(1, .., 0.5) broadcast", cr_mul_arange, 1, {M2(3, 5)}},
    {"arange", "(1) * arange", cr_mul_arange, 1, {V1(1)}},
    {"ones", "(2, 3, 4) * ones", cr_mul_ones, 1, {T3(2, 3, 4)}},
    {"ones", "(1) * ones", cr_mul_ones, 1, {V1(1)}},
    {"zeros", "(3, 5) + zeros (1) broadcast", cr_add_zeros, 1, {M2(3, 5)}},
    {"zeros", "() + zeros (1)", cr_add_zeros, 1, {S0}},
    {0},
};

#define BAD_BUILD(name, expr)                                                                      \
    static nb_tensor *bad_##name(nb_graph *g, nb_tensor *const *in, int n) {                       \
        (void)in, (void)n;                                                                         \
        return expr;                                                                               \
    }
BAD_BUILD(cast, nb_cast(g, in[0], NB_I32))
BAD_BUILD(full, nb_full(g, NB_F32, 2, (int64_t[]){2, -3}, 1.0))
BAD_BUILD(zeros, nb_zeros(g, NB_I32, 1, (int64_t[]){2}))
BAD_BUILD(ones, nb_ones(g, NB_F64, 2, NULL))
BAD_BUILD(arange, nb_arange(g, NB_F32, 0, 1, 0))

const oc_bad_case oc_bad_create[] = {
    {"cast", "to int32", bad_cast, 1, {M2(2, 3)}, NB_ERR_ARG, {"(2, 3)", "float32 or float64"}},
    {"full", "dim -3", bad_full, 0, {{0}}, NB_ERR_ARG, {"full", "dim 1 is -3"}},
    {"zeros", "int32 dtype", bad_zeros, 0, {{0}}, NB_ERR_ARG, {"full", "dtype"}},
    {"ones", "shape NULL", bad_ones, 0, {{0}}, NB_ERR_ARG, {"full", "ndim"}},
    {"arange", "step 0", bad_arange, 0, {{0}}, NB_ERR_ARG, {"arange", "step 0"}},
    {0},
};
