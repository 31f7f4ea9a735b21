// nb_grad, nb_hvp, nb_jvp and nb_gradgradcheck: closed forms, finite differences on an MLP,
// the kernel path leaving leaf grads alone, a vjp that gradgradcheck must reject, bad input.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "graph/graph_impl.h"
#include "support/opcheck.h"

static nb_tensor *param(int ndim, const int64_t *shape, nb_rng *rng, double lo, double hi) {
    nb_tensor *t = nb_tensor_create(NB_F64, ndim, shape);
    assert_non_null(t);
    nb_init_uniform(t, rng, lo, hi);
    nb_tensor_set_requires_grad(t, true);
    return t;
}

// y = Σ x³: dy/dx = 3x², d(Σ dy/dx)/dx = 6x, and once more 6.
static void cube_derivatives(void **state) {
    (void)state;
    nb_rng rng;
    nb_rng_seed(&rng, 1);
    nb_tensor *x = param(1, (int64_t[]){4}, &rng, -2, 2);
    nb_graph *g = nb_graph_create();
    nb_tensor *y = nb_sum(g, nb_pow_scalar(g, x, 3));
    nb_tensor *g1, *g2, *g3;
    assert_int_equal(nb_grad(g, &y, NULL, 1, &x, 1, true, &g1), NB_OK);
    nb_tensor *s1 = nb_sum(g, g1);
    assert_int_equal(nb_grad(g, &s1, NULL, 1, &x, 1, true, &g2), NB_OK);
    nb_tensor *s2 = nb_sum(g, g2);
    assert_int_equal(nb_grad(g, &s2, NULL, 1, &x, 1, false, &g3), NB_OK);
    for (int i = 0; i < 4; i++) {
        double v = nb_tensor_get(x, i);
        assert_true(oc_near(nb_tensor_get(g1, i), 3 * v * v, 1e-13));
        assert_true(oc_near(nb_tensor_get(g2, i), 6 * v, 1e-13));
        assert_true(oc_near(nb_tensor_get(g3, i), 6, 1e-13));
    }
    assert_true(nb_tensor_requires_grad(g1));  // create_graph: differentiable
    assert_false(nb_tensor_requires_grad(g3)); // kernel path: a constant
    assert_null(nb_tensor_grad(x));            // nb_grad never touches a leaf's ->grad
    nb_graph_destroy(g);
    nb_tensor_destroy(x);
}

// Kernel path with a parameter grad already accumulated, two outputs with grad_outputs, an
// intermediate as input, a zero-derivative path (step) and x used twice.
static void grad_forms(void **state) {
    (void)state;
    nb_rng rng;
    nb_rng_seed(&rng, 2);
    nb_tensor *x = param(2, (int64_t[]){2, 3}, &rng, 0.5, 2);
    nb_tensor *w = param(1, (int64_t[]){3}, &rng, -1, 1);
    nb_graph *g = nb_graph_create();
    nb_tensor *h = nb_mul(g, x, w);                         // (2, 3)
    nb_tensor *y1 = nb_sum(g, nb_mul(g, h, h));             // Σ h²
    nb_tensor *y2 = nb_sum_axis(g, nb_log(g, x), 1, false); // (2)
    assert_int_equal(nb_backward(g, y1), NB_OK);            // w->grad now holds dy1/dw
    double wg0 = nb_tensor_grad_get(w, 0);
    nb_tensor *v2 = nb_tensor_from_data(NB_F64, 1, (int64_t[]){2}, (double[]){0.5, -2});
    nb_tensor *outs[] = {y1, y2}, *gos[] = {NULL, v2}, *ins[] = {x, h}, *gr[2];
    for (int cg = 0; cg < 2; cg++) {
        assert_int_equal(nb_grad(g, outs, gos, 2, ins, 2, cg, gr), NB_OK);
        for (int i = 0; i < 2; i++)
            for (int j = 0; j < 3; j++) {
                double xv = nb_tensor_get(x, i * 3 + j), wv = nb_tensor_get(w, j);
                double hv = xv * wv, v = i == 0 ? 0.5 : -2;
                assert_true(oc_near(nb_tensor_get(gr[0], i * 3 + j), 2 * hv * wv + v / xv, 1e-13));
                assert_true(oc_near(nb_tensor_get(gr[1], i * 3 + j), 2 * hv, 1e-13));
            }
    }
    assert_true(oc_near(nb_tensor_grad_get(w, 0), wg0, 0)); // untouched by either path
    // step has a zero derivative: a connected input gets zeros, not an error.
    nb_tensor *z = nb_sum(g, nb_step(g, x)), *gz;
    assert_int_equal(nb_grad(g, &z, NULL, 1, &x, 1, true, &gz), NB_OK);
    for (int i = 0; i < 6; i++)
        assert_true(oc_near(nb_tensor_get(gz, i), 0, 0));
    nb_graph_destroy(g);
    nb_tensor_destroy(v2);
    nb_tensor_destroy(x);
    nb_tensor_destroy(w);
}

