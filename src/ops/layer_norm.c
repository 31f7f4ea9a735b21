// layer_norm and rms_norm over the trailing `dims` axes of x, as PyTorch's F.layer_norm /
// F.rms_norm with normalized_shape = x.shape[-dims:]: x viewed as (R, D), D = the product of
// those axes, weight / bias shaped as those axes (optional; rms_norm has no bias).
//   layer_norm: y = (x - mean_r) istd_r w + b, istd_r = 1 / sqrt(var_r + eps) (biased var)
//   rms_norm:   y = x istd_r w,                istd_r = 1 / sqrt(mean_r(x²) + eps)
// Fused kernels, sums in double; mean_r and istd_r are kept in the graph arena. Backward with
// g = dy w and xhat = (x - mean) istd (mean 0 for rms_norm):
//   layer_norm: dx = istd (g - mean_D(g) - xhat mean_D(g xhat))
//   rms_norm:   dx = istd (g - xhat mean_D(g xhat))
//   dw = Σ_r dy xhat,  db = Σ_r dy
// Forward reads x once and writes y; backward reads x and dy once and writes dx, summing dw and
// db on the way in per-block partials added in block order (thread-count independent). Blocks
// of rows run in parallel for both.
#include <math.h>
#include <string.h>

#include "ops/ops_impl.h"

typedef struct {
    bool rms, has_weight, has_bias;
    int dims;
    double eps;
} ln_params;

static nb_status ln_infer(nb_node *nd, nb_shape *out) {
    const ln_params *p = nd->params;
    const nb_tensor *x = nd->in[0];
    if (p->dims < 1 || p->dims > x->ndim)
        return nb__node_fail(nd, NB_ERR_ARG, "dims %d must be in [1, %d] for x %s", p->dims,
                             x->ndim, NB_SHAPE_STR(x));
    if (!(p->eps > 0))
        return nb__node_fail(nd, NB_ERR_ARG, "eps %g must be > 0; x %s", p->eps, NB_SHAPE_STR(x));
    for (int i = 1; i < nd->n_in; i++) {
        const nb_tensor *t = nd->in[i];
        bool ok = t->ndim == p->dims;
        for (int d = 0; ok && d < p->dims; d++)
            ok = t->shape[d] == x->shape[x->ndim - p->dims + d];
        if (!ok)
            return nb__node_fail(nd, NB_ERR_SHAPE,
                                 "%s is %s but x %s is normalised over its last %d dim(s)",
                                 i == 1 && p->has_weight ? "weight" : "bias", NB_SHAPE_STR(t),
                                 NB_SHAPE_STR(x), p->dims);
    }
    out->ndim = x->ndim;
    for (int i = 0; i < x->ndim; i++)
        out->dim[i] = x->shape[i];
    return NB_OK;
}

static int64_t ln_len(const nb_node *nd) {
    const ln_params *p = nd->params;
    const nb_tensor *x = nd->in[0];
    int64_t d = 1;
    for (int i = x->ndim - p->dims; i < x->ndim; i++)
        d *= x->shape[i];
    return d;
}

// Row kernels (layer_norm_kernels.inc). Sums run in double over LN_LANES = 32 lanes by position
// (element j to lane j mod 32), held as four vectors of LN_VW = 8 doubles, and a row's lanes
// are totalled in a fixed tree; y and dx are elementwise in T. The vectors are GCC / clang
// vector extensions: an operation on one is the same IEEE operation in each lane whatever
// registers a build lowers it to (one zmm, two ymm, four xmm), and this file is compiled
// without FMA contraction (CMakeLists.txt), so every build and every thread count computes the
// same bits. With GCC on x86-64 the kernels are built three times, for AVX-512, AVX2 and the
// SSE2 baseline, and picked per call (ln_pick); they differ only in how 8 floats become 8
// doubles: GCC 12 splits __builtin_convertvector's float -> double into halves (4
// instructions for one vcvtps2pd), so the AVX builds use the intrinsic. (The earlier plain
// loops over a double[8] lane array stayed scalar under GCC 12.) A call runs a block of rows.
#define LN_VW 8
#define LN_LANES (4 * LN_VW)
typedef double ln_vd __attribute__((vector_size(LN_VW * sizeof(double))));
typedef float ln_vf __attribute__((vector_size(LN_VW * sizeof(float))));
typedef float ln_vs __attribute__((vector_size(2 * LN_VW * sizeof(float))));
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define LN_ISA_BUILDS 1
#include <immintrin.h>
#else
#define LN_ISA_BUILDS 0
#endif

