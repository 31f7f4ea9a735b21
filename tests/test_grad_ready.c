// The grad-ready hook (nb_graph_set_grad_ready): each parameter reached by backward is reported
// once, when its grad is final (a copy taken in the hook equals the grad after backward, bit for
// bit), early (other grads are still changing then), never for a leaf backward does not reach,
// again after nb_graph_reset and under nb_graph_replay, and not at all once removed.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "nabla.h"

#define NP 5 // w1, b1, w2, b2, unused

typedef struct {
    nb_tensor *p[NP];
    int calls[NP];
    int order[4 * NP], n_order;
    double *snap[NP];      // each parameter's grad when the hook saw it
    double *w1_at_b2;      // w1's grad when b2 was reported
    bool saw_w1_before_b2; // order check
} watch;

static int index_of(watch *w, const nb_tensor *t) {
    for (int i = 0; i < NP; i++)
        if (w->p[i] == t)
            return i;
    return -1;
}

static void on_ready(void *ctx, nb_tensor *leaf) {
    watch *w = ctx;
    int i = index_of(w, leaf);
    assert_true(i >= 0);
    w->calls[i]++;
    w->order[w->n_order++] = i;
    memcpy(w->snap[i], nb_tensor_grad(leaf), (size_t)nb_tensor_numel(leaf) * sizeof(double));
    if (i == 3) {
        memcpy(w->w1_at_b2, nb_tensor_grad(w->p[0]),
               (size_t)nb_tensor_numel(w->p[0]) * sizeof(double));
        w->saw_w1_before_b2 = w->calls[0] > 0;
    }
}

// loss = Σ (relu(x w1 + b1) w2 + b2)² + Σ w1·w1: w1 feeds the first node and a late one.
static nb_tensor *loss_of(nb_graph *g, watch *w, nb_tensor *x) {
    nb_tensor *h = nb_relu(g, nb_add(g, nb_matmul(g, x, w->p[0]), w->p[1]));
    nb_tensor *y = nb_add(g, nb_matmul(g, h, w->p[2]), w->p[3]);
    return nb_add(g, nb_sum(g, nb_mul(g, y, y)), nb_sum(g, nb_mul(g, w->p[0], w->p[0])));
}

static void check_step(watch *w) {
    for (int i = 0; i < 4; i++) {
        assert_int_equal(w->calls[i], 1);
        assert_memory_equal(w->snap[i], nb_tensor_grad(w->p[i]),
                            (size_t)nb_tensor_numel(w->p[i]) * sizeof(double));
    }
    assert_int_equal(w->calls[4], 0); // not reached by backward
    assert_int_equal(w->n_order, 4);
    // b2 is final long before w1 (whose last contribution is the first node): at b2's report,
    // w1's grad was still incomplete.
    assert_false(w->saw_w1_before_b2);
    assert_memory_not_equal(w->w1_at_b2, nb_tensor_grad(w->p[0]),
                            (size_t)nb_tensor_numel(w->p[0]) * sizeof(double));
    assert_int_equal(w->order[3], 0); // w1 last
}

static void reset_watch(watch *w) {
    memset(w->calls, 0, sizeof w->calls);
    w->n_order = 0;
    w->saw_w1_before_b2 = false;
}

static void grad_ready_reports_final_grads(void **state) {
    (void)state;
    nb_rng rng;
    nb_rng_seed(&rng, 3);
    watch w;
    memset(&w, 0, sizeof w);
    const int64_t shapes[NP][2] = {{4, 6}, {1, 6}, {6, 3}, {1, 3}, {2, 2}};
    for (int i = 0; i < NP; i++) {
        w.p[i] = nb_tensor_create(NB_F64, 2, shapes[i]);
        assert_non_null(w.p[i]);
        nb_init_uniform(w.p[i], &rng, -1, 1);
        nb_tensor_set_requires_grad(w.p[i], true);
        w.snap[i] = calloc((size_t)nb_tensor_numel(w.p[i]), sizeof(double));
    }
    w.w1_at_b2 = calloc(24, sizeof(double));
    nb_tensor *x = nb_tensor_create(NB_F64, 2, (int64_t[]){5, 4});
    nb_init_uniform(x, &rng, -1, 1);
    nb_graph *g = nb_graph_create();
    nb_graph_set_grad_ready(g, on_ready, &w);
    for (int step = 0; step < 2; step++) { // the hook survives nb_graph_reset
        nb_graph_reset(g);
        for (int i = 0; i < NP; i++)
            if (nb_tensor_grad(w.p[i]))
                memset(nb_tensor_grad(w.p[i]), 0, (size_t)nb_tensor_numel(w.p[i]) * 8);
        reset_watch(&w);
        nb_tensor *loss = loss_of(g, &w, x);
        assert_int_equal(nb_backward(g, loss), NB_OK);
        check_step(&w);
        // The same tape replayed on other inputs: reported again, final again.
        nb_init_uniform(x, &rng, -1, 1);
        assert_int_equal(nb_graph_replay(g), NB_OK);
        for (int i = 0; i < 4; i++)
            memset(nb_tensor_grad(w.p[i]), 0, (size_t)nb_tensor_numel(w.p[i]) * 8);
        reset_watch(&w);
        assert_int_equal(nb_backward(g, loss), NB_OK);
        check_step(&w);
    }
    nb_graph_set_grad_ready(g, NULL, &w); // removed: no more reports
    reset_watch(&w);
    nb_graph_reset(g);
    assert_int_equal(nb_backward(g, loss_of(g, &w, x)), NB_OK);
    assert_int_equal(w.n_order, 0);
    nb_graph_set_grad_ready(NULL, on_ready, &w); // NULL graph: ignored
    nb_graph_destroy(g);
    nb_tensor_destroy(x);
    for (int i = 0; i < NP; i++) {
        nb_tensor_destroy(w.p[i]);
        free(w.snap[i]);
    }
    free(w.w1_at_b2);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(grad_ready_reports_final_grads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
