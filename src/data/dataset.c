// Datasets of N-D samples: creation with uint8 or float storage, class labels (any number of
// classes) and float targets attached as tensors, the consistency check every batch function
// runs first (a dataset's fields are public, so one built or edited by hand is trusted for
// nothing), and freeing.
#define _DEFAULT_SOURCE // madvise, MADV_HUGEPAGE
#include <inttypes.h>
#include <math.h>
#include <string.h>
#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "base/base_impl.h"
#include "data/data_impl.h"

static bool is_float(nb_dtype dt) {
    return dt == NB_F32 || dt == NB_F64;
}

// The product of shape[0..ndim), or -1 when a size is < 1 or the product (times n) overflows.
static int64_t checked_numel(int ndim, const int64_t *shape, int64_t n) {
    int64_t numel = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 1 || numel > INT64_MAX / shape[i])
            return -1;
        numel *= shape[i];
    }
    return n >= 1 && numel <= INT64_MAX / n ? numel : -1;
}

void nb__data_huge_pages(void *p, size_t len, bool written) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    // The whole 2 MiB pages inside [p, p + len). MADV_HUGEPAGE makes the kernel back them with
    // huge pages at their first write (THP "always" or "madvise" mode); MADV_COLLAPSE (Linux
    // 6.1; 25 in its headers) moves pages already written onto huge pages in place, 2 MiB at a
    // time. Both are advice: where refused (an older kernel, THP off) the pages stay ordinary.
#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25
#endif
    const uintptr_t huge = (uintptr_t)2 << 20;
    uintptr_t a = ((uintptr_t)p + huge - 1) & ~(huge - 1), b = ((uintptr_t)p + len) & ~(huge - 1);
    if (!p || len < NB__DATA_HUGE_MIN || b <= a)
        return;
    (void)madvise((void *)a, b - a, MADV_HUGEPAGE);
    if (written)
        (void)madvise((void *)a, b - a, MADV_COLLAPSE);
#else
    (void)p, (void)len, (void)written;
#endif
}

nb_status nb__dataset_check(const nb_dataset *ds, const char *fn, nb__sample_layout *out) {
    if (!ds)
        return nb__set_last_error(NB_ERR_NULL, "%s: ds is NULL", fn);
    if (ds->n <= 0 || (!ds->images && !ds->samples))
        return nb__set_last_error(NB_ERR_STATE, "%s: dataset is empty or not loaded", fn);
    if (ds->sample_ndim == 0) { // hand-built MNIST style: (1, rows, cols) uint8 images
        if (ds->rows <= 0 || ds->cols <= 0 || !ds->images || ds->samples)
            return nb__set_last_error(NB_ERR_STATE,
                                      "%s: dataset without a sample shape needs rows, cols >= 1 "
                                      "and uint8 images (rows %" PRId64 ", cols %" PRId64 ")",
                                      fn, ds->rows, ds->cols);
        out->ndim = 3;
        out->shape[0] = 1;
        out->shape[1] = ds->rows;
        out->shape[2] = ds->cols;
        out->numel = checked_numel(3, out->shape, ds->n);
        if (out->numel < 0)
            return nb__set_last_error(NB_ERR_STATE,
                                      "%s: dataset of %" PRId64 " images of %" PRId64
                                      " rows x %" PRId64 " cols: the size overflows",
                                      fn, ds->n, ds->rows, ds->cols);
        return NB_OK;
    }
    if (ds->sample_ndim < 1 || ds->sample_ndim > NB_MAX_DIMS - 1)
        return nb__set_last_error(NB_ERR_STATE, "%s: sample_ndim %d is outside [1, %d]", fn,
                                  ds->sample_ndim, NB_MAX_DIMS - 1);
    out->ndim = ds->sample_ndim;
    memcpy(out->shape, ds->sample_shape, (size_t)out->ndim * sizeof *out->shape);
    out->numel = checked_numel(out->ndim, out->shape, ds->n);
    if (out->numel < 0)
        return nb__set_last_error(NB_ERR_STATE,
                                  "%s: %" PRId64 " samples of rank %d: a size is < 1 or the total "
                                  "overflows",
                                  fn, ds->n, out->ndim);
    if (ds->images && ds->samples)
        return nb__set_last_error(NB_ERR_STATE,
                                  "%s: dataset has both uint8 images and float "
                                  "samples (one storage only)",
                                  fn);
    if (ds->samples) {
        const nb_tensor *s = ds->samples;
        bool ok = is_float(nb_tensor_dtype(s)) && nb_tensor_ndim(s) == out->ndim + 1 &&
                  nb_tensor_dim(s, 0) == ds->n;
        for (int i = 0; ok && i < out->ndim; i++)
            ok = nb_tensor_dim(s, i + 1) == out->shape[i];
        if (!ok)
            return nb__set_last_error(
                NB_ERR_STATE, "%s: samples tensor is %s %s, not float (%" PRId64 ", sample shape)",
                fn, nb_dtype_name(nb_tensor_dtype(s)), NB_SHAPE_STR(s), ds->n);
    }
    return NB_OK;
}

