// Tests for the pooling, dropout and normalisation layers of nabla/nn.h: each layer's forward
// is its op with the layer's settings (bit for bit), its tensors are registered under
// hierarchical names (parameters and buffers apart) with PyTorch's initial values, the
// train/eval switch changes what they do, and bad input is refused naming the layer and the
// user's call site. (A whole model of them: test_nn_model.c.)
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nabla.h"
#include "support/expect.h"

// ---- batch_norm2d ----------------------------------------------------------------------------

static void test_batch_norm2d(void **state) {
    (void)state;
    nb_layer *l = nb_nn_batch_norm2d_create(3, 1e-5, 0.1, true, NB_F64);
    assert_non_null(l);
    assert_string_equal(nb_layer_kind(l), "batch_norm2d");
    nb_nn_batch_norm2d *bn = nb_nn_batch_norm2d_of(l);
    assert_non_null(bn);
    assert_null(nb_nn_layer_norm_of(l));
    // PyTorch's start: weight ones, bias zeros, running mean zeros, running var ones.
    for (int c = 0; c < 3; c++) {
        assert_true(nb_tensor_get(bn->weight, c) == 1.0 && nb_tensor_get(bn->bias, c) == 0.0);
        assert_true(nb_tensor_get(bn->running_mean, c) == 0.0);
        assert_true(nb_tensor_get(bn->running_var, c) == 1.0);
    }
    assert_true(nb_tensor_requires_grad(bn->weight) && !nb_tensor_requires_grad(bn->running_var));
    assert_int_equal(nb_tensor_dtype(bn->num_batches_tracked), NB_I64);
    assert_int_equal(nb_tensor_ndim(bn->num_batches_tracked), 0);

    // Training: the op with the layer's settings, on copies of the running statistics.
    nb_tensor *x = filled(NB_F64, 4, (int64_t[]){2, 3, 2, 2}, 0.9);
    nb_tensor *rm = nb_tensor_create(NB_F64, 1, (int64_t[]){3});
    nb_tensor *rv = nb_tensor_create(NB_F64, 1, (int64_t[]){3});
    nb_tensor_fill(rm, 0.0);
    nb_tensor_fill(rv, 1.0);
    nb_graph *g = nb_graph_create();
    nb_tensor *y = nb_layer_forward(g, l, x);
    assert_same(y, nb_batch_norm(g, x, bn->weight, bn->bias, rm, rv, true, 0.1, 1e-5));
    assert_same(bn->running_mean, rm);
    assert_same(bn->running_var, rv);
    // ... which are PyTorch's: momentum 0.1, the variance unbiased over the M = 8 values.
    for (int c = 0; c < 3; c++) {
        double s = 0, s2 = 0, ysum = 0;
        for (int n = 0; n < 2; n++)
            for (int k = 0; k < 4; k++) {
                double v = nb_tensor_get(x, (n * 3 + c) * 4 + k);
                s += v;
                s2 += v * v;
                ysum += nb_tensor_get(y, (n * 3 + c) * 4 + k);
            }
        double mean = s / 8, var_unbiased = (s2 - 8 * mean * mean) / 7;
        assert_true(fabs(ysum) < 1e-12);
        assert_true(fabs(nb_tensor_get(bn->running_mean, c) - 0.1 * mean) < 1e-12);
        assert_true(fabs(nb_tensor_get(bn->running_var, c) - (0.9 + 0.1 * var_unbiased)) < 1e-12);
    }
    assert_true(nb_tensor_get(bn->num_batches_tracked, 0) == 1.0);

    // Eval: normalises with the running statistics and updates nothing.
    nb_layer_train(l, false);
    nb_graph_reset(g);
    double rm1 = nb_tensor_get(bn->running_mean, 1), rv1 = nb_tensor_get(bn->running_var, 1);
    y = nb_layer_forward(g, l, x);
    assert_non_null(y);
    assert_true(fabs(nb_tensor_get(y, 5) - (nb_tensor_get(x, 5) - rm1) / sqrt(rv1 + 1e-5)) < 1e-12);
    assert_true(nb_tensor_get(bn->running_mean, 1) == rm1);
    assert_true(nb_tensor_get(bn->running_var, 1) == rv1);
    assert_true(nb_tensor_get(bn->num_batches_tracked, 0) == 1.0);

    // Names: parameters and buffers apart, under the layer's prefix.
    nb_params *ps = nb_params_create();
    assert_int_equal(nb_layer_collect(l, ps, "bn"), NB_OK);
    assert_int_equal(nb_params_count(ps, NB_PARAM), 2);
    assert_string_equal(nb_params_name(ps, NB_PARAM, 0), "bn.weight");
    assert_string_equal(nb_params_name(ps, NB_PARAM, 1), "bn.bias");
    assert_int_equal(nb_params_count(ps, NB_BUFFER), 3);
    assert_string_equal(nb_params_name(ps, NB_BUFFER, 0), "bn.running_mean");
    assert_string_equal(nb_params_name(ps, NB_BUFFER, 1), "bn.running_var");
    assert_string_equal(nb_params_name(ps, NB_BUFFER, 2), "bn.num_batches_tracked");
    assert_ptr_equal(nb_params_find(ps, "bn.running_var", NULL), bn->running_var);

    // affine = false: buffers only, and the op without weight and bias.
    nb_layer *na = nb_nn_batch_norm2d_create(3, 1e-3, 0.5, false, NB_F64);
    nb_params_clear(ps);
    assert_int_equal(nb_layer_collect(na, ps, NULL), NB_OK);
    assert_int_equal(nb_params_count(ps, NB_PARAM), 0);
    assert_int_equal(nb_params_count(ps, NB_BUFFER), 3);
    assert_string_equal(nb_params_name(ps, NB_BUFFER, 0), "running_mean");
    nb_graph_reset(g);
    nb_tensor_fill(rm, 0.0);
    nb_tensor_fill(rv, 1.0);
    y = nb_layer_forward(g, na, x);
    assert_same(y, nb_batch_norm(g, x, NULL, NULL, rm, rv, true, 0.5, 1e-3));
    assert_same(nb_nn_batch_norm2d_of(na)->running_var, rv);

    nb_layer_destroy(na);
    nb_params_destroy(ps);
    nb_graph_destroy(g);
    nb_tensor_destroy(x);
    nb_tensor_destroy(rm);
    nb_tensor_destroy(rv);
    nb_layer_destroy(l);
}

