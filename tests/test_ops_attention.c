// scaled_dot_product_attention: values and gradients against PyTorch 1.13 (the math of
// F.scaled_dot_product_attention written out: q kᵀ / sqrt(d) + mask, masked_fill of the causal
// triangle, softmax, @ v), against the same math composed from nabla ops at a size that spans
// several row chunks, rows with no visible key, large scores, the memory bound of backward,
// dropout's reproducibility and rate, thread-count independence and the zero-allocation
// steady state.
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "support/alloc_count.h"
#include "support/expect.h"
#include "support/opcheck.h"

// q = 1.5 sin(0.37 i) (1, 2, 3, 4), k = 1.2 cos(0.23 i) (1, 2, 5, 4), v = sin(0.71 i)
// (1, 2, 5, 2), mask = 0.5 cos(1.1 i) (3, 5), causal, dy = cos(0.3 i).
static const double ref_o[12] = {0,
                                 0.651833771022,
                                 0.164677414562,
                                 0.684455060105,
                                 0.460027751107,
                                 -0.000448208035767,
                                 0.728969040126,
                                 0.999032963836,
                                 0.76242077692,
                                 0.528946719053,
                                 0.207993573201,
                                 -0.287985740831};
static const double ref_dq[24] = {0,
                                  0,
                                  0,
                                  0,
                                  -0.0307874974308,
                                  -0.0441434180139,
                                  -0.0551744279308,
                                  -0.0632995546659,
                                  0.028719583162,
                                  0.028453689074,
                                  0.0266892185685,
                                  0.0235191013843,
                                  0,
                                  0,
                                  0,
                                  0,
                                  0.0834919531831,
                                  0.0743967380724,
                                  0.0613832543351,
                                  0.0451368858519,
                                  0.128704253288,
                                  0.0527149034814,
                                  -0.0260507932169,
                                  -0.103444467318};
static const double ref_dk[40] = {-0.0982948982732,
                                  -0.0927456725767,
                                  -0.0746437551866,
                                  -0.0464391557017,
                                  0.106213523287,
                                  0.0845333422507,
                                  0.051411969905,
                                  0.0113322286172,
                                  -0.00791862501335,
                                  0.00821233032605,
                                  0.0232317852816,
                                  0.0351069270845,
                                  0,
                                  0,
                                  0,
                                  0,
                                  0,
                                  0,
                                  0,
                                  0,
                                  0.000273649778681,
                                  -0.0497937110424,
                                  -0.0931217266668,
                                  -0.123846153441,
                                  -0.406687011638,
                                  -0.400832033274,
                                  -0.340726319593,
                                  -0.234504896975,
                                  0.40641336186,
                                  0.450625744316,
                                  0.43384804626,
                                  0.358351050416,
                                  0,
                                  0,
                                  0,
                                  0,
                                  0,
                                  0,
                                  0,
                                  0};
static const double ref_dv[20] = {1.71150753043,
                                  1.478022388,
                                  0.233024070098,
                                  0.122192759987,
                                  0.24316176886,
                                  0.0474685110757,
                                  0,
                                  0,
                                  0,
                                  0,
                                  -0.570533752867,
                                  -0.917489396334,
                                  -0.938065432426,
                                  -1.03405147568,
                                  -0.445989121543,
                                  -0.444857144509,
                                  0,
                                  0,
                                  0,
                                  0};
static const double ref_dmask[15] = {0,
                                     0,
                                     0,
                                     0,
                                     0,
                                     -0.296867781897,
                                     0.296867781897,
                                     0,
                                     0,
                                     0,
                                     -0.0733533794575,
                                     -0.471143189788,
                                     0.544496569245,
                                     0,
                                     0};

