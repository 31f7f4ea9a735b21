// dropout: the mask's statistics and scaling, bitwise reproducibility from a seed (and across
// thread counts), the gradient equals the mask, a replay draws a new mask, eval mode is the
// identity, p = 1 zeroes.
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "support/opcheck.h"

static nb_tensor *ones(nb_dtype dt, int64_t n, bool grad) {
    nb_tensor *t = nb_tensor_create(dt, 2, (int64_t[]){n / 100, 100});
    for (int64_t i = 0; i < n; i++)
        nb_tensor_set(t, i, 1.0);
    nb_tensor_set_requires_grad(t, grad);
    return t;
}

static void dropout_mask_scaling_and_gradient(void **state) {
    (void)state;
    const int64_t n = 100000;
    nb_tensor *x = ones(NB_F32, n, true);
    nb_graph *g = nb_graph_create();
    nb_rng rng;
    nb_rng_seed(&rng, 5);
    nb_tensor *y = nb_dropout(g, x, 0.3, true, &rng);
    assert_non_null(y);
    int64_t kept = 0;
    for (int64_t i = 0; i < n; i++) {
        double v = nb_tensor_get(y, i);
        assert_true(v == 0.0 || v == (double)(float)(1.0 / 0.7));
        kept += v != 0;
    }
    // Binomial(1e5, 0.7): sd 145; 5 sd either side.
    assert_true(kept > 70000 - 725 && kept < 70000 + 725);
    assert_int_equal(nb_backward(g, nb_sum(g, y)), NB_OK);
    for (int64_t i = 0; i < n; i++)
        assert_true(nb_tensor_grad_get(x, i) == nb_tensor_get(y, i));
    nb_graph_destroy(g);
    nb_tensor_destroy(x);
}

static void dropout_reproducible(void **state) {
    (void)state;
    const int64_t n = 50000;
    nb_tensor *x = ones(NB_F64, n, false);
    double first[3] = {0};
    for (int run = 0; run < 3; run++) {
        nb_set_num_threads(run == 2 ? 1 : 2);
        nb_graph *g = nb_graph_create();
        nb_rng rng;
        nb_rng_seed(&rng, 99);
        nb_tensor *y = nb_dropout(g, x, 0.5, true, &rng);
        double h = 0;
        for (int64_t i = 0; i < n; i++)
            h = h * 1.0000001 + nb_tensor_get(y, i) * (double)(i % 13);
        first[run] = h;
        nb_graph_destroy(g);
    }
    nb_set_num_threads(2);
    assert_true(first[0] == first[1] && first[1] == first[2]);
    // A different seed gives a different mask.
    nb_graph *g = nb_graph_create();
    nb_rng rng;
    nb_rng_seed(&rng, 100);
    nb_tensor *y = nb_dropout(g, x, 0.5, true, &rng);
    double h = 0;
    for (int64_t i = 0; i < n; i++)
        h = h * 1.0000001 + nb_tensor_get(y, i) * (double)(i % 13);
    assert_true(h != first[0]);
    nb_graph_destroy(g);
    nb_tensor_destroy(x);
}

// A replayed step is the next training step: PyTorch draws a mask per forward, so the replay
// draws a new one from the same generator (the mask a second recording would draw), and
// backward after it uses that new mask. Bitwise: the replay equals a fresh recording on a
// generator that has drawn the first mask already.
static void dropout_replay_draws_a_new_mask(void **state) {
    (void)state;
    const int64_t n = 1000;
    for (int dt = 0; dt < 2; dt++) {
        nb_dtype dtype = dt ? NB_F64 : NB_F32;
        nb_tensor *x = ones(dtype, n, true);
        nb_graph *g = nb_graph_create(), *ref_g = nb_graph_create();
        nb_rng rng, ref;
        nb_rng_seed(&rng, 21);
        nb_rng_seed(&ref, 21);
        nb_tensor *y = nb_dropout(g, x, 0.5, true, &rng);
        nb_tensor *loss = nb_sum(g, y);
        nb_tensor *first = nb_dropout(ref_g, x, 0.5, true, &ref);
        nb_tensor *second = nb_dropout(ref_g, x, 0.5, true, &ref);
        assert_non_null(loss);
        assert_non_null(second);
        assert_int_equal(nb_graph_replay(g), NB_OK);
        int64_t moved = 0;
        for (int64_t i = 0; i < n; i++) {
            moved += nb_tensor_get(y, i) != nb_tensor_get(first, i);
            assert_true(nb_tensor_get(y, i) == nb_tensor_get(second, i));
        }
        assert_true(moved > 300); // two independent halves differ in about n / 2 places
        assert_memory_equal(&rng, &ref, sizeof rng);
        assert_int_equal(nb_backward(g, loss), NB_OK);
        for (int64_t i = 0; i < n; i++)
            assert_true(nb_tensor_grad_get(x, i) == nb_tensor_get(second, i));
        nb_graph_destroy(g);
        nb_graph_destroy(ref_g);
        nb_tensor_destroy(x);
    }
}

static void dropout_eval_and_edges(void **state) {
    (void)state;
    nb_tensor *x = ones(NB_F32, 200, true);
    nb_graph *g = nb_graph_create();
    nb_rng rng;
    nb_rng_seed(&rng, 1);
    nb_rng before = rng;
    assert_ptr_equal(nb_dropout(g, x, 0.5, false, &rng), x);
    assert_ptr_equal(nb_dropout(g, x, 0.0, true, &rng), x);
    assert_memory_equal(&rng, &before, sizeof rng); // nothing drawn
    nb_tensor *z = nb_dropout(g, x, 1.0, true, &rng);
    assert_non_null(z);
    for (int64_t i = 0; i < 200; i++)
        assert_true(nb_tensor_get(z, i) == 0.0);
    // Bad p is refused even in eval mode.
    assert_true(oc_expect_error(g, nb_dropout(g, x, -0.1, false, &rng), NB_ERR_ARG,
                                "dropout:", "p = -0.1", NULL));
    nb_graph_destroy(g);
    nb_tensor_destroy(x);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(dropout_mask_scaling_and_gradient),
        cmocka_unit_test(dropout_reproducible),
        cmocka_unit_test(dropout_replay_draws_a_new_mask),
        cmocka_unit_test(dropout_eval_and_edges),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
