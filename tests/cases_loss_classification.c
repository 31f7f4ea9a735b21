// Gradient-check and bad-input cases for src/ops/loss_classification.c: binary cross-entropy on
// probabilities and on logits, cross-entropy on probabilities, on logits and on logits with
// class indices: (1, 1), (1, classes) and non-square shapes, both reductions, the target roles
// each loss is meant for (one-hot, soft, simplex, indices) and the target's own gradient where
// it has one. BCE on probabilities keeps p in (0.05, 0.95), away from the clamp's kinks.
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
LOSS(bce_loss)
LOSS(bce_logits_loss)
LOSS(cross_entropy_loss)
LOSS(cross_entropy_logits)
LOSS(sparse_cross_entropy_logits)

#define S1(a) .ndim = 1, .shape = {a}
#define S2(a, b) .ndim = 2, .shape = {a, b}
#define S3(a, b, c) .ndim = 3, .shape = {a, b, c}
#define S3(a, b, c) .ndim = 3, .shape = {a, b, c}
#define VAL(shape)                                                                                 \
    { shape }
#define VALR(shape, l, h)                                                                          \
    { shape, .lo = l, .hi = h }
#define CONST(shape, l, h)                                                                         \
    { shape, .role = OC_CONST, .lo = l, .hi = h }
#define ONEHOT(shape)                                                                              \
    { shape, .role = OC_ONEHOT }
#define SIMPLEX(shape)                                                                             \
    { shape, .role = OC_SIMPLEX }
#define INDEX(n, c)                                                                                \
    { S1(n), .role = OC_INDEX, .classes = c }
#define INDEX64(n, c)                                                                              \
    { S1(n), .role = OC_INDEX64, .classes = c }
#define PROB(shape)                                                                                \
    { shape, .lo = 0.05, .hi = 0.95 }

