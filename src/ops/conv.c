// conv2d, NCHW, as PyTorch's F.conv2d: x (N, C, H, W), w (O, C/G, KH, KW), b (O) optional
// -> y (N, O, OH, OW), OH = (H + 2 ph - dh (KH - 1) - 1) / sh + 1 (and likewise OW).
// Per sample n and group gi (G groups, Cg = C / G input and Og = O / G output channels):
//   col (K, OH OW) = im2col(x[n, gi Cg .. +Cg]),   K = Cg KH KW, zero where the tap is padding
//   y[n, gi Og .. +Og] (Og, OH OW) = w_g (Og, K) col   (+ b, added after the GEMM)
// Backward, from dy (N, O, OH OW):
//   dw_g (Og, K) += Σ_n dy_ng col_ngᵀ   (per chunk of CONV_CHUNK samples, partials added in
//                                        chunk order: the same bits for any thread count)
//   dcol (K, OH OW) = w_gᵀ dy_ng;  dx[n] += col2im(dcol)
//   db[o] += Σ_n Σ_p dy[n, o, p]
// Scratch (graph arena, so a steady-state step allocates nothing; not cleared, every element
// is written before it is read): the whole batch's col when w's gradient is wanted (backward
// reuses it for dw instead of redoing im2col), else one col per thread; one dcol per thread
// and one partial dw per chunk for backward.
// Samples (forward) and chunks (backward) run in parallel, one single-threaded GEMM each,
// when the per-sample GEMMs are small enough that BLAS would barely thread them; otherwise
// serially with BLAS's own threads.
#include <string.h>

#include "ops/ops_impl.h"

#ifdef _OPENMP
#include <omp.h>
#endif

typedef struct {
    int64_t stride[2], pad[2], dil[2], groups;
} conv_params;

// The geometry of one node's convolution, derived from the shapes and params.
typedef struct {
    int64_t n, c, h, w;   // x
    int64_t o, kh, kw;    // w
    int64_t oh, ow;       // y
    int64_t g, cg, og, k; // groups, channels per group in / out, K = Cg KH KW
    int64_t ohw;          // OH OW
    conv_params p;
} conv_geom;

static conv_geom conv_geometry(const nb_node *nd) {
    const conv_params *p = nd->params;
    const nb_tensor *x = nd->in[0], *w = nd->in[1];
    conv_geom q;
    q.p = *p;
    q.n = x->shape[0], q.c = x->shape[1], q.h = x->shape[2], q.w = x->shape[3];
    q.o = w->shape[0], q.kh = w->shape[2], q.kw = w->shape[3];
    q.g = p->groups;
    q.cg = q.c / q.g, q.og = q.o / q.g;
    q.k = q.cg * q.kh * q.kw;
    q.oh = (q.h + 2 * p->pad[0] - p->dil[0] * (q.kh - 1) - 1) / p->stride[0] + 1;
    q.ow = (q.w + 2 * p->pad[1] - p->dil[1] * (q.kw - 1) - 1) / p->stride[1] + 1;
    q.ohw = q.oh * q.ow;
    return q;
}

