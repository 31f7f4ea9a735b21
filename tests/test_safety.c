// Undefined behaviour and hangs found by the audit of issue 15, one regression test each:
// empty tensors whose other dims are huge (no work or arithmetic proportional to those dims),
// int32 stores of values that do not fit, NULL generators, iterator and dataset overflows.
// Built with -fsanitize=undefined in the ASan job, where the unfixed code aborts.
#define _POSIX_C_SOURCE 200809L // clock_gettime, mkdtemp, mkfifo

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "nabla/data.h"
#include "nabla/graph.h"
#include "nabla/ops.h"

#define BIG ((int64_t)1 << 40)
// Two of these and a 3 stay under the 2^60 limit on the product of a tensor's nonzero dims.
#define PAIR ((int64_t)1 << 29)

#define assert_msg_has(msg, sub)                                                                   \
    do {                                                                                           \
        if (!strstr((msg), (sub)))                                                                 \
            fail_msg("message \"%s\" lacks \"%s\"", (msg), (sub));                                 \
    } while (0)

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static nb_tensor *leaf(nb_dtype dt, int ndim, const int64_t *shape) {
    nb_tensor *t = nb_tensor_create(dt, ndim, shape);
    assert_non_null(t);
    assert_int_equal(nb_tensor_set_requires_grad(t, true), NB_OK);
    return t;
}

// Backward from sum(out) (a scalar 0): every grad must exist and the call must succeed.
static void backward_through(nb_graph *g, nb_tensor *out) {
    assert_non_null(out);
    nb_tensor *loss = nb_sum(g, out);
    assert_non_null(loss);
    assert_true(nb_tensor_get(loss, 0) == 0.0);
    assert_int_equal(nb_backward(g, loss), NB_OK);
}

// Finding 5: transposing (0, 2^40) looped 2^40 times over the empty dim's partner.
static void transpose_of_empty_is_instant(void **state) {
    (void)state;
    nb_graph *g = nb_graph_create();
    for (int flip = 0; flip < 2; flip++) {
        int64_t shape[2] = {flip ? BIG : 0, flip ? 0 : BIG};
        nb_tensor *x = leaf(NB_F32, 2, shape);
        double t0 = now();
        nb_tensor *y = nb_transpose(g, x);
        assert_non_null(y);
        assert_int_equal(nb_tensor_dim(y, 0), shape[1]);
        assert_int_equal(nb_tensor_dim(y, 1), shape[0]);
        backward_through(g, y);
        assert_true(nb_graph_replay(g) == NB_OK);
        assert_true(now() - t0 < 0.5);
        nb_graph_reset(g);
        nb_tensor_destroy(x);
    }
    nb_graph_destroy(g);
}

// Finding 6: reductions, slice and concat of valid 0-element tensors with huge dims computed
// outer * len * inner in int64 and overflowed (UBSan: signed-integer-overflow).
static void empty_with_huge_dims_reduce_slice_concat(void **state) {
    (void)state;
    nb_graph *g = nb_graph_create();
    const int64_t shapes[3][3] = {{PAIR, PAIR, 0}, {0, PAIR, PAIR}, {PAIR, 0, PAIR}};
    for (int k = 0; k < 6; k++) {
        const int64_t *shape = shapes[k % 3];
        int dt = k < 3 ? NB_F32 : NB_F64;
        nb_tensor *x = leaf((nb_dtype)dt, 3, shape);
        double t0 = now();
        for (int ax = 0; ax < 3; ax++) {
            nb_tensor *s = nb_sum_axis(g, x, ax, ax == 1);
            if (shape[ax] == 0) { // (PAIR, PAIR) output: 2^58 elements, over the tape budget
                assert_null(s);
                assert_int_equal(nb_graph_status(g), NB_ERR_STATE);
                assert_msg_has(nb_graph_error(g), "sum_axis");
                nb_graph_clear_error(g);
                continue;
            }
            backward_through(g, s);
            backward_through(g, nb_max_axis(g, x, ax, false));
            backward_through(g, nb_mean_axis(g, x, ax, true));
            backward_through(g, nb_slice(g, x, ax, 1, 3));
            nb_tensor *xs[2] = {x, x};
            backward_through(g, nb_concat(g, xs, 2, ax));
            nb_graph_reset(g);
        }
        backward_through(g, nb_sum(g, x)); // whole-tensor: 0
        nb_tensor *m = nb_mean(g, x);      // the mean of nothing is refused, not NaN
        assert_null(m);
        assert_msg_has(nb_graph_error(g), "empty");
        nb_graph_reset(g);
        // Batched matmul: the batch dims' product (2^80 here) overflowed int64 (found by
        // fuzz_api); now a clean error.
        nb_tensor *b = leaf((nb_dtype)dt, 2, (int64_t[]){shape[2], shape[2] ? 0 : 2});
        nb_tensor *mm = nb_matmul(g, x, b);
        if (mm)
            backward_through(g, mm);
        else
            assert_msg_has(nb_graph_error(g), "matmul");
        nb_graph_reset(g);
        nb_tensor_destroy(b);
        // Flattening two huge dims of an empty tensor (once 2^80, found by fuzz_api; such a
        // tensor is now refused at creation).
        nb_tensor *fl = nb_flatten(g, x, 0, 1);
        assert_non_null(fl);
        assert_int_equal(nb_tensor_dim(fl, 0), shape[0] * shape[1]);
        backward_through(g, fl);
        nb_graph_reset(g);
        // Reshape keeps the element count (0): a huge dim can move anywhere.
        backward_through(g, nb_reshape(g, x, 3, (int64_t[]){0, PAIR, PAIR}));
        assert_true(now() - t0 < 1.0);
        nb_graph_reset(g);
        nb_tensor_destroy(x);
    }
    nb_graph_destroy(g);
}

