// Tests for src/data: IDX loading (raw, gzip and every malformed variant, written at runtime
// into a mkdtemp directory), batch filling, one-hot, shuffling, splitting and the iterator,
// plus the real Fashion-MNIST when the Debian package is installed.
#define _POSIX_C_SOURCE 200809L // mkdtemp, rmdir

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "nabla/data.h"

#define N 5 // samples in the small fixture
#define R 3
#define C 4
#define F (R * C)
#define FASHION_DIR "/usr/share/datasets/fashion-mnist"

static char tmpdir[256];
static char created[64][320]; // every file written, removed by the group teardown
static int n_created;
static uint8_t pix[N * F + 16]; // fixture pixels, with room for trailing bytes
static uint8_t lab[N + 16] = {3, 0, 9, 1, 7};
static const char *im; // the valid fixture files: raw and gzip images and labels
static const char *lb;
static const char *imz;
static const char *lbz;

#define assert_msg_has(sub)                                                                        \
    do {                                                                                           \
        if (!strstr(nb_last_error(), (sub)))                                                       \
            fail_msg("nb_last_error() = \"%s\" lacks \"%s\"", nb_last_error(), (sub));             \
    } while (0)

// Path of `name` inside the temp dir, registered for cleanup; the string lives until exit.
static const char *tpath(const char *name) {
    char p[sizeof created[0]];
    snprintf(p, sizeof p, "%s/%s", tmpdir, name);
    for (int i = 0; i < n_created; i++)
        if (strcmp(created[i], p) == 0)
            return created[i];
    assert_true(n_created < 64);
    snprintf(created[n_created], sizeof created[0], "%s", p);
    return created[n_created++];
}

static void write_bytes(const char *path, const void *bytes, size_t len, int gz) {
    if (gz) {
        gzFile f = gzopen(path, "wb");
        assert_non_null(f);
        if (len)
            assert_int_equal(gzwrite(f, bytes, (unsigned)len), (int)len);
        assert_int_equal(gzclose(f), Z_OK);
    } else {
        FILE *f = fopen(path, "wb");
        assert_non_null(f);
        assert_int_equal(fwrite(bytes, 1, len, f), len);
        assert_int_equal(fclose(f), 0);
    }
}

// An IDX file: big-endian magic and dims, then payload_len bytes of payload.
static void write_idx(const char *path, int gz, uint32_t magic, const uint32_t *dims, int ndims,
                      const uint8_t *payload, size_t payload_len) {
    static uint8_t buf[4096];
    size_t len = 0;
    for (int i = -1; i < ndims; i++) {
        uint32_t v = i < 0 ? magic : dims[i];
        for (int b = 3; b >= 0; b--)
            buf[len++] = (uint8_t)(v >> (8 * b));
    }
    assert_true(len + payload_len <= sizeof buf);
    if (payload_len)
        memcpy(buf + len, payload, payload_len);
    write_bytes(path, buf, len + payload_len, gz);
}

static void write_images(const char *path, int gz, uint32_t n_header, size_t payload_len) {
    write_idx(path, gz, 0x803, (uint32_t[]){n_header, R, C}, 3, pix, payload_len);
}
static void write_labels(const char *path, int gz, uint32_t n_header, size_t payload_len) {
    write_idx(path, gz, 0x801, (uint32_t[]){n_header}, 1, lab, payload_len);
}

static int group_setup(void **state) {
    (void)state;
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/nabla_test_data_XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(tmpdir))
        return -1;
    for (int i = 0; i < N * F; i++)
        pix[i] = (uint8_t)((i * 53 + 7) % 256);
    pix[0] = 0;
    pix[F - 1] = 255;
    // The valid files most tests pair with a broken one.
    im = tpath("ok-images");
    lb = tpath("ok-labels");
    imz = tpath("ok-images.gz");
    lbz = tpath("ok-labels.gz");
    write_images(im, 0, N, N * F);
    write_labels(lb, 0, N, N);
    write_images(imz, 1, N, N * F);
    write_labels(lbz, 1, N, N);
    write_images(tpath("train-images-idx3-ubyte.gz"), 1, N, N * F);
    write_labels(tpath("train-labels-idx1-ubyte.gz"), 1, N, N);
    write_images(tpath("t10k-images-idx3-ubyte"), 0, N, N * F);
    write_labels(tpath("t10k-labels-idx1-ubyte"), 0, N, N);
    return 0;
}