static void matches_torch(void **state) {
    (void)state;
    for (int f = 0; f < 2; f++) {
        nb_dtype dt = f ? NB_F32 : NB_F64;
        double tol = f ? 2e-6 : 1e-11;
        nb_tensor *q = pattern(dt, 4, (int64_t[]){1, 2, 3, 4}, sin, 0.37, 1.5, 0, true);
        nb_tensor *k = pattern(dt, 4, (int64_t[]){1, 2, 5, 4}, cos, 0.23, 1.2, 0, true);
        nb_tensor *v = pattern(dt, 4, (int64_t[]){1, 2, 5, 2}, sin, 0.71, 1.0, 0, true);
        nb_tensor *m = pattern(dt, 2, (int64_t[]){3, 5}, cos, 1.1, 0.5, 0, true);
        nb_tensor *gy = pattern(dt, 4, (int64_t[]){1, 2, 3, 2}, cos, 0.3, 1.0, 0, false);
        nb_graph *g = nb_graph_create();
        nb_tensor *o = nb_scaled_dot_product_attention(g, q, k, v, m, true, 0.0, NULL);
        nb_tensor *loss = nb_sum(g, nb_mul(g, o, gy));
        assert_int_equal(nb_backward(g, loss), NB_OK);
        assert_true(all_near(o, false, ref_o, 12, tol));
        assert_true(all_near(q, true, ref_dq, 24, tol));
        assert_true(all_near(k, true, ref_dk, 40, tol));
        assert_true(all_near(v, true, ref_dv, 20, tol));
        assert_true(all_near(m, true, ref_dmask, 15, tol));
        nb_graph_destroy(g);
        nb_tensor_destroy(q), nb_tensor_destroy(k), nb_tensor_destroy(v);
        nb_tensor_destroy(m), nb_tensor_destroy(gy);
    }
}

// The unfused math on the tape: the reference for the fused op at larger sizes.
// The causal mask it makes is returned in *cm_out (the caller destroys it after backward).
static nb_tensor *composed(nb_graph *g, nb_tensor *q, nb_tensor *k, nb_tensor *v, nb_tensor *m,
                           bool causal, nb_tensor **cm_out) {
    int r = nb_tensor_ndim(q);
    int64_t tq = nb_tensor_dim(q, r - 2), tk = nb_tensor_dim(k, r - 2);
    nb_tensor *s =
        nb_scale(g, nb_matmul_t(g, q, k, false, true), 1.0 / sqrt((double)nb_tensor_dim(q, r - 1)));
    if (m)
        s = nb_add(g, s, m);
    nb_tensor *cm = NULL;
    if (causal) {
        cm = nb_tensor_create(nb_tensor_dtype(q), 2, (int64_t[]){tq, tk});
        for (int64_t i = 0; i < tq; i++)
            for (int64_t j = 0; j < tk; j++)
                nb_tensor_set(cm, i * tk + j, j > i);
        s = nb_masked_fill(g, s, cm, -INFINITY);
    }
    *cm_out = cm;
    return nb_matmul(g, nb_softmax(g, s), v);
}

static nb_tensor *rand_t(nb_dtype dt, int ndim, const int64_t *shape, nb_rng *rng, bool grad) {
    nb_tensor *t = nb_tensor_create(dt, ndim, shape);
    nb_init_uniform(t, rng, -2, 2);
    nb_tensor_set_requires_grad(t, grad);
    return t;
}

