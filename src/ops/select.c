// Selection by a mask (a float tensor of the operands' dtype, nonzero = true; the comparison
// ops make them):
//   where(c, a, b):           y = c ? a : b, c, a, b broadcast together (NumPy rules)
//   masked_fill(x, m, value): y = m ? value : x, m broadcast to x's shape; value may be ±inf
//   clamp(x, lo, hi):         y = min(max(x, lo), hi)
// Backward: where sends dy to a where c and to b elsewhere (summed over broadcast dims);
// masked_fill sends dy to x where the mask is false; clamp where lo <= x <= hi (PyTorch's
// convention at the bounds). Masks receive no gradient (their derivative is 0 almost
// everywhere), so their grad is left untouched.
#include <math.h>

#include "ops/ops_impl.h"

// y's dims (at least one) and each operand's element stride along them (0 where broadcast).
typedef struct {
    int nd;
    int64_t numel;
    int64_t dim[NB_MAX_DIMS];
    int64_t st[3][NB_MAX_DIMS]; // [0] mask, [1] a, [2] b / x
    bool bcast[3];              // the operand is read more than once
} sel_plan;

// Offsets of row r (rows index all dims but the last) in the three operands.
static void sel_row(const sel_plan *p, int64_t r, int64_t o[3]) {
    o[0] = o[1] = o[2] = 0;
    for (int i = p->nd - 2; i >= 0 && r > 0; i--) {
        int64_t d = r % p->dim[i];
        r /= p->dim[i];
        for (int k = 0; k < 3; k++)
            o[k] += d * p->st[k][i];
    }
}

#define T float
#define SFX f32
#include "ops/select_kernels.inc"
#define T double
#define SFX f64
#include "ops/select_kernels.inc"

// Broadcast shape of up to three tensors (NULL entries skipped); false if they do not fit.
static bool sel_shape(const nb_tensor *const t[3], nb_shape *out) {
    out->ndim = 0;
    for (int k = 0; k < 3; k++)
        if (t[k] && t[k]->ndim > out->ndim)
            out->ndim = t[k]->ndim;
    for (int i = 0; i < out->ndim; i++) { // i counts from the last dim
        int64_t d = 1;
        for (int k = 0; k < 3; k++) {
            if (!t[k] || i >= t[k]->ndim)
                continue;
            int64_t dk = t[k]->shape[t[k]->ndim - 1 - i];
            if (dk != 1 && d != 1 && dk != d)
                return false;
            if (dk != 1)
                d = dk;
        }
        out->dim[out->ndim - 1 - i] = d;
    }
    return true;
}

static void sel_make_plan(const nb_tensor *const t[3], const nb_tensor *y, sel_plan *p) {
    p->numel = y->numel;
    p->nd = y->ndim > 0 ? y->ndim : 1;
    for (int i = 0; i < p->nd; i++)
        p->dim[i] = y->ndim > 0 ? y->shape[i] : 1;
    for (int k = 0; k < 3; k++) {
        p->bcast[k] = false;
        int64_t s = 1;
        for (int i = p->nd - 1; i >= 0; i--) {
            int j = t[k] ? t[k]->ndim - (p->nd - i) : -1; // t's dim aligned with y's dim i
            int64_t dk = t[k] && j >= 0 ? t[k]->shape[j] : 1;
            p->st[k][i] = dk == 1 ? 0 : s;
            p->bcast[k] = p->bcast[k] || (dk == 1 && p->dim[i] > 1);
            s *= dk;
        }
    }
}

// ---- where ----------------------------------------------------------------------------------

static nb_status where_infer(nb_node *nd, nb_shape *out) {
    const nb_tensor *t[3] = {nd->in[0], nd->in[1], nd->in[2]};
    if (!sel_shape(t, out))
        return nb__node_fail(nd, NB_ERR_SHAPE, "cond %s, a %s and b %s cannot broadcast together",
                             NB_SHAPE_STR(t[0]), NB_SHAPE_STR(t[1]), NB_SHAPE_STR(t[2]));
    return NB_OK;
}

