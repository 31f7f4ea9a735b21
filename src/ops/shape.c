// Shape ops. Outputs are separate arena buffers (no views in v1), so each forward copies.
// reshape: same elements, new shape (one dim may be -1); squeeze / unsqueeze / flatten are
//          reshapes with the shape computed from x (transpose and permute: permute.c).
// slice:   x viewed as (outer, len, inner) -> (outer, stop - start, inner).
// concat:  inputs (outer, len_k, inner) -> (outer, Σ len_k, inner).
// Backward routes dy back to where each element came from and adds it there.
#include <inttypes.h>
#include <string.h>

#include "ops/ops_impl.h"

// dst[i] += src[i] for n elements.
#define DEFINE_SHAPE_KERNELS(T, sfx)                                                               \
    static void add_##sfx(T *dst, const T *src, int64_t n) {                                       \
        NB_PARALLEL_FOR(n) for (int64_t i = 0; i < n; i++) dst[i] += src[i];                       \
    }
DEFINE_SHAPE_KERNELS(float, f32)
DEFINE_SHAPE_KERNELS(double, f64)

// Adds n elements of src into dst, both of dtype dt.
static void add_into(nb_dtype dt, void *dst, const void *src, int64_t n) {
    if (dt == NB_F32)
        add_f32(dst, src, n);
    else
        add_f64(dst, src, n);
}

// Byte offset of element i.
static size_t at(const nb_tensor *t, int64_t i) {
    return (size_t)i * nb_dtype_size(t->dtype);
}

// Products of the dims before (outer) and after (inner) axis ax.
static void outer_inner(const nb_tensor *t, int ax, int64_t *outer, int64_t *inner) {
    *outer = *inner = 1;
    for (int d = 0; d < ax; d++)
        *outer *= t->shape[d];
    for (int d = ax + 1; d < t->ndim; d++)
        *inner *= t->shape[d];
}

static void copy_shape(const nb_tensor *x, nb_shape *out) {
    out->ndim = x->ndim;
    memcpy(out->dim, x->shape, sizeof out->dim);
}

// ---- reshape ----------------------------------------------------------------------------------

typedef struct {
    int ndim;
    bool has_shape; // the caller passed a non-NULL shape
    int64_t shape[NB_MAX_DIMS];
} reshape_params;

// "(2, -1)" for a requested shape (ndim already validated).
static char *dims_str(int ndim, const int64_t *dims, char *buf, size_t size) {
    nb_tensor t = {.ndim = ndim};
    memcpy(t.shape, dims, (size_t)ndim * sizeof *dims);
    return nb_tensor_shape_str(&t, buf, size);
}

static nb_status reshape_infer(nb_node *nd, nb_shape *out) {
    const reshape_params *p = nd->params;
    const nb_tensor *x = nd->in[0];
    if (p->ndim < 0 || p->ndim > NB_MAX_DIMS)
        return nb__node_fail(nd, NB_ERR_ARG, "ndim %d out of range [0, %d] for x %s", p->ndim,
                             NB_MAX_DIMS, NB_SHAPE_STR(x));
    if (p->ndim > 0 && !p->has_shape)
        return nb__node_fail(nd, NB_ERR_NULL, "shape is NULL (ndim %d) for x %s", p->ndim,
                             NB_SHAPE_STR(x));
    char want[96];
    dims_str(p->ndim, p->shape, want, sizeof want);
    int infer_at = -1;
    int64_t known = 1; // product of the given dims
    bool overflow = false;
    for (int d = 0; d < p->ndim; d++) {
        int64_t v = p->shape[d];
        if (v == -1 && infer_at >= 0)
            return nb__node_fail(nd, NB_ERR_ARG, "shape %s for x %s has more than one -1", want,
                                 NB_SHAPE_STR(x));
        if (v == -1) {
            infer_at = d;
        } else if (v < 0) {
            return nb__node_fail(nd, NB_ERR_ARG,
                                 "shape %s for x %s: dim %d is %" PRId64
                                 "; dims must be >= 0, or -1 to infer one",
                                 want, NB_SHAPE_STR(x), d, v);
        } else if (v > 0 && known > INT64_MAX / v) {
            overflow = true; // cannot equal any real numel
        } else {
            known *= v;
        }
    }
    out->ndim = p->ndim;
    memcpy(out->dim, p->shape, (size_t)p->ndim * sizeof *p->shape);
    if (infer_at >= 0) {
        if (overflow || known == 0 || x->numel % known != 0)
            return nb__node_fail(nd, NB_ERR_SHAPE,
                                 "cannot reshape x %s (%" PRId64
                                 " elements) to %s: no size for -1 fits",
                                 NB_SHAPE_STR(x), x->numel, want);
        out->dim[infer_at] = x->numel / known;
    } else if (overflow || known != x->numel) {
        return nb__node_fail(nd, NB_ERR_SHAPE,
                             "cannot reshape x %s (%" PRId64
                             " elements) to %s: element counts differ",
                             NB_SHAPE_STR(x), x->numel, want);
    }
    nd->grad_pass = 1; // dx = dy element for element: x may share y's grad (nb_node.grad_pass)
    return NB_OK;
}

