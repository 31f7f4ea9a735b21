// Tests for a small CNN built from nabla/nn.h's layers (conv, batch norm, relu, pooling,
// dropout, flatten, linear in nested sequentials): hierarchical names with parameters and
// buffers apart, the model-wide train/eval switch, gradients, and whole-model checkpoints that
// carry the buffers and refuse every mismatch (shape, dtype, missing or unexpected tensor)
// without touching the model.

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
#include "support/testdir.h"

// ---- a small CNN: names, the train/eval switch, checkpoints ----------------------------------

// Sequential(features=Sequential(Conv2d(1, c, 3, padding=1), BatchNorm2d(c), ReLU(),
// BatchNorm2d(c), MaxPool2d(2), Dropout(0.25)), flatten, head=Linear(c*2*2, 3)) on 4x4 inputs.
static nb_layer *cnn(nb_rng *rng, int64_t c, bool affine, nb_dtype dt) {
    nb_layer *f = nb_nn_sequential_create(), *m = nb_nn_sequential_create();
    nb_nn_conv2d_options k3 = {.kernel = {3, 3}, .padding = {1, 1}};
    assert_int_equal(nb_nn_sequential_add(f, NULL, nb_nn_conv2d_create(1, c, k3, dt, rng)), NB_OK);
    assert_int_equal(
        nb_nn_sequential_add(f, NULL, nb_nn_batch_norm2d_create(c, 1e-5, 0.1, affine, dt)), NB_OK);
    assert_int_equal(nb_nn_sequential_add(f, NULL, nb_nn_relu_create()), NB_OK);
    assert_int_equal(
        nb_nn_sequential_add(f, NULL, nb_nn_batch_norm2d_create(c, 1e-5, 0.1, true, dt)), NB_OK);
    assert_int_equal(nb_nn_sequential_add(f, NULL, nb_nn_max_pool2d_create(2, 0, 0)), NB_OK);
    assert_int_equal(nb_nn_sequential_add(f, NULL, nb_nn_dropout_create(0.25, rng)), NB_OK);
    assert_int_equal(nb_nn_sequential_add(m, "features", f), NB_OK);
    assert_int_equal(nb_nn_sequential_add(m, NULL, nb_nn_flatten_create(1, -1)), NB_OK);
    assert_int_equal(nb_nn_sequential_add(m, "head", nb_nn_linear_create(c * 4, 3, true, dt, rng)),
                     NB_OK);
    return m;
}

