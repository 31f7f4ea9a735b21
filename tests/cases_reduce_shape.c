// Gradient-check cases for the reductions and shape ops: scalar, 1-element, non-square and
// 3-D shapes; every axis, negative ones included, with keepdim both ways; slices at the start,
// middle and end; concat of 1, 2 and 3 tensors on the first, a middle and the last axis.
// max_axis inputs are uniform random, so ties (where the gradient is undefined) do not occur.
#include "support/opcheck.h"

#include <math.h>

static nb_tensor *sum_all(nb_graph *g, nb_tensor *const *in, int n) {
    (void)n;
    return nb_sum(g, in[0]);
}
static nb_tensor *mean_all(nb_graph *g, nb_tensor *const *in, int n) {
    (void)n;
    return nb_mean(g, in[0]);
}

// One build function per (op, axis, keepdim); tag: a<k> for axis k, m<k> for axis -k.
#define AXIS_BUILD(op, tag, axis, keep)                                                            \
    static nb_tensor *op##_##tag(nb_graph *g, nb_tensor *const *in, int n) {                       \
        (void)n;                                                                                   \
        return nb_##op(g, in[0], axis, keep);                                                      \
    }
#define AXIS_BUILDS(op)                                                                            \
    AXIS_BUILD(op, a0, 0, false)                                                                   \
    AXIS_BUILD(op, a0k, 0, true)                                                                   \
    AXIS_BUILD(op, a1, 1, false)                                                                   \
    AXIS_BUILD(op, a1k, 1, true)                                                                   \
    AXIS_BUILD(op, a2k, 2, true)                                                                   \
    AXIS_BUILD(op, m1, -1, false)                                                                  \
    AXIS_BUILD(op, m2k, -2, true)                                                                  \
    AXIS_BUILD(op, m3, -3, false)
AXIS_BUILDS(sum_axis)
AXIS_BUILDS(mean_axis)
AXIS_BUILDS(max_axis)
AXIS_BUILDS(min_axis)
#define AXES_BUILD(tag, call)                                                                      \
    static nb_tensor *ax_##tag(nb_graph *g, nb_tensor *const *in, int n) {                         \
        (void)n;                                                                                   \
        nb_tensor *x = in[0];                                                                      \
        return call;                                                                               \
    }
AXES_BUILD(sum02k, nb_sum_axes(g, x, 2, (const int[]){0, 2}, true))
AXES_BUILD(sum_m1, nb_sum_axes(g, x, 1, (const int[]){-1}, false))
AXES_BUILD(sum_all, nb_sum_axes(g, x, 0, NULL, false))
AXES_BUILD(mean13, nb_mean_axes(g, x, 2, (const int[]){1, 3}, false))
AXES_BUILD(mean_m1k, nb_mean_axes(g, x, 1, (const int[]){-1}, true))
AXES_BUILD(var_u, nb_var_axes(g, x, 1, (const int[]){-1}, true, false))
AXES_BUILD(var_b02, nb_var_axes(g, x, 2, (const int[]){0, 2}, false, true))
AXES_BUILD(var_all, nb_var_axes(g, x, 0, NULL, true, false))
AXES_BUILD(std_u, nb_std_axes(g, x, 1, (const int[]){1}, true, true))
AXES_BUILD(std_b, nb_std_axes(g, x, 2, (const int[]){-1, 0}, false, false))
AXES_BUILD(lse_m1, nb_logsumexp_axes(g, x, 1, (const int[]){-1}, false))
AXES_BUILD(lse_01k, nb_logsumexp_axes(g, x, 2, (const int[]){0, 1}, true))
AXES_BUILD(sm0, nb_softmax_axis(g, x, 0))
AXES_BUILD(sm1, nb_softmax_axis(g, x, 1))
AXES_BUILD(sm_m1, nb_softmax_axis(g, x, -1))
AXES_BUILD(lsm1, nb_log_softmax_axis(g, x, 1))
AXES_BUILD(lsm0, nb_log_softmax_axis(g, x, 0))
AXES_BUILD(sp_default, nb_softplus_bt(g, x, 1, 20))
AXES_BUILD(sp_beta, nb_softplus_bt(g, x, 2.5, 3))
AXES_BUILD(sp_exact, nb_softplus_bt(g, x, 0.5, INFINITY))

// cast to the input's own dtype (float64 here, float32 in the agreement run); the cross-dtype
// gradient is checked exactly in test_ops_create.c (finite differences cannot cross float32).
AXES_BUILD(cast_same, nb_cast(g, x, nb_tensor_dtype(x)))
// Constants carry no gradient: the cases multiply x by one.
AXES_BUILD(mul_full,
           nb_mul(g, x,
                  nb_full(g, nb_tensor_dtype(x), nb_tensor_ndim(x), nb_tensor_shape(x), -2.5)))
AXES_BUILD(mul_ones,
           nb_mul(g, x, nb_ones(g, nb_tensor_dtype(x), nb_tensor_ndim(x), nb_tensor_shape(x))))
AXES_BUILD(add_zeros, nb_add(g, x, nb_zeros(g, nb_tensor_dtype(x), 1, (int64_t[]){1})))
AXES_BUILD(mul_arange,
           nb_mul(g, x,
                  nb_arange(g, nb_tensor_dtype(x), 1,
                            0.9 + (double)nb_tensor_dim(x, nb_tensor_ndim(x) - 1) * 0.5, 0.5)))

