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
// and k (flash-attention style).
// Dropout factors come from a counter-based hash of (seed, slice, row, column), the seed drawn
// from the caller's nb_rng by each forward (a replay draws a new one, as PyTorch draws a mask
// per forward), so backward regenerates that forward's mask without storing it and the result
// does not depend on the thread count.
// Slices run in parallel over the OpenMP pool (their GEMMs: attention_gemm.c) when BLAS shares
// that pool; a mask that needs its gradient makes the walk serial (slices share its entries).
#include <math.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "ops/attention_priv.h"
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

// Offset of slice bh's first element in a tensor of t rows ld apart, w columns per head.
static inline int64_t sdpa_off(const sdpa_geom *g, int64_t bh, int64_t t, int64_t ld, int64_t w) {
    return bh / g->heads * t * ld + bh % g->heads * w;
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

// The next slice's operands, prefetched a share at a time between the current slice's stages
// (planned by sdpa_pf_init below; the kernels call sdpa_pf_some after each product and row
// pass): up to 7 operands of `rows` rows, `lpr` 64-byte lines each, `ld` bytes apart, into L1
// or only L2. `step` lines per call, from the cursor (o, i, c).
typedef struct sdpa_pf {
    const char *base[7];
    int64_t rows[7], lpr[7], ld[7];
    bool l1[7];
    int n, o;
    int64_t i, c, step;
} sdpa_pf;
// sdpa_pf_some's calls per chunk of query rows in sdpa_fwd and sdpa_bwd (attention_kernels.inc).
#define SDPA_FWD_SHARES 3
#define SDPA_BWD_SHARES 7

static inline void sdpa_pf_some(sdpa_pf *pf) {
    for (int64_t left = pf->step; left > 0 && pf->o < pf->n; left--) {
        const char *p = pf->base[pf->o] + pf->i * pf->ld[pf->o] + pf->c * 64;
        if (pf->l1[pf->o])
            __builtin_prefetch(p, 0);
        else
            __builtin_prefetch(p, 0, 2);
        if (++pf->c == pf->lpr[pf->o]) {
            pf->c = 0;
            if (++pf->i == pf->rows[pf->o])
                pf->i = 0, pf->o++;
        }
    }
}

// The row kernels (softmax, probabilities, dS) in an AVX-512, an AVX2 and a baseline (SSE2) build,
// picked once at load time; the file is compiled without FMA contraction (CMakeLists.txt), so
// every build computes the same bits. GCC on x86-64 only (clang's target_clones needs a newer
// release than Debian 12's).
#define SDPA_LANES 8
static inline double sdpa_total(const double *a) {
    return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
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
    nb_status st = nb__sdpa_check_dropout(nd, p->p, p->rng, "q", q);
    if (st != NB_OK)
        return st;
    out->ndim = r;
    for (int i = 0; i < r - 1; i++)
        out->dim[i] = q->shape[i];
    out->dim[r - 1] = v->shape[r - 1];
    return NB_OK;
}

nb_status nb__sdpa_check_dropout(nb_node *nd, double p, const nb_rng *rng, const char *what,
                                 const nb_tensor *t) {
    if (!(p >= 0 && p <= 1))
        return nb__node_fail(nd, NB_ERR_ARG, "dropout p = %g must be in [0, 1]; %s %s", p, what,
                             NB_SHAPE_STR(t));
    if (p > 0 && !rng)
        return nb__node_fail(nd, NB_ERR_NULL, "rng is NULL with dropout p = %g; %s %s", p, what,
                             NB_SHAPE_STR(t));
    return NB_OK;
}

void nb__sdpa_scale_rows(sdpa_geom *g) {
    g->scale = 1.0 / sqrt((double)g->d);
    g->rows = g->tq / 2 < SDPA_ROWS ? g->tq / 2 : SDPA_ROWS;
    if (g->rows < 1)
        g->rows = 1;
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
                   .nlead = r - 2,
                   .heads = 1};
    g.ldq = g.ldk = g.d;
    g.ldv = g.ldo = g.dv;
    g.bh = 1;
    for (int i = 0; i < r - 2; i++) {
        g.lead[i] = q->shape[i];
        g.bh *= q->shape[i];
    }
    nb__sdpa_scale_rows(&g);
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

static size_t sdpa_thread_bytes(const sdpa_geom *g, size_t es) {
    size_t n = (size_t)((2 * g->rows + g->d + g->dv) * g->tk) * es;
    return (n + 63) & ~(size_t)63;
}

#define SDPA_AT(T, p, off) ((p) ? (T *)(p) + (off) : NULL)

// Plans the prefetch of slice bh's rows of x's non-NULL operands (gradients and dO too when
// bwd), a slice ahead of their use, when small enough (<= 16 KiB each) not to evict the current
// slice's, in `calls` shares (sdpa_pf_some after each stage of the current slice). Issued all
// at once before the slice (384 lines forward, 896 backward for charlm), they stalled its first
// stage: in charlm's step, attention's forward 1.83-1.91 and backward 2.92-3.05 M TSC ticks a
// call that way, 1.74-1.83 and 2.67-2.92 spread (rdtsc around each call, 6-8 runs of each).
// charlm's packed (B, T, 3E) rows put a slice's 64 rows of 128 bytes 1.5 KiB apart in a 3 MiB
// tensor; without these hints its attention took ~10 % more CPU time (perf samples, 3 runs
// each). q and k go to L1 (the scores, a slice's first products, read them first); v, dO and
// the gradients to L2 only, without write intent: a backward slice's seven operands (56 KiB
// for charlm) do not fit next to the current one's in a 48 KiB L1, and fetched there (the
// gradients with write intent) they evicted what dv's product was about to read. charlm, TSC
// ticks per backward chunk: 9300-10100 with all seven to L1, 8700-9700 with v and dO to L2
// (scores 2000 -> 1500), 8300-9300 with the gradients too. Hints only: no result depends on
// them.
static void sdpa_pf_init(sdpa_pf *pf, const sdpa_geom *g, int64_t bh, size_t es, const sdpa_ptrs *x,
                         bool bwd, int64_t calls) {
    const struct {
        const void *p;
        int64_t t, w, ld;
    } op[7] = {{x->q, g->tq, g->d, g->ldq},  {x->k, g->tk, g->d, g->ldk},
               {x->v, g->tk, g->dv, g->ldv}, {x->go, g->tq, g->dv, g->ldo},
               {x->gq, g->tq, g->d, g->ldq}, {x->gk, g->tk, g->d, g->ldk},
               {x->gv, g->tk, g->dv, g->ldv}};
    int64_t lines = 0;
    pf->n = pf->o = 0, pf->i = pf->c = 0;
    for (int o = 0; o < (bwd ? 7 : 3) && bh < g->bh; o++) {
        if (!op[o].p || (size_t)(op[o].t * op[o].w) * es > 16384 || op[o].t < 1 || op[o].w < 1)
            continue;
        int k = pf->n++;
        pf->base[k] =
            (const char *)op[o].p + (size_t)sdpa_off(g, bh, op[o].t, op[o].ld, op[o].w) * es;
        pf->rows[k] = op[o].t;
        pf->lpr[k] = (int64_t)(((size_t)op[o].w * es + 63) / 64);
        pf->ld[k] = op[o].ld * (int64_t)es;
        pf->l1[k] = o <= 1; // q, k: to L1; v, dO, the gradients: to L2 (locality 2)
        lines += op[o].t * pf->lpr[k];
    }
    calls = calls > 1 ? calls : 1; // no chunk (tq = 0): nothing runs, nothing is fetched
    pf->step = (lines + calls - 1) / calls;
}

// Forward over every slice; `seed_rng` draws this forward's dropout seed (backward reuses it).
void nb__sdpa_run_forward(nb_node *nd, sdpa_geom g, nb_rng *seed_rng, sdpa_ptrs x) {
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
        s->seed = nb_rng_u64(seed_rng);
    g.seed = s->seed;
    double *lse = (double *)((char *)s + SDPA_HDR);
    char *scratch = (char *)lse + lse_bytes;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1)
#endif
    for (int64_t bh = 0; bh < g.bh; bh++) {
        int tid = 0;
#ifdef _OPENMP
        tid = threads > 1 ? omp_get_thread_num() : 0;
#endif
        void *a = scratch + (size_t)tid * per;
        sdpa_pf pf;
        sdpa_pf_init(&pf, &g, bh + 1, es, &x, false,
                     SDPA_FWD_SHARES * ((g.tq + g.rows - 1) / g.rows));
        int64_t mo = x.m ? sdpa_mask_off(&g, bh) : 0;
        int64_t oq = sdpa_off(&g, bh, g.tq, g.ldq, g.d), ok = sdpa_off(&g, bh, g.tk, g.ldk, g.d),
                ov = sdpa_off(&g, bh, g.tk, g.ldv, g.dv), oo = sdpa_off(&g, bh, g.tq, g.ldo, g.dv);
        if (o->dtype == NB_F32)
            sdpa_fwd_f32(&g, bh, (const float *)x.q + oq, (const float *)x.k + ok,
                         (const float *)x.v + ov, SDPA_AT(const float, x.m, mo), F32(o) + oo,
                         lse + bh * g.tq, a, &pf);
        else
            sdpa_fwd_f64(&g, bh, (const double *)x.q + oq, (const double *)x.k + ok,
                         (const double *)x.v + ov, SDPA_AT(const double, x.m, mo), F64(o) + oo,
                         lse + bh * g.tq, a, &pf);
    }
}

