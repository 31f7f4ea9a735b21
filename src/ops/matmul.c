// matmul with NumPy / PyTorch semantics, optionally with either operand's last two axes
// transposed by GEMM flag (nb_matmul_t):
//   a (k)            · b (k)            -> ()            dot product
//   a (k)            · b (..., k, n)    -> (..., n)      a promoted to (1, k), the 1 dropped
//   a (..., m, k)    · b (k)            -> (..., m)      b promoted to (k, 1), the 1 dropped
//   a (..., m, k)    · b (..., k, n)    -> (broadcast(...), m, n)
// Every operand is contiguous, so each batch element is a row-major matrix at a fixed offset
// and goes to BLAS as it is; transposes are GEMM flags, never copies.
// Batching: when b is a single matrix and a is not transposed, the batch folds into M and the
// whole product is one GEMM (this is also linear on (..., in) inputs). Otherwise one GEMM per
// batch element; many small ones run in parallel over the batch on the OpenMP pool, each GEMM
// single-threaded (OpenBLAS's OpenMP build runs serially inside a parallel region), instead of
// each entering the BLAS pool in turn.
// Backward, with A = op(a) (m, k), B = op(b) (k, n):  dA = dy Bᵀ,  dB = Aᵀ dy; for a stored
// transposed, da = dAᵀ = B dyᵀ (and likewise for b). All GEMMs accumulate with beta = 1; a
// matrix broadcast over the batch receives the sum over the batch elements that used it.
#include "ops/ops_impl.h"

#ifdef _OPENMP
#include <omp.h>
#endif

typedef struct {
    bool ta, tb; // transpose the last two axes of a / b (by GEMM flag)
} mm_params;

// The batch geometry, derived from the shapes alone (no state saved between passes).
typedef struct {
    int64_t m, k, n;            // op(A) is (m, k), op(B) is (k, n)
    int64_t batch;              // matrices in the output
    int nbd;                    // batch dims of the output
    int64_t bdim[NB_MAX_DIMS];  // broadcast batch shape
    int64_t astep[NB_MAX_DIMS]; // a's matrix-index stride per batch dim, 0 if broadcast
    int64_t bstep[NB_MAX_DIMS]; // same for b
    int64_t a_count, b_count;   // matrices stored in a, b
    bool a_vec, b_vec;          // 1-D operand promoted to a matrix
} mm_geom;

static const mm_params *mm_prm(const nb_node *nd) {
    static const mm_params none = {false, false};
    return nd->params ? nd->params : &none;
}

// Fills g from the shapes; returns a message (static text) when they do not fit, NULL if ok.
// Any ranks (mm_geometry below takes the plain matrix product apart).
static const char *mm_geometry_nd(const nb_tensor *a, const nb_tensor *b, const mm_params *p,
                                  mm_geom *g) {
    if (a->ndim < 1 || b->ndim < 1)
        return "operands must have at least 1 dim";
    if ((p->ta && a->ndim < 2) || (p->tb && b->ndim < 2))
        return "a transposed operand needs at least 2 dims";
    g->a_vec = a->ndim == 1;
    g->b_vec = b->ndim == 1;
    // Stored matrix shapes (rows, cols) of a and b.
    int64_t ar = g->a_vec ? 1 : a->shape[a->ndim - 2], ac = a->shape[a->ndim - 1];
    int64_t br = g->b_vec ? b->shape[0] : b->shape[b->ndim - 2];
    int64_t bc = g->b_vec ? 1 : b->shape[b->ndim - 1];
    g->m = p->ta ? ac : ar;
    g->k = p->ta ? ar : ac;
    int64_t kb = p->tb ? bc : br;
    g->n = p->tb ? br : bc;
    if (g->k != kb)
        return "inner dimensions differ";
    int na = g->a_vec ? 0 : a->ndim - 2, nbb = g->b_vec ? 0 : b->ndim - 2;
    g->nbd = na > nbb ? na : nbb;
    int64_t sa = 1, sb = 1;
    g->batch = 1;
    for (int i = g->nbd - 1; i >= 0; i--) { // right-aligned broadcasting of the batch dims
        int ia = i - (g->nbd - na), ib = i - (g->nbd - nbb);
        int64_t da = ia >= 0 ? a->shape[ia] : 1, db = ib >= 0 ? b->shape[ib] : 1;
        if (da != db && da != 1 && db != 1)
            return "batch dimensions do not broadcast";
        g->bdim[i] = da == 1 ? db : da;
        g->astep[i] = da == 1 ? 0 : sa;
        g->bstep[i] = db == 1 ? 0 : sb;
        // Empty operands may have huge batch dims whose product does not fit int64.
        if (__builtin_mul_overflow(sa, da, &sa) || __builtin_mul_overflow(sb, db, &sb) ||
            __builtin_mul_overflow(g->batch, g->bdim[i], &g->batch))
            return "batch dimensions too large";
    }
    g->a_count = sa;
    g->b_count = sb;
    int64_t bm;
    if (__builtin_mul_overflow(g->batch, g->m, &bm))
        return "batch dimensions too large";
    if (!nb__gemm_dims_ok(g->m, g->n, g->k) || !nb__gemm_dims_ok(bm, g->n, g->k))
        return "dimensions exceed BLAS int range";
    return NULL;
}

