// mnist: trains a multi-layer perceptron on any MNIST-format directory (digits or
// Fashion-MNIST) with mini-batches, then reports the test accuracy and confusion matrix.
// One step: fill (batch, 784) pixels and (batch) labels -> logits = MLP(x) -> mean sparse
// cross-entropy -> backward -> [clip the global grad norm] -> optimizer step (--optim; SGD with
// momentum by default) -> nb_graph_reset (memory kept, so after the first step a step allocates
// nothing). The learning rate follows a per-step schedule (cosine from --lr down to 0 by
// default, optional linear warmup). Weight decay applies to weights, not biases (two groups).
// --save writes the checkpoint after every finished epoch (atomic), never before the first, so
// an existing file is replaced only by a trained model and, at the end, holds exactly the
// weights the test accuracy was measured on; --csv is rewritten the same way. Output paths are
// checked before any work (mnist/paths.c). A diverging run (loss NaN/Inf or far above its start)
// stops with exit 1 and saves nothing more. The checkpoint also holds the optimizer state, step,
// epoch and augment stream (mnist/state.c), so --resume continues a stopped run bit for bit.
// Randomness comes from three streams derived from --seed (init, validation split, shuffling);
// with the same seed and --threads, two runs give bitwise identical losses.
// Layout: cli.c (flags), model.c (MLP, checkpoints, evaluation), progress.c (stderr bar).
// Exit: 0 done, 1 runtime error (data, checkpoint, I/O, divergence), 2 bad usage,
// 130 interrupted. SIGINT/SIGTERM only set a flag that is checked between steps, so a
// checkpoint being written when the signal arrives is finished and renamed, never left half
// written. SIGXFSZ is ignored so a file-size limit shows up as a write error with a message.
#define _POSIX_C_SOURCE 200809L // setenv

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/dist_cli.h"
#include "mnist/mnist.h"

#define SPLIT_STREAM 0x9e3779b97f4a7c15u   // xor-ed into --seed for the validation split
#define SHUFFLE_STREAM 0xd1b54a32d192ed03u // ... and for the per-epoch shuffling
#define AUGMENT_STREAM 0x94d049bb133111ebu // ... and for --augment's random shifts

// From OpenBLAS (linked through nabla); declared here so the example needs no BLAS header.
char *openblas_get_corename(void);

static volatile sig_atomic_t interrupted; // set by SIGINT / SIGTERM

static void on_signal(int sig) {
    interrupted = sig;
}

static void install_signal_handlers(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGXFSZ, SIG_IGN);
}

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

// Divergence: a batch loss above max(DIVERGE_BATCH x start, start + DIVERGE_BATCH_ADD) or an
// epoch mean above max(DIVERGE_EPOCH x start, start + 1). A healthy run's loss falls; these
// bounds are orders of magnitude beyond batch-to-batch noise (a batch of one confidently wrong
// sample costs ~20 nats), and still catch --lr 1e6 (loss 1e33) in its first batches.
#define DIVERGE_BATCH 1000.0
#define DIVERGE_BATCH_ADD 100.0
#define DIVERGE_EPOCH 10.0

// "; <ckpt> holds epoch 3", or what is true of --save when nothing was written this run.
static const char *save_state(const run_state *r, char *buf, size_t size) {
    if (!r->o.save)
        snprintf(buf, size, "%s", "");
    else if (r->saved_epoch > 0)
        snprintf(buf, size, "; %s holds epoch %d", r->o.save, r->saved_epoch);
    else
        snprintf(buf, size, "; no epoch finished, so %s %s", r->o.save,
                 r->save_existed ? "was left as it was" : "was not written");
    return buf;
}

static int fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    dist_cli_vfail("mnist", fmt, ap);
    va_end(ap);
    return 1;
}

// A library message; the data loader's already start with "mnist: ".
static int fail_lib(const char *msg) {
    if (!strncmp(msg, "mnist: ", 7))
        msg += 7;
    return fail("%s", msg);
}

