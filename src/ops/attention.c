// scaled_dot_product_attention, fused (as PyTorch's F.scaled_dot_product_attention):
//   q (..., tq, d), k (..., tk, d), v (..., tk, dv) -> o (..., tq, dv), the leading dims of the
//   three equal (e.g. (B, H)); S = q kᵀ / sqrt(d) + mask, key j hidden from query i when causal
//   and j > i (top-left aligned, as PyTorch's is_causal), P = softmax(S) row-wise,
//   o = dropout(P) v.
// Numerically stable: each row subtracts its max before exp and keeps only its log-sum-exp
// (lse, one double per query row, in the graph arena). Neither pass holds P for the whole
// tensor: each (batch, head) slice is done in chunks of at most SDPA_ROWS query rows whose
// (rows, tk) score blocks live in per-thread scratch (two blocks of rows x tk in backward, no
// more than one tq x tk block once tq >= 2), and backward recomputes P = e^(S - lse) from q
// and k (flash-attention style). delta_i = Σ_j P_ij dP_ij is taken as dO_i · O_i.
// Dropout factors come from a counter-based hash of (seed, slice, row, column), the seed drawn
// from the caller's nb_rng by each forward (a replay draws a new one, as PyTorch draws a mask
// per forward), so backward regenerates that forward's mask without storing it and the result
// does not depend on the thread count.
// Slices run in parallel over the OpenMP pool (one single-threaded GEMM each) when BLAS shares
// that pool; a mask that needs its gradient makes the walk serial (slices share its entries).
#include <math.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "ops/ops_impl.h"
#include "ops/vmath.h"

// Query rows per chunk: large enough for efficient GEMMs, small enough that a chunk's two
// (rows, tk) blocks stay within one (tq, tk) block for tq >= 2 (rows <= tq / 2).
#define SDPA_ROWS 64

typedef struct {
    bool causal, has_mask;
    double p;
    nb_rng *rng;
} sdpa_params;

typedef struct sdpa_geom {
    int64_t bh, tq, tk, d, dv, rows;
    double scale, p;
    bool causal;
    uint64_t seed;
    // The mask's strides: over the leading dims of q (0 where broadcast), its rows and columns.
    int nlead;
    int64_t lead[NB_MAX_DIMS], m_ls[NB_MAX_DIMS], m_rs, m_cs;
} sdpa_geom;

// How many of the first n keys query row i sees.
static inline int64_t sdpa_limit(const sdpa_geom *g, int64_t i, int64_t n) {
    return g->causal && i + 1 < n ? i + 1 : n;
}

// The dropout factor of element `key` of the attention weights: 0 or 1 / (1 - p), from the
// splitmix64 finaliser of seed + key (a counter-based stream: any element, in any order).
static inline double sdpa_keep(const sdpa_geom *g, uint64_t key) {
    uint64_t z = g->seed + (key + 1) * 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    double u = (double)(z >> 11) * 0x1.0p-53;
    return u < 1.0 - g->p ? 1.0 / (1.0 - g->p) : 0.0;
}

// Offset of slice bh's mask block.
static int64_t sdpa_mask_off(const sdpa_geom *g, int64_t bh) {
    int64_t off = 0;
    for (int i = g->nlead - 1; i >= 0; i--) {
        off += (bh % g->lead[i]) * g->m_ls[i];
        bh /= g->lead[i];
    }
    return off;
}

#define T float
#define SFX f32
#include "ops/attention_kernels.inc"
#define T double
#define SFX f64
#include "ops/attention_kernels.inc"

