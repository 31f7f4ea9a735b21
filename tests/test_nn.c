// Tests for the layer part (include/nabla/nn.h): the named parameter set, linear / relu /
// flatten / sequential layers (PyTorch's initialisers and names), the train/eval switch, the
// optimizer adapter and whole-model checkpoints, including every bad-input path.

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nabla.h"
#include "support/expect.h"
#include "support/testdir.h"

static nb_tensor *param(int ndim, const int64_t *shape) {
    nb_tensor *t = nb_tensor_create(NB_F32, ndim, shape);
    assert_non_null(t);
    assert_int_equal(nb_tensor_set_requires_grad(t, true), NB_OK);
    return t;
}

// ---- the named parameter set ---------------------------------------------------------------

static void test_params_basic(void **state) {
    (void)state;
    nb_params *ps = nb_params_create();
    nb_tensor *w = param(2, (int64_t[]){3, 4}), *b = param(1, (int64_t[]){3});
    nb_tensor *rm = nb_tensor_create(NB_F32, 1, (int64_t[]){3});
    nb_tensor *nbt = nb_tensor_create(NB_I32, 0, NULL);
    assert_int_equal(nb_params_add(ps, "conv1", "weight", w, NB_PARAM), NB_OK);
    assert_int_equal(nb_params_add(ps, "features.3", "running_mean", rm, NB_BUFFER), NB_OK);
    assert_int_equal(nb_params_add(ps, NULL, "conv1.bias", b, NB_PARAM), NB_OK);
    assert_int_equal(nb_params_add(ps, "", "steps", nbt, NB_BUFFER), NB_OK);

    assert_int_equal(nb_params_count(ps, NB_PARAM), 2);
    assert_int_equal(nb_params_count(ps, NB_BUFFER), 2);
    assert_int_equal(nb_params_numel(ps, NB_PARAM), 15);
    assert_int_equal(nb_params_numel(ps, NB_BUFFER), 4);
    assert_string_equal(nb_params_name(ps, NB_PARAM, 0), "conv1.weight");
    assert_string_equal(nb_params_name(ps, NB_PARAM, 1), "conv1.bias");
    assert_string_equal(nb_params_name(ps, NB_BUFFER, 0), "features.3.running_mean");
    assert_string_equal(nb_params_name(ps, NB_BUFFER, 1), "steps");
    assert_null(nb_params_name(ps, NB_PARAM, 2));
    assert_null(nb_params_name(ps, NB_PARAM, -1));
    assert_ptr_equal(nb_params_tensors(ps, NB_PARAM)[1], b);
    assert_string_equal(nb_params_names(ps, NB_BUFFER)[0], "features.3.running_mean");
    nb_param_kind k = NB_PARAM;
    assert_ptr_equal(nb_params_find(ps, "features.3.running_mean", &k), rm);
    assert_int_equal(k, NB_BUFFER);
    assert_ptr_equal(nb_params_find(ps, "conv1.weight", NULL), w);
    assert_null(nb_params_find(ps, "conv1", NULL));
    assert_null(nb_params_tensor(ps, (nb_param_kind)7, 0));

    nb_params_clear(ps);
    assert_int_equal(nb_params_count(ps, NB_PARAM), 0);
    assert_null(nb_params_tensors(ps, NB_PARAM));
    assert_int_equal(nb_params_add(ps, "conv1", "weight", w, NB_PARAM), NB_OK);
    nb_params_destroy(ps);
    nb_params_destroy(NULL);
    nb_tensor_destroy(w);
    nb_tensor_destroy(b);
    nb_tensor_destroy(rm);
    nb_tensor_destroy(nbt);
}

