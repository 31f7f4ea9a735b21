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
// Layout: mnist/setup.c (data, model, optimizer, schedule, --resume), cli.c (flags), model.c
// (MLP, checkpoints, evaluation), progress.c (stderr bar); this file: training loop and main.
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
#include "mnist/train.h"

// From OpenBLAS (linked through nabla); declared here so the example needs no BLAS header.
char *openblas_get_corename(void);

volatile sig_atomic_t mnist_interrupted; // set by SIGINT / SIGTERM

static void on_signal(int sig) {
    mnist_interrupted = sig;
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

int mnist_fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    dist_cli_vfail("mnist", fmt, ap);
    va_end(ap);
    return 1;
}

// A library message; the data loader's already start with "mnist: ".
int mnist_fail_lib(const char *msg) {
    if (!strncmp(msg, "mnist: ", 7))
        msg += 7;
    return mnist_fail("%s", msg);
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
        return mnist_fail("cannot write --csv: %s", nb_last_error());
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
    return mnist_fail("%s", msg);
}

// One epoch over the training indices. Writes the mean loss and accuracy; 0 or 1 (error).
static int train_epoch(run_state *r, mnist_progress *pg, int64_t *step, double *loss_out,
                       double *acc_out) {
    const int64_t *idx;
    int64_t count, done = 0, seen = 0, correct = 0;
    double loss_sum = 0; // Σ per-sample losses, in batch order (deterministic)
    while ((count = nb_batch_iter_next(r->it, &idx)) > 0) {
        if (mnist_interrupted) {
            char msg[512], state[400];
            snprintf(msg, sizeof msg, "mnist_interrupted in epoch %d%s", pg->epoch,
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
            return mnist_interrupted ? 130 : 1;
        double t1 = mnist_now();
        train_seconds += t1 - t0;
        if (loss > fmax(DIVERGE_EPOCH * r->loss0, r->loss0 + 1)) {
            char state[400];
            return mnist_fail(
                "training diverged: epoch %d mean loss %g, the first batch's was %g%s; "
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
                return mnist_fail("validation: %s", err);
            double sum = (double)ok;
            if (r->dist && nb_dist_allreduce_sum(r->dist, &sum, 1) != NB_OK)
                return mnist_fail("validation: %s", nb_last_error());
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
            return mnist_fail("cannot save checkpoint: %s%s", nb_last_error(),
                              save_state(r, state, sizeof state));
        }
        if (o->save)
            r->saved_epoch = e;
        if (mnist_interrupted) {
            char state[400];
            fprintf(stderr, "mnist: mnist_interrupted after epoch %d%s\n", e,
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
        return mnist_fail("test: %s", err);
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
    int lrc = mnist_load_data(r);
    // --distributed: a rank that cannot read its data stops every rank, each saying so.
    if (r->dist && nb_dist_agree(r->dist, lrc ? NB_ERR_IO : NB_OK, "loading the data") != NB_OK) {
        if (!lrc)
            mnist_fail("%s", nb_last_error());
        return 1;
    }
    if (lrc)
        return mnist_interrupted ? 130 : 1;
    int64_t features = r->test.rows * r->test.cols;
    if (mnist_setup_model(r, features))
        return 1;
    if (mnist_interrupted) {
        fprintf(stderr, "mnist: mnist_interrupted before training\n");
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
        if (mnist_setup_training(r, features))
            return 1;
        int rc = train(r);
        if (rc)
            return rc; // 1 error, 130 mnist_interrupted
    }
    return nb_dist_is_root(r->dist) ? report_test(r) : 0;
}

// --distributed: join the MPI job. Rank 0 alone prints, writes --save / --csv / --dot and
// reads --load / --resume (the others get the state by broadcast).
static int setup_distributed(run_state *r, int *argc, char ***argv) {
    if (r->o.eval_only)
        return mnist_fail("--distributed trains; --eval-only runs in one process");
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
    mnist_run_free(&r);
    // Output written after MPI_Finalize can be lost by mpirun's forwarding: flush first.
    fflush(stdout);
    fflush(stderr);
    nb_dist_finalize(r.dist);
    return rc;
}
