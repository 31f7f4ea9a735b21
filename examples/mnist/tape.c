// --dot PATH and --summary: a picture and a table of one recorded training step (forward and
// backward done, so values and gradients are there to show). The DOT file is written to
// "<path>.tmp.<pid>" and renamed over PATH, so PATH is whole or untouched.
#define _POSIX_C_SOURCE 200809L // getpid

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "mnist.h"

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

    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", o->dot, (long)getpid()) >= (int)sizeof tmp) {
        snprintf(err, err_size, "--dot path is too long");
        return 1;
    }
    FILE *f = fopen(tmp, "w");
    if (!f) {
        snprintf(err, err_size, "cannot write %s: %s", tmp, strerror(errno));
        return 1;
    }
    bool ok = nb_graph_to_dot(g, f, opt) == NB_OK;
    int e = ok ? 0 : errno;
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, o->dot) != 0) {
        e = e ? e : errno;
        remove(tmp);
        snprintf(err, err_size, "cannot write %s: %s", o->dot, strerror(e));
        return 1;
    }
    return 0;
}
