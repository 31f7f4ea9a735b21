// 2-D pooling, NCHW, as PyTorch's F.max_pool2d / F.avg_pool2d / F.adaptive_avg_pool2d:
// x (N, C, H, W) -> y (N, C, OH, OW), every (n, c) plane pooled on its own.
//   OH = ceil_or_floor((H + 2 ph - dh (KH - 1) - 1) / sh) + 1; with ceil_mode a window that
//   would start in the right padding is dropped (PyTorch's rule). Likewise OW.
// max: y = the max over the window's in-range taps (padding is -inf; NaN wins, as PyTorch); the
//   flat index iy W + ix of the winner in its plane is saved (graph arena) for backward
//   (dx[idx] += dy) and readable with nb_max_pool2d_indices.
// avg: y = Σ window / divisor, divisor = the window clipped to the padded input when
//   count_include_pad, else clipped to the input (PyTorch's rule); no dilation.
// adaptive avg: window i of OH spans [floor(i H / OH), ceil((i + 1) H / OH)), no padding.
// Planes run in parallel (NB_FOR_WORK over N C, when the input is large enough); every output
// is computed by one thread.
#include <math.h>

#include "ops/ops_impl.h"

typedef enum { POOL_MAX, POOL_AVG, POOL_ADAPTIVE } pool_kind;

typedef struct {
    pool_kind kind;
    int64_t k[2], s[2], p[2], d[2]; // kernel, stride, padding, dilation (h, w)
    bool ceil_mode, count_include_pad;
    int64_t out[2]; // adaptive: the output size
} pool_params;

// Output extent along one axis (PyTorch's pooling_output_shape).
static int64_t pool_out(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d, bool ceil_mode) {
    int64_t num = in + 2 * p - d * (k - 1) - 1;
    int64_t o = (ceil_mode ? (num + s - 1) / s : num / s) + 1;
    if (ceil_mode && (o - 1) * s >= in + p)
        o--;
    return o;
}

static nb_status pool_infer(nb_node *nd, nb_shape *out) {
    const pool_params *p = nd->params;
    const nb_tensor *x = nd->in[0];
    if (x->ndim != 4)
        return nb__node_fail(nd, NB_ERR_SHAPE, "x %s must be (N, C, H, W)", NB_SHAPE_STR(x));
    out->ndim = 4;
    out->dim[0] = x->shape[0];
    out->dim[1] = x->shape[1];
    for (int a = 0; a < 2; a++) {
        int64_t in = x->shape[2 + a];
        if (p->kind == POOL_ADAPTIVE) {
            if (p->out[a] < 1 || in < 1)
                return nb__node_fail(nd, NB_ERR_ARG,
                                     "output size (%lld, %lld) must be >= 1 and x %s non-empty",
                                     (long long)p->out[0], (long long)p->out[1], NB_SHAPE_STR(x));
            out->dim[2 + a] = p->out[a];
            continue;
        }
        if (p->k[a] < 1 || p->s[a] < 1 || p->d[a] < 1 || p->p[a] < 0)
            return nb__node_fail(nd, NB_ERR_ARG,
                                 "kernel (%lld, %lld), stride (%lld, %lld) and dilation (%lld, "
                                 "%lld) must be >= 1 and padding (%lld, %lld) >= 0; x %s",
                                 (long long)p->k[0], (long long)p->k[1], (long long)p->s[0],
                                 (long long)p->s[1], (long long)p->d[0], (long long)p->d[1],
                                 (long long)p->p[0], (long long)p->p[1], NB_SHAPE_STR(x));
        int64_t span = p->d[a] * (p->k[a] - 1) + 1;
        if (2 * p->p[a] > span)
            return nb__node_fail(nd, NB_ERR_ARG,
                                 "padding %lld is more than half the (dilated) kernel extent "
                                 "%lld along %s; x %s",
                                 (long long)p->p[a], (long long)span, a ? "W" : "H",
                                 NB_SHAPE_STR(x));
        if (span > in + 2 * p->p[a])
            return nb__node_fail(nd, NB_ERR_SHAPE,
                                 "kernel (%lld, %lld) (dilated extent %lld along %s) is larger "
                                 "than the padded input x %s with padding %lld",
                                 (long long)p->k[0], (long long)p->k[1], (long long)span,
                                 a ? "W" : "H", NB_SHAPE_STR(x), (long long)p->p[a]);
        out->dim[2 + a] = pool_out(in, p->k[a], p->s[a], p->p[a], p->d[a], p->ceil_mode);
    }
    return NB_OK;
}

// Geometry of one node.
typedef struct {
    int64_t planes, h, w, oh, ow;
} pool_geom;

