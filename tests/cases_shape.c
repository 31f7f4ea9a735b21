// Gradient-check and bad-input cases for src/ops/shape.c: reshape (with -1, to and from a
// scalar) and its squeeze / unsqueeze / flatten forms; slices at the start, middle and end;
// concat of 1, 2 and 3 tensors on the first, a middle and the last axis; pad (slice's adjoint).
#include "support/case_shapes.h"

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
SLICE_BUILD(a0_0_1, 0, 0, 1)

#define CONCAT_BUILD(tag, axis)                                                                    \
    static nb_tensor *concat_##tag(nb_graph *g, nb_tensor *const *in, int n) {                     \
        return nb_concat(g, in, n, axis);                                                          \
    }
CONCAT_BUILD(a0, 0)
CONCAT_BUILD(a1, 1)
CONCAT_BUILD(m1, -1)
CONCAT_BUILD(m2, -2)

#define B1(name, expr)                                                                             \
    static nb_tensor *name(nb_graph *g, nb_tensor *const *in, int n) {                             \
        (void)n;                                                                                   \
        return (expr);                                                                             \
    }
B1(pad_a1, nb_pad(g, in[0], 1, 1, 2))
B1(pad_a0, nb_pad(g, in[0], 0, 2, 0))
B1(pad_m2, nb_pad(g, in[0], -2, 0, 3))
B1(pad_none, nb_pad(g, in[0], 0, 0, 0))

const oc_case oc_cases_shape[] = {
    {"pad", "(2, 3) axis 1, 1 before 2 after", pad_a1, 1, {M2(2, 3)}},
    {"pad", "(1) axis 0, 2 before", pad_a0, 1, {V1(1)}},
    {"pad", "(2, 3, 4) axis -2, 3 after", pad_m2, 1, {T3(2, 3, 4)}},
    {"pad", "(3, 2) no padding", pad_none, 1, {M2(3, 2)}},
    {"reshape", "(2, 3) -> (3, 2)", reshape_3x2, 1, {M2(2, 3)}},
    {"reshape", "(2, 3, 4) -> (-1, 4)", reshape_m1x4, 1, {T3(2, 3, 4)}},
    {"reshape", "(1) -> ()", reshape_scalar, 1, {V1(1)}},
    {"reshape", "(12) -> (2, -1, 3)", reshape_2xm1x3, 1, {V1(12)}},
    {"squeeze", "(2, 1, 3) axis 1", squeeze_1, 1, {T3(2, 1, 3)}},
    {"unsqueeze", "(2, 3) axis -1", unsqueeze_m1, 1, {M2(2, 3)}},
    {"flatten", "(2, 3, 4, 5) axes 1..2", flatten_12, 1, {T4(2, 3, 4, 5)}},
    {"squeeze", "(1, 1, 1) axis 1, 1 element", squeeze_1, 1, {T3(1, 1, 1)}},
    {"unsqueeze", "(1) axis -1, 1 element", unsqueeze_m1, 1, {V1(1)}},
    {"unsqueeze", "(2, 3, 4) axis -1", unsqueeze_m1, 1, {T3(2, 3, 4)}},
    {"flatten", "(1, 1, 1, 1) axes 1..2, 1 element", flatten_12, 1, {T4(1, 1, 1, 1)}},
    {"slice", "(1, 1, 1) axis 0 [0, 1), 1 element", slice_a0_0_1, 1, {T3(1, 1, 1)}},
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

B1(bad_slice, nb_slice(g, in[0], 0, 0, 5))
B1(bad_squeeze, nb_squeeze(g, in[0], 5))
B1(bad_unsqueeze, nb_unsqueeze(g, in[0], 4))
B1(bad_pad, nb_pad(g, in[0], 1, -1, 2))
static nb_tensor *bad_concat(nb_graph *g, nb_tensor *const *in, int n) {
    return nb_concat(g, in, n, 0);
}

const oc_bad_case oc_bad_shape[] = {
    {"reshape",
     "6 elements as (3, 2) from (2, 2)",
     reshape_3x2,
     1,
     {M2(2, 2)},
     NB_ERR_SHAPE,
     {"(2, 2)", "(3, 2)"}},
    {"slice", "[0, 5) of 2", bad_slice, 1, {M2(2, 3)}, NB_ERR_ARG, {"(2, 3)"}},
    {"pad", "before -1", bad_pad, 1, {M2(2, 3)}, NB_ERR_ARG, {"before -1", "(2, 3)"}},
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
    {0},
};
