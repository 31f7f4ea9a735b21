// Reductions over any set of axes, with keepdim:
//   sum_axes, mean_axes, var_axes / std_axes (unbiased: divide by N - 1), logsumexp_axes
// x's dims split into kept dims (they index the output, j) and reduced dims (r, N elements):
// y[j] = f over r of x[base[j] + roff[r]], where roff holds the reduced elements' offsets
// (saved once per node). Each output is summed serially in double by one thread, so results do
// not depend on the thread count; backward writes disjoint elements of dx per output.
//   sum: dx += dy    mean: dx += dy / N    var: dx += dy 2 (x - μ) / (N - u)
//   std: dx += dy (x - μ) / ((N - u) σ)    logsumexp: dx += dy e^(x - y)
// Softmax / log-softmax along any axis (x viewed as (outer, len, inner)), max-subtracted:
//   softmax: dx += y (dy - Σ dy y)          log_softmax: dx += dy - e^y Σ dy
// And softplus with PyTorch's β and threshold: y = ln(1 + e^(βx)) / β, y = x where βx > thr.
#include <math.h>
#include <string.h>

#include "ops/ops_impl.h"
#include "ops/vmath.h"

enum { RA_SUM, RA_MEAN, RA_VAR, RA_STD, RA_LSE };

typedef struct {
    int mode;
    int n_axes; // entries of given; -1 marks a bad list (reported by infer)
    int given[NB_MAX_DIMS];
    bool keepdim, unbiased;
} ra_params;

// The split of x into kept and reduced dims.
typedef struct {
    int64_t n_out, n_red;
    int nk, nr;
    int64_t kdim[NB_MAX_DIMS], kstr[NB_MAX_DIMS]; // kept dims and their x strides
    int64_t rdim[NB_MAX_DIMS], rstr[NB_MAX_DIMS]; // reduced dims and their x strides
} ra_split;

// a * b, or INT64_MAX when that overflows: only an empty x (a 0 among huge dims) gets there,
// and then the count that matters is 0 (see ra_make_split).
static int64_t mul_sat(int64_t a, int64_t b) {
    int64_t r;
    return __builtin_mul_overflow(a, b, &r) ? INT64_MAX : r;
}

static void ra_make_split(const nb_tensor *x, unsigned axes, ra_split *s) {
    int64_t st = 1, xs[NB_MAX_DIMS];
    for (int d = x->ndim - 1; d >= 0; d--) {
        xs[d] = st;
        st = mul_sat(st, x->shape[d]);
    }
    s->nk = s->nr = 0;
    s->n_out = s->n_red = 1;
    bool red_empty = false, out_empty = false;
    for (int d = 0; d < x->ndim; d++) {
        if (axes & (1u << d)) {
            s->rdim[s->nr] = x->shape[d];
            s->rstr[s->nr++] = xs[d];
            s->n_red = mul_sat(s->n_red, x->shape[d]);
            red_empty = red_empty || x->shape[d] == 0;
        } else {
            s->kdim[s->nk] = x->shape[d];
            s->kstr[s->nk++] = xs[d];
            s->n_out = mul_sat(s->n_out, x->shape[d]);
            out_empty = out_empty || x->shape[d] == 0;
        }
    }
    if (red_empty)
        s->n_red = 0;
    if (out_empty)
        s->n_out = 0;
}

// x offset of output j (over the kept dims) or of reduced element r (over the reduced dims).
static int64_t ra_offset(const int64_t *dim, const int64_t *str, int n, int64_t i) {
    int64_t off = 0;
    for (int d = n - 1; d >= 0; d--) {
        off += (i % dim[d]) * str[d];
        i /= dim[d];
    }
    return off;
}

#define T float
#define SFX f32
#include "ops/reduce_axes_kernels.inc"
#define T double
#define SFX f64
#include "ops/reduce_axes_kernels.inc"