// A 2-layer tanh MLP with softmax cross-entropy, float64: loss(params).
typedef struct {
    nb_tensor *x, *t, *p[4]; // W1 (6, 5), b1 (6), W2 (3, 6), b2 (3)
} mlp;

static nb_tensor *mlp_loss(nb_graph *g, const mlp *m, nb_tensor *const *p) {
    nb_tensor *h = nb_tanh(g, nb_linear(g, m->x, p[0], p[1]));
    nb_tensor *h2 = nb_gelu(g, nb_linear(g, h, p[2], p[3]));
    return nb_cross_entropy_logits(g, h2, m->t, NB_REDUCE_MEAN);
}

static void mlp_make(mlp *m, nb_rng *rng) {
    m->x = nb_tensor_create(NB_F64, 2, (int64_t[]){8, 5});
    nb_init_uniform(m->x, rng, -1, 1);
    m->t = nb_tensor_create(NB_F64, 2, (int64_t[]){8, 3});
    for (int r = 0; r < 8; r++)
        nb_tensor_set(m->t, r * 3 + (int64_t)nb_rng_below(rng, 3), 1.0);
    m->p[0] = param(2, (int64_t[]){6, 5}, rng, -0.8, 0.8);
    m->p[1] = param(1, (int64_t[]){6}, rng, -0.5, 0.5);
    m->p[2] = param(2, (int64_t[]){3, 6}, rng, -0.8, 0.8);
    m->p[3] = param(1, (int64_t[]){3}, rng, -0.5, 0.5);
}

static void mlp_free(mlp *m) {
    nb_tensor_destroy(m->x);
    nb_tensor_destroy(m->t);
    for (int k = 0; k < 4; k++)
        nb_tensor_destroy(m->p[k]);
}

// Gradient of the loss at params + s v, flattened into out (kernel path).
static void grad_at(const mlp *m, nb_tensor *const *v, double s, double *out) {
    double *save[4];
    for (int k = 0; k < 4; k++) {
        int64_t n = nb_tensor_numel(m->p[k]);
        save[k] = malloc((size_t)n * sizeof(double));
        memcpy(save[k], nb_tensor_data_f64(m->p[k]), (size_t)n * sizeof(double));
        for (int64_t i = 0; i < n; i++)
            nb_tensor_data_f64(m->p[k])[i] += s * nb_tensor_get(v[k], i);
    }
    nb_graph *g = nb_graph_create();
    nb_tensor *loss = mlp_loss(g, m, m->p), *gr[4];
    assert_int_equal(nb_grad(g, &loss, NULL, 1, m->p, 4, false, gr), NB_OK);
    for (int k = 0; k < 4; k++) {
        int64_t n = nb_tensor_numel(m->p[k]);
        for (int64_t i = 0; i < n; i++)
            *out++ = nb_tensor_get(gr[k], i);
        memcpy(nb_tensor_data_f64(m->p[k]), save[k], (size_t)n * sizeof(double));
        free(save[k]);
    }
    nb_graph_destroy(g);
}