int64_t nb_dataset_sample_numel(const nb_dataset *ds) {
    if (!ds || ds->n < 1)
        return 0;
    int64_t legacy[3] = {1, ds->rows, ds->cols};
    int64_t numel = ds->sample_ndim == 0 ? checked_numel(3, legacy, ds->n)
                    : ds->sample_ndim <= NB_MAX_DIMS - 1
                        ? checked_numel(ds->sample_ndim, ds->sample_shape, ds->n)
                        : -1;
    return numel > 0 ? numel : 0;
}

nb_status nb_dataset_create(int64_t n, int sample_ndim, const int64_t *sample_shape,
                            nb_data_storage storage, nb_dataset *out) {
    static const char fn[] = "nb_dataset_create";
    if (!out || !sample_shape)
        return nb__set_last_error(NB_ERR_NULL, "%s: %s is NULL", fn, out ? "sample_shape" : "out");
    memset(out, 0, sizeof *out);
    if (sample_ndim < 1 || sample_ndim > NB_MAX_DIMS - 1)
        return nb__set_last_error(NB_ERR_ARG, "%s: sample_ndim %d is outside [1, %d]", fn,
                                  sample_ndim, NB_MAX_DIMS - 1);
    int64_t numel = checked_numel(sample_ndim, sample_shape, n);
    if (n < 1 || numel < 0 || (uint64_t)(n * numel) > SIZE_MAX / sizeof(double))
        return nb__set_last_error(NB_ERR_ARG,
                                  "%s: %" PRId64 " samples of rank %d: need n >= 1 and sizes >= "
                                  "1 whose total fits in memory",
                                  fn, n, sample_ndim);
    if (storage != NB_DATA_U8 && storage != NB_DATA_F32 && storage != NB_DATA_F64)
        return nb__set_last_error(NB_ERR_ARG, "%s: storage %d is not NB_DATA_U8, _F32 or _F64", fn,
                                  (int)storage);
    if (storage == NB_DATA_U8) {
        out->images = nb__malloc((size_t)(n * numel));
        nb__data_huge_pages(out->images, (size_t)(n * numel), false); // before the first write
        if (out->images)
            memset(out->images, 0, (size_t)(n * numel));
    } else {
        int64_t shape[NB_MAX_DIMS] = {n};
        memcpy(shape + 1, sample_shape, (size_t)sample_ndim * sizeof *shape);
        out->samples =
            nb_tensor_create(storage == NB_DATA_F32 ? NB_F32 : NB_F64, sample_ndim + 1, shape);
        if (out->samples)
            nb_tensor_fill(out->samples, 0.0);
    }
    if (!out->images && !out->samples) {
        memset(out, 0, sizeof *out);
        return nb__set_last_error(NB_ERR_NOMEM,
                                  "%s: out of memory for %" PRId64 " samples of %" PRId64 " values",
                                  fn, n, numel);
    }
    out->n = n;
    out->sample_ndim = sample_ndim;
    memcpy(out->sample_shape, sample_shape, (size_t)sample_ndim * sizeof *sample_shape);
    out->cols = sample_shape[sample_ndim - 1];
    out->rows = sample_ndim >= 2 ? sample_shape[sample_ndim - 2] : 1;
    return NB_OK;
}

// A copy of t (same dtype and shape) as a new leaf, or NULL with NB_ERR_NOMEM recorded.
static nb_tensor *copy_of(const nb_tensor *t, const char *fn) {
    int64_t shape[NB_MAX_DIMS];
    for (int i = 0; i < nb_tensor_ndim(t); i++)
        shape[i] = nb_tensor_dim(t, i);
    nb_tensor *c = nb_tensor_create(nb_tensor_dtype(t), nb_tensor_ndim(t), shape);
    if (!c || nb_tensor_copy(c, t) != NB_OK) {
        nb_tensor_destroy(c);
        nb__set_last_error(NB_ERR_NOMEM, "%s: out of memory copying %s", fn, NB_SHAPE_STR(t));
        return NULL;
    }
    return c;
}

