// SGD: hand-computed updates (plain, momentum, Nesterov, weight decay) in float32 and float64,
// zero_grad and gradient accumulation, config and parameter validation, and a behaviour test:
// a 2-4-1 network learns XOR, bitwise reproducibly from a fixed seed.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <inttypes.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "nabla.h"

// ---- helpers ---------------------------------------------------------------------------------

// A (rows, cols) tensor holding v (row-major), optionally requiring grad.
static nb_tensor *make(nb_dtype dt, int64_t rows, int64_t cols, const double *v, bool grad) {
    int64_t shape[2] = {rows, cols};
    nb_tensor *t = nb_tensor_create(dt, 2, shape);
    assert_non_null(t);
    if (v)
        assert_int_equal(nb_tensor_copy_in(t, v, NB_F64, rows * cols), NB_OK);
    if (grad)
        assert_int_equal(nb_tensor_set_requires_grad(t, true), NB_OK);
    return t;
}

// A 1-D (n) tensor holding v (zeros if NULL), optionally requiring grad.
static nb_tensor *vec(nb_dtype dt, int64_t n, const double *v, bool grad) {
    nb_tensor *t = nb_tensor_create(dt, 1, &n);
    assert_non_null(t);
    if (v)
        assert_int_equal(nb_tensor_copy_in(t, v, NB_F64, n), NB_OK);
    if (grad)
        assert_int_equal(nb_tensor_set_requires_grad(t, true), NB_OK);
    return t;
}

// cmocka 1.1.5's assert_float_equal compares in float; this one stays in double.
#define assert_close(a, b, tol) assert_close_at((a), (b), (tol), #a, __LINE__)
static void assert_close_at(double a, double b, double tol, const char *expr, int line) {
    if (!(fabs(a - b) <= tol))
        fail_msg("line %d: %s = %.17g, expected %.17g (tolerance %g)", line, expr, a, b, tol);
}

static void assert_contains(const char *msg, const char *part) {
    if (!strstr(msg, part))
        fail_msg("message \"%s\" lacks \"%s\"", msg, part);
}

// One backward of y = x wᵀ (x (1, n), w (1, n)): adds exactly x to w's grad.
static void backward_linear(nb_graph *g, nb_tensor *x, nb_tensor *w) {
    nb_graph_reset(g);
    nb_tensor *y = nb_linear(g, x, w, NULL);
    if (!y)
        fail_msg("%s", nb_graph_error(g));
    assert_int_equal(nb_backward(g, y), NB_OK);
}

// ---- hand-computed updates ---------------------------------------------------------------------

// Every case starts from w = (1, -2) and sees the gradients below, one row per step.
static const double grads[3][2] = {{0.5, 1.0}, {-1.0, 2.0}, {0.25, -0.5}};

typedef struct sgd_case {
    const char *name;
    nb_sgd_config cfg;
    int steps;
    double expect[2]; // w after `steps` updates, worked out by hand (see each case)
} sgd_case;

static const sgd_case cases[] = {
    // w -= 0.1 (g1 + g2 + g3) = (1, -2) - 0.1 (-0.25, 2.5)
    {"plain", {0.1, 0, 0, false}, 3, {1.025, -2.25}},
    // v1 = g1 = (0.5, 1), w1 = (0.95, -2.1); v2 = 0.9 v1 + g2 = (-0.55, 2.9),
    // w2 = (1.005, -2.39); v3 = 0.9 v2 + g3 = (-0.245, 2.11), w3 = (1.0295, -2.601)
    {"momentum", {0.1, 0.9, 0, false}, 3, {1.0295, -2.601}},
    // same v; d = g + 0.9 v: d1 = (0.95, 1.9), w1 = (0.905, -2.19); d2 = (-1.495, 4.61),
    // w2 = (1.0545, -2.651); d3 = (0.0295, 1.399), w3 = (1.05155, -2.7909)
    {"nesterov", {0.1, 0.9, 0, true}, 3, {1.05155, -2.7909}},
    // d1 = g1 + 0.01 w0 = (0.51, 0.98), w1 = (0.949, -2.098);
    // d2 = g2 + 0.01 w1 = (-0.99051, 1.97902), w2 = (1.048051, -2.295902)
    {"weight decay", {0.1, 0, 0.01, false}, 2, {1.048051, -2.295902}},
    // d1 = g1 + 0.1 w0 = (0.6, 0.8) = v1, w1 = (0.94, -2.08); d2 = g2 + 0.1 w1 = (-0.906, 1.792),
    // v2 = 0.9 v1 + d2 = (-0.366, 2.512), w2 = (0.9766, -2.3312)
    {"momentum + weight decay", {0.1, 0.9, 0.1, false}, 2, {0.9766, -2.3312}},
};