static pool_geom pool_geometry(const nb_node *nd) {
    const nb_tensor *x = nd->in[0], *y = nd->out;
    return (pool_geom){x->shape[0] * x->shape[1], x->shape[2], x->shape[3], y->shape[2],
                       y->shape[3]};
}

// The window of output oy along one axis for avg / adaptive: [lo, hi) clipped to the input,
// and the divisor's extent.
static void avg_window(const pool_params *p, int a, int64_t o, int64_t in, int64_t nout,
                       int64_t *lo, int64_t *hi, int64_t *ext) {
    if (p->kind == POOL_ADAPTIVE) {
        *lo = o * in / nout;
        *hi = ((o + 1) * in + nout - 1) / nout;
        *ext = *hi - *lo;
        return;
    }
    int64_t start = o * p->s[a] - p->p[a];
    int64_t end = start + p->k[a];
    if (end > in + p->p[a])
        end = in + p->p[a];
    int64_t padded = end - start;
    *lo = start < 0 ? 0 : start;
    *hi = end > in ? in : end;
    *ext = p->count_include_pad ? padded : *hi - *lo;
}

// Row kernels in an AVX-512, an AVX2 and a baseline (SSE2) build, picked once at load time
// (GCC on x86-64; the file is compiled without FMA contraction: the same bits in every build).
#define MAX2_ROW 256 // outputs per call of the 2x2 row kernel (its tap codes on the stack)

// v replaces the current maximum m in a scan: larger, or the first NaN.
#define POOL_BETTER(v, m) ((v) > (m) || ((v) != (v) && (m) == (m)))