static nb_tensor *max_all(nb_graph *g, nb_tensor *const *in, int n) {
    (void)n;
    return nb_max(g, in[0]);
}
static nb_tensor *min_all(nb_graph *g, nb_tensor *const *in, int n) {
    (void)n;
    return nb_min(g, in[0]);
}
// argmax / argmin have no gradient of their own: the cases gather x at the index they pick,
// which must equal max / min along the axis (gradient to that element).
static nb_tensor *gather_argmax_1(nb_graph *g, nb_tensor *const *in, int n) {
    (void)n;
    return nb_gather(g, in[0], 1, nb_argmax(g, in[0], 1, true));
}
static nb_tensor *gather_argmin_0(nb_graph *g, nb_tensor *const *in, int n) {
    (void)n;
    return nb_gather(g, in[0], 0, nb_argmin(g, in[0], 0, true));
}
static nb_tensor *gather_argmax_m1(nb_graph *g, nb_tensor *const *in, int n) {
    (void)n;
    return nb_gather(g, in[0], -1, nb_argmax(g, in[0], -1, true));
}
static nb_tensor *isel_0(nb_graph *g, nb_tensor *const *in, int n) {
    (void)n;
    return nb_index_select(g, in[0], 0, in[1]);
}
static nb_tensor *isel_1(nb_graph *g, nb_tensor *const *in, int n) {
    (void)n;
    return nb_index_select(g, in[0], 1, in[1]);
}
static nb_tensor *isel_m1(nb_graph *g, nb_tensor *const *in, int n) {
    (void)n;
    return nb_index_select(g, in[0], -1, in[1]);
}
static nb_tensor *gather_1(nb_graph *g, nb_tensor *const *in, int n) {
    (void)n;
    return nb_gather(g, in[0], 1, in[1]);
}
static nb_tensor *gather_0(nb_graph *g, nb_tensor *const *in, int n) {
    (void)n;
    return nb_gather(g, in[0], 0, in[1]);
}
// one_hot has no gradient: the case weights x by the one-hot rows of the labels.
static nb_tensor *one_hot_mul(nb_graph *g, nb_tensor *const *in, int n) {
    (void)n;
    nb_tensor *oh = nb_one_hot_tensor(g, in[1], nb_tensor_dim(in[0], nb_tensor_ndim(in[0]) - 1),
                                      nb_tensor_dtype(in[0]));
    return nb_mul(g, in[0], oh);
}

static nb_tensor *reshape_3x2(nb_graph *g, nb_tensor *const *in, int n) {
    (void)n;
    return nb_reshape(g, in[0], 2, (int64_t[]){3, 2});
}
static nb_tensor *reshape_m1x4(nb_graph *g, nb_tensor *const *in, int n) {
    (void)n;
    return nb_reshape(g, in[0], 2, (int64_t[]){-1, 4});
}
static nb_tensor *reshape_scalar(nb_graph *g, nb_tensor *const *in, int n) {
    (void)n;
    return nb_reshape(g, in[0], 0, NULL);
}
static nb_tensor *reshape_2xm1x3(nb_graph *g, nb_tensor *const *in, int n) {
    (void)n;
    return nb_reshape(g, in[0], 3, (int64_t[]){2, -1, 3});
}

static nb_tensor *transpose(nb_graph *g, nb_tensor *const *in, int n) {
    (void)n;
    return nb_transpose(g, in[0]);
}

static nb_tensor *transpose_02(nb_graph *g, nb_tensor *const *in, int n) {
    (void)n;
    return nb_transpose_axes(g, in[0], 0, 2);
}
static nb_tensor *transpose_m3m1(nb_graph *g, nb_tensor *const *in, int n) {
    (void)n;
    return nb_transpose_axes(g, in[0], -3, -1);
}
static nb_tensor *permute_0213(nb_graph *g, nb_tensor *const *in, int n) {
    (void)n;
    return nb_permute(g, in[0], 4, (const int[]){0, 2, 1, 3});
}
static nb_tensor *permute_3102(nb_graph *g, nb_tensor *const *in, int n) {
    (void)n;
    return nb_permute(g, in[0], 4, (const int[]){3, 1, 0, -2});
}
static nb_tensor *permute_120(nb_graph *g, nb_tensor *const *in, int n) {
    (void)n;
    return nb_permute(g, in[0], 3, (const int[]){1, 2, 0});
}
static nb_tensor *permute_0(nb_graph *g, nb_tensor *const *in, int n) {
    (void)n;
    return nb_permute(g, in[0], 1, (const int[]){0});
}
static nb_tensor *expand_234(nb_graph *g, nb_tensor *const *in, int n) {
    (void)n;
    return nb_expand(g, in[0], 3, (int64_t[]){2, 3, 4});
}
static nb_tensor *expand_m1_5(nb_graph *g, nb_tensor *const *in, int n) {
    (void)n;
    return nb_expand(g, in[0], 3, (int64_t[]){2, -1, 5});
}
static nb_tensor *expand_3(nb_graph *g, nb_tensor *const *in, int n) {
    (void)n;
    return nb_expand(g, in[0], 1, (int64_t[]){3});
}
static nb_tensor *expand_same(nb_graph *g, nb_tensor *const *in, int n) {
    (void)n;
    return nb_expand(g, in[0], 2, (int64_t[]){-1, -1});
}
// The conveniences record reshapes; their cases check them as reshape.
static nb_tensor *squeeze_1(nb_graph *g, nb_tensor *const *in, int n) {
    (void)n;
    return nb_squeeze(g, in[0], 1);
}
static nb_tensor *unsqueeze_m1(nb_graph *g, nb_tensor *const *in, int n) {
    (void)n;
    return nb_unsqueeze(g, in[0], -1);
}
static nb_tensor *flatten_12(nb_graph *g, nb_tensor *const *in, int n) {
    (void)n;
    return nb_flatten(g, in[0], 1, 2);
}

