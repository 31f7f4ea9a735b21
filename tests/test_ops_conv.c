// conv2d / conv1d: values and gradients against PyTorch (reference numbers below were computed
// once with torch 1.13 F.conv2d in float64 from the same input patterns; regenerate with the
// script in the comment of ref_conv), zero-allocation replays, bad input naming op and shapes.
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "support/alloc_count.h"
#include "support/expect.h"
#include "support/opcheck.h"

// x = sin(0.37 i) (2, 4, 5, 5), w = 0.5 cos(0.11 i) (4, 2, 3, 3), b = sin(1.3 i) (4),
// y = F.conv2d(x, w, b, stride=2, padding=1, dilation=2, groups=2), y.backward(cos(0.3 i)).
static const double ref_y[32] = {
    0.340633658976,  0.313985267022, 0.249670304432,  0.212781160465,  1.03352746816,
    1.07719512112,   1.15989832202,  1.19793416987,   0.166796158837,  0.167461448788,
    0.181354248152,  0.194413824127, -0.536970564961, -0.572427886636, -0.647079635503,
    -0.685371686979, 0.12516631608,  0.0983379910127, 0.0414539339637, 0.0120858053188,
    1.13164436852,   1.15360800126,  1.19040568897,   1.20479494069,   0.377678882652,
    0.394583824645,  0.432556580001, 0.453165386135,  -0.767245871647, -0.787040957606,
    -0.822806312999, -0.838344257824};
static const double ref_dx[200] = {0,
                                   0,
                                   0,
                                   0,
                                   0,
                                   0,
                                   1.62220157498,
                                   0,
                                   1.58729467749,
                                   0,
                                   0,
                                   0,
                                   0,
                                   0,
                                   0,
                                   0,
                                   1.46057403656,
                                   0,
                                   1.37029206739,
                                   0,
                                   0,
                                   0,
                                   0,
                                   0,
                                   0,
                                   0,
                                   0,
                                   0,
                                   0,
                                   0,
                                   0,
                                   0.698915562018,
                                   0,
                                   0.532036290499,
                                   0,
                                   0,
                                   0,
                                   0,
                                   0,
                                   0,
                                   0,
                                   0.181079238546,
                                   0,
                                   0.00124375820069,
                                   0,
                                   0,
                                   0,
                                   0,
                                   0,
                                   0,
                                   0,
                                   0,
                                   0,
                                   0,
                                   0,
                                   0,
                                   -0.214369904989,
                                   0,
                                   -0.385810367366,
                                   0,
                                   0,
                                   0,
                                   0,
                                   0,
                                   0,
                                   0,
                                   -0.712684525676,
                                   0,
                                   -0.864167030823,
                                   0,
                                   0,
                                   0,
                                   0,
                                   0,
                                   0,
                                   0,
                                   0,
                                   0,
                                   0,
                                   0,
                                   0,
                                   -1.43310898867,
                                   0,
                                   -1.49955162476,
                                   0,
                                   0,
                                   0,
                                   0,
                                   0,
                                   0,
                                   0,
                                   -1.57747399959,
                                   0,
                                   -1.58801182794,
                                   0,
                                   0,
                                   0,
                                   0,
                                   0,
                                   0,
                                   0,
                                   0,
                                   0,
                                   0,
                                   0,
                                   0,
                                   -0.144096942128,
                                   0,
                                   -0.317552880523,
                                   0,
                                   0,
                                   0,
                                   0,
                                   0,
                                   0,
                                   0,
                                   -0.650898904132,
                                   0,
                                   -0.80675956792,
                                   0,
                                   0,
                                   0,
                                   0,
                                   0,
                                   0,
                                   0,
                                   0,
                                   0,
                                   0,
                                   0,
                                   0,
                                   -1.40666544199,
                                   0,
                                   -1.48059020804,
                                   0,
                                   0,
                                   0,
                                   0,
                                   0,
                                   0,
                                   0,
                                   -1.5740712354,
                                   0,
                                   -1.59249751636,
                                   0,
                                   0,
                                   0,
                                   0,
                                   0,
                                   0,
                                   0,
                                   0,
                                   0,
                                   0,
                                   0,
                                   0,
                                   -1.64061632757,
                                   0,
                                   -1.6166276438,
                                   0,
                                   0,
                                   0,
                                   0,
                                   0,
                                   0,
                                   0,
                                   -1.51055202561,
                                   0,
                                   -1.42974731249,
                                   0,
                                   0,
                                   0,
                                   0,
                                   0,
                                   0,
                                   0,
                                   0,
                                   0,
                                   0,
                                   0,
                                   0,
                                   -0.793015725894,
                                   0,
                                   -0.629929442714,
                                   0,
                                   0,
                                   0,
                                   0,
                                   0,
                                   0,
                                   0,
                                   -0.282976882465,
                                   0,
                                   -0.103304499972,
                                   0,
                                   0,
                                   0,
                                   0,
                                   0,
                                   0};