static void run_free(run_state *r) {
    nb_batch_iter_destroy(r->it);
    nb_tensor_destroy(r->x_tail);
    nb_tensor_destroy(r->y_tail);
    nb_tensor_destroy(r->x);
    nb_tensor_destroy(r->y);
    nb_optim_destroy(r->opt);
    nb_graph_destroy(r->g);
    nb_graph_destroy(r->eval_g);
    mnist_mlp_destroy(&r->model);
    nb_dataset_free(&r->train);
    nb_dataset_free(&r->test);
    free(r->train_idx);
    free(r->val_idx);
    free(r->test_idx);
    free(r->rows);
    nb_dist_reducer_destroy(r->red);
    nb_params_destroy(r->ps);
    mnist_views_free(&r->views);
}

// Loads the test set (and unless --eval-only the training set), checks they agree, and makes
// the index lists: train/val split of the first --limit training samples, 0..n-1 for test.
// Only --limit training samples are read; SIGINT stops a long load within milliseconds.
static int load_data(run_state *r) {
    const mnist_options *o = &r->o;
    nb_idx_options io = {.max_bytes = (uint64_t)o->max_data_mb << 20, .cancel = &interrupted};
    nb_idx_options train_io = io;
    train_io.limit = o->limit;
    if (!o->eval_only && nb_mnist_load_ex(o->data_dir, "train", &train_io, &r->train) != NB_OK)
        return fail_lib(nb_last_error());
    if (nb_mnist_load_ex(o->data_dir, "t10k", &io, &r->test) != NB_OK)
        return fail_lib(nb_last_error());
    if (!o->eval_only && (r->train.rows != r->test.rows || r->train.cols != r->test.cols))
        return fail("%s: train images are %" PRId64 "x%" PRId64 " but test images are %" PRId64
                    "x%" PRId64,
                    o->data_dir, r->train.rows, r->train.cols, r->test.rows, r->test.cols);
    r->test_idx = malloc((size_t)r->test.n * sizeof *r->test_idx);
    if (!r->test_idx)
        return fail("out of memory");
    for (int64_t i = 0; i < r->test.n; i++)
        r->test_idx[i] = i;
    if (o->eval_only)
        return 0;
    int64_t n = o->limit > 0 && o->limit < r->train.n ? o->limit : r->train.n;
    if (o->val >= n)
        return fail("--val %" PRId64 " leaves no training samples (%" PRId64 " available)", o->val,
                    n);
    r->n_val = o->val;
    r->n_train = n - o->val;
    r->train_idx = malloc((size_t)r->n_train * sizeof *r->train_idx);
    r->val_idx = malloc((size_t)(r->n_val ? r->n_val : 1) * sizeof *r->val_idx);
    if (!r->train_idx || !r->val_idx)
        return fail("out of memory");
    nb_rng rng;
    nb_rng_seed(&rng, o->seed ^ SPLIT_STREAM);
    if (nb_split_indices(n, r->n_val, &rng, r->train_idx, r->val_idx) != NB_OK)
        return fail_lib(nb_last_error());
    return 0;
}

// The model's memory before it is allocated: weights + biases, and as much again for their
// gradients and (when training) for each optimizer state buffer (SGD momentum 1, Adam/AdamW 2,
// RMSprop 1 + momentum). Doubles: no overflow.
static int check_model_budget(const run_state *r, int64_t features) {
    const mnist_options *o = &r->o;
    double params = 0;
    double in = (double)features;
    for (int l = 0; l <= o->n_hidden; l++) {
        double out = l < o->n_hidden ? (double)o->hidden[l] : NB_MNIST_CLASSES;
        params += in * out + out;
        in = out;
    }
    int slots = o->optim == NB_OPTIM_SGD       ? o->momentum > 0
                : o->optim == NB_OPTIM_RMSPROP ? 1 + (o->momentum > 0)
                                               : 2;
    double bytes = params * (double)nb_dtype_size(o->dtype) * (o->eval_only ? 1 : 2 + slots);
    double budget = (double)o->max_model_mb * 1048576.0;
    if (bytes <= budget)
        return 0;
    return fail("the model (%" PRId64 " inputs, %.0f parameters) needs %.0f MiB for weights%s, "
                "over the --max-model-mb %" PRId64 " budget: use smaller --hidden layers or "
                "smaller images, or raise --max-model-mb",
                features, params, bytes / 1048576.0,
                o->eval_only ? "" : ", gradients and optimizer state", o->max_model_mb);
}

