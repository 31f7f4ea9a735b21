// Tests for the general nb_dataset (nabla/data.h): N-D samples with uint8 or float storage,
// class labels for any number of classes and float targets attached as tensors, batches drawn
// flat or in the sample's shape, the IDX loader's general form and class count, and every
// inconsistent dataset or bad argument refused before anything is written.

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
#include "support/testdir.h"

#define assert_has(s)                                                                              \
    do {                                                                                           \
        if (!strstr(nb_last_error(), (s)))                                                         \
            fail_msg("nb_last_error() = \"%s\" lacks \"%s\"", nb_last_error(), (s));               \
    } while (0)

static nb_tensor *i32_labels(int64_t n, int32_t mul, int32_t mod) {
    nb_tensor *t = nb_tensor_create(NB_I32, 1, (int64_t[]){n});
    assert_non_null(t);
    for (int64_t i = 0; i < n; i++)
        nb_tensor_data_i32(t)[i] = (int32_t)((i * mul) % mod);
    return t;
}

// uint8 storage of (3, 4, 5) samples, 300 classes.
static void test_u8_images_many_classes(void **state) {
    (void)state;
    nb_dataset ds;
    const int64_t shape[3] = {3, 4, 5};
    assert_int_equal(nb_dataset_create(7, 3, shape, NB_DATA_U8, &ds), NB_OK);
    assert_int_equal(ds.n, 7);
    assert_int_equal(ds.sample_ndim, 3);
    assert_int_equal(ds.rows, 4);
    assert_int_equal(ds.cols, 5);
    assert_int_equal(nb_dataset_sample_numel(&ds), 60);
    assert_non_null(ds.images);
    assert_null(ds.samples);
    assert_int_equal(ds.images[7 * 60 - 1], 0); // zero-filled
    for (int64_t i = 0; i < 7 * 60; i++)
        ds.images[i] = (uint8_t)(i * 7 % 256);
    nb_tensor *lab = i32_labels(7, 97, 300); // labels up to 291: more than uint8 holds
    assert_int_equal(nb_dataset_set_labels(&ds, lab, 300), NB_OK);
    assert_int_equal(ds.n_classes, 300);
    assert_non_null(ds.class_labels);
    nb_tensor_data_i32(lab)[0] = 5; // the dataset holds a copy
    assert_int_equal(nb_tensor_data_i32(ds.class_labels)[0], 0);

    // A batch in the sample's shape (NCHW) and flat; labels, one-hot over 300 classes.
    const int64_t idx[2] = {6, 2};
    nb_tensor *x = nb_tensor_create(NB_F32, 4, (int64_t[]){2, 3, 4, 5});
    nb_tensor *xf = nb_tensor_create(NB_F64, 2, (int64_t[]){2, 60});
    nb_tensor *oh = nb_tensor_create(NB_F32, 2, (int64_t[]){2, 300});
    nb_tensor *y = nb_tensor_create(NB_I32, 1, (int64_t[]){2});
    assert_int_equal(nb_dataset_fill_batch(&ds, idx, 2, x, oh, y), NB_OK);
    assert_int_equal(nb_dataset_fill_batch(&ds, idx, 2, xf, NULL, NULL), NB_OK);
    for (int b = 0; b < 2; b++) {
        for (int64_t j = 0; j < 60; j++) {
            uint8_t v = ds.images[idx[b] * 60 + j];
            assert_true(nb_tensor_data_f32(x)[b * 60 + j] == (float)v / 255.0f);
            assert_true(nb_tensor_data_f64(xf)[b * 60 + j] == (double)v / 255.0);
        }
        int32_t want = (int32_t)(idx[b] * 97 % 300);
        assert_int_equal(nb_tensor_data_i32(y)[b], want);
        for (int c = 0; c < 300; c++)
            assert_true(nb_tensor_data_f32(oh)[b * 300 + c] == (c == want ? 1.0f : 0.0f));
    }
    // Shapes that fit neither layout, named with both.
    nb_tensor *bad = nb_tensor_create(NB_F32, 4, (int64_t[]){2, 1, 4, 5});
    assert_int_equal(nb_dataset_fill_batch(&ds, idx, 2, bad, NULL, NULL), NB_ERR_SHAPE);
    assert_has("x is (2, 1, 4, 5), needs (2, 60) or (2, 3, 4, 5)");
    nb_tensor *oh10 = nb_tensor_create(NB_F32, 2, (int64_t[]){2, 10});
    assert_int_equal(nb_dataset_fill_batch(&ds, idx, 2, NULL, oh10, NULL), NB_ERR_SHAPE);
    // No targets in this set.
    nb_tensor *t = nb_tensor_create(NB_F32, 1, (int64_t[]){2});
    assert_int_equal(nb_dataset_fill_targets(&ds, idx, 2, t), NB_ERR_STATE);
    assert_has("no targets");

    nb_dataset_free(&ds);
    assert_null(ds.images);
    assert_null(ds.class_labels);
    assert_int_equal(ds.n, 0);
    nb_dataset_free(&ds); // twice is a no-op
    nb_tensor_destroy(lab);
    nb_tensor_destroy(x);
    nb_tensor_destroy(xf);
    nb_tensor_destroy(oh);
    nb_tensor_destroy(oh10);
    nb_tensor_destroy(y);
    nb_tensor_destroy(bad);
    nb_tensor_destroy(t);
}