// The geometry is derived in infer, forward and backward alike (nothing saved between
// passes), so the common (m, k) x (k, n) product is done inline with the same checks and
// results as mm_geometry_nd (no batch dims, one matrix each): the per-op overhead of a small
// matmul is mostly this bookkeeping (bench_overhead).
static inline __attribute__((always_inline)) const char *
mm_geometry(const nb_tensor *a, const nb_tensor *b, const mm_params *p, mm_geom *g) {
    if (a->ndim != 2 || b->ndim != 2)
        return mm_geometry_nd(a, b, p, g);
    g->a_vec = g->b_vec = false;
    g->m = a->shape[p->ta ? 1 : 0];
    g->k = a->shape[p->ta ? 0 : 1];
    g->n = b->shape[p->tb ? 0 : 1];
    if (g->k != b->shape[p->tb ? 1 : 0])
        return "inner dimensions differ";
    g->nbd = 0;
    g->batch = g->a_count = g->b_count = 1;
    if (!nb__gemm_dims_ok(g->m, g->n, g->k))
        return "dimensions exceed BLAS int range";
    return NULL;
}

// Index of the a / b matrix used by output batch element o.
static void mm_operands(const mm_geom *g, int64_t o, int64_t *ia, int64_t *ib) {
    int64_t x = 0, y = 0;
    for (int i = g->nbd - 1; i >= 0; i--) {
        int64_t d = o % g->bdim[i];
        o /= g->bdim[i];
        x += d * g->astep[i];
        y += d * g->bstep[i];
    }
    *ia = x;
    *ib = y;
}

static nb_status matmul_infer(nb_node *nd, nb_shape *out) {
    const nb_tensor *a = nd->in[0], *b = nd->in[1];
    const mm_params *p = mm_prm(nd);
    mm_geom g;
    const char *why = mm_geometry(a, b, p, &g);
    if (why)
        return nb__node_fail(nd, NB_ERR_SHAPE, "%s: %s%s x %s%s", why, NB_SHAPE_STR(a),
                             p->ta ? "ᵀ" : "", NB_SHAPE_STR(b), p->tb ? "ᵀ" : "");
    out->ndim = 0;
    for (int i = 0; i < g.nbd; i++)
        out->dim[out->ndim++] = g.bdim[i];
    if (!g.a_vec)
        out->dim[out->ndim++] = g.m;
    if (!g.b_vec)
        out->dim[out->ndim++] = g.n;
    return NB_OK;
}

// Batched GEMMs with fewer multiply-adds than this in one loop run serially (each GEMM on one
// thread). A parallel region's fork and join each wake a sleeping thread under
// OMP_WAIT_POLICY=passive (bench/README's setting): on the idle 2-vCPU machine that cost
// ~95 µs per region, the constant term of every bench_matmul row at 2 threads against 1 (e.g.
// 32 (64x64)(64x64) products: 122 µs on one thread, 160 µs split over two). Splitting T of work
// over 2 threads pays when T / 2 exceeds it: T > ~200 µs, ~14 M multiply-adds at ~70 G/s per
// core. 12 M keeps that 8.4 M-MAC forward serial and its 16.8 M-MAC backward pair parallel.
int64_t nb__gemm_batch_parallel_min = NB_GEMM_BATCH_PARALLEL_MIN_DEFAULT;

