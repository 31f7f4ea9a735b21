// Gradient-check and bad-input cases for src/ops/softmax.c: softmax and log_softmax over the
// last axis: (1, 1), (1, classes), non-square, 1-D and 3-D shapes and a wide logit range.
#include "support/opcheck.h"

static nb_tensor *b_softmax(nb_graph *g, nb_tensor *const *in, int n) {
    (void)n;
    return nb_softmax(g, in[0]);
}
static nb_tensor *b_log_softmax(nb_graph *g, nb_tensor *const *in, int n) {
    (void)n;
    return nb_log_softmax(g, in[0]);
}

#define S1(a) .ndim = 1, .shape = {a}
#define S2(a, b) .ndim = 2, .shape = {a, b}
#define S3(a, b, c) .ndim = 3, .shape = {a, b, c}
#define VAL(shape)                                                                                 \
    { shape }
#define VALR(shape, l, h)                                                                          \
    { shape, .lo = l, .hi = h }

#define SOFTMAX_CASES(name)                                                                        \
    {#name, "(4, 3)", b_##name, 1, {VAL(S2(4, 3))}},                                               \
        {#name, "(1, 1)", b_##name, 1, {VAL(S2(1, 1))}},                                           \
        {#name, "(1, 6)", b_##name, 1, {VAL(S2(1, 6))}},                                           \
        {#name, "(3, 7)", b_##name, 1, {VAL(S2(3, 7))}},                                           \
        {#name, "1-D (5)", b_##name, 1, {VAL(S1(5))}},                                             \
        {#name, "1-D (1)", b_##name, 1, {VAL(S1(1))}},                                             \
        {#name, "3-D (2, 3, 4)", b_##name, 1, {VAL(S3(2, 3, 4))}}, {                               \
#name, "wide range (2, 5)", b_##name, 1, {                                                 \
            VALR(S2(2, 5), -20, 20)                                                                \
        }                                                                                          \
    }

const oc_case oc_cases_softmax[] = {
    SOFTMAX_CASES(softmax),
    SOFTMAX_CASES(log_softmax),
    {0},
};

// ---- bad input: a scalar has no axis to normalise ----------------------------------------------

const oc_bad_case oc_bad_softmax[] = {
    {"softmax", "0-dim x", b_softmax, 1, {{.ndim = 0}}, NB_ERR_SHAPE, {"0-dim"}},
    {"log_softmax", "0-dim x", b_log_softmax, 1, {{.ndim = 0}}, NB_ERR_SHAPE, {"0-dim"}},
    {0},
};
