// bench_cnn: one training step of examples/cnn's default model, float32, batch 64 (--batch):
//   conv(1 -> 32, 3x3, pad 1) batch_norm relu max_pool(2)
//   conv(32 -> 64, 3x3, pad 1) batch_norm relu max_pool(2)
//   flatten dropout(0.25) linear(3136 -> 128) relu dropout(0.25) linear(128 -> 10)
// mean sparse cross-entropy from logits, backward, Adam (lr 1e-3). The step is what the
// example does (reset, record, backward, optimizer step) on a batch of random images and
// labels made once; bench/torch_cnn.py runs the same model and step in PyTorch.
// Also timed, interleaved with the steps in slices: the step's GEMMs alone (the GEMM limit):
// both convolutions as im2col GEMMs per sample (y = w col, dw += dy colᵀ, and for conv2
// dcol = wᵀ dy) and both linear layers (X Wᵀ, dW = dYᵀ X, dX = dY W) through cblas_sgemm on
// ready-made buffers; limit / step is the GEMM share of the step. Heap allocations per
// steady-state step are counted through nb_set_allocator.
// Usage: bench_cnn [--threads T] [--batch B] [--steps S] [--reps R] [--hidden H (default 128:
// the width of the hidden linear layer)]. One JSON line per
// thread count (both when --threads is not given).
#include <cblas.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "nabla.h"

#define C1 32
#define C2 64
#define CLASSES 10
#define DROPOUT 0.25

// Width of the hidden linear layer (examples/cnn's 128; --hidden, for the scaling sweep).
static int64_t hidden = 128;

typedef struct {
    nb_tensor *w1, *b1, *g1, *h1, *rm1, *rv1; // conv1 weight, bias; batch norm 1 gain, shift, stats
    nb_tensor *w2, *b2, *g2, *h2, *rm2, *rv2;
    nb_tensor *f1w, *f1b, *f2w, *f2b; // linear layers (out, in), (out)
} cnn;

static nb_tensor *param(int ndim, const int64_t *shape, nb_rng *rng, double bound, double fill) {
    nb_tensor *t = nb_tensor_create(NB_F32, ndim, shape);
    if (!t)
        return NULL;
    nb_status st = bound > 0 ? nb_init_uniform(t, rng, -bound, bound) : nb_tensor_fill(t, fill);
    if (st != NB_OK || nb_tensor_set_requires_grad(t, true) != NB_OK) {
        nb_tensor_destroy(t);
        return NULL;
    }
    return t;
}

static nb_tensor *buffer(int64_t n, double fill) {
    nb_tensor *t = nb_tensor_create(NB_F32, 1, &n);
    if (t && nb_tensor_fill(t, fill) != NB_OK) {
        nb_tensor_destroy(t);
        t = NULL;
    }
    return t;
}

static bool cnn_create(cnn *m, nb_rng *rng) {
    m->w1 = param(4, (int64_t[]){C1, 1, 3, 3}, rng, 1.0 / 3, 0);
    m->b1 = param(1, (int64_t[]){C1}, rng, 1.0 / 3, 0);
    m->g1 = param(1, (int64_t[]){C1}, rng, 0, 1);
    m->h1 = param(1, (int64_t[]){C1}, rng, 0, 0);
    m->rm1 = buffer(C1, 0), m->rv1 = buffer(C1, 1);
    m->w2 = param(4, (int64_t[]){C2, C1, 3, 3}, rng, 1.0 / 17, 0);
    m->b2 = param(1, (int64_t[]){C2}, rng, 1.0 / 17, 0);
    m->g2 = param(1, (int64_t[]){C2}, rng, 0, 1);
    m->h2 = param(1, (int64_t[]){C2}, rng, 0, 0);
    m->rm2 = buffer(C2, 0), m->rv2 = buffer(C2, 1);
    m->f1w = param(2, (int64_t[]){hidden, C2 * 49}, rng, 1.0 / 56, 0);
    m->f1b = param(1, (int64_t[]){hidden}, rng, 1.0 / 56, 0);
    m->f2w = param(2, (int64_t[]){CLASSES, hidden}, rng, 1.0 / sqrt((double)hidden), 0);
    m->f2b = param(1, (int64_t[]){CLASSES}, rng, 1.0 / sqrt((double)hidden), 0);
    nb_tensor **all = &m->w1;
    for (size_t i = 0; i < sizeof *m / sizeof *all; i++)
        if (!all[i])
            return false;
    return true;
}

