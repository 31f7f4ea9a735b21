// libFuzzer harness for the IDX reader (nb_idx_load). Input layout:
//   byte 0      control: bit 0 / bit 1 gzip the image / label part before writing it,
//               bits 2-3 pick the deflate level (stored, 1, 6, 9)
//   bytes 1-2   length of the image part, little-endian (clamped to what is left)
//   rest        the image file's bytes, then the label file's bytes
// Raw parts may themselves be gzip data (the seeds include some), which exercises zlib's
// own error paths; harness-side gzip lets mutations of the IDX content reach the gzip path.
// Oracles: a failure leaves *out zeroed with a message; a success holds exactly the file's
// header and payload, every label is a class, and a batch drawn from it is consistent. Each
// input is then loaded again with one allocation failing: NB_ERR_NOMEM, nothing leaked.
#define _GNU_SOURCE // memfd_create
#include <stdint.h>
#include <string.h>
#include <zlib.h>

#include "fuzz_util.h"
#include "nabla/data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const int levels[4] = {Z_NO_COMPRESSION, 1, 6, 9};

// gzip p[0..n) in memory; *out is malloc'd.
static size_t gzip_bytes(const uint8_t *p, size_t n, int level, uint8_t **out) {
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    FZ_CHECK(deflateInit2(&zs, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK);
    size_t cap = deflateBound(&zs, (uLong)n) + 32;
    *out = malloc(cap);
    FZ_CHECK(*out != NULL);
    zs.next_in = (Bytef *)(uintptr_t)p;
    zs.avail_in = (uInt)n;
    zs.next_out = *out;
    zs.avail_out = (uInt)cap;
    FZ_CHECK(deflate(&zs, Z_FINISH) == Z_STREAM_END);
    size_t len = zs.total_out;
    deflateEnd(&zs);
    return len;
}

static void put_part(const fz_file *f, const uint8_t *p, size_t n, bool gz, int level) {
    if (!gz) {
        fz_file_set(f, p, n);
        return;
    }
    uint8_t *z = NULL;
    size_t zn = gzip_bytes(p, n, level, &z);
    fz_file_set(f, z, zn);
    free(z);
}

static uint32_t be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

// What zlib hands the reader is the part itself unless the part is gzip data we did not make.
static bool content_known(const uint8_t *p, size_t n, bool we_gzipped) {
    return we_gzipped || n < 2 || p[0] != 0x1f || p[1] != 0x8b;
}

static void check_loaded(const nb_dataset *ds, const uint8_t *img, size_t img_n, bool img_known,
                         const uint8_t *lab, size_t lab_n, bool lab_known) {
    FZ_CHECK(ds->n > 0 && ds->rows >= 1 && ds->rows <= 16384 && ds->cols >= 1 && ds->cols <= 16384);
    FZ_CHECK(ds->n_classes == NB_MNIST_CLASSES && ds->images && ds->labels);
    size_t pixels = (size_t)(ds->rows * ds->cols);
    for (int64_t i = 0; i < ds->n; i++)
        FZ_CHECK(ds->labels[i] < NB_MNIST_CLASSES);
    if (img_known) { // exactly header + payload, no more, no less
        FZ_CHECK(img_n == 16 + (size_t)ds->n * pixels);
        FZ_CHECK(be32(img) == 0x803 && be32(img + 4) == (uint32_t)ds->n);
        FZ_CHECK(be32(img + 8) == (uint32_t)ds->rows && be32(img + 12) == (uint32_t)ds->cols);
        FZ_CHECK(memcmp(ds->images, img + 16, (size_t)ds->n * pixels) == 0);
    }
    if (lab_known) {
        FZ_CHECK(lab_n == 8 + (size_t)ds->n);
        FZ_CHECK(be32(lab) == 0x801 && be32(lab + 4) == (uint32_t)ds->n);
        FZ_CHECK(memcmp(ds->labels, lab + 8, (size_t)ds->n) == 0);
    }
    // Draw the last sample as a batch: x = pixels / 255 exactly, one-hot at the label.
    if (pixels > 4096)
        return;
    int64_t idx = ds->n - 1;
    nb_tensor *x = nb_tensor_create(NB_F32, 2, (const int64_t[]){1, (int64_t)pixels});
    nb_tensor *oh = nb_tensor_create(NB_F64, 2, (const int64_t[]){1, NB_MNIST_CLASSES});
    nb_tensor *y = nb_tensor_create(NB_I32, 1, (const int64_t[]){1});
    FZ_CHECK(x && oh && y);
    FZ_CHECK(nb_dataset_fill_batch(ds, &idx, 1, x, oh, y) == NB_OK);
    const uint8_t *row = ds->images + (size_t)idx * pixels;
    const float *xd = nb_tensor_data_f32(x);
    for (size_t k = 0; k < pixels; k++)
        FZ_CHECK(xd[k] == (float)row[k] / 255.0f);
    const double *od = nb_tensor_data_f64(oh);
    for (int c = 0; c < NB_MNIST_CLASSES; c++)
        FZ_CHECK(od[c] == (c == ds->labels[idx] ? 1.0 : 0.0));
    FZ_CHECK(nb_tensor_data_i32(y)[0] == ds->labels[idx]);
    nb_tensor_destroy(x);
    nb_tensor_destroy(oh);
    nb_tensor_destroy(y);
}

// A failed load leaves *ds zeroed and says why.
static void check_failed(const nb_dataset *ds, nb_status st) {
    const nb_dataset zero = {0};
    FZ_CHECK(memcmp(ds, &zero, sizeof *ds) == 0);
    FZ_CHECK(st == NB_ERR_FORMAT || st == NB_ERR_NOMEM);
    FZ_CHECK(nb_last_error()[0] != '\0');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static fz_file img_file;
    static fz_file lab_file;
    static bool ready = false;
    if (!ready) {
        fz_file_init(&img_file, "fuzz-idx-images");
        fz_file_init(&lab_file, "fuzz-idx-labels");
        fz_alloc_install();
        ready = true;
    }
    uint8_t ctl = size > 0 ? data[0] : 0;
    size_t img_n = size >= 3 ? (size_t)data[1] | (size_t)data[2] << 8 : 0;
    const uint8_t *img = data + (size >= 3 ? 3 : size);
    size_t rest = size >= 3 ? size - 3 : 0;
    if (img_n > rest)
        img_n = rest;
    const uint8_t *lab = img + img_n;
    size_t lab_n = rest - img_n;
    bool gz_img = ctl & 1;
    bool gz_lab = ctl & 2;
    int level = levels[(ctl >> 2) & 3];
    put_part(&img_file, img, img_n, gz_img, level);
    put_part(&lab_file, lab, lab_n, gz_lab, level);

    // Pass 1: the input as is. Pass 2: the same load with one of its allocations failing.
    nb_dataset ds;
    memset(&ds, 0xA5, sizeof ds); // the loader must zero it whatever happens
    fz_alloc_arm(0);
    nb_status st = nb_idx_load(img_file.path, lab_file.path, &ds);
    size_t allocs = fz_alloc_count;
    if (fz_verbose())
        fprintf(stderr, "nb_idx_load: %s: %s\n", nb_status_str(st), st ? nb_last_error() : "");
    if (st == NB_OK) {
        check_loaded(&ds, img, img_n, content_known(img, img_n, gz_img), lab, lab_n,
                     content_known(lab, lab_n, gz_lab));
        nb_dataset_free(&ds);
    } else {
        check_failed(&ds, st);
    }
    nb_dataset_free(&ds); // freeing a zeroed dataset is a no-op
    if (allocs > 0) {
        memset(&ds, 0xA5, sizeof ds);
        fz_alloc_arm(1 + fz_hash(data, size) % allocs);
        st = nb_idx_load(img_file.path, lab_file.path, &ds);
        fz_alloc_arm(0);
        FZ_CHECK(st == NB_ERR_NOMEM);
        check_failed(&ds, st);
    }
    return 0;
}
