// nabla optimizers: one interface (nb_optim) over SGD, Adam, AdamW, RMSprop, Adagrad and Lion,
// each following PyTorch's update formula; parameter groups with their own lr and weight decay;
// learning-rate schedules; gradient clipping; state export/import for exact resume.
// An optimizer borrows the caller's parameter tensors (they must outlive it) and owns its state
// (moment buffers, per-parameter step counts), freed by nb_optim_destroy. After creation,
// nb_optim_step allocates nothing.
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

// ---- the optimizer interface -------------------------------------------------------------------

typedef enum {
    NB_OPTIM_SGD = 0,
    NB_OPTIM_ADAM,
    NB_OPTIM_ADAMW,
    NB_OPTIM_RMSPROP,
    NB_OPTIM_ADAGRAD,
    NB_OPTIM_LION,
    NB_OPTIM_KIND_COUNT
} nb_optim_kind;

// Hyper-parameters, named as in torch.optim. Fields an algorithm does not use are ignored.
// Start from nb_optim_defaults(kind, lr) (PyTorch's defaults) and change what you need.
//   SGD      d = g + λw; v = μv + (1-τ)d (v = d on a parameter's first step);
//            d = nesterov ? d + μv : (μ > 0 ? v : d); w -= lr d
//   Adam     g += λw (L2); m = β1 m + (1-β1) g; v = β2 v + (1-β2) g²; v̂ = amsgrad ? max(v̂, v) : v;
//            w -= lr/(1-β1^t) · m / (sqrt(v̂)/sqrt(1-β2^t) + eps)
//   AdamW    w *= 1 - lr λ (decoupled), then Adam without the L2 term
//   RMSprop  g += λw; s = α s + (1-α) g²; a = centered ? sqrt(s - ḡ²) + eps (ḡ = α ḡ + (1-α) g)
//            : sqrt(s) + eps; μ > 0 ? (b = μ b + g/a, w -= lr b) : w -= lr g/a
//   Adagrad  g += λw; S += g²; w -= lr/(1 + (t-1) lr_decay) · g / (sqrt(S) + eps)
//   Lion     w *= 1 - lr λ; w -= lr sign(β1 m + (1-β1) g); m = β2 m + (1-β2) g
// (t: the parameter's step count, starting at 1.)
typedef struct nb_optim_config {
    nb_optim_kind kind;
    double lr;           // > 0 and finite
    double weight_decay; // λ >= 0: L2 (SGD, Adam, RMSprop, Adagrad) or decoupled (AdamW, Lion)
    double momentum;     // μ in [0, 1): SGD, RMSprop
    double dampening;    // τ in [0, 1]: SGD (PyTorch allows it; 0 is the usual choice)
    bool nesterov;       // SGD; needs μ > 0 and τ = 0
    double beta1, beta2; // in [0, 1): Adam, AdamW, Lion
    double eps;          // > 0: Adam, AdamW, RMSprop, Adagrad
    bool amsgrad;        // Adam, AdamW
    double alpha;        // RMSprop smoothing constant in [0, 1)
    bool centered;       // RMSprop
    double lr_decay;     // Adagrad, >= 0
    double initial_accumulator_value; // Adagrad, >= 0
} nb_optim_config;

// PyTorch's defaults for kind with the given lr: Adam/AdamW betas (0.9, 0.999), eps 1e-8,
// AdamW weight decay 1e-2; RMSprop alpha 0.99, eps 1e-8; Adagrad eps 1e-10; Lion betas
// (0.9, 0.99); everything else 0 / false.
nb_optim_config nb_optim_defaults(nb_optim_kind kind, double lr);
// "sgd", "adam", "adamw", "rmsprop", "adagrad", "lion"; "?" out of range.
const char *nb_optim_kind_name(nb_optim_kind kind);
// The kind named s (one of the names above); NB_OPTIM_KIND_COUNT if none.
nb_optim_kind nb_optim_kind_from_name(const char *s);

