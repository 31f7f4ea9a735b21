// mnist example, shared declarations: the command line (cli.c), the multi-layer perceptron with
// its checkpoints and evaluation (model.c) and the stderr progress bar (progress.c).
// paths.c checks the output files, state.c writes and resumes training checkpoints, report.c
// prints the confusion matrix; mnist.c holds main and the training loop, setup.c (train.h)
// what comes before it. examples/cnn.c reuses the progress bar, runtime settings, output checks,
// checkpoints and report.
#ifndef NABLA_EXAMPLE_MNIST_H
#define NABLA_EXAMPLE_MNIST_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "nabla.h"

#define MNIST_MAX_HIDDEN 16         // hidden layers accepted by --hidden
#define MNIST_MAX_WIDTH 65536       // units per hidden layer
#define MNIST_MAX_CLASSES 64        // confusion matrix bound; the datasets have 10
#define MNIST_MAX_PIXELS 4096       // per image (64 x 64); MNIST has 28 x 28
#define MNIST_MAX_AUGMENT 4         // --augment bound, in pixels
#define MNIST_MAX_BUDGET_MB 1048576 // --max-data-mb / --max-model-mb bound: 1 TiB
#define MNIST_DEFAULT_DATA "/usr/share/datasets/fashion-mnist"

// ---- command line (cli.c) ------------------------------------------------------------------

typedef enum {
    MNIST_RELU = 0,
    MNIST_TANH,
    MNIST_SIGMOID,
    MNIST_GELU,
    MNIST_LEAKY_RELU,
    MNIST_ELU,
    MNIST_SILU,
    MNIST_SOFTPLUS,
    MNIST_ACT_COUNT
} mnist_act;

typedef enum {
    MNIST_SCHED_COSINE = 0,
    MNIST_SCHED_CONSTANT,
    MNIST_SCHED_STEP,     // x0.1 at 50% and 75% of the run
    MNIST_SCHED_ONECYCLE, // OneCycle: up over the first 30%, then cosine down
    MNIST_SCHED_COUNT
} mnist_schedule;

typedef struct {
    const char *data_dir;
    int n_hidden;                     // 0: softmax regression
    int64_t hidden[MNIST_MAX_HIDDEN]; // widths, input side first
    mnist_act act;
    int epochs;
    int64_t batch;
    nb_optim_kind optim; // --optim
    double lr;           // 0 until parsed: then the optimizer's default (0.05 SGD, 1e-3 others)
    double momentum;     // SGD and RMSprop
    double weight_decay; // weights only, never biases
    mnist_schedule schedule;
    int64_t warmup;     // linear warmup steps before the schedule
    double clip;        // max global grad norm (0: off)
    const char *resume; // checkpoint of an unfinished run to continue (NULL: none)
    int stop_after;     // stop after this epoch, as if interrupted (0: run to the end)
    int64_t val;        // validation samples carved from train
    int64_t limit;      // use the first `limit` training samples (0: all)
    uint64_t seed;
    int threads;
    nb_dtype dtype;
    const char *save; // checkpoint written after every epoch (NULL: none)
    const char *load; // checkpoint to start from / evaluate (NULL: fresh init)
    const char *csv;  // per-epoch metrics (NULL: none)
    bool eval_only;
    int64_t augment;         // random shift of training images, in pixels (0: off)
    bool detect_anomaly;     // nb_graph_set_check_finite on the training graph
    const char *dot;         // DOT picture of the first training step (NULL: none)
    bool summary;            // table of the first training step's tape on stdout
    const char *wait_policy; // OMP_WAIT_POLICY to run with: passive|active|unset (NULL: default)
    int64_t max_data_mb;     // cap on the image bytes loaded per split, in MiB
    int64_t max_model_mb;    // cap on the model's memory (weights, grads, momentum), in MiB
    bool overwrite;          // --save / --csv may replace an existing file
    bool distributed;        // data-parallel over the MPI ranks (mpirun -np N mnist ...)
} mnist_options;

// Fills *o from argv. Returns 0 to run, -1 when --help was printed (exit 0), or 2 after
// printing the problem and the usage text to stderr (exit 2).
int mnist_parse_args(int argc, char **argv, mnist_options *o);
const char *mnist_act_name(mnist_act a);
const char *mnist_schedule_name(mnist_schedule s);

