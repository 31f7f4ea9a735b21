// mnist example: the multi-layer perceptron. Layer l computes h_{l+1} = act(h_l W_lᵀ + b_l),
// W_l (out, in), b_l (out); the last layer has no activation and gives the logits
// (batch, classes). Init: He-uniform for the ReLU-like activations (relu, leaky_relu, elu,
// gelu, silu, softplus: about half the units pass, so the variance is doubled), Xavier-uniform
// for tanh / sigmoid and for the output layer (it feeds softmax, not an activation); biases 0.
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "mnist.h"

#define LEAKY_SLOPE 0.01
#define ELU_ALPHA 1.0
#define EVAL_CHUNK 1000 // samples per forward pass when evaluating (no grad, so only memory)

static bool relu_like(mnist_act a) {
    return a != MNIST_TANH && a != MNIST_SIGMOID;
}

void mnist_mlp_destroy(mnist_mlp *m) {
    for (int l = 0; l < m->n_layers; l++) {
        nb_tensor_destroy(m->w[l]);
        nb_tensor_destroy(m->b[l]);
        m->w[l] = m->b[l] = NULL;
    }
    m->n_layers = 0;
}

nb_status mnist_mlp_create(mnist_mlp *m, const mnist_options *o, int64_t features, int64_t classes,
                           nb_rng *rng) {
    memset(m, 0, sizeof *m);
    m->n_layers = o->n_hidden + 1;
    m->act = o->act;
    m->dtype = o->dtype;
    m->width[0] = features;
    for (int l = 0; l < o->n_hidden; l++)
        m->width[l + 1] = o->hidden[l];
    m->width[m->n_layers] = classes;
    for (int l = 0; l < m->n_layers; l++) {
        int64_t in = m->width[l], out = m->width[l + 1];
        snprintf(m->names[2 * l], sizeof m->names[0], "fc%d.weight", l + 1);
        snprintf(m->names[2 * l + 1], sizeof m->names[0], "fc%d.bias", l + 1);
        m->w[l] = nb_tensor_create(o->dtype, 2, (int64_t[]){out, in}); // (out, in)
        m->b[l] = nb_tensor_create(o->dtype, 1, (int64_t[]){out});     // (out), zeros
        bool hidden = l + 1 < m->n_layers;
        nb_status st = !m->w[l] || !m->b[l]          ? NB_ERR_NOMEM
                       : hidden && relu_like(o->act) ? nb_init_he_uniform(m->w[l], rng)
                                                     : nb_init_xavier_uniform(m->w[l], rng);
        if (st == NB_OK)
            st = nb_tensor_set_requires_grad(m->w[l], true);
        if (st == NB_OK)
            st = nb_tensor_set_requires_grad(m->b[l], true);
        if (st != NB_OK) {
            m->n_layers = l + 1; // free what exists, including this layer's half
            mnist_mlp_destroy(m);
            return st;
        }
    }
    return NB_OK;
}

int64_t mnist_mlp_param_count(const mnist_mlp *m) {
    int64_t n = 0;
    for (int l = 0; l < m->n_layers; l++)
        n += (m->width[l] + 1) * m->width[l + 1];
    return n;
}

char *mnist_mlp_describe(const mnist_mlp *m, char *buf, size_t size) {
    size_t len = 0;
    buf[0] = '\0';
    for (int l = 0; l <= m->n_layers && len < size; l++)
        len += (size_t)snprintf(buf + len, size - len, "%s%" PRId64, l ? "-" : "", m->width[l]);
    return buf;
}

static nb_tensor *activate(nb_graph *g, mnist_act a, nb_tensor *x) {
    switch (a) {
    case MNIST_RELU:
        return nb_relu(g, x);
    case MNIST_TANH:
        return nb_tanh(g, x);
    case MNIST_SIGMOID:
        return nb_sigmoid(g, x);
    case MNIST_GELU:
        return nb_gelu(g, x);
    case MNIST_LEAKY_RELU:
        return nb_leaky_relu(g, x, LEAKY_SLOPE);
    case MNIST_ELU:
        return nb_elu(g, x, ELU_ALPHA);
    case MNIST_SILU:
        return nb_silu(g, x);
    case MNIST_SOFTPLUS:
        return nb_softplus(g, x);
    default:
        return NULL;
    }
}

nb_tensor *mnist_mlp_forward(nb_graph *g, const mnist_mlp *m, nb_tensor *x) {
    nb_tensor *h = x; // (batch, width[l])
    for (int l = 0; l < m->n_layers; l++) {
        h = nb_linear(g, h, m->w[l], m->b[l]);
        if (l + 1 < m->n_layers)
            h = activate(g, m->act, h);
    }
    return h; // NULL propagates: the first error is on g
}

static int flat_params(const mnist_mlp *m, const char **names, nb_tensor **ts) {
    for (int l = 0; l < m->n_layers; l++) {
        names[2 * l] = m->names[2 * l];
        names[2 * l + 1] = m->names[2 * l + 1];
        ts[2 * l] = m->w[l];
        ts[2 * l + 1] = m->b[l];
    }
    return 2 * m->n_layers;
}

nb_status mnist_mlp_save(const mnist_mlp *m, const char *path) {
    const char *names[2 * (MNIST_MAX_HIDDEN + 1)];
    nb_tensor *ts[2 * (MNIST_MAX_HIDDEN + 1)];
    int n = flat_params(m, names, ts);
    return nb_save_safetensors(path, names, ts, n);
}

