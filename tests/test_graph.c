// The tape: accumulation (fan-out, diamonds, shared weights), skipping of unrelated nodes,
// no-grad mode, error values instead of crashes, the gradient checker's ability to fail, and
// zero allocations in a steady-state training step.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <math.h>

#include "graph/graph_impl.h" // only for the deliberately wrong test op below
#include "support/alloc_count.h"
#include "support/expect.h"
#include "support/opcheck.h"

static nb_tensor *param(nb_dtype dt, int ndim, const int64_t *shape, uint64_t seed) {
    nb_tensor *t = nb_tensor_create(dt, ndim, shape);
    nb_rng rng;
    nb_rng_seed(&rng, seed);
    nb_init_uniform(t, &rng, -1, 1);
    nb_tensor_set_requires_grad(t, true);
    return t;
}

static void check(nb_gradcheck_fn f, nb_tensor **in, int n) {
    nb_gradcheck_result r = nb_gradcheck(f, NULL, in, n, 1e-6, 1e-7, 1e-6);
    if (!r.ok)
        fprintf(stderr, "  %s\n", r.message);
    assert_true(r.ok);
    assert_true(r.n_checked > 0);
}

// x used twice by one op: d(x x)/dx has two terms, both must arrive.
static nb_tensor *f_twice(nb_graph *g, nb_tensor *const *in, int n) {
    (void)n;
    return nb_matmul(g, in[0], in[0]);
}
static nb_tensor *gc_twice(nb_graph *g, nb_tensor *const *in, int n, void *ctx) {
    (void)ctx;
    return f_twice(g, in, n);
}
static void tensor_used_twice(void **state) {
    (void)state;
    nb_tensor *x = param(NB_F64, 2, (int64_t[]){3, 3}, 1);
    check(gc_twice, &x, 1);
    nb_tensor_destroy(x);
}

// x -> a -> (b, c) -> matmul(b, c): a's grad is the sum over both paths.
static nb_tensor *gc_diamond(nb_graph *g, nb_tensor *const *in, int n, void *ctx) {
    (void)n;
    (void)ctx;
    nb_tensor *a = nb_tanh(g, in[0]);
    return nb_matmul(g, nb_sigmoid(g, a), nb_exp(g, a));
}
static void diamond(void **state) {
    (void)state;
    nb_tensor *x = param(NB_F64, 2, (int64_t[]){4, 4}, 2);
    check(gc_diamond, &x, 1);
    nb_tensor_destroy(x);
}

// An RNN-style loop: h_{t+1} = tanh(h_t Wᵀ + b), the same W and b at all 5 steps.
static nb_tensor *gc_unrolled(nb_graph *g, nb_tensor *const *in, int n, void *ctx) {
    (void)n;
    (void)ctx;
    nb_tensor *h = in[0];
    for (int t = 0; t < 5; t++)
        h = nb_tanh(g, nb_linear(g, h, in[1], in[2]));
    return h;
}
static void weights_shared_across_5_steps(void **state) {
    (void)state;
    nb_tensor *in[3] = {param(NB_F64, 2, (int64_t[]){2, 3}, 3),
                        param(NB_F64, 2, (int64_t[]){3, 3}, 4),
                        param(NB_F64, 1, (int64_t[]){3}, 5)};
    check(gc_unrolled, in, 3);
    for (int i = 0; i < 3; i++)
        nb_tensor_destroy(in[i]);
}

