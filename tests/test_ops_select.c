// Masks and selection: the comparisons (eq ne lt le gt ge), where, masked_fill (-inf allowed),
// clamp, maximum / minimum and abs: values, gradients at the conventions (bounds, ties, 0),
// broadcasting, and bad input.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>

#include "support/expect.h"
#include "support/opcheck.h"

static nb_tensor *vec(nb_dtype dt, int ndim, const int64_t *shape, const double *v, bool grad) {
    nb_tensor *t = nb_tensor_create(dt, ndim, shape);
    nb_tensor_copy_in(t, v, NB_F64, nb_tensor_numel(t));
    nb_tensor_set_requires_grad(t, grad);
    return t;
}

static void comparisons_make_masks(void **state) {
    (void)state;
    for (int d = 0; d < 2; d++) {
        nb_dtype dt = d ? NB_F64 : NB_F32;
        nb_tensor *a = vec(dt, 2, (int64_t[]){2, 3}, (double[]){1, 2, 3, 4, 5, NAN}, false);
        nb_tensor *b = vec(dt, 1, (int64_t[]){3}, (double[]){2, 2, 2}, false);
        nb_graph *g = nb_graph_create();
        typedef nb_tensor *(*cmp_fn)(nb_graph *, nb_tensor *, nb_tensor *);
        const cmp_fn fns[] = {nb_eq, nb_ne, nb_lt, nb_le, nb_gt, nb_ge};
        // a vs 2 for a = 1 2 3 4 5 NaN (NaN compares false except ne, as in IEEE / PyTorch)
        const double want[6][6] = {{0, 1, 0, 0, 0, 0}, {1, 0, 1, 1, 1, 1}, {1, 0, 0, 0, 0, 0},
                                   {1, 1, 0, 0, 0, 0}, {0, 0, 1, 1, 1, 0}, {0, 1, 1, 1, 1, 0}};
        for (int f = 0; f < 6; f++) {
            nb_tensor *m = fns[f](g, a, b);
            assert_non_null(m);
            assert_int_equal(nb_tensor_ndim(m), 2);
            for (int i = 0; i < 6; i++)
                assert_true(nb_tensor_get(m, i) == want[f][i]);
        }
        nb_graph_destroy(g);
        nb_tensor_destroy(a);
        nb_tensor_destroy(b);
    }
}

static void where_selects_and_routes_gradient(void **state) {
    (void)state;
    for (int d = 0; d < 2; d++) {
        nb_dtype dt = d ? NB_F64 : NB_F32;
        nb_tensor *c = vec(dt, 2, (int64_t[]){2, 1}, (double[]){1, 0}, false);
        nb_tensor *a = vec(dt, 1, (int64_t[]){3}, (double[]){10, 20, 30}, true);
        nb_tensor *b = vec(dt, 2, (int64_t[]){2, 3}, (double[]){1, 2, 3, 4, 5, 6}, true);
        nb_graph *g = nb_graph_create();
        nb_tensor *y = nb_where(g, c, a, b); // row 0 from a, row 1 from b
        const double want[] = {10, 20, 30, 4, 5, 6};
        for (int i = 0; i < 6; i++)
            assert_true(nb_tensor_get(y, i) == want[i]);
        nb_tensor *up = vec(dt, 2, (int64_t[]){2, 3}, (double[]){1, 2, 3, 4, 5, 6}, false);
        assert_int_equal(nb_backward_with(g, y, up), NB_OK);
        for (int i = 0; i < 3; i++)
            assert_true(nb_tensor_grad_get(a, i) == (double)(i + 1));
        const double gb[] = {0, 0, 0, 4, 5, 6};
        for (int i = 0; i < 6; i++)
            assert_true(nb_tensor_grad_get(b, i) == gb[i]);
        nb_graph_destroy(g);
        nb_tensor_destroy(c);
        nb_tensor_destroy(a);
        nb_tensor_destroy(b);
        nb_tensor_destroy(up);
    }
}