static int group_teardown(void **state) {
    (void)state;
    for (int i = 0; i < n_created; i++)
        remove(created[i]);
    return rmdir(tmpdir);
}

static void expect_fixture(const nb_dataset *ds) {
    assert_int_equal(ds->n, N);
    assert_int_equal(ds->rows, R);
    assert_int_equal(ds->cols, C);
    assert_int_equal(ds->n_classes, 10);
    assert_memory_equal(ds->images, pix, N * F);
    assert_memory_equal(ds->labels, lab, N);
}

// Loads (images, labels), expecting failure with `code` and a message naming `path` and `key`.
static void expect_load_error(const char *images, const char *labels, nb_status code,
                              const char *path, const char *key) {
    nb_dataset ds = {.n = 99};
    assert_int_equal(nb_idx_load(images, labels, &ds), code);
    assert_null(ds.images);
    assert_null(ds.labels);
    assert_int_equal(ds.n, 0);
    assert_msg_has(path);
    assert_msg_has(key);
}

// ---- loading ----------------------------------------------------------------------------------

static void load_valid_raw_and_gz(void **state) {
    (void)state;
    const char *pairs[][2] = {{im, lb}, {imz, lbz}, {imz, lb}, {im, lbz}};
    for (int i = 0; i < 4; i++) {
        nb_dataset ds;
        assert_int_equal(nb_idx_load(pairs[i][0], pairs[i][1], &ds), NB_OK);
        expect_fixture(&ds);
        nb_dataset_free(&ds);
        assert_null(ds.images);
        nb_dataset_free(&ds); // a freed (zeroed) dataset frees again harmlessly
    }
    nb_dataset_free(NULL);
}

static void load_truncated(void **state) {
    (void)state;
    const char *tim = tpath("trunc-images");
    write_images(tim, 0, N, 3 * F + 7);
    expect_load_error(tim, lb, NB_ERR_FORMAT, tim, "truncated: expected 5 images, got 3");
    const char *tlb = tpath("trunc-labels.gz");
    write_labels(tlb, 1, N, 3);
    expect_load_error(im, tlb, NB_ERR_FORMAT, tlb, "truncated: expected 5 labels, got 3");
    const char *thead = tpath("trunc-header");
    write_bytes(thead, (uint8_t[]){0, 0, 8, 3, 0, 0, 0, 5, 0, 0}, 10, 0);
    expect_load_error(thead, lb, NB_ERR_FORMAT, thead, "truncated header");
    const char *empty = tpath("empty");
    write_bytes(empty, "", 0, 0);
    expect_load_error(empty, lb, NB_ERR_FORMAT, empty, "empty file");
}

// A gzip stream cut short (inside the deflate data or inside the CRC trailer) or corrupted.
static void load_broken_gzip(void **state) {
    (void)state;
    static uint8_t gz[4096];
    FILE *f = fopen(imz, "rb");
    assert_non_null(f);
    size_t len = fread(gz, 1, sizeof gz, f);
    fclose(f);
    assert_true(len > 30);
    const char *bad = tpath("broken-images.gz");
    size_t cuts[] = {len - 4, len - 12, len / 2};
    for (int i = 0; i < 3; i++) {
        write_bytes(bad, gz, cuts[i], 0);
        expect_load_error(bad, lb, NB_ERR_FORMAT, bad, "idx: ");
    }
    gz[len - 6] ^= 0x5a; // inside the CRC-32: the data inflates but fails its check
    write_bytes(bad, gz, len, 0);
    expect_load_error(bad, lb, NB_ERR_FORMAT, bad, "gzip");
}

static void load_trailing_data(void **state) {
    (void)state;
    const char *xlb = tpath("long-labels");
    write_labels(xlb, 0, N, N + 1);
    expect_load_error(im, xlb, NB_ERR_FORMAT, xlb, "trailing data after the 5 labels");
    const char *xim = tpath("long-images.gz");
    write_images(xim, 1, N, N * F + 1);
    expect_load_error(xim, lb, NB_ERR_FORMAT, xim, "trailing data after the 5 images");
}