static void backward_twice_accumulates_and_unrelated_nodes_are_skipped(void **state) {
    (void)state;
    nb_tensor *x = param(NB_F64, 2, (int64_t[]){1, 1}, 6);
    nb_tensor *unrelated = param(NB_F64, 2, (int64_t[]){1, 1}, 7);
    nb_graph *g = nb_graph_create();
    nb_tensor *y = nb_exp(g, x);
    nb_tensor *side = nb_exp(g, unrelated); // recorded, but does not lead to y
    assert_non_null(side);
    assert_int_equal(nb_backward(g, y), NB_OK);
    double g1 = nb_tensor_grad_get(x, 0);
    assert_true(fabs(g1 - exp(nb_tensor_get(x, 0))) < 1e-15);
    assert_null(nb_tensor_grad(unrelated));
    assert_int_equal(nb_backward(g, y), NB_OK);
    assert_true(nb_tensor_grad_get(x, 0) == 2 * g1); // like PyTorch: zeroing is explicit
    nb_tensor_zero_grad(x);
    assert_true(nb_tensor_grad_get(x, 0) == 0.0);
    nb_graph_destroy(g);
    nb_tensor_destroy(x);
    nb_tensor_destroy(unrelated);
}

static void no_grad_mode_records_nothing_for_backward(void **state) {
    (void)state;
    nb_tensor *x = param(NB_F32, 2, (int64_t[]){2, 2}, 8);
    nb_graph *g = nb_graph_create();
    nb_graph_set_grad_enabled(g, false);
    assert_false(nb_graph_grad_enabled(g));
    nb_tensor *y = nb_matmul(g, x, x);
    assert_non_null(y);
    assert_false(nb_tensor_requires_grad(y));
    assert_null(nb_tensor_grad(y));
    nb_tensor *up = nb_tensor_create(NB_F32, 2, (int64_t[]){2, 2});
    assert_int_equal(nb_backward_with(g, y, up), NB_ERR_STATE);
    assert_non_null(strstr(nb_graph_error(g), "does not require grad"));
    nb_tensor_destroy(up);
    nb_graph_destroy(g);
    nb_tensor_destroy(x);
}

// nb_backward's root: each way to pass a tensor it cannot start from gets its own message.
static void backward_root_errors_say_why(void **state) {
    (void)state;
    nb_tensor *x = param(NB_F32, 2, (int64_t[]){2, 3}, 12);
    nb_graph *g = nb_graph_create(), *h = nb_graph_create();
    nb_tensor *stale = nb_sum(g, nb_mul(g, x, x));
    nb_graph_reset(g);
    assert_int_equal(nb_backward(g, stale), NB_ERR_STATE);
    // "a stale op output, used after nb_graph_reset (made before it)", or, in a build that
    // poisons the released headers (debug, sanitizers), "an op output used after nb_graph_reset"
    assert_has(nb_graph_error(g), "nb_backward: ");
    assert_has(nb_graph_error(g), " used after nb_graph_reset");
    nb_graph_reset(g);
    nb_tensor *other = nb_sum(h, x);
    assert_int_equal(nb_backward(g, other), NB_ERR_STATE);
    assert_has(nb_graph_error(g), "nb_backward: output () was made on another graph");
    nb_graph_reset(g);
    assert_int_equal(nb_backward(g, x), NB_ERR_STATE);
    assert_has(nb_graph_error(g), "nb_backward: output (2, 3) is not an op output of this graph");
    nb_graph_reset(g);
    nb_tensor *up = nb_tensor_create(NB_F32, 0, NULL);
    assert_int_equal(nb_backward_with(g, other, up), NB_ERR_STATE);
    assert_has(nb_graph_error(g), "nb_backward_with: output () was made on another graph");
    nb_tensor_destroy(up);
    nb_graph_destroy(g), nb_graph_destroy(h);
    nb_tensor_destroy(x);
}

