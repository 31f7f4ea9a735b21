// Tests for the recurrent layers (src/nn/rnn.c): PyTorch's names, shapes and initial bounds;
// outputs against a plain scalar reference written here from PyTorch's equations (every mode,
// two layers, with and without initial states and biases); float64 gradchecks of short unrolled
// sequences (weights, input, h0, c0, through h_n and c_n too); a second-order check; float32
// agreement; zero allocations in a steady-state step; every bad input. Agreement with PyTorch
// itself is tests/rnn_torch_interop.py.
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nabla.h"
#include "support/alloc_count.h"
#include "support/expect.h"

static const char *const mode_name[] = {"rnn_tanh", "rnn_relu", "gru", "lstm"};

static nb_tensor *rand_tensor(nb_dtype dt, int ndim, const int64_t *shape, nb_rng *rng, bool grad) {
    nb_tensor *t = nb_tensor_create(dt, ndim, shape);
    assert_non_null(t);
    assert_int_equal(nb_init_uniform(t, rng, -1, 1), NB_OK);
    if (grad)
        assert_int_equal(nb_tensor_set_requires_grad(t, true), NB_OK);
    return t;
}

// ---- a scalar reference from PyTorch's documented equations -------------------------------

static double sigm(double v) {
    return 1 / (1 + exp(-v));
}

// W (rows, cols) row-major from a tensor; bias may be NULL (zeros).
static double wget(nb_tensor *w, int64_t r, int64_t c, int64_t cols) {
    return nb_tensor_get(w, r * cols + c);
}
static double bget(nb_tensor *b, int64_t r) {
    return b ? nb_tensor_get(b, r) : 0.0;
}

// Runs the whole stack on x (T, B, F) into out (T*B*H), hn and cn (L*B*H).
static void reference(nb_nn_rnn *r, nb_tensor *x, nb_tensor *h0, nb_tensor *c0, double *out,
                      double *hn, double *cn) {
    const int64_t T = nb_tensor_dim(x, 0), B = nb_tensor_dim(x, 1), H = r->hidden_size;
    const int64_t G = r->gates;
    double *in = malloc(sizeof(double) * (size_t)(T * B * (r->input_size + H)));
    int64_t F = r->input_size;
    for (int64_t i = 0; i < T * B * F; i++)
        in[i] = nb_tensor_get(x, i);
    double *a = malloc(sizeof(double) * (size_t)(G * H)),
           *b = malloc(sizeof(double) * (size_t)(G * H));
    for (int l = 0; l < r->num_layers; l++) {
        for (int64_t bi = 0; bi < B; bi++) {
            double h[64] = {0}, c[64] = {0};
            for (int64_t k = 0; k < H; k++) {
                h[k] = h0 ? nb_tensor_get(h0, (l * B + bi) * H + k) : 0;
                c[k] = c0 ? nb_tensor_get(c0, (l * B + bi) * H + k) : 0;
            }
            for (int64_t t = 0; t < T; t++) {
                const double *xt = in + (t * B + bi) * F;
                for (int64_t j = 0; j < G * H; j++) { // a = W_ih x + b_ih, b = W_hh h + b_hh
                    a[j] = bget(r->bias_ih[l], j);
                    b[j] = bget(r->bias_hh[l], j);
                    for (int64_t k = 0; k < F; k++)
                        a[j] += wget(r->weight_ih[l], j, k, F) * xt[k];
                    for (int64_t k = 0; k < H; k++)
                        b[j] += wget(r->weight_hh[l], j, k, H) * h[k];
                }
                for (int64_t k = 0; k < H; k++) {
                    if (r->mode == NB_RNN_TANH) {
                        h[k] = tanh(a[k] + b[k]);
                    } else if (r->mode == NB_RNN_RELU) {
                        h[k] = fmax(0, a[k] + b[k]);
                    } else if (r->mode == NB_GRU) {
                        double rg = sigm(a[k] + b[k]), z = sigm(a[H + k] + b[H + k]);
                        double n = tanh(a[2 * H + k] + rg * b[2 * H + k]);
                        h[k] = (1 - z) * n + z * h[k];
                    } else {
                        double ig = sigm(a[k] + b[k]), fg = sigm(a[H + k] + b[H + k]);
                        double gg = tanh(a[2 * H + k] + b[2 * H + k]);
                        double og = sigm(a[3 * H + k] + b[3 * H + k]);
                        c[k] = fg * c[k] + ig * gg;
                        h[k] = og * tanh(c[k]);
                    }
                }
                for (int64_t k = 0; k < H; k++)
                    out[(t * B + bi) * H + k] = h[k];
            }
            for (int64_t k = 0; k < H; k++) {
                hn[(l * B + bi) * H + k] = h[k];
                cn[(l * B + bi) * H + k] = c[k];
            }
        }
        // The next layer's input is this layer's output.
        F = H;
        memcpy(in, out, sizeof(double) * (size_t)(T * B * H));
    }
    free(in);
    free(a);
    free(b);
}

