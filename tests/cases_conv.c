// Gradient-check cases for conv2d (and conv1d, recorded as conv2d between reshapes): 1-element,
// non-square kernels and images, stride / padding / dilation / groups, bias or none, one operand
// constant (the column buffer kept or not), and a batch large enough for the per-sample parallel
// path.
#include "support/opcheck.h"

#define T4(a, b, c, d)                                                                             \
    {                                                                                              \
        .ndim = 4, .shape = { a, b, c, d }                                                         \
    }
#define C4(a, b, c, d)                                                                             \
    { .ndim = 4, .shape = {a, b, c, d}, .role = OC_CONST }
#define T3(a, b, c)                                                                                \
    {                                                                                              \
        .ndim = 3, .shape = { a, b, c }                                                            \
    }
#define V1(a)                                                                                      \
    {                                                                                              \
        .ndim = 1, .shape = { a }                                                                  \
    }

// conv2d with square stride s, padding p, dilation d and groups gr; bias when n == 3.
#define CONV(name, s, p, d, gr)                                                                    \
    static nb_tensor *name(nb_graph *g, nb_tensor *const *in, int n) {                             \
        return nb_conv2d(g, in[0], in[1], n > 2 ? in[2] : NULL, s, p, d, gr);                      \
    }
CONV(conv_plain, 1, 0, 1, 1)
CONV(conv_pad, 1, 1, 1, 1)
CONV(conv_s2p1d2g2, 2, 1, 2, 2)
CONV(conv_dw, 1, 1, 1, 3)
CONV(conv_s3, 3, 2, 1, 1)

static nb_tensor *conv_hw(nb_graph *g, nb_tensor *const *in, int n) {
    const int s[2] = {2, 1}, p[2] = {0, 2}, d[2] = {1, 2};
    return nb_conv2d_hw(g, in[0], in[1], n > 2 ? in[2] : NULL, s, p, d, 1);
}
static nb_tensor *conv1(nb_graph *g, nb_tensor *const *in, int n) {
    return nb_conv1d(g, in[0], in[1], n > 2 ? in[2] : NULL, 2, 1, 2, 1);
}

const oc_case oc_cases_conv[] = {
    {"conv2d", "1-element", conv_plain, 3, {T4(1, 1, 1, 1), T4(1, 1, 1, 1), V1(1)}},
    {"conv2d", "(2,3,5,4) * (4,3,3,2), no bias", conv_plain, 2, {T4(2, 3, 5, 4), T4(4, 3, 3, 2)}},
    {"conv2d",
     "(1,2,4,6) * (3,2,3,3), pad 1, bias",
     conv_pad,
     3,
     {T4(1, 2, 4, 6), T4(3, 2, 3, 3), V1(3)}},
    {"conv2d",
     "(2,4,7,6) * (6,2,3,2), stride 2 pad 1 dil 2 groups 2, bias",
     conv_s2p1d2g2,
     3,
     {T4(2, 4, 7, 6), T4(6, 2, 3, 2), V1(6)}},
    {"conv2d",
     "depthwise (2,3,5,5) * (6,1,3,3), groups 3",
     conv_dw,
     3,
     {T4(2, 3, 5, 5), T4(6, 1, 3, 3), V1(6)}},
    {"conv2d",
     "stride 3 pad 2 (1,2,5,7) * (2,2,2,3)",
     conv_s3,
     2,
     {T4(1, 2, 5, 7), T4(2, 2, 2, 3)}},
    {"conv2d_hw",
     "hw: stride (2,1) pad (0,2) dil (1,2)",
     conv_hw,
     3,
     {T4(2, 2, 6, 5), T4(3, 2, 2, 3), V1(3)}},
    {"conv2d",
     "w constant (no column buffer kept)",
     conv_pad,
     3,
     {T4(2, 2, 4, 3), C4(3, 2, 3, 3), V1(3)}},
    {"conv2d", "x constant", conv_s2p1d2g2, 2, {C4(2, 4, 6, 6), T4(4, 2, 2, 2)}},
    // n o ohw k = 8 8 36 36 > NB_OMP_MIN: samples in parallel at 2 threads.
    {"conv2d",
     "(8,4,8,8) * (8,4,3,3), parallel samples",
     conv_plain,
     3,
     {T4(8, 4, 8, 8), T4(8, 4, 3, 3), V1(8)}},
    {"conv1d",
     "conv1d (2,3,9) * (4,3,3), stride 2 pad 1 dil 2",
     conv1,
     3,
     {T3(2, 3, 9), T3(4, 3, 3), V1(4)}},
    {"conv1d", "1-element", conv1, 3, {T3(1, 1, 1), T3(1, 1, 1), V1(1)}},
    {NULL, NULL, NULL, 0, {{0}}},
};

