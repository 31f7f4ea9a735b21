// Indexing with int32 or int64 index tensors (read when the op is recorded: an index out of range
// is an error naming it; a replay that meets one writes 0 there and reads nothing out of bounds).
//   index_select(x, axis, idx): y = x with axis replaced by idx's dims (NumPy take):
//       x (A, L, B), idx (I...) -> y (A, I..., B),  y[a, i, b] = x[a, idx[i], b]
//   gather(x, axis, idx):       torch.gather: idx has x's ndim, y has idx's shape,
//       y[.., i, ..] = x[.., idx[.., i, ..], ..] along axis; idx.shape[d] <= x.shape[d] elsewhere
//   one_hot(idx, classes):      (I...) -> (I..., classes) of 0 / 1, float32 or float64
//   argmax / argmin(x, axis):   int32 index of the first max / min along axis
// Backward of index_select and gather scatter-adds dy into dx at the indexed positions, so a
// repeated index receives the sum of its rows. One thread per outer row (index_select) or a
// serial walk (gather), so the sums do not depend on the thread count.
#include <inttypes.h>
#include <math.h>

#include "ops/ops_impl.h"

typedef struct {
    int axis;
    bool keepdim;
    int64_t classes;
    nb_dtype dtype; // one_hot's output dtype
    bool min;       // argmin rather than argmax
} ix_params;

// Element i of an int32 or int64 index tensor.
static int64_t idx_at(const nb_tensor *t, int64_t i) {
    return nb__index_at(t->data, t->dtype == NB_I64, i);
}

// The first index outside [0, len), or -1.
static int64_t bad_index(const nb_tensor *idx, int64_t len) {
    for (int64_t i = 0; i < idx->numel; i++) {
        int64_t v = idx_at(idx, i);
        if (v < 0 || v >= len)
            return i;
    }
    return -1;
}

// x viewed as (outer, len, inner) around axis ax.
static void ix_view(const nb_tensor *x, int ax, int64_t *outer, int64_t *len, int64_t *inner) {
    *outer = *inner = 1;
    for (int d = 0; d < ax; d++)
        *outer *= x->shape[d];
    *len = x->shape[ax];
    for (int d = ax + 1; d < x->ndim; d++)
        *inner *= x->shape[d];
}

static nb_status fail_index(nb_node *nd, const nb_tensor *idx, int64_t at, int64_t len,
                            const nb_tensor *x, int axis) {
    return nb__node_fail(nd, NB_ERR_ARG,
                         "index %" PRId64 " at position %" PRId64
                         " of idx %s is outside [0, %" PRId64 ") (axis %d of x %s)",
                         idx_at(idx, at), at, NB_SHAPE_STR(idx), len, axis, NB_SHAPE_STR(x));
}

#define T float
#define SFX f32
#include "ops/index_kernels.inc"
#define T double
#define SFX f64
#include "ops/index_kernels.inc"

// ---- index_select ---------------------------------------------------------------------------

static nb_status isel_infer(nb_node *nd, nb_shape *out) {
    const ix_params *p = nd->params;
    const nb_tensor *x = nd->in[0], *idx = nd->in[1];
    int ax;
    if (!nb__axis(p->axis, x->ndim, &ax))
        return nb__node_fail(nd, NB_ERR_ARG, "axis %d out of range for x %s (%d dims)", p->axis,
                             NB_SHAPE_STR(x), x->ndim);
    if (x->ndim - 1 + idx->ndim > NB_MAX_DIMS)
        return nb__node_fail(nd, NB_ERR_SHAPE, "x %s with idx %s: result has more than %d dims",
                             NB_SHAPE_STR(x), NB_SHAPE_STR(idx), NB_MAX_DIMS);
    int64_t at = bad_index(idx, x->shape[ax]);
    if (at >= 0)
        return fail_index(nd, idx, at, x->shape[ax], x, p->axis);
    out->ndim = 0;
    for (int d = 0; d < x->ndim; d++) {
        if (d != ax) {
            out->dim[out->ndim++] = x->shape[d];
            continue;
        }
        for (int k = 0; k < idx->ndim; k++)
            out->dim[out->ndim++] = idx->shape[k];
    }
    return NB_OK;
}

