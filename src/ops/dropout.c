// dropout (inverted, as PyTorch's F.dropout): y = x m, m_i = 1 / (1 - p) with probability
// 1 - p, else 0, drawn from the caller's nb_rng in element order (one nb_rng_uniform per
// element: keep when u < 1 - p), so the same seed gives the same mask bitwise on any thread
// count. Backward: dx += dy m. The mask (x's dtype) is kept in the graph arena for backward;
// every forward draws it afresh, a replayed one (nb_graph_replay) too, as each PyTorch training
// step does: a replayed step is the next step, not the same mask on new inputs.
// Eval mode (training false) and p = 0 return x itself (no node, no draw); p = 1 zeroes.
#include <math.h>

#include "ops/ops_impl.h"

typedef struct {
    double p;
    nb_rng *rng;
} dropout_params;

static nb_status dropout_infer(nb_node *nd, nb_shape *out) {
    const dropout_params *p = nd->params;
    const nb_tensor *x = nd->in[0];
    if (!(p->p >= 0 && p->p <= 1))
        return nb__node_fail(nd, NB_ERR_ARG, "p = %g must be in [0, 1]; x %s", p->p,
                             NB_SHAPE_STR(x));
    if (!p->rng)
        return nb__node_fail(nd, NB_ERR_NULL, "rng is NULL in training mode; x %s",
                             NB_SHAPE_STR(x));
    out->ndim = x->ndim;
    for (int i = 0; i < x->ndim; i++)
        out->dim[i] = x->shape[i];
    return NB_OK;
}

#define DEFINE_DROPOUT(T, sfx)                                                                     \
    static void draw_##sfx(nb_rng *rng, double p, T *m, int64_t n) {                               \
        T scale = p < 1 ? (T)(1.0 / (1.0 - p)) : (T)0;                                             \
        for (int64_t i = 0; i < n; i++)                                                            \
            m[i] = nb_rng_uniform(rng) < 1.0 - p ? scale : (T)0;                                   \
    }                                                                                              \
    static void apply_##sfx(const T *a, const T *m, T *y, int64_t n, bool acc) {                   \
        if (acc)                                                                                   \
            NB_FOR_SIMD(n, i, y[i] += a[i] * m[i];);                                               \
        else                                                                                       \
            NB_FOR_SIMD(n, i, y[i] = a[i] * m[i];);                                                \
    }
DEFINE_DROPOUT(float, f32)
DEFINE_DROPOUT(double, f64)

static void dropout_forward(nb_node *nd) {
    const dropout_params *p = nd->params;
    const nb_tensor *x = nd->in[0];
    nb_tensor *y = nd->out;
    void *m = nb__node_save(nd, (size_t)y->numel * nb_dtype_size(y->dtype));
    if (!m)
        return;
    if (y->dtype == NB_F32)
        draw_f32(p->rng, p->p, m, y->numel);
    else
        draw_f64(p->rng, p->p, m, y->numel);
    if (y->dtype == NB_F32)
        apply_f32(F32(x), m, F32(y), y->numel, false);
    else
        apply_f64(F64(x), m, F64(y), y->numel, false);
}

static void dropout_backward(nb_node *nd) {
    nb_tensor *x = nd->in[0], *y = nd->out;
    if (!NB_WANTS_GRAD(x))
        return;
    const void *m = nd->saved;
    if (y->dtype == NB_F32)
        apply_f32(G32(y), m, G32(x), y->numel, true);
    else
        apply_f64(G64(y), m, G64(x), y->numel, true);
}

const nb_op nb_op_dropout = {
    "dropout",
    1,
    0,
    dropout_infer,
    dropout_forward,
    dropout_backward,
    NULL,
    "its vjp (gy times the saved mask as a recorded constant) is not written yet",
    false,
    false};

nb_tensor *nb_dropout(nb_graph *g, nb_tensor *x, double p, bool training, nb_rng *rng) {
    if (g && x && nb_graph_status(g) == NB_OK && (!training || p == 0) && p >= 0 && p <= 1)
        return x;
    dropout_params dp = {p, rng};
    return nb__record(g, &nb_op_dropout, &x, 1, &dp, sizeof dp);
}