static void test_cnn_names_and_modes(void **state) {
    (void)state;
    nb_rng rng;
    nb_rng_seed(&rng, 21);
    nb_layer *m = cnn(&rng, 2, true, NB_F32);
    nb_params *ps = nb_params_create();
    assert_int_equal(nb_layer_collect(m, ps, NULL), NB_OK);
    const char *params[] = {"features.0.weight", "features.0.bias",   "features.1.weight",
                            "features.1.bias",   "features.3.weight", "features.3.bias",
                            "head.weight",       "head.bias"};
    const char *buffers[] = {"features.1.running_mean",        "features.1.running_var",
                             "features.1.num_batches_tracked", "features.3.running_mean",
                             "features.3.running_var",         "features.3.num_batches_tracked"};
    assert_int_equal(nb_params_count(ps, NB_PARAM), 8);
    assert_int_equal(nb_params_count(ps, NB_BUFFER), 6);
    for (int i = 0; i < 8; i++)
        assert_string_equal(nb_params_name(ps, NB_PARAM, i), params[i]);
    for (int i = 0; i < 6; i++)
        assert_string_equal(nb_params_name(ps, NB_BUFFER, i), buffers[i]);
    // The model-wide switch reaches every nested layer.
    nb_layer *f = nb_nn_sequential_child(m, 0);
    nb_layer_train(m, false);
    for (int i = 0; i < nb_nn_sequential_len(f); i++)
        assert_false(nb_nn_sequential_child(f, i)->training);
    assert_false(nb_nn_sequential_child(m, 2)->training);
    nb_layer_train(m, true);
    for (int i = 0; i < nb_nn_sequential_len(f); i++)
        assert_true(nb_nn_sequential_child(f, i)->training);

    // Training: batch statistics move both batch norms' running statistics and count batches;
    // dropout draws a fresh mask, so two forwards differ.
    nb_nn_batch_norm2d *bn1 = nb_nn_batch_norm2d_of(nb_nn_sequential_child(f, 1));
    nb_nn_batch_norm2d *bn3 = nb_nn_batch_norm2d_of(nb_nn_sequential_child(f, 3));
    // A shift in bn1, or relu(weight x̂) / its std would not depend on bn1's weight.
    nb_tensor_fill(bn1->bias, 0.3);
    nb_tensor *x = filled(NB_F32, 4, (int64_t[]){5, 1, 4, 4}, 0.7);
    nb_graph *g = nb_graph_create();
    nb_tensor *y1 = nb_layer_forward(g, m, x), *y2 = nb_layer_forward(g, m, x);
    assert_non_null(y1);
    assert_non_null(y2);
    assert_int_equal(nb_tensor_dim(y1, 1), 3);
    bool differs = false;
    for (int64_t i = 0; i < 15; i++)
        differs |= nb_tensor_get(y1, i) != nb_tensor_get(y2, i);
    assert_true(differs);
    assert_true(nb_tensor_get(bn1->num_batches_tracked, 0) == 2.0);
    assert_true(nb_tensor_get(bn3->num_batches_tracked, 0) == 2.0);
    assert_true(nb_tensor_get(bn1->running_mean, 0) != 0.0);
    assert_true(nb_tensor_get(bn3->running_var, 1) != 1.0);
    // Backward reaches every parameter, buffers get no gradient.
    nb_tensor *loss = nb_sum(g, nb_mul(g, y2, y2));
    assert_int_equal(nb_backward(g, loss), NB_OK);
    for (int i = 0; i < nb_params_count(ps, NB_PARAM); i++) {
        nb_tensor *t = nb_params_tensor(ps, NB_PARAM, i);
        const float *gr = nb_tensor_grad_f32(t);
        assert_non_null(gr);
        // The conv bias feeds a training batch norm, which subtracts each channel's mean: its
        // gradient is zero up to rounding.
        bool conv_bias = strcmp(nb_params_name(ps, NB_PARAM, i), "features.0.bias") == 0;
        bool nonzero = false;
        for (int64_t j = 0; j < nb_tensor_numel(t); j++) {
            nonzero |= fabsf(gr[j]) > 1e-3f;
            if (conv_bias)
                assert_true(fabsf(gr[j]) < 1e-4f);
        }
        assert_true(nonzero != conv_bias);
    }
    assert_null(nb_tensor_grad(bn1->running_mean));

    // Eval: deterministic, and nothing moves.
    nb_layer_train(m, false);
    nb_graph_reset(g);
    float rm = (float)nb_tensor_get(bn3->running_mean, 1);
    y1 = nb_layer_forward(g, m, x);
    y2 = nb_layer_forward(g, m, x);
    assert_same(y1, y2);
    assert_true((float)nb_tensor_get(bn3->running_mean, 1) == rm);
    assert_true(nb_tensor_get(bn1->num_batches_tracked, 0) == 2.0);

    nb_tensor_destroy(x);
    nb_graph_destroy(g);
    nb_params_destroy(ps);
    nb_layer_destroy(m);
}

// Every tensor of a set, flattened, for before/after comparisons.
static double *snapshot(nb_layer *m, int64_t *n) {
    nb_params *ps = nb_params_create();
    assert_int_equal(nb_layer_collect(m, ps, NULL), NB_OK);
    *n = nb_params_numel(ps, NB_PARAM) + nb_params_numel(ps, NB_BUFFER);
    double *v = malloc((size_t)*n * sizeof *v);
    assert_non_null(v);
    int64_t k = 0;
    for (int kind = 0; kind < NB_PARAM_KIND_COUNT; kind++)
        for (int i = 0; i < nb_params_count(ps, (nb_param_kind)kind); i++) {
            nb_tensor *t = nb_params_tensor(ps, (nb_param_kind)kind, i);
            for (int64_t j = 0; j < nb_tensor_numel(t); j++)
                v[k++] = nb_tensor_get(t, j);
        }
    nb_params_destroy(ps);
    return v;
}

