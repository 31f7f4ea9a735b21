// bench_layernorm: layer norm forward + backward (nb_layer_norm over the last axis, affine,
// float32) against the memory-bandwidth limit measured in the same run. Shapes: (2048, 128),
// the charlm transformer's (32 x 64 tokens, width 128; cache resident), and (8192, 1024), 8 M
// elements that stream from memory. nabla's step is what a user writes: reset, record
// layer_norm, nb_backward_with an upstream gradient; x, weight and bias need gradients.
// Bytes the step must move, as STREAM counts them: forward reads x and writes y (8 n),
// backward reads x and dy and writes dx (12 n), so 20 n (weight, bias and the per-row
// statistics are negligible). The limit is a triad a = b + s c over n floats (12 n bytes),
// same thread count, timed right before each nabla timing; ratio = nabla GB/s / triad GB/s.
// bench/torch_layernorm.py times F.layer_norm on the same shapes.
// Usage: bench_layernorm [--reps R] [--threads T] (default: 1 then 2). One JSON object per
// (shape, threads) on stdout.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "bench_util.h"
#include "nabla.h"

#define MIN_SECONDS 0.2
#define OMP_MIN 32768 // the library's NB_OMP_MIN default

static const int64_t shapes[][2] = {{2048, 128}, {8192, 1024}};

static void triad(float *a, const float *b, const float *c, float s, int64_t n) {
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if (n > OMP_MIN)
#endif
    for (int64_t i = 0; i < n; i++)
        a[i] = b[i] + s * c[i];
}

typedef struct {
    nb_graph *g;
    nb_tensor *x, *w, *b, *gy;
    float *ta, *tb, *tc;
    int64_t n;
    bool failed;
} ctx;

static void step_nabla(ctx *c) {
    nb_graph_reset(c->g);
    nb_tensor *y = nb_layer_norm(c->g, c->x, 1, c->w, c->b, 1e-5);
    if (!y || nb_backward_with(c->g, y, c->gy) != NB_OK) {
        fprintf(stderr, "bench_layernorm: %s\n", nb_graph_error(c->g));
        c->failed = true;
    }
}

static void step_triad(ctx *c) {
    triad(c->ta, c->tb, c->tc, 0.5f, c->n);
}

// Seconds per call of fn(c), best of reps runs of >= MIN_SECONDS each (run 0 warms up).
static double best_time(void (*fn)(ctx *), ctx *c, int reps) {
    double best = 1e30;
    for (int r = 0; r <= reps && !c->failed; r++) {
        int64_t iters = 0;
        double t0 = bu_now(), t;
        do {
            fn(c);
            iters++;
            t = bu_now() - t0;
        } while (t < MIN_SECONDS && !c->failed);
        if (r > 0 && t / (double)iters < best)
            best = t / (double)iters;
    }
    return best;
}

int main(int argc, char **argv) {
    int64_t reps = 3, threads = 0;
    if (!bu_reps_threads(argc, argv, "bench_layernorm", 1000, &reps, &threads))
        return 2;
    bu_count_allocations();
    nb_rng rng;
    nb_rng_seed(&rng, 7);
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int64_t rows = shapes[s][0], cols = shapes[s][1], n = rows * cols;
        ctx c = {.g = nb_graph_create(), .n = n};
        c.x = bu_rand_f32(2, shapes[s], &rng, true);
        c.w = bu_rand_f32(1, &cols, &rng, true);
        c.b = bu_rand_f32(1, &cols, &rng, true);
        c.gy = bu_rand_f32(2, shapes[s], &rng, false);
        c.ta = calloc((size_t)n, sizeof(float));
        c.tb = calloc((size_t)n, sizeof(float));
        c.tc = calloc((size_t)n, sizeof(float));
        if (!c.g || !c.x || !c.w || !c.b || !c.gy || !c.ta || !c.tb || !c.tc) {
            fprintf(stderr, "bench_layernorm: setup failed: %s\n", nb_last_error());
            return 1;
        }
        for (int t = 1; t <= 2; t++) {
            if (threads && t != threads)
                continue;
            nb_set_num_threads(t);
#ifdef _OPENMP
            omp_set_num_threads(t);
#endif
            double tt = best_time(step_triad, &c, (int)reps);
            for (int w = 0; w < 3; w++) // the arena and the gradients have grown after these
                step_nabla(&c);
            int64_t a0 = bu_allocations(); // over every timed step: 0 in a steady state
            double tn = best_time(step_nabla, &c, (int)reps);
            int64_t allocs = bu_allocations() - a0;
            if (c.failed)
                return 1;
            double lgbs = 20.0 * (double)n / tn / 1e9, tgbs = 12.0 * (double)n / tt / 1e9;
            printf("{\"bench\": \"layer_norm fwd+bwd\", \"rows\": %lld, \"cols\": %lld, "
                   "\"threads\": %d, \"nabla_ms\": %.4f, \"nabla_gbs\": %.2f, \"triad_gbs\": "
                   "%.2f, \"ratio_to_triad\": %.3f, \"steady_allocs\": %lld}\n",
                   (long long)rows, (long long)cols, t, tn * 1e3, lgbs, tgbs, lgbs / tgbs,
                   (long long)allocs);
            fflush(stdout);
        }
        nb_graph_destroy(c.g);
        nb_tensor_destroy(c.x), nb_tensor_destroy(c.w), nb_tensor_destroy(c.b);
        nb_tensor_destroy(c.gy);
        free(c.ta), free(c.tb), free(c.tc);
    }
    return 0;
}
