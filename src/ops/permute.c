// Axis ops that copy x into a new layout (outputs are contiguous; there are no views):
//   permute(x, perm):   y.shape[i] = x.shape[perm[i]],  y[i0, .., in] = x[.. i_k at perm[k] ..]
//   transpose(x, a, b): permute swapping axes a and b (nb_transpose: the last two)
//   expand(x, shape):   NumPy broadcast_to: size-1 (or missing leading) axes repeated
// All three walk y in order and read x through per-axis strides (0 on a broadcast axis), after
// merging axes that stay adjacent, so (B, T, H, D) -> (B, H, T, D) copies runs of D elements.
// When x's innermost axis moves, the float gather transposes 16 x 16 blocks in AVX-512
// registers (permute_avx512.inc), streaming whole lines of a large y past the cache; without
// AVX-512 (and for double), 32 x 32 tiles keep reads and writes in cache lines.
// Backward: gx[off(o)] += gy[o] (for expand, the sum over the repeated copies).
#include <string.h>

#include "ops/ops_impl.h"

#define PM_TILE 32
// From this many bytes of y on, the tiled float gather writes whole aligned lines of y with
// non-temporal stores: y cannot stay in cache anyway (half this machine's 32 MiB L3), and
// streaming saves the read of each line before its write (memcpy switches at a similar size).
#define PM_STREAM_BYTES (16 << 20)

typedef struct {
    int kind;                   // PM_PERMUTE (transpose too) or PM_EXPAND
    int ndim;                   // entries of perm / shape
    int perm[NB_MAX_DIMS];      // permute: y axis i is x axis perm[i] (negative counts from end)
    int64_t shape[NB_MAX_DIMS]; // expand: target shape, -1 keeps x's size
    int a0, a1;                 // transpose: the two axes (ndim = -1 marks a transpose)
} pm_params;
enum { PM_PERMUTE, PM_TRANSPOSE, PM_EXPAND };

// The copy as a walk over y: nd axes (merged, size-1 axes dropped), x strides per axis.
typedef struct {
    int nd;
    int64_t dim[NB_MAX_DIMS];
    int64_t xstr[NB_MAX_DIMS]; // x stride (elements) of each y axis, 0 if broadcast
    int64_t ystr[NB_MAX_DIMS]; // y stride (y is contiguous)
    int64_t numel;
    int tile_axis;  // axis with x stride 1 for the tiled path, -1 for plain rows
    bool broadcast; // some x stride is 0: gx elements receive several gy elements
    bool avx512;    // the tiled float gather may use AVX-512 (the CPU has it)
    bool stream;    // y is large: write it with non-temporal stores where lines are whole
} pm_plan;

static int64_t pm_tasks(const pm_plan *p) {
    if (p->numel == 0)
        return 0;
    if (p->tile_axis >= 0)
        return p->numel / (p->dim[p->nd - 1] * p->dim[p->tile_axis]) *
               ((p->dim[p->tile_axis] + PM_TILE - 1) / PM_TILE);
    return p->numel / p->dim[p->nd - 1];
}

#ifdef __SSE__
#include <xmmintrin.h>

// One tile of the float gather when x's innermost axis moves: y[i ysq + j] = x[j st + i] for
// i < ni, j < nj, in 4 x 4 blocks: four 4-float loads along x's contiguous axis, transposed in
// registers, four 4-float stores along y's (the scalar loop moves one element per load and
// store); edges element by element. Copies only, so the result is the scalar loop's exactly.
static void pm_transpose_sse(const float *x, int64_t st, float *y, int64_t ysq, int64_t ni,
                             int64_t nj) {
    int64_t i = 0;
    for (; i + 4 <= ni; i += 4) {
        int64_t j = 0;
        for (; j + 4 <= nj; j += 4) {
            const float *xs = x + j * st + i;
            __m128 r0 = _mm_loadu_ps(xs), r1 = _mm_loadu_ps(xs + st);
            __m128 r2 = _mm_loadu_ps(xs + 2 * st), r3 = _mm_loadu_ps(xs + 3 * st);
            _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
            float *yd = y + i * ysq + j;
            _mm_storeu_ps(yd, r0);
            _mm_storeu_ps(yd + ysq, r1);
            _mm_storeu_ps(yd + 2 * ysq, r2);
            _mm_storeu_ps(yd + 3 * ysq, r3);
        }
        for (; j < nj; j++)
            for (int64_t c = 0; c < 4; c++)
                y[(i + c) * ysq + j] = x[j * st + i + c];
    }
    for (; i < ni; i++)
        for (int64_t j = 0; j < nj; j++)
            y[i * ysq + j] = x[j * st + i];
}

