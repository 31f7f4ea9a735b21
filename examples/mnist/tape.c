// --dot PATH and --summary: a picture and a table of one recorded training step (forward and
// backward done, so values and gradients are there to show). The DOT file is written with
// nb_write_file_atomic (like the checkpoint), so PATH is whole or untouched and no temp file
// is left behind; the path itself was checked before training (mnist_check_outputs).
#include <stdio.h>

#include "mnist.h"

typedef struct dot_job {
    const nb_graph *g;
    nb_dot_options opt;
} dot_job;

static bool write_dot(FILE *f, void *ctx) {
    const dot_job *job = ctx;
    return nb_graph_to_dot(job->g, f, job->opt) == NB_OK;
}

int mnist_write_tape(const nb_graph *g, const mnist_mlp *m, const nb_tensor *x, const nb_tensor *y,
                     const nb_tensor *loss, const mnist_options *o, char *err, size_t err_size) {
    if (o->summary && nb_graph_summary(g, stdout) != NB_OK) {
        snprintf(err, err_size, "--summary: %s", nb_last_error());
        return 1;
    }
    if (!o->dot)
        return 0;
    // Names for the picture: every parameter by its checkpoint name, the batch, the loss.
    const nb_tensor *tensors[2 * (MNIST_MAX_HIDDEN + 1) + 3];
    const char *names[2 * (MNIST_MAX_HIDDEN + 1) + 3];
    int n = 0;
    for (int l = 0; l < m->n_layers; l++) {
        tensors[n] = m->w[l], names[n++] = m->names[2 * l];
        tensors[n] = m->b[l], names[n++] = m->names[2 * l + 1];
    }
    tensors[n] = x, names[n++] = "images";
    tensors[n] = y, names[n++] = "labels";
    tensors[n] = loss, names[n++] = "loss";
    char title[160];
    snprintf(title, sizeof title, "mnist: one training step, batch %lld, %s",
             (long long)nb_tensor_dim(x, 0), mnist_act_name(m->act));
    nb_dot_options opt = {
        .stats = true, .title = title, .tensors = tensors, .names = names, .n_names = n};

    dot_job job = {g, opt};
    if (nb_write_file_atomic(o->dot, write_dot, &job) != NB_OK) {
        snprintf(err, err_size, "--dot: %s", nb_last_error());
        return 1;
    }
    return 0;
}