// Batched matmul whose broadcast batch dims multiply past int64: a (2^40, 1, 0, 3) by
// b (1, 2^40, 3, 0) gives batch dims (2^40, 2^40) (once found by fuzz_api as an empty
// (2^62, 4, 0, 3), regression input matmul-batch-dims-overflow). A clean error.
static void matmul_huge_empty_batch(void **state) {
    (void)state;
    nb_graph *g = nb_graph_create();
    nb_tensor *a = leaf(NB_F32, 4, (int64_t[]){BIG, 1, 0, 3});
    nb_tensor *b = leaf(NB_F32, 4, (int64_t[]){1, BIG, 3, 0});
    assert_null(nb_matmul(g, a, b));
    assert_int_equal(nb_graph_status(g), NB_ERR_SHAPE);
    assert_msg_has(nb_graph_error(g), "matmul: batch dimensions too large");
    nb_graph_destroy(g);
    nb_tensor_destroy(a);
    nb_tensor_destroy(b);
}

// The limit of 2^60 elements applies to the product of the nonzero dims, for empty tensors too
// (as in PyTorch), so no op's count of rows or strides can overflow int64. Found by fuzz_api:
// linear of an empty x (2^40, 2^40, 0, 3) multiplied its leading dims past int64.
static void empty_tensor_dims_limit(void **state) {
    (void)state;
    const int64_t refused[][4] = {{BIG, BIG, 0, 3}, {0, BIG, BIG, 1}, {(int64_t)1 << 62, 4, 0, 3}};
    for (int k = 0; k < 3; k++) {
        assert_null(nb_tensor_create(NB_F32, 4, refused[k]));
        assert_msg_has(nb_last_error(), "nonzero dims multiply past 2^60");
    }
    // Just under the limit, empty: linear's rows (2^58 * 0) and its output are fine.
    nb_graph *g = nb_graph_create();
    nb_tensor *x = leaf(NB_F64, 4, (int64_t[]){PAIR, PAIR, 0, 3});
    nb_tensor *w = leaf(NB_F64, 2, (int64_t[]){2, 3});
    nb_tensor *y = nb_linear(g, x, w, NULL);
    assert_non_null(y);
    assert_int_equal(nb_tensor_dim(y, 3), 2);
    backward_through(g, y);
    nb_graph_destroy(g);
    nb_tensor_destroy(x);
    nb_tensor_destroy(w);
}