static nb_status sdpa_infer(nb_node *nd, nb_shape *out) {
    const sdpa_params *p = nd->params;
    const nb_tensor *q = nd->in[0], *k = nd->in[1], *v = nd->in[2];
    int r = q->ndim;
    if (r < 2 || k->ndim != r || v->ndim != r)
        return nb__node_fail(nd, NB_ERR_SHAPE,
                             "q %s, k %s, v %s must have one rank >= 2: (..., tq, d), (..., tk, "
                             "d), (..., tk, dv)",
                             NB_SHAPE_STR(q), NB_SHAPE_STR(k), NB_SHAPE_STR(v));
    bool ok = q->shape[r - 1] == k->shape[r - 1] && k->shape[r - 2] == v->shape[r - 2];
    for (int i = 0; ok && i < r - 2; i++)
        ok = q->shape[i] == k->shape[i] && q->shape[i] == v->shape[i];
    if (!ok)
        return nb__node_fail(nd, NB_ERR_SHAPE,
                             "q %s, k %s, v %s are not (..., tq, d), (..., tk, d), (..., tk, dv) "
                             "with the same leading dims",
                             NB_SHAPE_STR(q), NB_SHAPE_STR(k), NB_SHAPE_STR(v));
    if (q->shape[r - 1] < 1)
        return nb__node_fail(nd, NB_ERR_SHAPE, "head dim d of q %s must be >= 1", NB_SHAPE_STR(q));
    if (p->has_mask) {
        const nb_tensor *m = nd->in[3];
        bool mok = m->ndim <= r;
        for (int i = 0; mok && i < m->ndim; i++) {
            int64_t want = i == m->ndim - 1   ? k->shape[r - 2]
                           : i == m->ndim - 2 ? q->shape[r - 2]
                                              : q->shape[r - m->ndim + i];
            mok = m->shape[i] == want || m->shape[i] == 1;
        }
        if (!mok)
            return nb__node_fail(nd, NB_ERR_SHAPE,
                                 "mask %s does not broadcast to the scores (..., tq, tk) of q %s "
                                 "and k %s",
                                 NB_SHAPE_STR(m), NB_SHAPE_STR(q), NB_SHAPE_STR(k));
    }
    if (!(p->p >= 0 && p->p <= 1))
        return nb__node_fail(nd, NB_ERR_ARG, "dropout p = %g must be in [0, 1]; q %s", p->p,
                             NB_SHAPE_STR(q));
    if (p->p > 0 && !p->rng)
        return nb__node_fail(nd, NB_ERR_NULL, "rng is NULL with dropout p = %g; q %s", p->p,
                             NB_SHAPE_STR(q));
    out->ndim = r;
    for (int i = 0; i < r - 1; i++)
        out->dim[i] = q->shape[i];
    out->dim[r - 1] = v->shape[r - 1];
    return NB_OK;
}

static sdpa_geom sdpa_geometry(const nb_node *nd) {
    const sdpa_params *p = nd->params;
    const nb_tensor *q = nd->in[0], *k = nd->in[1], *v = nd->in[2];
    int r = q->ndim;
    sdpa_geom g = {.tq = q->shape[r - 2],
                   .tk = k->shape[r - 2],
                   .d = q->shape[r - 1],
                   .dv = v->shape[r - 1],
                   .p = p->p,
                   .causal = p->causal,
                   .nlead = r - 2};
    g.bh = 1;
    for (int i = 0; i < r - 2; i++) {
        g.lead[i] = q->shape[i];
        g.bh *= q->shape[i];
    }
    g.scale = 1.0 / sqrt((double)g.d);
    g.rows = g.tq / 2 < SDPA_ROWS ? g.tq / 2 : SDPA_ROWS;
    if (g.rows < 1)
        g.rows = 1;
    if (p->has_mask) { // strides of the mask read as (lead..., tq, tk), 0 on broadcast dims
        const nb_tensor *m = nd->in[3];
        int64_t st = 1, stride[NB_MAX_DIMS + 2] = {0};
        for (int i = m->ndim - 1; i >= 0; i--) {
            stride[r - m->ndim + i] = m->shape[i] == 1 ? 0 : st;
            st *= m->shape[i];
        }
        for (int i = 0; i < r - 2; i++)
            g.m_ls[i] = stride[i];
        g.m_rs = stride[r - 2];
        g.m_cs = stride[r - 1];
    }
    return g;
}