static const double ref_dw[72] = {
    1.32882647661,   2.04731699418,   0.63851978118,   0.1885642646,    0.464720675326,
    0.350728711606,  -0.669541248235, -0.199878774869, 0.340245534367,  -1.36668790678,
    -2.29610057574,  -0.840209564972, -0.111134346334, -0.34116899563,  -0.287969876023,
    0.846627652878,  0.583598224155,  -0.158940577365, 0.412566420855,  1.30597178797,
    0.691775702197,  0.521792392099,  0.83803731509,   0.421327813903,  -0.898482357283,
    -1.25808776011,  -0.170797007824, -0.346132616583, -1.25790401566,  -0.747568396592,
    -0.525606494128, -0.881384784561, -0.463182107926, 0.980941291127,  1.5554601877,
    0.385151058845,  -1.16784800511,  -1.62591250331,  -0.450597891233, 0.341754760386,
    0.443483202034,  0.139343106226,  0.248915950359,  -0.358893486136, -0.398758566674,
    1.18427185528,   1.8178059899,    0.58903106709,   -0.403315540222, -0.575869397665,
    -0.226735095288, -0.354523232242, 0.163183714833,  0.347301575164,  -1.11550983297,
    -2.34983235175,  -1.10713822138,  -0.265730573523, -0.576477610954, -0.389939293665,
    1.2139045338,    1.54534260755,   0.298783173128,  1.04223113055,   2.36680941348,
    1.21669334417,   0.193272287189,  0.469669269139,  0.339387993925,  -1.3115190316,
    -1.88214353127,  -0.52078434624};
static const double ref_db[4] = {5.33716445924, 3.42703337197, -2.85354022487, -5.49503822836};

static void conv2d_matches_torch(void **state) {
    (void)state;
    for (int d = 0; d < 2; d++) {
        nb_dtype dt = d ? NB_F64 : NB_F32;
        double tol = d ? 1e-10 : 1e-5;
        nb_tensor *x = pattern(dt, 4, (int64_t[]){2, 4, 5, 5}, sin, 0.37, 1, 0, true);
        nb_tensor *w = pattern(dt, 4, (int64_t[]){4, 2, 3, 3}, cos, 0.11, 0.5, 0, true);
        nb_tensor *b = pattern(dt, 1, (int64_t[]){4}, sin, 1.3, 1, 0, true);
        nb_tensor *up = pattern(dt, 4, (int64_t[]){2, 4, 2, 2}, cos, 0.3, 1, 0, false);
        nb_graph *g = nb_graph_create();
        nb_tensor *y = nb_conv2d(g, x, w, b, 2, 1, 2, 2);
        assert_non_null(y);
        assert_int_equal(nb_tensor_ndim(y), 4);
        assert_int_equal(nb_tensor_dim(y, 2), 2);
        assert_int_equal(nb_tensor_dim(y, 3), 2);
        assert_true(all_near(y, false, ref_y, 32, tol));
        assert_int_equal(nb_backward_with(g, y, up), NB_OK);
        assert_true(all_near(x, true, ref_dx, 200, tol));
        assert_true(all_near(w, true, ref_dw, 72, tol));
        assert_true(all_near(b, true, ref_db, 4, tol));
        nb_graph_destroy(g);
        nb_tensor_destroy(x);
        nb_tensor_destroy(w);
        nb_tensor_destroy(b);
        nb_tensor_destroy(up);
    }
}

