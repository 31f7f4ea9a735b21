// Classification losses, each to a 0-dim scalar L = s Σ (per-element or per-row terms), with
// s = 1/count for NB_REDUCE_MEAN (count = numel for the binary losses, batch for the
// categorical ones) and 1 for NB_REDUCE_SUM:
//   bce_loss             p, t same shape:   -[t ln p + (1 - t) ln(1 - p)],  p clamped
//   bce_logits_loss      z, t same shape:   max(z, 0) - z t + ln(1 + e^-|z|)
//   cross_entropy_loss   p, t (batch, C):   -Σ_c t_c ln p_c,                p clamped
//   cross_entropy_logits z, t (batch, C):   Σ_c t_c (lse(z) - z_c),  lse = m + ln Σ e^(z - m)
//   sparse_cross_entropy_logits z (batch, C), labels int32 or int64 (batch): lse(z) - z_label
// Terms are computed and summed in double for both dtypes. "Clamped" means clamp(p) to
// [NB_PROB_EPS, 1 - NB_PROB_EPS]: a saturated p gives a large finite loss, and since the clamp
// is flat there, the gradient wrt p is 0 outside that range (the honest derivative). A float
// target that requires grad gets its gradient too; integer labels have none.
#include <math.h>

#include "ops/ops_impl.h"
#include "ops/vmath.h"

typedef struct {
    int reduction; // nb_reduction, stored as int so a bad value can be range-checked
} loss_params;

static double clamp_p(double p) {
    return p < NB_PROB_EPS ? NB_PROB_EPS : p > 1 - NB_PROB_EPS ? 1 - NB_PROB_EPS : p;
}
static bool clamped(double p) {
    return p < NB_PROB_EPS || p > 1 - NB_PROB_EPS;
}
static double sigmoid(double z) {
    return z >= 0 ? 1 / (1 + exp(-z)) : exp(z) / (1 + exp(z)); // no overflow either way
}

// Per-element term f(a, t), and its partials df/da, df/dt (a = p or z, t = target).
static double bce_f(double p, double t) {
    double c = clamp_p(p);
    return -(t * log(c) + (1 - t) * log1p(-c)); // log1p: exact ln(1 - c) for small c
}
static double bce_da(double p, double t) {
    return clamped(p) ? 0 : (p - t) / (p * (1 - p));
}
static double bce_dt(double p, double t) {
    (void)t;
    return log1p(-clamp_p(p)) - log(clamp_p(p));
}
static double bcel_f(double z, double t) {
    return fmax(z, 0) - z * t + log1p(exp(-fabs(z)));
}
static double bcel_da(double z, double t) {
    return sigmoid(z) - t;
}
static double bcel_dt(double z, double t) {
    (void)t;
    return -z;
}
static double ce_f(double p, double t) {
    return -t * log(clamp_p(p));
}
static double ce_da(double p, double t) {
    return clamped(p) ? 0 : -t / p;
}
static double ce_dt(double p, double t) {
    (void)t;
    return -log(clamp_p(p));
}

// Σ f over n elements; backward ga += k df/da, gt += k df/dt (k = s dL_upstream).
#define EW_KERNELS(name, T, sfx)                                                                   \
    static double name##_fwd_##sfx(const T *a, const T *t, int64_t n) {                            \
        double acc = 0;                                                                            \
        for (int64_t i = 0; i < n; i++)                                                            \
            acc += name##_f((double)a[i], (double)t[i]);                                           \
        return acc;                                                                                \
    }                                                                                              \
    static void name##_bwd_##sfx(const T *a, const T *t, T *ga, T *gt, int64_t n, double k) {      \
        NB_PARALLEL_FOR(n) for (int64_t i = 0; i < n; i++) {                                       \
            if (ga)                                                                                \
                ga[i] += (T)(k * name##_da((double)a[i], (double)t[i]));                           \
            if (gt)                                                                                \
                gt[i] += (T)(k * name##_dt((double)a[i], (double)t[i]));                           \
        }                                                                                          \
    }
#define EW_OP(name)                                                                                \
    EW_KERNELS(name, float, f32)                                                                   \
    EW_KERNELS(name, double, f64)                                                                  \
    static void name##_forward(nb_node *nd) {                                                      \
        const nb_tensor *a = nd->in[0], *t = nd->in[1];                                            \
        double sum = a->dtype == NB_F32 ? name##_fwd_f32(F32(a), F32(t), a->numel)                 \
                                        : name##_fwd_f64(F64(a), F64(t), a->numel);                \
        set_scalar(nd->out, scale(nd) * sum);                                                      \
    }                                                                                              \
    static void name##_backward(nb_node *nd) {                                                     \
        nb_tensor *a = nd->in[0], *t = nd->in[1];                                                  \
        bool wa = NB_WANTS_GRAD(a), wt = NB_WANTS_GRAD(t);                                         \
        if (!wa && !wt)                                                                            \
            return;                                                                                \
        double k = scale(nd) * upstream(nd->out);                                                  \
        if (a->dtype == NB_F32)                                                                    \
            name##_bwd_f32(F32(a), F32(t), wa ? G32(a) : NULL, wt ? G32(t) : NULL, a->numel, k);   \
        else                                                                                       \
            name##_bwd_f64(F64(a), F64(t), wa ? G64(a) : NULL, wt ? G64(t) : NULL, a->numel, k);   \
    }