// Threads for the slice loop: several only when BLAS runs single-threaded inside our OpenMP
// regions and the work is worth a parallel region (as matmul's batches).
static int sdpa_threads(const sdpa_geom *g) {
#if defined(_OPENMP) && defined(NB_BLAS_OPENMP)
    int threads = omp_get_max_threads();
    if (g->bh < 2 || threads < 2 || g->bh * g->tq * g->tk * (g->d + g->dv) < NB_OMP_MIN)
        return 1;
    return threads < g->bh ? threads : (int)g->bh;
#else
    (void)g;
    return 1;
#endif
}

// The saved block: this header, lse (bh tq doubles), then per thread the scratch a, b
// ((rows, tk) each, of the dtype) and delta (rows doubles). The thread count is fixed at the
// first forward (a replay keeps the partition); the dropout seed is each forward's, for backward.
typedef struct {
    int threads;
    uint64_t seed;
} sdpa_saved;
#define SDPA_HDR 64

static size_t sdpa_thread_bytes(const sdpa_geom *g, size_t es) {
    size_t n = (size_t)(2 * g->rows * g->tk) * es + (size_t)g->rows * sizeof(double);
    return (n + 63) & ~(size_t)63;
}

static void sdpa_forward(nb_node *nd) {
    const sdpa_params *p = nd->params;
    sdpa_geom g = sdpa_geometry(nd);
    nb_tensor *o = nd->out;
    size_t es = nb_dtype_size(o->dtype);
    int threads = sdpa_threads(&g);
    size_t lse_bytes = ((size_t)(g.bh * g.tq) * sizeof(double) + 63) & ~(size_t)63;
    size_t per = sdpa_thread_bytes(&g, es);
    int max_threads = threads;
#ifdef _OPENMP
    max_threads = omp_get_max_threads(); // room for backward's partition too
#endif
    sdpa_saved *s = nb__node_save(nd, SDPA_HDR + lse_bytes + (size_t)max_threads * per);
    if (!s)
        return;
    if (s->threads == 0)
        s->threads = threads;
    threads = s->threads;
    if (g.p > 0)
        s->seed = nb_rng_u64(p->rng);
    g.seed = s->seed;
    double *lse = (double *)((char *)s + SDPA_HDR);
    char *scratch = (char *)lse + lse_bytes;
    const nb_tensor *q = nd->in[0], *k = nd->in[1], *v = nd->in[2];
    const nb_tensor *m = p->has_mask ? nd->in[3] : NULL;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1)
#endif
    for (int64_t bh = 0; bh < g.bh; bh++) {
        int tid = 0;
#ifdef _OPENMP
        tid = threads > 1 ? omp_get_thread_num() : 0;
#endif
        void *a = scratch + (size_t)tid * per;
        int64_t mo = m ? sdpa_mask_off(&g, bh) : 0;
        if (o->dtype == NB_F32)
            sdpa_fwd_f32(&g, bh, F32(q) + bh * g.tq * g.d, F32(k) + bh * g.tk * g.d,
                         F32(v) + bh * g.tk * g.dv, m ? F32(m) + mo : NULL,
                         F32(o) + bh * g.tq * g.dv, lse + bh * g.tq, a);
        else
            sdpa_fwd_f64(&g, bh, F64(q) + bh * g.tq * g.d, F64(k) + bh * g.tk * g.d,
                         F64(v) + bh * g.tk * g.dv, m ? F64(m) + mo : NULL,
                         F64(o) + bh * g.tq * g.dv, lse + bh * g.tq, a);
    }
}