#if defined(__GNUC__) && defined(__x86_64__)
#include "ops/permute_avx512.inc"
#define PM_HAVE_AVX512 1
#endif

// One task of the tiled float gather: rows i < ni of y (stride ysq), each nj long, from columns
// of x (rows of stride st). AVX-512 moves 16 x 16 blocks; otherwise 32 x 32 tiles of SSE 4 x 4
// blocks keep both sides in cache lines.
static void pm_transpose_f32(const pm_plan *p, const float *x, int64_t st, float *y, int64_t ysq,
                             int64_t ni, int64_t nj) {
#ifdef PM_HAVE_AVX512
    if (p->avx512) {
        pm_transpose_avx512(x, st, y, ysq, ni, nj, p->stream);
        return;
    }
#endif
    for (int64_t j0 = 0; j0 < nj; j0 += PM_TILE) {
        int64_t j1 = j0 + PM_TILE < nj ? j0 + PM_TILE : nj;
        pm_transpose_sse(x + j0 * st, st, y + j0, ysq, ni, j1 - j0);
    }
}
// The backward of one such task, gx[j st + i] += gy[i ysq + j]: true when done here (AVX-512,
// no broadcast axis), false leaves it to the scalar tiles.
static bool pm_transpose_add_f32(const pm_plan *p, float *gx, int64_t st, const float *gy,
                                 int64_t ysq, int64_t ni, int64_t nj) {
#ifdef PM_HAVE_AVX512
    if (p->avx512 && !p->broadcast) {
        pm_transpose_add_avx512(gx, st, gy, ysq, ni, nj);
        return true;
    }
#endif
    (void)p, (void)gx, (void)st, (void)gy, (void)ysq, (void)ni, (void)nj;
    return false;
}
#define PM_TRANSPOSE pm_transpose_f32
#define PM_TRANSPOSE_ADD pm_transpose_add_f32
#define PM_FENCE _mm_sfence
#endif

bool nb__permute_no_avx512 = false;

#define T float
#define SFX f32
#include "ops/permute_kernels.inc"
#undef PM_TRANSPOSE
#undef PM_TRANSPOSE_ADD
#undef PM_FENCE
#define T double
#define SFX f64
#include "ops/permute_kernels.inc"

// y axis i reads x axis src[i] (-1: a new broadcast axis); returns false on a bad argument.
static bool pm_axes(const nb_node *nd, int *src, int *ndim_out) {
    const pm_params *p = nd->params;
    const nb_tensor *x = nd->in[0];
    if (p->kind == PM_TRANSPOSE) {
        int a, b;
        if (!nb__axis(p->a0, x->ndim, &a) || !nb__axis(p->a1, x->ndim, &b))
            return false;
        for (int i = 0; i < x->ndim; i++)
            src[i] = i;
        src[a] = b;
        src[b] = a;
        *ndim_out = x->ndim;
        return true;
    }
    if (p->kind == PM_PERMUTE) {
        if (p->ndim != x->ndim)
            return false;
        bool seen[NB_MAX_DIMS] = {false};
        for (int i = 0; i < p->ndim; i++) {
            int a;
            if (!nb__axis(p->perm[i], x->ndim, &a) || seen[a])
                return false;
            seen[a] = true;
            src[i] = a;
        }
        *ndim_out = p->ndim;
        return true;
    }
    // expand: right-aligned; a leading new axis or a size-1 axis may take any size >= 0.
    if (p->ndim < x->ndim || p->ndim > NB_MAX_DIMS)
        return false;
    int lead = p->ndim - x->ndim;
    for (int i = 0; i < p->ndim; i++) {
        int64_t want = p->shape[i];
        if (i < lead) {
            if (want < 0)
                return false;
            src[i] = -1;
            continue;
        }
        int64_t have = x->shape[i - lead];
        if (want < -1 || (want != -1 && want != have && have != 1))
            return false;
        src[i] = i - lead;
    }
    *ndim_out = p->ndim;
    return true;
}

