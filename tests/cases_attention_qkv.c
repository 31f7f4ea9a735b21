// Gradient-check and bad-input cases for attention_qkv (attention's kernels on a packed
// (..., t, 3E) projection): 1-element, heads 1 to 3, rank 2 to 4, causal, dropout; bad head
// counts, ranks and dropout arguments.
#include "support/opcheck.h"

#define T(...)                                                                                     \
    {                                                                                              \
        .ndim = sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t), .shape = { __VA_ARGS__ }       \
    }

// attention_qkv: heads as the build's name says (qkv's last dim is 3 E).
static nb_tensor *qkv_h1(nb_graph *g, nb_tensor *const *in, int n) {
    (void)n;
    return nb_attention_qkv(g, in[0], 1, false, 0.0, NULL);
}
static nb_tensor *qkv_h2_causal(nb_graph *g, nb_tensor *const *in, int n) {
    (void)n;
    return nb_attention_qkv(g, in[0], 2, true, 0.0, NULL);
}
static nb_tensor *qkv_h3_causal(nb_graph *g, nb_tensor *const *in, int n) {
    (void)n;
    return nb_attention_qkv(g, in[0], 3, true, 0.0, NULL);
}
static nb_tensor *qkv_h2_drop(nb_graph *g, nb_tensor *const *in, int n) {
    (void)n;
    nb_rng rng;
    nb_rng_seed(&rng, 7);
    return nb_attention_qkv(g, in[0], 2, true, 0.3, &rng);
}
static nb_tensor *qkv_h0(nb_graph *g, nb_tensor *const *in, int n) {
    (void)n;
    return nb_attention_qkv(g, in[0], 0, false, 0.0, NULL);
}
static nb_tensor *qkv_bad_p(nb_graph *g, nb_tensor *const *in, int n) {
    (void)n;
    nb_rng rng;
    nb_rng_seed(&rng, 7);
    return nb_attention_qkv(g, in[0], 1, false, -0.5, &rng);
}
static nb_tensor *qkv_no_rng(nb_graph *g, nb_tensor *const *in, int n) {
    (void)n;
    return nb_attention_qkv(g, in[0], 1, false, 0.2, NULL);
}

const oc_case oc_cases_attention_qkv[] = {
    // attention_qkv has a single input, so nothing broadcasts; the heads, the leading dims and
    // t != head dim stand in for the broadcast case.
    {"attention_qkv", "1-element (1, 3), 1 head", qkv_h1, 1, {T(1, 3)}},
    {"attention_qkv", "(5, 12), 2 heads of 2, causal", qkv_h2_causal, 1, {T(5, 12)}},
    {"attention_qkv", "rank 3 (2, 4, 18), 3 heads of 2, causal", qkv_h3_causal, 1, {T(2, 4, 18)}},
    {"attention_qkv", "rank 4 (2, 1, 3, 6), 1 head of 2", qkv_h1, 1, {T(2, 1, 3, 6)}},
    {"attention_qkv", "dropout 0.3, causal, (2, 5, 12), 2 heads", qkv_h2_drop, 1, {T(2, 5, 12)}},
    {NULL, NULL, NULL, 0, {{0}}},
};

const oc_bad_case oc_bad_attention_qkv[] = {
    {"attention_qkv",
     "last dim 10 for 2 heads",
     qkv_h2_causal,
     1,
     {T(2, 5, 10)},
     NB_ERR_SHAPE,
     {"qkv (2, 5, 10)", "2 heads"}},
    {"attention_qkv", "0 heads", qkv_h0, 1, {T(2, 6)}, NB_ERR_SHAPE, {"(2, 6)", "0 heads"}},
    {"attention_qkv", "rank 1", qkv_h1, 1, {T(6)}, NB_ERR_SHAPE, {"qkv (6)", "rank 2 to 4"}},
    {"attention_qkv",
     "rank 5",
     qkv_h1,
     1,
     {T(1, 1, 1, 2, 3)},
     NB_ERR_SHAPE,
     {"qkv (1, 1, 1, 2, 3)", "rank 2 to 4"}},
    {"attention_qkv",
     "dropout p -0.5",
     qkv_bad_p,
     1,
     {T(3, 6)},
     NB_ERR_ARG,
     {"p = -0.5", "(3, 6)"}},
    {"attention_qkv",
     "dropout without rng",
     qkv_no_rng,
     1,
     {T(3, 6)},
     NB_ERR_NULL,
     {"rng is NULL", "(3, 6)"}},
    {NULL, NULL, NULL, 0, {{0}}, NB_OK, {NULL}},
};