// Bit d set: reduce dim d. infer has validated the axes.
static unsigned ra_mask(const nb_node *nd) {
    const ra_params *p = nd->params;
    if (p->n_axes == 0) // no list: every axis
        return (1u << nd->in[0]->ndim) - 1;
    unsigned mask = 0;
    for (int i = 0; i < p->n_axes; i++) {
        int a = 0;
        NB_ASSERT(nb__axis(p->given[i], nd->in[0]->ndim, &a));
        mask |= 1u << a;
    }
    return mask;
}

static const char *ra_name(int mode) {
    static const char *const names[] = {"sum", "mean", "var", "std", "logsumexp"};
    return names[mode];
}

static nb_status ra_infer(nb_node *nd, nb_shape *out) {
    const ra_params *p = nd->params;
    const nb_tensor *x = nd->in[0];
    if (p->n_axes < 0) // NULL axes with n_axes > 0, or more than NB_MAX_DIMS
        return nb__node_fail(nd, NB_ERR_ARG, "axes must be a list of 0..%d axes for x %s",
                             NB_MAX_DIMS, NB_SHAPE_STR(x));
    unsigned mask = 0;
    for (int i = 0; i < p->n_axes; i++) {
        int a;
        if (!nb__axis(p->given[i], x->ndim, &a))
            return nb__node_fail(nd, NB_ERR_ARG, "axis %d out of range for x %s (%d dims)",
                                 p->given[i], NB_SHAPE_STR(x), x->ndim);
        if (mask & (1u << a))
            return nb__node_fail(nd, NB_ERR_ARG, "axis %d given twice for x %s", p->given[i],
                                 NB_SHAPE_STR(x));
        mask |= 1u << a;
    }
    if (p->n_axes == 0)
        mask = (1u << x->ndim) - 1;
    ra_split s;
    ra_make_split(x, mask, &s);
    int64_t min_n = p->mode == RA_SUM                                         ? 0
                    : (p->mode == RA_VAR || p->mode == RA_STD) && p->unbiased ? 2
                                                                              : 1;
    if (s.n_red < min_n)
        return nb__node_fail(
            nd, NB_ERR_SHAPE, "x %s: the %s%s of %lld element%s is undefined (needs %lld)",
            NB_SHAPE_STR(x), p->unbiased && p->mode >= RA_VAR ? "unbiased " : "", ra_name(p->mode),
            (long long)s.n_red, s.n_red == 1 ? "" : "s", (long long)min_n);
    out->ndim = 0;
    for (int d = 0; d < x->ndim; d++) {
        if (!(mask & (1u << d)))
            out->dim[out->ndim++] = x->shape[d];
        else if (p->keepdim)
            out->dim[out->ndim++] = 1;
    }
    return NB_OK;
}

// Offsets of the reduced elements, computed on first use and kept with the node.
static const int64_t *ra_roff(nb_node *nd, const ra_split *s) {
    int64_t *roff = nb__node_save(nd, (size_t)(s->n_red > 0 ? s->n_red : 1) * sizeof *roff);
    if (!roff)
        return NULL;
    for (int64_t r = 0; r < s->n_red; r++)
        roff[r] = ra_offset(s->rdim, s->rstr, s->nr, r);
    return roff;
}

static void ra_forward(nb_node *nd) {
    const ra_params *p = nd->params;
    const nb_tensor *x = nd->in[0];
    ra_split s;
    ra_make_split(x, ra_mask(nd), &s);
    const int64_t *roff = ra_roff(nd, &s);
    if (!roff)
        return;
    if (x->dtype == NB_F32)
        ra_fwd_f32(&s, roff, F32(x), F32(nd->out), p->mode, p->unbiased);
    else
        ra_fwd_f64(&s, roff, F64(x), F64(nd->out), p->mode, p->unbiased);
}

static void ra_backward(nb_node *nd) {
    const ra_params *p = nd->params;
    nb_tensor *x = nd->in[0], *y = nd->out;
    if (!NB_WANTS_GRAD(x))
        return;
    ra_split s;
    ra_make_split(x, ra_mask(nd), &s);
    const int64_t *roff = nd->saved;
    if (x->dtype == NB_F32)
        ra_bwd_f32(&s, roff, F32(x), F32(y), G32(y), G32(x), p->mode, p->unbiased);
    else
        ra_bwd_f64(&s, roff, F64(x), F64(y), G64(y), G64(x), p->mode, p->unbiased);
}

