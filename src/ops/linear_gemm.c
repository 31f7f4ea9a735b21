// linear's float32 GEMMs on register tiles of our own (AVX-512), for the mid-sized shapes of
// a small transformer: charlm's (2048 rows) x (128 or 512 in) x (128, 384, 512 or 113 out)
// forward y = x wᵀ + b, and backward dx = dy w, dw = dyᵀ x (K = 2048 rows). There OpenBLAS
// spent ~6-8 % of charlm's step packing, ~1.8 % zeroing C for beta = 0 and ~1.9 % copying the
// bias into every row of y; these tiles read the operands in place (wᵀ transposed once per
// forward into transient scratch), store C directly and add the bias in the store.
// Microbenchmark, 1 thread, AVX-512 Zen 5, hot operands, MAC/ns, cblas_sgemm as linear.c
// called it vs these 8 x 2-vector tiles: forward 100-107 vs 108-115 (with the transpose),
// dx 102-109 vs 114-118, dw 90-102 vs 112-115.
// Each C element is the sum of its products in order of the inner index, in FMAs, for dw in
// blocks of LG_KC(in) added to C in order: fixed by the shape, whatever the thread count (threads
// share whole row tiles of C; one thread doing both interleaves dx and dw block by block,
// nb__lgemm_bwd_f32, with the same sums). Only an AVX-512 build exists (GCC, x86-64); without it,
// or outside the shapes where the tiles won, linear stays on OpenBLAS (nb__lgemm_ok), whose bits
// already depend on the CPU.
#include <stdbool.h>
#include <stdint.h>

#include "ops/ops_impl.h"

int nb__lgemm_isa = 0;
int64_t nb__lgemm_min_rows = NB_LGEMM_MIN_ROWS_DEFAULT;

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#include <immintrin.h>

#include "ops/transpose16_avx512.h"
#define LG_BUILD 1
#else
#define LG_BUILD 0
#endif

// Rows and 16-float vectors of one C tile: 8 x 2 accumulators, 16 of the 32 zmm registers
// (12 x 2, 8 x 3, 6 x 4 and 14 x 2 were no faster on charlm's shapes), and dw's inner block:
// 256 rows of dy and x keep the tile's A and B streams in L1 / L2 (the whole K = 2048 at once
// ran at 82 MAC/ns instead of 114); 128 rows when x is wider than 256 (in = 512: x's block
// 256 KiB instead of 512 KiB next to dw's 256 KiB in a 1 MiB L2, 4-5 % faster; narrower x
// lost 1-2 % with 128). LG_PF: the forward's and dx's row tiles prefetch the A rows of the tile
// LG_PF ahead. In a training step A (the layer's input, dy) arrives from memory, which a hot
// microbenchmark hides: (2048, 128) x (128, 128) with x rotating over 64 buffers ran at 68-71
// MAC/ns without, 89-97 with (1 tile ahead 90, 4 ahead 90); hot, 103-107 either way; charlm's
// 1-thread step 3 % faster.
#define LG_MR 8
#define LG_PF 2
#define LG_KC(in) ((in) > 256 ? 128 : 256)

bool nb__lgemm_ok(nb_dtype dt, int64_t rows, int64_t in, int64_t out) {
#if LG_BUILD
    // B (in x out) is read from L2 by every row tile: at most 512 KiB of it.
    return dt == NB_F32 && nb__lgemm_isa == 0 && rows >= nb__lgemm_min_rows && in >= 16 &&
           out >= 16 && in <= 1024 && out <= 1024 && in * out <= 131072 &&
           __builtin_cpu_supports("avx512f");
#else
    (void)dt, (void)rows, (void)in, (void)out;
    return false;
#endif
}

#if LG_BUILD
enum { LG_STORE, LG_ACC, LG_BIAS }; // C = s, C += s, C = s + bias

#define LG_INL static inline __attribute__((always_inline, target("avx512f")))