static void pm_out_shape(const nb_node *nd, const int *src, int ndim, nb_shape *out) {
    const pm_params *p = nd->params;
    const nb_tensor *x = nd->in[0];
    out->ndim = ndim;
    for (int i = 0; i < ndim; i++) {
        int64_t have = src[i] >= 0 ? x->shape[src[i]] : 1;
        out->dim[i] = p->kind == PM_EXPAND && p->shape[i] != -1 ? p->shape[i] : have;
    }
}

static void pm_make_plan(const nb_node *nd, pm_plan *pl) {
    const nb_tensor *x = nd->in[0], *y = nd->out;
    int src[NB_MAX_DIMS], ndim = 0;
    NB_ASSERT(pm_axes(nd, src, &ndim));
    int64_t xs[NB_MAX_DIMS], s = 1;
    for (int i = x->ndim - 1; i >= 0; i--) {
        xs[i] = s;
        s *= x->shape[i];
    }
    // Keep the y axes of size > 1 with their x strides (0 where broadcast), merging an axis
    // into the previous kept one when together they are one run in x too.
    pl->nd = 0;
    pl->numel = y->numel;
    pl->broadcast = false;
    pl->avx512 = false;
    pl->stream = false;
    for (int i = 0; i < ndim; i++) {
        int64_t d = y->shape[i];
        if (d == 1)
            continue;
        int64_t st = src[i] >= 0 && x->shape[src[i]] != 1 ? xs[src[i]] : 0;
        pl->broadcast = pl->broadcast || st == 0;
        int k = pl->nd;
        if (k > 0 && pl->xstr[k - 1] == st * d) {
            pl->dim[k - 1] *= d;
            pl->xstr[k - 1] = st;
            continue;
        }
        pl->dim[k] = d;
        pl->xstr[k] = st;
        pl->nd++;
    }
    if (pl->nd == 0) { // one element (or none)
        pl->nd = 1;
        pl->dim[0] = y->numel;
        pl->xstr[0] = 1;
    }
    int64_t ys = 1;
    for (int i = pl->nd - 1; i >= 0; i--) {
        pl->ystr[i] = ys;
        ys *= pl->dim[i];
    }
    // Tile when x's innermost axis is not y's innermost and both are long enough to matter.
    pl->tile_axis = -1;
    int last = pl->nd - 1;
    if (pl->xstr[last] != 1 && pl->dim[last] >= 8)
        for (int i = 0; i < last; i++)
            if (pl->xstr[i] == 1 && pl->dim[i] >= 8)
                pl->tile_axis = i;
}

static nb_status pm_infer(nb_node *nd, nb_shape *out) {
    const pm_params *p = nd->params;
    const nb_tensor *x = nd->in[0];
    int src[NB_MAX_DIMS], ndim = 0;
    if (!pm_axes(nd, src, &ndim)) {
        if (p->kind == PM_TRANSPOSE)
            return nb__node_fail(nd, NB_ERR_ARG, "axes (%d, %d) out of range for x %s (%d dims)",
                                 p->a0, p->a1, NB_SHAPE_STR(x), x->ndim);
        char want[96] = "";
        nb_tensor t = {.ndim = p->ndim >= 0 && p->ndim <= NB_MAX_DIMS ? p->ndim : 0};
        for (int i = 0; i < t.ndim; i++)
            t.shape[i] = p->kind == PM_PERMUTE ? p->perm[i] : p->shape[i];
        nb_tensor_shape_str(&t, want, sizeof want);
        if (p->kind == PM_PERMUTE)
            return nb__node_fail(nd, NB_ERR_ARG,
                                 "perm %s is not a permutation of the %d axes of x %s", want,
                                 x->ndim, NB_SHAPE_STR(x));
        return nb__node_fail(nd, NB_ERR_SHAPE,
                             "cannot expand x %s to %s: each dim must equal x's, or x's be 1 "
                             "(or -1 to keep it; new leading dims >= 0)",
                             NB_SHAPE_STR(x), want);
    }
    pm_out_shape(nd, src, ndim, out);
    return NB_OK;
}

// The float kernels' choices: AVX-512 when the CPU has it, streamed stores for a large y.
static void pm_f32_flags(pm_plan *pl) {
#ifdef PM_HAVE_AVX512
    pl->avx512 = !nb__permute_no_avx512 && __builtin_cpu_supports("avx512f");
#endif
    pl->stream = pl->numel >= PM_STREAM_BYTES / (int64_t)sizeof(float);
}