static void errors_are_values(void **state) {
    (void)state;
    nb_tensor *a = param(NB_F32, 2, (int64_t[]){64, 784}, 9);
    nb_tensor *b = param(NB_F32, 2, (int64_t[]){748, 10}, 10);
    nb_tensor *d = param(NB_F64, 2, (int64_t[]){784, 10}, 11);
    nb_graph *g = nb_graph_create();

    nb_tensor *y = nb_matmul(g, a, b);
    assert_true(oc_expect_error(g, y, NB_ERR_SHAPE,
                                "matmul: inner dimensions differ: (64, 784) x "
                                "(748, 10)",
                                NULL));
    // Sticky: a later op given NULL returns NULL and the first message stays.
    assert_null(nb_relu(g, y));
    assert_null(nb_tanh(g, a)); // valid input, but the graph is in error
    assert_non_null(strstr(nb_graph_error(g), "inner dimensions differ"));
    assert_int_equal(nb_backward(g, y), NB_ERR_SHAPE);

    nb_graph_reset(g);
    assert_int_equal(nb_graph_status(g), NB_OK);
    assert_true(oc_expect_error(g, nb_matmul(g, a, d), NB_ERR_DTYPE, "matmul", "mixed dtypes",
                                "float64", NULL));
    nb_graph_reset(g);
    assert_true(oc_expect_error(g, nb_relu(g, NULL), NB_ERR_NULL, "relu", "NULL", NULL));
    nb_graph_reset(g);
    assert_int_equal(nb_backward(g, NULL), NB_ERR_NULL);
    assert_null(nb_relu(NULL, a));
    assert_non_null(strstr(nb_last_error(), "graph is NULL"));
    nb_graph_destroy(g);
    nb_tensor_destroy(a);
    nb_tensor_destroy(b);
    nb_tensor_destroy(d);
}

static void backward_rejects_bad_roots(void **state) {
    (void)state;
    nb_tensor *x = param(NB_F64, 2, (int64_t[]){2, 3}, 12);
    nb_graph *g = nb_graph_create(), *other = nb_graph_create();
    nb_tensor *y = nb_tanh(g, x);
    assert_int_equal(nb_backward(g, y), NB_ERR_SHAPE); // not a scalar
    assert_non_null(strstr(nb_graph_error(g), "(2, 3)"));
    nb_graph_reset(g);
    y = nb_tanh(g, x);
    assert_int_equal(nb_backward(other, y), NB_ERR_STATE); // from another graph
    assert_int_equal(nb_backward(g, x), NB_ERR_STATE);     // a leaf, not an op output
    nb_graph_clear_error(g);
    nb_tensor *w = nb_tensor_create(NB_F64, 1, (int64_t[]){5});
    assert_int_equal(nb_backward_with(g, y, w), NB_ERR_SHAPE);
    nb_tensor_destroy(w);
    // Cross-graph input and use-after-reset are reported, not silently read.
    nb_graph_reset(other);
    assert_true(oc_expect_error(other, nb_tanh(other, y), NB_ERR_STATE, "another graph", NULL));
    nb_graph_reset(g);
    assert_true(oc_expect_error(g, nb_tanh(g, y), NB_ERR_STATE, "after nb_graph_reset", NULL));
    nb_tensor_destroy(y); // refused: graph-owned
    assert_non_null(strstr(nb_last_error(), "belongs to a graph"));
    nb_graph_destroy(g);
    nb_graph_destroy(other);
    nb_tensor_destroy(x);
}

// A test-only op with a deliberately wrong derivative: y = x², backward adds dy·x (should
// be dy·2x). The checker must report it.
static nb_status sq_infer(nb_node *nd, nb_shape *out) {
    out->ndim = nd->in[0]->ndim;
    memcpy(out->dim, nd->in[0]->shape, sizeof out->dim);
    return NB_OK;
}
static void sq_forward(nb_node *nd) {
    for (int64_t i = 0; i < nd->out->numel; i++)
        ((double *)nd->out->data)[i] =
            ((double *)nd->in[0]->data)[i] * ((double *)nd->in[0]->data)[i];
}
static void sq_backward_wrong(nb_node *nd) {
    for (int64_t i = 0; i < nd->out->numel; i++)
        ((double *)nd->in[0]->grad)[i] +=
            ((double *)nd->out->grad)[i] * ((double *)nd->in[0]->data)[i];
}
static const nb_op wrong_square = {"wrong_square",
                                   1,
                                   0,
                                   sq_infer,
                                   sq_forward,
                                   sq_backward_wrong,
                                   NULL,
                                   "a test op with a wrong backward",
                                   false,
                                   false};