// Float storage of feature vectors with regression targets.
static void test_float_samples_targets(void **state) {
    (void)state;
    nb_dataset ds;
    assert_int_equal(nb_dataset_create(5, 1, (int64_t[]){3}, NB_DATA_F32, &ds), NB_OK);
    assert_non_null(ds.samples);
    assert_null(ds.images);
    assert_int_equal(ds.rows, 1);
    assert_int_equal(ds.cols, 3);
    assert_int_equal(nb_tensor_ndim(ds.samples), 2);
    float *v = nb_tensor_data_f32(ds.samples);
    for (int i = 0; i < 15; i++)
        v[i] = (float)i * 0.1f - 0.7f; // used as is, not divided by 255
    nb_tensor *tg = nb_tensor_create(NB_F64, 3, (int64_t[]){5, 2, 2});
    for (int i = 0; i < 20; i++)
        nb_tensor_set(tg, i, 1.0 / (i + 1));
    assert_int_equal(nb_dataset_set_targets(&ds, tg), NB_OK);

    const int64_t idx[3] = {4, 0, 4};
    nb_tensor *x = nb_tensor_create(NB_F64, 2, (int64_t[]){3, 3});
    assert_int_equal(nb_dataset_fill_batch(&ds, idx, 3, x, NULL, NULL), NB_OK);
    for (int b = 0; b < 3; b++)
        for (int j = 0; j < 3; j++)
            assert_true(nb_tensor_data_f64(x)[b * 3 + j] == (double)v[idx[b] * 3 + j]);
    // Targets in their shape (float32: converted) and flat.
    nb_tensor *t = nb_tensor_create(NB_F32, 3, (int64_t[]){3, 2, 2});
    nb_tensor *tf = nb_tensor_create(NB_F64, 2, (int64_t[]){3, 4});
    assert_int_equal(nb_dataset_fill_targets(&ds, idx, 3, t), NB_OK);
    assert_int_equal(nb_dataset_fill_targets(&ds, idx, 3, tf), NB_OK);
    for (int b = 0; b < 3; b++)
        for (int j = 0; j < 4; j++) {
            double want = 1.0 / (double)(idx[b] * 4 + j + 1);
            assert_true(nb_tensor_data_f64(tf)[b * 4 + j] == want);
            assert_true(nb_tensor_data_f32(t)[b * 4 + j] == (float)want);
        }
    // No class labels: one-hot and labels are refused, x alone is fine.
    nb_tensor *y = nb_tensor_create(NB_I32, 1, (int64_t[]){3});
    assert_int_equal(nb_dataset_fill_batch(&ds, idx, 3, x, NULL, y), NB_ERR_STATE);
    assert_has("no class labels");
    // Bad target batches and indices; nothing written.
    nb_tensor *t3 = nb_tensor_create(NB_F32, 2, (int64_t[]){3, 3});
    assert_int_equal(nb_dataset_fill_targets(&ds, idx, 3, t3), NB_ERR_SHAPE);
    assert_has("targets is (3, 3), needs (3, 4) or (3, 2, 2)");
    nb_tensor *ti = nb_tensor_create(NB_I32, 2, (int64_t[]){3, 4});
    assert_int_equal(nb_dataset_fill_targets(&ds, idx, 3, ti), NB_ERR_DTYPE);
    nb_tensor_fill(tf, -1.0);
    assert_int_equal(nb_dataset_fill_targets(&ds, (int64_t[]){0, 5, 1}, 3, tf), NB_ERR_ARG);
    assert_has("idx[1] = 5");
    assert_true(nb_tensor_data_f64(tf)[0] == -1.0);
    assert_int_equal(nb_dataset_fill_targets(&ds, NULL, 3, tf), NB_ERR_NULL);
    // Non-finite or misshapen targets are refused; the old ones stay.
    nb_tensor *nan_t = nb_tensor_create(NB_F32, 1, (int64_t[]){5});
    nb_tensor_fill(nan_t, 0.5);
    nb_tensor_set(nan_t, 3, NAN);
    assert_int_equal(nb_dataset_set_targets(&ds, nan_t), NB_ERR_NONFINITE);
    assert_has("element 3");
    nb_tensor *short_t = nb_tensor_create(NB_F32, 1, (int64_t[]){4});
    assert_int_equal(nb_dataset_set_targets(&ds, short_t), NB_ERR_SHAPE);
    assert_int_equal(nb_tensor_ndim(ds.targets), 3);
    // 1-D targets: (n) batches.
    nb_tensor_set(nan_t, 3, 2.5);
    assert_int_equal(nb_dataset_set_targets(&ds, nan_t), NB_OK);
    nb_tensor *t1 = nb_tensor_create(NB_F32, 1, (int64_t[]){3});
    assert_int_equal(nb_dataset_fill_targets(&ds, (int64_t[]){3, 1, 3}, 3, t1), NB_OK);
    assert_true(nb_tensor_data_f32(t1)[0] == 2.5f && nb_tensor_data_f32(t1)[1] == 0.5f);

    nb_dataset_free(&ds);
    nb_tensor_destroy(tg);
    nb_tensor_destroy(x);
    nb_tensor_destroy(t);
    nb_tensor_destroy(tf);
    nb_tensor_destroy(y);
    nb_tensor_destroy(t3);
    nb_tensor_destroy(ti);
    nb_tensor_destroy(nan_t);
    nb_tensor_destroy(short_t);
    nb_tensor_destroy(t1);
}