// A replayed training step updates the running statistics again, as a second step would
// (num_batches_tracked counts layer forwards only, as documented).
static void test_batch_norm2d_replay(void **state) {
    (void)state;
    nb_layer *a = nb_nn_batch_norm2d_create(2, 1e-5, 0.3, true, NB_F64);
    nb_layer *b = nb_nn_batch_norm2d_create(2, 1e-5, 0.3, true, NB_F64);
    nb_tensor *x = filled(NB_F64, 4, (int64_t[]){3, 2, 2, 3}, 0.6);
    nb_graph *g = nb_graph_create(), *g2 = nb_graph_create();
    assert_non_null(nb_layer_forward(g, a, x));
    assert_int_equal(nb_graph_replay(g), NB_OK);
    assert_non_null(nb_layer_forward(g2, b, x));
    assert_non_null(nb_layer_forward(g2, b, x));
    nb_nn_batch_norm2d *ba = nb_nn_batch_norm2d_of(a), *bb = nb_nn_batch_norm2d_of(b);
    assert_same(ba->running_mean, bb->running_mean);
    assert_same(ba->running_var, bb->running_var);
    assert_true(nb_tensor_get(ba->running_var, 0) != 1.0);
    assert_true(nb_tensor_get(ba->num_batches_tracked, 0) == 1.0);
    assert_true(nb_tensor_get(bb->num_batches_tracked, 0) == 2.0);
    nb_graph_destroy(g);
    nb_graph_destroy(g2);
    nb_tensor_destroy(x);
    nb_layer_destroy(a);
    nb_layer_destroy(b);
}