// Several row chunks (tq 150 = 64 + 64 + 22), tq != tk, causal and a broadcast mask.
static void matches_composed_ops(void **state) {
    (void)state;
    for (int causal = 0; causal < 2; causal++)
        for (int f = 0; f < 2; f++) {
            nb_dtype dt = f ? NB_F32 : NB_F64;
            double tol = f ? 1e-4 : 1e-10;
            nb_rng rng;
            nb_rng_seed(&rng, 3);
            nb_tensor *x[4] = {rand_t(dt, 4, (int64_t[]){2, 3, 150, 16}, &rng, true),
                               rand_t(dt, 4, (int64_t[]){2, 3, 170, 16}, &rng, true),
                               rand_t(dt, 4, (int64_t[]){2, 3, 170, 8}, &rng, true),
                               rand_t(dt, 4, (int64_t[]){2, 1, 1, 170}, &rng, true)};
            nb_tensor *gy = rand_t(dt, 4, (int64_t[]){2, 3, 150, 8}, &rng, false);
            double *ref[5];
            for (int pass = 0; pass < 2; pass++) {
                for (int i = 0; i < 4; i++)
                    nb_tensor_zero_grad(x[i]);
                nb_graph *g = nb_graph_create();
                nb_tensor *cm = NULL;
                nb_tensor *o = pass ? nb_scaled_dot_product_attention(g, x[0], x[1], x[2], x[3],
                                                                      causal, 0.0, NULL)
                                    : composed(g, x[0], x[1], x[2], x[3], causal, &cm);
                assert_int_equal(nb_backward(g, nb_sum(g, nb_mul(g, o, gy))), NB_OK);
                for (int i = 0; i < 5; i++) {
                    const nb_tensor *t = i < 4 ? x[i] : o;
                    int64_t n = nb_tensor_numel(t);
                    if (pass == 0) {
                        ref[i] = malloc((size_t)n * sizeof(double));
                        for (int64_t j = 0; j < n; j++)
                            ref[i][j] = i < 4 ? nb_tensor_grad_get(t, j) : nb_tensor_get(t, j);
                    } else {
                        assert_true(all_near(t, i < 4, ref[i], n, tol));
                        free(ref[i]);
                    }
                }
                nb_graph_destroy(g);
                nb_tensor_destroy(cm);
            }
            for (int i = 0; i < 4; i++)
                nb_tensor_destroy(x[i]);
            nb_tensor_destroy(gy);
        }
}

// A query whose keys are all hidden by -inf gives 0 and passes no gradient (PyTorch >= 2.5 too;
// 2.0-2.4 gave NaN);
// a partly hidden row is a softmax over the rest; scores of ±1000 stay finite.
static void hidden_rows_and_large_scores(void **state) {
    (void)state;
    nb_tensor *q = pattern(NB_F32, 2, (int64_t[]){3, 2}, sin, 0.7, 1000, 0, true);
    nb_tensor *k = pattern(NB_F32, 2, (int64_t[]){4, 2}, cos, 0.9, 1000, 0, true);
    nb_tensor *v = pattern(NB_F32, 2, (int64_t[]){4, 3}, sin, 0.4, 1, 0, true);
    nb_tensor *m = nb_tensor_create(NB_F32, 2, (int64_t[]){3, 4});
    for (int j = 0; j < 4; j++)
        nb_tensor_set(m, j, -INFINITY); // row 0: nothing visible
    nb_tensor_set(m, 4 + 1, -INFINITY);
    nb_graph *g = nb_graph_create();
    nb_tensor *o = nb_scaled_dot_product_attention(g, q, k, v, m, false, 0.0, NULL);
    assert_int_equal(nb_backward(g, nb_sum(g, o)), NB_OK);
    for (int j = 0; j < 3; j++)
        assert_true(nb_tensor_get(o, j) == 0.0);
    for (int64_t i = 0; i < 9; i++)
        assert_true(isfinite(nb_tensor_get(o, i)));
    for (int j = 0; j < 2; j++)
        assert_true(nb_tensor_grad_get(q, j) == 0.0);
    for (int64_t i = 0; i < 8; i++)
        assert_true(isfinite(nb_tensor_grad_get(k, i)));
    // Scores of ~1e6: each visible row is one-hot on its best key (row 1 on key 0, by 2.4e4
    // over key 3; row 2 on key 1), so v's row comes out exactly and gets all of the gradient.
    for (int c = 0; c < 3; c++) {
        assert_true(nb_tensor_get(o, 3 + c) == nb_tensor_get(v, c));
        assert_true(nb_tensor_get(o, 6 + c) == nb_tensor_get(v, 3 + c));
        assert_true(nb_tensor_grad_get(v, c) == 1.0 && nb_tensor_grad_get(v, 3 + c) == 1.0);
    }
    nb_graph_destroy(g);
    nb_tensor_destroy(q), nb_tensor_destroy(k), nb_tensor_destroy(v), nb_tensor_destroy(m);
}