// a[0..LN_LANES) = the lanes of four accumulators, in lane order, and back.
#define ln_spill(a, v0, v1, v2, v3)                                                                \
    do {                                                                                           \
        memcpy((a), &(v0), sizeof(ln_vd));                                                         \
        memcpy((a) + LN_VW, &(v1), sizeof(ln_vd));                                                 \
        memcpy((a) + 2 * LN_VW, &(v2), sizeof(ln_vd));                                             \
        memcpy((a) + 3 * LN_VW, &(v3), sizeof(ln_vd));                                             \
    } while (0)
#define ln_fill(a, v0, v1, v2, v3)                                                                 \
    do {                                                                                           \
        memcpy(&(v0), (a), sizeof(ln_vd));                                                         \
        memcpy(&(v1), (a) + LN_VW, sizeof(ln_vd));                                                 \
        memcpy(&(v2), (a) + 2 * LN_VW, sizeof(ln_vd));                                             \
        memcpy(&(v3), (a) + 3 * LN_VW, sizeof(ln_vd));                                             \
    } while (0)
// Σ of the lanes of four accumulators as a fixed tree, halves added lane by lane: lanes
// [i] += [i + LN_LANES / 2], then [i] += [i + LN_LANES / 4], ... (in registers).
#define ln_tree(v0, v1, v2, v3)                                                                    \
    __extension__({                                                                                \
        ln_vd t_ = ((v0) + (v2)) + ((v1) + (v3));                                                  \
        for (int w_ = LN_VW / 2; w_ > 0; w_ /= 2)                                                  \
            for (int i_ = 0; i_ < w_; i_++)                                                        \
                t_[i_] += t_[i_ + w_];                                                             \
        t_[0];                                                                                     \
    })

// Rows per block of work, about 16 K elements (an L1-sized run of x and dy), and at most 32
// blocks: a function of the shape alone. The backward's dw and db are summed per block
// (2 d doubles each) and the block sums added in block order.
static int64_t ln_chunk_rows(int64_t r, int64_t d) {
    int64_t rb = (16384 + d - 1) / d;
    if ((r + rb - 1) / rb > 32)
        rb = (r + 31) / 32;
    return rb > 0 ? rb : 1;
}

// 8 floats at p as doubles: GCC's vector conversion, and the AVX-512 / AVX2 instructions.
#define LN_LD_CVT(v, p)                                                                            \
    do {                                                                                           \
        ln_vf t_;                                                                                  \
        memcpy(&t_, (p), sizeof t_);                                                               \
        (v) = __builtin_convertvector(t_, ln_vd);                                                  \
    } while (0)
#define LN_LD_512(v, p) ((v) = (ln_vd)_mm512_cvtps_pd(_mm256_loadu_ps(p)))
#define LN_LD_256(v, p)                                                                            \
    do {                                                                                           \
        union {                                                                                    \
            ln_vd v;                                                                               \
            __m256d h[2];                                                                          \
        } u_;                                                                                      \
        u_.h[0] = _mm256_cvtps_pd(_mm_loadu_ps(p));                                                \
        u_.h[1] = _mm256_cvtps_pd(_mm_loadu_ps((p) + 4));                                          \
        (v) = u_.v;                                                                                \
    } while (0)
#define LN_LD_F64(v, p) memcpy(&(v), (p), sizeof(ln_vd))

