// Library-private: the optimizer object shared by optim.c (creation, checks, zeroing, lr,
// state export/import) and the algorithm files (sgd.c, adam.c, rmsprop.c, adagrad.c, lion.c),
// each of which only supplies an nb_optim_algo: its state buffers and its update kernel.
#ifndef NABLA_OPTIM_IMPL_H
#define NABLA_OPTIM_IMPL_H

#include "nabla/optim.h"

#define NB_OPTIM_MAX_SLOTS 3 // state buffers per parameter (Adam with AMSGrad, RMSprop)

// What one update of one parameter sees. lr and wd are this parameter's group values; step is
// the parameter's step count including this update (1 on the first).
typedef struct nb_optim_update {
    const nb_optim_config *cfg;
    double lr, wd;
    int64_t step;
    int64_t n;                      // elements
    void *w;                        // (n) parameter data
    const void *g;                  // (n) its grad
    void *slot[NB_OPTIM_MAX_SLOTS]; // (n) each, same dtype as w, zero before the first step
} nb_optim_update;

typedef struct nb_optim_algo {
    const char *name;
    // State buffers per parameter for this config and their PyTorch names, in order.
    int (*slots)(const nb_optim_config *c, const char **names);
    // Checks the algorithm's own hyper-parameters; writes the reason into why and returns false.
    bool (*check)(const nb_optim_config *c, char *why, size_t size);
    void (*update_f32)(const nb_optim_update *u);
    void (*update_f64)(const nb_optim_update *u);
    // Optional: fills slots before the first step (Adagrad's initial accumulator).
    void (*init_slots)(const nb_optim_config *c, nb_dtype dt, void **slot, int64_t n);
} nb_optim_algo;

extern const nb_optim_algo nb_optim_sgd_algo;
extern const nb_optim_algo nb_optim_adam_algo; // Adam and AdamW
extern const nb_optim_algo nb_optim_rmsprop_algo;
extern const nb_optim_algo nb_optim_adagrad_algo;
extern const nb_optim_algo nb_optim_lion_algo;

struct nb_optim {
    nb_optim_config cfg;
    const nb_optim_algo *algo;
    int n, n_groups, n_slots;
    const char *slot_names[NB_OPTIM_MAX_SLOTS];
    nb_tensor **params; // (n) borrowed, groups concatenated
    char **names;       // (n) copied or generated ("p<k>")
    int *group;         // (n) group of each parameter
    double *lr_scale;   // (n_groups)
    double *wd;         // (n_groups)
    int64_t *steps;     // (n) updates applied to each parameter
    void **slot;        // (n * n_slots) pointers into block
    void *block;        // every state buffer, one zeroed allocation
    size_t block_bytes;
    // Export views (built at creation): "optim.meta", "optim.step", then every slot buffer.
    int n_state;
    char **state_names; // (n_state)
    nb_tensor **state;  // (n_state) tensors wrapping meta, step_f64 and the slot buffers
    double *meta;       // (NB_OPTIM_META_LEN)
    double *step_f64;   // (n)
};

// Layout of "optim.meta" (float64). Everything that decides the meaning of the state tensors
// is here, so import can refuse a state it would misread.
enum {
    NB_META_VERSION = 0, // NB_OPTIM_STATE_VERSION
    NB_META_KIND,
    NB_META_N_PARAMS,
    NB_META_N_GROUPS,
    NB_META_N_SLOTS,
    NB_META_FP_LO, // fingerprint of names, dtypes, shapes, groups and order: low 32 bits
    NB_META_FP_HI, // ... high 32 bits
    NB_META_LR,
    NB_META_AMSGRAD,
    NB_META_CENTERED,
    NB_META_MOMENTUM_ON,
    NB_META_NESTEROV,
    NB_OPTIM_META_LEN = 16
};
#define NB_OPTIM_STATE_VERSION 1

// Size in bytes of one state buffer for p, rounded up to keep every buffer double-aligned.
size_t nb__optim_slot_bytes(nb_tensor *p);
// Fingerprint of the parameter list (FNV-1a over names, dtypes, shapes and group indices).
uint64_t nb__optim_fingerprint(const nb_optim *opt);

// Creation for the nb_sgd wrapper: `who` prefixes every error message.
nb_optim *nb__optim_create_groups(const nb_param_group *groups, int n_groups, nb_optim_config cfg,
                                  const char *who);

#endif
