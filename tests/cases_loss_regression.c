// Gradient-check and bad-input cases for src/ops/loss_regression.c: mse_loss and half_sse_loss
// with both reductions on (1), (1, 1), (1, 5) and non-square shapes, against a constant target
// and with the target's own gradient.
#include "support/opcheck.h"

// b_<fn>_mean and b_<fn>_sum for each loss.
#define LOSS(fn)                                                                                   \
    static nb_tensor *b_##fn##_mean(nb_graph *g, nb_tensor *const *in, int n) {                    \
        (void)n;                                                                                   \
        return nb_##fn(g, in[0], in[1], NB_REDUCE_MEAN);                                           \
    }                                                                                              \
    static nb_tensor *b_##fn##_sum(nb_graph *g, nb_tensor *const *in, int n) {                     \
        (void)n;                                                                                   \
        return nb_##fn(g, in[0], in[1], NB_REDUCE_SUM);                                            \
    }
LOSS(mse_loss)
LOSS(half_sse_loss)

#define S1(a) .ndim = 1, .shape = {a}
#define S2(a, b) .ndim = 2, .shape = {a, b}
#define S3(a, b, c) .ndim = 3, .shape = {a, b, c}
#define VAL(shape)                                                                                 \
    { shape }
#define CONST(shape, l, h)                                                                         \
    { shape, .role = OC_CONST, .lo = l, .hi = h }

const oc_case oc_cases_loss_regression[] = {
    {"mse_loss", "(4, 3) mean", b_mse_loss_mean, 2, {VAL(S2(4, 3)), CONST(S2(4, 3), -2, 2)}},
    {"mse_loss", "(1, 1) sum", b_mse_loss_sum, 2, {VAL(S2(1, 1)), CONST(S2(1, 1), -2, 2)}},
    {"mse_loss", "(3, 7) sum", b_mse_loss_sum, 2, {VAL(S2(3, 7)), CONST(S2(3, 7), -2, 2)}},
    {"mse_loss", "(1) mean", b_mse_loss_mean, 2, {VAL(S1(1)), CONST(S1(1), -2, 2)}},
    {"mse_loss", "(3, 7) mean, target grad", b_mse_loss_mean, 2, {VAL(S2(3, 7)), VAL(S2(3, 7))}},
    {"mse_loss",
     "(2, 3, 4) mean, rank 3",
     b_mse_loss_mean,
     2,
     {VAL(S3(2, 3, 4)), VAL(S3(2, 3, 4))}},
    {"half_sse_loss",
     "(2, 3, 4) mean, rank 3",
     b_half_sse_loss_mean,
     2,
     {VAL(S3(2, 3, 4)), CONST(S3(2, 3, 4), -2, 2)}},
    {"half_sse_loss",
     "(4, 3) mean",
     b_half_sse_loss_mean,
     2,
     {VAL(S2(4, 3)), CONST(S2(4, 3), -2, 2)}},
    {"half_sse_loss",
     "(1, 1) sum",
     b_half_sse_loss_sum,
     2,
     {VAL(S2(1, 1)), CONST(S2(1, 1), -2, 2)}},
    {"half_sse_loss",
     "(1, 5) mean",
     b_half_sse_loss_mean,
     2,
     {VAL(S2(1, 5)), CONST(S2(1, 5), -2, 2)}},
    {"half_sse_loss", "1-D (5) mean", b_half_sse_loss_mean, 2, {VAL(S1(5)), CONST(S1(5), -2, 2)}},
    {"half_sse_loss",
     "(3, 7) sum, target grad",
     b_half_sse_loss_sum,
     2,
     {VAL(S2(3, 7)), VAL(S2(3, 7))}},
    {0},
};

// ---- bad input: a target of another shape ------------------------------------------------------

#define BAD_LOSS(fn)                                                                               \
    {                                                                                              \
#fn, "(2, 3) vs target (3, 2)", b_##fn##_mean, 2,                                          \
            {{S2(2, 3) }, {S2(3, 2) } }, NB_ERR_SHAPE, {                                           \
            "(2, 3)", "(3, 2)"                                                                     \
        }                                                                                          \
    }
const oc_bad_case oc_bad_loss_regression[] = {
    BAD_LOSS(mse_loss),
    BAD_LOSS(half_sse_loss),
    {0},
};