// conv1d is conv2d over a height of 1: compare with conv2d on the unsqueezed operands.
static void conv1d_is_conv2d_of_height_one(void **state) {
    (void)state;
    nb_tensor *x = pattern(NB_F64, 3, (int64_t[]){2, 4, 11}, sin, 0.7, 1, 0, false);
    nb_tensor *w = pattern(NB_F64, 3, (int64_t[]){6, 2, 3}, cos, 0.4, 1, 0, false);
    nb_tensor *x4 = pattern(NB_F64, 4, (int64_t[]){2, 4, 1, 11}, sin, 0.7, 1, 0, false);
    nb_tensor *w4 = pattern(NB_F64, 4, (int64_t[]){6, 2, 1, 3}, cos, 0.4, 1, 0, false);
    nb_graph *g = nb_graph_create();
    nb_tensor *y = nb_conv1d(g, x, w, NULL, 2, 3, 2, 2);
    const int s[2] = {1, 2}, p[2] = {0, 3}, dl[2] = {1, 2};
    nb_tensor *y4 = nb_conv2d_hw(g, x4, w4, NULL, s, p, dl, 2);
    assert_non_null(y);
    assert_non_null(y4);
    assert_int_equal(nb_tensor_ndim(y), 3);
    assert_int_equal(nb_tensor_dim(y, 2), 7); // (11 + 6 - 4 - 1) / 2 + 1
    assert_int_equal(nb_tensor_numel(y), nb_tensor_numel(y4));
    for (int64_t i = 0; i < nb_tensor_numel(y); i++)
        assert_true(nb_tensor_get(y, i) == nb_tensor_get(y4, i));
    nb_graph_destroy(g);
    nb_tensor_destroy(x);
    nb_tensor_destroy(w);
    nb_tensor_destroy(x4);
    nb_tensor_destroy(w4);
}

// The same result at 1 and 2 samples-in-parallel threads (w's gradient is summed over the batch
// in a fixed order; each sample's dx is one thread's).
static void conv2d_bitwise_across_thread_counts(void **state) {
    (void)state;
    double first[3] = {0};
    for (int run = 0; run < 2; run++) {
        nb_set_num_threads(run ? 2 : 1);
        nb_tensor *x = pattern(NB_F32, 4, (int64_t[]){8, 4, 12, 12}, sin, 0.37, 1, 0, true);
        nb_tensor *w = pattern(NB_F32, 4, (int64_t[]){8, 4, 3, 3}, cos, 0.11, 0.5, 0, true);
        nb_graph *g = nb_graph_create();
        nb_tensor *y = nb_conv2d(g, x, w, NULL, 1, 1, 1, 1);
        nb_tensor *loss = nb_sum(g, nb_square(g, y));
        assert_int_equal(nb_backward(g, loss), NB_OK);
        double sums[3] = {nb_tensor_get(loss, 0), 0, 0};
        for (int64_t i = 0; i < nb_tensor_numel(x); i++)
            sums[1] += nb_tensor_grad_get(x, i) * (double)(i % 7);
        for (int64_t i = 0; i < nb_tensor_numel(w); i++)
            sums[2] += nb_tensor_grad_get(w, i) * (double)(i % 5);
        for (int k = 0; k < 3; k++) {
            if (run)
                assert_true(sums[k] == first[k]);
            first[k] = sums[k];
        }
        nb_graph_destroy(g);
        nb_tensor_destroy(x);
        nb_tensor_destroy(w);
    }
    nb_set_num_threads(2);
}

// A training step over conv2d (forward, backward, grads zeroed by hand) allocates nothing once
// the graph arena has grown: the column buffers come from the arena.

static void conv2d_steady_state_allocates_nothing(void **state) {
    (void)state;
    tc_count_allocs_start();
    nb_tensor *x = pattern(NB_F32, 4, (int64_t[]){8, 3, 9, 9}, sin, 0.37, 1, 0, false);
    nb_tensor *w = pattern(NB_F32, 4, (int64_t[]){8, 3, 3, 3}, cos, 0.11, 0.5, 0, true);
    nb_tensor *b = pattern(NB_F32, 1, (int64_t[]){8}, sin, 1.3, 1, 0, true);
    nb_graph *g = nb_graph_create();
    long before = 0;
    for (int step = 0; step < 4; step++) {
        if (step == 2)
            before = tc_allocs();
        nb_graph_reset(g);
        nb_tensor *y = nb_conv2d(g, x, w, b, 2, 1, 1, 1);
        nb_tensor *loss = nb_sum(g, nb_square(g, y));
        assert_non_null(loss);
        assert_int_equal(nb_backward(g, loss), NB_OK);
    }
    long steady = tc_allocs() - before;
    tc_count_allocs_stop();
    assert_int_equal(steady, 0);
    nb_graph_destroy(g);
    nb_tensor_destroy(x);
    nb_tensor_destroy(w);
    nb_tensor_destroy(b);
}