static void load_bad_magic_and_dims(void **state) {
    (void)state;
    const char *bad = tpath("bad-magic");
    write_idx(bad, 0, 0x12345678, (uint32_t[]){N, R, C}, 3, pix, N * F);
    expect_load_error(bad, lb, NB_ERR_FORMAT, bad, "bad magic 0x12345678");
    expect_load_error(im, bad, NB_ERR_FORMAT, bad, "not an IDX file");
    // Swapped arguments: each file has the other's dimension count.
    expect_load_error(lb, im, NB_ERR_FORMAT, lb, "1 dimension(s), expected 3");
    expect_load_error(im, im, NB_ERR_FORMAT, im, "3 dimension(s), expected 1");
    const char *two = tpath("two-dims");
    write_idx(two, 0, 0x802, (uint32_t[]){N, F}, 2, pix, N * F);
    expect_load_error(two, lb, NB_ERR_FORMAT, two, "2 dimension(s), expected 3");
    const char *flt = tpath("float-images");
    write_idx(flt, 0, 0xD03, (uint32_t[]){N, R, C}, 3, pix, N * F);
    expect_load_error(flt, lb, NB_ERR_FORMAT, flt, "element type 0x0d");
}

static void load_bad_sizes(void **state) {
    (void)state;
    const char *short_lb = tpath("four-labels");
    write_labels(short_lb, 0, N - 1, N - 1);
    expect_load_error(im, short_lb, NB_ERR_FORMAT, short_lb, "count mismatch");
    assert_msg_has(im);
    assert_msg_has("5 images but");
    assert_msg_has("4 labels");
    const char *zim = tpath("zero-images");
    const char *zlb = tpath("zero-labels");
    write_images(zim, 0, 0, 0);
    write_labels(zlb, 0, 0, 0);
    expect_load_error(zim, zlb, NB_ERR_FORMAT, zim, "no images");
    expect_load_error(im, zlb, NB_ERR_FORMAT, zlb, "no labels");
    const char *side = tpath("zero-side");
    write_idx(side, 0, 0x803, (uint32_t[]){N, 0, C}, 3, pix, 0);
    expect_load_error(side, lb, NB_ERR_FORMAT, side, "implausible image size 0x4");
    // A corrupt header claiming ~1 PB must fail before any allocation.
    const char *huge = tpath("huge");
    write_idx(huge, 0, 0x803, (uint32_t[]){0xFFFFFFFFu, 16384, 16384}, 3, pix, 16);
    expect_load_error(huge, lb, NB_ERR_FORMAT, huge, "implausible size");
}

static void load_bad_labels(void **state) {
    (void)state;
    const char *blb = tpath("bad-labels");
    write_idx(blb, 0, 0x801, (uint32_t[]){N}, 1, (uint8_t[N]){3, 0, 10, 1, 200}, N);
    expect_load_error(im, blb, NB_ERR_FORMAT, blb, "2 bad label(s) for 10 classes");
    assert_msg_has("label 10 at index 2");
}

static void load_missing_and_null(void **state) {
    (void)state;
    const char *missing = tpath("does-not-exist.gz");
    expect_load_error(missing, lb, NB_ERR_IO, missing, "cannot open");
    nb_dataset ds;
    assert_int_equal(nb_idx_load(NULL, lb, &ds), NB_ERR_NULL);
    assert_int_equal(nb_idx_load(lb, lb, NULL), NB_ERR_NULL);
}

static long live_allocs;
static long alloc_budget = -1; // successful allocations left; -1 = unlimited
static void *count_malloc(size_t n) {
    if (alloc_budget == 0)
        return NULL;
    if (alloc_budget > 0)
        alloc_budget--;
    live_allocs++;
    return malloc(n);
}
static void *count_realloc(void *p, size_t n) {
    if (!p)
        return count_malloc(n);
    return realloc(p, n);
}
static void count_free(void *p) {
    live_allocs -= p != NULL;
    free(p);
}

