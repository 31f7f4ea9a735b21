// End to end on real files: write a small synthetic IDX dataset (three classes of 8x8 images:
// a bright top band, left band or diagonal, plus noise), load it with nb_idx_load, split it,
// train a small MLP with the batch iterator and SGD, and require a validation accuracy
// threshold within a fixed number of epochs; two runs must agree bitwise.
#define _POSIX_C_SOURCE 200809L // mkdtemp

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nabla.h"

enum { N = 600, SIDE = 8, PIX = SIDE * SIDE, CLASSES = 3, N_VAL = 150, BATCH = 32, EPOCHS = 8 };

static void put_be32(FILE *f, uint32_t v) {
    unsigned char b[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 8), (unsigned char)v};
    fwrite(b, 1, 4, f);
}

static void write_dataset(const char *img_path, const char *lab_path) {
    FILE *fi = fopen(img_path, "wb"), *fl = fopen(lab_path, "wb");
    assert_non_null(fi);
    assert_non_null(fl);
    put_be32(fi, 0x803);
    put_be32(fi, N);
    put_be32(fi, SIDE);
    put_be32(fi, SIDE);
    put_be32(fl, 0x801);
    put_be32(fl, N);
    nb_rng rng;
    nb_rng_seed(&rng, 5);
    for (int i = 0; i < N; i++) {
        unsigned char label = (unsigned char)(i % CLASSES);
        unsigned char img[PIX];
        for (int r = 0; r < SIDE; r++)
            for (int c = 0; c < SIDE; c++) {
                bool on = label == 0 ? r < 3 : label == 1 ? c < 3 : (r == c || r == c + 1);
                double v = (on ? 170 : 30) + 60 * (nb_rng_uniform(&rng) - 0.5);
                img[r * SIDE + c] = (unsigned char)v;
            }
        fwrite(img, 1, PIX, fi);
        fwrite(&label, 1, 1, fl);
    }
    assert_int_equal(fclose(fi), 0);
    assert_int_equal(fclose(fl), 0);
}

static int argmax(const nb_tensor *logits, int64_t row) {
    int best = 0;
    for (int c = 1; c < CLASSES; c++)
        if (nb_tensor_get(logits, row * CLASSES + c) > nb_tensor_get(logits, row * CLASSES + best))
            best = c;
    return best;
}

// Trains from scratch; returns the validation accuracy and the last batch loss.
static double train(const nb_dataset *ds, double *last_loss) {
    int64_t train_idx[N - N_VAL], val_idx[N_VAL];
    nb_rng rng;
    nb_rng_seed(&rng, 11);
    assert_int_equal(nb_split_indices(N, N_VAL, &rng, train_idx, val_idx), NB_OK);
    nb_tensor *w1 = nb_tensor_create(NB_F32, 2, (int64_t[]){16, PIX});
    nb_tensor *b1 = nb_tensor_create(NB_F32, 1, (int64_t[]){16});
    nb_tensor *w2 = nb_tensor_create(NB_F32, 2, (int64_t[]){CLASSES, 16});
    nb_tensor *b2 = nb_tensor_create(NB_F32, 1, (int64_t[]){CLASSES});
    nb_tensor *params[] = {w1, b1, w2, b2};
    nb_init_he_normal(w1, &rng);
    nb_init_xavier_uniform(w2, &rng);
    for (int i = 0; i < 4; i++)
        nb_tensor_set_requires_grad(params[i], true);
    nb_sgd *opt = nb_sgd_create(params, 4, (nb_sgd_config){.lr = 0.1, .momentum = 0.9});
    nb_batch_iter *it = nb_batch_iter_create(train_idx, N - N_VAL, BATCH, true, 3);
    nb_tensor *x = nb_tensor_create(NB_F32, 2, (int64_t[]){BATCH, PIX});
    nb_tensor *y = nb_tensor_create(NB_I32, 1, (int64_t[]){BATCH});
    nb_graph *g = nb_graph_create();
    assert_non_null(opt);
    assert_non_null(it);
    for (int epoch = 0; epoch < EPOCHS; epoch++) {
        const int64_t *idx;
        int64_t count;
        while ((count = nb_batch_iter_next(it, &idx)) > 0) {
            // The short last batch uses views over the front of the full-size buffers.
            nb_tensor *xv = nb_tensor_wrap(NB_F32, 2, (int64_t[]){count, PIX}, nb_tensor_data(x));
            nb_tensor *yv = nb_tensor_wrap(NB_I32, 1, (int64_t[]){count}, nb_tensor_data(y));
            assert_int_equal(nb_dataset_fill_batch(ds, idx, count, xv, NULL, yv), NB_OK);
            nb_graph_reset(g);
            nb_sgd_zero_grad(opt);
            nb_tensor *h = nb_relu(g, nb_linear(g, xv, w1, b1));
            nb_tensor *loss =
                nb_sparse_cross_entropy_logits(g, nb_linear(g, h, w2, b2), yv, NB_REDUCE_MEAN);
            assert_non_null(loss);
            assert_int_equal(nb_backward(g, loss), NB_OK);
            assert_int_equal(nb_sgd_step(opt), NB_OK);
            *last_loss = nb_tensor_get(loss, 0);
            nb_tensor_destroy(xv);
            nb_tensor_destroy(yv);
        }
    }
    // Validation, without recording gradients.
    nb_tensor *xv = nb_tensor_create(NB_F32, 2, (int64_t[]){N_VAL, PIX});
    nb_tensor *yv = nb_tensor_create(NB_I32, 1, (int64_t[]){N_VAL});
    assert_int_equal(nb_dataset_fill_batch(ds, val_idx, N_VAL, xv, NULL, yv), NB_OK);
    nb_graph_reset(g);
    nb_graph_set_grad_enabled(g, false);
    nb_tensor *logits = nb_linear(g, nb_relu(g, nb_linear(g, xv, w1, b1)), w2, b2);
    assert_non_null(logits);
    int correct = 0;
    for (int i = 0; i < N_VAL; i++)
        correct += argmax(logits, i) == (int)nb_tensor_get(yv, i);
    nb_graph_destroy(g);
    nb_batch_iter_destroy(it);
    nb_sgd_destroy(opt);
    for (int i = 0; i < 4; i++)
        nb_tensor_destroy(params[i]);
    nb_tensor_destroy(x);
    nb_tensor_destroy(y);
    nb_tensor_destroy(xv);
    nb_tensor_destroy(yv);
    return (double)correct / N_VAL;
}

static void small_mlp_learns_from_idx_files(void **state) {
    (void)state;
    char dir[] = "/tmp/nabla-e2e-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char img[64], lab[64];
    snprintf(img, sizeof img, "%s/images", dir);
    snprintf(lab, sizeof lab, "%s/labels", dir);
    write_dataset(img, lab);
    nb_dataset ds;
    assert_int_equal(nb_idx_load(img, lab, &ds), NB_OK);
    assert_int_equal(ds.n, N);
    double loss_a = 0, loss_b = 0;
    double acc = train(&ds, &loss_a);
    fprintf(stderr, "  validation accuracy %.1f%%, last loss %.4f\n", 100 * acc, loss_a);
    assert_true(acc >= 0.95);
    assert_true(train(&ds, &loss_b) == acc);
    assert_memory_equal(&loss_a, &loss_b, sizeof loss_a); // deterministic to the bit
    nb_dataset_free(&ds);
    remove(img);
    remove(lab);
    rmdir(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(small_mlp_learns_from_idx_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