static void outputs_match_reference(void **state) {
    (void)state;
    const int64_t T = 5, B = 3, F = 4, H = 3;
    for (int mode = 0; mode < 4; mode++)
        for (int variant = 0; variant < 3; variant++) { // 0: states + bias, 1: zeros, 2: no bias
            nb_rng rng;
            nb_rng_seed(&rng, 10 + (uint64_t)mode);
            bool bias = variant != 2;
            nb_layer *l = nb_nn_rnn_create((nb_rnn_mode)mode, F, H, 2, bias, NB_F64, &rng);
            assert_non_null(l);
            nb_nn_rnn *r = nb_nn_rnn_of(l);
            nb_tensor *x = rand_tensor(NB_F64, 3, (int64_t[]){T, B, F}, &rng, false);
            nb_tensor *h0 =
                variant == 1 ? NULL : rand_tensor(NB_F64, 3, (int64_t[]){2, B, H}, &rng, false);
            nb_tensor *c0 = variant == 1 || mode != NB_LSTM
                                ? NULL
                                : rand_tensor(NB_F64, 3, (int64_t[]){2, B, H}, &rng, false);
            nb_graph *g = nb_graph_create();
            nb_tensor *hn = NULL, *cn = NULL;
            nb_tensor *y = nb_nn_rnn_forward(g, l, x, h0, c0, &hn, &cn);
            assert_non_null(y);
            assert_non_null(hn);
            assert_int_equal(nb_tensor_ndim(y), 3);
            assert_int_equal(nb_tensor_dim(y, 0), T);
            assert_int_equal(nb_tensor_dim(y, 2), H);
            assert_int_equal(nb_tensor_dim(hn, 0), 2);
            assert_true((cn != NULL) == (mode == NB_LSTM));
            double out[5 * 3 * 3], rh[2 * 3 * 3], rc[2 * 3 * 3];
            reference(r, x, h0, c0, out, rh, rc);
            double worst = 0;
            for (int64_t i = 0; i < T * B * H; i++)
                worst = fmax(worst, fabs(nb_tensor_get(y, i) - out[i]));
            for (int64_t i = 0; i < 2 * B * H; i++) {
                worst = fmax(worst, fabs(nb_tensor_get(hn, i) - rh[i]));
                if (cn)
                    worst = fmax(worst, fabs(nb_tensor_get(cn, i) - rc[i]));
            }
            if (worst > 1e-12)
                fail_msg("%s variant %d: max diff %g from the reference", mode_name[mode], variant,
                         worst);
            // nb_layer_forward is the zero-state call.
            if (variant == 1) {
                nb_tensor *y2 = nb_layer_forward(g, l, x);
                assert_non_null(y2);
                for (int64_t i = 0; i < T * B * H; i++)
                    assert_true(nb_tensor_get(y2, i) == nb_tensor_get(y, i));
            }
            nb_graph_destroy(g);
            nb_tensor_destroy(x);
            nb_tensor_destroy(h0);
            nb_tensor_destroy(c0);
            nb_layer_destroy(l);
        }
}

// ---- names, shapes, initialisation ---------------------------------------------------------

