// Recurrent layers (torch.nn.RNN, GRU, LSTM), unrolled on the tape from existing ops. Shapes:
// x (T, B, F); per layer the input projection of all steps at once, xp = x W_ihᵀ + b_ih
// (T, B, G*H), one GEMM; then per step t: xp_t (B, G*H) = slice of xp, hh = h W_hhᵀ + b_hh
// (B, G*H), the gate chunks sliced off along axis 1 in PyTorch's order. A NULL state means
// zeros, so the first step needs no h W_hhᵀ GEMM (hh = b_hh, broadcast over the batch).
// Ops called here record the user's call site (the nb_layer_forward / nb_nn_rnn_forward macros
// in nabla/nn.h), not a line of this file.
#define NB_NO_SITE_MACROS
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "base/base_impl.h"
#include "nabla/ops.h"
#include "nn/nn_impl.h"

static const char *mode_kind(nb_rnn_mode m) {
    return m == NB_GRU ? "gru" : m == NB_LSTM ? "lstm" : "rnn";
}

// Columns [lo, hi) of the last axis: of a per-step (B, G*H) tensor, or of a (G*H) bias standing
// for h W_hhᵀ + b_hh when h is zero.
static nb_tensor *cols(nb_graph *g, nb_tensor *t, int64_t lo, int64_t hi) {
    return t ? nb_slice(g, t, nb_tensor_ndim(t) - 1, lo, hi) : NULL;
}
// Gate k's columns [k*H, (k+1)*H).
static nb_tensor *chunk(nb_graph *g, nb_tensor *t, int64_t k, int64_t H) {
    return cols(g, t, k * H, (k + 1) * H);
}

// a + b where b may be NULL (a zero state's missing term).
static nb_tensor *add_opt(nb_graph *g, nb_tensor *a, nb_tensor *b) {
    return b ? nb_add(g, a, b) : a;
}

// One step of one layer: xp (B, G*H), h and c (B, H) or NULL for zeros. Returns h'; *c_out
// gets c' for an LSTM.
static nb_tensor *step(nb_graph *g, const nb_nn_rnn *r, int l, nb_tensor *xp, nb_tensor *h,
                       nb_tensor *c, nb_tensor **c_out) {
    const int64_t H = r->hidden_size;
    // hh = h W_hhᵀ + b_hh; with h = 0 just b_hh (or nothing without bias).
    nb_tensor *hh = h ? nb_linear(g, h, r->weight_hh[l], r->bias_hh[l]) : r->bias_hh[l];
    switch (r->mode) {
    case NB_RNN_TANH:
    case NB_RNN_RELU: {
        nb_tensor *a = add_opt(g, xp, hh);
        return r->mode == NB_RNN_TANH ? nb_tanh(g, a) : nb_relu(g, a);
    }
    case NB_GRU: {
        // r and z share one sigmoid over the first 2H columns; n's hidden part is gated by r
        // before the add, as PyTorch (and cuDNN) define the GRU.
        nb_tensor *rz = nb_sigmoid(g, add_opt(g, cols(g, xp, 0, 2 * H), cols(g, hh, 0, 2 * H)));
        nb_tensor *rg = chunk(g, rz, 0, H);
        nb_tensor *z = chunk(g, rz, 1, H);
        nb_tensor *hn = chunk(g, hh, 2, H);
        nb_tensor *n = chunk(g, xp, 2, H);
        if (hn)
            n = nb_add(g, n, nb_mul(g, rg, hn));
        n = nb_tanh(g, n);
        // h' = (1 - z) n + z h = n + z (h - n)
        nb_tensor *d = h ? nb_sub(g, h, n) : nb_neg(g, n);
        return nb_add(g, n, nb_mul(g, z, d));
    }
    case NB_LSTM: {
        nb_tensor *gates = add_opt(g, xp, hh);
        nb_tensor *s = nb_sigmoid(g, gates); // i, f, o read from it; g's columns unused
        nb_tensor *i = chunk(g, s, 0, H);
        nb_tensor *gg = nb_tanh(g, chunk(g, gates, 2, H));
        nb_tensor *o = chunk(g, s, 3, H);
        nb_tensor *cn = nb_mul(g, i, gg);
        if (c)
            cn = nb_add(g, nb_mul(g, chunk(g, s, 1, H), c), cn);
        *c_out = cn;
        return nb_mul(g, o, nb_tanh(g, cn));
    }
    default:
        return NULL;
    }
}

