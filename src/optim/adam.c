// Adam (with the AMSGrad option) and AdamW, as torch.optim.Adam / AdamW compute them
// (PyTorch 1.13, single-tensor path), per parameter with its own step count t:
//   Adam:  g += λ w                      AdamW: w *= 1 - lr λ   (decoupled decay)
//   m = β1 m + (1 - β1) g;   v = β2 v + (1 - β2) g²;   v̂ = amsgrad ? max(v̂, v) : v
//   w += -(lr / (1 - β1^t)) · m / (sqrt(v̂) / sqrt(1 - β2^t) + eps)
// The bias corrections are computed in double once per tensor, then the loop runs in the
// parameter's dtype with the same operation order as PyTorch's kernels. State: exp_avg,
// exp_avg_sq and, with AMSGrad, max_exp_avg_sq (each the parameter's shape and dtype).
// The loop is memory-bound: 7 streams of n elements (read w g m v, write w m v), 9 with AMSGrad.
#include <math.h>
#include <stdio.h>

#include "optim/optim_impl.h"
#include "tensor/parallel.h"

// The update of elements [i0, i1) of one parameter, built for AVX-512, AVX2 and the SSE2
// baseline (target_clones, picked once at load time; GCC on x86-64, one portable build
// elsewhere), the parameter split into ADAM_SPAN-element work items for the team. The loop is
// elementwise with correctly rounded sqrt and division and no FMA contraction
// (CMakeLists.txt), so every build, every split and every thread count give the same bits.
// (The baseline build alone ran 4 floats per divps / sqrtps: about half of the loop's time at
// the charlm model's 434 K parameters, perf annotate of bench_charlm.)
#define ADAM_SPAN 8192

#define ADAM_LOOP(T, SQRT, DECAY, VHAT)                                                            \
    _Pragma("omp simd") for (int64_t i = i0; i < i1; i++) {                                        \
        T gi = g[i];                                                                               \
        DECAY;                                                                                     \
        m[i] = m[i] * b1 + c1 * gi;                                                                \
        v[i] = v[i] * b2 + c2 * gi * gi;                                                           \
        VHAT;                                                                                      \
        w[i] += nsz * m[i] / (SQRT(vh) / bc2s + eps);                                              \
    }

#define ADAM_VARIANTS(T, SQRT, DECAY)                                                              \
    do {                                                                                           \
        if (amsgrad)                                                                               \
            ADAM_LOOP(T, SQRT, DECAY, vmax[i] = vmax[i] > v[i] ? vmax[i] : v[i]; T vh = vmax[i])   \
        else                                                                                       \
            ADAM_LOOP(T, SQRT, DECAY, T vh = v[i])                                                 \
    } while (0)

// k: beta1, beta2, 1 - beta1, 1 - beta2, eps, -lr / (1 - beta1^t), sqrt(1 - beta2^t), weight
// decay, 1 - lr decay (in T, computed in double once per tensor); mode 0: no decay, 1: AdamW's
// decoupled decay, 2: Adam's L2 term.
#define DEFINE_ADAM_UPDATE(T, sfx, SQRT)                                                           \
    NB_CLONES static void adam_span_##sfx(const nb_optim_update *u, const T *k, int mode,          \
                                          int64_t i0, int64_t i1) {                                \
        T *restrict w = u->w;                                                                      \
        const T *restrict g = u->g;                                                                \
        T *restrict m = u->slot[0];                                                                \
        T *restrict v = u->slot[1];                                                                \
        T *restrict vmax = u->slot[2];                                                             \
        const bool amsgrad = u->cfg->amsgrad;                                                      \
        const T b1 = k[0], b2 = k[1], c1 = k[2], c2 = k[3], eps = k[4], nsz = k[5], bc2s = k[6],   \
                wd = k[7], keep = k[8];                                                            \
        if (mode == 0)                                                                             \
            ADAM_VARIANTS(T, SQRT, (void)0);                                                       \
        else if (mode == 1) /* decoupled, fused: the same rounding as 2 passes */                  \
            ADAM_VARIANTS(T, SQRT, w[i] *= keep);                                                  \
        else                                                                                       \
            ADAM_VARIANTS(T, SQRT, gi += wd * w[i]);                                               \
    }                                                                                              \
    static void adam_update_##sfx(const nb_optim_update *u) {                                      \
        const nb_optim_config *c = u->cfg;                                                         \
        const double t = (double)u->step;                                                          \
        const T k[9] = {(T)c->beta1,                                                               \
                        (T)c->beta2,                                                               \
                        (T)(1 - c->beta1),                                                         \
                        (T)(1 - c->beta2),                                                         \
                        (T)c->eps,                                                                 \
                        (T)(-(u->lr / (1 - pow(c->beta1, t)))),                                    \
                        (T)sqrt(1 - pow(c->beta2, t)),                                             \
                        (T)u->wd,                                                                  \
                        (T)(1 - u->lr * u->wd)};                                                   \
        const int mode = u->wd == 0 ? 0 : c->kind == NB_OPTIM_ADAMW ? 1 : 2;                       \
        const int64_t n = u->n, ns = (n + ADAM_SPAN - 1) / ADAM_SPAN;                              \
        NB_FOR_WORK(ns, n, s, {                                                                    \
            int64_t i1 = (s + 1) * ADAM_SPAN < n ? (s + 1) * ADAM_SPAN : n;                        \
            adam_span_##sfx(u, k, mode, s *ADAM_SPAN, i1);                                         \
        });                                                                                        \
    }
DEFINE_ADAM_UPDATE(float, f32, sqrtf)
DEFINE_ADAM_UPDATE(double, f64, sqrt)

static int adam_slots(const nb_optim_config *c, const char **names) {
    names[0] = "exp_avg";
    names[1] = "exp_avg_sq";
    names[2] = "max_exp_avg_sq";
    return c->amsgrad ? 3 : 2;
}

static bool adam_check(const nb_optim_config *c, char *why, size_t size) {
    if (!(c->beta1 >= 0 && c->beta1 < 1))
        snprintf(why, size, "beta1 must be in [0, 1), got %g", c->beta1);
    else if (!(c->beta2 >= 0 && c->beta2 < 1))
        snprintf(why, size, "beta2 must be in [0, 1), got %g", c->beta2);
    else if (!(c->eps > 0 && isfinite(c->eps)))
        snprintf(why, size, "eps must be finite and > 0, got %g", c->eps);
    else
        return true;
    return false;
}

const nb_optim_algo nb_optim_adam_algo = {"adam",          adam_slots,      adam_check,
                                          adam_update_f32, adam_update_f64, NULL};