typedef enum {
    MM_SERIAL,   // one GEMM after another, each free to use BLAS's threads
    MM_SERIAL_1, // one GEMM after another, each on one thread (too little work to share)
    MM_PARALLEL, // the batch over the OpenMP team, each GEMM single-threaded
} mm_mode;

// How to run `gemms` GEMMs of (m, k)·(k, n) that write `count` distinct destinations. On the
// team when there is enough work for the fork-join and the GEMMs are small enough that BLAS
// would barely thread them, or the batch alone fills the threads many times; below the work
// threshold each GEMM stays on one thread (BLAS's own fork-join costs the same).
static mm_mode mm_batch_mode(int64_t count, int64_t gemms, int64_t m, int64_t n, int64_t k) {
#if defined(_OPENMP) && defined(NB_BLAS_OPENMP)
    int threads = omp_get_max_threads();
    if (count < 2 || threads < 2)
        return MM_SERIAL;
    double one = (double)m * (double)n * (double)k; // multiply-adds of one GEMM (no overflow)
    if (one > (double)(1 << 21) && count < 4 * (int64_t)threads)
        return MM_SERIAL;
    return (double)gemms * one < (double)nb__gemm_batch_parallel_min ? MM_SERIAL_1 : MM_PARALLEL;
#else
    // The pthread OpenBLAS runs its own pool: calls from OpenMP threads would contend for it.
    (void)count, (void)gemms, (void)m, (void)n, (void)k;
    return MM_SERIAL;
#endif
}

// Which matrix of the batch an operand of one GEMM is: a's, b's or the output's (y or dy),
// for output batch element o.
enum { MM_A, MM_B, MM_O };

// One GEMM per output batch element: dst[di] (+)= op(x[xi]) op(y[yi]).
typedef struct {
    nb_dtype dt;
    bool tx, ty;
    int64_t m, n, k; // of this GEMM: op(x) (m, k), op(y) (k, n)
    const void *x, *y;
    void *dst;
    int xi, yi, di; // MM_A / MM_B / MM_O: whose batch index selects each matrix
    double beta;
} mm_call;

static void mm_run(const mm_call *c, const mm_geom *g, int64_t o) {
    int64_t idx[3];
    mm_operands(g, o, &idx[MM_A], &idx[MM_B]);
    idx[MM_O] = o;
    size_t es = nb_dtype_size(c->dt);
    // Matrix sizes in elements: a (m k), b (k n), output (m n), in the forward's terms.
    const int64_t mat[3] = {g->m * g->k, g->k * g->n, g->m * g->n};
    nb__gemm(c->dt, c->tx, c->ty, c->m, c->n, c->k, 1.0,
             (const char *)c->x + (size_t)(idx[c->xi] * mat[c->xi]) * es,
             (const char *)c->y + (size_t)(idx[c->yi] * mat[c->yi]) * es, c->beta,
             (char *)c->dst + (size_t)(idx[c->di] * mat[c->di]) * es);
}

// Runs the call for every output batch element. A destination shared by several elements
// (the gradient of a broadcast operand) is accumulated by one thread, in batch order, so the
// result does not depend on the thread count.
static void mm_batched(const mm_geom *g, const mm_call *c) {
    const int64_t counts[3] = {g->a_count, g->b_count, g->batch};
    int64_t dst_count = counts[c->di];
    mm_mode mode = mm_batch_mode(dst_count, g->batch, c->m, c->n, c->k);
    if (mode != MM_PARALLEL) {
        int saved = mode == MM_SERIAL_1 ? nb__blas_threads_push1() : 0;
        for (int64_t o = 0; o < g->batch; o++)
            mm_run(c, g, o);
        if (mode == MM_SERIAL_1)
            nb__blas_threads_pop(saved);
    } else if (dst_count == g->batch) { // one element per destination
#ifdef _OPENMP
#pragma omp parallel for schedule(static)
#endif
        for (int64_t o = 0; o < g->batch; o++)
            mm_run(c, g, o);
    } else {
#ifdef _OPENMP
#pragma omp parallel for schedule(static)
#endif
        for (int64_t want = 0; want < dst_count; want++)
            for (int64_t o = 0; o < g->batch; o++) {
                int64_t ia, ib;
                mm_operands(g, o, &ia, &ib);
                if ((c->di == MM_A ? ia : ib) == want)
                    mm_run(c, g, o);
            }
    }
}

