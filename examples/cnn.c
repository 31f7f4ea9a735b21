// cnn: a small convolutional net on Fashion-MNIST (any MNIST-format directory) built from the
// layer part (nabla/nn.h), trained with Adam (or AdamW / SGD with momentum) and a per-step
// cosine (or one-cycle / constant) learning-rate schedule:
//   conv(1 -> c1, 3x3, pad 1) [batch norm] relu max_pool(2)
//   conv(c1 -> c2, 3x3, pad 1) [batch norm] relu max_pool(2)
//   flatten [dropout] linear(c2 7 7 -> hidden) relu [dropout] linear(hidden -> 10)
// One step: fill (batch, 1, 28, 28) pixels and labels -> [random horizontal flips] -> logits ->
// mean sparse cross-entropy -> backward -> optimizer step -> nb_graph_reset (memory kept: a
// steady-state step allocates nothing). After every epoch: one line (train loss and accuracy,
// test accuracy, time, samples/s) and, with --save, a checkpoint holding the model's named
// tensors (PyTorch's state_dict names: "0.weight", "1.running_mean", ...), the optimizer state
// and the run's position, written atomically and never before the first finished epoch, so
// --resume continues a stopped run bit for bit. At the end: test accuracy and confusion matrix.
// The progress bar, output-path checks, runtime settings, checkpoint format and confusion
// matrix are examples/mnist's (mnist/*.c), shared.
// --distributed (under mpirun -np N): data parallel over the ranks, as examples/mnist: each
// rank trains on its slice of every global batch (same shuffled order and flips everywhere),
// the gradients are averaged across ranks, rank 0 alone prints and writes checkpoints, which
// resume on any number of ranks. Batch norm normalises with each rank's own batch statistics
// (PyTorch's DistributedDataParallel without SyncBatchNorm); its running statistics are rank 0's,
// sent to every rank after each epoch, before testing and saving. Dropout masks come from a
// per-rank, per-step stream.
// Exit: 0 done, 1 runtime error (data, checkpoint, I/O, divergence), 2 bad usage,
// 130 interrupted (SIGINT / SIGTERM are checked between steps, so a checkpoint being written
// is finished first).
// Files: cnn/flags.c (command line), cnn/model.c (model, data, evaluation), this file (training
// and main); common/dist_cli.c (the examples' --distributed start-up).
#define _POSIX_C_SOURCE 200809L

#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cnn/cnn.h"
#include "common/dist_cli.h"

volatile sig_atomic_t cnn_interrupted;
static void on_signal(int sig) {
    cnn_interrupted = sig;
}

int cnn_fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    dist_cli_vfail("cnn", fmt, ap);
    va_end(ap);
    return 1;
}

static nb_status load_model(void *ctx, const char *path, char *err, size_t err_size) {
    nb_status st = nb_params_load(ctx, path);
    if (st != NB_OK)
        snprintf(err, err_size, "%s", nb_last_error());
    return st;
}

// Optimizer (no weight decay on biases and norm gains), schedule, batch tensors, shuffling;
// then, with --resume, the checkpoint's model, optimizer state and position.
static int setup_training(run_state *r) {
    const cnn_options *o = &r->o;
    int64_t n = r->train.n, batch = o->batch < n ? o->batch : n;
    nb_optim_config cfg = nb_optim_defaults(o->optim, o->lr);
    cfg.weight_decay = o->weight_decay;
    if (o->optim == NB_OPTIM_SGD)
        cfg.momentum = o->momentum;
    r->opt = nb_params_optim_create(r->ps, cfg, true);
    r->it = nb_batch_iter_create(NULL, n, batch, true, o->seed ^ SHUFFLE_STREAM);
    r->x = nb_tensor_create(NB_F32, 4, (int64_t[]){batch, 1, r->train.rows, r->train.cols});
    r->y = nb_tensor_create(NB_I32, 1, (int64_t[]){batch});
    r->g = nb_graph_create();
    nb_graph_set_retain_grads(r->g, false); // leaves' grads only: op outputs' recycled in backward
    if (!r->opt || !r->it || !r->x || !r->y || !r->g)
        return cnn_fail("%s", nb_last_error());
    nb_graph_set_check_finite(r->g, o->detect_anomaly);
    int64_t total = nb_batch_iter_num_batches(r->it) * o->epochs;
    r->sched = (nb_schedule){.kind = o->schedule, .lr = o->lr, .total = total};
    if (nb_schedule_check(&r->sched) != NB_OK)
        return cnn_fail("schedule: %s", nb_last_error());
    r->ts = (mnist_train_state){
        .total_steps = total, .batch = batch, .n_train = n, .seed = o->seed, .aug_rng = r->rng};
    char err[1024] = "";
    nb_status st = NB_OK;
    mnist_model_io io = {r->names, r->tensors, r->n_tensors, load_model, r->ps};
    if (o->resume && nb_dist_is_root(r->dist)) // --distributed: rank 0 reads, then sends
        st = mnist_checkpoint_resume_model(o->resume, &io, r->opt, &r->ts, err, sizeof err);
    if (r->dist) { // the same model, optimizer state and position on every rank
        if (nb_dist_agree(r->dist, st, "reading the checkpoint") != NB_OK && st == NB_OK)
            return cnn_fail("cannot resume: %s", nb_last_error());
        if (st == NB_OK && (nb_dist_broadcast_params(r->dist, r->ps) != NB_OK ||
                            (o->resume && nb_dist_broadcast_optim(r->dist, r->opt) != NB_OK) ||
                            nb_dist_broadcast_bytes(r->dist, &r->ts, sizeof r->ts) != NB_OK))
            return cnn_fail("--distributed: %s", nb_last_error());
    }
    if (st != NB_OK)
        return cnn_fail("cannot resume: %s", err);
    if (!o->resume)
        return 0;
    if (r->ts.epoch >= o->epochs)
        return cnn_fail("cannot resume: %s holds epoch %" PRId64 " of a run of %d: nothing left",
                        o->resume, r->ts.epoch, o->epochs);
    r->rng = r->ts.aug_rng;
    const int64_t *idx;
    for (int64_t e = 0; e < r->ts.epoch; e++) // epoch k's order depends only on the seed and k
        while (nb_batch_iter_next(r->it, &idx) > 0)
            ;
    printf("resumed from %s after epoch %" PRId64 " (step %" PRId64 ")\n", o->resume, r->ts.epoch,
           r->ts.step);
    return 0;
}