static void sdpa_backward(nb_node *nd) {
    const sdpa_params *p = nd->params;
    sdpa_geom g = sdpa_geometry(nd);
    nb_tensor *q = nd->in[0], *k = nd->in[1], *v = nd->in[2], *o = nd->out;
    nb_tensor *m = p->has_mask ? nd->in[3] : NULL;
    size_t es = nb_dtype_size(o->dtype);
    sdpa_saved *s = nd->saved;
    g.seed = s->seed;
    const double *lse = (const double *)((char *)s + SDPA_HDR);
    size_t lse_bytes = ((size_t)(g.bh * g.tq) * sizeof(double) + 63) & ~(size_t)63;
    size_t per = sdpa_thread_bytes(&g, es);
    char *scratch = (char *)s + SDPA_HDR + lse_bytes;
    bool wq = NB_WANTS_GRAD(q), wk = NB_WANTS_GRAD(k), wv = NB_WANTS_GRAD(v);
    bool wm = m && NB_WANTS_GRAD(m);
    if (!wq && !wk && !wv && !wm)
        return;
    int threads = wm ? 1 : s->threads; // slices share the mask's gradient entries
    (void)threads;                     // read only by the OpenMP pragma in a build without OpenMP
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1)
#endif
    for (int64_t bh = 0; bh < g.bh; bh++) {
        int tid = 0;
#ifdef _OPENMP
        tid = threads > 1 ? omp_get_thread_num() : 0;
#endif
        char *a = scratch + (size_t)tid * per, *b = a + (size_t)(g.rows * g.tk) * es;
        double *delta = (double *)(b + (size_t)(g.rows * g.tk) * es);
        int64_t mo = m ? sdpa_mask_off(&g, bh) : 0;
        int64_t oq = bh * g.tq * g.d, ok = bh * g.tk * g.d, ov = bh * g.tk * g.dv,
                oo = bh * g.tq * g.dv;
        if (o->dtype == NB_F32)
            sdpa_bwd_f32(&g, bh, F32(q) + oq, F32(k) + ok, F32(v) + ov, m ? F32(m) + mo : NULL,
                         F32(o) + oo, G32(o) + oo, lse + bh * g.tq, wq ? G32(q) + oq : NULL,
                         wk ? G32(k) + ok : NULL, wv ? G32(v) + ov : NULL, wm ? G32(m) + mo : NULL,
                         (float *)a, (float *)b, delta);
        else
            sdpa_bwd_f64(&g, bh, F64(q) + oq, F64(k) + ok, F64(v) + ov, m ? F64(m) + mo : NULL,
                         F64(o) + oo, G64(o) + oo, lse + bh * g.tq, wq ? G64(q) + oq : NULL,
                         wk ? G64(k) + ok : NULL, wv ? G64(v) + ov : NULL, wm ? G64(m) + mo : NULL,
                         (double *)a, (double *)b, delta);
    }
}

static void sdpa_put(nb_tensor *t, int64_t i, double x) {
    if (t->dtype == NB_F32)
        F32(t)[i] = (float)x;
    else
        F64(t)[i] = x;
}

