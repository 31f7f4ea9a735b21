// Library-private helpers shared by the op files: the OpenMP macro with its size threshold,
// the generated op declarations, typed-pointer shorthands and the BLAS door.
#ifndef NABLA_OPS_IMPL_H
#define NABLA_OPS_IMPL_H

#include "graph/graph_impl.h"
#include "nabla/ops.h"

// Below this many elements a kernel runs on one thread: starting a parallel region costs a
// few microseconds, more than a short loop. Tuned with bench/ (see bench/README.md).
#ifndef NB_OMP_MIN
#define NB_OMP_MIN 32768
#endif

#define NB_PRAGMA(x) _Pragma(#x)
#ifdef _OPENMP
#define NB_PARALLEL_FOR(n) NB_PRAGMA(omp parallel for schedule(static) if ((n) > NB_OMP_MIN))
#else
#define NB_PARALLEL_FOR(n)
#endif

// for (int64_t i = 0; i < n; i++) { BODY }: on the OpenMP pool above NB_OMP_MIN, otherwise a
// plain loop that never enters the OpenMP runtime (even a false if() clause costs ~0.4 µs per
// call in libgomp, which dominates ops on small tensors).
#ifdef _OPENMP
#define NB_FOR(n, i, ...)                                                                        \
    do {                                                                                         \
        if ((n) > NB_OMP_MIN) {                                                                  \
            NB_PRAGMA(omp parallel for schedule(static))                                         \
            for (int64_t i = 0; i < (n); i++) { __VA_ARGS__ }                                    \
        } else {                                                                                 \
            for (int64_t i = 0; i < (n); i++) { __VA_ARGS__ }                                    \
        }                                                                                        \
    } while (0)
#else
#define NB_FOR(n, i, ...)                                                                        \
    do {                                                                                         \
        for (int64_t i = 0; i < (n); i++) { __VA_ARGS__ }                                        \
    } while (0)
#endif

// extern const nb_op nb_op_<name>; for every op in ops.def
#define X(name) extern const nb_op nb_op_##name;
#include "ops/ops.def"
#undef X

// Typed views of a tensor's data and grad, for kernels.
#define F32(t) ((float *)(t)->data)
#define F64(t) ((double *)(t)->data)
#define G32(t) ((float *)(t)->grad)
#define G64(t) ((double *)(t)->grad)

// Does input i need its gradient accumulated?
#define NB_WANTS_GRAD(t) ((t)->requires_grad && (t)->grad != NULL)

// C = alpha op(A) op(B) + beta C for row-major contiguous operands of dtype dt, where
// op(A) is (m, k) and op(B) is (k, n); ta / tb select a transpose by GEMM flag (no copy).
void nb__gemm(nb_dtype dt, bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha,
              const void *a, const void *b, double beta, void *c);
// False if a dimension does not fit BLAS's 32-bit int.
bool nb__gemm_dims_ok(int64_t m, int64_t n, int64_t k);

#endif