static void isel_forward(nb_node *nd) {
    const ix_params *p = nd->params;
    const nb_tensor *x = nd->in[0], *idx = nd->in[1];
    int ax = 0;
    NB_ASSERT(nb__axis(p->axis, x->ndim, &ax));
    int64_t outer, len, inner;
    ix_view(x, ax, &outer, &len, &inner);
    if (x->dtype == NB_F32)
        isel_fwd_f32(F32(x), idx->data, idx->dtype == NB_I64, idx->numel, F32(nd->out), outer, len,
                     inner);
    else
        isel_fwd_f64(F64(x), idx->data, idx->dtype == NB_I64, idx->numel, F64(nd->out), outer, len,
                     inner);
}

static void isel_backward(nb_node *nd) {
    const ix_params *p = nd->params;
    nb_tensor *x = nd->in[0];
    const nb_tensor *idx = nd->in[1];
    if (!NB_WANTS_GRAD(x))
        return;
    int ax = 0;
    NB_ASSERT(nb__axis(p->axis, x->ndim, &ax));
    int64_t outer, len, inner;
    ix_view(x, ax, &outer, &len, &inner);
    if (x->dtype == NB_F32)
        isel_bwd_f32(G32(x), idx->data, idx->dtype == NB_I64, idx->numel, G32(nd->out), outer, len,
                     inner);
    else
        isel_bwd_f64(G64(x), idx->data, idx->dtype == NB_I64, idx->numel, G64(nd->out), outer, len,
                     inner);
}

const nb_op nb_op_index_select = {
    "index_select",
    2,
    2,
    isel_infer,
    isel_forward,
    isel_backward,
    NULL,
    "its gradient is a scatter-add into x, which no differentiable op provides yet",
    false,
    false};

nb_tensor *nb_index_select(nb_graph *g, nb_tensor *x, int axis, nb_tensor *idx) {
    nb_tensor *in[] = {x, idx};
    ix_params p = {.axis = axis};
    return nb__record(g, &nb_op_index_select, in, 2, &p, sizeof p);
}

nb_tensor *nb_embedding(nb_graph *g, nb_tensor *weight, nb_tensor *idx) {
    return nb_index_select(g, weight, 0, idx);
}

// ---- gather -----------------------------------------------------------------------------------

static nb_status gather_infer(nb_node *nd, nb_shape *out) {
    const ix_params *p = nd->params;
    const nb_tensor *x = nd->in[0], *idx = nd->in[1];
    int ax;
    if (!nb__axis(p->axis, x->ndim, &ax))
        return nb__node_fail(nd, NB_ERR_ARG, "axis %d out of range for x %s (%d dims)", p->axis,
                             NB_SHAPE_STR(x), x->ndim);
    bool fits = idx->ndim == x->ndim;
    for (int d = 0; fits && d < x->ndim; d++)
        fits = d == ax || idx->shape[d] <= x->shape[d];
    if (!fits)
        return nb__node_fail(nd, NB_ERR_SHAPE,
                             "idx %s must have x's %d dims and be no larger than x %s except "
                             "along axis %d",
                             NB_SHAPE_STR(idx), x->ndim, NB_SHAPE_STR(x), p->axis);
    int64_t at = bad_index(idx, x->shape[ax]);
    if (at >= 0)
        return fail_index(nd, idx, at, x->shape[ax], x, p->axis);
    out->ndim = idx->ndim;
    for (int d = 0; d < idx->ndim; d++)
        out->dim[d] = idx->shape[d];
    return NB_OK;
}