// Mirrors a random half of the global batch's count images left to right: the draws cover
// all of them (the same stream on every rank), x holds images [off, off + n).
static void flip_images(run_state *r, nb_tensor *x, int64_t off, int64_t n, int64_t count) {
    int64_t rows = r->train.rows, cols = r->train.cols;
    float *p = nb_tensor_data_f32(x);
    for (int64_t i = 0; i < count; i++) {
        if (nb_rng_below(&r->rng, 2) == 0 || i < off || i >= off + n)
            continue;
        for (int64_t y = 0; y < rows; y++) {
            float *row = p + ((i - off) * rows + y) * cols;
            for (int64_t a = 0, b = cols - 1; a < b; a++, b--) {
                float t = row[a];
                row[a] = row[b];
                row[b] = t;
            }
        }
    }
}

static int epoch_fail(mnist_progress *pg, const char *fmt, const char *what) {
    mnist_progress_finish(pg);
    return cnn_fail(fmt, pg->epoch, what);
}

// One epoch: mean loss and accuracy over the samples trained on.
static int train_epoch(run_state *r, mnist_progress *pg, double *loss_out, double *acc_out) {
    const int64_t *idx;
    int64_t count, done = 0, seen = 0, correct = 0;
    double loss_sum = 0;
    while ((count = nb_batch_iter_next(r->it, &idx)) > 0) {
        if (cnn_interrupted)
            return epoch_fail(pg, "interrupted in epoch %d%s", "");
        int64_t step = r->ts.step++;
        done++;
        if (count == 1 && r->o.bn) // batch norm needs two samples: skip a last batch of one
            continue;
        // --distributed: this rank's slice [off, off + n) of the global batch (n may be 0).
        int64_t off = 0, n = count, batch_correct = 0;
        nb_dist_slice(count, nb_dist_rank(r->dist), nb_dist_size(r->dist), &off, &n);
        bool full = n == nb_tensor_dim(r->x, 0);
        nb_tensor *x = r->x, *y = r->y;
        if (!full) {
            x = nb_tensor_wrap(NB_F32, 4, (int64_t[]){n, 1, r->train.rows, r->train.cols},
                               nb_tensor_data(r->x));
            y = nb_tensor_wrap(NB_I32, 1, (int64_t[]){n}, nb_tensor_data(r->y));
        }
        nb_status st =
            x && y ? nb_dataset_fill_batch(&r->train, idx + off, n, x, NULL, y) : NB_ERR_NOMEM;
        nb_tensor *loss = NULL, *logits = NULL;
        if (st == NB_OK) {
            if (r->o.flip)
                flip_images(r, x, off, n, count);
            if (r->dist) // masks differ across ranks and steps, whatever the rank count
                nb_rng_seed(&r->drop_rng, (r->o.seed ^ RANDOM_STREAM) +
                                              0x9e3779b97f4a7c15u * (uint64_t)(step + 1) +
                                              (uint64_t)nb_dist_rank(r->dist));
            nb_optim_set_lr(r->opt, nb_schedule_lr(&r->sched, step));
            nb_graph_reset(r->g);
            nb_optim_zero_grad(r->opt); // a rank without samples adds zeros to the all-reduce
            if (n > 0) {
                logits = nb_layer_forward(r->g, r->model, x);
                loss = nb_sparse_cross_entropy_logits(r->g, logits, y, NB_REDUCE_MEAN);
                st = loss && nb_backward(r->g, loss) == NB_OK ? NB_OK : NB_ERR_STATE;
            }
            // Every rank's grads := the global batch's mean gradient (weights: sample counts).
            if (st == NB_OK && r->red && nb_dist_allreduce_grads(r->red, (double)n) != NB_OK)
                st = NB_ERR_STATE;
            if (st == NB_OK)
                st = nb_optim_step(r->opt);
        }
        double l = st == NB_OK && n > 0 ? nb_tensor_get(loss, 0) : 0;
        for (int64_t i = 0; st == NB_OK && i < n; i++)
            batch_correct += mnist_argmax_row(logits, i) == nb_tensor_data_i32(y)[i];
        if (st == NB_OK && r->dist) { // the global batch's loss and accuracy, on every rank
            double m[2] = {l * (double)n, (double)batch_correct};
            st = nb_dist_allreduce_sum(r->dist, m, 2);
            l = m[0] / (double)count, batch_correct = (int64_t)m[1];
        }
        correct += batch_correct;
        if (!full) {
            nb_tensor_destroy(x);
            nb_tensor_destroy(y);
        }
        if (st != NB_OK)
            return epoch_fail(pg, "epoch %d: %s",
                              nb_graph_status(r->g) != NB_OK ? nb_graph_error(r->g)
                                                             : nb_last_error());
        if (isnan(r->loss0))
            r->loss0 = l;
        // As examples/mnist: far beyond batch-to-batch noise, yet caught in the first batches.
        if (!isfinite(l) || l > fmax(1000 * r->loss0, r->loss0 + 100)) {
            char what[96];
            snprintf(what, sizeof what, "loss %g, the first batch's %g", l, r->loss0);
            return epoch_fail(pg, "training diverged in epoch %d (%s); try a smaller --lr", what);
        }
        loss_sum += l * (double)count;
        seen += count;
        mnist_progress_update(pg, done, seen, loss_sum / (double)seen);
    }
    mnist_progress_finish(pg);
    *loss_out = loss_sum / (double)(seen ? seen : 1);
    *acc_out = (double)correct / (double)(seen ? seen : 1);
    return 0;
}