static void run_case(const sgd_case *c, nb_dtype dt, double tol) {
    static const double w0[2] = {1.0, -2.0};
    nb_tensor *w = make(dt, 1, 2, w0, true);
    nb_tensor *x = make(dt, 1, 2, NULL, false);
    nb_graph *g = nb_graph_create();
    nb_sgd *opt = nb_sgd_create(&w, 1, c->cfg);
    assert_non_null(g);
    if (!opt)
        fail_msg("%s: %s", c->name, nb_last_error());
    for (int s = 0; s < c->steps; s++) {
        assert_int_equal(nb_tensor_copy_in(x, grads[s], NB_F64, 2), NB_OK);
        nb_sgd_zero_grad(opt);
        backward_linear(g, x, w);
        assert_int_equal(nb_sgd_step(opt), NB_OK);
    }
    for (int i = 0; i < 2; i++)
        if (fabs(nb_tensor_get(w, i) - c->expect[i]) > tol)
            fail_msg("%s (%s): w[%d] = %.17g, expected %.17g", c->name, nb_dtype_name(dt), i,
                     nb_tensor_get(w, i), c->expect[i]);
    nb_sgd_destroy(opt);
    nb_graph_destroy(g);
    nb_tensor_destroy(x);
    nb_tensor_destroy(w);
}

static void updates_match_hand_values_f64(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        run_case(&cases[i], NB_F64, 1e-12);
}

static void updates_match_hand_values_f32(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        run_case(&cases[i], NB_F32, 1e-5);
}

static void lr_can_be_changed(void **state) {
    (void)state;
    static const double w0[2] = {1.0, -2.0};
    nb_tensor *w = make(NB_F64, 1, 2, w0, true);
    nb_tensor *x = make(NB_F64, 1, 2, grads[0], false);
    nb_graph *g = nb_graph_create();
    nb_sgd *opt = nb_sgd_create(&w, 1, (nb_sgd_config){.lr = 0.1});
    assert_non_null(opt);
    assert_close(nb_sgd_get_lr(opt), 0.1, 0);
    assert_int_equal(nb_sgd_set_lr(opt, 0.5), NB_OK);
    assert_close(nb_sgd_get_lr(opt), 0.5, 0);
    assert_int_equal(nb_sgd_set_lr(opt, -1), NB_ERR_ARG); // refused, with a message
    assert_close(nb_sgd_get_lr(opt), 0.5, 0);
    assert_contains(nb_last_error(), "lr");
    assert_int_equal(nb_sgd_set_lr(opt, (double)NAN), NB_ERR_ARG);
    assert_int_equal(nb_sgd_set_lr(NULL, 0.1), NB_ERR_NULL);
    assert_close(nb_sgd_get_lr(opt), 0.5, 0);
    backward_linear(g, x, w);
    assert_int_equal(nb_sgd_step(opt), NB_OK);
    assert_close(nb_tensor_get(w, 0), 1.0 - 0.5 * 0.5, 1e-15);
    assert_close(nb_tensor_get(w, 1), -2.0 - 0.5 * 1.0, 1e-15);
    nb_sgd_destroy(opt);
    nb_graph_destroy(g);
    nb_tensor_destroy(x);
    nb_tensor_destroy(w);
}

// ---- grads: zeroing, skipping, accumulation ----------------------------------------------------