static void test_batch_norm2d_bad(void **state) {
    (void)state;
    nb_layer *model = nb_nn_sequential_create();
    assert_int_equal(
        nb_nn_sequential_add(model, "bn1", nb_nn_batch_norm2d_create(3, 1e-5, 0.1, true, NB_F32)),
        NB_OK);
    nb_params *ps = nb_params_create();
    assert_int_equal(nb_layer_collect(model, ps, NULL), NB_OK); // names the layer "bn1"
    nb_graph *g = nb_graph_create();
    // The wrong channel count names the layer, its channels and the input's shape.
    nb_tensor *x4 = filled(NB_F32, 4, (int64_t[]){2, 4, 2, 2}, 0.3);
    assert_null(nb_layer_forward(g, model, x4));
    assert_int_equal(nb_graph_status(g), NB_ERR_SHAPE);
    assert_has(nb_graph_error(g), "batch_norm2d 'bn1' (3 channels): input (2, 4, 2, 2) is not "
                                  "(N, 3, H, W)");
    // Both the layer's own errors and those of the ops it calls end with this file's line
    // (nb_layer_forward's call site), not a line inside the library.
    char site[300];
    nb_graph_reset(g);
    assert_null(nb_layer_forward(g, model, x4));
    snprintf(site, sizeof site, "; op called at %s:%d", __FILE__, __LINE__ - 1);
    assert_has(nb_graph_error(g), site);
    nb_graph_reset(g);
    nb_tensor *xd64 = filled(NB_F64, 4, (int64_t[]){2, 3, 2, 2}, 0.3);
    int line = __LINE__ + 1;
    assert_null(nb_layer_forward(g, model, xd64));
    snprintf(site, sizeof site,
             "batch_norm: mixed dtypes: input 0 is float64, input 1 (3) is float32 (convert "
             "explicitly); op called at %s:%d",
             __FILE__, line);
    assert_has(nb_graph_error(g), site);
    nb_tensor_destroy(xd64);
    // Not 4-D.
    nb_graph_reset(g);
    nb_tensor *x3 = filled(NB_F32, 3, (int64_t[]){2, 3, 4}, 0.3);
    assert_null(nb_layer_forward(g, model, x3));
    assert_has(nb_graph_error(g), "input (2, 3, 4) is not (N, 3, H, W)");
    // A float64 input to a float32 layer: the op's dtype error; the statistics are untouched.
    nb_graph_reset(g);
    nb_tensor *xd = filled(NB_F64, 4, (int64_t[]){2, 3, 2, 2}, 0.3);
    assert_null(nb_layer_forward(g, model, xd));
    assert_int_equal(nb_graph_status(g), NB_ERR_DTYPE);
    // One value per channel in training: no variance to estimate (PyTorch refuses too).
    nb_graph_reset(g);
    nb_tensor *x1 = filled(NB_F32, 4, (int64_t[]){1, 3, 1, 1}, 0.3);
    assert_null(nb_layer_forward(g, model, x1));
    assert_int_not_equal(nb_graph_status(g), NB_OK);
    nb_nn_batch_norm2d *bn = nb_nn_batch_norm2d_of(nb_nn_sequential_child(model, 0));
    for (int c = 0; c < 3; c++) {
        assert_true(nb_tensor_get(bn->running_mean, c) == 0.0);
        assert_true(nb_tensor_get(bn->running_var, c) == 1.0);
    }
    assert_true(nb_tensor_get(bn->num_batches_tracked, 0) == 0.0);
    // ... but fine in eval (the running statistics need no batch).
    nb_layer_train(model, false);
    nb_graph_reset(g);
    assert_non_null(nb_layer_forward(g, model, x1));

    // Bad settings, each refused with the values in the message.
    assert_null(nb_nn_batch_norm2d_create(0, 1e-5, 0.1, true, NB_F32));
    assert_has(nb_last_error(), "num_features 0");
    assert_null(nb_nn_batch_norm2d_create(3, 0, 0.1, true, NB_F32));
    assert_null(nb_nn_batch_norm2d_create(3, NAN, 0.1, true, NB_F32));
    assert_null(nb_nn_batch_norm2d_create(3, 1e-5, 1.5, true, NB_F32));
    assert_has(nb_last_error(), "momentum 1.5");
    assert_null(nb_nn_batch_norm2d_create(3, 1e-5, -0.1, true, NB_F32));
    assert_null(nb_nn_batch_norm2d_create(3, 1e-5, 0.1, true, NB_I32));
    assert_has(nb_last_error(), "dtype int32");

    nb_graph_destroy(g);
    nb_params_destroy(ps);
    nb_tensor_destroy(x1);
    nb_tensor_destroy(x3);
    nb_tensor_destroy(x4);
    nb_tensor_destroy(xd);
    nb_layer_destroy(model);
}