// A stale x (an op output kept across nb_graph_reset) given to flatten, squeeze or unsqueeze is
// refused as stale (NB_ERR_STATE) before its dims are read (found by fuzz_api: flatten's own
// arithmetic on a stale x's dims ran first and reported NB_ERR_SHAPE).
static void stale_input_to_shape_conveniences(void **state) {
    (void)state;
    nb_graph *g = nb_graph_create();
    nb_tensor *x = leaf(NB_F32, 3, (int64_t[]){2, 3, 4});
    for (int k = 0; k < 3; k++) {
        nb_tensor *y = nb_relu(g, x);
        assert_non_null(y);
        nb_graph_reset(g);
        nb_tensor *z = k == 0   ? nb_flatten(g, y, 0, 2)
                       : k == 1 ? nb_squeeze(g, y, 0)
                                : nb_unsqueeze(g, y, 9); // a bad axis too: staleness first
        assert_null(z);
        assert_int_equal(nb_graph_status(g), NB_ERR_STATE);
        assert_msg_has(nb_graph_error(g), k == 0   ? "flatten: input 0"
                                          : k == 1 ? "squeeze"
                                                   : "unsqueeze");
        nb_graph_reset(g);
    }
    nb_graph_destroy(g);
    nb_tensor_destroy(x);
}

// Reducing several axes of (3, 0, 2^29, 2^29) (found as (3, 0, 2^40, 2^40)): the strides and counts
// overflowed int64 (found by fuzz_api, regression input reduce-axes-empty-huge-dims); the sum is
// (3) zeros.
static void sum_axes_of_empty_with_huge_dims(void **state) {
    (void)state;
    nb_graph *g = nb_graph_create();
    nb_tensor *x = leaf(NB_F64, 4, (int64_t[]){3, 0, PAIR, PAIR});
    nb_tensor *s = nb_sum_axes(g, x, 3, (const int[]){1, 2, 3}, false);
    assert_non_null(s);
    assert_int_equal(nb_tensor_numel(s), 3);
    for (int i = 0; i < 3; i++)
        assert_true(nb_tensor_get(s, i) == 0.0);
    backward_through(g, s);
    assert_null(nb_var_axes(g, x, 3, (const int[]){1, 2, 3}, true, false)); // of no elements
    assert_int_equal(nb_graph_status(g), NB_ERR_SHAPE);
    nb_graph_destroy(g);
    nb_tensor_destroy(x);
}

// Reducing an empty axis of a non-empty result still writes its zeros (sum) and its grads.
static void sum_over_empty_axis_is_zero(void **state) {
    (void)state;
    nb_graph *g = nb_graph_create();
    nb_tensor *x = leaf(NB_F64, 2, (int64_t[]){3, 0});
    nb_tensor *s = nb_sum_axis(g, x, 1, false);
    assert_non_null(s);
    assert_int_equal(nb_tensor_numel(s), 3);
    for (int i = 0; i < 3; i++)
        assert_true(nb_tensor_get(s, i) == 0.0);
    backward_through(g, s);
    nb_graph_destroy(g);
    nb_tensor_destroy(x);
}

// Finding 6: NaN, ±1e300 and values just outside int32 were converted with a plain cast (UB).
// They are now refused with a message and the destination is left as it was.
static void int32_stores_are_checked(void **state) {
    (void)state;
    nb_tensor *t = nb_tensor_create(NB_I32, 1, (int64_t[]){3});
    const double bad[] = {NAN, 1e300, -1e300, INFINITY, 2147483648.0, -2147483649.0};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        nb_tensor_fill(t, 7);
        nb_tensor_set(t, 1, bad[k]);
        assert_true(nb_tensor_get(t, 1) == 7);
        assert_msg_has(nb_last_error(), "int32");
        nb_tensor_fill(t, bad[k]);
        assert_true(nb_tensor_get(t, 0) == 7);
        double src[3] = {1, bad[k], 2};
        assert_int_equal(nb_tensor_copy_in(t, src, NB_F64, 3), NB_ERR_ARG);
        assert_true(nb_tensor_get(t, 0) == 7 && nb_tensor_get(t, 2) == 7);
        assert_msg_has(nb_last_error(), "element 1");
        nb_tensor *f = nb_tensor_from_data(NB_F64, 1, (int64_t[]){3}, src);
        assert_int_equal(nb_tensor_copy(t, f), NB_ERR_ARG);
        assert_true(nb_tensor_get(t, 0) == 7);
        int32_t out[3];
        assert_int_equal(nb_tensor_copy_out(f, out, NB_I32, 3), NB_ERR_ARG);
        nb_tensor_destroy(f);
    }
    // The extremes that fit, and truncation toward zero like a C cast of an in-range value.
    nb_tensor_set(t, 0, 2147483647.9);
    nb_tensor_set(t, 1, -2147483648.9);
    nb_tensor_set(t, 2, -2.7);
    assert_true(nb_tensor_get(t, 0) == 2147483647.0);
    assert_true(nb_tensor_get(t, 1) == -2147483648.0);
    assert_true(nb_tensor_get(t, 2) == -2.0);
    nb_tensor_destroy(t);
}

