// nb_graph_set_retain_grads(g, false): nb_backward recycles op outputs' grad buffers within the
// sweep (backward.c). Whatever buffer a grad gets, every leaf's grad must be the same, bit for
// bit, as when every grad keeps its own buffer. Each case runs a model both ways on one tape,
// recorded and replayed (a replayed sweep finds last step's values in the recycled buffers), and
// compares the leaves' grads byte for byte. Cases: a two-block pre-norm transformer as
// examples/charlm builds it (attention, GELU MLP, residual adds, a reshape before the head,
// sparse cross-entropy); fan-out into a consumer that passes its grad through, a tensor used
// twice by one node, a node with more than 8 inputs, an empty output; the grad-ready hook,
// anomaly mode and nb_backward_with; grads accumulated over two sweeps; and switching back.
// tests/test_first_write.c runs its per-op cases in both modes too.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <string.h>

#include "nabla/graph.h"
#include "nabla/ops.h"
#include "nabla/tensor.h"

#define MAX_P 32

typedef struct {
    nb_tensor *p[MAX_P]; // leaves that require grad
    int n;
    nb_tensor *ids; // int32 token ids / targets, no grad
    nb_tensor *tgt;
} params;

static nb_tensor *param(params *ps, nb_dtype dt, int ndim, const int64_t *shape, nb_rng *rng,
                        double lo, double hi) {
    nb_tensor *t = nb_tensor_create(dt, ndim, shape);
    assert_non_null(t);
    nb_init_uniform(t, rng, lo, hi);
    assert_int_equal(nb_tensor_set_requires_grad(t, true), NB_OK);
    assert_true(ps->n < MAX_P);
    ps->p[ps->n++] = t;
    return t;
}

static void free_params(params *ps) {
    for (int i = 0; i < ps->n; i++)
        nb_tensor_destroy(ps->p[i]);
    nb_tensor_destroy(ps->ids), nb_tensor_destroy(ps->tgt);
}

enum { B = 2, T = 5, E = 8, H = 2, V = 7, LAYERS = 2 };

// The charlm model's step on tiny sizes: token + position embedding, pre-norm blocks of causal
// attention (fused QKV) and a GELU MLP with residual adds, final norm, a reshape, the head.
static nb_tensor *charlm_like(nb_graph *g, params *ps, nb_dtype dt, nb_rng *rng) {
    int k = 0;
    if (ps->n == 0) { // first call: make the parameters and data
        param(ps, dt, 2, (int64_t[]){V, E}, rng, -1, 1);
        param(ps, dt, 2, (int64_t[]){T, E}, rng, -1, 1);
        for (int l = 0; l < LAYERS; l++) {
            param(ps, dt, 1, (int64_t[]){E}, rng, 0.5, 1.5);
            param(ps, dt, 1, (int64_t[]){E}, rng, -0.5, 0.5);
            param(ps, dt, 2, (int64_t[]){3 * E, E}, rng, -0.5, 0.5);
            param(ps, dt, 2, (int64_t[]){E, E}, rng, -0.5, 0.5);
            param(ps, dt, 1, (int64_t[]){E}, rng, 0.5, 1.5);
            param(ps, dt, 1, (int64_t[]){E}, rng, -0.5, 0.5);
            param(ps, dt, 2, (int64_t[]){4 * E, E}, rng, -0.5, 0.5);
            param(ps, dt, 1, (int64_t[]){4 * E}, rng, -0.5, 0.5);
            param(ps, dt, 2, (int64_t[]){E, 4 * E}, rng, -0.5, 0.5);
        }
        param(ps, dt, 2, (int64_t[]){V, E}, rng, -0.5, 0.5);
        ps->ids = nb_tensor_create(NB_I32, 2, (int64_t[]){B, T});
        ps->tgt = nb_tensor_create(NB_I32, 1, (int64_t[]){B * T});
        for (int64_t i = 0; i < B * T; i++) {
            nb_tensor_set(ps->ids, i, (double)((i * 3 + 1) % V));
            nb_tensor_set(ps->tgt, i, (double)((i * 5 + 2) % V));
        }
    }
    nb_tensor *const *p = ps->p;
    nb_tensor *h = nb_embedding(g, p[k++], ps->ids); // (B, T, E)
    h = nb_add(g, h, p[k++]);                        // + (T, E)
    for (int l = 0; l < LAYERS; l++) {
        nb_tensor *a = nb_layer_norm(g, h, 1, p[k], p[k + 1], 1e-5);
        a = nb_attention_qkv(g, nb_linear(g, a, p[k + 2], NULL), H, true, 0.0, NULL);
        h = nb_add(g, h, nb_linear(g, a, p[k + 3], NULL));
        nb_tensor *f = nb_layer_norm(g, h, 1, p[k + 4], p[k + 5], 1e-5);
        f = nb_linear(g, nb_gelu(g, nb_linear(g, f, p[k + 6], p[k + 7])), p[k + 8], NULL);
        h = nb_add(g, h, f);
        k += 9;
    }
    h = nb_reshape(g, h, 2, (int64_t[]){B * T, E});
    return nb_sparse_cross_entropy_logits(g, nb_linear(g, h, p[k], NULL), ps->tgt, NB_REDUCE_MEAN);
}