// A causal mask: -inf above the diagonal, softmax gives exact zeros there and finite grads.
static void masked_fill_minus_inf_then_softmax(void **state) {
    (void)state;
    nb_tensor *x = vec(NB_F64, 3, (int64_t[]){2, 3, 3},
                       (double[]){1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 8, 7, 6, 5, 4, 3, 2, 1}, true);
    nb_tensor *r = vec(NB_F64, 1, (int64_t[]){3}, (double[]){0, 1, 2}, false);
    nb_tensor *cidx = vec(NB_F64, 2, (int64_t[]){3, 1}, (double[]){0, 1, 2}, false);
    nb_graph *g = nb_graph_create();
    nb_tensor *above = nb_gt(g, r, cidx); // (3, 3): column > row
    nb_tensor *y = nb_masked_fill(g, x, above, -INFINITY);
    assert_non_null(y);
    assert_true(isinf(nb_tensor_get(y, 1)) && nb_tensor_get(y, 1) < 0);
    assert_true(nb_tensor_get(y, 3) == 4.0);
    nb_tensor *p = nb_softmax(g, y);
    assert_true(nb_tensor_get(p, 1) == 0.0 && nb_tensor_get(p, 2) == 0.0);
    assert_true(nb_tensor_get(p, 0) == 1.0);
    assert_int_equal(nb_backward(g, nb_sum(g, nb_mul(g, p, p))), NB_OK);
    for (int i = 0; i < 18; i++) {
        assert_true(isfinite(nb_tensor_grad_get(x, i)));
        int row = (i / 3) % 3, col = i % 3;
        if (col > row) // masked: no gradient reaches x
            assert_true(nb_tensor_grad_get(x, i) == 0.0);
    }
    nb_graph_destroy(g);
    nb_tensor_destroy(x);
    nb_tensor_destroy(r);
    nb_tensor_destroy(cidx);
}

static void clamp_max_min_abs_conventions(void **state) {
    (void)state;
    nb_tensor *x = vec(NB_F64, 1, (int64_t[]){5}, (double[]){-2, -1, 0, 1, 2}, true);
    nb_tensor *z = vec(NB_F64, 1, (int64_t[]){5}, (double[]){0, 0, 0, 0, 0}, true);
    nb_graph *g = nb_graph_create();
    nb_tensor *c = nb_clamp(g, x, -1, 1);
    const double cv[] = {-1, -1, 0, 1, 1}, cg[] = {0, 1, 1, 1, 0}; // grad passes at the bounds
    assert_int_equal(nb_backward(g, nb_sum(g, c)), NB_OK);
    for (int i = 0; i < 5; i++) {
        assert_true(nb_tensor_get(c, i) == cv[i]);
        assert_true(nb_tensor_grad_get(x, i) == cg[i]);
    }
    nb_tensor_zero_grad(x);
    nb_tensor *m = nb_maximum(g, x, z); // tie at 0: half the gradient to each, as PyTorch
    assert_int_equal(nb_backward(g, nb_sum(g, m)), NB_OK);
    const double mx[] = {0, 0, 0.5, 1, 1}, mz[] = {1, 1, 0.5, 0, 0};
    for (int i = 0; i < 5; i++) {
        assert_true(nb_tensor_get(m, i) == fmax(i - 2, 0));
        assert_true(nb_tensor_grad_get(x, i) == mx[i]);
        assert_true(nb_tensor_grad_get(z, i) == mz[i]);
    }
    nb_tensor_zero_grad(x);
    nb_tensor *n = nb_minimum(g, x, z);
    assert_int_equal(nb_backward(g, nb_sum(g, n)), NB_OK);
    for (int i = 0; i < 5; i++) {
        assert_true(nb_tensor_get(n, i) == fmin(i - 2, 0));
        assert_true(nb_tensor_grad_get(x, i) == 1 - mx[i]);
    }
    nb_tensor_zero_grad(x);
    nb_tensor *ab = nb_abs(g, x);
    assert_int_equal(nb_backward(g, nb_sum(g, ab)), NB_OK);
    const double av[] = {2, 1, 0, 1, 2}, ag[] = {-1, -1, 0, 1, 1}; // abs'(0) = 0
    for (int i = 0; i < 5; i++) {
        assert_true(nb_tensor_get(ab, i) == av[i]);
        assert_true(nb_tensor_grad_get(x, i) == ag[i]);
    }
    nb_graph_destroy(g);
    nb_tensor_destroy(x);
    nb_tensor_destroy(z);
}

// The new unary math ops against libm in float64, with their derivatives by formula.
static void unary_math_against_libm(void **state) {
    (void)state;
    const double xs[] = {-0.7, 1e-9, 0.3, 2.5};
    nb_tensor *x = vec(NB_F64, 1, (int64_t[]){4}, xs, true);
    nb_tensor *xp = vec(NB_F64, 1, (int64_t[]){4}, (double[]){0.1, 1e-9, 0.3, 2.5}, true);
    typedef nb_tensor *(*fn)(nb_graph *, nb_tensor *);
    const fn fns[] = {nb_log1p, nb_expm1, nb_sin, nb_cos, nb_square, nb_rsqrt};
    for (int f = 0; f < 6; f++) {
        nb_tensor *in = f == 5 ? xp : x;
        nb_tensor_zero_grad(in);
        nb_graph *g = nb_graph_create();
        nb_tensor *y = fns[f](g, in);
        assert_int_equal(nb_backward(g, nb_sum(g, y)), NB_OK);
        for (int i = 0; i < 4; i++) {
            double v = nb_tensor_get(in, i), want, dwant;
            switch (f) {
            case 0:
                want = log1p(v), dwant = 1 / (1 + v);
                break;
            case 1:
                want = expm1(v), dwant = exp(v);
                break;
            case 2:
                want = sin(v), dwant = cos(v);
                break;
            case 3:
                want = cos(v), dwant = -sin(v);
                break;
            case 4:
                want = v * v, dwant = 2 * v;
                break;
            default:
                want = 1 / sqrt(v), dwant = -0.5 * pow(v, -1.5);
                break;
            }
            assert_true(oc_near(nb_tensor_get(y, i), want, 1e-15 * fmax(1, fabs(want))));
            assert_true(oc_near(nb_tensor_grad_get(in, i), dwant, 1e-12 * fmax(1, fabs(dwant))));
        }
        nb_graph_destroy(g);
    }
    nb_tensor_destroy(x);
    nb_tensor_destroy(xp);
}