static void test_params_bad(void **state) {
    (void)state;
    nb_params *ps = nb_params_create();
    nb_tensor *w = param(2, (int64_t[]){3, 4}), *w2 = param(1, (int64_t[]){2});
    nb_tensor *plain = nb_tensor_create(NB_F32, 1, (int64_t[]){2});
    nb_tensor *ints = nb_tensor_create(NB_I32, 1, (int64_t[]){2});
    assert_int_equal(nb_params_add(ps, "fc", "weight", w, NB_PARAM), NB_OK);

    assert_int_equal(nb_params_add(NULL, "fc", "w", w2, NB_PARAM), NB_ERR_NULL);
    assert_int_equal(nb_params_add(ps, "fc", NULL, w2, NB_PARAM), NB_ERR_NULL);
    assert_int_equal(nb_params_add(ps, "fc", "x", NULL, NB_PARAM), NB_ERR_NULL);
    assert_int_equal(nb_params_add(ps, "fc", "weight", w2, NB_BUFFER), NB_ERR_ARG);
    assert_has(nb_last_error(), "'fc.weight' is already in the set");
    assert_int_equal(nb_params_add(ps, "other", "w", w, NB_PARAM), NB_ERR_ARG);
    assert_has(nb_last_error(), "'other.w' is the same tensor as 'fc.weight'");
    const char *bad_names[] = {"", ".a", "a.", "a..b"};
    for (size_t i = 0; i < sizeof bad_names / sizeof *bad_names; i++) {
        assert_int_equal(nb_params_add(ps, NULL, bad_names[i], w2, NB_PARAM), NB_ERR_ARG);
        assert_has(nb_last_error(), "empty component");
    }
    char long_name[NB_PARAM_NAME_MAX + 8];
    memset(long_name, 'a', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    assert_int_equal(nb_params_add(ps, NULL, long_name, w2, NB_PARAM), NB_ERR_ARG);
    assert_has(nb_last_error(), "longer than");
    assert_int_equal(nb_params_add(ps, "fc", "b", plain, NB_PARAM), NB_ERR_STATE);
    assert_has(nb_last_error(), "'fc.b' does not require grad");
    assert_int_equal(nb_params_add(ps, "fc", "b", ints, NB_PARAM), NB_ERR_DTYPE);
    assert_int_equal(nb_params_add(ps, "fc", "b", w2, (nb_param_kind)2), NB_ERR_ARG);
    // Nothing of the refused calls stayed; a plain tensor is a fine buffer.
    assert_int_equal(nb_params_count(ps, NB_PARAM), 1);
    assert_int_equal(nb_params_count(ps, NB_BUFFER), 0);
    assert_int_equal(nb_params_add(ps, "fc", "b", plain, NB_BUFFER), NB_OK);

    // An op output is not a leaf: refused.
    nb_graph *g = nb_graph_create();
    nb_tensor *y = nb_relu(g, w);
    assert_non_null(y);
    assert_int_equal(nb_params_add(ps, "act", "y", y, NB_BUFFER), NB_ERR_ARG);
    assert_has(nb_last_error(), "not a leaf");
    nb_graph_destroy(g);
    nb_params_destroy(ps);
    nb_tensor_destroy(w);
    nb_tensor_destroy(w2);
    nb_tensor_destroy(plain);
    nb_tensor_destroy(ints);
}

// ---- linear ------------------------------------------------------------------------------

static void test_linear_init_and_forward(void **state) {
    (void)state;
    nb_rng rng;
    nb_rng_seed(&rng, 42);
    nb_layer *l = nb_nn_linear_create(50, 7, true, NB_F64, &rng);
    assert_non_null(l);
    assert_string_equal(nb_layer_kind(l), "linear");
    nb_nn_linear *lin = nb_nn_linear_of(l);
    assert_non_null(lin);
    assert_int_equal(nb_tensor_dim(lin->weight, 0), 7);
    assert_int_equal(nb_tensor_dim(lin->weight, 1), 50);
    assert_int_equal(nb_tensor_numel(lin->bias), 7);
    assert_true(nb_tensor_requires_grad(lin->weight));
    // PyTorch's init: U(-1/sqrt(in), 1/sqrt(in)) for both; the 350 weights fill the range.
    double bound = 1.0 / sqrt(50.0), lo = 1, hi = -1, sum = 0;
    for (int64_t i = 0; i < 350; i++) {
        double v = nb_tensor_get(lin->weight, i);
        lo = fmin(lo, v);
        hi = fmax(hi, v);
        sum += v;
    }
    assert_true(lo >= -bound && hi <= bound);
    assert_true(lo < -0.9 * bound && hi > 0.9 * bound);
    assert_true(fabs(sum / 350) < 0.02); // mean 0, sd of the mean 0.0044
    for (int64_t i = 0; i < 7; i++)
        assert_true(fabs(nb_tensor_get(lin->bias, i)) <= bound);

    // Forward is x Wᵀ + b on any leading dims.
    nb_tensor *x = nb_tensor_create(NB_F64, 3, (int64_t[]){2, 3, 50});
    for (int64_t i = 0; i < 300; i++)
        nb_tensor_set(x, i, sin((double)i));
    nb_graph *g = nb_graph_create();
    nb_tensor *y = nb_layer_forward(g, l, x);
    assert_non_null(y);
    assert_int_equal(nb_tensor_ndim(y), 3);
    assert_int_equal(nb_tensor_dim(y, 2), 7);
    for (int r = 0; r < 6; r++)
        for (int o = 0; o < 7; o++) {
            double want = nb_tensor_get(lin->bias, o);
            for (int i = 0; i < 50; i++)
                want += nb_tensor_get(x, r * 50 + i) * nb_tensor_get(lin->weight, o * 50 + i);
            assert_true(fabs(nb_tensor_get(y, r * 7 + o) - want) < 1e-12);
        }
    nb_graph_destroy(g);
    nb_tensor_destroy(x);

    // No bias: only a weight is registered.
    nb_layer *nobias = nb_nn_linear_create(3, 2, false, NB_F32, &rng);
    nb_params *ps = nb_params_create();
    assert_int_equal(nb_layer_collect(nobias, ps, "head"), NB_OK);
    assert_int_equal(nb_params_count(ps, NB_PARAM), 1);
    assert_string_equal(nb_params_name(ps, NB_PARAM, 0), "head.weight");
    nb_layer *relu = nb_nn_relu_create();
    assert_null(nb_nn_linear_of(relu));
    nb_layer_destroy(relu);
    nb_params_destroy(ps);
    nb_layer_destroy(nobias);
    nb_layer_destroy(l);
}

static void test_linear_bad(void **state) {
    (void)state;
    nb_rng rng;
    nb_rng_seed(&rng, 1);
    assert_null(nb_nn_linear_create(0, 3, true, NB_F32, &rng));
    assert_has(nb_last_error(), "in_features 0");
    assert_null(nb_nn_linear_create(3, -1, true, NB_F32, &rng));
    assert_null(nb_nn_linear_create(3, 3, true, NB_I32, &rng));
    assert_has(nb_last_error(), "int32");
    assert_null(nb_nn_linear_create(3, 3, true, NB_F32, NULL));

    // The wrong feature count names the layer (after collect), its sizes and the input shape.
    nb_layer *model = nb_nn_sequential_create();
    assert_int_equal(
        nb_nn_sequential_add(model, "fc1", nb_nn_linear_create(4, 2, true, NB_F32, &rng)), NB_OK);
    nb_params *ps = nb_params_create();
    assert_int_equal(nb_layer_collect(model, ps, "net"), NB_OK);
    nb_tensor *x = nb_tensor_create(NB_F32, 2, (int64_t[]){5, 3});
    nb_graph *g = nb_graph_create();
    assert_null(nb_layer_forward(g, model, x));
    assert_int_equal(nb_graph_status(g), NB_ERR_SHAPE);
    assert_has(nb_graph_error(g), "linear 'net.fc1' (4 -> 2): input (5, 3) has 3 features, "
                                  "expected 4");
    // A graph in error stays so; NULL inputs and layers are reported, never crash.
    nb_graph_reset(g);
    assert_null(nb_layer_forward(g, model, NULL));
    assert_int_equal(nb_graph_status(g), NB_ERR_NULL);
    nb_graph_reset(g);
    assert_null(nb_layer_forward(g, NULL, x));
    assert_has(nb_graph_error(g), "layer is NULL");
    nb_clear_last_error();
    assert_null(nb_layer_forward(NULL, model, x));
    assert_has(nb_last_error(), "graph is NULL");
    nb_graph_reset(g);
    nb_tensor *s = nb_tensor_create(NB_F32, 0, NULL);
    assert_null(nb_layer_forward(g, model, s));
    assert_has(nb_graph_error(g), "input () has 0 features");
    nb_graph_destroy(g);
    nb_tensor_destroy(x);
    nb_tensor_destroy(s);
    nb_params_destroy(ps);
    nb_layer_destroy(model);
}

// ---- conv2d ------------------------------------------------------------------------------

static void test_conv2d_layer(void **state) {
    (void)state;
    nb_rng rng;
    nb_rng_seed(&rng, 9);
    nb_layer *l = nb_nn_conv2d_create(
        4, 6, (nb_nn_conv2d_options){.kernel = {3, 2}, .padding = {1, 0}, .groups = 2}, NB_F64,
        &rng);
    assert_non_null(l);
    assert_string_equal(nb_layer_kind(l), "conv2d");
    nb_nn_conv2d *c = nb_nn_conv2d_of(l);
    assert_non_null(c);
    assert_null(nb_nn_linear_of(l));
    // weight (out, in/groups, KH, KW); defaults filled in.
    const int64_t want[] = {6, 2, 3, 2};
    for (int i = 0; i < 4; i++)
        assert_int_equal(nb_tensor_dim(c->weight, i), want[i]);
    assert_int_equal(c->stride[0], 1);
    assert_int_equal(c->dilation[1], 1);
    // U(±1/sqrt(fan_in)), fan_in = 2·3·2 = 12, the 72 weights spread over the range.
    double bound = 1.0 / sqrt(12.0), lo = 1, hi = -1;
    for (int64_t i = 0; i < 72; i++) {
        lo = fmin(lo, nb_tensor_get(c->weight, i));
        hi = fmax(hi, nb_tensor_get(c->weight, i));
    }
    assert_true(lo >= -bound && hi <= bound && lo < -0.7 * bound && hi > 0.7 * bound);
    for (int64_t i = 0; i < 6; i++)
        assert_true(fabs(nb_tensor_get(c->bias, i)) <= bound);

    // Forward is the op with the layer's settings, bit for bit.
    nb_tensor *x = nb_tensor_create(NB_F64, 4, (int64_t[]){2, 4, 5, 5});
    for (int64_t i = 0; i < 200; i++)
        nb_tensor_set(x, i, sin(0.37 * (double)i));
    nb_graph *g = nb_graph_create();
    nb_tensor *y = nb_layer_forward(g, l, x);
    nb_tensor *y2 =
        nb_conv2d_hw(g, x, c->weight, c->bias, (int[]){1, 1}, (int[]){1, 0}, (int[]){1, 1}, 2);
    assert_non_null(y);
    assert_non_null(y2);
    assert_int_equal(nb_tensor_numel(y), nb_tensor_numel(y2));
    assert_int_equal(nb_tensor_dim(y, 2), 5);
    assert_int_equal(nb_tensor_dim(y, 3), 4);
    for (int64_t i = 0; i < nb_tensor_numel(y); i++)
        assert_true(nb_tensor_get(y, i) == nb_tensor_get(y2, i));

    // Names; no bias.
    nb_layer *nb = nb_nn_conv2d_create(
        4, 2, (nb_nn_conv2d_options){.kernel = {1, 1}, .no_bias = true}, NB_F32, &rng);
    nb_layer *model = nb_nn_sequential_create();
    assert_int_equal(nb_nn_sequential_add(model, "conv1", l), NB_OK);
    assert_int_equal(nb_nn_sequential_add(model, "proj", nb), NB_OK);
    nb_params *ps = nb_params_create();
    assert_int_equal(nb_layer_collect(model, ps, NULL), NB_OK);
    assert_int_equal(nb_params_count(ps, NB_PARAM), 3);
    assert_string_equal(nb_params_name(ps, NB_PARAM, 0), "conv1.weight");
    assert_string_equal(nb_params_name(ps, NB_PARAM, 1), "conv1.bias");
    assert_string_equal(nb_params_name(ps, NB_PARAM, 2), "proj.weight");

    // Wrong channel count and rank: the error names the layer, its channels and the input.
    nb_graph_reset(g);
    nb_tensor *x3 = nb_tensor_create(NB_F64, 4, (int64_t[]){2, 3, 5, 5});
    assert_null(nb_layer_forward(g, model, x3));
    assert_int_equal(nb_graph_status(g), NB_ERR_SHAPE);
    assert_has(nb_graph_error(g), "conv2d 'conv1' (4 -> 6 channels, kernel 3x2): input "
                                  "(2, 3, 5, 5) is not (N, 4, H, W)");
    nb_graph_reset(g);
    nb_tensor *xr = nb_tensor_create(NB_F64, 3, (int64_t[]){4, 5, 5});
    assert_null(nb_layer_forward(g, l, xr));
    assert_has(nb_graph_error(g), "input (4, 5, 5) is not (N, 4, H, W)");
    // The kernel larger than the padded input: the op's error.
    nb_graph_reset(g);
    nb_tensor *tiny = nb_tensor_create(NB_F64, 4, (int64_t[]){1, 4, 1, 1});
    assert_null(nb_layer_forward(g, l, tiny));
    assert_int_not_equal(nb_graph_status(g), NB_OK);

    // Bad settings.
    nb_nn_conv2d_options k3 = {.kernel = {3, 3}};
    assert_null(nb_nn_conv2d_create(0, 4, k3, NB_F32, &rng));
    assert_has(nb_last_error(), "channel counts");
    assert_null(nb_nn_conv2d_create(3, 4, (nb_nn_conv2d_options){.kernel = {0, 3}}, NB_F32, &rng));
    assert_has(nb_last_error(), "kernel sizes");
    assert_null(nb_nn_conv2d_create(
        3, 4, (nb_nn_conv2d_options){.kernel = {3, 3}, .stride = {-1, 1}}, NB_F32, &rng));
    assert_null(nb_nn_conv2d_create(
        3, 4, (nb_nn_conv2d_options){.kernel = {3, 3}, .padding = {0, -2}}, NB_F32, &rng));
    assert_has(nb_last_error(), "padding");
    assert_null(nb_nn_conv2d_create(3, 4, (nb_nn_conv2d_options){.kernel = {3, 3}, .groups = 2},
                                    NB_F32, &rng));
    assert_has(nb_last_error(), "groups must be >= 1 and divide both channel counts (in 3, out 4");
    assert_null(nb_nn_conv2d_create(3, 4, k3, NB_I32, &rng));
    assert_null(nb_nn_conv2d_create(3, 4, k3, NB_F32, NULL));

    nb_graph_destroy(g);
    nb_tensor_destroy(x);
    nb_tensor_destroy(x3);
    nb_tensor_destroy(xr);
    nb_tensor_destroy(tiny);
    nb_params_destroy(ps);
    nb_layer_destroy(model);
}

// ---- sequential, names, train/eval -----------------------------------------------------------

static nb_layer *mlp(nb_rng *rng, nb_dtype dt, int64_t in, int64_t hidden, int64_t out) {
    nb_layer *m = nb_nn_sequential_create();
    assert_non_null(m);
    assert_int_equal(nb_nn_sequential_add(m, NULL, nb_nn_flatten_create(1, -1)), NB_OK);
    assert_int_equal(nb_nn_sequential_add(m, "fc1", nb_nn_linear_create(in, hidden, true, dt, rng)),
                     NB_OK);
    assert_int_equal(nb_nn_sequential_add(m, NULL, nb_nn_relu_create()), NB_OK);
    assert_int_equal(
        nb_nn_sequential_add(m, "fc2", nb_nn_linear_create(hidden, out, true, dt, rng)), NB_OK);
    return m;
}

static void test_sequential(void **state) {
    (void)state;
    nb_rng rng;
    nb_rng_seed(&rng, 7);
    nb_layer *features = nb_nn_sequential_create();
    assert_int_equal(
        nb_nn_sequential_add(features, NULL, nb_nn_linear_create(6, 5, true, NB_F64, &rng)), NB_OK);
    assert_int_equal(nb_nn_sequential_add(features, NULL, nb_nn_relu_create()), NB_OK);
    assert_int_equal(
        nb_nn_sequential_add(features, NULL, nb_nn_linear_create(5, 4, false, NB_F64, &rng)),
        NB_OK);
    nb_layer *model = nb_nn_sequential_create();
    assert_int_equal(nb_nn_sequential_add(model, "features", features), NB_OK);
    assert_int_equal(
        nb_nn_sequential_add(model, "head", nb_nn_linear_create(4, 3, true, NB_F64, &rng)), NB_OK);
    assert_int_equal(nb_nn_sequential_len(model), 2);
    assert_ptr_equal(nb_nn_sequential_child(model, 0), features);
    assert_null(nb_nn_sequential_child(model, 2));

    nb_params *ps = nb_params_create();
    assert_int_equal(nb_layer_collect(model, ps, NULL), NB_OK);
    const char *want[] = {"features.0.weight", "features.0.bias", "features.2.weight",
                          "head.weight", "head.bias"};
    assert_int_equal(nb_params_count(ps, NB_PARAM), 5);
    for (int i = 0; i < 5; i++)
        assert_string_equal(nb_params_name(ps, NB_PARAM, i), want[i]);
    assert_int_equal(nb_params_numel(ps, NB_PARAM), 30 + 5 + 20 + 12 + 3);
    assert_string_equal(nb_nn_sequential_child(features, 2)->name, "features.2");

    // Forward equals the children applied by hand.
    nb_tensor *x = nb_tensor_create(NB_F64, 2, (int64_t[]){3, 6});
    for (int64_t i = 0; i < 18; i++)
        nb_tensor_set(x, i, cos(1.7 * (double)i));
    nb_graph *g = nb_graph_create();
    nb_tensor *y = nb_layer_forward(g, model, x);
    assert_non_null(y);
    nb_nn_linear *l0 = nb_nn_linear_of(nb_nn_sequential_child(features, 0));
    nb_nn_linear *l2 = nb_nn_linear_of(nb_nn_sequential_child(features, 2));
    nb_nn_linear *hd = nb_nn_linear_of(nb_nn_sequential_child(model, 1));
    nb_tensor *r =
        nb_linear(g, nb_relu(g, nb_linear(g, x, l0->weight, l0->bias)), l2->weight, NULL);
    nb_tensor *y2 = nb_linear(g, r, hd->weight, hd->bias);
    assert_non_null(y2);
    for (int64_t i = 0; i < 9; i++)
        assert_true(nb_tensor_get(y, i) == nb_tensor_get(y2, i));

    // The model-wide switch reaches every layer; a new child takes the container's mode.
    assert_true(features->training && nb_nn_sequential_child(features, 1)->training);
    nb_layer_train(model, false);
    assert_false(model->training);
    assert_false(features->training);
    assert_false(nb_nn_sequential_child(features, 1)->training);
    assert_int_equal(nb_nn_sequential_add(features, "extra", nb_nn_relu_create()), NB_OK);
    assert_false(nb_nn_sequential_child(features, 3)->training);
    nb_layer_train(model, true);
    assert_true(nb_nn_sequential_child(features, 3)->training);
    nb_layer_train(NULL, true);

    nb_graph_destroy(g);
    nb_tensor_destroy(x);
    nb_params_destroy(ps);
    nb_layer_destroy(model);
    nb_layer_destroy(NULL);
}

static void test_sequential_bad(void **state) {
    (void)state;
    nb_rng rng;
    nb_rng_seed(&rng, 7);
    nb_layer *seq = nb_nn_sequential_create();
    nb_layer *relu = nb_nn_relu_create();
    assert_int_equal(nb_nn_sequential_add(seq, "act", relu), NB_OK);
    // A failed create: NULL child reported with the create's reason.
    assert_int_equal(nb_nn_sequential_add(seq, NULL, nb_nn_linear_create(0, 1, true, NB_F32, &rng)),
                     NB_ERR_NULL);
    assert_has(nb_last_error(), "in_features 0");
    // Each of these consumes (destroys) the child; ASan would report a leak or double free.
    assert_int_equal(nb_nn_sequential_add(seq, "act", nb_nn_relu_create()), NB_ERR_ARG);
    assert_has(nb_last_error(), "'act' is taken");
    assert_int_equal(nb_nn_sequential_add(seq, "a.b", nb_nn_relu_create()), NB_ERR_ARG);
    assert_int_equal(nb_nn_sequential_add(seq, "", nb_nn_relu_create()), NB_ERR_ARG);
    assert_int_equal(nb_nn_sequential_add(relu, "x", nb_nn_relu_create()), NB_ERR_ARG);
    assert_has(nb_last_error(), "relu layer, not a sequential");
    assert_int_equal(nb_nn_sequential_add(NULL, "x", nb_nn_relu_create()), NB_ERR_NULL);
    assert_int_equal(nb_nn_sequential_add(seq, "self", seq), NB_ERR_ARG);
    assert_int_equal(nb_nn_sequential_add(seq, "again", relu), NB_ERR_ARG); // not freed: inside
    assert_has(nb_last_error(), "already child 'act'");
    assert_int_equal(nb_nn_sequential_len(seq), 1);
    assert_int_equal(nb_nn_sequential_len(relu), 0);
    // A layer has one owner: a second container refuses it and leaves it to the first (each
    // destroys only its own; ASan would report a use after free).
    nb_layer *seq2 = nb_nn_sequential_create();
    assert_int_equal(nb_nn_sequential_add(seq2, "act", relu), NB_ERR_ARG);
    assert_has(nb_last_error(),
               "this relu layer already belongs to another container (sequential)");
    assert_int_equal(nb_nn_sequential_len(seq2), 0);
    assert_true(relu->owner == seq);
    // A NULL child with no error recorded says so rather than quote a stale message.
    nb_clear_last_error();
    assert_int_equal(nb_nn_sequential_add(seq2, "x", NULL), NB_ERR_NULL);
    assert_has(nb_last_error(), "child is NULL (did its create fail? no error recorded)");
    nb_layer_destroy(seq2);
    nb_layer_destroy(seq);

    // Two layers sharing nothing but a name path collide in the set.
    nb_params *ps = nb_params_create();
    nb_layer *a = nb_nn_linear_create(2, 2, true, NB_F32, &rng);
    nb_layer *b = nb_nn_linear_create(2, 2, true, NB_F32, &rng);
    assert_int_equal(nb_layer_collect(a, ps, "fc"), NB_OK);
    assert_int_equal(nb_layer_collect(b, ps, "fc"), NB_ERR_ARG);
    assert_has(nb_last_error(), "'fc.weight' is already in the set");
    assert_int_equal(nb_layer_collect(NULL, ps, "fc"), NB_ERR_NULL);
    assert_int_equal(nb_layer_collect(a, NULL, "fc"), NB_ERR_NULL);
    // A prefix longer than a name may be is refused, not cut into the layer's name.
    char longp[NB_PARAM_NAME_MAX + 2];
    memset(longp, 'p', sizeof longp - 1);
    longp[sizeof longp - 1] = '\0';
    assert_int_equal(nb_layer_collect(b, ps, longp), NB_ERR_ARG);
    assert_has(nb_last_error(), "nb_layer_collect: prefix 'ppp");
    assert_string_equal(b->name, "fc"); // from the collect above, unchanged
    nb_params_destroy(ps);
    nb_layer_destroy(a);
    nb_layer_destroy(b);
}

// ---- the optimizer adapter ---------------------------------------------------------------------

static void test_optim_from_params(void **state) {
    (void)state;
    nb_rng rng;
    nb_rng_seed(&rng, 3);
    nb_layer *model = mlp(&rng, NB_F64, 4, 3, 2);
    nb_params *ps = nb_params_create();
    assert_int_equal(nb_layer_collect(model, ps, NULL), NB_OK);
    nb_tensor *rm = nb_tensor_create(NB_F64, 1, (int64_t[]){3}); // a buffer is never optimized
    nb_tensor_fill(rm, 1.0);
    assert_int_equal(nb_params_add(ps, "bn", "running_mean", rm, NB_BUFFER), NB_OK);

    nb_optim_config cfg = nb_optim_defaults(NB_OPTIM_SGD, 0.1);
    cfg.weight_decay = 0.5;
    nb_optim *opt = nb_params_optim_create(ps, cfg, true);
    assert_non_null(opt);
    int n = 0;
    nb_optim_params(opt, &n);
    assert_int_equal(n, 4);
    // One SGD step: weights move by -lr (g + λ w), biases by -lr g (no decay on 1-D).
    nb_tensor *x = nb_tensor_create(NB_F64, 2, (int64_t[]){5, 4});
    for (int64_t i = 0; i < 20; i++)
        nb_tensor_set(x, i, sin(0.3 * (double)i) + 0.5);
    nb_graph *g = nb_graph_create();
    nb_optim_zero_grad(opt);
    nb_tensor *loss = nb_sum(g, nb_layer_forward(g, model, x));
    assert_int_equal(nb_backward(g, loss), NB_OK);
    nb_tensor *w = nb_params_find(ps, "fc1.weight", NULL),
              *b = nb_params_find(ps, "fc1.bias", NULL);
    double w0 = nb_tensor_get(w, 1), gw = nb_tensor_grad_get(w, 1);
    double b0 = nb_tensor_get(b, 1), gb = nb_tensor_grad_get(b, 1);
    assert_int_equal(nb_optim_step(opt), NB_OK);
    assert_true(fabs(nb_tensor_get(w, 1) - (w0 - 0.1 * (gw + 0.5 * w0))) < 1e-15);
    assert_true(fabs(nb_tensor_get(b, 1) - (b0 - 0.1 * gb)) < 1e-15);
    assert_true(nb_tensor_get(rm, 0) == 1.0);
    nb_optim_destroy(opt);

    // With decay everywhere, the bias decays too.
    opt = nb_params_optim_create(ps, cfg, false);
    assert_non_null(opt);
    nb_optim_zero_grad(opt);
    b0 = nb_tensor_get(b, 1);
    assert_int_equal(nb_optim_step(opt), NB_OK);
    assert_true(fabs(nb_tensor_get(b, 1) - (b0 - 0.1 * 0.5 * b0)) < 1e-15);
    nb_optim_destroy(opt);

    // Adam's state is named after the set's names.
    opt = nb_params_optim_create(ps, nb_optim_defaults(NB_OPTIM_ADAM, 1e-3), true);
    const char *const *names;
    nb_tensor *const *tensors;
    int ns = nb_optim_state_export(opt, &names, &tensors);
    bool named = false;
    for (int i = 0; i < ns; i++)
        named |= strcmp(names[i], "optim.exp_avg.fc2.bias") == 0;
    assert_true(named);
    nb_optim_destroy(opt);

    // Bad: NULL, empty set, a set of buffers only, a bad config.
    assert_null(nb_params_optim_create(NULL, cfg, true));
    nb_params *empty = nb_params_create();
    assert_int_equal(nb_params_add(empty, NULL, "rm", rm, NB_BUFFER), NB_OK);
    assert_null(nb_params_optim_create(empty, cfg, true));
    assert_has(nb_last_error(), "no parameters (1 buffers)");
    cfg.lr = -1;
    assert_null(nb_params_optim_create(ps, cfg, true));
    assert_has(nb_last_error(), "lr");

    nb_params_destroy(empty);
    nb_graph_destroy(g);
    nb_tensor_destroy(x);
    nb_tensor_destroy(rm);
    nb_params_destroy(ps);
    nb_layer_destroy(model);
}

// ---- whole-model checkpoints ---------------------------------------------------------------

static bool same_params(nb_layer *a, nb_layer *b) {
    nb_params *pa = nb_params_create(), *pb = nb_params_create();
    assert_int_equal(nb_layer_collect(a, pa, NULL), NB_OK);
    assert_int_equal(nb_layer_collect(b, pb, NULL), NB_OK);
    bool same = nb_params_count(pa, NB_PARAM) == nb_params_count(pb, NB_PARAM);
    for (int i = 0; same && i < nb_params_count(pa, NB_PARAM); i++) {
        nb_tensor *ta = nb_params_tensor(pa, NB_PARAM, i), *tb = nb_params_tensor(pb, NB_PARAM, i);
        same = nb_tensor_numel(ta) == nb_tensor_numel(tb) &&
               memcmp(nb_tensor_data(ta), nb_tensor_data(tb),
                      (size_t)nb_tensor_numel(ta) * nb_dtype_size(nb_tensor_dtype(ta))) == 0;
    }
    nb_params_destroy(pa);
    nb_params_destroy(pb);
    return same;
}

static void test_save_load(void **state) {
    (void)state;
    char path[256], path2[256];
    nbt_in_dir(path, sizeof path, "model.safetensors");
    nb_rng rng;
    nb_rng_seed(&rng, 11);
    nb_layer *a = mlp(&rng, NB_F32, 6, 5, 3);
    nb_layer *b = mlp(&rng, NB_F32, 6, 5, 3);
    assert_false(same_params(a, b));
    assert_int_equal(nb_layer_save(a, path), NB_OK);
    assert_int_equal(nb_layer_load(b, path), NB_OK);
    assert_true(same_params(a, b));

    // The file holds exactly PyTorch's state_dict names.
    nb_safetensors *f;
    assert_int_equal(nb_safetensors_open(path, &f), NB_OK);
    int64_t shape[NB_MAX_DIMS];
    int dt, nd;
    assert_true(nb_safetensors_find(f, "fc1.weight", &dt, &nd, shape));
    assert_int_equal(dt, NB_F32);
    assert_int_equal(nd, 2);
    assert_int_equal(shape[0], 5);
    assert_int_equal(shape[1], 6);
    assert_true(nb_safetensors_find(f, "fc2.bias", NULL, NULL, NULL));
    assert_false(nb_safetensors_find(f, "1.weight", NULL, NULL, NULL));
    nb_safetensors_close(f);

    // Mismatched checkpoints: a clear error naming the tensor; the model is untouched even when
    // some tensors (fc1.*) would have fitted.
    nb_layer *c = mlp(&rng, NB_F32, 6, 5, 4); // fc2 has 4 outputs
    nb_layer *c_copy = mlp(&rng, NB_F32, 6, 5, 4);
    nbt_in_dir(path2, sizeof path2, "c.safetensors");
    assert_int_equal(nb_layer_save(c, path2), NB_OK);
    assert_int_equal(nb_layer_load(c_copy, path2), NB_OK);
    assert_int_equal(nb_layer_load(c, path), NB_ERR_SHAPE);
    assert_has(nb_last_error(), "fc2.weight");
    assert_has(nb_last_error(), "(3, 5)");
    assert_true(same_params(c, c_copy));

    nb_layer *d = mlp(&rng, NB_F64, 6, 5, 3); // same shapes, float64
    assert_int_equal(nb_layer_load(d, path), NB_ERR_DTYPE);
    assert_has(nb_last_error(), "fc1.weight");

    nb_layer *e = mlp(&rng, NB_F32, 6, 5, 3); // one more layer: a name the file lacks
    assert_int_equal(nb_nn_sequential_add(e, "fc3", nb_nn_linear_create(3, 3, true, NB_F32, &rng)),
                     NB_OK);
    assert_int_equal(nb_layer_load(e, path), NB_ERR_FORMAT);
    assert_has(nb_last_error(), "fc3.weight");

    // A model without tensors cannot be saved; missing files and NULLs are errors.
    nb_layer *r = nb_nn_relu_create();
    assert_int_equal(nb_layer_save(r, path), NB_ERR_ARG);
    assert_int_equal(nb_layer_load(a, nbt_in_dir(path2, sizeof path2, "missing.safetensors")),
                     NB_ERR_IO);
    assert_int_equal(nb_layer_save(NULL, path), NB_ERR_NULL);
    assert_int_equal(nb_layer_load(a, NULL), NB_ERR_NULL);
    // A failed save (directory path) leaves the old file loadable.
    assert_int_equal(nb_layer_save(a, nbt_dir), NB_ERR_IO);
    assert_int_equal(nb_layer_load(b, path), NB_OK);

    // Buffers are saved and loaded with the parameters.
    nb_params *ps = nb_params_create(), *ps2 = nb_params_create();
    nb_tensor *rm = nb_tensor_create(NB_F32, 1, (int64_t[]){3});
    nb_tensor *rm2 = nb_tensor_create(NB_F32, 1, (int64_t[]){3});
    nb_tensor_fill(rm, 0.25);
    assert_int_equal(nb_layer_collect(a, ps, NULL), NB_OK);
    assert_int_equal(nb_layer_collect(b, ps2, NULL), NB_OK);
    assert_int_equal(nb_params_add(ps, "bn", "running_mean", rm, NB_BUFFER), NB_OK);
    assert_int_equal(nb_params_add(ps2, "bn", "running_mean", rm2, NB_BUFFER), NB_OK);
    assert_int_equal(nb_params_save(ps, path), NB_OK);
    assert_int_equal(nb_params_load(ps2, path), NB_OK);
    assert_true(nb_tensor_get(rm2, 2) == 0.25);
    nb_params *none = nb_params_create();
    assert_int_equal(nb_params_save(none, path), NB_ERR_ARG);
    assert_int_equal(nb_params_load(none, path), NB_ERR_ARG);

    nb_params_destroy(none);
    nb_params_destroy(ps);
    nb_params_destroy(ps2);
    nb_tensor_destroy(rm);
    nb_tensor_destroy(rm2);
    nb_layer_destroy(r);
    nb_layer_destroy(a);
    nb_layer_destroy(b);
    nb_layer_destroy(c);
    nb_layer_destroy(c_copy);
    nb_layer_destroy(d);
    nb_layer_destroy(e);
}

// A short training run through the layer API learns (the layers' tensors are what the
// optimizer updates and backward reaches).
static void test_train_small(void **state) {
    (void)state;
    nb_rng rng;
    nb_rng_seed(&rng, 5);
    nb_layer *model = mlp(&rng, NB_F32, 2, 16, 2);
    nb_params *ps = nb_params_create();
    assert_int_equal(nb_layer_collect(model, ps, NULL), NB_OK);
    nb_optim *opt = nb_params_optim_create(ps, nb_optim_defaults(NB_OPTIM_ADAM, 0.05), true);
    nb_tensor *x = nb_tensor_create(NB_F32, 2, (int64_t[]){32, 2});
    nb_tensor *t = nb_tensor_create(NB_I32, 1, (int64_t[]){32});
    for (int i = 0; i < 32; i++) { // two classes: inside / outside a circle
        double u = 2 * nb_rng_uniform(&rng) - 1, v = 2 * nb_rng_uniform(&rng) - 1;
        nb_tensor_set(x, 2 * i, u);
        nb_tensor_set(x, 2 * i + 1, v);
        nb_tensor_set(t, i, u * u + v * v < 0.5);
    }
    nb_graph *g = nb_graph_create();
    double first = 0, last = 0;
    for (int step = 0; step < 200; step++) {
        nb_graph_reset(g);
        nb_optim_zero_grad(opt);
        nb_tensor *loss =
            nb_sparse_cross_entropy_logits(g, nb_layer_forward(g, model, x), t, NB_REDUCE_MEAN);
        assert_non_null(loss);
        assert_int_equal(nb_backward(g, loss), NB_OK);
        assert_int_equal(nb_optim_step(opt), NB_OK);
        last = nb_tensor_get(loss, 0);
        if (step == 0)
            first = last;
    }
    assert_true(last < 0.25 * first);
    nb_graph_destroy(g);
    nb_tensor_destroy(x);
    nb_tensor_destroy(t);
    nb_optim_destroy(opt);
    nb_params_destroy(ps);
    nb_layer_destroy(model);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_params_basic),
        cmocka_unit_test(test_params_bad),
        cmocka_unit_test(test_linear_init_and_forward),
        cmocka_unit_test(test_linear_bad),
        cmocka_unit_test(test_conv2d_layer),
        cmocka_unit_test(test_sequential),
        cmocka_unit_test(test_sequential_bad),
        cmocka_unit_test(test_optim_from_params),
        cmocka_unit_test(test_save_load),
        cmocka_unit_test(test_train_small),
    };
    return cmocka_run_group_tests(tests, nbt_dir_make, nbt_dir_remove);
}