// Softmax cross-entropy over rows of n logits, with dense targets t or int32 or int64 labels lab
// (the other NULL). Saves for backward (when not NULL) the log-probabilities (dense targets), or
// the probabilities and 1 - p_label per row (labels: forward and backward fused, so backward is
// one multiply-add pass with no exponential).
#define T float
#define SFX f32
#include "ops/loss_logits_kernels.inc"
#define T double
#define SFX f64
#include "ops/loss_logits_kernels.inc"

static bool is_sparse(const nb_node *nd) {
    return nd->op == &nb_op_sparse_cross_entropy_logits;
}
// The binary losses average over every element; the categorical ones over the batch.
static bool per_row(const nb_node *nd) {
    return nd->op != &nb_op_bce_loss && nd->op != &nb_op_bce_logits_loss;
}
static int64_t mean_count(const nb_node *nd) {
    return per_row(nd) ? nd->in[0]->shape[0] : nd->in[0]->numel;
}
static double scale(const nb_node *nd) {
    bool mean = ((const loss_params *)nd->params)->reduction == NB_REDUCE_MEAN;
    return mean ? 1.0 / (double)mean_count(nd) : 1.0;
}
static void set_scalar(nb_tensor *y, double v) {
    if (y->dtype == NB_F32)
        *F32(y) = (float)v;
    else
        *F64(y) = v;
}
static double upstream(const nb_tensor *y) {
    return y->dtype == NB_F32 ? (double)*G32(y) : *G64(y);
}

// Labels must index a class. Called by infer (labels are real data at record time, so a bad
// label is reported at the user's call) and again by forward, so a replay with refreshed
// labels never reads outside a row.
static nb_status check_labels(nb_node *nd) {
    const nb_tensor *z = nd->in[0], *lab = nd->in[1];
    bool i64 = lab->dtype == NB_I64;
    for (int64_t i = 0; i < lab->numel; i++) {
        int64_t l = nb__index_at(lab->data, i64, i);
        if (l < 0 || l >= z->shape[1])
            return nb__node_fail(
                nd, NB_ERR_ARG, "label %lld at index %lld is outside [0, %lld) for logits %s",
                (long long)l, (long long)i, (long long)z->shape[1], NB_SHAPE_STR(z));
    }
    return NB_OK;
}

// Shared by all five ops. Sparse reads the labels (see check_labels).
static nb_status loss_infer(nb_node *nd, nb_shape *out) {
    const nb_tensor *a = nd->in[0], *t = nd->in[1];
    const char *what = nd->op == &nb_op_bce_loss             ? "p"
                       : nd->op == &nb_op_cross_entropy_loss ? "probs"
                                                             : "logits";
    int r = ((const loss_params *)nd->params)->reduction;
    if (r != NB_REDUCE_MEAN && r != NB_REDUCE_SUM)
        return nb__node_fail(nd, NB_ERR_ARG,
                             "reduction %d is not NB_REDUCE_MEAN (0) or NB_REDUCE_SUM (1)", r);
    if (per_row(nd) && a->ndim != 2)
        return nb__node_fail(nd, NB_ERR_SHAPE, "%s %s must be 2-D (batch, classes)", what,
                             NB_SHAPE_STR(a));
    if (is_sparse(nd)) {
        if (t->ndim != 1 || t->shape[0] != a->shape[0])
            return nb__node_fail(nd, NB_ERR_SHAPE,
                                 "labels %s must be (batch) = (%lld) for logits %s",
                                 NB_SHAPE_STR(t), (long long)a->shape[0], NB_SHAPE_STR(a));
    } else {
        bool same = a->ndim == t->ndim;
        for (int i = 0; same && i < a->ndim; i++)
            same = a->shape[i] == t->shape[i];
        if (!same)
            return nb__node_fail(nd, NB_ERR_SHAPE, "%s %s and target %s must have the same shape",
                                 what, NB_SHAPE_STR(a), NB_SHAPE_STR(t));
    }
    if (r == NB_REDUCE_MEAN && mean_count(nd) == 0)
        return nb__node_fail(nd, NB_ERR_SHAPE, "%s %s is empty: its mean is undefined", what,
                             NB_SHAPE_STR(a));
    bool from_logits = is_sparse(nd) || nd->op == &nb_op_cross_entropy_logits;
    if (from_logits && a->numel == 0 && a->shape[0] > 0) // a softmax over no classes
        return nb__node_fail(nd, NB_ERR_SHAPE, "logits %s have no classes", NB_SHAPE_STR(a));
    if (is_sparse(nd) && check_labels(nd) != NB_OK)
        return NB_ERR_ARG;
    out->ndim = 0; // a scalar
    return NB_OK;
}

