// src/ops/loss_classification.c: binary cross-entropy (probabilities, logits) and cross-entropy
// (probabilities, logits, class indices): values computed by hand, the probability clamp,
// numerical stability with logits of ±1000 in both dtypes, agreement between equivalent
// formulations, eval mode, and error paths. Gradients are checked against finite differences in
// tests/cases_loss_classification.c.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "support/expect.h"
#include "support/opcheck.h"

static const nb_dtype dtypes[] = {NB_F32, NB_F64};

static nb_tensor *labels(int64_t n, const int32_t *v) {
    return nb_tensor_from_data(NB_I32, 1, (int64_t[]){n}, v);
}

static void bce_hand_values_and_clamp(void **state) {
    (void)state;
    for (int d = 0; d < 2; d++) {
        nb_tensor *p = mk2(dtypes[d], 1, 2, (double[]){0.5, 0.5}, true);
        nb_tensor *t = mk2(dtypes[d], 1, 2, (double[]){0, 1}, false);
        nb_graph *g = nb_graph_create();
        nb_tensor *l = nb_bce_loss(g, p, t, NB_REDUCE_MEAN);
        near(nb_tensor_get(l, 0), log(2.0), 1e-7);
        assert_int_equal(nb_backward(g, l), NB_OK);
        // (p - t) / (p (1 - p)) / 2 = ±1
        near(nb_tensor_grad_get(p, 0), 1, 1e-6);
        near(nb_tensor_grad_get(p, 1), -1, 1e-6);
        // Saturated and wrong: -ln(NB_PROB_EPS) each, finite even in f32; the clamp is flat
        // there, so the gradient is zero.
        nb_graph_reset(g);
        nb_tensor_zero_grad(p);
        nb_tensor_set(p, 0, 1.0);
        nb_tensor_set(p, 1, 0.0);
        l = nb_bce_loss(g, p, t, NB_REDUCE_SUM);
        near(nb_tensor_get(l, 0), -2 * log(NB_PROB_EPS), 1e-5); // 1 - (1 - eps) rounds
        assert_int_equal(nb_backward(g, l), NB_OK);
        assert_true(nb_tensor_grad_get(p, 0) == 0 && nb_tensor_grad_get(p, 1) == 0);
        nb_graph_destroy(g);
        nb_tensor_destroy(p);
        nb_tensor_destroy(t);
    }
}

// bce_logits(z) = bce(sigmoid(z)) wherever sigmoid does not saturate.
static void bce_logits_matches_bce_of_sigmoid(void **state) {
    (void)state;
    const double z[] = {-3, -0.5, 0, 0.7, 2, 4}, t[] = {0, 1, 0.3, 1, 0, 0.9};
    for (int d = 0; d < 2; d++)
        for (int r = 0; r < 2; r++) {
            nb_tensor *za = mk2(dtypes[d], 2, 3, z, true), *zb = mk2(dtypes[d], 2, 3, z, true);
            nb_tensor *tt = mk2(dtypes[d], 2, 3, t, false);
            nb_graph *g = nb_graph_create();
            nb_tensor *la = nb_bce_logits_loss(g, za, tt, (nb_reduction)r);
            nb_tensor *lb = nb_bce_loss(g, nb_sigmoid(g, zb), tt, (nb_reduction)r);
            near(nb_tensor_get(la, 0), nb_tensor_get(lb, 0), 1e-6);
            assert_int_equal(nb_backward(g, la), NB_OK);
            assert_int_equal(nb_backward(g, lb), NB_OK);
            for (int i = 0; i < 6; i++)
                near(nb_tensor_grad_get(za, i), nb_tensor_grad_get(zb, i), 1e-5);
            nb_graph_destroy(g);
            nb_tensor_destroy(za);
            nb_tensor_destroy(zb);
            nb_tensor_destroy(tt);
        }
}

