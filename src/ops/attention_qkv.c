// attention_qkv: attention's heads read from and written to packed rows.
// qkv (..., t, 3E) as a fused in-projection writes it (q in columns [0, E), k in [E, 2E), v in
// [2E, 3E); head h in columns [h Dh, (h + 1) Dh) of each, Dh = E / heads) -> y (..., t, E),
// head h in columns [h Dh, (h + 1) Dh). attention.c's kernels run on it through row strides: the
// same numbers as splitting into (..., H, t, Dh), scaled_dot_product_attention and merging the
// heads back, without the five copies (and their backward) that the split and merge cost.
#include <string.h>

#include "ops/attention_priv.h"
#include "ops/ops_impl.h"

typedef struct {
    int64_t heads;
    bool causal;
    double p;
    nb_rng *rng;
} qkv_params;

static nb_status qkv_infer(nb_node *nd, nb_shape *out) {
    const qkv_params *p = nd->params;
    const nb_tensor *x = nd->in[0];
    int r = x->ndim;
    if (r < 2 || r > NB_MAX_DIMS - 2)
        return nb__node_fail(nd, NB_ERR_SHAPE, "qkv %s must be (..., t, 3 embed) of rank 2 to %d",
                             NB_SHAPE_STR(x), NB_MAX_DIMS - 2);
    int64_t c = x->shape[r - 1];
    if (p->heads < 1 || c < 3 * p->heads || c % (3 * p->heads))
        return nb__node_fail(nd, NB_ERR_SHAPE,
                             "qkv %s: the last dim must be 3 embed with %lld heads dividing "
                             "embed (>= 1 per head)",
                             NB_SHAPE_STR(x), (long long)p->heads);
    nb_status st = nb__sdpa_check_dropout(nd, p->p, p->rng, "qkv", x);
    if (st != NB_OK)
        return st;
    out->ndim = r;
    for (int i = 0; i < r - 1; i++)
        out->dim[i] = x->shape[i];
    out->dim[r - 1] = c / 3;
    return NB_OK;
}

static sdpa_geom qkv_geometry(const nb_node *nd) {
    const qkv_params *p = nd->params;
    const nb_tensor *x = nd->in[0];
    int r = x->ndim;
    int64_t e = x->shape[r - 1] / 3, t = x->shape[r - 2];
    sdpa_geom g = {.tq = t,
                   .tk = t,
                   .d = e / p->heads,
                   .dv = e / p->heads,
                   .p = p->p,
                   .causal = p->causal,
                   .heads = p->heads,
                   .ldq = 3 * e,
                   .ldk = 3 * e,
                   .ldv = 3 * e,
                   .ldo = e};
    g.bh = p->heads;
    for (int i = 0; i < r - 2; i++)
        g.bh *= x->shape[i];
    nb__sdpa_scale_rows(&g);
    return g;
}

// Byte offset of column block c (0 q, 1 k, 2 v) of a packed row.
static size_t qkv_col(const sdpa_geom *g, const nb_tensor *x, int c) {
    return (size_t)(c * g->ldo) * nb_dtype_size(x->dtype);
}

static void qkv_forward(nb_node *nd) {
    const qkv_params *p = nd->params;
    const nb_tensor *x = nd->in[0];
    sdpa_geom g = qkv_geometry(nd);
    const char *d = x->data;
    nb__sdpa_run_forward(
        nd, g, p->rng, (sdpa_ptrs){.q = d, .k = d + qkv_col(&g, x, 1), .v = d + qkv_col(&g, x, 2)});
}

static void qkv_backward(nb_node *nd) {
    nb_tensor *x = nd->in[0];
    if (!NB_WANTS_GRAD(x))
        return;
    sdpa_geom g = qkv_geometry(nd);
    const char *d = x->data;
    char *gd = x->grad;
    nb__sdpa_run_backward(nd, g,
                          (sdpa_ptrs){.q = d,
                                      .k = d + qkv_col(&g, x, 1),
                                      .v = d + qkv_col(&g, x, 2),
                                      .go = nd->out->grad,
                                      .gq = gd,
                                      .gk = gd + qkv_col(&g, x, 1),
                                      .gv = gd + qkv_col(&g, x, 2),
                                      .store = nb__grad_first(nd, 0)});
}

