// matmul: y = a b,  a (m, k), b (k, n) -> y (m, n).
// Backward: da += dy bᵀ (m, n)(n, k),  db += aᵀ dy (k, m)(m, n). Both GEMMs use beta = 1 so
// they accumulate straight into the existing gradient without a temporary.
#include "ops/ops_impl.h"

static nb_status matmul_infer(nb_node *nd, nb_shape *out) {
    const nb_tensor *a = nd->in[0], *b = nd->in[1];
    if (a->ndim != 2 || b->ndim != 2)
        return nb__node_fail(nd, NB_ERR_SHAPE, "both inputs must be 2-D: %s x %s", NB_SHAPE_STR(a),
                             NB_SHAPE_STR(b));
    if (a->shape[1] != b->shape[0])
        return nb__node_fail(nd, NB_ERR_SHAPE, "inner dimensions differ: %s x %s", NB_SHAPE_STR(a),
                             NB_SHAPE_STR(b));
    if (!nb__gemm_dims_ok(a->shape[0], b->shape[1], a->shape[1]))
        return nb__node_fail(nd, NB_ERR_SHAPE, "dimensions exceed BLAS int range: %s x %s",
                             NB_SHAPE_STR(a), NB_SHAPE_STR(b));
    out->ndim = 2;
    out->dim[0] = a->shape[0];
    out->dim[1] = b->shape[1];
    return NB_OK;
}

static void matmul_forward(nb_node *nd) {
    const nb_tensor *a = nd->in[0], *b = nd->in[1];
    int64_t m = a->shape[0], k = a->shape[1], n = b->shape[1];
    nb__gemm(a->dtype, false, false, m, n, k, 1.0, a->data, b->data, 0.0, nd->out->data);
}

static void matmul_backward(nb_node *nd) {
    nb_tensor *a = nd->in[0], *b = nd->in[1], *y = nd->out;
    int64_t m = a->shape[0], k = a->shape[1], n = b->shape[1];
    if (NB_WANTS_GRAD(a)) // da (m, k) += dy (m, n) · bᵀ (n, k)
        nb__gemm(y->dtype, false, true, m, k, n, 1.0, y->grad, b->data, 1.0, a->grad);
    if (NB_WANTS_GRAD(b)) // db (k, n) += aᵀ (k, m) · dy (m, n)
        nb__gemm(y->dtype, true, false, k, n, m, 1.0, a->data, y->grad, 1.0, b->grad);
}

const nb_op nb_op_matmul = {"matmul", 2, 0, matmul_infer, matmul_forward, matmul_backward};

nb_tensor *nb_matmul(nb_graph *g, nb_tensor *a, nb_tensor *b) {
    nb_tensor *in[] = {a, b};
    return nb__record(g, &nb_op_matmul, in, 2, NULL, 0);
}
