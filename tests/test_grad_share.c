// nb_backward's shared grads: when an op output t has one consumer whose derivative in t is the
// identity (a same-shape add or sub operand, a reshape), t's grad is the consumer's output grad
// itself, not a copy (nb_node.grad_pass, backward.c). Every case checks the grad of every
// tensor, intermediates included, against nb_grad's kernel path (which shares nothing), on
// recorded and replayed steps, in float64 and float32; that sharing happens exactly where it is
// safe (pointer equality, through the public grad accessor); and that a later sweep from
// another root, nb_grad after nb_backward, anomaly mode, the grad-ready hook and second-order
// gradients through the shared ops are unaffected.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>

#include "nabla/graph.h"
#include "nabla/ops.h"
#include "nabla/tensor.h"

#define MAX_T 16

// |a - b| <= tol in double (cmocka's assert_float_equal compares floats)
#define assert_near(a, b, tol) assert_true(fabs((double)(a) - (double)(b)) <= (tol))

// A model under test: leaves x[], its op outputs listed in t[] (to check their grads), the
// scalar loss returned.
typedef struct {
    nb_tensor *t[MAX_T];
    int n;
} tensors;

static nb_tensor *keep(tensors *ts, nb_tensor *t) {
    assert_non_null(t);
    assert_true(ts->n < MAX_T);
    ts->t[ts->n++] = t;
    return t;
}

static nb_tensor *leaf(nb_dtype dt, int ndim, const int64_t *shape, nb_rng *rng) {
    nb_tensor *t = nb_tensor_create(dt, ndim, shape);
    assert_non_null(t);
    nb_init_uniform(t, rng, -1, 1);
    assert_int_equal(nb_tensor_set_requires_grad(t, true), NB_OK);
    return t;
}

// loss = Σ y·w with w fixed and different per element, so every dy element differs.
static nb_tensor *weighted_sum(nb_graph *g, nb_tensor *y, nb_tensor *w) {
    return nb_sum(g, nb_mul(g, y, w));
}

static bool same_grad_buffer(nb_tensor *a, nb_tensor *b) {
    return nb_tensor_grad(a) != NULL && nb_tensor_grad(a) == nb_tensor_grad(b);
}

// Each tensor's grad after nb_backward equals ref (nb_grad's, taken before) bit for bit: both
// paths run the same kernels in the same order; only the copies differ.
static void expect_grads(nb_tensor *const *t, nb_tensor *const *ref, int n, const char *what) {
    for (int i = 0; i < n; i++)
        for (int64_t e = 0; e < nb_tensor_numel(t[i]); e++) {
            double got = nb_tensor_grad_get(t[i], e), want = nb_tensor_get(ref[i], e);
            if (got != want)
                fail_msg("%s: tensor %d element %lld: nb_backward %.17g, nb_grad %.17g", what, i,
                         (long long)e, got, want);
        }
}

// The reference grads of every kept op output and leaf, by nb_grad (kernels, no sharing).
static void reference(nb_graph *g, nb_tensor *loss, tensors *ts, nb_tensor **ref) {
    for (int i = 0; i < ts->n; i++)
        assert_int_equal(nb_grad(g, &loss, NULL, 1, &ts->t[i], 1, false, &ref[i]), NB_OK);
}

