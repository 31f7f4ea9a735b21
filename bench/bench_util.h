// Shared by the bench programs: a monotonic clock, peak RSS, an allocation-counting allocator
// for nb_set_allocator, and strict command-line number parsing.
#ifndef NABLA_BENCH_UTIL_H
#define NABLA_BENCH_UTIL_H

#include <stdbool.h>
#include <stdint.h>

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

#endif
