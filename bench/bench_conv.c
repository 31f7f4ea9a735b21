// bench_conv: conv2d forward + backward at the Fashion-MNIST CNN's shapes (batch 64, 3x3,
// padding 1: 1 -> 32 channels at 28x28 and 32 -> 64 at 14x14), float32, against its GEMM
// limit: the same GEMMs (per sample: y = w col, dw += dy colᵀ, dcol = wᵀ dy) called directly
// through cblas_sgemm on ready-made column buffers, i.e. conv2d minus im2col / col2im and
// the graph. nabla's step is what a user writes: reset, record conv2d, nb_backward_with.
// conv1's input needs no gradient (it is the image), conv2's does.
// Usage: bench_conv [--reps R] [--threads T]. One JSON object per measurement on stdout.
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "nabla.h"

#define MIN_SECONDS 0.3

typedef struct {
    const char *name;
    int64_t n, c, h, o, k; // square images and kernels, padding k / 2, stride 1
    bool x_grad;
} conv_shape;

static const conv_shape shapes[] = {
    {"conv1 64x1x28x28 -> 32, 3x3", 64, 1, 28, 32, 3, false},
    {"conv2 64x32x14x14 -> 64, 3x3", 64, 32, 14, 64, 3, true},
};

// Seconds per call of the nabla step, best of reps runs of >= MIN_SECONDS each.
static double time_nabla(const conv_shape *s, nb_rng *rng, int reps, int64_t *allocs) {
    nb_tensor *x = bu_rand_f32(4, (int64_t[]){s->n, s->c, s->h, s->h}, rng, s->x_grad);
    nb_tensor *w = bu_rand_f32(4, (int64_t[]){s->o, s->c, s->k, s->k}, rng, true);
    nb_tensor *b = bu_rand_f32(1, (int64_t[]){s->o}, rng, true);
    nb_tensor *gy = bu_rand_f32(4, (int64_t[]){s->n, s->o, s->h, s->h}, rng, false);
    nb_graph *g = nb_graph_create();
    double best = 1e30;
    int64_t a0 = 0;
    for (int r = 0; r <= reps; r++) { // run 0 warms up (arena growth)
        int64_t iters = 0;
        double t0 = bu_now(), t;
        if (r == 1)
            a0 = bu_allocations();
        do {
            nb_graph_reset(g);
            nb_tensor *y = nb_conv2d(g, x, w, b, 1, (int)(s->k / 2), 1, 1);
            if (!y || nb_backward_with(g, y, gy) != NB_OK) {
                fprintf(stderr, "bench_conv: %s\n", nb_graph_error(g));
                return -1;
            }
            iters++;
            t = bu_now() - t0;
        } while (t < MIN_SECONDS);
        if (r > 0 && t / (double)iters < best)
            best = t / (double)iters;
    }
    *allocs = bu_allocations() - a0;
    nb_graph_destroy(g);
    nb_tensor_destroy(x);
    nb_tensor_destroy(w);
    nb_tensor_destroy(b);
    nb_tensor_destroy(gy);
    return best;
}

// The GEMMs alone, per sample, on buffers of the same sizes.
static double time_gemm(const conv_shape *s, int reps) {
    int64_t kk = s->c * s->k * s->k, p = s->h * s->h;
    float *col = calloc((size_t)(s->n * kk * p), sizeof(float));
    float *dcol = calloc((size_t)(kk * p), sizeof(float));
    float *w = calloc((size_t)(s->o * kk), sizeof(float));
    float *dw = calloc((size_t)(s->o * kk), sizeof(float));
    float *y = calloc((size_t)(s->n * s->o * p), sizeof(float));
    for (int64_t i = 0; i < s->n * kk * p; i++)
        col[i] = (float)(i % 7) * 0.1f;
    for (int64_t i = 0; i < s->o * kk; i++)
        w[i] = (float)(i % 5) * 0.1f;
    double best = 1e30;
    for (int r = 0; r <= reps; r++) {
        int64_t iters = 0;
        double t0 = bu_now(), t;
        do {
            for (int64_t n = 0; n < s->n; n++) {
                float *cn = col + n * kk * p, *yn = y + n * s->o * p;
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)s->o, (int)p, (int)kk,
                            1, w, (int)kk, cn, (int)p, 0, yn, (int)p);
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)s->o, (int)kk, (int)p, 1,
                            yn, (int)p, cn, (int)p, 1, dw, (int)kk);
                if (s->x_grad)
                    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)kk, (int)p, (int)s->o,
                                1, w, (int)kk, yn, (int)p, 0, dcol, (int)p);
            }
            iters++;
            t = bu_now() - t0;
        } while (t < MIN_SECONDS);
        if (r > 0 && t / (double)iters < best)
            best = t / (double)iters;
    }
    free(col), free(dcol), free(w), free(dw), free(y);
    return best;
}

int main(int argc, char **argv) {
    int64_t reps = 3, threads = 0;
    if (!bu_reps_threads(argc, argv, "bench_conv", 1000, &reps, &threads))
        return 2;
    bu_count_allocations();
    nb_rng rng;
    nb_rng_seed(&rng, 7);
    for (int t = 1; t <= 2; t++) {
        if (threads && t != threads)
            continue;
        nb_set_num_threads(t);
        for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
            const conv_shape *s = &shapes[i];
            int64_t allocs = 0;
            double tn = time_nabla(s, &rng, (int)reps, &allocs);
            double tg = time_gemm(s, (int)reps);
            if (tn < 0)
                return 1;
            double flop = 2.0 * (double)(s->n * s->o * s->h * s->h * s->c * s->k * s->k) *
                          (s->x_grad ? 3 : 2);
            printf("{\"bench\": \"conv2d fwd+bwd\", \"shape\": \"%s\", \"threads\": %d, "
                   "\"nabla_ms\": %.3f, \"gemm_limit_ms\": %.3f, \"limit_over_nabla\": %.3f, "
                   "\"nabla_gflops\": %.2f, \"allocs_per_step\": %.3f}\n",
                   s->name, t, tn * 1e3, tg * 1e3, tg / tn, flop / tn * 1e-9,
                   (double)allocs / (double)reps);
            fflush(stdout);
        }
    }
    return 0;
}
