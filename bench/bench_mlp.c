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
#include <cblas.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
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
} trainer;

// One SGD step. Returns false (after printing why) on any error.
static bool train_step(trainer *t) {
    const int64_t *idx = next_full_batch(t->it, t->o->batch);
    if (nb_dataset_fill_batch(t->ds, idx, t->o->batch, t->x, NULL, t->labels) != NB_OK) {
        fprintf(stderr, "bench_mlp: %s\n", nb_last_error());
        return false;
    }
    if (t->o->replay && t->loss) {
        nb_graph_replay(t->g);
    } else {
        nb_graph_reset(t->g);
        t->loss = forward(t->g, t->m, t->o->n_layers, t->x, t->labels);
    }
    nb_sgd_zero_grad(t->opt);
    if (!t->loss || nb_backward(t->g, t->loss) != NB_OK) {
        fprintf(stderr, "bench_mlp: %s\n", nb_graph_error(t->g));
        return false;
    }
    nb_sgd_step(t->opt);
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
    }
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
