// Tests for nabla/dist.h in one process (with or without MPI built in: a world of one rank):
// the slicing of a global batch, the reducer's buckets and its refusals (bad weight, zero total
// weight, a parameter without a grad), metrics, agreement, and no allocation per all-reduce.
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "nabla.h"
#include "support/alloc_count.h"

static nb_dist *world;

static void test_slice(void **state) {
    (void)state;
    // Every item in exactly one slice, contiguous and in rank order, sizes differ by <= 1.
    for (int size = 1; size <= 9; size++)
        for (int64_t n = 0; n <= 70; n++) {
            int64_t next = 0, lo = n, hi = 0;
            for (int r = 0; r < size; r++) {
                int64_t off, cnt;
                nb_dist_slice(n, r, size, &off, &cnt);
                assert_int_equal(off, next);
                next += cnt;
                lo = cnt < lo ? cnt : lo;
                hi = cnt > hi ? cnt : hi;
            }
            assert_int_equal(next, n);
            assert_true(hi - lo <= 1);
        }
    int64_t off = 5, cnt = 5;
    nb_dist_slice(64, 3, 3, &off, &cnt); // rank out of range: nothing
    assert_int_equal(cnt, 0);
    nb_dist_slice(64, 0, 3, &off, &cnt);
    assert_int_equal(cnt, 22);
    nb_dist_slice(64, 2, 3, &off, &cnt);
    assert_int_equal(off, 43);
    assert_int_equal(cnt, 21);
}

static void test_world(void **state) {
    (void)state;
    assert_int_equal(nb_dist_size(world), 1);
    assert_int_equal(nb_dist_rank(world), 0);
    assert_true(nb_dist_is_root(world));
    assert_int_equal(nb_dist_set_timeout(world, 0), NB_ERR_ARG);
    assert_int_equal(nb_dist_set_timeout(world, NAN), NB_ERR_ARG);
    assert_int_equal(nb_dist_set_timeout(world, 30), NB_OK);
    assert_true(nb_dist_timeout(world) == 30);
    double v[3] = {1, 2.5, -3};
    assert_int_equal(nb_dist_allreduce_sum(world, v, 3), NB_OK);
    assert_true(v[0] == 1 && v[1] == 2.5 && v[2] == -3);
    assert_int_equal(nb_dist_barrier(world), NB_OK);
    assert_int_equal(nb_dist_agree(world, NB_OK, "x"), NB_OK);
    assert_int_equal(nb_dist_agree(world, NB_ERR_IO, "reading data"), NB_ERR_IO);
    assert_non_null(strstr(nb_last_error(), "reading data failed on rank(s) 0"));
    assert_null(nb_dist_reducer_create(world, NULL, 0));
    assert_int_equal(nb_dist_broadcast_params(NULL, NULL), NB_ERR_NULL);
}

// Three parameters: two float32 and one float64, so at least two buckets.
typedef struct {
    nb_tensor *t[3];
    nb_params *ps;
} three;

static three make_three(void) {
    three s;
    s.t[0] = nb_tensor_create(NB_F32, 2, (int64_t[]){4, 5});
    s.t[1] = nb_tensor_create(NB_F32, 1, (int64_t[]){4});
    s.t[2] = nb_tensor_create(NB_F64, 1, (int64_t[]){3});
    s.ps = nb_params_create();
    const char *names[3] = {"a", "b", "c"};
    for (int i = 0; i < 3; i++) {
        nb_tensor_set_requires_grad(s.t[i], true);
        assert_int_equal(nb_params_add(s.ps, NULL, names[i], s.t[i], NB_PARAM), NB_OK);
    }
    return s;
}

static void free_three(three *s) {
    nb_params_destroy(s->ps);
    for (int i = 0; i < 3; i++)
        nb_tensor_destroy(s->t[i]);
}

// Gives every parameter a grad through a real backward: loss = Σ_i sum(t_i * k).
static void backward_all(three *s, double k) {
    nb_graph *g = nb_graph_create();
    nb_tensor *loss = NULL;
    for (int i = 0; i < 3; i++) {
        nb_tensor *term = nb_sum(g, nb_scale(g, s->t[i], k));
        if (nb_tensor_dtype(term) == NB_F32 && i < 2)
            loss = loss ? nb_add(g, loss, term) : term;
        else
            assert_int_equal(nb_backward(g, term), NB_OK);
    }
    assert_int_equal(nb_backward(g, loss), NB_OK);
    nb_graph_destroy(g);
}

static void test_reducer(void **state) {
    (void)state;
    three s = make_three();
    // 16-byte buckets: "c" (24 bytes) alone, "b" (16) alone, "a" (80) alone.
    nb_dist_reducer *r = nb_dist_reducer_create(world, s.ps, 16);
    assert_non_null(r);
    assert_int_equal(nb_dist_reducer_buckets(r), 3);
    nb_dist_reducer *big = nb_dist_reducer_create(world, s.ps, 0);
    assert_int_equal(nb_dist_reducer_buckets(big), 2); // one per dtype
    nb_dist_reducer_destroy(big);

    // No grads anywhere: nothing to do but the weight check.
    assert_int_equal(nb_dist_allreduce_grads(r, 0), NB_ERR_ARG);
    assert_non_null(strstr(nb_last_error(), "weights sum to 0"));
    assert_int_equal(nb_dist_allreduce_grads(r, 1), NB_OK); // no grads: left absent
    assert_null(nb_tensor_grad(s.t[0]));

    backward_all(&s, 3.0);
    assert_int_equal(nb_dist_allreduce_grads(r, -1), NB_ERR_ARG);
    assert_non_null(strstr(nb_last_error(), "weight -1 on rank 0"));
    assert_int_equal(nb_dist_allreduce_grads(r, INFINITY), NB_ERR_ARG);
    assert_true(nb_tensor_grad_get(s.t[0], 0) == 3.0); // unchanged by the refusals
    // One rank: Σ w g / Σ w = g (7 · 3 / 7 rounds back to 3 exactly).
    tc_count_allocs_start();
    long before = tc_allocs();
    assert_int_equal(nb_dist_allreduce_grads(r, 7), NB_OK);
    long allocs = tc_allocs() - before;
    tc_count_allocs_stop();
    assert_int_equal(allocs, 0);
    for (int i = 0; i < 3; i++)
        assert_true(nb_tensor_grad_get(s.t[i], 1) == 3.0);
    nb_dist_stats st;
    nb_dist_reducer_stats(r, &st);
    assert_int_equal(st.calls, 2);
    nb_dist_reducer_reset_stats(r);
    nb_dist_reducer_stats(r, &st);
    assert_int_equal(st.calls, 0);
    nb_dist_reducer_destroy(r);

    // Broadcasting in a one-rank world keeps the values; the fingerprint passes.
    assert_int_equal(nb_dist_broadcast_params(world, s.ps), NB_OK);
    free_three(&s);
}

int main(void) {
    world = nb_dist_init(NULL, NULL);
    if (!world) {
        fprintf(stderr, "nb_dist_init: %s\n", nb_last_error());
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_slice),
        cmocka_unit_test(test_world),
        cmocka_unit_test(test_reducer),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    nb_dist_finalize(world);
    return rc;
}