// ---- output files (paths.c) ------------------------------------------------------------------

// The program name that starts the messages below ("mnist"; examples/cnn sets "cnn").
extern const char *mnist_program;

// Refuses (message on stderr, returns 1) a --save or --csv that is a dataset file, the other
// output, a non-regular file or a link, in a missing or read-only directory, or an existing
// file the run has no permission to replace (--overwrite, or --save equal to --load).
int mnist_check_outputs(const mnist_options *o);
bool mnist_file_exists(const char *path);

// ---- model (model.c) -------------------------------------------------------------------------

// Dense layers 0..n_layers-1: w[l] (out, in), b[l] (out), named "fc<l+1>.weight" / ".bias"
// in checkpoints. The activation follows every layer but the last, whose output is the logits.
typedef struct {
    int n_layers;
    mnist_act act;
    nb_dtype dtype;
    int64_t width[MNIST_MAX_HIDDEN + 2]; // width[0] = features, width[n_layers] = classes
    nb_tensor *w[MNIST_MAX_HIDDEN + 1];
    nb_tensor *b[MNIST_MAX_HIDDEN + 1];
    char names[2 * (MNIST_MAX_HIDDEN + 1)][24]; // weight, bias, weight, bias, ...
} mnist_mlp;

// Allocates and initialises the layers from rng (see model.c for the scheme). On failure
// returns the status with nb_last_error set and leaves nothing allocated.
nb_status mnist_mlp_create(mnist_mlp *m, const mnist_options *o, int64_t features, int64_t classes,
                           nb_rng *rng);
void mnist_mlp_destroy(mnist_mlp *m);
int64_t mnist_mlp_param_count(const mnist_mlp *m);
// "784-512-256-10" into buf.
char *mnist_mlp_describe(const mnist_mlp *m, char *buf, size_t size);
// Logits (batch, classes) for x (batch, features), owned by g; NULL with the error on g.
nb_tensor *mnist_mlp_forward(nb_graph *g, const mnist_mlp *m, nb_tensor *x);
// Checkpoint I/O (safetensors; the save is atomic). Load parses the file once, checks every
// shape, the checksums and that the weights are finite, and refuses a file with more layers
// than the model; the message goes to err (the weights are then unspecified: a deeper file
// is detected after reading). *unchecked is set when the file has no nabla checksums.
nb_status mnist_mlp_save(const mnist_mlp *m, const char *path);
nb_status mnist_mlp_load(mnist_mlp *m, const char *path, bool *unchecked, char *err,
                         size_t err_size);

// Accuracy of m over the samples idx[0..n) of ds, in chunks, on g (grad disabled there).
// Adds into confusion[true * classes + predicted] when confusion is not NULL. Returns the
// number of correct predictions, or -1 with the message in err.
int64_t mnist_evaluate(nb_graph *g, const mnist_mlp *m, const nb_dataset *ds, const int64_t *idx,
                       int64_t n, int64_t *confusion, char *err, size_t err_size);

// ---- runtime settings (runtime.c) ------------------------------------------------------------

// Sets OMP_WAIT_POLICY (passive unless the environment or --wait-policy says otherwise) and,
// on CPUs Debian's OpenBLAS does not know, OPENBLAS_CORETYPE; when either changed, restarts the
// program with the same argv so the runtimes load with them. Returns if nothing changed.
void mnist_prepare_runtime(char **argv, const char *wait_policy);
// The OMP_WAIT_POLICY in effect ("default" when unset), for the model line.
const char *mnist_wait_policy(void);

// ---- tape picture and table (tape.c) ---------------------------------------------------------

// After the first training step: nb_graph_summary to stdout (--summary) and the DOT picture
// with names and statistics to --dot (atomically). 0, or 1 with a message in err.
int mnist_write_tape(const nb_graph *g, const mnist_mlp *m, const nb_tensor *x, const nb_tensor *y,
                     const nb_tensor *loss, const mnist_options *o, char *err, size_t err_size);

// ---- training checkpoints (state.c) ---------------------------------------------------------

// Where a run is, saved next to the parameters and optimizer state so --resume continues it
// bit for bit: the last finished epoch, the optimizer steps taken, the --augment stream, and
// what the step count means (total steps, batch, training samples, seed) to refuse a resume
// under other flags.
typedef struct {
    int64_t epoch; // finished epochs
    int64_t step;  // optimizer steps taken
    int64_t total_steps, batch, n_train;
    uint64_t seed;
    nb_rng aug_rng;
} mnist_train_state;

