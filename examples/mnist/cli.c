// mnist example: the command line. Every value is parsed strictly (the whole string must be a
// number in range); any problem prints one line naming the flag, then the usage, and gives 2.
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mnist.h"

static const char *const act_names[MNIST_ACT_COUNT] = {
    [MNIST_RELU] = "relu",
    [MNIST_TANH] = "tanh",
    [MNIST_SIGMOID] = "sigmoid",
    [MNIST_GELU] = "gelu",
    [MNIST_LEAKY_RELU] = "leaky_relu",
    [MNIST_ELU] = "elu",
    [MNIST_SILU] = "silu",
    [MNIST_SOFTPLUS] = "softplus",
};

const char *mnist_act_name(mnist_act a) {
    return (unsigned)a < MNIST_ACT_COUNT ? act_names[a] : "?";
}

static const char *const schedule_names[MNIST_SCHED_COUNT] = {"cosine", "constant", "step",
                                                              "onecycle"};

const char *mnist_schedule_name(mnist_schedule s) {
    return (unsigned)s < MNIST_SCHED_COUNT ? schedule_names[s] : "?";
}

static void usage(FILE *f) {
    fprintf(
        f,
        "usage: mnist [options]\n"
        "Trains a multi-layer perceptron on an MNIST-format directory (train-images-idx3-ubyte,\n"
        "train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, any of them\n"
        "may be .gz) and reports the test accuracy and confusion matrix.\n"
        "\n"
        "  --data DIR           dataset directory [" MNIST_DEFAULT_DATA "]\n"
        "  --hidden W,W,...     hidden layer widths, input side first; \"\" or none for softmax\n"
        "                       regression [256,128]\n"
        "  --activation NAME    relu|tanh|sigmoid|gelu|leaky_relu|elu|silu|softplus [relu]\n"
        "  --epochs N           passes over the training set [20]\n"
        "  --batch N            mini-batch size [64]\n"
        "  --optim NAME         sgd|adam|adamw|rmsprop [sgd]\n"
        "  --lr X               peak learning rate [0.05 for sgd, 0.001 otherwise]\n"
        "  --schedule NAME      per-step lr: cosine (decays to 0 over the run)|constant|step\n"
        "                       (x0.1 at 50%% and 75%%)|onecycle (up over 30%%, then down) "
        "[cosine]\n"
        "  --warmup N           linear warmup from lr/10 over the first N steps [0]\n"
        "  --momentum X         momentum in [0, 1) for sgd and rmsprop [0.9 sgd, 0 rmsprop]\n"
        "  --weight-decay X     weight decay on weights (not biases): L2 for sgd, adam, rmsprop,\n"
        "                       decoupled for adamw [0; adamw 0.01]; --wd X is the same\n"
        "  --clip X             clip the gradients' global L2 norm to X (0 = off) [0]\n"
        "  --val N              validation samples carved from train (0 allowed) [5000]\n"
        "  --limit N            use only the first N training samples [all]\n"
        "  --seed N             seed for init, split and shuffling [1]\n"
        "  --threads N          OpenMP + OpenBLAS threads, 0 = all cores [2]\n"
        "  --dtype f32|f64      floating-point type [f32]\n"
        "  --save PATH          safetensors checkpoint, rewritten (atomically) after every\n"
        "                       finished epoch; never a dataset file, link or special file\n"
        "  --overwrite          let --save / --csv replace an existing file (without it, only\n"
        "                       --save equal to --load, continuing that checkpoint, may)\n"
        "  --load PATH          start from (or with --eval-only, evaluate) a checkpoint\n"
        "  --eval-only          only evaluate the --load checkpoint on the test set\n");
    // Two literals: C99 compilers need only support 4095 characters in one.
    fprintf(
        f,
        "  --distributed        data-parallel training on the ranks of mpirun -np N: --batch is\n"
        "                       the global batch, split over the ranks; rank 0 prints, writes\n"
        "                       and alone reads --load / --resume (use --threads 1 per core)\n"
        "  --resume PATH        continue the run whose --save checkpoint is PATH: parameters,\n"
        "                       optimizer state, step, epoch and random streams, bit for bit\n"
        "                       (give the same flags as that run)\n"
        "  --stop-after N       stop after epoch N (as if interrupted; finish with --resume)\n"
        "  --csv PATH           per-epoch metrics: epoch,train_loss,train_acc,val_acc,seconds\n"
        "  --augment S          shift each training image by a random offset in [-S, S] pixels\n"
        "                       per axis (0 = off, at most 4) [0]\n"
        "  --detect-anomaly     check every op output and gradient for NaN/Inf and name the op\n"
        "                       and source line of the first one (slower)\n"
        "  --dot PATH           Graphviz picture of the first training step's tape (ops, shapes,\n"
        "                       parameters, value and gradient statistics): dot -Tpng PATH\n"
        "  --summary            print a table of that tape (ops, shapes, parameters, bytes)\n"
        "  --wait-policy P      OpenMP threads waiting for work: passive (sleep at once; robust\n"
        "                       on a busy machine), active (spin), unset (libgomp's default);\n"
        "                       default passive, or OMP_WAIT_POLICY when set\n"
        "  --max-data-mb N      refuse a dataset split whose images exceed N MiB [1024]\n"
        "  --max-model-mb N     refuse a model whose weights, gradients and optimizer state "
        "exceed\n"
        "                       N MiB [1024]\n"
        "  --help               this text\n"
        "The architecture flags (--hidden, --activation, --dtype) must match a loaded checkpoint.\n"
        "Exit status: 0 done, 1 runtime error (data, checkpoint, I/O), 2 bad usage,\n"
        "130 interrupted (SIGINT/SIGTERM; the checkpoint keeps the last finished epoch).\n"
        "Training stops with exit 1, saving nothing more, when the loss becomes NaN/Inf or far\n"
        "exceeds its starting value (divergence: try a smaller --lr).\n");
}