static nb_tensor *gc_wrong(nb_graph *g, nb_tensor *const *in, int n, void *ctx) {
    (void)ctx;
    return nb__record(g, &wrong_square, in, n, NULL, 0);
}
static void gradcheck_catches_a_wrong_derivative(void **state) {
    (void)state;
    nb_tensor *x = param(NB_F64, 2, (int64_t[]){2, 3}, 13);
    nb_gradcheck_result r = nb_gradcheck(gc_wrong, NULL, &x, 1, 1e-6, 1e-7, 1e-6);
    assert_int_equal(r.status, NB_OK);
    assert_false(r.ok);
    assert_true(r.max_rel_err > 0.3); // off by a factor of 2
    assert_int_equal(r.worst_input, 0);
    assert_true(r.worst_index >= 0 && r.worst_index < 6);
    assert_true(fabs(r.worst_numeric - 2 * r.worst_analytic) < 1e-6);
    assert_non_null(strstr(r.message, "analytic"));
    // f32 inputs are refused: the checker works in float64.
    nb_tensor *f = param(NB_F32, 1, (int64_t[]){2}, 14);
    r = nb_gradcheck(gc_wrong, NULL, &f, 1, 1e-6, 1e-7, 1e-6);
    assert_int_equal(r.status, NB_ERR_DTYPE);
    assert_false(r.ok);
    nb_tensor_destroy(x);
    nb_tensor_destroy(f);
}

static void steady_state_step_allocates_nothing(void **state) {
    (void)state;
    tc_count_allocs_start();
    nb_tensor *x = nb_tensor_create(NB_F32, 2, (int64_t[]){16, 20});
    nb_tensor *t = nb_tensor_create(NB_F32, 2, (int64_t[]){16, 4});
    nb_tensor *w1 = param(NB_F32, 2, (int64_t[]){32, 20}, 15);
    nb_tensor *b1 = param(NB_F32, 1, (int64_t[]){32}, 16);
    nb_tensor *w2 = param(NB_F32, 2, (int64_t[]){4, 32}, 17);
    nb_tensor *b2 = param(NB_F32, 1, (int64_t[]){4}, 18);
    nb_tensor *params[] = {w1, b1, w2, b2};
    nb_sgd *opt = nb_sgd_create(params, 4, (nb_sgd_config){.lr = 0.1, .momentum = 0.9});
    nb_graph *g = nb_graph_create();
    long before_step3 = 0;
    for (int step = 0; step < 4; step++) {
        if (step == 2)
            before_step3 = tc_allocs();
        nb_graph_reset(g);
        nb_sgd_zero_grad(opt);
        nb_tensor *h = nb_relu(g, nb_linear(g, x, w1, b1));
        nb_tensor *loss = nb_mse_loss(g, nb_linear(g, h, w2, b2), t, NB_REDUCE_MEAN);
        assert_non_null(loss);
        assert_int_equal(nb_backward(g, loss), NB_OK);
        assert_int_equal(nb_sgd_step(opt), NB_OK);
    }
    long steady = tc_allocs() - before_step3;
    tc_count_allocs_stop();
    assert_int_equal(steady, 0);
    nb_graph_destroy(g);
    nb_sgd_destroy(opt);
    for (int i = 0; i < 4; i++)
        nb_tensor_destroy(params[i]);
    nb_tensor_destroy(x);
    nb_tensor_destroy(t);
}