// The parameters, every optimizer state tensor ("optim.*") and "train.state" / "train.rng"
// in one safetensors file, atomically.
nb_status mnist_checkpoint_save(const char *path, const mnist_mlp *m, nb_optim *opt,
                                const mnist_train_state *s);
// Loads all of it into m, opt and *s, after checking the file belongs to this run (same
// model, optimizer, parameter order, total steps, batch, samples and seed): otherwise an
// error in err and nothing of opt or *s changed (m may be partly overwritten; the caller
// exits).
nb_status mnist_checkpoint_resume(const char *path, mnist_mlp *m, nb_optim *opt,
                                  mnist_train_state *s, char *err, size_t err_size);

// The same for any model: its named tensors (saved in that order) and how to load them back
// from a checkpoint (0 or a status with the message in err). examples/cnn uses its layers'
// named parameter set.
typedef struct {
    const char *const *names;
    nb_tensor *const *tensors;
    int n;
    nb_status (*load)(void *ctx, const char *path, char *err, size_t err_size);
    void *ctx;
} mnist_model_io;
nb_status mnist_checkpoint_save_model(const char *path, const mnist_model_io *model, nb_optim *opt,
                                      const mnist_train_state *s);
nb_status mnist_checkpoint_resume_model(const char *path, const mnist_model_io *model,
                                        nb_optim *opt, mnist_train_state *s, char *err,
                                        size_t err_size);

// ---- test report (report.c) ------------------------------------------------------------------

// The confusion matrix (confusion[true * classes + predicted]) with each class's recall, on
// stdout; Fashion-MNIST's class names when data_dir names a Fashion-MNIST directory.
void mnist_print_confusion(const int64_t *confusion, int classes, const char *data_dir);
// Index of the largest of the n values of row `row` of logits (first one on ties).
int mnist_argmax_row(const nb_tensor *logits, int64_t row);

// ---- --distributed (distrib.c) ---------------------------------------------------------------

// The model's tensors as a named parameter set (what nabla dist reduces and broadcasts).
nb_status mnist_dist_params(const mnist_mlp *m, nb_params *ps);
// Rank 0's parameters, optimizer state (after a resume) and run position to every rank.
nb_status mnist_dist_sync(nb_dist *d, nb_params *ps, nb_optim *opt, mnist_train_state *ts,
                          bool resumed);

// Batch tensors for the few per-rank batch sizes a run meets (the slices of a full and of the
// short last global batch): views over the front of x / y, made once, then reused.
#define MNIST_MAX_VIEWS 4
typedef struct {
    int n_views;
    int64_t count[MNIST_MAX_VIEWS];
    nb_tensor *x[MNIST_MAX_VIEWS], *y[MNIST_MAX_VIEWS];
} mnist_views;
// *x, *y := (count, features) / (count) views over x / y; false (nb_last_error) on failure.
bool mnist_views_get(mnist_views *v, nb_tensor *x, nb_tensor *y, int64_t count, nb_tensor **xv,
                     nb_tensor **yv);
void mnist_views_free(mnist_views *v);

// ---- progress (progress.c) -------------------------------------------------------------------

typedef struct {
    bool tty;   // stderr is a terminal: redraw one line with \r
    bool quiet; // print nothing (ranks other than 0 of a --distributed run)
    int epoch;  // 1-based
    int epochs;
    int64_t n_batches;   // per epoch
    double run_start;    // when training began (for the run's ETA)
    int64_t run_batches; // batches completed before this epoch
    double epoch_start;
    double last_draw;
    int next_tenth; // non-TTY: next 10% mark to print
} mnist_progress;

double mnist_now(void); // monotonic seconds
void mnist_progress_init(mnist_progress *p, int epochs, int64_t n_batches);
void mnist_progress_epoch(mnist_progress *p, int epoch);
// After `done` batches and `samples` samples of the current epoch with mean loss `loss`.
void mnist_progress_update(mnist_progress *p, int64_t done, int64_t samples, double loss);
// Ends the epoch's bar (clears the line on a terminal).
void mnist_progress_finish(mnist_progress *p);

#endif