// The backward's formulas as ops, with dy (and y) reshaped to keepdim form so they broadcast
// over the reduced axes: sum expand(dy); mean dy / N; var dy 2 (x - μ) / (N - u);
// std dy (x - μ) / ((N - u) σ); logsumexp dy e^(x - y).
static nb_status ra_vjp(nb_node *nd, nb_tensor *gy, const bool *want, nb_tensor **gin) {
    const ra_params *p = nd->params;
    nb_graph *g = nd->graph;
    nb_tensor *x = nd->in[0], *y = nd->out;
    if (!want[0])
        return nb_graph_status(g);
    unsigned mask = ra_mask(nd);
    int64_t kept[NB_MAX_DIMS], n = 1;
    for (int d = 0; d < x->ndim; d++) {
        bool red = mask & (1u << d);
        kept[d] = red ? 1 : x->shape[d];
        n *= red ? x->shape[d] : 1;
    }
    nb_tensor *gk = nb_reshape(g, gy, x->ndim, kept);
    double den = (double)n - (p->unbiased ? 1.0 : 0.0);
    nb_tensor *d = NULL;
    switch (p->mode) {
    case RA_SUM:
        d = nb_expand(g, gk, x->ndim, x->shape);
        break;
    case RA_MEAN:
        d = nb_expand(g, nb_scale(g, gk, 1.0 / (double)n), x->ndim, x->shape);
        break;
    case RA_VAR:
    case RA_STD: {
        nb_tensor *c = nb_sub(g, x, nb_mean_axes(g, x, p->n_axes, p->given, true));
        d = p->mode == RA_VAR
                ? nb_mul(g, nb_scale(g, c, 2.0 / den), gk)
                : nb_mul(g, nb_div(g, c, nb_scale(g, nb_reshape(g, y, x->ndim, kept), den)), gk);
        break;
    }
    default: // RA_LSE
        d = nb_mul(g, nb_exp(g, nb_sub(g, x, nb_reshape(g, y, x->ndim, kept))), gk);
    }
    gin[0] = d;
    return nb_graph_status(g);
}

const nb_op nb_op_sum_axes = {"sum_axes",  1,      0,    ra_infer, ra_forward,
                              ra_backward, ra_vjp, NULL, false,    false};
const nb_op nb_op_mean_axes = {"mean_axes", 1,      0,    ra_infer, ra_forward,
                               ra_backward, ra_vjp, NULL, false,    false};
const nb_op nb_op_var_axes = {"var_axes",  1,      0,    ra_infer, ra_forward,
                              ra_backward, ra_vjp, NULL, false,    false};
const nb_op nb_op_std_axes = {"std_axes",  1,      0,    ra_infer, ra_forward,
                              ra_backward, ra_vjp, NULL, false,    false};
const nb_op nb_op_logsumexp_axes = {"logsumexp_axes", 1,      0,    ra_infer, ra_forward,
                                    ra_backward,      ra_vjp, NULL, false,    false};

static nb_tensor *ra_record(nb_graph *g, const nb_op *op, int mode, nb_tensor *x, int n,
                            const int *axes, bool keepdim, bool unbiased) {
    ra_params p = {.mode = mode, .n_axes = n, .keepdim = keepdim, .unbiased = unbiased};
    if (n < 0 || n > NB_MAX_DIMS || (n > 0 && !axes))
        p.n_axes = -1;
    else if (n > 0)
        memcpy(p.given, axes, (size_t)n * sizeof *axes);
    return nb__record(g, op, &x, 1, &p, sizeof p);
}