static void cnn_destroy(cnn *m) {
    nb_tensor **all = &m->w1;
    for (size_t i = 0; i < sizeof *m / sizeof *all; i++)
        nb_tensor_destroy(all[i]);
}

// One block: conv, batch norm (training statistics), relu, 2x2 max pool.
static nb_tensor *block(nb_graph *g, nb_tensor *x, nb_tensor *w, nb_tensor *b, nb_tensor *gain,
                        nb_tensor *shift, nb_tensor *rm, nb_tensor *rv) {
    nb_tensor *y = nb_conv2d(g, x, w, b, 1, 1, 1, 1);
    y = nb_batch_norm(g, y, gain, shift, rm, rv, true, 0.1, 1e-5);
    return nb_max_pool2d(g, nb_relu(g, y), 2, 2, 0, 1, false);
}

static nb_tensor *step_loss(nb_graph *g, cnn *m, nb_tensor *x, nb_tensor *y, nb_rng *drop) {
    nb_tensor *h = block(g, x, m->w1, m->b1, m->g1, m->h1, m->rm1, m->rv1);
    h = block(g, h, m->w2, m->b2, m->g2, m->h2, m->rm2, m->rv2);
    h = nb_dropout(g, nb_flatten(g, h, 1, -1), DROPOUT, true, drop);
    h = nb_dropout(g, nb_relu(g, nb_linear(g, h, m->f1w, m->f1b)), DROPOUT, true, drop);
    return nb_sparse_cross_entropy_logits(g, nb_linear(g, h, m->f2w, m->f2b), y, NB_REDUCE_MEAN);
}

// The step's GEMMs on buffers of the same sizes (contents irrelevant to the speed).
typedef struct {
    int64_t n;
    float *col1, *y1, *dw1, *w1;         // conv1: K 9, P 784
    float *col2, *dcol2, *y2, *dw2, *w2; // conv2: K 288, P 196
    float *x3, *w3, *y3, *dw3, *dx3;     // fc1: (n, 3136) x (128, 3136)ᵀ
    float *w4, *y4, *dw4, *dx4;          // fc2: (n, 128) x (10, 128)ᵀ
} gemm_set;

static float *zalloc(int64_t n) {
    return calloc((size_t)n, sizeof(float));
}

static bool gemm_create(gemm_set *s, int64_t n) {
    s->n = n;
    s->col1 = zalloc(n * 9 * 784), s->y1 = zalloc(n * C1 * 784), s->dw1 = zalloc(C1 * 9);
    s->w1 = zalloc(C1 * 9);
    s->col2 = zalloc(n * 288 * 196), s->dcol2 = zalloc(288 * 196), s->y2 = zalloc(n * C2 * 196);
    s->dw2 = zalloc(C2 * 288), s->w2 = zalloc(C2 * 288);
    s->x3 = zalloc(n * 3136), s->w3 = zalloc(hidden * 3136), s->y3 = zalloc(n * hidden);
    s->dw3 = zalloc(hidden * 3136), s->dx3 = zalloc(n * 3136);
    s->w4 = zalloc(CLASSES * hidden), s->y4 = zalloc(n * CLASSES),
    s->dw4 = zalloc(CLASSES * hidden);
    s->dx4 = zalloc(n * hidden);
    float **all = &s->col1;
    for (size_t i = 0; i < (sizeof *s - sizeof s->n) / sizeof *all; i++)
        if (!all[i])
            return false;
    return true;
}

