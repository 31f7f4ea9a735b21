// src/ops/softmax.c: softmax and log_softmax over the last axis: values computed by hand,
// numerical stability with logits of ±1000 in both dtypes, 1-D and 3-D inputs, and error paths.
// Gradients are checked against finite differences in tests/cases_softmax.c.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>
#include <string.h>

#include "support/expect.h"
#include "support/opcheck.h"

static const nb_dtype dtypes[] = {NB_F32, NB_F64};

static void softmax_hand_values(void **state) {
    (void)state;
    // e^0 : e^ln2 : e^ln3 = 1 : 2 : 3, so softmax = (1, 2, 3) / 6; shifting a row changes nothing.
    const double x[] = {0, log(2.0), log(3.0), 10, 10 + log(2.0), 10 + log(3.0)};
    for (int d = 0; d < 2; d++) {
        nb_tensor *t = mk2(dtypes[d], 2, 3, x, false);
        nb_graph *g = nb_graph_create();
        nb_tensor *y = nb_softmax(g, t), *ly = nb_log_softmax(g, t);
        assert_non_null(y);
        assert_non_null(ly);
        assert_int_equal(nb_tensor_ndim(y), 2);
        for (int i = 0; i < 6; i++) {
            near(nb_tensor_get(y, i), (i % 3 + 1) / 6.0, 1e-6);
            near(nb_tensor_get(ly, i), log((i % 3 + 1) / 6.0), 1e-6);
        }
        nb_graph_destroy(g);
        nb_tensor_destroy(t);
    }
}

// Rows with ±1000 would overflow e^x without the max shift.
static void softmax_extreme_logits_are_finite(void **state) {
    (void)state;
    const double x[] = {1000, -1000, 0, 1000, 1000, 1000, -1000, -1000, -1000};
    const double up[] = {0.3, -0.2, 0.5, 1, 2, 3, -1, 0.5, 0.25};
    for (int d = 0; d < 2; d++) {
        for (int lg = 0; lg < 2; lg++) {
            nb_tensor *t = mk2(dtypes[d], 3, 3, x, true);
            nb_tensor *u = mk2(dtypes[d], 3, 3, up, false);
            nb_graph *g = nb_graph_create();
            nb_tensor *y = lg ? nb_log_softmax(g, t) : nb_softmax(g, t);
            assert_non_null(y);
            assert_true(all_finite(y, false));
            if (lg) { // (0, -2000, -1000), then ln(1/3) three times per row
                near(nb_tensor_get(y, 0), 0, 1e-6);
                near(nb_tensor_get(y, 1), -2000, 1e-6);
                near(nb_tensor_get(y, 2), -1000, 1e-6);
                for (int i = 3; i < 9; i++)
                    near(nb_tensor_get(y, i), -log(3.0), 1e-6);
            } else {
                near(nb_tensor_get(y, 0), 1, 1e-6);
                near(nb_tensor_get(y, 1), 0, 1e-6);
                near(nb_tensor_get(y, 2), 0, 1e-6);
                for (int i = 3; i < 9; i++)
                    near(nb_tensor_get(y, i), 1 / 3.0, 1e-6);
            }
            assert_int_equal(nb_backward_with(g, y, u), NB_OK);
            assert_true(all_finite(t, true));
            if (!lg) // a saturated row has a zero Jacobian
                for (int i = 0; i < 3; i++)
                    near(nb_tensor_grad_get(t, i), 0, 1e-6);
            nb_graph_destroy(g);
            nb_tensor_destroy(t);
            nb_tensor_destroy(u);
        }
    }
}

static void softmax_1d_and_3d(void **state) {
    (void)state;
    nb_tensor *v = mk(NB_F64, 1, (int64_t[]){4}, (double[]){1, 1, 1, 1}, false);
    nb_tensor *c = mk(NB_F64, 3, (int64_t[]){2, 2, 2}, (double[]){0, 0, 1, 1, 5, 5, 0, 0}, false);
    nb_graph *g = nb_graph_create();
    nb_tensor *y = nb_softmax(g, v), *z = nb_softmax(g, c);
    for (int i = 0; i < 4; i++)
        near(nb_tensor_get(y, i), 0.25, 1e-12);
    for (int i = 0; i < 8; i++) // every row of the last axis is constant
        near(nb_tensor_get(z, i), 0.5, 1e-12);
    assert_int_equal(nb_tensor_ndim(z), 3);
    nb_graph_destroy(g);
    nb_tensor_destroy(v);
    nb_tensor_destroy(c);
}

static void errors_are_recorded(void **state) {
    (void)state;
    nb_tensor *a = mk2(NB_F32, 2, 3, NULL, true);
    nb_tensor *s = mk(NB_F32, 0, NULL, NULL, false);
    nb_graph *g = nb_graph_create();
    assert_true(oc_expect_error(g, nb_softmax(g, s), NB_ERR_SHAPE, "softmax", "0-dim", NULL));
    nb_graph_reset(g);
    assert_true(oc_expect_error(g, nb_log_softmax(g, s), NB_ERR_SHAPE, "log_softmax", NULL));
    nb_graph_reset(g);
    assert_true(oc_expect_error(g, nb_softmax(g, NULL), NB_ERR_NULL, "softmax", NULL));
    assert_null(nb_log_softmax(g, a)); // sticky: the first message survives later calls
    assert_true(oc_expect_error(g, NULL, NB_ERR_NULL, "softmax", NULL));
    // A NULL graph is reported through nb_last_error.
    assert_null(nb_softmax(NULL, a));
    assert_non_null(strstr(nb_last_error(), "softmax"));
    nb_graph_destroy(g);
    nb_tensor_destroy(a);
    nb_tensor_destroy(s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(softmax_hand_values),
        cmocka_unit_test(softmax_extreme_logits_are_finite),
        cmocka_unit_test(softmax_1d_and_3d),
        cmocka_unit_test(errors_are_recorded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
