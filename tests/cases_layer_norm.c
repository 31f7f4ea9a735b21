// Gradient-check and bad-input cases for layer_norm and rms_norm: 1-element rows, one and two
// normalised axes, rank 2 to 4, weight / bias present or not.
#include "support/opcheck.h"

#define T(...)                                                                                     \
    {                                                                                              \
        .ndim = sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t), .shape = { __VA_ARGS__ }       \
    }

#define LN(name, dims)                                                                             \
    static nb_tensor *name(nb_graph *g, nb_tensor *const *in, int n) {                             \
        return nb_layer_norm(g, in[0], dims, n > 1 ? in[1] : NULL, n > 2 ? in[2] : NULL, 1e-5);    \
    }                                                                                              \
    static nb_tensor *name##_rms(nb_graph *g, nb_tensor *const *in, int n) {                       \
        return nb_rms_norm(g, in[0], dims, n > 1 ? in[1] : NULL, 1e-6);                            \
    }
LN(ln1, 1)
LN(ln2, 2)
LN(ln0, 0)

const oc_case oc_cases_layer_norm[] = {
    // One element per row: layer_norm gives 0 (x - mean = 0), its gradient is 0 too.
    {"layer_norm", "(3, 1), 1-element rows", ln1, 3, {T(3, 1), T(1), T(1)}},
    {"layer_norm", "(4, 6), no affine", ln1, 1, {T(4, 6)}},
    {"layer_norm", "(2, 3, 5) over 1 dim", ln1, 3, {T(2, 3, 5), T(5), T(5)}},
    {"layer_norm", "(2, 2, 3, 4) over 2 dims", ln2, 3, {T(2, 2, 3, 4), T(3, 4), T(3, 4)}},
    {"rms_norm", "(1, 1)", ln1_rms, 2, {T(1, 1), T(1)}},
    {"rms_norm", "(4, 6), no weight", ln1_rms, 1, {T(4, 6)}},
    {"rms_norm", "(2, 2, 3, 4) over 2 dims", ln2_rms, 2, {T(2, 2, 3, 4), T(3, 4)}},
    {NULL, NULL, NULL, 0, {{0}}},
};

const oc_bad_case oc_bad_layer_norm[] = {
    {"layer_norm",
     "weight (4) for rows of 5",
     ln1,
     2,
     {T(2, 5), T(4)},
     NB_ERR_SHAPE,
     {"weight is (4)", "(2, 5)"}},
    {"layer_norm", "dims 0", ln0, 1, {T(2, 5)}, NB_ERR_ARG, {"dims 0", "(2, 5)"}},
    {"rms_norm", "dims 0", ln0_rms, 1, {T(2, 5)}, NB_ERR_ARG, {"dims 0", "(2, 5)"}},
    {"rms_norm",
     "weight (5, 1) for (2, 5) over 2 dims",
     ln2_rms,
     2,
     {T(2, 5), T(5, 1)},
     NB_ERR_SHAPE,
     {"(5, 1)", "(2, 5)"}},
    {NULL, NULL, NULL, 0, {{0}}, NB_OK, {NULL}},
};
