// The cnn example's parts (examples/cnn.c: the training loop and main; cnn/flags.c: the
// command line; cnn/model.c: the model, its data, evaluation and the run's resources).
#ifndef EXAMPLES_CNN_H
#define EXAMPLES_CNN_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "mnist/mnist.h"

#define SHUFFLE_STREAM 0xd1b54a32d192ed03u // xor-ed into --seed for the per-epoch shuffling
#define RANDOM_STREAM 0x94d049bb133111ebu  // ... for the flips and dropout masks (one stream)
#define EVAL_CHUNK 500
#define CLASSES 10

typedef struct {
    const char *data_dir, *save, *load, *resume;
    int epochs, stop_after, threads;
    int64_t batch, limit, test_limit, c1, c2, hidden;
    double lr, weight_decay, momentum, dropout;
    nb_optim_kind optim;
    nb_schedule_kind schedule;
    bool bn, flip, overwrite, detect_anomaly, eval_only, distributed;
    uint64_t seed;
    const char *wait_policy;
} cnn_options;

// Everything a run owns; released by run_free whatever state it reached.
typedef struct {
    cnn_options o;
    nb_dataset train, test;
    nb_layer *model;
    nb_params *ps;
    const char **names; // parameters then buffers: the checkpoint's model part
    nb_tensor **tensors;
    int n_tensors;
    nb_optim *opt;
    nb_schedule sched;
    mnist_train_state ts;
    nb_graph *g, *eval_g;
    nb_tensor *x, *y, *xe, *ye; // training batch, evaluation chunk
    nb_batch_iter *it;
    nb_rng init_rng, rng; // rng: flips and dropout masks, saved in checkpoints
    double loss0;         // the run's first batch loss: the reference for divergence
    int saved_epoch;
    nb_dist *dist; // --distributed: the ranks and the gradient all-reduce (NULL otherwise)
    nb_dist_reducer *red;
    nb_rng drop_rng; // --distributed: dropout masks, reseeded per rank and step
} run_state;

// SIGINT / SIGTERM seen (checked between steps and while loading the data).
extern volatile sig_atomic_t cnn_interrupted;

// "cnn: [rank R: ]<message>" on stderr; returns 1.
int cnn_fail(const char *fmt, ...);
// 0 to run, -1 after --help, 2 after a usage error (printed).
int cnn_parse_args(int argc, char **argv, cnn_options *o);
// Loads the data, builds and collects the model (with --load, its checkpoint) and the
// evaluation tensors. 0, or 1 after an error (printed).
int cnn_setup(run_state *r);
// Accuracy over the whole test set in eval mode; adds into confusion when not NULL. -1 on
// error (printed). --distributed: each rank tests its slice, the counts are summed.
double cnn_evaluate(run_state *r, int64_t *confusion);
// Frees whatever the run holds, whatever state it reached.
void cnn_run_free(run_state *r);

#endif