static void param_without_grad_is_skipped(void **state) {
    (void)state;
    static const double v[2] = {3.0, 4.0};
    nb_tensor *used = make(NB_F32, 1, 2, v, true);
    nb_tensor *unused = make(NB_F32, 1, 2, v, true);
    nb_tensor *x = make(NB_F32, 1, 2, grads[0], false);
    nb_tensor *params[2] = {used, unused};
    nb_graph *g = nb_graph_create();
    nb_sgd *opt = nb_sgd_create(params, 2, (nb_sgd_config){.lr = 1, .momentum = 0.5});
    assert_non_null(opt);
    nb_sgd_zero_grad(opt); // no grads yet: a no-op, not a crash
    assert_null(nb_tensor_grad(unused));
    backward_linear(g, x, used);
    assert_int_equal(nb_sgd_step(opt), NB_OK);
    assert_null(nb_tensor_grad(unused));
    assert_close(nb_tensor_get(used, 0), 3.0 - 0.5, 0);
    assert_close(nb_tensor_get(used, 1), 4.0 - 1.0, 0);
    assert_close(nb_tensor_get(unused, 0), 3.0, 0);
    assert_close(nb_tensor_get(unused, 1), 4.0, 0);
    nb_sgd_destroy(opt);
    nb_graph_destroy(g);
    nb_tensor_destroy(x);
    nb_tensor_destroy(unused);
    nb_tensor_destroy(used);
}

// loss = w2 · tanh(w1 x + b1) for one sample: x (1, 2), w1 (3, 2), b1 (3), w2 (1, 3).
typedef struct tiny_net {
    nb_tensor *x, *w1, *b1, *w2;
} tiny_net;

static nb_tensor *tiny_forward(nb_graph *g, const tiny_net *n) {
    nb_graph_reset(g);
    nb_tensor *loss = nb_linear(g, nb_tanh(g, nb_linear(g, n->x, n->w1, n->b1)), n->w2, NULL);
    if (!loss)
        fail_msg("%s", nb_graph_error(g));
    return loss;
}

static void grads_accumulate_until_zeroed(void **state) {
    (void)state;
    static const double xv[2] = {0.3, -0.7}, w1v[6] = {0.1, 0.2, -0.3, 0.4, 0.5, -0.6};
    static const double b1v[3] = {0.05, -0.1, 0.2}, w2v[3] = {0.7, -0.8, 0.9};
    tiny_net n = {make(NB_F64, 1, 2, xv, false), make(NB_F64, 3, 2, w1v, true),
                  vec(NB_F64, 3, b1v, true), make(NB_F64, 1, 3, w2v, true)};
    nb_tensor *params[3] = {n.w1, n.b1, n.w2};
    nb_graph *g = nb_graph_create();
    nb_sgd *opt = nb_sgd_create(params, 3, (nb_sgd_config){.lr = 0.1});
    assert_non_null(opt);

    nb_tensor *loss = tiny_forward(g, &n);
    assert_int_equal(nb_backward(g, loss), NB_OK);
    double once[3][6];
    for (int p = 0; p < 3; p++)
        for (int64_t i = 0; i < nb_tensor_numel(params[p]); i++)
            once[p][i] = nb_tensor_grad_get(params[p], i);
    assert_true(fabs(once[0][0]) > 1e-3); // a real gradient, not a trivially zero one

    // A second backward over the same tape, no zero_grad: every grad doubles (g + g = 2g
    // exactly in floating point).
    assert_int_equal(nb_backward(g, loss), NB_OK);
    for (int p = 0; p < 3; p++)
        for (int64_t i = 0; i < nb_tensor_numel(params[p]); i++)
            assert_true(nb_tensor_grad_get(params[p], i) == 2 * once[p][i]);

    // A fresh forward (as in the next training step) adds a third copy.
    assert_int_equal(nb_backward(g, tiny_forward(g, &n)), NB_OK);
    for (int p = 0; p < 3; p++)
        for (int64_t i = 0; i < nb_tensor_numel(params[p]); i++)
            assert_close(nb_tensor_grad_get(params[p], i), 3 * once[p][i], 1e-15);

    // zero_grad, then one backward gives the single gradient again.
    nb_sgd_zero_grad(opt);
    for (int p = 0; p < 3; p++)
        for (int64_t i = 0; i < nb_tensor_numel(params[p]); i++)
            assert_true(nb_tensor_grad_get(params[p], i) == 0);
    assert_int_equal(nb_backward(g, tiny_forward(g, &n)), NB_OK);
    for (int p = 0; p < 3; p++)
        for (int64_t i = 0; i < nb_tensor_numel(params[p]); i++)
            assert_true(nb_tensor_grad_get(params[p], i) == once[p][i]);

    nb_sgd_destroy(opt);
    nb_graph_destroy(g);
    nb_tensor_destroy(n.x);
    nb_tensor_destroy(n.w1);
    nb_tensor_destroy(n.b1);
    nb_tensor_destroy(n.w2);
}