// Creates the model (seeded init), overwrites it from --load, and the evaluation graph.
static int setup_model(run_state *r, int64_t features) {
    if (check_model_budget(r, features))
        return 1;
    nb_rng rng;
    nb_rng_seed(&rng, r->o.seed);
    if (mnist_mlp_create(&r->model, &r->o, features, NB_MNIST_CLASSES, &rng) != NB_OK)
        return fail("cannot create the model: %s", nb_last_error());
    char err[768];
    bool unchecked = false;
    nb_status st =
        r->o.load ? mnist_mlp_load(&r->model, r->o.load, &unchecked, err, sizeof err) : NB_OK;
    if (st != NB_OK)
        return fail("cannot load checkpoint: %s%s", err,
                    st == NB_ERR_SHAPE || st == NB_ERR_DTYPE
                        ? " (--hidden and --dtype must match the checkpoint)"
                        : "");
    if (unchecked)
        fprintf(stderr,
                "mnist: note: %s has no nabla checksums (written by another tool?); "
                "its weights were loaded unverified\n",
                r->o.load);
    if (!(r->eval_g = nb_graph_create()))
        return fail_lib(nb_last_error());
    nb_graph_set_grad_enabled(r->eval_g, false);
    return 0;
}

// One optimizer, two groups: weights with --weight-decay, biases without (same lr).
static int setup_optimizer(run_state *r) {
    const mnist_options *o = &r->o;
    const mnist_mlp *m = &r->model;
    const char *wn[MNIST_MAX_HIDDEN + 1], *bn[MNIST_MAX_HIDDEN + 1];
    for (int l = 0; l < m->n_layers; l++)
        wn[l] = m->names[2 * l], bn[l] = m->names[2 * l + 1];
    nb_optim_config cfg = nb_optim_defaults(o->optim, o->lr);
    cfg.momentum = o->momentum;
    nb_param_group groups[2] = {
        {(nb_tensor *const *)m->w, wn, m->n_layers, 1.0, o->weight_decay},
        {(nb_tensor *const *)m->b, bn, m->n_layers, 1.0, 0.0},
    };
    if (!(r->opt = nb_optim_create_groups(groups, 2, cfg)))
        return fail_lib(nb_last_error());
    return 0;
}

// The per-step lr schedule over the whole run; then, with --resume, the saved parameters,
// optimizer state and position, and the shuffling iterator replayed to that epoch.
static int setup_schedule_and_resume(run_state *r, int64_t batch) {
    const mnist_options *o = &r->o;
    int64_t total = nb_batch_iter_num_batches(r->it) * o->epochs;
    nb_schedule *s = &r->sched;
    *s = (nb_schedule){.lr = o->lr, .total = total, .warmup = o->warmup, .warmup_start = 0.1};
    if (o->schedule == MNIST_SCHED_COSINE)
        s->kind = NB_SCHED_COSINE;
    else if (o->schedule == MNIST_SCHED_ONECYCLE)
        s->kind = NB_SCHED_ONECYCLE;
    else if (o->schedule == MNIST_SCHED_STEP) {
        int64_t rest = total - o->warmup;
        *s = (nb_schedule){.kind = NB_SCHED_MULTISTEP,
                           .lr = o->lr,
                           .gamma = 0.1,
                           .milestones = {rest / 2, rest * 3 / 4},
                           .n_milestones = 2,
                           .warmup = o->warmup,
                           .warmup_start = 0.1};
    }
    if (o->warmup >= total)
        return fail("--warmup %" PRId64 " must be below the run's %" PRId64 " steps", o->warmup,
                    total);
    if (o->warmup > 0 && o->schedule == MNIST_SCHED_ONECYCLE)
        return fail("--warmup does not apply to --schedule onecycle (it has its own warm phase)");
    if (nb_schedule_check(s) != NB_OK)
        return fail("--schedule %s: %s", mnist_schedule_name(o->schedule), nb_last_error());
    r->ts = (mnist_train_state){.total_steps = total,
                                .batch = batch,
                                .n_train = r->n_train,
                                .seed = o->seed,
                                .aug_rng = r->aug_rng};
    char err[1024] = "";
    nb_status st = NB_OK;
    if (o->resume && nb_dist_is_root(r->dist)) // a distributed run: rank 0 reads, then sends
        st = mnist_checkpoint_resume(o->resume, &r->model, r->opt, &r->ts, err, sizeof err);
    if (r->dist) {
        if (nb_dist_agree(r->dist, st, "reading the checkpoint") != NB_OK && st == NB_OK)
            return fail("cannot resume: %s", nb_last_error());
        if (st == NB_OK &&
            mnist_dist_sync(r->dist, r->ps, r->opt, &r->ts, o->resume != NULL) != NB_OK)
            return fail("--distributed: %s", nb_last_error());
    }
    if (!o->resume)
        return 0;
    if (st != NB_OK)
        return fail("cannot resume: %s%s", err,
                    st == NB_ERR_SHAPE || st == NB_ERR_DTYPE
                        ? " (--hidden and --dtype must match the checkpoint)"
                        : "");
    if (r->ts.epoch > o->epochs)
        return fail("cannot resume: %s holds epoch %" PRId64 " of a run of %d", o->resume,
                    r->ts.epoch, o->epochs);
    r->aug_rng = r->ts.aug_rng;
    const int64_t *idx;
    for (int64_t e = 0; e < r->ts.epoch; e++) // epoch k's order depends only on the seed and k
        while (nb_batch_iter_next(r->it, &idx) > 0)
            ;
    printf("resumed from %s after epoch %" PRId64 " (step %" PRId64 ")\n", o->resume, r->ts.epoch,
           r->ts.step);
    fflush(stdout);
    return 0;
}