// ---- layer_norm ------------------------------------------------------------------------------

static void test_layer_norm(void **state) {
    (void)state;
    nb_layer *l = nb_nn_layer_norm_create(2, (int64_t[]){5, 4}, 1e-5, true, NB_F32);
    assert_non_null(l);
    nb_nn_layer_norm *ln = nb_nn_layer_norm_of(l);
    assert_non_null(ln);
    assert_int_equal(nb_tensor_ndim(ln->weight), 2);
    assert_int_equal(nb_tensor_dim(ln->weight, 0), 5);
    assert_true(nb_tensor_get(ln->weight, 19) == 1.0 && nb_tensor_get(ln->bias, 19) == 0.0);
    nb_params *ps = nb_params_create();
    assert_int_equal(nb_layer_collect(l, ps, "enc.norm1"), NB_OK);
    assert_int_equal(nb_params_count(ps, NB_PARAM), 2);
    assert_int_equal(nb_params_count(ps, NB_BUFFER), 0);
    assert_int_equal(nb_params_numel(ps, NB_PARAM), 40);
    assert_string_equal(nb_params_name(ps, NB_PARAM, 1), "enc.norm1.bias");

    // Forward is the op; each (5, 4) slice comes out with mean 0.
    nb_tensor *x = filled(NB_F32, 4, (int64_t[]){2, 3, 5, 4}, 0.9);
    nb_tensor_set(ln->weight, 3, 2.0); // not all ones, so the weight is used
    nb_graph *g = nb_graph_create();
    nb_tensor *y = nb_layer_forward(g, l, x);
    assert_same(y, nb_layer_norm(g, x, 2, ln->weight, ln->bias, 1e-5));
    nb_tensor_set(ln->weight, 3, 1.0);
    nb_graph_reset(g);
    y = nb_layer_forward(g, l, x);
    double s = 0;
    for (int64_t i = 0; i < 20; i++)
        s += nb_tensor_get(y, 20 + i);
    assert_true(fabs(s) < 1e-4);
    // Train and eval are the same function.
    nb_layer_train(l, false);
    nb_graph_reset(g);
    assert_same(nb_layer_forward(g, l, x), nb_layer_norm(g, x, 2, ln->weight, ln->bias, 1e-5));

    // Without affine: no tensors.
    nb_layer *plain = nb_nn_layer_norm_create(1, (int64_t[]){4}, 1e-6, false, NB_F64);
    nb_params_clear(ps);
    assert_int_equal(nb_layer_collect(plain, ps, NULL), NB_OK);
    assert_int_equal(nb_params_count(ps, NB_PARAM), 0);

    // Bad input and settings.
    nb_graph_reset(g);
    nb_tensor *bad = filled(NB_F32, 2, (int64_t[]){4, 5}, 0.1);
    assert_null(nb_layer_forward(g, l, bad));
    assert_int_equal(nb_graph_status(g), NB_ERR_SHAPE);
    assert_has(nb_graph_error(g), "layer_norm 'enc.norm1': input (4, 5) does not end in the "
                                  "normalized shape (5, 4)");
    nb_graph_reset(g);
    nb_tensor *small = filled(NB_F32, 1, (int64_t[]){4}, 0.1);
    assert_null(nb_layer_forward(g, l, small));
    assert_has(nb_graph_error(g), "input (4) does not end");
    assert_null(nb_nn_layer_norm_create(0, (int64_t[]){5}, 1e-5, true, NB_F32));
    assert_null(nb_nn_layer_norm_create(NB_MAX_DIMS + 1, (int64_t[NB_MAX_DIMS + 1]){1}, 1e-5, true,
                                        NB_F32));
    assert_null(nb_nn_layer_norm_create(1, (int64_t[]){0}, 1e-5, true, NB_F32));
    assert_null(nb_nn_layer_norm_create(1, (int64_t[]){3}, 0, true, NB_F32));
    assert_null(nb_nn_layer_norm_create(1, NULL, 1e-5, true, NB_F32));
    assert_has(nb_last_error(), "nb_nn_layer_norm_create");

    nb_params_destroy(ps);
    nb_tensor_destroy(bad);
    nb_tensor_destroy(small);
    nb_tensor_destroy(x);
    nb_layer_destroy(l);
    nb_layer_destroy(plain);
    nb_graph_destroy(g);
}