#define T float
#define SFX f32_base
#define LN_TARGET
#define LN_VE ln_vs
#define LN_EW (2 * LN_VW)
#define LN_LD LN_LD_CVT
#include "ops/layer_norm_kernels.inc"
#define T double
#define SFX f64_base
#define LN_TARGET
#define LN_VE ln_vd
#define LN_EW LN_VW
#define LN_LD LN_LD_F64
#include "ops/layer_norm_kernels.inc"
#if LN_ISA_BUILDS
#define T float
#define SFX f32_avx512
#define LN_TARGET __attribute__((target("avx512f")))
#define LN_VE ln_vs
#define LN_EW (2 * LN_VW)
#define LN_LD LN_LD_512
#include "ops/layer_norm_kernels.inc"
#define T float
#define SFX f32_avx2
#define LN_TARGET __attribute__((target("avx2")))
#define LN_VE ln_vs
#define LN_EW (2 * LN_VW)
#define LN_LD LN_LD_256
#include "ops/layer_norm_kernels.inc"
#define T double
#define SFX f64_avx512
#define LN_TARGET __attribute__((target("avx512f")))
#define LN_VE ln_vd
#define LN_EW LN_VW
#define LN_LD LN_LD_F64
#include "ops/layer_norm_kernels.inc"
#define T double
#define SFX f64_avx2
#define LN_TARGET __attribute__((target("avx2")))
#define LN_VE ln_vd
#define LN_EW LN_VW
#define LN_LD LN_LD_F64
#include "ops/layer_norm_kernels.inc"
#endif

typedef void ln_fwd_fn(bool rms, double eps, int64_t r, int64_t d, int64_t i0, int64_t i1,
                       const void *x, const void *w, const void *b, void *y, double *stat);
typedef void ln_bwd_fn(bool rms, int64_t r, int64_t d, int64_t i0, int64_t i1, const void *x,
                       const void *w, const double *stat, const void *gy, void *gx, bool store,
                       double *pw, double *pb);
// The build for this CPU (__builtin_cpu_supports reads what libgcc's constructor found).
static void ln_pick(nb_dtype dt, ln_fwd_fn **fwd, ln_bwd_fn **bwd) {
    bool f = dt == NB_F32;
#if LN_ISA_BUILDS
    if (__builtin_cpu_supports("avx512f")) {
        *fwd = f ? ln_fwd_rows_f32_avx512 : ln_fwd_rows_f64_avx512;
        *bwd = f ? ln_bwd_rows_f32_avx512 : ln_bwd_rows_f64_avx512;
        return;
    }
    if (__builtin_cpu_supports("avx2")) {
        *fwd = f ? ln_fwd_rows_f32_avx2 : ln_fwd_rows_f64_avx2;
        *bwd = f ? ln_bwd_rows_f32_avx2 : ln_bwd_rows_f64_avx2;
        return;
    }
#endif
    *fwd = f ? ln_fwd_rows_f32_base : ln_fwd_rows_f64_base;
    *bwd = f ? ln_bwd_rows_f32_base : ln_bwd_rows_f64_base;
}

static nb_tensor *ln_weight(const nb_node *nd) {
    const ln_params *p = nd->params;
    return p->has_weight ? nd->in[1] : NULL;
}
static nb_tensor *ln_bias(const nb_node *nd) {
    const ln_params *p = nd->params;
    return p->has_bias ? nd->in[p->has_weight ? 2 : 1] : NULL;
}

// Blocks of rows on the team (any split gives the same bits: rows are independent).
static void ln_forward(nb_node *nd) {
    const ln_params *p = nd->params;
    const nb_tensor *x = nd->in[0], *w = ln_weight(nd), *b = ln_bias(nd);
    nb_tensor *y = nd->out;
    int64_t d = ln_len(nd), r = x->numel / d;
    double *stat = nb__node_save(nd, (size_t)(2 * r) * sizeof(double));
    if (!stat)
        return;
    ln_fwd_fn *fwd;
    ln_bwd_fn *bwd;
    ln_pick(y->dtype, &fwd, &bwd);
    const int64_t rb = ln_chunk_rows(r, d), nb = (r + rb - 1) / rb;
    const void *xd = x->data, *wd = w ? w->data : NULL, *bd = b ? b->data : NULL;
    NB_FOR_WORK(nb, r * d, k, {
        int64_t i1 = (k + 1) * rb < r ? (k + 1) * rb : r;
        fwd(p->rms, p->eps, r, d, k * rb, i1, xd, wd, bd, y->data, stat);
    });
}

