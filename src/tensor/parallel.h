// Library-private: the OpenMP loop macros and their size threshold, shared by every module
// with elementwise loops (ops, optim). They vanish when OpenMP is off.
#ifndef NABLA_PARALLEL_H
#define NABLA_PARALLEL_H

#include <stdbool.h>
#include <stdint.h>
#ifdef _OPENMP
#include <omp.h>
#endif

// A function built for AVX-512, AVX2 and the x86-64 baseline, the best picked once at load time
// (the library itself is compiled for the baseline). GCC on x86-64 only: Debian 12's clang
// lacks the target_clones support these need; elsewhere one portable build. Files using it are
// compiled without FMA contraction (CMakeLists.txt), so every build gives the same bits.
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define NB_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define NB_CLONES
#endif

// Below this many elements a kernel runs on one thread: starting a parallel region costs more
// than a short loop. How much depends on libgomp's wait policy, read once at load time
// (parallel.c): when waiting threads spin (the default, or active) a fork-join is ~1-3 µs and
// bench/ checks that at 64 K elements 2 threads beat 1 for every kernel measured (see
// bench/README.md); under OMP_WAIT_POLICY=passive a waiting thread sleeps at once, and each
// fork and join wakes it (~55-60 µs per region on the idle 2-vCPU VM, a loop of 100 µs of work
// takes 104-116 µs split over 2 threads), so the threshold is 16 times higher (512 K elements,
// ~100 µs of a streaming f32 loop). Not finely tuned. A variable so that tests can set it.
#define NB_OMP_MIN_DEFAULT ((int64_t)32768)
#define NB_OMP_MIN_PASSIVE (16 * NB_OMP_MIN_DEFAULT)
extern int64_t nb__omp_min;
#define NB_OMP_MIN nb__omp_min
// True when OMP_WAIT_POLICY is passive (case-insensitive, as libgomp reads it), set with
// nb__omp_min at load time; nb__omp_min_for(policy) is the threshold for a policy string.
extern bool nb__omp_passive;
int64_t nb__omp_min_for(const char *wait_policy);

// Batched GEMMs (src/ops/matmul.c) share a batch over the OpenMP team only from this many
// multiply-adds per loop (matmul.c gives the measurement). A variable so that tests can lower
// it to reach the parallel path on small shapes; it starts at the default.
#define NB_GEMM_BATCH_PARALLEL_MIN_DEFAULT ((int64_t)12 << 20)
extern int64_t nb__gemm_batch_parallel_min;

#define NB_PRAGMA(x) _Pragma(#x)
#ifdef _OPENMP
// A team of one (nb_set_num_threads(1)) runs the serial branch of NB_FOR_IF_ and NB_RANGES:
// libgomp's one-thread region still costs ~0.3 us (an empty region, hot; ~0.5 us measured in
// net B's step, which entered two per step at 1 thread: the batch gather and W1's SGD update;
// bench/README.md, "Net B, round 4"). The check is a read of the OpenMP ICV, ~2 ns.
#define NB_TEAM_ (omp_get_max_threads() > 1)
#define NB_PARALLEL_FOR(n) NB_PRAGMA(omp parallel for schedule(static) if ((n) > NB_OMP_MIN))
#else
#define NB_PARALLEL_FOR(n)
#endif

// for (int64_t i = 0; i < n; i++) { BODY }: on the OpenMP pool above NB_OMP_MIN, otherwise a
// plain loop that never enters the OpenMP runtime (even a false if() clause costs ~0.4 µs per
// call in libgomp, which dominates ops on small tensors). NB_FOR_SIMD also asks for SIMD in the
// parallel loop: only for pure arithmetic bodies (measured ~10 % faster SGD on 784-512-512-10),
// never for bodies that call libm, whose vector variants could round differently.
#ifdef _OPENMP
// The loop on the OpenMP team when `cond` holds, serially otherwise (same body either way).
#define NB_FOR_IF_(CLAUSE, cond, n, i, ...)                                                        \
    do {                                                                                           \
        if ((cond) && NB_TEAM_) {                                                                  \
            NB_PRAGMA(omp parallel for CLAUSE schedule(static))                                    \
            for (int64_t i = 0; i < (n); i++) {                                                    \
                __VA_ARGS__                                                                        \
            }                                                                                      \
        } else {                                                                                   \
            for (int64_t i = 0; i < (n); i++) {                                                    \
                __VA_ARGS__                                                                        \
            }                                                                                      \
        }                                                                                          \
    } while (0)
