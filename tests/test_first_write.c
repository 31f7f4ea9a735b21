// nb_backward's first writes (issue 17): an op with grad_store overwrites an op output's grad
// (GEMM beta = 0, plain stores) when it is that grad's first writer of the sweep, instead of
// the grad being zeroed and accumulated into. Each case puts every input of the op under test
// behind an op (h = 1·x), so its inputs' grads are op outputs' grads, which are due a first
// write; then checks that nb_backward gives exactly nb_grad's leaf gradients (nb_grad's kernel
// path zeroes every grad and accumulates), also on a replayed step, where the recycled grads
// still hold the last step's values (an op that added instead of storing would double them),
// and in debug builds on garbage (backward.c poisons such grads there); then the same with
// op outputs' grads recycled during the sweep (nb_graph_set_retain_grads(g, false)).
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>

#include "nabla/graph.h"
#include "nabla/ops.h"
#include "nabla/tensor.h"

#define MAX_IN 5

typedef nb_tensor *(*body_fn)(nb_graph *g, nb_tensor *const *h);

typedef struct {
    const char *name;
    int n_in;
    int64_t shape[MAX_IN][4]; // trailing 0s end a shape: {k} is 1-D of k elements
    double lo, hi;            // range of the inputs
    body_fn body;
} fw_case;

static nb_tensor *b_linear3(nb_graph *g, nb_tensor *const *h) {
    return nb_linear(g, h[0], h[1], h[2]);
}
static nb_tensor *b_linear2(nb_graph *g, nb_tensor *const *h) {
    return nb_linear(g, h[0], h[1], NULL);
}
// One tensor as both x and w: no store for it (the node must add its two contributions).
static nb_tensor *b_linear_dup(nb_graph *g, nb_tensor *const *h) {
    return nb_linear(g, h[0], h[0], NULL);
}
// h0 used by two nodes: tanh (the later, which stores) and relu (which adds).
static nb_tensor *b_fanout(nb_graph *g, nb_tensor *const *h) {
    return nb_add(g, nb_relu(g, h[0]), nb_tanh(g, h[0]));
}
// A two-layer MLP: every grad inside is written first by linear or relu.
static nb_tensor *b_mlp(nb_graph *g, nb_tensor *const *h) {
    return nb_linear(g, nb_relu(g, nb_linear(g, h[0], h[1], h[2])), h[3], h[4]);
}
// The op under test applied to h (the inputs behind an op).
#define BODY(name, call)                                                                           \
    static nb_tensor *b_##name(nb_graph *g, nb_tensor *const *h) {                                 \
        return call;                                                                               \
    }
BODY(relu, nb_relu(g, h[0]))
BODY(leaky_relu, nb_leaky_relu(g, h[0], 0.1))
BODY(sigmoid, nb_sigmoid(g, h[0]))
BODY(tanh, nb_tanh(g, h[0]))
BODY(exp, nb_exp(g, h[0]))
BODY(log, nb_log(g, h[0]))
BODY(sqrt, nb_sqrt(g, h[0]))
BODY(square, nb_square(g, h[0]))
BODY(gelu, nb_gelu(g, h[0]))
BODY(gelu_tanh, nb_gelu_tanh(g, h[0]))
BODY(silu, nb_silu(g, h[0]))
BODY(softplus, nb_softplus(g, h[0]))
BODY(elu, nb_elu(g, h[0], 1.0))
BODY(conv, nb_conv2d(g, h[0], h[1], h[2], 1, 1, 1, 1))
BODY(conv_grouped, nb_conv2d(g, h[0], h[1], NULL, 2, 1, 1, 2))
BODY(max_pool, nb_max_pool2d(g, h[0], 2, 2, 0, 1, false))
BODY(max_pool_overlap, nb_max_pool2d(g, h[0], 3, 2, 1, 1, true))
BODY(avg_pool, nb_avg_pool2d(g, h[0], 3, 2, 1, false, true))
BODY(batch_norm, nb_batch_norm(g, h[0], h[1], h[2], NULL, NULL, true, 0.1, 1e-5))
BODY(batch_norm_bias_only, nb_batch_norm(g, h[0], NULL, h[1], NULL, NULL, true, 0.1, 1e-5))
BODY(add, nb_add(g, h[0], h[1]))
BODY(sub, nb_sub(g, h[0], h[1]))
BODY(mul, nb_mul(g, h[0], h[1]))
BODY(div, nb_div(g, h[0], h[1]))
BODY(maximum, nb_maximum(g, h[0], h[1]))
BODY(minimum, nb_minimum(g, h[0], h[1]))
BODY(lt_mask, nb_mul(g, nb_lt(g, h[0], h[1]), h[0]))
BODY(attention_qkv_causal, nb_attention_qkv(g, h[0], 2, true, 0.0, NULL))
BODY(attention_qkv, nb_attention_qkv(g, h[0], 3, false, 0.0, NULL))
BODY(layer_norm, nb_layer_norm(g, h[0], 1, h[1], h[2], 1e-5))
BODY(layer_norm_2d_weight_only, nb_layer_norm(g, h[0], 2, h[1], NULL, 1e-5))
BODY(layer_norm_bias_only, nb_layer_norm(g, h[0], 1, NULL, h[1], 1e-5))
BODY(rms_norm, nb_rms_norm(g, h[0], 1, h[1], 1e-6))
// pre-norm residual block: h0 feeds the norm and the add (the add is its last user)
static nb_tensor *b_prenorm(nb_graph *g, nb_tensor *const *h) {
    return nb_add(g, h[0], nb_linear(g, nb_layer_norm(g, h[0], 1, h[1], h[2], 1e-5), h[3], NULL));
}
// conv -> batch norm -> relu -> max pool, as examples/cnn's blocks
static nb_tensor *b_cnn_block(nb_graph *g, nb_tensor *const *h) {
    nb_tensor *c = nb_conv2d(g, h[0], h[1], NULL, 1, 1, 1, 1);
    return nb_max_pool2d(g,
                         nb_relu(g, nb_batch_norm(g, c, h[2], h[3], NULL, NULL, true, 0.1, 1e-5)),
                         2, 2, 0, 1, false);
}

