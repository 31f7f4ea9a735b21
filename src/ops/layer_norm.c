// layer_norm and rms_norm over the trailing `dims` axes of x, as PyTorch's F.layer_norm /
// F.rms_norm with normalized_shape = x.shape[-dims:]: x viewed as (R, D), D = the product of
// those axes, weight / bias shaped as those axes (optional; rms_norm has no bias).
//   layer_norm: y = (x - mean_r) istd_r w + b, istd_r = 1 / sqrt(var_r + eps) (biased var)
//   rms_norm:   y = x istd_r w,                istd_r = 1 / sqrt(mean_r(x²) + eps)
// Fused kernels, sums in double; mean_r and istd_r are kept in the graph arena. Backward with
// g = dy w and xhat = (x - mean) istd (mean 0 for rms_norm):
//   layer_norm: dx = istd (g - mean_D(g) - xhat mean_D(g xhat))
//   rms_norm:   dx = istd (g - xhat mean_D(g xhat))
//   dw = Σ_r dy xhat,  db = Σ_r dy   (summed over rows in row order: thread-count independent)
// Rows run in parallel for y and dx.
#include <math.h>

#include "ops/ops_impl.h"

typedef struct {
    bool rms, has_weight, has_bias;
    int dims;
    double eps;
} ln_params;

static nb_status ln_infer(nb_node *nd, nb_shape *out) {
    const ln_params *p = nd->params;
    const nb_tensor *x = nd->in[0];
    if (p->dims < 1 || p->dims > x->ndim)
        return nb__node_fail(nd, NB_ERR_ARG, "dims %d must be in [1, %d] for x %s", p->dims,
                             x->ndim, NB_SHAPE_STR(x));
    if (!(p->eps > 0))
        return nb__node_fail(nd, NB_ERR_ARG, "eps %g must be > 0; x %s", p->eps, NB_SHAPE_STR(x));
    for (int i = 1; i < nd->n_in; i++) {
        const nb_tensor *t = nd->in[i];
        bool ok = t->ndim == p->dims;
        for (int d = 0; ok && d < p->dims; d++)
            ok = t->shape[d] == x->shape[x->ndim - p->dims + d];
        if (!ok)
            return nb__node_fail(nd, NB_ERR_SHAPE,
                                 "%s is %s but x %s is normalised over its last %d dim(s)",
                                 i == 1 && p->has_weight ? "weight" : "bias", NB_SHAPE_STR(t),
                                 NB_SHAPE_STR(x), p->dims);
    }
    out->ndim = x->ndim;
    for (int i = 0; i < x->ndim; i++)
        out->dim[i] = x->shape[i];
    return NB_OK;
}

static int64_t ln_len(const nb_node *nd) {
    const ln_params *p = nd->params;
    const nb_tensor *x = nd->in[0];
    int64_t d = 1;
    for (int i = x->ndim - p->dims; i < x->ndim; i++)
        d *= x->shape[i];
    return d;
}

// stat: 2 R doubles, mean (0 for rms_norm) then istd.
#define DEFINE_LN(T, sfx)                                                                          \
    static void ln_fwd_##sfx(bool rms, double eps, int64_t r, int64_t d, const T *x, const T *w,   \
                             const T *b, T *y, double *stat) {                                     \
        NB_FOR(r, i, {                                                                             \
            const T *xr = x + i * d;                                                               \
            double mean = 0, s2 = 0;                                                               \
            if (!rms) {                                                                            \
                for (int64_t j = 0; j < d; j++)                                                    \
                    mean += (double)xr[j];                                                         \
                mean /= (double)d;                                                                 \
            }                                                                                      \
            for (int64_t j = 0; j < d; j++) {                                                      \
                double v = (double)xr[j] - mean;                                                   \
                s2 += v * v;                                                                       \
            }                                                                                      \
            double istd = 1.0 / sqrt(s2 / (double)d + eps);                                        \
            stat[i] = mean;                                                                        \
            stat[r + i] = istd;                                                                    \
            for (int64_t j = 0; j < d; j++) {                                                      \
                double v = ((double)xr[j] - mean) * istd;                                          \
                if (w)                                                                             \
                    v *= (double)w[j];                                                             \
                if (b)                                                                             \
                    v += (double)b[j];                                                             \
                y[i * d + j] = (T)v;                                                               \
            }                                                                                      \
        });                                                                                        \
    }                                                                                              \
    static void ln_bwd_x_##sfx(bool rms, int64_t r, int64_t d, const T *x, const T *w,             \
                               const double *stat, const T *gy, T *gx) {                           \
        NB_FOR(r, i, {                                                                             \
            const T *xr = x + i * d, *gr = gy + i * d;                                             \
            double mean = stat[i], istd = stat[r + i], sg = 0, sgx = 0;                            \
            for (int64_t j = 0; j < d; j++) {                                                      \
                double g = (double)gr[j] * (w ? (double)w[j] : 1.0);                               \
                sg += g;                                                                           \
                sgx += g * ((double)xr[j] - mean) * istd;                                          \
            }                                                                                      \
            double a = rms ? 0.0 : sg / (double)d, c = sgx / (double)d;                            \
            for (int64_t j = 0; j < d; j++) {                                                      \
                double g = (double)gr[j] * (w ? (double)w[j] : 1.0);                               \
                double xh = ((double)xr[j] - mean) * istd;                                         \
                gx[i * d + j] += (T)(istd * (g - a - xh * c));                                     \
            }                                                                                      \
        });                                                                                        \
    }                                                                                              \
    static void ln_bwd_wb_##sfx(int64_t r, int64_t d, const T *x, const double *stat, const T *gy, \
                                T *gw, T *gb) {                                                    \
        for (int64_t i = 0; i < r; i++)                                                            \
            for (int64_t j = 0; j < d; j++) {                                                      \
                if (gw)                                                                            \
                    gw[j] += (T)((double)gy[i * d + j] * ((double)x[i * d + j] - stat[i]) *        \
                                 stat[r + i]);                                                     \
                if (gb)                                                                            \
                    gb[j] += gy[i * d + j];                                                        \
            }                                                                                      \
    }