// Finding 6: nb_rng_* dereferenced a NULL generator.
static void rng_null_is_an_error(void **state) {
    (void)state;
    assert_true(nb_rng_u64(NULL) == 0);
    assert_msg_has(nb_last_error(), "nb_rng_u64");
    assert_true(isnan(nb_rng_uniform(NULL)));
    assert_msg_has(nb_last_error(), "nb_rng_uniform");
    assert_true(isnan(nb_rng_normal(NULL)));
    assert_msg_has(nb_last_error(), "nb_rng_normal");
    assert_true(nb_rng_below(NULL, 10) == 0);
    assert_msg_has(nb_last_error(), "nb_rng_below");
    nb_rng r;
    nb_rng_seed(&r, 1);
    assert_true(nb_rng_below(&r, 0) == 0);
    assert_msg_has(nb_last_error(), "n = 0");
    assert_int_equal(nb_init_uniform(NULL, &r, 0, 1), NB_ERR_NULL);
}

// Finding 6: ceil(n / batch) was computed as (n + batch - 1) / batch and overflowed.
static void num_batches_does_not_overflow(void **state) {
    (void)state;
    nb_batch_iter *it = nb_batch_iter_create(NULL, 2, INT64_MAX, false, 1);
    assert_non_null(it);
    assert_int_equal(nb_batch_iter_num_batches(it), 1);
    nb_batch_iter_destroy(it);
    it = nb_batch_iter_create(NULL, 7, 3, false, 1);
    assert_int_equal(nb_batch_iter_num_batches(it), 3);
    nb_batch_iter_destroy(it);
    it = nb_batch_iter_create(NULL, 6, 3, false, 1);
    assert_int_equal(nb_batch_iter_num_batches(it), 2);
    nb_batch_iter_destroy(it);
}

// Finding 6: a hand-built dataset's rows * cols overflowed while validating a batch.
static void hand_built_dataset_sizes_are_checked(void **state) {
    (void)state;
    uint8_t px[4] = {0}, lb[1] = {0};
    nb_dataset ds = {
        .n = 1, .rows = INT64_MAX / 2, .cols = 3, .n_classes = 10, .images = px, .labels = lb};
    nb_tensor *x = nb_tensor_create(NB_F32, 2, (int64_t[]){1, 4});
    int64_t idx = 0;
    assert_int_equal(nb_dataset_fill_batch(&ds, &idx, 1, x, NULL, NULL), NB_ERR_STATE);
    assert_msg_has(nb_last_error(), "rows");
    ds.rows = 2;
    ds.cols = 2;
    ds.n_classes = INT64_MAX;
    nb_tensor *oh = nb_tensor_create(NB_F32, 2, (int64_t[]){1, 3});
    assert_int_equal(nb_dataset_fill_batch(&ds, &idx, 1, NULL, oh, NULL), NB_ERR_SHAPE);
    ds.n_classes = 10;
    assert_int_equal(nb_dataset_fill_batch(&ds, &idx, 1, x, NULL, NULL), NB_OK);
    nb_tensor_destroy(oh);
    nb_tensor_destroy(x);
}

// ---- graph lifetimes and budgets (finding 7)
// -----------------------------------------------------