// ---- validation --------------------------------------------------------------------------------

static void expect_rejected(nb_tensor *const *params, int n, nb_sgd_config cfg, const char *part) {
    nb_sgd *opt = nb_sgd_create(params, n, cfg);
    if (opt) {
        nb_sgd_destroy(opt);
        fail_msg("accepted a config that should fail with \"%s\"", part);
    }
    assert_contains(nb_last_error(), "nb_sgd_create");
    assert_contains(nb_last_error(), part);
}

// zero_grad clears every grad element at 1 and 2 threads when the grads are large enough (75 001
// elements in all, above the library's 32 768-element threshold) for one OpenMP region to clear
// them in shares laid across tensor boundaries (at 2 threads the split falls inside `a`), skips
// a parameter that has no grad yet, and leaves the values alone.
static void large_grads_are_cleared_on_every_thread_count(void **state) {
    (void)state;
    int64_t na = 40001, nb = 7, nc = 30000, nd = 5000;
    nb_tensor *a = nb_tensor_create(NB_F32, 1, &na), *b = nb_tensor_create(NB_F32, 1, &nb);
    nb_tensor *c = nb_tensor_create(NB_F32, 1, &nc), *d = nb_tensor_create(NB_F64, 1, &nd);
    nb_tensor *params[4] = {a, b, c, d};
    for (int p = 0; p < 4; p++) {
        assert_non_null(params[p]);
        assert_int_equal(nb_tensor_fill(params[p], 0.5), NB_OK);
        assert_int_equal(nb_tensor_set_requires_grad(params[p], true), NB_OK);
    }
    nb_sgd *opt = nb_sgd_create(params, 4, (nb_sgd_config){.lr = 0.1});
    assert_non_null(opt);
    nb_graph *g = nb_graph_create();
    int threads0 = nb_get_num_threads();
    for (int threads = 1; threads <= 2; threads++) {
        nb_set_num_threads(threads);
        // d loss / d a = d loss / d c = 1, d loss / d d = 1; b takes no part (its grad stays NULL)
        nb_graph_reset(g);
        assert_int_equal(nb_backward(g, nb_add(g, nb_sum(g, a), nb_sum(g, c))), NB_OK);
        nb_graph_reset(g);
        assert_int_equal(nb_backward(g, nb_sum(g, d)), NB_OK);
        assert_true(nb_tensor_grad_get(a, na - 1) == 1 && nb_tensor_grad_get(d, 0) == 1);
        nb_sgd_zero_grad(opt);
        const nb_tensor *with_grad[3] = {a, c, d};
        for (int p = 0; p < 3; p++)
            for (int64_t i = 0; i < nb_tensor_numel(with_grad[p]); i++)
                if (nb_tensor_grad_get(with_grad[p], i) != 0)
                    fail_msg("threads %d: grad %d element %" PRId64 " not cleared", threads, p, i);
        assert_null(nb_tensor_grad(b));
        for (int p = 0; p < 4; p++)
            assert_true(nb_tensor_get(params[p], nb_tensor_numel(params[p]) - 1) == 0.5);
    }
    nb_set_num_threads(threads0);
    nb_graph_destroy(g);
    nb_sgd_destroy(opt);
    for (int p = 0; p < 4; p++)
        nb_tensor_destroy(params[p]);
}

