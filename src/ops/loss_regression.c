// Regression losses on pred and target of the same shape, to a 0-dim scalar:
//   mse_loss:      L = s Σ_i (pred_i - target_i)²,    s = 1/numel (MEAN) or 1 (SUM)
//   half_sse_loss: L = s ½ Σ_i (pred_i - target_i)²,  s = 1/batch (MEAN, batch = dim 0) or 1
// Both are c s Σ d², d = pred - target, with c = 1 or ½, so one kernel pair serves both.
// The sum is accumulated in double for both dtypes. A target that requires grad gets one too.
#include "ops/ops_impl.h"

typedef struct {
    int reduction; // nb_reduction, stored as int so a bad value can be range-checked
} loss_params;

// Σ (p - t)² in double.
#define SQERR_KERNELS(T, sfx)                                                                      \
    static double sqerr_fwd_##sfx(const T *p, const T *t, int64_t n) {                             \
        double acc = 0;                                                                            \
        for (int64_t i = 0; i < n; i++) {                                                          \
            double d = (double)p[i] - (double)t[i];                                                \
            acc += d * d;                                                                          \
        }                                                                                          \
        return acc;                                                                                \
    }                                                                                              \
    /* dL/dp_i = k (p_i - t_i), k = 2 c s dL_upstream;  dL/dt_i = -dL/dp_i */                      \
    static void sqerr_bwd_##sfx(const T *p, const T *t, T *gp, T *gt, int64_t n, double k) {       \
        NB_PARALLEL_FOR(n) for (int64_t i = 0; i < n; i++) {                                       \
            T d = (T)(k * ((double)p[i] - (double)t[i]));                                          \
            if (gp)                                                                                \
                gp[i] += d;                                                                        \
            if (gt)                                                                                \
                gt[i] -= d;                                                                        \
        }                                                                                          \
    }
SQERR_KERNELS(float, f32)
SQERR_KERNELS(double, f64)

static bool same_shape(const nb_tensor *a, const nb_tensor *b) {
    if (a->ndim != b->ndim)
        return false;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i])
            return false;
    return true;
}

// How many terms MEAN divides by: every element (mse) or the batch = dim 0 (half_sse).
static int64_t mean_count(const nb_node *nd) {
    const nb_tensor *p = nd->in[0];
    if (nd->op == &nb_op_mse_loss)
        return p->numel;
    return p->ndim ? p->shape[0] : 1;
}

// s c: the factor in front of Σ d².
static double loss_factor(const nb_node *nd) {
    int r = ((const loss_params *)nd->params)->reduction;
    double s = r == NB_REDUCE_MEAN ? 1.0 / (double)mean_count(nd) : 1.0;
    return nd->op == &nb_op_mse_loss ? s : 0.5 * s;
}

static nb_status sqerr_infer(nb_node *nd, nb_shape *out) {
    const nb_tensor *p = nd->in[0], *t = nd->in[1];
    int r = ((const loss_params *)nd->params)->reduction;
    if (r != NB_REDUCE_MEAN && r != NB_REDUCE_SUM)
        return nb__node_fail(nd, NB_ERR_ARG,
                             "reduction %d is not NB_REDUCE_MEAN (0) or NB_REDUCE_SUM (1)", r);
    if (!same_shape(p, t))
        return nb__node_fail(nd, NB_ERR_SHAPE, "pred %s and target %s must have the same shape",
                             NB_SHAPE_STR(p), NB_SHAPE_STR(t));
    if (r == NB_REDUCE_MEAN && mean_count(nd) == 0)
        return nb__node_fail(nd, NB_ERR_SHAPE, "pred %s is empty: its mean is undefined",
                             NB_SHAPE_STR(p));
    out->ndim = 0; // a scalar
    return NB_OK;
}

static void sqerr_forward(nb_node *nd) {
    const nb_tensor *p = nd->in[0], *t = nd->in[1];
    double f = loss_factor(nd);
    if (p->dtype == NB_F32)
        *F32(nd->out) = (float)(f * sqerr_fwd_f32(F32(p), F32(t), p->numel));
    else
        *F64(nd->out) = f * sqerr_fwd_f64(F64(p), F64(t), p->numel);
}

// dL/dpred = 2 c s (pred - target) · dy,  dL/dtarget = -dL/dpred; all shapes equal pred's.
static void sqerr_backward(nb_node *nd) {
    nb_tensor *p = nd->in[0], *t = nd->in[1], *y = nd->out;
    bool wp = NB_WANTS_GRAD(p), wt = NB_WANTS_GRAD(t);
    if (!wp && !wt)
        return;
    if (p->dtype == NB_F32) {
        double k = 2.0 * loss_factor(nd) * (double)*G32(y);
        sqerr_bwd_f32(F32(p), F32(t), wp ? G32(p) : NULL, wt ? G32(t) : NULL, p->numel, k);
    } else {
        double k = 2.0 * loss_factor(nd) * *G64(y);
        sqerr_bwd_f64(F64(p), F64(t), wp ? G64(p) : NULL, wt ? G64(t) : NULL, p->numel, k);
    }
}

// The same as ops: dpred = (2 c s (pred - target)) dy, dtarget = -dpred (dy a 0-dim scalar).
static nb_status sqerr_vjp(nb_node *nd, nb_tensor *gy, const bool *want, nb_tensor **gin) {
    nb_graph *g = nd->graph;
    nb_tensor *d =
        nb_mul(g, nb_scale(g, nb_sub(g, nd->in[0], nd->in[1]), 2.0 * loss_factor(nd)), gy);
    if (want[0])
        gin[0] = d;
    if (want[1])
        gin[1] = nb_neg(g, d);
    return nb_graph_status(g);
}

const nb_op nb_op_mse_loss = {"mse_loss",     2,         0,    sqerr_infer, sqerr_forward,
                              sqerr_backward, sqerr_vjp, NULL, false,       false};
const nb_op nb_op_half_sse_loss = {"half_sse_loss", 2,         0,    sqerr_infer, sqerr_forward,
                                   sqerr_backward,  sqerr_vjp, NULL, false,       false};

nb_tensor *nb_mse_loss(nb_graph *g, nb_tensor *pred, nb_tensor *target, nb_reduction r) {
    nb_tensor *in[] = {pred, target};
    loss_params prm = {(int)r};
    return nb__record(g, &nb_op_mse_loss, in, 2, &prm, sizeof prm);
}

nb_tensor *nb_half_sse_loss(nb_graph *g, nb_tensor *pred, nb_tensor *target, nb_reduction r) {
    nb_tensor *in[] = {pred, target};
    loss_params prm = {(int)r};
    return nb__record(g, &nb_op_half_sse_loss, in, 2, &prm, sizeof prm);
}
