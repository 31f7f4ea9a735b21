// Gradients as tensors, the public side: nb_grad (the graph's walk, given the two ops it records
// itself), and what is built on it with public ops: Hessian-vector and Jacobian-vector products
// and gradgradcheck. Declared in nabla/graph.h; here because they record ops.
#include <stdio.h>
#include <string.h>

#include "ops/ops_impl.h"

static nb_tensor *grad_copy(nb_graph *g, nb_tensor *x) {
    return nb_reshape(g, x, x->ndim, x->shape);
}
static const nb_grad_ops grad_ops = {nb_add, grad_copy};

nb_status nb_grad(nb_graph *g, nb_tensor *const *outputs, nb_tensor *const *grad_outputs,
                  int n_outputs, nb_tensor *const *inputs, int n_inputs, bool create_graph,
                  nb_tensor **grads) {
    return nb__grad(g, outputs, grad_outputs, n_outputs, inputs, n_inputs, create_graph, grads,
                    &grad_ops);
}

// Σ_k sum(a[k] * b[k]) -> a scalar on g, or NULL (error on g).
static nb_tensor *dot(nb_graph *g, nb_tensor *const *a, nb_tensor *const *b, int n) {
    nb_tensor *acc = NULL;
    for (int k = 0; k < n; k++) {
        nb_tensor *t = nb_sum(g, nb_mul(g, a[k], b[k]));
        acc = acc ? nb_add(g, acc, t) : t;
    }
    return acc;
}

// v[k] must match like[k] in shape and dtype.
static nb_status check_vectors(nb_graph *g, const char *fn, nb_tensor *const *like,
                               nb_tensor *const *v, int n) {
    if (!like || !v || n < 1)
        return nb__graph_fail(g, NB_ERR_NULL, "%s: tensors or vectors are NULL, or n = %d < 1", fn,
                              n);
    for (int k = 0; k < n; k++) {
        if (!like[k] || !v[k])
            return nb__graph_fail(g, NB_ERR_NULL, "%s: tensor %d or vector %d is NULL", fn, k, k);
        bool same = like[k]->ndim == v[k]->ndim && like[k]->dtype == v[k]->dtype;
        for (int d = 0; same && d < v[k]->ndim; d++)
            same = like[k]->shape[d] == v[k]->shape[d];
        if (!same)
            return nb__graph_fail(g, NB_ERR_SHAPE, "%s: vector %d %s %s must match tensor %d %s %s",
                                  fn, k, NB_SHAPE_STR(v[k]), nb_dtype_name(v[k]->dtype), k,
                                  NB_SHAPE_STR(like[k]), nb_dtype_name(like[k]->dtype));
    }
    return NB_OK;
}

nb_status nb_hvp(nb_graph *g, nb_tensor *loss, nb_tensor *const *params, nb_tensor *const *v, int n,
                 nb_tensor **hv) {
    if (!g)
        return nb__set_last_error(NB_ERR_NULL, "nb_hvp: graph is NULL");
    if (nb_graph_status(g) != NB_OK || check_vectors(g, "nb_hvp", params, v, n) != NB_OK)
        return nb_graph_status(g);
    if (!hv)
        return nb__graph_fail(g, NB_ERR_NULL, "nb_hvp: hv is NULL");
    nb_tensor **grads = nb__graph_alloc(g, (size_t)n * sizeof *grads);
    if (!grads || nb_grad(g, &loss, NULL, 1, params, n, true, grads) != NB_OK)
        return nb_graph_status(g);
    nb_tensor *gv = dot(g, grads, v, n);
    if (!gv)
        return nb_graph_status(g);
    if (!gv->requires_grad) { // the gradient does not depend on params: H = 0
        for (int k = 0; k < n; k++)
            if (!(hv[k] = nb__graph_tensor(g, params[k]->dtype, params[k]->ndim, params[k]->shape)))
                return nb_graph_status(g);
        return NB_OK;
    }
    return nb_grad(g, &gv, NULL, 1, params, n, false, hv);
}