// One tile of MR rows x NV vectors at c, over k inner indices: A's entry (i, p) is
// a[i sai + p sap], B's row p starts at b + p ldb; the last vector's columns are those of `m`.
// With `sums` (a constant at every call site, dw's tiles only: A = dyᵀ, sai = 1), the tile also
// adds A's k entries of each of its rows into sum[0 .. MR) (from 0 when `sum0`, else from sum),
// in order of p: the bias gradient Σ_rows dy, from the dy values the tile loads anyway.
// With `cont` the accumulators start from C instead of 0: the forward's chunks of the inner
// index continue one FMA chain through C (a float stored and loaded back exactly), so each
// element keeps the bits of one unbroken chain.
#define LG_DEF_TILE(MR, NV)                                                                        \
    LG_INL void lg_tile_##MR##_##NV(int64_t k, const float *a, int64_t sai, int64_t sap,           \
                                    const float *b, int64_t ldb, float *c, int64_t ldc, int mode,  \
                                    const float *bias, __mmask16 m, const bool sums, float *sum,   \
                                    bool sum0, bool cont) {                                        \
        __m512 s[MR][NV];                                                                          \
        __m256 bs8 = _mm256_setzero_ps();                                                          \
        float bs1 = 0;                                                                             \
        if (sums && !sum0) {                                                                       \
            if (MR == 8)                                                                           \
                bs8 = _mm256_loadu_ps(sum);                                                        \
            else                                                                                   \
                bs1 = sum[0];                                                                      \
        }                                                                                          \
        _Pragma("GCC unroll 8") for (int r = 0; r < MR; r++)                                       \
            _Pragma("GCC unroll 2") for (int v = 0; v < NV; v++) s[r][v] =                         \
                cont ? _mm512_maskz_loadu_ps(v == NV - 1 ? m : 0xffff, c + r * ldc + v * 16)       \
                     : _mm512_setzero_ps();                                                        \
        for (int64_t p = 0; p < k; p++) {                                                          \
            __m512 bv[NV];                                                                         \
            _Pragma("GCC unroll 2") for (int v = 0; v < NV; v++) bv[v] =                           \
                v == NV - 1 ? _mm512_maskz_loadu_ps(m, b + p * ldb + v * 16)                       \
                            : _mm512_loadu_ps(b + p * ldb + v * 16);                               \
            const float *ap = a + p * sap;                                                         \
            if (sums && MR == 8)                                                                   \
                bs8 = _mm256_add_ps(bs8, _mm256_loadu_ps(ap));                                     \
            else if (sums)                                                                         \
                bs1 += ap[0];                                                                      \
            _Pragma("GCC unroll 8") for (int r = 0; r < MR; r++) {                                 \
                __m512 x = _mm512_set1_ps(ap[r * sai]);                                            \
                _Pragma("GCC unroll 2") for (int v = 0; v < NV; v++) s[r][v] =                     \
                    _mm512_fmadd_ps(x, bv[v], s[r][v]);                                            \
            }                                                                                      \
        }                                                                                          \
        if (sums && MR == 8)                                                                       \
            _mm256_storeu_ps(sum, bs8);                                                            \
        else if (sums)                                                                             \
            sum[0] = bs1;                                                                          \
        _Pragma("GCC unroll 8") for (int r = 0; r < MR; r++)                                       \
            _Pragma("GCC unroll 2") for (int v = 0; v < NV; v++) {                                 \
            float *cp = c + r * ldc + v * 16;                                                      \
            __mmask16 mm = v == NV - 1 ? m : 0xffff;                                               \
            __m512 o = s[r][v];                                                                    \
            if (mode == LG_ACC)                                                                    \
                o = _mm512_add_ps(o, _mm512_maskz_loadu_ps(mm, cp));                               \
            else if (mode == LG_BIAS)                                                              \
                o = _mm512_add_ps(o, _mm512_maskz_loadu_ps(mm, bias + v * 16));                    \
            _mm512_mask_storeu_ps(cp, mm, o);                                                      \
        }                                                                                          \
    }
LG_DEF_TILE(8, 2)
LG_DEF_TILE(8, 1)
LG_DEF_TILE(1, 2)
LG_DEF_TILE(1, 1)

