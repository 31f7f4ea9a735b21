// Normalisation and dropout layers: torch.nn.BatchNorm2d (running statistics as buffers),
// LayerNorm and Dropout, over the fused nb_batch_norm / nb_layer_norm and nb_dropout ops.
// Ops called here record the user's nb_layer_forward call site (its macro in nabla/nn.h), not
// a line of this file.
#define NB_NO_SITE_MACROS
#include <stdio.h>

#include "base/base_impl.h"
#include "nabla/ops.h"
#include "nn/nn_impl.h"

// A parameter (requires grad) filled with v: PyTorch's ones / zeros for norm gains and shifts.
static nb_tensor *filled_param(nb_dtype dtype, int ndim, const int64_t *shape, double v) {
    nb_tensor *t = nb__buffer(dtype, ndim, shape, v);
    if (t && nb_tensor_set_requires_grad(t, true) != NB_OK) {
        nb_tensor_destroy(t);
        t = NULL;
    }
    return t;
}

// ---- dropout -------------------------------------------------------------------------------

typedef struct {
    nb_layer base;
    double p;
    nb_rng *rng; // borrowed
} dropout_layer;

static nb_tensor *dropout_forward(nb_layer *self, nb_graph *g, nb_tensor *x) {
    dropout_layer *d = (dropout_layer *)self;
    return nb_dropout(g, x, d->p, self->training, d->rng);
}

static void dropout_destroy(nb_layer *self) {
    nb__free(self);
}

static const nb_layer_ops dropout_ops = {"dropout", dropout_forward, NULL, NULL, dropout_destroy};

nb_layer *nb_nn_dropout_create(double p, nb_rng *rng) {
    static const char *fn = "nb_nn_dropout_create";
    if (!rng || !(p >= 0 && p <= 1)) {
        nb__set_last_error(!rng ? NB_ERR_NULL : NB_ERR_ARG, "%s: %s (p = %g)", fn,
                           !rng ? "rng is NULL" : "p must be in [0, 1]", p);
        return NULL;
    }
    dropout_layer *d = (dropout_layer *)nb__layer_alloc(sizeof *d, &dropout_ops, fn);
    if (d) {
        d->p = p;
        d->rng = rng;
    }
    return d ? &d->base : NULL;
}

// ---- batch_norm2d --------------------------------------------------------------------------

static nb_tensor *batch_norm2d_forward(nb_layer *self, nb_graph *g, nb_tensor *x) {
    nb_nn_batch_norm2d *b = (nb_nn_batch_norm2d *)self;
    // The channel count is the layer's to check: the op would only say a vector disagrees.
    if (nb_tensor_ndim(x) != 4 || nb_tensor_dim(x, 1) != b->num_features) {
        nb_graph_fail(g, NB_ERR_SHAPE, "%s (%lld channels): input %s is not (N, %lld, H, W)",
                      NB_WHO(self), (long long)b->num_features, NB_SHAPE_STR(x),
                      (long long)b->num_features);
        return NULL;
    }
    nb_tensor *y = nb_batch_norm(g, x, b->weight, b->bias, b->running_mean, b->running_var,
                                 self->training, b->momentum, b->eps);
    if (y && self->training) // int64 as PyTorch's: counted exactly (not through a double)
        nb_tensor_data_i64(b->num_batches_tracked)[0]++;
    return y;
}

static nb_status batch_norm2d_collect(nb_layer *self, nb_params *set, const char *prefix) {
    nb_nn_batch_norm2d *b = (nb_nn_batch_norm2d *)self;
    nb_status st = NB_OK;
    if (b->weight)
        st = nb_params_add(set, prefix, "weight", b->weight, NB_PARAM);
    if (st == NB_OK && b->bias)
        st = nb_params_add(set, prefix, "bias", b->bias, NB_PARAM);
    if (st == NB_OK)
        st = nb_params_add(set, prefix, "running_mean", b->running_mean, NB_BUFFER);
    if (st == NB_OK)
        st = nb_params_add(set, prefix, "running_var", b->running_var, NB_BUFFER);
    if (st == NB_OK)
        st = nb_params_add(set, prefix, "num_batches_tracked", b->num_batches_tracked, NB_BUFFER);
    return st;
}

static void batch_norm2d_destroy(nb_layer *self) {
    nb_nn_batch_norm2d *b = (nb_nn_batch_norm2d *)self;
    nb_tensor_destroy(b->weight);
    nb_tensor_destroy(b->bias);
    nb_tensor_destroy(b->running_mean);
    nb_tensor_destroy(b->running_var);
    nb_tensor_destroy(b->num_batches_tracked);
    nb__free(b);
}

static const nb_layer_ops batch_norm2d_ops = {"batch_norm2d", batch_norm2d_forward,
                                              batch_norm2d_collect, NULL, batch_norm2d_destroy};