// ---- dropout ---------------------------------------------------------------------------------

static void test_dropout(void **state) {
    (void)state;
    nb_rng rng, ref;
    nb_rng_seed(&rng, 4);
    nb_rng_seed(&ref, 4);
    nb_layer *drop = nb_nn_dropout_create(0.5, &rng);
    assert_non_null(drop);
    nb_tensor *x = filled(NB_F32, 4, (int64_t[]){2, 3, 5, 4}, 0.9);
    nb_graph *g = nb_graph_create();
    // Training: the op drawing from the caller's generator (same seed: the same mask, bit for
    // bit), zeros and 1/(1-p) scaling.
    nb_tensor *y = nb_layer_forward(g, drop, x);
    assert_same(y, nb_dropout(g, x, 0.5, true, &ref));
    int zeros = 0;
    for (int64_t i = 0; i < 120; i++) {
        double v = nb_tensor_get(y, i), xi = nb_tensor_get(x, i);
        zeros += v == 0;
        assert_true(v == 0 || v == (double)(float)(2 * xi));
    }
    assert_true(zeros > 30 && zeros < 90);
    // A second forward draws a new mask (the generator moved on).
    nb_tensor *y2 = nb_layer_forward(g, drop, x);
    assert_non_null(y2);
    bool differs = false;
    for (int64_t i = 0; i < 120; i++)
        differs |= nb_tensor_get(y, i) != nb_tensor_get(y2, i);
    assert_true(differs);
    // Eval: the identity (x itself, nothing drawn).
    nb_rng before = rng;
    nb_layer_train(drop, false);
    assert_ptr_equal(nb_layer_forward(g, drop, x), x);
    assert_memory_equal(&before, &rng, sizeof rng);

    assert_null(nb_nn_dropout_create(1.5, &rng));
    assert_has(nb_last_error(), "p must be in [0, 1]");
    assert_null(nb_nn_dropout_create(NAN, &rng));
    assert_null(nb_nn_dropout_create(0.1, NULL));
    assert_has(nb_last_error(), "rng is NULL");

    nb_tensor_destroy(x);
    nb_layer_destroy(drop);
    nb_graph_destroy(g);
}

// ---- pooling ---------------------------------------------------------------------------------

