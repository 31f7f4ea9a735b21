// The 2-D convolution layer (torch.nn.Conv2d) over the nb_conv2d_hw op.
// Ops called here record the user's nb_layer_forward call site (its macro in nabla/nn.h), not
// a line of this file.
#define NB_NO_SITE_MACROS
#include <math.h>
#include <stdio.h>

#include "base/base_impl.h"
#include "nabla/ops.h"
#include "nn/nn_impl.h"

static nb_tensor *conv2d_forward(nb_layer *self, nb_graph *g, nb_tensor *x) {
    nb_nn_conv2d *c = (nb_nn_conv2d *)self;
    // The channel count is the layer's to check (the op would only say the weight disagrees).
    if (nb_tensor_ndim(x) != 4 || nb_tensor_dim(x, 1) != c->in_channels) {
        nb_graph_fail(g, NB_ERR_SHAPE,
                      "%s (%lld -> %lld channels, kernel %dx%d): input %s is not (N, %lld, H, W)",
                      NB_WHO(self), (long long)c->in_channels, (long long)c->out_channels,
                      c->kernel[0], c->kernel[1], NB_SHAPE_STR(x), (long long)c->in_channels);
        return NULL;
    }
    return nb_conv2d_hw(g, x, c->weight, c->bias, c->stride, c->padding, c->dilation, c->groups);
}

static nb_status conv2d_collect(nb_layer *self, nb_params *set, const char *prefix) {
    nb_nn_conv2d *c = (nb_nn_conv2d *)self;
    nb_status st = nb_params_add(set, prefix, "weight", c->weight, NB_PARAM);
    if (st == NB_OK && c->bias)
        st = nb_params_add(set, prefix, "bias", c->bias, NB_PARAM);
    return st;
}

static void conv2d_destroy(nb_layer *self) {
    nb_nn_conv2d *c = (nb_nn_conv2d *)self;
    nb_tensor_destroy(c->weight);
    nb_tensor_destroy(c->bias);
    nb__free(c);
}

static const nb_layer_ops conv2d_ops = {"conv2d", conv2d_forward, conv2d_collect, NULL,
                                        conv2d_destroy};

nb_layer *nb_nn_conv2d_create(int64_t in_channels, int64_t out_channels, nb_nn_conv2d_options opt,
                              nb_dtype dtype, nb_rng *rng) {
    static const char *fn = "nb_nn_conv2d_create";
    int groups = opt.groups ? opt.groups : 1;
    for (int i = 0; i < 2; i++) {
        if (opt.stride[i] == 0)
            opt.stride[i] = 1;
        if (opt.dilation[i] == 0)
            opt.dilation[i] = 1;
    }
    const char *bad = NULL;
    if (!rng)
        bad = "rng is NULL";
    else if (in_channels < 1 || out_channels < 1)
        bad = "channel counts must be >= 1";
    else if (opt.kernel[0] < 1 || opt.kernel[1] < 1)
        bad = "kernel sizes must be >= 1";
    else if (opt.stride[0] < 1 || opt.stride[1] < 1 || opt.dilation[0] < 1 || opt.dilation[1] < 1)
        bad = "stride and dilation must be >= 1 (0: the default 1)";
    else if (opt.padding[0] < 0 || opt.padding[1] < 0)
        bad = "padding must be >= 0";
    else if (groups < 1 || in_channels % groups || out_channels % groups)
        bad = "groups must be >= 1 and divide both channel counts";
    else if (dtype != NB_F32 && dtype != NB_F64)
        bad = "dtype must be float32 or float64";
    if (bad) {
        nb__set_last_error(!rng ? NB_ERR_NULL : NB_ERR_ARG,
                           "%s: %s (in %lld, out %lld, kernel %dx%d, stride %dx%d, padding %dx%d, "
                           "dilation %dx%d, groups %d, %s)",
                           fn, bad, (long long)in_channels, (long long)out_channels, opt.kernel[0],
                           opt.kernel[1], opt.stride[0], opt.stride[1], opt.padding[0],
                           opt.padding[1], opt.dilation[0], opt.dilation[1], groups,
                           nb_dtype_name(dtype));
        return NULL;
    }
    nb_nn_conv2d *c = (nb_nn_conv2d *)nb__layer_alloc(sizeof *c, &conv2d_ops, fn);
    if (!c)
        return NULL;
    c->in_channels = in_channels;
    c->out_channels = out_channels;
    for (int i = 0; i < 2; i++) {
        c->kernel[i] = opt.kernel[i];
        c->stride[i] = opt.stride[i];
        c->padding[i] = opt.padding[i];
        c->dilation[i] = opt.dilation[i];
    }
    c->groups = groups;
    // PyTorch's reset_parameters: kaiming_uniform_(a = sqrt(5)) = U(±1/sqrt(fan_in)) with
    // fan_in = C/groups · KH · KW, and the bias U(±1/sqrt(fan_in)).
    int64_t cin = in_channels / groups;
    double bound = 1.0 / sqrt((double)(cin * opt.kernel[0] * opt.kernel[1]));
    c->weight = nb__uniform_param(
        dtype, 4, (int64_t[]){out_channels, cin, opt.kernel[0], opt.kernel[1]}, rng, bound);
    if (c->weight && !opt.no_bias)
        c->bias = nb__uniform_param(dtype, 1, (int64_t[]){out_channels}, rng, bound);
    if (!c->weight || (!opt.no_bias && !c->bias)) {
        nb__layer_create_failed(NB_ERR_NOMEM, fn, "allocating the weights");
        conv2d_destroy(&c->base);
        return NULL;
    }
    return &c->base;
}

nb_nn_conv2d *nb_nn_conv2d_of(nb_layer *l) {
    return l && l->ops == &conv2d_ops ? (nb_nn_conv2d *)l : NULL;
}
