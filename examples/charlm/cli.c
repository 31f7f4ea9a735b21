// charlm's command line (train.h).
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "charlm/train.h"

static void usage(FILE *f) {
    fprintf(f, "usage: charlm [options]\n"
               "  --data DIR        fortune files (default /usr/share/games/fortunes)\n"
               "  --model NAME      transformer (default) or lstm\n"
               "  --epochs N        passes over the training windows (default 5; lstm 3)\n"
               "  --batch B         windows per step (default 32)\n"
               "  --context T       characters per window (default 64)\n"
               "  --width E --heads H --layers L   (default 128, 4, 2)\n"
               "  lstm: --width E (embedding) --hidden H --layers L   (default 64, 256, 1)\n"
               "  --lr X            AdamW peak learning rate (default 3e-3), cosine to 0\n"
               "  --warmup F        warm-up, a fraction of all steps (default 0.02)\n"
               "  --wd X            AdamW weight decay on matrices (default 0.01)\n"
               "  --dropout P       (default 0)\n"
               "  --val F           validation fraction of the windows (default 0.1)\n"
               "  --seed S          (default 1)\n"
               "  --save FILE       checkpoint after every epoch (atomic)\n"
               "  --resume FILE     continue the run saved in FILE (same flags)\n"
               "  --max-minutes M   stop after the epoch that passes M minutes (default: none)\n"
               "  --stop-after N    stop after N epochs (an interrupted run, for --resume)\n"
               "  --sample N        characters to sample at the end (default 400)\n"
               "  --temperature X   (default 0.8)  --top-k K (default 20, 0: all)\n"
               "  --prompt TEXT     start of the sample (default \"Q: \")\n"
               "  --steps N         at most N steps per epoch (default: all windows)\n"
               "  --quiet           no progress bar\n"
               "  --distributed     data parallel over MPI ranks (mpirun -np N charlm ...)\n");
}

static bool num(const char *s, double lo, double hi, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= lo && v <= hi))
        return false;
    *out = v;
    return true;
}

int charlm_parse_args(int argc, char **argv, charlm_opts *o) {
    *o = (charlm_opts){.data = "/usr/share/games/fortunes",
                       .model = "transformer",
                       .prompt = "Q: ",
                       .epochs = -1, // per model, after parsing
                       .sample = 400,
                       .top_k = 20,
                       .batch = 32,
                       .context = 64,
                       .width = -1, // per model, after parsing
                       .heads = 4,
                       .layers = -1,
                       .hidden = 256,
                       .lr = 3e-3,
                       .wd = 0.01,
                       .val_frac = 0.1,
                       .temperature = 0.8,
                       .warmup = 0.02,
                       .seed = 1};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            exit(0);
        }
        if (!strcmp(a, "--quiet") || !strcmp(a, "--distributed")) {
            *(a[2] == 'q' ? &o->quiet : &o->distributed) = true;
            continue;
        }
        static const char *const known[] = {
            "--data",   "--save",        "--resume",     "--prompt", "--model",
            "--epochs", "--batch",       "--context",    "--width",  "--heads",
            "--layers", "--sample",      "--steps",      "--top-k",  "--seed",
            "--lr",     "--wd",          "--dropout",    "--val",    "--temperature",
            "--warmup", "--max-minutes", "--stop-after", "--hidden", NULL};
        bool is_known = false;
        for (int k = 0; known[k]; k++)
            is_known = is_known || !strcmp(a, known[k]);
        if (!is_known) {
            fprintf(stderr, "charlm: unknown option %s (see --help)\n", a);
            return 2;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "charlm: %s needs a value\n", a);
            return 2;
        }
        const char *v = argv[++i];
        double x = 0;
        bool ok = true;
#define INT(name, field, lo, hi)                                                                   \
    else if (!strcmp(a, name)) {                                                                   \
        ok = num(v, lo, hi, &x) && x == floor(x);                                                  \
        o->field = (int64_t)x;                                                                     \
    }
#define DBL(name, field, lo, hi)                                                                   \
    else if (!strcmp(a, name)) {                                                                   \
        ok = num(v, lo, hi, &x);                                                                   \
        o->field = x;                                                                              \
    }
        if (!strcmp(a, "--data"))
            o->data = v;
        else if (!strcmp(a, "--save"))
            o->save = v;
        else if (!strcmp(a, "--resume"))
            o->resume = v;
        else if (!strcmp(a, "--prompt"))
            o->prompt = v;
        else if (!strcmp(a, "--model"))
            o->model = v;
        INT("--epochs", epochs, 0, 100000)
        INT("--batch", batch, 1, 1 << 20)
        INT("--context", context, 1, 1 << 16)
        INT("--width", width, 1, 1 << 16)
        INT("--heads", heads, 1, 1 << 10)
        INT("--layers", layers, 1, CHARLM_MAX_LAYERS)
        INT("--hidden", hidden, 1, 1 << 16)
        INT("--sample", sample, 0, 1 << 20)
        INT("--steps", max_steps, 0, 1e12)
        INT("--stop-after", stop_after, 0, 100000)
        INT("--top-k", top_k, 0, 1 << 20)
        INT("--seed", seed, 0, 4294967295.0)
        DBL("--lr", lr, 1e-12, 10)
        DBL("--wd", wd, 0, 10)
        DBL("--dropout", dropout, 0, 0.99)
        DBL("--val", val_frac, 0.001, 0.5)
        DBL("--temperature", temperature, 1e-3, 100)
        DBL("--warmup", warmup, 0, 1)
        DBL("--max-minutes", max_minutes, 0, 1e6)
        else {
            fprintf(stderr, "charlm: unknown option %s (see --help)\n", a);
            return 2;
        }
        if (!ok) {
            fprintf(stderr, "charlm: bad value '%s' for %s (see --help)\n", v, a);
            return 2;
        }
    }
    bool lstm = !strcmp(o->model, "lstm");
    if (!lstm && strcmp(o->model, "transformer") != 0) {
        fprintf(stderr, "charlm: unknown --model '%s' (transformer or lstm)\n", o->model);
        return 2;
    }
    if (lstm && o->dropout > 0) {
        fprintf(stderr, "charlm: --dropout applies to the transformer only, not --model lstm\n");
        return 2;
    }
    if (o->width < 0)
        o->width = lstm ? 64 : 128;
    if (o->layers < 0)
        o->layers = lstm ? 1 : 2;
    if (o->epochs < 0) // about the same 10 minutes on 2 cores for both
        o->epochs = lstm ? 3 : 5;
    if (!lstm && o->width % o->heads) {
        fprintf(stderr, "charlm: --heads %" PRId64 " does not divide --width %" PRId64 "\n",
                o->heads, o->width);
        return 2;
    }
    return 0;
}
