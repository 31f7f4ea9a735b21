// charlm: a GPT-style character-level transformer (examples/charlm/model.c) or, with --model
// lstm, an LSTM (examples/charlm/lstm.c) trained through the tape on the text of Debian's
// fortunes package. Per epoch it prints the train and validation loss in bits per character;
// a progress bar runs on stderr. --save writes an atomic checkpoint (weights, the vocabulary,
// AdamW's state and the run's position) after every epoch, --resume continues from one, and the
// run ends by sampling text (temperature, top-k, seeded).
//   charlm [--data DIR] [--epochs N] [--save FILE] [--resume FILE] [--sample N] ...
// --distributed (under mpirun -np N): data parallel over the ranks, as examples/mnist: each rank
// trains on its slice of every global batch of windows (the same shuffled order everywhere), the
// gradients are averaged across ranks, the losses summed; rank 0 alone prints, saves and
// samples; a checkpoint resumes on any number of ranks. Dropout masks come from a per-rank,
// per-step stream.
// Exit status: 0 done, 1 runtime error (data, checkpoint, training), 2 usage error.
#define _POSIX_C_SOURCE 200809L // clock_gettime, isatty, fileno

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "charlm/charlm.h"
#include "common/dist_cli.h"

typedef struct opts {
    const char *data, *save, *resume, *prompt, *model;
    int epochs, sample, top_k, stop_after;
    int64_t max_steps; // per epoch, 0: all (for quick runs and tests)
    int64_t batch, context, width, heads, layers, hidden;
    double lr, wd, dropout, val_frac, temperature, warmup, max_minutes;
    uint64_t seed;
    bool quiet, distributed;
} opts;

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