// Element offsets in x of y's element e: along axis, the index; elsewhere y's coordinate.
static int64_t gather_offset(const nb_tensor *x, const nb_tensor *idx, int ax, int64_t e) {
    int64_t off = 0, stride = 1, r = e;
    for (int d = x->ndim - 1; d >= 0; d--) {
        int64_t c = r % idx->shape[d];
        r /= idx->shape[d];
        if (d == ax) {
            c = idx_at(idx, e);
            if (c < 0 || c >= x->shape[d])
                return -1; // only after a replay changed idx
        }
        off += c * stride;
        stride *= x->shape[d];
    }
    return off;
}

static void gather_forward(nb_node *nd) {
    const ix_params *p = nd->params;
    const nb_tensor *x = nd->in[0], *idx = nd->in[1];
    nb_tensor *y = nd->out;
    int ax = 0;
    NB_ASSERT(nb__axis(p->axis, x->ndim, &ax));
    NB_PARALLEL_FOR(y->numel)
    for (int64_t e = 0; e < y->numel; e++) {
        int64_t off = gather_offset(x, idx, ax, e);
        if (y->dtype == NB_F32)
            F32(y)[e] = off < 0 ? 0.0f : F32(x)[off];
        else
            F64(y)[e] = off < 0 ? 0.0 : F64(x)[off];
    }
}

static void gather_backward(nb_node *nd) {
    const ix_params *p = nd->params;
    nb_tensor *x = nd->in[0], *y = nd->out;
    const nb_tensor *idx = nd->in[1];
    if (!NB_WANTS_GRAD(x))
        return;
    int ax = 0;
    NB_ASSERT(nb__axis(p->axis, x->ndim, &ax));
    for (int64_t e = 0; e < y->numel; e++) { // serial: repeated indices add up in order
        int64_t off = gather_offset(x, idx, ax, e);
        if (off < 0)
            continue;
        if (y->dtype == NB_F32)
            G32(x)[off] += G32(y)[e];
        else
            G64(x)[off] += G64(y)[e];
    }
}

const nb_op nb_op_gather = {
    "gather",
    2,
    2,
    gather_infer,
    gather_forward,
    gather_backward,
    NULL,
    "its gradient is a scatter-add into x, which no differentiable op provides yet",
    false,
    false};

nb_tensor *nb_gather(nb_graph *g, nb_tensor *x, int axis, nb_tensor *idx) {
    nb_tensor *in[] = {x, idx};
    ix_params p = {.axis = axis};
    return nb__record(g, &nb_op_gather, in, 2, &p, sizeof p);
}

// ---- argmax / argmin --------------------------------------------------------------------------

static nb_status arg_infer(nb_node *nd, nb_shape *out) {
    const ix_params *p = nd->params;
    const nb_tensor *x = nd->in[0];
    int ax;
    if (!nb__axis(p->axis, x->ndim, &ax))
        return nb__node_fail(nd, NB_ERR_ARG, "axis %d out of range for x %s (%d dims)", p->axis,
                             NB_SHAPE_STR(x), x->ndim);
    if (x->shape[ax] == 0)
        return nb__node_fail(nd, NB_ERR_SHAPE, "axis %d of x %s is empty: no index to return",
                             p->axis, NB_SHAPE_STR(x));
    if (x->shape[ax] > INT32_MAX)
        return nb__node_fail(nd, NB_ERR_SHAPE, "axis %d of x %s is too long for int32 indices",
                             p->axis, NB_SHAPE_STR(x));
    out->set_dtype = true;
    out->dtype = NB_I32;
    out->ndim = 0;
    for (int d = 0; d < x->ndim; d++)
        if (d != ax || p->keepdim)
            out->dim[out->ndim++] = d == ax ? 1 : x->shape[d];
    return NB_OK;
}

static void arg_forward(nb_node *nd) {
    const ix_params *p = nd->params;
    const nb_tensor *x = nd->in[0];
    int ax = 0;
    NB_ASSERT(nb__axis(p->axis, x->ndim, &ax));
    int64_t outer, len, inner;
    ix_view(x, ax, &outer, &len, &inner);
    int32_t *y = nd->out->data;
    if (x->dtype == NB_F32)
        arg_fwd_f32(F32(x), y, outer, len, inner, p->min);
    else
        arg_fwd_f64(F64(x), y, outer, len, inner, p->min);
}

