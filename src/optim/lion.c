// Lion (Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms"), decoupled decay:
//   w *= 1 - lr λ;  w -= lr sign(β1 m + (1 - β1) g);  m = β2 m + (1 - β2) g
// sign(0) = 0. State: exp_avg (m). Not in PyTorch 1.13; the reference values in the tests come
// from the formula above written with torch tensor ops (tests/optim_reference.py).
#include <math.h>
#include <stdio.h>

#include "optim/optim_impl.h"
#include "tensor/parallel.h"

#define DEFINE_LION_UPDATE(T, sfx)                                                                 \
    static void lion_update_##sfx(const nb_optim_update *u) {                                      \
        const nb_optim_config *c = u->cfg;                                                         \
        T *restrict w = u->w;                                                                      \
        const T *restrict g = u->g;                                                                \
        T *restrict m = u->slot[0];                                                                \
        const int64_t n = u->n;                                                                    \
        const T b1 = (T)c->beta1, c1 = (T)(1 - c->beta1), b2 = (T)c->beta2,                        \
                c2 = (T)(1 - c->beta2);                                                            \
        const T nlr = (T)(-u->lr), keep = (T)(1 - u->lr * u->wd);                                  \
        NB_FOR_SIMD(n, i, T wi = w[i] * keep; T d = m[i] * b1 + c1 * g[i];                         \
                    T sgn = (T)((d > 0) - (d < 0)); w[i] = wi + nlr * sgn;                         \
                    m[i] = m[i] * b2 + c2 * g[i];);                                                \
    }
DEFINE_LION_UPDATE(float, f32)
DEFINE_LION_UPDATE(double, f64)

static int lion_slots(const nb_optim_config *c, const char **names) {
    (void)c;
    names[0] = "exp_avg";
    return 1;
}

static bool lion_check(const nb_optim_config *c, char *why, size_t size) {
    if (!(c->beta1 >= 0 && c->beta1 < 1))
        snprintf(why, size, "beta1 must be in [0, 1), got %g", c->beta1);
    else if (!(c->beta2 >= 0 && c->beta2 < 1))
        snprintf(why, size, "beta2 must be in [0, 1), got %g", c->beta2);
    else
        return true;
    return false;
}

const nb_optim_algo nb_optim_lion_algo = {"lion",          lion_slots,      lion_check,
                                          lion_update_f32, lion_update_f64, NULL};
