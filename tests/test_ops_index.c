// Indexing: index_select / embedding / gather against index arithmetic done here, scatter-add
// backward with repeated indices, one_hot, argmax / argmin (first extremum), max / min over
// everything and along axes, and bad indices.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>

#include "support/expect.h"
#include "support/opcheck.h"

static nb_tensor *iota(nb_dtype dt, int ndim, const int64_t *shape, bool grad) {
    nb_tensor *t = nb_tensor_create(dt, ndim, shape);
    for (int64_t i = 0; i < nb_tensor_numel(t); i++)
        nb_tensor_set(t, i, (double)i);
    nb_tensor_set_requires_grad(t, grad);
    return t;
}

static nb_tensor *ints(int ndim, const int64_t *shape, const int32_t *v) {
    nb_tensor *t = nb_tensor_create(NB_I32, ndim, shape);
    for (int64_t i = 0; i < nb_tensor_numel(t); i++)
        nb_tensor_set(t, i, v[i]);
    return t;
}

static void index_select_with_repeats(void **state) {
    (void)state;
    for (int d = 0; d < 2; d++) {
        nb_dtype dt = d ? NB_F64 : NB_F32;
        nb_tensor *x = iota(dt, 3, (int64_t[]){2, 4, 3}, true); // x[a, l, b] = 12a + 3l + b
        nb_tensor *idx = ints(2, (int64_t[]){2, 2}, (int32_t[]){3, 0, 3, 3});
        nb_graph *g = nb_graph_create();
        nb_tensor *y = nb_index_select(g, x, 1, idx); // (2, 2, 2, 3)
        assert_non_null(y);
        assert_int_equal(nb_tensor_ndim(y), 4);
        for (int64_t e = 0; e < 24; e++) {
            int64_t a = e / 12, i = (e / 3) % 4, b = e % 3;
            const int32_t iv[] = {3, 0, 3, 3};
            assert_true(nb_tensor_get(y, e) == (double)(12 * a + 3 * iv[i] + b));
        }
        assert_int_equal(nb_backward(g, nb_sum(g, y)), NB_OK);
        for (int64_t e = 0; e < 24; e++) { // row 3 picked three times, row 0 once, others never
            int64_t l = (e / 3) % 4;
            assert_true(nb_tensor_grad_get(x, e) == (l == 3 ? 3.0 : l == 0 ? 1.0 : 0.0));
        }
        nb_graph_destroy(g);
        nb_tensor_destroy(x);
        nb_tensor_destroy(idx);
    }
}

static void embedding_rows(void **state) {
    (void)state;
    nb_tensor *w = iota(NB_F64, 2, (int64_t[]){5, 2}, true);
    nb_tensor *tok = ints(2, (int64_t[]){2, 3}, (int32_t[]){4, 1, 4, 0, 0, 2});
    nb_graph *g = nb_graph_create();
    nb_tensor *e = nb_embedding(g, w, tok); // (2, 3, 2)
    assert_int_equal(nb_tensor_ndim(e), 3);
    assert_true(nb_tensor_get(e, 0) == 8.0 && nb_tensor_get(e, 1) == 9.0);
    assert_int_equal(nb_backward(g, nb_sum(g, e)), NB_OK);
    const double counts[] = {2, 1, 1, 0, 2};
    for (int r = 0; r < 5; r++)
        assert_true(nb_tensor_grad_get(w, 2 * r) == counts[r]);
    nb_graph_destroy(g);
    nb_tensor_destroy(w);
    nb_tensor_destroy(tok);
}

static void gather_along_axis(void **state) {
    (void)state;
    nb_tensor *x = iota(NB_F64, 2, (int64_t[]){3, 4}, true);
    nb_tensor *idx = ints(2, (int64_t[]){2, 3}, (int32_t[]){1, 1, 3, 0, 2, 2});
    nb_graph *g = nb_graph_create();
    nb_tensor *y = nb_gather(g, x, 1, idx); // y[i, j] = x[i, idx[i, j]]
    const double want[] = {1, 1, 3, 4, 6, 6};
    for (int e = 0; e < 6; e++)
        assert_true(nb_tensor_get(y, e) == want[e]);
    assert_int_equal(nb_backward(g, nb_sum(g, y)), NB_OK);
    const double gx[] = {0, 2, 0, 1, 1, 0, 2, 0, 0, 0, 0, 0};
    for (int e = 0; e < 12; e++)
        assert_true(nb_tensor_grad_get(x, e) == gx[e]);
    nb_tensor *idx0 = ints(2, (int64_t[]){1, 4}, (int32_t[]){2, 0, 1, 2});
    nb_tensor *y0 = nb_gather(g, x, 0, idx0);
    const double want0[] = {8, 1, 6, 11};
    for (int e = 0; e < 4; e++)
        assert_true(nb_tensor_get(y0, e) == want0[e]);
    nb_graph_destroy(g);
    nb_tensor_destroy(x);
    nb_tensor_destroy(idx);
    nb_tensor_destroy(idx0);
}