static void bad_input(void **state) {
    (void)state;
    nb_tensor *x = nb_tensor_create(NB_F64, 2, (int64_t[]){2, 3});
    nb_tensor *m4 = nb_tensor_create(NB_F64, 1, (int64_t[]){4});
    nb_tensor *m23 = nb_tensor_create(NB_F64, 3, (int64_t[]){5, 2, 3});
    nb_tensor *f = nb_tensor_create(NB_F32, 2, (int64_t[]){2, 3});
    nb_graph *g = nb_graph_create();
    EXPECT_ERR(nb_lt(g, x, m4), NB_ERR_SHAPE, "lt", "(2, 3)", "(4)");
    EXPECT_ERR(nb_eq(g, x, f), NB_ERR_DTYPE, "eq");
    EXPECT_ERR(nb_ge(g, NULL, x), NB_ERR_NULL, "ge");
    EXPECT_ERR(nb_where(g, m4, x, x), NB_ERR_SHAPE, "where", "cond (4)", "a (2, 3)", "b (2, 3)");
    EXPECT_ERR(nb_where(g, x, x, f), NB_ERR_DTYPE, "where");
    EXPECT_ERR(nb_where(g, x, NULL, x), NB_ERR_NULL, "where");
    EXPECT_ERR(nb_masked_fill(g, x, m4, 0), NB_ERR_SHAPE, "masked_fill", "mask (4)", "x (2, 3)");
    EXPECT_ERR(nb_masked_fill(g, x, m23, 0), NB_ERR_SHAPE, "masked_fill", "(5, 2, 3)");
    EXPECT_ERR(nb_masked_fill(g, x, x, NAN), NB_ERR_ARG, "masked_fill", "NaN");
    EXPECT_ERR(nb_clamp(g, x, 1, -1), NB_ERR_ARG, "clamp", "[1, -1]", "(2, 3)");
    EXPECT_ERR(nb_clamp(g, x, NAN, 1), NB_ERR_ARG, "clamp");
    EXPECT_ERR(nb_maximum(g, x, m4), NB_ERR_SHAPE, "maximum", "(2, 3)", "(4)");
    EXPECT_ERR(nb_minimum(g, x, f), NB_ERR_DTYPE, "minimum");
    EXPECT_ERR(nb_abs(g, NULL), NB_ERR_NULL, "abs");
    nb_tensor *lab = nb_tensor_create(NB_I32, 1, (int64_t[]){3});
    typedef nb_tensor *(*fn)(nb_graph *, nb_tensor *);
    const fn unary[] = {nb_abs, nb_log1p, nb_expm1, nb_sin, nb_cos, nb_square, nb_rsqrt};
    const char *const names[] = {"abs", "log1p", "expm1", "sin", "cos", "square", "rsqrt"};
    for (int k = 0; k < 7; k++) {
        EXPECT_ERR(unary[k](g, NULL), NB_ERR_NULL, names[k]);
        EXPECT_ERR(unary[k](g, lab), NB_ERR_DTYPE, names[k], "int32");
    }
    EXPECT_ERR(nb_clamp(g, lab, 0, 1), NB_ERR_DTYPE, "clamp", "int32");
    EXPECT_ERR(nb_where(g, lab, x, x), NB_ERR_DTYPE, "where", "int32");
    nb_tensor_destroy(lab);
    nb_graph_destroy(g);
    nb_tensor_destroy(x);
    nb_tensor_destroy(m4);
    nb_tensor_destroy(m23);
    nb_tensor_destroy(f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(comparisons_make_masks),
        cmocka_unit_test(where_selects_and_routes_gradient),
        cmocka_unit_test(masked_fill_minus_inf_then_softmax),
        cmocka_unit_test(clamp_max_min_abs_conventions),
        cmocka_unit_test(unary_math_against_libm),
        cmocka_unit_test(bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