// Every path through the loader, including each failed allocation, frees what it took.
static void load_no_leaks(void **state) {
    (void)state;
    const char *tim = tpath("leak-trunc-images");
    const char *blb = tpath("leak-bad-labels");
    write_images(tim, 0, N, N * F - 1);
    write_idx(blb, 0, 0x801, (uint32_t[]){N}, 1, (uint8_t[N]){3, 10, 9, 1, 7}, N);
    nb_set_allocator(count_malloc, count_realloc, count_free);
    nb_dataset ds;
    int succeeded = 0;
    for (long budget = 0; budget < 8 && !succeeded; budget++) {
        alloc_budget = budget;
        nb_status st = nb_mnist_load(tmpdir, "train", &ds);
        if (st == NB_OK) {
            succeeded = 1;
            nb_dataset_free(&ds);
        } else {
            assert_int_equal(st, NB_ERR_NOMEM);
            assert_null(ds.images);
        }
        assert_int_equal(live_allocs, 0);
    }
    alloc_budget = -1;
    assert_true(succeeded);
    assert_int_equal(nb_idx_load(tim, lb, &ds), NB_ERR_FORMAT);
    assert_int_equal(nb_idx_load(im, blb, &ds), NB_ERR_FORMAT);
    assert_int_equal(live_allocs, 0);
    nb_set_allocator(NULL, NULL, NULL);
}

static void mnist_load_dir(void **state) {
    (void)state;
    nb_dataset ds;
    assert_int_equal(nb_mnist_load(tmpdir, "train", &ds), NB_OK);
    expect_fixture(&ds);
    nb_dataset_free(&ds);
    assert_int_equal(nb_mnist_load(tmpdir, "t10k", &ds), NB_OK);
    expect_fixture(&ds);
    nb_dataset_free(&ds);
    assert_int_equal(nb_mnist_load(tmpdir, "test", &ds), NB_ERR_ARG);
    assert_msg_has("\"test\"");
    assert_int_equal(nb_mnist_load("/nonexistent/nabla", "train", &ds), NB_ERR_IO);
    assert_msg_has("/nonexistent/nabla/train-images-idx3-ubyte");
}

static void fashion_mnist_real(void **state) {
    (void)state;
    FILE *probe = fopen(FASHION_DIR "/train-labels-idx1-ubyte.gz", "rb");
    if (!probe)
        skip();
    fclose(probe);
    const char *splits[] = {"train", "t10k"};
    const int64_t sizes[] = {60000, 10000};
    for (int s = 0; s < 2; s++) {
        nb_dataset ds;
        assert_int_equal(nb_mnist_load(FASHION_DIR, splits[s], &ds), NB_OK);
        assert_int_equal(ds.n, sizes[s]);
        assert_int_equal(ds.rows, 28);
        assert_int_equal(ds.cols, 28);
        int64_t per_class[10] = {0};
        for (int64_t i = 0; i < ds.n; i++) {
            assert_true(ds.labels[i] < 10);
            per_class[ds.labels[i]]++;
        }
        for (int k = 0; k < 10; k++) // Fashion-MNIST is exactly balanced
            assert_int_equal(per_class[k], ds.n / 10);
        nb_dataset_free(&ds);
    }
}

// ---- batches ------------------------------------------------------------------------------------

static nb_dataset fixture(void) {
    return (nb_dataset){
        .n = N, .rows = R, .cols = C, .n_classes = 10, .images = pix, .labels = lab};
}

