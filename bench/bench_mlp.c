// bench_mlp: MLP training throughput on Fashion-MNIST and, interleaved, the GEMM limit.
// The net is 784-h1-...-10, ReLU between layers, sparse softmax cross-entropy from logits
// (mean), plain SGD. Images stay uint8 and each batch is converted to float as it is drawn.
// Modes: "rec" re-records the tape every step (define-by-run); "replay" records the first
// step and then refills x and labels in place and calls nb_graph_replay.
// After `--warmup` steps, `--samples` samples (whole batches; a short last batch of an epoch
// is skipped) are timed. The GEMM limit runs exactly the products of one training step
// (forward X·Wᵀ, dW = dYᵀ·X, dX = dY·W except the first layer's dX) with raw cblas_sgemm for
// the same number of steps, interleaved with training in slices. Peak RSS includes the
// GEMM-limit operands (7 MB for net A at batch 64, 11 MB at 256). Prints one JSON line.
// Besides the totals, each step is timed alone and the JSON has the medians of a training step
// and of a GEMM-limit step: on a loaded machine the totals include every time the process was
// preempted, and for steps much shorter than a scheduler slice (net B's ~130 us) the medians
// mostly not, so their ratio is the steadier figure there (not for net A's milliseconds-long
// steps, most of which a loaded machine interrupts).
// Built a second time as bench_mlp_prof (BENCH_MLP_PROFILE, mlp_prof.c): the same runs with a
// per-phase, per-node, per-GEMM and per-OpenMP-region profile printed before the JSON line, and
// two in-process experiments (MLP_PROF_FUSED=1, MLP_PROF_SERIAL_ZERO=1; see main). In this
// binary the PROF_* hooks are empty.
#include <cblas.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "mlp_prof.h"
#include "nabla.h"

#define MAX_LAYERS 8
#define IN_FEATURES 784
#define CLASSES 10
#define CHUNKS 8

typedef struct {
    int n_layers;                // weight layers
    int64_t dim[MAX_LAYERS + 1]; // dim[0] = 784, dim[n_layers] = 10
    int64_t batch, threads, warmup, samples;
    bool replay;
    const char *data;
    const char *hidden; // as given, for the report
} options;

typedef struct {
    nb_tensor *w[MAX_LAYERS]; // (out, in)
    nb_tensor *b[MAX_LAYERS]; // (out)
} model;

static void usage(void) {
    fprintf(stderr, "usage: bench_mlp --hidden H[,H...] --batch B --threads N --mode rec|replay\n"
                    "                 [--warmup STEPS] [--samples N] [--data DIR]\n");
}

static bool parse(int argc, char **argv, options *o) {
    *o = (options){.batch = 64,
                   .threads = 1,
                   .warmup = 50,
                   .samples = 60000,
                   .data = "/usr/share/datasets/fashion-mnist",
                   .hidden = "512,512"};
    const char *mode = "rec";
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        bool ok = true;
        if (!strcmp(k, "--hidden"))
            o->hidden = v;
        else if (!strcmp(k, "--batch"))
            ok = bu_int(v, 1, 1 << 16, &o->batch);
        else if (!strcmp(k, "--threads"))
            ok = bu_int(v, 1, 256, &o->threads);
        else if (!strcmp(k, "--warmup"))
            ok = bu_int(v, 1, 1 << 20, &o->warmup);
        else if (!strcmp(k, "--samples"))
            ok = bu_int(v, 1, INT64_C(1) << 40, &o->samples);
        else if (!strcmp(k, "--data"))
            o->data = v;
        else if (!strcmp(k, "--mode"))
            mode = v;
        else
            ok = false;
        if (!ok)
            return false;
    }
    if (argc % 2 == 0 || (strcmp(mode, "rec") && strcmp(mode, "replay")))
        return false;
    o->replay = !strcmp(mode, "replay");
    // "512,512" -> dims 784, 512, 512, 10
    char buf[256];
    if (strlen(o->hidden) >= sizeof buf)
        return false;
    strcpy(buf, o->hidden);
    o->dim[0] = IN_FEATURES;
    o->n_layers = 0;
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        if (o->n_layers + 1 >= MAX_LAYERS || !bu_int(tok, 1, 1 << 16, &o->dim[o->n_layers + 1]))
            return false;
        o->n_layers++;
    }
    o->dim[++o->n_layers] = CLASSES;
    return true;
}