static int train(run_state *r) {
    const cnn_options *o = &r->o;
    mnist_progress pg;
    mnist_progress_init(&pg, o->epochs, nb_batch_iter_num_batches(r->it));
    pg.quiet = !nb_dist_is_root(r->dist);
    int first = (int)r->ts.epoch + 1,
        last = o->stop_after && o->stop_after < o->epochs ? o->stop_after : o->epochs;
    double t_start = mnist_now();
    for (int e = first; e <= last; e++) {
        mnist_progress_epoch(&pg, e);
        double t0 = mnist_now(), loss = 0, acc = 0;
        if (train_epoch(r, &pg, &loss, &acc))
            return cnn_interrupted ? 130 : 1;
        // --distributed: rank 0's batch-norm running statistics everywhere (the parameters
        // are equal already), so every rank tests and would save the same model.
        if (r->dist && nb_dist_broadcast_params(r->dist, r->ps) != NB_OK)
            return cnn_fail("--distributed: %s", nb_last_error());
        double t1 = mnist_now(), test_acc = cnn_evaluate(r, NULL);
        if (test_acc < 0)
            return 1;
        printf("epoch %2d/%d  train loss %.4f  train acc %6.2f%%  test acc %6.2f%%  %.1f s  "
               "(%.0f samples/s)\n",
               e, o->epochs, loss, 100 * acc, 100 * test_acc, mnist_now() - t0,
               (double)r->train.n / (t1 - t0));
        fflush(stdout);
        r->ts.epoch = e;
        r->ts.aug_rng = r->rng;
        mnist_model_io io = {r->names, r->tensors, r->n_tensors, NULL, NULL};
        if (o->save && mnist_checkpoint_save_model(o->save, &io, r->opt, &r->ts) != NB_OK)
            return cnn_fail("cannot save %s: %s%s", o->save, nb_last_error(),
                            r->saved_epoch ? " (it still holds the previous epoch)" : "");
        r->saved_epoch = o->save ? e : 0;
        if (cnn_interrupted) {
            fprintf(stderr, "cnn: interrupted after epoch %d%s%s\n", e,
                    o->save ? "; continue with --resume " : "", o->save ? o->save : "");
            return 130;
        }
    }
    printf("trained %d epochs in %.1f s\n", last - first + 1, mnist_now() - t_start);
    if (r->red) {
        nb_dist_stats st;
        nb_dist_reducer_stats(r->red, &st);
        int64_t calls = st.calls ? st.calls : 1;
        printf("distributed: %d ranks, gradient all-reduce %.3f ms/step (%.1f%% of the time, "
               "%d bucket(s), %.2f MB/step)\n",
               nb_dist_size(r->dist), 1e3 * st.seconds / (double)calls,
               100 * st.seconds / (mnist_now() - t_start), nb_dist_reducer_buckets(r->red),
               st.bytes / 1e6 / (double)calls);
    }
    if (last < o->epochs)
        printf("stopped after epoch %d of %d (--stop-after): continue with --resume %s\n", last,
               o->epochs, o->save);
    return 0;
}