// Backward over every slice: accumulates into the non-NULL gradients of x (stores into them
// when x.store).
void nb__sdpa_run_backward(nb_node *nd, sdpa_geom g, sdpa_ptrs x) {
    nb_tensor *o = nd->out;
    size_t es = nb_dtype_size(o->dtype);
    sdpa_saved *s = nd->saved;
    g.seed = s->seed;
    const double *lse = (const double *)((char *)s + SDPA_HDR);
    size_t lse_bytes = ((size_t)(g.bh * g.tq) * sizeof(double) + 63) & ~(size_t)63;
    size_t per = sdpa_thread_bytes(&g, es);
    char *scratch = (char *)s + SDPA_HDR + lse_bytes;
    if (!x.gq && !x.gk && !x.gv && !x.gm)
        return;
    int threads = x.gm ? 1 : s->threads; // slices share the mask's gradient entries
    (void)threads;                       // read only by the OpenMP pragma in a build without OpenMP
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1)
#endif
    for (int64_t bh = 0; bh < g.bh; bh++) {
        int tid = 0;
#ifdef _OPENMP
        tid = threads > 1 ? omp_get_thread_num() : 0;
#endif
        char *a = scratch + (size_t)tid * per, *b = a + (size_t)(g.rows * g.tk) * es;
        int64_t mo = x.m ? sdpa_mask_off(&g, bh) : 0;
        int64_t oq = sdpa_off(&g, bh, g.tq, g.ldq, g.d), ok = sdpa_off(&g, bh, g.tk, g.ldk, g.d),
                ov = sdpa_off(&g, bh, g.tk, g.ldv, g.dv), oo = sdpa_off(&g, bh, g.tq, g.ldo, g.dv);
        sdpa_pf pf;
        sdpa_pf_init(&pf, &g, bh + 1, es, &x, true,
                     SDPA_BWD_SHARES * ((g.tq + g.rows - 1) / g.rows));
        if (o->dtype == NB_F32)
            sdpa_bwd_f32(&g, bh, (const float *)x.q + oq, (const float *)x.k + ok,
                         (const float *)x.v + ov, SDPA_AT(const float, x.m, mo),
                         (const float *)x.go + oo, lse + bh * g.tq, SDPA_AT(float, x.gq, oq),
                         SDPA_AT(float, x.gk, ok), SDPA_AT(float, x.gv, ov),
                         SDPA_AT(float, x.gm, mo), (float *)a, (float *)b, x.store, &pf);
        else
            sdpa_bwd_f64(&g, bh, (const double *)x.q + oq, (const double *)x.k + ok,
                         (const double *)x.v + ov, SDPA_AT(const double, x.m, mo),
                         (const double *)x.go + oo, lse + bh * g.tq, SDPA_AT(double, x.gq, oq),
                         SDPA_AT(double, x.gk, ok), SDPA_AT(double, x.gv, ov),
                         SDPA_AT(double, x.gm, mo), (double *)a, (double *)b, x.store, &pf);
    }
}