#define UNARY_CASE(name, lo, hi)                                                                   \
    { #name, 1, {{3, 4 } }, lo, hi, b_##name }
static const fw_case CASES[] = {
    {"linear", 3, {{4, 3}, {5, 3}, {5, 0}}, -1, 1, b_linear3},
    {"linear_nobias", 2, {{4, 3}, {5, 3}}, -1, 1, b_linear2},
    {"linear_same_input_twice", 1, {{3, 3}}, -1, 1, b_linear_dup},
    {"fanout", 1, {{3, 4}}, -2, 2, b_fanout},
    {"mlp", 5, {{6, 4}, {5, 4}, {5, 0}, {3, 5}, {3, 0}}, -1, 1, b_mlp},
    UNARY_CASE(relu, -2, 2),
    UNARY_CASE(leaky_relu, -2, 2),
    UNARY_CASE(sigmoid, -2, 2),
    UNARY_CASE(tanh, -2, 2),
    UNARY_CASE(exp, -2, 2),
    UNARY_CASE(log, 0.2, 2),
    UNARY_CASE(sqrt, 0.2, 2),
    UNARY_CASE(square, -2, 2),
    UNARY_CASE(gelu, -2, 2),
    UNARY_CASE(gelu_tanh, -2, 2),
    UNARY_CASE(silu, -2, 2),
    UNARY_CASE(softplus, -2, 2),
    UNARY_CASE(elu, -2, 2),
    {"conv", 3, {{2, 3, 5, 5}, {4, 3, 3, 3}, {4}}, -1, 1, b_conv},
    {"conv_grouped_strided", 2, {{2, 4, 6, 6}, {4, 2, 3, 3}}, -1, 1, b_conv_grouped},
    {"max_pool", 1, {{2, 3, 6, 6}}, -2, 2, b_max_pool},
    {"max_pool_overlapping", 1, {{2, 3, 7, 7}}, -2, 2, b_max_pool_overlap},
    {"avg_pool", 1, {{2, 3, 7, 7}}, -2, 2, b_avg_pool},
    {"batch_norm", 3, {{4, 3, 5}, {3}, {3}}, -1, 1, b_batch_norm},
    {"batch_norm_bias_only", 2, {{4, 3, 5}, {3}}, -1, 1, b_batch_norm_bias_only},
    {"add", 2, {{3, 4}, {3, 4}}, -1, 1, b_add},
    {"add_broadcast_row", 2, {{3, 4}, {4}}, -1, 1, b_add},
    {"add_broadcast_both", 2, {{3, 1, 5}, {4, 1}}, -1, 1, b_add},
    {"sub_broadcast_col", 2, {{3, 4}, {3, 1}}, -1, 1, b_sub},
    {"mul", 2, {{2, 3, 4}, {2, 3, 4}}, -1, 1, b_mul},
    {"mul_broadcast_scalar", 2, {{3, 4}, {1}}, -1, 1, b_mul},
    {"div_broadcast", 2, {{3, 4}, {4}}, 0.5, 2, b_div},
    {"maximum", 2, {{5, 3}, {5, 3}}, -1, 1, b_maximum},
    {"minimum_broadcast", 2, {{5, 3}, {3}}, -1, 1, b_minimum},
    {"lt_mask", 2, {{4, 3}, {4, 3}}, -1, 1, b_lt_mask},
    {"attention_qkv_causal", 1, {{2, 5, 12}}, -1, 1, b_attention_qkv_causal},
    {"attention_qkv_rank4", 1, {{2, 1, 3, 18}}, -1, 1, b_attention_qkv},
    {"layer_norm", 3, {{4, 11}, {11}, {11}}, -1, 1, b_layer_norm},
    {"layer_norm_2d_weight_only", 2, {{3, 2, 9}, {2, 9}}, -1, 1, b_layer_norm_2d_weight_only},
    {"layer_norm_bias_only", 2, {{5, 3}, {3}}, -1, 1, b_layer_norm_bias_only},
    {"rms_norm", 2, {{4, 10}, {10}}, -1, 1, b_rms_norm},
    {"prenorm_residual", 4, {{4, 16}, {16}, {16}, {16, 16}}, -1, 1, b_prenorm},
    {"cnn_block", 4, {{2, 3, 6, 6}, {4, 3, 3, 3}, {4}, {4}}, -1, 1, b_cnn_block},
};

static nb_tensor *make(const int64_t *shape, nb_dtype dt, nb_rng *rng, double lo, double hi) {
    int nd = 0;
    while (nd < 4 && shape[nd])
        nd++;
    nb_tensor *t = nb_tensor_create(dt, nd, shape);
    assert_non_null(t);
    nb_init_uniform(t, rng, lo, hi);
    return t;
}

static void run_case(const fw_case *c, nb_dtype dt) {
    nb_rng rng;
    nb_rng_seed(&rng, 17);
    nb_tensor *x[MAX_IN], *h[MAX_IN], *ref[MAX_IN];
    for (int i = 0; i < c->n_in; i++) {
        x[i] = make(c->shape[i], dt, &rng, c->lo, c->hi);
        nb_tensor_set_requires_grad(x[i], true);
    }
    nb_graph *g = nb_graph_create();
    for (int i = 0; i < c->n_in; i++)
        h[i] = nb_scale(g, x[i], 1.0);
    nb_tensor *y = c->body(g, h);
    assert_non_null(y);
    int64_t ys[4] = {0};
    for (int d = 0; d < nb_tensor_ndim(y); d++)
        ys[d] = nb_tensor_dim(y, d);
    nb_tensor *w = make(ys, dt, &rng, -1, 1); // loss = Σ y·w: every dy element different
    nb_tensor *loss = nb_sum(g, nb_mul(g, y, w));
    assert_int_equal(nb_grad(g, &loss, NULL, 1, x, c->n_in, false, ref), NB_OK);
    // Steps 0-2 keep every grad; steps 3-5 recycle op outputs' grads (nb_graph_set_retain_grads),
    // whose buffers then hold other grads of the sweep (zeroed or stored when they change hands).
    for (int step = 0; step < 6; step++) {
        nb_graph_set_retain_grads(g, step < 3);
        for (int i = 0; i < c->n_in; i++)
            nb_tensor_zero_grad(x[i]);
        if (step > 0)
            assert_int_equal(nb_graph_replay(g), NB_OK);
        assert_int_equal(nb_backward(g, loss), NB_OK);
        for (int i = 0; i < c->n_in; i++)
            for (int64_t e = 0; e < nb_tensor_numel(x[i]); e++) {
                double got = nb_tensor_grad_get(x[i], e), want = nb_tensor_get(ref[i], e);
                if (got != want)
                    fail_msg("%s (%s), step %d: input %d element %lld: nb_backward %.17g, "
                             "nb_grad %.17g",
                             c->name, nb_dtype_name(dt), step, i, (long long)e, got, want);
            }
        if (step < 3)
            assert_non_null(nb_tensor_grad(y));
        else
            assert_null(nb_tensor_grad(y)); // recycled: not kept
    }
    nb_graph_destroy(g);
    nb_tensor_destroy(w);
    for (int i = 0; i < c->n_in; i++)
        nb_tensor_destroy(x[i]);
}

static void first_writes_match_zero_and_accumulate(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof CASES / sizeof CASES[0]; i++) {
        run_case(&CASES[i], NB_F64);
        run_case(&CASES[i], NB_F32);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(first_writes_match_zero_and_accumulate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