static void reshape_forward(nb_node *nd) {
    if (nd->in[0]->numel > 0) // an empty user tensor may have a NULL buffer
        memcpy(nd->out->data, nd->in[0]->data, at(nd->in[0], nd->in[0]->numel));
}

// dx += dy: the same elements in the same (row-major) order; dx = dy on dx's first write
// (grad_store), and nothing when dx shares dy's buffer (x's only consumer: grad_pass).
static void reshape_backward(nb_node *nd) {
    nb_tensor *x = nd->in[0], *y = nd->out;
    if (!NB_WANTS_GRAD(x) || nb__grad_shared(nd, 0))
        return;
    if (nb__grad_first(nd, 0))
        memcpy(x->grad, y->grad, at(x, x->numel));
    else
        add_into(x->dtype, x->grad, y->grad, x->numel);
}

static nb_status reshape_vjp(nb_node *nd, nb_tensor *gy, const bool *want, nb_tensor **gin) {
    const nb_tensor *x = nd->in[0];
    if (want[0])
        gin[0] = nb_reshape(nd->graph, gy, x->ndim, x->shape);
    return nb_graph_status(nd->graph);
}

// Integer tensors reshape too (non-differentiable, as in PyTorch): the forward copies bytes.
const nb_op nb_op_reshape = {"reshape",        1,           0,    reshape_infer, reshape_forward,
                             reshape_backward, reshape_vjp, NULL, true,          true};

nb_tensor *nb_reshape(nb_graph *g, nb_tensor *x, int ndim, const int64_t *shape) {
    reshape_params p = {.ndim = ndim, .has_shape = shape != NULL};
    if (shape && ndim > 0 && ndim <= NB_MAX_DIMS) // copied: the caller's array may be temporary
        memcpy(p.shape, shape, (size_t)ndim * sizeof *shape);
    return nb__record(g, &nb_op_reshape, &x, 1, &p, sizeof p);
}

// ---- squeeze / unsqueeze / flatten: reshapes with the shape worked out here --------------------

// False (with the error recorded on g unless one is already there) when there is nothing to do.
static bool conv_ok(nb_graph *g, const nb_tensor *x, const char *name) {
    if (!g) {
        nb__set_last_error(NB_ERR_NULL, "%s: graph is NULL", name);
        return false;
    }
    if (nb_graph_status(g) != NB_OK)
        return false; // sticky: the graph keeps its first error
    if (!x)
        nb__graph_fail(g, NB_ERR_NULL, "%s: x is NULL", name);
    return x && nb__graph_check_live(g, name, x, 0) == NB_OK;
}

nb_tensor *nb_squeeze(nb_graph *g, nb_tensor *x, int axis) {
    if (!conv_ok(g, x, "squeeze"))
        return NULL;
    int ax;
    if (!nb__axis(axis, x->ndim, &ax)) {
        nb__graph_fail(g, NB_ERR_ARG, "squeeze: axis %d out of range for x %s (%d dims)", axis,
                       NB_SHAPE_STR(x), x->ndim);
        return NULL;
    }
    int64_t shape[NB_MAX_DIMS];
    int n = 0;
    for (int d = 0; d < x->ndim; d++)
        if (d != ax || x->shape[d] != 1) // as in PyTorch: an axis of size != 1 stays
            shape[n++] = x->shape[d];
    return nb_reshape(g, x, n, shape);
}

