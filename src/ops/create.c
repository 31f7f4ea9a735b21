// Creation and dtype:
//   cast(x, dtype):                 float32 <-> float64 (same dtype: a copy); dx += (dtype of x) dy
//   full(dtype, shape, value):      a constant on the tape (zeros, ones: value 0, 1); no inputs
//   arange(dtype, start, stop, step): start + i step for i < ceil((stop - start) / step)
// Constants are recorded like any op (arity 0), so they live in the graph's arena, are released
// by reset and re-made by replay; they carry no gradient.
#include <math.h>
#include <string.h>

#include "ops/ops_impl.h"

typedef struct {
    nb_dtype dtype;
    int ndim;
    int64_t shape[NB_MAX_DIMS];
    double value, start, stop, step;
} cr_params;

static bool float_dtype(nb_dtype dt) {
    return dt == NB_F32 || dt == NB_F64;
}

// ---- cast ---------------------------------------------------------------------------------------

static nb_status cast_infer(nb_node *nd, nb_shape *out) {
    const cr_params *p = nd->params;
    const nb_tensor *x = nd->in[0];
    if (!float_dtype(p->dtype))
        return nb__node_fail(nd, NB_ERR_ARG, "target dtype must be float32 or float64 (x %s %s)",
                             NB_SHAPE_STR(x), nb_dtype_name(x->dtype));
    out->ndim = x->ndim;
    memcpy(out->dim, x->shape, sizeof out->dim);
    out->set_dtype = true;
    out->dtype = p->dtype;
    return NB_OK;
}

// dst (dtype dd) = src (dtype ds), or += when add; n elements.
static void convert(void *dst, nb_dtype dd, const void *src, nb_dtype ds, int64_t n, bool add) {
    if (dd == NB_F32 && ds == NB_F64) {
        float *d = dst;
        const double *s = src;
        if (add)
            NB_FOR(n, i, d[i] += (float)s[i];);
        else
            NB_FOR(n, i, d[i] = (float)s[i];);
    } else if (dd == NB_F64 && ds == NB_F32) {
        double *d = dst;
        const float *s = src;
        if (add)
            NB_FOR(n, i, d[i] += (double)s[i];);
        else
            NB_FOR(n, i, d[i] = (double)s[i];);
    } else if (dd == NB_F32) {
        float *d = dst;
        const float *s = src;
        if (add)
            NB_FOR(n, i, d[i] += s[i];);
        else
            NB_FOR(n, i, d[i] = s[i];);
    } else {
        double *d = dst;
        const double *s = src;
        if (add)
            NB_FOR(n, i, d[i] += s[i];);
        else
            NB_FOR(n, i, d[i] = s[i];);
    }
}

static void cast_forward(nb_node *nd) {
    const nb_tensor *x = nd->in[0];
    convert(nd->out->data, nd->out->dtype, x->data, x->dtype, x->numel, false);
}

static void cast_backward(nb_node *nd) {
    nb_tensor *x = nd->in[0];
    if (NB_WANTS_GRAD(x))
        convert(x->grad, x->dtype, nd->out->grad, nd->out->dtype, x->numel, true);
}

// The derivative of a conversion is the conversion back, itself a recorded cast: so the
// gradient is differentiable again (second order through a float32 island of a float64 model).
static nb_status cast_vjp(nb_node *nd, nb_tensor *gy, const bool *want, nb_tensor **gin) {
    if (want[0])
        gin[0] = nb_cast(nd->graph, gy, nd->in[0]->dtype);
    return nb_graph_status(nd->graph);
}

const nb_op nb_op_cast = {"cast",        1,        0,    cast_infer, cast_forward,
                          cast_backward, cast_vjp, NULL, false,      false};

nb_tensor *nb_cast(nb_graph *g, nb_tensor *x, nb_dtype dtype) {
    cr_params p = {.dtype = dtype};
    return nb__record(g, &nb_op_cast, &x, 1, &p, sizeof p);
}

// ---- full / zeros / ones ----------------------------------------------------------------------