// The vjp (the gradient recorded as ops, for higher order) follows the kernel's convention
// for a row with no visible key: output 0 and no gradient through it, not NaN (PyTorch >= 2.5's
// _safe_softmax; PyTorch 2.0-2.4 gave NaN). Both paths agree on every gradient, the mask's
// included, with causal on and off; the second derivative through such a row is finite and
// passes its finite-difference check.
static nb_tensor *hidden_row_mask(void) {
    // (3, 4): row 0 sees nothing, row 1 all but key 2, row 2 everything (plus small biases)
    nb_tensor *m = pattern(NB_F64, 2, (int64_t[]){3, 4}, cos, 1.3, 0.25, 0, true);
    for (int j = 0; j < 4; j++)
        nb_tensor_set(m, j, -INFINITY);
    nb_tensor_set(m, 4 + 2, -INFINITY);
    return m;
}

static nb_tensor *sdpa_hidden(nb_graph *g, nb_tensor *const *in, int n, void *ctx) {
    (void)n;
    return nb_scaled_dot_product_attention(g, in[0], in[1], in[2], ctx, false, 0.0, NULL);
}

static void vjp_agrees_on_hidden_rows(void **state) {
    (void)state;
    for (int causal = 0; causal < 2; causal++) {
        nb_tensor *x[4] = {pattern(NB_F64, 3, (int64_t[]){2, 3, 2}, sin, 0.7, 1.5, 0, true),
                           pattern(NB_F64, 3, (int64_t[]){2, 4, 2}, cos, 0.9, 1.2, 0, true),
                           pattern(NB_F64, 3, (int64_t[]){2, 4, 3}, sin, 0.4, 1, 0, true),
                           hidden_row_mask()};
        nb_tensor *gy = pattern(NB_F64, 3, (int64_t[]){2, 3, 3}, cos, 0.3, 1, 0, false);
        nb_tensor *grads[2][4];
        nb_graph *gs[2];
        for (int cg = 0; cg < 2; cg++) {
            nb_graph *g = gs[cg] = nb_graph_create();
            nb_tensor *o =
                nb_scaled_dot_product_attention(g, x[0], x[1], x[2], x[3], causal, 0.0, NULL);
            assert_non_null(o);
            for (int c = 0; c < 3; c++) // both batch entries' row 0 are 0
                assert_true(nb_tensor_get(o, c) == 0.0 && nb_tensor_get(o, 9 + c) == 0.0);
            assert_int_equal(nb_grad(g, &o, &gy, 1, x, 4, cg == 1, grads[cg]), NB_OK);
        }
        for (int i = 0; i < 4; i++) {
            int64_t n = nb_tensor_numel(x[i]);
            assert_int_equal(nb_tensor_numel(grads[1][i]), n);
            for (int64_t e = 0; e < n; e++) {
                double a = nb_tensor_get(grads[0][i], e), b = nb_tensor_get(grads[1][i], e);
                if (!(isfinite(b) && fabs(a - b) <= 1e-12)) {
                    fprintf(stderr, "causal %d input %d element %lld: kernel %.17g, vjp %.17g\n",
                            causal, i, (long long)e, a, b);
                    fail();
                }
            }
        }
        // row 0 of q (both batch entries) gets nothing; row 0 of the mask neither
        for (int c = 0; c < 2; c++)
            assert_true(nb_tensor_get(grads[1][0], c) == 0.0 &&
                        nb_tensor_get(grads[1][0], 6 + c) == 0.0);
        for (int j = 0; j < 4; j++)
            assert_true(nb_tensor_get(grads[1][3], j) == 0.0);
        nb_graph_destroy(gs[0]), nb_graph_destroy(gs[1]);
        if (!causal) { // second order through the hidden row, mask held fixed
            nb_tensor_set_requires_grad(x[3], false);
            nb_gradcheck_result r = nb_gradgradcheck(sdpa_hidden, x[3], x, 3, 1e-6, 1e-7, 1e-5);
            if (!r.ok)
                fprintf(stderr, "gradgradcheck: status %d, input %d element %lld: %g vs %g\n",
                        r.status, r.worst_input, (long long)r.worst_index, r.worst_analytic,
                        r.worst_numeric);
            assert_true(r.ok);
        }
        for (int i = 0; i < 4; i++)
            nb_tensor_destroy(x[i]);
        nb_tensor_destroy(gy);
    }
}