nb_layer *nb_nn_batch_norm2d_create(int64_t num_features, double eps, double momentum, bool affine,
                                    nb_dtype dtype) {
    static const char *fn = "nb_nn_batch_norm2d_create";
    if (num_features < 1 || !(eps > 0) || !(momentum >= 0 && momentum <= 1) ||
        (dtype != NB_F32 && dtype != NB_F64)) {
        nb__set_last_error(NB_ERR_ARG,
                           "%s: num_features %lld, eps %g, momentum %g, dtype %s: need "
                           "num_features >= 1, eps > 0, momentum in [0, 1], float32 or float64",
                           fn, (long long)num_features, eps, momentum, nb_dtype_name(dtype));
        return NULL;
    }
    nb_nn_batch_norm2d *b = (nb_nn_batch_norm2d *)nb__layer_alloc(sizeof *b, &batch_norm2d_ops, fn);
    if (!b)
        return NULL;
    b->num_features = num_features;
    b->eps = eps;
    b->momentum = momentum;
    const int64_t c[1] = {num_features};
    bool ok = true;
    if (affine) {
        b->weight = filled_param(dtype, 1, c, 1.0);
        b->bias = filled_param(dtype, 1, c, 0.0);
        ok = b->weight && b->bias;
    }
    b->running_mean = nb__buffer(dtype, 1, c, 0.0);
    b->running_var = nb__buffer(dtype, 1, c, 1.0);
    b->num_batches_tracked = nb__buffer(NB_I64, 0, NULL, 0.0);
    if (!ok || !b->running_mean || !b->running_var || !b->num_batches_tracked) {
        nb__layer_create_failed(NB_ERR_NOMEM, fn, "allocating the tensors");
        batch_norm2d_destroy(&b->base);
        return NULL;
    }
    return &b->base;
}

nb_nn_batch_norm2d *nb_nn_batch_norm2d_of(nb_layer *l) {
    return l && l->ops == &batch_norm2d_ops ? (nb_nn_batch_norm2d *)l : NULL;
}

// ---- layer_norm ----------------------------------------------------------------------------

static nb_tensor *layer_norm_forward(nb_layer *self, nb_graph *g, nb_tensor *x) {
    nb_nn_layer_norm *l = (nb_nn_layer_norm *)self;
    int nd = nb_tensor_ndim(x);
    bool ok = nd >= l->ndim;
    for (int i = 0; ok && i < l->ndim; i++)
        ok = nb_tensor_dim(x, nd - l->ndim + i) == l->shape[i];
    if (!ok) {
        char want[NB_MAX_DIMS * 22 + 4];
        int k = 0;
        for (int i = 0; i < l->ndim; i++)
            k += snprintf(want + k, sizeof want - (size_t)k, "%s%lld", i ? ", " : "",
                          (long long)l->shape[i]);
        nb_graph_fail(g, NB_ERR_SHAPE, "%s: input %s does not end in the normalized shape (%s)",
                      NB_WHO(self), NB_SHAPE_STR(x), want);
        return NULL;
    }
    return nb_layer_norm(g, x, l->ndim, l->weight, l->bias, l->eps);
}

static nb_status layer_norm_collect(nb_layer *self, nb_params *set, const char *prefix) {
    nb_nn_layer_norm *l = (nb_nn_layer_norm *)self;
    nb_status st = NB_OK;
    if (l->weight)
        st = nb_params_add(set, prefix, "weight", l->weight, NB_PARAM);
    if (st == NB_OK && l->bias)
        st = nb_params_add(set, prefix, "bias", l->bias, NB_PARAM);
    return st;
}

static void layer_norm_destroy(nb_layer *self) {
    nb_nn_layer_norm *l = (nb_nn_layer_norm *)self;
    nb_tensor_destroy(l->weight);
    nb_tensor_destroy(l->bias);
    nb__free(l);
}

static const nb_layer_ops layer_norm_ops = {"layer_norm", layer_norm_forward, layer_norm_collect,
                                            NULL, layer_norm_destroy};

nb_layer *nb_nn_layer_norm_create(int ndim, const int64_t *shape, double eps, bool affine,
                                  nb_dtype dtype) {
    static const char *fn = "nb_nn_layer_norm_create";
    bool ok = shape && ndim >= 1 && ndim <= NB_MAX_DIMS && eps > 0 &&
              (dtype == NB_F32 || dtype == NB_F64);
    for (int i = 0; ok && i < ndim; i++)
        ok = shape[i] >= 1;
    if (!ok) {
        nb__set_last_error(shape ? NB_ERR_ARG : NB_ERR_NULL,
                           "%s: ndim %d, eps %g, dtype %s: need a shape of 1 to %d dims, each "
                           ">= 1, eps > 0, float32 or float64",
                           fn, ndim, eps, nb_dtype_name(dtype), NB_MAX_DIMS);
        return NULL;
    }
    nb_nn_layer_norm *l = (nb_nn_layer_norm *)nb__layer_alloc(sizeof *l, &layer_norm_ops, fn);
    if (!l)
        return NULL;
    l->ndim = ndim;
    for (int i = 0; i < ndim; i++)
        l->shape[i] = shape[i];
    l->eps = eps;
    if (affine) {
        l->weight = filled_param(dtype, ndim, shape, 1.0);
        l->bias = filled_param(dtype, ndim, shape, 0.0);
        if (!l->weight || !l->bias) {
            nb__layer_create_failed(NB_ERR_NOMEM, fn, "allocating the tensors");
            layer_norm_destroy(&l->base);
            return NULL;
        }
    }
    return &l->base;
}

nb_nn_layer_norm *nb_nn_layer_norm_of(nb_layer *l) {
    return l && l->ops == &layer_norm_ops ? (nb_nn_layer_norm *)l : NULL;
}
