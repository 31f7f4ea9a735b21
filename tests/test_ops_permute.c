// src/ops/permute.c: permute, transpose (the last two axes, any two axes), expand, and the
// reshape conveniences (squeeze, unsqueeze, flatten) that permute and expand are used with:
// values against index arithmetic done here and by hand, gradients (including the sum over
// expanded copies), the plain, run-copy, tiled (SSE and AVX-512, cached and streamed) and
// multi-threaded paths, and every bad input.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "ops/ops_impl.h" // nb__permute_no_avx512
#include "support/expect.h"
#include "support/opcheck.h"

static const double X23[] = {1, 2, 3, 4, 5, 6}; // [[1, 2, 3], [4, 5, 6]]

static nb_tensor *iota(nb_dtype dt, int ndim, const int64_t *shape, bool grad) {
    nb_tensor *t = nb_tensor_create(dt, ndim, shape);
    for (int64_t i = 0; i < nb_tensor_numel(t); i++)
        nb_tensor_set(t, i, (double)i);
    nb_tensor_set_requires_grad(t, grad);
    return t;
}

// y = permute(x, perm) for x = 0, 1, 2, ... checked element by element from the definition,
// and the gradient of Σ w y (w = 1000 + linear index of y) lands on the matching x element.
static void check_permute(nb_dtype dt, int ndim, const int64_t *shape, const int *perm) {
    nb_tensor *x = iota(dt, ndim, shape, true);
    nb_graph *g = nb_graph_create();
    nb_tensor *y = nb_permute(g, x, ndim, perm);
    assert_non_null(y);
    int64_t xs[NB_MAX_DIMS], s = 1;
    for (int i = ndim - 1; i >= 0; i--) {
        xs[i] = s;
        s *= shape[i];
    }
    for (int i = 0; i < ndim; i++)
        assert_int_equal(nb_tensor_dim(y, i), shape[perm[i]]);
    int64_t n = nb_tensor_numel(y);
    nb_tensor *w = nb_tensor_create(dt, ndim, nb_tensor_shape(y));
    for (int64_t o = 0; o < n; o++)
        nb_tensor_set(w, o, 1000.0 + (double)o);
    assert_int_equal(nb_backward_with(g, y, w), NB_OK);
    for (int64_t o = 0; o < n; o++) {
        int64_t r = o, off = 0;
        for (int i = ndim - 1; i >= 0; i--) {
            off += (r % shape[perm[i]]) * xs[perm[i]];
            r /= shape[perm[i]];
        }
        assert_true(nb_tensor_get(y, o) == (double)off);
        assert_true(nb_tensor_grad_get(x, off) == 1000.0 + (double)o);
    }
    nb_graph_destroy(g);
    nb_tensor_destroy(x);
    nb_tensor_destroy(w);
}

static void permute_matches_index_arithmetic(void **state) {
    (void)state;
    for (int d = 0; d < 2; d++) {
        nb_dtype dt = d ? NB_F64 : NB_F32;
        check_permute(dt, 4, (int64_t[]){2, 3, 4, 5}, (int[]){0, 2, 1, 3});  // runs of 5
        check_permute(dt, 4, (int64_t[]){2, 3, 4, 5}, (int[]){3, 2, 1, 0});  // reversed
        check_permute(dt, 3, (int64_t[]){33, 2, 70}, (int[]){2, 1, 0});      // tiled, partial
        check_permute(dt, 3, (int64_t[]){4, 64, 48}, (int[]){0, 2, 1});      // tiled, batched
        check_permute(dt, 4, (int64_t[]){16, 8, 1, 9}, (int[]){3, 2, 0, 1}); // size-1 axis
        check_permute(dt, 2, (int64_t[]){300, 300}, (int[]){1, 0});          // parallel, tiled
        check_permute(dt, 1, (int64_t[]){7}, (int[]){0});
    }
}