// Layer l's initial state from s (L, B, H) or NULL.
static nb_tensor *state_of(nb_graph *g, nb_tensor *s, int l, int64_t B, int64_t H) {
    if (!s)
        return NULL;
    return nb_reshape(g, nb_slice(g, s, 0, l, l + 1), 2, (int64_t[]){B, H});
}

static bool state_ok(nb_graph *g, const nb_layer *self, const char *what, nb_tensor *s, nb_dtype dt,
                     int L, int64_t B, int64_t H, const nb_tensor *x) {
    if (!s)
        return true;
    if (nb_tensor_dtype(s) != dt) {
        nb_graph_fail(g, NB_ERR_DTYPE, "%s: %s is %s, input %s is %s", NB_WHO(self), what,
                      nb_dtype_name(nb_tensor_dtype(s)), NB_SHAPE_STR(x), nb_dtype_name(dt));
        return false;
    }
    if (nb_tensor_ndim(s) != 3 || nb_tensor_dim(s, 0) != L || nb_tensor_dim(s, 1) != B ||
        nb_tensor_dim(s, 2) != H) {
        nb_graph_fail(g, NB_ERR_SHAPE,
                      "%s: %s has shape %s, expected (num_layers, batch, hidden) = (%d, %lld, "
                      "%lld) for input %s",
                      NB_WHO(self), what, NB_SHAPE_STR(s), L, (long long)B, (long long)H,
                      NB_SHAPE_STR(x));
        return false;
    }
    return true;
}

nb_tensor *nb_nn_rnn_forward(nb_graph *g, nb_layer *layer, nb_tensor *x, nb_tensor *h0,
                             nb_tensor *c0, nb_tensor **h_n, nb_tensor **c_n) {
    if (h_n)
        *h_n = NULL;
    if (c_n)
        *c_n = NULL;
    if (!g || nb_graph_status(g) != NB_OK)
        return NULL;
    nb_nn_rnn *r = nb_nn_rnn_of(layer);
    if (!r) {
        nb_graph_fail(g, NB_ERR_ARG, "nb_nn_rnn_forward: layer is %s, not rnn / gru / lstm",
                      layer ? nb_layer_kind(layer) : "NULL");
        return NULL;
    }
    if (!x) {
        nb_graph_fail(g, NB_ERR_NULL, "%s: input is NULL", NB_WHO(layer));
        return NULL;
    }
    const int64_t H = r->hidden_size;
    const int L = r->num_layers;
    if (nb_tensor_ndim(x) != 3 || nb_tensor_dim(x, 2) != r->input_size || nb_tensor_dim(x, 0) < 1 ||
        nb_tensor_dim(x, 1) < 1) {
        nb_graph_fail(g, NB_ERR_SHAPE,
                      "%s (%lld -> %lld): input %s, expected (seq_len, batch, %lld) with "
                      "seq_len, batch >= 1",
                      NB_WHO(layer), (long long)r->input_size, (long long)H, NB_SHAPE_STR(x),
                      (long long)r->input_size);
        return NULL;
    }
    nb_dtype dt = nb_tensor_dtype(r->weight_ih[0]);
    if (nb_tensor_dtype(x) != dt) {
        nb_graph_fail(g, NB_ERR_DTYPE, "%s: input %s is %s, the layer's weights are %s",
                      NB_WHO(layer), NB_SHAPE_STR(x), nb_dtype_name(nb_tensor_dtype(x)),
                      nb_dtype_name(dt));
        return NULL;
    }
    const int64_t T = nb_tensor_dim(x, 0);
    const int64_t B = nb_tensor_dim(x, 1);
    if (c0 && r->mode != NB_LSTM) {
        nb_graph_fail(g, NB_ERR_ARG, "%s: c0 given, but only an lstm has a cell state",
                      NB_WHO(layer));
        return NULL;
    }
    if (!state_ok(g, layer, "h0", h0, dt, L, B, H, x) ||
        !state_ok(g, layer, "c0", c0, dt, L, B, H, x))
        return NULL;

    // The per-step outputs are gathered for nb_concat in an array the layer keeps (grown to the
    // longest sequence seen), so a steady-state step allocates nothing.
    if (T > r->steps_cap) {
        nb_tensor **p = nb__realloc(r->steps, (size_t)T * sizeof *p);
        if (!p) {
            nb_graph_fail(g, NB_ERR_NOMEM, "%s: out of memory for %lld steps", NB_WHO(layer),
                          (long long)T);
            return NULL;
        }
        r->steps = p;
        r->steps_cap = T;
    }
    nb_tensor **hs = r->steps;
    nb_tensor *hl[NB_RNN_MAX_LAYERS];
    nb_tensor *cl[NB_RNN_MAX_LAYERS];
    const int64_t GH = r->gates * H;
    nb_tensor *in = x;
    for (int l = 0; l < L && in; l++) {
        nb_tensor *xp = nb_linear(g, in, r->weight_ih[l], r->bias_ih[l]); // (T, B, G*H)
        nb_tensor *h = state_of(g, h0, l, B, H);
        nb_tensor *c = state_of(g, c0, l, B, H);
        for (int64_t t = 0; t < T && xp; t++) {
            nb_tensor *xt = nb_reshape(g, nb_slice(g, xp, 0, t, t + 1), 2, (int64_t[]){B, GH});
            nb_tensor *cn = NULL;
            h = step(g, r, l, xt, h, c, &cn);
            c = cn;
            hs[t] = nb_unsqueeze(g, h, 0); // (1, B, H)
            if (!h || !hs[t])
                break;
        }
        if (nb_graph_status(g) != NB_OK)
            break;
        hl[l] = nb_unsqueeze(g, h, 0);
        cl[l] = c ? nb_unsqueeze(g, c, 0) : NULL;
        in = T == 1 ? hs[0] : nb_concat(g, hs, (int)T, 0); // (T, B, H)
    }
    if (nb_graph_status(g) != NB_OK)
        return NULL;
    if (h_n)
        *h_n = L == 1 ? hl[0] : nb_concat(g, hl, L, 0);
    if (c_n && r->mode == NB_LSTM)
        *c_n = L == 1 ? cl[0] : nb_concat(g, cl, L, 0);
    return nb_graph_status(g) == NB_OK ? in : NULL;
}

