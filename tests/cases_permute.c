// Gradient-check and bad-input cases for src/ops/permute.c: transpose (the last two axes; the
// tiled path with partial tiles), transpose_axes, permute (negative axes, size-1 axes) and
// expand (new leading dims, size-1 dims stretched, -1 keeping a dim, to the same shape).
#include "support/case_shapes.h"

#define B1(name, expr)                                                                             \
    static nb_tensor *name(nb_graph *g, nb_tensor *const *in, int n) {                             \
        (void)n;                                                                                   \
        return (expr);                                                                             \
    }
B1(transpose, nb_transpose(g, in[0]))
B1(transpose_02, nb_transpose_axes(g, in[0], 0, 2))
B1(transpose_m3m1, nb_transpose_axes(g, in[0], -3, -1))
B1(permute_0213, nb_permute(g, in[0], 4, (const int[]){0, 2, 1, 3}))
B1(permute_3102, nb_permute(g, in[0], 4, (const int[]){3, 1, 0, -2}))
B1(permute_120, nb_permute(g, in[0], 3, (const int[]){1, 2, 0}))
B1(permute_0, nb_permute(g, in[0], 1, (const int[]){0}))
B1(expand_234, nb_expand(g, in[0], 3, (int64_t[]){2, 3, 4}))
B1(expand_m1_5, nb_expand(g, in[0], 3, (int64_t[]){2, -1, 5}))
B1(expand_3, nb_expand(g, in[0], 1, (int64_t[]){3}))
B1(expand_same, nb_expand(g, in[0], 2, (int64_t[]){-1, -1}))
B1(expand_row, nb_expand(g, in[0], 2, (int64_t[]){2, 3}))
B1(expand_col, nb_expand(g, in[0], 2, (int64_t[]){2, 4}))
B1(expand_scalar, nb_expand(g, in[0], 2, (int64_t[]){2, 2}))
B1(expand_mid, nb_expand(g, in[0], 3, (int64_t[]){2, 4, 3}))
B1(expand_same2, nb_expand(g, in[0], 2, (int64_t[]){3, 2}))

const oc_case oc_cases_permute[] = {
    {"expand", "(3) -> (2, 3)", expand_row, 1, {V1(3)}},
    {"expand", "(2, 1) -> (2, 4)", expand_col, 1, {M2(2, 1)}},
    {"expand", "() -> (2, 2)", expand_scalar, 1, {S0}},
    {"expand", "(2, 1, 3) -> (2, 4, 3)", expand_mid, 1, {T3(2, 1, 3)}},
    {"expand", "(3, 2) -> (3, 2)", expand_same2, 1, {M2(3, 2)}},
    {"transpose", "(2, 3)", transpose, 1, {M2(2, 3)}},
    {"transpose", "(1, 1)", transpose, 1, {M2(1, 1)}},
    {"transpose", "(4, 4)", transpose, 1, {M2(4, 4)}},
    {"transpose", "(1, 5)", transpose, 1, {M2(1, 5)}},
    {"transpose", "(2, 3, 4) last two", transpose, 1, {T3(2, 3, 4)}},
    {"transpose_axes", "(2, 3, 4) axes 0, 2", transpose_02, 1, {T3(2, 3, 4)}},
    {"transpose_axes", "(2, 3, 1, 4) axes -3, -1", transpose_m3m1, 1, {T4(2, 3, 1, 4)}},
    {"transpose_axes", "(1, 1, 1) axes 0, 2, 1 element", transpose_02, 1, {T3(1, 1, 1)}},
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
    {0},
};

const oc_bad_case oc_bad_permute[] = {
    {"transpose", "1-D x", transpose, 1, {V1(3)}, NB_ERR_ARG, {"(3)"}},
    {"transpose_axes", "axis 2 of 2 dims", transpose_02, 1, {M2(2, 3)}, NB_ERR_ARG, {"(2, 3)"}},
    {"permute", "4 axes for 2 dims", permute_0213, 1, {M2(2, 3)}, NB_ERR_ARG, {"(2, 3)"}},
    {"expand", "(3, 2) -> (2, 3, 4)", expand_234, 1, {M2(3, 2)}, NB_ERR_SHAPE, {"(3, 2)"}},
    {0},
};