static void where_forward(nb_node *nd) {
    const nb_tensor *t[3] = {nd->in[0], nd->in[1], nd->in[2]};
    sel_plan p;
    sel_make_plan(t, nd->out, &p);
    if (nd->out->dtype == NB_F32)
        sel_fwd_f32(&p, F32(t[0]), F32(t[1]), F32(t[2]), 0, F32(nd->out));
    else
        sel_fwd_f64(&p, F64(t[0]), F64(t[1]), F64(t[2]), 0, F64(nd->out));
}

static void where_backward(nb_node *nd) {
    const nb_tensor *t[3] = {nd->in[0], nd->in[1], nd->in[2]};
    sel_plan p;
    sel_make_plan(t, nd->out, &p);
    for (int k = 1; k <= 2; k++) {
        nb_tensor *x = nd->in[k];
        if (!NB_WANTS_GRAD(x) || p.numel == 0)
            continue;
        if (x->dtype == NB_F32)
            sel_bwd_f32(&p, F32(t[0]), G32(nd->out), G32(x), k);
        else
            sel_bwd_f64(&p, F64(t[0]), G64(nd->out), G64(x), k);
    }
}

// dy to a where cond, to b elsewhere: where(cond, dy, 0) and where(cond, 0, dy), each summed
// back over the dims its operand was broadcast along.
static nb_tensor *fit_to(nb_graph *g, nb_tensor *t, const nb_tensor *like) {
    bool same = t && t->ndim == like->ndim;
    for (int i = 0; same && i < t->ndim; i++)
        same = t->shape[i] == like->shape[i];
    return !t || same ? t : nb_sum_to(g, t, like->ndim, like->shape);
}
static nb_status where_vjp(nb_node *nd, nb_tensor *gy, const bool *want, nb_tensor **gin) {
    nb_graph *g = nd->graph;
    nb_tensor *c = nd->in[0], *zero = nb_scale(g, gy, 0.0);
    if (want[1])
        gin[1] = fit_to(g, nb_where(g, c, gy, zero), nd->in[1]);
    if (want[2])
        gin[2] = fit_to(g, nb_where(g, c, zero, gy), nd->in[2]);
    return nb_graph_status(g);
}

const nb_op nb_op_where = {"where",        3,         0,    where_infer, where_forward,
                           where_backward, where_vjp, NULL, false,       false};

nb_tensor *nb_where(nb_graph *g, nb_tensor *cond, nb_tensor *a, nb_tensor *b) {
    nb_tensor *in[] = {cond, a, b};
    return nb__record(g, &nb_op_where, in, 3, NULL, 0);
}

// ---- masked_fill ----------------------------------------------------------------------------

typedef struct {
    double value;
} fill_params;

static nb_status masked_fill_infer(nb_node *nd, nb_shape *out) {
    const nb_tensor *x = nd->in[0], *m = nd->in[1];
    const nb_tensor *t[3] = {m, NULL, x};
    bool fits = sel_shape(t, out) && out->ndim == x->ndim;
    for (int i = 0; fits && i < x->ndim; i++)
        fits = out->dim[i] == x->shape[i];
    if (!fits)
        return nb__node_fail(nd, NB_ERR_SHAPE,
                             "mask %s does not broadcast to x %s (the result has x's shape)",
                             NB_SHAPE_STR(m), NB_SHAPE_STR(x));
    if (isnan(((const fill_params *)nd->params)->value))
        return nb__node_fail(nd, NB_ERR_ARG, "value is NaN (±inf is allowed) for x %s",
                             NB_SHAPE_STR(x));
    return NB_OK;
}

static void masked_fill_forward(nb_node *nd) {
    const nb_tensor *t[3] = {nd->in[1], NULL, nd->in[0]};
    double v = ((const fill_params *)nd->params)->value;
    sel_plan p;
    sel_make_plan(t, nd->out, &p);
    if (nd->out->dtype == NB_F32)
        sel_fwd_f32(&p, F32(t[0]), NULL, F32(t[2]), (float)v, F32(nd->out));
    else
        sel_fwd_f64(&p, F64(t[0]), NULL, F64(t[2]), v, F64(nd->out));
}

static void masked_fill_backward(nb_node *nd) {
    nb_tensor *x = nd->in[0];
    const nb_tensor *t[3] = {nd->in[1], NULL, x};
    if (!NB_WANTS_GRAD(x) || x->numel == 0)
        return;
    sel_plan p;
    sel_make_plan(t, nd->out, &p);
    if (x->dtype == NB_F32)
        sel_bwd_f32(&p, F32(t[0]), G32(nd->out), G32(x), 2);
    else
        sel_bwd_f64(&p, F64(t[0]), G64(nd->out), G64(x), 2);
}

