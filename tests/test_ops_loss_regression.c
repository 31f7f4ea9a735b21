// src/ops/loss_regression.c: mse_loss and half_sse_loss: values and gradients (prediction and
// target) computed by hand for both reductions, and error paths. Gradients are checked against
// finite differences in tests/cases_loss_regression.c.
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

static void mse_and_half_sse_hand_values(void **state) {
    (void)state;
    // d = pred - target = (1, 0, -2, 0): Σ d² = 5.
    const double p[] = {1, 2, 3, 4}, t[] = {0, 2, 5, 4};
    for (int d = 0; d < 2; d++) {
        nb_tensor *pred = mk2(dtypes[d], 2, 2, p, true), *tgt = mk2(dtypes[d], 2, 2, t, true);
        nb_graph *g = nb_graph_create();
        nb_tensor *l = nb_mse_loss(g, pred, tgt, NB_REDUCE_MEAN);
        assert_int_equal(nb_tensor_ndim(l), 0); // a 0-dim scalar
        near(nb_tensor_get(l, 0), 5.0 / 4, 1e-7);
        assert_int_equal(nb_backward(g, l), NB_OK);
        for (int i = 0; i < 4; i++) { // 2 d / 4, and the target gets the opposite
            near(nb_tensor_grad_get(pred, i), 0.5 * (p[i] - t[i]), 1e-7);
            near(nb_tensor_grad_get(tgt, i), -0.5 * (p[i] - t[i]), 1e-7);
        }
        nb_graph_reset(g);
        near(nb_tensor_get(nb_mse_loss(g, pred, tgt, NB_REDUCE_SUM), 0), 5, 1e-7);
        // The article's cost ½ Σ_j (y_j - ŷ_j)² per sample: ½·1 + ½·4 = 2.5 summed, /2 averaged.
        near(nb_tensor_get(nb_half_sse_loss(g, pred, tgt, NB_REDUCE_SUM), 0), 2.5, 1e-7);
        nb_tensor_zero_grad(pred);
        nb_tensor *h = nb_half_sse_loss(g, pred, tgt, NB_REDUCE_MEAN);
        near(nb_tensor_get(h, 0), 1.25, 1e-7);
        assert_int_equal(nb_backward(g, h), NB_OK);
        for (int i = 0; i < 4; i++) // d / batch
            near(nb_tensor_grad_get(pred, i), (p[i] - t[i]) / 2, 1e-7);
        nb_graph_destroy(g);
        nb_tensor_destroy(pred);
        nb_tensor_destroy(tgt);
    }
}

static void errors_are_recorded(void **state) {
    (void)state;
    nb_tensor *a = mk2(NB_F32, 2, 3, NULL, true), *b = mk2(NB_F32, 3, 2, NULL, false);
    nb_tensor *z64 = mk2(NB_F64, 2, 3, NULL, false);
    nb_graph *g = nb_graph_create();
    assert_true(oc_expect_error(g, nb_mse_loss(g, a, b, NB_REDUCE_MEAN), NB_ERR_SHAPE, "mse_loss",
                                "(2, 3)", "(3, 2)", NULL));
    nb_graph_reset(g);
    assert_true(oc_expect_error(g, nb_half_sse_loss(g, a, b, NB_REDUCE_SUM), NB_ERR_SHAPE,
                                "half_sse_loss", "(2, 3)", "(3, 2)", NULL));
    nb_graph_reset(g);
    assert_true(oc_expect_error(g, nb_mse_loss(g, a, z64, NB_REDUCE_MEAN), NB_ERR_DTYPE, "mse_loss",
                                "float64", NULL));
    // Reductions outside the enum.
    nb_graph_reset(g);
    assert_true(oc_expect_error(g, nb_mse_loss(g, a, a, NB_REDUCTION_COUNT), NB_ERR_ARG, "mse_loss",
                                "reduction", NULL));
    nb_graph_reset(g);
    assert_true(oc_expect_error(g, nb_half_sse_loss(g, a, a, (nb_reduction)-1), NB_ERR_ARG,
                                "half_sse_loss", "reduction -1", NULL));
    // NULL inputs, then sticky propagation: the first message survives later calls.
    nb_graph_reset(g);
    assert_true(
        oc_expect_error(g, nb_mse_loss(g, NULL, a, NB_REDUCE_MEAN), NB_ERR_NULL, "mse_loss", NULL));
    assert_null(nb_half_sse_loss(g, a, a, NB_REDUCE_MEAN));
    assert_true(oc_expect_error(g, NULL, NB_ERR_NULL, "mse_loss", NULL));
    assert_null(nb_mse_loss(NULL, a, a, NB_REDUCE_MEAN));
    assert_non_null(strstr(nb_last_error(), "mse_loss"));
    nb_graph_destroy(g);
    nb_tensor_destroy(a);
    nb_tensor_destroy(b);
    nb_tensor_destroy(z64);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(mse_and_half_sse_hand_values),
        cmocka_unit_test(errors_are_recorded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
