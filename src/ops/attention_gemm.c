// The small GEMMs of scaled_dot_product_attention (attention_kernels.inc): per (batch, head)
// slice and chunk of query rows, e.g. charlm's (32 rows) x (32 or 64 keys) x (head dim 32)
// products, seven per slice. OpenBLAS took them through its small-matrix kernels plus a call's
// dispatch, and computed the scores' masked upper triangle; here they run on register tiles
// over unpacked operands, skip what causality makes 0 (nb__agemm_cut) and take B in the NN
// layout only (attention transposes k and v once per slice). See attention_gemm_kernels.inc for
// the order of the sums: each element's bits are fixed by the shape and the ISA build (FMA in
// the AVX-512 one only), whatever the thread count.
// No size goes back to OpenBLAS: a chunk has at most 64 query rows, so every product has a
// dimension <= 64, and on such thin shapes these tiles kept up with cblas_sgemm (NN, no NT) up
// to (64, 2048, 128) (AVX-512, 1 thread: 66 vs 68 MAC/ns; (64, 256, 64): 100 vs 75).
// Built three times with GCC on x86-64 (AVX-512, AVX2, the SSE2 baseline), picked per call
// (ag_pick), as layer_norm.c; the vectors are GCC / clang vector extensions, each build lowers
// a 64-byte vector to its own registers.
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "ops/ops_impl.h"

int nb__agemm_isa = 0;

// C tiles of 8 rows: 8 x 2 vector accumulators, 16 of AVX-512's 32 registers.
#define AG_MR 8
typedef float ag_vf __attribute__((vector_size(64)));
typedef double ag_vd __attribute__((vector_size(64)));
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define AG_ISA_BUILDS 1
#include "ops/transpose16_avx512.h"
#else
#define AG_ISA_BUILDS 0
#endif

#define T float
#define SFX f32_base
#define AG_TARGET
#define AG_V ag_vf
#define AG_VL 16
#include "ops/attention_gemm_kernels.inc"
#define T double
#define SFX f64_base
#define AG_TARGET
#define AG_V ag_vd
#define AG_VL 8
#include "ops/attention_gemm_kernels.inc"
#if AG_ISA_BUILDS
#define T float
#define SFX f32_avx512
#define AG_TARGET __attribute__((target("avx512f")))
#define AG_V ag_vf
#define AG_VL 16
#include "ops/attention_gemm_kernels.inc"
#define T double
#define SFX f64_avx512
#define AG_TARGET __attribute__((target("avx512f")))
#define AG_V ag_vd
#define AG_VL 8
#include "ops/attention_gemm_kernels.inc"
#define T float
#define SFX f32_avx2
#define AG_TARGET __attribute__((target("avx2")))
#define AG_V ag_vf
#define AG_VL 16
#include "ops/attention_gemm_kernels.inc"
#define T double
#define SFX f64_avx2
#define AG_TARGET __attribute__((target("avx2")))
#define AG_V ag_vd
#define AG_VL 8
#include "ops/attention_gemm_kernels.inc"
#endif

// The best build for this CPU that nb__agemm_isa allows (__builtin_cpu_supports reads what
// libgcc's constructor found).
static int ag_pick(void) {
#if AG_ISA_BUILDS
    if (nb__agemm_isa < 1 && __builtin_cpu_supports("avx512f"))
        return 0;
    if (nb__agemm_isa < 2 && __builtin_cpu_supports("avx2"))
        return 1;
#endif
    return 2;
}

void nb__agemm_f32(bool ta, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                   int64_t lda, const float *b, int64_t ldb, bool acc, float *c, int64_t ldc,
                   const nb__agemm_cut *cut) {
    switch (ag_pick()) {
#if AG_ISA_BUILDS
    case 0:
        ag_gemm_f32_avx512(ta, m, n, k, alpha, a, lda, b, ldb, acc, c, ldc, cut);
        return;
    case 1:
        ag_gemm_f32_avx2(ta, m, n, k, alpha, a, lda, b, ldb, acc, c, ldc, cut);
        return;
#endif
    default:
        ag_gemm_f32_base(ta, m, n, k, alpha, a, lda, b, ldb, acc, c, ldc, cut);
    }
}

void nb__agemm_f64(bool ta, int64_t m, int64_t n, int64_t k, double alpha, const double *a,
                   int64_t lda, const double *b, int64_t ldb, bool acc, double *c, int64_t ldc,
                   const nb__agemm_cut *cut) {
    switch (ag_pick()) {
#if AG_ISA_BUILDS
    case 0:
        ag_gemm_f64_avx512(ta, m, n, k, alpha, a, lda, b, ldb, acc, c, ldc, cut);
        return;
    case 1:
        ag_gemm_f64_avx2(ta, m, n, k, alpha, a, lda, b, ldb, acc, c, ldc, cut);
        return;
#endif
    default:
        ag_gemm_f64_base(ta, m, n, k, alpha, a, lda, b, ldb, acc, c, ldc, cut);
    }
}

// t (w, n) = x (n rows ld apart, w columns) transposed. Plain copies, so every build gives the
// same bits; AVX-512 moves 16 x 16 blocks through registers (a scalar element-by-element
// transpose of charlm's (64, 32) k and v cost about as much as the GEMMs it saved).
#define AG_TRANSPOSE_SCALAR(T)                                                                     \
    for (int64_t p = p0; p < w; p++)                                                               \
        for (int64_t j = 0; j < n; j++)                                                            \
            t[p * n + j] = x[j * ld + p];                                                          \
    for (int64_t p = 0; p < p0; p++)                                                               \
        for (int64_t j = j0; j < n; j++)                                                           \
            t[p * n + j] = x[j * ld + p];

#if AG_ISA_BUILDS
// One 16 x 16 block: 16 rows ld apart -> t (column c of the block in t's row c, n apart).
__attribute__((target("avx512f"))) static void ag_t16(const float *x, int64_t ld, float *t,
                                                      int64_t n) {
    __m512 r[16];
    for (int i = 0; i < 16; i++)
        r[i] = _mm512_loadu_ps(x + i * ld);
    nb__t16_avx512(r);
    for (int c = 0; c < 16; c++)
        _mm512_storeu_ps(t + c * n, r[c]);
}
#endif

void nb__atranspose_f32(const float *x, int64_t n, int64_t w, int64_t ld, float *t) {
    int64_t j0 = 0, p0 = 0;
#if AG_ISA_BUILDS
    if (ag_pick() == 0) {
        j0 = n / 16 * 16, p0 = w / 16 * 16;
        for (int64_t j = 0; j < j0; j += 16)
            for (int64_t p = 0; p < p0; p += 16)
                ag_t16(x + j * ld + p, ld, t + p * n + j, n);
    }
#endif
    AG_TRANSPOSE_SCALAR(float)
}

void nb__atranspose_f64(const double *x, int64_t n, int64_t w, int64_t ld, double *t) {
    int64_t j0 = 0, p0 = 0;
    AG_TRANSPOSE_SCALAR(double)
}