static void names_shapes_init(void **state) {
    (void)state;
    nb_rng rng;
    nb_rng_seed(&rng, 3);
    nb_layer *l = nb_nn_lstm_create(5, 7, 2, true, NB_F32, &rng);
    assert_non_null(l);
    assert_string_equal(nb_layer_kind(l), "lstm");
    nb_params *ps = nb_params_create();
    assert_int_equal(nb_layer_collect(l, ps, "rnn"), NB_OK);
    const char *want[] = {"rnn.weight_ih_l0", "rnn.weight_hh_l0", "rnn.bias_ih_l0",
                          "rnn.bias_hh_l0",   "rnn.weight_ih_l1", "rnn.weight_hh_l1",
                          "rnn.bias_ih_l1",   "rnn.bias_hh_l1"};
    const int64_t rows = 28, cols[] = {5, 7, 0, 0, 7, 7, 0, 0};
    assert_int_equal(nb_params_count(ps, NB_PARAM), 8);
    double bound = 1 / sqrt(7.0);
    for (int i = 0; i < 8; i++) {
        assert_string_equal(nb_params_name(ps, NB_PARAM, i), want[i]);
        nb_tensor *t = nb_params_tensor(ps, NB_PARAM, i);
        assert_int_equal(nb_tensor_dim(t, 0), rows);
        assert_int_equal(nb_tensor_ndim(t), cols[i] ? 2 : 1);
        if (cols[i])
            assert_int_equal(nb_tensor_dim(t, 1), cols[i]);
        double lo = 1, hi = -1;
        for (int64_t k = 0; k < nb_tensor_numel(t); k++) {
            lo = fmin(lo, nb_tensor_get(t, k));
            hi = fmax(hi, nb_tensor_get(t, k));
        }
        assert_true(lo >= -bound && hi <= bound);
        assert_true(hi - lo > bound); // spread over the range, not constant
    }
    nb_params_destroy(ps);
    nb_layer_destroy(l);
    // GRU and RNN: 3H and H rows, no biases when asked.
    l = nb_nn_gru_create(4, 6, 1, false, NB_F64, &rng);
    ps = nb_params_create();
    assert_int_equal(nb_layer_collect(l, ps, NULL), NB_OK);
    assert_int_equal(nb_params_count(ps, NB_PARAM), 2);
    assert_string_equal(nb_params_name(ps, NB_PARAM, 1), "weight_hh_l0");
    assert_int_equal(nb_tensor_dim(nb_params_tensor(ps, NB_PARAM, 0), 0), 18);
    nb_params_destroy(ps);
    nb_layer_destroy(l);
    l = nb_nn_rnn_create(NB_RNN_RELU, 4, 6, 1, true, NB_F64, &rng);
    assert_string_equal(nb_layer_kind(l), "rnn");
    assert_int_equal(nb_tensor_dim(nb_nn_rnn_of(l)->weight_ih[0], 0), 6);
    nb_layer_destroy(l);
}

// ---- gradients -----------------------------------------------------------------------------

typedef struct {
    nb_layer *l;
    nb_tensor *h0, *c0;      // may be NULL
    nb_tensor *wy, *wh, *wc; // fixed weights that make a scalar of every output
} gc_ctx;

static nb_tensor *gc_fn(nb_graph *g, nb_tensor *const *in, int n, void *ctxp) {
    (void)n;
    gc_ctx *c = ctxp;
    nb_tensor *hn = NULL, *cn = NULL;
    nb_tensor *y = nb_nn_rnn_forward(g, c->l, in[0], c->h0, c->c0, &hn, &cn);
    nb_tensor *s = nb_add(g, nb_sum(g, nb_mul(g, y, c->wy)), nb_sum(g, nb_mul(g, hn, c->wh)));
    if (cn)
        s = nb_add(g, s, nb_sum(g, nb_mul(g, cn, c->wc)));
    return s;
}