static void bce_logits_extreme_is_finite(void **state) {
    (void)state;
    for (int d = 0; d < 2; d++) {
        nb_tensor *z = mk2(dtypes[d], 1, 3, (double[]){1000, -1000, 0}, true);
        nb_tensor *t = mk2(dtypes[d], 1, 3, (double[]){0, 0, 1}, false);
        nb_graph *g = nb_graph_create();
        nb_tensor *l = nb_bce_logits_loss(g, z, t, NB_REDUCE_SUM);
        near(nb_tensor_get(l, 0), 1000 + log(2.0), 1e-6);
        assert_int_equal(nb_backward(g, l), NB_OK);
        near(nb_tensor_grad_get(z, 0), 1, 1e-6); // sigmoid - t
        near(nb_tensor_grad_get(z, 1), 0, 1e-6);
        near(nb_tensor_grad_get(z, 2), -0.5, 1e-6);
        nb_graph_destroy(g);
        nb_tensor_destroy(z);
        nb_tensor_destroy(t);
    }
}

static void cross_entropy_probs_hand_value(void **state) {
    (void)state;
    for (int d = 0; d < 2; d++) {
        nb_tensor *p = mk2(dtypes[d], 2, 2, (double[]){0.25, 0.75, 0.5, 0.5}, true);
        nb_tensor *t = mk2(dtypes[d], 2, 2, (double[]){0, 1, 1, 0}, false);
        nb_graph *g = nb_graph_create();
        nb_tensor *l = nb_cross_entropy_loss(g, p, t, NB_REDUCE_MEAN);
        near(nb_tensor_get(l, 0), -(log(0.75) + log(0.5)) / 2, 1e-7);
        assert_int_equal(nb_backward(g, l), NB_OK);
        const double want[] = {0, -1 / 0.75 / 2, -1 / 0.5 / 2, 0}; // -y / p / batch
        for (int i = 0; i < 4; i++)
            near(nb_tensor_grad_get(p, i), want[i], 1e-6);
        nb_graph_destroy(g);
        nb_tensor_destroy(p);
        nb_tensor_destroy(t);
    }
}

// cross_entropy(softmax(z)) = cross_entropy_logits(z) = sparse with the same classes.
static void cross_entropy_forms_agree(void **state) {
    (void)state;
    const double z[] = {0.5, -1, 2, 0.1, 0.3, 0.3, -2, 1, 0, 0, 0, 0};
    const int32_t lab[] = {2, 0, 1};
    double onehot[12] = {0};
    for (int r = 0; r < 3; r++)
        onehot[r * 4 + lab[r]] = 1;
    for (int d = 0; d < 2; d++)
        for (int r = 0; r < 2; r++) {
            nb_tensor *za = mk2(dtypes[d], 3, 4, z, true), *zb = mk2(dtypes[d], 3, 4, z, true);
            nb_tensor *zc = mk2(dtypes[d], 3, 4, z, true);
            nb_tensor *y = mk2(dtypes[d], 3, 4, onehot, false), *l = labels(3, lab);
            nb_graph *g = nb_graph_create();
            nb_tensor *la = nb_cross_entropy_logits(g, za, y, (nb_reduction)r);
            nb_tensor *lb = nb_sparse_cross_entropy_logits(g, zb, l, (nb_reduction)r);
            nb_tensor *lc = nb_cross_entropy_loss(g, nb_softmax(g, zc), y, (nb_reduction)r);
            assert_non_null(la);
            assert_non_null(lb);
            assert_non_null(lc);
            near(nb_tensor_get(la, 0), nb_tensor_get(lb, 0), 1e-7);
            near(nb_tensor_get(la, 0), nb_tensor_get(lc, 0), 1e-6);
            assert_int_equal(nb_backward(g, la), NB_OK);
            assert_int_equal(nb_backward(g, lb), NB_OK);
            assert_int_equal(nb_backward(g, lc), NB_OK);
            for (int i = 0; i < 12; i++) {
                near(nb_tensor_grad_get(za, i), nb_tensor_grad_get(zb, i), 1e-7);
                near(nb_tensor_grad_get(za, i), nb_tensor_grad_get(zc, i), 1e-5);
            }
            nb_graph_destroy(g);
            nb_tensor_destroy(za);
            nb_tensor_destroy(zb);
            nb_tensor_destroy(zc);
            nb_tensor_destroy(y);
            nb_tensor_destroy(l);
        }
}