// h = x·1 (an op output), r = h + lin(ln(h)) twice (pre-norm residual blocks), a reshape, and
// a head: the branch outputs and the reshape's input have one consumer and share; h and the
// residual stream r1 feed a norm and an add and must not.
static void residual_stack(nb_dtype dt) {
    nb_rng rng;
    nb_rng_seed(&rng, 5);
    nb_tensor *x = leaf(dt, 3, (int64_t[]){2, 3, 8}, &rng);
    nb_tensor *w1 = leaf(dt, 2, (int64_t[]){8, 8}, &rng),
              *w2 = leaf(dt, 2, (int64_t[]){8, 8}, &rng);
    nb_tensor *wh = leaf(dt, 2, (int64_t[]){5, 8}, &rng);
    nb_tensor *lw = nb_tensor_create(dt, 2, (int64_t[]){6, 5});
    nb_init_uniform(lw, &rng, -1, 1);
    nb_graph *g = nb_graph_create();
    tensors ts = {0};
    nb_tensor *h = keep(&ts, nb_scale(g, x, 1.0));
    nb_tensor *b1 = keep(&ts, nb_linear(g, nb_layer_norm(g, h, 1, NULL, NULL, 1e-5), w1, NULL));
    nb_tensor *r1 = keep(&ts, nb_add(g, h, b1));
    nb_tensor *b2 = keep(&ts, nb_linear(g, nb_layer_norm(g, r1, 1, NULL, NULL, 1e-5), w2, NULL));
    nb_tensor *r2 = keep(&ts, nb_add(g, r1, b2));
    nb_tensor *f = keep(&ts, nb_tanh(g, r2));
    nb_tensor *flat = keep(&ts, nb_reshape(g, f, 2, (int64_t[]){6, 8}));
    nb_tensor *logits = keep(&ts, nb_linear(g, flat, wh, NULL));
    nb_tensor *loss = weighted_sum(g, logits, lw);
    keep(&ts, x), keep(&ts, w1), keep(&ts, w2), keep(&ts, wh);
    nb_tensor *ref[MAX_T];
    reference(g, loss, &ts, ref);
    for (int step = 0; step < 3; step++) {
        for (int i = 0; i < ts.n; i++)
            if (nb_tensor_is_leaf(ts.t[i]))
                nb_tensor_zero_grad(ts.t[i]);
        if (step > 0) // recycled grads hold the last step's values
            assert_int_equal(nb_graph_replay(g), NB_OK);
        assert_int_equal(nb_backward(g, loss), NB_OK);
        expect_grads(ts.t, ref, ts.n, "residual stack");
        assert_true(same_grad_buffer(b1, r1)); // one consumer, dy/db1 = 1
        assert_true(same_grad_buffer(b2, r2));
        assert_true(same_grad_buffer(f, flat)); // reshape
        assert_false(same_grad_buffer(h, r1));  // h also feeds the first norm
        assert_false(same_grad_buffer(r1, r2)); // r1 also feeds the second norm
    }
    // nb_grad after nb_backward: its kernels share nothing (every grad its own again)
    nb_tensor *again = NULL;
    assert_int_equal(nb_grad(g, &loss, NULL, 1, &h, 1, false, &again), NB_OK);
    expect_grads(&h, &ref[0], 1, "nb_grad after nb_backward");
    for (int64_t e = 0; e < nb_tensor_numel(h); e++)
        assert_true(nb_tensor_get(again, e) == nb_tensor_get(ref[0], e));
    // and nb_backward after nb_grad shares again, with the same results
    for (int i = 0; i < ts.n; i++)
        if (nb_tensor_is_leaf(ts.t[i]))
            nb_tensor_zero_grad(ts.t[i]);
    assert_int_equal(nb_backward(g, loss), NB_OK);
    expect_grads(ts.t, ref, ts.n, "nb_backward after nb_grad");
    assert_true(same_grad_buffer(b1, r1));
    nb_graph_destroy(g);
    nb_tensor_destroy(x), nb_tensor_destroy(w1), nb_tensor_destroy(w2), nb_tensor_destroy(wh);
    nb_tensor_destroy(lw);
}

static void residual_stack_f64(void **state) {
    (void)state;
    residual_stack(NB_F64);
}
static void residual_stack_f32(void **state) {
    (void)state;
    residual_stack(NB_F32);
}

