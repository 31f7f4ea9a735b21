// Gradient-check and bad-input cases for scaled_dot_product_attention: 1-element, tq != tk,
// rank 2 to 4, causal (tq above and below tk), an additive mask broadcast over batch and heads
// (with its own gradient, and as a constant), dropout (the build seeds its rng on every call,
// so every finite-difference evaluation sees the same mask). tq >= 4 runs several row chunks.
#include "support/opcheck.h"

#define T(...)                                                                                     \
    {                                                                                              \
        .ndim = sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t), .shape = { __VA_ARGS__ }       \
    }
#define C(...)                                                                                     \
    {                                                                                              \
        .ndim = sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t), .shape = {__VA_ARGS__},        \
        .role = OC_CONST, .lo = -2, .hi = 2                                                        \
    }

static nb_tensor *att(nb_graph *g, nb_tensor *const *in, int n) {
    return nb_scaled_dot_product_attention(g, in[0], in[1], in[2], n > 3 ? in[3] : NULL, false, 0.0,
                                           NULL);
}
static nb_tensor *att_causal(nb_graph *g, nb_tensor *const *in, int n) {
    return nb_scaled_dot_product_attention(g, in[0], in[1], in[2], n > 3 ? in[3] : NULL, true, 0.0,
                                           NULL);
}
static nb_tensor *att_drop(nb_graph *g, nb_tensor *const *in, int n) {
    nb_rng rng;
    nb_rng_seed(&rng, 5);
    return nb_scaled_dot_product_attention(g, in[0], in[1], in[2], n > 3 ? in[3] : NULL, true, 0.3,
                                           &rng);
}
static nb_tensor *att_bad_p(nb_graph *g, nb_tensor *const *in, int n) {
    (void)n;
    nb_rng rng;
    nb_rng_seed(&rng, 5);
    return nb_scaled_dot_product_attention(g, in[0], in[1], in[2], NULL, false, 1.5, &rng);
}
static nb_tensor *att_no_rng(nb_graph *g, nb_tensor *const *in, int n) {
    (void)n;
    return nb_scaled_dot_product_attention(g, in[0], in[1], in[2], NULL, false, 0.1, NULL);
}

const oc_case oc_cases_attention[] = {
    {"scaled_dot_product_attention", "1-element (1, 1)", att, 3, {T(1, 1), T(1, 1), T(1, 1)}},
    {"scaled_dot_product_attention",
     "1-element rank 4, causal",
     att_causal,
     3,
     {T(1, 1, 1, 1), T(1, 1, 1, 1), T(1, 1, 1, 1)}},
    {"scaled_dot_product_attention", "tq 3 != tk 5, dv 2", att, 3, {T(3, 4), T(5, 4), T(5, 2)}},
    {"scaled_dot_product_attention",
     "rank 4 (2, 3, 5, 4), tk 6, causal",
     att_causal,
     3,
     {T(2, 3, 5, 4), T(2, 3, 6, 4), T(2, 3, 6, 3)}},
    {"scaled_dot_product_attention",
     "causal tq 6 > tk 4",
     att_causal,
     3,
     {T(2, 6, 3), T(2, 4, 3), T(2, 4, 2)}},
    {"scaled_dot_product_attention",
     "mask (5, 6) broadcast over (2, 2), with its gradient",
     att,
     4,
     {T(2, 2, 5, 3), T(2, 2, 6, 3), T(2, 2, 6, 2), T(5, 6)}},
    {"scaled_dot_product_attention",
     "mask (2, 1, 1, 6) broadcast over heads and rows, causal",
     att_causal,
     4,
     {T(2, 2, 5, 3), T(2, 2, 6, 3), T(2, 2, 6, 2), T(2, 1, 1, 6)}},
    {"scaled_dot_product_attention",
     "constant mask (1, 4, 4), rank 3",
     att,
     4,
     {T(3, 4, 2), T(3, 4, 2), T(3, 4, 3), C(1, 4, 4)}},
    {"scaled_dot_product_attention",
     "dropout 0.3, causal, rank 4",
     att_drop,
     3,
     {T(2, 2, 5, 3), T(2, 2, 5, 3), T(2, 2, 5, 4)}},
    {NULL, NULL, NULL, 0, {{0}}},
};

const oc_bad_case oc_bad_attention[] = {
    {"scaled_dot_product_attention",
     "head dims 4 vs 3",
     att,
     3,
     {T(2, 3, 4), T(2, 5, 3), T(2, 5, 3)},
     NB_ERR_SHAPE,
     {"(2, 3, 4)", "(2, 5, 3)"}},
    {"scaled_dot_product_attention",
     "leading dims 2 vs 3",
     att,
     3,
     {T(2, 3, 4), T(3, 5, 4), T(3, 5, 4)},
     NB_ERR_SHAPE,
     {"(2, 3, 4)", "(3, 5, 4)"}},
    {"scaled_dot_product_attention",
     "k and v lengths 5 vs 6",
     att,
     3,
     {T(3, 4), T(5, 4), T(6, 4)},
     NB_ERR_SHAPE,
     {"(5, 4)", "(6, 4)"}},
    {"scaled_dot_product_attention",
     "rank 1",
     att,
     3,
     {T(4), T(4), T(4)},
     NB_ERR_SHAPE,
     {"q (4)", "rank >= 2"}},
    {"scaled_dot_product_attention",
     "mask (4, 5) for scores (3, 5)",
     att,
     4,
     {T(3, 4), T(5, 4), T(5, 4), T(4, 5)},
     NB_ERR_SHAPE,
     {"mask (4, 5)", "q (3, 4)"}},
    {"scaled_dot_product_attention",
     "dropout p 1.5",
     att_bad_p,
     3,
     {T(3, 4), T(5, 4), T(5, 4)},
     NB_ERR_ARG,
     {"p = 1.5", "(3, 4)"}},
    {"scaled_dot_product_attention",
     "dropout without rng",
     att_no_rng,
     3,
     {T(3, 4), T(5, 4), T(5, 4)},
     NB_ERR_NULL,
     {"rng is NULL", "(3, 4)"}},
    {NULL, NULL, NULL, 0, {{0}}, NB_OK, {NULL}},
};
