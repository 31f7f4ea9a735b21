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
#include <string.h>

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

// Row sums go to LN_LANES partial sums by position (j mod LN_LANES), added in a fixed order
// at the end: independent chains the compiler keeps in vector registers instead of one add
// waiting on the last (a serial double sum of a 128-wide row cost ~4 cycles per element), and
// the same bits for any thread count or instruction set. The row kernels are built for
// AVX-512, AVX2 and SSE2 (picked once at load time) from one source compiled without FMA
// contraction (CMakeLists.txt), so every build computes the same bits.
#define LN_LANES 8
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define LN_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define LN_CLONES
#endif
static double ln_total(const double *a) {
    return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
}

// stat: 2 R doubles, mean (0 for rms_norm) then istd.
#define DEFINE_LN(T, sfx)                                                                          \
    /* Σ (x - shift)^(sq ? 2 : 1) over one row, in LN_LANES partial sums */                       \
    LN_CLONES static double ln_sum_##sfx(const T *restrict x, int64_t d, double shift, bool sq) {  \
        double a[LN_LANES] = {0};                                                                  \
        int64_t j = 0;                                                                             \
        if (sq)                                                                                    \
            for (; j + LN_LANES <= d; j += LN_LANES)                                               \
                for (int l = 0; l < LN_LANES; l++) {                                               \
                    double v = (double)x[j + l] - shift;                                           \
                    a[l] += v * v;                                                                 \
                }                                                                                  \
        else                                                                                       \
            for (; j + LN_LANES <= d; j += LN_LANES)                                               \
                for (int l = 0; l < LN_LANES; l++)                                                 \
                    a[l] += (double)x[j + l] - shift;                                              \
        for (int l = 0; j < d; j++, l++) {                                                         \
            double v = (double)x[j] - shift;                                                       \
            a[l] += sq ? v * v : v;                                                                \
        }                                                                                          \
        return ln_total(a);                                                                        \
    }                                                                                              \
    /* y = (x - mean) istd w + b over one row (w, b optional: branches outside the loops) */       \
    LN_CLONES static void ln_norm_##sfx(const T *restrict x, const T *restrict w,                  \
                                        const T *restrict b, T *restrict y, int64_t d,             \
                                        double mean, double istd) {                                \
        if (w && b)                                                                                \
            _Pragma("omp simd") for (int64_t j = 0; j < d; j++) y[j] =                             \
                (T)(((double)x[j] - mean) * istd * (double)w[j] + (double)b[j]);                   \
        else if (w)                                                                                \
            _Pragma("omp simd") for (int64_t j = 0; j < d; j++) y[j] =                             \
                (T)(((double)x[j] - mean) * istd * (double)w[j]);                                  \
        else if (b)                                                                                \
            _Pragma("omp simd") for (int64_t j = 0; j < d; j++) y[j] =                             \
                (T)(((double)x[j] - mean) * istd + (double)b[j]);                                  \
        else                                                                                       \
            _Pragma("omp simd") for (int64_t j = 0; j < d; j++) y[j] =                             \
                (T)(((double)x[j] - mean) * istd);                                                 \
    }                                                                                              \
    /* s[0] = Σ g, s[1] = Σ g xhat over a row, g = dy w (or dy), xhat = (x - mean) istd */       \
    LN_CLONES static void ln_dot_##sfx(const T *restrict x, const T *restrict w,                   \
                                       const T *restrict gy, int64_t d, double mean, double istd,  \
                                       double *s) {                                                \
        double a1[LN_LANES] = {0}, a2[LN_LANES] = {0};                                             \
        int64_t j = 0;                                                                             \
        if (w)                                                                                     \
            for (; j + LN_LANES <= d; j += LN_LANES)                                               \
                for (int l = 0; l < LN_LANES; l++) {                                               \
                    double g = (double)gy[j + l] * (double)w[j + l];                               \
                    a1[l] += g;                                                                    \
                    a2[l] += g * (((double)x[j + l] - mean) * istd);                               \
                }                                                                                  \
        else                                                                                       \
            for (; j + LN_LANES <= d; j += LN_LANES)                                               \
                for (int l = 0; l < LN_LANES; l++) {                                               \
                    double g = (double)gy[j + l];                                                  \
                    a1[l] += g;                                                                    \
                    a2[l] += g * (((double)x[j + l] - mean) * istd);                               \
                }                                                                                  \
        for (int l = 0; j < d; j++, l++) {                                                         \
            double g = (double)gy[j] * (w ? (double)w[j] : 1.0);                                   \
            a1[l] += g;                                                                            \
            a2[l] += g * (((double)x[j] - mean) * istd);                                           \
        }                                                                                          \
        s[0] = ln_total(a1), s[1] = ln_total(a2);                                                  \
    }                                                                                              \
    /* gx = (store) or += istd (g - a - xhat c) over one row */                                    \
    LN_CLONES static void ln_gx_##sfx(const T *restrict x, const T *restrict w,                    \
                                      const T *restrict gy, T *restrict gx, int64_t d,             \
                                      double mean, double istd, double a, double c, bool store) {  \
        if (w && store)                                                                            \
            _Pragma("omp simd") for (int64_t j = 0; j < d; j++) gx[j] =                            \
                (T)(istd * ((double)gy[j] * (double)w[j] - a - ((double)x[j] - mean) * istd * c)); \
        else if (w)                                                                                \
            _Pragma("omp simd") for (int64_t j = 0; j < d; j++) gx[j] +=                           \
                (T)(istd * ((double)gy[j] * (double)w[j] - a - ((double)x[j] - mean) * istd * c)); \
        else if (store)                                                                            \
            _Pragma("omp simd") for (int64_t j = 0; j < d; j++) gx[j] =                            \
                (T)(istd * ((double)gy[j] - a - ((double)x[j] - mean) * istd * c));                \
        else                                                                                       \
            _Pragma("omp simd") for (int64_t j = 0; j < d; j++) gx[j] +=                           \
                (T)(istd * ((double)gy[j] - a - ((double)x[j] - mean) * istd * c));                \
    }                                                                                              \
    /* gw += dy xhat and gb += dy over one row (either may be NULL) */                             \
    LN_CLONES static void ln_wb_row_##sfx(const T *restrict x, const T *restrict gy,               \
                                          T *restrict gw, T *restrict gb, int64_t d, double mean,  \
                                          double istd) {                                           \
        if (gw)                                                                                    \
            _Pragma("omp simd") for (int64_t j = 0; j < d; j++) gw[j] +=                           \
                (T)((double)gy[j] * ((double)x[j] - mean) * istd);                                 \
        if (gb)                                                                                    \
            _Pragma("omp simd") for (int64_t j = 0; j < d; j++) gb[j] += gy[j];                    \
    }                                                                                              \
    static void ln_fwd_##sfx(bool rms, double eps, int64_t r, int64_t d, const T *x, const T *w,   \
                             const T *b, T *y, double *stat) {                                     \
        NB_FOR_WORK(r, r *d, i, {                                                                  \
            const T *xr = x + i * d;                                                               \
            double mean = rms ? 0.0 : ln_sum_##sfx(xr, d, 0.0, false) / (double)d;                 \
            double istd = 1.0 / sqrt(ln_sum_##sfx(xr, d, mean, true) / (double)d + eps);           \
            stat[i] = mean;                                                                        \
            stat[r + i] = istd;                                                                    \
            ln_norm_##sfx(xr, w, b, y + i * d, d, mean, istd);                                     \
        });                                                                                        \
    }                                                                                              \
    static void ln_bwd_x_##sfx(bool rms, int64_t r, int64_t d, const T *x, const T *w,             \
                               const double *stat, const T *gy, T *gx, bool store) {               \
        NB_FOR_WORK(r, r *d, i, {                                                                  \
            double mean = stat[i], istd = stat[r + i], s[2];                                       \
            ln_dot_##sfx(x + i * d, w, gy + i * d, d, mean, istd, s);                              \
            double a = rms ? 0.0 : s[0] / (double)d, c = s[1] / (double)d;                         \
            ln_gx_##sfx(x + i * d, w, gy + i * d, gx + i * d, d, mean, istd, a, c, store);         \
        });                                                                                        \
    }                                                                                              \
    /* summed over rows in row order (thread-count independent); set: a first write */             \
    static void ln_bwd_wb_##sfx(int64_t r, int64_t d, const T *x, const double *stat, const T *gy, \
                                T *gw, T *gb, bool setw, bool setb) {                              \
        if (setw)                                                                                  \
            memset(gw, 0, (size_t)d * sizeof(T));                                                  \
        if (setb)                                                                                  \
            memset(gb, 0, (size_t)d * sizeof(T));                                                  \
        for (int64_t i = 0; i < r; i++)                                                            \
            ln_wb_row_##sfx(x + i * d, gy + i * d, gw, gb, d, stat[i], stat[r + i]);               \
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

// Stores (rather than adds) each grad on its first write of the sweep (grad_store).
static void ln_backward(nb_node *nd) {
    const ln_params *p = nd->params;
    nb_tensor *x = nd->in[0], *y = nd->out, *w = ln_weight(nd), *b = ln_bias(nd);
    int64_t d = ln_len(nd), r = x->numel / d;
    bool gw = w && NB_WANTS_GRAD(w), gb = b && NB_WANTS_GRAD(b);
    int kb = p->has_weight ? 2 : 1;
    bool sx = nb__grad_first(nd, 0), sw = gw && nb__grad_first(nd, 1),
         sb = gb && nb__grad_first(nd, kb);
    if (y->dtype == NB_F32) {
        if (NB_WANTS_GRAD(x))
            ln_bwd_x_f32(p->rms, r, d, F32(x), w ? F32(w) : NULL, nd->saved, G32(y), G32(x), sx);
        if (gw || gb)
            ln_bwd_wb_f32(r, d, F32(x), nd->saved, G32(y), gw ? G32(w) : NULL, gb ? G32(b) : NULL,
                          sw, sb);
    } else {
        if (NB_WANTS_GRAD(x))
            ln_bwd_x_f64(p->rms, r, d, F64(x), w ? F64(w) : NULL, nd->saved, G64(y), G64(x), sx);
        if (gw || gb)
            ln_bwd_wb_f64(r, d, F64(x), nd->saved, G64(y), gw ? G64(w) : NULL, gb ? G64(b) : NULL,
                          sw, sb);
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
    true,
    false};
const nb_op nb_op_rms_norm = {
    "rms_norm", -1,
    0,          ln_infer,
    ln_forward, ln_backward,
    NULL,       "its fused vjp is not written yet (it would be a chain of mean ops)",
    true,       false};

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
