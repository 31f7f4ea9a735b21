// cnn's command line (usage in usage_text; cnn.h).
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cnn/cnn.h"

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

int cnn_parse_args(int argc, char **argv, cnn_options *o) {
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
