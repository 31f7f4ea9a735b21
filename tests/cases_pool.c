// Gradient-check and bad-input cases for max_pool2d, avg_pool2d and adaptive_avg_pool2d:
// 1-element, non-square planes and kernels, overlapping windows, padding, ceil_mode,
// count_include_pad either way, dilation (max), global pooling.
#include "support/opcheck.h"

#define T4(a, b, c, d)                                                                             \
    {                                                                                              \
        .ndim = 4, .shape = { a, b, c, d }                                                         \
    }
#define T3(a, b, c)                                                                                \
    {                                                                                              \
        .ndim = 3, .shape = { a, b, c }                                                            \
    }

#define MAXP(name, k, s, p, d, cm)                                                                 \
    static nb_tensor *name(nb_graph *g, nb_tensor *const *in, int n) {                             \
        (void)n;                                                                                   \
        return nb_max_pool2d(g, in[0], k, s, p, d, cm);                                            \
    }
#define AVGP(name, k, s, p, cm, cip)                                                               \
    static nb_tensor *name(nb_graph *g, nb_tensor *const *in, int n) {                             \
        (void)n;                                                                                   \
        return nb_avg_pool2d(g, in[0], k, s, p, cm, cip);                                          \
    }
#define ADAP(name, oh, ow)                                                                         \
    static nb_tensor *name(nb_graph *g, nb_tensor *const *in, int n) {                             \
        (void)n;                                                                                   \
        return nb_adaptive_avg_pool2d(g, in[0], oh, ow);                                           \
    }
MAXP(max_k1, 1, 0, 0, 1, false)
MAXP(max_k2, 2, 0, 0, 1, false)
MAXP(max_k3s2p1c, 3, 2, 1, 1, true)
MAXP(max_d2, 2, 1, 1, 2, false)
AVGP(avg_k1, 1, 0, 0, false, true)
AVGP(avg_k2, 2, 0, 0, false, true)
AVGP(avg_cip, 3, 2, 1, true, true)
AVGP(avg_nocip, 3, 2, 1, true, false)
ADAP(adapt_1, 1, 1)
ADAP(adapt_43, 4, 3)
MAXP(bad_max_big, 4, 1, 0, 1, false)
MAXP(bad_max_s0, 2, -1, 0, 1, false)
AVGP(bad_avg_pad, 2, 2, 2, false, true)
ADAP(bad_adapt0, 0, 2)

const oc_case oc_cases_pool[] = {
    {"max_pool2d", "1-element", max_k1, 1, {T4(1, 1, 1, 1)}},
    {"max_pool2d", "(2,3,4,6) k2", max_k2, 1, {T4(2, 3, 4, 6)}},
    {"max_pool2d", "(2,2,6,7) k3 s2 p1 ceil", max_k3s2p1c, 1, {T4(2, 2, 6, 7)}},
    {"max_pool2d", "(1,2,5,4) k2 s1 p1 dilation 2", max_d2, 1, {T4(1, 2, 5, 4)}},
    {"avg_pool2d", "1-element", avg_k1, 1, {T4(1, 1, 1, 1)}},
    {"avg_pool2d", "(2,3,4,6) k2", avg_k2, 1, {T4(2, 3, 4, 6)}},
    {"avg_pool2d", "(2,2,6,7) k3 s2 p1 ceil, include pad", avg_cip, 1, {T4(2, 2, 6, 7)}},
    {"avg_pool2d", "(2,2,6,7) k3 s2 p1 ceil, exclude pad", avg_nocip, 1, {T4(2, 2, 6, 7)}},
    {"adaptive_avg_pool2d", "1-element", adapt_1, 1, {T4(1, 1, 1, 1)}},
    {"adaptive_avg_pool2d", "global (2,3,4,5)", adapt_1, 1, {T4(2, 3, 4, 5)}},
    {"adaptive_avg_pool2d", "(2,2,6,7) -> 4x3", adapt_43, 1, {T4(2, 2, 6, 7)}},
    {NULL, NULL, NULL, 0, {{0}}},
};

const oc_bad_case oc_bad_pool[] = {
    {"max_pool2d",
     "kernel 4 on 3x3",
     bad_max_big,
     1,
     {T4(1, 2, 3, 3)},
     NB_ERR_SHAPE,
     {"larger than the padded input", "(1, 2, 3, 3)"}},
    {"max_pool2d", "stride -1", bad_max_s0, 1, {T4(1, 2, 3, 3)}, NB_ERR_ARG, {"stride (-1, -1)"}},
    {"avg_pool2d",
     "padding 2 > kernel 2 / 2",
     bad_avg_pad,
     1,
     {T4(1, 2, 3, 3)},
     NB_ERR_ARG,
     {"padding 2", "(1, 2, 3, 3)"}},
    {"avg_pool2d", "3-D x", avg_k2, 1, {T3(2, 3, 3)}, NB_ERR_SHAPE, {"(N, C, H, W)", "(2, 3, 3)"}},
    {"adaptive_avg_pool2d",
     "output 0x2",
     bad_adapt0,
     1,
     {T4(1, 2, 3, 3)},
     NB_ERR_ARG,
     {"(0, 2)", "(1, 2, 3, 3)"}},
    {NULL, NULL, NULL, 0, {{0}}, NB_OK, {NULL}},
};