static void test_bad_datasets(void **state) {
    (void)state;
    nb_dataset ds;
    const int64_t shape[2] = {2, 2};
    // Creation.
    assert_int_equal(nb_dataset_create(0, 2, shape, NB_DATA_U8, &ds), NB_ERR_ARG);
    assert_int_equal(nb_dataset_create(3, 0, shape, NB_DATA_U8, &ds), NB_ERR_ARG);
    assert_int_equal(nb_dataset_create(3, NB_MAX_DIMS, shape, NB_DATA_U8, &ds), NB_ERR_ARG);
    assert_int_equal(nb_dataset_create(3, 2, (int64_t[]){2, 0}, NB_DATA_U8, &ds), NB_ERR_ARG);
    assert_int_equal(nb_dataset_create(3, 2, (int64_t[]){INT64_MAX / 2, 4}, NB_DATA_F32, &ds),
                     NB_ERR_ARG);
    assert_int_equal(nb_dataset_create(3, 2, shape, (nb_data_storage)7, &ds), NB_ERR_ARG);
    assert_has("storage 7");
    assert_int_equal(nb_dataset_create(3, 2, NULL, NB_DATA_U8, &ds), NB_ERR_NULL);
    assert_int_equal(nb_dataset_create(3, 2, shape, NB_DATA_U8, NULL), NB_ERR_NULL);
    assert_int_equal(ds.n, 0); // zeroed on failure

    // Labels: checked whole before anything changes.
    assert_int_equal(nb_dataset_create(4, 2, shape, NB_DATA_F64, &ds), NB_OK);
    nb_tensor *lab = i32_labels(4, 1, 4);
    assert_int_equal(nb_dataset_set_labels(&ds, lab, 4), NB_OK);
    nb_tensor_data_i32(lab)[2] = 4;
    assert_int_equal(nb_dataset_set_labels(&ds, lab, 4), NB_ERR_ARG);
    assert_has("labels[2] = 4 is outside [0, 4)");
    nb_tensor_data_i32(lab)[2] = -1;
    assert_int_equal(nb_dataset_set_labels(&ds, lab, 4), NB_ERR_ARG);
    assert_int_equal(nb_dataset_set_labels(&ds, lab, 0), NB_ERR_ARG);
    assert_int_equal(ds.n_classes, 4);
    assert_int_equal(nb_tensor_data_i32(ds.class_labels)[2], 2);
    nb_tensor *lab3 = i32_labels(3, 1, 3);
    assert_int_equal(nb_dataset_set_labels(&ds, lab3, 3), NB_ERR_SHAPE);
    nb_tensor *labf = nb_tensor_create(NB_F32, 1, (int64_t[]){4});
    assert_int_equal(nb_dataset_set_labels(&ds, labf, 4), NB_ERR_DTYPE);
    assert_int_equal(nb_dataset_set_labels(&ds, NULL, 4), NB_ERR_NULL);

    // A dataset edited by hand into an inconsistent state is refused, not read past its end.
    const int64_t idx[1] = {0};
    nb_tensor *x = nb_tensor_create(NB_F32, 2, (int64_t[]){1, 4});
    nb_tensor *y = nb_tensor_create(NB_I32, 1, (int64_t[]){1});
    assert_int_equal(nb_dataset_fill_batch(&ds, idx, 1, x, NULL, y), NB_OK);
    ds.n = 5; // more samples than the tensor holds
    assert_int_equal(nb_dataset_fill_batch(&ds, idx, 1, x, NULL, NULL), NB_ERR_STATE);
    assert_has("samples tensor is float64 (4, 2, 2)");
    ds.n = 4;
    ds.sample_shape[1] = 3;
    assert_int_equal(nb_dataset_fill_batch(&ds, idx, 1, x, NULL, NULL), NB_ERR_STATE);
    ds.sample_shape[1] = 2;
    uint8_t px[16] = {0};
    ds.images = px; // two storages
    assert_int_equal(nb_dataset_fill_batch(&ds, idx, 1, x, NULL, NULL), NB_ERR_STATE);
    assert_has("one storage only");
    ds.images = NULL;
    ds.sample_ndim = NB_MAX_DIMS;
    assert_int_equal(nb_dataset_fill_batch(&ds, idx, 1, x, NULL, NULL), NB_ERR_STATE);
    ds.sample_ndim = 2;
    ds.n_classes = 2; // labels above it
    assert_int_equal(nb_dataset_fill_batch(&ds, (int64_t[]){3}, 1, NULL, NULL, y), NB_ERR_ARG);
    assert_has("sample 3 has label 3, outside [0, 2)");
    ds.n_classes = 4;
    assert_int_equal(nb_dataset_fill_batch(&ds, idx, 1, x, NULL, y), NB_OK);
    nb_dataset_free(&ds);
    assert_int_equal(nb_dataset_fill_batch(&ds, idx, 1, x, NULL, NULL), NB_ERR_STATE);
    assert_int_equal(nb_dataset_set_labels(&ds, lab3, 3), NB_ERR_STATE);
    assert_int_equal(nb_dataset_sample_numel(&ds), 0);
    assert_int_equal(nb_dataset_sample_numel(NULL), 0);

    nb_tensor_destroy(lab);
    nb_tensor_destroy(lab3);
    nb_tensor_destroy(labf);
    nb_tensor_destroy(x);
    nb_tensor_destroy(y);
}