// One tile of C at column j (w columns, the last vector masked by mk): 8 rows, or mr < 8 rows
// one at a time; `sums` and sum as in LG_DEF_TILE (sum: this tile's first row's entry).
LG_INL void lg_tile(int64_t mr, int64_t w, __mmask16 mk, int64_t k, const float *a, int64_t sai,
                    int64_t sap, const float *b, int64_t ldb, float *c, int64_t ldc, int mode,
                    const float *bias, const bool sums, float *sum, bool sum0, bool cont) {
    if (mr == LG_MR && w == 32) // a constant mask: plain loads in the inner loop
        lg_tile_8_2(k, a, sai, sap, b, ldb, c, ldc, mode, bias, 0xffff, sums, sum, sum0, cont);
    else if (mr == LG_MR && w > 16)
        lg_tile_8_2(k, a, sai, sap, b, ldb, c, ldc, mode, bias, mk, sums, sum, sum0, cont);
    else if (mr == LG_MR)
        lg_tile_8_1(k, a, sai, sap, b, ldb, c, ldc, mode, bias, mk, sums, sum, sum0, cont);
    else
        for (int64_t r = 0; r < mr; r++, a += sai, c += ldc) {
            if (w > 16)
                lg_tile_1_2(k, a, sai, sap, b, ldb, c, ldc, mode, bias, mk, sums, sum + r, sum0,
                            cont);
            else
                lg_tile_1_1(k, a, sai, sap, b, ldb, c, ldc, mode, bias, mk, sums, sum + r, sum0,
                            cont);
        }
}

// Share c of nc of the 64-byte lines of [p, p + bytes): prefetched into L1, or L2 when l2.
LG_INL void lg_fetch_share(const char *p, int64_t bytes, int64_t c, int64_t nc, bool l2) {
    int64_t lines = (bytes + 63) / 64, l0 = c * lines / nc, l1 = (c + 1) * lines / nc;
    for (int64_t l = l0; l < l1; l++)
        if (l2)
            _mm_prefetch(p + l * 64, _MM_HINT_T1);
        else
            _mm_prefetch(p + l * 64, _MM_HINT_T0);
}

// C's row tiles [t0, t1) (tile t: rows [t LG_MR, min(m, (t + 1) LG_MR))), k inner indices;
// per tile, pairs of vectors while more than 16 columns remain, the last one masked (n = 113:
// 3 x 32 + 17 as 16 + 1), then a single vector (dx and dw: the forward, with its bias, runs on
// lg_panel_tiles). With sum (dw only), each row tile's first column tile also sums its rows of A
// into sum (row i into sum[i]; from 0 when sum0). With pf, each row tile also fetches the same rows
// of pf (pfw floats each, contiguous) into L2: the fused backward's x rows for the dw block that
// follows. Both fetches are spread over the row tile's column tiles, a share before each: issued
// all at once before the first (16-256 lines), they stalled it (charlm's forward ~4 % and backward
// ~3-4 % slower, cold-operand microbenchmark).
__attribute__((target("avx512f"))) static void
lg_tiles(int64_t t0, int64_t t1, int64_t m, int64_t n, int64_t k, const float *a0, int64_t sai,
         int64_t sap, const float *b, int64_t ldb, float *c0, int64_t ldc, int mode, float *sum,
         bool sum0, const float *pf, int64_t pfw) {
    const int64_t nct = (n + 31) / 32; // column tiles per row tile
    for (int64_t t = t0; t < t1; t++) {
        int64_t i0 = t * LG_MR, mr = m - i0 < LG_MR ? m - i0 : LG_MR;
        // A's rows contiguous (forward, dx): the rows of the tile LG_PF ahead, into L1
        const char *pa = NULL;
        int64_t pab = 0;
        if (sap == 1 && i0 + LG_PF * LG_MR < m) {
            int64_t r0 = i0 + LG_PF * LG_MR, nr = m - r0 < LG_MR ? m - r0 : LG_MR;
            pa = (const char *)(a0 + r0 * sai), pab = nr * sai * (int64_t)sizeof(float);
        }
        for (int64_t j = 0, jc = 0; j < n; jc++) {
            if (pa)
                lg_fetch_share(pa, pab, jc, nct, false);
            if (pf)
                lg_fetch_share((const char *)(pf + i0 * pfw), mr * pfw * (int64_t)sizeof(float), jc,
                               nct, true);
            int64_t w = n - j > 32 ? 32 : n - j, last = w > 16 ? w - 16 : w;
            __mmask16 mk = last == 16 ? 0xffff : (__mmask16)((1u << last) - 1);
            const float *a = a0 + i0 * sai;
            float *c = c0 + i0 * ldc + j;
            if (sum && j == 0)
                lg_tile(mr, w, mk, k, a, sai, sap, b + j, ldb, c, ldc, mode, NULL, true, sum + i0,
                        sum0, false);
            else
                lg_tile(mr, w, mk, k, a, sai, sap, b + j, ldb, c, ldc, mode, NULL, false, NULL,
                        false, false);
            j += w;
        }
    }
}

