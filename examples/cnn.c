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
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static const char usage_text[] =
    "usage: cnn [options]\n"
    "  --data DIR          MNIST-format directory (default " MNIST_DEFAULT_DATA ")\n"
    "  --epochs N          training epochs (default 10)\n"
    "  --batch B           mini-batch size (default 64)\n"
    "  --optim NAME        adam | adamw | sgd (momentum 0.9) (default adam)\n"
    "  --lr LR             peak learning rate (default 2e-3 for adam/adamw, 0.05 for sgd)\n"
    "  --schedule NAME     cosine | onecycle | constant (default cosine)\n"
    "  --wd W              weight decay on weights, not biases or norm gains (default 0)\n"
    "  --bn | --no-bn      batch norm after each convolution (default on)\n"
    "  --dropout P         dropout before each linear layer, 0 = off (default 0.25)\n"
    "  --no-flip           no random horizontal flips of training images (default on)\n"
    "  --c1 N, --c2 N      channels of the two convolutions (default 32, 64)\n"
    "  --hidden N          units of the hidden linear layer (default 128)\n"
    "  --limit N           use the first N training images (default all)\n"
    "  --test-limit N      test on the first N test images (default all)\n"
    "  --seed S            initialisation, shuffling, flips and dropout (default 1)\n"
    "  --threads T         OpenMP threads (default: the machine's cores)\n"
    "  --save PATH         checkpoint after every epoch (atomic)\n"
    "  --overwrite         --save may replace an existing file\n"
    "  --load PATH         start from a checkpoint's model; with --eval-only just test it\n"
    "  --resume PATH       continue a stopped run (same flags) from its checkpoint\n"
    "  --stop-after N      stop after epoch N, as if interrupted\n"
    "  --detect-anomaly    name the first op whose output or gradient is NaN / inf\n"
    "  --distributed       data parallel over MPI ranks (mpirun -np N cnn --distributed)\n"
    "  --wait-policy P     OMP_WAIT_POLICY: passive | active | unset (default passive)\n";

static int usage_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("cnn: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs("\n", stderr);
    va_end(ap);
    fputs(usage_text, stderr);
    return 2;
}

// The whole of s is a number in [lo, hi].
static bool parse_int(const char *s, int64_t lo, int64_t hi, int64_t *out) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || errno || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}
static bool parse_real(const char *s, double lo, double hi, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (!*s || *end || errno || !(v >= lo && v <= hi))
        return false;
    *out = v;
    return true;
}

