// Library-private helpers shared by the op files: the generated op declarations, typed-pointer
// shorthands and the BLAS door. The threading macros live in tensor/parallel.h.
#ifndef NABLA_OPS_IMPL_H
#define NABLA_OPS_IMPL_H

// The op files define the functions that nabla/ops.h wraps in call-site macros, and an op
// that calls another op (a backward built from ops) must not record the library's own line
// as the user's call site: the library sees the plain functions only.
#define NB_NO_SITE_MACROS
#include <string.h>

#include "graph/graph_impl.h"
#include "nabla/ops.h"
#include "ops/vmath.h" // nb__sum8_<sfx>

#include "tensor/parallel.h"

// permute.c: true keeps the tiled float gather off AVX-512 (the SSE path), so that tests reach
// both paths on an AVX-512 machine; false (the default) uses AVX-512 when the CPU has it.
extern bool nb__permute_no_avx512;

// extern const nb_op nb_op_<name>; for every op in ops.def
#define X(name) extern const nb_op nb_op_##name;
#include "ops/ops.def"
#undef X

// Token pasting and stringising that expand their arguments first (for the *.inc kernel
// bodies, which are instantiated with T and SFX defined).
#define NB_CAT_(a, b) a##b
#define NB_CAT(a, b) NB_CAT_(a, b)
#define NB_STR_(x) #x
#define NB_STR(x) NB_STR_(x)

// Typed views of a tensor's data and grad, for kernels.
#define F32(t) ((float *)(t)->data)
#define F64(t) ((double *)(t)->data)
#define G32(t) ((float *)(t)->grad)
#define G64(t) ((double *)(t)->grad)

// Element i of an index tensor's data, int32 or int64 (i64).
static inline int64_t nb__index_at(const void *data, bool i64, int64_t i) {
    return i64 ? ((const int64_t *)data)[i] : (int64_t)((const int32_t *)data)[i];
}

// Does input i need its gradient accumulated?
#define NB_WANTS_GRAD(t) ((t)->requires_grad && (t)->grad != NULL)

// In the backward of an op with grad_store: must input k's grad be overwritten (it holds
// garbage and this is its first write of the sweep) rather than added to?
static inline bool nb__grad_first(const nb_node *nd, int k) {
    return k < 8 && (nd->grad_first >> k & 1u);
}
// Does input k share out's grad buffer for this sweep (nb_node.grad_pass)? Then it already
// holds dy and the backward must leave it alone.
static inline bool nb__grad_shared(const nb_node *nd, int k) {
    return k < 8 && (nd->grad_shared >> k & 1u);
}
// For a path of such a backward that can only add: zero input k's grad first if it is due a
// first write. Returns the GEMM beta to use for it (0 when it is a first write, else 1).
static inline double nb__grad_beta(const nb_node *nd, int k) {
    return nb__grad_first(nd, k) ? 0.0 : 1.0;
}
static inline void nb__grad_zero_if_first(const nb_node *nd, int k) {
    const nb_tensor *t = nd->in[k];
    if (nb__grad_first(nd, k))
        memset(t->grad, 0, (size_t)t->numel * nb_dtype_size(t->dtype));
}

// C = alpha op(A) op(B) + beta C for row-major contiguous operands of dtype dt, where
// op(A) is (m, k) and op(B) is (k, n); ta / tb select a transpose by GEMM flag (no copy).
void nb__gemm(nb_dtype dt, bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha,
              const void *a, const void *b, double beta, void *c);
// The same on strided row-major operands: row i of the stored A, B, C starts lda, ldb, ldc
// elements after row i - 1 (A stored (m, k), or (k, m) when ta; likewise B; C (m, n)).
void nb__gemm_ld(nb_dtype dt, bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha,
                 const void *a, int64_t lda, const void *b, int64_t ldb, double beta, void *c,
                 int64_t ldc);
// attention_gemm.c: C (m, n) = alpha op(A) B (+ C when acc) for one attention slice's small,
// cache-resident operands: A stored (m, k) rows lda apart, or (k, m) when ta; B (k, n) rows
// ldb apart (no transpose: callers transpose B once); C rows ldc apart. Rows go in blocks
// [i0, i1) of up to 8; a non-NULL cut limits a block, for what causality makes 0, to the inner
// indices [i0 + lo, i1 + hi) and to the columns below i1 + col rounded up to a vector (the
// block's other columns are set to 0, or left when acc). NB_AGEMM_OPEN: no limit.
typedef struct {
    int64_t lo, hi, col;
} nb__agemm_cut;
#define NB_AGEMM_OPEN ((int64_t)1 << 60)
void nb__agemm_f32(bool ta, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                   int64_t lda, const float *b, int64_t ldb, bool acc, float *c, int64_t ldc,
                   const nb__agemm_cut *cut);
void nb__agemm_f64(bool ta, int64_t m, int64_t n, int64_t k, double alpha, const double *a,
                   int64_t lda, const double *b, int64_t ldb, bool acc, double *c, int64_t ldc,
                   const nb__agemm_cut *cut);
// t (w, n) = x (n rows ld apart, w columns) transposed, t's rows n apart.
void nb__atranspose_f32(const float *x, int64_t n, int64_t w, int64_t ld, float *t);
void nb__atranspose_f64(const double *x, int64_t n, int64_t w, int64_t ld, double *t);
// Tests: 0 (default) the best build for the CPU, 1 at most AVX2, 2 the SSE2 baseline.
extern int nb__agemm_isa;