// wt = wᵀ of w (out, in) as panels of 32 columns: panel P (wᵀ's columns 32 P .. 32 P + 31, w's
// rows) at wt + 32 P in, its row p (in of them) 32 floats at + 32 p, so a panel is one
// contiguous run that the forward's tiles read from L1 (lg_panel_tiles). Columns past out are
// written 0 (never stored to C): wt is unzeroed scratch (nb__graph_transient). 16 x 16 blocks
// through registers; leftover columns of w (in % 16) element by element.
__attribute__((target("avx512f"))) static void lg_transpose(const float *w, int64_t out, int64_t in,
                                                            float *wt) {
    int64_t p0 = in / 16 * 16, cols = (out + 31) / 32 * 32;
    for (int64_t j = 0; j < cols; j += 16) {
        int64_t nr = out - j >= 16 ? 16 : out - j > 0 ? out - j : 0;
        float *pan = wt + j / 32 * 32 * in + j % 32;
        for (int64_t p = 0; p < p0; p += 16) {
            __m512 r[16];
            if (nr == 16)
                for (int i = 0; i < 16; i++)
                    r[i] = _mm512_loadu_ps(w + (j + i) * in + p);
            else
                for (int i = 0; i < 16; i++)
                    r[i] = i < nr ? _mm512_loadu_ps(w + (j + i) * in + p) : _mm512_setzero_ps();
            nb__t16_avx512(r);
            for (int c = 0; c < 16; c++)
                _mm512_storeu_ps(pan + (p + c) * 32, r[c]);
        }
        for (int64_t p = p0; p < in; p++)
            for (int64_t c = 0; c < 16; c++)
                pan[p * 32 + c] = c < nr ? w[(j + c) * in + p] : 0.0f;
    }
}