nb_tensor *nb_sum_axes(nb_graph *g, nb_tensor *x, int n, const int *axes, bool keepdim) {
    return ra_record(g, &nb_op_sum_axes, RA_SUM, x, n, axes, keepdim, false);
}
nb_tensor *nb_mean_axes(nb_graph *g, nb_tensor *x, int n, const int *axes, bool keepdim) {
    return ra_record(g, &nb_op_mean_axes, RA_MEAN, x, n, axes, keepdim, false);
}
nb_tensor *nb_var_axes(nb_graph *g, nb_tensor *x, int n, const int *axes, bool unbiased,
                       bool keepdim) {
    return ra_record(g, &nb_op_var_axes, RA_VAR, x, n, axes, keepdim, unbiased);
}
nb_tensor *nb_std_axes(nb_graph *g, nb_tensor *x, int n, const int *axes, bool unbiased,
                       bool keepdim) {
    return ra_record(g, &nb_op_std_axes, RA_STD, x, n, axes, keepdim, unbiased);
}
nb_tensor *nb_logsumexp_axes(nb_graph *g, nb_tensor *x, int n, const int *axes, bool keepdim) {
    return ra_record(g, &nb_op_logsumexp_axes, RA_LSE, x, n, axes, keepdim, false);
}

// ---- softmax / log_softmax along any axis -----------------------------------------------------

typedef struct {
    int axis;
    double beta, threshold; // softplus_bt
} sm_params;

static nb_status sm_infer(nb_node *nd, nb_shape *out) {
    const sm_params *p = nd->params;
    const nb_tensor *x = nd->in[0];
    int ax;
    if (!nb__axis(p->axis, x->ndim, &ax))
        return nb__node_fail(nd, NB_ERR_ARG, "axis %d out of range for x %s (%d dims)", p->axis,
                             NB_SHAPE_STR(x), x->ndim);
    out->ndim = x->ndim;
    memcpy(out->dim, x->shape, sizeof out->dim);
    return NB_OK;
}

static void sm_view(const nb_node *nd, int64_t *outer, int64_t *len, int64_t *inner) {
    const nb_tensor *x = nd->in[0];
    int ax = 0;
    NB_ASSERT(nb__axis(((const sm_params *)nd->params)->axis, x->ndim, &ax));
    *outer = *inner = 1;
    for (int d = 0; d < ax; d++)
        *outer *= x->shape[d];
    *len = x->shape[ax];
    for (int d = ax + 1; d < x->ndim; d++)
        *inner *= x->shape[d];
}

static void sm_run(nb_node *nd, bool logp, bool backward) {
    nb_tensor *x = nd->in[0], *y = nd->out;
    if (backward && !NB_WANTS_GRAD(x))
        return;
    int64_t o, l, i;
    sm_view(nd, &o, &l, &i);
    if (x->dtype == NB_F32) {
        if (backward)
            sm_bwd_f32(F32(y), G32(y), G32(x), o, l, i, logp);
        else
            sm_fwd_f32(F32(x), F32(y), o, l, i, logp);
    } else {
        if (backward)
            sm_bwd_f64(F64(y), G64(y), G64(x), o, l, i, logp);
        else
            sm_fwd_f64(F64(x), F64(y), o, l, i, logp);
    }
}

static void softmax_axis_forward(nb_node *nd) {
    sm_run(nd, false, false);
}
static void softmax_axis_backward(nb_node *nd) {
    sm_run(nd, false, true);
}
static void log_softmax_axis_forward(nb_node *nd) {
    sm_run(nd, true, false);
}
static void log_softmax_axis_backward(nb_node *nd) {
    sm_run(nd, true, true);
}

// softmax dx = y (dy - Σ dy y); log_softmax dx = dy - e^y Σ dy (sums along the axis, kept).
static nb_status sm_vjp(nb_node *nd, nb_tensor *gy, const bool *want, nb_tensor **gin) {
    nb_graph *g = nd->graph;
    nb_tensor *y = nd->out;
    int ax = ((const sm_params *)nd->params)->axis;
    if (!want[0])
        return nb_graph_status(g);
    if (nd->op == &nb_op_softmax_axis)
        gin[0] = nb_mul(g, y, nb_sub(g, gy, nb_sum_axis(g, nb_mul(g, gy, y), ax, true)));
    else
        gin[0] = nb_sub(g, gy, nb_mul(g, nb_exp(g, y), nb_sum_axis(g, gy, ax, true)));
    return nb_graph_status(g);
}