static void bad_configs_are_rejected(void **state) {
    (void)state;
    nb_tensor *w = make(NB_F32, 2, 3, NULL, true);
    nb_tensor *const p[1] = {w};
    expect_rejected(p, 1, (nb_sgd_config){.lr = 0}, "lr must be finite and > 0, got 0");
    expect_rejected(p, 1, (nb_sgd_config){.lr = -0.1}, "lr must be finite and > 0, got -0.1");
    expect_rejected(p, 1, (nb_sgd_config){.lr = (double)NAN}, "lr must be finite");
    expect_rejected(p, 1, (nb_sgd_config){.lr = (double)INFINITY}, "lr must be finite");
    expect_rejected(p, 1, (nb_sgd_config){.lr = 0.1, .momentum = 1}, "momentum must be in [0, 1)");
    expect_rejected(p, 1, (nb_sgd_config){.lr = 0.1, .momentum = -0.5}, "got -0.5");
    expect_rejected(p, 1, (nb_sgd_config){.lr = 0.1, .momentum = (double)NAN}, "momentum");
    expect_rejected(p, 1, (nb_sgd_config){.lr = 0.1, .weight_decay = -1e-4}, "weight_decay");
    expect_rejected(p, 1, (nb_sgd_config){.lr = 0.1, .weight_decay = (double)INFINITY},
                    "weight_decay");
    expect_rejected(p, 1, (nb_sgd_config){.lr = 0.1, .nesterov = true},
                    "nesterov needs momentum > 0");
    nb_sgd *ok = nb_sgd_create(
        p, 1, (nb_sgd_config){.lr = 0.1, .momentum = 0.9, .nesterov = true, .weight_decay = 1e-4});
    assert_non_null(ok);
    nb_sgd_destroy(ok);
    nb_tensor_destroy(w);
}

static void bad_params_are_rejected(void **state) {
    (void)state;
    nb_sgd_config cfg = {.lr = 0.1, .momentum = 0.9};
    nb_tensor *w = make(NB_F64, 2, 3, NULL, true);
    nb_tensor *frozen = make(NB_F64, 4, 5, NULL, false);
    int64_t n_labels = 7;
    nb_tensor *labels = nb_tensor_create(NB_I32, 1, &n_labels);
    assert_non_null(labels);

    expect_rejected(NULL, 1, cfg, "params is NULL");
    expect_rejected(&w, 0, cfg, "empty parameter list");
    nb_tensor *with_null[2] = {w, NULL};
    expect_rejected(with_null, 2, cfg, "params[1] is NULL");
    nb_tensor *with_frozen[2] = {w, frozen};
    expect_rejected(with_frozen, 2, cfg, "params[1] (4, 5) does not require grad");
    expect_rejected(&labels, 1, cfg, "params[0] (7) is int32");
    nb_tensor *dup[3] = {w, frozen, w};
    assert_int_equal(nb_tensor_set_requires_grad(frozen, true), NB_OK);
    expect_rejected(dup, 3, cfg, "params[0] and params[2] are the same tensor (2, 3)");
    nb_graph *g = nb_graph_create();
    nb_tensor *op_out = nb_tanh(g, w); // graph-owned: would dangle after reset
    assert_false(nb_tensor_is_leaf(op_out));
    assert_true(nb_tensor_is_leaf(w));
    expect_rejected(&op_out, 1, cfg, "params[0] (2, 3) is an op output");
    nb_graph_destroy(g);

    assert_int_equal(nb_sgd_step(NULL), NB_ERR_NULL);
    nb_sgd_zero_grad(NULL);
    nb_sgd_destroy(NULL);
    assert_close(nb_sgd_get_lr(NULL), 0, 0);

    nb_tensor_destroy(labels);
    nb_tensor_destroy(frozen);
    nb_tensor_destroy(w);
}

// ---- behaviour: XOR ----------------------------------------------------------------------------

// Measured: from seed 42 the loss passes 0.01 after ~50 steps and is ~1.5e-3 by step 300, in
// both dtypes. Seeds 1-50 all get there except 40, which lands in XOR's well-known local
// minimum (loss ≈ 0.35): a property of the problem, so the test pins the seed.
#define XOR_SEED 42
#define XOR_STEPS 300
#define XOR_LOSS_GOAL 0.01