static void fill_batch_values(void **state) {
    (void)state;
    nb_dataset ds = fixture();
    const int64_t idx[] = {4, 0, 0};
    nb_tensor *x32 = nb_tensor_create(NB_F32, 2, (int64_t[]){3, F});
    nb_tensor *x64 = nb_tensor_create(NB_F64, 4, (int64_t[]){3, 1, R, C});
    nb_tensor *oh = nb_tensor_create(NB_F64, 2, (int64_t[]){3, 10});
    nb_tensor *y = nb_tensor_create(NB_I32, 1, (int64_t[]){3});
    assert_int_equal(nb_dataset_fill_batch(&ds, idx, 3, x32, oh, y), NB_OK);
    assert_int_equal(nb_dataset_fill_batch(&ds, idx, 3, x64, NULL, NULL), NB_OK);
    const float *a = nb_tensor_data_f32(x32);
    const double *b = nb_tensor_data_f64(x64);
    for (int i = 0; i < 3; i++) {
        for (int j = 0; j < F; j++) {
            uint8_t p = pix[idx[i] * F + j];
            assert_true(a[i * F + j] == (float)p / 255.0f);
            assert_true(b[i * F + j] == (double)p / 255.0);
        }
        assert_int_equal(nb_tensor_data_i32(y)[i], lab[idx[i]]);
        for (int k = 0; k < 10; k++)
            assert_true(nb_tensor_get(oh, i * 10 + k) == (k == lab[idx[i]] ? 1.0 : 0.0));
    }
    assert_true(a[1 * F + F - 1] == 1.0f); // pixel 255 maps to exactly 1
    assert_true(a[1 * F + 0] == 0.0f);
    nb_tensor_destroy(x32);
    nb_tensor_destroy(x64);
    nb_tensor_destroy(oh);
    nb_tensor_destroy(y);
}

static void fill_batch_rejects(void **state) {
    (void)state;
    nb_dataset ds = fixture();
    const int64_t idx[] = {1, 2};
    nb_tensor *x = nb_tensor_create(NB_F32, 2, (int64_t[]){2, F});
    nb_tensor *x_rows = nb_tensor_create(NB_F32, 2, (int64_t[]){3, F});
    nb_tensor *x_cols = nb_tensor_create(NB_F32, 2, (int64_t[]){2, F + 1});
    nb_tensor *x_i32 = nb_tensor_create(NB_I32, 2, (int64_t[]){2, F});
    nb_tensor *oh9 = nb_tensor_create(NB_F32, 2, (int64_t[]){2, 9});
    nb_tensor *y_f32 = nb_tensor_create(NB_F32, 1, (int64_t[]){2});
    nb_tensor *y_long = nb_tensor_create(NB_I32, 1, (int64_t[]){3});
    nb_tensor_fill(x, -7.0);
    assert_int_equal(nb_dataset_fill_batch(&ds, idx, 2, x_rows, NULL, NULL), NB_ERR_SHAPE);
    assert_msg_has("x is (3, 12), needs (2, 12)");
    assert_int_equal(nb_dataset_fill_batch(&ds, idx, 2, x_cols, NULL, NULL), NB_ERR_SHAPE);
    assert_int_equal(nb_dataset_fill_batch(&ds, idx, 2, x_i32, NULL, NULL), NB_ERR_DTYPE);
    // A good x with a bad companion: nothing at all is written.
    assert_int_equal(nb_dataset_fill_batch(&ds, idx, 2, x, oh9, NULL), NB_ERR_SHAPE);
    assert_msg_has("onehot is (2, 9), needs (2, 10)");
    assert_int_equal(nb_dataset_fill_batch(&ds, idx, 2, x, NULL, y_f32), NB_ERR_DTYPE);
    assert_int_equal(nb_dataset_fill_batch(&ds, idx, 2, x, NULL, y_long), NB_ERR_SHAPE);
    assert_int_equal(nb_dataset_fill_batch(&ds, (int64_t[]){1, N}, 2, x, NULL, NULL), NB_ERR_ARG);
    assert_msg_has("idx[1] = 5 is outside [0, 5)");
    assert_int_equal(nb_dataset_fill_batch(&ds, (int64_t[]){-1, 0}, 2, x, NULL, NULL), NB_ERR_ARG);
    for (int64_t i = 0; i < 2 * F; i++)
        assert_true(nb_tensor_get(x, i) == -7.0);
    assert_int_equal(nb_dataset_fill_batch(NULL, idx, 2, x, NULL, NULL), NB_ERR_NULL);
    assert_int_equal(nb_dataset_fill_batch(&ds, NULL, 2, x, NULL, NULL), NB_ERR_NULL);
    nb_dataset empty = {0};
    assert_int_equal(nb_dataset_fill_batch(&empty, idx, 2, x, NULL, NULL), NB_ERR_STATE);
    ds.n_classes = 9; // a hand-built dataset whose label 9 would land past the one-hot row
    nb_tensor *oh = nb_tensor_create(NB_F32, 2, (int64_t[]){1, 9});
    assert_int_equal(nb_dataset_fill_batch(&ds, (int64_t[]){2}, 1, NULL, oh, NULL), NB_ERR_ARG);
    assert_msg_has("sample 2 has label 9");
    nb_tensor_destroy(oh);
    nb_tensor *all[] = {x, x_rows, x_cols, x_i32, oh9, y_f32, y_long};
    for (int i = 0; i < 7; i++)
        nb_tensor_destroy(all[i]);
}