const nb_op nb_op_softmax_axis = {
    "softmax_axis",        1,      0,    sm_infer, softmax_axis_forward,
    softmax_axis_backward, sm_vjp, NULL, false,    false};
const nb_op nb_op_log_softmax_axis = {
    "log_softmax_axis",        1,      0,    sm_infer, log_softmax_axis_forward,
    log_softmax_axis_backward, sm_vjp, NULL, false,    false};

nb_tensor *nb_softmax_axis(nb_graph *g, nb_tensor *x, int axis) {
    sm_params p = {.axis = axis};
    return nb__record(g, &nb_op_softmax_axis, &x, 1, &p, sizeof p);
}
nb_tensor *nb_log_softmax_axis(nb_graph *g, nb_tensor *x, int axis) {
    sm_params p = {.axis = axis};
    return nb__record(g, &nb_op_log_softmax_axis, &x, 1, &p, sizeof p);
}

// ---- softplus with β and threshold ----------------------------------------------------------

static nb_status sp_infer(nb_node *nd, nb_shape *out) {
    const sm_params *p = nd->params;
    const nb_tensor *x = nd->in[0];
    if (!(p->beta > 0) || !isfinite(p->beta) || isnan(p->threshold))
        return nb__node_fail(nd, NB_ERR_ARG,
                             "beta %g must be finite and > 0, threshold %g not NaN (x %s)", p->beta,
                             p->threshold, NB_SHAPE_STR(x));
    out->ndim = x->ndim;
    memcpy(out->dim, x->shape, sizeof out->dim);
    return NB_OK;
}

static void sp_forward(nb_node *nd) {
    const sm_params *p = nd->params;
    const nb_tensor *x = nd->in[0];
    if (x->dtype == NB_F32)
        sp_fwd_f32(F32(x), F32(nd->out), x->numel, p->beta, p->threshold);
    else
        sp_fwd_f64(F64(x), F64(nd->out), x->numel, p->beta, p->threshold);
}

static void sp_backward(nb_node *nd) {
    const sm_params *p = nd->params;
    nb_tensor *x = nd->in[0];
    if (!NB_WANTS_GRAD(x))
        return;
    if (x->dtype == NB_F32)
        sp_bwd_f32(F32(x), G32(nd->out), G32(x), x->numel, p->beta, p->threshold);
    else
        sp_bwd_f64(F64(x), G64(nd->out), G64(x), x->numel, p->beta, p->threshold);
}

// dx = dy (m + (1 - m) sigmoid(βx)), m = [βx > threshold] = step(βx - threshold) (exact).
static nb_status sp_vjp(nb_node *nd, nb_tensor *gy, const bool *want, nb_tensor **gin) {
    const sm_params *p = nd->params;
    nb_graph *g = nd->graph;
    if (!want[0])
        return nb_graph_status(g);
    nb_tensor *bx = nb_scale(g, nd->in[0], p->beta);
    nb_tensor *m = nb_step(g, nb_add_scalar(g, bx, -p->threshold));
    nb_tensor *d = nb_add(g, m, nb_mul(g, nb_add_scalar(g, nb_neg(g, m), 1.0), nb_sigmoid(g, bx)));
    gin[0] = nb_mul(g, gy, d);
    return nb_graph_status(g);
}

const nb_op nb_op_softplus_bt = {"softplus_bt", 1,      0,    sp_infer, sp_forward,
                                 sp_backward,   sp_vjp, NULL, false,    false};

nb_tensor *nb_softplus_bt(nb_graph *g, nb_tensor *x, double beta, double threshold) {
    sm_params p = {.beta = beta, .threshold = threshold};
    return nb__record(g, &nb_op_softplus_bt, &x, 1, &p, sizeof p);
}