// Row tiles [t0, t1) of C (m, n) = A (m, k) B (+ b) with B (k, n) in panels of 32 columns
// (panel P at bp + 32 P k, its row p 32 floats at + 32 p): the forward (A = x, B = wᵀ from
// lg_transpose) and dx when stored (A = dy, B = w from nb__lgemm_pack_w). Groups of LG_FG row
// tiles; per group, chunks of LG_FKC of the inner index; per chunk, each panel's rows of the
// chunk (LG_FKC x 32 floats, 16 KiB) serve the group's tiles from L1, and the group's rows of A
// (LG_FG 8 x LG_FKC floats, 16 KiB) serve every panel. Row tile by row tile instead, each tile
// read its strip of B (k x 32, up to 64 KiB, rows 0.5-2 KiB apart, so few L1 sets) from L2 for
// itself. A tile continues its elements' FMA chains chunk after chunk through C (`cont`), the
// bias added after the last: each element keeps the bits of one chain, C = s (+ b). The next
// group's rows of A go to L1 and, with pf, the group's rows of pf (pfw floats each) to L2 (the
// interleaved backward's x for dw), a share before each tile. Cold-operand harness, charlm's
// forward shapes, 1 thread: 9-11 % less time than row tile by row tile (fc2 10 %, fc1 7 %).
#define LG_FG 4
#define LG_FKC 128
__attribute__((target("avx512f"))) static void
lg_panel_tiles(int64_t t0, int64_t t1, int64_t m, int64_t n, int64_t k, const float *a,
               const float *bp, float *c, const float *bias, const float *pf, int64_t pfw) {
    const int64_t np = (n + 31) / 32, nch = (k + LG_FKC - 1) / LG_FKC;
    for (int64_t g0 = t0; g0 < t1; g0 += LG_FG) {
        int64_t g1 = t1 - g0 < LG_FG ? t1 : g0 + LG_FG;
        int64_t r0 = g1 * LG_MR, r1 = (g1 + LG_FG) * LG_MR < m ? (g1 + LG_FG) * LG_MR : m;
        const char *pa = r0 < m ? (const char *)(a + r0 * k) : NULL;
        int64_t pab = r0 < m ? (r1 - r0) * k * (int64_t)sizeof(float) : 0;
        int64_t q0 = g0 * LG_MR, q1 = g1 * LG_MR < m ? g1 * LG_MR : m;
        int64_t nsh = nch * np * (g1 - g0), sh = 0;
        for (int64_t p0 = 0; p0 < k; p0 += LG_FKC) {
            int64_t kc = k - p0 < LG_FKC ? k - p0 : LG_FKC;
            bool last = p0 + kc == k;
            for (int64_t jp = 0; jp < np; jp++) {
                int64_t j = jp * 32, w = n - j > 32 ? 32 : n - j, lw = w > 16 ? w - 16 : w;
                __mmask16 mk = lw == 16 ? 0xffff : (__mmask16)((1u << lw) - 1);
                const float *b = bp + jp * 32 * k + p0 * 32, *bj = bias ? bias + j : NULL;
                for (int64_t t = g0; t < g1; t++, sh++) {
                    if (pa)
                        lg_fetch_share(pa, pab, sh, nsh, false);
                    if (pf)
                        lg_fetch_share((const char *)(pf + q0 * pfw),
                                       (q1 - q0) * pfw * (int64_t)sizeof(float), sh, nsh, true);
                    int64_t i0 = t * LG_MR, mr = m - i0 < LG_MR ? m - i0 : LG_MR;
                    lg_tile(mr, w, mk, kc, a + i0 * k + p0, k, 1, b, 32, c + i0 * n + j, n,
                            last && bias ? LG_BIAS : LG_STORE, bj, false, NULL, false, p0 > 0);
                }
            }
        }
    }
}
#endif

#if LG_BUILD
// dw's row tiles [lo, hi) over the block of inner rows from p0 (LG_KC(in) of them, fewer at
// the end): dw (out, in) += or = dyᵀ x for those rows, db summed from their dy in the same
// tiles; the first block stores (unless acc) and starts db from 0 (unless db_acc). Both
// nb__lgemm_dw_part_f32 and nb__lgemm_bwd_f32 go through it, so their bits agree.
static void lg_dw_block(int64_t lo, int64_t hi, int64_t p0, int64_t rows, const float *dy,
                        const float *x, float *dw, int64_t in, int64_t out, bool acc, float *db,
                        bool db_acc) {
    int64_t kc = rows - p0 < LG_KC(in) ? rows - p0 : LG_KC(in);
    lg_tiles(lo, hi, out, in, kc, dy + p0 * out, 1, out, x + p0 * in, in, dw, in,
             acc || p0 > 0 ? LG_ACC : LG_STORE, db, !db_acc && p0 == 0, NULL, 0);
}

// dx's row tiles [lo, hi): dx (rows, in) = dy w, added when acc. Stored, with w's panels wp,
// on lg_panel_tiles (chunks of out continued through dx); else on w itself. pf, pfw as in
// lg_tiles (the interleaved backward's x). nb__lgemm_dx_part_f32 and nb__lgemm_bwd_f32 both
// go through it.
static void lg_dx_tiles(int64_t lo, int64_t hi, const float *dy, const float *w, const float *wp,
                        float *dx, int64_t rows, int64_t in, int64_t out, bool acc, const float *pf,
                        int64_t pfw) {
    if (wp && !acc)
        lg_panel_tiles(lo, hi, rows, in, out, dy, wp, dx, NULL, pf, pfw);
    else
        lg_tiles(lo, hi, rows, in, out, dy, out, 1, w, in, dx, in, acc ? LG_ACC : LG_STORE, NULL,
                 false, pf, pfw);
}
#endif