// The documented idiom for a short last batch: a smaller view over the full batch's buffer.
static void fill_batch_last_batch_view(void **state) {
    (void)state;
    nb_dataset ds = fixture();
    nb_batch_iter *it = nb_batch_iter_create(NULL, N, 3, false, 1);
    nb_tensor *x = nb_tensor_create(NB_F32, 2, (int64_t[]){3, F});
    const int64_t *batch;
    assert_int_equal(nb_batch_iter_next(it, &batch), 3);
    assert_int_equal(nb_batch_iter_next(it, &batch), 2);
    nb_tensor_fill(x, -7.0);
    nb_tensor *view = nb_tensor_wrap(NB_F32, 2, (int64_t[]){2, F}, nb_tensor_data(x));
    assert_int_equal(nb_dataset_fill_batch(&ds, batch, 2, view, NULL, NULL), NB_OK);
    assert_true(nb_tensor_get(x, F) == (double)((float)pix[4 * F] / 255.0f));
    assert_true(nb_tensor_get(x, 2 * F) == -7.0); // the unused row stays as it was
    nb_tensor_destroy(view);
    nb_tensor_destroy(x);
    nb_batch_iter_destroy(it);
}

static void one_hot_values_and_errors(void **state) {
    (void)state;
    const int32_t y[] = {2, 0, 3};
    nb_tensor *f = nb_tensor_create(NB_F32, 2, (int64_t[]){3, 4});
    nb_tensor *d = nb_tensor_create(NB_F64, 2, (int64_t[]){3, 4});
    assert_int_equal(nb_one_hot(y, 3, 4, f), NB_OK);
    assert_int_equal(nb_one_hot(y, 3, 4, d), NB_OK);
    for (int i = 0; i < 3; i++)
        for (int k = 0; k < 4; k++) {
            assert_true(nb_tensor_get(f, i * 4 + k) == (k == y[i] ? 1.0 : 0.0));
            assert_true(nb_tensor_get(d, i * 4 + k) == (k == y[i] ? 1.0 : 0.0));
        }
    nb_tensor_fill(f, -7.0);
    assert_int_equal(nb_one_hot((int32_t[]){1, 4, 0}, 3, 4, f), NB_ERR_ARG);
    assert_msg_has("labels[1] = 4 is outside [0, 4)");
    assert_int_equal(nb_one_hot((int32_t[]){1, -1, 0}, 3, 4, f), NB_ERR_ARG);
    assert_true(nb_tensor_get(f, 0) == -7.0);
    assert_int_equal(nb_one_hot(y, 3, 5, f), NB_ERR_SHAPE);
    assert_int_equal(nb_one_hot(y, 2, 4, f), NB_ERR_SHAPE);
    nb_tensor *i32 = nb_tensor_create(NB_I32, 2, (int64_t[]){3, 4});
    assert_int_equal(nb_one_hot(y, 3, 4, i32), NB_ERR_DTYPE);
    assert_int_equal(nb_one_hot(NULL, 3, 4, f), NB_ERR_NULL);
    // int64 labels: the same rows and the same checks, values named in full.
    const int64_t y64[] = {2, 0, 3};
    nb_tensor_fill(d, -7.0);
    assert_int_equal(nb_one_hot_i64(y64, 3, 4, d), NB_OK);
    for (int i = 0; i < 3; i++)
        for (int k = 0; k < 4; k++)
            assert_true(nb_tensor_get(d, i * 4 + k) == (k == y64[i] ? 1.0 : 0.0));
    nb_tensor_fill(f, -7.0);
    assert_int_equal(nb_one_hot_i64((int64_t[]){1, (int64_t)1 << 32, 0}, 3, 4, f), NB_ERR_ARG);
    assert_msg_has("nb_one_hot_i64: labels[1] = 4294967296 is outside [0, 4)");
    assert_int_equal(nb_one_hot_i64((int64_t[]){1, 0, -2}, 3, 4, f), NB_ERR_ARG);
    assert_msg_has("labels[2] = -2 is outside [0, 4)");
    assert_true(nb_tensor_get(f, 0) == -7.0);
    assert_int_equal(nb_one_hot_i64(y64, 3, 4, i32), NB_ERR_DTYPE);
    assert_int_equal(nb_one_hot_i64(y64, 3, 5, d), NB_ERR_SHAPE);
    assert_int_equal(nb_one_hot_i64(NULL, 3, 4, f), NB_ERR_NULL);
    nb_tensor_destroy(f);
    nb_tensor_destroy(d);
    nb_tensor_destroy(i32);
}