// H v from nb_hvp against (grad(p + e v) - grad(p - e v)) / 2e: 1e-7 relative (the bar).
static void hvp_matches_finite_differences(void **state) {
    (void)state;
    nb_rng rng;
    nb_rng_seed(&rng, 3);
    mlp m;
    mlp_make(&m, &rng);
    nb_tensor *v[4];
    int64_t total = 0;
    for (int k = 0; k < 4; k++) {
        v[k] = nb_tensor_create(NB_F64, nb_tensor_ndim(m.p[k]), nb_tensor_shape(m.p[k]));
        nb_init_uniform(v[k], &rng, -1, 1);
        total += nb_tensor_numel(m.p[k]);
    }
    nb_graph *g = nb_graph_create();
    nb_tensor *loss = mlp_loss(g, &m, m.p), *hv[4];
    assert_int_equal(nb_hvp(g, loss, m.p, v, 4, hv), NB_OK);
    double *gp = malloc((size_t)total * sizeof(double)),
           *gm = malloc((size_t)total * sizeof(double));
    const double e = 1e-5;
    grad_at(&m, v, e, gp);
    grad_at(&m, v, -e, gm);
    double num = 0, den = 0;
    int64_t off = 0;
    for (int k = 0; k < 4; k++)
        for (int64_t i = 0; i < nb_tensor_numel(m.p[k]); i++, off++) {
            double fd = (gp[off] - gm[off]) / (2 * e), a = nb_tensor_get(hv[k], i);
            num = fmax(num, fabs(a - fd));
            den = fmax(den, fabs(a));
        }
    fprintf(stderr, "  HVP vs finite differences on the MLP: max |diff| / max |Hv| = %.3g\n",
            num / den);
    assert_true(den > 1e-3);
    assert_true(num / den < 1e-7);
    free(gp);
    free(gm);
    nb_graph_destroy(g);
    for (int k = 0; k < 4; k++)
        nb_tensor_destroy(v[k]);
    mlp_free(&m);
}

// J v by the double-vjp trick against (f(x + e v) - f(x - e v)) / 2e.
static void jvp_matches_finite_differences(void **state) {
    (void)state;
    nb_rng rng;
    nb_rng_seed(&rng, 4);
    nb_tensor *x = param(2, (int64_t[]){3, 4}, &rng, -1, 1);
    nb_tensor *v = nb_tensor_create(NB_F64, 2, (int64_t[]){3, 4});
    nb_init_uniform(v, &rng, -1, 1);
    double f[2][3 * 4];
    for (int s = 0; s < 2; s++) {
        nb_tensor *xs = nb_tensor_create(NB_F64, 2, (int64_t[]){3, 4});
        for (int i = 0; i < 12; i++)
            nb_tensor_set(xs, i, nb_tensor_get(x, i) + (s ? -1e-6 : 1e-6) * nb_tensor_get(v, i));
        nb_graph *g = nb_graph_create();
        nb_tensor *y = nb_softmax(g, nb_mul(g, xs, xs));
        for (int i = 0; i < 12; i++)
            f[s][i] = nb_tensor_get(y, i);
        nb_graph_destroy(g);
        nb_tensor_destroy(xs);
    }
    nb_graph *g = nb_graph_create();
    nb_tensor *y = nb_softmax(g, nb_mul(g, x, x)), *jv;
    assert_int_equal(nb_jvp(g, y, &x, &v, 1, false, &jv), NB_OK);
    for (int i = 0; i < 12; i++)
        assert_true(oc_near(nb_tensor_get(jv, i), (f[0][i] - f[1][i]) / 2e-6, 1e-8));
    nb_graph_destroy(g);
    nb_tensor_destroy(x);
    nb_tensor_destroy(v);
}

// A test op whose vjp has the right values but builds them from a constant copy of x: the
// vjp-vs-kernel check cannot see it, gradgradcheck must (d/dx of 2 x gy is lost).
static nb_status sq_infer(nb_node *nd, nb_shape *out) {
    out->ndim = nd->in[0]->ndim;
    memcpy(out->dim, nd->in[0]->shape, sizeof out->dim);
    return NB_OK;
}
static void sq_forward(nb_node *nd) {
    for (int64_t i = 0; i < nd->out->numel; i++)
        ((double *)nd->out->data)[i] =
            ((double *)nd->in[0]->data)[i] * ((double *)nd->in[0]->data)[i];
}
static void sq_backward(nb_node *nd) {
    for (int64_t i = 0; i < nd->out->numel; i++)
        ((double *)nd->in[0]->grad)[i] +=
            2 * ((double *)nd->out->grad)[i] * ((double *)nd->in[0]->data)[i];
}
static nb_status sq_vjp_detached(nb_node *nd, nb_tensor *gy, const bool *want, nb_tensor **gin) {
    const nb_tensor *x = nd->in[0];
    nb_tensor *c = nb__graph_tensor(nd->graph, x->dtype, x->ndim, x->shape);
    if (c)
        memcpy(c->data, x->data, (size_t)x->numel * sizeof(double));
    if (want[0])
        gin[0] = nb_mul(nd->graph, gy, nb_scale(nd->graph, c, 2.0));
    return nb_graph_status(nd->graph);
}
static const nb_op detached_square = {
    "detached_square", 1,    0,     sq_infer, sq_forward, sq_backward,
    sq_vjp_detached,   NULL, false, false};