EW_OP(bce)
EW_OP(bcel)
EW_OP(ce)

static void logits_forward(nb_node *nd) {
    const nb_tensor *z = nd->in[0], *t = nd->in[1];
    bool sparse = is_sparse(nd);
    if (sparse && check_labels(nd) != NB_OK) { // a replay saw a bad label: fail, read nothing
        set_scalar(nd->out, (double)NAN);
        return;
    }
    int64_t rows = z->shape[0], n = z->shape[1];
    // Only when backward will run: dense, lp (batch, classes); sparse, p (batch, classes) then
    // q (batch).
    void *lp = NULL;
    if (nd->needs_grad) {
        lp = nb__node_scratch(nd,
                              (size_t)(z->numel + (sparse ? rows : 0)) * nb_dtype_size(z->dtype));
        if (!lp)
            return; // out of memory, recorded on the graph
    }
    const void *lab = sparse ? t->data : NULL;
    bool l64 = t->dtype == NB_I64;
    double sum = z->dtype == NB_F32
                     ? cel_fwd_f32(F32(z), sparse ? NULL : F32(t), lab, l64, lp, rows, n)
                     : cel_fwd_f64(F64(z), sparse ? NULL : F64(t), lab, l64, lp, rows, n);
    set_scalar(nd->out, scale(nd) * sum);
}

static void logits_backward(nb_node *nd) {
    nb_tensor *z = nd->in[0], *t = nd->in[1];
    bool sparse = is_sparse(nd);
    bool wz = NB_WANTS_GRAD(z), wt = !sparse && NB_WANTS_GRAD(t);
    if (!wz && !wt)
        return;
    double k = scale(nd) * upstream(nd->out);
    int64_t rows = z->shape[0], n = z->shape[1];
    const void *lab = sparse ? t->data : NULL;
    bool l64 = t->dtype == NB_I64;
    if (z->dtype == NB_F32)
        cel_bwd_f32(nd->saved, sparse ? NULL : F32(t), lab, l64, wz ? G32(z) : NULL,
                    wt ? G32(t) : NULL, rows, n, k);
    else
        cel_bwd_f64(nd->saved, sparse ? NULL : F64(t), lab, l64, wz ? G64(z) : NULL,
                    wt ? G64(t) : NULL, rows, n, k);
}

// ---- vjps: the kernels' partials as public ops, times k = s dy (dy a 0-dim scalar). The
// probability losses go through c = clamp(p): where the clamp is active, the mask of clamp's
// own derivative zeroes dp, exactly as clamped() does in the kernels.
static nb_tensor *upstream_k(nb_node *nd, nb_tensor *gy) {
    return nb_scale(nd->graph, gy, scale(nd));
}
static nb_tensor *clamp_p_op(nb_graph *g, nb_tensor *p) {
    return nb_clamp(g, p, NB_PROB_EPS, 1 - NB_PROB_EPS);
}

// bce: dp = k (c - t) / (c (1 - c)) [inside],  dt = k (ln(1 - c) - ln c)
static nb_status bce_vjp(nb_node *nd, nb_tensor *gy, const bool *want, nb_tensor **gin) {
    nb_graph *g = nd->graph;
    nb_tensor *p = nd->in[0], *t = nd->in[1], *k = upstream_k(nd, gy);
    nb_tensor *c = clamp_p_op(g, p), *omc = nb_add_scalar(g, nb_neg(g, c), 1.0);
    if (want[0]) {
        nb_tensor *d = nb_div(g, nb_sub(g, c, t), nb_mul(g, c, omc));
        gin[0] = nb_mul(g, nb_mul(g, d, k), nb__inside(g, p, NB_PROB_EPS, 1 - NB_PROB_EPS));
    }
    if (want[1])
        gin[1] = nb_mul(g, nb_sub(g, nb_log(g, omc), nb_log(g, c)), k);
    return nb_graph_status(g);
}

// bce_logits: dz = k (sigmoid z - t),  dt = -k z
static nb_status bcel_vjp(nb_node *nd, nb_tensor *gy, const bool *want, nb_tensor **gin) {
    nb_graph *g = nd->graph;
    nb_tensor *z = nd->in[0], *t = nd->in[1], *k = upstream_k(nd, gy);
    if (want[0])
        gin[0] = nb_mul(g, nb_sub(g, nb_sigmoid(g, z), t), k);
    if (want[1])
        gin[1] = nb_mul(g, nb_neg(g, z), k);
    return nb_graph_status(g);
}