// Where sharing would be wrong: the same tensor twice (dy/dt = 2), a broadcast operand (a sum
// over rows), sub's second operand (-dy), an output with a second consumer, and a chain of
// single-consumer adds and reshapes, which shares one buffer all the way down.
static void only_where_safe(nb_dtype dt) {
    nb_rng rng;
    nb_rng_seed(&rng, 9);
    nb_tensor *x = leaf(dt, 2, (int64_t[]){3, 4}, &rng), *v = leaf(dt, 1, (int64_t[]){4}, &rng);
    nb_tensor *lw = nb_tensor_create(dt, 2, (int64_t[]){3, 4});
    nb_init_uniform(lw, &rng, -1, 1);
    nb_graph *g = nb_graph_create();
    tensors ts = {0};
    nb_tensor *a = keep(&ts, nb_scale(g, x, 2.0));
    nb_tensor *twice = keep(&ts, nb_add(g, a, a));                 // a twice: no sharing
    nb_tensor *bv = keep(&ts, nb_scale(g, v, 1.0));                // (4), broadcast below
    nb_tensor *bc = keep(&ts, nb_add(g, twice, bv));               // twice shares, bv does not
    nb_tensor *s1 = keep(&ts, nb_exp(g, x));                       // sub's second operand
    nb_tensor *s0 = keep(&ts, nb_tanh(g, x));                      // sub's first operand: shares
    nb_tensor *d = keep(&ts, nb_sub(g, s0, s1));                   // d = s0 - s1
    nb_tensor *e = keep(&ts, nb_add(g, bc, d));                    // both share
    nb_tensor *fan = keep(&ts, nb_sin(g, x));                      // two consumers
    nb_tensor *m = keep(&ts, nb_add(g, nb_mul(g, fan, fan), fan)); // fan: no sharing
    nb_tensor *r = keep(&ts, nb_reshape(g, nb_add(g, e, m), 2, (int64_t[]){4, 3}));
    nb_tensor *out = keep(&ts, nb_reshape(g, r, 2, (int64_t[]){3, 4}));
    nb_tensor *loss = weighted_sum(g, out, lw);
    keep(&ts, x), keep(&ts, v);
    nb_tensor *ref[MAX_T];
    reference(g, loss, &ts, ref);
    for (int step = 0; step < 2; step++) {
        nb_tensor_zero_grad(x), nb_tensor_zero_grad(v);
        if (step > 0)
            assert_int_equal(nb_graph_replay(g), NB_OK);
        assert_int_equal(nb_backward(g, loss), NB_OK);
        expect_grads(ts.t, ref, ts.n, "only where safe");
        assert_false(same_grad_buffer(a, twice));
        assert_true(same_grad_buffer(twice, bc));
        assert_false(same_grad_buffer(bv, bc));
        assert_true(same_grad_buffer(s0, d));
        assert_false(same_grad_buffer(s1, d));
        assert_true(same_grad_buffer(d, e) && same_grad_buffer(bc, e));
        assert_true(same_grad_buffer(e, out)); // e -> add -> reshape -> reshape -> loss
        assert_false(same_grad_buffer(fan, m));
    }
    nb_graph_destroy(g);
    nb_tensor_destroy(x), nb_tensor_destroy(v), nb_tensor_destroy(lw);
}

static void only_where_safe_f64(void **state) {
    (void)state;
    only_where_safe(NB_F64);
}
static void only_where_safe_f32(void **state) {
    (void)state;
    only_where_safe(NB_F32);
}

// A consumer with 40 inputs (the node's bits cover 8): each input is an op output with
// that one consumer, and none may share (concat's derivative is not the identity anyway); the
// slot index must not be shifted past the bits (UBSan) nor wrap into a bit of a small slot.
static void many_inputs(void **state) {
    (void)state;
    nb_rng rng;
    nb_rng_seed(&rng, 6);
    enum { N = 40 };
    nb_tensor *x = leaf(NB_F64, 1, (int64_t[]){3}, &rng);
    nb_tensor *lw = nb_tensor_create(NB_F64, 1, (int64_t[]){3 * N});
    nb_init_uniform(lw, &rng, -1, 1);
    nb_graph *g = nb_graph_create();
    nb_tensor *parts[N];
    for (int i = 0; i < N; i++)
        parts[i] = nb_scale(g, x, (double)(i + 1));
    nb_tensor *cat = nb_concat(g, parts, N, 0);
    nb_tensor *flat = nb_reshape(g, cat, 1, (int64_t[]){3 * N});
    nb_tensor *loss = weighted_sum(g, flat, lw);
    assert_int_equal(nb_backward(g, loss), NB_OK);
    for (int i = 0; i < N; i++) {
        assert_false(same_grad_buffer(parts[i], cat));
        for (int64_t e = 0; e < 3; e++)
            assert_true(nb_tensor_grad_get(parts[i], e) == nb_tensor_get(lw, 3 * i + e));
    }
    assert_true(same_grad_buffer(cat, flat));
    nb_graph_destroy(g);
    nb_tensor_destroy(x), nb_tensor_destroy(lw);
}