// ---- shuffling, splitting, iteration ----------------------------------------------------------

static void shuffle_is_seeded_permutation(void **state) {
    (void)state;
    enum { M = 50 };
    int64_t a[M];
    int64_t b[M];
    for (int i = 0; i < M; i++)
        a[i] = b[i] = i;
    nb_rng r1;
    nb_rng r2;
    nb_rng_seed(&r1, 42);
    nb_rng_seed(&r2, 42);
    assert_int_equal(nb_shuffle(a, M, &r1), NB_OK);
    assert_int_equal(nb_shuffle(b, M, &r2), NB_OK);
    assert_memory_equal(a, b, sizeof a);
    int seen[M] = {0};
    int moved = 0;
    for (int i = 0; i < M; i++) {
        seen[a[i]]++;
        moved += a[i] != i;
    }
    for (int i = 0; i < M; i++)
        assert_int_equal(seen[i], 1);
    assert_true(moved > M / 2);
    assert_int_equal(nb_shuffle(NULL, 0, &r1), NB_OK);
    assert_int_equal(nb_shuffle(a, -1, &r1), NB_ERR_ARG);
    assert_int_equal(nb_shuffle(a, M, NULL), NB_ERR_NULL);
}

static void split_is_disjoint_cover(void **state) {
    (void)state;
    enum { M = 1000, V = 100 };
    static int64_t train[M];
    static int64_t val[M];
    static int64_t val2[M];
    nb_rng rng;
    nb_rng_seed(&rng, 7);
    assert_int_equal(nb_split_indices(M, V, &rng, train, val), NB_OK);
    int seen[M] = {0};
    for (int i = 0; i < M - V; i++) {
        seen[train[i]]++;
        if (i)
            assert_true(train[i] > train[i - 1]);
    }
    for (int i = 0; i < V; i++) {
        seen[val[i]] += 2;
        if (i)
            assert_true(val[i] > val[i - 1]);
    }
    for (int i = 0; i < M; i++)
        assert_true(seen[i] == 1 || seen[i] == 2); // in exactly one of the two sets
    nb_rng_seed(&rng, 7);
    assert_int_equal(nb_split_indices(M, V, &rng, train, val2), NB_OK);
    assert_memory_equal(val, val2, V * sizeof val[0]);
    nb_rng_seed(&rng, 8);
    assert_int_equal(nb_split_indices(M, V, &rng, train, val2), NB_OK);
    assert_memory_not_equal(val, val2, V * sizeof val[0]);
    assert_int_equal(nb_split_indices(M, 0, &rng, train, NULL), NB_OK);
    assert_int_equal(train[M - 1], M - 1);
    assert_int_equal(nb_split_indices(M, M, &rng, NULL, val), NB_OK);
    assert_int_equal(val[M - 1], M - 1);
    assert_int_equal(nb_split_indices(M, M + 1, &rng, train, val), NB_ERR_ARG);
    assert_int_equal(nb_split_indices(M, V, &rng, train, NULL), NB_ERR_NULL);
}

