// Broadcasting binary ops: hand-computed forward values and gradients (a micrograd-style
// expression, every broadcast kind), a tensor used twice, sizes large enough for the parallel
// paths checked against a naive broadcast, and the error paths.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "support/opcheck.h"

typedef nb_tensor *(*binary_fn)(nb_graph *, nb_tensor *, nb_tensor *);

static nb_tensor *param(int ndim, const int64_t *shape, const double *v) {
    nb_tensor *t = nb_tensor_from_data(NB_F64, ndim, shape, v);
    assert_non_null(t);
    nb_tensor_set_requires_grad(t, true);
    return t;
}

// y = f(a, b) and backward with dy = 1; checks y, da and db against the expected arrays.
static void check(binary_fn f, nb_tensor *a, nb_tensor *b, const double *y, int ny,
                  const double *da, const double *db) {
    nb_graph *g = nb_graph_create();
    nb_tensor *out = f(g, a, b);
    assert_non_null(out);
    assert_int_equal(nb_tensor_numel(out), ny);
    nb_tensor *ones = nb_tensor_create(NB_F64, nb_tensor_ndim(out), nb_tensor_shape(out));
    nb_tensor_fill(ones, 1.0);
    assert_int_equal(nb_backward_with(g, out, ones), NB_OK);
    for (int i = 0; i < ny; i++)
        assert_true(oc_near(nb_tensor_get(out, i), y[i], 1e-15));
    for (int64_t i = 0; i < nb_tensor_numel(a); i++)
        assert_true(oc_near(nb_tensor_grad_get(a, i), da[i], 1e-15));
    for (int64_t i = 0; i < nb_tensor_numel(b); i++)
        assert_true(oc_near(nb_tensor_grad_get(b, i), db[i], 1e-15));
    nb_tensor_destroy(ones);
    nb_graph_destroy(g);
    nb_tensor_destroy(a);
    nb_tensor_destroy(b);
}

static const double A23[] = {1, 2, 3, 4, 5, 6}; // (2, 3)

static void row_vector(void **state) { // (2, 3) * (3): db sums a over rows
    (void)state;
    check(nb_mul, param(2, (int64_t[]){2, 3}, A23),
          param(1, (int64_t[]){3}, (double[]){0.5, -1, 2}), (double[]){0.5, -2, 6, 2, -5, 12}, 6,
          (double[]){0.5, -1, 2, 0.5, -1, 2}, (double[]){5, 7, 9});
}

static void column_vector(void **state) { // (2, 3) / (2, 1): db = Σ_row -a / b²
    (void)state;
    check(nb_div, param(2, (int64_t[]){2, 3}, A23), param(2, (int64_t[]){2, 1}, (double[]){2, -4}),
          (double[]){0.5, 1, 1.5, -1, -1.25, -1.5}, 6,
          (double[]){0.5, 0.5, 0.5, -0.25, -0.25, -0.25}, (double[]){-1.5, -0.9375});
}

static void scalars(void **state) { // 0-dim and (1) operands on either side
    (void)state;
    check(nb_sub, param(2, (int64_t[]){2, 3}, A23), param(0, NULL, (double[]){3}),
          (double[]){-2, -1, 0, 1, 2, 3}, 6, (double[]){1, 1, 1, 1, 1, 1}, (double[]){-6});
    check(nb_add, param(1, (int64_t[]){1}, (double[]){10}), param(2, (int64_t[]){2, 3}, A23),
          (double[]){11, 12, 13, 14, 15, 16}, 6, (double[]){6}, (double[]){1, 1, 1, 1, 1, 1});
    check(nb_div, param(0, NULL, (double[]){3}), param(1, (int64_t[]){2}, (double[]){2, -1}),
          (double[]){1.5, -3}, 2, (double[]){-0.5}, (double[]){-0.75, -3}); // da = 1/2 + 1/-1
}

static void middle_broadcast(void **state) { // (2, 1, 2) - (3, 1) -> (2, 3, 2)
    (void)state;
    double y[12];
    const double a[] = {1, 2, 3, 4}, b[] = {10, 20, 30};
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 3; j++)
            for (int k = 0; k < 2; k++)
                y[(i * 3 + j) * 2 + k] = a[i * 2 + k] - b[j];
    check(nb_sub, param(3, (int64_t[]){2, 1, 2}, a), param(2, (int64_t[]){3, 1}, b), y, 12,
          (double[]){3, 3, 3, 3}, (double[]){-4, -4, -4});
}