#define DEFINE_POOL(T, sfx)                                                                        \
    static void max_fwd_##sfx(const pool_params *p, pool_geom q, const T *x, T *y, int64_t *idx) { \
        NB_FOR_WORK(q.planes, q.planes *q.h *q.w, pl, {                                            \
            const T *xp = x + pl * q.h * q.w;                                                      \
            for (int64_t oy = 0; oy < q.oh; oy++)                                                  \
                for (int64_t ox = 0; ox < q.ow; ox++) {                                            \
                    T best = -(T)INFINITY;                                                         \
                    int64_t bi = -1;                                                               \
                    for (int64_t i = 0; i < p->k[0]; i++) {                                        \
                        int64_t iy = oy * p->s[0] - p->p[0] + i * p->d[0];                         \
                        if (iy < 0 || iy >= q.h)                                                   \
                            continue;                                                              \
                        for (int64_t j = 0; j < p->k[1]; j++) {                                    \
                            int64_t ix = ox * p->s[1] - p->p[1] + j * p->d[1];                     \
                            if (ix < 0 || ix >= q.w)                                               \
                                continue;                                                          \
                            T v = xp[iy * q.w + ix];                                               \
                            if (bi < 0 || v > best || (isnan(v) && !isnan(best))) {                \
                                best = v;                                                          \
                                bi = iy * q.w + ix;                                                \
                            }                                                                      \
                        }                                                                          \
                    }                                                                              \
                    int64_t o = (pl * q.oh + oy) * q.ow + ox;                                      \
                    y[o] = best;                                                                   \
                    idx[o] = bi;                                                                   \
                }                                                                                  \
        });                                                                                        \
    }                                                                                              \
    /* kernel 2, stride 2, no padding or dilation, every window whole (no ceil_mode tail): a       \
       tournament (first row's pair, second row's pair, then the two winners) that picks the       \
       same tap as max_fwd's scan (the first maximum; the first NaN). One output row: the          \
       winners into yr, their taps as codes (row 0 / 1) * 2 + (column 0 / 1) into cd. The fast     \
       kernel has selects only (branches mispredicted half the time on real data) and vectorises;  \
       it ignores NaN and returns whether it saw one, and then the exact one redoes the row. */    \
    NB_CLONES static int max2_row_##sfx(const T *r0, const T *r1, T *yr, int32_t *cd,              \
                                        int64_t ow) {                                              \
        int nan = 0;                                                                               \
        for (int64_t ox = 0; ox < ow; ox++) {                                                      \
            T a = r0[2 * ox], b = r0[2 * ox + 1], c = r1[2 * ox], d = r1[2 * ox + 1];              \
            int32_t tb = b > a, td = d > c;                                                        \
            T m0 = b > a ? b : a, m1 = d > c ? d : c;                                              \
            int32_t t1 = m1 > m0;                                                                  \
            yr[ox] = m1 > m0 ? m1 : m0;                                                            \
            cd[ox] = t1 ? 2 + td : tb;                                                             \
            nan |= (a != a) | (b != b) | (c != c) | (d != d);                                      \
        }                                                                                          \
        return nan;                                                                                \
    }                                                                                              \
    static void max2_row_nan_##sfx(const T *r0, const T *r1, T *yr, int32_t *cd, int64_t ow) {     \
        for (int64_t ox = 0; ox < ow; ox++) {                                                      \
            T a = r0[2 * ox], b = r0[2 * ox + 1], c = r1[2 * ox], d = r1[2 * ox + 1];              \
            bool tb = POOL_BETTER(b, a), td = POOL_BETTER(d, c);                                   \
            T m0 = tb ? b : a, m1 = td ? d : c;                                                    \
            bool t1 = POOL_BETTER(m1, m0);                                                         \
            yr[ox] = t1 ? m1 : m0;                                                                 \
            cd[ox] = t1 ? 2 + td : tb;                                                             \
        }                                                                                          \
    }                                                                                              \
    static void max2_fwd_##sfx(pool_geom q, const T *x, T *y, int64_t *idx) {                      \
        NB_FOR_WORK(q.planes, q.planes *q.h *q.w, pl, {                                            \
            const T *xp = x + pl * q.h * q.w;                                                      \
            T *yp = y + pl * q.oh * q.ow;                                                          \
            int64_t *ip = idx + pl * q.oh * q.ow;                                                  \
            int32_t cd[MAX2_ROW];                                                                  \
            for (int64_t oy = 0; oy < q.oh; oy++)                                                  \
                for (int64_t o0 = 0; o0 < q.ow; o0 += MAX2_ROW) {                                  \
                    int64_t m = q.ow - o0 < MAX2_ROW ? q.ow - o0 : MAX2_ROW;                       \
                    const T *r0 = xp + 2 * oy * q.w + 2 * o0;                                      \
                    if (max2_row_##sfx(r0, r0 + q.w, yp + oy * q.ow + o0, cd, m))                  \
                        max2_row_nan_##sfx(r0, r0 + q.w, yp + oy * q.ow + o0, cd, m);              \
                    int64_t *io = ip + oy * q.ow + o0, at = 2 * oy * q.w + 2 * o0;                 \
                    for (int64_t i = 0; i < m; i++)                                                \
                        io[i] = at + 2 * i + (cd[i] >> 1) * q.w + (cd[i] & 1);                     \
                }                                                                                  \
        });                                                                                        \
    }                                                                                              \
    static void max_bwd_##sfx(pool_geom q, const int64_t *idx, const T *gy, T *gx, bool set) {     \
        NB_FOR_WORK(q.planes, q.planes *q.h *q.w, pl, {                                            \
            T *gp = gx + pl * q.h * q.w;                                                           \
            if (set) /* first write of gx (nb__grad_first): zero the plane here, cache-hot */      \
                memset(gp, 0, (size_t)(q.h * q.w) * sizeof(T));                                    \
            for (int64_t o = pl * q.oh * q.ow; o < (pl + 1) * q.oh * q.ow; o++)                    \
                if (idx[o] >= 0)                                                                   \
                    gp[idx[o]] += gy[o];                                                           \
        });                                                                                        \
    }                                                                                              \
    /* avg forward (bwd = 0) or backward (bwd = 1: gx += gy / divisor over the window) */          \
    static void avg_##sfx(const pool_params *p, pool_geom q, T *x, T *y, bool bwd, bool set) {     \
        NB_FOR_WORK(q.planes, q.planes *q.h *q.w, pl, {                                            \
            if (set) /* backward, first write of gx: zero the plane first */                       \
                memset(x + pl * q.h * q.w, 0, (size_t)(q.h * q.w) * sizeof(T));                    \
            for (int64_t oy = 0; oy < q.oh; oy++) {                                                \
                int64_t y0, y1, ey;                                                                \
                avg_window(p, 0, oy, q.h, q.oh, &y0, &y1, &ey);                                    \
                for (int64_t ox = 0; ox < q.ow; ox++) {                                            \
                    int64_t x0, x1, ex;                                                            \
                    avg_window(p, 1, ox, q.w, q.ow, &x0, &x1, &ex);                                \
                    int64_t o = (pl * q.oh + oy) * q.ow + ox;                                      \
                    double inv = ey * ex > 0 ? 1.0 / (double)(ey * ex) : 0.0;                      \
                    if (bwd) {                                                                     \
                        T gv = (T)((double)y[o] * inv);                                            \
                        for (int64_t iy = y0; iy < y1; iy++)                                       \
                            for (int64_t ix = x0; ix < x1; ix++)                                   \
                                x[(pl * q.h + iy) * q.w + ix] += gv;                               \
                        continue;                                                                  \
                    }                                                                              \
                    double acc = 0;                                                                \
                    for (int64_t iy = y0; iy < y1; iy++)                                           \
                        for (int64_t ix = x0; ix < x1; ix++)                                       \
                            acc += (double)x[(pl * q.h + iy) * q.w + ix];                          \
                    y[o] = (T)(acc * inv);                                                         \
                }                                                                                  \
            }                                                                                      \
        });                                                                                        \
    }