// When b is one matrix and a is stored untransposed, a's batch is just more rows of one GEMM.
static bool mm_folds(const mm_geom *g, const mm_params *p) {
    return g->b_count == 1 && !p->ta;
}

// The product as one GEMM op(A) (rows, k) · op(B) (k, n), a stored untransposed, when it folds
// (mm_folds); otherwise false with *g filled for the batched path. Forward and backward derive
// it on every pass (nothing is saved between passes). A 2-D a (m, k) and 2-D b, the common case,
// is read straight off the shapes: infer checked them (mm_geometry), a tensor's shape never
// changes, and y is (m, n); the whole geometry is per-op overhead (bench_overhead, replayed).
static inline __attribute__((always_inline)) bool mm_fold_dims(const nb_node *nd,
                                                               const mm_params *p, mm_geom *g,
                                                               int64_t *rows, int64_t *k,
                                                               int64_t *n) {
    const nb_tensor *a = nd->in[0], *b = nd->in[1];
    if (a->ndim == 2 && b->ndim == 2 && !p->ta) {
        *rows = a->shape[0];
        *k = a->shape[1];
        *n = nd->out->shape[1];
        return true;
    }
    NB_ASSERT(mm_geometry(a, b, p, g) == NULL);
    if (!mm_folds(g, p))
        return false;
    *rows = g->batch * g->m;
    *k = g->k;
    *n = g->n;
    return true;
}

static void matmul_forward(nb_node *nd) {
    const nb_tensor *a = nd->in[0], *b = nd->in[1];
    const mm_params *p = mm_prm(nd);
    mm_geom g;
    int64_t rows, k, n;
    if (mm_fold_dims(nd, p, &g, &rows, &k, &n)) {
        nb__gemm(a->dtype, false, p->tb, rows, n, k, 1.0, a->data, b->data, 0.0, nd->out->data);
        return;
    }
    mm_call c = {a->dtype, p->ta,         p->tb, g.m,  g.n,  g.k, a->data,
                 b->data,  nd->out->data, MM_A,  MM_B, MM_O, 0.0};
    mm_batched(&g, &c);
}

// Both gradient products of one batch element in one parallel loop, when each output element
// owns its da and db matrices (no broadcast): one fork-join instead of two.
static bool mm_batched_pair(const mm_geom *g, const mm_call *ca, const mm_call *cb) {
    if (g->a_count != g->batch || g->b_count != g->batch ||
        mm_batch_mode(g->batch, 2 * g->batch, ca->m, ca->n, ca->k) != MM_PARALLEL)
        return false;
#ifdef _OPENMP
#pragma omp parallel for schedule(static)
#endif
    for (int64_t o = 0; o < g->batch; o++) {
        mm_run(ca, g, o);
        mm_run(cb, g, o);
    }
    return true;
}

static void matmul_backward(nb_node *nd) {
    nb_tensor *a = nd->in[0], *b = nd->in[1], *y = nd->out;
    const mm_params *p = mm_prm(nd);
    mm_geom g;
    nb_dtype dt = y->dtype;
    bool wa = NB_WANTS_GRAD(a), wb = NB_WANTS_GRAD(b);
    int64_t rows, k, n;
    if (mm_fold_dims(nd, p, &g, &rows, &k, &n)) { // the batch is more rows of one GEMM
        if (wa)                                   // da (rows, k) += dy (rows, n) · op(b)ᵀ
            nb__gemm(dt, false, !p->tb, rows, k, n, 1.0, y->grad, b->data, 1.0, a->grad);
        if (wb && !p->tb) // db (k, n) += aᵀ (k, rows) · dy (rows, n)
            nb__gemm(dt, true, false, k, n, rows, 1.0, a->data, y->grad, 1.0, b->grad);
        else if (wb) // b stored (n, k): db += dyᵀ (n, rows) · a (rows, k)
            nb__gemm(dt, true, false, n, k, rows, 1.0, y->grad, a->data, 1.0, b->grad);
        return;
    }
    // Per batch element:
    //   da (m, k) += dy (m, n) · op(b)ᵀ, or for a stored (k, m): da += op(b) (k, n) · dyᵀ (n, m)
    //   db (k, n) += op(a)ᵀ (k, m) · dy (m, n), or for b stored (n, k): db += dyᵀ · op(a)
    mm_call ca = !p->ta ? (mm_call){dt,      false,   !p->tb, g.m,  g.k,  g.n, y->grad,
                                    b->data, a->grad, MM_O,   MM_B, MM_A, 1.0}
                        : (mm_call){dt,      p->tb,   true, g.k,  g.m,  g.n, b->data,
                                    y->grad, a->grad, MM_B, MM_O, MM_A, 1.0};
    mm_call cb = !p->tb ? (mm_call){dt,      !p->ta,  false, g.k,  g.n,  g.m, a->data,
                                    y->grad, b->grad, MM_A,  MM_O, MM_B, 1.0}
                        : (mm_call){dt,      true,    p->ta, g.n,  g.k,  g.m, y->grad,
                                    a->data, b->grad, MM_O,  MM_A, MM_B, 1.0};
    if (wa && wb && mm_batched_pair(&g, &ca, &cb))
        return;
    if (wa)
        mm_batched(&g, &ca);
    if (wb)
        mm_batched(&g, &cb);
}

