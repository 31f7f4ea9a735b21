// Stochastic gradient descent with optional momentum (classical or Nesterov) and weight decay,
// in PyTorch's formulation (dampening 0):
//   d = grad + λ w;  v = μ v + d;  d = nesterov ? d + μ v : (μ > 0 ? v : d);  w -= α d.
// The optimizer borrows the parameters and owns one contiguous block holding every velocity
// buffer. Velocities start at zero, so the first step gives v = d, exactly PyTorch's
// "buf = clone(d)" on first use. Grads are read through the public accessor at every step
// because a leaf's grad is allocated lazily by the first backward that reaches it.
#include <math.h>
#include <string.h>

#include "nabla/optim.h"
#include "tensor/parallel.h"
#include "tensor/tensor_impl.h"

struct nb_sgd {
    nb_sgd_config cfg;
    int n;
    nb_tensor **params; // (n) borrowed
    void **velocity;    // (n) pointers into block, all NULL when momentum == 0
    void *block;        // every velocity buffer, one allocation
};

// One loop per configuration, so no branch sits inside the hot loop and it vectorises.
// D is the decayed gradient, BODY updates w (and v) from it. NB_FOR keeps small tensors out
// of the OpenMP runtime; the update is memory-bound, so large ones use every thread.
#define SGD_LOOP(D, BODY) NB_FOR_SIMD(n, i, const __typeof__(*w) d = (D); BODY;)
#define SGD_VARIANTS(D)                                                                            \
    do {                                                                                           \
        if (!v)                                                                                    \
            SGD_LOOP(D, w[i] -= lr * d);                                                           \
        else if (c->nesterov)                                                                      \
            SGD_LOOP(D, v[i] = mu * v[i] + d; w[i] -= lr * (d + mu * v[i]));                       \
        else                                                                                       \
            SGD_LOOP(D, v[i] = mu * v[i] + d; w[i] -= lr * v[i]);                                  \
    } while (0)

// One parameter update; coefficients are converted to T once so float params are updated in
// float arithmetic, as PyTorch does. Elements are independent, so threads never change results.
#define DEFINE_SGD_UPDATE(T, sfx)                                                                  \
    static void sgd_update_##sfx(T *restrict w, const T *restrict g, T *restrict v, int64_t n,     \
                                 const nb_sgd_config *c) {                                         \
        const T lr = (T)c->lr, mu = (T)c->momentum, wd = (T)c->weight_decay;                       \
        if (c->weight_decay != 0)                                                                  \
            SGD_VARIANTS(g[i] + wd * w[i]);                                                        \
        else                                                                                       \
            SGD_VARIANTS(g[i]);                                                                    \
    }
DEFINE_SGD_UPDATE(float, f32)
DEFINE_SGD_UPDATE(double, f64)

static bool lr_ok(double lr) {
    return lr > 0 && isfinite(lr);
}

static nb_status check_config(nb_sgd_config cfg) {
    if (!lr_ok(cfg.lr))
        return nb__set_last_error(NB_ERR_ARG, "nb_sgd_create: lr must be finite and > 0, got %g",
                                  cfg.lr);
    if (!(cfg.momentum >= 0 && cfg.momentum < 1))
        return nb__set_last_error(NB_ERR_ARG, "nb_sgd_create: momentum must be in [0, 1), got %g",
                                  cfg.momentum);
    if (!(cfg.weight_decay >= 0 && isfinite(cfg.weight_decay)))
        return nb__set_last_error(NB_ERR_ARG,
                                  "nb_sgd_create: weight_decay must be finite and >= 0, got %g",
                                  cfg.weight_decay);
    if (cfg.nesterov && cfg.momentum == 0)
        return nb__set_last_error(NB_ERR_ARG,
                                  "nb_sgd_create: nesterov needs momentum > 0 (momentum is 0)");
    return NB_OK;
}

