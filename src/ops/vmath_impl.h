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

// The float32 kernels use fmaf: a fused multiply-add is correctly rounded, so it gives the same
// bits in every lane, the scalar remainder, every ISA and at -O0 (where it is a libm call), and
// it halves the polynomial work. Their builds must therefore have FMA: AVX-512 (which implies
// it), AVX2 + FMA, and the baseline, where fmaf stays a libm call (slow, same bits).
// target_clones cannot name "avx2,fma" as one clone, so the three builds and the ifunc resolver
// are written out. NB_VM_KERNEL(ret, retkw, name, params, args) defines `ret name params` and
// opens the always-inlined body the builds share; retkw is `return`, or empty for void.
#define NB_VM_BODY(ret, name, params)                                                              \
    static inline __attribute__((always_inline)) ret name##_body params
#if NB_VM_HAVE_CLONES
// The resolver runs while the dynamic loader relocates, before the sanitizer runtimes are up:
// it must not be instrumented (an ASan check of __cpu_model would fault).
#define NB_VM_RESOLVER __attribute__((no_sanitize("address", "undefined"), no_instrument_function))
#define NB_VM_KERNEL(ret, retkw, name, params, args)                                               \
    NB_VM_BODY(ret, name, params);                                                                 \
    __attribute__((target("avx512f"))) static ret name##_avx512 params {                           \
        retkw name##_body args;                                                                    \
    }                                                                                              \
    __attribute__((target("avx2,fma"))) static ret name##_avx2 params {                            \
        retkw name##_body args;                                                                    \
    }                                                                                              \
    static ret name##_base params {                                                                \
        retkw name##_body args;                                                                    \
    }                                                                                              \
    NB_VM_RESOLVER static ret(*name##_pick(void)) params {                                         \
        __builtin_cpu_init();                                                                      \
        if (__builtin_cpu_supports("avx512f"))                                                     \
            return name##_avx512;                                                                  \
        if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))                       \
            return name##_avx2;                                                                    \
        return name##_base;                                                                        \
    }                                                                                              \
    ret name params __attribute__((ifunc(#name "_pick")));                                         \
    NB_VM_BODY(ret, name, params)
#else
#define NB_VM_KERNEL(ret, retkw, name, params, args)                                               \
    NB_VM_BODY(ret, name, params);                                                                 \
    ret name params {                                                                              \
        retkw name##_body args;                                                                    \
    }                                                                                              \
    NB_VM_BODY(ret, name, params)
#endif
// NB_VM_KERNEL's counterpart for kernels without FMA (float64: plain +, -, ×, ÷), same arguments:
// GCC's own target_clones and resolver.
#define NB_VM_CLONED(ret, retkw, name, params, args) NB_VM_CLONES ret name params

// y[i] = F(x[i]), and gx[i] += gy[i] D(x[i]) (name) or gx[i] = gy[i] D(x[i]) (setname: gx's
// first write, one pass instead of zeroing then adding), each defined by DEF: NB_VM_KERNEL (the
// FMA builds) or NB_VM_CLONED
#define NB_VM_MAP_DEF(DEF, name, T, F)                                                             \
    DEF(void, , name, (const T *x, T *y, int64_t n), (x, y, n)) {                                  \
        NB_VM_SIMD for (int64_t i = 0; i < n; i++) y[i] = F(x[i]);                                 \
    }
#define NB_VM_GRAD_DEF(DEF, name, setname, T, D)                                                   \
    DEF(void, , name, (const T *x, const T *gy, T *gx, int64_t n), (x, gy, gx, n)) {               \
        NB_VM_SIMD for (int64_t i = 0; i < n; i++) gx[i] += gy[i] * D(x[i]);                       \
    }                                                                                              \
    DEF(void, , setname, (const T *x, const T *gy, T *gx, int64_t n), (x, gy, gx, n)) {            \
        NB_VM_SIMD for (int64_t i = 0; i < n; i++) gx[i] = gy[i] * D(x[i]);                        \
    }
#define NB_VM_MAP_FMA(name, T, F) NB_VM_MAP_DEF(NB_VM_KERNEL, name, T, F)
#define NB_VM_GRAD_FMA(name, setname, T, D) NB_VM_GRAD_DEF(NB_VM_KERNEL, name, setname, T, D)
#define NB_VM_MAP(name, T, F) NB_VM_MAP_DEF(NB_VM_CLONED, name, T, F)
#define NB_VM_GRAD(name, setname, T, D) NB_VM_GRAD_DEF(NB_VM_CLONED, name, setname, T, D)

// The same loops for element functions F(x, c) taking a clamp bound c that the compiler must not
// see as a constant: with a known bound, GCC if-converts `a > c ? c : a` by evaluating the
// function's first steps at c at compile time and blending those constants in at each step
// (six extra blends in GELU), where one compare and blend on the input is all a vector needs.
#if defined(__GNUC__)
#define NB_VM_OPAQUE(v) __asm__("" : "+m"(v))
#else
#define NB_VM_OPAQUE(v) (void)0
#endif
#define NB_VM_MAP_FMA_C(name, T, F, C)                                                             \
    NB_VM_KERNEL(void, , name, (const T *x, T *y, int64_t n), (x, y, n)) {                         \
        T c = C;                                                                                   \
        NB_VM_OPAQUE(c);                                                                           \
        NB_VM_SIMD for (int64_t i = 0; i < n; i++) y[i] = F(x[i], c);                              \
    }
#define NB_VM_GRAD_FMA_C(name, setname, T, D, C)                                                   \
    NB_VM_KERNEL(void, , name, (const T *x, const T *gy, T *gx, int64_t n), (x, gy, gx, n)) {      \
        T c = C;                                                                                   \
        NB_VM_OPAQUE(c);                                                                           \
        NB_VM_SIMD for (int64_t i = 0; i < n; i++) gx[i] += gy[i] * D(x[i], c);                    \
    }                                                                                              \
    NB_VM_KERNEL(void, , setname, (const T *x, const T *gy, T *gx, int64_t n), (x, gy, gx, n)) {   \
        T c = C;                                                                                   \
        NB_VM_OPAQUE(c);                                                                           \
        NB_VM_SIMD for (int64_t i = 0; i < n; i++) gx[i] = gy[i] * D(x[i], c);                     \
    }

// Element functions must inline into the loops or the loops stay scalar (GCC's size limits
// keep the larger ones, like the GELU core, out otherwise).
#if defined(__GNUC__)
#define NB_VM_INLINE static inline __attribute__((always_inline))
#else
#define NB_VM_INLINE static inline
#endif

#define NB_VM_PRAGMA(x) _Pragma(#x)
#define NB_VM_SIMD NB_VM_PRAGMA(omp simd)

#endif