static nb_tensor *gc_detached(nb_graph *g, nb_tensor *const *in, int n, void *ctx) {
    (void)n;
    (void)ctx;
    return nb_sum(g, nb__record(g, &detached_square, in, 1, NULL, 0));
}

static void gradgradcheck_catches_a_detached_vjp(void **state) {
    (void)state;
    nb_rng rng;
    nb_rng_seed(&rng, 5);
    nb_tensor *x = param(1, (int64_t[]){3}, &rng, 0.5, 1.5);
    nb_gradcheck_result r = nb_gradcheck(gc_detached, NULL, &x, 1, 1e-6, 1e-6, 1e-5);
    assert_true(r.ok); // first order is right
    r = nb_gradgradcheck(gc_detached, NULL, &x, 1, 1e-6, 1e-6, 1e-5);
    assert_false(r.ok);
    assert_int_equal(r.status, NB_OK);
    assert_non_null(strstr(r.message, "gradgradcheck"));
    r = nb_gradgradcheck(NULL, NULL, &x, 1, 1e-6, 1e-6, 1e-5);
    assert_int_equal(r.status, NB_ERR_NULL);
    nb_tensor_destroy(x);
}

// A recorded double backward replays: new input values, nb_graph_replay, nb_backward equals a
// fresh recording (the gradient ops are ordinary tape nodes; seeds are stable constants).
static void double_backward_replays(void **state) {
    (void)state;
    nb_rng rng;
    nb_rng_seed(&rng, 8);
    nb_tensor *x = param(1, (int64_t[]){3}, &rng, 0.2, 1.2);
    nb_graph *g = nb_graph_create(), *g2 = nb_graph_create();
    nb_tensor *y = nb_sum(g, nb_pow_scalar(g, nb_sin(g, x), 3)), *gx;
    assert_int_equal(nb_grad(g, &y, NULL, 1, &x, 1, true, &gx), NB_OK);
    nb_tensor *pen = nb_sum(g, nb_mul(g, gx, gx));
    for (int i = 0; i < 3; i++)
        nb_tensor_set(x, i, 1.5 - 0.2 * i);
    nb_tensor_zero_grad(x);
    assert_int_equal(nb_graph_replay(g), NB_OK);
    assert_int_equal(nb_backward(g, pen), NB_OK);
    double replayed[3];
    for (int i = 0; i < 3; i++)
        replayed[i] = nb_tensor_grad_get(x, i);
    nb_tensor_zero_grad(x);
    nb_tensor *y2 = nb_sum(g2, nb_pow_scalar(g2, nb_sin(g2, x), 3)), *gx2;
    assert_int_equal(nb_grad(g2, &y2, NULL, 1, &x, 1, true, &gx2), NB_OK);
    assert_int_equal(nb_backward(g2, nb_sum(g2, nb_mul(g2, gx2, gx2))), NB_OK);
    for (int i = 0; i < 3; i++)
        assert_true(oc_near(replayed[i], nb_tensor_grad_get(x, i), 0));
    nb_graph_destroy(g);
    nb_graph_destroy(g2);
    nb_tensor_destroy(x);
}

#define EXPECT_GRAD_ERR(call, st, ...)                                                             \
    do {                                                                                           \
        assert_int_equal((call), st);                                                              \
        assert_true(oc_expect_error(g, NULL, st, __VA_ARGS__, NULL));                              \
        nb_graph_clear_error(g);                                                                   \
    } while (0)