const oc_case oc_cases_loss_classification[] = {
    {"bce_loss", "(4, 3) mean", b_bce_loss_mean, 2, {PROB(S2(4, 3)), CONST(S2(4, 3), 0, 1)}},
    {"bce_loss", "(1, 1) sum", b_bce_loss_sum, 2, {PROB(S2(1, 1)), CONST(S2(1, 1), 0, 1)}},
    {"bce_loss", "(1, 5) one-hot, mean", b_bce_loss_mean, 2, {PROB(S2(1, 5)), ONEHOT(S2(1, 5))}},
    {"bce_loss", "(3, 7) sum", b_bce_loss_sum, 2, {PROB(S2(3, 7)), CONST(S2(3, 7), 0, 1)}},
    {"bce_loss",
     "(2, 3, 4) mean, rank 3",
     b_bce_loss_mean,
     2,
     {PROB(S3(2, 3, 4)), CONST(S3(2, 3, 4), 0, 1)}},
    {"bce_logits_loss",
     "(2, 3, 4) sum, rank 3",
     b_bce_logits_loss_sum,
     2,
     {VAL(S3(2, 3, 4)), CONST(S3(2, 3, 4), 0, 1)}},
    {"bce_loss",
     "(3, 7) mean, target grad",
     b_bce_loss_mean,
     2,
     {PROB(S2(3, 7)), VALR(S2(3, 7), 0, 1)}},
    {"bce_logits_loss",
     "(4, 3) mean",
     b_bce_logits_loss_mean,
     2,
     {VAL(S2(4, 3)), CONST(S2(4, 3), 0, 1)}},
    {"bce_logits_loss",
     "(1, 1) sum",
     b_bce_logits_loss_sum,
     2,
     {VAL(S2(1, 1)), CONST(S2(1, 1), 0, 1)}},
    {"bce_logits_loss",
     "(1, 5) wide logits, one-hot, mean",
     b_bce_logits_loss_mean,
     2,
     {VALR(S2(1, 5), -15, 15), ONEHOT(S2(1, 5))}},
    {"bce_logits_loss",
     "(3, 7) sum",
     b_bce_logits_loss_sum,
     2,
     {VAL(S2(3, 7)), CONST(S2(3, 7), 0, 1)}},
    {"bce_logits_loss",
     "(3, 7) mean, target grad",
     b_bce_logits_loss_mean,
     2,
     {VAL(S2(3, 7)), VALR(S2(3, 7), 0, 1)}},
    {"cross_entropy_loss",
     "(4, 3) one-hot, mean",
     b_cross_entropy_loss_mean,
     2,
     {SIMPLEX(S2(4, 3)), ONEHOT(S2(4, 3))}},
    // One class: a true simplex row would be exactly 1, on the clamp's kink; any p in (0, 1)
    // is a valid input to the formula.
    {"cross_entropy_loss",
     "(1, 1) sum",
     b_cross_entropy_loss_sum,
     2,
     {PROB(S2(1, 1)), CONST(S2(1, 1), 0, 1)}},
    {"cross_entropy_loss",
     "(1, 6) one-hot, sum",
     b_cross_entropy_loss_sum,
     2,
     {SIMPLEX(S2(1, 6)), ONEHOT(S2(1, 6))}},
    {"cross_entropy_loss",
     "(3, 7) soft targets, mean",
     b_cross_entropy_loss_mean,
     2,
     {SIMPLEX(S2(3, 7)), CONST(S2(3, 7), 0, 1)}},
    {"cross_entropy_loss",
     "(3, 7) simplex target grad, sum",
     b_cross_entropy_loss_sum,
     2,
     {SIMPLEX(S2(3, 7)), SIMPLEX(S2(3, 7))}},
    {"cross_entropy_logits",
     "(4, 3) one-hot, mean",
     b_cross_entropy_logits_mean,
     2,
     {VAL(S2(4, 3)), ONEHOT(S2(4, 3))}},
    {"cross_entropy_logits",
     "(1, 1) one-hot, sum",
     b_cross_entropy_logits_sum,
     2,
     {VAL(S2(1, 1)), ONEHOT(S2(1, 1))}},
    {"cross_entropy_logits",
     "(1, 6) one-hot, mean",
     b_cross_entropy_logits_mean,
     2,
     {VAL(S2(1, 6)), ONEHOT(S2(1, 6))}},
    {"cross_entropy_logits",
     "(3, 7) wide logits, one-hot, sum",
     b_cross_entropy_logits_sum,
     2,
     {VALR(S2(3, 7), -20, 20), ONEHOT(S2(3, 7))}},
    {"cross_entropy_logits",
     "(3, 7) simplex target grad, mean",
     b_cross_entropy_logits_mean,
     2,
     {VAL(S2(3, 7)), SIMPLEX(S2(3, 7))}},
    // Targets that do not sum to 1 exercise the Σ_c t_c factor in dz.
    {"cross_entropy_logits",
     "(2, 4) unnormalised target grad, sum",
     b_cross_entropy_logits_sum,
     2,
     {VAL(S2(2, 4)), VAL(S2(2, 4))}},
    {"cross_entropy_logits",
     "(4, 3) const soft targets, mean",
     b_cross_entropy_logits_mean,
     2,
     {VAL(S2(4, 3)), CONST(S2(4, 3), 0, 1)}},
    {"sparse_cross_entropy_logits",
     "(4, 3) mean",
     b_sparse_cross_entropy_logits_mean,
     2,
     {VAL(S2(4, 3)), INDEX(4, 3)}},
    {"sparse_cross_entropy_logits",
     "(1, 1) sum",
     b_sparse_cross_entropy_logits_sum,
     2,
     {VAL(S2(1, 1)), INDEX(1, 1)}},
    {"sparse_cross_entropy_logits",
     "(1, 6) mean",
     b_sparse_cross_entropy_logits_mean,
     2,
     {VAL(S2(1, 6)), INDEX(1, 6)}},
    {"sparse_cross_entropy_logits",
     "(3, 7) sum",
     b_sparse_cross_entropy_logits_sum,
     2,
     {VAL(S2(3, 7)), INDEX(3, 7)}},
    {"sparse_cross_entropy_logits",
     "(5, 10) wide logits, mean",
     b_sparse_cross_entropy_logits_mean,
     2,
     {VALR(S2(5, 10), -20, 20), INDEX(5, 10)}},
    {"sparse_cross_entropy_logits",
     "int64 labels: (4, 3) mean",
     b_sparse_cross_entropy_logits_mean,
     2,
     {VAL(S2(4, 3)), INDEX64(4, 3)}},
    {"sparse_cross_entropy_logits",
     "int64 labels: (1, 1) sum",
     b_sparse_cross_entropy_logits_sum,
     2,
     {VAL(S2(1, 1)), INDEX64(1, 1)}},
    {0},
};

// ---- bad input: a target of another shape, a label out of range --------------------------------

#define BAD_LOSS(fn)                                                                               \
    {                                                                                              \
#fn, "(2, 3) vs target (3, 2)", b_##fn##_mean, 2,                                          \
            {{S2(2, 3) }, {S2(3, 2) } }, NB_ERR_SHAPE, {                                           \
            "(2, 3)", "(3, 2)"                                                                     \
        }                                                                                          \
    }
const oc_bad_case oc_bad_loss_classification[] = {
    BAD_LOSS(bce_loss),
    BAD_LOSS(bce_logits_loss),
    BAD_LOSS(cross_entropy_loss),
    BAD_LOSS(cross_entropy_logits),
    {"sparse_cross_entropy_logits",
     "label 3 of 3 classes",
     b_sparse_cross_entropy_logits_mean,
     2,
     {{S2(2, 3)}, {S1(2), .role = OC_INDEX, .classes = 1, .lo = 3}},
     NB_ERR_ARG,
     {"label 3", "(2, 3)"}},
    {0},
};