// The logits kernels take short rows in blocks of up to 256 values (one exponential call per
// block) and long rows one at a time in chunks of 256: many blocks, a block tail, one class,
// rows just past the block limit and rows of several chunks, against the loss and gradient
// (softmax - one-hot) / rows computed here in double, sparse and dense, both dtypes.
static void cross_entropy_logits_blocks_match_reference(void **state) {
    (void)state;
    const int64_t shapes[][2] = {{300, 10}, {7, 1}, {130, 2}, {5, 129}, {3, 600}};
    for (int s = 0; s < 5; s++)
        for (int d = 0; d < 2; d++)
            for (int sparse = 0; sparse < 2; sparse++) {
                int64_t rows = shapes[s][0], n = shapes[s][1];
                double *z = malloc((size_t)(rows * n) * sizeof *z);
                double *y = calloc((size_t)(rows * n), sizeof *y);
                int32_t *lab = malloc((size_t)rows * sizeof *lab);
                assert_true(z && y && lab);
                for (int64_t i = 0; i < rows * n; i++)
                    z[i] = 5 * sin(0.7 * (double)i + 0.3 * (double)s) + (double)(i % 3);
                for (int64_t r = 0; r < rows; r++) {
                    lab[r] = (int32_t)((r * 7 + 3) % n);
                    y[r * n + lab[r]] = 1;
                }
                nb_tensor *zt = mk2(dtypes[d], rows, n, z, true);
                nb_tensor *yt = sparse ? labels(rows, lab) : mk2(dtypes[d], rows, n, y, false);
                nb_graph *g = nb_graph_create();
                nb_tensor *loss = sparse ? nb_sparse_cross_entropy_logits(g, zt, yt, NB_REDUCE_MEAN)
                                         : nb_cross_entropy_logits(g, zt, yt, NB_REDUCE_MEAN);
                assert_non_null(loss);
                assert_int_equal(nb_backward(g, loss), NB_OK);
                double tol = dtypes[d] == NB_F32 ? 2e-6 : 1e-13, want = 0;
                for (int64_t r = 0; r < rows; r++) {
                    double m = z[r * n], se = 0;
                    for (int64_t j = 1; j < n; j++)
                        m = fmax(m, z[r * n + j]);
                    for (int64_t j = 0; j < n; j++)
                        se += exp(z[r * n + j] - m);
                    double lse = m + log(se);
                    want += (lse - z[r * n + lab[r]]) / (double)rows;
                    for (int64_t j = 0; j < n; j++) {
                        double p = exp(z[r * n + j] - lse), gw = (p - y[r * n + j]) / (double)rows;
                        double got = nb_tensor_grad_get(zt, r * n + j);
                        if (!(fabs(got - gw) <= tol * fmax(1.0 / (double)rows, fabs(gw))))
                            fail_msg("(%lld, %lld) %s %s: grad[%lld, %lld] = %.12g, want %.12g",
                                     (long long)rows, (long long)n, sparse ? "sparse" : "dense",
                                     nb_dtype_name(dtypes[d]), (long long)r, (long long)j, got, gw);
                    }
                }
                near(nb_tensor_get(loss, 0), want, tol);
                nb_graph_destroy(g);
                nb_tensor_destroy(zt);
                nb_tensor_destroy(yt);
                free(z);
                free(y);
                free(lab);
            }
}

// Loss 2000 (= lse - z_label = 1000 - (-1000)) and gradient p - y = (1, -1, 0), all finite.
static void cross_entropy_logits_extreme(void **state) {
    (void)state;
    const double z[] = {1000, -1000, 0, -1000, 1000, -1000};
    const double y[] = {0, 1, 0, 0, 1, 0};
    const int32_t lab[] = {1, 1};
    for (int d = 0; d < 2; d++)
        for (int sparse = 0; sparse < 2; sparse++) {
            nb_tensor *x = mk2(dtypes[d], 2, 3, z, true);
            nb_tensor *t = sparse ? labels(2, lab) : mk2(dtypes[d], 2, 3, y, false);
            nb_graph *g = nb_graph_create();
            nb_tensor *l = sparse ? nb_sparse_cross_entropy_logits(g, x, t, NB_REDUCE_SUM)
                                  : nb_cross_entropy_logits(g, x, t, NB_REDUCE_SUM);
            assert_non_null(l);
            near(nb_tensor_get(l, 0), 2000, 1e-6);
            assert_int_equal(nb_backward(g, l), NB_OK);
            assert_true(all_finite(x, true));
            const double want[] = {1, -1, 0, 0, 0, 0};
            for (int i = 0; i < 6; i++)
                near(nb_tensor_grad_get(x, i), want[i], 1e-6);
            nb_graph_destroy(g);
            nb_tensor_destroy(x);
            nb_tensor_destroy(t);
        }
}