static nb_status conv_infer(nb_node *nd, nb_shape *out) {
    const conv_params *p = nd->params;
    if (nd->n_in < 2 || nd->n_in > 3)
        return nb__node_fail(nd, NB_ERR_ARG, "expects x, w and optional b");
    const nb_tensor *x = nd->in[0], *w = nd->in[1];
    if (x->ndim != 4 || w->ndim != 4)
        return nb__node_fail(nd, NB_ERR_SHAPE,
                             "x %s must be (N, C, H, W) and w %s (O, C/groups, KH, KW)",
                             NB_SHAPE_STR(x), NB_SHAPE_STR(w));
    for (int a = 0; a < 2; a++) {
        if (p->stride[a] < 1 || p->dil[a] < 1 || p->pad[a] < 0)
            return nb__node_fail(nd, NB_ERR_ARG,
                                 "stride (%lld, %lld) and dilation (%lld, %lld) must be >= 1 and "
                                 "padding (%lld, %lld) >= 0; x %s, w %s",
                                 (long long)p->stride[0], (long long)p->stride[1],
                                 (long long)p->dil[0], (long long)p->dil[1], (long long)p->pad[0],
                                 (long long)p->pad[1], NB_SHAPE_STR(x), NB_SHAPE_STR(w));
    }
    int64_t g = p->groups, c = x->shape[1], o = w->shape[0];
    if (g < 1 || c % g != 0 || o % g != 0)
        return nb__node_fail(nd, NB_ERR_SHAPE,
                             "groups %lld must be >= 1 and divide the input channels of x %s and "
                             "the output channels of w %s",
                             (long long)g, NB_SHAPE_STR(x), NB_SHAPE_STR(w));
    if (w->shape[1] * g != c)
        return nb__node_fail(
            nd, NB_ERR_SHAPE, "x %s has %lld channels but w %s expects %lld x %lld groups",
            NB_SHAPE_STR(x), (long long)c, NB_SHAPE_STR(w), (long long)w->shape[1], (long long)g);
    if (nd->n_in == 3) {
        const nb_tensor *b = nd->in[2];
        if (b->ndim != 1 || b->shape[0] != o)
            return nb__node_fail(nd, NB_ERR_SHAPE, "b is %s but w is %s: b must be (O)",
                                 NB_SHAPE_STR(b), NB_SHAPE_STR(w));
    }
    for (int a = 0; a < 2; a++) {
        int64_t in = x->shape[2 + a], kk = w->shape[2 + a];
        int64_t span = p->dil[a] * (kk - 1) + 1; // the dilated kernel's extent
        if (kk < 1 || span > in + 2 * p->pad[a])
            return nb__node_fail(nd, NB_ERR_SHAPE,
                                 "kernel %s (dilated extent %lld along %s) is larger than the "
                                 "padded input x %s with padding %lld",
                                 NB_SHAPE_STR(w), (long long)span, a ? "W" : "H", NB_SHAPE_STR(x),
                                 (long long)p->pad[a]);
    }
    int64_t k = w->shape[1] * w->shape[2] * w->shape[3];
    out->ndim = 4;
    out->dim[0] = x->shape[0];
    out->dim[1] = o;
    for (int a = 0; a < 2; a++)
        out->dim[2 + a] =
            (x->shape[2 + a] + 2 * p->pad[a] - p->dil[a] * (w->shape[2 + a] - 1) - 1) /
                p->stride[a] +
            1;
    if (!nb__gemm_dims_ok(o / g, out->dim[2] * out->dim[3], k))
        return nb__node_fail(nd, NB_ERR_SHAPE, "dimensions exceed BLAS int range: %s, %s",
                             NB_SHAPE_STR(x), NB_SHAPE_STR(w));
    return NB_OK;
}

// The output columns ox whose tap ix = ox s + ix0 lies inside [0, w): [lo, hi) (empty when
// lo >= hi). Lets im2col / col2im run branch-free over the interior of every row.
static void tap_range(int64_t ix0, int64_t s, int64_t w, int64_t ow, int64_t *lo, int64_t *hi) {
    int64_t l = ix0 >= 0 ? 0 : (-ix0 + s - 1) / s;
    int64_t h = ix0 >= w ? 0 : (w - ix0 + s - 1) / s;
    *lo = l < ow ? l : ow;
    *hi = h < ow ? h : ow;
    if (*hi < *lo)
        *hi = *lo;
}