// Blocks of ln_chunk_rows rows (a function of the shape alone) on the team, each writing its
// rows of dx and its partial sums of dw and db (2 d doubles per block, from the graph arena);
// the partials are then added in block order, so no bit depends on the thread count. Each
// grad is stored (rather than added) on its first write of the sweep (grad_store).
static void ln_backward(nb_node *nd) {
    const ln_params *p = nd->params;
    nb_tensor *x = nd->in[0], *y = nd->out, *w = ln_weight(nd), *b = ln_bias(nd);
    int64_t d = ln_len(nd), r = x->numel / d;
    bool gx = NB_WANTS_GRAD(x), gw = w && NB_WANTS_GRAD(w), gb = b && NB_WANTS_GRAD(b);
    int kb = p->has_weight ? 2 : 1;
    bool sx = gx && nb__grad_first(nd, 0), sw = gw && nb__grad_first(nd, 1),
         sb = gb && nb__grad_first(nd, kb);
    const int64_t rb = ln_chunk_rows(r, d), nch = (r + rb - 1) / rb;
    double *part = NULL;
    if (gw || gb) {
        part = nb__graph_alloc(nd->graph, (size_t)(nch * 2 * d) * sizeof(double));
        if (!part)
            return; // the graph holds the out-of-memory error
    }
    ln_fwd_fn *fwd;
    ln_bwd_fn *bwd;
    ln_pick(y->dtype, &fwd, &bwd);
    const void *xd = x->data, *wd = w ? w->data : NULL, *gy = y->grad;
    void *gxd = gx ? x->grad : NULL;
    const double *stat = nd->saved;
    NB_FOR_WORK(nch, r * d, k, {
        int64_t i1 = (k + 1) * rb < r ? (k + 1) * rb : r;
        double *pw = part ? part + 2 * k * d : NULL;
        bwd(p->rms, r, d, k * rb, i1, xd, wd, stat, gy, gxd, sx, pw, pw ? pw + d : NULL);
    });
    if (!part)
        return;
    for (int64_t k = 1; k < nch; k++) // into block 0's partials, block by block
        for (int64_t j = 0; j < 2 * d; j++)
            part[j] += part[2 * k * d + j];
    for (int i = 0; i < 2; i++) {
        nb_tensor *t = i ? b : w;
        const double *s = part + i * d;
        bool set = i ? sb : sw;
        if (!(i ? gb : gw))
            continue;
        if (t->dtype == NB_F32)
            for (int64_t j = 0; j < d; j++)
                G32(t)[j] = set ? (float)s[j] : G32(t)[j] + (float)s[j];
        else
            for (int64_t j = 0; j < d; j++)
                G64(t)[j] = set ? s[j] : G64(t)[j] + s[j];
    }
}

const nb_op nb_op_layer_norm = {
    "layer_norm",
    -1,
    0,
    ln_infer,
    ln_forward,
    ln_backward,
    NULL,
    "its fused vjp is not written yet (it would be a chain of mean / var ops)",
    true,
    false};
const nb_op nb_op_rms_norm = {
    "rms_norm", -1,
    0,          ln_infer,
    ln_forward, ln_backward,
    NULL,       "its fused vjp is not written yet (it would be a chain of mean ops)",
    true,       false};

static nb_tensor *ln_record(nb_graph *g, const nb_op *op, nb_tensor *x, int dims, nb_tensor *w,
                            nb_tensor *b, double eps) {
    ln_params p = {op == &nb_op_rms_norm, w != NULL, b != NULL, dims, eps};
    nb_tensor *in[3] = {x, NULL, NULL};
    int n = 1;
    if (w)
        in[n++] = w;
    if (b)
        in[n++] = b;
    return nb__record(g, op, in, n, &p, sizeof p);
}

nb_tensor *nb_layer_norm(nb_graph *g, nb_tensor *x, int dims, nb_tensor *weight, nb_tensor *bias,
                         double eps) {
    return ln_record(g, &nb_op_layer_norm, x, dims, weight, bias, eps);
}

nb_tensor *nb_rms_norm(nb_graph *g, nb_tensor *x, int dims, nb_tensor *weight, double eps) {
    return ln_record(g, &nb_op_rms_norm, x, dims, weight, NULL, eps);
}