static void pm_forward(nb_node *nd) {
    pm_plan pl;
    pm_make_plan(nd, &pl);
    if (nd->out->dtype == NB_F32) {
        pm_f32_flags(&pl);
        pm_gather_f32(&pl, F32(nd->in[0]), F32(nd->out));
    } else
        pm_gather_f64(&pl, F64(nd->in[0]), F64(nd->out));
}

static void pm_backward(nb_node *nd) {
    nb_tensor *x = nd->in[0];
    if (!NB_WANTS_GRAD(x))
        return;
    pm_plan pl;
    pm_make_plan(nd, &pl);
    if (x->dtype == NB_F32) {
        pm_f32_flags(&pl);
        pm_scatter_add_f32(&pl, G32(x), G32(nd->out));
    } else
        pm_scatter_add_f64(&pl, G64(x), G64(nd->out));
}

// permute: dx is dy permuted back (the inverse permutation); transpose: the same swap again;
// expand: dy summed over the repeated copies (sum_to x's shape).
static nb_status pm_vjp(nb_node *nd, nb_tensor *gy, const bool *want, nb_tensor **gin) {
    const pm_params *p = nd->params;
    nb_graph *g = nd->graph;
    nb_tensor *x = nd->in[0];
    if (!want[0])
        return nb_graph_status(g);
    if (p->kind == PM_EXPAND) {
        gin[0] = nb_sum_to(g, gy, x->ndim, x->shape);
    } else if (p->kind == PM_TRANSPOSE) {
        gin[0] = nb_transpose_axes(g, gy, p->a0, p->a1);
    } else {
        int inv[NB_MAX_DIMS];
        for (int i = 0; i < x->ndim; i++) {
            int a = 0;
            NB_ASSERT(nb__axis(p->perm[i], x->ndim, &a)); // infer validated perm
            inv[a] = i;
        }
        gin[0] = nb_permute(g, gy, x->ndim, inv);
    }
    return nb_graph_status(g);
}

const nb_op nb_op_permute = {"permute",   1,      0,    pm_infer, pm_forward,
                             pm_backward, pm_vjp, NULL, false,    false};
const nb_op nb_op_transpose = {"transpose", 1,      0,    pm_infer, pm_forward,
                               pm_backward, pm_vjp, NULL, false,    false};
const nb_op nb_op_expand = {"expand",    1,      0,    pm_infer, pm_forward,
                            pm_backward, pm_vjp, NULL, false,    false};

nb_tensor *nb_permute(nb_graph *g, nb_tensor *x, int ndim, const int *perm) {
    pm_params p = {.kind = PM_PERMUTE, .ndim = ndim};
    if (g && !perm && ndim > 0) {
        nb__graph_fail(g, NB_ERR_NULL, "permute: perm is NULL (ndim %d)", ndim);
        return NULL;
    }
    if (ndim < 0 || ndim > NB_MAX_DIMS)
        p.ndim = -1; // reported by infer as not a permutation
    else if (ndim > 0)
        memcpy(p.perm, perm, (size_t)ndim * sizeof *perm);
    return nb__record(g, &nb_op_permute, &x, 1, &p, sizeof p);
}

nb_tensor *nb_transpose_axes(nb_graph *g, nb_tensor *x, int axis0, int axis1) {
    pm_params p = {.kind = PM_TRANSPOSE, .a0 = axis0, .a1 = axis1};
    return nb__record(g, &nb_op_transpose, &x, 1, &p, sizeof p);
}

nb_tensor *nb_transpose(nb_graph *g, nb_tensor *x) {
    return nb_transpose_axes(g, x, -2, -1);
}

nb_tensor *nb_expand(nb_graph *g, nb_tensor *x, int ndim, const int64_t *shape) {
    pm_params p = {.kind = PM_EXPAND, .ndim = ndim};
    if (g && !shape && ndim > 0) {
        nb__graph_fail(g, NB_ERR_NULL, "expand: shape is NULL (ndim %d)", ndim);
        return NULL;
    }
    if (ndim < 0 || ndim > NB_MAX_DIMS)
        p.ndim = -1; // reported by infer
    else if (ndim > 0)
        memcpy(p.shape, shape, (size_t)ndim * sizeof *shape);
    return nb__record(g, &nb_op_expand, &x, 1, &p, sizeof p);
}
