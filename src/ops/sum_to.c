// sum_to: the adjoint of expand (NumPy broadcasting summed back).
//   x (shape) -> y (s): y[j] = Σ of the x elements that map to j, where s broadcasts to x's
//   shape (dims aligned from the right, each equal or 1): (4, 3) -> (3) sums the rows,
//   (4, 3) -> (4, 1) sums each row, -> () sums everything.
// It carries the gradient of a broadcast operand in higher-order mode: the vjp of a + b for a
// broadcast b is sum_to(dy, b's shape); its own vjp is expand. Sums accumulate in double.
#include <string.h>

#include "ops/ops_impl.h"

typedef struct {
    int ndim;
    bool has_shape; // the caller passed a non-NULL shape
    int64_t shape[NB_MAX_DIMS];
} sum_to_params;

// Element strides of y (right-aligned against x) over x's dims: 0 where y has size 1 or no dim.
static void y_strides(const nb_tensor *x, const nb_tensor *y, int64_t st[NB_MAX_DIMS]) {
    int64_t run = 1;
    for (int d = x->ndim - 1; d >= 0; d--) {
        int k = d - (x->ndim - y->ndim); // y's dim, or < 0
        int64_t n = k >= 0 ? y->shape[k] : 1;
        st[d] = n == 1 ? 0 : run;
        run *= n;
    }
}

// Offset in y of element i of x.
static int64_t y_at(const nb_tensor *x, const int64_t st[NB_MAX_DIMS], int64_t i) {
    int64_t off = 0;
    for (int d = x->ndim - 1; d >= 0 && i > 0; d--) {
        off += (i % x->shape[d]) * st[d];
        i /= x->shape[d];
    }
    return off;
}

static nb_status sum_to_infer(nb_node *nd, nb_shape *out) {
    const sum_to_params *p = nd->params;
    const nb_tensor *x = nd->in[0];
    if (p->ndim < 0 || p->ndim > NB_MAX_DIMS)
        return nb__node_fail(nd, NB_ERR_ARG, "ndim %d out of range [0, %d] for x %s", p->ndim,
                             NB_MAX_DIMS, NB_SHAPE_STR(x));
    if (p->ndim > 0 && !p->has_shape)
        return nb__node_fail(nd, NB_ERR_NULL, "shape is NULL (ndim %d) for x %s", p->ndim,
                             NB_SHAPE_STR(x));
    nb_tensor t = {.ndim = p->ndim};
    memcpy(t.shape, p->shape, sizeof t.shape);
    bool fits = p->ndim <= x->ndim;
    for (int k = 1; fits && k <= p->ndim; k++)
        fits = p->shape[p->ndim - k] >= 0 &&
               (p->shape[p->ndim - k] == 1 || p->shape[p->ndim - k] == x->shape[x->ndim - k]);
    if (!fits)
        return nb__node_fail(nd, NB_ERR_SHAPE,
                             "cannot sum x %s to %s: the target must broadcast to x (dims "
                             "align from the right and must match or be 1)",
                             NB_SHAPE_STR(x), NB_SHAPE_STR(&t));
    out->ndim = p->ndim;
    memcpy(out->dim, p->shape, (size_t)p->ndim * sizeof p->shape[0]);
    return NB_OK;
}

static void sum_to_f32(const nb_tensor *x, const nb_tensor *y, const int64_t *st, double *acc) {
    for (int64_t i = 0; i < x->numel; i++)
        acc[y_at(x, st, i)] += (double)F32(x)[i];
    for (int64_t j = 0; j < y->numel; j++)
        F32(y)[j] = (float)acc[j];
}
static void sum_to_f64(const nb_tensor *x, const nb_tensor *y, const int64_t *st, double *acc) {
    for (int64_t i = 0; i < x->numel; i++)
        acc[y_at(x, st, i)] += F64(x)[i];
    for (int64_t j = 0; j < y->numel; j++)
        F64(y)[j] = acc[j];
}

// Sums in a double scratch (saved on the node, so a replay allocates nothing).
static void sum_to_forward(nb_node *nd) {
    nb_tensor *x = nd->in[0], *y = nd->out;
    double *acc = nb__node_save(nd, (size_t)(y->numel ? y->numel : 1) * sizeof *acc);
    if (!acc)
        return;
    memset(acc, 0, (size_t)y->numel * sizeof *acc);
    int64_t st[NB_MAX_DIMS];
    y_strides(x, y, st);
    if (y->dtype == NB_F32)
        sum_to_f32(x, y, st, acc);
    else
        sum_to_f64(x, y, st, acc);
}

// dx[i] += dy[j] for every x element i that maps to j.
static void sum_to_backward(nb_node *nd) {
    nb_tensor *x = nd->in[0], *y = nd->out;
    if (!NB_WANTS_GRAD(x))
        return;
    int64_t st[NB_MAX_DIMS];
    y_strides(x, y, st);
    for (int64_t i = 0; i < x->numel; i++) {
        int64_t j = y_at(x, st, i);
        if (x->dtype == NB_F32)
            G32(x)[i] += G32(y)[j];
        else
            G64(x)[i] += G64(y)[j];
    }
}

static nb_status sum_to_vjp(nb_node *nd, nb_tensor *gy, const bool *want, nb_tensor **gin) {
    const nb_tensor *x = nd->in[0];
    if (want[0])
        gin[0] = nb_expand(nd->graph, gy, x->ndim, x->shape);
    return nb_graph_status(nd->graph);
}

const nb_op nb_op_sum_to = {"sum_to",        1,          0,    sum_to_infer, sum_to_forward,
                            sum_to_backward, sum_to_vjp, NULL, false,        false};

nb_tensor *nb_sum_to(nb_graph *g, nb_tensor *x, int ndim, const int64_t *shape) {
    sum_to_params p = {.ndim = ndim, .has_shape = shape != NULL};
    if (shape && ndim > 0 && ndim <= NB_MAX_DIMS) // copied: the caller's array may be temporary
        memcpy(p.shape, shape, (size_t)ndim * sizeof *shape);
    return nb__record(g, &nb_op_sum_to, &x, 1, &p, sizeof p);
}