// A parameter group: tensors sharing one learning-rate scale and weight decay. It is also the
// shape a named parameter set (nn module) hands to an optimizer: n tensors and, optionally,
// their n names ("fc1.weight"), which name the state tensors in checkpoints ("optim.exp_avg.
// fc1.weight"). Without names, parameters are called "p<k>" (k counts across groups).
typedef struct nb_param_group {
    nb_tensor *const *params; // (n) borrowed
    const char *const *names; // (n) or NULL; copied
    int n;                    // >= 1
    double lr_scale;          // group lr = lr_scale × optimizer lr; > 0 (1: the same lr)
    double weight_decay;      // this group's λ (cfg.weight_decay is not used with groups)
} nb_param_group;

typedef struct nb_optim nb_optim;

// One group with lr_scale 1 and cfg.weight_decay. names may be NULL.
// Returns NULL and sets nb_last_error ("nb_optim_create: ...") on a bad config (lr <= 0 or not
// finite, betas / momentum / alpha outside [0, 1), eps <= 0, negative decay, nesterov without
// momentum) or a bad list (empty, NULL entries, not float32/float64, not requiring grad, op
// outputs, a tensor listed twice, empty or duplicate names).
nb_optim *nb_optim_create(nb_tensor *const *params, const char *const *names, int n,
                          nb_optim_config cfg);
// Groups in order; a tensor may appear in only one group.
nb_optim *nb_optim_create_groups(const nb_param_group *groups, int n_groups, nb_optim_config cfg);
// The usual split in one call: tensors with 2 or more dims (weights) get cfg.weight_decay,
// 1-D and scalar tensors (biases, norm gains) get none. Same lr for both.
nb_optim *nb_optim_create_no_decay_1d(nb_tensor *const *params, const char *const *names, int n,
                                      nb_optim_config cfg);
void nb_optim_destroy(nb_optim *opt);

// One update of every parameter whose grad exists (a parameter never reached by backward is
// skipped and its step count does not advance, as in PyTorch). NB_ERR_NULL for NULL.
nb_status nb_optim_step(nb_optim *opt);
// Every parameter's grad := 0 (grads accumulate over backward passes until then).
void nb_optim_zero_grad(nb_optim *opt);
// The optimizer lr (each group uses lr_scale × it). set_lr refuses (NB_ERR_ARG, value kept) an
// lr that is negative or not finite; 0 is allowed (a schedule may reach it). get_lr: 0 for NULL.
nb_status nb_optim_set_lr(nb_optim *opt, double lr);
double nb_optim_get_lr(const nb_optim *opt);
nb_optim_kind nb_optim_kind_of(const nb_optim *opt);
const nb_optim_config *nb_optim_config_of(const nb_optim *opt);
// The parameters in optimizer order (groups concatenated); *n receives the count.
nb_tensor *const *nb_optim_params(const nb_optim *opt, int *n);
// Step count of parameter i (0 before its first update); -1 if out of range.
int64_t nb_optim_param_steps(const nb_optim *opt, int i);

// ---- state export / import (exact resume) ----------------------------------------------------

// The optimizer's whole state as named tensors: "optim.meta" (float64: format version, kind,
// parameter count, a fingerprint of the parameter names, dtypes, shapes, group layout and order,
// the state layout flags and the current lr), "optim.step" (float64, one step count per
// parameter), then one tensor per parameter and state buffer named like PyTorch's state keys:
// "optim.momentum_buffer.<name>", "optim.exp_avg.<name>", "optim.exp_avg_sq.<name>",
// "optim.max_exp_avg_sq.<name>", "optim.square_avg.<name>", "optim.grad_avg.<name>",
// "optim.sum.<name>". The tensors are views of the live state, refreshed by this call and
// valid until nb_optim_destroy: save them (e.g. with nb_save_safetensors, next to the
// parameters) before the next step. Returns the count, 0 for NULL.
int nb_optim_state_export(nb_optim *opt, const char *const **names, nb_tensor *const **tensors);