static nb_status check_params(nb_tensor *const *params, int n) {
    if (!params)
        return nb__set_last_error(NB_ERR_NULL, "nb_sgd_create: params is NULL");
    if (n < 1)
        return nb__set_last_error(NB_ERR_ARG, "nb_sgd_create: empty parameter list (n = %d)", n);
    for (int i = 0; i < n; i++) {
        nb_tensor *p = params[i];
        if (!p)
            return nb__set_last_error(NB_ERR_NULL, "nb_sgd_create: params[%d] is NULL", i);
        nb_dtype dt = nb_tensor_dtype(p);
        if (dt != NB_F32 && dt != NB_F64)
            return nb__set_last_error(NB_ERR_DTYPE,
                                      "nb_sgd_create: params[%d] %s is %s; only float32 and "
                                      "float64 tensors can be optimized",
                                      i, NB_SHAPE_STR(p), nb_dtype_name(dt));
        if (!nb_tensor_requires_grad(p))
            return nb__set_last_error(NB_ERR_ARG,
                                      "nb_sgd_create: params[%d] %s does not require grad (call "
                                      "nb_tensor_set_requires_grad first)",
                                      i, NB_SHAPE_STR(p));
        if (!nb_tensor_is_leaf(p))
            return nb__set_last_error(NB_ERR_ARG,
                                      "nb_sgd_create: params[%d] %s is an op output owned by a "
                                      "graph; parameters must be tensors you created",
                                      i, NB_SHAPE_STR(p));
        for (int j = 0; j < i; j++)
            if (params[j] == p)
                return nb__set_last_error(NB_ERR_ARG,
                                          "nb_sgd_create: params[%d] and params[%d] are the same "
                                          "tensor %s; list each parameter once",
                                          j, i, NB_SHAPE_STR(p));
    }
    return NB_OK;
}

// Byte size of one velocity buffer, rounded up so every buffer in the block stays aligned
// for double whatever the mix of dtypes.
static size_t velocity_bytes(nb_tensor *p) {
    size_t a = sizeof(double);
    size_t b = (size_t)nb_tensor_numel(p) * nb_dtype_size(nb_tensor_dtype(p));
    return (b + a - 1) / a * a;
}

nb_sgd *nb_sgd_create(nb_tensor *const *params, int n, nb_sgd_config cfg) {
    if (check_config(cfg) != NB_OK || check_params(params, n) != NB_OK)
        return NULL;
    nb_sgd *opt = nb__calloc(1, sizeof *opt);
    if (!opt)
        goto nomem;
    opt->cfg = cfg;
    opt->n = n;
    opt->params = nb__calloc((size_t)n, sizeof *opt->params);
    opt->velocity = nb__calloc((size_t)n, sizeof *opt->velocity);
    if (!opt->params || !opt->velocity)
        goto nomem;
    memcpy(opt->params, params, (size_t)n * sizeof *params);
    if (cfg.momentum > 0) {
        size_t total = 0;
        for (int i = 0; i < n; i++)
            total += velocity_bytes(params[i]);
        opt->block = nb__calloc(1, total);
        if (!opt->block)
            goto nomem;
        char *at = opt->block;
        for (int i = 0; i < n; i++) {
            opt->velocity[i] = at;
            at += velocity_bytes(params[i]);
        }
    }
    return opt;
nomem:
    nb_sgd_destroy(opt);
    nb__set_last_error(NB_ERR_NOMEM, "nb_sgd_create: out of memory for %d parameters", n);
    return NULL;
}

void nb_sgd_destroy(nb_sgd *opt) {
    if (!opt)
        return;
    nb__free(opt->block);
    nb__free(opt->velocity);
    nb__free(opt->params);
    nb__free(opt);
}

nb_status nb_sgd_step(nb_sgd *opt) {
    if (!opt)
        return nb__set_last_error(NB_ERR_NULL, "nb_sgd_step: optimizer is NULL");
    for (int i = 0; i < opt->n; i++) {
        nb_tensor *p = opt->params[i];
        void *g = nb_tensor_grad(p);
        if (!g) // never reached by a backward pass: nothing to apply
            continue;
        if (nb_tensor_dtype(p) == NB_F32)
            sgd_update_f32(nb_tensor_data_f32(p), g, opt->velocity[i], nb_tensor_numel(p),
                           &opt->cfg);
        else
            sgd_update_f64(nb_tensor_data_f64(p), g, opt->velocity[i], nb_tensor_numel(p),
                           &opt->cfg);
    }
    return NB_OK;
}

void nb_sgd_zero_grad(nb_sgd *opt) {
    if (!opt)
        return;
    for (int i = 0; i < opt->n; i++)
        nb_tensor_zero_grad(opt->params[i]);
}

void nb_sgd_set_lr(nb_sgd *opt, double lr) {
    if (!opt) {
        nb__set_last_error(NB_ERR_NULL, "nb_sgd_set_lr: optimizer is NULL");
        return;
    }
    if (!lr_ok(lr)) {
        nb__set_last_error(NB_ERR_ARG, "nb_sgd_set_lr: lr must be finite and > 0, got %g (kept %g)",
                           lr, opt->cfg.lr);
        return;
    }
    opt->cfg.lr = lr;
}

double nb_sgd_get_lr(const nb_sgd *opt) {
    return opt ? opt->cfg.lr : 0.0;
}