// 0 to run, -1 after --help, 2 after a usage error (printed).
static int parse_args(int argc, char **argv, cnn_options *o) {
    *o = (cnn_options){.data_dir = MNIST_DEFAULT_DATA,
                       .epochs = 10,
                       .batch = 64,
                       .c1 = 32,
                       .c2 = 64,
                       .hidden = 128,
                       .lr = 0,
                       .dropout = 0.25,
                       .optim = NB_OPTIM_ADAM,
                       .schedule = NB_SCHED_COSINE,
                       .bn = true,
                       .flip = true,
                       .seed = 1};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(usage_text, stdout);
            return -1;
        }
        bool *flag = !strcmp(a, "--bn")               ? &o->bn
                     : !strcmp(a, "--overwrite")      ? &o->overwrite
                     : !strcmp(a, "--detect-anomaly") ? &o->detect_anomaly
                     : !strcmp(a, "--eval-only")      ? &o->eval_only
                     : !strcmp(a, "--distributed")    ? &o->distributed
                                                      : NULL;
        if (flag) {
            *flag = true;
            continue;
        }
        if (!strcmp(a, "--no-bn") || !strcmp(a, "--no-flip")) {
            *(a[5] == 'b' ? &o->bn : &o->flip) = false;
            continue;
        }
        if (strncmp(a, "--", 2) != 0)
            return usage_error("unexpected argument '%s'", a);
        static const char *const valued[] = {
            "--data",       "--save",       "--load",    "--resume", "--wait-policy",
            "--epochs",     "--stop-after", "--threads", "--batch",  "--limit",
            "--test-limit", "--c1",         "--c2",      "--hidden", "--seed",
            "--lr",         "--wd",         "--dropout", "--optim",  "--schedule"};
        bool known = false;
        for (size_t k = 0; k < sizeof valued / sizeof *valued; k++)
            known = known || !strcmp(a, valued[k]);
        if (!known)
            return usage_error("unknown option '%s'", a);
        if (i + 1 >= argc)
            return usage_error("%s needs a value", a);
        const char *v = argv[++i];
        int64_t n = 0;
        bool ok = true;
        if (!strcmp(a, "--data"))
            o->data_dir = v;
        else if (!strcmp(a, "--save"))
            o->save = v;
        else if (!strcmp(a, "--load"))
            o->load = v;
        else if (!strcmp(a, "--resume"))
            o->resume = v;
        else if (!strcmp(a, "--wait-policy")) {
            ok = !strcmp(v, "passive") || !strcmp(v, "active") || !strcmp(v, "unset");
            o->wait_policy = v;
        } else if (!strcmp(a, "--epochs"))
            ok = parse_int(v, 1, 10000, &n), o->epochs = (int)n;
        else if (!strcmp(a, "--stop-after"))
            ok = parse_int(v, 1, 10000, &n), o->stop_after = (int)n;
        else if (!strcmp(a, "--threads"))
            ok = parse_int(v, 1, 1024, &n), o->threads = (int)n;
        else if (!strcmp(a, "--batch"))
            ok = parse_int(v, 1, 65536, &o->batch);
        else if (!strcmp(a, "--limit"))
            ok = parse_int(v, 1, INT64_MAX, &o->limit);
        else if (!strcmp(a, "--test-limit"))
            ok = parse_int(v, 1, INT64_MAX, &o->test_limit);
        else if (!strcmp(a, "--c1"))
            ok = parse_int(v, 1, 4096, &o->c1);
        else if (!strcmp(a, "--c2"))
            ok = parse_int(v, 1, 4096, &o->c2);
        else if (!strcmp(a, "--hidden"))
            ok = parse_int(v, 1, 65536, &o->hidden);
        else if (!strcmp(a, "--seed"))
            ok = parse_int(v, 0, INT64_MAX, &n), o->seed = (uint64_t)n;
        else if (!strcmp(a, "--lr"))
            ok = parse_real(v, 1e-12, 1e30, &o->lr);
        else if (!strcmp(a, "--wd"))
            ok = parse_real(v, 0, 10, &o->weight_decay);
        else if (!strcmp(a, "--dropout"))
            ok = parse_real(v, 0, 0.95, &o->dropout);
        else if (!strcmp(a, "--optim")) {
            ok = !strcmp(v, "adam") || !strcmp(v, "adamw") || !strcmp(v, "sgd");
            o->optim = !strcmp(v, "sgd")     ? NB_OPTIM_SGD
                       : !strcmp(v, "adamw") ? NB_OPTIM_ADAMW
                                             : NB_OPTIM_ADAM;
        } else if (!strcmp(a, "--schedule")) {
            ok = !strcmp(v, "cosine") || !strcmp(v, "onecycle") || !strcmp(v, "constant");
            o->schedule = !strcmp(v, "onecycle")   ? NB_SCHED_ONECYCLE
                          : !strcmp(v, "constant") ? NB_SCHED_CONSTANT
                                                   : NB_SCHED_COSINE;
        }
        if (!ok)
            return usage_error("bad value '%s' for %s", v, a);
    }
    if (o->lr == 0)
        o->lr = o->optim == NB_OPTIM_SGD ? 0.05 : 2e-3;
    if (o->optim == NB_OPTIM_SGD)
        o->momentum = 0.9;
    if (o->eval_only && !o->load)
        return usage_error("--eval-only needs --load PATH");
    if (o->resume && o->load)
        return usage_error("--resume and --load exclude each other (a resume loads the model)");
    if (o->eval_only && (o->save || o->resume))
        return usage_error("--eval-only trains nothing: --save and --resume do not apply");
    if (o->stop_after && !o->save)
        return usage_error("--stop-after needs --save PATH (to --resume from)");
    if (o->distributed && o->eval_only)
        return usage_error("--distributed trains; --eval-only runs in one process");
    return 0;
}

static volatile sig_atomic_t interrupted;
static void on_signal(int sig) {
    interrupted = sig;
}

// --distributed with several ranks: this process's rank, named in its error messages.
static int message_rank = -1;

static int fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("cnn: ", stderr);
    if (message_rank >= 0)
        fprintf(stderr, "rank %d: ", message_rank);
    vfprintf(stderr, fmt, ap);
    fputs("\n", stderr);
    va_end(ap);
    return 1;
}

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