DEFINE_LN(float, f32)
DEFINE_LN(double, f64)

static nb_tensor *ln_weight(const nb_node *nd) {
    const ln_params *p = nd->params;
    return p->has_weight ? nd->in[1] : NULL;
}
static nb_tensor *ln_bias(const nb_node *nd) {
    const ln_params *p = nd->params;
    return p->has_bias ? nd->in[p->has_weight ? 2 : 1] : NULL;
}

static void ln_forward(nb_node *nd) {
    const ln_params *p = nd->params;
    const nb_tensor *x = nd->in[0], *w = ln_weight(nd), *b = ln_bias(nd);
    nb_tensor *y = nd->out;
    int64_t d = ln_len(nd), r = x->numel / d;
    double *stat = nb__node_save(nd, (size_t)(2 * r) * sizeof(double));
    if (!stat)
        return;
    if (y->dtype == NB_F32)
        ln_fwd_f32(p->rms, p->eps, r, d, F32(x), w ? F32(w) : NULL, b ? F32(b) : NULL, F32(y),
                   stat);
    else
        ln_fwd_f64(p->rms, p->eps, r, d, F64(x), w ? F64(w) : NULL, b ? F64(b) : NULL, F64(y),
                   stat);
}

static void ln_backward(nb_node *nd) {
    const ln_params *p = nd->params;
    nb_tensor *x = nd->in[0], *y = nd->out, *w = ln_weight(nd), *b = ln_bias(nd);
    int64_t d = ln_len(nd), r = x->numel / d;
    bool gw = w && NB_WANTS_GRAD(w), gb = b && NB_WANTS_GRAD(b);
    if (y->dtype == NB_F32) {
        if (NB_WANTS_GRAD(x))
            ln_bwd_x_f32(p->rms, r, d, F32(x), w ? F32(w) : NULL, nd->saved, G32(y), G32(x));
        if (gw || gb)
            ln_bwd_wb_f32(r, d, F32(x), nd->saved, G32(y), gw ? G32(w) : NULL, gb ? G32(b) : NULL);
    } else {
        if (NB_WANTS_GRAD(x))
            ln_bwd_x_f64(p->rms, r, d, F64(x), w ? F64(w) : NULL, nd->saved, G64(y), G64(x));
        if (gw || gb)
            ln_bwd_wb_f64(r, d, F64(x), nd->saved, G64(y), gw ? G64(w) : NULL, gb ? G64(b) : NULL);
    }
}

const nb_op nb_op_layer_norm = {
    "layer_norm",
    -1,
    0,
    ln_infer,
    ln_forward,
    ln_backward,
    NULL,
    "its fused vjp is not written yet (it would be a chain of mean / var ops)",
    false,
    false};
const nb_op nb_op_rms_norm = {
    "rms_norm", -1,
    0,          ln_infer,
    ln_forward, ln_backward,
    NULL,       "its fused vjp is not written yet (it would be a chain of mean ops)",
    false,      false};

static nb_tensor *ln_record(nb_graph *g, const nb_op *op, nb_tensor *x, int dims, nb_tensor *w,
                            nb_tensor *b, double eps) {
    ln_params p = {op == &nb_op_rms_norm, w != NULL, b != NULL, dims, eps};
    nb_tensor *in[3] = {x, NULL, NULL};
    int n = 1;
    if (w)
        in[n++] = w;
    if (b)
        in[n++] = b;
    return nb__record(g, op, in, n, &p, sizeof p);
}

nb_tensor *nb_layer_norm(nb_graph *g, nb_tensor *x, int dims, nb_tensor *weight, nb_tensor *bias,
                         double eps) {
    return ln_record(g, &nb_op_layer_norm, x, dims, weight, bias, eps);
}

nb_tensor *nb_rms_norm(nb_graph *g, nb_tensor *x, int dims, nb_tensor *weight, double eps) {
    return ln_record(g, &nb_op_rms_norm, x, dims, weight, NULL, eps);
}