// How import reads tensors: copy the stored tensors names[i] into tensors[i] (same dtype and
// shape), all or nothing. nb_load_safetensors bound to a path fits (see examples/mnist).
typedef nb_status (*nb_optim_loader)(void *ctx, const char *const *names, nb_tensor *const *tensors,
                                     int n);
// Restores a state written by nb_optim_state_export: reads "optim.meta" first and refuses
// (NB_ERR_FORMAT, naming what differs) a state from another optimizer kind, state layout
// (amsgrad, centered, momentum on/off), parameter count, names, shapes, dtypes, groups or order;
// then reads every other state tensor into staging buffers and only if all of them arrived
// copies them in, with the step counts and lr. On any error the optimizer is unchanged.
// Hyper-parameters other than lr stay as configured. Allocates the staging buffers (freed).
nb_status nb_optim_state_import(nb_optim *opt, nb_optim_loader load, void *ctx);

// ---- gradient clipping -----------------------------------------------------------------------

// Scales every grad by max_norm / (norm + 1e-6) when the global L2 norm over all of them
// exceeds max_norm (PyTorch's clip_grad_norm_). The norm is accumulated in double in a fixed
// order (independent of the thread count). *norm_out (may be NULL) receives the norm before
// clipping. A NaN or Inf norm returns NB_ERR_NONFINITE with a message and leaves grads as they
// are (skip the step). Tensors without a grad are ignored. NB_ERR_ARG if max_norm <= 0 or NaN.
nb_status nb_clip_grad_norm(nb_tensor *const *params, int n, double max_norm, double *norm_out);
// Clamps every grad element to [-clip, clip] (NaN stays NaN). NB_ERR_ARG if clip <= 0 or NaN.
nb_status nb_clip_grad_value(nb_tensor *const *params, int n, double clip);
// The same over an optimizer's parameters.
nb_status nb_optim_clip_grad_norm(nb_optim *opt, double max_norm, double *norm_out);
nb_status nb_optim_clip_grad_value(nb_optim *opt, double clip);

// Gradient accumulation: grads add up over backward passes until zero_grad, so k micro-batches
// of b samples act as one batch of k·b when each micro-batch's mean loss is scaled by 1/k:
//   nb_optim_zero_grad(opt);
//   for (j = 0; j < k; j++) { loss_j = mean loss of micro-batch j; backward(loss_j / k); }
//   nb_optim_step(opt);
// (tests/test_optim.c checks this against one batch of k·b.)

// ---- learning-rate schedules -------------------------------------------------------------------

typedef enum {
    NB_SCHED_CONSTANT = 0,
    NB_SCHED_STEP,        // lr γ^floor(t / step_size)                            (StepLR)
    NB_SCHED_MULTISTEP,   // lr γ^(milestones passed)                             (MultiStepLR)
    NB_SCHED_EXPONENTIAL, // lr γ^t                                               (ExponentialLR)
    NB_SCHED_COSINE,   // min_lr + (lr - min_lr)(1 + cos(π t / total)) / 2     (CosineAnnealingLR)
    NB_SCHED_ONECYCLE, // OneCycleLR (cos anneal): lr/div -> lr over pct_start, -> lr/(div·fdiv)
    NB_SCHED_KIND_COUNT
} nb_schedule_kind;

#define NB_SCHED_MAX_MILESTONES 16