static void gemm_destroy(gemm_set *s) {
    float **all = &s->col1;
    for (size_t i = 0; i < (sizeof *s - sizeof s->n) / sizeof *all; i++)
        free(all[i]);
}

#define SGEMM(ta, tb, m, n, k, a, lda, b, ldb, beta, c, ldc)                                       \
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,     \
                (int)(m), (int)(n), (int)(k), 1.0f, a, (int)(lda), b, (int)(ldb), beta, c,         \
                (int)(ldc))

static void gemm_step(gemm_set *s) {
    for (int64_t i = 0; i < s->n; i++) { // conv1: forward and dw (the image needs no gradient)
        float *col = s->col1 + i * 9 * 784, *y = s->y1 + i * C1 * 784;
        SGEMM(0, 0, C1, 784, 9, s->w1, 9, col, 784, 0.0f, y, 784);
        SGEMM(0, 1, C1, 9, 784, y, 784, col, 784, 1.0f, s->dw1, 9);
    }
    for (int64_t i = 0; i < s->n; i++) { // conv2: forward, dw, dcol
        float *col = s->col2 + i * 288 * 196, *y = s->y2 + i * C2 * 196;
        SGEMM(0, 0, C2, 196, 288, s->w2, 288, col, 196, 0.0f, y, 196);
        SGEMM(0, 1, C2, 288, 196, y, 196, col, 196, 1.0f, s->dw2, 288);
        SGEMM(1, 0, 288, 196, C2, s->w2, 288, y, 196, 0.0f, s->dcol2, 196);
    }
    // fc1 and fc2: forward, dW = dYᵀ X, dX = dY W.
    SGEMM(0, 1, s->n, hidden, 3136, s->x3, 3136, s->w3, 3136, 0.0f, s->y3, hidden);
    SGEMM(0, 1, s->n, CLASSES, hidden, s->y3, hidden, s->w4, hidden, 0.0f, s->y4, CLASSES);
    SGEMM(1, 0, CLASSES, hidden, s->n, s->y4, CLASSES, s->y3, hidden, 0.0f, s->dw4, hidden);
    SGEMM(0, 0, s->n, hidden, CLASSES, s->y4, CLASSES, s->w4, hidden, 0.0f, s->dx4, hidden);
    SGEMM(1, 0, hidden, 3136, s->n, s->dx4, hidden, s->x3, 3136, 0.0f, s->dw3, 3136);
    SGEMM(0, 0, s->n, 3136, hidden, s->dx4, hidden, s->w3, 3136, 0.0f, s->dx3, 3136);
}

