// Adagrad as torch.optim.Adagrad computes it (PyTorch 1.13, dense path), with the parameter's
// step count t:  g += λ w;  S += g²;  w -= lr / (1 + (t - 1) lr_decay) · g / (sqrt(S) + eps).
// State: sum, filled with initial_accumulator_value at creation.
#include <math.h>
#include <stdio.h>

#include "optim/optim_impl.h"
#include "tensor/parallel.h"

#define DEFINE_ADAGRAD_UPDATE(T, sfx, SQRT)                                                        \
    static void adagrad_update_##sfx(const nb_optim_update *u) {                                   \
        const nb_optim_config *c = u->cfg;                                                         \
        T *restrict w = u->w;                                                                      \
        const T *restrict g = u->g;                                                                \
        T *restrict sum = u->slot[0];                                                              \
        const int64_t n = u->n;                                                                    \
        const T nclr = (T)(-(u->lr / (1 + (double)(u->step - 1) * c->lr_decay)));                  \
        const T eps = (T)c->eps, wd = (T)u->wd;                                                    \
        NB_FOR_SIMD(n, i, T gi = g[i] + wd * w[i]; sum[i] = sum[i] + gi * gi;                      \
                    w[i] += nclr * gi / (SQRT(sum[i]) + eps););                                    \
    }
DEFINE_ADAGRAD_UPDATE(float, f32, sqrtf)
DEFINE_ADAGRAD_UPDATE(double, f64, sqrt)

static void adagrad_init(const nb_optim_config *c, nb_dtype dt, void **slot, int64_t n) {
    if (dt == NB_F32)
        for (int64_t i = 0; i < n; i++)
            ((float *)slot[0])[i] = (float)c->initial_accumulator_value;
    else
        for (int64_t i = 0; i < n; i++)
            ((double *)slot[0])[i] = c->initial_accumulator_value;
}

static int adagrad_slots(const nb_optim_config *c, const char **names) {
    (void)c;
    names[0] = "sum";
    return 1;
}

static bool adagrad_check(const nb_optim_config *c, char *why, size_t size) {
    if (!(c->lr_decay >= 0 && isfinite(c->lr_decay)))
        snprintf(why, size, "lr_decay must be finite and >= 0, got %g", c->lr_decay);
    else if (!(c->initial_accumulator_value >= 0 && isfinite(c->initial_accumulator_value)))
        snprintf(why, size, "initial_accumulator_value must be finite and >= 0, got %g",
                 c->initial_accumulator_value);
    else if (!(c->eps > 0 && isfinite(c->eps)))
        snprintf(why, size, "eps must be finite and > 0, got %g", c->eps);
    else
        return true;
    return false;
}

const nb_optim_algo nb_optim_adagrad_algo = {"adagrad",          adagrad_slots,      adagrad_check,
                                             adagrad_update_f32, adagrad_update_f64, adagrad_init};
