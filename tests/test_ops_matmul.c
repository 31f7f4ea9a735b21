// src/ops/matmul.c (and gemm.c, which serves it): matmul and matmul_t: values computed by hand,
// gradients against the formulas, every transpose and broadcast combination against a naive
// reference on the tiny, folded and batched-BLAS paths, and bad input.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdlib.h>

#include "support/opcheck.h"
#include "tensor/parallel.h" // nb__gemm_batch_parallel_min, nb__omp_passive

static nb_tensor *mk(nb_dtype dt, int64_t r, int64_t c, const double *v, bool grad) {
    nb_tensor *t = nb_tensor_create(dt, 2, (int64_t[]){r, c});
    nb_tensor_copy_in(t, v, NB_F64, r * c);
    nb_tensor_set_requires_grad(t, grad);
    return t;
}

static void matmul_values_and_grads(void **state) {
    (void)state;
    for (int d = 0; d < 2; d++) {
        nb_dtype dt = d ? NB_F64 : NB_F32;
        nb_tensor *a = mk(dt, 2, 3, (double[]){1, 2, 3, 4, 5, 6}, true);
        nb_tensor *b = mk(dt, 3, 1, (double[]){1, 0, -1}, true);
        nb_graph *g = nb_graph_create();
        nb_tensor *y = nb_matmul(g, a, b);
        assert_int_equal(nb_tensor_dim(y, 0), 2);
        assert_int_equal(nb_tensor_dim(y, 1), 1);
        assert_true(nb_tensor_get(y, 0) == -2.0 && nb_tensor_get(y, 1) == -2.0);
        nb_tensor *up = mk(dt, 2, 1, (double[]){1, 2}, false);
        assert_int_equal(nb_backward_with(g, y, up), NB_OK);
        // da = dy bᵀ = [[1, 0, -1], [2, 0, -2]];  db = aᵀ dy = [9, 12, 15]
        const double da[] = {1, 0, -1, 2, 0, -2}, db[] = {9, 12, 15};
        for (int i = 0; i < 6; i++)
            assert_true(nb_tensor_grad_get(a, i) == da[i]);
        for (int i = 0; i < 3; i++)
            assert_true(nb_tensor_grad_get(b, i) == db[i]);
        nb_graph_destroy(g);
        nb_tensor_destroy(a);
        nb_tensor_destroy(b);
        nb_tensor_destroy(up);
    }
}

static void bad_shapes_record_errors(void **state) {
    (void)state;
    nb_tensor *x = nb_tensor_create(NB_F32, 2, (int64_t[]){64, 784});
    nb_tensor *w = nb_tensor_create(NB_F32, 2, (int64_t[]){128, 748});
    nb_tensor *v = nb_tensor_create(NB_F32, 1, (int64_t[]){784});
    nb_graph *g = nb_graph_create();
    assert_true(oc_expect_error(g, nb_matmul(g, w, v), NB_ERR_SHAPE, "matmul",
                                "inner dimensions differ", "(128, 748) x (784)", NULL));
    nb_graph_reset(g);
    assert_true(oc_expect_error(g, nb_matmul(g, x, w), NB_ERR_SHAPE, "matmul",
                                "inner dimensions differ", "(64, 784) x (128, 748)", NULL));
    nb_graph_reset(g);
    assert_true(oc_expect_error(g, nb_matmul_t(g, x, w, false, true), NB_ERR_SHAPE, "matmul",
                                "inner dimensions differ", "(64, 784) x (128, 748)ᵀ", NULL));
    nb_graph_reset(g);
    nb_tensor *b3 = nb_tensor_create(NB_F32, 3, (int64_t[]){3, 4, 5});
    nb_tensor *c3 = nb_tensor_create(NB_F32, 3, (int64_t[]){2, 5, 6});
    assert_true(oc_expect_error(g, nb_matmul(g, b3, c3), NB_ERR_SHAPE, "matmul",
                                "batch dimensions do not broadcast", "(3, 4, 5) x (2, 5, 6)",
                                NULL));
    nb_graph_reset(g);
    assert_true(oc_expect_error(g, nb_matmul_t(g, b3, c3, false, true), NB_ERR_SHAPE, "matmul",
                                "inner dimensions differ", "(3, 4, 5) x (2, 5, 6)ᵀ", NULL));
    nb_graph_reset(g);
    nb_tensor *s0 = nb_tensor_create(NB_F32, 0, NULL);
    assert_true(oc_expect_error(g, nb_matmul(g, s0, v), NB_ERR_SHAPE, "matmul", "at least 1 dim",
                                "() x (784)", NULL));
    nb_graph_reset(g);
    assert_true(oc_expect_error(g, nb_matmul_t(g, v, v, true, false), NB_ERR_SHAPE, "matmul",
                                "transposed operand needs at least 2 dims", NULL));
    nb_graph_reset(g);
    nb_tensor *d64 = nb_tensor_create(NB_F64, 2, (int64_t[]){784, 3});
    assert_true(oc_expect_error(g, nb_matmul(g, x, d64), NB_ERR_DTYPE, "matmul", NULL));
    nb_graph_reset(g);
    assert_true(oc_expect_error(g, nb_matmul(g, NULL, x), NB_ERR_NULL, "matmul", NULL));
    nb_graph_destroy(g);
    nb_tensor_destroy(b3);
    nb_tensor_destroy(c3);
    nb_tensor_destroy(s0);
    nb_tensor_destroy(d64);
    nb_tensor_destroy(x);
    nb_tensor_destroy(w);
    nb_tensor_destroy(v);
}

