// mnist --distributed: the model as a parameter set for nabla dist, the start broadcast from
// rank 0, and the per-rank batch views (mnist.c holds the training loop).
#include <string.h>

#include "mnist.h"

nb_status mnist_dist_params(const mnist_mlp *m, nb_params *ps) {
    for (int l = 0; l < m->n_layers; l++) {
        nb_status st = nb_params_add(ps, NULL, m->names[2 * l], m->w[l], NB_PARAM);
        if (st == NB_OK)
            st = nb_params_add(ps, NULL, m->names[2 * l + 1], m->b[l], NB_PARAM);
        if (st != NB_OK)
            return st;
    }
    return NB_OK;
}

nb_status mnist_dist_sync(nb_dist *d, nb_params *ps, nb_optim *opt, mnist_train_state *ts,
                          bool resumed) {
    nb_status st = nb_dist_broadcast_params(d, ps);
    if (st == NB_OK && resumed)
        st = nb_dist_broadcast_optim(d, opt);
    if (st == NB_OK)
        st = nb_dist_broadcast_bytes(d, ts, sizeof *ts);
    return st;
}

bool mnist_views_get(mnist_views *v, nb_tensor *x, nb_tensor *y, int64_t count, nb_tensor **xv,
                     nb_tensor **yv) {
    for (int i = 0; i < v->n_views; i++)
        if (v->count[i] == count) {
            *xv = v->x[i], *yv = v->y[i];
            return true;
        }
    if (v->n_views == MNIST_MAX_VIEWS)
        return false;
    int i = v->n_views;
    v->x[i] = nb_tensor_wrap(nb_tensor_dtype(x), 2, (int64_t[]){count, nb_tensor_dim(x, 1)},
                             nb_tensor_data(x));
    v->y[i] = nb_tensor_wrap(NB_I32, 1, (int64_t[]){count}, nb_tensor_data(y));
    if (!v->x[i] || !v->y[i]) {
        nb_tensor_destroy(v->x[i]);
        nb_tensor_destroy(v->y[i]);
        return false;
    }
    v->count[i] = count;
    v->n_views++;
    *xv = v->x[i], *yv = v->y[i];
    return true;
}

void mnist_views_free(mnist_views *v) {
    for (int i = 0; i < v->n_views; i++) {
        nb_tensor_destroy(v->x[i]);
        nb_tensor_destroy(v->y[i]);
    }
    memset(v, 0, sizeof *v);
}
