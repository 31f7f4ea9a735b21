// Reductions. sum / mean: x (any shape) -> y scalar (ndim 0), y = Σ x or Σ x / numel.
// sum_axis / mean_axis / max_axis view x as (outer, len, inner) around the reduced axis, so
// one set of loops serves every axis: y[o, i] = Σ_k x[o, k, i] (/ len), or max_k x[o, k, i].
// y drops the axis, or keeps it as size 1 with keepdim. The whole-tensor forms are the same
// kernels with (outer, len, inner) = (1, numel, 1). Sums accumulate in double for both dtypes.
#include <math.h>
#include <string.h>

#include "ops/ops_impl.h"

typedef enum { RED_SUM, RED_MEAN, RED_MAX, RED_MIN } red_mode;

typedef struct {
    red_mode mode;
    bool whole; // reduce every element to a scalar (axis and keepdim unused)
    int axis;   // as given by the caller; may be negative
    bool keepdim;
} red_params;

// The (outer, len, inner) view of x for this node. infer has validated the axis.
static void red_view(const nb_node *nd, int64_t *outer, int64_t *len, int64_t *inner) {
    const red_params *p = nd->params;
    const nb_tensor *x = nd->in[0];
    *outer = 1;
    *len = x->numel;
    *inner = 1;
    if (p->whole)
        return;
    int ax = 0;
    NB_ASSERT(nb__axis(p->axis, x->ndim, &ax));
    *len = x->shape[ax];
    for (int d = 0; d < ax; d++)
        *outer *= x->shape[d];
    for (int d = ax + 1; d < x->ndim; d++)
        *inner *= x->shape[d];
}

// Elements per work item of a sum's or mean's backward (reduce_kernels.inc).
#define RED_ITEM 4096
// Each output element is computed serially by one thread, so results do not depend on the
// thread count. max keeps the first maximal index (k) in arg; a NaN wins, so it propagates.
#define T float
#define SFX f32
#include "ops/reduce_kernels.inc"
#define T double
#define SFX f64
#include "ops/reduce_kernels.inc"

static const char *red_what(red_mode mode) {
    return mode == RED_MAX ? "max" : mode == RED_MIN ? "min" : "mean";
}

static nb_status red_infer(nb_node *nd, nb_shape *out) {
    const red_params *p = nd->params;
    const nb_tensor *x = nd->in[0];
    if (p->whole) {
        if (p->mode != RED_SUM && x->numel == 0)
            return nb__node_fail(nd, NB_ERR_SHAPE,
                                 "x %s is empty: the %s of no elements is undefined",
                                 NB_SHAPE_STR(x), red_what(p->mode));
        out->ndim = 0;
        return NB_OK;
    }
    int ax;
    if (!nb__axis(p->axis, x->ndim, &ax))
        return nb__node_fail(nd, NB_ERR_ARG, "axis %d out of range for x %s (%d dims)", p->axis,
                             NB_SHAPE_STR(x), x->ndim);
    if (p->mode != RED_SUM && x->shape[ax] == 0)
        return nb__node_fail(nd, NB_ERR_SHAPE,
                             "axis %d of x %s is empty: the %s of no elements is undefined",
                             p->axis, NB_SHAPE_STR(x), red_what(p->mode));
    out->ndim = 0;
    for (int d = 0; d < x->ndim; d++) {
        if (d != ax)
            out->dim[out->ndim++] = x->shape[d];
        else if (p->keepdim)
            out->dim[out->ndim++] = 1;
    }
    return NB_OK;
}

static void red_forward(nb_node *nd) {
    const red_params *p = nd->params;
    nb_tensor *x = nd->in[0], *y = nd->out;
    int64_t outer, len, inner;
    red_view(nd, &outer, &len, &inner);
    int64_t *arg = NULL;
    if (p->mode == RED_MAX || p->mode == RED_MIN) { // arg per output, kept for backward
        arg = nb__node_save(nd, (size_t)y->numel * sizeof *arg);
        if (!arg)
            return;
    }
    if (x->dtype == NB_F32)
        red_fwd_f32(F32(x), F32(y), arg, outer, len, inner, p->mode);
    else
        red_fwd_f64(F64(x), F64(y), arg, outer, len, inner, p->mode);
}

// sum: dx[o, k, i] += dy[o, i];  mean: the same divided by len;
// max: dx[o, argmax, i] += dy[o, i] only (the first maximal element gets it all).
static void red_backward(nb_node *nd) {
    const red_params *p = nd->params;
    nb_tensor *x = nd->in[0], *y = nd->out;
    if (!NB_WANTS_GRAD(x))
        return;
    int64_t outer, len, inner;
    red_view(nd, &outer, &len, &inner);
    const int64_t *arg = nd->saved;
    if (x->dtype == NB_F32)
        red_bwd_f32(G32(y), G32(x), arg, outer, len, inner, p->mode);
    else
        red_bwd_f64(G64(y), G64(x), arg, outer, len, inner, p->mode);
}

