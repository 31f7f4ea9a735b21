// batch_norm, as PyTorch's F.batch_norm: x (N, C, *) with any trailing dims (S = their
// product, M = N S values per channel), weight / bias (C) optional, running_mean /
// running_var (C) optional outside training.
//   training: mean_c, var_c = the biased variance over the M values of channel c;
//             y = weight_c (x - mean_c) / sqrt(var_c + eps) + bias_c; and, when given,
//             running_mean = (1 - momentum) running_mean + momentum mean_c,
//             running_var  = (1 - momentum) running_var + momentum var_c M / (M - 1)
//             (the unbiased variance, as PyTorch), updated in place by the forward.
//   eval:     the same with running_mean / running_var in place of the batch statistics.
// One fused kernel per pass, sums in double; mean and 1 / sqrt(var + eps) per channel are kept
// in the graph arena for backward:
//   xhat = (x - mean) istd, g = dy weight;
//   training: dx = istd (g - mean_M(g) - xhat mean_M(g xhat))   (the statistics depend on x)
//   eval:     dx = istd g
//   dweight = Σ dy xhat,  dbias = Σ dy.
// Channels run in parallel (each channel's sums by one thread).
#include <math.h>

#include "ops/ops_impl.h"

typedef struct {
    bool training, has_weight, has_bias;
    double momentum, eps;
    nb_tensor *running_mean, *running_var; // (C) or NULL; not graph inputs (no gradient)
} bn_params;

static nb_status bn_infer(nb_node *nd, nb_shape *out) {
    const bn_params *p = nd->params;
    const nb_tensor *x = nd->in[0];
    if (x->ndim < 2)
        return nb__node_fail(nd, NB_ERR_SHAPE, "x %s must be (N, C, ...)", NB_SHAPE_STR(x));
    int64_t c = x->shape[1];
    for (int i = 1; i < nd->n_in; i++) {
        const nb_tensor *t = nd->in[i];
        const char *what = i == 1 && p->has_weight ? "weight" : "bias";
        if (t->ndim != 1 || t->shape[0] != c)
            return nb__node_fail(nd, NB_ERR_SHAPE, "x %s has %lld channels but %s is %s",
                                 NB_SHAPE_STR(x), (long long)c, what, NB_SHAPE_STR(t));
    }
    const nb_tensor *rs[2] = {p->running_mean, p->running_var};
    const char *rn[2] = {"running_mean", "running_var"};
    for (int i = 0; i < 2; i++) {
        if (!rs[i]) {
            if (!p->training)
                return nb__node_fail(nd, NB_ERR_NULL,
                                     "%s is NULL in eval mode (it normalises with the running "
                                     "statistics); x %s",
                                     rn[i], NB_SHAPE_STR(x));
            continue;
        }
        if (rs[i]->ndim != 1 || rs[i]->shape[0] != c || rs[i]->dtype != x->dtype)
            return nb__node_fail(nd, NB_ERR_SHAPE, "x %s (%s) has %lld channels but %s is %s (%s)",
                                 NB_SHAPE_STR(x), nb_dtype_name(x->dtype), (long long)c, rn[i],
                                 NB_SHAPE_STR(rs[i]), nb_dtype_name(rs[i]->dtype));
    }
    if (!(p->eps > 0) || !(p->momentum >= 0 && p->momentum <= 1))
        return nb__node_fail(nd, NB_ERR_ARG, "eps %g must be > 0 and momentum %g in [0, 1]; x %s",
                             p->eps, p->momentum, NB_SHAPE_STR(x));
    if (p->training && x->numel / (c ? c : 1) <= 1)
        return nb__node_fail(nd, NB_ERR_SHAPE,
                             "x %s has %lld value(s) per channel: training needs more than 1",
                             NB_SHAPE_STR(x), (long long)(c ? x->numel / c : 0));
    out->ndim = x->ndim;
    for (int i = 0; i < x->ndim; i++)
        out->dim[i] = x->shape[i];
    return NB_OK;
}