// Sparse backward writes the label's entry as prior - k (1 - p_label), with 1 - p_label summed
// from the other classes in forward: exact when p_label is 1 - 2e-13 (one logit 30 above the
// rest), where p - 1 would cancel to 0 in float32. Both row paths (a 3-class row in a block, a
// 200-class row alone), both dtypes; a second backward adds the same again onto every entry.
static void sparse_cross_entropy_confident_label_gradient(void **state) {
    (void)state;
    const int64_t widths[] = {3, 200};
    for (int w = 0; w < 2; w++)
        for (int d = 0; d < 2; d++) {
            int64_t n = widths[w];
            double *z = calloc((size_t)n, sizeof *z);
            assert_non_null(z);
            z[1] = 30;
            const int32_t lab[] = {1};
            nb_tensor *x = mk2(dtypes[d], 1, n, z, true);
            nb_tensor *l = labels(1, lab);
            nb_graph *g = nb_graph_create();
            nb_tensor *loss = nb_sparse_cross_entropy_logits(g, x, l, NB_REDUCE_SUM);
            assert_non_null(loss);
            // q = (n - 1) e^-30 / (1 + (n - 1) e^-30): the loss is log1p of the same ratio
            double r = (double)(n - 1) * exp(-30.0), q = r / (1 + r);
            double tol = dtypes[d] == NB_F32 ? 1e-6 : 1e-13;
            // the loss is (30 + ln s) - 30 in double: its rounding is ~30 * 2^-52 absolute
            near(nb_tensor_get(loss, 0), log1p(r), 3e-14);
            for (int pass = 1; pass <= 2; pass++) {
                assert_int_equal(nb_backward(g, loss), NB_OK);
                double got = nb_tensor_grad_get(x, 1), want = -pass * q;
                if (!(fabs(got - want) <= tol * q))
                    fail_msg("n %lld %s pass %d: grad[label] = %.9g, want %.9g", (long long)n,
                             nb_dtype_name(dtypes[d]), pass, got, want);
                near(nb_tensor_grad_get(x, 0), pass * exp(-30.0) / (1 + r), tol * exp(-30.0));
            }
            nb_graph_destroy(g);
            nb_tensor_destroy(x);
            nb_tensor_destroy(l);
            free(z);
        }
}