static void sdpa_forward(nb_node *nd) {
    const sdpa_params *p = nd->params;
    const nb_tensor *m = p->has_mask ? nd->in[3] : NULL;
    nb__sdpa_run_forward(nd, sdpa_geometry(nd), p->rng,
                         (sdpa_ptrs){.q = nd->in[0]->data,
                                     .k = nd->in[1]->data,
                                     .v = nd->in[2]->data,
                                     .m = m ? m->data : NULL});
}

static void sdpa_backward(nb_node *nd) {
    const sdpa_params *p = nd->params;
    nb_tensor *q = nd->in[0], *k = nd->in[1], *v = nd->in[2];
    nb_tensor *m = p->has_mask ? nd->in[3] : NULL;
    nb__sdpa_run_backward(nd, sdpa_geometry(nd),
                          (sdpa_ptrs){.q = q->data,
                                      .k = k->data,
                                      .v = v->data,
                                      .m = m ? m->data : NULL,
                                      .go = nd->out->grad,
                                      .gq = NB_WANTS_GRAD(q) ? q->grad : NULL,
                                      .gk = NB_WANTS_GRAD(k) ? k->grad : NULL,
                                      .gv = NB_WANTS_GRAD(v) ? v->grad : NULL,
                                      .gm = m && NB_WANTS_GRAD(m) ? m->grad : NULL});
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
nb_status nb__sdpa_vjp_math(nb_graph *gr, const sdpa_geom *gp, nb_tensor *q, nb_tensor *k,
                            nb_tensor *v, nb_tensor *m, nb_tensor *gy, const bool *want,
                            nb_tensor **gin) {
    sdpa_geom g = *gp;
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

static nb_status sdpa_vjp(nb_node *nd, nb_tensor *gy, const bool *want, nb_tensor **gin) {
    const sdpa_params *p = nd->params;
    sdpa_geom g = sdpa_geometry(nd);
    g.seed = ((const sdpa_saved *)nd->saved)->seed;
    return nb__sdpa_vjp_math(nd->graph, &g, nd->in[0], nd->in[1], nd->in[2],
                             p->has_mask ? nd->in[3] : NULL, gy, want, gin);
}

const nb_op nb_op_scaled_dot_product_attention = {"scaled_dot_product_attention",
                                                  -1,
                                                  0,
                                                  sdpa_infer,
                                                  sdpa_forward,
                                                  sdpa_backward,
                                                  sdpa_vjp,
                                                  NULL,
                                                  false,
                                                  false};

nb_tensor *nb_scaled_dot_product_attention(nb_graph *g, nb_tensor *q, nb_tensor *k, nb_tensor *v,
                                           nb_tensor *mask, bool causal, double dropout_p,
                                           nb_rng *rng) {
    sdpa_params sp = {causal, mask != NULL, dropout_p, rng};
    nb_tensor *in[4] = {q, k, v, mask};
    return nb__record(g, &nb_op_scaled_dot_product_attention, in, mask ? 4 : 3, &sp, sizeof sp);
}