static void conv2d_bad_input(void **state) {
    (void)state;
    nb_tensor *x = nb_tensor_create(NB_F32, 4, (int64_t[]){2, 4, 5, 5});
    nb_tensor *w = nb_tensor_create(NB_F32, 4, (int64_t[]){6, 2, 3, 3});
    nb_tensor *wbig = nb_tensor_create(NB_F32, 4, (int64_t[]){6, 4, 6, 3});
    nb_tensor *b5 = nb_tensor_create(NB_F32, 1, (int64_t[]){5});
    nb_tensor *x3 = nb_tensor_create(NB_F32, 3, (int64_t[]){2, 4, 5});
    nb_graph *g = nb_graph_create();
    assert_true(oc_expect_error(g, nb_conv2d(g, x, wbig, NULL, 1, 0, 1, 1), NB_ERR_SHAPE,
                                "conv2d:", "(6, 4, 6, 3)", "larger than the padded input",
                                "(2, 4, 5, 5)", NULL));
    nb_graph_reset(g);
    // With padding 1 the same kernel fits: 5 + 2 >= 6.
    assert_non_null(nb_conv2d(g, x, wbig, NULL, 1, 1, 1, 1));
    nb_graph_reset(g);
    // Dilation 3 makes a 3-tap kernel span 7 > 5.
    assert_true(oc_expect_error(g, nb_conv2d(g, x, w, NULL, 1, 0, 3, 2), NB_ERR_SHAPE,
                                "conv2d:", "dilated extent 7", NULL));
    nb_graph_reset(g);
    assert_true(oc_expect_error(g, nb_conv2d(g, x, w, NULL, 0, 0, 1, 2), NB_ERR_ARG,
                                "conv2d:", "stride (0, 0)", "(2, 4, 5, 5)", NULL));
    nb_graph_reset(g);
    assert_true(oc_expect_error(g, nb_conv2d(g, x, w, NULL, -1, 0, 1, 2), NB_ERR_ARG,
                                "conv2d:", "stride (-1, -1)", NULL));
    nb_graph_reset(g);
    assert_true(oc_expect_error(g, nb_conv2d(g, x, w, NULL, 1, -1, 1, 2), NB_ERR_ARG,
                                "conv2d:", "padding (-1, -1)", NULL));
    nb_graph_reset(g);
    assert_true(oc_expect_error(g, nb_conv2d(g, x, w, NULL, 1, 0, 0, 2), NB_ERR_ARG,
                                "conv2d:", "dilation (0, 0)", NULL));
    nb_graph_reset(g);
    assert_true(oc_expect_error(g, nb_conv2d(g, x, w, NULL, 1, 0, 1, 3), NB_ERR_SHAPE,
                                "conv2d:", "groups 3", "(2, 4, 5, 5)", "(6, 2, 3, 3)", NULL));
    nb_graph_reset(g);
    assert_true(oc_expect_error(g, nb_conv2d(g, x, w, NULL, 1, 0, 1, 0), NB_ERR_SHAPE,
                                "conv2d:", "groups 0", NULL));
    nb_graph_reset(g);
    // Wrong channel count: w expects 2 x 1 channels, x has 4.
    assert_true(oc_expect_error(g, nb_conv2d(g, x, w, NULL, 1, 0, 1, 1), NB_ERR_SHAPE,
                                "conv2d:", "has 4 channels", "(6, 2, 3, 3)", NULL));
    nb_graph_reset(g);
    assert_true(oc_expect_error(g, nb_conv2d(g, x, w, b5, 1, 0, 1, 2), NB_ERR_SHAPE,
                                "conv2d:", "b is (5)", NULL));
    nb_graph_reset(g);
    assert_true(oc_expect_error(g, nb_conv2d(g, x3, w, NULL, 1, 0, 1, 2), NB_ERR_SHAPE,
                                "conv2d:", "(N, C, H, W)", "(2, 4, 5)", NULL));
    nb_graph_reset(g);
    assert_true(oc_expect_error(g, nb_conv1d(g, x, w, NULL, 1, 0, 1, 2), NB_ERR_SHAPE,
                                "conv1d:", "(N, C, L)", NULL));
    nb_graph_reset(g);
    assert_true(oc_expect_error(g, nb_conv1d(g, x3, x3, NULL, 0, 0, 1, 1), NB_ERR_ARG,
                                "conv1d:", "stride 0", NULL));
    nb_graph_destroy(g);
    nb_tensor_destroy(x);
    nb_tensor_destroy(w);
    nb_tensor_destroy(wbig);
    nb_tensor_destroy(b5);
    nb_tensor_destroy(x3);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(conv2d_matches_torch),
        cmocka_unit_test(conv1d_is_conv2d_of_height_one),
        cmocka_unit_test(conv2d_bitwise_across_thread_counts),
        cmocka_unit_test(conv2d_steady_state_allocates_nothing),
        cmocka_unit_test(conv2d_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