// Fan-out and odd shapes: u feeds a scale (earlier on the tape) and an add that passes its grad
// through (the add is u's last user, so the add's buffer becomes u's, and the scale adds into
// it); v is used twice by one mul; a concat of 10 op outputs (slots past 8); an empty slice.
static nb_tensor *odd_graph(nb_graph *g, params *ps, nb_dtype dt, nb_rng *rng) {
    if (ps->n == 0) {
        param(ps, dt, 2, (int64_t[]){3, 4}, rng, -1, 1);
        param(ps, dt, 2, (int64_t[]){3, 4}, rng, -1, 1);
    }
    nb_tensor *x = ps->p[0], *y = ps->p[1];
    nb_tensor *u = nb_tanh(g, x);
    nb_tensor *s = nb_scale(g, u, 3.0);
    nb_tensor *v = nb_sigmoid(g, y);
    nb_tensor *r = nb_add(g, u, nb_mul(g, v, v));
    nb_tensor *parts[10];
    for (int i = 0; i < 10; i++)
        parts[i] = nb_scale(g, i % 2 ? r : s, (double)(i + 1));
    nb_tensor *cat = nb_concat(g, parts, 10, 0);  // (30, 4)
    nb_tensor *empty = nb_slice(g, cat, 0, 7, 7); // (0, 4)
    nb_tensor *w = nb_concat(g, (nb_tensor *[]){cat, empty}, 2, 0);
    return nb_sum(g, nb_mul(g, nb_gelu(g, w), nb_exp(g, nb_scale(g, w, -0.5))));
}

typedef nb_tensor *(*model_fn)(nb_graph *g, params *ps, nb_dtype dt, nb_rng *rng);

// The leaves' grads after one sweep (zeroed first unless `accumulate`), as bytes.
static void sweep(nb_graph *g, nb_tensor *loss, params *ps, bool accumulate, unsigned char **out) {
    for (int i = 0; i < ps->n && !accumulate; i++)
        nb_tensor_zero_grad(ps->p[i]);
    assert_int_equal(nb_backward(g, loss), NB_OK);
    for (int i = 0; i < ps->n; i++) {
        size_t n = (size_t)nb_tensor_numel(ps->p[i]) * nb_dtype_size(nb_tensor_dtype(ps->p[i]));
        memcpy(out[i], nb_tensor_grad(ps->p[i]), n);
    }
}

static unsigned char **grad_store(params *ps) {
    unsigned char **o = test_calloc((size_t)ps->n, sizeof *o);
    for (int i = 0; i < ps->n; i++)
        o[i] = test_malloc((size_t)nb_tensor_numel(ps->p[i]) *
                           nb_dtype_size(nb_tensor_dtype(ps->p[i])));
    return o;
}
static void grad_store_free(params *ps, unsigned char **o) {
    for (int i = 0; i < ps->n; i++)
        test_free(o[i]);
    test_free(o);
}
static void expect_same(params *ps, unsigned char **a, unsigned char **b, const char *what) {
    for (int i = 0; i < ps->n; i++) {
        size_t n = (size_t)nb_tensor_numel(ps->p[i]) * nb_dtype_size(nb_tensor_dtype(ps->p[i]));
        if (memcmp(a[i], b[i], n) != 0)
            fail_msg("%s: leaf %d's grad differs between kept and recycled grads", what, i);
    }
}

// Kept vs recycled on one tape: recorded, then replayed twice, alternating the modes; then two
// sweeps accumulating into the leaves' grads (no zeroing between) both ways.
static void both_ways(model_fn f, nb_dtype dt, const char *what) {
    nb_rng rng;
    nb_rng_seed(&rng, 23);
    params ps = {0};
    nb_graph *g = nb_graph_create();
    nb_tensor *loss = f(g, &ps, dt, &rng);
    assert_non_null(loss);
    unsigned char **kept = grad_store(&ps), **rec = grad_store(&ps);
    for (int step = 0; step < 3; step++) {
        if (step > 0)
            assert_int_equal(nb_graph_replay(g), NB_OK);
        nb_graph_set_retain_grads(g, true);
        sweep(g, loss, &ps, false, kept);
        nb_graph_set_retain_grads(g, false);
        assert_false(nb_graph_retain_grads(g));
        sweep(g, loss, &ps, false, rec);
        expect_same(&ps, kept, rec, what);
        assert_null(nb_tensor_grad(loss)); // an op output: recycled
    }
    nb_graph_set_retain_grads(g, true);
    sweep(g, loss, &ps, false, kept);
    sweep(g, loss, &ps, true, kept);
    nb_graph_set_retain_grads(g, false);
    sweep(g, loss, &ps, false, rec);
    sweep(g, loss, &ps, true, rec);
    expect_same(&ps, kept, rec, what);
    nb_graph_set_retain_grads(g, true); // back: op outputs' grads readable again
    sweep(g, loss, &ps, false, kept);
    assert_non_null(nb_tensor_grad(loss));
    assert_true(nb_tensor_grad_get(loss, 0) == 1.0);
    grad_store_free(&ps, kept), grad_store_free(&ps, rec);
    nb_graph_destroy(g);
    free_params(&ps);
}