#define SLICE_BUILD(tag, axis, start, stop)                                                        \
    static nb_tensor *slice_##tag(nb_graph *g, nb_tensor *const *in, int n) {                      \
        (void)n;                                                                                   \
        return nb_slice(g, in[0], axis, start, stop);                                              \
    }
SLICE_BUILD(a0_0_2, 0, 0, 2)
SLICE_BUILD(a0_1_4, 0, 1, 4)
SLICE_BUILD(m1_2_3, -1, 2, 3)
SLICE_BUILD(a1_2_5, 1, 2, 5)
SLICE_BUILD(a2_0_4, 2, 0, 4)
SLICE_BUILD(a0_3_4, 0, 3, 4)

#define CONCAT_BUILD(tag, axis)                                                                    \
    static nb_tensor *concat_##tag(nb_graph *g, nb_tensor *const *in, int n) {                     \
        return nb_concat(g, in, n, axis);                                                          \
    }
CONCAT_BUILD(a0, 0)
CONCAT_BUILD(a1, 1)
CONCAT_BUILD(m1, -1)
CONCAT_BUILD(m2, -2)

#define S0                                                                                         \
    { .ndim = 0 }
#define V1(a)                                                                                      \
    {                                                                                              \
        .ndim = 1, .shape = { a }                                                                  \
    }
#define M2(a, b)                                                                                   \
    {                                                                                              \
        .ndim = 2, .shape = { a, b }                                                               \
    }
#define T3(a, b, c)                                                                                \
    {                                                                                              \
        .ndim = 3, .shape = { a, b, c }                                                            \
    }
#define T4(a, b, c, d)                                                                             \
    {                                                                                              \
        .ndim = 4, .shape = { a, b, c, d }                                                         \
    }
#define I1(a, c)                                                                                   \
    { .ndim = 1, .shape = {a}, .role = OC_INDEX, .classes = c }
#define I2(a, b, c)                                                                                \
    { .ndim = 2, .shape = {a, b}, .role = OC_INDEX, .classes = c }
#define I3(a, b, c, k)                                                                             \
    { .ndim = 3, .shape = {a, b, c}, .role = OC_INDEX, .classes = k }
// int64 indices (PyTorch's dtype): the same ops, index tensors of NB_I64.
#define L1(a, c)                                                                                   \
    { .ndim = 1, .shape = {a}, .role = OC_INDEX64, .classes = c }
#define L2(a, b, c)                                                                                \
    { .ndim = 2, .shape = {a, b}, .role = OC_INDEX64, .classes = c }
#define L3(a, b, c, k)                                                                             \
    { .ndim = 3, .shape = {a, b, c}, .role = OC_INDEX64, .classes = k }
#define K2(a, b)                                                                                   \
    { .ndim = 2, .shape = {a, b}, .role = OC_CONST }

