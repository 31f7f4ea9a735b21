// Gradient-check and bad-input cases for src/ops/select.c: where (condition, a and b each
// broadcast, 1-element, 3-D), masked_fill (mask broadcast, a 0-dim mask) and clamp (both bounds,
// one bound). Masks come from comparisons of a constant input, as in a model.
#include <math.h>

#include "support/opcheck.h"

// c > 0 as a mask, from a constant input c (masks come from comparisons).
static nb_tensor *positive(nb_graph *g, nb_tensor *c) {
    return nb_gt(g, c, nb_neg(g, c));
}
static nb_tensor *b_where(nb_graph *g, nb_tensor *const *in, int n) {
    (void)n;
    return nb_where(g, positive(g, in[0]), in[1], in[2]);
}
static nb_tensor *b_masked_fill(nb_graph *g, nb_tensor *const *in, int n) {
    (void)n;
    return nb_masked_fill(g, in[0], positive(g, in[1]), -1.5);
}

static nb_tensor *b_clamp(nb_graph *g, nb_tensor *const *in, int n) {
    (void)n;
    return nb_clamp(g, in[0], -1, 0.5);
}
static nb_tensor *b_clamp_lo(nb_graph *g, nb_tensor *const *in, int n) {
    (void)n;
    return nb_clamp(g, in[0], -0.3, INFINITY);
}
static nb_tensor *b_clamp_bad(nb_graph *g, nb_tensor *const *in, int n) {
    (void)n;
    return nb_clamp(g, in[0], 1, -1);
}

// An input of 0-3 dims with values in [lo, hi); role OC_VALUES (requires grad) unless given.
#define S0(lo_, hi_)                                                                               \
    { .ndim = 0, .lo = lo_, .hi = hi_ }
#define S1(a, lo_, hi_)                                                                            \
    { .ndim = 1, .shape = {a}, .lo = lo_, .hi = hi_ }
#define S2(a, b, lo_, hi_)                                                                         \
    { .ndim = 2, .shape = {a, b}, .lo = lo_, .hi = hi_ }
#define S3(a, b, c, lo_, hi_)                                                                      \
    { .ndim = 3, .shape = {a, b, c}, .lo = lo_, .hi = hi_ }
#define K1(a)                                                                                      \
    { .ndim = 1, .shape = {a}, .role = OC_CONST }
#define K2(a, b)                                                                                   \
    { .ndim = 2, .shape = {a, b}, .role = OC_CONST }
#define K3(a, b, c)                                                                                \
    { .ndim = 3, .shape = {a, b, c}, .role = OC_CONST }
#define M(a, b)                                                                                    \
    {                                                                                              \
        .ndim = 2, .shape = { a, b }                                                               \
    }

const oc_case oc_cases_select[] = {
    {"where", "(3, 4) all same shape", b_where, 3, {K2(3, 4), S2(3, 4, -2, 2), S2(3, 4, -2, 2)}},
    {"where", "(1) all 1-element", b_where, 3, {K1(1), S1(1, -2, 2), S1(1, -2, 2)}},
    {"where",
     "cond (3, 1), a (4), b (2, 1, 1)",
     b_where,
     3,
     {K2(3, 1), S1(4, -2, 2), S3(2, 1, 1, -2, 2)}},
    {"where",
     "cond (2, 3, 4), a (), b (3, 4)",
     b_where,
     3,
     {K3(2, 3, 4), S0(-2, 2), S2(3, 4, -2, 2)}},
    {"masked_fill", "(3, 4) mask (3, 4)", b_masked_fill, 2, {S2(3, 4, -2, 2), K2(3, 4)}},
    {"masked_fill", "(1) mask (1)", b_masked_fill, 2, {S1(1, -2, 2), K1(1)}},
    {"masked_fill", "(2, 3, 4) mask (3, 1)", b_masked_fill, 2, {S3(2, 3, 4, -2, 2), K2(3, 1)}},
    {"masked_fill",
     "(2, 3, 4) mask ()",
     b_masked_fill,
     2,
     {S3(2, 3, 4, -2, 2), {.ndim = 0, .role = OC_CONST}}},
    {"clamp", "(3, 5)", b_clamp, 1, {S2(3, 5, -2, 2)}},
    {"clamp", "(1)", b_clamp, 1, {S1(1, -2, 2)}},
    {"clamp", "(2, 3, 4)", b_clamp, 1, {S3(2, 3, 4, -2, 2)}},
    {"clamp", "(3, 5)", b_clamp_lo, 1, {S2(3, 5, -2, 2)}},
    {"clamp", "(1)", b_clamp_lo, 1, {S1(1, -2, 2)}},
    {"clamp", "(2, 3, 4)", b_clamp_lo, 1, {S3(2, 3, 4, -2, 2)}},
    {0},
};

// ---- bad input: shapes that do not broadcast, bounds the wrong way round ---------------------

const oc_bad_case oc_bad_select[] = {
    {"where",
     "cond (2, 3), a (4, 5)",
     b_where,
     3,
     {M(2, 3), M(4, 5), M(2, 3)},
     NB_ERR_SHAPE,
     {"(2, 3)", "(4, 5)"}},
    {"masked_fill",
     "x (2, 3), mask (4, 5)",
     b_masked_fill,
     2,
     {M(2, 3), M(4, 5)},
     NB_ERR_SHAPE,
     {"(2, 3)", "(4, 5)"}},
    {"clamp", "lo > hi", b_clamp_bad, 1, {M(2, 3)}, NB_ERR_ARG, {"clamp"}},
    {0},
};