static void arg_and_extrema(void **state) {
    (void)state;
    for (int d = 0; d < 2; d++) {
        nb_dtype dt = d ? NB_F64 : NB_F32;
        nb_tensor *x = nb_tensor_create(dt, 2, (int64_t[]){2, 4});
        nb_tensor_copy_in(x, (double[]){3, 7, 7, -1, 0, -5, 2, -5}, NB_F64, 8);
        nb_tensor_set_requires_grad(x, true);
        nb_graph *g = nb_graph_create();
        nb_tensor *am = nb_argmax(g, x, 1, false), *an = nb_argmin(g, x, -1, true);
        assert_int_equal(nb_tensor_dtype(am), NB_I32);
        assert_false(nb_tensor_requires_grad(am));
        assert_int_equal(nb_tensor_ndim(an), 2);
        // first of the tied maxima (7 at 1 and 2) and minima (-5 at 1 and 3)
        assert_true(nb_tensor_get(am, 0) == 1 && nb_tensor_get(am, 1) == 2);
        assert_true(nb_tensor_get(an, 0) == 3 && nb_tensor_get(an, 1) == 1);
        nb_tensor *a0 = nb_argmax(g, x, 0, false), *n0 = nb_argmin(g, x, 0, false);
        for (int i = 0; i < 4; i++) // row 0 is above row 1 in every column
            assert_true(nb_tensor_get(a0, i) == 0 && nb_tensor_get(n0, i) == 1);
        nb_tensor *mx = nb_max(g, x), *mn = nb_min(g, x), *mna = nb_min_axis(g, x, 1, false);
        assert_true(nb_tensor_get(mx, 0) == 7 && nb_tensor_get(mn, 0) == -5);
        assert_true(nb_tensor_get(mna, 0) == -1 && nb_tensor_get(mna, 1) == -5);
        assert_int_equal(nb_backward(g, nb_add(g, nb_add(g, mx, mn), nb_sum(g, mna))), NB_OK);
        const double gx[] = {0, 1, 0, 1, 0, 2, 0, 0}; // max at 1, min at 5 (first), mins per row
        for (int i = 0; i < 8; i++)
            assert_true(nb_tensor_grad_get(x, i) == gx[i]);
        nb_tensor *lab = ints(1, (int64_t[]){3}, (int32_t[]){2, 0, 2});
        nb_tensor *oh = nb_one_hot_tensor(g, lab, 3, dt);
        assert_int_equal(nb_tensor_dtype(oh), dt);
        const double ohv[] = {0, 0, 1, 1, 0, 0, 0, 0, 1};
        for (int i = 0; i < 9; i++)
            assert_true(nb_tensor_get(oh, i) == ohv[i]);
        nb_graph_destroy(g);
        nb_tensor_destroy(x);
        nb_tensor_destroy(lab);
    }
}

// int64 index and label tensors (PyTorch's dtype for them) work wherever int32 ones do, with
// the same results.
static nb_tensor *ints64(int ndim, const int64_t *shape, const int64_t *v) {
    nb_tensor *t = nb_tensor_create(NB_I64, ndim, shape);
    nb_tensor_copy_in(t, v, NB_I64, nb_tensor_numel(t));
    return t;
}