// The tiled float gather and its scatter-add on both paths (AVX-512 16 x 16 blocks where the CPU
// has it, else SSE 4 x 4 / scalar): whole blocks, edges in i and j, dims below a block, ranks 3
// to 6, y rows that are not whole cache lines, a broadcast. Then, on the default path, y of at
// least 16 MiB, which streams the blocks whose y rows are aligned lines (all, some or none).
static void float_tiles_both_paths(void **state) {
    (void)state;
    for (int sse = 0; sse < 2; sse++) {
        nb__permute_no_avx512 = sse;
        check_permute(NB_F32, 3, (int64_t[]){2, 48, 64}, (int[]){0, 2, 1}); // whole blocks
        check_permute(NB_F32, 3, (int64_t[]){3, 37, 50}, (int[]){0, 2, 1}); // edges, rows of 37
        check_permute(NB_F32, 3, (int64_t[]){16, 17, 1}, (int[]){2, 1, 0}); // i edge: 17 = 16 + 1
        check_permute(NB_F32, 2, (int64_t[]){8, 9}, (int[]){1, 0});         // below a block
        check_permute(NB_F32, 2, (int64_t[]){17, 16}, (int[]){1, 0});       // j edge: 17 = 16 + 1
        check_permute(NB_F32, 3, (int64_t[]){24, 2, 33}, (int[]){2, 1, 0}); // j band + edge
        check_permute(NB_F32, 4, (int64_t[]){3, 16, 5, 32}, (int[]){0, 3, 2, 1});
        check_permute(NB_F32, 5, (int64_t[]){2, 3, 17, 2, 33}, (int[]){0, 4, 3, 1, 2});
        check_permute(NB_F32, 6, (int64_t[]){2, 1, 3, 18, 2, 20}, (int[]){5, 1, 2, 0, 4, 3});
        check_permute(NB_F32, 2, (int64_t[]){300, 300}, (int[]){1, 0}); // parallel
        // expand (40, 1) -> (3, 40, 17): tiled with x stride 0 along y's rows (a broadcast:
        // the serial scatter-add); y[b, i, j] = i, and with w[o] = o,
        // gx[i] = Σ_{b, j} (680 b + 17 i + j) = 867 i + 17 (0 + 680 + 1360) + 3 (0 + .. + 16).
        nb_tensor *x = iota(NB_F32, 2, (int64_t[]){40, 1}, true);
        nb_graph *g = nb_graph_create();
        nb_tensor *y = nb_expand(g, x, 3, (int64_t[]){3, 40, 17});
        nb_tensor *w = iota(NB_F32, 3, (int64_t[]){3, 40, 17}, false);
        assert_int_equal(nb_backward_with(g, y, w), NB_OK);
        for (int64_t o = 0; o < 3 * 40 * 17; o++)
            assert_true(nb_tensor_get(y, o) == (double)(o / 17 % 40));
        for (int i = 0; i < 40; i++)
            assert_true(nb_tensor_grad_get(x, i) == 867.0 * i + 34680.0 + 408.0);
        nb_graph_destroy(g);
        nb_tensor_destroy(x);
        nb_tensor_destroy(w);
    }
    nb__permute_no_avx512 = false;
    // Just over 2^22 floats (16 MiB): (131080, 16) rows are whole lines; (55200, 19) rows never
    // are; in (87382, 2, 24) the first 16 of each 48-float row are.
    check_permute(NB_F32, 3, (int64_t[]){2, 16, 131080}, (int[]){0, 2, 1});
    check_permute(NB_F32, 3, (int64_t[]){4, 19, 55200}, (int[]){0, 2, 1});
    check_permute(NB_F32, 3, (int64_t[]){24, 2, 87382}, (int[]){2, 1, 0});
}

static void transpose_axes_and_last_two(void **state) {
    (void)state;
    nb_tensor *x = iota(NB_F64, 3, (int64_t[]){2, 3, 4}, false);
    nb_graph *g = nb_graph_create();
    nb_tensor *t = nb_transpose(g, x); // (2, 4, 3): t[b, j, i] = x[b, i, j]
    assert_int_equal(nb_tensor_dim(t, 1), 4);
    assert_true(nb_tensor_get(t, 1) == 4.0 && nb_tensor_get(t, 3) == 1.0);
    nb_tensor *u = nb_transpose_axes(g, x, 0, -1); // (4, 3, 2): u[k, j, i] = x[i, j, k]
    assert_int_equal(nb_tensor_dim(u, 0), 4);
    assert_int_equal(nb_tensor_dim(u, 2), 2);
    assert_true(nb_tensor_get(u, 1) == 12.0 && nb_tensor_get(u, 2) == 4.0);
    nb_tensor *same = nb_transpose_axes(g, x, 1, 1);
    for (int i = 0; i < 24; i++)
        assert_true(nb_tensor_get(same, i) == (double)i);
    nb_graph_destroy(g);
    nb_tensor_destroy(x);
}

