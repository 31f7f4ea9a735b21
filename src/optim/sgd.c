// SGD with optional momentum (classical or Nesterov), dampening and weight decay, in PyTorch's
// formulation:
//   d = grad + λ w;  v = μ v + (1 - τ) d  (v = d on a parameter's first step);
//   d = nesterov ? d + μ v : (μ > 0 ? v : d);  w -= α d.
// One state buffer (the velocity) when μ > 0. Velocities start at zero, so without dampening
// the first step gives v = μ·0 + d = d, exactly PyTorch's "buf = clone(d)"; with dampening the
// first step uses the coefficient 1 instead of 1 - τ for the same reason.
// Also the original nb_sgd_* API, now a thin wrapper over nb_optim.
#include <math.h>
#include <stdio.h>

#include "base/base_impl.h"
#include "optim/optim_impl.h"
#include "tensor/parallel.h"

// One loop per configuration, so no branch sits inside the hot loop and it vectorises.
// D is the decayed gradient, BODY updates w (and v) from it, over [0, n) of the range.
// The τ = 0 loops have no (1 - τ) factor at all: they are the pre-interface SGD, bit for bit.
#define SGD_LOOP(D, BODY)                                                                          \
    _Pragma("omp simd") for (int64_t i = 0; i < n; i++) {                                          \
        const __typeof__(*w) d = (D);                                                              \
        BODY;                                                                                      \
    }
#define SGD_VARIANTS(D)                                                                            \
    do {                                                                                           \
        if (!v)                                                                                    \
            SGD_LOOP(D, w[i] -= lr * d)                                                            \
        else if (damp != 1 && c->nesterov)                                                         \
            SGD_LOOP(D, v[i] = mu * v[i] + damp * d; w[i] -= lr * (d + mu * v[i]))                 \
        else if (damp != 1)                                                                        \
            SGD_LOOP(D, v[i] = mu * v[i] + damp * d; w[i] -= lr * v[i])                            \
        else if (c->nesterov)                                                                      \
            SGD_LOOP(D, v[i] = mu * v[i] + d; w[i] -= lr * (d + mu * v[i]))                        \
        else                                                                                       \
            SGD_LOOP(D, v[i] = mu * v[i] + d; w[i] -= lr * v[i])                                   \
    } while (0)

// The element loops over [lo, hi) are built for AVX-512, AVX2 and the x86-64 baseline (SSE2),
// picked once at load time: the library is compiled for the baseline, whose 4-wide loop was
// ~5 us of net B's step (784-64-10, 51 K parameters, 1 thread; ~1.5 us with AVX-512). The file
// is compiled without FMA contraction (CMakeLists.txt), so every build computes the bits of
// the scalar expression. GCC on x86-64 only (clang's target_clones needs a newer release than
// Debian 12's).

// Coefficients are converted to T once so float params are updated in float arithmetic, as
// PyTorch does. Elements are independent, so threads never change results. The update is
// memory-bound: large tensors (> NB_OMP_MIN) split into one contiguous range per thread.
#define DEFINE_SGD_UPDATE(T, sfx)                                                                  \
    NB_CLONES static void sgd_range_##sfx(const nb_optim_update *u, int64_t lo, int64_t hi) {      \
        const nb_optim_config *c = u->cfg;                                                         \
        T *restrict w = (T *)u->w + lo;                                                            \
        const T *restrict g = (const T *)u->g + lo;                                                \
        T *restrict v = u->slot[0] ? (T *)u->slot[0] + lo : NULL;                                  \
        const int64_t n = hi - lo;                                                                 \
        const T lr = (T)u->lr, mu = (T)c->momentum, wd = (T)u->wd;                                 \
        const T damp = u->step == 1 ? (T)1 : (T)(1 - c->dampening);                                \
        if (u->wd != 0)                                                                            \
            SGD_VARIANTS(g[i] + wd * w[i]);                                                        \
        else                                                                                       \
            SGD_VARIANTS(g[i]);                                                                    \
    }                                                                                              \
    static void sgd_update_##sfx(const nb_optim_update *u) {                                       \
        NB_RANGES(u->n, NB_OMP_MIN, lo, hi, sgd_range_##sfx(u, lo, hi));                           \
    }
DEFINE_SGD_UPDATE(float, f32)
DEFINE_SGD_UPDATE(double, f64)

static int sgd_slots(const nb_optim_config *c, const char **names) {
    if (c->momentum == 0)
        return 0;
    names[0] = "momentum_buffer";
    return 1;
}

static bool sgd_check(const nb_optim_config *c, char *why, size_t size) {
    if (!(c->momentum >= 0 && c->momentum < 1))
        snprintf(why, size, "momentum must be in [0, 1), got %g", c->momentum);
    else if (!(c->dampening >= 0 && c->dampening <= 1))
        snprintf(why, size, "dampening must be in [0, 1], got %g", c->dampening);
    else if (c->nesterov && c->momentum == 0)
        snprintf(why, size, "nesterov needs momentum > 0 (momentum is 0)");
    else if (c->nesterov && c->dampening != 0)
        snprintf(why, size, "nesterov needs dampening 0, got %g", c->dampening);
    else
        return true;
    return false;
}

const nb_optim_algo nb_optim_sgd_algo = {"sgd",          sgd_slots,      sgd_check,
                                         sgd_update_f32, sgd_update_f64, NULL};

// ---- the original nb_sgd API ---------------------------------------------------------------

nb_sgd *nb_sgd_create(nb_tensor *const *params, int n, nb_sgd_config cfg) {
    nb_optim_config c = nb_optim_defaults(NB_OPTIM_SGD, cfg.lr);
    c.momentum = cfg.momentum;
    c.weight_decay = cfg.weight_decay;
    c.nesterov = cfg.nesterov;
    nb_param_group g = {params, NULL, n, 1.0, cfg.weight_decay};
    return nb__optim_create_groups(&g, 1, c, "nb_sgd_create");
}

void nb_sgd_destroy(nb_sgd *opt) {
    nb_optim_destroy(opt);
}

nb_status nb_sgd_step(nb_sgd *opt) {
    if (!opt)
        return nb__set_last_error(NB_ERR_NULL, "nb_sgd_step: optimizer is NULL");
    return nb_optim_step(opt);
}

void nb_sgd_zero_grad(nb_sgd *opt) {
    nb_optim_zero_grad(opt);
}

nb_status nb_sgd_set_lr(nb_sgd *opt, double lr) {
    if (!opt)
        return nb__set_last_error(NB_ERR_NULL, "nb_sgd_set_lr: optimizer is NULL");
    if (!(lr > 0 && isfinite(lr)))
        return nb__set_last_error(NB_ERR_ARG,
                                  "nb_sgd_set_lr: lr must be finite and > 0, got %g (kept %g)", lr,
                                  nb_optim_get_lr(opt));
    return nb_optim_set_lr(opt, lr);
}

double nb_sgd_get_lr(const nb_sgd *opt) {
    return nb_optim_get_lr(opt);
}
