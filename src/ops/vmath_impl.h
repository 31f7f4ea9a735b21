// Private to vmath_f32.c / vmath_f64.c: the clone attribute and the loop shapes every kernel
// uses. Each kernel is one `#pragma omp simd` loop over static inline element functions that
// use no libm calls, no branches (selects only) and no FMA (-ffp-contract=off on these files),
// so the vector body and the scalar remainder compute identical bits.
#ifndef NABLA_VMATH_IMPL_H
#define NABLA_VMATH_IMPL_H

#include <stdint.h>
#include <string.h>

#include "ops/vmath.h"

// Three builds of every kernel, chosen once by an ifunc resolver: AVX-512 (16 floats), AVX2
// (8 floats), and the x86-64 baseline (SSE2, 4 floats). GCC on x86-64 only; elsewhere (and with
// clang, whose target_clones needs a newer release than Debian 12 ships) one portable build.
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && !defined(NB_VM_NO_CLONES)
#define NB_VM_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#define NB_VM_HAVE_CLONES 1
#else
#define NB_VM_CLONES
#define NB_VM_HAVE_CLONES 0
#endif

// Element functions must inline into the loops or the loops stay scalar (GCC's size limits
// keep the larger ones, like the GELU core, out otherwise).
#if defined(__GNUC__)
#define NB_VM_INLINE static inline __attribute__((always_inline))
#else
#define NB_VM_INLINE static inline
#endif

#define NB_VM_PRAGMA(x) _Pragma(#x)
#define NB_VM_SIMD NB_VM_PRAGMA(omp simd)

// y[i] = F(x[i])
#define NB_VM_MAP(name, T, F)                                                                      \
    NB_VM_CLONES void name(const T *x, T *y, int64_t n) {                                          \
        NB_VM_SIMD for (int64_t i = 0; i < n; i++) y[i] = F(x[i]);                                 \
    }
// gx[i] += gy[i] D(x[i])
#define NB_VM_GRAD(name, T, D)                                                                     \
    NB_VM_CLONES void name(const T *x, const T *gy, T *gx, int64_t n) {                            \
        NB_VM_SIMD for (int64_t i = 0; i < n; i++) gx[i] += gy[i] * D(x[i]);                       \
    }

#endif