// micrograd-style: f = (a + b - (a b + b b b)) / a at a = -4, b = 2, with b used four times.
// f = 0.5; df/da = ((1 - b) a - (a + b - a b - b³)) / a² = 0.375; df/db = (1 - a - 3b²) / a = 1.75.
static void expression(void **state) {
    (void)state;
    nb_tensor *a = param(0, NULL, (double[]){-4});
    nb_tensor *b = param(0, NULL, (double[]){2});
    nb_graph *g = nb_graph_create();
    nb_tensor *c = nb_add(g, a, b);
    nb_tensor *d = nb_add(g, nb_mul(g, a, b), nb_mul(g, nb_mul(g, b, b), b));
    nb_tensor *f = nb_div(g, nb_sub(g, c, d), a);
    assert_non_null(f);
    assert_int_equal(nb_tensor_ndim(f), 0);
    assert_int_equal(nb_backward(g, f), NB_OK);
    assert_true(oc_near(nb_tensor_get(f, 0), 0.5, 1e-15));
    assert_true(oc_near(nb_tensor_grad_get(a, 0), 0.375, 1e-15));
    assert_true(oc_near(nb_tensor_grad_get(b, 0), 1.75, 1e-15));
    nb_graph_destroy(g);
    nb_tensor_destroy(a);
    nb_tensor_destroy(b);
}

static void used_twice(void **state) { // d(x x)/dx = 2x: both operand grads land in x
    (void)state;
    const double v[] = {-1.5, 0.25, 3};
    nb_tensor *x = param(1, (int64_t[]){3}, v);
    nb_graph *g = nb_graph_create();
    nb_tensor *y = nb_mul(g, x, x);
    nb_tensor *ones = nb_tensor_create(NB_F64, 1, (int64_t[]){3});
    nb_tensor_fill(ones, 1.0);
    assert_int_equal(nb_backward_with(g, y, ones), NB_OK);
    for (int i = 0; i < 3; i++) {
        assert_true(oc_near(nb_tensor_get(y, i), v[i] * v[i], 1e-15));
        assert_true(oc_near(nb_tensor_grad_get(x, i), 2 * v[i], 1e-15));
    }
    nb_tensor_destroy(ones);
    nb_graph_destroy(g);
    nb_tensor_destroy(x);
}

// Flat index of the operand element that y's element i reads, by NumPy's rule, computed
// independently of the library: walk y's dims from the last, index 0 where t has size 1.
static int64_t naive_index(const nb_tensor *y, const nb_tensor *t, int64_t i) {
    int64_t idx = 0, mul = 1;
    for (int k = 0; k < nb_tensor_ndim(t); k++) {
        int64_t dy = nb_tensor_dim(y, -1 - k), dt = nb_tensor_dim(t, -1 - k);
        int64_t c = i % dy;
        i /= dy;
        idx += (dt == 1 ? 0 : c) * mul;
        mul *= dt;
    }
    return idx;
}

// Large enough (60 000 outputs) for the OpenMP paths, in float32 against a double reference:
// y = a b with random dy, every index computed by the naive broadcast above.
static void large_matches_naive_one(int na, const int64_t *sa, int nb, const int64_t *sb) {
    nb_rng rng;
    nb_rng_seed(&rng, 7);
    nb_tensor *a = nb_tensor_create(NB_F32, na, sa), *b = nb_tensor_create(NB_F32, nb, sb);
    nb_init_uniform(a, &rng, -1, 1);
    nb_init_uniform(b, &rng, -1, 1);
    nb_tensor_set_requires_grad(a, true);
    nb_tensor_set_requires_grad(b, true);
    nb_graph *g = nb_graph_create();
    nb_tensor *y = nb_mul(g, a, b);
    assert_non_null(y);
    int64_t n = nb_tensor_numel(y);
    assert_int_equal(n, 60000);
    nb_tensor *dy = nb_tensor_create(NB_F32, nb_tensor_ndim(y), nb_tensor_shape(y));
    nb_init_uniform(dy, &rng, -1, 1);
    assert_int_equal(nb_backward_with(g, y, dy), NB_OK);
    double *ga = calloc((size_t)nb_tensor_numel(a), sizeof *ga);
    double *gb = calloc((size_t)nb_tensor_numel(b), sizeof *gb);
    for (int64_t i = 0; i < n; i++) {
        int64_t ia = naive_index(y, a, i), ib = naive_index(y, b, i);
        double va = nb_tensor_get(a, ia), vb = nb_tensor_get(b, ib), w = nb_tensor_get(dy, i);
        assert_true(nb_tensor_get(y, i) == (double)(float)(va * vb));
        ga[ia] += w * vb;
        gb[ib] += w * va;
    }
    for (int64_t i = 0; i < nb_tensor_numel(a); i++)
        assert_true(oc_near(nb_tensor_grad_get(a, i), ga[i], 1e-5 * (1 + fabs(ga[i]))));
    for (int64_t i = 0; i < nb_tensor_numel(b); i++)
        assert_true(oc_near(nb_tensor_grad_get(b, i), gb[i], 1e-5 * (1 + fabs(gb[i]))));
    free(ga);
    free(gb);
    nb_tensor_destroy(dy);
    nb_graph_destroy(g);
    nb_tensor_destroy(a);
    nb_tensor_destroy(b);
}

