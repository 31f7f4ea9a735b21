// sum / mean backward on shapes large enough that the kernel splits its work into several items
// (reduce_kernels.inc: blocks of at most RED_ITEM = 4096 elements, over columns and over rows of
// the reduced axis): every element of dx must get exactly its dy (times 1 / len for mean), in
// float32 and float64, on 1 and 2 threads. The gradient checks of cases_reduce.c cover the
// formula on small shapes, which fit in one item.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "nabla/base.h"
#include "nabla/graph.h"
#include "nabla/ops.h"
#include "nabla/tensor.h"

// x (d0, d1, d2) reduced along `axis` (sum, or mean when `mean`), times weights c of the
// output's shape, summed: dx[o, k, i] = c[o, i] (/ len). Checks every element exactly.
static void check(nb_dtype dt, int64_t d0, int64_t d1, int64_t d2, int axis, bool mean) {
    int64_t xs[3] = {d0, d1, d2}, len = xs[axis];
    int64_t outer = 1, inner = 1;
    for (int a = 0; a < axis; a++)
        outer *= xs[a];
    for (int a = axis + 1; a < 3; a++)
        inner *= xs[a];
    int64_t cs[2], nc = 0;
    for (int a = 0; a < 3; a++)
        if (a != axis)
            cs[nc++] = xs[a];
    nb_tensor *x = nb_tensor_create(dt, 3, xs), *c = nb_tensor_create(dt, 2, cs);
    assert_non_null(x);
    assert_non_null(c);
    for (int64_t j = 0; j < outer * inner; j++) // distinct weights, exact in float
        nb_tensor_set(c, j, (double)(j % 1000) - 499.5);
    nb_tensor_set_requires_grad(x, true);
    nb_graph *g = nb_graph_create();
    nb_tensor *r = mean ? nb_mean_axis(g, x, axis, false) : nb_sum_axis(g, x, axis, false);
    nb_tensor *loss = nb_sum(g, nb_mul(g, r, c));
    assert_non_null(loss);
    assert_int_equal(nb_backward(g, loss), NB_OK);
    int64_t bad = 0;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t k = 0; k < len; k++)
            for (int64_t i = 0; i < inner; i++) {
                int64_t e = (o * len + k) * inner + i, j = o * inner + i;
                if (dt == NB_F32) {
                    float want =
                        (float)nb_tensor_get(c, j) * (mean ? (float)(1.0 / (double)len) : 1.0f);
                    bad += nb_tensor_grad_f32(x)[e] != want;
                } else {
                    double want = nb_tensor_get(c, j) * (mean ? 1.0 / (double)len : 1.0);
                    bad += nb_tensor_grad_f64(x)[e] != want;
                }
            }
    assert_int_equal(bad, 0);
    nb_graph_destroy(g);
    nb_tensor_destroy(x);
    nb_tensor_destroy(c);
}

static void shapes(nb_dtype dt) {
    check(dt, 1, 10000, 1, 1, false); // a whole-vector sum: one column, 3 row blocks
    check(dt, 3, 5000, 1, 0, true);   // columns wider than an item: 2 column blocks
    check(dt, 2, 3000, 2, 1, false);  // narrow columns, 2 row blocks per outer index
    check(dt, 5, 7, 4100, 1, true);   // both: 2 column blocks of 7 rows each, 5 outer
    check(dt, 1, 1, 1, 1, true);      // a single element
}

static void test_large_f32(void **state) {
    (void)state;
    for (int th = 1; th <= 2; th++) {
        nb_set_num_threads(th);
        shapes(NB_F32);
    }
}

static void test_large_f64(void **state) {
    (void)state;
    for (int th = 1; th <= 2; th++) {
        nb_set_num_threads(th);
        shapes(NB_F64);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_large_f32),
        cmocka_unit_test(test_large_f64),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