static int run(run_state *r) {
    const cnn_options *o = &r->o;
    if (o->threads)
        nb_set_num_threads(o->threads);
    mnist_options paths = {.data_dir = o->data_dir,
                           .save = o->save,
                           .load = o->load,
                           .resume = o->resume,
                           .overwrite = o->overwrite};
    int rc = !o->eval_only && mnist_check_outputs(&paths) ? 1 : cnn_setup(r);
    // --distributed: a rank that cannot read its data or build the model stops every rank.
    if (r->dist && nb_dist_agree(r->dist, rc ? NB_ERR_IO : NB_OK, "loading the data") != NB_OK &&
        !rc)
        return cnn_fail("%s", nb_last_error());
    if (rc)
        return cnn_interrupted ? 130 : 1;
    printf("data: %s: %" PRId64 " train, %" PRId64 " test, %" PRId64 "x%" PRId64 "\n", o->data_dir,
           r->train.n, r->test.n, r->test.rows, r->test.cols);
    printf("model: conv %" PRId64 "-%" PRId64 ", batch norm %s, dropout %g, hidden %" PRId64
           ", %" PRId64 " parameters, threads %d (wait %s)%s%s\n",
           o->c1, o->c2, o->bn ? "on" : "off", o->dropout, o->hidden,
           nb_params_numel(r->ps, NB_PARAM), nb_get_num_threads(), mnist_wait_policy(),
           o->load ? ", loaded from " : "", o->load ? o->load : "");
    if (!o->eval_only) {
        printf("%s: lr %g (%s), weight decay %g, batch %" PRId64 ", %d epochs, flips %s, seed "
               "%" PRIu64 "\n",
               nb_optim_kind_name(o->optim), o->lr,
               o->schedule == NB_SCHED_COSINE     ? "cosine"
               : o->schedule == NB_SCHED_ONECYCLE ? "onecycle"
                                                  : "constant",
               o->weight_decay, o->batch, o->epochs, o->flip ? "on" : "off", o->seed);
        fflush(stdout);
        if (setup_training(r))
            return 1;
        rc = train(r);
        if (rc)
            return rc;
        if (o->stop_after && o->stop_after < o->epochs)
            return 0;
    }
    int64_t confusion[CLASSES * CLASSES] = {0};
    double acc = cnn_evaluate(r, confusion);
    if (acc < 0)
        return 1;
    printf("test accuracy: %.2f%% (%" PRId64 " images)\n", 100 * acc, r->test.n);
    mnist_print_confusion(confusion, CLASSES, o->data_dir);
    if (o->save)
        printf("checkpoint: %s (after epoch %d)\n", o->save, r->saved_epoch);
    return 0;
}

// --distributed: join the MPI job. Rank 0 alone prints and writes --save, and reads --load /
// --resume (the others get the state by broadcast).
static int setup_distributed(run_state *r, int *argc, char ***argv) {
    int rc = dist_cli_join("cnn", argc, argv, r->o.batch, &r->dist);
    if (rc == 0 && !nb_dist_is_root(r->dist))
        r->o.save = r->o.load = NULL;
    return rc;
}

int main(int argc, char **argv) {
    run_state r;
    memset(&r, 0, sizeof r);
    r.loss0 = NAN;
    mnist_program = "cnn";
    int rc = cnn_parse_args(argc, argv, &r.o);
    if (rc)
        return rc < 0 ? 0 : rc;
    mnist_prepare_runtime(argv, r.o.wait_policy);
    if (r.o.distributed && (rc = setup_distributed(&r, &argc, &argv)) != 0)
        return rc;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGXFSZ, SIG_IGN);
    rc = run(&r);
    cnn_run_free(&r);
    // Output written after MPI_Finalize can be lost by mpirun's forwarding: flush first.
    fflush(stdout);
    fflush(stderr);
    nb_dist_finalize(r.dist);
    return rc;
}