static void run_free(run_state *r) {
    nb_dist_reducer_destroy(r->red);
    nb_batch_iter_destroy(r->it);
    nb_optim_destroy(r->opt);
    nb_graph_destroy(r->g);
    nb_graph_destroy(r->eval_g);
    nb_tensor_destroy(r->x);
    nb_tensor_destroy(r->y);
    nb_tensor_destroy(r->xe);
    nb_tensor_destroy(r->ye);
    nb_params_destroy(r->ps);
    nb_layer_destroy(r->model);
    free(r->names);
    free(r->tensors);
    nb_dataset_free(&r->train);
    nb_dataset_free(&r->test);
}

#define ADD(layer)                                                                                 \
    do {                                                                                           \
        if (nb_nn_sequential_add(m, NULL, (layer)) != NB_OK)                                       \
            return NULL;                                                                           \
    } while (0)

// The model as one sequential, children named by position as PyTorch's nn.Sequential.
static nb_layer *build(nb_layer *m, const cnn_options *o, int64_t rows, int64_t cols, nb_rng *init,
                       nb_rng *drop) {
    int64_t ch[3] = {1, o->c1, o->c2};
    for (int b = 0; b < 2; b++) {
        nb_nn_conv2d_options k3 = {.kernel = {3, 3}, .padding = {1, 1}, .no_bias = o->bn};
        ADD(nb_nn_conv2d_create(ch[b], ch[b + 1], k3, NB_F32, init));
        if (o->bn) // its shift makes the convolution's bias redundant
            ADD(nb_nn_batch_norm2d_create(ch[b + 1], 1e-5, 0.1, true, NB_F32));
        ADD(nb_nn_relu_create());
        ADD(nb_nn_max_pool2d_create(2, 2, 0));
    }
    ADD(nb_nn_flatten_create(1, -1));
    if (o->dropout > 0)
        ADD(nb_nn_dropout_create(o->dropout, drop));
    ADD(nb_nn_linear_create(o->c2 * (rows / 4) * (cols / 4), o->hidden, true, NB_F32, init));
    ADD(nb_nn_relu_create());
    if (o->dropout > 0)
        ADD(nb_nn_dropout_create(o->dropout, drop));
    ADD(nb_nn_linear_create(o->hidden, CLASSES, true, NB_F32, init));
    return m;
}

static nb_status load_model(void *ctx, const char *path, char *err, size_t err_size) {
    nb_status st = nb_params_load(ctx, path);
    if (st != NB_OK)
        snprintf(err, err_size, "%s", nb_last_error());
    return st;
}

// --distributed: v[0..n) := their sums over the ranks (counts: exact in float64).
static nb_status dist_sum_counts(nb_dist *d, int64_t *v, int n) {
    for (int k = 0; k < n; k += 64) {
        double buf[64];
        int m = n - k < 64 ? n - k : 64;
        for (int i = 0; i < m; i++)
            buf[i] = (double)v[k + i];
        nb_status st = nb_dist_allreduce_sum(d, buf, m);
        if (st != NB_OK)
            return st;
        for (int i = 0; i < m; i++)
            v[k + i] = (int64_t)buf[i];
    }
    return NB_OK;
}

// Accuracy over the whole test set in eval mode; adds into confusion when not NULL. -1 on
// error (printed). --distributed: each rank tests its slice, the counts are summed.
static double evaluate(run_state *r, int64_t *confusion) {
    int64_t idx[EVAL_CHUNK], tally[1 + CLASSES * CLASSES] = {0}, lo = 0, cnt = r->test.n;
    int64_t *correct = tally, *conf = tally + 1;
    nb_dist_slice(r->test.n, nb_dist_rank(r->dist), nb_dist_size(r->dist), &lo, &cnt);
    nb_status bad = NB_OK;
    nb_layer_train(r->model, false);
    for (int64_t s = lo; s < lo + cnt; s += EVAL_CHUNK) {
        int64_t n = lo + cnt - s < EVAL_CHUNK ? lo + cnt - s : EVAL_CHUNK;
        for (int64_t i = 0; i < n; i++)
            idx[i] = s + i;
        nb_tensor *x = r->xe, *y = r->ye;
        if (n < EVAL_CHUNK) {
            x = nb_tensor_wrap(NB_F32, 4, (int64_t[]){n, 1, r->test.rows, r->test.cols},
                               nb_tensor_data(r->xe));
            y = nb_tensor_wrap(NB_I32, 1, (int64_t[]){n}, nb_tensor_data(r->ye));
        }
        nb_graph_reset(r->eval_g);
        nb_tensor *logits = NULL;
        if (x && y && nb_dataset_fill_batch(&r->test, idx, n, x, NULL, y) == NB_OK)
            logits = nb_layer_forward(r->eval_g, r->model, x);
        for (int64_t i = 0; logits && i < n; i++) {
            int pred = mnist_argmax_row(logits, i), truth = nb_tensor_data_i32(y)[i];
            *correct += pred == truth;
            conf[truth * CLASSES + pred]++;
        }
        if (x != r->xe) {
            nb_tensor_destroy(x);
            nb_tensor_destroy(y);
        }
        if (!logits) {
            fail("evaluating: %s",
                 nb_graph_status(r->eval_g) != NB_OK ? nb_graph_error(r->eval_g) : nb_last_error());
            bad = NB_ERR_STATE;
            break;
        }
    }
    nb_layer_train(r->model, true);
    if (r->dist && (nb_dist_agree(r->dist, bad, "evaluating") != NB_OK ||
                    dist_sum_counts(r->dist, tally, 1 + CLASSES * CLASSES) != NB_OK))
        return bad ? -1 : fail("evaluating: %s", nb_last_error()), -1;
    if (bad)
        return -1;
    for (int k = 0; confusion && k < CLASSES * CLASSES; k++)
        confusion[k] += conf[k];
    return (double)*correct / (double)r->test.n;
}