int main(int argc, char **argv) {
    int64_t threads = 0, batch = 64, steps = 40, reps = 5;
    for (int i = 1; i < argc; i++) {
        bool ok = i + 1 < argc;
        if (ok && !strcmp(argv[i], "--threads"))
            ok = bu_int(argv[++i], 1, 64, &threads);
        else if (ok && !strcmp(argv[i], "--batch"))
            ok = bu_int(argv[++i], 2, 4096, &batch);
        else if (ok && !strcmp(argv[i], "--steps"))
            ok = bu_int(argv[++i], 1, 100000, &steps);
        else if (ok && !strcmp(argv[i], "--reps"))
            ok = bu_int(argv[++i], 1, 1000, &reps);
        else if (ok && !strcmp(argv[i], "--hidden"))
            ok = bu_int(argv[++i], 1, 65536, &hidden);
        else
            ok = false;
        if (!ok) {
            fprintf(stderr, "usage: bench_cnn [--threads T] [--batch B] [--steps S] [--reps R] "
                            "[--hidden H]\n");
            return 2;
        }
    }
    bu_count_allocations();
    nb_rng rng, drop;
    nb_rng_seed(&rng, 7);
    nb_rng_seed(&drop, 8);
    cnn m;
    memset(&m, 0, sizeof m);
    gemm_set gs;
    memset(&gs, 0, sizeof gs);
    nb_tensor *x = nb_tensor_create(NB_F32, 4, (int64_t[]){batch, 1, 28, 28});
    nb_tensor *y = nb_tensor_create(NB_I32, 1, (int64_t[]){batch});
    nb_graph *g = nb_graph_create();
    nb_graph_set_retain_grads(g, false); // leaves' grads only: op outputs' recycled in backward
    // One step's tape grows with the batch (~1.1 GiB at batch 1024, the scaling sweep's
    // largest), past the 1 GiB default that catches a forgotten reset: lift the byte budget.
    if (g)
        nb_graph_set_limits(g, NB_GRAPH_DEFAULT_MAX_OPS, SIZE_MAX);
    if (!cnn_create(&m, &rng) || !gemm_create(&gs, batch) || !x || !y || !g ||
        nb_init_uniform(x, &rng, 0, 1) != NB_OK) {
        fprintf(stderr, "bench_cnn: setup: %s\n", nb_last_error());
        return 1;
    }
    for (int64_t i = 0; i < batch; i++)
        nb_tensor_set(y, i, (double)nb_rng_below(&rng, CLASSES));
    nb_tensor *params[] = {m.w1, m.b1, m.g1,  m.h1,  m.w2,  m.b2,
                           m.g2, m.h2, m.f1w, m.f1b, m.f2w, m.f2b};
    nb_optim *opt = nb_optim_create(params, NULL, 12, nb_optim_defaults(NB_OPTIM_ADAM, 1e-3));
    if (!opt) {
        fprintf(stderr, "bench_cnn: %s\n", nb_last_error());
        return 1;
    }
    for (int t = 1; t <= 2; t++) {
        if (threads && t != threads)
            continue;
        nb_set_num_threads(t);
        double step_best = 1e30, gemm_best = 1e30;
        int64_t allocs = 0;
        for (int64_t r = 0; r <= reps; r++) { // rep 0 warms up (arena growth, BLAS buffers)
            int64_t a0 = bu_allocations();
            double t0 = bu_now();
            for (int64_t s = 0; s < steps; s++) {
                nb_graph_reset(g);
                nb_tensor *loss = step_loss(g, &m, x, y, &drop);
                nb_optim_zero_grad(opt);
                if (!loss || nb_backward(g, loss) != NB_OK || nb_optim_step(opt) != NB_OK) {
                    fprintf(stderr, "bench_cnn: %s\n", nb_graph_error(g));
                    return 1;
                }
            }
            double t1 = bu_now();
            int64_t a1 = bu_allocations();
            for (int64_t s = 0; s < steps; s++)
                gemm_step(&gs);
            double t2 = bu_now();
            if (r == 0)
                continue;
            allocs += a1 - a0;
            if ((t1 - t0) / (double)steps < step_best)
                step_best = (t1 - t0) / (double)steps;
            if ((t2 - t1) / (double)steps < gemm_best)
                gemm_best = (t2 - t1) / (double)steps;
        }
        printf("{\"bench\": \"cnn step\", \"batch\": %lld, \"hidden\": %lld, \"threads\": %d, "
               "\"step_ms\": %.3f, "
               "\"gemm_limit_ms\": %.3f, \"gemm_share\": %.3f, \"samples_per_s\": %.0f, "
               "\"allocs_per_step\": %.3f}\n",
               (long long)batch, (long long)hidden, t, step_best * 1e3, gemm_best * 1e3,
               gemm_best / step_best, (double)batch / step_best,
               (double)allocs / (double)(reps * steps));
        fflush(stdout);
    }
    nb_optim_destroy(opt);
    nb_graph_destroy(g);
    nb_tensor_destroy(x);
    nb_tensor_destroy(y);
    cnn_destroy(&m);
    gemm_destroy(&gs);
    return 0;
}