static void int64_indices_and_labels(void **state) {
    (void)state;
    nb_tensor *x = iota(NB_F64, 2, (int64_t[]){3, 4}, true);
    nb_tensor *i32 = ints(2, (int64_t[]){3, 2}, (int32_t[]){3, 0, 1, 1, 2, 3});
    nb_tensor *i64 = ints64(2, (int64_t[]){3, 2}, (int64_t[]){3, 0, 1, 1, 2, 3});
    nb_tensor *l32 = ints(1, (int64_t[]){3}, (int32_t[]){1, 3, 0});
    nb_tensor *l64 = ints64(1, (int64_t[]){3}, (int64_t[]){1, 3, 0});
    assert_int_equal(nb_tensor_dtype(i64), NB_I64);
    assert_true(nb_tensor_get(i64, 4) == 2.0);
    assert_int_equal(nb_tensor_set_requires_grad(i64, true), NB_ERR_DTYPE);
    nb_tensor_set(i64, 0, 1e300); // does not fit: refused, left unchanged
    assert_true(nb_tensor_get(i64, 0) == 3.0);
    assert_int_equal(nb_tensor_copy_in(i64, (double[]){1, 2, 3, 4, 5, NAN}, NB_F64, 6), NB_ERR_ARG);
    assert_true(nb_tensor_get(i64, 5) == 3.0);
    double grads[2][12], vals[2][4];
    for (int w = 0; w < 2; w++) {
        nb_tensor *idx = w ? i64 : i32, *lab = w ? l64 : l32;
        nb_tensor_zero_grad(x);
        nb_graph *g = nb_graph_create();
        nb_tensor *a = nb_index_select(g, x, 1, idx);         // (3, 3, 2)
        nb_tensor *b = nb_gather(g, x, 1, idx);               // (3, 2)
        nb_tensor *oh = nb_one_hot_tensor(g, lab, 4, NB_F64); // (3, 4)
        nb_tensor *ce = nb_sparse_cross_entropy_logits(g, x, lab, NB_REDUCE_MEAN);
        nb_tensor *emb = nb_embedding(g, nb_transpose(g, x), lab); // columns 1, 3, 0
        assert_true(a && b && oh && ce && emb);
        vals[w][0] = nb_tensor_get(nb_sum(g, a), 0);
        vals[w][1] = nb_tensor_get(nb_sum(g, b), 0);
        vals[w][2] = nb_tensor_get(nb_sum(g, nb_mul(g, oh, x)), 0);
        vals[w][3] = nb_tensor_get(ce, 0);
        nb_tensor *loss =
            nb_add(g, nb_add(g, nb_sum(g, a), nb_sum(g, b)), nb_add(g, ce, nb_sum(g, emb)));
        assert_int_equal(nb_backward(g, loss), NB_OK);
        for (int i = 0; i < 12; i++)
            grads[w][i] = nb_tensor_grad_get(x, i);
        nb_graph_destroy(g);
    }
    for (int k = 0; k < 4; k++)
        assert_true(vals[0][k] == vals[1][k]);
    for (int i = 0; i < 12; i++)
        assert_true(grads[0][i] == grads[1][i]);
    // A large int64 index is reported with its value, not truncated.
    nb_tensor *big = ints64(1, (int64_t[]){2}, (int64_t[]){0, (int64_t)1 << 40});
    nb_graph *g = nb_graph_create();
    assert_true(oc_expect_error(g, nb_index_select(g, x, 0, big), NB_ERR_ARG, "index_select",
                                "index 1099511627776", NULL));
    nb_graph_reset(g);
    assert_true(oc_expect_error(g, nb_sparse_cross_entropy_logits(g, x, big, NB_REDUCE_SUM),
                                NB_ERR_SHAPE, "labels (2)", NULL));
    nb_graph_reset(g);
    nb_tensor *big3 = ints64(1, (int64_t[]){3}, (int64_t[]){0, 1, -((int64_t)1 << 33)});
    assert_true(oc_expect_error(g, nb_sparse_cross_entropy_logits(g, x, big3, NB_REDUCE_SUM),
                                NB_ERR_ARG, "label -8589934592 at index 2", NULL));
    nb_graph_destroy(g);
    nb_tensor_destroy(x);
    nb_tensor_destroy(i32);
    nb_tensor_destroy(i64);
    nb_tensor_destroy(l32);
    nb_tensor_destroy(l64);
    nb_tensor_destroy(big);
    nb_tensor_destroy(big3);
}