// Replaying a recorded step on new data must give bitwise the same parameters as recording
// every step afresh.
static void train(bool replay, nb_tensor **params, int steps) {
    nb_tensor *x = nb_tensor_create(NB_F64, 2, (int64_t[]){8, 5});
    nb_tensor *labels = nb_tensor_create(NB_I32, 1, (int64_t[]){8});
    nb_sgd *opt = nb_sgd_create(params, 4, (nb_sgd_config){.lr = 0.2, .momentum = 0.5});
    nb_graph *g = nb_graph_create();
    nb_rng data;
    nb_rng_seed(&data, 77);
    nb_tensor *loss = NULL;
    for (int step = 0; step < steps; step++) {
        nb_init_uniform(x, &data, -1, 1); // the next batch, written in place
        for (int i = 0; i < 8; i++)
            nb_tensor_set(labels, i, (double)nb_rng_below(&data, 3));
        nb_sgd_zero_grad(opt);
        if (replay && loss) {
            assert_int_equal(nb_graph_replay(g), NB_OK);
        } else {
            nb_graph_reset(g);
            nb_tensor *h = nb_tanh(g, nb_linear(g, x, params[0], params[1]));
            loss = nb_sparse_cross_entropy_logits(g, nb_linear(g, h, params[2], params[3]), labels,
                                                  NB_REDUCE_MEAN);
            assert_non_null(loss);
        }
        assert_int_equal(nb_backward(g, loss), NB_OK);
        assert_int_equal(nb_sgd_step(opt), NB_OK);
    }
    nb_graph_destroy(g);
    nb_sgd_destroy(opt);
    nb_tensor_destroy(x);
    nb_tensor_destroy(labels);
}

static void replay_matches_rerecording_bitwise(void **state) {
    (void)state;
    nb_tensor *a[4], *b[4];
    const int64_t shapes[4][2] = {{6, 5}, {6, 0}, {3, 6}, {3, 0}};
    for (int i = 0; i < 4; i++) {
        int nd = shapes[i][1] ? 2 : 1;
        a[i] = param(NB_F64, nd, shapes[i], 100 + (uint64_t)i);
        b[i] = param(NB_F64, nd, shapes[i], 100 + (uint64_t)i);
    }
    train(false, a, 6);
    train(true, b, 6);
    for (int i = 0; i < 4; i++) {
        assert_memory_equal(nb_tensor_data(a[i]), nb_tensor_data(b[i]),
                            (size_t)nb_tensor_numel(a[i]) * sizeof(double));
        nb_tensor_destroy(a[i]);
        nb_tensor_destroy(b[i]);
    }
    nb_graph *g = nb_graph_create();
    assert_int_equal(nb_graph_replay(g), NB_ERR_STATE); // nothing recorded
    nb_graph_destroy(g);
}

// A tensor kept across a reset, after the next step has reused the memory: reported in
// every build type instead of reading new data (more in test_safety.c).
static void stale_tensor_after_next_step(void **state) {
    (void)state;
    nb_tensor *x = param(NB_F64, 2, (int64_t[]){2, 3}, 21);
    nb_graph *g = nb_graph_create();
    nb_tensor *stale = nb_tanh(g, x);
    nb_graph_reset(g);
    assert_non_null(nb_tanh(g, nb_exp(g, x))); // the next step allocates again
    assert_true(oc_expect_error(g, nb_sigmoid(g, stale), NB_ERR_STATE, "sigmoid",
                                "used after nb_graph_reset", NULL));
    nb_graph_reset(g);
    assert_int_equal(nb_backward(g, stale), NB_ERR_STATE);
    nb_graph_destroy(g);
    nb_tensor_destroy(x);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(tensor_used_twice),
        cmocka_unit_test(diamond),
        cmocka_unit_test(weights_shared_across_5_steps),
        cmocka_unit_test(backward_twice_accumulates_and_unrelated_nodes_are_skipped),
        cmocka_unit_test(no_grad_mode_records_nothing_for_backward),
        cmocka_unit_test(backward_root_errors_say_why),
        cmocka_unit_test(errors_are_values),
        cmocka_unit_test(backward_rejects_bad_roots),
        cmocka_unit_test(gradcheck_catches_a_wrong_derivative),
        cmocka_unit_test(steady_state_step_allocates_nothing),
        cmocka_unit_test(replay_matches_rerecording_bitwise),
        cmocka_unit_test(stale_tensor_after_next_step),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