// im2col of one group of one sample: xg (Cg, H, W) -> col (K, OH OW), row r = (c KH + i) KW + j
// holding the tap (i, j) of channel c for every output position; padding taps are 0.
// col2im is its adjoint: dx (Cg, H, W) += the taps of dcol summed back onto their pixels.
#define DEFINE_IM2COL(T, sfx)                                                                      \
    static void im2col_##sfx(const conv_geom *q, const T *xg, T *col) {                            \
        const int64_t sh = q->p.stride[0], sw = q->p.stride[1], ph = q->p.pad[0],                  \
                      pw = q->p.pad[1], dh = q->p.dil[0], dw = q->p.dil[1];                        \
        for (int64_t c = 0; c < q->cg; c++)                                                        \
            for (int64_t i = 0; i < q->kh; i++)                                                    \
                for (int64_t j = 0; j < q->kw; j++) {                                              \
                    T *row = col + ((c * q->kh + i) * q->kw + j) * q->ohw;                         \
                    const T *xc = xg + c * q->h * q->w;                                            \
                    int64_t ix0 = j * dw - pw, lo, hi;                                             \
                    tap_range(ix0, sw, q->w, q->ow, &lo, &hi);                                     \
                    for (int64_t oy = 0; oy < q->oh; oy++) {                                       \
                        T *r = row + oy * q->ow;                                                   \
                        int64_t iy = oy * sh - ph + i * dh;                                        \
                        if (iy < 0 || iy >= q->h) {                                                \
                            for (int64_t ox = 0; ox < q->ow; ox++)                                 \
                                r[ox] = 0;                                                         \
                            continue;                                                              \
                        }                                                                          \
                        const T *xr = xc + iy * q->w;                                              \
                        for (int64_t ox = 0; ox < lo; ox++)                                        \
                            r[ox] = 0;                                                             \
                        if (sw == 1)                                                               \
                            for (int64_t ox = lo; ox < hi; ox++)                                   \
                                r[ox] = xr[ox + ix0];                                              \
                        else                                                                       \
                            for (int64_t ox = lo; ox < hi; ox++)                                   \
                                r[ox] = xr[ox * sw + ix0];                                         \
                        for (int64_t ox = hi; ox < q->ow; ox++)                                    \
                            r[ox] = 0;                                                             \
                    }                                                                              \
                }                                                                                  \
    }                                                                                              \
    static void col2im_##sfx(const conv_geom *q, const T *col, T *dxg) {                           \
        const int64_t sh = q->p.stride[0], sw = q->p.stride[1], ph = q->p.pad[0],                  \
                      pw = q->p.pad[1], dh = q->p.dil[0], dw = q->p.dil[1];                        \
        for (int64_t c = 0; c < q->cg; c++)                                                        \
            for (int64_t i = 0; i < q->kh; i++)                                                    \
                for (int64_t j = 0; j < q->kw; j++) {                                              \
                    const T *row = col + ((c * q->kh + i) * q->kw + j) * q->ohw;                   \
                    T *dxc = dxg + c * q->h * q->w;                                                \
                    int64_t ix0 = j * dw - pw, lo, hi;                                             \
                    tap_range(ix0, sw, q->w, q->ow, &lo, &hi);                                     \
                    for (int64_t oy = 0; oy < q->oh; oy++) {                                       \
                        int64_t iy = oy * sh - ph + i * dh;                                        \
                        if (iy < 0 || iy >= q->h)                                                  \
                            continue;                                                              \
                        const T *r = row + oy * q->ow;                                             \
                        T *dr = dxc + iy * q->w;                                                   \
                        if (sw == 1)                                                               \
                            for (int64_t ox = lo; ox < hi; ox++)                                   \
                                dr[ox + ix0] += r[ox];                                             \
                        else                                                                       \
                            for (int64_t ox = lo; ox < hi; ox++)                                   \
                                dr[ox * sw + ix0] += r[ox];                                        \
                    }                                                                              \
                }                                                                                  \
    }                                                                                              \
    static void bias_add_##sfx(const conv_geom *q, const T *b, T *yn) {                            \
        for (int64_t o = 0; o < q->o; o++) {                                                       \
            T bo = b[o], *r = yn + o * q->ohw;                                                     \
            for (int64_t p = 0; p < q->ohw; p++)                                                   \
                r[p] += bo;                                                                        \
        }                                                                                          \
    }                                                                                              \
    /* db[o] += Σ_n Σ_p dy[n, o, p], in CONV_LANES partial sums by p mod CONV_LANES (independent \
       chains, fixed order: the same bits for any thread count or instruction set) */              \
    static void bias_grad_##sfx(const conv_geom *q, const T *gy, T *gb) {                          \
        for (int64_t o = 0; o < q->o; o++) {                                                       \
            double acc[CONV_LANES] = {0};                                                          \
            for (int64_t n = 0; n < q->n; n++) {                                                   \
                const T *r = gy + (n * q->o + o) * q->ohw;                                         \
                int64_t p = 0;                                                                     \
                for (; p + CONV_LANES <= q->ohw; p += CONV_LANES)                                  \
                    for (int l = 0; l < CONV_LANES; l++)                                           \
                        acc[l] += (double)r[p + l];                                                \
                for (int l = 0; p < q->ohw; p++, l++)                                              \
                    acc[l] += (double)r[p];                                                        \
            }                                                                                      \
            double t = 0;                                                                          \
            for (int l = 0; l < CONV_LANES; l++)                                                   \
                t += acc[l];                                                                       \
            gb[o] += (T)t;                                                                         \
        }                                                                                          \
    }                                                                                              \
    static void add_to_##sfx(T *dst, const T *src, int64_t n) {                                    \
        for (int64_t i = 0; i < n; i++)                                                            \
            dst[i] += src[i];                                                                      \
    }
