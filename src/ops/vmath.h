// Library-private vectorised transcendental kernels over contiguous arrays (issue 17).
//
// Why our own polynomials and not SLEEF (Debian libsleef-dev): the kernels below are plain C
// that GCC vectorises under `#pragma omp simd`, built three times (AVX-512, AVX2 (+ FMA for
// float32), SSE2 baseline) and picked once at load time, so the portable build (no -march) still
// runs 16 floats per instruction on this CPU. Four reasons decided it:
//  1. Bitwise reproducibility. The kernels use only IEEE +, -, ×, ÷, bit casts and selects, with
//     FMA contraction off (float32: explicit fmaf, correctly rounded everywhere), so every lane,
//     the scalar remainder and every ISA build give the same bits for the same input: results
//     cannot depend on the thread count (which moves the chunk boundaries between vector body
//     and remainder) nor on the CPU. SLEEF's scalar and
//     vector entry points (and its FMA and non-FMA variants) may differ in the last bit.
//  2. Fusion. The element functions inline into each loop, so GELU backward computes Φ and φ
//     from one exp(-x²/2), softplus and its derivative share one exp, and softmax sums as it
//     goes. Debian's SLEEF 3.5 has no inline headers: every 8 or 16 elements is an out-of-line
//     call per function and per ISA-specific vector type (intrinsics code per width).
//  3. No new dependency for users and CI (the library stays OpenBLAS + libm + OpenMP).
//  4. Accuracy is stated and tested here: a dense sweep in tests/test_vmath.c measures the max
//     ulp error of every kernel against libm in higher precision; bounds are in vmath_f32.c and
//     vmath_f64.c beside each function. The polynomial coefficients come from
//     scripts/vmath_fit.py (mpmath), so they can be regenerated and checked.
// Cost of the choice: we maintain ~600 lines of numerics; SLEEF's 1-ulp guarantee is tighter
// for erf and tanh than ours (≤ 3 ulp, see the tables there).
//
// Forward kernels write y[i] = f(x[i]); backward kernels accumulate gx[i] += gy[i] f'(x[i])
// (the _bwdset ones store gx[i] = gy[i] f'(x[i])).
// n may be 0; arrays must not overlap except y == x (in place) for the forward kernels.
// The kernels are serial: callers split work across threads in chunks.
#ifndef NABLA_VMATH_H
#define NABLA_VMATH_H

#include <stdint.h>

#define NB_VM_UNARY(sfx, T)                                                                         \
    void nb_vm_exp_##sfx(const T *x, T *y, int64_t n);                                              \
    void nb_vm_log_##sfx(const T *x, T *y, int64_t n);                                              \
    void nb_vm_tanh_##sfx(const T *x, T *y, int64_t n);                                             \
    void nb_vm_sigmoid_##sfx(const T *x, T *y, int64_t n);                                          \
    void nb_vm_erf_##sfx(const T *x, T *y, int64_t n);                                              \
    void nb_vm_gelu_##sfx(const T *x, T *y, int64_t n);                                             \
    void nb_vm_gelu_tanh_##sfx(const T *x, T *y, int64_t n);                                        \
    void nb_vm_silu_##sfx(const T *x, T *y, int64_t n);                                             \
    void nb_vm_softplus_##sfx(const T *x, T *y, int64_t n);                                         \
    void nb_vm_elu_##sfx(const T *x, T *y, int64_t n, T alpha);                                     \
    void nb_vm_gelu_bwd_##sfx(const T *x, const T *gy, T *gx, int64_t n);                           \
    void nb_vm_gelu_tanh_bwd_##sfx(const T *x, const T *gy, T *gx, int64_t n);                      \
    void nb_vm_silu_bwd_##sfx(const T *x, const T *gy, T *gx, int64_t n);                           \
    void nb_vm_softplus_bwd_##sfx(const T *x, const T *gy, T *gx, int64_t n);                       \
    /* the same backward kernels storing gx[i] = gy[i] f'(x[i]) (gx's first write) */               \
    void nb_vm_gelu_bwdset_##sfx(const T *x, const T *gy, T *gx, int64_t n);                        \
    void nb_vm_gelu_tanh_bwdset_##sfx(const T *x, const T *gy, T *gx, int64_t n);                   \
    void nb_vm_silu_bwdset_##sfx(const T *x, const T *gy, T *gx, int64_t n);                        \
    void nb_vm_softplus_bwdset_##sfx(const T *x, const T *gy, T *gx, int64_t n);                    \
    /* y = e^(x - m); returns Σ y accumulated in double (8 fixed partial sums, so the order  */    \
    /* and the result do not depend on the ISA).                                             */     \
    double nb_vm_exp_shift_sum_##sfx(const T *x, T m, T *y, int64_t n);                             \
    /* The same over rows (n apart) of one block, attention's causal score chunks: row r gets  */   \
    /* y = e^(x - m[r]) in its first lim[r] entries and 0 in the rest of its n, sum[r] its sum */   \
    /* with exp_shift_sum's bits (no sums when sum is NULL); one call per block, not per row.  */   \
    void nb_vm_exp_shift_rows_##sfx(const T *x, const T *m, const int64_t *lim, T *y, double *sum,  \
                                    int64_t rows, int64_t n);                                       \
    /* log_softmax backward row: gx += gy - e^y d */                                                \
    void nb_vm_log_softmax_bwd_##sfx(const T *y, const T *gy, T *gx, T d, int64_t n);               \
    /* y += c e^x (cross-entropy backward: c p from log-probabilities x) */                         \
    void nb_vm_add_scaled_exp_##sfx(const T *x, T c, T *y, int64_t n);                              \
    /* softplus with β > 0 and threshold (PyTorch's Softplus): y = x where βx > thr, else    */   \
    /* ln(1 + e^(βx))/β; backward gx += gy (βx > thr ? 1 : σ(βx)).                          */ \
    void nb_vm_softplus_bt_##sfx(const T *x, T *y, int64_t n, double beta, double thr);             \
    void nb_vm_softplus_bt_bwd_##sfx(const T *x, const T *gy, T *gx, int64_t n, double beta,        \
                                     double thr);

NB_VM_UNARY(f32, float)
NB_VM_UNARY(f64, double)
#undef NB_VM_UNARY

// Σ x[0 .. n) in double, in eight partial sums by position (i mod 8) added in a fixed tree:
// vector speed instead of one dependent add per element, and bits fixed by n alone (whatever
// the thread count or ISA). The sums of exp_shift_sum and exp_shift_rows, of cross-entropy (so
// its two paths agree) and of reduce.c's contiguous sums.
#define NB_SUM8_DEF(T, sfx)                                                                        \
    static inline double nb__sum8_##sfx(const T *x, int64_t n) {                                   \
        double acc[8] = {0};                                                                       \
        int64_t i = 0;                                                                             \
        for (; i + 8 <= n; i += 8)                                                                 \
            for (int j = 0; j < 8; j++)                                                            \
                acc[j] += (double)x[i + j];                                                        \
        for (int j = 0; i + j < n; j++)                                                            \
            acc[j] += (double)x[i + j];                                                            \
        return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));  \
    }
NB_SUM8_DEF(float, f32)
NB_SUM8_DEF(double, f64)
#undef NB_SUM8_DEF

// Which clone the loader picked ("avx512f", "avx2" or "baseline"), for bench reports.
const char *nb_vm_isa(void);

#endif
