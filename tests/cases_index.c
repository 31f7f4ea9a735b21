// Gradient-check and bad-input cases for src/ops/index.c: argmax / argmin (through the value
// they pick), index_select and its embedding form, gather and one_hot. Index tensors of 6 from
// 3 or 4 rows make repeats all but certain (backward is a scatter-add that sums them).
#include "support/case_shapes.h"

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
static nb_tensor *b_embedding(nb_graph *g, nb_tensor *const *in, int n) {
    (void)n;
    return nb_embedding(g, in[0], in[1]);
}

const oc_case oc_cases_index[] = {
    {"argmax", "(3, 5) axis 1, gathered", gather_argmax_1, 1, {M2(3, 5)}},
    {"argmax", "(2, 3, 4) axis -1, gathered", gather_argmax_m1, 1, {T3(2, 3, 4)}},
    {"argmax", "(1, 1) axis 1, gathered", gather_argmax_1, 1, {M2(1, 1)}},
    {"argmin", "(4, 3) axis 0, gathered", gather_argmin_0, 1, {M2(4, 3)}},
    {"argmin", "(2, 3, 4) axis 0, gathered", gather_argmin_0, 1, {T3(2, 3, 4)}},
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
    {0},
};

// ---- bad input ---------------------------------------------------------------------------------

#define BAD_BUILD(name, expr)                                                                      \
    static nb_tensor *bad_##name(nb_graph *g, nb_tensor *const *in, int n) {                       \
        (void)n;                                                                                   \
        return expr;                                                                               \
    }
BAD_BUILD(argmax, nb_argmax(g, in[0], 5, false))
BAD_BUILD(argmin, nb_argmin(g, in[0], -5, false))
BAD_BUILD(index_select, nb_index_select(g, in[0], 0, in[1]))
BAD_BUILD(gather, nb_gather(g, in[0], 0, in[1]))
BAD_BUILD(one_hot, nb_one_hot_tensor(g, in[0], 3, NB_F64))

const oc_bad_case oc_bad_index[] = {
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
    {0},
};