static void no_backward(nb_node *nd) { // int32 outputs carry no gradient: never called
    (void)nd;
}

// int32 outputs: nothing flows back (never reached: they never require grad).
static nb_status no_vjp(nb_node *nd, nb_tensor *gy, const bool *want, nb_tensor **gin) {
    (void)gy;
    (void)want;
    (void)gin;
    return nb_graph_status(nd->graph);
}

const nb_op nb_op_argmax = {"argmax",    1,      0,    arg_infer, arg_forward,
                            no_backward, no_vjp, NULL, false,     false};
const nb_op nb_op_argmin = {"argmin",    1,      0,    arg_infer, arg_forward,
                            no_backward, no_vjp, NULL, false,     false};

nb_tensor *nb_argmax(nb_graph *g, nb_tensor *x, int axis, bool keepdim) {
    ix_params p = {.axis = axis, .keepdim = keepdim};
    return nb__record(g, &nb_op_argmax, &x, 1, &p, sizeof p);
}
nb_tensor *nb_argmin(nb_graph *g, nb_tensor *x, int axis, bool keepdim) {
    ix_params p = {.axis = axis, .keepdim = keepdim, .min = true};
    return nb__record(g, &nb_op_argmin, &x, 1, &p, sizeof p);
}

// ---- one_hot ----------------------------------------------------------------------------------

static nb_status one_hot_infer(nb_node *nd, nb_shape *out) {
    const ix_params *p = nd->params;
    const nb_tensor *idx = nd->in[0];
    if (p->dtype != NB_F32 && p->dtype != NB_F64)
        return nb__node_fail(nd, NB_ERR_ARG, "dtype must be float32 or float64 (idx %s)",
                             NB_SHAPE_STR(idx));
    if (p->classes < 1 || p->classes > INT32_MAX)
        return nb__node_fail(nd, NB_ERR_ARG, "classes = %" PRId64 " must be in [1, 2^31) (idx %s)",
                             p->classes, NB_SHAPE_STR(idx));
    if (idx->ndim >= NB_MAX_DIMS)
        return nb__node_fail(nd, NB_ERR_SHAPE, "idx %s: the result would have more than %d dims",
                             NB_SHAPE_STR(idx), NB_MAX_DIMS);
    int64_t at = bad_index(idx, p->classes);
    if (at >= 0)
        return nb__node_fail(nd, NB_ERR_ARG,
                             "index %" PRId64 " at position %" PRId64 " of idx %s is outside "
                             "[0, %" PRId64 ")",
                             idx_at(idx, at), at, NB_SHAPE_STR(idx), p->classes);
    out->set_dtype = true;
    out->dtype = p->dtype;
    out->ndim = idx->ndim + 1;
    for (int d = 0; d < idx->ndim; d++)
        out->dim[d] = idx->shape[d];
    out->dim[idx->ndim] = p->classes;
    return NB_OK;
}

static void one_hot_forward(nb_node *nd) {
    const ix_params *p = nd->params;
    const nb_tensor *idx = nd->in[0];
    int64_t c = p->classes;
    NB_PARALLEL_FOR(nd->out->numel)
    for (int64_t i = 0; i < idx->numel; i++)
        for (int64_t k = 0; k < c; k++) {
            double one = idx_at(idx, i) == k ? 1.0 : 0.0;
            if (nd->out->dtype == NB_F32)
                F32(nd->out)[i * c + k] = (float)one;
            else
                F64(nd->out)[i * c + k] = one;
        }
}

const nb_op nb_op_one_hot = {"one_hot",   1,      1,    one_hot_infer, one_hot_forward,
                             no_backward, no_vjp, NULL, false,         false};

nb_tensor *nb_one_hot_tensor(nb_graph *g, nb_tensor *idx, int64_t classes, nb_dtype dtype) {
    ix_params p = {.classes = classes, .dtype = dtype};
    return nb__record(g, &nb_op_one_hot, &idx, 1, &p, sizeof p);
}