nb_status nb_dataset_set_labels(nb_dataset *ds, const nb_tensor *labels, int64_t n_classes) {
    static const char fn[] = "nb_dataset_set_labels";
    nb__sample_layout l;
    if (!labels)
        return nb__set_last_error(NB_ERR_NULL, "%s: labels is NULL", fn);
    nb_status st = nb__dataset_check(ds, fn, &l);
    if (st != NB_OK)
        return st;
    if (!nb__is_index_dtype(nb_tensor_dtype(labels)))
        return nb__set_last_error(NB_ERR_DTYPE, "%s: labels is %s, needs int32 or int64", fn,
                                  nb_dtype_name(nb_tensor_dtype(labels)));
    if (nb_tensor_ndim(labels) != 1 || nb_tensor_dim(labels, 0) != ds->n)
        return nb__set_last_error(NB_ERR_SHAPE, "%s: labels is %s, needs (%" PRId64 ")", fn,
                                  NB_SHAPE_STR(labels), ds->n);
    // The same bound for both dtypes: a batch may be drawn into int32 labels either way.
    if (n_classes < 1 || n_classes > INT32_MAX)
        return nb__set_last_error(NB_ERR_ARG, "%s: n_classes %" PRId64 " is outside [1, 2^31)", fn,
                                  n_classes);
    nb_tensor *c = copy_of(labels, fn); // checked on the copy (the caller's is const)
    if (!c)
        return NB_ERR_NOMEM;
    bool i64 = nb_tensor_dtype(c) == NB_I64;
    const int32_t *y32 = i64 ? NULL : nb_tensor_data_i32(c);
    const int64_t *y64 = i64 ? nb_tensor_data_i64(c) : NULL;
    for (int64_t i = 0; i < ds->n; i++) {
        int64_t y = i64 ? y64[i] : (int64_t)y32[i];
        if (y < 0 || y >= n_classes) {
            nb_tensor_destroy(c);
            return nb__set_last_error(
                NB_ERR_ARG, "%s: labels[%" PRId64 "] = %" PRId64 " is outside [0, %" PRId64 ")", fn,
                i, y, n_classes);
        }
    }
    // uint8 labels are not freed here: a hand-built dataset's are the caller's memory.
    nb_tensor_destroy(ds->class_labels);
    ds->class_labels = c;
    ds->n_classes = n_classes;
    return NB_OK;
}

nb_status nb_dataset_set_targets(nb_dataset *ds, const nb_tensor *targets) {
    static const char fn[] = "nb_dataset_set_targets";
    nb__sample_layout l;
    if (!targets)
        return nb__set_last_error(NB_ERR_NULL, "%s: targets is NULL", fn);
    nb_status st = nb__dataset_check(ds, fn, &l);
    if (st != NB_OK)
        return st;
    nb_dtype dt = nb_tensor_dtype(targets);
    if (!is_float(dt))
        return nb__set_last_error(NB_ERR_DTYPE, "%s: targets is %s, needs float32 or float64", fn,
                                  nb_dtype_name(dt));
    if (nb_tensor_ndim(targets) < 1 || nb_tensor_dim(targets, 0) != ds->n)
        return nb__set_last_error(NB_ERR_SHAPE, "%s: targets is %s, needs (%" PRId64 ", ...)", fn,
                                  NB_SHAPE_STR(targets), ds->n);
    for (int64_t i = 0; i < nb_tensor_numel(targets); i++) {
        double v = nb_tensor_get(targets, i);
        if (!isfinite(v))
            return nb__set_last_error(NB_ERR_NONFINITE, "%s: targets element %" PRId64 " is %g", fn,
                                      i, v);
    }
    nb_tensor *c = copy_of(targets, fn);
    if (!c)
        return NB_ERR_NOMEM;
    nb_tensor_destroy(ds->targets);
    ds->targets = c;
    return NB_OK;
}

void nb_dataset_free(nb_dataset *ds) {
    if (!ds)
        return;
    nb__free(ds->images);
    nb__free(ds->labels);
    nb_tensor_destroy(ds->samples);
    nb_tensor_destroy(ds->class_labels);
    nb_tensor_destroy(ds->targets);
    memset(ds, 0, sizeof *ds);
}
