// bench_lstm: one LSTM layer's forward + backward over a (T, B, F) sequence (float32, zero
// initial state, upstream gradient on every output), the step a character-level LSTM language
// model takes, against its GEMM limit: the same GEMMs called directly through cblas_sgemm
// (input projection of all steps: forward and both backward products; per step h W_hhᵀ and
// its two backward products), i.e. the layer minus its elementwise gate math, slices and the
// graph. bench/torch_lstm.py times torch.nn.LSTM on the same shapes.
// Usage: bench_lstm [--reps R] [--threads T] (default: 1 then 2). One JSON object per
// measurement on stdout.
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "nabla.h"

#define MIN_SECONDS 0.3

typedef struct {
    int64_t t, b, f, h;
} lstm_shape;

static const lstm_shape shapes[] = {{64, 32, 64, 128}, {64, 32, 128, 256}};

// Seconds per forward + backward, best of reps runs of >= MIN_SECONDS each.
static double time_nabla(const lstm_shape *s, nb_rng *rng, int reps, int64_t *allocs,
                         int64_t *ops) {
    nb_layer *l = nb_nn_lstm_create(s->f, s->h, 1, true, NB_F32, rng);
    nb_tensor *x = bu_rand_f32(3, (int64_t[]){s->t, s->b, s->f}, rng, true);
    nb_tensor *gy = bu_rand_f32(3, (int64_t[]){s->t, s->b, s->h}, rng, false);
    nb_graph *g = nb_graph_create();
    nb_graph_set_retain_grads(g, false); // leaves' grads only: op outputs' recycled in backward
    double best = 1e30;
    int64_t a0 = 0;
    for (int r = 0; r <= reps; r++) { // run 0 warms up (arena growth)
        int64_t iters = 0;
        double t0 = bu_now(), t;
        if (r == 1)
            a0 = bu_allocations();
        do {
            nb_graph_reset(g);
            nb_tensor *y = nb_layer_forward(g, l, x);
            if (!y || nb_backward_with(g, y, gy) != NB_OK) {
                fprintf(stderr, "bench_lstm: %s\n", nb_graph_error(g));
                return -1;
            }
            iters++;
            t = bu_now() - t0;
        } while (t < MIN_SECONDS || (r == 0 && iters < 3)); // the arena settles after step 1
        if (r > 0 && t / (double)iters < best)
            best = t / (double)iters;
    }
    *allocs = bu_allocations() - a0;
    *ops = nb_graph_size(g);
    nb_graph_destroy(g);
    nb_tensor_destroy(x);
    nb_tensor_destroy(gy);
    nb_layer_destroy(l);
    return best;
}

// The layer's GEMMs alone on buffers of the same sizes.
static double time_gemm(const lstm_shape *s, int reps) {
    const int tb = (int)(s->t * s->b), b = (int)s->b, f = (int)s->f, h = (int)s->h, g = 4 * h;
    float *x = calloc((size_t)tb * f, sizeof(float)), *dx = calloc((size_t)tb * f, sizeof(float));
    float *wi = calloc((size_t)g * f, sizeof(float)), *dwi = calloc((size_t)g * f, sizeof(float));
    float *wh = calloc((size_t)g * h, sizeof(float)), *dwh = calloc((size_t)g * h, sizeof(float));
    float *xp = calloc((size_t)tb * g, sizeof(float)), *hs = calloc((size_t)tb * h, sizeof(float));
    float *hh = calloc((size_t)b * g, sizeof(float)), *dh = calloc((size_t)b * h, sizeof(float));
    if (!x || !dx || !wi || !dwi || !wh || !dwh || !xp || !hs || !hh || !dh)
        return -1;
    double best = 1e30;
    for (int r = 0; r <= reps; r++) {
        int64_t iters = 0;
        double t0 = bu_now(), t;
        do {
            // forward: xp = x W_ihᵀ (all steps), then per step hh = h W_hhᵀ
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, tb, g, f, 1, x, f, wi, f, 0, xp,
                        g);
            for (int64_t k = 1; k < s->t; k++)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, b, g, h, 1,
                            hs + (k - 1) * b * h, h, wh, h, 0, hh, g);
            // backward: per step dh = dhh W_hh, dW_hh += dhhᵀ h; then dx, dW_ih for all steps
            for (int64_t k = s->t - 1; k >= 1; k--) {
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, b, h, g, 1, xp + k * b * g,
                            g, wh, h, 0, dh, h);
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, g, h, b, 1, xp + k * b * g, g,
                            hs + (k - 1) * b * h, h, 1, dwh, h);
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, tb, f, g, 1, xp, g, wi, f, 0, dx,
                        f);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, g, f, tb, 1, xp, g, x, f, 1, dwi,
                        f);
            iters++;
            t = bu_now() - t0;
        } while (t < MIN_SECONDS);
        if (r > 0 && t / (double)iters < best)
            best = t / (double)iters;
    }
    free(x), free(dx), free(wi), free(dwi), free(wh), free(dwh), free(xp), free(hs), free(hh);
    free(dh);
    return best;
}

int main(int argc, char **argv) {
    int64_t reps = 3, threads = 0;
    if (!bu_reps_threads(argc, argv, "bench_lstm", 100, &reps, &threads))
        return 2;
    bu_count_allocations();
    for (int th = 1; th <= 2; th++) {
        if (threads && th != threads)
            continue;
        nb_set_num_threads(th);
        nb_rng rng;
        nb_rng_seed(&rng, 7);
        for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
            const lstm_shape *s = &shapes[k];
            int64_t allocs = 0, ops = 0;
            double tn = time_nabla(s, &rng, (int)reps, &allocs, &ops);
            double tg = time_gemm(s, (int)reps);
            if (tn < 0 || tg < 0)
                return 1;
            printf("{\"bench\": \"lstm fwd+bwd\", \"T\": %lld, \"B\": %lld, \"F\": %lld, "
                   "\"H\": %lld, \"threads\": %d, \"nabla_ms\": %.3f, \"gemm_limit_ms\": %.3f, "
                   "\"tokens_per_s\": %.0f, \"ops_recorded\": %lld, "
                   "\"allocs_after_warmup\": %lld}\n",
                   (long long)s->t, (long long)s->b, (long long)s->f, (long long)s->h, th, tn * 1e3,
                   tg * 1e3, (double)(s->t * s->b) / tn, (long long)ops, (long long)allocs);
            fflush(stdout);
        }
    }
    return 0;
}