// Two roots on one tape: t's consumers are the add (towards L1) and a product (towards L2,
// recorded before the add). A sweep from L1 shares t's grad with u = t + s; a later sweep from
// L2, which ends before the add, must give t its own buffer back (else it would write dL2/dt
// into u's grad), and a sweep from L1 again shares again.
static void another_root_unshares(void **state) {
    (void)state;
    nb_rng rng;
    nb_rng_seed(&rng, 3);
    nb_tensor *x = leaf(NB_F64, 1, (int64_t[]){6}, &rng),
              *y = leaf(NB_F64, 1, (int64_t[]){6}, &rng);
    nb_tensor *w1 = nb_tensor_create(NB_F64, 1, (int64_t[]){6});
    nb_tensor *w2 = nb_tensor_create(NB_F64, 1, (int64_t[]){6});
    nb_init_uniform(w1, &rng, -1, 1), nb_init_uniform(w2, &rng, -1, 1);
    nb_graph *g = nb_graph_create();
    nb_tensor *t = nb_scale(g, x, 3.0);
    nb_tensor *l2 = weighted_sum(g, nb_square(g, t), w2);
    nb_tensor *u = nb_add(g, t, nb_scale(g, y, 1.0));
    nb_tensor *l1 = weighted_sum(g, u, w1);
    assert_int_equal(nb_backward(g, l1), NB_OK);
    assert_true(same_grad_buffer(t, u));
    for (int64_t e = 0; e < 6; e++) {
        assert_true(nb_tensor_grad_get(u, e) == nb_tensor_get(w1, e));
        assert_true(nb_tensor_grad_get(t, e) == nb_tensor_get(w1, e));
    }
    // nb_grad of both roots: t has two active consumers, so the kernels must not share (u's
    // grad would take t's other contribution)
    nb_tensor *both[2] = {l1, l2}, *wrt[2] = {x, u}, *gr[2] = {NULL, NULL};
    assert_int_equal(nb_grad(g, both, NULL, 2, wrt, 2, false, gr), NB_OK);
    for (int64_t e = 0; e < 6; e++) {
        assert_near(nb_tensor_get(gr[0], e),
                    3 * nb_tensor_get(w1, e) + 6 * nb_tensor_get(t, e) * nb_tensor_get(w2, e),
                    1e-12);
        assert_true(nb_tensor_get(gr[1], e) == nb_tensor_get(w1, e));
    }
    assert_int_equal(nb_backward(g, l1), NB_OK); // shares again
    assert_true(same_grad_buffer(t, u));
    nb_tensor_zero_grad(x);
    assert_int_equal(nb_backward(g, l1), NB_OK);
    assert_int_equal(nb_backward(g, l2), NB_OK);
    assert_false(same_grad_buffer(t, u));
    for (int64_t e = 0; e < 6; e++) {
        double te = nb_tensor_get(t, e);
        // dL2/dt = 2 t w2; u's grad is untouched by this sweep: still dL1/du
        assert_near(nb_tensor_grad_get(t, e), 2 * te * nb_tensor_get(w2, e), 1e-15);
        assert_true(nb_tensor_grad_get(u, e) == nb_tensor_get(w1, e));
        // x: 3 w1 from the first sweep plus 3 · 2 t w2 from the second (leaves accumulate)
        assert_near(nb_tensor_grad_get(x, e),
                    3 * nb_tensor_get(w1, e) + 6 * te * nb_tensor_get(w2, e), 1e-12);
    }
    assert_int_equal(nb_backward(g, l1), NB_OK);
    assert_true(same_grad_buffer(t, u));
    for (int64_t e = 0; e < 6; e++)
        assert_true(nb_tensor_grad_get(t, e) == nb_tensor_get(w1, e));
    nb_graph_destroy(g);
    nb_tensor_destroy(x), nb_tensor_destroy(y), nb_tensor_destroy(w1), nb_tensor_destroy(w2);
}

typedef struct {
    nb_tensor *leaf[4];
    double first[4]; // grad element 0 when the hook fired
    int n;
} ready_log;

static void on_ready(void *ctx, nb_tensor *leaf) {
    ready_log *log = ctx;
    if (log->n < 4) {
        log->leaf[log->n] = leaf;
        log->first[log->n++] = nb_tensor_grad_get(leaf, 0);
    }
}