#define CONV_LANES 8
DEFINE_IM2COL(float, f32)
DEFINE_IM2COL(double, f64)

// Typed dispatch over the kernels.
static void im2col(nb_dtype dt, const conv_geom *q, const void *xg, void *col) {
    if (dt == NB_F32)
        im2col_f32(q, xg, col);
    else
        im2col_f64(q, xg, col);
}
static void col2im(nb_dtype dt, const conv_geom *q, const void *col, void *dxg) {
    if (dt == NB_F32)
        col2im_f32(q, col, dxg);
    else
        col2im_f64(q, col, dxg);
}

// Run samples in parallel, one single-threaded GEMM each, as matmul decides for its batches:
// when BLAS shares our OpenMP pool, there are >= 2 samples and threads, and the work is worth
// a parallel region.
static int conv_threads(const conv_geom *q) {
#if defined(_OPENMP) && defined(NB_BLAS_OPENMP)
    int threads = omp_get_max_threads();
    if (q->n < 2 || threads < 2 || q->n * q->o * q->ohw * q->k / q->g < NB_OMP_MIN)
        return 1;
    return threads < q->n ? threads : (int)q->n;
#else
    (void)q;
    return 1;
#endif
}

// dw is summed over the batch in chunks of CONV_CHUNK samples: each chunk's Σ_n dy_n col_nᵀ
// into its own partial (in parallel), then the partials added in chunk order. The chunks do
// not depend on the thread count, so neither do the bits of dw.
#define CONV_CHUNK 8

// The node's scratch (its header saved with the node, the buffers in the graph arena, neither
// cleared: every element is written before it is read):
//   cols:  K OH OW per (sample, group) when the gradient of w is wanted (kept for dw), else
//          one per thread;
//   dcols: one K OH OW per thread, for backward;
//   dws:   one G Og K partial dw per chunk of samples, when there is more than one chunk.
// The thread count is fixed at the first forward so backward and a replayed forward use the
// same buffers.
typedef struct {
    int threads;
    bool keep; // cols holds every (sample, group)
    int64_t chunks;
    char *cols, *dcols, *dws;
} conv_scratch;

static conv_scratch *conv_scratch_get(nb_node *nd, const conv_geom *q) {
    conv_scratch *s = nb__node_save(nd, sizeof *s);
    if (!s || s->cols) // a replay keeps the first forward's buffers
        return s;
    s->threads = conv_threads(q);
    s->keep = nd->needs_grad && nd->in[1]->requires_grad;
    s->chunks = (q->n + CONV_CHUNK - 1) / CONV_CHUNK;
    size_t es = nb_dtype_size(nd->out->dtype), colsz = (size_t)(q->k * q->ohw) * es;
    size_t ncols = s->keep ? (size_t)(q->n * q->g) : (size_t)s->threads;
    s->cols = nb__graph_alloc(nd->graph, ncols * colsz);
    if (s->cols && nd->needs_grad)
        s->dcols = nb__graph_alloc(nd->graph, (size_t)s->threads * colsz);
    if (s->cols && s->keep && s->chunks > 1)
        s->dws = nb__graph_alloc(nd->graph, (size_t)(s->chunks * q->o * q->k) * es);
    if (!s->cols || (nd->needs_grad && !s->dcols) || (s->keep && s->chunks > 1 && !s->dws)) {
        s->cols = NULL; // the graph holds the out-of-memory error
        return NULL;
    }
    return s;
}

static void conv_forward(nb_node *nd) {
    const nb_tensor *x = nd->in[0], *w = nd->in[1];
    nb_tensor *y = nd->out;
    conv_geom q = conv_geometry(nd);
    conv_scratch *s = conv_scratch_get(nd, &q);
    if (!s)
        return;
    int threads = s->threads;
    (void)threads; // read only by the OpenMP pragma in a build without OpenMP
    bool keep = s->keep;
    size_t es = nb_dtype_size(y->dtype), colsz = (size_t)(q.k * q.ohw);
    char *cols = s->cols;
    bool bias = nd->n_in == 3;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1)