nb_tensor *nb_unsqueeze(nb_graph *g, nb_tensor *x, int axis) {
    if (!conv_ok(g, x, "unsqueeze"))
        return NULL;
    int ax;
    if (x->ndim >= NB_MAX_DIMS || !nb__axis(axis, x->ndim + 1, &ax)) {
        nb__graph_fail(g, NB_ERR_ARG, "unsqueeze: axis %d out of range for x %s (%d dims, max %d)",
                       axis, NB_SHAPE_STR(x), x->ndim, NB_MAX_DIMS);
        return NULL;
    }
    int64_t shape[NB_MAX_DIMS];
    for (int d = 0, n = 0; d <= x->ndim; d++)
        shape[d] = d == ax ? 1 : x->shape[n++];
    return nb_reshape(g, x, x->ndim + 1, shape);
}

nb_tensor *nb_flatten(nb_graph *g, nb_tensor *x, int start, int end) {
    if (!conv_ok(g, x, "flatten"))
        return NULL;
    int s, e;
    if (x->ndim == 0) // as in PyTorch, a scalar flattens to (1)
        return nb_reshape(g, x, 1, (int64_t[]){1});
    if (!nb__axis(start, x->ndim, &s) || !nb__axis(end, x->ndim, &e) || s > e) {
        nb__graph_fail(g, NB_ERR_ARG, "flatten: axes [%d, %d] not a range of x %s (%d dims)", start,
                       end, NB_SHAPE_STR(x), x->ndim);
        return NULL;
    }
    int64_t shape[NB_MAX_DIMS];
    int n = 0;
    for (int d = 0; d < x->ndim; d++) {
        if (d <= s || d > e) {
            shape[n++] = x->shape[d];
        } else {
            shape[n - 1] *= x->shape[d]; // fits: any product of x's dims does (nb__shape_check)
        }
    }
    return nb_reshape(g, x, n, shape);
}

// ---- slice ------------------------------------------------------------------------------------

typedef struct {
    int axis;
    int64_t start, stop;
} slice_params;

static nb_status slice_infer(nb_node *nd, nb_shape *out) {
    const slice_params *p = nd->params;
    const nb_tensor *x = nd->in[0];
    int ax;
    if (!nb__axis(p->axis, x->ndim, &ax))
        return nb__node_fail(nd, NB_ERR_ARG, "axis %d out of range for x %s (%d dims)", p->axis,
                             NB_SHAPE_STR(x), x->ndim);
    int64_t len = x->shape[ax];
    if (p->start < 0 || p->start > p->stop || p->stop > len)
        return nb__node_fail(nd, NB_ERR_ARG,
                             "[%" PRId64 ", %" PRId64 ") out of bounds on axis %d"
                             " of x %s: need 0 <= start <= stop <= %" PRId64,
                             p->start, p->stop, p->axis, NB_SHAPE_STR(x), len);
    copy_shape(x, out);
    out->dim[ax] = p->stop - p->start;
    return NB_OK;
}

// Both directions walk the same (outer) rows: row o of y is elements [start, stop) of row o
// of x, each element being `inner` contiguous values.
static void slice_rows(nb_node *nd, bool backward) {
    const slice_params *p = nd->params;
    nb_tensor *x = nd->in[0], *y = nd->out;
    int ax = 0;
    NB_ASSERT(nb__axis(p->axis, x->ndim, &ax));
    int64_t outer, inner, len = x->shape[ax];
    outer_inner(x, ax, &outer, &inner);
    int64_t chunk = (p->stop - p->start) * inner;
    for (int64_t o = 0; chunk > 0 && o < outer; o++) {
        size_t xo = at(x, (o * len + p->start) * inner), yo = at(y, o * chunk);
        if (backward)
            add_into(x->dtype, (char *)x->grad + xo, (const char *)y->grad + yo, chunk);
        else
            memcpy((char *)y->data + yo, (const char *)x->data + xo, at(x, chunk));
    }
}

static void slice_forward(nb_node *nd) {
    slice_rows(nd, false);
}

// dx[o, start + k, i] += dy[o, k, i]; the rest of dx is untouched.
static void slice_backward(nb_node *nd) {
    if (NB_WANTS_GRAD(nd->in[0]))
        slice_rows(nd, true);
}

