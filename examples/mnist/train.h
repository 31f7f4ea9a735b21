// The mnist program's own parts: mnist/setup.c (the data, model, optimizer, schedule and
// --resume: everything before the first step) and examples/mnist.c (the training loop, the test
// report and main). What examples/cnn shares is in mnist.h.
#ifndef NABLA_EXAMPLE_MNIST_TRAIN_H
#define NABLA_EXAMPLE_MNIST_TRAIN_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "mnist/mnist.h"

typedef struct {
    int epoch;
    double train_loss, train_acc, val_acc, seconds; // val_acc < 0: no validation set
} epoch_row;

// Everything a run owns; released by run_free whatever state it reached.
typedef struct {
    mnist_options o;
    nb_dataset train, test;
    mnist_mlp model;
    nb_graph *g;      // training tape
    nb_graph *eval_g; // evaluation, grad disabled
    nb_optim *opt;    // two groups: weights (with weight decay), biases (without)
    nb_schedule sched;
    mnist_train_state ts; // position saved with every checkpoint (--resume)
    int64_t n_train, n_val;
    int64_t *train_idx;         // (n_train)
    int64_t *val_idx;           // (n_val)
    int64_t *test_idx;          // (test.n): 0..n-1
    nb_tensor *x, *y;           // (batch, features), (batch) i32
    nb_tensor *x_tail, *y_tail; // views over their front for the short last batch, or NULL
    nb_batch_iter *it;
    nb_rng aug_rng;  // --augment shifts
    epoch_row *rows; // (epochs)
    double loss0;    // loss of the run's first batch: the reference for divergence
    int saved_epoch; // last epoch written to --save by this run (0: none yet)
    bool save_existed;
    // --distributed: the ranks, the model as a parameter set, its gradient all-reduce and the
    // per-rank batch views. dist is NULL in a plain run.
    nb_dist *dist;
    nb_params *ps;
    nb_dist_reducer *red;
    mnist_views views;
} run_state;

// SIGINT / SIGTERM seen (checked between steps and while loading the data).
extern volatile sig_atomic_t mnist_interrupted;

// "mnist: [rank R: ]<message>" on stderr; returns 1.
int mnist_fail(const char *fmt, ...);
// A library message (the data loader's already start with "mnist: "); returns 1.
int mnist_fail_lib(const char *msg);

// The steps before training (mnist/setup.c); each returns 0, or 1 after printing the error.
// The test set, and unless --eval-only the training set and its train/val split.
int mnist_load_data(run_state *r);
// The seeded model (or --load's), after checking its memory budget; the evaluation graph.
int mnist_setup_model(run_state *r, int64_t features);
// Batch tensors, optimizer, shuffling, schedule and --resume.
int mnist_setup_training(run_state *r, int64_t features);
// Releases whatever the run reached.
void mnist_run_free(run_state *r);

#endif
