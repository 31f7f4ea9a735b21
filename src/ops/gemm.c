// The one door to BLAS: C = alpha op(A) op(B) + beta C, row-major, in the tensor's dtype.
// Never called from inside an OpenMP region (OpenBLAS runs its own threads).
#include <cblas.h>

#include "ops/ops_impl.h"

// Products this small cost more in BLAS's dispatch (thread-pool lock, packing) than in
// arithmetic: a plain loop takes the per-op overhead of 1-element layers from ~1 µs to ~0.1 µs.
#define TINY_GEMM 64

#define DEFINE_TINY_GEMM(T, sfx)                                                                   \
    static void tiny_gemm_##sfx(bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha,   \
                                const T *a, const T *b, double beta, T *c) {                       \
        for (int64_t i = 0; i < m; i++)                                                            \
            for (int64_t j = 0; j < n; j++) {                                                      \
                double acc = 0;                                                                    \
                for (int64_t p = 0; p < k; p++)                                                    \
                    acc += (double)(ta ? a[p * m + i] : a[i * k + p]) *                            \
                           (double)(tb ? b[j * k + p] : b[p * n + j]);                             \
                /* beta = 0 must ignore C entirely (it may hold NaN), as BLAS does */              \
                double prev = beta == 0 ? 0.0 : beta * (double)c[i * n + j];                       \
                c[i * n + j] = (T)(alpha * acc + prev);                                            \
            }                                                                                      \
    }
DEFINE_TINY_GEMM(float, f32)
DEFINE_TINY_GEMM(double, f64)

static void tiny_gemm(nb_dtype dt, bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha,
                      const void *a, const void *b, double beta, void *c) {
    if (dt == NB_F32)
        tiny_gemm_f32(ta, tb, m, n, k, alpha, a, b, beta, c);
    else
        tiny_gemm_f64(ta, tb, m, n, k, alpha, a, b, beta, c);
}

void nb__gemm(nb_dtype dt, bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha,
              const void *a, const void *b, double beta, void *c) {
    if (m == 0 || n == 0)
        return;
    // Leading dimensions of the row-major operands as stored.
    blasint lda = (blasint)(ta ? m : k);
    blasint ldb = (blasint)(tb ? k : n);
    blasint ldc = (blasint)n;
    if (k == 0) { // empty inner product: C = beta C
        int64_t mn = m * n;
        for (int64_t i = 0; i < mn; i++) {
            if (dt == NB_F32)
                ((float *)c)[i] = beta == 0 ? 0.0f : (float)beta * ((float *)c)[i];
            else
                ((double *)c)[i] = beta == 0 ? 0.0 : beta * ((double *)c)[i];
        }
        return;
    }
    if (m * n * k <= TINY_GEMM) {
        tiny_gemm(dt, ta, tb, m, n, k, alpha, a, b, beta, c);
        return;
    }
    enum CBLAS_TRANSPOSE opa = ta ? CblasTrans : CblasNoTrans;
    enum CBLAS_TRANSPOSE opb = tb ? CblasTrans : CblasNoTrans;
    if (dt == NB_F32)
        cblas_sgemm(CblasRowMajor, opa, opb, (blasint)m, (blasint)n, (blasint)k, (float)alpha, a,
                    lda, b, ldb, (float)beta, c, ldc);
    else
        cblas_dgemm(CblasRowMajor, opa, opb, (blasint)m, (blasint)n, (blasint)k, alpha, a, lda, b,
                    ldb, beta, c, ldc);
}