static bool unchanged(nb_layer *m, const double *before, int64_t n) {
    int64_t n2;
    double *now = snapshot(m, &n2);
    bool same = n2 == n && memcmp(now, before, (size_t)n * sizeof *now) == 0;
    free(now);
    return same;
}

static void test_cnn_checkpoint(void **state) {
    (void)state;
    char path[256], other[256];
    snprintf(path, sizeof path, "%s/cnn.safetensors", nbt_dir);
    snprintf(other, sizeof other, "%s/other.safetensors", nbt_dir);
    nb_rng rng;
    nb_rng_seed(&rng, 5);
    nb_layer *a = cnn(&rng, 2, true, NB_F32), *b = cnn(&rng, 2, true, NB_F32);
    // Move a's running statistics and counters away from their start, then round-trip.
    nb_tensor *x = filled(NB_F32, 4, (int64_t[]){3, 1, 4, 4}, 0.4);
    nb_graph *g = nb_graph_create();
    assert_non_null(nb_layer_forward(g, a, x));
    assert_int_equal(nb_layer_save(a, path), NB_OK);
    int64_t n;
    double *va = snapshot(a, &n);
    assert_false(unchanged(b, va, n));
    assert_int_equal(nb_layer_load(b, path), NB_OK);
    assert_true(unchanged(b, va, n)); // parameters and buffers, bit for bit
    nb_nn_batch_norm2d *bn =
        nb_nn_batch_norm2d_of(nb_nn_sequential_child(nb_nn_sequential_child(b, 0), 1));
    assert_true(nb_tensor_get(bn->num_batches_tracked, 0) == 1.0);
    // The same outputs in eval.
    nb_layer_train(a, false);
    nb_layer_train(b, false);
    nb_graph_reset(g);
    assert_same(nb_layer_forward(g, a, x), nb_layer_forward(g, b, x));
    // The file holds the buffers under their names.
    nb_safetensors *f;
    int dt, nd;
    int64_t shape[NB_MAX_DIMS];
    assert_int_equal(nb_safetensors_open(path, &f), NB_OK);
    assert_true(nb_safetensors_find(f, "features.3.running_var", &dt, &nd, shape));
    assert_int_equal(dt, NB_F32);
    assert_int_equal(nd, 1);
    assert_int_equal(shape[0], 2);
    assert_true(nb_safetensors_find(f, "features.1.num_batches_tracked", &dt, &nd, NULL));
    assert_int_equal(dt, NB_I64);
    assert_int_equal(nd, 0);
    nb_safetensors_close(f);

    // Mismatches: a clear error naming the tensor and both shapes / dtypes, model untouched.
    nb_layer *wide = cnn(&rng, 3, true, NB_F32); // 3 channels everywhere
    double *vw = snapshot(wide, &n);
    assert_int_equal(nb_layer_load(wide, path), NB_ERR_SHAPE);
    assert_has(nb_last_error(), "features.0.weight");
    assert_has(nb_last_error(), "(2, 1, 3, 3)");
    assert_has(nb_last_error(), "(3, 1, 3, 3)");
    assert_true(unchanged(wide, vw, n));
    free(vw);
    nb_layer *f64 = cnn(&rng, 2, true, NB_F64);
    vw = snapshot(f64, &n);
    assert_int_equal(nb_layer_load(f64, path), NB_ERR_DTYPE);
    assert_has(nb_last_error(), "features.0.weight");
    assert_true(unchanged(f64, vw, n));
    free(vw);
    // A file without batch norm's affine tensors: the first missing name is reported.
    nb_layer *plain = cnn(&rng, 2, false, NB_F32);
    assert_int_equal(nb_layer_save(plain, other), NB_OK);
    vw = snapshot(a, &n);
    assert_int_equal(nb_layer_load(a, other), NB_ERR_FORMAT);
    assert_has(nb_last_error(), "features.1.weight");
    assert_true(unchanged(a, vw, n));
    free(vw);
    // Only a buffer differs: a file whose features.3 running statistics have 3 channels.
    nb_params *ps = nb_params_create();
    assert_int_equal(nb_layer_collect(a, ps, NULL), NB_OK);
    int k = nb_params_count(ps, NB_PARAM) + nb_params_count(ps, NB_BUFFER);
    const char *names[33];
    nb_tensor *ts[33];
    nb_tensor *rv3 = nb_tensor_create(NB_F32, 1, (int64_t[]){3});
    nb_tensor_fill(rv3, 2.0);
    for (int i = 0; i < k; i++) {
        nb_param_kind kind = i < nb_params_count(ps, NB_PARAM) ? NB_PARAM : NB_BUFFER;
        int j = kind == NB_PARAM ? i : i - nb_params_count(ps, NB_PARAM);
        names[i] = nb_params_name(ps, kind, j);
        ts[i] = strcmp(names[i], "features.3.running_var") ? nb_params_tensor(ps, kind, j) : rv3;
    }
    assert_int_equal(nb_save_safetensors(other, names, ts, k), NB_OK);
    vw = snapshot(a, &n);
    assert_int_equal(nb_layer_load(a, other), NB_ERR_SHAPE);
    assert_has(nb_last_error(), "'features.3.running_var' has shape (3), model expects (2)");
    assert_true(unchanged(a, vw, n));
    free(vw);

    // A file with a tensor the model lacks (here: a wider head's extra layer) is refused as
    // load_state_dict(strict=True) would, naming it; optimizer state beside the model is fine.
    for (int i = 0; i < k; i++) // the model's own tensors again
        ts[i] = nb_params_find(ps, names[i], NULL);
    nb_tensor *extra = nb_tensor_create(NB_F32, 2, (int64_t[]){3, 3});
    nb_tensor_fill(extra, 0.5);
    names[k] = "head2.weight";
    ts[k] = extra;
    assert_int_equal(nb_save_safetensors(other, names, ts, k + 1), NB_OK);
    vw = snapshot(a, &n);
    assert_int_equal(nb_layer_load(a, other), NB_ERR_FORMAT);
    assert_has(nb_last_error(), "tensor 'head2.weight' (3, 3) is not in the model");
    assert_true(unchanged(a, vw, n));
    free(vw);
    names[k] = "optim.step";
    assert_int_equal(nb_save_safetensors(other, names, ts, k + 1), NB_OK);
    assert_int_equal(nb_layer_load(a, other), NB_OK);
    nb_safetensors *h;
    assert_int_equal(nb_safetensors_open(other, &h), NB_OK);
    assert_int_equal(nb_safetensors_count(h), k + 1);
    assert_string_equal(nb_safetensors_name(h, 0), "features.0.bias"); // strcmp order
    assert_null(nb_safetensors_name(h, k + 1));
    assert_null(nb_safetensors_name(h, -1));
    nb_safetensors_close(h);
    assert_int_equal(nb_safetensors_count(NULL), 0);

    nb_tensor_destroy(extra);
    nb_params_destroy(ps);
    nb_tensor_destroy(rv3);
    free(va);
    nb_tensor_destroy(x);
    nb_graph_destroy(g);
    nb_layer_destroy(a);
    nb_layer_destroy(b);
    nb_layer_destroy(wide);
    nb_layer_destroy(f64);
    nb_layer_destroy(plain);
}