static int parse(int argc, char **argv, opts *o) {
    *o = (opts){.data = "/usr/share/games/fortunes",
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

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

// CPU time of the process, all threads.
static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

// The progress bar: one redrawn line on a terminal (10 times a second), a line per tenth of
// the epoch otherwise.
static void progress(bool tty, int epoch, int epochs, int64_t done, int64_t total, double tok_s,
                     double bits, int *tenth) {
    if (tty) {
        char bar[25];
        for (int i = 0; i < 24; i++)
            bar[i] = i < done * 24 / total ? '#' : '.';
        bar[24] = 0;
        fprintf(stderr,
                "\repoch %d/%d [%s] %" PRId64 "/%" PRId64 "  %.0f tok/s  %.3f bits/char\033[K",
                epoch, epochs, bar, done, total, tok_s, bits);
    } else {
        if (done * 10 < *tenth * total)
            return;
        while (done * 10 >= *tenth * total)
            (*tenth)++;
        fprintf(stderr, "epoch %d/%d  %" PRId64 "/%" PRId64 "  %.0f tok/s  %.3f bits/char\n", epoch,
                epochs, done, total, tok_s, bits);
    }
    fflush(stderr);
}

typedef struct run {
    opts o;
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
} run;

static int64_t charlm_steps_per_epoch(const run *r) {
    int64_t n = r->n_train / r->o.batch;
    return r->o.max_steps > 0 && r->o.max_steps < n ? r->o.max_steps : n;
}

// The learning rate at step s: linear warm-up, then cosine to 0 at the last step.
static double lr_at(const run *r, int64_t s) {
    double w = r->o.warmup * (double)r->total_steps;
    if (s < w)
        return r->o.lr * (double)(s + 1) / w;
    double t = (double)(s - w) / fmax(1.0, (double)r->total_steps - w);
    return r->o.lr * 0.5 * (1 + cos(3.14159265358979323846 * fmin(t, 1.0)));
}

// Mean loss (bits per character) over windows list[0..n) in batches, without gradients.
static int eval_bits(run *r, const int64_t *list, int64_t n, double *bits) {
    nb_layer_train(r->model, false);
    double sum = 0;
    int64_t count = 0, b = r->o.batch;
    for (int64_t i = 0; i + b <= n; i += b) {
        nb_graph_reset(r->g);
        nb_graph_set_grad_enabled(r->g, false);
        if (nb_text_fill_batch(&r->txt, r->o.context, list + i + r->off, r->rows, r->x, r->y) !=
            NB_OK)
            return 1;
        nb_tensor *yf = r->yflat;
        nb_tensor *loss = nb_sparse_cross_entropy_logits(
            r->g, nb_layer_forward(r->g, r->model, r->x), yf, NB_REDUCE_MEAN);
        if (!loss) {
            fprintf(stderr, "charlm: %s\n", nb_graph_error(r->g));
            return 1;
        }
        // --distributed: this rank's share of the batch's summed loss (rows of b windows)
        sum +=
            r->dist ? nb_tensor_get(loss, 0) * (double)r->rows / (double)b : nb_tensor_get(loss, 0);
        count++;
    }
    nb_graph_set_grad_enabled(r->g, true);
    nb_layer_train(r->model, true);
    if (r->dist && nb_dist_allreduce_sum(r->dist, &sum, 1) != NB_OK) {
        fprintf(stderr, "charlm: %s\n", nb_last_error());
        return 1;
    }
    *bits = count ? sum / (double)count / log(2.0) : (double)NAN;
    return 0;
}

// ---- checkpoints: the named parameters, "vocab" (int32 code points), the optimizer's state and
// "train.state" float64 (4): version, finished epochs, steps, total steps.
#define MAX_T 512
static nb_status save_ckpt(run *r) {
    const char *names[MAX_T];
    nb_tensor *ts[MAX_T];
    int n = 0;
    for (int i = 0; i < nb_params_count(r->params, NB_PARAM); i++) {
        names[n] = nb_params_name(r->params, NB_PARAM, i);
        ts[n++] = nb_params_tensor(r->params, NB_PARAM, i);
    }
    const char *const *on;
    nb_tensor *const *ot;
    int k = nb_optim_state_export(r->opt, &on, &ot);
    for (int i = 0; i < k && n < MAX_T - 2; i++)
        names[n] = on[i], ts[n++] = ot[i];
    double st[4] = {1, r->epoch, (double)r->step, (double)r->total_steps};
    nb_tensor *ts_state = nb_tensor_wrap(NB_F64, 1, (int64_t[]){4}, st);
    names[n] = "vocab", ts[n++] = r->vocab;
    names[n] = "train.state", ts[n++] = ts_state;
    nb_status s = nb_save_safetensors(r->o.save, names, ts, n);
    nb_tensor_destroy(ts_state);
    return s;
}

static nb_status state_loader(void *ctx, const char *const *names, nb_tensor *const *ts, int n) {
    return nb_load_safetensors(ctx, names, ts, n);
}

static int resume(run *r) {
    const char *path = r->o.resume;
    nb_safetensors *f = NULL;
    nb_status s = nb_safetensors_open(path, &f);
    if (s != NB_OK) {
        fprintf(stderr, "charlm: --resume: %s\n", nb_last_error());
        return 1;
    }
    // Another model's checkpoint (the transformer's has no LSTM weights, and the reverse) is
    // refused by name before its tensors' shapes are compared.
    bool saved_lstm = nb_safetensors_find(f, "lstm.weight_ih_l0", NULL, NULL, NULL);
    // The transformer's position table (pos_emb.weight, (context, width)) fixes the longest
    // window it can read: a run with longer windows is refused here, naming both sizes, rather
    // than as a shape mismatch deep in the load.
    int pdt = 0, pnd = 0;
    int64_t pshape[NB_MAX_DIMS] = {0};
    bool has_pos = nb_safetensors_find(f, "pos_emb.weight", &pdt, &pnd, pshape);
    nb_safetensors_close(f);
    if (saved_lstm != !strcmp(r->o.model, "lstm")) {
        fprintf(stderr, "charlm: --resume: %s was written by --model %s, not --model %s\n", path,
                saved_lstm ? "lstm" : "transformer", r->o.model);
        return 1;
    }
    if (!saved_lstm && has_pos && pnd == 2 && pshape[0] != r->o.context) {
        fprintf(stderr,
                "charlm: --resume: %s: its position embedding pos_emb.weight is (%" PRId64
                ", %" PRId64 "), a table of %" PRId64 " positions, but --context %" PRId64
                " windows are %" PRId64 " characters%s: resume with --context %" PRId64 "\n",
                path, pshape[0], pshape[1], pshape[0], r->o.context, r->o.context,
                r->o.context > pshape[0] ? " (T longer than the position table)" : "", pshape[0]);
        return 1;
    }
    // The vocabulary first: a checkpoint of another corpus is refused before anything changes.
    nb_tensor *saved = nb_tensor_create(NB_I32, 1, (int64_t[]){r->txt.vocab.size});
    const char *vn = "vocab";
    s = nb_load_safetensors(path, &vn, &saved, 1);
    if (s == NB_ERR_SHAPE || s == NB_OK) {
        // a size mismatch: read it at its own size for nb_vocab_check's message
        if (s == NB_OK)
            s = nb_vocab_check(&r->txt.vocab, saved);
        else
            s = NB_ERR_FORMAT, fprintf(stderr,
                                       "charlm: --resume: %s has a vocabulary of another size "
                                       "than this corpus's %d symbols: not the same data\n",
                                       path, r->txt.vocab.size);
    }
    nb_tensor_destroy(saved);
    if (s != NB_OK) {
        if (s != NB_ERR_FORMAT || !strstr(nb_last_error(), "another size"))
            fprintf(stderr, "charlm: --resume: %s: %s\n", path, nb_last_error());
        return 1;
    }
    double st[4];
    nb_tensor *tst = nb_tensor_wrap(NB_F64, 1, (int64_t[]){4}, st);
    const char *sn = "train.state";
    s = nb_load_safetensors(path, &sn, &tst, 1);
    nb_tensor_destroy(tst);
    if (s != NB_OK || st[0] != 1 || st[3] != (double)r->total_steps) {
        fprintf(stderr, "charlm: --resume: %s: %s\n", path,
                s != NB_OK ? nb_last_error()
                           : "written by a run with other flags (steps per run differ): resume "
                             "with the flags of that run");
        return 1;
    }
    if ((s = nb_params_load(r->params, path)) != NB_OK ||
        (s = nb_optim_state_import(r->opt, state_loader, (void *)(uintptr_t)path)) != NB_OK) {
        fprintf(stderr, "charlm: --resume: %s\n", nb_last_error());
        return 1;
    }
    r->epoch = (int)st[1];
    r->step = (int64_t)st[2];
    printf("resumed %s at epoch %d, step %" PRId64 "\n", path, r->epoch, r->step);
    return 0;
}

// Samples n characters after the prompt: softmax(logits / temperature) over the k likeliest.
static int sample_text(run *r) {
    const opts *o = &r->o;
    int64_t cap = (int64_t)strlen(o->prompt) + o->sample + 1;
    int32_t *ids = malloc((size_t)cap * sizeof *ids);
    double *p = malloc((size_t)r->txt.vocab.size * sizeof *p);
    char *buf = malloc((size_t)cap * 4 + 1);
    if (!ids || !p || !buf)
        return free(ids), free(p), free(buf), 1;
    int64_t n = nb_vocab_encode(&r->txt.vocab, o->prompt, strlen(o->prompt), ids, cap);
    if (n < 0) {
        fprintf(stderr, "charlm: --prompt: %s\n", nb_last_error());
        return free(ids), free(p), free(buf), 1;
    }
    if (n == 0)
        ids[n++] = 0;
    nb_rng rng;
    nb_rng_seed(&rng, o->seed + 1000);
    nb_layer_train(r->model, false);
    int64_t V = r->txt.vocab.size, start = n;
    for (int s = 0; s < o->sample; s++) {
        int64_t t = n < o->context ? n : o->context;
        nb_graph_reset(r->g);
        nb_graph_set_grad_enabled(r->g, false);
        nb_tensor *x = nb_tensor_wrap(NB_I32, 2, (int64_t[]){1, t}, ids + n - t);
        nb_tensor *logits = nb_layer_forward(r->g, r->model, x);
        if (!logits) {
            fprintf(stderr, "charlm: sampling: %s\n", nb_graph_error(r->g));
            nb_tensor_destroy(x);
            return free(ids), free(p), free(buf), 1;
        }
        const float *lr = nb_tensor_data_f32(logits) + (t - 1) * V;
        // keep the top k: the k-th largest logit is the threshold
        double thr = -(double)INFINITY;
        if (o->top_k > 0 && o->top_k < V) {
            for (int64_t i = 0; i < V; i++)
                p[i] = lr[i];
            for (int k = 0; k < o->top_k; k++) { // partial selection, V is small
                int64_t best = -1;
                for (int64_t i = 0; i < V; i++)
                    if (p[i] != -(double)INFINITY && (best < 0 || p[i] > p[best]))
                        best = i;
                thr = p[best];
                p[best] = -(double)INFINITY;
            }
        }
        double mx = -(double)INFINITY, sum = 0;
        for (int64_t i = 0; i < V; i++)
            if ((double)lr[i] >= thr && (double)lr[i] > mx)
                mx = (double)lr[i];
        for (int64_t i = 0; i < V; i++) {
            p[i] = (double)lr[i] >= thr ? exp(((double)lr[i] - mx) / o->temperature) : 0.0;
            sum += p[i];
        }
        double u = nb_rng_uniform(&rng) * sum, c = 0;
        int64_t pick = V - 1;
        for (int64_t i = 0; i < V; i++) {
            c += p[i];
            if (u < c && p[i] > 0) {
                pick = i;
                break;
            }
        }
        ids[n++] = (int32_t)pick;
        nb_tensor_destroy(x);
    }
    nb_vocab_decode(&r->txt.vocab, ids, n, buf, (size_t)cap * 4 + 1);
    (void)start;
    printf("--- sample (temperature %.2f, top-k %d, seed %" PRIu64 ") ---\n%s\n---\n",
           o->temperature, o->top_k, o->seed, buf);
    free(ids), free(p), free(buf);
    return 0;
}

static int train(run *r) {
    const opts *o = &r->o;
    int64_t steps_per_epoch = charlm_steps_per_epoch(r);
    bool tty = !o->quiet && isatty(fileno(stderr)) == 1;
    double t_start = now();
    int64_t *order = malloc((size_t)r->n_train * sizeof *order);
    if (!order)
        return 1;
    for (; r->epoch < o->epochs; r->epoch++) {
        // The epoch's order depends only on (seed, epoch): a resumed run draws the same one.
        nb_rng er;
        nb_rng_seed(&er, o->seed * 1000003u + (uint64_t)r->epoch);
        memcpy(order, r->train, (size_t)r->n_train * sizeof *order);
        for (int64_t i = r->n_train - 1; i > 0; i--) {
            int64_t j = (int64_t)nb_rng_below(&er, (uint64_t)i + 1), t = order[i];
            order[i] = order[j], order[j] = t;
        }
        double t0 = now(), c0 = cpu_now(), sum = 0;
        int tenth = 1;
        for (int64_t s = 0; s < steps_per_epoch; s++) {
            nb_graph_reset(r->g);
            if (r->dist) // masks differ across ranks and steps, whatever the rank count
                nb_rng_seed(&r->drop_rng, o->seed * 0x9e3779b97f4a7c15u +
                                              (uint64_t)r->step * 4099u +
                                              (uint64_t)nb_dist_rank(r->dist));
            if (nb_text_fill_batch(&r->txt, o->context, order + s * o->batch + r->off, r->rows,
                                   r->x, r->y) != NB_OK) {
                fprintf(stderr, "charlm: %s\n", nb_last_error());
                return free(order), 1;
            }
            nb_tensor *yf = r->yflat;
            nb_tensor *loss = nb_sparse_cross_entropy_logits(
                r->g, nb_layer_forward(r->g, r->model, r->x), yf, NB_REDUCE_MEAN);
            nb_optim_zero_grad(r->opt);
            if (!loss || nb_backward(r->g, loss) != NB_OK) {
                fprintf(stderr, "charlm: training step %" PRId64 ": %s\n", r->step,
                        nb_graph_error(r->g));
                return free(order), 1;
            }
            double l = nb_tensor_get(loss, 0);
            // --distributed: the global batch's mean gradient and loss on every rank.
            if (r->dist) {
                l *= (double)r->rows / (double)o->batch;
                if (nb_dist_allreduce_grads(r->red, (double)r->rows) != NB_OK ||
                    nb_dist_allreduce_sum(r->dist, &l, 1) != NB_OK) {
                    fprintf(stderr, "charlm: %s\n", nb_last_error());
                    return free(order), 1;
                }
            }
            if (!isfinite(l)) {
                fprintf(stderr, "charlm: the loss diverged (%g) at step %" PRId64 "\n", l, r->step);
                return free(order), 1;
            }
            sum += l;
            nb_optim_set_lr(r->opt, lr_at(r, r->step));
            nb_optim_step(r->opt);
            r->step++;
            if (!o->quiet) {
                double el = now() - t0;
                if (!tty || s + 1 == steps_per_epoch || ((s & 15) == 0))
                    progress(tty, r->epoch + 1, o->epochs, s + 1, steps_per_epoch,
                             el > 0 ? (double)((s + 1) * o->batch * o->context) / el : 0,
                             sum / (double)(s + 1) / log(2.0), &tenth);
            }
        }
        if (tty)
            fputs("\r\033[K", stderr);
        double secs = now() - t0, csecs = cpu_now() - c0, vbits = (double)NAN;
        if (eval_bits(r, r->val, r->n_val, &vbits))
            return free(order), 1;
        // tok/s of wall time, and per CPU-second of the process (all threads): on a shared
        // machine the second, times the thread count, estimates the quiet rate.
        double toks = (double)(steps_per_epoch * o->batch * o->context);
        printf("epoch %d/%d  train %.3f bits/char  val %.3f bits/char  %.0f tok/s  (%.0f tok per "
               "CPU-s)  %.0f s\n",
               r->epoch + 1, o->epochs, sum / (double)steps_per_epoch / log(2.0), vbits,
               toks / secs, toks / csecs, now() - t_start);
        fflush(stdout);
        if (o->save) {
            r->epoch++; // the checkpoint counts this epoch as finished
            nb_status s = save_ckpt(r);
            r->epoch--;
            if (s != NB_OK) {
                fprintf(stderr, "charlm: --save: %s\n", nb_last_error());
                return free(order), 1;
            }
        }
        if (o->stop_after > 0 && r->epoch + 1 >= o->stop_after) {
            r->epoch++;
            printf("stopping after epoch %d (--stop-after)\n", r->epoch);
            break;
        }
        bool out_of_time = o->max_minutes > 0 && now() - t_start > 60 * o->max_minutes;
        if (r->dist && nb_dist_broadcast_bytes(r->dist, &out_of_time, sizeof out_of_time) != NB_OK)
            return free(order), fprintf(stderr, "charlm: %s\n", nb_last_error()), 1;
        if (out_of_time) { // rank 0's clock decides for all
            r->epoch++;
            printf("stopping: --max-minutes %.3g reached\n", o->max_minutes);
            break;
        }
    }
    free(order);
    return 0;
}

// --distributed: join the MPI job; this rank's rows of every global batch. Rank 0 alone prints,
// saves and samples, and reads --resume (the others get the state by broadcast).
static int dist_join(run *r, int *argc, char ***argv) {
    int rc = dist_cli_join("charlm", argc, argv, r->o.batch, &r->dist);
    if (rc)
        return rc;
    nb_dist_slice(r->o.batch, nb_dist_rank(r->dist), nb_dist_size(r->dist), &r->off, &r->rows);
    if (!nb_dist_is_root(r->dist))
        r->o.save = NULL, r->o.sample = 0, r->o.quiet = true;
    return 0;
}

// --distributed: rank 0 reads --resume; then every rank gets its parameters, optimizer state
// and position (after a model fingerprint check: another corpus or --width on a rank fails).
static int dist_start(run *r) {
    nb_status st = r->o.resume && nb_dist_is_root(r->dist) && resume(r) ? NB_ERR_IO : NB_OK;
    if (nb_dist_agree(r->dist, st, "reading the checkpoint") != NB_OK) {
        if (st == NB_OK)
            fprintf(stderr, "charlm: --resume: %s\n", nb_last_error());
        return 1;
    }
    int64_t pos[2] = {r->epoch, r->step};
    if (nb_dist_broadcast_params(r->dist, r->params) != NB_OK ||
        (r->o.resume && nb_dist_broadcast_optim(r->dist, r->opt) != NB_OK) ||
        nb_dist_broadcast_bytes(r->dist, pos, sizeof pos) != NB_OK) {
        fprintf(stderr, "charlm: rank %d: --distributed: %s\n", nb_dist_rank(r->dist),
                nb_last_error());
        return 1;
    }
    r->epoch = (int)pos[0], r->step = pos[1];
    return 0;
}

int main(int argc, char **argv) {
    run r = {0};
    int rc = parse(argc, argv, &r.o);
    if (rc)
        return rc;
    const opts *o = &r.o;
    r.rows = o->batch;
    bool agreed = false;      // --distributed: the ranks' setups compared (nb_dist_agree)
    charlm_model *tfm = NULL; // the transformer (dropout's rng), NULL for --model lstm
    if (o->distributed && (rc = dist_join(&r, &argc, &argv)) != 0)
        return nb_dist_finalize(r.dist), rc;
    rc = 1;
    if (o->save && nb_check_output_path(o->save) != NB_OK) {
        fprintf(stderr, "charlm: --save: %s\n", nb_last_error());
        goto done;
    }
    if (nb_text_load_dir(o->data, NULL, &r.txt) != NB_OK) {
        fprintf(stderr, "charlm: %s\n", nb_last_error());
        goto done;
    }
    int64_t w = nb_text_windows(&r.txt, o->context);
    r.train = malloc((size_t)(w > 0 ? w : 1) * sizeof *r.train);
    r.val = malloc((size_t)(w > 0 ? w : 1) * sizeof *r.val);
    if (!r.train || !r.val)
        goto done;
    if (nb_text_split(&r.txt, o->context, o->val_frac, o->seed, r.train, &r.n_train, r.val,
                      &r.n_val) != NB_OK) {
        fprintf(stderr, "charlm: %s: %s\n", o->data, nb_last_error());
        goto done;
    }
    if (r.n_train < o->batch || r.n_val < o->batch) {
        fprintf(stderr,
                "charlm: %s: %" PRId64 " training and %" PRId64 " validation windows of %" PRId64
                " characters: fewer than one batch of %" PRId64 "\n",
                o->data, r.n_train, r.n_val, o->context, o->batch);
        goto done;
    }
    nb_rng_seed(&r.rng, o->seed);
    if (!strcmp(o->model, "lstm")) {
        r.model = charlm_lstm_create(r.txt.vocab.size, o->width, o->hidden, o->layers, &r.rng);
    } else {
        charlm_model *m = tfm =
            charlm_create((charlm_config){r.txt.vocab.size, o->context, o->width, o->heads,
                                          o->layers, o->dropout},
                          &r.rng);
        r.model = m ? &m->base : NULL;
    }
    r.params = nb_params_create();
    r.g = nb_graph_create();
    r.x = nb_tensor_create(NB_I32, 2, (int64_t[]){r.rows, o->context});
    r.y = nb_tensor_create(NB_I32, 2, (int64_t[]){r.rows, o->context});
    if (r.y)
        r.yflat = nb_tensor_wrap(NB_I32, 1, (int64_t[]){r.rows * o->context}, nb_tensor_data(r.y));
    r.vocab = nb_vocab_to_tensor(&r.txt.vocab);
    if (!r.model || !r.params || !r.g || !r.x || !r.y || !r.yflat || !r.vocab ||
        nb_layer_collect(r.model, r.params, NULL) != NB_OK) {
        fprintf(stderr, "charlm: %s\n", nb_last_error());
        goto done;
    }
    nb_optim_config cfg = nb_optim_defaults(NB_OPTIM_ADAMW, o->lr);
    cfg.weight_decay = o->wd;
    r.opt = nb_params_optim_create(r.params, cfg, true);
    if (!r.opt || (r.dist && !(r.red = nb_dist_reducer_create(r.dist, r.params, 0)))) {
        fprintf(stderr, "charlm: %s\n", nb_last_error());
        goto done;
    }
    if (r.dist) { // a rank that could not read the corpus or build the model stops them all
        if (tfm)
            tfm->rng = &r.drop_rng;
        agreed = true;
        if (nb_dist_agree(r.dist, NB_OK, "loading the data") != NB_OK) {
            fprintf(stderr, "charlm: %s\n", nb_last_error());
            goto done;
        }
    }
    r.total_steps = (int64_t)o->epochs * charlm_steps_per_epoch(&r);
    printf("charlm (%s): %" PRId64 " characters, vocabulary %d, %" PRId64 " train / %" PRId64
           " val windows of %" PRId64 "; %" PRId64 " parameters; %d epochs of %" PRId64 " steps\n",
           o->model, r.txt.n, r.txt.vocab.size, r.n_train, r.n_val, o->context,
           nb_params_numel(r.params, NB_PARAM), o->epochs, charlm_steps_per_epoch(&r));
    fflush(stdout);
    if (r.dist ? dist_start(&r) : o->resume && resume(&r))
        goto done;
    if (train(&r))
        goto done;
    if (r.red) {
        nb_dist_stats st;
        nb_dist_reducer_stats(r.red, &st);
        printf(
            "distributed: %d ranks, gradient all-reduce %.3f ms/step, %d bucket(s), %.2f MB/step\n",
            nb_dist_size(r.dist), 1e3 * st.seconds / (double)(st.calls ? st.calls : 1),
            nb_dist_reducer_buckets(r.red), st.bytes / 1e6 / (double)(st.calls ? st.calls : 1));
    }
    if (o->sample > 0 && sample_text(&r))
        goto done;
    rc = 0;
done:
    if (r.dist && !agreed) // this rank failed before the others compared their setups
        nb_dist_agree(r.dist, NB_ERR_IO, "loading the data");
    nb_dist_reducer_destroy(r.red);
    nb_optim_destroy(r.opt);
    nb_params_destroy(r.params);
    nb_layer_destroy(r.model);
    nb_graph_destroy(r.g);
    nb_tensor_destroy(r.x), nb_tensor_destroy(r.yflat), nb_tensor_destroy(r.y);
    nb_tensor_destroy(r.vocab);
    free(r.train), free(r.val);
    nb_text_free(&r.txt);
    fflush(stdout); // output written after MPI_Finalize can be lost by mpirun's forwarding
    fflush(stderr);
    nb_dist_finalize(r.dist);
    return rc;
}
