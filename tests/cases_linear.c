// Gradient-check and bad-input cases for src/ops/linear.c: y = x wᵀ + b with and without bias,
// x of rank 1 to 4, 1-element and non-square shapes, the tiny-product and BLAS paths, a
// constant x.
#include "support/case_shapes.h"

static nb_tensor *lin(nb_graph *g, nb_tensor *const *in, int n) {
    return nb_linear(g, in[0], in[1], n > 2 ? in[2] : NULL);
}

const oc_case oc_cases_linear[] = {
    {"linear", "x (2, 3, 4), w (5, 4), b (5)", lin, 3, {T3(2, 3, 4), M2(5, 4), V1(5)}},
    {"linear", "x (4), w (3, 4), b (3)", lin, 3, {V1(4), M2(3, 4), V1(3)}},
    {"linear", "x (2, 1, 3, 4), w (2, 4)", lin, 2, {T4(2, 1, 3, 4), M2(2, 4)}},
    {"linear", "x (6, 10), w (7, 10), b (7), BLAS path", lin, 3, {M2(6, 10), M2(7, 10), V1(7)}},
    {"linear", "x (4, 3), w (2, 3), b (2)", lin, 3, {M2(4, 3), M2(2, 3), V1(2)}},
    {"linear", "x (1, 1), w (1, 1), b (1)", lin, 3, {M2(1, 1), M2(1, 1), V1(1)}},
    {"linear", "x (5, 7), w (3, 7), no bias", lin, 2, {M2(5, 7), M2(3, 7)}},
    {"linear",
     "x constant (2, 4), w (6, 4), b (6)",
     lin,
     3,
     {{.ndim = 2, .shape = {2, 4}, .role = OC_CONST}, M2(6, 4), V1(6)}},

    {0},
};

// ---- bad input: x and w whose in-features disagree ---------------------------------------------

static nb_tensor *bad_linear(nb_graph *g, nb_tensor *const *in, int n) {
    (void)n;
    return nb_linear(g, in[0], in[1], NULL);
}

const oc_bad_case oc_bad_linear[] = {
    {"linear",
     "x (2, 3), w (4, 5)",
     bad_linear,
     2,
     {M2(2, 3), M2(4, 5)},
     NB_ERR_SHAPE,
     {"(2, 3)", "(4, 5)"}},
    {0},
};