// dx is dy padded back with zeros to x's length along the axis.
static nb_status slice_vjp(nb_node *nd, nb_tensor *gy, const bool *want, nb_tensor **gin) {
    const slice_params *p = nd->params;
    const nb_tensor *x = nd->in[0];
    int ax = 0;
    NB_ASSERT(nb__axis(p->axis, x->ndim, &ax));
    if (want[0])
        gin[0] = nb_pad(nd->graph, gy, p->axis, p->start, x->shape[ax] - p->stop);
    return nb_graph_status(nd->graph);
}

const nb_op nb_op_slice = {"slice",        1,         0,    slice_infer, slice_forward,
                           slice_backward, slice_vjp, NULL, false,       false};

nb_tensor *nb_slice(nb_graph *g, nb_tensor *x, int axis, int64_t start, int64_t stop) {
    slice_params p = {axis, start, stop};
    return nb__record(g, &nb_op_slice, &x, 1, &p, sizeof p);
}

// ---- concat -----------------------------------------------------------------------------------

typedef struct {
    int axis;
} concat_params;

static nb_status concat_infer(nb_node *nd, nb_shape *out) {
    const concat_params *p = nd->params;
    const nb_tensor *x0 = nd->in[0];
    int ax;
    if (!nb__axis(p->axis, x0->ndim, &ax))
        return nb__node_fail(nd, NB_ERR_ARG, "axis %d out of range for input 0 %s (%d dims)",
                             p->axis, NB_SHAPE_STR(x0), x0->ndim);
    int64_t total = 0;
    for (int k = 0; k < nd->n_in; k++) {
        const nb_tensor *xk = nd->in[k];
        bool fits = xk->ndim == x0->ndim;
        for (int d = 0; fits && d < x0->ndim; d++)
            fits = d == ax || xk->shape[d] == x0->shape[d];
        if (!fits)
            return nb__node_fail(nd, NB_ERR_SHAPE,
                                 "input %d %s does not match input 0 %s: "
                                 "all dims but axis %d must agree",
                                 k, NB_SHAPE_STR(xk), NB_SHAPE_STR(x0), p->axis);
        if (xk->shape[ax] > INT64_MAX - total)
            return nb__node_fail(nd, NB_ERR_SHAPE, "axis %d: total size overflows", p->axis);
        total += xk->shape[ax];
    }
    copy_shape(x0, out);
    out->dim[ax] = total;
    return NB_OK;
}

// Row o of y is row o of each input in turn. Backward adds each dy piece back into its input.
static void concat_rows(nb_node *nd, bool backward) {
    const concat_params *p = nd->params;
    nb_tensor *y = nd->out;
    int ax = 0;
    NB_ASSERT(nb__axis(p->axis, y->ndim, &ax));
    int64_t outer, inner;
    outer_inner(y, ax, &outer, &inner);
    int64_t row = y->shape[ax] * inner;
    int64_t off = 0; // start of input k within a row of y
    for (int k = 0; k < nd->n_in; k++) {
        nb_tensor *xk = nd->in[k];
        int64_t chunk = xk->shape[ax] * inner;
        bool skip = chunk == 0 || (backward && !NB_WANTS_GRAD(xk));
        for (int64_t o = 0; !skip && o < outer; o++) {
            size_t xo = at(xk, o * chunk), yo = at(y, o * row + off);
            if (backward)
                add_into(y->dtype, (char *)xk->grad + xo, (const char *)y->grad + yo, chunk);
            else
                memcpy((char *)y->data + yo, (const char *)xk->data + xo, at(y, chunk));
        }
        off += chunk;
    }
}

static void concat_forward(nb_node *nd) {
    concat_rows(nd, false);
}

// dx_k[o, j, i] += dy[o, off_k + j, i].
static void concat_backward(nb_node *nd) {
    concat_rows(nd, true);
}

// dx_k is dy's slice of x_k's rows along the axis.
static nb_status concat_vjp(nb_node *nd, nb_tensor *gy, const bool *want, nb_tensor **gin) {
    const concat_params *p = nd->params;
    int ax = 0;
    NB_ASSERT(nb__axis(p->axis, gy->ndim, &ax));
    int64_t off = 0;
    for (int k = 0; k < nd->n_in; k++) {
        int64_t len = nd->in[k]->shape[ax];
        if (want[k])
            gin[k] = nb_slice(nd->graph, gy, p->axis, off, off + len);
        off += len;
    }
    return nb_graph_status(nd->graph);
}