#endif
    for (int64_t n = 0; n < q.n; n++) {
        int tid = 0;
#ifdef _OPENMP
        tid = threads > 1 ? omp_get_thread_num() : 0;
#endif
        char *yn = (char *)y->data + (size_t)(n * q.o * q.ohw) * es;
        for (int64_t gi = 0; gi < q.g; gi++) {
            char *col = cols + (keep ? (size_t)(n * q.g + gi) : (size_t)tid) * colsz * es;
            im2col(y->dtype, &q,
                   (const char *)x->data + (size_t)((n * q.c + gi * q.cg) * q.h * q.w) * es, col);
            nb__gemm(y->dtype, false, false, q.og, q.ohw, q.k, 1.0,
                     (const char *)w->data + (size_t)(gi * q.og * q.k) * es, col, 0.0,
                     yn + (size_t)(gi * q.og * q.ohw) * es);
        }
        if (bias && y->dtype == NB_F32)
            bias_add_f32(&q, F32(nd->in[2]), (float *)yn);
        else if (bias)
            bias_add_f64(&q, F64(nd->in[2]), (double *)yn);
    }
}

// One chunk of samples [n0, n1) of backward: its partial dw (into dw, overwritten, or added
// to w's gradient when dw_acc) and, when wanted, dx through dcol and col2im.
static void conv_backward_chunk(nb_node *nd, const conv_geom *q, const conv_scratch *s, int64_t n0,
                                int64_t n1, char *dw, bool dw_acc, char *dcol) {
    nb_tensor *x = nd->in[0], *w = nd->in[1], *y = nd->out;
    size_t es = nb_dtype_size(y->dtype), colsz = (size_t)(q->k * q->ohw);
    bool want_w = NB_WANTS_GRAD(w), want_x = NB_WANTS_GRAD(x);
    for (int64_t n = n0; n < n1; n++)
        for (int64_t gi = 0; gi < q->g; gi++) {
            const char *gy =
                (const char *)y->grad + (size_t)((n * q->o + gi * q->og) * q->ohw) * es;
            const char *wg = (const char *)w->data + (size_t)(gi * q->og * q->k) * es;
            if (want_w) // s->keep is set whenever w wanted its gradient at forward
                nb__gemm(y->dtype, false, true, q->og, q->k, q->ohw, 1.0, gy,
                         s->cols + (size_t)(n * q->g + gi) * colsz * es,
                         dw_acc || n > n0 ? 1.0 : 0.0, dw + (size_t)(gi * q->og * q->k) * es);
            if (want_x) {
                nb__gemm(y->dtype, true, false, q->k, q->ohw, q->og, 1.0, wg, gy, 0.0, dcol);
                char *dx = (char *)x->grad + (size_t)((n * q->c + gi * q->cg) * q->h * q->w) * es;
                if (nb__grad_first(nd, 0)) // dx's first write: zero this slice here, cache-hot
                    memset(dx, 0, (size_t)(q->cg * q->h * q->w) * es);
                col2im(y->dtype, q, dcol, dx);
            }
        }
}

static void conv_backward(nb_node *nd) {
    nb_tensor *x = nd->in[0], *w = nd->in[1], *y = nd->out;
    conv_geom q = conv_geometry(nd);
    conv_scratch *s = nd->saved;
    size_t es = nb_dtype_size(y->dtype), colsz = (size_t)(q.k * q.ohw);
    for (int k = 1; k < nd->n_in; k++) // w, b: due a first write (rare: leaves add) -> zero
        if (NB_WANTS_GRAD(nd->in[k]))
            nb__grad_zero_if_first(nd, k);
    if (nd->n_in == 3 && NB_WANTS_GRAD(nd->in[2])) {
        if (y->dtype == NB_F32)
            bias_grad_f32(&q, G32(y), G32(nd->in[2]));
        else
            bias_grad_f64(&q, G64(y), G64(nd->in[2]));
    }
    bool want_w = NB_WANTS_GRAD(w);
    if (!want_w && !NB_WANTS_GRAD(x))
        return;
    // Partials per chunk only when there is more than one chunk and dw is wanted; otherwise
    // the one chunk accumulates straight into w's gradient.
    bool partial = want_w && s->chunks > 1;
    int threads = s->threads < s->chunks ? s->threads : (int)s->chunks;
    (void)threads; // read only by the OpenMP pragma in a build without OpenMP
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1)
#endif
    for (int64_t ch = 0; ch < s->chunks; ch++) {
        int tid = 0;
#ifdef _OPENMP
        tid = threads > 1 ? omp_get_thread_num() : 0;
#endif
        int64_t n0 = ch * CONV_CHUNK, n1 = n0 + CONV_CHUNK < q.n ? n0 + CONV_CHUNK : q.n;
        char *dw = partial ? s->dws + (size_t)(ch * q.o * q.k) * es : (char *)w->grad;
        conv_backward_chunk(nd, &q, s, n0, n1, dw, !partial, s->dcols + (size_t)tid * colsz * es);
    }
    if (partial)
        for (int64_t ch = 0; ch < s->chunks; ch++) {
            const char *dw = s->dws + (size_t)(ch * q.o * q.k) * es;
            if (y->dtype == NB_F32)
                add_to_f32(G32(w), (const float *)dw, q.o * q.k);
            else
                add_to_f64(G64(w), (const double *)dw, q.o * q.k);
        }
}

