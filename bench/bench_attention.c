// Fused attention forward + backward (nb_scaled_dot_product_attention, causal, float32) at
// (B, H, T, D) = (32, 4, T, 32) for T = 64, 128, 256, against its GEMM limit: the same seven
// (T x T x D) products per (batch, head) slice that the op runs (q kᵀ and P v forward; q kᵀ
// again, dO vᵀ, Pᵀ dO, dS k and dSᵀ q backward), through CBLAS with the slices split over the
// OpenMP threads as the op does, without the softmax and the masking in between. Also the
// allocations per steady-state step. Times are process CPU time (all threads; the machine this
// was written on was shared, where CPU time is steadier than wall time), medians. One JSON
// object per line; bench/torch_attention.py times
// PyTorch on the same shapes.
//   bench_attention [--threads N] [--reps R]
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "bench_util.h"
#include "nabla.h"

static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

// The seven products of one slice, a: (T, T) scratch, b: (T, T) scratch.
static void gemms(int t, int d, const float *q, const float *k, const float *v, const float *go,
                  float *a, float *b, float *gq, float *gk, float *gv, float *o) {
    float sc = 1.0f;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, t, t, d, sc, q, d, k, d, 0, a, t);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, t, d, t, 1, a, t, v, d, 0, o, d);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, t, t, d, sc, q, d, k, d, 0, a, t);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, t, t, d, 1, go, d, v, d, 0, b, t);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, t, d, t, 1, a, t, go, d, 1, gv, d);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, t, d, t, sc, b, t, k, d, 1, gq, d);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, t, d, t, sc, b, t, q, d, 1, gk, d);
}

int main(int argc, char **argv) {
    int64_t threads = 2, reps = 20;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc && bu_int(argv[i + 1], 1, 64, &threads))
            i++;
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc && bu_int(argv[i + 1], 1, 1000, &reps))
            i++;
        else {
            fprintf(stderr, "usage: bench_attention [--threads N] [--reps R]\n");
            return 2;
        }
    }
    nb_set_num_threads((int)threads);
    const int B = 32, H = 4, D = 32;
    int ts[3] = {64, 128, 256};
    nb_rng rng;
    nb_rng_seed(&rng, 1);
    for (int ti = 0; ti < 3; ti++) {
        int t = ts[ti];
        int64_t shape[4] = {B, H, t, D};
        nb_tensor *q = nb_tensor_create(NB_F32, 4, shape), *k = nb_tensor_create(NB_F32, 4, shape),
                  *v = nb_tensor_create(NB_F32, 4, shape), *go = nb_tensor_create(NB_F32, 4, shape);
        nb_init_uniform(q, &rng, -1, 1), nb_init_uniform(k, &rng, -1, 1);
        nb_init_uniform(v, &rng, -1, 1), nb_init_uniform(go, &rng, -1, 1);
        nb_tensor_set_requires_grad(q, true), nb_tensor_set_requires_grad(k, true);
        nb_tensor_set_requires_grad(v, true);
        nb_graph *g = nb_graph_create();
        double *wall = malloc((size_t)reps * sizeof *wall),
               *lim = malloc((size_t)reps * sizeof *lim);
        int64_t allocs = -1;
        for (int r = -2; r < reps; r++) {
            if (r == 0)
                bu_count_allocations();
            int64_t a0 = bu_allocations();
            double t0 = cpu_now();
            nb_graph_reset(g);
            nb_tensor *o = nb_scaled_dot_product_attention(g, q, k, v, NULL, true, 0.0, NULL);
            nb_tensor *loss = nb_sum(g, nb_mul(g, o, go));
            if (!loss || nb_backward(g, loss) != NB_OK) {
                fprintf(stderr, "bench_attention: %s\n", nb_graph_error(g));
                return 1;
            }
            if (r >= 0) {
                wall[r] = cpu_now() - t0;
                if (r == reps - 1)
                    allocs = bu_allocations() - a0;
            }
        }
        // The GEMM limit, slices split over the threads as the op does.
        size_t sl = (size_t)t * D;
        float *scratch = calloc((size_t)threads * 2 * (size_t)t * (size_t)t, sizeof(float));
        float *o = calloc((size_t)B * H * sl, sizeof(float));
        float *gq = nb_tensor_grad_f32(q), *gk = nb_tensor_grad_f32(k), *gv = nb_tensor_grad_f32(v);
        for (int r = -2; r < reps; r++) {
            double t0 = cpu_now();
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads((int)threads)
#endif
            for (int bh = 0; bh < B * H; bh++) {
                int tid = 0;
#ifdef _OPENMP
                tid = omp_get_thread_num();
#endif
                float *a = scratch + (size_t)tid * 2 * t * t;
                gemms(t, D, nb_tensor_data_f32(q) + bh * sl, nb_tensor_data_f32(k) + bh * sl,
                      nb_tensor_data_f32(v) + bh * sl, nb_tensor_data_f32(go) + bh * sl, a,
                      a + (size_t)t * t, gq + bh * sl, gk + bh * sl, gv + bh * sl, o + bh * sl);
            }
            if (r >= 0)
                lim[r] = cpu_now() - t0;
        }
        qsort(wall, (size_t)reps, sizeof *wall, cmp_d);
        qsort(lim, (size_t)reps, sizeof *lim, cmp_d);
        double flops = 7.0 * 2.0 * B * H * (double)t * t * D;
        printf(
            "{\"bench\": \"attention\", \"B\": %d, \"H\": %d, \"T\": %d, \"D\": %d, \"threads\": "
            "%d, \"causal\": true, \"fwd_bwd_cpu_ms\": %.3f, \"gemm_limit_cpu_ms\": %.3f, "
            "\"ratio_to_limit\": %.2f, \"gemm_gflops\": %.1f, \"steady_allocs\": %lld}\n",
            B, H, t, D, (int)threads, 1e3 * wall[reps / 2], 1e3 * lim[reps / 2],
            wall[reps / 2] / lim[reps / 2], flops / lim[reps / 2] * 1e-9, (long long)allocs);
        fflush(stdout);
        free(wall), free(lim), free(scratch), free(o);
        nb_graph_destroy(g);
        nb_tensor_destroy(q), nb_tensor_destroy(k), nb_tensor_destroy(v), nb_tensor_destroy(go);
    }
    return 0;
}