// Runs one epoch, checking batch sizes and that each of the n indices appears exactly once.
static void run_epoch(nb_batch_iter *it, int64_t n, int64_t bs, int64_t *order) {
    const int64_t *batch;
    int64_t count;
    int64_t seen = 0;
    int64_t batches = 0;
    while ((count = nb_batch_iter_next(it, &batch)) > 0) {
        assert_int_equal(count, n - seen < bs ? n - seen : bs);
        memcpy(order + seen, batch, (size_t)count * sizeof *batch);
        seen += count;
        batches++;
    }
    assert_int_equal(seen, n);
    assert_int_equal(batches, nb_batch_iter_num_batches(it));
    int hits[128] = {0};
    for (int64_t i = 0; i < n; i++)
        hits[order[i]]++;
    for (int64_t i = 0; i < n; i++)
        assert_int_equal(hits[i], 1);
}

static void iter_epochs(void **state) {
    (void)state;
    enum { M = 103, BS = 10, EPOCHS = 3 };
    static int64_t orders[2][EPOCHS][M];
    nb_batch_iter *a = nb_batch_iter_create(NULL, M, BS, true, 1234);
    nb_batch_iter *b = nb_batch_iter_create(NULL, M, BS, true, 1234);
    nb_batch_iter *c = nb_batch_iter_create(NULL, M, BS, true, 99);
    assert_int_equal(nb_batch_iter_num_batches(a), 11);
    for (int e = 0; e < EPOCHS; e++) {
        assert_int_equal(nb_batch_iter_epoch(a), e);
        run_epoch(a, M, BS, orders[0][e]);
        run_epoch(b, M, BS, orders[1][e]);
        assert_memory_equal(orders[0][e], orders[1][e], sizeof orders[0][e]); // same seed
        if (e)
            assert_memory_not_equal(orders[0][e], orders[0][e - 1], sizeof orders[0][e]);
    }
    run_epoch(c, M, BS, orders[1][0]);
    assert_memory_not_equal(orders[0][0], orders[1][0], sizeof orders[0][0]); // other seed
    assert_int_equal(nb_batch_iter_epoch(a), EPOCHS);
    nb_batch_iter_destroy(a);
    nb_batch_iter_destroy(b);
    nb_batch_iter_destroy(c);
}

static void iter_subset_in_order_and_errors(void **state) {
    (void)state;
    const int64_t subset[] = {5, 2, 9};
    nb_batch_iter *it = nb_batch_iter_create(subset, 3, 2, false, 0);
    const int64_t *batch;
    for (int e = 0; e < 2; e++) {
        assert_int_equal(nb_batch_iter_next(it, &batch), 2);
        assert_int_equal(batch[0], 5);
        assert_int_equal(batch[1], 2);
        assert_int_equal(nb_batch_iter_next(it, &batch), 1);
        assert_int_equal(batch[0], 9);
        assert_int_equal(nb_batch_iter_next(it, &batch), 0);
    }
    nb_batch_iter_destroy(it);
    nb_batch_iter_destroy(NULL);
    assert_null(nb_batch_iter_create(NULL, 0, 4, true, 0));
    assert_msg_has("nb_batch_iter_create");
    assert_null(nb_batch_iter_create(NULL, 10, 0, true, 0));
    assert_int_equal(nb_batch_iter_next(NULL, &batch), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(load_valid_raw_and_gz),
        cmocka_unit_test(load_truncated),
        cmocka_unit_test(load_broken_gzip),
        cmocka_unit_test(load_trailing_data),
        cmocka_unit_test(load_bad_magic_and_dims),
        cmocka_unit_test(load_bad_sizes),
        cmocka_unit_test(load_bad_labels),
        cmocka_unit_test(load_missing_and_null),
        cmocka_unit_test(mnist_load_dir),
        cmocka_unit_test(load_no_leaks),
        cmocka_unit_test(fashion_mnist_real),
        cmocka_unit_test(fill_batch_values),
        cmocka_unit_test(fill_batch_rejects),
        cmocka_unit_test(fill_batch_last_batch_view),
        cmocka_unit_test(one_hot_values_and_errors),
        cmocka_unit_test(shuffle_is_seeded_permutation),
        cmocka_unit_test(split_is_disjoint_cover),
        cmocka_unit_test(iter_epochs),
        cmocka_unit_test(iter_subset_in_order_and_errors),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