// The axis cases every reduction shares (run for sum_axis, mean_axis and max_axis).
#define AXIS_CASES(op)                                                                             \
    {#op, "(1) axis 0", op##_a0, 1, {V1(1)}}, {#op, "(1, 1) axis -1", op##_m1, 1, {M2(1, 1)}},     \
        {#op, "(2, 3) axis 0", op##_a0, 1, {M2(2, 3)}},                                            \
        {#op, "(2, 3) axis 1 keepdim", op##_a1k, 1, {M2(2, 3)}},                                   \
        {#op, "(2, 3) axis -1", op##_m1, 1, {M2(2, 3)}},                                           \
        {#op, "(2, 3) axis -2 keepdim", op##_m2k, 1, {M2(2, 3)}},                                  \
        {#op, "(2, 3, 4) axis 0 keepdim", op##_a0k, 1, {T3(2, 3, 4)}},                             \
        {#op, "(2, 3, 4) axis 1", op##_a1, 1, {T3(2, 3, 4)}},                                      \
        {#op, "(2, 3, 4) axis 2 keepdim", op##_a2k, 1, {T3(2, 3, 4)}},                             \
        {#op, "(2, 3, 4) axis -1", op##_m1, 1, {T3(2, 3, 4)}},                                     \
        {#op, "(2, 3, 4) axis -2 keepdim", op##_m2k, 1, {T3(2, 3, 4)}}, {                          \
#op, "(2, 3, 4) axis -3", op##_m3, 1, {                                                    \
            T3(2, 3, 4)                                                                            \
        }                                                                                          \
    }

static nb_tensor *b_embedding(nb_graph *g, nb_tensor *const *in, int n) {
    (void)n;
    return nb_embedding(g, in[0], in[1]);
}

#define B1(name, expr)                                                                             \
    static nb_tensor *name(nb_graph *g, nb_tensor *const *in, int n) {                             \
        (void)n;                                                                                   \
        return (expr);                                                                             \
    }
// pad (the adjoint of slice), expand and sum_to (the two halves of broadcasting).
B1(pad_a1, nb_pad(g, in[0], 1, 1, 2))
B1(pad_a0, nb_pad(g, in[0], 0, 2, 0))
B1(pad_m2, nb_pad(g, in[0], -2, 0, 3))
B1(pad_none, nb_pad(g, in[0], 0, 0, 0))
B1(expand_row, nb_expand(g, in[0], 2, (int64_t[]){2, 3}))
B1(expand_col, nb_expand(g, in[0], 2, (int64_t[]){2, 4}))
B1(expand_scalar, nb_expand(g, in[0], 2, (int64_t[]){2, 2}))
B1(expand_mid, nb_expand(g, in[0], 3, (int64_t[]){2, 4, 3}))
B1(expand_same2, nb_expand(g, in[0], 2, (int64_t[]){3, 2}))
B1(sum_to_row, nb_sum_to(g, in[0], 1, (int64_t[]){3}))
B1(sum_to_col, nb_sum_to(g, in[0], 2, (int64_t[]){4, 1}))
B1(sum_to_scalar, nb_sum_to(g, in[0], 0, NULL))
B1(sum_to_mid, nb_sum_to(g, in[0], 2, (int64_t[]){3, 1}))
B1(sum_to_one, nb_sum_to(g, in[0], 1, (int64_t[]){1}))
B1(bad_pad, nb_pad(g, in[0], 1, -1, 2))
B1(bad_sum_to, nb_sum_to(g, in[0], 1, (int64_t[]){4}))

const oc_case oc_cases_reduce_shape[] = {
    {"pad", "(2, 3) axis 1, 1 before 2 after", pad_a1, 1, {M2(2, 3)}},
    {"pad", "(1) axis 0, 2 before", pad_a0, 1, {V1(1)}},
    {"pad", "(2, 3, 4) axis -2, 3 after", pad_m2, 1, {T3(2, 3, 4)}},
    {"pad", "(3, 2) no padding", pad_none, 1, {M2(3, 2)}},
    {"expand", "(3) -> (2, 3)", expand_row, 1, {V1(3)}},
    {"expand", "(2, 1) -> (2, 4)", expand_col, 1, {M2(2, 1)}},
    {"expand", "() -> (2, 2)", expand_scalar, 1, {S0}},
    {"expand", "(2, 1, 3) -> (2, 4, 3)", expand_mid, 1, {T3(2, 1, 3)}},
    {"expand", "(3, 2) -> (3, 2)", expand_same2, 1, {M2(3, 2)}},
    {"sum_to", "(2, 3) -> (3)", sum_to_row, 1, {M2(2, 3)}},
    {"sum_to", "(4, 3) -> (4, 1)", sum_to_col, 1, {M2(4, 3)}},
    {"sum_to", "(2, 3) -> ()", sum_to_scalar, 1, {M2(2, 3)}},
    {"sum_to", "(2, 3, 4) -> (3, 1)", sum_to_mid, 1, {T3(2, 3, 4)}},
    {"sum_to", "(1) -> (1)", sum_to_one, 1, {V1(1)}},
    {"sum", "() scalar", sum_all, 1, {S0}},
    {"sum", "(1)", sum_all, 1, {V1(1)}},
    {"sum", "(2, 3)", sum_all, 1, {M2(2, 3)}},
    {"sum", "(2, 3, 4)", sum_all, 1, {T3(2, 3, 4)}},
    {"mean", "() scalar", mean_all, 1, {S0}},
    {"mean", "(1)", mean_all, 1, {V1(1)}},
    {"mean", "(3, 5)", mean_all, 1, {M2(3, 5)}},
    {"mean", "(2, 3, 4)", mean_all, 1, {T3(2, 3, 4)}},
    AXIS_CASES(sum_axis),
    AXIS_CASES(mean_axis),
    AXIS_CASES(max_axis),
    AXIS_CASES(min_axis),
    {"sum_axes", "(2, 3, 4) axes {0, 2} keepdim", ax_sum02k, 1, {T3(2, 3, 4)}},
    {"sum_axes", "(1) axis -1", ax_sum_m1, 1, {V1(1)}},
    {"sum_axes", "(3, 5) all axes", ax_sum_all, 1, {M2(3, 5)}},
    {"mean_axes", "(2, 3, 4, 5) axes {1, 3}", ax_mean13, 1, {T4(2, 3, 4, 5)}},
    {"mean_axes", "(3, 5) axis -1 keepdim", ax_mean_m1k, 1, {M2(3, 5)}},
    {"mean_axes", "(1) axis -1 keepdim", ax_mean_m1k, 1, {V1(1)}},
    {"var_axes", "(3, 5) axis -1 unbiased", ax_var_u, 1, {M2(3, 5)}},
    {"var_axes", "(2, 3, 4) axes {0, 2} biased keepdim", ax_var_b02, 1, {T3(2, 3, 4)}},
    {"var_axes", "(2, 3, 4, 5) all unbiased", ax_var_all, 1, {T4(2, 3, 4, 5)}},
    {"var_axes", "(1, 1, 1) axes {0, 2} biased: var 0", ax_var_b02, 1, {T3(1, 1, 1)}},
    {"std_axes", "(2, 3, 4) axis 1 unbiased keepdim", ax_std_u, 1, {T3(2, 3, 4)}},
    {"std_axes", "(4, 3) axes {-1, 0} biased", ax_std_b, 1, {M2(4, 3)}},
    {"logsumexp_axes", "(3, 5) axis -1", ax_lse_m1, 1, {M2(3, 5)}},
    {"logsumexp_axes", "(1) axis -1", ax_lse_m1, 1, {V1(1)}},
    {"logsumexp_axes", "(2, 3, 4) axes {0, 1} keepdim", ax_lse_01k, 1, {T3(2, 3, 4)}},
    {"softmax_axis", "(2, 3, 4) axis 1", ax_sm1, 1, {T3(2, 3, 4)}},
    {"softmax_axis", "(3, 5) axis 0", ax_sm0, 1, {M2(3, 5)}},
    {"softmax_axis", "(1) axis -1", ax_sm_m1, 1, {V1(1)}},
    {"softmax_axis", "(2, 3, 4, 5) axis -1", ax_sm_m1, 1, {T4(2, 3, 4, 5)}},
    {"log_softmax_axis", "(2, 3, 4) axis 1", ax_lsm1, 1, {T3(2, 3, 4)}},
    {"log_softmax_axis", "(4, 3) axis 0", ax_lsm0, 1, {M2(4, 3)}},
    {"log_softmax_axis", "(1, 1) axis 0", ax_lsm0, 1, {M2(1, 1)}},
    {"softplus_bt", "(3, 5) beta 1 threshold 20", ax_sp_default, 1, {M2(3, 5)}},
    {"softplus_bt", "(1) beta 1 threshold 20", ax_sp_default, 1, {V1(1)}},
    {"softplus_bt", "(2, 3, 4) beta 2.5 threshold 3 (both sides)", ax_sp_beta, 1, {T3(2, 3, 4)}},
    {"softplus_bt", "(3, 5) beta 0.5 exact", ax_sp_exact, 1, {M2(3, 5)}},
    {"cast", "(3, 5)", ax_cast_same, 1, {M2(3, 5)}},
    {"cast", "(1)", ax_cast_same, 1, {V1(1)}},
    {"cast", "(2, 3, 4)", ax_cast_same, 1, {T3(2, 3, 4)}},
    {"full", "(3, 5) * full", ax_mul_full, 1, {M2(3, 5)}},
    {"full", "(2, 3, 4) * full", ax_mul_full, 1, {T3(2, 3, 4)}},
    {"full", "() * full", ax_mul_full, 1, {S0}},
    {"arange", "(3, 5) * arange(1, .., 0.5) broadcast", ax_mul_arange, 1, {M2(3, 5)}},
    {"arange", "(1) * arange", ax_mul_arange, 1, {V1(1)}},
    {"ones", "(2, 3, 4) * ones", ax_mul_ones, 1, {T3(2, 3, 4)}},
    {"ones", "(1) * ones", ax_mul_ones, 1, {V1(1)}},
    {"zeros", "(3, 5) + zeros (1) broadcast", ax_add_zeros, 1, {M2(3, 5)}},
    {"zeros", "() + zeros (1)", ax_add_zeros, 1, {S0}},
    {"max", "(1)", max_all, 1, {V1(1)}},
    {"max", "(3, 5)", max_all, 1, {M2(3, 5)}},
    {"max", "(2, 3, 4)", max_all, 1, {T3(2, 3, 4)}},
    {"min", "(1)", min_all, 1, {V1(1)}},
    {"min", "(2, 3, 4)", min_all, 1, {T3(2, 3, 4)}},
    {"argmax", "(3, 5) axis 1, gathered", gather_argmax_1, 1, {M2(3, 5)}},
    {"argmax", "(2, 3, 4) axis -1, gathered", gather_argmax_m1, 1, {T3(2, 3, 4)}},
    {"argmax", "(1, 1) axis 1, gathered", gather_argmax_1, 1, {M2(1, 1)}},
    {"argmin", "(4, 3) axis 0, gathered", gather_argmin_0, 1, {M2(4, 3)}},
    {"argmin", "(2, 3, 4) axis 0, gathered", gather_argmin_0, 1, {T3(2, 3, 4)}},
    // Index tensors of 6 from 3 or 4 rows: repeats are all but certain (scatter-add sums them).
    {"index_select", "(4, 3) axis 0, idx (6)", isel_0, 2, {M2(4, 3), I1(6, 4)}},
    {"embedding", "weight (5, 3), idx (4)", b_embedding, 2, {M2(5, 3), I1(4, 5)}},
    {"embedding", "weight (1, 1), idx (1)", b_embedding, 2, {M2(1, 1), I1(1, 1)}},
    {"embedding", "weight (6, 2), idx (2, 3)", b_embedding, 2, {M2(6, 2), I2(2, 3, 6)}},
    {"index_select", "(1) axis 0, idx (1)", isel_0, 2, {V1(1), I1(1, 1)}},
    {"index_select", "(2, 3, 4) axis 1, idx (2, 3)", isel_1, 2, {T3(2, 3, 4), I2(2, 3, 3)}},
    {"index_select", "(2, 3, 4) axis -1, idx (5)", isel_m1, 2, {T3(2, 3, 4), I1(5, 4)}},
    {"gather", "(3, 4) axis 1, idx (3, 5)", gather_1, 2, {M2(3, 4), I2(3, 5, 4)}},
    {"gather", "(3, 4) axis 0, idx (6, 2)", gather_0, 2, {M2(3, 4), I2(6, 2, 3)}},
    {"gather", "(1, 1) axis 1, idx (1, 1)", gather_1, 2, {M2(1, 1), I2(1, 1, 1)}},
    {"gather", "(2, 3, 4) axis 1, idx (2, 5, 3)", gather_1, 2, {T3(2, 3, 4), I3(2, 5, 3, 3)}},
    {"one_hot", "x (5, 4) * one_hot(labels (5))", one_hot_mul, 2, {M2(5, 4), I1(5, 4)}},
    {"one_hot", "x (2, 3, 4) * one_hot(labels (2, 3))", one_hot_mul, 2, {T3(2, 3, 4), I2(2, 3, 4)}},
    {"index_select", "int64 idx: (1) axis 0, idx (1)", isel_0, 2, {V1(1), L1(1, 1)}},
    {"index_select",
     "int64 idx: (2, 3, 4) axis 1, idx (2, 3)",
     isel_1,
     2,
     {T3(2, 3, 4), L2(2, 3, 3)}},
    {"embedding", "int64 idx: weight (6, 2), idx (2, 3)", b_embedding, 2, {M2(6, 2), L2(2, 3, 6)}},
    {"gather", "int64 idx: (3, 4) axis 0, idx (6, 2)", gather_0, 2, {M2(3, 4), L2(6, 2, 3)}},
    {"gather",
     "int64 idx: (2, 3, 4) axis 1, idx (2, 5, 3)",
     gather_1,
     2,
     {T3(2, 3, 4), L3(2, 5, 3, 3)}},
    {"one_hot",
     "int64 labels: x (2, 3, 4) * one_hot(labels (2, 3))",
     one_hot_mul,
     2,
     {T3(2, 3, 4), L2(2, 3, 4)}},
    {"reshape", "(2, 3) -> (3, 2)", reshape_3x2, 1, {M2(2, 3)}},
    {"reshape", "(2, 3, 4) -> (-1, 4)", reshape_m1x4, 1, {T3(2, 3, 4)}},
    {"reshape", "(1) -> ()", reshape_scalar, 1, {V1(1)}},
    {"reshape", "(12) -> (2, -1, 3)", reshape_2xm1x3, 1, {V1(12)}},
    {"transpose", "(2, 3)", transpose, 1, {M2(2, 3)}},
    {"transpose", "(1, 1)", transpose, 1, {M2(1, 1)}},
    {"transpose", "(4, 4)", transpose, 1, {M2(4, 4)}},
    {"transpose", "(1, 5)", transpose, 1, {M2(1, 5)}},
    {"transpose", "(2, 3, 4) last two", transpose, 1, {T3(2, 3, 4)}},
    {"transpose_axes", "(2, 3, 4) axes 0, 2", transpose_02, 1, {T3(2, 3, 4)}},
    {"transpose_axes", "(2, 3, 1, 4) axes -3, -1", transpose_m3m1, 1, {T4(2, 3, 1, 4)}},
    // x's inner axis moves and both axes are >= 8: the tiled path, with a partial tile.
    {"transpose", "(9, 40) tiled", transpose, 1, {M2(9, 40)}},
    {"transpose", "(2, 35, 12) tiled, batch", transpose, 1, {T3(2, 35, 12)}},
    {"permute", "(2, 3, 4, 5) (0, 2, 1, 3)", permute_0213, 1, {T4(2, 3, 4, 5)}},
    {"permute", "(2, 3, 4, 5) (3, 1, 0, -2)", permute_3102, 1, {T4(2, 3, 4, 5)}},
    {"permute", "(2, 1, 3) (1, 2, 0)", permute_120, 1, {T3(2, 1, 3)}},
    {"permute", "(1) (0)", permute_0, 1, {V1(1)}},
    {"permute", "(10, 9, 8) (1, 2, 0) tiled", permute_120, 1, {T3(10, 9, 8)}},
    {"expand", "(3, 1) -> (2, 3, 4)", expand_234, 1, {M2(3, 1)}},
    {"expand", "(4) -> (2, 3, 4)", expand_234, 1, {V1(4)}},
    {"expand", "(1, 1, 1) -> (2, 3, 4)", expand_234, 1, {T3(1, 1, 1)}},
    {"expand", "(2, 1, 1) -> (2, -1, 5)", expand_m1_5, 1, {T3(2, 1, 1)}},
    {"expand", "(1) -> (3)", expand_3, 1, {V1(1)}},
    {"expand", "(2, 3) -> (-1, -1)", expand_same, 1, {M2(2, 3)}},
    {"squeeze", "(2, 1, 3) axis 1", squeeze_1, 1, {T3(2, 1, 3)}},
    {"unsqueeze", "(2, 3) axis -1", unsqueeze_m1, 1, {M2(2, 3)}},
    {"flatten", "(2, 3, 4, 5) axes 1..2", flatten_12, 1, {T4(2, 3, 4, 5)}},
    {"slice", "(5, 3) axis 0 [0, 2) start", slice_a0_0_2, 1, {M2(5, 3)}},
    {"slice", "(5, 3) axis 0 [1, 4) middle", slice_a0_1_4, 1, {M2(5, 3)}},
    {"slice", "(5, 3) axis -1 [2, 3) end", slice_m1_2_3, 1, {M2(5, 3)}},
    {"slice", "(2, 6, 3) axis 1 [2, 5) middle", slice_a1_2_5, 1, {T3(2, 6, 3)}},
    {"slice", "(2, 3, 4) axis 2 [0, 4) whole", slice_a2_0_4, 1, {T3(2, 3, 4)}},
    {"slice", "(4) axis 0 [3, 4) last element", slice_a0_3_4, 1, {V1(4)}},
    {"concat", "one (2, 3) axis 0", concat_a0, 1, {M2(2, 3)}},
    {"concat", "(2, 3) + (4, 3) axis 0", concat_a0, 2, {M2(2, 3), M2(4, 3)}},
    {"concat", "(1, 2) + (3, 2) + (2, 2) axis 0", concat_a0, 3, {M2(1, 2), M2(3, 2), M2(2, 2)}},
    {"concat", "(2, 1, 3) + (2, 4, 3) axis 1", concat_a1, 2, {T3(2, 1, 3), T3(2, 4, 3)}},
    {"concat", "3 x (2, k, 3) axis -2", concat_m2, 3, {T3(2, 2, 3), T3(2, 1, 3), T3(2, 3, 3)}},
    {"concat",
     "(2, 3) + const (2, 1) + (2, 2) axis -1",
     concat_m1,
     3,
     {M2(2, 3), K2(2, 1), M2(2, 2)}},
    {"concat", "one (1) axis 0", concat_a0, 1, {V1(1)}},
    {0},
};

// ---- bad input ---------------------------------------------------------------------------------

static nb_tensor *bad_sum_axis(nb_graph *g, nb_tensor *const *in, int n) {
    (void)n;
    return nb_sum_axis(g, in[0], 5, false);
}
static nb_tensor *bad_mean_axis(nb_graph *g, nb_tensor *const *in, int n) {
    (void)n;
    return nb_mean_axis(g, in[0], -3, true);
}
static nb_tensor *bad_max_axis(nb_graph *g, nb_tensor *const *in, int n) {
    (void)n;
    return nb_max_axis(g, in[0], 1, false);
}
static nb_tensor *bad_slice(nb_graph *g, nb_tensor *const *in, int n) {
    (void)n;
    return nb_slice(g, in[0], 0, 0, 5);
}
static nb_tensor *bad_concat(nb_graph *g, nb_tensor *const *in, int n) {
    return nb_concat(g, in, n, 0);
}
static nb_tensor *bad_squeeze(nb_graph *g, nb_tensor *const *in, int n) {
    (void)n;
    return nb_squeeze(g, in[0], 5);
}
static nb_tensor *bad_unsqueeze(nb_graph *g, nb_tensor *const *in, int n) {
    (void)n;
    return nb_unsqueeze(g, in[0], 4);
}

#define BAD_BUILD(name, expr)                                                                      \
    static nb_tensor *bad_##name(nb_graph *g, nb_tensor *const *in, int n) {                       \
        (void)in, (void)n;                                                                         \
        return expr;                                                                               \
    }
BAD_BUILD(min_axis, nb_min_axis(g, in[0], 5, false))
BAD_BUILD(sum_axes, nb_sum_axes(g, in[0], 1, (const int[]){5}, false))
BAD_BUILD(mean_axes, nb_mean_axes(g, in[0], 2, (const int[]){0, 7}, true))
BAD_BUILD(var_axes, nb_var_axes(g, in[0], 1, (const int[]){-4}, true, false))
BAD_BUILD(std_axes, nb_std_axes(g, in[0], 1, (const int[]){3}, true, false))
BAD_BUILD(logsumexp_axes, nb_logsumexp_axes(g, in[0], 1, (const int[]){6}, false))
BAD_BUILD(max, nb_max(g, in[0]))
BAD_BUILD(min, nb_min(g, in[0]))
BAD_BUILD(argmax, nb_argmax(g, in[0], 5, false))
BAD_BUILD(argmin, nb_argmin(g, in[0], -5, false))
BAD_BUILD(index_select, nb_index_select(g, in[0], 0, in[1]))
BAD_BUILD(gather, nb_gather(g, in[0], 0, in[1]))
BAD_BUILD(one_hot, nb_one_hot_tensor(g, in[0], 3, NB_F64))

BAD_BUILD(softplus_bt, nb_softplus_bt(g, in[0], -1, 20))
BAD_BUILD(cast, nb_cast(g, in[0], NB_I32))
BAD_BUILD(full, nb_full(g, NB_F32, 2, (int64_t[]){2, -3}, 1.0))
BAD_BUILD(zeros, nb_zeros(g, NB_I32, 1, (int64_t[]){2}))
BAD_BUILD(ones, nb_ones(g, NB_F64, 2, NULL))
BAD_BUILD(arange, nb_arange(g, NB_F32, 0, 1, 0))
BAD_BUILD(softmax_axis, nb_softmax_axis(g, in[0], 5))
BAD_BUILD(log_softmax_axis, nb_log_softmax_axis(g, in[0], -5))

#define I32(a, b)                                                                                  \
    { .ndim = 2, .shape = {a, b}, .role = OC_INDEX, .classes = 3 }
const oc_bad_case oc_bad_reduce_shape[] = {
    {"sum", "int32 x", sum_all, 1, {I32(2, 3)}, NB_ERR_DTYPE, {"int32"}},
    {"mean", "empty x", mean_all, 1, {V1(0)}, NB_ERR_SHAPE, {"(0)", "empty"}},
    {"sum_axis", "axis 5 of 2 dims", bad_sum_axis, 1, {M2(2, 3)}, NB_ERR_ARG, {"axis 5", "(2, 3)"}},
    {"mean_axis",
     "axis -3 of 2 dims",
     bad_mean_axis,
     1,
     {M2(2, 3)},
     NB_ERR_ARG,
     {"axis -3", "(2, 3)"}},
    {"max_axis", "empty axis", bad_max_axis, 1, {M2(2, 0)}, NB_ERR_SHAPE, {"(2, 0)", "empty"}},
    {"reshape",
     "6 elements as (3, 2) from (2, 2)",
     reshape_3x2,
     1,
     {M2(2, 2)},
     NB_ERR_SHAPE,
     {"(2, 2)", "(3, 2)"}},
    {"transpose", "1-D x", transpose, 1, {V1(3)}, NB_ERR_ARG, {"(3)"}},
    {"transpose_axes", "axis 2 of 2 dims", transpose_02, 1, {M2(2, 3)}, NB_ERR_ARG, {"(2, 3)"}},
    {"permute", "4 axes for 2 dims", permute_0213, 1, {M2(2, 3)}, NB_ERR_ARG, {"(2, 3)"}},
    {"expand", "(3, 2) -> (2, 3, 4)", expand_234, 1, {M2(3, 2)}, NB_ERR_SHAPE, {"(3, 2)"}},
    {"slice", "[0, 5) of 2", bad_slice, 1, {M2(2, 3)}, NB_ERR_ARG, {"(2, 3)"}},
    {"pad", "before -1", bad_pad, 1, {M2(2, 3)}, NB_ERR_ARG, {"before -1", "(2, 3)"}},
    {"sum_to", "(2, 3) to (4)", bad_sum_to, 1, {M2(2, 3)}, NB_ERR_SHAPE, {"(2, 3)", "(4)"}},
    {"concat",
     "(2, 3) and (2, 4) on axis 0",
     bad_concat,
     2,
     {M2(2, 3), M2(2, 4)},
     NB_ERR_SHAPE,
     {"(2, 3)", "(2, 4)"}},
    {"squeeze", "axis 5 of 2 dims", bad_squeeze, 1, {M2(2, 3)}, NB_ERR_ARG, {"axis 5", "(2, 3)"}},
    {"unsqueeze",
     "axis 4 of 2 dims",
     bad_unsqueeze,
     1,
     {M2(2, 3)},
     NB_ERR_ARG,
     {"axis 4", "(2, 3)"}},
    {"flatten", "axes 1..2 of 2 dims", flatten_12, 1, {M2(2, 3)}, NB_ERR_ARG, {"(2, 3)"}},
    {"min_axis", "axis 5 of 2 dims", bad_min_axis, 1, {M2(2, 3)}, NB_ERR_ARG, {"(2, 3)"}},
    {"sum_axes", "axis 5 of 2 dims", bad_sum_axes, 1, {M2(2, 3)}, NB_ERR_ARG, {"(2, 3)"}},
    {"mean_axes", "axis 7 of 2 dims", bad_mean_axes, 1, {M2(2, 3)}, NB_ERR_ARG, {"(2, 3)"}},
    {"var_axes", "axis -4 of 2 dims", bad_var_axes, 1, {M2(2, 3)}, NB_ERR_ARG, {"(2, 3)"}},
    {"std_axes", "axis 3 of 2 dims", bad_std_axes, 1, {M2(2, 3)}, NB_ERR_ARG, {"(2, 3)"}},
    {"logsumexp_axes",
     "axis 6 of 2 dims",
     bad_logsumexp_axes,
     1,
     {M2(2, 3)},
     NB_ERR_ARG,
     {"(2, 3)"}},
    {"max", "empty x", bad_max, 1, {V1(0)}, NB_ERR_SHAPE, {"(0)"}},
    {"min", "empty x", bad_min, 1, {V1(0)}, NB_ERR_SHAPE, {"(0)"}},
    {"argmax", "axis 5 of 2 dims", bad_argmax, 1, {M2(2, 3)}, NB_ERR_ARG, {"(2, 3)"}},
    {"argmin", "axis -5 of 2 dims", bad_argmin, 1, {M2(2, 3)}, NB_ERR_ARG, {"(2, 3)"}},
    {"index_select",
     "float indices",
     bad_index_select,
     2,
     {M2(4, 3), V1(2)},
     NB_ERR_DTYPE,
     {"int32"}},
    {"gather", "float indices", bad_gather, 2, {M2(4, 3), M2(2, 3)}, NB_ERR_DTYPE, {"int32"}},
    {"one_hot", "float indices", bad_one_hot, 1, {V1(4)}, NB_ERR_DTYPE, {"int32"}},
    {"embedding", "float indices", b_embedding, 2, {M2(4, 3), V1(2)}, NB_ERR_DTYPE, {"int32"}},
    {"softplus_bt", "beta -1", bad_softplus_bt, 1, {M2(2, 3)}, NB_ERR_ARG, {"beta"}},
    {"cast", "to int32", bad_cast, 1, {M2(2, 3)}, NB_ERR_ARG, {"(2, 3)", "float32 or float64"}},
    {"full", "dim -3", bad_full, 0, {{0}}, NB_ERR_ARG, {"full", "dim 1 is -3"}},
    {"zeros", "int32 dtype", bad_zeros, 0, {{0}}, NB_ERR_ARG, {"full", "dtype"}},
    {"ones", "shape NULL", bad_ones, 0, {{0}}, NB_ERR_ARG, {"full", "ndim"}},
    {"arange", "step 0", bad_arange, 0, {{0}}, NB_ERR_ARG, {"arange", "step 0"}},
    {"softmax_axis", "axis 5 of 2 dims", bad_softmax_axis, 1, {M2(2, 3)}, NB_ERR_ARG, {"(2, 3)"}},
    {"log_softmax_axis",
     "axis -5 of 2 dims",
     bad_log_softmax_axis,
     1,
     {M2(2, 3)},
     NB_ERR_ARG,
     {"(2, 3)"}},
    {0},
};