static void gradcheck_modes(void **state) {
    (void)state;
    const int64_t T = 3, B = 2, F = 3, H = 2;
    for (int mode = 0; mode < 4; mode++)
        for (int variant = 0; variant < 2; variant++) { // 0: states, 2 layers; 1: zeros, 1
            nb_rng rng;
            nb_rng_seed(&rng, 100 + (uint64_t)mode);
            int L = variant == 0 ? 2 : 1;
            nb_layer *l = nb_nn_rnn_create((nb_rnn_mode)mode, F, H, L, true, NB_F64, &rng);
            nb_nn_rnn *r = nb_nn_rnn_of(l);
            gc_ctx c = {.l = l};
            nb_tensor *x = rand_tensor(NB_F64, 3, (int64_t[]){T, B, F}, &rng, true);
            if (variant == 0) {
                c.h0 = rand_tensor(NB_F64, 3, (int64_t[]){L, B, H}, &rng, true);
                if (mode == NB_LSTM)
                    c.c0 = rand_tensor(NB_F64, 3, (int64_t[]){L, B, H}, &rng, true);
            }
            c.wy = rand_tensor(NB_F64, 3, (int64_t[]){T, B, H}, &rng, false);
            c.wh = rand_tensor(NB_F64, 3, (int64_t[]){L, B, H}, &rng, false);
            c.wc = rand_tensor(NB_F64, 3, (int64_t[]){L, B, H}, &rng, false);
            nb_tensor *inputs[4 + 4 * 2];
            int n = 0;
            inputs[n++] = x;
            if (c.h0)
                inputs[n++] = c.h0;
            if (c.c0)
                inputs[n++] = c.c0;
            for (int k = 0; k < L; k++) {
                inputs[n++] = r->weight_ih[k];
                inputs[n++] = r->weight_hh[k];
                inputs[n++] = r->bias_ih[k];
                inputs[n++] = r->bias_hh[k];
            }
            nb_gradcheck_result res = nb_gradcheck(gc_fn, &c, inputs, n, 1e-6, 1e-7, 1e-5);
            if (!res.ok)
                fail_msg("%s variant %d: %s (input %d element %lld: %g vs %g)", mode_name[mode],
                         variant, res.message, res.worst_input, (long long)res.worst_index,
                         res.worst_analytic, res.worst_numeric);
            int64_t numel = 0; // every element of every input was compared
            for (int k = 0; k < n; k++)
                numel += nb_tensor_numel(inputs[k]);
            assert_int_equal(res.n_checked, numel);
            nb_tensor *all[] = {x, c.h0, c.c0, c.wy, c.wh, c.wc};
            for (int k = 0; k < 6; k++)
                nb_tensor_destroy(all[k]);
            nb_layer_destroy(l);
        }
}

// Second order: the gradient of a recurrent output is itself differentiable (ops' vjps).
static void gradgradcheck_lstm_gru(void **state) {
    (void)state;
    for (int mode = NB_GRU; mode <= NB_LSTM; mode++) {
        nb_rng rng;
        nb_rng_seed(&rng, 7);
        nb_layer *l = nb_nn_rnn_create((nb_rnn_mode)mode, 2, 2, 1, true, NB_F64, &rng);
        nb_nn_rnn *r = nb_nn_rnn_of(l);
        gc_ctx c = {.l = l};
        nb_tensor *x = rand_tensor(NB_F64, 3, (int64_t[]){2, 1, 2}, &rng, true);
        c.wy = rand_tensor(NB_F64, 3, (int64_t[]){2, 1, 2}, &rng, false);
        c.wh = rand_tensor(NB_F64, 3, (int64_t[]){1, 1, 2}, &rng, false);
        c.wc = rand_tensor(NB_F64, 3, (int64_t[]){1, 1, 2}, &rng, false);
        nb_tensor *inputs[] = {x, r->weight_hh[0]};
        nb_gradcheck_result res = nb_gradgradcheck(gc_fn, &c, inputs, 2, 1e-6, 1e-6, 1e-4);
        if (!res.ok)
            fail_msg("%s: %s", mode_name[mode], res.message);
        nb_tensor *all[] = {x, c.wy, c.wh, c.wc};
        for (int k = 0; k < 4; k++)
            nb_tensor_destroy(all[k]);
        nb_layer_destroy(l);
    }
}