// Batch tensors, the tail views, the optimizers and the shuffling iterator.
static int setup_training(run_state *r, int64_t features) {
    const mnist_options *o = &r->o;
    int64_t batch = o->batch < r->n_train ? o->batch : r->n_train;
    int64_t tail = r->n_train % batch;
    r->x = nb_tensor_create(o->dtype, 2, (int64_t[]){batch, features});
    r->y = nb_tensor_create(NB_I32, 1, (int64_t[]){batch});
    if (r->x && r->y && tail) {
        r->x_tail = nb_tensor_wrap(o->dtype, 2, (int64_t[]){tail, features}, nb_tensor_data(r->x));
        r->y_tail = nb_tensor_wrap(NB_I32, 1, (int64_t[]){tail}, nb_tensor_data(r->y));
    }
    if (!r->x || !r->y || (tail && (!r->x_tail || !r->y_tail)) || !(r->g = nb_graph_create()))
        return fail_lib(nb_last_error());
    nb_graph_set_check_finite(r->g, o->detect_anomaly);
    if (setup_optimizer(r))
        return 1;
    if (r->dist) {
        if (!(r->ps = nb_params_create()) || mnist_dist_params(&r->model, r->ps) != NB_OK ||
            !(r->red = nb_dist_reducer_create(r->dist, r->ps, 0)))
            return fail_lib(nb_last_error());
    }
    r->it = nb_batch_iter_create(r->train_idx, r->n_train, batch, true, o->seed ^ SHUFFLE_STREAM);
    nb_rng_seed(&r->aug_rng, o->seed ^ AUGMENT_STREAM);
    if (o->augment > 0 && r->train.rows * r->train.cols > MNIST_MAX_PIXELS)
        return fail("--augment supports images of at most %d pixels, these have %" PRId64
                    "x%" PRId64,
                    MNIST_MAX_PIXELS, r->train.rows, r->train.cols);
    r->rows = calloc((size_t)o->epochs, sizeof *r->rows);
    if (!r->it || !r->rows)
        return fail("%s", r->it ? "out of memory" : nb_last_error());
    return setup_schedule_and_resume(r, batch);
}

typedef struct {
    const run_state *r;
    int n_rows;
} csv_job;

static bool csv_rows(FILE *f, void *ctx) {
    const csv_job *job = ctx;
    fprintf(f, "epoch,train_loss,train_acc,val_acc,seconds\n");
    for (int i = 0; i < job->n_rows; i++) {
        const epoch_row *e = &job->r->rows[i];
        if (e->epoch == 0) // before a --resume: not run by this process
            continue;
        fprintf(f, "%d,%.9g,%.9g,", e->epoch, e->train_loss, e->train_acc);
        if (e->val_acc >= 0)
            fprintf(f, "%.9g", e->val_acc);
        fprintf(f, ",%.3f\n", e->seconds);
    }
    return !ferror(f);
}