static int bad(const char *flag, const char *value, const char *why) {
    if (value)
        fprintf(stderr, "mnist: bad value '%s' for %s: %s\n", value, flag, why);
    else
        fprintf(stderr, "mnist: %s: %s\n", flag, why);
    usage(stderr);
    return 2;
}

// The whole of s is a base-10 integer in [lo, hi].
static bool parse_i64(const char *s, int64_t lo, int64_t hi, int64_t *v) {
    char *end;
    errno = 0;
    long long x = strtoll(s, &end, 10);
    if (errno || end == s || *end != '\0' || x < lo || x > hi)
        return false;
    *v = (int64_t)x;
    return true;
}

// The whole of s is a finite number in [lo, hi] (hi_open: strictly below hi).
static bool parse_f64(const char *s, double lo, double hi, bool hi_open, double *v) {
    char *end;
    errno = 0;
    double x = strtod(s, &end);
    if (errno || end == s || *end != '\0' || !isfinite(x) || x < lo || x > hi ||
        (hi_open && x == hi))
        return false;
    *v = x;
    return true;
}

// "512,256" -> {512, 256}; "" or "none" -> no hidden layer.
static bool parse_hidden(const char *s, mnist_options *o) {
    o->n_hidden = 0;
    if (!*s || !strcmp(s, "none"))
        return true;
    char buf[32];
    while (true) {
        const char *comma = strchr(s, ',');
        size_t len = comma ? (size_t)(comma - s) : strlen(s);
        if (len == 0 || len >= sizeof buf || o->n_hidden == MNIST_MAX_HIDDEN)
            return false;
        memcpy(buf, s, len);
        buf[len] = '\0';
        if (!parse_i64(buf, 1, MNIST_MAX_WIDTH, &o->hidden[o->n_hidden++]))
            return false;
        if (!comma)
            return true;
        s = comma + 1;
    }
}

// Tuned on Fashion-MNIST with 2 cores: the MLP 784-256-128-10 reaches 89.7% test accuracy
// (seeds 1 and 2: 89.76%, 89.66%) in 20 epochs; 512,256 costs twice as much for ~89.3%.
static void defaults(mnist_options *o) {
    memset(o, 0, sizeof *o);
    o->data_dir = MNIST_DEFAULT_DATA;
    o->n_hidden = 2;
    o->hidden[0] = 256;
    o->hidden[1] = 128;
    o->act = MNIST_RELU;
    o->epochs = 20;
    o->batch = 64;
    o->optim = NB_OPTIM_SGD;
    o->lr = 0; // set after parsing, from --optim
    o->weight_decay = 0;
    o->schedule = MNIST_SCHED_COSINE;
    o->val = 5000;
    o->limit = 0;
    o->seed = 1;
    o->threads = 2;
    o->dtype = NB_F32;
    o->max_data_mb = 1024;
    o->max_model_mb = 1024;
}