static void bad_input(void **state) {
    (void)state;
    nb_rng rng;
    nb_rng_seed(&rng, 6);
    nb_tensor *x = param(2, (int64_t[]){2, 3}, &rng, 0.5, 1.5);
    nb_tensor *u = param(1, (int64_t[]){3}, &rng, -1, 1);
    nb_tensor *c = nb_tensor_create(NB_F64, 1, (int64_t[]){3});
    nb_graph *g = nb_graph_create(), *other = nb_graph_create();
    nb_tensor *y = nb_mul(g, x, x), *loss = nb_sum(g, y), *gr[2];
    nb_tensor *foreign = nb_exp(other, x);
    assert_int_equal(nb_grad(NULL, &loss, NULL, 1, &x, 1, true, gr), NB_ERR_NULL);
    EXPECT_GRAD_ERR(nb_grad(g, &y, NULL, 1, &x, 1, true, gr), NB_ERR_SHAPE, "output 0 (2, 3)",
                    "not a scalar");
    EXPECT_GRAD_ERR(nb_grad(g, &loss, NULL, 1, &u, 1, true, gr), NB_ERR_STATE, "input 0 (3)",
                    "does not lead");
    EXPECT_GRAD_ERR(nb_grad(g, &loss, NULL, 1, &c, 1, false, gr), NB_ERR_STATE,
                    "does not require grad");
    EXPECT_GRAD_ERR(nb_grad(g, &loss, NULL, 1, &foreign, 1, false, gr), NB_ERR_STATE,
                    "another graph");
    EXPECT_GRAD_ERR(nb_grad(g, &foreign, NULL, 1, &x, 1, false, gr), NB_ERR_STATE, "another graph");
    EXPECT_GRAD_ERR(nb_grad(g, &y, &c, 1, &x, 1, false, gr), NB_ERR_SHAPE, "grad_output 0 (3)",
                    "must match output (2, 3)");
    EXPECT_GRAD_ERR(nb_grad(g, &loss, NULL, 0, &x, 1, false, gr), NB_ERR_ARG, "at least one");
    EXPECT_GRAD_ERR(nb_grad(g, NULL, NULL, 1, &x, 1, false, gr), NB_ERR_NULL, "NULL");
    EXPECT_GRAD_ERR(nb_grad(g, &loss, NULL, 1, (nb_tensor *[]){NULL}, 1, false, gr), NB_ERR_NULL,
                    "input 0 is NULL");
    EXPECT_GRAD_ERR(nb_grad(g, &x, NULL, 1, &x, 1, false, gr), NB_ERR_STATE,
                    "not produced by an op");
    EXPECT_GRAD_ERR(nb_hvp(g, loss, &x, &c, 1, gr), NB_ERR_SHAPE, "vector 0 (3)");
    EXPECT_GRAD_ERR(nb_jvp(g, y, &x, &c, 1, false, gr), NB_ERR_SHAPE, "vector 0 (3)");
    // max_axis is first-order only: create_graph through it names it and its call site.
    nb_tensor *m = nb_sum(g, nb_max_axis(g, x, 1, false));
    EXPECT_GRAD_ERR(nb_grad(g, &m, NULL, 1, &x, 1, true, gr), NB_ERR_STATE, "'max_axis'",
                    "first-order only");
    assert_int_equal(nb_grad(g, &m, NULL, 1, &x, 1, false, gr), NB_OK);
    // A tensor kept across a reset.
    nb_graph_reset(g);
    EXPECT_GRAD_ERR(nb_grad(g, &loss, NULL, 1, &x, 1, false, gr), NB_ERR_STATE, "stale");
    nb_graph_destroy(g);
    nb_graph_destroy(other);
    nb_tensor_destroy(x);
    nb_tensor_destroy(u);
    nb_tensor_destroy(c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(cube_derivatives),
        cmocka_unit_test(grad_forms),
        cmocka_unit_test(hvp_matches_finite_differences),
        cmocka_unit_test(jvp_matches_finite_differences),
        cmocka_unit_test(gradgradcheck_catches_a_detached_vjp),
        cmocka_unit_test(double_backward_replays),
        cmocka_unit_test(bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
