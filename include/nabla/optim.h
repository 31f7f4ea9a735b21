// nabla optimizers: SGD with optional momentum (classical or Nesterov) and weight decay.
// An optimizer borrows the caller's parameter tensors (they must outlive it) and owns its
// own state (velocity buffers), freed by nb_sgd_destroy.
#ifndef NABLA_OPTIM_H
#define NABLA_OPTIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nabla/base.h"
#include "nabla/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct nb_sgd_config {
    double lr;           // learning rate α > 0
    double momentum;     // μ in [0, 1); 0 disables the velocity buffers
    double weight_decay; // λ >= 0: adds λ w to every gradient (L2 penalty ½λ‖w‖²)
    bool nesterov;       // Nesterov momentum (needs momentum > 0)
} nb_sgd_config;

typedef struct nb_sgd nb_sgd;

// Optimizer over n >= 1 distinct user tensors (each float32 or float64 with requires_grad).
// Returns NULL and sets nb_last_error on a bad config (lr <= 0 or not finite, momentum outside
// [0, 1), weight_decay < 0, nesterov without momentum) or parameter list. The list is copied,
// the tensors borrowed: they must outlive the optimizer. Caller destroys the result.
nb_sgd *nb_sgd_create(nb_tensor *const *params, int n, nb_sgd_config cfg);
void nb_sgd_destroy(nb_sgd *opt);

// One update of every parameter (PyTorch's formulation):
//   d = grad + λ w;  v = μ v + d;  d = nesterov ? d + μ v : (μ > 0 ? v : d);  w -= α d.
// A parameter whose grad was never computed is skipped. Float32 params update in float.
// Call after backward, before the next forward. NB_ERR_NULL if opt is NULL.
nb_status nb_sgd_step(nb_sgd *opt);
// Sets every parameter's grad to zero (grads accumulate across backward passes until then).
void nb_sgd_zero_grad(nb_sgd *opt);
// Changes α for later steps (schedules). An lr that is not finite and > 0 is ignored and
// nb_last_error is set. get_lr returns 0 for NULL.
void nb_sgd_set_lr(nb_sgd *opt, double lr);
double nb_sgd_get_lr(const nb_sgd *opt);

#ifdef __cplusplus
}
#endif
#endif
