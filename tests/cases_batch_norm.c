// Gradient-check and bad-input cases for batch_norm: training (statistics depend on x) with and
// without weight / bias, rank 2, 3 and 4, a running-stat update on the side, and eval mode.
#include "support/opcheck.h"

#define T(...)                                                                                     \
    {                                                                                              \
        .ndim = sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t), .shape = { __VA_ARGS__ }       \
    }

static nb_tensor *bn_train(nb_graph *g, nb_tensor *const *in, int n) {
    return nb_batch_norm(g, in[0], n > 1 ? in[1] : NULL, n > 2 ? in[2] : NULL, NULL, NULL, true,
                         0.1, 1e-5);
}
// Running statistics (fresh each call, so every evaluation sees the same ones) in eval mode.
static nb_tensor *bn_eval(nb_graph *g, nb_tensor *const *in, int n) {
    (void)n;
    int64_t c = nb_tensor_dim(in[0], 1);
    nb_dtype dt = nb_tensor_dtype(in[0]);
    nb_tensor *rm = nb_tensor_create(dt, 1, &c), *rv = nb_tensor_create(dt, 1, &c);
    for (int64_t i = 0; i < c; i++) {
        nb_tensor_set(rm, i, 0.1 * (double)i - 0.2);
        nb_tensor_set(rv, i, 0.5 + 0.25 * (double)i);
    }
    nb_tensor *y = nb_batch_norm(g, in[0], in[1], in[2], rm, rv, false, 0.1, 1e-5);
    nb_tensor_destroy(rm);
    nb_tensor_destroy(rv);
    return y;
}
static nb_tensor *bn_train_running(nb_graph *g, nb_tensor *const *in, int n) {
    (void)n;
    int64_t c = nb_tensor_dim(in[0], 1);
    nb_dtype dt = nb_tensor_dtype(in[0]);
    nb_tensor *rm = nb_tensor_create(dt, 1, &c), *rv = nb_tensor_create(dt, 1, &c);
    nb_tensor *y = nb_batch_norm(g, in[0], in[1], in[2], rm, rv, true, 0.1, 1e-5);
    nb_tensor_destroy(rm);
    nb_tensor_destroy(rv);
    return y;
}
static nb_tensor *bn_eval_no_stats(nb_graph *g, nb_tensor *const *in, int n) {
    (void)n;
    return nb_batch_norm(g, in[0], NULL, NULL, NULL, NULL, false, 0.1, 1e-5);
}
static nb_tensor *bn_bad_eps(nb_graph *g, nb_tensor *const *in, int n) {
    (void)n;
    return nb_batch_norm(g, in[0], NULL, NULL, NULL, NULL, true, 0.1, 0.0);
}

const oc_case oc_cases_batch_norm[] = {
    {"batch_norm", "(2, 1) training, no affine", bn_train, 1, {T(2, 1)}},
    {"batch_norm", "(5, 3) training", bn_train, 3, {T(5, 3), T(3), T(3)}},
    {"batch_norm", "(3, 2, 4) training, weight only", bn_train, 2, {T(3, 2, 4), T(2)}},
    {"batch_norm", "(2, 3, 3, 2) training", bn_train, 3, {T(2, 3, 3, 2), T(3), T(3)}},
    {"batch_norm",
     "(2, 3, 3, 2) training, running stats updated",
     bn_train_running,
     3,
     {T(2, 3, 3, 2), T(3), T(3)}},
    {"batch_norm", "(1, 1, 1, 1) eval", bn_eval, 3, {T(1, 1, 1, 1), T(1), T(1)}},
    {"batch_norm", "(2, 3, 2, 3) eval", bn_eval, 3, {T(2, 3, 2, 3), T(3), T(3)}},
    {NULL, NULL, NULL, 0, {{0}}},
};

const oc_bad_case oc_bad_batch_norm[] = {
    {"batch_norm",
     "weight (4) for 3 channels",
     bn_train,
     3,
     {T(2, 3, 4), T(4), T(3)},
     NB_ERR_SHAPE,
     {"has 3 channels", "weight is (4)", "(2, 3, 4)"}},
    {"batch_norm",
     "1 value per channel in training",
     bn_train,
     1,
     {T(1, 3)},
     NB_ERR_SHAPE,
     {"(1, 3)", "more than 1"}},
    {"batch_norm",
     "eval without running stats",
     bn_eval_no_stats,
     1,
     {T(2, 3)},
     NB_ERR_NULL,
     {"running_mean is NULL", "(2, 3)"}},
    {"batch_norm", "eps 0", bn_bad_eps, 1, {T(2, 3)}, NB_ERR_ARG, {"eps 0", "(2, 3)"}},
    {"batch_norm", "1-D x", bn_train, 1, {T(4)}, NB_ERR_SHAPE, {"(N, C, ...)", "(4)"}},
    {NULL, NULL, NULL, 0, {{0}}, NB_OK, {NULL}},
};