static void expand_repeats_and_sums_back(void **state) {
    (void)state;
    for (int d = 0; d < 2; d++) {
        nb_dtype dt = d ? NB_F64 : NB_F32;
        nb_tensor *x = iota(dt, 2, (int64_t[]){3, 1}, true); // [[0], [1], [2]]
        nb_graph *g = nb_graph_create();
        nb_tensor *y = nb_expand(g, x, 3, (int64_t[]){2, 3, 4});
        assert_non_null(y);
        for (int64_t o = 0; o < 24; o++)
            assert_true(nb_tensor_get(y, o) == (double)((o / 4) % 3));
        nb_tensor *w = nb_tensor_create(dt, 3, (int64_t[]){2, 3, 4});
        for (int64_t o = 0; o < 24; o++)
            nb_tensor_set(w, o, (double)o);
        assert_int_equal(nb_backward_with(g, y, w), NB_OK);
        // gx[i] = Σ_{b, k} w[b, i, k] = Σ_k (4 i + k) + (12 + 4 i + k) = 32 i + 12 + 48 + 12
        for (int i = 0; i < 3; i++)
            assert_true(nb_tensor_grad_get(x, i) == 32.0 * i + 60.0);
        nb_graph_destroy(g);
        nb_tensor_destroy(x);
        nb_tensor_destroy(w);
    }
}

static void conveniences_shapes(void **state) {
    (void)state;
    nb_tensor *x = iota(NB_F64, 4, (int64_t[]){2, 1, 3, 4}, false);
    nb_graph *g = nb_graph_create();
    nb_tensor *s = nb_squeeze(g, x, 1);
    assert_int_equal(nb_tensor_ndim(s), 3);
    assert_int_equal(nb_tensor_dim(s, 1), 3);
    nb_tensor *keep = nb_squeeze(g, x, 0); // size 2: unchanged, as in PyTorch
    assert_int_equal(nb_tensor_ndim(keep), 4);
    nb_tensor *u = nb_unsqueeze(g, s, 0);
    assert_int_equal(nb_tensor_ndim(u), 4);
    assert_int_equal(nb_tensor_dim(u, 0), 1);
    nb_tensor *u2 = nb_unsqueeze(g, s, -1);
    assert_int_equal(nb_tensor_dim(u2, 3), 1);
    nb_tensor *f = nb_flatten(g, x, 1, -1);
    assert_int_equal(nb_tensor_ndim(f), 2);
    assert_int_equal(nb_tensor_dim(f, 1), 12);
    nb_tensor *all = nb_flatten(g, x, 0, -1);
    assert_int_equal(nb_tensor_ndim(all), 1);
    assert_int_equal(nb_tensor_dim(all, 0), 24);
    for (int i = 0; i < 24; i++)
        assert_true(nb_tensor_get(all, i) == (double)i);
    nb_graph_destroy(g);
    nb_tensor_destroy(x);
}

static void bad_input(void **state) {
    (void)state;
    nb_tensor *x = iota(NB_F64, 3, (int64_t[]){2, 3, 4}, false);
    nb_tensor *v = iota(NB_F64, 1, (int64_t[]){3}, false);
    nb_tensor *lab = nb_tensor_create(NB_I32, 1, (int64_t[]){3});
    nb_graph *g = nb_graph_create();
    EXPECT_ERR(nb_transpose_axes(g, x, 0, 3), NB_ERR_ARG, "transpose", "(0, 3)", "(2, 3, 4)");
    EXPECT_ERR(nb_transpose_axes(g, x, -4, 1), NB_ERR_ARG, "transpose", "(-4, 1)");
    EXPECT_ERR(nb_transpose(g, NULL), NB_ERR_NULL, "transpose");
    EXPECT_ERR(nb_permute(g, x, 3, (const int[]){0, 0, 1}), NB_ERR_ARG, "permute", "(0, 0, 1)",
               "not a permutation", "(2, 3, 4)");
    EXPECT_ERR(nb_permute(g, x, 2, (const int[]){1, 0}), NB_ERR_ARG, "permute", "(1, 0)",
               "(2, 3, 4)");
    EXPECT_ERR(nb_permute(g, x, 3, (const int[]){0, 1, 3}), NB_ERR_ARG, "permute", "(0, 1, 3)");
    EXPECT_ERR(nb_permute(g, x, 3, NULL), NB_ERR_NULL, "permute", "perm is NULL");
    EXPECT_ERR(nb_permute(g, x, 9, (const int[]){0, 1, 2, 3, 4, 5, 6, 7, 8}), NB_ERR_ARG,
               "permute");
    EXPECT_ERR(nb_permute(g, lab, 1, (const int[]){0}), NB_ERR_DTYPE, "permute");
    EXPECT_ERR(nb_expand(g, x, 3, (int64_t[]){2, 5, 4}), NB_ERR_SHAPE, "expand", "(2, 3, 4)",
               "(2, 5, 4)");
    EXPECT_ERR(nb_expand(g, x, 2, (int64_t[]){3, 4}), NB_ERR_SHAPE, "expand", "(3, 4)");
    EXPECT_ERR(nb_expand(g, v, 2, (int64_t[]){-1, 3}), NB_ERR_SHAPE, "expand", "(-1, 3)");
    EXPECT_ERR(nb_expand(g, v, 1, (int64_t[]){-2}), NB_ERR_SHAPE, "expand", "(-2)");
    EXPECT_ERR(nb_expand(g, v, 1, NULL), NB_ERR_NULL, "expand", "shape is NULL");
    EXPECT_ERR(nb_expand(g, NULL, 1, (int64_t[]){3}), NB_ERR_NULL, "expand");
    EXPECT_ERR(nb_squeeze(g, x, 3), NB_ERR_ARG, "squeeze", "axis 3", "(2, 3, 4)");
    EXPECT_ERR(nb_squeeze(g, NULL, 0), NB_ERR_NULL, "squeeze", "x is NULL");
    EXPECT_ERR(nb_unsqueeze(g, x, 4), NB_ERR_ARG, "unsqueeze", "axis 4", "(2, 3, 4)");
    EXPECT_ERR(nb_unsqueeze(g, x, -5), NB_ERR_ARG, "unsqueeze", "axis -5");
    EXPECT_ERR(nb_flatten(g, x, 2, 1), NB_ERR_ARG, "flatten", "[2, 1]", "(2, 3, 4)");
    EXPECT_ERR(nb_flatten(g, x, 0, 3), NB_ERR_ARG, "flatten", "[0, 3]");
    EXPECT_ERR(nb_flatten(g, NULL, 0, 1), NB_ERR_NULL, "flatten");
    nb_graph_destroy(g);
    nb_tensor_destroy(x);
    nb_tensor_destroy(v);
    nb_tensor_destroy(lab);
}

