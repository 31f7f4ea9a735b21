// RMSprop as torch.optim.RMSprop computes it (PyTorch 1.13, single-tensor path):
//   g += λ w;  s = α s + (1 - α) g²
//   a = centered ? sqrt(s - ḡ²) + eps, with ḡ = α ḡ + (1 - α) g : sqrt(s) + eps
//   μ > 0 ? (b = μ b + g / a;  w -= lr b) : w -= lr g / a
// State: square_avg, then grad_avg when centered, then momentum_buffer when μ > 0.
#include <math.h>
#include <stdio.h>

#include "optim/optim_impl.h"
#include "tensor/parallel.h"

// AVG computes the denominator a from s[i] (and ḡ), APPLY updates w (and b) from gi / a.
#define RMS_LOOP(SQRT, AVG, APPLY)                                                                 \
    NB_FOR_SIMD(n, i, __typeof__(*w) gi = g[i] + wd * w[i]; s[i] = s[i] * al + c1 * gi * gi; AVG;  \
                APPLY;)
#define RMS_APPLY(SQRT, AVG)                                                                       \
    do {                                                                                           \
        if (b)                                                                                     \
            RMS_LOOP(SQRT, AVG, b[i] = b[i] * mu + gi / a; w[i] += nlr * b[i]);                    \
        else                                                                                       \
            RMS_LOOP(SQRT, AVG, w[i] += nlr * gi / a);                                             \
    } while (0)

// With λ = 0 the decay term adds 0·w = +0 (w finite), so one loop serves both.
#define DEFINE_RMS_UPDATE(T, sfx, SQRT)                                                            \
    static void rmsprop_update_##sfx(const nb_optim_update *u) {                                   \
        const nb_optim_config *c = u->cfg;                                                         \
        T *restrict w = u->w;                                                                      \
        const T *restrict g = u->g;                                                                \
        T *restrict s = u->slot[0];                                                                \
        T *restrict ga = c->centered ? u->slot[1] : NULL;                                          \
        T *restrict b = c->momentum > 0 ? u->slot[c->centered ? 2 : 1] : NULL;                     \
        const int64_t n = u->n;                                                                    \
        const T al = (T)c->alpha, c1 = (T)(1 - c->alpha), eps = (T)c->eps;                         \
        const T mu = (T)c->momentum, nlr = (T)(-u->lr), wd = (T)u->wd;                             \
        if (ga)                                                                                    \
            RMS_APPLY(SQRT, ga[i] = ga[i] * al + c1 * gi;                                          \
                      const T a = SQRT(s[i] + -ga[i] * ga[i]) + eps);                              \
        else                                                                                       \
            RMS_APPLY(SQRT, const T a = SQRT(s[i]) + eps);                                         \
    }
DEFINE_RMS_UPDATE(float, f32, sqrtf)
DEFINE_RMS_UPDATE(double, f64, sqrt)

static int rmsprop_slots(const nb_optim_config *c, const char **names) {
    int k = 0;
    names[k++] = "square_avg";
    if (c->centered)
        names[k++] = "grad_avg";
    if (c->momentum > 0)
        names[k++] = "momentum_buffer";
    return k;
}

static bool rmsprop_check(const nb_optim_config *c, char *why, size_t size) {
    if (!(c->alpha >= 0 && c->alpha < 1))
        snprintf(why, size, "alpha must be in [0, 1), got %g", c->alpha);
    else if (!(c->momentum >= 0 && c->momentum < 1))
        snprintf(why, size, "momentum must be in [0, 1), got %g", c->momentum);
    else if (!(c->eps > 0 && isfinite(c->eps)))
        snprintf(why, size, "eps must be finite and > 0, got %g", c->eps);
    else
        return true;
    return false;
}

const nb_optim_algo nb_optim_rmsprop_algo = {"rmsprop",          rmsprop_slots,      rmsprop_check,
                                             rmsprop_update_f32, rmsprop_update_f64, NULL};