static nb_tensor *i64_labels(int64_t n, const int64_t *v) {
    nb_tensor *t = nb_tensor_create(NB_I64, 1, (int64_t[]){n});
    assert_non_null(t);
    memcpy(nb_tensor_data_i64(t), v, (size_t)n * sizeof *v);
    return t;
}

// Sparse cross-entropy of logits = x w against labels y, and d/dw, on a fresh graph.
static double sparse_ce(nb_tensor *x, nb_tensor *w, nb_tensor *y, double *dw, int64_t ndw) {
    nb_graph *g = nb_graph_create();
    assert_non_null(g);
    nb_tensor_zero_grad(w);
    nb_tensor *loss = nb_sparse_cross_entropy_logits(g, nb_matmul(g, x, w), y, NB_REDUCE_MEAN);
    assert_non_null(loss);
    assert_int_equal(nb_backward(g, loss), NB_OK);
    double v = nb_tensor_get(loss, 0);
    memcpy(dw, nb_tensor_grad(w), (size_t)ndw * sizeof(double));
    nb_graph_destroy(g);
    return v;
}

// int64 class labels (PyTorch's dtype) work wherever int32 ones do: attached to a dataset,
// drawn into int64 or int32 batch labels and one-hot rows, and fed to the ops that take
// indices (sparse cross-entropy, one_hot) with the same results as the int32 route.
static void test_int64_labels(void **state) {
    (void)state;
    nb_dataset ds;
    assert_int_equal(nb_dataset_create(6, 1, (int64_t[]){3}, NB_DATA_F64, &ds), NB_OK);
    for (int64_t i = 0; i < 18; i++)
        nb_tensor_data_f64(ds.samples)[i] = sin(0.7 * (double)i);
    const int64_t want[6] = {3, 0, 2, 1, 3, 0};
    nb_tensor *lab = i64_labels(6, want);
    assert_int_equal(nb_dataset_set_labels(&ds, lab, 4), NB_OK);
    assert_int_equal(nb_tensor_dtype(ds.class_labels), NB_I64); // kept, not narrowed
    nb_tensor_data_i64(lab)[0] = 1;                             // the dataset holds a copy
    assert_int_equal(nb_tensor_data_i64(ds.class_labels)[0], 3);

    const int64_t idx[4] = {4, 1, 5, 2};
    nb_tensor *x = nb_tensor_create(NB_F64, 2, (int64_t[]){4, 3});
    nb_tensor *oh = nb_tensor_create(NB_F64, 2, (int64_t[]){4, 4});
    nb_tensor *y64 = nb_tensor_create(NB_I64, 1, (int64_t[]){4});
    nb_tensor *y32 = nb_tensor_create(NB_I32, 1, (int64_t[]){4});
    assert_int_equal(nb_dataset_fill_batch(&ds, idx, 4, x, oh, y64), NB_OK);
    assert_int_equal(nb_dataset_fill_batch(&ds, idx, 4, NULL, NULL, y32), NB_OK);
    for (int b = 0; b < 4; b++) {
        assert_int_equal(nb_tensor_data_i64(y64)[b], want[idx[b]]);
        assert_int_equal(nb_tensor_data_i32(y32)[b], want[idx[b]]);
        for (int c = 0; c < 4; c++)
            assert_true(nb_tensor_data_f64(oh)[b * 4 + c] == (c == want[idx[b]] ? 1.0 : 0.0));
    }
    // int32 dataset labels drawn into int64 batch labels too.
    nb_dataset d32;
    assert_int_equal(nb_dataset_create(6, 1, (int64_t[]){3}, NB_DATA_F64, &d32), NB_OK);
    nb_tensor *lab32 = i32_labels(6, 1, 4);
    assert_int_equal(nb_dataset_set_labels(&d32, lab32, 4), NB_OK);
    nb_tensor_fill(y64, -9);
    assert_int_equal(nb_dataset_fill_batch(&d32, idx, 4, NULL, NULL, y64), NB_OK);
    for (int b = 0; b < 4; b++)
        assert_int_equal(nb_tensor_data_i64(y64)[b], idx[b] % 4);
    nb_dataset_free(&d32);

    // The batch feeds sparse cross-entropy: same loss and gradient from either label dtype.
    assert_int_equal(nb_dataset_fill_batch(&ds, idx, 4, NULL, NULL, y64), NB_OK);
    nb_tensor *w = nb_tensor_create(NB_F64, 2, (int64_t[]){3, 4});
    for (int64_t i = 0; i < 12; i++)
        nb_tensor_data_f64(w)[i] = 0.1 * (double)(i % 5) - 0.2;
    assert_int_equal(nb_tensor_set_requires_grad(w, true), NB_OK);
    double g64[12], g32[12];
    double l64 = sparse_ce(x, w, y64, g64, 12), l32 = sparse_ce(x, w, y32, g32, 12);
    assert_true(l64 == l32 && l64 > 0);
    for (int i = 0; i < 12; i++)
        assert_true(g64[i] == g32[i]);
    // And one_hot on the tape gives the rows fill_batch wrote.
    nb_graph *g = nb_graph_create();
    nb_tensor *ohg = nb_one_hot_tensor(g, y64, 4, NB_F64);
    assert_non_null(ohg);
    for (int i = 0; i < 16; i++)
        assert_true(nb_tensor_get(ohg, i) == nb_tensor_get(oh, i));
    nb_graph_destroy(g);

    // Bad int64 labels: negative, past n_classes, past int32 (named with the full value), a
    // class count past 2^31; nothing changes.
    nb_tensor_data_i64(lab)[0] = 3;
    nb_tensor_data_i64(lab)[4] = -3;
    assert_int_equal(nb_dataset_set_labels(&ds, lab, 4), NB_ERR_ARG);
    assert_has("labels[4] = -3 is outside [0, 4)");
    nb_tensor_data_i64(lab)[4] = 4;
    assert_int_equal(nb_dataset_set_labels(&ds, lab, 4), NB_ERR_ARG);
    assert_has("labels[4] = 4 is outside [0, 4)");
    nb_tensor_data_i64(lab)[4] = (int64_t)1 << 40;
    assert_int_equal(nb_dataset_set_labels(&ds, lab, 4), NB_ERR_ARG);
    assert_has("labels[4] = 1099511627776 is outside [0, 4)");
    assert_int_equal(nb_dataset_set_labels(&ds, lab, (int64_t)1 << 41), NB_ERR_ARG);
    assert_has("n_classes 2199023255552 is outside [1, 2^31)");
    assert_int_equal(ds.n_classes, 4);
    assert_int_equal(nb_tensor_data_i64(ds.class_labels)[4], 3);
    // Mixed dtypes: batch labels must be an index dtype, whatever the dataset holds.
    nb_tensor *yf = nb_tensor_create(NB_F32, 1, (int64_t[]){4});
    nb_tensor_fill(y64, -9);
    assert_int_equal(nb_dataset_fill_batch(&ds, idx, 4, NULL, NULL, yf), NB_ERR_DTYPE);
    assert_has("labels is float32, needs int32 or int64");
    nb_tensor *y64s = nb_tensor_create(NB_I64, 1, (int64_t[]){3});
    assert_int_equal(nb_dataset_fill_batch(&ds, idx, 4, NULL, NULL, y64s), NB_ERR_SHAPE);
    assert_has("labels is (3), needs (4)");
    // A hand-edited dataset: int64 labels past int32 fit int64 batch labels only.
    ds.n_classes = (int64_t)1 << 33;
    nb_tensor_data_i64(ds.class_labels)[1] = ((int64_t)1 << 32) + 5;
    assert_int_equal(nb_dataset_fill_batch(&ds, idx, 4, NULL, NULL, y32), NB_ERR_ARG);
    assert_has("sample 1 has label 4294967301, which int32 labels cannot hold");
    assert_int_equal(nb_dataset_fill_batch(&ds, idx, 4, NULL, NULL, y64), NB_OK);
    assert_true(nb_tensor_data_i64(y64)[1] == ((int64_t)1 << 32) + 5);
    ds.n_classes = 4;
    assert_int_equal(nb_dataset_fill_batch(&ds, idx, 4, NULL, NULL, y64), NB_ERR_ARG);
    assert_has("sample 1 has label 4294967301, outside [0, 4)");
    nb_tensor_data_i64(ds.class_labels)[1] = -1;
    assert_int_equal(nb_dataset_fill_batch(&ds, idx, 4, NULL, oh, NULL), NB_ERR_ARG);
    assert_has("sample 1 has label -1, outside [0, 4)");
    // class_labels replaced by hand with a float tensor is refused as a state error.
    nb_tensor *keep = ds.class_labels;
    ds.class_labels = yf;
    assert_int_equal(nb_dataset_fill_batch(&ds, idx, 4, NULL, NULL, y64), NB_ERR_STATE);
    assert_has("not int32 or int64");
    ds.class_labels = keep;
    assert_int_equal(nb_tensor_data_i64(y64)[0], want[idx[0]]); // failures wrote nothing

    nb_dataset_free(&ds);
    nb_tensor_destroy(lab);
    nb_tensor_destroy(lab32);
    nb_tensor_destroy(x);
    nb_tensor_destroy(oh);
    nb_tensor_destroy(y64);
    nb_tensor_destroy(y32);
    nb_tensor_destroy(yf);
    nb_tensor_destroy(y64s);
    nb_tensor_destroy(w);
}

