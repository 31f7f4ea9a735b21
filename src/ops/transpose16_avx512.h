// A 16 x 16 float transpose in AVX-512 registers, shared by permute's tiled gather
// (permute_avx512.inc) and attention's kᵀ / vᵀ (attention_gemm.c). Copies only: the same bits
// as a scalar transpose. Include only where the compiler accepts target("avx512f") (GCC and
// clang on x86-64) and call only when the CPU has AVX-512F.
#ifndef NB_OPS_TRANSPOSE16_AVX512_H
#define NB_OPS_TRANSPOSE16_AVX512_H

#include <immintrin.h>

// r[k] = row k of a 16 x 16 block becomes r[c] = column c, in registers.
__attribute__((target("avx512f"))) static inline void nb__t16_avx512(__m512 r[16]) {
    __m512 s[16];
    // Rows k, k+1 interleaved per 128-bit lane: s[k] = (r_k0 r_k+1,0 r_k1 r_k+1,1 | ...).
    for (int k = 0; k < 16; k += 2) {
        s[k] = _mm512_unpacklo_ps(r[k], r[k + 1]);
        s[k + 1] = _mm512_unpackhi_ps(r[k], r[k + 1]);
    }
    // Pairs of those: lane l of r[4g + c] holds column 4l + c of rows 4g .. 4g+3.
    for (int k = 0; k < 16; k += 4) {
        __m512d a = _mm512_castps_pd(s[k]), b = _mm512_castps_pd(s[k + 1]);
        __m512d c = _mm512_castps_pd(s[k + 2]), d = _mm512_castps_pd(s[k + 3]);
        r[k] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
        r[k + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
        r[k + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
        r[k + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
    }
    // Gather the four row groups' lanes: 0x88 picks lanes (0, 2) of each source, 0xdd (1, 3);
    // twice, so r[4l + c] ends as column 4l + c of all sixteen rows.
    for (int c = 0; c < 4; c++) {
        s[c] = _mm512_shuffle_f32x4(r[c], r[4 + c], 0x88);
        s[4 + c] = _mm512_shuffle_f32x4(r[c], r[4 + c], 0xdd);
        s[8 + c] = _mm512_shuffle_f32x4(r[8 + c], r[12 + c], 0x88);
        s[12 + c] = _mm512_shuffle_f32x4(r[8 + c], r[12 + c], 0xdd);
    }
    for (int c = 0; c < 4; c++) {
        r[c] = _mm512_shuffle_f32x4(s[c], s[8 + c], 0x88);
        r[8 + c] = _mm512_shuffle_f32x4(s[c], s[8 + c], 0xdd);
        r[4 + c] = _mm512_shuffle_f32x4(s[4 + c], s[12 + c], 0x88);
        r[12 + c] = _mm512_shuffle_f32x4(s[4 + c], s[12 + c], 0xdd);
    }
}

#endif