// A schedule is a value: nb_schedule_lr(s, t) is a pure function of the step t (0-based, the
// number of optimizer steps already taken), so resuming needs only t. Any kind may be preceded
// by a linear warmup: over steps t < warmup the lr goes from warmup_start × peak to peak
// (LinearLR(start_factor=warmup_start, total_iters=warmup) in a SequentialLR), and the schedule
// proper then runs on t - warmup with total - warmup steps. OneCycle has its own warm phase.
typedef struct nb_schedule {
    nb_schedule_kind kind;
    double lr;         // peak / base lr (OneCycle: max_lr)
    int64_t total;     // cosine, one-cycle: steps in the whole run (including warmup)
    int64_t step_size; // step
    double gamma;      // step, multistep, exponential
    int64_t milestones[NB_SCHED_MAX_MILESTONES]; // multistep, increasing
    int n_milestones;
    double min_lr;       // cosine (eta_min)
    int64_t warmup;      // linear warmup steps (0: none)
    double warmup_start; // warmup's first factor in (0, 1]; 0 is read as 1/3 (PyTorch's default)
    double pct_start;    // one-cycle: fraction of the run rising (0 is read as 0.3)
    double div_factor;   // one-cycle: initial lr = lr / div_factor (0 is read as 25)
    double final_div_factor; // one-cycle: final lr = initial / final_div_factor (0: 1e4)
} nb_schedule;

// Checks the fields (NB_ERR_ARG with a message naming the field).
nb_status nb_schedule_check(const nb_schedule *s);
// The lr for step t >= 0 (t past total holds the last value). NAN if s is invalid.
double nb_schedule_lr(const nb_schedule *s, int64_t t);

// Reduce-on-plateau (ReduceLROnPlateau, threshold_mode "rel"): a small object fed one metric
// per epoch. After more than `patience` epochs without improving on the best metric by a
// relative `threshold`, lr := max(lr · factor, min_lr) (changes smaller than eps are skipped)
// and `cooldown` epochs pass before counting again. Compose with a schedule by multiplying:
// the plateau's scale (its lr / initial lr) times nb_schedule_lr(...).
typedef struct nb_plateau {
    // settings
    bool maximize;    // false: lower metric is better ("min")
    double factor;    // in (0, 1); 0 is read as 0.1
    int patience;     // >= 0
    double threshold; // >= 0, relative
    int cooldown;     // >= 0
    double min_lr;    // >= 0
    double eps;       // 0 is read as 1e-8
    // state (zero-initialised by nb_plateau_init; saved and restored with the checkpoint)
    double lr;
    double best;
    int64_t num_bad_epochs;
    int64_t cooldown_counter;
    int64_t epochs;
} nb_plateau;

// Sets the state for a start at `lr`; checks the settings (NB_ERR_ARG).
nb_status nb_plateau_init(nb_plateau *p, double lr);
// Feeds one metric; returns the lr to use from now on. A NaN metric counts as no improvement.
double nb_plateau_step(nb_plateau *p, double metric);

// ---- the original SGD API (kept: a thin wrapper over nb_optim with kind NB_OPTIM_SGD) ----------

typedef struct nb_sgd_config {
    double lr;           // learning rate α > 0
    double momentum;     // μ in [0, 1); 0 disables the velocity buffers
    double weight_decay; // λ >= 0: adds λ w to every gradient (L2 penalty ½λ‖w‖²)
    bool nesterov;       // Nesterov momentum (needs momentum > 0)
} nb_sgd_config;

typedef nb_optim nb_sgd;

// Same as nb_optim_create with NB_OPTIM_SGD (errors are reported as "nb_sgd_create: ...").
nb_sgd *nb_sgd_create(nb_tensor *const *params, int n, nb_sgd_config cfg);
void nb_sgd_destroy(nb_sgd *opt);
nb_status nb_sgd_step(nb_sgd *opt);
void nb_sgd_zero_grad(nb_sgd *opt);
// An lr that is not finite and > 0 is refused (NB_ERR_ARG, value kept; NB_ERR_NULL for NULL).
nb_status nb_sgd_set_lr(nb_sgd *opt, double lr);
double nb_sgd_get_lr(const nb_sgd *opt);

#ifdef __cplusplus
}
#endif
#endif