// An IDX pair: images (n, rows, cols) and labels (n).
static void write_idx_pair(const char *im, const char *lb, uint32_t n, uint32_t rows, uint32_t cols,
                           const uint8_t *labels) {
    FILE *f = fopen(im, "wb");
    assert_non_null(f);
    uint8_t head[16] = {0, 0, 8, 3};
    uint32_t dims[3] = {n, rows, cols};
    for (int d = 0; d < 3; d++)
        for (int b = 0; b < 4; b++)
            head[4 + 4 * d + b] = (uint8_t)(dims[d] >> (24 - 8 * b));
    assert_int_equal(fwrite(head, 1, 16, f), 16);
    for (uint32_t i = 0; i < n * rows * cols; i++)
        fputc((int)(i % 251), f);
    assert_int_equal(fclose(f), 0);
    f = fopen(lb, "wb");
    assert_non_null(f);
    uint8_t lhead[8] = {0, 0, 8, 1, 0, 0, 0, (uint8_t)n};
    assert_int_equal(fwrite(lhead, 1, 8, f), 8);
    assert_int_equal(fwrite(labels, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

static void test_idx_general_form(void **state) {
    (void)state;
    char im[128], lb[128];
    snprintf(im, sizeof im, "%s/img.idx", nbt_dir);
    snprintf(lb, sizeof lb, "%s/lab.idx", nbt_dir);
    const uint8_t labels[4] = {2, 12, 0, 7};
    write_idx_pair(im, lb, 4, 3, 2, labels);
    nb_dataset ds;
    // MNIST's 10 classes by default: label 12 is refused ...
    assert_int_equal(nb_idx_load(im, lb, &ds), NB_ERR_FORMAT);
    assert_has("1 bad label(s) for 10 classes; first: label 12 at index 1");
    // ... and accepted with 13.
    nb_idx_options o = {.n_classes = 13};
    assert_int_equal(nb_idx_load_ex(im, lb, &o, &ds), NB_OK);
    assert_int_equal(ds.n_classes, 13);
    assert_int_equal(ds.sample_ndim, 3);
    assert_int_equal(ds.sample_shape[0], 1);
    assert_int_equal(ds.sample_shape[1], 3);
    assert_int_equal(ds.sample_shape[2], 2);
    assert_int_equal(ds.rows, 3);
    assert_int_equal(nb_dataset_sample_numel(&ds), 6);
    const int64_t idx[2] = {1, 3};
    nb_tensor *x = nb_tensor_create(NB_F32, 4, (int64_t[]){2, 1, 3, 2});
    nb_tensor *oh = nb_tensor_create(NB_F64, 2, (int64_t[]){2, 13});
    assert_int_equal(nb_dataset_fill_batch(&ds, idx, 2, x, oh, NULL), NB_OK);
    assert_true(nb_tensor_data_f32(x)[0] == 6.0f / 255.0f);
    assert_true(nb_tensor_data_f64(oh)[12] == 1.0);
    assert_true(nb_tensor_data_f64(oh)[13 + 7] == 1.0);
    // Integer labels can then replace the uint8 ones (e.g. relabelled into 1000 classes).
    nb_tensor *lab = i32_labels(4, 333, 1000);
    assert_int_equal(nb_dataset_set_labels(&ds, lab, 1000), NB_OK);
    assert_non_null(ds.class_labels);
    nb_tensor *y = nb_tensor_create(NB_I32, 1, (int64_t[]){2});
    assert_int_equal(nb_dataset_fill_batch(&ds, idx, 2, NULL, NULL, y), NB_OK);
    assert_int_equal(nb_tensor_data_i32(y)[1], 999);
    nb_dataset_free(&ds);
    // The class count must fit uint8 labels.
    o.n_classes = 257;
    assert_int_equal(nb_idx_load_ex(im, lb, &o, &ds), NB_ERR_ARG);
    assert_has("n_classes 257");
    o.n_classes = -1;
    assert_int_equal(nb_idx_load_ex(im, lb, &o, &ds), NB_ERR_ARG);

    nb_tensor_destroy(x);
    nb_tensor_destroy(oh);
    nb_tensor_destroy(lab);
    nb_tensor_destroy(y);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_u8_images_many_classes), cmocka_unit_test(test_float_samples_targets),
        cmocka_unit_test(test_bad_datasets),           cmocka_unit_test(test_int64_labels),
        cmocka_unit_test(test_idx_general_form),
    };
    return cmocka_run_group_tests(tests, nbt_dir_make, nbt_dir_remove);
}
