// Gradient clipping. By global norm (PyTorch's clip_grad_norm_, L2): the sum of squares of
// every grad element is accumulated in double over fixed blocks of CLIP_BLOCK elements whose
// partial sums are added in index order, so the norm does not depend on the thread count;
// then, if norm > max_norm, every grad is scaled by max_norm / (norm + 1e-6). (PyTorch
// accumulates float32 grads in float32, so its norm can differ in the last float digits.)
// By value: every element clamped to [-clip, clip].
#include <math.h>

#include "optim/optim_impl.h"
#include "tensor/parallel.h"
#include "base/base_impl.h"

#define CLIP_BLOCK 8192     // elements per partial sum
#define CLIP_BLOCKS_PER 128 // partial sums per parallel region (a stack array)

#ifdef _OPENMP
#define CLIP_PARALLEL(rest) NB_PRAGMA(omp parallel for schedule(static) if ((rest) > NB_OMP_MIN))
#define CLIP_SIMD_SUM(s) NB_PRAGMA(omp simd reduction(+ : s))
#else
#define CLIP_PARALLEL(rest)
#define CLIP_SIMD_SUM(s)
#endif

#define DEFINE_SUMSQ(T, sfx)                                                                       \
    static double sumsq_##sfx(const T *x, int64_t n) {                                             \
        double total = 0;                                                                          \
        for (int64_t start = 0; start < n; start += (int64_t)CLIP_BLOCK * CLIP_BLOCKS_PER) {       \
            double part[CLIP_BLOCKS_PER];                                                          \
            int64_t rest = n - start;                                                              \
            int nb = (int)((rest + CLIP_BLOCK - 1) / CLIP_BLOCK);                                  \
            nb = nb < CLIP_BLOCKS_PER ? nb : CLIP_BLOCKS_PER;                                      \
            CLIP_PARALLEL(rest)                                                                    \
            for (int b = 0; b < nb; b++) {                                                         \
                const T *p = x + start + (int64_t)b * CLIP_BLOCK;                                  \
                int64_t len = rest - (int64_t)b * CLIP_BLOCK;                                      \
                len = len < CLIP_BLOCK ? len : CLIP_BLOCK;                                         \
                double s = 0;                                                                      \
                CLIP_SIMD_SUM(s)                                                                   \
                for (int64_t i = 0; i < len; i++)                                                  \
                    s += (double)p[i] * (double)p[i];                                              \
                part[b] = s;                                                                       \
            }                                                                                      \
            for (int b = 0; b < nb; b++)                                                           \
                total += part[b];                                                                  \
        }                                                                                          \
        return total;                                                                              \
    }
DEFINE_SUMSQ(float, f32)
DEFINE_SUMSQ(double, f64)

static double grad_sumsq(nb_tensor *p) {
    void *g = nb_tensor_grad(p);
    if (!g)
        return 0;
    int64_t n = nb_tensor_numel(p);
    return nb_tensor_dtype(p) == NB_F32 ? sumsq_f32(g, n) : sumsq_f64(g, n);
}

static nb_status check_list(nb_tensor *const *params, int n, const char *who) {
    if (!params)
        return nb__set_last_error(NB_ERR_NULL, "%s: params is NULL", who);
    if (n < 0)
        return nb__set_last_error(NB_ERR_ARG, "%s: n = %d", who, n);
    for (int i = 0; i < n; i++) {
        if (!params[i])
            return nb__set_last_error(NB_ERR_NULL, "%s: params[%d] is NULL", who, i);
        nb_dtype dt = nb_tensor_dtype(params[i]);
        if (dt != NB_F32 && dt != NB_F64)
            return nb__set_last_error(NB_ERR_DTYPE, "%s: params[%d] %s is %s", who, i,
                                      NB_SHAPE_STR(params[i]), nb_dtype_name(dt));
    }
    return NB_OK;
}

nb_status nb_clip_grad_norm(nb_tensor *const *params, int n, double max_norm, double *norm_out) {
    const char *who = "nb_clip_grad_norm";
    if (norm_out)
        *norm_out = NAN;
    if (!(max_norm > 0))
        return nb__set_last_error(NB_ERR_ARG, "%s: max_norm must be > 0, got %g", who, max_norm);
    nb_status st = check_list(params, n, who);
    if (st != NB_OK)
        return st;
    double total = 0;
    for (int i = 0; i < n; i++)
        total += grad_sumsq(params[i]);
    double norm = sqrt(total);
    if (norm_out)
        *norm_out = norm;
    if (!isfinite(norm)) {
        int bad = 0; // name the first tensor responsible
        while (bad < n && isfinite(grad_sumsq(params[bad])))
            bad++;
        return nb__set_last_error(NB_ERR_NONFINITE,
                                  "%s: the gradient norm is %g (params[%d] %s has a NaN or Inf "
                                  "gradient, or its squares overflow); grads left unchanged, "
                                  "skip this step",
                                  who, norm, bad, bad < n ? NB_SHAPE_STR(params[bad]) : "?");
    }
    double coef = max_norm / (norm + 1e-6);
    if (coef >= 1)
        return NB_OK;
    for (int i = 0; i < n; i++) {
        void *g = nb_tensor_grad(params[i]);
        int64_t len = nb_tensor_numel(params[i]);
        if (!g)
            continue;
        if (nb_tensor_dtype(params[i]) == NB_F32) {
            float *x = g, c = (float)coef;
            NB_FOR_SIMD(len, k, x[k] *= c;);
        } else {
            double *x = g;
            NB_FOR_SIMD(len, k, x[k] *= coef;);
        }
    }
    return NB_OK;
}

nb_status nb_clip_grad_value(nb_tensor *const *params, int n, double clip) {
    const char *who = "nb_clip_grad_value";
    if (!(clip > 0))
        return nb__set_last_error(NB_ERR_ARG, "%s: clip must be > 0, got %g", who, clip);
    nb_status st = check_list(params, n, who);
    if (st != NB_OK)
        return st;
    for (int i = 0; i < n; i++) {
        void *g = nb_tensor_grad(params[i]);
        int64_t len = nb_tensor_numel(params[i]);
        if (!g)
            continue;
        // Comparisons with NaN are false, so a NaN element stays NaN (as torch.clamp).
        if (nb_tensor_dtype(params[i]) == NB_F32) {
            float *x = g, hi = (float)clip, lo = -hi;
            NB_FOR_SIMD(len, k, x[k] = x[k] > hi ? hi : x[k] < lo ? lo : x[k];);
        } else {
            double *x = g, hi = clip, lo = -clip;
            NB_FOR_SIMD(len, k, x[k] = x[k] > hi ? hi : x[k] < lo ? lo : x[k];);
        }
    }
    return NB_OK;
}

nb_status nb_optim_clip_grad_norm(nb_optim *opt, double max_norm, double *norm_out) {
    if (!opt) {
        if (norm_out)
            *norm_out = NAN;
        return nb__set_last_error(NB_ERR_NULL, "nb_optim_clip_grad_norm: optimizer is NULL");
    }
    return nb_clip_grad_norm(opt->params, opt->n, max_norm, norm_out);
}

nb_status nb_optim_clip_grad_value(nb_optim *opt, double clip) {
    if (!opt)
        return nb__set_last_error(NB_ERR_NULL, "nb_optim_clip_grad_value: optimizer is NULL");
    return nb_clip_grad_value(opt->params, opt->n, clip);
}
