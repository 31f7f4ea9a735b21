// Gradient-check and bad-input cases for src/ops/reduce.c: sum, mean, max and min over all
// elements and sum / mean / max / min along one axis: scalar, 1-element, non-square and 3-D
// shapes; every axis, negative ones included, with keepdim both ways. max / min inputs are
// uniform random, so ties (where the gradient is undefined) do not occur.
#include "support/case_shapes.h"

static nb_tensor *sum_all(nb_graph *g, nb_tensor *const *in, int n) {
    (void)n;
    return nb_sum(g, in[0]);
}
static nb_tensor *mean_all(nb_graph *g, nb_tensor *const *in, int n) {
    (void)n;
    return nb_mean(g, in[0]);
}
static nb_tensor *max_all(nb_graph *g, nb_tensor *const *in, int n) {
    (void)n;
    return nb_max(g, in[0]);
}
static nb_tensor *min_all(nb_graph *g, nb_tensor *const *in, int n) {
    (void)n;
    return nb_min(g, in[0]);
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

// The axis cases every reduction shares (run for sum_axis, mean_axis, max_axis and min_axis).
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

const oc_case oc_cases_reduce[] = {
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
    {"max", "(1)", max_all, 1, {V1(1)}},
    {"max", "(3, 5)", max_all, 1, {M2(3, 5)}},
    {"max", "(2, 3, 4)", max_all, 1, {T3(2, 3, 4)}},
    {"min", "(1)", min_all, 1, {V1(1)}},
    {"min", "(2, 3, 4)", min_all, 1, {T3(2, 3, 4)}},
    {0},
};

// ---- bad input ---------------------------------------------------------------------------------

#define BAD_BUILD(name, expr)                                                                      \
    static nb_tensor *bad_##name(nb_graph *g, nb_tensor *const *in, int n) {                       \
        (void)n;                                                                                   \
        return expr;                                                                               \
    }
BAD_BUILD(sum_axis, nb_sum_axis(g, in[0], 5, false))
BAD_BUILD(mean_axis, nb_mean_axis(g, in[0], -3, true))
BAD_BUILD(max_axis, nb_max_axis(g, in[0], 1, false))
BAD_BUILD(min_axis, nb_min_axis(g, in[0], 5, false))
BAD_BUILD(max, nb_max(g, in[0]))
BAD_BUILD(min, nb_min(g, in[0]))

#define I32(a, b)                                                                                  \
    { .ndim = 2, .shape = {a, b}, .role = OC_INDEX, .classes = 3 }
const oc_bad_case oc_bad_reduce[] = {
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
    {"min_axis", "axis 5 of 2 dims", bad_min_axis, 1, {M2(2, 3)}, NB_ERR_ARG, {"(2, 3)"}},
    {"max", "empty x", bad_max, 1, {V1(0)}, NB_ERR_SHAPE, {"(0)"}},
    {"min", "empty x", bad_min, 1, {V1(0)}, NB_ERR_SHAPE, {"(0)"}},
    {0},
};