// The same derivative from recorded ops (the unfused math, holding the full P): S, P, and
// dv = (P M)ᵀ dO, dS = P (M (dO vᵀ) - rowsum(P M (dO vᵀ))), dq = scale dS k, dk = scale dSᵀ q,
// dmask = dS summed to the mask's shape. The causal and dropout masks are constants (they do
// not depend on the inputs). A row with no visible key (all of it -inf) has P = 0 here as in
// the kernel, so its output and every gradient through it are 0, not NaN (PyTorch >= 2.5's
// _safe_softmax convention): the row's scores are set to 0 before the softmax, which keeps its
// derivative finite, and its P to 0 after it. Which rows those are is read from the scores on
// the tape (max == -inf), so a replay with another mask finds its own.
static nb_status sdpa_vjp(nb_node *nd, nb_tensor *gy, const bool *want, nb_tensor **gin) {
    const sdpa_params *p = nd->params;
    nb_graph *gr = nd->graph;
    nb_tensor *q = nd->in[0], *k = nd->in[1], *v = nd->in[2];
    nb_tensor *m = p->has_mask ? nd->in[3] : NULL;
    sdpa_geom g = sdpa_geometry(nd);
    const sdpa_saved *sv = nd->saved;
    g.seed = sv->seed;
    int r = q->ndim;
    int64_t sshape[NB_MAX_DIMS];
    for (int i = 0; i < r - 2; i++)
        sshape[i] = q->shape[i];
    sshape[r - 2] = g.tq;
    sshape[r - 1] = g.tk;
    nb_tensor *s = nb_scale(gr, nb_matmul_t(gr, q, k, false, true), g.scale);
    if (m)
        s = nb_add(gr, s, m);
    if (g.causal) {
        nb_tensor *cm = nb__graph_tensor(gr, q->dtype, 2, (int64_t[]){g.tq, g.tk});
        if (!cm)
            return nb_graph_status(gr);
        for (int64_t i = 0; i < g.tq; i++)
            for (int64_t j = i + 1; j < g.tk; j++)
                sdpa_put(cm, i * g.tk + j, 1.0);
        s = nb_masked_fill(gr, s, cm, -INFINITY);
    }
    nb_tensor *dead = NULL; // (..., tq, 1): 1 where a row sees no key
    if (m) {                // without a mask every row sees key 0
        dead = nb_eq(gr, nb_max_axis(gr, s, -1, true),
                     nb_full(gr, q->dtype, 1, (int64_t[]){1}, -INFINITY));
        s = nb_masked_fill(gr, s, dead, 0.0);
    }
    nb_tensor *pr = nb_softmax(gr, s), *mk = NULL;
    if (dead)
        pr = nb_masked_fill(gr, pr, dead, 0.0);
    if (g.p > 0) {
        mk = nb__graph_tensor(gr, q->dtype, r, sshape);
        if (!mk)
            return nb_graph_status(gr);
        for (int64_t i = 0; i < g.bh * g.tq * g.tk; i++)
            sdpa_put(mk, i, sdpa_keep(&g, (uint64_t)i));
    }
    nb_tensor *pm = mk ? nb_mul(gr, pr, mk) : pr;
    if (want[2])
        gin[2] = nb_matmul_t(gr, pm, gy, true, false);
    if (want[0] || want[1] || (m && want[3])) {
        nb_tensor *dp = nb_matmul_t(gr, gy, v, false, true);
        if (mk)
            dp = nb_mul(gr, dp, mk);
        nb_tensor *delta = nb_sum_axis(gr, nb_mul(gr, pr, dp), -1, true);
        nb_tensor *ds = nb_mul(gr, pr, nb_sub(gr, dp, delta));
        if (want[0])
            gin[0] = nb_scale(gr, nb_matmul(gr, ds, k), g.scale);
        if (want[1])
            gin[1] = nb_scale(gr, nb_matmul_t(gr, ds, q, true, false), g.scale);
        if (m && want[3])
            gin[3] = nb_sum_to(gr, ds, m->ndim, m->shape);
    }
    return nb_graph_status(gr);
}

const nb_op nb_op_scaled_dot_product_attention = {"scaled_dot_product_attention",
                                                  -1,
                                                  0,
                                                  sdpa_infer,
                                                  sdpa_forward,
                                                  sdpa_backward,
                                                  sdpa_vjp,
                                                  NULL,
                                                  false};

nb_tensor *nb_scaled_dot_product_attention(nb_graph *g, nb_tensor *q, nb_tensor *k, nb_tensor *v,
                                           nb_tensor *mask, bool causal, double dropout_p,
                                           nb_rng *rng) {
    sdpa_params sp = {causal, mask != NULL, dropout_p, rng};
    nb_tensor *in[4] = {q, k, v, mask};
    return nb__record(g, &nb_op_scaled_dot_product_attention, in, mask ? 4 : 3, &sp, sizeof sp);
}