// dx = dy where the mask is false, 0 where it is true: dy with the mask filled by 0.
static nb_status masked_fill_vjp(nb_node *nd, nb_tensor *gy, const bool *want, nb_tensor **gin) {
    if (want[0])
        gin[0] = nb_masked_fill(nd->graph, gy, nd->in[1], 0.0);
    return nb_graph_status(nd->graph);
}

const nb_op nb_op_masked_fill = {"masked_fill",
                                 2,
                                 0,
                                 masked_fill_infer,
                                 masked_fill_forward,
                                 masked_fill_backward,
                                 masked_fill_vjp,
                                 NULL,
                                 false,
                                 false};

nb_tensor *nb_masked_fill(nb_graph *g, nb_tensor *x, nb_tensor *mask, double value) {
    nb_tensor *in[] = {x, mask};
    fill_params p = {value};
    return nb__record(g, &nb_op_masked_fill, in, 2, &p, sizeof p);
}

// ---- clamp ----------------------------------------------------------------------------------

typedef struct {
    double lo, hi;
} clamp_params;

static nb_status clamp_infer(nb_node *nd, nb_shape *out) {
    const clamp_params *p = nd->params;
    const nb_tensor *x = nd->in[0];
    if (isnan(p->lo) || isnan(p->hi) || p->lo > p->hi)
        return nb__node_fail(nd, NB_ERR_ARG,
                             "bounds [%g, %g] for x %s: need lo <= hi (±inf for no bound)", p->lo,
                             p->hi, NB_SHAPE_STR(x));
    out->ndim = x->ndim;
    for (int i = 0; i < x->ndim; i++)
        out->dim[i] = x->shape[i];
    return NB_OK;
}

static void clamp_forward(nb_node *nd) {
    const clamp_params *p = nd->params;
    const nb_tensor *x = nd->in[0];
    if (x->dtype == NB_F32)
        clamp_fwd_f32(F32(x), F32(nd->out), x->numel, (float)p->lo, (float)p->hi);
    else
        clamp_fwd_f64(F64(x), F64(nd->out), x->numel, p->lo, p->hi);
}

static void clamp_backward(nb_node *nd) {
    const clamp_params *p = nd->params;
    nb_tensor *x = nd->in[0];
    if (!NB_WANTS_GRAD(x))
        return;
    if (x->dtype == NB_F32)
        clamp_bwd_f32(F32(x), G32(nd->out), G32(x), x->numel, (float)p->lo, (float)p->hi);
    else
        clamp_bwd_f64(F64(x), G64(nd->out), G64(x), x->numel, p->lo, p->hi);
}

nb_tensor *nb__inside(nb_graph *g, nb_tensor *x, double lo, double hi) {
    // [x >= lo] = 1 - step(lo - x), [x <= hi] = 1 - step(x - hi): a - b > 0 exactly when a > b
    // in IEEE arithmetic, so the mask is exact (and lo = -inf / hi = inf give 1).
    nb_tensor *ge_lo =
        nb_add_scalar(g, nb_neg(g, nb_step(g, nb_add_scalar(g, nb_neg(g, x), lo))), 1.0);
    nb_tensor *le_hi = nb_add_scalar(g, nb_neg(g, nb_step(g, nb_add_scalar(g, x, -hi))), 1.0);
    return nb_mul(g, ge_lo, le_hi);
}

static nb_status clamp_vjp(nb_node *nd, nb_tensor *gy, const bool *want, nb_tensor **gin) {
    const clamp_params *p = nd->params;
    if (want[0])
        gin[0] = nb_mul(nd->graph, gy, nb__inside(nd->graph, nd->in[0], p->lo, p->hi));
    return nb_graph_status(nd->graph);
}

const nb_op nb_op_clamp = {"clamp",        1,         0,    clamp_infer, clamp_forward,
                           clamp_backward, clamp_vjp, NULL, false,       false};

nb_tensor *nb_clamp(nb_graph *g, nb_tensor *x, double lo, double hi) {
    clamp_params p = {lo, hi};
    return nb__record(g, &nb_op_clamp, &x, 1, &p, sizeof p);
}
