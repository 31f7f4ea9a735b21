// The charlm trainer's parts (examples/charlm.c: training, --distributed and main;
// charlm/cli.c: the command line; charlm/checkpoint.c: --save and --resume; charlm/sample.c:
// the closing sample). The models are charlm.h's.
#ifndef CHARLM_TRAIN_H
#define CHARLM_TRAIN_H

#include <stdbool.h>
#include <stdint.h>

#include "charlm/charlm.h"

// The command line (cli.c: flags, defaults and bounds).
typedef struct charlm_opts {
    const char *data, *save, *resume, *prompt, *model;
    int epochs, sample, top_k, stop_after;
    int64_t max_steps; // per epoch, 0: all (for quick runs and tests)
    int64_t batch, context, width, heads, layers, hidden;
    double lr, wd, dropout, val_frac, temperature, warmup, max_minutes;
    uint64_t seed;
    bool quiet, distributed;
} charlm_opts;

// Everything a run owns; charlm.c's main releases it.
typedef struct charlm_run {
    charlm_opts o;
    nb_text txt;
    int64_t *train, *val, n_train, n_val;
    nb_layer *model; // the transformer's or the LSTM's
    nb_params *params;
    nb_optim *opt;
    nb_graph *g;
    nb_tensor *x, *y, *yflat, *vocab; // yflat: y's data as (B T) labels
    nb_rng rng;
    int64_t step, total_steps;
    int epoch;
    // --distributed: the ranks, the gradient all-reduce, this rank's rows [off, off + rows) of
    // every global batch (x and y hold `rows`), its dropout stream. dist is NULL otherwise.
    nb_dist *dist;
    nb_dist_reducer *red;
    int64_t off, rows;
    nb_rng drop_rng;
} charlm_run;

// Fills *o from argv (defaults per --model). 0 to run, 2 after a usage error (printed); --help
// prints the usage and exits 0.
int charlm_parse_args(int argc, char **argv, charlm_opts *o);
// Writes --save atomically: the named parameters, "vocab" (int32 code points), the optimizer's
// state and "train.state". Returns the status (nb_last_error on failure).
nb_status charlm_save_checkpoint(charlm_run *r);
// Loads --resume into the parameters, optimizer and position after checking it is this run's
// (same model, context, corpus and steps). 0, or 1 after printing the error.
int charlm_resume(charlm_run *r);
// Prints --sample characters after --prompt, seeded. 0, or 1 after an error (printed).
int charlm_sample(charlm_run *r);

#endif