void nb__lgemm_fwd_f32(const float *x, const float *w, const float *b, float *y, int64_t rows,
                       int64_t in, int64_t out, float *wt) {
#if LG_BUILD
    lg_transpose(w, out, in, wt); // wt: wᵀ in panels of 32 columns
    // Row tiles of y shared over the OpenMP team (whole tiles per thread) above NB_LGEMM_PAR_MIN
    // multiply-adds.
    int64_t tiles = nb__lgemm_tiles(rows);
    NB_RANGES(tiles, rows * in * out > NB_LGEMM_PAR_MIN ? 1 : tiles, lo, hi,
              lg_panel_tiles(lo, hi, rows, out, in, x, wt, y, b, NULL, 0));
#else
    (void)x, (void)w, (void)b, (void)y, (void)rows, (void)in, (void)out, (void)wt;
#endif
}

void nb__lgemm_pack_w(const float *w, int64_t out, int64_t in, float *wp) {
    // panel P (w's columns 32 P .. 32 P + 31) at wp + 32 P out, its row p at + 32 p
    for (int64_t j = 0; j < in; j += 32)
        for (int64_t p = 0; p < out; p++) {
            float *d = wp + j * out + p * 32;
            const float *r = w + p * in + j;
            int64_t wd = in - j < 32 ? in - j : 32;
            for (int64_t c = 0; c < 32; c++)
                d[c] = c < wd ? r[c] : 0.0f;
        }
}

int64_t nb__lgemm_tiles(int64_t m) {
    return (m + LG_MR - 1) / LG_MR;
}

void nb__lgemm_dx_part_f32(int64_t lo, int64_t hi, const float *dy, const float *w, float *dx,
                           int64_t rows, int64_t in, int64_t out, bool acc, const float *wp) {
#if LG_BUILD
    lg_dx_tiles(lo, hi, dy, w, wp, dx, rows, in, out, acc, NULL, 0);
#else
    (void)lo, (void)hi, (void)dy, (void)w, (void)dx, (void)rows, (void)in, (void)out, (void)acc;
    (void)wp;
#endif
}

void nb__lgemm_dw_part_f32(int64_t lo, int64_t hi, const float *dy, const float *x, float *dw,
                           int64_t rows, int64_t in, int64_t out, bool acc, float *db,
                           bool db_acc) {
#if LG_BUILD
    // dw (out, in): A = dyᵀ, entry (o, r) at dy[r out + o]; B = x's rows. db (out) = Σ_r dy[r]
    // in the same tiles, block after block: each entry's sum in order of r.
    for (int64_t p0 = 0; p0 < rows; p0 += LG_KC(in))
        lg_dw_block(lo, hi, p0, rows, dy, x, dw, in, out, acc, db, db_acc);
#else
    (void)lo, (void)hi, (void)dy, (void)x, (void)dw, (void)rows, (void)in, (void)out, (void)acc;
    (void)db, (void)db_acc;
#endif
}

void nb__lgemm_bwd_f32(const float *dy, const float *x, const float *w, float *dx, float *dw,
                       int64_t rows, int64_t in, int64_t out, bool dx_acc, bool dw_acc, float *db,
                       bool db_acc, const float *wp) {
#if LG_BUILD
    // Block after block of dw's inner rows: dx's rows of the block first (they read the block
    // of dy and fetch the block of x into L2), then the block's dw and db, from L2.
    for (int64_t p0 = 0; p0 < rows; p0 += LG_KC(in)) {
        int64_t p1 = rows - p0 < LG_KC(in) ? rows : p0 + LG_KC(in);
        lg_dx_tiles(p0 / LG_MR, (p1 + LG_MR - 1) / LG_MR, dy, w, wp, dx, rows, in, out, dx_acc, x,
                    in);
        lg_dw_block(0, nb__lgemm_tiles(out), p0, rows, dy, x, dw, in, out, dw_acc, db, db_acc);
    }
#else
    (void)dy, (void)x, (void)w, (void)dx, (void)dw, (void)rows, (void)in, (void)out;
    (void)dx_acc, (void)dw_acc, (void)db, (void)db_acc, (void)wp;
#endif
}