// sum / mean: dx = dy (/ len) broadcast back over the reduced axis (kept as size 1 first).
static nb_status red_vjp(nb_node *nd, nb_tensor *gy, const bool *want, nb_tensor **gin) {
    const red_params *p = nd->params;
    nb_graph *g = nd->graph;
    nb_tensor *x = nd->in[0];
    if (!want[0])
        return nb_graph_status(g);
    int64_t outer, len, inner;
    red_view(nd, &outer, &len, &inner);
    nb_tensor *d = p->mode == RED_MEAN ? nb_scale(g, gy, 1.0 / (double)len) : gy;
    if (!p->whole && !p->keepdim) {
        int ax = 0;
        NB_ASSERT(nb__axis(p->axis, x->ndim, &ax));
        int64_t kept[NB_MAX_DIMS];
        memcpy(kept, x->shape, sizeof kept);
        kept[ax] = 1;
        d = nb_reshape(g, d, x->ndim, kept);
    }
    gin[0] = nb_expand(g, d, x->ndim, x->shape);
    return nb_graph_status(g);
}

const nb_op nb_op_sum = {"sum",        1,       0,    red_infer, red_forward,
                         red_backward, red_vjp, NULL, false,     false};
const nb_op nb_op_mean = {"mean",       1,       0,    red_infer, red_forward,
                          red_backward, red_vjp, NULL, false,     false};
const nb_op nb_op_sum_axis = {"sum_axis",   1,       0,    red_infer, red_forward,
                              red_backward, red_vjp, NULL, false,     false};
const nb_op nb_op_mean_axis = {"mean_axis",  1,       0,    red_infer, red_forward,
                               red_backward, red_vjp, NULL, false,     false};
// The gradient of max / min goes to the first extremal element (the one argmax picks): no
// differentiable op selects it yet, and ties are common (after relu, in padded inputs).
#define ARG_REASON                                                                                 \
    "its gradient goes to the first maximal / minimal element, which no vjp selects yet"
const nb_op nb_op_max_axis = {"max_axis",   1,    0,          red_infer, red_forward,
                              red_backward, NULL, ARG_REASON, false,     false};
const nb_op nb_op_min_axis = {"min_axis",   1,    0,          red_infer, red_forward,
                              red_backward, NULL, ARG_REASON, false,     false};
const nb_op nb_op_max = {"max",        1,    0,          red_infer, red_forward,
                         red_backward, NULL, ARG_REASON, false,     false};
const nb_op nb_op_min = {"min",        1,    0,          red_infer, red_forward,
                         red_backward, NULL, ARG_REASON, false,     false};

static nb_tensor *reduce(nb_graph *g, const nb_op *op, nb_tensor *x, red_params p) {
    return nb__record(g, op, &x, 1, &p, sizeof p);
}

nb_tensor *nb_sum(nb_graph *g, nb_tensor *x) {
    return reduce(g, &nb_op_sum, x, (red_params){RED_SUM, true, 0, false});
}
nb_tensor *nb_mean(nb_graph *g, nb_tensor *x) {
    return reduce(g, &nb_op_mean, x, (red_params){RED_MEAN, true, 0, false});
}
nb_tensor *nb_sum_axis(nb_graph *g, nb_tensor *x, int axis, bool keepdim) {
    return reduce(g, &nb_op_sum_axis, x, (red_params){RED_SUM, false, axis, keepdim});
}
nb_tensor *nb_mean_axis(nb_graph *g, nb_tensor *x, int axis, bool keepdim) {
    return reduce(g, &nb_op_mean_axis, x, (red_params){RED_MEAN, false, axis, keepdim});
}
nb_tensor *nb_max_axis(nb_graph *g, nb_tensor *x, int axis, bool keepdim) {
    return reduce(g, &nb_op_max_axis, x, (red_params){RED_MAX, false, axis, keepdim});
}
nb_tensor *nb_min_axis(nb_graph *g, nb_tensor *x, int axis, bool keepdim) {
    return reduce(g, &nb_op_min_axis, x, (red_params){RED_MIN, false, axis, keepdim});
}
nb_tensor *nb_max(nb_graph *g, nb_tensor *x) {
    return reduce(g, &nb_op_max, x, (red_params){RED_MAX, true, 0, false});
}
nb_tensor *nb_min(nb_graph *g, nb_tensor *x) {
    return reduce(g, &nb_op_min, x, (red_params){RED_MIN, true, 0, false});
}
