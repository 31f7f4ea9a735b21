// softmax / log_softmax along the last axis: x (..., n) -> y (..., n), rows of n elements.
//   softmax:     y_i = e^(x_i - m) / Σ_j e^(x_j - m),      m = max_j x_j
//   log_softmax: y_i = x_i - m - ln Σ_j e^(x_j - m)
// Subtracting the row max makes every exponent <= 0 and puts e^0 = 1 in every sum, so nothing
// overflows and the log is finite: rows of ±1000 stay finite. Row sums accumulate in double.
#include <stdbool.h>
#include <tgmath.h>

#include "ops/ops_impl.h"
#include "ops/vmath.h"

// Rows are independent, so the row loop is parallel; each row's sums stay serial.
#define T float
#define SFX f32
#include "ops/softmax_kernels.inc"
#define T double
#define SFX f64
#include "ops/softmax_kernels.inc"

static nb_status softmax_infer(nb_node *nd, nb_shape *out) {
    const nb_tensor *x = nd->in[0];
    if (x->ndim < 1)
        return nb__node_fail(nd, NB_ERR_SHAPE,
                             "input %s is a 0-dim scalar; it needs a last axis to normalise over",
                             NB_SHAPE_STR(x));
    out->ndim = x->ndim;
    for (int i = 0; i < x->ndim; i++)
        out->dim[i] = x->shape[i];
    return NB_OK;
}

// Rows and row length; an empty last axis gives zero rows (nothing to do).
static int64_t row_len(const nb_tensor *x) {
    return x->shape[x->ndim - 1];
}
static int64_t n_rows(const nb_tensor *x) {
    return row_len(x) ? x->numel / row_len(x) : 0;
}

static void run_forward(nb_node *nd, bool logp) {
    const nb_tensor *x = nd->in[0];
    nb_tensor *y = nd->out;
    if (x->dtype == NB_F32)
        softmax_fwd_f32(F32(x), F32(y), n_rows(x), row_len(x), logp);
    else
        softmax_fwd_f64(F64(x), F64(y), n_rows(x), row_len(x), logp);
}

static void run_backward(nb_node *nd, bool logp) {
    nb_tensor *x = nd->in[0], *y = nd->out;
    if (!NB_WANTS_GRAD(x))
        return;
    if (x->dtype == NB_F32)
        softmax_bwd_f32(F32(y), G32(y), G32(x), n_rows(x), row_len(x), logp);
    else
        softmax_bwd_f64(F64(y), G64(y), G64(x), n_rows(x), row_len(x), logp);
}

// The output is all backward needs (the softmax, or its log), so nothing is saved.
static void softmax_forward(nb_node *nd) {
    run_forward(nd, false);
}
static void softmax_backward(nb_node *nd) {
    run_backward(nd, false);
}
static void log_softmax_forward(nb_node *nd) {
    run_forward(nd, true);
}
static void log_softmax_backward(nb_node *nd) {
    run_backward(nd, true);
}

// The kernels' formulas as ops, rows along the last axis (row sums kept as size 1):
// softmax dx = y (dy - Σ dy y);  log_softmax dx = dy - e^y Σ dy.
static nb_status softmax_vjp(nb_node *nd, nb_tensor *gy, const bool *want, nb_tensor **gin) {
    nb_graph *g = nd->graph;
    nb_tensor *y = nd->out;
    if (want[0])
        gin[0] = nb_mul(g, y, nb_sub(g, gy, nb_sum_axis(g, nb_mul(g, gy, y), -1, true)));
    return nb_graph_status(g);
}
static nb_status log_softmax_vjp(nb_node *nd, nb_tensor *gy, const bool *want, nb_tensor **gin) {
    nb_graph *g = nd->graph;
    nb_tensor *y = nd->out;
    if (want[0])
        gin[0] = nb_sub(g, gy, nb_mul(g, nb_exp(g, y), nb_sum_axis(g, gy, -1, true)));
    return nb_graph_status(g);
}

const nb_op nb_op_softmax = {"softmax",        1,           0,    softmax_infer, softmax_forward,
                             softmax_backward, softmax_vjp, NULL, false,         false};
const nb_op nb_op_log_softmax = {
    "log_softmax",   1,    0,     softmax_infer, log_softmax_forward, log_softmax_backward,
    log_softmax_vjp, NULL, false, false};

nb_tensor *nb_softmax(nb_graph *g, nb_tensor *x) {
    return nb__record(g, &nb_op_softmax, &x, 1, NULL, 0);
}

nb_tensor *nb_log_softmax(nb_graph *g, nb_tensor *x) {
    return nb__record(g, &nb_op_log_softmax, &x, 1, NULL, 0);
}