#else
#define NB_FOR_IF_(CLAUSE, cond, n, i, ...)                                                        \
    do {                                                                                           \
        for (int64_t i = 0; i < (n); i++) {                                                        \
            __VA_ARGS__                                                                            \
        }                                                                                          \
    } while (0)
#endif
#define NB_FOR_(CLAUSE, n, i, ...) NB_FOR_IF_(CLAUSE, (n) > NB_OMP_MIN, n, i, __VA_ARGS__)
#define NB_FOR(n, i, ...) NB_FOR_(, n, i, __VA_ARGS__)
#define NB_FOR_SIMD(n, i, ...) NB_FOR_(simd, n, i, __VA_ARGS__)

// As NB_FOR over n items whose total work is `work` elements (e.g. the channels of a batch
// norm, the planes of a pooling): on the pool when the work, not the item count, is above
// NB_OMP_MIN and there are at least 2 items. Each item is still done by one thread.
#define NB_FOR_WORK(n, work, i, ...) NB_FOR_IF_(, (work) > NB_OMP_MIN && (n) > 1, n, i, __VA_ARGS__)

// This thread's contiguous share [lo, hi) of [0, n) inside a parallel region (the shares of
// schedule(static): the first n % threads threads take one more), all of it outside one.
static inline void nb__share(int64_t n, int64_t *lo, int64_t *hi) {
#ifdef _OPENMP
    const int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
#else
    const int64_t t = 0, nt = 1;
#endif
    const int64_t q = n / nt, r = n % nt;
    *lo = t * q + (t < r ? t : r);
    *hi = *lo + q + (t < r);
}

// { BODY } with [lo, hi) bound to a contiguous share of [0, n): above `min` once per thread
// of the OpenMP team (nb__share's), otherwise once with [0, n) outside the OpenMP runtime. For
// kernels whose loop lives in its own function (an ISA clone: an `omp parallel for` around a call
// cannot split its loop).
#ifdef _OPENMP
#define NB_RANGES(n, min, lo, hi, ...)                                                             \
    do {                                                                                           \
        const int64_t n_ = (n);                                                                    \
        if (n_ > (min) && NB_TEAM_) {                                                              \
            NB_PRAGMA(omp parallel) {                                                              \
                int64_t lo, hi;                                                                    \
                nb__share(n_, &lo, &hi);                                                           \
                __VA_ARGS__;                                                                       \
            }                                                                                      \
        } else {                                                                                   \
            const int64_t lo = 0, hi = n_;                                                         \
            __VA_ARGS__;                                                                           \
        }                                                                                          \
    } while (0)
#else
#define NB_RANGES(n, min, lo, hi, ...)                                                             \
    do {                                                                                           \
        const int64_t lo = 0, hi = (n);                                                            \
        __VA_ARGS__;                                                                               \
    } while (0)
#endif

// One region for several kernels of different sizes (linear's backward: dx's row tiles, dw's,
// the bias grad's column blocks): { BODY } once per thread of the team when `cond` holds (and
// the team has more than one thread), otherwise once outside the OpenMP runtime. In BODY,
// nb__share(n, &lo, &hi) gives this thread the contiguous share [lo, hi) of [0, n) that
// NB_RANGES would (all of it outside a region), so each item stays on one thread, with no
// barrier between the kernels: only for kernels writing disjoint buffers.
#ifdef _OPENMP
#define NB_TEAM_IF(cond, ...)                                                                      \
    do {                                                                                           \
        if ((cond) && NB_TEAM_) {                                                                  \
            NB_PRAGMA(omp parallel) {                                                              \
                __VA_ARGS__;                                                                       \
            }                                                                                      \
        } else {                                                                                   \
            __VA_ARGS__;                                                                           \
        }                                                                                          \
    } while (0)
#else
#define NB_TEAM_IF(cond, ...)                                                                      \
    do {                                                                                           \
        (void)(cond); /* no team: cond is only read (it names variables set for it) */             \
        __VA_ARGS__;                                                                               \
    } while (0)
#endif

#endif
