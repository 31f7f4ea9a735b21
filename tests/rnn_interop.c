// Helper of tests/rnn_torch_interop.py (the recurrent layers against torch.nn.RNN/GRU/LSTM):
//   rnn_interop init MODE LAYERS BIAS OUT
//       builds the layer (float32, seed 1) and saves it with nb_layer_save to OUT, for torch's
//       load_state_dict(strict=True)
//   rnn_interop run MODE LAYERS BIAS DTYPE IN OUT
//       builds the layer, loads its weights from IN (a torch state_dict, by name) together with
//       x (T, B, F), optional h0 / c0 (LAYERS, B, H) and upstream gradients gy, ghn, gcn; runs
//       the forward, the loss sum(y gy) + sum(h_n ghn) [+ sum(c_n gcn)] and backward, and saves
//       y, h_n, c_n and every gradient ("grad.x", "grad.h0", "grad.c0", "grad.<param name>") to
//       OUT
// MODE: tanh, relu, gru or lstm; BIAS 0 or 1; DTYPE f32 or f64. Exit 0 on success, 1 with a
// message otherwise.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nabla.h"

static int fail(const char *what) {
    fprintf(stderr, "rnn_interop: %s: %s\n", what, nb_last_error());
    return 1;
}

// The tensor `name` of the file (NULL when absent), created with the file's dtype and shape.
static nb_tensor *read_tensor(nb_safetensors *f, const char *name, bool grad) {
    int dtype = -1, ndim = 0;
    int64_t shape[NB_MAX_DIMS];
    if (!nb_safetensors_find(f, name, &dtype, &ndim, shape) || dtype < 0)
        return NULL;
    nb_tensor *t = nb_tensor_create((nb_dtype)dtype, ndim, shape);
    const char *names[] = {name};
    if (!t || nb_safetensors_read(f, names, &t, 1, 0) != NB_OK) {
        nb_tensor_destroy(t);
        return NULL;
    }
    if (grad)
        nb_tensor_set_requires_grad(t, true);
    return t;
}

// A copy of t's gradient as a tensor of its own.
static nb_tensor *grad_of(nb_tensor *t) {
    return nb_tensor_from_data(nb_tensor_dtype(t), nb_tensor_ndim(t), nb_tensor_shape(t),
                               nb_tensor_grad(t));
}

int main(int argc, char **argv) {
    bool init = argc == 6 && strcmp(argv[1], "init") == 0;
    bool run = argc == 8 && strcmp(argv[1], "run") == 0;
    if (!init && !run) {
        fprintf(stderr, "usage: rnn_interop init MODE LAYERS BIAS OUT\n"
                        "       rnn_interop run MODE LAYERS BIAS DTYPE IN OUT\n");
        return 2;
    }
    const char *m = argv[2];
    nb_rnn_mode mode = strcmp(m, "tanh") == 0   ? NB_RNN_TANH
                       : strcmp(m, "relu") == 0 ? NB_RNN_RELU
                       : strcmp(m, "gru") == 0  ? NB_GRU
                                                : NB_LSTM;
    int layers = atoi(argv[3]);
    bool bias = atoi(argv[4]) != 0;
    nb_dtype dt = run && strcmp(argv[5], "f64") == 0 ? NB_F64 : NB_F32;
    nb_rng rng;
    nb_rng_seed(&rng, 1);
    // The sizes are fixed by the script: input 5, hidden 4.
    nb_layer *l = nb_nn_rnn_create(mode, 5, 4, layers, bias, dt, &rng);
    if (!l)
        return fail("create");
    if (init) {
        int rc = nb_layer_save(l, argv[5]) == NB_OK ? 0 : fail("save");
        nb_layer_destroy(l);
        return rc;
    }
    const char *in = argv[6], *out = argv[7];
    nb_params *ps = nb_params_create();
    if (nb_layer_collect(l, ps, NULL) != NB_OK || nb_params_load(ps, in) != NB_OK)
        return fail("loading the weights");
    nb_safetensors *f = NULL;
    if (nb_safetensors_open(in, &f) != NB_OK)
        return fail("open");
    nb_tensor *x = read_tensor(f, "x", true), *h0 = read_tensor(f, "h0", true);
    nb_tensor *c0 = read_tensor(f, "c0", true), *gy = read_tensor(f, "gy", false);
    nb_tensor *ghn = read_tensor(f, "ghn", false), *gcn = read_tensor(f, "gcn", false);
    nb_safetensors_close(f);
    if (!x || !gy || !ghn)
        return fail("reading x, gy, ghn");
    nb_graph *g = nb_graph_create();
    nb_tensor *hn = NULL, *cn = NULL;
    nb_tensor *y = nb_nn_rnn_forward(g, l, x, h0, c0, &hn, &cn);
    nb_tensor *loss = nb_add(g, nb_sum(g, nb_mul(g, y, gy)), nb_sum(g, nb_mul(g, hn, ghn)));
    if (cn && gcn)
        loss = nb_add(g, loss, nb_sum(g, nb_mul(g, cn, gcn)));
    if (!loss || nb_backward(g, loss) != NB_OK) {
        fprintf(stderr, "rnn_interop: forward/backward: %s\n", nb_graph_error(g));
        return 1;
    }
    // y, h_n, c_n, grad.x, grad.h0, grad.c0, then one grad per parameter.
    const char *names[64];
    nb_tensor *ts[64];
    char pnames[32][48];
    int n = 0;
    names[n] = "y", ts[n++] = y;
    names[n] = "h_n", ts[n++] = hn;
    if (cn)
        names[n] = "c_n", ts[n++] = cn;
    names[n] = "grad.x", ts[n++] = grad_of(x);
    if (h0)
        names[n] = "grad.h0", ts[n++] = grad_of(h0);
    if (c0)
        names[n] = "grad.c0", ts[n++] = grad_of(c0);
    for (int i = 0; i < nb_params_count(ps, NB_PARAM) && i < 32; i++) {
        snprintf(pnames[i], sizeof pnames[i], "grad.%s", nb_params_name(ps, NB_PARAM, i));
        names[n] = pnames[i], ts[n++] = grad_of(nb_params_tensor(ps, NB_PARAM, i));
    }
    int rc = nb_save_safetensors(out, names, ts, n) == NB_OK ? 0 : fail("save");
    for (int i = 0; i < n; i++) // the gradient copies are ours, the rest the graph's
        if (ts[i] != y && ts[i] != hn && ts[i] != cn)
            nb_tensor_destroy(ts[i]);
    nb_graph_destroy(g);
    nb_tensor *all[] = {x, h0, c0, gy, ghn, gcn};
    for (int i = 0; i < 6; i++)
        nb_tensor_destroy(all[i]);
    nb_params_destroy(ps);
    nb_layer_destroy(l);
    return rc;
}