static void transpose_values_and_grad(void **state) {
    (void)state;
    for (int d = 0; d < 2; d++) {
        nb_dtype dt = d ? NB_F64 : NB_F32;
        nb_tensor *x = mk(dt, SHAPE(2, 3), X23, true);
        nb_graph *g = nb_graph_create();
        nb_tensor *y = nb_transpose(g, x);
        expect_shape(y, SHAPE(3, 2));
        expect_values(y, (double[]){1, 4, 2, 5, 3, 6}, 6);
        nb_tensor *up = mk(dt, SHAPE(3, 2), (double[]){1, 2, 3, 4, 5, 6}, false);
        assert_int_equal(nb_backward_with(g, y, up), NB_OK);
        expect_grad(x, (double[]){1, 3, 5, 2, 4, 6}, 6);
        nb_graph_destroy(g);
        nb_tensor_destroy(x);
        nb_tensor_destroy(up);
    }
}

// Above NB_OMP_MIN elements the kernels run multi-threaded: results must match a plain loop.
static void large_transpose_matches_plain_loop(void **state) {
    (void)state;
    enum { R = 300, C = 200 };
    nb_tensor *x = mk(NB_F64, SHAPE(R, C), NULL, true);
    double *v = nb_tensor_data_f64(x);
    for (int i = 0; i < R * C; i++)
        v[i] = (i * 7919) % 1009;
    nb_graph *g = nb_graph_create();
    nb_tensor *t = nb_transpose(g, x);
    assert_non_null(t);
    for (int i = 0; i < R * C; i++)
        assert_true(nb_tensor_get(t, (i % C) * R + i / C) == v[i]);
    // Two backward passes accumulate: d Σ transpose(x) / dx twice = 2.
    assert_int_equal(nb_backward(g, nb_sum(g, t)), NB_OK);
    assert_int_equal(nb_backward(g, nb_sum(g, t)), NB_OK);
    for (int i = 0; i < R * C; i++)
        assert_true(nb_tensor_grad_get(x, i) == 2.0);
    nb_graph_destroy(g);
    nb_tensor_destroy(x);
}

static void transpose_errors(void **state) {
    (void)state;
    nb_tensor *v = mk(NB_F64, SHAPE(3), NULL, false);
    nb_graph *g = nb_graph_create();
    EXPECT_ERR(nb_transpose(g, v), NB_ERR_ARG, "transpose", "(3)", "(-2, -1) out of range");
    EXPECT_ERR(nb_transpose(g, NULL), NB_ERR_NULL, "transpose");
    nb_graph_destroy(g);
    nb_tensor_destroy(v);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(permute_matches_index_arithmetic),
        cmocka_unit_test(float_tiles_both_paths),
        cmocka_unit_test(transpose_axes_and_last_two),
        cmocka_unit_test(expand_repeats_and_sums_back),
        cmocka_unit_test(conveniences_shapes),
        cmocka_unit_test(bad_input),
        cmocka_unit_test(transpose_values_and_grad),
        cmocka_unit_test(large_transpose_matches_plain_loop),
        cmocka_unit_test(transpose_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