// Replaces --csv atomically with the metrics so far.
static int write_csv(const run_state *r, int n_rows) {
    csv_job job = {r, n_rows};
    if (nb_write_file_atomic(r->o.csv, csv_rows, &job) != NB_OK)
        return fail("cannot write --csv: %s", nb_last_error());
    return 0;
}

// --augment S: move each training image by a random (dy, dx) in [-S, S]², filling with 0
// (background). Cheap and effective regularisation when the training set is small.
#define DEFINE_SHIFT(T, sfx)                                                                       \
    static void shift_##sfx(T *img, int64_t rows, int64_t cols, int64_t dy, int64_t dx, T *tmp) {  \
        for (int64_t r = 0; r < rows; r++)                                                         \
            for (int64_t c = 0; c < cols; c++) {                                                   \
                int64_t sr = r - dy, sc = c - dx;                                                  \
                tmp[r * cols + c] =                                                                \
                    sr >= 0 && sr < rows && sc >= 0 && sc < cols ? img[sr * cols + sc] : (T)0;     \
            }                                                                                      \
        memcpy(img, tmp, (size_t)(rows * cols) * sizeof(T));                                       \
    }
DEFINE_SHIFT(float, f32)
DEFINE_SHIFT(double, f64)

static void augment(run_state *r, nb_tensor *x, int64_t count) {
    int64_t rows = r->train.rows, cols = r->train.cols, s = r->o.augment;
    double tmp[MNIST_MAX_PIXELS]; // (rows * cols), big enough for either dtype
    for (int64_t i = 0; i < count; i++) {
        int64_t dy = (int64_t)nb_rng_below(&r->aug_rng, (uint64_t)(2 * s + 1)) - s;
        int64_t dx = (int64_t)nb_rng_below(&r->aug_rng, (uint64_t)(2 * s + 1)) - s;
        if (nb_tensor_dtype(x) == NB_F32)
            shift_f32(nb_tensor_data_f32(x) + i * rows * cols, rows, cols, dy, dx, (float *)tmp);
        else
            shift_f64(nb_tensor_data_f64(x) + i * rows * cols, rows, cols, dy, dx, tmp);
    }
}

// A failure inside an epoch: clear the bar first so the message starts its own line.
static int epoch_fail(mnist_progress *pg, const char *msg) {
    mnist_progress_finish(pg);
    return fail("%s", msg);
}

