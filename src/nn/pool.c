// Pooling layers (torch.nn.MaxPool2d, AvgPool2d, AdaptiveAvgPool2d) over the pooling ops: no
// tensors, only their window settings.
// Ops called here record the user's nb_layer_forward call site (its macro in nabla/nn.h), not
// a line of this file.
#define NB_NO_SITE_MACROS
#include <stdio.h>

#include "base/base_impl.h"
#include "nabla/ops.h"
#include "nn/nn_impl.h"

typedef struct {
    nb_layer base;
    int kernel, stride, padding; // max / avg: square windows
    int out_h, out_w;            // adaptive
} pool_layer;

// The pooling ops take (N, C, H, W); the layer says so in its own words first.
static bool is_nchw(nb_layer *self, nb_graph *g, nb_tensor *x) {
    if (nb_tensor_ndim(x) == 4)
        return true;
    pool_layer *p = (pool_layer *)self;
    if (p->kernel)
        nb_graph_fail(g, NB_ERR_SHAPE,
                      "%s (kernel %d, stride %d, padding %d): input %s is not "
                      "(N, C, H, W)",
                      NB_WHO(self), p->kernel, p->stride, p->padding, NB_SHAPE_STR(x));
    else
        nb_graph_fail(g, NB_ERR_SHAPE, "%s (to %dx%d): input %s is not (N, C, H, W)", NB_WHO(self),
                      p->out_h, p->out_w, NB_SHAPE_STR(x));
    return false;
}

static nb_tensor *max_pool2d_forward(nb_layer *self, nb_graph *g, nb_tensor *x) {
    pool_layer *p = (pool_layer *)self;
    return is_nchw(self, g, x) ? nb_max_pool2d(g, x, p->kernel, p->stride, p->padding, 1, false)
                               : NULL;
}

static nb_tensor *avg_pool2d_forward(nb_layer *self, nb_graph *g, nb_tensor *x) {
    pool_layer *p = (pool_layer *)self;
    return is_nchw(self, g, x) ? nb_avg_pool2d(g, x, p->kernel, p->stride, p->padding, false, true)
                               : NULL;
}

static nb_tensor *adaptive_forward(nb_layer *self, nb_graph *g, nb_tensor *x) {
    pool_layer *p = (pool_layer *)self;
    return is_nchw(self, g, x) ? nb_adaptive_avg_pool2d(g, x, p->out_h, p->out_w) : NULL;
}

static void pool_destroy(nb_layer *self) {
    nb__free(self);
}

static const nb_layer_ops max_pool2d_ops = {"max_pool2d", max_pool2d_forward, NULL, NULL,
                                            pool_destroy};
static const nb_layer_ops avg_pool2d_ops = {"avg_pool2d", avg_pool2d_forward, NULL, NULL,
                                            pool_destroy};
static const nb_layer_ops adaptive_ops = {"adaptive_avg_pool2d", adaptive_forward, NULL, NULL,
                                          pool_destroy};

static nb_layer *window_pool(const nb_layer_ops *ops, const char *fn, int kernel, int stride,
                             int padding) {
    // The ops' own rule (padding at most half the window), checked here so that a bad layer
    // fails when it is built rather than at its first forward.
    if (kernel < 1 || stride < 0 || padding < 0 || padding > kernel / 2) {
        nb__set_last_error(NB_ERR_ARG,
                           "%s: kernel %d, stride %d, padding %d: need kernel >= 1, stride >= 0 "
                           "(0: the kernel), 0 <= padding <= kernel / 2",
                           fn, kernel, stride, padding);
        return NULL;
    }
    pool_layer *p = (pool_layer *)nb__layer_alloc(sizeof *p, ops, fn);
    if (p) {
        p->kernel = kernel;
        p->stride = stride ? stride : kernel;
        p->padding = padding;
    }
    return p ? &p->base : NULL;
}

nb_layer *nb_nn_max_pool2d_create(int kernel, int stride, int padding) {
    return window_pool(&max_pool2d_ops, "nb_nn_max_pool2d_create", kernel, stride, padding);
}

nb_layer *nb_nn_avg_pool2d_create(int kernel, int stride, int padding) {
    return window_pool(&avg_pool2d_ops, "nb_nn_avg_pool2d_create", kernel, stride, padding);
}

nb_layer *nb_nn_adaptive_avg_pool2d_create(int out_h, int out_w) {
    static const char *fn = "nb_nn_adaptive_avg_pool2d_create";
    if (out_h < 1 || out_w < 1) {
        nb__set_last_error(NB_ERR_ARG, "%s: output size %dx%d: both must be >= 1", fn, out_h,
                           out_w);
        return NULL;
    }
    pool_layer *p = (pool_layer *)nb__layer_alloc(sizeof *p, &adaptive_ops, fn);
    if (p) {
        p->out_h = out_h;
        p->out_w = out_w;
    }
    return p ? &p->base : NULL;
}