// cross_entropy (probabilities): dp = -k t / c [inside],  dt = -k ln c
static nb_status ce_vjp(nb_node *nd, nb_tensor *gy, const bool *want, nb_tensor **gin) {
    nb_graph *g = nd->graph;
    nb_tensor *p = nd->in[0], *t = nd->in[1], *k = upstream_k(nd, gy);
    nb_tensor *c = clamp_p_op(g, p);
    if (want[0]) {
        nb_tensor *d = nb_neg(g, nb_div(g, t, c));
        gin[0] = nb_mul(g, nb_mul(g, d, k), nb__inside(g, p, NB_PROB_EPS, 1 - NB_PROB_EPS));
    }
    if (want[1])
        gin[1] = nb_mul(g, nb_neg(g, nb_log(g, c)), k);
    return nb_graph_status(g);
}

// cross_entropy_logits: dz = k (softmax(z) Σ_c t_c - t),  dt = -k log_softmax(z);
// sparse: t is the one-hot of the labels (which get no gradient).
static nb_status logits_vjp(nb_node *nd, nb_tensor *gy, const bool *want, nb_tensor **gin) {
    nb_graph *g = nd->graph;
    nb_tensor *z = nd->in[0], *t = nd->in[1], *k = upstream_k(nd, gy);
    if (want[0]) {
        nb_tensor *d;
        if (is_sparse(nd))
            d = nb_sub(g, nb_softmax(g, z), nb_one_hot_tensor(g, t, z->shape[1], z->dtype));
        else
            d = nb_sub(g, nb_mul(g, nb_softmax(g, z), nb_sum_axis(g, t, -1, true)), t);
        gin[0] = nb_mul(g, d, k);
    }
    if (!is_sparse(nd) && want[1])
        gin[1] = nb_mul(g, nb_neg(g, nb_log_softmax(g, z)), k);
    return nb_graph_status(g);
}

const nb_op nb_op_bce_loss = {"bce_loss",   2,       0,    loss_infer, bce_forward,
                              bce_backward, bce_vjp, NULL, false,      false};
const nb_op nb_op_bce_logits_loss = {"bce_logits_loss", 2,        0,    loss_infer, bcel_forward,
                                     bcel_backward,     bcel_vjp, NULL, false,      false};
const nb_op nb_op_cross_entropy_loss = {"cross_entropy_loss", 2,      0,    loss_infer, ce_forward,
                                        ce_backward,          ce_vjp, NULL, false,      false};
const nb_op nb_op_cross_entropy_logits = {
    "cross_entropy_logits", 2,          0,    loss_infer, logits_forward,
    logits_backward,        logits_vjp, NULL, false,      false};
// index_arg 2: the labels are an int32 or int64 input, exempt from the float dtype agreement check.
const nb_op nb_op_sparse_cross_entropy_logits = {"sparse_cross_entropy_logits",
                                                 2,
                                                 2,
                                                 loss_infer,
                                                 logits_forward,
                                                 logits_backward,
                                                 logits_vjp,
                                                 NULL,
                                                 false,
                                                 false};

static nb_tensor *record(nb_graph *g, const nb_op *op, nb_tensor *a, nb_tensor *t, nb_reduction r) {
    nb_tensor *in[] = {a, t};
    loss_params prm = {(int)r};
    return nb__record(g, op, in, 2, &prm, sizeof prm);
}

nb_tensor *nb_bce_loss(nb_graph *g, nb_tensor *p, nb_tensor *target, nb_reduction r) {
    return record(g, &nb_op_bce_loss, p, target, r);
}
nb_tensor *nb_bce_logits_loss(nb_graph *g, nb_tensor *z, nb_tensor *target, nb_reduction r) {
    return record(g, &nb_op_bce_logits_loss, z, target, r);
}
nb_tensor *nb_cross_entropy_loss(nb_graph *g, nb_tensor *probs, nb_tensor *target, nb_reduction r) {
    return record(g, &nb_op_cross_entropy_loss, probs, target, r);
}
nb_tensor *nb_cross_entropy_logits(nb_graph *g, nb_tensor *logits, nb_tensor *target,
                                   nb_reduction r) {
    return record(g, &nb_op_cross_entropy_logits, logits, target, r);
}
nb_tensor *nb_sparse_cross_entropy_logits(nb_graph *g, nb_tensor *logits, nb_tensor *labels,
                                          nb_reduction r) {
    return record(g, &nb_op_sparse_cross_entropy_logits, logits, labels, r);
}