// float32 agrees with float64 on the same weights.
static void float32_agrees(void **state) {
    (void)state;
    const int64_t T = 6, B = 4, F = 5, H = 8;
    for (int mode = 0; mode < 4; mode++) {
        nb_rng r1, r2;
        nb_rng_seed(&r1, 5);
        nb_rng_seed(&r2, 5);
        nb_layer *l64 = nb_nn_rnn_create((nb_rnn_mode)mode, F, H, 2, true, NB_F64, &r1);
        nb_layer *l32 = nb_nn_rnn_create((nb_rnn_mode)mode, F, H, 2, true, NB_F32, &r2);
        nb_params *p64 = nb_params_create(), *p32 = nb_params_create();
        nb_layer_collect(l64, p64, NULL);
        nb_layer_collect(l32, p32, NULL);
        for (int i = 0; i < nb_params_count(p64, NB_PARAM); i++)
            assert_int_equal(nb_tensor_copy(nb_params_tensor(p32, NB_PARAM, i),
                                            nb_params_tensor(p64, NB_PARAM, i)),
                             NB_OK);
        nb_tensor *x64 = rand_tensor(NB_F64, 3, (int64_t[]){T, B, F}, &r1, false);
        nb_tensor *x32 = nb_tensor_create(NB_F32, 3, (int64_t[]){T, B, F});
        nb_tensor_copy(x32, x64);
        nb_graph *g = nb_graph_create();
        nb_tensor *y64 = nb_layer_forward(g, l64, x64), *y32 = nb_layer_forward(g, l32, x32);
        assert_non_null(y64);
        assert_non_null(y32);
        for (int64_t i = 0; i < T * B * H; i++)
            assert_true(fabs(nb_tensor_get(y64, i) - nb_tensor_get(y32, i)) < 1e-5);
        nb_graph_destroy(g);
        nb_tensor_destroy(x64);
        nb_tensor_destroy(x32);
        nb_params_destroy(p64);
        nb_params_destroy(p32);
        nb_layer_destroy(l64);
        nb_layer_destroy(l32);
    }
}

static void steady_state_allocates_nothing(void **state) {
    (void)state;
    tc_count_allocs_start();
    nb_rng rng;
    nb_rng_seed(&rng, 1);
    nb_layer *l = nb_nn_lstm_create(8, 16, 2, true, NB_F32, &rng);
    nb_tensor *x = rand_tensor(NB_F32, 3, (int64_t[]){300, 4, 8}, &rng, false); // > 256 steps
    nb_tensor *h0 = rand_tensor(NB_F32, 3, (int64_t[]){2, 4, 16}, &rng, false);
    nb_graph *g = nb_graph_create();
    long before = 0;
    // Four warm-up steps: Debug builds alternate two arenas (use-after-reset detection), each
    // growing over its own first steps (measured: allocations stop after step 3).
    for (int s = 0; s < 8; s++) {
        if (s == 4)
            before = tc_allocs();
        nb_graph_reset(g);
        nb_tensor *hn = NULL, *cn = NULL;
        nb_tensor *y = nb_nn_rnn_forward(g, l, x, h0, NULL, &hn, &cn);
        nb_tensor *loss = nb_add(g, nb_mean(g, nb_square(g, y)), nb_sum(g, cn));
        assert_non_null(loss);
        assert_int_equal(nb_backward(g, loss), NB_OK);
    }
    long steady = tc_allocs() - before;
    tc_count_allocs_stop();
    assert_int_equal(steady, 0);
    nb_graph_destroy(g);
    nb_tensor_destroy(x);
    nb_tensor_destroy(h0);
    nb_layer_destroy(l);
}

// ---- bad input -----------------------------------------------------------------------------