static void charlm_f64(void **state) {
    (void)state;
    both_ways(charlm_like, NB_F64, "charlm-like f64");
}
static void charlm_f32(void **state) {
    (void)state;
    both_ways(charlm_like, NB_F32, "charlm-like f32");
}
static void odd_f64(void **state) {
    (void)state;
    both_ways(odd_graph, NB_F64, "odd graph f64");
}
static void odd_f32(void **state) {
    (void)state;
    both_ways(odd_graph, NB_F32, "odd graph f32");
}

typedef struct {
    int n;
} ready_count;
static void on_ready(void *ctx, nb_tensor *leaf) {
    (void)leaf;
    ((ready_count *)ctx)->n++;
}

// The grad-ready hook (once per leaf) and anomaly mode with recycling; nb_backward_with from a
// non-scalar output, whose grad run seeds. Leaves' grads as when kept.
static void hook_anomaly_with(void **state) {
    (void)state;
    nb_rng rng;
    nb_rng_seed(&rng, 29);
    params ps = {0};
    nb_graph *g = nb_graph_create();
    nb_tensor *loss = charlm_like(g, &ps, NB_F64, &rng);
    unsigned char **kept = grad_store(&ps), **rec = grad_store(&ps);
    sweep(g, loss, &ps, false, kept);
    ready_count rc = {0};
    nb_graph_set_grad_ready(g, on_ready, &rc);
    nb_graph_set_check_finite(g, true);
    nb_graph_set_retain_grads(g, false);
    sweep(g, loss, &ps, false, rec);
    expect_same(&ps, kept, rec, "hook and anomaly mode");
    assert_int_equal(rc.n, ps.n);
    nb_graph_set_grad_ready(g, NULL, NULL);
    nb_graph_set_check_finite(g, false);
    nb_graph_destroy(g);
    grad_store_free(&ps, kept), grad_store_free(&ps, rec);
    free_params(&ps);

    // nb_backward_with from a non-scalar output
    nb_rng_seed(&rng, 31);
    params q = {0};
    g = nb_graph_create();
    nb_tensor *x = param(&q, NB_F32, 2, (int64_t[]){4, 6}, &rng, -1, 1);
    nb_tensor *w = param(&q, NB_F32, 2, (int64_t[]){5, 6}, &rng, -1, 1);
    nb_tensor *l = nb_linear(g, x, w, NULL);
    nb_tensor *y = nb_add(g, nb_gelu(g, l), nb_tanh(g, l)); // (4, 5)
    nb_tensor *go = nb_tensor_create(NB_F32, 2, (int64_t[]){4, 5});
    nb_init_uniform(go, &rng, -1, 1);
    kept = grad_store(&q), rec = grad_store(&q);
    for (int mode = 0; mode < 2; mode++) {
        nb_graph_set_retain_grads(g, mode == 0);
        for (int i = 0; i < q.n; i++)
            nb_tensor_zero_grad(q.p[i]);
        assert_int_equal(nb_backward_with(g, y, go), NB_OK);
        for (int i = 0; i < q.n; i++)
            memcpy(mode ? rec[i] : kept[i], nb_tensor_grad(q.p[i]),
                   (size_t)nb_tensor_numel(q.p[i]) * sizeof(float));
    }
    expect_same(&q, kept, rec, "nb_backward_with");
    grad_store_free(&q, kept), grad_store_free(&q, rec);
    nb_tensor_destroy(go);
    nb_graph_destroy(g);
    free_params(&q);
}

// A step recorded once and replayed many times (no reset) runs nb_backward again each time: the
// sweep's plans (recycling, grad-ready hook) must reuse their memory rather than take more of the
// arena per sweep. Under a 1 MiB budget, 20000 replayed sweeps of a ~20-op model would need
// ~15 MB if each took its own.
static void replay_loop_keeps_its_memory(void **state) {
    (void)state;
    nb_rng rng;
    nb_rng_seed(&rng, 37);
    params ps = {0};
    nb_graph *g = nb_graph_create();
    nb_graph_set_limits(g, NB_GRAPH_DEFAULT_MAX_OPS, (size_t)1 << 20);
    nb_tensor *loss = odd_graph(g, &ps, NB_F32, &rng);
    assert_non_null(loss);
    ready_count rc = {0};
    nb_graph_set_grad_ready(g, on_ready, &rc);
    nb_graph_set_retain_grads(g, false);
    for (int i = 0; i < 20000; i++) {
        if (nb_graph_replay(g) != NB_OK || nb_backward(g, loss) != NB_OK)
            fail_msg("replayed sweep %d: %s", i, nb_graph_error(g));
    }
    assert_int_equal(rc.n, 20000 * ps.n);
    nb_graph_destroy(g);
    free_params(&ps);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(charlm_f64),        cmocka_unit_test(charlm_f32),
        cmocka_unit_test(odd_f64),           cmocka_unit_test(odd_f32),
        cmocka_unit_test(hook_anomaly_with), cmocka_unit_test(replay_loop_keeps_its_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