// A replay with new labels and logits saves what backward needs for those (the probabilities
// and 1 - p_label), so it gives the bits of a fresh recording; and the gradients of a batch
// large enough for the backward's parallel blocks (1200 x 40 > NB_OMP_MIN) are the same bits
// with 1 and 2 threads.
static void sparse_cross_entropy_replay_and_threads(void **state) {
    (void)state;
    const int64_t rows = 1200, n = 40;
    double *z = malloc((size_t)(rows * n) * sizeof *z);
    int32_t *la = malloc((size_t)rows * sizeof *la), *lb = malloc((size_t)rows * sizeof *lb);
    assert_true(z && la && lb);
    for (int64_t i = 0; i < rows * n; i++)
        z[i] = 4 * sin(0.37 * (double)i);
    for (int64_t r = 0; r < rows; r++) {
        la[r] = (int32_t)((r * 7) % n);
        lb[r] = (int32_t)((r * 11 + 5) % n);
    }
    for (int d = 0; d < 2; d++) {
        nb_tensor *grads[3] = {NULL, NULL, NULL};
        for (int run = 0; run < 3; run++) { // 0: replayed (1 thread), 1: fresh, 2: fresh at 2
            nb_set_num_threads(run == 2 ? 2 : 1);
            nb_tensor *x = mk2(dtypes[d], rows, n, z, true);
            nb_tensor *l = labels(rows, run == 0 ? la : lb);
            nb_graph *g = nb_graph_create();
            nb_tensor *loss = nb_sparse_cross_entropy_logits(g, x, l, NB_REDUCE_MEAN);
            assert_non_null(loss);
            if (run == 0) { // refresh labels and logits in place, then replay
                memcpy(nb_tensor_data_i32(l), lb, (size_t)rows * sizeof *lb);
                for (int64_t i = 0; i < rows * n; i++)
                    nb_tensor_set(x, i, z[i]);
                assert_int_equal(nb_graph_replay(g), NB_OK);
            }
            assert_int_equal(nb_backward(g, loss), NB_OK);
            grads[run] = nb_tensor_create(dtypes[d], 2, (int64_t[]){rows, n});
            assert_non_null(grads[run]);
            for (int64_t i = 0; i < rows * n; i++)
                nb_tensor_set(grads[run], i, nb_tensor_grad_get(x, i));
            nb_graph_destroy(g);
            nb_tensor_destroy(x);
            nb_tensor_destroy(l);
        }
        for (int run = 1; run < 3; run++)
            for (int64_t i = 0; i < rows * n; i++)
                if (nb_tensor_get(grads[0], i) != nb_tensor_get(grads[run], i))
                    fail_msg("%s run %d: grad[%lld] = %.17g, replayed %.17g",
                             nb_dtype_name(dtypes[d]), run, (long long)i,
                             nb_tensor_get(grads[run], i), nb_tensor_get(grads[0], i));
        for (int run = 0; run < 3; run++)
            nb_tensor_destroy(grads[run]);
    }
    nb_set_num_threads(1);
    free(z);
    free(la);
    free(lb);
}

// With grad mode off nothing is saved; the loss value must not change.
static void cross_entropy_logits_eval_mode(void **state) {
    (void)state;
    nb_tensor *x = mk2(NB_F32, 1, 3, (double[]){1, 2, 3}, true);
    const int32_t lab[] = {2};
    nb_tensor *l = labels(1, lab);
    nb_graph *g = nb_graph_create();
    nb_graph_set_grad_enabled(g, false);
    nb_tensor *loss = nb_sparse_cross_entropy_logits(g, x, l, NB_REDUCE_MEAN);
    near(nb_tensor_get(loss, 0), log(exp(1.0) + exp(2.0) + exp(3.0)) - 3, 1e-6);
    assert_false(nb_tensor_requires_grad(loss));
    nb_graph_destroy(g);
    nb_tensor_destroy(x);
    nb_tensor_destroy(l);
}