DEFINE_POOL(float, f32)
DEFINE_POOL(double, f64)

static void pool_forward(nb_node *nd) {
    const pool_params *p = nd->params;
    const nb_tensor *x = nd->in[0];
    nb_tensor *y = nd->out;
    pool_geom q = pool_geometry(nd);
    if (p->kind == POOL_MAX) {
        int64_t *idx = nb__node_save(nd, (size_t)y->numel * sizeof(int64_t));
        if (!idx)
            return;
        bool two = p->k[0] == 2 && p->k[1] == 2 && p->s[0] == 2 && p->s[1] == 2 && p->p[0] == 0 &&
                   p->p[1] == 0 && p->d[0] == 1 && p->d[1] == 1 && 2 * q.oh <= q.h &&
                   2 * q.ow <= q.w;
        if (two && y->dtype == NB_F32)
            max2_fwd_f32(q, F32(x), F32(y), idx);
        else if (two)
            max2_fwd_f64(q, F64(x), F64(y), idx);
        else if (y->dtype == NB_F32)
            max_fwd_f32(p, q, F32(x), F32(y), idx);
        else
            max_fwd_f64(p, q, F64(x), F64(y), idx);
    } else if (y->dtype == NB_F32) {
        avg_f32(p, q, F32(x), F32(y), false, false);
    } else {
        avg_f64(p, q, F64(x), F64(y), false, false);
    }
}

static void pool_backward(nb_node *nd) {
    const pool_params *p = nd->params;
    nb_tensor *x = nd->in[0], *y = nd->out;
    if (!NB_WANTS_GRAD(x))
        return;
    pool_geom q = pool_geometry(nd);
    bool set = nb__grad_first(nd, 0);
    if (p->kind == POOL_MAX) {
        if (y->dtype == NB_F32)
            max_bwd_f32(q, nd->saved, G32(y), G32(x), set);
        else
            max_bwd_f64(q, nd->saved, G64(y), G64(x), set);
    } else if (y->dtype == NB_F32) {
        avg_f32(p, q, G32(x), G32(y), true, set);
    } else {
        avg_f64(p, q, G64(x), G64(y), true, set);
    }
}

const nb_op nb_op_max_pool2d = {"max_pool2d",
                                1,
                                0,
                                pool_infer,
                                pool_forward,
                                pool_backward,
                                NULL,
                                "its vjp (a scatter of gy to the saved argmax) is not written yet",
                                true,
                                false};
const nb_op nb_op_avg_pool2d = {"avg_pool2d",
                                1,
                                0,
                                pool_infer,
                                pool_forward,
                                pool_backward,
                                NULL,
                                "its vjp (an average-pool adjoint) is not written yet",
                                true,
                                false};
const nb_op nb_op_adaptive_avg_pool2d = {"adaptive_avg_pool2d",
                                         1,
                                         0,
                                         pool_infer,
                                         pool_forward,
                                         pool_backward,
                                         NULL,
                                         "its vjp (an average-pool adjoint) is not written yet",
                                         true,
                                         false};

// stride 0 means "the kernel size" (PyTorch's stride=None).
static pool_params pool_args(pool_kind kind, int kernel, int stride, int padding, int dilation,
                             bool ceil_mode, bool count_include_pad) {
    int s = stride == 0 ? kernel : stride;
    return (pool_params){
        kind,      {kernel, kernel},  {s, s}, {padding, padding}, {dilation, dilation},
        ceil_mode, count_include_pad, {0, 0}};
}

nb_tensor *nb_max_pool2d(nb_graph *g, nb_tensor *x, int kernel, int stride, int padding,
                         int dilation, bool ceil_mode) {
    pool_params p = pool_args(POOL_MAX, kernel, stride, padding, dilation, ceil_mode, false);
    return nb__record(g, &nb_op_max_pool2d, &x, 1, &p, sizeof p);
}

nb_tensor *nb_avg_pool2d(nb_graph *g, nb_tensor *x, int kernel, int stride, int padding,
                         bool ceil_mode, bool count_include_pad) {
    pool_params p = pool_args(POOL_AVG, kernel, stride, padding, 1, ceil_mode, count_include_pad);
    return nb__record(g, &nb_op_avg_pool2d, &x, 1, &p, sizeof p);
}

nb_tensor *nb_adaptive_avg_pool2d(nb_graph *g, nb_tensor *x, int out_h, int out_w) {
    pool_params p = {.kind = POOL_ADAPTIVE, .out = {out_h, out_w}};
    return nb__record(g, &nb_op_adaptive_avg_pool2d, &x, 1, &p, sizeof p);
}