// An op output kept across any number of resets is refused (NB_ERR_STATE), in every build type:
// one reset back, many resets back while its header still holds its old stamp, and after
// 20000 steps, when its header's memory has been given back.
static void stale_tensor_any_resets_back(void **state) {
    (void)state;
    nb_tensor *x = leaf(NB_F64, 2, (int64_t[]){2, 3});
    nb_tensor_fill(x, 0.5);
    nb_graph *g = nb_graph_create();
    nb_tensor *kept[4] = {NULL};
    const int at[4] = {0, 1, 37, 20000}; // steps after which each is checked
    nb_tensor *first = nb_tanh(g, x);
    for (int step = 1; step <= 20001; step++) {
        nb_graph_reset(g);
        nb_tensor *y = nb_sigmoid(g, nb_tanh(g, x)); // the same layout every step
        assert_non_null(y);
        for (int k = 0; k < 4; k++) {
            if (step == at[k] + 1) {
                nb_tensor *z = nb_exp(g, first);
                assert_null(z);
                assert_int_equal(nb_graph_status(g), NB_ERR_STATE);
                assert_msg_has(nb_graph_error(g), "exp: input 0");
                assert_msg_has(nb_graph_error(g), "used after nb_graph_reset");
                assert_int_equal(nb_backward(g, first), NB_ERR_STATE);
                nb_graph_clear_error(g);
                assert_int_equal(nb_backward_with(g, y, first), NB_ERR_STATE); // as grad_out
                nb_tensor_destroy(first);                                      // refused, not freed
                nb_graph_clear_error(g);
                kept[k] = y;
            }
        }
        if (step == 20001)
            for (int k = 0; k < 3; k++) { // outputs of later steps, also stale now
                assert_null(nb_add(g, y, kept[k]));
                assert_int_equal(nb_graph_status(g), NB_ERR_STATE);
                assert_msg_has(nb_graph_error(g), "input 1");
                nb_graph_clear_error(g);
            }
    }
    nb_graph_destroy(g);
    nb_tensor_destroy(x);
}

// Forgetting nb_graph_reset in a loop: the tape stops at its budget with a message naming
// the likely cause, instead of growing without bound (15,000 ops and 1.25 GB in the audit).
static void tape_budget_names_the_missing_reset(void **state) {
    (void)state;
    nb_tensor *x = leaf(NB_F32, 1, (int64_t[]){4});
    nb_graph *g = nb_graph_create();
    int64_t n = 0;
    while (nb_tanh(g, x)) // the default budget: NB_GRAPH_DEFAULT_MAX_OPS ops
        n++;
    assert_int_equal(n, NB_GRAPH_DEFAULT_MAX_OPS);
    assert_int_equal(nb_graph_status(g), NB_ERR_STATE);
    assert_msg_has(nb_graph_error(g), "forgot nb_graph_reset in a loop?");
    assert_msg_has(nb_graph_error(g), "tanh: the tape already holds 100000 ops");
    nb_graph_reset(g); // and the graph works again
    assert_non_null(nb_tanh(g, x));
    nb_graph_set_limits(g, 10, 0);
    for (n = 0; nb_tanh(g, x); n++)
        ;
    assert_int_equal(n, 9);
    // A memory budget: 1 MiB holds one (256, 256) float32 output with its grad (512 KiB), not two.
    nb_graph_reset(g);
    nb_graph_set_limits(g, 0, (size_t)1 << 20);
    nb_tensor *big = leaf(NB_F32, 2, (int64_t[]){256, 256});
    for (n = 0; nb_relu(g, big); n++)
        ;
    assert_int_equal(n, 1);
    assert_msg_has(nb_graph_error(g), "relu: the tape holds 1 ops");
    assert_msg_has(nb_graph_error(g), "exceed its 1 MiB budget: forgot nb_graph_reset");
    nb_graph_set_limits(g, INT64_MAX, SIZE_MAX); // no limit
    nb_graph_reset(g);
    for (n = 0; n < 5; n++)
        assert_non_null(nb_relu(g, big));
    nb_graph_destroy(g);
    nb_tensor_destroy(big);
    nb_tensor_destroy(x);
}

// ---- IDX loading limits (findings 4 and 5) ------------------------------------------------------

static void put_be32(FILE *f, uint32_t v) {
    unsigned char b[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 8), (unsigned char)v};
    assert_int_equal(fwrite(b, 1, 4, f), 4);
}

// Raw IDX files in dir: `n` 2x3 images (pixel = sample index) and labels i % 10, with a
// header claiming `claim` samples.
static void write_idx(const char *dir, uint32_t claim, uint32_t n, char *im, char *lb) {
    sprintf(im, "%s/im", dir);
    sprintf(lb, "%s/lb", dir);
    FILE *f = fopen(im, "wb");
    assert_non_null(f);
    put_be32(f, 0x803);
    put_be32(f, claim);
    put_be32(f, 2);
    put_be32(f, 3);
    for (uint32_t i = 0; i < n * 6; i++)
        fputc((int)(i / 6), f);
    fclose(f);
    f = fopen(lb, "wb");
    assert_non_null(f);
    put_be32(f, 0x801);
    put_be32(f, claim);
    for (uint32_t i = 0; i < n; i++)
        fputc((int)(i % 10), f);
    fclose(f);
}

