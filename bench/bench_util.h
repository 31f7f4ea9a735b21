// Shared by the bench programs: a monotonic clock, peak RSS, an allocation-counting allocator
// for nb_set_allocator, strict command-line number parsing, and random float32 operands.
#ifndef NABLA_BENCH_UTIL_H
#define NABLA_BENCH_UTIL_H

#include <stdbool.h>
#include <stdint.h>

#include "nabla.h"

// Seconds on a monotonic clock.
double bu_now(void);
// Peak resident set size of this process so far, in MiB (getrusage ru_maxrss).
double bu_max_rss_mib(void);
// Installs an allocator that counts every malloc/realloc the library makes.
void bu_count_allocations(void);
// Allocations made through it so far.
int64_t bu_allocations(void);
// The whole of s is an integer in [lo, hi]: stores it and returns true.
bool bu_int(const char *s, int64_t lo, int64_t hi, int64_t *out);
// Parses "[--reps R] [--threads T]" (R in [1, max_reps], T in [1, 64]) into *reps and
// *threads, which keep their defaults when a flag is absent. Anything else prints
// "usage: prog [--reps R] [--threads T]" and returns false (the caller exits 2).
bool bu_reps_threads(int argc, char **argv, const char *prog, int64_t max_reps, int64_t *reps,
                     int64_t *threads);
// A float32 tensor of the given shape, uniform in [-1, 1) from rng, requiring grad if asked;
// NULL (nothing leaked) when creating or filling it fails.
nb_tensor *bu_rand_f32(int ndim, const int64_t *shape, nb_rng *rng, bool grad);

#endif