static void large_matches_naive(void **state) {
    (void)state;
    const int64_t m[] = {300, 200}, row[] = {200}, col[] = {300, 1}, one[] = {1};
    large_matches_naive_one(2, m, 2, m);
    large_matches_naive_one(2, m, 1, row);
    large_matches_naive_one(1, row, 2, m);
    large_matches_naive_one(2, m, 2, col);
    large_matches_naive_one(2, m, 0, NULL);
    large_matches_naive_one(1, one, 2, m);
    large_matches_naive_one(3, (int64_t[]){40, 1, 30}, 2, (int64_t[]){50, 1});
    large_matches_naive_one(3, (int64_t[]){1, 50, 1}, 3, (int64_t[]){40, 1, 30});
    // Kept rows longer than one work item's accumulators (600 > 256, not a multiple).
    large_matches_naive_one(2, (int64_t[]){100, 600}, 1, (int64_t[]){600});
    large_matches_naive_one(3, (int64_t[]){20, 1, 600}, 2, (int64_t[]){5, 1});
}

static void empty_output(void **state) { // (0, 3) + (3) -> (0, 3); nothing flows back
    (void)state;
    nb_tensor *a = nb_tensor_create(NB_F64, 2, (int64_t[]){0, 3});
    nb_tensor_set_requires_grad(a, true);
    nb_tensor *b = param(1, (int64_t[]){3}, (double[]){1, 2, 3});
    nb_graph *g = nb_graph_create();
    nb_tensor *y = nb_add(g, a, b);
    assert_non_null(y);
    assert_int_equal(nb_tensor_dim(y, 0), 0);
    assert_int_equal(nb_tensor_dim(y, 1), 3);
    nb_tensor *dy = nb_tensor_create(NB_F64, 2, (int64_t[]){0, 3});
    assert_int_equal(nb_backward_with(g, y, dy), NB_OK);
    for (int i = 0; i < 3; i++)
        assert_true(nb_tensor_grad_get(b, i) == 0);
    nb_tensor_destroy(dy);
    nb_graph_destroy(g);
    nb_tensor_destroy(a);
    nb_tensor_destroy(b);
}

static void errors(void **state) {
    (void)state;
    nb_tensor *a = nb_tensor_create(NB_F64, 2, (int64_t[]){2, 3});
    nb_tensor *b = nb_tensor_create(NB_F64, 1, (int64_t[]){4});
    nb_tensor *c = nb_tensor_create(NB_F64, 3, (int64_t[]){2, 1, 4});
    nb_tensor *d = nb_tensor_create(NB_F64, 2, (int64_t[]){3, 2});
    nb_tensor *f = nb_tensor_create(NB_F32, 2, (int64_t[]){2, 3});
    nb_graph *g = nb_graph_create();

    assert_true(oc_expect_error(g, nb_add(g, a, b), NB_ERR_SHAPE, "add", "(2, 3)", "(4)", NULL));
    nb_graph_clear_error(g);
    assert_true(
        oc_expect_error(g, nb_div(g, c, d), NB_ERR_SHAPE, "div", "(2, 1, 4)", "(3, 2)", NULL));
    nb_graph_clear_error(g);
    assert_true(oc_expect_error(g, nb_sub(g, NULL, a), NB_ERR_NULL, "sub", NULL));
    nb_graph_clear_error(g);
    assert_true(oc_expect_error(g, nb_mul(g, a, f), NB_ERR_DTYPE, "mul", NULL));
    nb_graph_clear_error(g);
    assert_null(nb_add(NULL, a, a));

    // Sticky: the first message survives later calls, with NULL or with valid inputs.
    assert_null(nb_add(g, a, b));
    char first[256];
    strncpy(first, nb_graph_error(g), sizeof first - 1);
    first[sizeof first - 1] = '\0';
    assert_null(nb_mul(g, nb_sub(g, a, d), a));
    assert_null(nb_div(g, a, a));
    assert_int_equal(nb_graph_status(g), NB_ERR_SHAPE);
    assert_string_equal(nb_graph_error(g), first);

    nb_graph_destroy(g);
    nb_tensor_destroy(a);
    nb_tensor_destroy(b);
    nb_tensor_destroy(c);
    nb_tensor_destroy(d);
    nb_tensor_destroy(f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(row_vector),
        cmocka_unit_test(column_vector),
        cmocka_unit_test(scalars),
        cmocka_unit_test(middle_broadcast),
        cmocka_unit_test(expression),
        cmocka_unit_test(used_twice),
        cmocka_unit_test(large_matches_naive),
        cmocka_unit_test(empty_output),
        cmocka_unit_test(errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