nb_status nb_jvp(nb_graph *g, nb_tensor *output, nb_tensor *const *inputs, nb_tensor *const *v,
                 int n, bool create_graph, nb_tensor **jv) {
    if (!g)
        return nb__set_last_error(NB_ERR_NULL, "nb_jvp: graph is NULL");
    if (nb_graph_status(g) != NB_OK || check_vectors(g, "nb_jvp", inputs, v, n) != NB_OK)
        return nb_graph_status(g);
    if (!output || !jv)
        return nb__graph_fail(g, NB_ERR_NULL, "nb_jvp: output or jv is NULL");
    // u: a dummy cotangent of output's shape. g(u) = Jᵀ u is linear in u, so
    // d <g(u), v> / du = J v whatever u's value.
    nb_tensor *u = nb__graph_tensor(g, output->dtype, output->ndim, output->shape);
    if (!u)
        return nb_graph_status(g);
    u->requires_grad = true;
    nb_tensor **vjp = nb__graph_alloc(g, (size_t)n * sizeof *vjp);
    if (!vjp || nb_grad(g, &output, &u, 1, inputs, n, true, vjp) != NB_OK)
        return nb_graph_status(g);
    nb_tensor *s = dot(g, vjp, v, n);
    if (!s)
        return nb_graph_status(g);
    if (!s->requires_grad) { // Jᵀ u cannot be constant in u unless J = 0... but be safe
        *jv = nb__graph_tensor(g, output->dtype, output->ndim, output->shape);
        return *jv ? NB_OK : nb_graph_status(g);
    }
    return nb_grad(g, &s, NULL, 1, &u, 1, create_graph, jv);
}

// ---- gradgradcheck --------------------------------------------------------------------------

typedef struct {
    nb_gradcheck_fn f;
    void *ctx;
} gg_ctx;

// (inputs..., v) -> the flattened, concatenated nb_grad(f(inputs), v) wrt every input with
// requires_grad, recorded with create_graph.
static nb_tensor *first_derivative(nb_graph *g, nb_tensor *const *in, int n, void *ctx) {
    const gg_ctx *c = ctx;
    nb_tensor *v = in[n - 1];
    nb_tensor *y = c->f(g, in, n - 1, c->ctx);
    if (!y)
        return NULL;
    int k = 0;
    nb_tensor **req = nb__graph_alloc(g, (size_t)n * sizeof *req);
    nb_tensor **grads = nb__graph_alloc(g, (size_t)n * sizeof *grads);
    if (!req || !grads)
        return NULL;
    for (int i = 0; i < n - 1; i++)
        if (in[i]->requires_grad)
            req[k++] = in[i];
    if (nb_grad(g, &y, &v, 1, req, k, true, grads) != NB_OK)
        return NULL;
    for (int i = 0; i < k; i++)
        grads[i] = nb_reshape(g, grads[i], 1, (int64_t[]){-1});
    return nb_concat(g, grads, k, 0);
}

nb_gradcheck_result nb_gradgradcheck(nb_gradcheck_fn f, void *ctx, nb_tensor *const *inputs,
                                     int n_inputs, double h, double atol, double rtol) {
    nb_gradcheck_result r = {.ok = false, .worst_input = -1, .worst_index = -1};
    if (!f || !inputs || n_inputs <= 0) {
        r.status = NB_ERR_NULL;
        snprintf(r.message, sizeof r.message, "gradgradcheck: no function or no inputs");
        return r;
    }
    for (int i = 0; i < n_inputs; i++)
        if (!inputs[i]) {
            r.status = NB_ERR_NULL;
            snprintf(r.message, sizeof r.message, "gradgradcheck: input %d is NULL", i);
            return r;
        }
    // One evaluation for the output's shape: v must match it.
    nb_graph *g = nb_graph_create();
    nb_tensor *y = g ? f(g, inputs, n_inputs, ctx) : NULL;
    nb_tensor *v = NULL;
    if (y && y->dtype == NB_F64)
        v = nb_tensor_create(NB_F64, y->ndim, y->shape);
    nb_tensor **ext = nb__calloc((size_t)n_inputs + 1, sizeof *ext);
    if (!v || !ext) {
        r.status = !g                            ? NB_ERR_NOMEM
                   : nb_graph_status(g) != NB_OK ? nb_graph_status(g)
                   : y && y->dtype != NB_F64     ? NB_ERR_DTYPE
                                                 : NB_ERR_NOMEM;
        snprintf(r.message, sizeof r.message, "gradgradcheck: %s",
                 g && nb_graph_status(g) != NB_OK ? nb_graph_error(g)
                 : y && y->dtype != NB_F64        ? "the function must return float64"
                                                  : "out of memory or no output");
        goto done;
    }
    nb_rng rng;
    nb_rng_seed(&rng, 0x67726164ull); // "grad"
    nb_init_uniform(v, &rng, -1.0, 1.0);
    nb_tensor_set_requires_grad(v, true);
    memcpy(ext, inputs, (size_t)n_inputs * sizeof *ext);
    ext[n_inputs] = v;
    gg_ctx c = {f, ctx};
    r = nb__gradcheck(first_derivative, &c, ext, n_inputs + 1, h, atol, rtol, true);
    if (!r.ok && strncmp(r.message, "gradcheck", 9) == 0) { // name the variant
        memmove(r.message + 4, r.message, sizeof r.message - 5);
        memcpy(r.message, "grad", 4);
        r.message[sizeof r.message - 1] = '\0';
    }
done:
    nb__free(ext);
    nb_tensor_destroy(v);
    nb_graph_destroy(g);
    return r;
}