static void bad_indices(void **state) {
    (void)state;
    nb_tensor *x = iota(NB_F64, 2, (int64_t[]){3, 4}, false);
    nb_tensor *bad = ints(1, (int64_t[]){3}, (int32_t[]){0, 4, 1});
    nb_tensor *neg = ints(1, (int64_t[]){2}, (int32_t[]){-1, 0});
    nb_tensor *i2 =
        ints(2, (int64_t[]){4, 4}, (int32_t[]){0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0});
    nb_tensor *fl = iota(NB_F64, 1, (int64_t[]){2}, false);
    nb_graph *g = nb_graph_create();
    EXPECT_ERR(nb_index_select(g, x, 1, bad), NB_ERR_ARG, "index_select", "index 4", "position 1",
               "[0, 4)", "(3, 4)");
    EXPECT_ERR(nb_index_select(g, x, 0, neg), NB_ERR_ARG, "index_select", "index -1");
    EXPECT_ERR(nb_index_select(g, x, 2, neg), NB_ERR_ARG, "index_select", "axis 2", "(3, 4)");
    EXPECT_ERR(nb_index_select(g, x, 0, fl), NB_ERR_DTYPE, "index_select", "int32");
    EXPECT_ERR(nb_index_select(g, x, 0, NULL), NB_ERR_NULL, "index_select");
    EXPECT_ERR(nb_embedding(g, x, bad), NB_ERR_ARG, "index_select", "index 4", "[0, 3)");
    EXPECT_ERR(nb_gather(g, x, 1, i2), NB_ERR_SHAPE, "gather", "(4, 4)", "(3, 4)");
    EXPECT_ERR(nb_gather(g, x, 1, bad), NB_ERR_SHAPE, "gather", "(3)");
    nb_tensor *i3 = ints(2, (int64_t[]){1, 2}, (int32_t[]){3, 0});
    EXPECT_ERR(nb_gather(g, x, 0, i3), NB_ERR_ARG, "gather", "index 3", "[0, 3)");
    nb_tensor_destroy(i3);
    EXPECT_ERR(nb_gather(g, x, -3, neg), NB_ERR_ARG, "gather", "axis -3");
    nb_tensor *e = nb_tensor_create(NB_F64, 2, (int64_t[]){2, 0});
    EXPECT_ERR(nb_argmax(g, e, 1, false), NB_ERR_SHAPE, "argmax", "axis 1", "(2, 0)", "empty");
    EXPECT_ERR(nb_argmin(g, x, 2, false), NB_ERR_ARG, "argmin", "axis 2", "(3, 4)");
    EXPECT_ERR(nb_argmax(g, bad, 0, false), NB_ERR_DTYPE, "argmax", "int32");
    EXPECT_ERR(nb_max(g, e), NB_ERR_SHAPE, "max", "(2, 0)", "empty");
    EXPECT_ERR(nb_min(g, e), NB_ERR_SHAPE, "min", "(2, 0)");
    EXPECT_ERR(nb_min_axis(g, e, 1, false), NB_ERR_SHAPE, "min_axis", "(2, 0)");
    EXPECT_ERR(nb_min_axis(g, x, -3, false), NB_ERR_ARG, "min_axis", "axis -3");
    EXPECT_ERR(nb_one_hot_tensor(g, bad, 4, NB_F32), NB_ERR_ARG, "one_hot", "index 4", "[0, 4)");
    EXPECT_ERR(nb_one_hot_tensor(g, neg, 4, NB_F32), NB_ERR_ARG, "one_hot", "index -1");
    EXPECT_ERR(nb_one_hot_tensor(g, bad, 0, NB_F32), NB_ERR_ARG, "one_hot", "classes = 0");
    EXPECT_ERR(nb_one_hot_tensor(g, bad, 5, NB_I32), NB_ERR_ARG, "one_hot", "dtype");
    EXPECT_ERR(nb_one_hot_tensor(g, fl, 5, NB_F32), NB_ERR_DTYPE, "one_hot", "int32");
    EXPECT_ERR(nb_one_hot_tensor(g, NULL, 5, NB_F32), NB_ERR_NULL, "one_hot");
    nb_tensor_destroy(e);
    nb_graph_destroy(g);
    nb_tensor_destroy(x);
    nb_tensor_destroy(bad);
    nb_tensor_destroy(neg);
    nb_tensor_destroy(i2);
    nb_tensor_destroy(fl);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(index_select_with_repeats), cmocka_unit_test(embedding_rows),
        cmocka_unit_test(gather_along_axis),         cmocka_unit_test(arg_and_extrema),
        cmocka_unit_test(int64_indices_and_labels),  cmocka_unit_test(bad_indices),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
