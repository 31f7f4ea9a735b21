// Helpers shared by the bench programs (see bench_util.h).
#define _POSIX_C_SOURCE 200809L // clock_gettime, getrusage

#include "bench_util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "nabla.h"

double bu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

double bu_max_rss_mib(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return 0;
    return (double)ru.ru_maxrss / 1024.0; // Linux reports KiB
}

static int64_t n_allocs;

static void *count_malloc(size_t n) {
    n_allocs++;
    return malloc(n);
}
static void *count_realloc(void *p, size_t n) {
    n_allocs++;
    return realloc(p, n);
}

void bu_count_allocations(void) {
    nb_set_allocator(count_malloc, count_realloc, free);
}
int64_t bu_allocations(void) {
    return n_allocs;
}

bool bu_int(const char *s, int64_t lo, int64_t hi, int64_t *out) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

bool bu_reps_threads(int argc, char **argv, const char *prog, int64_t max_reps, int64_t *reps,
                     int64_t *threads) {
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc &&
            bu_int(argv[i + 1], 1, max_reps, reps))
            i++;
        else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc &&
                 bu_int(argv[i + 1], 1, 64, threads))
            i++;
        else {
            fprintf(stderr, "usage: %s [--reps R] [--threads T]\n", prog);
            return false;
        }
    }
    return true;
}

nb_tensor *bu_rand_f32(int ndim, const int64_t *shape, nb_rng *rng, bool grad) {
    nb_tensor *t = nb_tensor_create(NB_F32, ndim, shape);
    if (t && (nb_init_uniform(t, rng, -1, 1) != NB_OK ||
              (grad && nb_tensor_set_requires_grad(t, true) != NB_OK))) {
        nb_tensor_destroy(t);
        t = NULL;
    }
    return t;
}