static void errors_are_recorded(void **state) {
    (void)state;
    nb_tensor *a = mk2(NB_F32, 2, 3, NULL, true), *b = mk2(NB_F32, 3, 2, NULL, false);
    nb_tensor *z = mk2(NB_F32, 2, 4, NULL, true), *z64 = mk2(NB_F64, 2, 3, NULL, false);
    nb_tensor *flab = mk(NB_F32, 1, (int64_t[]){2}, NULL, false);
    nb_tensor *l3 = labels(3, (const int32_t[]){0, 1, 2});
    nb_tensor *hi = labels(2, (const int32_t[]){0, 4}), *neg = labels(2, (const int32_t[]){-1, 0});
    nb_tensor *v = mk(NB_F32, 1, (int64_t[]){4}, NULL, false);
    nb_graph *g = nb_graph_create();

    assert_true(oc_expect_error(g, nb_bce_logits_loss(g, a, b, NB_REDUCE_SUM), NB_ERR_SHAPE,
                                "bce_logits_loss", "(2, 3)", "(3, 2)", NULL));
    nb_graph_reset(g);
    assert_true(oc_expect_error(g, nb_cross_entropy_logits(g, z, a, NB_REDUCE_MEAN), NB_ERR_SHAPE,
                                "cross_entropy_logits", "(2, 4)", "(2, 3)", NULL));
    nb_graph_reset(g);
    assert_true(oc_expect_error(g, nb_cross_entropy_loss(g, v, v, NB_REDUCE_MEAN), NB_ERR_SHAPE,
                                "cross_entropy_loss", "(4)", "2-D", NULL));
    nb_graph_reset(g);
    assert_true(oc_expect_error(g, nb_bce_loss(g, a, z64, NB_REDUCE_MEAN), NB_ERR_DTYPE, "bce_loss",
                                "float64", NULL));

    // Sparse labels: shape, range (naming the bad label and where it is), dtype.
    nb_graph_reset(g);
    assert_true(oc_expect_error(g, nb_sparse_cross_entropy_logits(g, z, l3, NB_REDUCE_MEAN),
                                NB_ERR_SHAPE, "sparse_cross_entropy_logits", "labels (3)", "(2, 4)",
                                NULL));
    nb_graph_reset(g);
    assert_true(oc_expect_error(g, nb_sparse_cross_entropy_logits(g, z, hi, NB_REDUCE_MEAN),
                                NB_ERR_ARG, "sparse_cross_entropy_logits", "label 4", "index 1",
                                "[0, 4)", NULL));
    nb_graph_reset(g);
    assert_true(oc_expect_error(g, nb_sparse_cross_entropy_logits(g, z, neg, NB_REDUCE_SUM),
                                NB_ERR_ARG, "sparse_cross_entropy_logits", "label -1", "index 0",
                                NULL));
    nb_graph_reset(g);
    assert_true(oc_expect_error(g, nb_sparse_cross_entropy_logits(g, z, flab, NB_REDUCE_SUM),
                                NB_ERR_DTYPE, "sparse_cross_entropy_logits", "int32", NULL));
    nb_graph_reset(g);
    assert_true(oc_expect_error(g, nb_sparse_cross_entropy_logits(g, v, l3, NB_REDUCE_SUM),
                                NB_ERR_SHAPE, "sparse_cross_entropy_logits", "(4)", "2-D", NULL));

    // Reductions outside the enum.
    nb_graph_reset(g);
    assert_true(oc_expect_error(g, nb_bce_loss(g, a, a, (nb_reduction)7), NB_ERR_ARG, "bce_loss",
                                "reduction 7", NULL));
    nb_graph_reset(g);
    assert_true(oc_expect_error(g, nb_cross_entropy_logits(g, z, z, (nb_reduction)-1), NB_ERR_ARG,
                                "cross_entropy_logits", "reduction -1", NULL));

    // NULL inputs, then sticky propagation: the first message survives later calls.
    nb_graph_reset(g);
    assert_true(oc_expect_error(g, nb_cross_entropy_logits(g, NULL, z, NB_REDUCE_MEAN), NB_ERR_NULL,
                                "cross_entropy_logits", NULL));
    assert_null(nb_softmax(g, a));
    assert_null(nb_mse_loss(g, a, a, NB_REDUCE_MEAN));
    assert_true(oc_expect_error(g, NULL, NB_ERR_NULL, "cross_entropy_logits", NULL));
    assert_null(nb_sparse_cross_entropy_logits(NULL, z, hi, NB_REDUCE_MEAN));
    assert_non_null(strstr(nb_last_error(), "sparse_cross_entropy_logits"));

    nb_graph_destroy(g);
    nb_tensor *all[] = {a, b, z, z64, flab, l3, hi, neg, v};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        nb_tensor_destroy(all[i]);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(bce_hand_values_and_clamp),
        cmocka_unit_test(bce_logits_matches_bce_of_sigmoid),
        cmocka_unit_test(bce_logits_extreme_is_finite),
        cmocka_unit_test(cross_entropy_probs_hand_value),
        cmocka_unit_test(cross_entropy_forms_agree),
        cmocka_unit_test(cross_entropy_logits_extreme),
        cmocka_unit_test(cross_entropy_logits_blocks_match_reference),
        cmocka_unit_test(sparse_cross_entropy_confident_label_gradient),
        cmocka_unit_test(sparse_cross_entropy_replay_and_threads),
        cmocka_unit_test(cross_entropy_logits_eval_mode),
        cmocka_unit_test(errors_are_recorded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