// Anomaly mode (which reads every input grad after each backward) and the grad-ready hook see
// the shared grads: no false alarm, the same grads as without the hook, and each leaf's grad
// final when its hook fires.
static void anomaly_and_hook(void **state) {
    (void)state;
    nb_rng rng;
    nb_rng_seed(&rng, 4);
    nb_tensor *x = leaf(NB_F64, 2, (int64_t[]){2, 3}, &rng);
    nb_tensor *w = leaf(NB_F64, 2, (int64_t[]){3, 3}, &rng);
    nb_graph *g = nb_graph_create();
    nb_tensor *h = nb_scale(g, x, 1.0);
    nb_tensor *b = nb_linear(g, h, w, NULL);
    nb_tensor *r = nb_add(g, h, b);
    nb_tensor *loss = nb_sum(g, nb_reshape(g, nb_tanh(g, r), 1, (int64_t[]){6}));
    nb_tensor *ts[4] = {x, w, h, b}, *ref[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(nb_grad(g, &loss, NULL, 1, &ts[i], 1, false, &ref[i]), NB_OK);
    nb_graph_set_check_finite(g, true);
    ready_log log = {0};
    nb_graph_set_grad_ready(g, on_ready, &log);
    assert_int_equal(nb_backward(g, loss), NB_OK);
    assert_true(same_grad_buffer(b, r));
    expect_grads(ts, ref, 4, "anomaly mode and hook");
    assert_int_equal(log.n, 2);
    for (int i = 0; i < log.n; i++)
        assert_true(log.first[i] == nb_tensor_grad_get(log.leaf[i], 0));
    nb_graph_destroy(g);
    nb_tensor_destroy(x), nb_tensor_destroy(w);
}

// Second order through shared grads: the gradient is recorded (create_graph) and then
// differentiated with nb_backward, whose sweep shares buffers inside the recorded gradient graph
// (its adds of contributions, its reshapes); the result must equal the same Hessian-vector
// product taken by nb_grad's kernel path, and a central difference of the gradient.
static nb_tensor *f_residual(nb_graph *g, nb_tensor *x, nb_tensor *w) {
    nb_tensor *h = nb_add(g, x, nb_tanh(g, nb_linear(g, x, w, NULL)));
    return nb_sum(g, nb_square(g, nb_reshape(g, h, 1, (int64_t[]){-1})));
}

static void second_order(void **state) {
    (void)state;
    nb_rng rng;
    nb_rng_seed(&rng, 8);
    nb_tensor *x = leaf(NB_F64, 2, (int64_t[]){2, 3}, &rng);
    nb_tensor *w = leaf(NB_F64, 2, (int64_t[]){3, 3}, &rng);
    nb_tensor *v = nb_tensor_create(NB_F64, 2, (int64_t[]){2, 3});
    nb_init_uniform(v, &rng, -1, 1);
    nb_graph *g = nb_graph_create();
    nb_tensor *gx = NULL;
    nb_tensor *loss = f_residual(g, x, w);
    assert_int_equal(nb_grad(g, &loss, NULL, 1, &x, 1, true, &gx), NB_OK);
    nb_tensor *gv = weighted_sum(g, gx, v); // <d loss/dx, v>
    nb_tensor *hv_ref[2];
    nb_tensor *xw[2] = {x, w};
    assert_int_equal(nb_grad(g, &gv, NULL, 1, xw, 2, false, hv_ref), NB_OK);
    assert_int_equal(nb_backward(g, gv), NB_OK);
    for (int i = 0; i < 2; i++)
        for (int64_t e = 0; e < nb_tensor_numel(xw[i]); e++)
            assert_near(nb_tensor_grad_get(xw[i], e), nb_tensor_get(hv_ref[i], e), 1e-12);
    // vᵀ H v from the sweep (x's grad is H v) against the central difference of the gradient
    // along v: (∇f(x + h v) - ∇f(x - h v)) · v / 2h
    double h = 1e-5, vhv = 0, num[2];
    for (int64_t e = 0; e < 6; e++)
        vhv += nb_tensor_grad_get(x, e) * nb_tensor_get(v, e);
    for (int s = 0; s < 2; s++) {
        for (int64_t e = 0; e < 6; e++)
            nb_tensor_set(x, e, nb_tensor_get(x, e) + (s ? -2 : 1) * h * nb_tensor_get(v, e));
        nb_graph_reset(g);
        nb_tensor *l = f_residual(g, x, w);
        nb_tensor *d = NULL;
        assert_int_equal(nb_grad(g, &l, NULL, 1, &x, 1, false, &d), NB_OK);
        num[s] = 0;
        for (int64_t e = 0; e < 6; e++)
            num[s] += nb_tensor_get(d, e) * nb_tensor_get(v, e);
    }
    for (int64_t e = 0; e < 6; e++) // restore x
        nb_tensor_set(x, e, nb_tensor_get(x, e) + h * nb_tensor_get(v, e));
    assert_near(vhv, (num[0] - num[1]) / (2 * h), 1e-6);
    nb_graph_destroy(g);
    nb_tensor_destroy(x), nb_tensor_destroy(w), nb_tensor_destroy(v);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(residual_stack_f64),    cmocka_unit_test(residual_stack_f32),
        cmocka_unit_test(only_where_safe_f64),   cmocka_unit_test(only_where_safe_f32),
        cmocka_unit_test(another_root_unshares), cmocka_unit_test(anomaly_and_hook),
        cmocka_unit_test(second_order),          cmocka_unit_test(many_inputs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