static bool model_init(model *m, const options *o, nb_rng *rng) {
    for (int l = 0; l < o->n_layers; l++) {
        m->w[l] = nb_tensor_create(NB_F32, 2, (int64_t[]){o->dim[l + 1], o->dim[l]});
        m->b[l] = nb_tensor_create(NB_F32, 1, (int64_t[]){o->dim[l + 1]});
        if (!m->w[l] || !m->b[l] || nb_init_he_uniform(m->w[l], rng) ||
            nb_tensor_set_requires_grad(m->w[l], true) ||
            nb_tensor_set_requires_grad(m->b[l], true))
            return false;
    }
    return true;
}

// The forward pass up to the scalar loss, recorded on g.
static nb_tensor *forward(nb_graph *g, const model *m, int n_layers, nb_tensor *x,
                          nb_tensor *labels) {
    nb_tensor *h = x;
    for (int l = 0; l < n_layers; l++) {
        h = nb_linear(g, h, m->w[l], m->b[l]);
        if (l + 1 < n_layers)
            h = nb_relu(g, h);
    }
    return nb_sparse_cross_entropy_logits(g, h, labels, NB_REDUCE_MEAN);
}

// Next batch of exactly `batch` indices: the short last batch of an epoch is skipped so a
// replayed tape always sees the shape it recorded.
static const int64_t *next_full_batch(nb_batch_iter *it, int64_t batch) {
    const int64_t *idx;
    for (;;) {
        int64_t n = nb_batch_iter_next(it, &idx);
        if (n == batch)
            return idx;
    }
}

typedef struct {
    const options *o;
    const nb_dataset *ds;
    model *m;
    nb_graph *g;
    nb_sgd *opt;
    nb_batch_iter *it;
    nb_tensor *x, *labels, *loss;
#ifdef BENCH_MLP_PROFILE
    bool fused; // the fused-SGD experiment: w[0] has no grad, see fused_w0
    float lr;
    bool serial_zero; // zero the grads one tensor at a time, serially (the pre-round-4 zero_grad)
#endif
} trainer;

#ifdef BENCH_MLP_PROFILE
// The "fused optimizer" experiment (bench_mlp_prof only): w[0] (h, 784) is left out of the
// optimizer and needs no grad, so zero_grad, backward and the SGD pass skip it; instead its
// update is one GEMM with the weights as C: w[0] = -lr dyᵀ (h, B) x (B, 784) + w[0], where dy is
// the gradient of the first linear's output (node 0 of the tape, written by ReLU's backward).
static void fused_w0(trainer *t) {
    int b = (int)t->o->batch, h = (int)t->o->dim[1], in = (int)t->o->dim[0];
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, h, in, b, -t->lr, prof_node_grad(t->g, 0),
                h, nb_tensor_data_f32(t->x), in, 1.0f, nb_tensor_data_f32(t->m->w[0]), in);
}
#endif

