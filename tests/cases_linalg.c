// Gradient-check cases for matmul and linear: square, non-square and 1-element shapes.
#include "support/opcheck.h"

static nb_tensor *mm(nb_graph *g, nb_tensor *const *in, int n) {
    (void)n;
    return nb_matmul(g, in[0], in[1]);
}
static nb_tensor *lin(nb_graph *g, nb_tensor *const *in, int n) {
    return nb_linear(g, in[0], in[1], n > 2 ? in[2] : NULL);
}

#define M2(a, b)                                                                                   \
    {                                                                                              \
        .ndim = 2, .shape = { a, b }                                                               \
    }
#define V1(a)                                                                                      \
    {                                                                                              \
        .ndim = 1, .shape = { a }                                                                  \
    }

const oc_case oc_cases_linalg[] = {
    {"matmul", "(3, 5) x (5, 2)", mm, 2, {M2(3, 5), M2(5, 2)}},
    {"matmul", "(1, 1) x (1, 1)", mm, 2, {M2(1, 1), M2(1, 1)}},
    {"matmul", "(4, 4) x (4, 4)", mm, 2, {M2(4, 4), M2(4, 4)}},
    {"matmul", "(1, 6) x (6, 1)", mm, 2, {M2(1, 6), M2(6, 1)}},
    {"matmul",
     "(3, 2) x (2, 4), b constant",
     mm,
     2,
     {M2(3, 2), {.ndim = 2, .shape = {2, 4}, .role = OC_CONST}}},
    // Above nb__gemm's tiny-product threshold (m n k > 64): these go through BLAS.
    {"matmul", "(9, 8) x (8, 7), BLAS path", mm, 2, {M2(9, 8), M2(8, 7)}},
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