// One epoch over the training indices. Writes the mean loss and accuracy; 0 or 1 (error).
static int train_epoch(run_state *r, mnist_progress *pg, int64_t *step, double *loss_out,
                       double *acc_out) {
    const int64_t *idx;
    int64_t count, done = 0, seen = 0, correct = 0;
    double loss_sum = 0; // Σ per-sample losses, in batch order (deterministic)
    while ((count = nb_batch_iter_next(r->it, &idx)) > 0) {
        if (interrupted) {
            char msg[512], state[400];
            snprintf(msg, sizeof msg, "interrupted in epoch %d%s", pg->epoch,
                     save_state(r, state, sizeof state));
            return epoch_fail(pg, msg);
        }
        // --distributed: this rank's slice [off, off + n) of the global batch.
        int64_t off = 0, n = count;
        nb_dist_slice(count, nb_dist_rank(r->dist), nb_dist_size(r->dist), &off, &n);
        bool full = count == nb_tensor_dim(r->x, 0);
        nb_tensor *x = full ? r->x : r->x_tail;
        nb_tensor *y = full ? r->y : r->y_tail;
        if (r->dist && !mnist_views_get(&r->views, r->x, r->y, n, &x, &y))
            return epoch_fail(pg, "out of memory");
        if (nb_dataset_fill_batch(&r->train, idx + off, n, x, NULL, y) != NB_OK)
            return epoch_fail(pg, nb_last_error());
        if (r->o.augment > 0)
            augment(r, x, n);
        nb_optim_set_lr(r->opt, nb_schedule_lr(&r->sched, (*step)++));
        nb_graph_reset(r->g);
        nb_optim_zero_grad(r->opt);
        nb_tensor *logits = NULL, *loss = NULL;
        if (n > 0) { // a rank gets no samples only in a last batch smaller than the world
            logits = mnist_mlp_forward(r->g, &r->model, x); // (n, classes)
            loss = nb_sparse_cross_entropy_logits(r->g, logits, y, NB_REDUCE_MEAN);
            if (!loss)
                return epoch_fail(pg, nb_graph_error(r->g));
            if (nb_backward(r->g, loss) != NB_OK)
                return epoch_fail(pg, nb_graph_error(r->g));
        }
        // The global batch's mean gradient on every rank (weights: the ranks' sample counts).
        if (r->red && nb_dist_allreduce_grads(r->red, (double)n) != NB_OK)
            return epoch_fail(pg, nb_last_error());
        if (*step == 1 && (r->o.dot || r->o.summary)) {
            char err[512];
            if (mnist_write_tape(r->g, &r->model, x, y, loss, &r->o, err, sizeof err))
                return epoch_fail(pg, err);
        }
        double norm;
        if (r->o.clip > 0 && nb_optim_clip_grad_norm(r->opt, r->o.clip, &norm) != NB_OK) {
            char msg[640];
            snprintf(msg, sizeof msg, "epoch %d, batch %" PRId64 ": %s", pg->epoch, done + 1,
                     nb_last_error());
            return epoch_fail(pg, msg);
        }
        if (nb_optim_step(r->opt) != NB_OK)
            return epoch_fail(pg, nb_last_error());
        const int32_t *labels = nb_tensor_data_i32(y);
        int64_t batch_correct = 0;
        for (int64_t i = 0; i < n; i++)
            batch_correct += mnist_argmax_row(logits, i) == labels[i];
        double l = n > 0 ? nb_tensor_get(loss, 0) : 0;
        if (r->dist) { // the global batch's loss and accuracy, the same on every rank
            double m[2] = {l * (double)n, (double)batch_correct};
            if (nb_dist_allreduce_sum(r->dist, m, 2) != NB_OK)
                return epoch_fail(pg, nb_last_error());
            l = m[0] / (double)count, batch_correct = (int64_t)m[1];
        }
        if (isnan(r->loss0))
            r->loss0 = l;
        double limit = fmax(DIVERGE_BATCH * r->loss0, r->loss0 + DIVERGE_BATCH_ADD);
        if (!isfinite(l) || l > limit) {
            char msg[600], state[400];
            snprintf(msg, sizeof msg,
                     "training diverged in epoch %d, batch %" PRId64 ": loss %g (started at "
                     "%g, limit %g)%s; try a smaller --lr",
                     pg->epoch, done + 1, l, r->loss0, limit, save_state(r, state, sizeof state));
            return epoch_fail(pg, msg);
        }
        loss_sum += l * (double)count;
        correct += batch_correct;
        done++;
        seen += count;
        mnist_progress_update(pg, done, seen, loss_sum / (double)seen);
    }
    mnist_progress_finish(pg);
    *loss_out = loss_sum / (double)seen;
    *acc_out = (double)correct / (double)seen;
    return 0;
}