nb_status mnist_mlp_load(mnist_mlp *m, const char *path, bool *unchecked, char *err,
                         size_t err_size) {
    const char *names[2 * (MNIST_MAX_HIDDEN + 1)];
    nb_tensor *ts[2 * (MNIST_MAX_HIDDEN + 1)];
    int n = flat_params(m, names, ts);
    nb_safetensors *f = NULL;
    nb_status st = nb_safetensors_open(path, &f); // the header is parsed once, here
    // Names in layer order, input side first: a mismatch names the first layer that differs.
    if (st == NB_OK)
        st = nb_safetensors_read(f, names, ts, n, 0);
    if (st != NB_OK)
        snprintf(err, err_size, "%s", nb_last_error());
    // A deeper checkpoint whose first layers happen to fit would load silently: refuse a file
    // that holds the next layer's weight.
    char extra[24];
    snprintf(extra, sizeof extra, "fc%d.weight", m->n_layers + 1);
    if (st == NB_OK && nb_safetensors_find(f, extra, NULL, NULL, NULL)) {
        snprintf(err, err_size,
                 "%s: holds '%s', a layer beyond this model's %d (the "
                 "checkpoint is deeper)",
                 path, extra, m->n_layers);
        st = NB_ERR_SHAPE;
    }
    *unchecked = st == NB_OK && !nb_safetensors_checked(f);
    nb_safetensors_close(f);
    return st;
}

int64_t mnist_evaluate(nb_graph *g, const mnist_mlp *m, const nb_dataset *ds, const int64_t *idx,
                       int64_t n, int64_t *confusion, char *err, size_t err_size) {
    int64_t features = m->width[0], classes = m->width[m->n_layers];
    int64_t chunk = n < EVAL_CHUNK ? n : EVAL_CHUNK;
    nb_tensor *x = nb_tensor_create(m->dtype, 2, (int64_t[]){chunk, features}); // (chunk, f)
    if (!x) {
        snprintf(err, err_size, "%s", nb_last_error());
        return -1;
    }
    nb_graph_set_grad_enabled(g, false);
    int64_t correct = 0;
    for (int64_t start = 0; start < n && correct >= 0; start += chunk) {
        int64_t count = n - start < chunk ? n - start : chunk;
        // The short last chunk is a (count, f) view over the front of x's buffer.
        nb_tensor *xv = count == chunk ? x
                                       : nb_tensor_wrap(m->dtype, 2, (int64_t[]){count, features},
                                                        nb_tensor_data(x));
        nb_graph_reset(g);
        nb_tensor *logits = NULL;
        if (xv && nb_dataset_fill_batch(ds, idx + start, count, xv, NULL, NULL) == NB_OK) {
            logits = mnist_mlp_forward(g, m, xv);
            if (!logits)
                snprintf(err, err_size, "%s", nb_graph_error(g));
        } else {
            snprintf(err, err_size, "%s", nb_last_error());
        }
        for (int64_t i = 0; logits && i < count; i++) {
            int truth = ds->labels[idx[start + i]];
            int pred = mnist_argmax_row(logits, i);
            correct += pred == truth;
            if (confusion && truth < classes)
                confusion[truth * classes + pred]++;
        }
        if (!logits)
            correct = -1;
        if (xv != x)
            nb_tensor_destroy(xv);
    }
    nb_graph_reset(g);
    nb_tensor_destroy(x);
    return correct;
}

// ---- training checkpoints of the MLP (the format is state.c's) ----

// The MLP's side of mnist_model_io.
static nb_status mlp_load(void *ctx, const char *path, char *err, size_t err_size) {
    bool unchecked = false; // a nabla checkpoint always has checksums; resume needs ours
    return mnist_mlp_load(ctx, path, &unchecked, err, err_size);
}

// The MLP's tensors in checkpoint order (weight, bias, weight, ...); the loader is set by resume.
static mnist_model_io mlp_io(const mnist_mlp *m, const char **names, nb_tensor **ts) {
    int n = 0;
    for (int l = 0; l < m->n_layers; l++) {
        names[n] = m->names[2 * l], ts[n++] = m->w[l];
        names[n] = m->names[2 * l + 1], ts[n++] = m->b[l];
    }
    return (mnist_model_io){names, ts, n, NULL, NULL};
}

nb_status mnist_checkpoint_save(const char *path, const mnist_mlp *m, nb_optim *opt,
                                const mnist_train_state *s) {
    const char *names[2 * (MNIST_MAX_HIDDEN + 1)];
    nb_tensor *ts[2 * (MNIST_MAX_HIDDEN + 1)];
    mnist_model_io io = mlp_io(m, names, ts);
    return mnist_checkpoint_save_model(path, &io, opt, s);
}

nb_status mnist_checkpoint_resume(const char *path, mnist_mlp *m, nb_optim *opt,
                                  mnist_train_state *s, char *err, size_t err_size) {
    const char *names[2 * (MNIST_MAX_HIDDEN + 1)];
    nb_tensor *ts[2 * (MNIST_MAX_HIDDEN + 1)];
    mnist_model_io io = mlp_io(m, names, ts);
    io.load = mlp_load;
    io.ctx = m;
    return mnist_checkpoint_resume_model(path, &io, opt, s, err, err_size);
}
