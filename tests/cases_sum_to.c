// Gradient-check and bad-input cases for src/ops/sum_to.c: sum_to, the adjoint of expand
// (summing leading dims away, a dim to 1, everything to a scalar, nothing at all).
#include "support/case_shapes.h"

#define B1(name, expr)                                                                             \
    static nb_tensor *name(nb_graph *g, nb_tensor *const *in, int n) {                             \
        (void)n;                                                                                   \
        return (expr);                                                                             \
    }
B1(sum_to_row, nb_sum_to(g, in[0], 1, (int64_t[]){3}))
B1(sum_to_col, nb_sum_to(g, in[0], 2, (int64_t[]){4, 1}))
B1(sum_to_scalar, nb_sum_to(g, in[0], 0, NULL))
B1(sum_to_mid, nb_sum_to(g, in[0], 2, (int64_t[]){3, 1}))
B1(sum_to_one, nb_sum_to(g, in[0], 1, (int64_t[]){1}))
B1(bad_sum_to, nb_sum_to(g, in[0], 1, (int64_t[]){4}))

const oc_case oc_cases_sum_to[] = {
    {"sum_to", "(2, 3) -> (3)", sum_to_row, 1, {M2(2, 3)}},
    {"sum_to", "(4, 3) -> (4, 1)", sum_to_col, 1, {M2(4, 3)}},
    {"sum_to", "(2, 3) -> ()", sum_to_scalar, 1, {M2(2, 3)}},
    {"sum_to", "(2, 3, 4) -> (3, 1)", sum_to_mid, 1, {T3(2, 3, 4)}},
    {"sum_to", "(1) -> (1)", sum_to_one, 1, {V1(1)}},
    {0},
};

const oc_bad_case oc_bad_sum_to[] = {
    {"sum_to", "(2, 3) to (4)", bad_sum_to, 1, {M2(2, 3)}, NB_ERR_SHAPE, {"(2, 3)", "(4)"}},
    {0},
};