// ---- a composite layer of one's own: children named with nb_layer_collect_child --------------

// pair(enc = Linear(2, 3), mlp.0 = Linear(3, 1)): the shape of a user's composite layer.
typedef struct pair_layer {
    nb_layer base;
    nb_layer *enc, *fc;
} pair_layer;

static nb_status pair_collect(nb_layer *self, nb_params *set, const char *prefix) {
    pair_layer *p = (pair_layer *)self;
    nb_status st = nb_layer_collect_child(p->enc, set, prefix, "enc");
    return st == NB_OK ? nb_layer_collect_child(p->fc, set, prefix, "mlp.0") : st;
}

static void pair_destroy(nb_layer *self) {
    pair_layer *p = (pair_layer *)self;
    nb_layer_destroy(p->enc);
    nb_layer_destroy(p->fc);
    free(p);
}

static const nb_layer_ops pair_ops = {"pair", NULL, pair_collect, NULL, pair_destroy};

static void test_collect_child(void **state) {
    (void)state;
    nb_rng rng;
    nb_rng_seed(&rng, 11);
    pair_layer *p = calloc(1, sizeof *p);
    assert_non_null(p);
    p->base.training = false; // what calloc gives; nb_layer_init sets it as a create does
    nb_layer_init(&p->base, &pair_ops);
    assert_true(p->base.training && p->base.ops == &pair_ops && !p->base.owner);
    p->enc = nb_nn_linear_create(2, 3, true, NB_F32, &rng);
    p->fc = nb_nn_linear_create(3, 1, false, NB_F32, &rng);
    nb_params *ps = nb_params_create();

    // Under a prefix, and at the top (NULL and "" alike): "prefix.child.tensor".
    assert_int_equal(nb_layer_collect(&p->base, ps, "net"), NB_OK);
    assert_int_equal(nb_params_count(ps, NB_PARAM), 3);
    assert_string_equal(nb_params_name(ps, NB_PARAM, 0), "net.enc.weight");
    assert_string_equal(nb_params_name(ps, NB_PARAM, 1), "net.enc.bias");
    assert_string_equal(nb_params_name(ps, NB_PARAM, 2), "net.mlp.0.weight");
    assert_string_equal(p->base.name, "net");
    assert_string_equal(p->enc->name, "net.enc");
    assert_string_equal(p->fc->name, "net.mlp.0");
    for (int k = 0; k < 2; k++) {
        nb_params_clear(ps);
        assert_int_equal(nb_layer_collect_child(p->enc, ps, k ? "" : NULL, "enc"), NB_OK);
        assert_string_equal(nb_params_name(ps, NB_PARAM, 0), "enc.weight");
        assert_string_equal(p->enc->name, "enc");
    }

    // Bad names: each refused naming the child, nothing registered.
    nb_params_clear(ps);
    const char *bad[] = {"", ".enc", "enc.", "a..b"};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(nb_layer_collect_child(p->enc, ps, "net", bad[i]), NB_ERR_ARG);
        assert_has(nb_last_error(), "nb_layer_collect_child: child name");
    }
    char longname[NB_PARAM_NAME_MAX + 8];
    memset(longname, 'x', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    // Exactly NB_PARAM_NAME_MAX bytes in all is a valid layer name ("net." + 251 x) ...
    longname[NB_PARAM_NAME_MAX - 4] = '\0';
    assert_int_equal(nb_layer_collect_child(p->fc, ps, "net", longname), NB_ERR_ARG);
    assert_has(nb_last_error(), "is longer than"); // ... whose tensor name ".weight" is not,
    assert_int_equal(strlen(p->fc->name), NB_PARAM_NAME_MAX); // but the layer took its name.
    longname[NB_PARAM_NAME_MAX - 4] = 'x'; // one byte more: refused before the layer is named
    assert_int_equal(nb_layer_collect_child(p->fc, ps, "net", longname), NB_ERR_ARG);
    assert_has(nb_last_error(), "nb_layer_collect_child: name 'net.xxx");
    assert_int_equal(nb_layer_collect(p->fc, ps, longname + 2), NB_ERR_ARG);
    assert_has(nb_last_error(), "nb_layer_collect: prefix 'xxx");
    assert_int_equal(nb_params_count(ps, NB_PARAM), 0);
    assert_int_equal(nb_layer_collect_child(p->enc, ps, "net", NULL), NB_ERR_NULL);
    assert_int_equal(nb_layer_collect_child(NULL, ps, "net", "enc"), NB_ERR_NULL);
    assert_int_equal(nb_layer_collect_child(p->enc, NULL, "net", "enc"), NB_ERR_NULL);

    nb_params_destroy(ps);
    nb_layer_destroy(&p->base);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cnn_names_and_modes),
        cmocka_unit_test(test_cnn_checkpoint),
        cmocka_unit_test(test_collect_child),
    };
    return cmocka_run_group_tests(tests, nbt_dir_make, nbt_dir_remove);
}