typedef struct {
    int64_t n, c, s; // x viewed as (N, C, S)
} bn_geom;

static bn_geom bn_geometry(const nb_tensor *x) {
    bn_geom q = {x->shape[0], x->shape[1], 1};
    for (int i = 2; i < x->ndim; i++)
        q.s *= x->shape[i];
    return q;
}

// Channel sums go to BN_LANES partial sums by position (i mod BN_LANES within each (n, c)
// row), added up in a fixed order at the end: independent chains the compiler can keep in
// vector registers instead of one add waiting on the last, and the same bits for any thread
// count or instruction set.
#define BN_LANES 8
// The row kernels in an AVX-512, an AVX2 and a baseline (SSE2) build, picked once at load time;
// the file is compiled without FMA contraction (CMakeLists.txt), so every build computes the
// same bits. GCC on x86-64 only (clang's target_clones needs a newer release than Debian 12's).
static double bn_total(const double *a) {
    return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
}

// stat: 2 C doubles, mean then istd.
#define DEFINE_BN(T, sfx)                                                                          \
    /* a[i mod BN_LANES] += v_i, v = r - shift, squared when sq */                                 \
    NB_CLONES static void bn_sum_##sfx(const T *r, int64_t s, double shift, double *a, bool sq) {  \
        int64_t i = 0;                                                                             \
        if (sq)                                                                                    \
            for (; i + BN_LANES <= s; i += BN_LANES)                                               \
                for (int l = 0; l < BN_LANES; l++) {                                               \
                    double d = (double)r[i + l] - shift;                                           \
                    a[l] += d * d;                                                                 \
                }                                                                                  \
        else                                                                                       \
            for (; i + BN_LANES <= s; i += BN_LANES)                                               \
                for (int l = 0; l < BN_LANES; l++)                                                 \
                    a[l] += (double)r[i + l] - shift;                                              \
        for (int l = 0; i < s; i++, l++) {                                                         \
            double d = (double)r[i] - shift;                                                       \
            a[l] += sq ? d * d : d;                                                                \
        }                                                                                          \
    }                                                                                              \
    /* a1[i mod BN_LANES] += g_i, a2[...] += g_i (r_i - mean) */                                   \
    NB_CLONES static void bn_dot_##sfx(const T *g, const T *r, int64_t s, double mean, double *a1, \
                                       double *a2) {                                               \
        int64_t i = 0;                                                                             \
        for (; i + BN_LANES <= s; i += BN_LANES)                                                   \
            for (int l = 0; l < BN_LANES; l++) {                                                   \
                a1[l] += (double)g[i + l];                                                         \
                a2[l] += (double)g[i + l] * ((double)r[i + l] - mean);                             \
            }                                                                                      \
        for (int l = 0; i < s; i++, l++) {                                                         \
            a1[l] += (double)g[i];                                                                 \
            a2[l] += (double)g[i] * ((double)r[i] - mean);                                         \
        }                                                                                          \
    }                                                                                              \
    /* y = (x - mean) sc + sh over one row */                                                      \
    NB_CLONES static void bn_norm_##sfx(const T *r, T *yr, int64_t s, double mean, double sc,      \
                                        double sh) {                                               \
        for (int64_t i = 0; i < s; i++)                                                            \
            yr[i] = (T)(((double)r[i] - mean) * sc + sh);                                          \
    }                                                                                              \
    /* gx = (store) or += istd (wc g - a - xhat bq) over one row, xhat = (x - mean) istd */        \
    NB_CLONES static void bn_gx_##sfx(const T *r, const T *gr, T *gxr, int64_t s, double mean,     \
                                      double istd, double wc, double a, double bq, bool store) {   \
        if (store)                                                                                 \
            for (int64_t i = 0; i < s; i++) {                                                      \
                double xh = ((double)r[i] - mean) * istd;                                          \
                gxr[i] = (T)(istd * (wc * (double)gr[i] - a - xh * bq));                           \
            }                                                                                      \
        else                                                                                       \
            for (int64_t i = 0; i < s; i++) {                                                      \
                double xh = ((double)r[i] - mean) * istd;                                          \
                gxr[i] += (T)(istd * (wc * (double)gr[i] - a - xh * bq));                          \
            }                                                                                      \
    }                                                                                              \
    static void bn_fwd_##sfx(const bn_params *p, bn_geom q, const T *x, const T *w, const T *b,    \
                             T *y, double *stat) {                                                 \
        double m = (double)(q.n * q.s);                                                            \
        NB_FOR_WORK(q.c, q.n *q.c *q.s, c, {                                                       \
            double mean, var;                                                                      \
            if (p->training) {                                                                     \
                double a1[BN_LANES] = {0}, a2[BN_LANES] = {0};                                     \
                for (int64_t n = 0; n < q.n; n++) {                                                \
                    const T *r = x + (n * q.c + c) * q.s;                                          \
                    bn_sum_##sfx(r, q.s, 0.0, a1, false);                                          \
                }                                                                                  \
                mean = bn_total(a1) / m;                                                           \
                for (int64_t n = 0; n < q.n; n++) {                                                \
                    const T *r = x + (n * q.c + c) * q.s;                                          \
                    bn_sum_##sfx(r, q.s, mean, a2, true);                                          \
                }                                                                                  \
                var = bn_total(a2) / m;                                                            \
                if (p->running_mean) {                                                             \
                    T *rm = (T *)p->running_mean->data;                                            \
                    rm[c] = (T)((1 - p->momentum) * (double)rm[c] + p->momentum * mean);           \
                }                                                                                  \
                if (p->running_var) {                                                              \
                    T *rv = (T *)p->running_var->data;                                             \
                    rv[c] =                                                                        \
                        (T)((1 - p->momentum) * (double)rv[c] + p->momentum * var * m / (m - 1));  \
                }                                                                                  \
            } else {                                                                               \
                mean = (double)((const T *)p->running_mean->data)[c];                              \
                var = (double)((const T *)p->running_var->data)[c];                                \
            }                                                                                      \
            double istd = 1.0 / sqrt(var + p->eps);                                                \
            stat[c] = mean;                                                                        \
            stat[q.c + c] = istd;                                                                  \
            double sc = istd * (w ? (double)w[c] : 1.0), sh = (b ? (double)b[c] : 0.0);            \
            for (int64_t n = 0; n < q.n; n++)                                                      \
                bn_norm_##sfx(x + (n * q.c + c) * q.s, y + (n * q.c + c) * q.s, q.s, mean, sc,     \
                              sh);                                                                 \
        });                                                                                        \
    }                                                                                              \
    static void bn_bwd_##sfx(const bn_params *p, bn_geom q, const T *x, const T *w,                \
                             const double *stat, const T *gy, T *gx, T *gw, T *gb, uint8_t set) {  \
        double m = (double)(q.n * q.s);                                                            \
        NB_FOR_WORK(q.c, q.n *q.c *q.s, c, {                                                       \
            double mean = stat[c], istd = stat[q.c + c], wc = w ? (double)w[c] : 1.0;              \
            double a1[BN_LANES] = {0}, a2[BN_LANES] = {0};                                         \
            for (int64_t n = 0; n < q.n; n++) {                                                    \
                const T *r = x + (n * q.c + c) * q.s, *gr = gy + (n * q.c + c) * q.s;              \
                bn_dot_##sfx(gr, r, q.s, mean, a1, a2);                                            \
            }                                                                                      \
            double sdy = bn_total(a1), sdyx = bn_total(a2) * istd;                                 \
            /* set bit k: in[k]'s grad is due its first write (a store, nb__grad_first) */         \
            if (gw)                                                                                \
                gw[c] = (set & 2 ? 0 : gw[c]) + (T)sdyx;                                           \
            if (gb)                                                                                \
                gb[c] = (set & 4 ? 0 : gb[c]) + (T)sdy;                                            \
            if (gx) {                                                                              \
                /* g = dy wc: mean_M(g) = wc sdy / m, mean_M(g xhat) = wc sdyx / m */              \
                double a = p->training ? wc * sdy / m : 0.0;                                       \
                double bq = p->training ? wc * sdyx / m : 0.0;                                     \
                for (int64_t n = 0; n < q.n; n++) {                                                \
                    int64_t o = (n * q.c + c) * q.s;                                               \
                    bn_gx_##sfx(x + o, gy + o, gx + o, q.s, mean, istd, wc, a, bq, set & 1);       \
                }                                                                                  \
            }                                                                                      \
        });                                                                                        \
    }