// Backward keeps no (tq, tk) block per slice: at tq = tk = 1024 the whole P would be 4 MiB, and
// a 2 MiB arena budget still fits forward and backward, where the composed math cannot.
static void backward_memory_is_blockwise(void **state) {
    (void)state;
    nb_rng rng;
    nb_rng_seed(&rng, 9);
    nb_tensor *q = rand_t(NB_F32, 3, (int64_t[]){1, 1024, 4}, &rng, true);
    nb_tensor *k = rand_t(NB_F32, 3, (int64_t[]){1, 1024, 4}, &rng, true);
    nb_tensor *v = rand_t(NB_F32, 3, (int64_t[]){1, 1024, 4}, &rng, true);
    nb_graph *g = nb_graph_create();
    nb_graph_set_limits(g, 0, (size_t)2 << 20);
    nb_tensor *o = nb_scaled_dot_product_attention(g, q, k, v, NULL, true, 0.0, NULL);
    assert_non_null(o);
    assert_int_equal(nb_backward(g, nb_sum(g, o)), NB_OK);
    nb_graph_reset(g);
    nb_tensor *cm = NULL;
    assert_null(nb_sum(g, composed(g, q, k, v, NULL, false, &cm)));
    nb_graph_destroy(g);
    nb_tensor_destroy(q), nb_tensor_destroy(k), nb_tensor_destroy(v);
}

// Dropout: the same seed gives the same output bitwise, another seed another mask, a replay a
// new mask; with
// uniform attention over 4000 keys and v = 1 the output is the kept fraction / (1 - p) ≈ 1.
static void dropout_seeded_and_unbiased(void **state) {
    (void)state;
    nb_tensor *q = nb_tensor_create(NB_F64, 3, (int64_t[]){1, 2, 4});
    nb_tensor *k = nb_tensor_create(NB_F64, 3, (int64_t[]){1, 4000, 4});
    nb_tensor *v = nb_tensor_create(NB_F64, 3, (int64_t[]){1, 4000, 1});
    nb_tensor_fill(v, 1.0);
    double out[3][2];
    for (int run = 0; run < 3; run++) {
        nb_rng rng;
        nb_rng_seed(&rng, run == 2 ? 8 : 7);
        nb_graph *g = nb_graph_create();
        nb_tensor *o = nb_scaled_dot_product_attention(g, q, k, v, NULL, false, 0.25, &rng);
        out[run][0] = nb_tensor_get(o, 0);
        out[run][1] = nb_tensor_get(o, 1);
        assert_true(fabs(out[run][0] - 1) < 0.05 && fabs(out[run][1] - 1) < 0.05);
        assert_true(out[run][0] != out[run][1]); // rows draw different masks
        nb_graph_destroy(g);
    }
    assert_true(out[0][0] == out[1][0] && out[0][1] == out[1][1]);
    assert_true(out[0][0] != out[2][0]);
    // A replay is the next step: a new mask from the same generator, the one a second
    // recording would draw, bit for bit.
    nb_rng rng, ref;
    nb_rng_seed(&rng, 7);
    nb_rng_seed(&ref, 7);
    nb_graph *g = nb_graph_create(), *ref_g = nb_graph_create();
    nb_tensor *o = nb_scaled_dot_product_attention(g, q, k, v, NULL, false, 0.25, &rng);
    assert_non_null(o);
    assert_non_null(nb_scaled_dot_product_attention(ref_g, q, k, v, NULL, false, 0.25, &ref));
    nb_tensor *o2 = nb_scaled_dot_product_attention(ref_g, q, k, v, NULL, false, 0.25, &ref);
    assert_int_equal(nb_graph_replay(g), NB_OK);
    assert_true(nb_tensor_get(o, 0) != out[0][0] || nb_tensor_get(o, 1) != out[0][1]);
    assert_true(nb_tensor_get(o, 0) == nb_tensor_get(o2, 0));
    assert_true(nb_tensor_get(o, 1) == nb_tensor_get(o2, 1));
    nb_graph_destroy(g), nb_graph_destroy(ref_g);
    nb_tensor_destroy(q), nb_tensor_destroy(k), nb_tensor_destroy(v);
}