// Naive reference for nb_matmul_t on (B1, B2, ., .) operands with broadcasting: y and, for an
// upstream gradient dy, da and db, all by plain loops over the definition.
typedef struct {
    int64_t ab[2], bb[2]; // batch dims of a and b (each 1 or the output's)
    int64_t m, k, n;
    bool ta, tb;
} ref_case;

static double ref_a(const ref_case *r, const double *a, int64_t i0, int64_t i1, int64_t i,
                    int64_t p) {
    int64_t mat = (i0 % r->ab[0]) * r->ab[1] + i1 % r->ab[1];
    return r->ta ? a[mat * r->m * r->k + p * r->m + i] : a[mat * r->m * r->k + i * r->k + p];
}
static double ref_b(const ref_case *r, const double *b, int64_t i0, int64_t i1, int64_t p,
                    int64_t j) {
    int64_t mat = (i0 % r->bb[0]) * r->bb[1] + i1 % r->bb[1];
    return r->tb ? b[mat * r->k * r->n + j * r->k + p] : b[mat * r->k * r->n + p * r->n + j];
}

static void check_against_reference(const ref_case *r, nb_dtype dt) {
    int64_t B0 = r->ab[0] > r->bb[0] ? r->ab[0] : r->bb[0];
    int64_t B1 = r->ab[1] > r->bb[1] ? r->ab[1] : r->bb[1];
    int64_t ashape[4] = {r->ab[0], r->ab[1], r->ta ? r->k : r->m, r->ta ? r->m : r->k};
    int64_t bshape[4] = {r->bb[0], r->bb[1], r->tb ? r->n : r->k, r->tb ? r->k : r->n};
    nb_tensor *a = nb_tensor_create(dt, 4, ashape), *b = nb_tensor_create(dt, 4, bshape);
    nb_tensor *dy = nb_tensor_create(dt, 4, (int64_t[]){B0, B1, r->m, r->n});
    nb_rng rng;
    nb_rng_seed(&rng, 7);
    // Small integers: every product and sum is exact in float32 too, so == comparisons hold.
    int64_t na = nb_tensor_numel(a), nbn = nb_tensor_numel(b), ny = nb_tensor_numel(dy);
    for (int64_t i = 0; i < na; i++)
        nb_tensor_set(a, i, (double)nb_rng_below(&rng, 7) - 3);
    for (int64_t i = 0; i < nbn; i++)
        nb_tensor_set(b, i, (double)nb_rng_below(&rng, 7) - 3);
    for (int64_t i = 0; i < ny; i++)
        nb_tensor_set(dy, i, (double)nb_rng_below(&rng, 5) - 2);
    nb_tensor_set_requires_grad(a, true);
    nb_tensor_set_requires_grad(b, true);
    double *av = malloc((size_t)na * sizeof *av), *bv = malloc((size_t)nbn * sizeof *bv);
    double *da = calloc((size_t)na, sizeof *da), *db = calloc((size_t)nbn, sizeof *db);
    for (int64_t i = 0; i < na; i++)
        av[i] = nb_tensor_get(a, i);
    for (int64_t i = 0; i < nbn; i++)
        bv[i] = nb_tensor_get(b, i);
    nb_graph *g = nb_graph_create();
    nb_tensor *y = nb_matmul_t(g, a, b, r->ta, r->tb);
    assert_non_null(y);
    assert_int_equal(nb_tensor_ndim(y), 4);
    assert_int_equal(nb_tensor_dim(y, 0), B0);
    assert_int_equal(nb_tensor_dim(y, 1), B1);
    assert_int_equal(nb_tensor_dim(y, 2), r->m);
    assert_int_equal(nb_tensor_dim(y, 3), r->n);
    assert_int_equal(nb_backward_with(g, y, dy), NB_OK);
    for (int64_t i0 = 0; i0 < B0; i0++)
        for (int64_t i1 = 0; i1 < B1; i1++)
            for (int64_t i = 0; i < r->m; i++)
                for (int64_t j = 0; j < r->n; j++) {
                    int64_t o = ((i0 * B1 + i1) * r->m + i) * r->n + j;
                    double acc = 0, up = nb_tensor_get(dy, o);
                    for (int64_t p = 0; p < r->k; p++) {
                        acc += ref_a(r, av, i0, i1, i, p) * ref_b(r, bv, i0, i1, p, j);
                        // dy flows to every a and b element that fed this output.
                        int64_t amat = (i0 % r->ab[0]) * r->ab[1] + i1 % r->ab[1];
                        int64_t bmat = (i0 % r->bb[0]) * r->bb[1] + i1 % r->bb[1];
                        int64_t ai = amat * r->m * r->k + (r->ta ? p * r->m + i : i * r->k + p);
                        int64_t bi = bmat * r->k * r->n + (r->tb ? j * r->k + p : p * r->n + j);
                        da[ai] += up * ref_b(r, bv, i0, i1, p, j);
                        db[bi] += up * ref_a(r, av, i0, i1, i, p);
                    }
                    assert_true(nb_tensor_get(y, o) == acc);
                }
    for (int64_t i = 0; i < na; i++)
        assert_true(nb_tensor_grad_get(a, i) == da[i]);
    for (int64_t i = 0; i < nbn; i++)
        assert_true(nb_tensor_grad_get(b, i) == db[i]);
    nb_graph_destroy(g);
    nb_tensor_destroy(a);
    nb_tensor_destroy(b);
    nb_tensor_destroy(dy);
    free(av);
    free(bv);
    free(da);
    free(db);
}

