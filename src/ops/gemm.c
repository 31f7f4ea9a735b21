// The one door to BLAS: C = alpha op(A) op(B) + beta C, row-major, in the tensor's dtype.
// Never called from inside an OpenMP region (OpenBLAS runs its own threads).
#include <cblas.h>

#include "ops/ops_impl.h"

// Products this small cost more in BLAS's dispatch (thread-pool lock, packing) than in
// arithmetic: a plain loop takes the per-op overhead of 1-element layers from ~1 µs to ~0.1 µs.
#define TINY_GEMM 64

// Under OMP_WAIT_POLICY=passive (tensor/parallel.h) a product of fewer multiply-adds than this
// runs on one thread. OpenBLAS's OpenMP build forks for every product above 262 144 MACs, and
// under passive each fork and join wakes a sleeping thread (~55-95 µs per region here), more
// than a second core saves on a product of ~12 M MACs (~120 µs on one core at ~100 G/s). The
// same reasoning, not the same constant, as matmul.c's batched GEMMs: theirs is 12 Mi
// (NB_GEMM_BATCH_PARALLEL_MIN_DEFAULT, 12,582,912), this one 12,000,000: a lone product in
// between may use BLAS's threads here, while a batch of that total stays serial there. Neither
// bound was tuned to that precision. With spinning waits BLAS decides, as before.
#define GEMM_PASSIVE_THREAD_MIN 12e6

// The CBLAS call itself.
static inline __attribute__((always_inline)) void
blas_gemm(nb_dtype dt, enum CBLAS_TRANSPOSE opa, enum CBLAS_TRANSPOSE opb, blasint m, blasint n,
          blasint k, double alpha, const void *a, blasint lda, const void *b, blasint ldb,
          double beta, void *c, blasint ldc) {
    if (dt == NB_F32)
        cblas_sgemm(CblasRowMajor, opa, opb, m, n, k, (float)alpha, a, lda, b, ldb, (float)beta, c,
                    ldc);
    else
        cblas_dgemm(CblasRowMajor, opa, opb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

#define DEFINE_TINY_GEMM(T, sfx)                                                                   \
    static inline __attribute__((always_inline)) void tiny_gemm_##sfx(                             \
        bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha, const T *a, int64_t lda,  \
        const T *b, int64_t ldb, double beta, T *c, int64_t ldc) {                                 \
        for (int64_t i = 0; i < m; i++)                                                            \
            for (int64_t j = 0; j < n; j++) {                                                      \
                double acc = 0;                                                                    \
                for (int64_t p = 0; p < k; p++)                                                    \
                    acc += (double)(ta ? a[p * lda + i] : a[i * lda + p]) *                        \
                           (double)(tb ? b[j * ldb + p] : b[p * ldb + j]);                         \
                /* beta = 0 must ignore C entirely (it may hold NaN), as BLAS does */              \
                double prev = beta == 0 ? 0.0 : beta * (double)c[i * ldc + j];                     \
                c[i * ldc + j] = (T)(alpha * acc + prev);                                          \
            }                                                                                      \
    }
DEFINE_TINY_GEMM(float, f32)
DEFINE_TINY_GEMM(double, f64)

// tiny_gemm for m = n = 1, the same sum in the same order: c = alpha Σ_p a_p b_p + beta c,
// with a_p = a[p lda] when a is (1, k) stored transposed, and b_p = b[p ldb] unless b is.
#define DEFINE_TINY_DOT(T, sfx)                                                                    \
    static inline __attribute__((always_inline)) void tiny_dot_##sfx(                              \
        bool ta, bool tb, int64_t k, double alpha, const T *a, int64_t lda, const T *b,            \
        int64_t ldb, double beta, T *c) {                                                          \
        const int64_t sa = ta ? lda : 1, sb = tb ? 1 : ldb;                                        \
        double acc = 0;                                                                            \
        for (int64_t p = 0; p < k; p++)                                                            \
            acc += (double)a[p * sa] * (double)b[p * sb];                                          \
        double prev = beta == 0 ? 0.0 : beta * (double)*c;                                         \
        *c = (T)(alpha * acc + prev);                                                              \
    }
DEFINE_TINY_DOT(float, f32)
DEFINE_TINY_DOT(double, f64)

// The body of nb__gemm_ld, inlined into it and into nb__gemm: a call from one to the other was
// ~20 instructions per GEMM (the library is position-independent, so a global function is not
// inlined into another), three GEMMs per iteration of bench_overhead (per-op overhead).
static inline __attribute__((always_inline)) void
gemm_body(nb_dtype dt, bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha,
          const void *a, int64_t lda_, const void *b, int64_t ldb_, double beta, void *c,
          int64_t ldc_) {
    if (m == 0 || n == 0)
        return;
    blasint lda = (blasint)lda_, ldb = (blasint)ldb_, ldc = (blasint)ldc_;
    if (k == 0) { // empty inner product: C = beta C
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++) {
                if (dt == NB_F32) {
                    float *cf = (float *)c + i * ldc_ + j;
                    *cf = beta == 0 ? 0.0f : (float)beta * *cf;
                } else {
                    double *cd = (double *)c + i * ldc_ + j;
                    *cd = beta == 0 ? 0.0 : beta * *cd;
                }
            }
        return;
    }
    if (m * n * k <= TINY_GEMM) {
        if (m == 1 && n == 1) { // a dot product (1-D · 1-D, a row times a column): no loop nest
            if (dt == NB_F32)
                tiny_dot_f32(ta, tb, k, alpha, a, lda_, b, ldb_, beta, c);
            else
                tiny_dot_f64(ta, tb, k, alpha, a, lda_, b, ldb_, beta, c);
            return;
        }
        if (dt == NB_F32)
            tiny_gemm_f32(ta, tb, m, n, k, alpha, a, lda_, b, ldb_, beta, c, ldc_);
        else
            tiny_gemm_f64(ta, tb, m, n, k, alpha, a, lda_, b, ldb_, beta, c, ldc_);
        return;
    }
    enum CBLAS_TRANSPOSE opa = ta ? CblasTrans : CblasNoTrans;
    enum CBLAS_TRANSPOSE opb = tb ? CblasTrans : CblasNoTrans;
#if defined(_OPENMP) && defined(NB_BLAS_OPENMP)
    // OpenBLAS takes its thread count from the caller's nthreads ICV at each call (matmul.c).
    if (nb__omp_passive && (double)m * (double)n * (double)k < GEMM_PASSIVE_THREAD_MIN &&
        omp_get_max_threads() > 1) {
        int threads = nb__blas_threads_push1();
        blas_gemm(dt, opa, opb, (blasint)m, (blasint)n, (blasint)k, alpha, a, lda, b, ldb, beta, c,
                  ldc);
        nb__blas_threads_pop(threads);
        return;
    }
#endif
    blas_gemm(dt, opa, opb, (blasint)m, (blasint)n, (blasint)k, alpha, a, lda, b, ldb, beta, c,
              ldc);
}

void nb__gemm(nb_dtype dt, bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha,
              const void *a, const void *b, double beta, void *c) {
    // Leading dimensions of the contiguous row-major operands.
    gemm_body(dt, ta, tb, m, n, k, alpha, a, ta ? m : k, b, tb ? k : n, beta, c, n);
}

void nb__gemm_ld(nb_dtype dt, bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha,
                 const void *a, int64_t lda_, const void *b, int64_t ldb_, double beta, void *c,
                 int64_t ldc_) {
    gemm_body(dt, ta, tb, m, n, k, alpha, a, lda_, b, ldb_, beta, c, ldc_);
}