static void bad_input(void **state) {
    (void)state;
    nb_rng rng;
    nb_rng_seed(&rng, 2);
    // Creation.
    assert_null(nb_nn_lstm_create(0, 4, 1, true, NB_F32, &rng));
    assert_has(nb_last_error(), "nb_nn_lstm_create: input_size 0");
    assert_null(nb_nn_gru_create(3, 4, 0, true, NB_F32, &rng));
    assert_has(nb_last_error(), "num_layers 0");
    assert_null(nb_nn_gru_create(3, 4, 65, true, NB_F32, &rng));
    assert_null(nb_nn_rnn_create(NB_RNN_TANH, 3, 4, 1, true, NB_I32, &rng));
    assert_has(nb_last_error(), "dtype int32");
    assert_null(nb_nn_rnn_create((nb_rnn_mode)9, 3, 4, 1, true, NB_F32, &rng));
    assert_has(nb_last_error(), "mode 9");
    assert_null(nb_nn_lstm_create(3, 4, 1, true, NB_F32, NULL));
    // Forward.
    nb_layer *l = nb_nn_lstm_create(3, 4, 2, true, NB_F32, &rng);
    nb_params *ps = nb_params_create();
    nb_layer_collect(l, ps, "enc");
    nb_graph *g = nb_graph_create();
    nb_tensor *x2 = nb_tensor_create(NB_F32, 2, (int64_t[]){5, 3});
    assert_null(nb_layer_forward(g, l, x2));
    assert_has(nb_graph_error(g),
               "lstm 'enc' (3 -> 4): input (5, 3), expected (seq_len, batch, 3)");
    assert_has(nb_graph_error(g), "test_nn_rnn.c:");
    nb_graph_reset(g);
    nb_tensor *xf = nb_tensor_create(NB_F32, 3, (int64_t[]){5, 2, 6});
    assert_null(nb_layer_forward(g, l, xf));
    assert_has(nb_graph_error(g), "input (5, 2, 6)");
    nb_graph_reset(g);
    nb_tensor *xd = nb_tensor_create(NB_F64, 3, (int64_t[]){5, 2, 3});
    assert_null(nb_layer_forward(g, l, xd));
    assert_has(nb_graph_error(g), "is float64, the layer's weights are float32");
    nb_graph_reset(g);
    nb_tensor *x = nb_tensor_create(NB_F32, 3, (int64_t[]){5, 2, 3});
    nb_tensor *h_bad = nb_tensor_create(NB_F32, 3, (int64_t[]){1, 2, 4});
    nb_tensor *hn = (nb_tensor *)&hn;
    assert_null(nb_nn_rnn_forward(g, l, x, h_bad, NULL, &hn, NULL));
    assert_null(hn);
    assert_has(nb_graph_error(g), "h0 has shape (1, 2, 4), expected (num_layers, batch, hidden) = "
                                  "(2, 2, 4)");
    assert_has(nb_graph_error(g), "test_nn_rnn.c:"); // the caller's line, not src/nn/rnn.c
    nb_graph_reset(g);
    nb_tensor *c_bad = nb_tensor_create(NB_F64, 3, (int64_t[]){2, 2, 4});
    assert_null(nb_nn_rnn_forward(g, l, x, NULL, c_bad, NULL, NULL));
    assert_has(nb_graph_error(g), "c0 is float64");
    nb_graph_reset(g);
    assert_null(nb_nn_rnn_forward(g, l, NULL, NULL, NULL, NULL, NULL));
    assert_has(nb_graph_error(g), "input is NULL");
    nb_graph_reset(g);
    nb_layer *lin = nb_nn_linear_create(3, 4, true, NB_F32, &rng);
    assert_null(nb_nn_rnn_forward(g, lin, x, NULL, NULL, NULL, NULL));
    assert_has(nb_graph_error(g), "layer is linear, not rnn / gru / lstm");
    nb_graph_reset(g);
    nb_layer *gru = nb_nn_gru_create(3, 4, 2, true, NB_F32, &rng);
    nb_tensor *c0 = nb_tensor_create(NB_F32, 3, (int64_t[]){2, 2, 4});
    assert_null(nb_nn_rnn_forward(g, gru, x, NULL, c0, NULL, NULL));
    assert_has(nb_graph_error(g), "c0 given, but only an lstm has a cell state");
    nb_graph_reset(g);
    // After all that, a good call works on the same graph.
    assert_non_null(nb_nn_rnn_forward(g, l, x, NULL, c0, NULL, NULL));
    nb_tensor *all[] = {x2, xf, xd, x, h_bad, c_bad, c0};
    for (int k = 0; k < 7; k++)
        nb_tensor_destroy(all[k]);
    nb_graph_destroy(g);
    nb_params_destroy(ps);
    nb_layer_destroy(l);
    nb_layer_destroy(lin);
    nb_layer_destroy(gru);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(outputs_match_reference),
        cmocka_unit_test(names_shapes_init),
        cmocka_unit_test(gradcheck_modes),
        cmocka_unit_test(gradgradcheck_lstm_gru),
        cmocka_unit_test(float32_agrees),
        cmocka_unit_test(steady_state_allocates_nothing),
        cmocka_unit_test(bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