static nb_tensor *bad_stride0(nb_graph *g, nb_tensor *const *in, int n) {
    (void)n;
    return nb_conv2d(g, in[0], in[1], NULL, 0, 0, 1, 1);
}
static nb_tensor *bad_pad_neg(nb_graph *g, nb_tensor *const *in, int n) {
    (void)n;
    const int s[2] = {1, 1}, p[2] = {0, -1}, d[2] = {1, 1};
    return nb_conv2d_hw(g, in[0], in[1], NULL, s, p, d, 1);
}
static nb_tensor *bad_groups(nb_graph *g, nb_tensor *const *in, int n) {
    (void)n;
    return nb_conv2d(g, in[0], in[1], NULL, 1, 0, 1, 2);
}
static nb_tensor *bad_conv1d_dil(nb_graph *g, nb_tensor *const *in, int n) {
    (void)n;
    return nb_conv1d(g, in[0], in[1], NULL, 1, 0, 0, 1);
}
static nb_tensor *bad_conv1d_ch(nb_graph *g, nb_tensor *const *in, int n) {
    (void)n;
    return nb_conv1d(g, in[0], in[1], NULL, 1, 0, 1, 1);
}

const oc_bad_case oc_bad_conv[] = {
    {"conv2d",
     "kernel 6x3 larger than 5x5 input",
     conv_plain,
     2,
     {T4(1, 2, 5, 5), T4(3, 2, 6, 3)},
     NB_ERR_SHAPE,
     {"larger than the padded input", "(3, 2, 6, 3)", "(1, 2, 5, 5)"}},
    {"conv2d",
     "stride 0",
     bad_stride0,
     2,
     {T4(1, 2, 5, 5), T4(3, 2, 3, 3)},
     NB_ERR_ARG,
     {"stride (0, 0)", "(1, 2, 5, 5)"}},
    {"conv2d_hw",
     "padding -1",
     bad_pad_neg,
     2,
     {T4(1, 2, 5, 5), T4(3, 2, 3, 3)},
     NB_ERR_ARG,
     {"padding (0, -1)", "(3, 2, 3, 3)"}},
    {"conv2d",
     "3 channels, groups 2",
     bad_groups,
     2,
     {T4(1, 3, 5, 5), T4(4, 1, 3, 3)},
     NB_ERR_SHAPE,
     {"groups 2", "(1, 3, 5, 5)", "(4, 1, 3, 3)"}},
    {"conv2d",
     "x has 3 channels, w expects 2",
     conv_plain,
     2,
     {T4(1, 3, 5, 5), T4(4, 2, 3, 3)},
     NB_ERR_SHAPE,
     {"has 3 channels", "(1, 3, 5, 5)", "(4, 2, 3, 3)"}},
    {"conv1d",
     "dilation 0",
     bad_conv1d_dil,
     2,
     {T3(1, 2, 5), T3(3, 2, 3)},
     NB_ERR_ARG,
     {"dilation 0", "(1, 2, 5)"}},
    {"conv1d",
     "x has 2 channels, w expects 4",
     bad_conv1d_ch,
     2,
     {T3(1, 2, 5), T3(3, 4, 3)},
     NB_ERR_SHAPE,
     {"has 2 channels", "(3, 4, 1, 3)"}},
    {NULL, NULL, NULL, 0, {{0}}, NB_OK, {NULL}},
};