static void test_pool_layers(void **state) {
    (void)state;
    nb_graph *g = nb_graph_create();
    nb_tensor *x = filled(NB_F32, 4, (int64_t[]){2, 3, 5, 4}, 0.9);
    // Max pooling: stride defaults to the kernel; the op with the layer's settings.
    nb_layer *mp = nb_nn_max_pool2d_create(2, 0, 0);
    assert_string_equal(nb_layer_kind(mp), "max_pool2d");
    nb_tensor *y = nb_layer_forward(g, mp, x);
    assert_same(y, nb_max_pool2d(g, x, 2, 2, 0, 1, false));
    assert_int_equal(nb_tensor_dim(y, 2), 2);
    double m = fmax(fmax(nb_tensor_get(x, 0), nb_tensor_get(x, 1)),
                    fmax(nb_tensor_get(x, 4), nb_tensor_get(x, 5)));
    assert_true(nb_tensor_get(y, 0) == m);
    nb_layer *mp3 = nb_nn_max_pool2d_create(3, 2, 1);
    assert_same(nb_layer_forward(g, mp3, x), nb_max_pool2d(g, x, 3, 2, 1, 1, false));
    // Average pooling counts the padding (PyTorch's count_include_pad = True).
    nb_layer *ap = nb_nn_avg_pool2d_create(3, 1, 1);
    assert_string_equal(nb_layer_kind(ap), "avg_pool2d");
    y = nb_layer_forward(g, ap, x);
    assert_same(y, nb_avg_pool2d(g, x, 3, 1, 1, false, true));
    double corner =
        (nb_tensor_get(x, 0) + nb_tensor_get(x, 1) + nb_tensor_get(x, 4) + nb_tensor_get(x, 5)) / 9;
    assert_true(fabs(nb_tensor_get(y, 0) - corner) < 1e-6);
    nb_layer *ap2 = nb_nn_avg_pool2d_create(2, 0, 0);
    assert_same(nb_layer_forward(g, ap2, x), nb_avg_pool2d(g, x, 2, 2, 0, false, true));
    // Global average pooling.
    nb_layer *gap = nb_nn_adaptive_avg_pool2d_create(1, 1);
    y = nb_layer_forward(g, gap, x);
    assert_same(y, nb_adaptive_avg_pool2d(g, x, 1, 1));
    assert_int_equal(nb_tensor_dim(y, 2), 1);
    assert_int_equal(nb_tensor_dim(y, 1), 3);

    // Bad input names the layer and the shape; bad settings are refused when built.
    nb_layer *model = nb_nn_sequential_create();
    assert_int_equal(nb_nn_sequential_add(model, "pool", mp), NB_OK);
    nb_params *ps = nb_params_create();
    assert_int_equal(nb_layer_collect(model, ps, NULL), NB_OK);
    assert_int_equal(nb_params_count(ps, NB_PARAM) + nb_params_count(ps, NB_BUFFER), 0);
    nb_tensor *x3 = filled(NB_F32, 3, (int64_t[]){3, 5, 4}, 0.2);
    nb_graph_reset(g);
    assert_null(nb_layer_forward(g, model, x3));
    assert_has(nb_graph_error(g), "max_pool2d 'pool' (kernel 2, stride 2, padding 0): input "
                                  "(3, 5, 4) is not (N, C, H, W)");
    nb_graph_reset(g);
    assert_null(nb_layer_forward(g, gap, x3));
    assert_has(nb_graph_error(g), "adaptive_avg_pool2d (to 1x1): input (3, 5, 4)");
    // A window larger than the input: the op's error.
    nb_layer *big = nb_nn_avg_pool2d_create(6, 0, 0);
    nb_graph_reset(g);
    assert_null(nb_layer_forward(g, big, x));
    assert_int_not_equal(nb_graph_status(g), NB_OK);
    assert_null(nb_nn_max_pool2d_create(0, 0, 0));
    assert_null(nb_nn_max_pool2d_create(2, -1, 0));
    assert_null(nb_nn_max_pool2d_create(2, 2, 2));
    assert_has(nb_last_error(), "padding 2");
    assert_null(nb_nn_avg_pool2d_create(3, 1, 2));
    assert_has(nb_last_error(), "nb_nn_avg_pool2d_create: kernel 3, stride 1, padding 2");
    assert_null(nb_nn_adaptive_avg_pool2d_create(0, 1));
    assert_has(nb_last_error(), "output size 0x1");

    nb_params_destroy(ps);
    nb_tensor_destroy(x);
    nb_tensor_destroy(x3);
    nb_layer_destroy(model);
    nb_layer_destroy(mp3);
    nb_layer_destroy(ap);
    nb_layer_destroy(ap2);
    nb_layer_destroy(gap);
    nb_layer_destroy(big);
    nb_graph_destroy(g);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batch_norm2d),
        cmocka_unit_test(test_batch_norm2d_bad),
        cmocka_unit_test(test_batch_norm2d_replay),
        cmocka_unit_test(test_layer_norm),
        cmocka_unit_test(test_dropout),
        cmocka_unit_test(test_pool_layers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