const nb_op nb_op_concat = {"concat",        -1,         0,    concat_infer, concat_forward,
                            concat_backward, concat_vjp, NULL, false,        false};

nb_tensor *nb_concat(nb_graph *g, nb_tensor *const *xs, int n, int axis) {
    if (g && !xs) { // said here: the tape's generic arity message would be vaguer
        nb__graph_fail(g, NB_ERR_NULL, "concat: xs is NULL (n = %d)", n);
        return NULL;
    }
    if (g && n < 1) {
        nb__graph_fail(g, NB_ERR_ARG, "concat: n = %d; needs at least one tensor", n);
        return NULL;
    }
    concat_params p = {axis};
    return nb__record(g, &nb_op_concat, xs, n, &p, sizeof p);
}
// ---- pad --------------------------------------------------------------------------------------
// x (outer, len, inner) -> y (outer, before + len + after, inner), zeros around x. The adjoint
// of slice: its backward and vjp are slices of dy.

typedef struct {
    int axis;
    int64_t before, after;
} pad_params;

static nb_status pad_infer(nb_node *nd, nb_shape *out) {
    const pad_params *p = nd->params;
    const nb_tensor *x = nd->in[0];
    int ax;
    if (!nb__axis(p->axis, x->ndim, &ax))
        return nb__node_fail(nd, NB_ERR_ARG, "axis %d out of range for x %s (%d dims)", p->axis,
                             NB_SHAPE_STR(x), x->ndim);
    if (p->before < 0 || p->after < 0 || p->before > INT64_MAX / 4 || p->after > INT64_MAX / 4)
        return nb__node_fail(nd, NB_ERR_ARG,
                             "before %" PRId64 " and after %" PRId64
                             " must be >= 0 (and sane) for x %s",
                             p->before, p->after, NB_SHAPE_STR(x));
    copy_shape(x, out);
    out->dim[ax] = x->shape[ax] + p->before + p->after;
    return NB_OK;
}

// Row o of x is elements [before, before + len) of row o of y.
static void pad_rows(nb_node *nd, bool backward) {
    const pad_params *p = nd->params;
    nb_tensor *x = nd->in[0], *y = nd->out;
    int ax = 0;
    NB_ASSERT(nb__axis(p->axis, x->ndim, &ax));
    int64_t outer, inner;
    outer_inner(x, ax, &outer, &inner);
    int64_t chunk = x->shape[ax] * inner, row = y->shape[ax] * inner;
    if (!backward)
        memset(y->data, 0, at(y, y->numel));
    for (int64_t o = 0; chunk > 0 && o < outer; o++) {
        size_t xo = at(x, o * chunk), yo = at(y, o * row + p->before * inner);
        if (backward)
            add_into(x->dtype, (char *)x->grad + xo, (const char *)y->grad + yo, chunk);
        else
            memcpy((char *)y->data + yo, (const char *)x->data + xo, at(x, chunk));
    }
}

static void pad_forward(nb_node *nd) {
    pad_rows(nd, false);
}

// dx[o, k, i] += dy[o, before + k, i].
static void pad_backward(nb_node *nd) {
    if (NB_WANTS_GRAD(nd->in[0]))
        pad_rows(nd, true);
}

static nb_status pad_vjp(nb_node *nd, nb_tensor *gy, const bool *want, nb_tensor **gin) {
    const pad_params *p = nd->params;
    int ax = 0;
    NB_ASSERT(nb__axis(p->axis, gy->ndim, &ax));
    if (want[0])
        gin[0] = nb_slice(nd->graph, gy, p->axis, p->before, p->before + nd->in[0]->shape[ax]);
    return nb_graph_status(nd->graph);
}

const nb_op nb_op_pad = {"pad",        1,       0,    pad_infer, pad_forward,
                         pad_backward, pad_vjp, NULL, false,     false};

nb_tensor *nb_pad(nb_graph *g, nb_tensor *x, int axis, int64_t before, int64_t after) {
    pad_params p = {axis, before, after};
    return nb__record(g, &nb_op_pad, &x, 1, &p, sizeof p);
}