// linear_gemm.c: linear's float32 GEMMs on AVX-512 register tiles, for the shapes where they
// beat OpenBLAS (nb__lgemm_ok: rows >= nb__lgemm_min_rows, 16 <= in, out <= 1024, in out <=
// 128 Ki, an AVX-512 CPU). Contiguous row-major operands: x (rows, in), w (out, in), b (out)
// or NULL, y (rows, out); wt is scratch of NB_LGEMM_WT_FLOATS(in, out) floats (wᵀ as panels of
// 32 columns, the last padded). dx and dw add into their destination when acc, else overwrite
// it (garbage or NaN in it is ignored).
#define NB_LGEMM_MIN_ROWS_DEFAULT 256
#define NB_LGEMM_WT_FLOATS(in, out) ((in) * (((out) + 31) / 32 * 32))
bool nb__lgemm_ok(nb_dtype dt, int64_t rows, int64_t in, int64_t out);
void nb__lgemm_fwd_f32(const float *x, const float *w, const float *b, float *y, int64_t rows,
                       int64_t in, int64_t out, float *wt);
// dx = dy w and dw = dyᵀ x by row tiles of C, for one region around several kernels (linear's
// backward): tiles [lo, hi) of nb__lgemm_tiles(m) for C of m rows (dx: m = rows, dw: m = out).
// The forward, and linear's backward, fork the team (whole tiles per thread) above
// NB_LGEMM_PAR_MIN multiply-adds (~10 µs on one core).
#define NB_LGEMM_PAR_MIN ((int64_t)1 << 20)
int64_t nb__lgemm_tiles(int64_t m);
// wp: w in panels (nb__lgemm_pack_w) or NULL; a stored dx (!acc) then runs on them (the same
// bits: one FMA chain per element either way).
#define NB_LGEMM_WP_FLOATS(in, out) ((out) * (((in) + 31) / 32 * 32))
void nb__lgemm_pack_w(const float *w, int64_t out, int64_t in, float *wp);
void nb__lgemm_dx_part_f32(int64_t lo, int64_t hi, const float *dy, const float *w, float *dx,
                           int64_t rows, int64_t in, int64_t out, bool acc, const float *wp);
// db (out), when not NULL, gets the bias gradient Σ_rows dy of the same rows of dw (added to it
// when db_acc), summed in row order in float as linear.c's bias_grad_f32.
void nb__lgemm_dw_part_f32(int64_t lo, int64_t hi, const float *dy, const float *x, float *dw,
                           int64_t rows, int64_t in, int64_t out, bool acc, float *db, bool db_acc);
// dx and dw (and db as above) on one thread, interleaved by dw's inner blocks of rows, so that
// dw reads each block of dy and x from L2 right after dx: the same bits as the two parts.
void nb__lgemm_bwd_f32(const float *dy, const float *x, const float *w, float *dx, float *dw,
                       int64_t rows, int64_t in, int64_t out, bool dx_acc, bool dw_acc, float *db,
                       bool db_acc, const float *wp);
// Tests: 1 takes linear to OpenBLAS as on a CPU without AVX-512; a lower minimum of rows puts
// small shapes on the tiles.
extern int nb__lgemm_isa;
extern int64_t nb__lgemm_min_rows;

// BLAS limited to one thread until nb__blas_threads_pop (matmul.c's single-threaded batches,
// gemm.c's small products under the passive wait policy): the OpenMP build of OpenBLAS takes
// its thread count from omp_get_max_threads() at each call, i.e. from the calling thread's
// nthreads ICV, which this sets and nb__blas_threads_pop restores.
static inline int nb__blas_threads_push1(void) {
#ifdef _OPENMP
    int t = omp_get_max_threads();
    omp_set_num_threads(1);
    return t;
#else
    return 1;
#endif
}
static inline void nb__blas_threads_pop(int t) {
#ifdef _OPENMP
    omp_set_num_threads(t);
#else
    (void)t;
#endif
}

// False if a dimension does not fit BLAS's 32-bit int (blasint is 32-bit in Debian's
// OpenBLAS: refuse rather than truncate). Inline: matmul checks it on every call.
static inline bool nb__gemm_dims_ok(int64_t m, int64_t n, int64_t k) {
    return m <= INT32_MAX && n <= INT32_MAX && k <= INT32_MAX;
}

// [lo <= x <= hi] (1 or 0, x's shape), recorded with public ops; a constant (its derivative is
// 0): the mask of clamp's derivative, for vjps (select.c).
nb_tensor *nb__inside(nb_graph *g, nb_tensor *x, double lo, double hi);

// Runs CALL (which uses lo and len) over [0, n) in blocks of VM_BLOCK elements, the blocks split
// statically across the OpenMP team above NB_OMP_MIN; below, one call on one thread. The vmath
// kernels give the same bits wherever a block boundary falls, so the split cannot change the
// results.
#define VM_BLOCK 8192
#ifdef _OPENMP
#define VM_CHUNKS(n, CALL)                                                                         \
    do {                                                                                           \
        if ((n) > NB_OMP_MIN) {                                                                    \
            const int64_t nblk_ = ((n) + VM_BLOCK - 1) / VM_BLOCK;                                 \
            NB_PRAGMA(omp parallel for schedule(static))                                           \
            for (int64_t b_ = 0; b_ < nblk_; b_++) {                                               \
                const int64_t lo = b_ * VM_BLOCK;                                                  \
                const int64_t len = (n)-lo < VM_BLOCK ? (n)-lo : VM_BLOCK;                         \
                CALL;                                                                              \
            }                                                                                      \
        } else {                                                                                   \
            const int64_t lo = 0, len = (n);                                                       \
            CALL;                                                                                  \
        }                                                                                          \
    } while (0)
#else
#define VM_CHUNKS(n, CALL)                                                                         \
    do {                                                                                           \
        const int64_t lo = 0, len = (n);                                                           \
        CALL;                                                                                      \
    } while (0)
#endif

#endif