// d (broadcast batch..., rows, cols) back to operand t: the batch summed to t2's (its matrix
// form), then a promoted vector's shape restored.
static nb_tensor *mm_fit(nb_graph *g, nb_tensor *d, const nb_tensor *t2, const nb_tensor *t) {
    bool same = d && d->ndim == t2->ndim;
    for (int i = 0; same && i < d->ndim; i++)
        same = d->shape[i] == t2->shape[i];
    if (d && !same)
        d = nb_sum_to(g, d, t2->ndim, t2->shape);
    return t2 == t ? d : nb_reshape(g, d, t->ndim, t->shape);
}

// The backward's formulas as matmuls: vectors promoted as in forward (a (k) -> (1, k),
// b (k) -> (k, 1), dy given its dropped 1s back); with A = op(a), B = op(b):
// da = dy Bᵀ, or B dyᵀ when a is stored transposed; db = Aᵀ dy, or dyᵀ A. Transposes stay GEMM
// flags (matmul_t); a broadcast batch is summed back to the operand (sum_to).
static nb_status matmul_vjp(nb_node *nd, nb_tensor *gy, const bool *want, nb_tensor **gin) {
    nb_graph *g = nd->graph;
    nb_tensor *a = nd->in[0], *b = nd->in[1];
    const mm_params *p = mm_prm(nd);
    mm_geom geo;
    NB_ASSERT(mm_geometry(a, b, p, &geo) == NULL); // infer accepted these shapes
    nb_tensor *a2 = geo.a_vec ? nb_reshape(g, a, 2, (int64_t[]){1, a->shape[0]}) : a;
    nb_tensor *b2 = geo.b_vec ? nb_reshape(g, b, 2, (int64_t[]){b->shape[0], 1}) : b;
    int64_t ys[NB_MAX_DIMS + 2];
    int n = 0;
    for (int i = 0; i < geo.nbd; i++)
        ys[n++] = geo.bdim[i];
    ys[n++] = geo.m;
    ys[n++] = geo.n;
    nb_tensor *gy2 = geo.a_vec || geo.b_vec ? nb_reshape(g, gy, n, ys) : gy;
    if (!a2 || !b2 || !gy2)
        return nb_graph_status(g);
    if (want[0]) {
        nb_tensor *d =
            p->ta ? nb_matmul_t(g, b2, gy2, p->tb, true) : nb_matmul_t(g, gy2, b2, false, !p->tb);
        gin[0] = mm_fit(g, d, a2, a);
    }
    if (want[1]) {
        nb_tensor *d =
            p->tb ? nb_matmul_t(g, gy2, a2, true, p->ta) : nb_matmul_t(g, a2, gy2, !p->ta, false);
        gin[1] = mm_fit(g, d, b2, b);
    }
    return nb_graph_status(g);
}

const nb_op nb_op_matmul = {"matmul",        2,          0,    matmul_infer, matmul_forward,
                            matmul_backward, matmul_vjp, NULL, false,        false};

nb_tensor *nb_matmul(nb_graph *g, nb_tensor *a, nb_tensor *b) {
    nb_tensor *in[] = {a, b};
    return nb__record(g, &nb_op_matmul, in, 2, NULL, 0);
}

nb_tensor *nb_matmul_t(nb_graph *g, nb_tensor *a, nb_tensor *b, bool ta, bool tb) {
    nb_tensor *in[] = {a, b};
    mm_params p = {ta, tb};
    return nb__record(g, &nb_op_matmul, in, 2, &p, sizeof p);
}