DEFINE_BN(float, f32)
DEFINE_BN(double, f64)

static nb_tensor *bn_weight(const nb_node *nd) {
    const bn_params *p = nd->params;
    return p->has_weight ? nd->in[1] : NULL;
}
static nb_tensor *bn_bias(const nb_node *nd) {
    const bn_params *p = nd->params;
    return p->has_bias ? nd->in[p->has_weight ? 2 : 1] : NULL;
}

static void bn_forward(nb_node *nd) {
    const bn_params *p = nd->params;
    const nb_tensor *x = nd->in[0], *w = bn_weight(nd), *b = bn_bias(nd);
    nb_tensor *y = nd->out;
    bn_geom q = bn_geometry(x);
    double *stat = nb__node_save(nd, (size_t)(2 * q.c) * sizeof(double));
    if (!stat)
        return;
    if (y->dtype == NB_F32)
        bn_fwd_f32(p, q, F32(x), w ? F32(w) : NULL, b ? F32(b) : NULL, F32(y), stat);
    else
        bn_fwd_f64(p, q, F64(x), w ? F64(w) : NULL, b ? F64(b) : NULL, F64(y), stat);
}

static void bn_backward(nb_node *nd) {
    const bn_params *p = nd->params;
    nb_tensor *x = nd->in[0], *y = nd->out;
    nb_tensor *w = bn_weight(nd), *b = bn_bias(nd);
    bn_geom q = bn_geometry(x);
    bool gx = NB_WANTS_GRAD(x), gw = w && NB_WANTS_GRAD(w), gb = b && NB_WANTS_GRAD(b);
    // Bits 1, 2, 4: x's, w's, b's grad is due its first write (stored, not added).
    uint8_t set = (uint8_t)(nb__grad_first(nd, 0) | (w && nb__grad_first(nd, 1)) << 1 |
                            (b && nb__grad_first(nd, w ? 2 : 1)) << 2);
    if (y->dtype == NB_F32)
        bn_bwd_f32(p, q, F32(x), w ? F32(w) : NULL, nd->saved, G32(y), gx ? G32(x) : NULL,
                   gw ? G32(w) : NULL, gb ? G32(b) : NULL, set);
    else
        bn_bwd_f64(p, q, F64(x), w ? F64(w) : NULL, nd->saved, G64(y), gx ? G64(x) : NULL,
                   gw ? G64(w) : NULL, gb ? G64(b) : NULL, set);
}

const nb_op nb_op_batch_norm = {
    "batch_norm",
    -1,
    0,
    bn_infer,
    bn_forward,
    bn_backward,
    NULL,
    "its fused vjp is not written yet (it would be a chain of mean / var ops)",
    true,
    false};

nb_tensor *nb_batch_norm(nb_graph *g, nb_tensor *x, nb_tensor *weight, nb_tensor *bias,
                         nb_tensor *running_mean, nb_tensor *running_var, bool training,
                         double momentum, double eps) {
    bn_params p = {training, weight != NULL, bias != NULL, momentum,
                   eps,      running_mean,   running_var};
    nb_tensor *in[3] = {x, NULL, NULL};
    int n = 1;
    if (weight)
        in[n++] = weight;
    if (bias)
        in[n++] = bias;
    return nb__record(g, &nb_op_batch_norm, in, n, &p, sizeof p);
}