static int train(run_state *r) {
    const mnist_options *o = &r->o;
    int64_t n_batches = nb_batch_iter_num_batches(r->it);
    int64_t step = r->ts.step;
    mnist_progress pg;
    mnist_progress_init(&pg, o->epochs, n_batches);
    pg.quiet = !nb_dist_is_root(r->dist);
    char err[768];
    int epoch_digits = snprintf(NULL, 0, "%d", o->epochs); // aligns the per-epoch lines
    double t_start = mnist_now();
    double train_seconds = 0;
    // Nothing is written before the first epoch finishes: an existing checkpoint is never
    // replaced by an untrained model. Bad paths were refused before loading the data.
    r->loss0 = NAN;
    r->save_existed = o->save && mnist_file_exists(o->save);
    int first = (int)r->ts.epoch + 1, last = o->epochs;
    if (o->stop_after > 0 && o->stop_after < last)
        last = o->stop_after;
    for (int e = first; e <= last; e++) {
        mnist_progress_epoch(&pg, e);
        double t0 = mnist_now();
        double loss = 0;
        double acc = 0;
        if (train_epoch(r, &pg, &step, &loss, &acc))
            return interrupted ? 130 : 1;
        double t1 = mnist_now();
        train_seconds += t1 - t0;
        if (loss > fmax(DIVERGE_EPOCH * r->loss0, r->loss0 + 1)) {
            char state[400];
            return fail("training diverged: epoch %d mean loss %g, the first batch's was %g%s; "
                        "try a smaller --lr",
                        e, loss, r->loss0, save_state(r, state, sizeof state));
        }
        double val_acc = -1;
        if (r->n_val > 0) { // --distributed: each rank its slice, then the sum
            int64_t off = 0, n = r->n_val;
            nb_dist_slice(r->n_val, nb_dist_rank(r->dist), nb_dist_size(r->dist), &off, &n);
            int64_t ok = n > 0 ? mnist_evaluate(r->eval_g, &r->model, &r->train, r->val_idx + off,
                                                n, NULL, err, sizeof err)
                               : 0;
            if (ok < 0)
                return fail("validation: %s", err);
            double sum = (double)ok;
            if (r->dist && nb_dist_allreduce_sum(r->dist, &sum, 1) != NB_OK)
                return fail("validation: %s", nb_last_error());
            val_acc = sum / (double)r->n_val;
        }
        double secs = mnist_now() - t0;
        r->rows[e - 1] = (epoch_row){e, loss, acc, val_acc, secs};
        printf("epoch %*d/%d  train loss %.6f  train acc %6.2f%%  val acc ", epoch_digits, e,
               o->epochs, loss, 100 * acc);
        if (val_acc >= 0)
            printf("%6.2f%%", 100 * val_acc);
        else
            printf("     -");
        printf("  %.1f s  (%.0f samples/s)\n", secs, (double)r->n_train / (t1 - t0));
        fflush(stdout);
        if (o->csv && write_csv(r, e))
            return 1;
        r->ts.epoch = e;
        r->ts.step = step;
        r->ts.aug_rng = r->aug_rng;
        if (o->save && mnist_checkpoint_save(o->save, &r->model, r->opt, &r->ts) != NB_OK) {
            char state[400];
            return fail("cannot save checkpoint: %s%s", nb_last_error(),
                        save_state(r, state, sizeof state));
        }
        if (o->save)
            r->saved_epoch = e;
        if (interrupted) {
            char state[400];
            fprintf(stderr, "mnist: interrupted after epoch %d%s\n", e,
                    save_state(r, state, sizeof state));
            return 130;
        }
    }
    int ran = last >= first ? last - first + 1 : 0;
    printf("trained %d epochs in %.1f s (%.1f s in all), %.0f samples/s\n", ran, train_seconds,
           mnist_now() - t_start, (double)r->n_train * ran / train_seconds);
    if (r->red) {
        nb_dist_stats st;
        nb_dist_reducer_stats(r->red, &st);
        printf("distributed: %d ranks, gradient all-reduce %.3f ms/step (%.1f%% of training "
               "time, %d bucket(s), %.1f MB/step)\n",
               nb_dist_size(r->dist), 1e3 * st.seconds / (double)(st.calls ? st.calls : 1),
               100 * st.seconds / train_seconds, nb_dist_reducer_buckets(r->red),
               st.bytes / 1e6 / (double)(st.calls ? st.calls : 1));
    }
    if (o->save)
        printf("checkpoint: %s (after epoch %d)\n", o->save, last);
    if (last < o->epochs)
        printf("stopped after epoch %d of %d (--stop-after): continue with --resume %s\n", last,
               o->epochs, o->save ? o->save : "<a --save checkpoint>");
    return 0;
}

// Test accuracy plus the confusion matrix (rows: true class, columns: predicted).
static int report_test(run_state *r) {
    enum { C = NB_MNIST_CLASSES };
    int64_t confusion[C * C] = {0};
    char err[768];
    int64_t ok = mnist_evaluate(r->eval_g, &r->model, &r->test, r->test_idx, r->test.n, confusion,
                                err, sizeof err);
    if (ok < 0)
        return fail("test: %s", err);
    printf("test accuracy: %.2f%% (%" PRId64 "/%" PRId64 ")\n",
           100.0 * (double)ok / (double)r->test.n, ok, r->test.n);
    mnist_print_confusion(confusion, C, r->o.data_dir);
    return 0;
}