// First order only for now: its vjp needs a transposed convolution (dx) and a correlation of x
// with dy (dw) as recorded ops.
const nb_op nb_op_conv2d = {"conv2d",
                            -1,
                            0,
                            conv_infer,
                            conv_forward,
                            conv_backward,
                            NULL,
                            "its vjp (a transposed convolution) is not written yet",
                            true,
                            false};

nb_tensor *nb_conv2d_hw(nb_graph *g, nb_tensor *x, nb_tensor *w, nb_tensor *b, const int stride[2],
                        const int padding[2], const int dilation[2], int groups) {
    conv_params p = {
        {stride[0], stride[1]}, {padding[0], padding[1]}, {dilation[0], dilation[1]}, groups};
    nb_tensor *in[] = {x, w, b};
    return nb__record(g, &nb_op_conv2d, in, b ? 3 : 2, &p, sizeof p);
}

nb_tensor *nb_conv2d(nb_graph *g, nb_tensor *x, nb_tensor *w, nb_tensor *b, int stride, int padding,
                     int dilation, int groups) {
    const int s[2] = {stride, stride}, p[2] = {padding, padding}, d[2] = {dilation, dilation};
    return nb_conv2d_hw(g, x, w, b, s, p, d, groups);
}

// conv1d: x (N, C, L), w (O, C/G, K) -> (N, O, OL) as conv2d of x (N, C, 1, L) and
// w (O, C/G, 1, K): three reshapes around one conv2d node, so the gradient is conv2d's.
nb_tensor *nb_conv1d(nb_graph *g, nb_tensor *x, nb_tensor *w, nb_tensor *b, int stride, int padding,
                     int dilation, int groups) {
    if (!g || nb_graph_status(g) != NB_OK)
        return NULL;
    if (!x || !w)
        return nb__graph_fail(g, NB_ERR_NULL, "conv1d: %s is NULL", x ? "w" : "x"), NULL;
    // Stale inputs are refused before their shapes are read.
    if (nb__graph_check_live(g, "conv1d", x, 0) || nb__graph_check_live(g, "conv1d", w, 1) ||
        (b && nb__graph_check_live(g, "conv1d", b, 2)))
        return NULL;
    if (x->ndim != 3 || w->ndim != 3)
        return nb__graph_fail(g, NB_ERR_SHAPE,
                              "conv1d: x %s must be (N, C, L) and w %s (O, C/groups, K)",
                              NB_SHAPE_STR(x), NB_SHAPE_STR(w)),
               NULL;
    if (stride < 1 || padding < 0 || dilation < 1)
        return nb__graph_fail(g, NB_ERR_ARG,
                              "conv1d: stride %d and dilation %d must be >= 1 and padding %d >= 0; "
                              "x %s, w %s",
                              stride, dilation, padding, NB_SHAPE_STR(x), NB_SHAPE_STR(w)),
               NULL;
    const int64_t xs[4] = {x->shape[0], x->shape[1], 1, x->shape[2]};
    const int64_t ws[4] = {w->shape[0], w->shape[1], 1, w->shape[2]};
    const int s[2] = {1, stride}, p[2] = {0, padding}, d[2] = {1, dilation};
    nb_tensor *y =
        nb_conv2d_hw(g, nb_reshape(g, x, 4, xs), nb_reshape(g, w, 4, ws), b, s, p, d, groups);
    if (!y)
        return NULL;
    const int64_t ys[3] = {y->shape[0], y->shape[1], y->shape[3]};
    return nb_reshape(g, y, 3, ys);
}