// One and two threads give the same bits (the slices are independent; dropout is
// counter-based), and a training step allocates nothing once the arena has grown.
static void threads_and_steady_state(void **state) {
    (void)state;
    nb_rng rng;
    nb_rng_seed(&rng, 4);
    nb_tensor *q = rand_t(NB_F32, 4, (int64_t[]){4, 4, 64, 32}, &rng, true);
    nb_tensor *k = rand_t(NB_F32, 4, (int64_t[]){4, 4, 64, 32}, &rng, true);
    nb_tensor *v = rand_t(NB_F32, 4, (int64_t[]){4, 4, 64, 32}, &rng, true);
    double first[2] = {0, 0};
    for (int run = 0; run < 2; run++) {
        nb_set_num_threads(run ? 2 : 1);
        nb_tensor_zero_grad(q);
        nb_rng dr;
        nb_rng_seed(&dr, 5);
        nb_graph *g = nb_graph_create();
        nb_tensor *o = nb_scaled_dot_product_attention(g, q, k, v, NULL, true, 0.1, &dr);
        nb_tensor *loss = nb_sum(g, nb_square(g, o));
        assert_int_equal(nb_backward(g, loss), NB_OK);
        double sums[2] = {nb_tensor_get(loss, 0), 0};
        for (int64_t i = 0; i < nb_tensor_numel(q); i++)
            sums[1] += nb_tensor_grad_get(q, i) * (double)(i % 7);
        for (int j = 0; j < 2; j++) {
            if (run)
                assert_true(sums[j] == first[j]);
            first[j] = sums[j];
        }
        nb_graph_destroy(g);
    }
    nb_set_num_threads(2);
    tc_count_allocs_start();
    nb_graph *g = nb_graph_create();
    long before = 0;
    for (int step = 0; step < 4; step++) {
        if (step == 2)
            before = tc_allocs();
        nb_graph_reset(g);
        nb_rng_seed(&rng, 5);
        nb_tensor *o = nb_scaled_dot_product_attention(g, q, k, v, NULL, true, 0.1, &rng);
        assert_int_equal(nb_backward(g, nb_sum(g, o)), NB_OK);
    }
    long steady = tc_allocs() - before;
    tc_count_allocs_stop();
    assert_int_equal(steady, 0);
    nb_graph_destroy(g);
    nb_tensor_destroy(q), nb_tensor_destroy(k), nb_tensor_destroy(v);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(matches_torch),
        cmocka_unit_test(matches_composed_ops),
        cmocka_unit_test(hidden_rows_and_large_scores),
        cmocka_unit_test(vjp_agrees_on_hidden_rows),
        cmocka_unit_test(backward_memory_is_blockwise),
        cmocka_unit_test(dropout_seeded_and_unbiased),
        cmocka_unit_test(threads_and_steady_state),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