static int run(run_state *r) {
    const mnist_options *o = &r->o;
    nb_set_num_threads(o->threads);
    if (!o->eval_only && mnist_check_outputs(o))
        return 1;
    int lrc = load_data(r);
    // --distributed: a rank that cannot read its data stops every rank, each saying so.
    if (r->dist && nb_dist_agree(r->dist, lrc ? NB_ERR_IO : NB_OK, "loading the data") != NB_OK) {
        if (!lrc)
            fail("%s", nb_last_error());
        return 1;
    }
    if (lrc)
        return interrupted ? 130 : 1;
    int64_t features = r->test.rows * r->test.cols;
    if (setup_model(r, features))
        return 1;
    if (interrupted) {
        fprintf(stderr, "mnist: interrupted before training\n");
        return 130;
    }
    char arch[256];
    mnist_mlp_describe(&r->model, arch, sizeof arch);
    printf("data: %s: ", o->data_dir);
    if (!o->eval_only)
        printf("%" PRId64 " train, %" PRId64 " val, ", r->n_train, r->n_val);
    printf("%" PRId64 " test, %" PRId64 "x%" PRId64 "\n", r->test.n, r->test.rows, r->test.cols);
    printf("model: %s %s, %" PRId64 " parameters, %s, threads %d (OpenBLAS %s, wait %s)%s%s\n",
           arch, mnist_act_name(o->act), mnist_mlp_param_count(&r->model), nb_dtype_name(o->dtype),
           nb_get_num_threads(), openblas_get_corename(), mnist_wait_policy(),
           o->load ? ", loaded from " : "", o->load ? o->load : "");
    if (!o->eval_only) {
        printf("%s: batch %" PRId64 ", lr %g (%s", nb_optim_kind_name(o->optim), o->batch, o->lr,
               mnist_schedule_name(o->schedule));
        if (o->warmup > 0)
            printf(", warmup %" PRId64, o->warmup);
        printf(")");
        if (o->optim == NB_OPTIM_SGD || o->optim == NB_OPTIM_RMSPROP)
            printf(", momentum %g", o->momentum);
        printf(", weight decay %g", o->weight_decay);
        if (o->clip > 0)
            printf(", clip %g", o->clip);
        printf(", %d epochs, seed %" PRIu64 "\n", o->epochs, o->seed);
        fflush(stdout);
        if (setup_training(r, features))
            return 1;
        int rc = train(r);
        if (rc)
            return rc; // 1 error, 130 interrupted
    }
    return nb_dist_is_root(r->dist) ? report_test(r) : 0;
}

// --distributed: join the MPI job. Rank 0 alone prints, writes --save / --csv / --dot and
// reads --load / --resume (the others get the state by broadcast).
static int setup_distributed(run_state *r, int *argc, char ***argv) {
    if (r->o.eval_only)
        return fail("--distributed trains; --eval-only runs in one process");
    int rc = dist_cli_join("mnist", argc, argv, r->o.batch, &r->dist);
    if (rc == 0 && !nb_dist_is_root(r->dist)) {
        r->o.save = r->o.csv = r->o.dot = r->o.load = NULL;
        r->o.summary = false;
    }
    return rc;
}

int main(int argc, char **argv) {
    run_state r;
    memset(&r, 0, sizeof r);
    int rc = mnist_parse_args(argc, argv, &r.o);
    if (rc != 0)
        return rc < 0 ? 0 : rc;
    mnist_prepare_runtime(argv, r.o.wait_policy);
    if (r.o.distributed && (rc = setup_distributed(&r, &argc, &argv)) != 0)
        return rc;
    install_signal_handlers();
    rc = run(&r);
    run_free(&r);
    // Output written after MPI_Finalize can be lost by mpirun's forwarding: flush first.
    fflush(stdout);
    fflush(stderr);
    nb_dist_finalize(r.dist);
    return rc;
}