static nb_tensor *rnn_forward(nb_layer *self, nb_graph *g, nb_tensor *x) {
    return nb_nn_rnn_forward(g, self, x, NULL, NULL, NULL, NULL);
}

static nb_status rnn_collect(nb_layer *self, nb_params *set, const char *prefix) {
    nb_nn_rnn *r = (nb_nn_rnn *)self;
    char name[32];
    nb_status st = NB_OK;
    for (int l = 0; l < r->num_layers && st == NB_OK; l++) {
        nb_tensor *ts[4] = {r->weight_ih[l], r->weight_hh[l], r->bias_ih[l], r->bias_hh[l]};
        static const char *const base[4] = {"weight_ih", "weight_hh", "bias_ih", "bias_hh"};
        for (int k = 0; k < 4 && st == NB_OK; k++) {
            if (!ts[k])
                continue;
            snprintf(name, sizeof name, "%s_l%d", base[k], l);
            st = nb_params_add(set, prefix, name, ts[k], NB_PARAM);
        }
    }
    return st;
}

static void rnn_destroy(nb_layer *self) {
    nb_nn_rnn *r = (nb_nn_rnn *)self;
    for (int l = 0; l < r->num_layers; l++) {
        if (r->weight_ih)
            nb_tensor_destroy(r->weight_ih[l]);
        if (r->weight_hh)
            nb_tensor_destroy(r->weight_hh[l]);
        if (r->bias_ih)
            nb_tensor_destroy(r->bias_ih[l]);
        if (r->bias_hh)
            nb_tensor_destroy(r->bias_hh[l]);
    }
    nb__free(r->weight_ih);
    nb__free(r->weight_hh);
    nb__free(r->bias_ih);
    nb__free(r->bias_hh);
    nb__free(r->steps);
    nb__free(r);
}

static const nb_layer_ops rnn_ops = {"rnn", rnn_forward, rnn_collect, NULL, rnn_destroy};
static const nb_layer_ops gru_ops = {"gru", rnn_forward, rnn_collect, NULL, rnn_destroy};
static const nb_layer_ops lstm_ops = {"lstm", rnn_forward, rnn_collect, NULL, rnn_destroy};

nb_nn_rnn *nb_nn_rnn_of(nb_layer *l) {
    return l && (l->ops == &rnn_ops || l->ops == &gru_ops || l->ops == &lstm_ops) ? (nb_nn_rnn *)l
                                                                                  : NULL;
}