// One SGD step. Returns false (after printing why) on any error.
static bool train_step(trainer *t) {
    PROF_MARK(PM_STEP);
    const int64_t *idx = next_full_batch(t->it, t->o->batch);
    if (nb_dataset_fill_batch(t->ds, idx, t->o->batch, t->x, NULL, t->labels) != NB_OK) {
        fprintf(stderr, "bench_mlp: %s\n", nb_last_error());
        return false;
    }
    PROF_MARK(PM_GATHER);
    if (t->o->replay && t->loss) {
        nb_graph_replay(t->g);
    } else {
        nb_graph_reset(t->g);
        t->loss = forward(t->g, t->m, t->o->n_layers, t->x, t->labels);
    }
    PROF_MARK(PM_REPLAY);
#ifdef BENCH_MLP_PROFILE
    for (int l = 0; t->serial_zero && l < t->o->n_layers; l++) {
        nb_tensor_zero_grad(t->m->w[l]);
        nb_tensor_zero_grad(t->m->b[l]);
    }
    if (!t->serial_zero)
#endif
        nb_sgd_zero_grad(t->opt);
    PROF_MARK(PM_ZERO);
    if (!t->loss || nb_backward(t->g, t->loss) != NB_OK) {
        fprintf(stderr, "bench_mlp: %s\n", nb_graph_error(t->g));
        return false;
    }
    PROF_MARK(PM_BACKWARD);
#ifdef BENCH_MLP_PROFILE
    if (t->fused)
        fused_w0(t);
#endif
    nb_sgd_step(t->opt);
    PROF_MARK(PM_SGD);
    return true;
}

// One operand set per layer for the GEMM limit: x (B, in), w (out, in), y/dy (B, out),
// dw (out, in), dx (B, in).
typedef struct {
    nb_tensor *x[MAX_LAYERS], *w[MAX_LAYERS], *y[MAX_LAYERS], *dy[MAX_LAYERS];
    nb_tensor *dw[MAX_LAYERS], *dx[MAX_LAYERS];
} gemm_set;

static nb_tensor *rand_tensor(int64_t r, int64_t c, nb_rng *rng) {
    nb_tensor *t = nb_tensor_create(NB_F32, 2, (int64_t[]){r, c});
    if (t)
        nb_init_uniform(t, rng, -1, 1);
    return t;
}

static bool gemm_init(gemm_set *s, const options *o, nb_rng *rng) {
    for (int l = 0; l < o->n_layers; l++) {
        int64_t in = o->dim[l], out = o->dim[l + 1], b = o->batch;
        s->x[l] = rand_tensor(b, in, rng);
        s->w[l] = rand_tensor(out, in, rng);
        s->y[l] = rand_tensor(b, out, rng);
        s->dy[l] = rand_tensor(b, out, rng);
        s->dw[l] = rand_tensor(out, in, rng);
        s->dx[l] = rand_tensor(b, in, rng);
        if (!s->x[l] || !s->w[l] || !s->y[l] || !s->dy[l] || !s->dw[l] || !s->dx[l])
            return false;
    }
    return true;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}
static double median(double *v, int64_t n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static void gemm_free(gemm_set *s, int n_layers) {
    for (int l = 0; l < n_layers; l++) {
        nb_tensor_destroy(s->x[l]);
        nb_tensor_destroy(s->w[l]);
        nb_tensor_destroy(s->y[l]);
        nb_tensor_destroy(s->dy[l]);
        nb_tensor_destroy(s->dw[l]);
        nb_tensor_destroy(s->dx[l]);
    }
}

// The matrix products of one training step and nothing else (beta = 0 throughout).
static void gemm_step(gemm_set *s, const options *o) {
    PROF_MARK(PM_LIMIT);
    int b = (int)o->batch;
    for (int l = 0; l < o->n_layers; l++) {
        int in = (int)o->dim[l], out = (int)o->dim[l + 1];
        float *x = nb_tensor_data_f32(s->x[l]), *w = nb_tensor_data_f32(s->w[l]);
        float *dy = nb_tensor_data_f32(s->dy[l]);
        // y (B, out) = x (B, in) · wᵀ
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, b, out, in, 1.0f, x, in, w, in, 0.0f,
                    nb_tensor_data_f32(s->y[l]), out);
        // dw (out, in) = dyᵀ (out, B) · x (B, in)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, out, in, b, 1.0f, dy, out, x, in, 0.0f,
                    nb_tensor_data_f32(s->dw[l]), in);
        if (l > 0) // dx (B, in) = dy (B, out) · w (out, in); the input needs no gradient
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, b, in, out, 1.0f, dy, out, w, in,
                        0.0f, nb_tensor_data_f32(s->dx[l]), in);
    }
    PROF_MARK(PM_LIMIT_END);
}