static void idx_limits(void **state) {
    (void)state;
    char dir[] = "/tmp/nb_safety_XXXXXX", im[64], lb[64], fifo[64];
    assert_non_null(mkdtemp(dir));
    write_idx(dir, 100, 100, im, lb);
    nb_dataset ds;
    // --limit: only the first 7 samples are read and kept.
    nb_idx_options o = {.limit = 7};
    assert_int_equal(nb_idx_load_ex(im, lb, &o, &ds), NB_OK);
    assert_int_equal(ds.n, 7);
    assert_int_equal(ds.images[6 * 6], 6);
    assert_int_equal(ds.labels[6], 6);
    nb_dataset_free(&ds);
    o.limit = 1000; // more than the file has: all of it, checked to its end
    assert_int_equal(nb_idx_load_ex(im, lb, &o, &ds), NB_OK);
    assert_int_equal(ds.n, 100);
    nb_dataset_free(&ds);
    o.limit = -1;
    assert_int_equal(nb_idx_load_ex(im, lb, &o, &ds), NB_ERR_ARG);
    // The cap on kept bytes: 100 x 6 = 600 bytes; 7 x 6 = 42 fit in 64.
    o = (nb_idx_options){.max_bytes = 599};
    assert_int_equal(nb_idx_load_ex(im, lb, &o, &ds), NB_ERR_FORMAT);
    assert_msg_has(nb_last_error(), "over the 0 MiB limit");
    assert_null(ds.images);
    o.limit = 7;
    o.max_bytes = 64;
    assert_int_equal(nb_idx_load_ex(im, lb, &o, &ds), NB_OK);
    nb_dataset_free(&ds);
    // The default cap (1 GiB) against a header claiming 2^31 images of 2x3 (12 GiB).
    write_idx(dir, 1u << 31, 4, im, lb);
    assert_int_equal(nb_idx_load(im, lb, &ds), NB_ERR_FORMAT);
    assert_msg_has(nb_last_error(), "over the 1024 MiB limit");
    // Cancelled (a SIGINT handler's flag): stops with NB_ERR_STATE, nothing kept.
    write_idx(dir, 100, 100, im, lb);
    volatile sig_atomic_t stop = 1;
    o = (nb_idx_options){.cancel = &stop};
    assert_int_equal(nb_idx_load_ex(im, lb, &o, &ds), NB_ERR_STATE);
    assert_msg_has(nb_last_error(), "interrupted");
    assert_null(ds.images);
    assert_int_equal(ds.n, 0);
    stop = 0;
    assert_int_equal(nb_idx_load_ex(im, lb, &o, &ds), NB_OK);
    nb_dataset_free(&ds);
    // A FIFO is refused at once (open used to block for a writer); so is a directory.
    sprintf(fifo, "%s/fifo", dir);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    double t0 = now();
    assert_int_equal(nb_idx_load(fifo, lb, &ds), NB_ERR_IO);
    assert_msg_has(nb_last_error(), "FIFO");
    assert_int_equal(nb_idx_load(im, dir, &ds), NB_ERR_IO);
    assert_msg_has(nb_last_error(), "directory");
    assert_true(now() - t0 < 1.0);
    unlink(fifo);
    unlink(im);
    unlink(lb);
    rmdir(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(transpose_of_empty_is_instant),
        cmocka_unit_test(empty_with_huge_dims_reduce_slice_concat),
        cmocka_unit_test(sum_over_empty_axis_is_zero),
        cmocka_unit_test(matmul_huge_empty_batch),
        cmocka_unit_test(empty_tensor_dims_limit),
        cmocka_unit_test(stale_input_to_shape_conveniences),
        cmocka_unit_test(sum_axes_of_empty_with_huge_dims),
        cmocka_unit_test(int32_stores_are_checked),
        cmocka_unit_test(rng_null_is_an_error),
        cmocka_unit_test(num_batches_does_not_overflow),
        cmocka_unit_test(hand_built_dataset_sizes_are_checked),
        cmocka_unit_test(idx_limits),
        cmocka_unit_test(stale_tensor_any_resets_back),
        cmocka_unit_test(tape_budget_names_the_missing_reset),
    };
    if (getenv("NB_TEST_FILTER")) // run one case: NB_TEST_FILTER=name
        cmocka_set_test_filter(getenv("NB_TEST_FILTER"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