int mnist_parse_args(int argc, char **argv, mnist_options *o) {
    defaults(o);
    bool wd_set = false, momentum_set = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return -1;
        }
        if (!strcmp(a, "--eval-only")) {
            o->eval_only = true;
            continue;
        }
        if (!strcmp(a, "--detect-anomaly")) {
            o->detect_anomaly = true;
            continue;
        }
        if (!strcmp(a, "--summary")) {
            o->summary = true;
            continue;
        }
        if (!strcmp(a, "--overwrite")) {
            o->overwrite = true;
            continue;
        }
        if (!strcmp(a, "--distributed")) {
            o->distributed = true;
            continue;
        }
        static const char *const valued[] = {
            "--data",        "--hidden",       "--activation", "--epochs",       "--batch",
            "--lr",          "--schedule",     "--momentum",   "--weight-decay", "--val",
            "--limit",       "--seed",         "--threads",    "--dtype",        "--save",
            "--load",        "--csv",          "--augment",    "--dot",          "--wait-policy",
            "--max-data-mb", "--max-model-mb", "--optim",      "--wd",           "--warmup",
            "--clip",        "--resume",       "--stop-after",
        };
        bool known = false;
        for (size_t k = 0; k < sizeof valued / sizeof valued[0]; k++)
            known = known || !strcmp(a, valued[k]);
        if (!known)
            return bad(a, NULL, "unknown option");
        if (i + 1 >= argc)
            return bad(a, NULL, "missing value");
        const char *v = argv[++i];
        int64_t n;
        const char **path = !strcmp(a, "--data")     ? &o->data_dir
                            : !strcmp(a, "--save")   ? &o->save
                            : !strcmp(a, "--load")   ? &o->load
                            : !strcmp(a, "--csv")    ? &o->csv
                            : !strcmp(a, "--dot")    ? &o->dot
                            : !strcmp(a, "--resume") ? &o->resume
                                                     : NULL;
        if (path) {
            if (!*v)
                return bad(a, v, "empty path");
            *path = v;
        } else if (!strcmp(a, "--hidden")) {
            if (!parse_hidden(v, o))
                return bad(a, v, "need comma-separated widths in [1, 65536], at most 16");
        } else if (!strcmp(a, "--activation")) {
            int k = 0;
            while (k < MNIST_ACT_COUNT && strcmp(v, act_names[k]))
                k++;
            if (k == MNIST_ACT_COUNT)
                return bad(a, v, "unknown activation");
            o->act = (mnist_act)k;
        } else if (!strcmp(a, "--wait-policy")) {
            if (strcmp(v, "passive") && strcmp(v, "active") && strcmp(v, "unset"))
                return bad(a, v, "need passive, active or unset");
            o->wait_policy = v;
        } else if (!strcmp(a, "--schedule")) {
            int k = 0;
            while (k < MNIST_SCHED_COUNT && strcmp(v, schedule_names[k]))
                k++;
            if (k == MNIST_SCHED_COUNT)
                return bad(a, v, "need cosine, constant, step or onecycle");
            o->schedule = (mnist_schedule)k;
        } else if (!strcmp(a, "--optim")) {
            o->optim = nb_optim_kind_from_name(v);
            if (o->optim != NB_OPTIM_SGD && o->optim != NB_OPTIM_ADAM &&
                o->optim != NB_OPTIM_ADAMW && o->optim != NB_OPTIM_RMSPROP)
                return bad(a, v, "need sgd, adam, adamw or rmsprop");
        } else if (!strcmp(a, "--warmup")) {
            if (!parse_i64(v, 0, INT32_MAX, &o->warmup))
                return bad(a, v, "need an integer >= 0");
        } else if (!strcmp(a, "--stop-after")) {
            if (!parse_i64(v, 1, 1000000, &n))
                return bad(a, v, "need an integer >= 1");
            o->stop_after = (int)n;
        } else if (!strcmp(a, "--clip")) {
            if (!parse_f64(v, 0, 1e12, false, &o->clip))
                return bad(a, v, "need a number >= 0");
        } else if (!strcmp(a, "--dtype")) {
            if (!strcmp(v, "f32"))
                o->dtype = NB_F32;
            else if (!strcmp(v, "f64"))
                o->dtype = NB_F64;
            else
                return bad(a, v, "need f32 or f64");
        } else if (!strcmp(a, "--lr")) {
            if (!parse_f64(v, 0, 1e6, false, &o->lr) || o->lr <= 0)
                return bad(a, v, "need a number in (0, 1e6]");
        } else if (!strcmp(a, "--momentum")) {
            if (!parse_f64(v, 0, 1, true, &o->momentum))
                return bad(a, v, "need a number in [0, 1)");
            momentum_set = true;
        } else if (!strcmp(a, "--weight-decay") || !strcmp(a, "--wd")) {
            if (!parse_f64(v, 0, 1e6, false, &o->weight_decay))
                return bad(a, v, "need a number in [0, 1e6]");
            wd_set = true;
        } else if (!strcmp(a, "--seed")) {
            char *end;
            errno = 0;
            unsigned long long s = strtoull(v, &end, 10);
            if (errno || end == v || *end != '\0' || v[0] == '-' || v[0] == ' ')
                return bad(a, v, "need an integer in [0, 18446744073709551615]");
            o->seed = (uint64_t)s;
        } else if (!strcmp(a, "--epochs")) {
            if (!parse_i64(v, 1, 1000000, &n))
                return bad(a, v, "need an integer in [1, 1000000]");
            o->epochs = (int)n;
        } else if (!strcmp(a, "--threads")) {
            if (!parse_i64(v, 0, 4096, &n))
                return bad(a, v, "need an integer in [0, 4096]");
            o->threads = (int)n;
        } else if (!strcmp(a, "--batch")) {
            if (!parse_i64(v, 1, INT32_MAX, &o->batch))
                return bad(a, v, "need an integer in [1, 2147483647]");
        } else if (!strcmp(a, "--augment")) {
            if (!parse_i64(v, 0, MNIST_MAX_AUGMENT, &o->augment))
                return bad(a, v, "need an integer in [0, 4]");
        } else if (!strcmp(a, "--max-data-mb") || !strcmp(a, "--max-model-mb")) {
            if (!parse_i64(v, 1, MNIST_MAX_BUDGET_MB,
                           a[6] == 'd' ? &o->max_data_mb : &o->max_model_mb))
                return bad(a, v, "need an integer in [1, 1048576] (MiB)");
        } else if (!strcmp(a, "--limit")) {
            if (!parse_i64(v, 1, INT32_MAX, &o->limit))
                return bad(a, v, "need an integer in [1, 2147483647]");
        } else { // --val
            if (!parse_i64(v, 0, INT32_MAX, &o->val))
                return bad(a, v, "need an integer in [0, 2147483647]");
        }
    }
    if (o->eval_only && !o->load)
        return bad("--eval-only", NULL, "needs --load PATH");
    if (o->limit > 0 && o->val >= o->limit)
        return bad("--val", NULL, "must be smaller than --limit (no training samples left)");
    if (o->resume && (o->load || o->eval_only))
        return bad("--resume", NULL, "cannot be combined with --load or --eval-only");
    if (momentum_set && o->optim != NB_OPTIM_SGD && o->optim != NB_OPTIM_RMSPROP)
        return bad("--momentum", NULL, "applies to sgd and rmsprop only");
    // PyTorch's defaults where the flag was not given; SGD keeps the tuned 0.05 and 0.9.
    if (o->lr == 0)
        o->lr = o->optim == NB_OPTIM_SGD ? 0.05 : 1e-3;
    if (!momentum_set)
        o->momentum = o->optim == NB_OPTIM_SGD ? 0.9 : 0;
    if (!wd_set)
        o->weight_decay = o->optim == NB_OPTIM_ADAMW ? 1e-2 : 0;
    return 0;
}
