// Gradient-check and bad-input cases for src/ops/matmul.c: matmul with NumPy semantics (square,
// non-square and 1-element matrices, vectors, batches, broadcast batch dims, the tiny-product
// and BLAS paths, the batch-parallel path) and its transposed form matmul_t.
#include "support/case_shapes.h"
#include "tensor/parallel.h" // nb__gemm_batch_parallel_min

// Every builder sets the batch-parallel threshold it wants before recording (the backward runs
// before the next case's builder): the default, where these small batches run serially, or 0,
// which puts every batch of 2 or more on the OpenMP team (test env: 2 threads).
static nb_tensor *mm_with(nb_graph *g, nb_tensor *const *in, bool ta, bool tb, bool par) {
    nb__gemm_batch_parallel_min = par ? 0 : NB_GEMM_BATCH_PARALLEL_MIN_DEFAULT;
    return ta || tb ? nb_matmul_t(g, in[0], in[1], ta, tb) : nb_matmul(g, in[0], in[1]);
}
static nb_tensor *mm(nb_graph *g, nb_tensor *const *in, int n) {
    (void)n;
    return mm_with(g, in, false, false, false);
}
static nb_tensor *mm_nt(nb_graph *g, nb_tensor *const *in, int n) {
    (void)n;
    return mm_with(g, in, false, true, false);
}
static nb_tensor *mm_tn(nb_graph *g, nb_tensor *const *in, int n) {
    (void)n;
    return mm_with(g, in, true, false, false);
}
static nb_tensor *mm_tt(nb_graph *g, nb_tensor *const *in, int n) {
    (void)n;
    return mm_with(g, in, true, true, false);
}
static nb_tensor *mm_par(nb_graph *g, nb_tensor *const *in, int n) {
    (void)n;
    return mm_with(g, in, false, false, true);
}
static nb_tensor *mm_tt_par(nb_graph *g, nb_tensor *const *in, int n) {
    (void)n;
    return mm_with(g, in, true, true, true);
}

const oc_case oc_cases_matmul[] = {
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
    // NumPy semantics: vectors, batches, broadcast batch dims.
    {"matmul", "(5) . (5) -> ()", mm, 2, {V1(5), V1(5)}},
    {"matmul", "(1) . (1) -> ()", mm, 2, {V1(1), V1(1)}},
    {"matmul", "(3) x (3, 4) -> (4)", mm, 2, {V1(3), M2(3, 4)}},
    {"matmul", "(4, 3) x (3) -> (4)", mm, 2, {M2(4, 3), V1(3)}},
    {"matmul", "(3) x (2, 3, 4) -> (2, 4)", mm, 2, {V1(3), T3(2, 3, 4)}},
    {"matmul", "(2, 4, 3) x (3) -> (2, 4)", mm, 2, {T3(2, 4, 3), V1(3)}},
    {"matmul", "(2, 3, 5) x (2, 5, 4)", mm, 2, {T3(2, 3, 5), T3(2, 5, 4)}},
    {"matmul", "(2, 3, 5) x (5, 4), folded", mm, 2, {T3(2, 3, 5), M2(5, 4)}},
    {"matmul", "(3, 5) x (2, 5, 4), a broadcast", mm, 2, {M2(3, 5), T3(2, 5, 4)}},
    {"matmul", "(1, 1, 1) x (1, 1, 1)", mm, 2, {T3(1, 1, 1), T3(1, 1, 1)}},
    {"matmul", "(2, 1, 3, 2) x (3, 2, 4) -> (2, 3, 3, 4)", mm, 2, {T4(2, 1, 3, 2), T3(3, 2, 4)}},
    {"matmul", "(1, 3, 2, 5) x (2, 1, 5, 2)", mm, 2, {T4(1, 3, 2, 5), T4(2, 1, 5, 2)}},
    // Batched BLAS path in parallel over the batch (the threshold lowered to 0; test_ops_matmul
    // checks the serial one against a reference), also with a broadcast a whose gradient
    // several threads' products feed, and a broadcast b whose gradient matrices are shared out.
    {"matmul",
     "(8, 16, 16) x (8, 16, 16), BLAS, parallel",
     mm_par,
     2,
     {T3(8, 16, 16), T3(8, 16, 16)}},
    {"matmul",
     "(16, 16) x (8, 16, 16), broadcast a, parallel",
     mm_par,
     2,
     {M2(16, 16), T3(8, 16, 16)}},
    {"matmul",
     "(4, 2, 16, 16) x (4, 1, 16, 32), broadcast b, parallel",
     mm_par,
     2,
     {T4(4, 2, 16, 16), T4(4, 1, 16, 32)}},
    // Transposes by GEMM flag.
    {"matmul_t", "(2, 3, 4) x (2, 5, 4)T", mm_nt, 2, {T3(2, 3, 4), T3(2, 5, 4)}},
    {"matmul_t", "(2, 4, 3)T x (2, 4, 5)", mm_tn, 2, {T3(2, 4, 3), T3(2, 4, 5)}},
    {"matmul_t", "(2, 4, 3)T x (5, 4)T, broadcast", mm_tt, 2, {T3(2, 4, 3), M2(5, 4)}},
    {"matmul_t", "(2, 3, 4) x (5, 4)T, folded", mm_nt, 2, {T3(2, 3, 4), M2(5, 4)}},
    {"matmul_t", "(1, 1)T x (1, 1)T, 1 element", mm_tt, 2, {M2(1, 1), M2(1, 1)}},
    // m = n = 1: nb__gemm's dot product, with each flag combination.
    {"matmul_t", "(1, 6) x (1, 6)T, dot", mm_nt, 2, {M2(1, 6), M2(1, 6)}},
    {"matmul_t", "(6, 1)T x (6, 1), dot", mm_tn, 2, {M2(6, 1), M2(6, 1)}},
    {"matmul_t", "(6, 1)T x (1, 6)T, dot", mm_tt, 2, {M2(6, 1), M2(1, 6)}},
    {"matmul_t", "(4, 3)T x (2, 4, 5), broadcast", mm_tn, 2, {M2(4, 3), T3(2, 4, 5)}},
    {"matmul_t",
     "(8, 16, 16)T x (8, 16, 16)T, parallel",
     mm_tt_par,
     2,
     {T3(8, 16, 16), T3(8, 16, 16)}},
    {0},
};

// ---- bad input: operands whose inner dims disagree ---------------------------------------------

static nb_tensor *bad_matmul_t(nb_graph *g, nb_tensor *const *in, int n) {
    (void)n;
    return nb_matmul_t(g, in[0], in[1], false, true);
}

const oc_bad_case oc_bad_matmul[] = {
    {"matmul", "(2, 3) x (4, 5)", mm, 2, {M2(2, 3), M2(4, 5)}, NB_ERR_SHAPE, {"(2, 3)", "(4, 5)"}},
    {"matmul_t",
     "(2, 3) x (4, 5)ᵀ",
     bad_matmul_t,
     2,
     {M2(2, 3), M2(4, 5)},
     NB_ERR_SHAPE,
     {"(2, 3)", "(4, 5)"}},
    {0},
};