nb_layer *nb_nn_rnn_create(nb_rnn_mode mode, int64_t input_size, int64_t hidden_size,
                           int num_layers, bool bias, nb_dtype dtype, nb_rng *rng) {
    char fn[32];
    snprintf(fn, sizeof fn, "nb_nn_%s_create", mode_kind(mode));
    if (!rng) {
        nb__set_last_error(NB_ERR_NULL, "%s: rng is NULL", fn);
        return NULL;
    }
    if ((unsigned)mode >= NB_RNN_MODE_COUNT) {
        nb__set_last_error(NB_ERR_ARG, "%s: mode %d is not an nb_rnn_mode", fn, (int)mode);
        return NULL;
    }
    int gates = mode == NB_GRU ? 3 : mode == NB_LSTM ? 4 : 1;
    // G*H rows and every (G*H, max(in, H)) weight must fit the 64-bit sizes comfortably.
    const int64_t lim = (int64_t)1 << 30;
    if (input_size < 1 || hidden_size < 1 || input_size > lim || hidden_size > lim / gates ||
        num_layers < 1 || num_layers > NB_RNN_MAX_LAYERS) {
        nb__set_last_error(NB_ERR_ARG,
                           "%s: input_size %lld, hidden_size %lld, num_layers %d (need sizes in "
                           "[1, 2^30 / gates], num_layers in [1, %d])",
                           fn, (long long)input_size, (long long)hidden_size, num_layers,
                           NB_RNN_MAX_LAYERS);
        return NULL;
    }
    if (dtype != NB_F32 && dtype != NB_F64) {
        nb__set_last_error(NB_ERR_DTYPE, "%s: dtype %s is not float32 or float64", fn,
                           nb_dtype_name(dtype));
        return NULL;
    }
    const nb_layer_ops *ops = mode == NB_GRU ? &gru_ops : mode == NB_LSTM ? &lstm_ops : &rnn_ops;
    nb_nn_rnn *r = (nb_nn_rnn *)nb__layer_alloc(sizeof *r, ops, fn);
    if (!r)
        return NULL;
    r->mode = mode;
    r->input_size = input_size;
    r->hidden_size = hidden_size;
    r->gates = gates;
    size_t n = (size_t)num_layers;
    r->weight_ih = nb__calloc(n, sizeof *r->weight_ih);
    r->weight_hh = nb__calloc(n, sizeof *r->weight_hh);
    r->bias_ih = nb__calloc(n, sizeof *r->bias_ih);
    r->bias_hh = nb__calloc(n, sizeof *r->bias_hh);
    bool ok = r->weight_ih && r->weight_hh && r->bias_ih && r->bias_hh;
    if (ok)
        r->num_layers = num_layers; // destroy walks this many entries
    // PyTorch: every parameter U(-1/sqrt(H), 1/sqrt(H)), in registration order.
    const double bound = 1.0 / sqrt((double)hidden_size);
    const int64_t GH = gates * hidden_size;
    for (int l = 0; ok && l < num_layers; l++) {
        int64_t in = l == 0 ? input_size : hidden_size;
        r->weight_ih[l] = nb__uniform_param(dtype, 2, (int64_t[]){GH, in}, rng, bound);
        r->weight_hh[l] =
            r->weight_ih[l] ? nb__uniform_param(dtype, 2, (int64_t[]){GH, hidden_size}, rng, bound)
                            : NULL;
        ok = r->weight_hh[l] != NULL;
        if (ok && bias) {
            r->bias_ih[l] = nb__uniform_param(dtype, 1, (int64_t[]){GH}, rng, bound);
            r->bias_hh[l] =
                r->bias_ih[l] ? nb__uniform_param(dtype, 1, (int64_t[]){GH}, rng, bound) : NULL;
            ok = r->bias_hh[l] != NULL;
        }
    }
    if (!ok) {
        nb__layer_create_failed(NB_ERR_NOMEM, fn, "allocating the weights");
        rnn_destroy(&r->base);
        return NULL;
    }
    return &r->base;
}

nb_layer *nb_nn_gru_create(int64_t input_size, int64_t hidden_size, int num_layers, bool bias,
                           nb_dtype dtype, nb_rng *rng) {
    return nb_nn_rnn_create(NB_GRU, input_size, hidden_size, num_layers, bias, dtype, rng);
}

nb_layer *nb_nn_lstm_create(int64_t input_size, int64_t hidden_size, int num_layers, bool bias,
                            nb_dtype dtype, nb_rng *rng) {
    return nb_nn_rnn_create(NB_LSTM, input_size, hidden_size, num_layers, bias, dtype, rng);
}