static nb_status full_infer(nb_node *nd, nb_shape *out) {
    const cr_params *p = nd->params;
    if (!float_dtype(p->dtype))
        return nb__node_fail(nd, NB_ERR_ARG, "dtype must be float32 or float64");
    if (p->ndim < 0 || p->ndim > NB_MAX_DIMS)
        return nb__node_fail(nd, NB_ERR_ARG, "ndim %d out of range [0, %d] (or shape NULL)",
                             p->ndim, NB_MAX_DIMS);
    for (int d = 0; d < p->ndim; d++)
        if (p->shape[d] < 0)
            return nb__node_fail(nd, NB_ERR_ARG, "dim %d is %lld; dims must be >= 0", d,
                                 (long long)p->shape[d]);
    out->ndim = p->ndim;
    memcpy(out->dim, p->shape, (size_t)p->ndim * sizeof *p->shape);
    out->set_dtype = true;
    out->dtype = p->dtype;
    return NB_OK;
}

static void full_forward(nb_node *nd) {
    const cr_params *p = nd->params;
    nb_tensor *y = nd->out;
    if (y->dtype == NB_F32) {
        float v = (float)p->value, *d = F32(y);
        NB_FOR(y->numel, i, d[i] = v;);
    } else {
        double v = p->value, *d = F64(y);
        NB_FOR(y->numel, i, d[i] = v;);
    }
}

static void const_backward(nb_node *nd) { // no inputs: nothing to send a gradient to
    (void)nd;
}
// Likewise for higher order: a constant is a leaf of the gradient graph, nothing to return.
static nb_status const_vjp(nb_node *nd, nb_tensor *gy, const bool *want, nb_tensor **gin) {
    (void)gy, (void)want, (void)gin;
    return nb_graph_status(nd->graph);
}

const nb_op nb_op_full = {"full",         0,         0,    full_infer, full_forward,
                          const_backward, const_vjp, NULL, false,      false};

nb_tensor *nb_full(nb_graph *g, nb_dtype dtype, int ndim, const int64_t *shape, double value) {
    cr_params p = {.dtype = dtype, .ndim = ndim, .value = value};
    if (ndim > 0 && (!shape || ndim > NB_MAX_DIMS))
        p.ndim = -1; // reported by infer
    else if (ndim > 0)
        memcpy(p.shape, shape, (size_t)ndim * sizeof *shape);
    return nb__record(g, &nb_op_full, NULL, 0, &p, sizeof p);
}
nb_tensor *nb_zeros(nb_graph *g, nb_dtype dtype, int ndim, const int64_t *shape) {
    return nb_full(g, dtype, ndim, shape, 0.0);
}
nb_tensor *nb_ones(nb_graph *g, nb_dtype dtype, int ndim, const int64_t *shape) {
    return nb_full(g, dtype, ndim, shape, 1.0);
}

// ---- arange -----------------------------------------------------------------------------------

static nb_status arange_infer(nb_node *nd, nb_shape *out) {
    const cr_params *p = nd->params;
    if (!float_dtype(p->dtype))
        return nb__node_fail(nd, NB_ERR_ARG, "dtype must be float32 or float64");
    if (!isfinite(p->start) || !isfinite(p->stop) || !isfinite(p->step) || p->step == 0)
        return nb__node_fail(nd, NB_ERR_ARG,
                             "start %g, stop %g, step %g: need finite values and step != 0",
                             p->start, p->stop, p->step);
    double n = ceil((p->stop - p->start) / p->step);
    if (n > 1e15)
        return nb__node_fail(nd, NB_ERR_SHAPE, "start %g, stop %g, step %g: %g elements", p->start,
                             p->stop, p->step, n);
    out->ndim = 1;
    out->dim[0] = n > 0 ? (int64_t)n : 0;
    out->set_dtype = true;
    out->dtype = p->dtype;
    return NB_OK;
}

static void arange_forward(nb_node *nd) {
    const cr_params *p = nd->params;
    nb_tensor *y = nd->out;
    for (int64_t i = 0; i < y->numel; i++) {
        double v = p->start + (double)i * p->step;
        if (y->dtype == NB_F32)
            F32(y)[i] = (float)v;
        else
            F64(y)[i] = v;
    }
}

const nb_op nb_op_arange = {"arange",       0,         0,    arange_infer, arange_forward,
                            const_backward, const_vjp, NULL, false,        false};

nb_tensor *nb_arange(nb_graph *g, nb_dtype dtype, double start, double stop, double step) {
    cr_params p = {.dtype = dtype, .start = start, .stop = stop, .step = step};
    return nb__record(g, &nb_op_arange, NULL, 0, &p, sizeof p);
}