int main(int argc, char **argv) {
    options o;
    if (!parse(argc, argv, &o)) {
        usage();
        return 2;
    }
    bu_count_allocations(); // before any library object exists
    nb_set_num_threads((int)o.threads);
    nb_dataset ds = {0};
    if (nb_mnist_load(o.data, "train", &ds) != NB_OK) {
        fprintf(stderr, "bench_mlp: %s\n", nb_last_error());
        return 1;
    }
    nb_rng rng;
    nb_rng_seed(&rng, 42);
    model m = {0};
    trainer t = {.o = &o, .ds = &ds, .m = &m};
    nb_tensor *params[2 * MAX_LAYERS];
    if (!model_init(&m, &o, &rng)) {
        fprintf(stderr, "bench_mlp: %s\n", nb_last_error());
        return 1;
    }
    for (int l = 0; l < o.n_layers; l++) {
        params[2 * l] = m.w[l];
        params[2 * l + 1] = m.b[l];
    }
    t.g = nb_graph_create();
    nb_graph_set_retain_grads(t.g, false); // leaves' grads only: op outputs' recycled in backward
    t.opt = nb_sgd_create(params, 2 * o.n_layers, (nb_sgd_config){.lr = 0.01});
    t.it = nb_batch_iter_create(NULL, ds.n, o.batch, true, 7);
    t.x = nb_tensor_create(NB_F32, 2, (int64_t[]){o.batch, IN_FEATURES});
    t.labels = nb_tensor_create(NB_I32, 1, (int64_t[]){o.batch});
    if (!t.g || !t.opt || !t.it || !t.x || !t.labels) {
        fprintf(stderr, "bench_mlp: %s\n", nb_last_error());
        return 1;
    }

    gemm_set gs = {0};
    if (!gemm_init(&gs, &o, &rng)) {
        fprintf(stderr, "bench_mlp: %s\n", nb_last_error());
        return 1;
    }
    for (int64_t s = 0; s < o.warmup; s++)
        if (!train_step(&t))
            return 1;
#ifdef BENCH_MLP_PROFILE
    // MLP_PROF_FUSED=1: a second trainer runs the fused-SGD experiment after each limit slice;
    // MLP_PROF_SERIAL_ZERO=1: the same trainer runs a slice more with the grads zeroed serially,
    // tensor by tensor (an in-process A/B of nb_sgd_zero_grad). Hooks are off in both; otherwise
    // they are on in every other slice (the rest measure the step as bench_mlp runs it).
    const char *fused_env = getenv("MLP_PROF_FUSED"), *zero_env = getenv("MLP_PROF_SERIAL_ZERO");
    bool fused_mode = fused_env && !strcmp(fused_env, "1") && o.replay;
    bool zero_mode = zero_env && !strcmp(zero_env, "1") && !fused_mode;
    model mf = {0};
    trainer tf = {.o = &o, .ds = &ds, .m = &mf, .fused = true, .lr = 0.01f};
    if (fused_mode) {
        nb_rng rf;
        nb_rng_seed(&rf, 42);
        if (!model_init(&mf, &o, &rf) || nb_tensor_set_requires_grad(mf.w[0], false))
            return 1;
        nb_tensor *pf[2 * MAX_LAYERS];
        int np = 0;
        pf[np++] = mf.b[0];
        for (int l = 1; l < o.n_layers; l++) {
            pf[np++] = mf.w[l];
            pf[np++] = mf.b[l];
        }
        tf.g = nb_graph_create();
        tf.opt = nb_sgd_create(pf, np, (nb_sgd_config){.lr = 0.01});
        tf.it = nb_batch_iter_create(NULL, ds.n, o.batch, true, 7);
        tf.x = nb_tensor_create(NB_F32, 2, (int64_t[]){o.batch, IN_FEATURES});
        tf.labels = nb_tensor_create(NB_I32, 1, (int64_t[]){o.batch});
        if (!tf.g || !tf.opt || !tf.it || !tf.x || !tf.labels)
            return 1;
        prof_variant(1);
        for (int64_t s = 0; s < o.warmup; s++)
            if (!train_step(&tf))
                return 1;
        prof_variant(0);
    }
#endif
    for (int s = 0; s < 10; s++)
        gemm_step(&gs, &o);
    // Training and the GEMM limit alternate in CHUNKS slices, so drift of a shared machine
    // hits both alike and their ratio survives it.
    int64_t steps = (o.samples + o.batch - 1) / o.batch;
    int64_t allocs = 0, done = 0;
    double train_s = 0, gemm_s = 0;
    double *step_s = malloc((size_t)steps * 2 * sizeof *step_s); // per step: training, limit
    if (!step_s) {
        fprintf(stderr, "bench_mlp: out of memory\n");
        return 1;
    }
    for (int c = 0; c < CHUNKS; c++) {
        int64_t n_steps = steps * (c + 1) / CHUNKS - steps * c / CHUNKS;
#ifdef BENCH_MLP_PROFILE
        prof_set(t.g, !fused_mode && !zero_mode && o.replay && c % 2 == 0);
#endif
        int64_t allocs0 = bu_allocations();
        double t0 = bu_now(), ts = t0;
        for (int64_t s = 0; s < n_steps; s++) {
            if (!train_step(&t))
                return 1;
            double te = bu_now();
            step_s[done + s] = te - ts;
            ts = te;
        }
        double t1 = ts;
        allocs += bu_allocations() - allocs0;
        for (int64_t s = 0; s < n_steps; s++) {
            gemm_step(&gs, &o);
            double te = bu_now();
            step_s[steps + done + s] = te - ts;
            ts = te;
        }
        gemm_s += ts - t1;
        train_s += t1 - t0;
        done += n_steps;
#ifdef BENCH_MLP_PROFILE
        prof_variant(fused_mode ? 1 : 2);
        t.serial_zero = zero_mode;
        for (int64_t s = 0; (fused_mode || zero_mode) && s < n_steps; s++)
            if (!train_step(fused_mode ? &tf : &t))
                return 1;
        t.serial_zero = false;
        prof_variant(0);
#endif
    }
#ifdef BENCH_MLP_PROFILE
    prof_set(t.g, false);
    prof_report(stdout, (int)o.threads);
    if (fused_mode)
        printf("# fused variant: loss %.4f (the unfused trainer's is in the JSON line)\n",
               nb_tensor_get(tf.loss, 0));
#endif
    double step_med = median(step_s, steps), limit_med = median(step_s + steps, steps);
    free(step_s);
    double rss = bu_max_rss_mib();
    double loss = nb_tensor_get(t.loss, 0);

    double n = (double)(steps * o.batch);
    printf("{\"bench\": \"mlp\", \"impl\": \"nabla-%s\", \"hidden\": \"%s\", \"batch\": %" PRId64
           ", \"threads\": %" PRId64 ", \"samples\": %.0f, \"samples_per_s\": %.1f, "
           "\"limit_samples_per_s\": %.1f, \"allocs_per_step\": %.3f, \"max_rss_mib\": %.1f, "
           "\"loss\": %.4f, \"step_median_us\": %.2f, \"limit_step_median_us\": %.2f}\n",
           o.replay ? "replay" : "rec", o.hidden, o.batch, o.threads, n, n / train_s, n / gemm_s,
           (double)allocs / (double)steps, rss, loss, 1e6 * step_med, 1e6 * limit_med);
    gemm_free(&gs, o.n_layers);
    for (int l = 0; l < o.n_layers; l++) {
        nb_tensor_destroy(m.w[l]);
        nb_tensor_destroy(m.b[l]);
    }
    nb_tensor_destroy(t.x);
    nb_tensor_destroy(t.labels);
    nb_batch_iter_destroy(t.it);
    nb_sgd_destroy(t.opt);
    nb_graph_destroy(t.g);
    nb_dataset_free(&ds);
    return isfinite(loss) ? 0 : 1;
}