// The split written with recorded ops, L the leading dims: qkv (L, t, 3E) viewed
// (L, t, 3, H, Dh), permuted to (3, L, H, t, Dh) and sliced into q, k, v (L, H, t, Dh); gy
// (L, t, E) viewed (L, t, H, Dh) and permuted to (L, H, t, Dh); scaled_dot_product_attention's
// vjp; dq, dk, dv stacked (3, L, H, t, Dh) and permuted back to (L, t, 3, H, Dh) = (L, t, 3E).
static nb_status qkv_vjp(nb_node *nd, nb_tensor *gy, const bool *want, nb_tensor **gin) {
    if (!want[0])
        return NB_OK;
    nb_graph *gr = nd->graph;
    nb_tensor *x = nd->in[0];
    sdpa_geom g = qkv_geometry(nd);
    g.seed = ((const sdpa_saved *)nd->saved)->seed;
    int r = x->ndim, nl = r - 2;
    int64_t s5[NB_MAX_DIMS], sy[NB_MAX_DIMS], s4[NB_MAX_DIMS], s1[NB_MAX_DIMS];
    int p5[NB_MAX_DIMS], py[NB_MAX_DIMS], pb[NB_MAX_DIMS];
    for (int i = 0; i < nl; i++) {
        s5[i] = sy[i] = s4[i] = s1[i + 1] = x->shape[i];
        p5[i + 1] = py[i] = i;
        pb[i] = i + 1;
    }
    int64_t t = g.tq, h = g.heads, dh = g.d;
    memcpy(s5 + nl, (int64_t[]){t, 3, h, dh}, 4 * sizeof(int64_t));
    memcpy(sy + nl, (int64_t[]){t, h, dh}, 3 * sizeof(int64_t));
    memcpy(s4 + nl, (int64_t[]){h, t, dh}, 3 * sizeof(int64_t));
    memcpy(s1 + nl + 1, (int64_t[]){h, t, dh}, 3 * sizeof(int64_t));
    s1[0] = 1;
    p5[0] = nl + 1, p5[nl + 1] = nl + 2, p5[nl + 2] = nl, p5[nl + 3] = nl + 3;
    py[nl] = nl + 1, py[nl + 1] = nl, py[nl + 2] = nl + 2;
    pb[nl] = nl + 2, pb[nl + 1] = 0, pb[nl + 2] = nl + 1, pb[nl + 3] = nl + 3;
    nb_tensor *x5 = nb_permute(gr, nb_reshape(gr, x, r + 2, s5), r + 2, p5), *qkv[3];
    for (int c = 0; c < 3; c++)
        qkv[c] = nb_reshape(gr, nb_slice(gr, x5, 0, c, c + 1), r + 1, s4);
    nb_tensor *gy4 = nb_permute(gr, nb_reshape(gr, gy, r + 1, sy), r + 1, py);
    nb_tensor *gs[4] = {NULL};
    nb_status st =
        nb__sdpa_vjp_math(gr, &g, qkv[0], qkv[1], qkv[2], NULL, gy4, (bool[]){1, 1, 1, 0}, gs);
    if (st != NB_OK)
        return st;
    for (int c = 0; c < 3; c++)
        gs[c] = nb_reshape(gr, gs[c], r + 2, s1);
    nb_tensor *cat = nb_concat(gr, gs, 3, 0);
    gin[0] = nb_reshape(gr, nb_permute(gr, cat, r + 2, pb), r, x->shape);
    return nb_graph_status(gr);
}

// Accumulates into qkv's gradient (GEMMs adding into each column block); on its first write
// each slice stores its own rows instead (sdpa_ptrs.store): grad_store.
const nb_op nb_op_attention_qkv = {"attention_qkv", 1,       0,    qkv_infer, qkv_forward,
                                   qkv_backward,    qkv_vjp, NULL, true,      false};

nb_tensor *nb_attention_qkv(nb_graph *g, nb_tensor *qkv, int64_t heads, bool causal,
                            double dropout_p, nb_rng *rng) {
    qkv_params qp = {heads, causal, dropout_p, rng};
    return nb__record(g, &nb_op_attention_qkv, &qkv, 1, &qp, sizeof qp);
}