static int setup(run_state *r) {
    const cnn_options *o = &r->o;
    nb_idx_options io = {.limit = o->test_limit, .cancel = &interrupted};
    nb_idx_options train_io = {.limit = o->limit, .cancel = &interrupted};
    if (!o->eval_only && nb_mnist_load_ex(o->data_dir, "train", &train_io, &r->train) != NB_OK)
        return fail("%s", nb_last_error());
    if (nb_mnist_load_ex(o->data_dir, "t10k", &io, &r->test) != NB_OK)
        return fail("%s", nb_last_error());
    int64_t rows = r->test.rows, cols = r->test.cols;
    if (rows % 4 || cols % 4 || (!o->eval_only && (r->train.rows != rows || r->train.cols != cols)))
        return fail("%s: images must share one size divisible by 4 (two 2x2 poolings); train "
                    "%" PRId64 "x%" PRId64 ", test %" PRId64 "x%" PRId64,
                    o->data_dir, r->train.rows, r->train.cols, rows, cols);
    if (r->test.n_classes > CLASSES || (!o->eval_only && r->train.n_classes > CLASSES))
        return fail("%s: labels go up to %" PRId64 ", this model has %d classes", o->data_dir,
                    r->train.n_classes > r->test.n_classes ? r->train.n_classes : r->test.n_classes,
                    CLASSES);
    nb_rng_seed(&r->init_rng, o->seed);
    nb_rng_seed(&r->rng, o->seed ^ RANDOM_STREAM);
    r->model = nb_nn_sequential_create();
    r->ps = nb_params_create();
    nb_rng *drop = r->dist ? &r->drop_rng : &r->rng;
    if (!r->model || !r->ps || !build(r->model, o, rows, cols, &r->init_rng, drop) ||
        nb_layer_collect(r->model, r->ps, NULL) != NB_OK ||
        (r->dist && !(r->red = nb_dist_reducer_create(r->dist, r->ps, 0))))
        return fail("cannot build the model: %s", nb_last_error());
    int np = nb_params_count(r->ps, NB_PARAM), nbuf = nb_params_count(r->ps, NB_BUFFER);
    r->names = malloc((size_t)(np + nbuf) * sizeof *r->names);
    r->tensors = malloc((size_t)(np + nbuf) * sizeof *r->tensors);
    if (!r->names || !r->tensors)
        return fail("out of memory");
    for (int k = 0; k < np + nbuf; k++) {
        nb_param_kind kind = k < np ? NB_PARAM : NB_BUFFER;
        r->names[k] = nb_params_name(r->ps, kind, k < np ? k : k - np);
        r->tensors[k] = nb_params_tensor(r->ps, kind, k < np ? k : k - np);
    }
    r->n_tensors = np + nbuf;
    if (o->load && nb_params_load(r->ps, o->load) != NB_OK)
        return fail("cannot load %s: %s (--c1, --c2, --hidden and --bn must match the "
                    "checkpoint)",
                    o->load, nb_last_error());
    r->eval_g = nb_graph_create();
    r->xe = nb_tensor_create(NB_F32, 4, (int64_t[]){EVAL_CHUNK, 1, rows, cols});
    r->ye = nb_tensor_create(NB_I32, 1, (int64_t[]){EVAL_CHUNK});
    if (!r->eval_g || !r->xe || !r->ye)
        return fail("%s", nb_last_error());
    nb_graph_set_grad_enabled(r->eval_g, false);
    return 0;
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
    if (!r->opt || !r->it || !r->x || !r->y || !r->g)
        return fail("%s", nb_last_error());
    nb_graph_set_check_finite(r->g, o->detect_anomaly);
    int64_t total = nb_batch_iter_num_batches(r->it) * o->epochs;
    r->sched = (nb_schedule){.kind = o->schedule, .lr = o->lr, .total = total};
    if (nb_schedule_check(&r->sched) != NB_OK)
        return fail("schedule: %s", nb_last_error());
    r->ts = (mnist_train_state){
        .total_steps = total, .batch = batch, .n_train = n, .seed = o->seed, .aug_rng = r->rng};
    char err[1024] = "";
    nb_status st = NB_OK;
    mnist_model_io io = {r->names, r->tensors, r->n_tensors, load_model, r->ps};
    if (o->resume && nb_dist_is_root(r->dist)) // --distributed: rank 0 reads, then sends
        st = mnist_checkpoint_resume_model(o->resume, &io, r->opt, &r->ts, err, sizeof err);
    if (r->dist) { // the same model, optimizer state and position on every rank
        if (nb_dist_agree(r->dist, st, "reading the checkpoint") != NB_OK && st == NB_OK)
            return fail("cannot resume: %s", nb_last_error());
        if (st == NB_OK && (nb_dist_broadcast_params(r->dist, r->ps) != NB_OK ||
                            (o->resume && nb_dist_broadcast_optim(r->dist, r->opt) != NB_OK) ||
                            nb_dist_broadcast_bytes(r->dist, &r->ts, sizeof r->ts) != NB_OK))
            return fail("--distributed: %s", nb_last_error());
    }
    if (st != NB_OK)
        return fail("cannot resume: %s", err);
    if (!o->resume)
        return 0;
    if (r->ts.epoch >= o->epochs)
        return fail("cannot resume: %s holds epoch %" PRId64 " of a run of %d: nothing left",
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
    return fail(fmt, pg->epoch, what);
}

// One epoch: mean loss and accuracy over the samples trained on.
static int train_epoch(run_state *r, mnist_progress *pg, double *loss_out, double *acc_out) {
    const int64_t *idx;
    int64_t count, done = 0, seen = 0, correct = 0;
    double loss_sum = 0;
    while ((count = nb_batch_iter_next(r->it, &idx)) > 0) {
        if (interrupted)
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
            return interrupted ? 130 : 1;
        // --distributed: rank 0's batch-norm running statistics everywhere (the parameters
        // are equal already), so every rank tests and would save the same model.
        if (r->dist && nb_dist_broadcast_params(r->dist, r->ps) != NB_OK)
            return fail("--distributed: %s", nb_last_error());
        double t1 = mnist_now(), test_acc = evaluate(r, NULL);
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
            return fail("cannot save %s: %s%s", o->save, nb_last_error(),
                        r->saved_epoch ? " (it still holds the previous epoch)" : "");
        r->saved_epoch = o->save ? e : 0;
        if (interrupted) {
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
    int rc = !o->eval_only && mnist_check_outputs(&paths) ? 1 : setup(r);
    // --distributed: a rank that cannot read its data or build the model stops every rank.
    if (r->dist && nb_dist_agree(r->dist, rc ? NB_ERR_IO : NB_OK, "loading the data") != NB_OK &&
        !rc)
        return fail("%s", nb_last_error());
    if (rc)
        return interrupted ? 130 : 1;
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
    double acc = evaluate(r, confusion);
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
    if (!(r->dist = nb_dist_init(argc, argv)))
        return fail("--distributed: %s", nb_last_error());
    int size = nb_dist_size(r->dist);
    if (size > 1)
        message_rank = nb_dist_rank(r->dist);
    if (r->o.batch < size) {
        fail("--batch %" PRId64 " (the global batch) is smaller than the %d ranks", r->o.batch,
             size);
        nb_dist_finalize(r->dist);
        return 2;
    }
    if (!nb_dist_is_root(r->dist)) {
        r->o.save = r->o.load = NULL;
        if (!freopen("/dev/null", "w", stdout))
            return fail("cannot redirect stdout");
    }
    return 0;
}

int main(int argc, char **argv) {
    run_state r;
    memset(&r, 0, sizeof r);
    r.loss0 = NAN;
    mnist_program = "cnn";
    int rc = parse_args(argc, argv, &r.o);
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
    run_free(&r);
    // Output written after MPI_Finalize can be lost by mpirun's forwarding: flush first.
    fflush(stdout);
    fflush(stderr);
    nb_dist_finalize(r.dist);
    return rc;
}