// Full-batch training of x (4, 2) -> linear(2, 4) -> tanh -> linear(4, 1) -> BCE with logits.
// Returns the final loss; *correct gets the number of the 4 points classified right.
static double train_xor(nb_dtype dt, uint64_t seed, int *correct) {
    static const double xv[8] = {0, 0, 0, 1, 1, 0, 1, 1}, yv[4] = {0, 1, 1, 0};
    nb_tensor *x = make(dt, 4, 2, xv, false);
    nb_tensor *y = make(dt, 4, 1, yv, false);
    nb_tensor *w1 = make(dt, 4, 2, NULL, true);
    nb_tensor *w2 = make(dt, 1, 4, NULL, true);
    nb_tensor *b1 = vec(dt, 4, NULL, true);
    nb_tensor *b2 = vec(dt, 1, NULL, true);
    nb_rng rng;
    nb_rng_seed(&rng, seed);
    assert_int_equal(nb_init_xavier_uniform(w1, &rng), NB_OK);
    assert_int_equal(nb_init_xavier_uniform(w2, &rng), NB_OK);

    nb_tensor *params[4] = {w1, b1, w2, b2};
    nb_graph *g = nb_graph_create();
    nb_sgd *opt = nb_sgd_create(params, 4, (nb_sgd_config){.lr = 0.5, .momentum = 0.9});
    assert_non_null(g);
    assert_non_null(opt);
    double loss_value = (double)INFINITY;
    for (int step = 0; step < XOR_STEPS; step++) {
        nb_graph_reset(g);
        nb_tensor *logits = nb_linear(g, nb_tanh(g, nb_linear(g, x, w1, b1)), w2, b2);
        nb_tensor *loss = nb_bce_logits_loss(g, logits, y, NB_REDUCE_MEAN);
        if (!loss)
            fail_msg("xor: %s", nb_graph_error(g));
        loss_value = nb_tensor_get(loss, 0);
        nb_sgd_zero_grad(opt);
        assert_int_equal(nb_backward(g, loss), NB_OK);
        assert_int_equal(nb_sgd_step(opt), NB_OK);
    }
    // Evaluate the trained weights (the loss above was measured before the last update).
    nb_graph_reset(g);
    nb_tensor *logits = nb_linear(g, nb_tanh(g, nb_linear(g, x, w1, b1)), w2, b2);
    nb_tensor *loss = nb_bce_logits_loss(g, logits, y, NB_REDUCE_MEAN);
    if (!loss)
        fail_msg("xor: %s", nb_graph_error(g));
    loss_value = nb_tensor_get(loss, 0);
    *correct = 0;
    for (int i = 0; i < 4; i++)
        *correct += (nb_tensor_get(logits, i) > 0) == (yv[i] > 0.5);

    nb_sgd_destroy(opt);
    nb_graph_destroy(g);
    for (int i = 0; i < 4; i++)
        nb_tensor_destroy(params[i]);
    nb_tensor_destroy(y);
    nb_tensor_destroy(x);
    return loss_value;
}

static void xor_is_learned(void **state) {
    (void)state;
    nb_dtype dts[2] = {NB_F32, NB_F64};
    for (int d = 0; d < 2; d++) {
        int correct = 0;
        double loss = train_xor(dts[d], XOR_SEED, &correct);
        if (!(loss < XOR_LOSS_GOAL) || correct != 4)
            fail_msg("xor (%s): loss %g (goal < %g), %d/4 correct after %d steps",
                     nb_dtype_name(dts[d]), loss, XOR_LOSS_GOAL, correct, XOR_STEPS);
    }
}

static void xor_training_is_deterministic(void **state) {
    (void)state;
    int c1 = 0, c2 = 0;
    double a = train_xor(NB_F32, 7, &c1);
    double b = train_xor(NB_F32, 7, &c2);
    assert_memory_equal(&a, &b, sizeof a); // bitwise, not merely close
    assert_int_equal(c1, c2);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(updates_match_hand_values_f64),
        cmocka_unit_test(updates_match_hand_values_f32),
        cmocka_unit_test(lr_can_be_changed),
        cmocka_unit_test(param_without_grad_is_skipped),
        cmocka_unit_test(grads_accumulate_until_zeroed),
        cmocka_unit_test(large_grads_are_cleared_on_every_thread_count),
        cmocka_unit_test(bad_configs_are_rejected),
        cmocka_unit_test(bad_params_are_rejected),
        cmocka_unit_test(xor_is_learned),
        cmocka_unit_test(xor_training_is_deterministic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