// Every transpose combination, with a, b or neither broadcast, on sizes that take the tiny
// loop, the folded GEMM, and the batched BLAS path (test env: 2 threads): serially with each
// GEMM on one thread (these shapes are below the work threshold), then in parallel over the
// batch with the threshold lowered to 0. Either way the thread count is restored afterwards.
static void batched_matmul_matches_reference(void **state) {
    (void)state;
    int threads = nb_get_num_threads();
    const ref_case shapes[] = {
        {{2, 3}, {2, 3}, 2, 3, 4, false, false},    {{1, 3}, {2, 1}, 3, 2, 2, false, false},
        {{2, 3}, {1, 1}, 5, 4, 3, false, false},    {{1, 1}, {2, 3}, 5, 4, 3, false, false},
        {{4, 3}, {4, 3}, 16, 24, 16, false, false}, {{4, 1}, {1, 3}, 16, 24, 32, false, false},
        {{1, 1}, {4, 3}, 16, 16, 16, false, false}, {{4, 3}, {1, 1}, 16, 16, 16, false, false},
    };
    for (int par = 0; par < 2; par++) {
        nb__gemm_batch_parallel_min = par ? 0 : NB_GEMM_BATCH_PARALLEL_MIN_DEFAULT;
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
            for (int t = 0; t < 4; t++)
                for (int d = 0; d < 2; d++) {
                    ref_case r = shapes[s];
                    r.ta = t & 1;
                    r.tb = t & 2;
                    check_against_reference(&r, d ? NB_F64 : NB_F32);
                    assert_int_equal(nb_get_num_threads(), threads);
                }
    }
    nb__gemm_batch_parallel_min = NB_GEMM_BATCH_PARALLEL_MIN_DEFAULT;
}

// Under OMP_WAIT_POLICY=passive (nb__omp_passive) gemm.c runs products below its bound on one
// BLAS thread (each fork would wake a sleeping thread) and restores the thread count after.
// 96 x 64 x 80 = 491 520 multiply-adds: above OpenBLAS's own threading threshold.
static void passive_small_gemm_on_one_thread(void **state) {
    (void)state;
    int threads = nb_get_num_threads();
    bool passive = nb__omp_passive;
    for (int pass = 0; pass < 2; pass++) {
        nb__omp_passive = pass;
        for (int t = 0; t < 4; t++)
            for (int d = 0; d < 2; d++) {
                ref_case r = {{1, 1}, {1, 1}, 96, 64, 80, t & 1, t & 2};
                check_against_reference(&r, d ? NB_F64 : NB_F32);
                assert_int_equal(nb_get_num_threads(), threads);
            }
    }
    nb__omp_passive = passive;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(matmul_values_and_grads),
        cmocka_unit_test(bad_shapes_record_errors),
        cmocka_unit_test(batched_matmul_matches_reference),
        cmocka_unit_test(passive_small_gemm_on_one_thread),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
