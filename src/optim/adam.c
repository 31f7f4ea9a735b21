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

// sqrt is correctly rounded in its scalar and vector forms alike, so NB_FOR_SIMD cannot change
// results here (the concern about libm vector variants does not apply to it).
#define ADAM_LOOP(SQRT, DECAY, VHAT)                                                               \
    NB_FOR_SIMD(n, i, __typeof__(*w) gi = g[i]; DECAY; m[i] = m[i] * b1 + c1 * gi;                 \
                v[i] = v[i] * b2 + c2 * gi * gi; VHAT;                                             \
                w[i] += nsz * m[i] / (SQRT(vh) / bc2s + eps);)

#define ADAM_VARIANTS(SQRT, DECAY)                                                                 \
    do {                                                                                           \
        if (c->amsgrad)                                                                            \
            ADAM_LOOP(SQRT, DECAY, vmax[i] = vmax[i] > v[i] ? vmax[i] : v[i];                      \
                      __typeof__(*w) vh = vmax[i]);                                                \
        else                                                                                       \
            ADAM_LOOP(SQRT, DECAY, __typeof__(*w) vh = v[i]);                                      \
    } while (0)

#define DEFINE_ADAM_UPDATE(T, sfx, SQRT)                                                           \
    static void adam_update_##sfx(const nb_optim_update *u) {                                      \
        const nb_optim_config *c = u->cfg;                                                         \
        T *restrict w = u->w;                                                                      \
        const T *restrict g = u->g;                                                                \
        T *restrict m = u->slot[0];                                                                \
        T *restrict v = u->slot[1];                                                                \
        T *restrict vmax = u->slot[2];                                                             \
        const int64_t n = u->n;                                                                    \
        const double t = (double)u->step;                                                          \
        const T b1 = (T)c->beta1, b2 = (T)c->beta2, c1 = (T)(1 - c->beta1),                        \
                c2 = (T)(1 - c->beta2), eps = (T)c->eps;                                           \
        const T nsz = (T)(-(u->lr / (1 - pow(c->beta1, t))));                                      \
        const T bc2s = (T)sqrt(1 - pow(c->beta2, t));                                              \
        const T wd = (T)u->wd, keep = (T)(1 - u->lr * u->wd);                                      \
        if (u->wd == 0)                                                                            \
            ADAM_VARIANTS(SQRT, (void)0);                                                          \
        else if (c->kind == NB_OPTIM_ADAMW) /* decoupled, fused: the same rounding as 2 passes */  \
            ADAM_VARIANTS(SQRT, w[i] *= keep);                                                     \
        else                                                                                       \
            ADAM_VARIANTS(SQRT, gi += wd * w[i]);                                                  \
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
