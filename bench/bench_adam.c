// bench_adam: one Adam step over n float32 parameters (default 10 M, one tensor) against the
// memory-bandwidth limit measured in the same run. Bytes the step must move, as STREAM counts
// them: read w, g, m, v and write w, m, v = 28 n (write-allocate not counted, as for the
// triad). The limit is a triad a = b + s c over n floats (12 n bytes) timed right before each
// Adam timing, with the same thread count and OpenMP team; ratio = Adam GB/s / triad GB/s.
// Thread counts 1 and 2 alternate within every repetition, so both see the same machine.
// Each timing is the median of STEPS_PER calls; the report gives the median over --reps.
// Prints one JSON object per (threads, repetition) and a summary line per thread count.
// Usage: bench_adam [--n N] [--reps R]
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "bench_util.h"
#include "nabla.h"

#define OMP_MIN 32768 // the library's NB_OMP_MIN default
#define STEPS_PER 9   // Adam steps (and triads) timed per repetition; the median is kept

static void triad(float *a, const float *b, const float *c, float s, int64_t n) {
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if (n > OMP_MIN)
#endif
    for (int64_t i = 0; i < n; i++)
        a[i] = b[i] + s * c[i];
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

int main(int argc, char **argv) {
    int64_t n = 10 * 1000 * 1000, reps = 7;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--n") && bu_int(argv[i + 1], 1, INT64_C(1) << 32, &n))
            continue;
        if (!strcmp(argv[i], "--reps") && bu_int(argv[i + 1], 1, 1000, &reps))
            continue;
        fprintf(stderr, "usage: bench_adam [--n N] [--reps R]\n");
        return 2;
    }
    nb_tensor *w = nb_tensor_create(NB_F32, 1, &n);
    float *ta = malloc((size_t)n * sizeof *ta), *tb = malloc((size_t)n * sizeof *tb),
          *tc = malloc((size_t)n * sizeof *tc);
    nb_graph *g = nb_graph_create();
    nb_rng rng;
    nb_rng_seed(&rng, 1);
    if (!w || !ta || !tb || !tc || !g || nb_init_uniform(w, &rng, -1, 1) != NB_OK ||
        nb_tensor_set_requires_grad(w, true) != NB_OK ||
        nb_backward(g, nb_sum(g, w)) != NB_OK) { // allocates w's grad (all ones)
        fprintf(stderr, "bench_adam: setup failed: %s\n", nb_last_error());
        return 1;
    }
    float *gr = nb_tensor_grad_f32(w);
    for (int64_t i = 0; i < n; i++) {
        gr[i] = (float)(nb_rng_uniform(&rng) - 0.5) * 1e-3f; // small: w stays well scaled
        ta[i] = 0, tb[i] = 1, tc[i] = 2;
    }
    nb_optim *opt = nb_optim_create(&w, NULL, 1, nb_optim_defaults(NB_OPTIM_ADAM, 1e-3));
    if (!opt) {
        fprintf(stderr, "bench_adam: %s\n", nb_last_error());
        return 1;
    }
    const int threads[2] = {1, 2};
    double adam_gbs[2][1000], triad_gbs[2][1000], adam_ms[2][1000];
    for (int r = 0; r < reps; r++)
        for (int k = 0; k < 2; k++) {
            nb_set_num_threads(threads[k]);
            double ta_s[STEPS_PER], ad_s[STEPS_PER];
            triad(ta, tb, tc, 0.5f, n); // warm the team and the pages
            nb_optim_step(opt);
            for (int s = 0; s < STEPS_PER; s++) {
                double t0 = bu_now();
                triad(ta, tb, tc, 0.5f, n);
                double t1 = bu_now();
                nb_optim_step(opt);
                double t2 = bu_now();
                ta_s[s] = t1 - t0;
                ad_s[s] = t2 - t1;
            }
            double tt = median(ta_s, STEPS_PER), at = median(ad_s, STEPS_PER);
            triad_gbs[k][r] = 12.0 * (double)n / tt / 1e9;
            adam_gbs[k][r] = 28.0 * (double)n / at / 1e9;
            adam_ms[k][r] = at * 1e3;
            printf("{\"bench\":\"adam\",\"n\":%lld,\"threads\":%d,\"rep\":%d,\"adam_ms\":%.3f,"
                   "\"adam_gbs\":%.2f,\"triad_gbs\":%.2f,\"ratio\":%.3f}\n",
                   (long long)n, threads[k], r, at * 1e3, adam_gbs[k][r], triad_gbs[k][r],
                   adam_gbs[k][r] / triad_gbs[k][r]);
        }
    double ratio_r[2][1000];
    for (int k = 0; k < 2; k++)
        for (int r = 0; r < reps; r++)
            ratio_r[k][r] = adam_gbs[k][r] / triad_gbs[k][r];
    for (int k = 0; k < 2; k++) {
        double ms = median(adam_ms[k], (int)reps), ag = median(adam_gbs[k], (int)reps);
        double tg = median(triad_gbs[k], (int)reps), ra = median(ratio_r[k], (int)reps);
        fprintf(stderr,
                "adam step, %lld float32, %d thread%s: %.2f ms, %.1f GB/s; triad %.1f GB/s; "
                "ratio %.0f%% (median of %lld)\n",
                (long long)n, threads[k], threads[k] > 1 ? "s" : "", ms, ag, tg, 100 * ra,
                (long long)reps);
    }
    // The parameters must still be finite (the step really ran).
    if (!isfinite(nb_tensor_get(w, 0)))
        return 1;
    nb_optim_destroy(opt);
    nb_graph_destroy(g);
    nb_tensor_destroy(w);
    free(ta);
    free(tb);
    free(tc);
    return 0;
}
