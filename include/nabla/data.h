// nabla data: datasets of N-D samples (images as (C, H, W), feature vectors, ...) stored as
// uint8 (compact: 47 MB for MNIST train; drawn as v / 255) or as float, with class labels (any
// number of classes) or float targets; MNIST-style IDX files (raw or gzip) load into one.
// Mini-batch filling, shuffling and train/validation splits. A dataset's buffers are the
// library's, released with nb_dataset_free; an nb_batch_iter is freed with its destroy.
// Every function reports failure as an nb_status with the message in nb_last_error().
//
//   nb_dataset ds;                                  // 500 RGB 32x32 images, 100 classes
//   nb_dataset_create(500, 3, (int64_t[]){3, 32, 32}, NB_DATA_U8, &ds);
//   memcpy(ds.images, pixels, 500 * 3 * 32 * 32);   // or nb_tensor_data(ds.samples) for float
//   nb_dataset_set_labels(&ds, labels_i32_tensor, 100);
//   nb_dataset_fill_batch(&ds, idx, 64, x /* (64, 3, 32, 32) f32 */, NULL, y /* (64) i32 */);
//   nb_dataset_free(&ds);
#ifndef NABLA_DATA_H
#define NABLA_DATA_H

#include <signal.h> // sig_atomic_t
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nabla/base.h"
#include "nabla/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

// Number of classes in MNIST and Fashion-MNIST: the IDX loader's default (nb_idx_options).
#define NB_MNIST_CLASSES 10

// How a dataset stores its samples.
typedef enum {
    NB_DATA_U8 = 0, // uint8 in nb_dataset.images, drawn as v / 255 (pixels)
    NB_DATA_F32,    // float32 tensor nb_dataset.samples, drawn as is
    NB_DATA_F64,    // float64 tensor nb_dataset.samples, drawn as is
} nb_data_storage;

// A dataset of n samples of one shape, with class labels and/or float targets. Plain data:
// fields may be read directly (and sample values written in place); do not free them yourself.
typedef struct nb_dataset {
    int64_t n;         // number of samples (> 0 once loaded)
    int64_t rows;      // image height: the sample's second-to-last dim (1 for 1-D samples)
    int64_t cols;      // image width: the sample's last dim; rows * cols for IDX images
    int64_t n_classes; // every class label is in [0, n_classes); 0: no class labels
    uint8_t *images;   // uint8 storage: (n, sample numel) values 0..255, row-major; else NULL
    uint8_t *labels;   // (n) uint8 class labels as IDX files hold them (unless class_labels)
    // The general form. A dataset built by hand with only the fields above (sample_ndim 0)
    // means one (1, rows, cols) image per sample, uint8 labels: MNIST's layout.
    int sample_ndim;                       // rank of one sample, 1 .. NB_MAX_DIMS - 1
    int64_t sample_shape[NB_MAX_DIMS - 1]; // e.g. (C, H, W); IDX images: (1, rows, cols)
    nb_tensor *samples;      // float storage: (n, *sample_shape) NB_F32 / NB_F64; else NULL
    nb_tensor *class_labels; // (n) NB_I32 class indices (used instead of labels), or NULL
    nb_tensor *targets;      // (n, ...) NB_F32 / NB_F64 targets (e.g. regression), or NULL
} nb_dataset;

// A new dataset of n samples shaped sample_shape (sample_ndim dims, 1 .. NB_MAX_DIMS - 1, each
// >= 1), zero-filled storage of the given kind for the caller to fill (ds->images or
// nb_tensor_data(ds->samples)); no labels or targets yet. On failure *out is zeroed. Errors:
// NB_ERR_NULL, NB_ERR_ARG (n < 1, a bad rank, size or storage, a size that overflows),
// NB_ERR_NOMEM.
nb_status nb_dataset_create(int64_t n, int sample_ndim, const int64_t *sample_shape,
                            nb_data_storage storage, nb_dataset *out);
// Attaches class labels: labels is (n) NB_I32, each in [0, n_classes), n_classes >= 1 (any
// number). Copied into ds->class_labels, which then takes precedence over ds->labels (uint8
// labels stay until nb_dataset_free; batches read class_labels when it is set).
// All or nothing: NB_ERR_NULL, NB_ERR_STATE (ds not created or loaded), NB_ERR_DTYPE,
// NB_ERR_SHAPE, NB_ERR_ARG (the first label out of range, with its index), NB_ERR_NOMEM.
nb_status nb_dataset_set_labels(nb_dataset *ds, const nb_tensor *labels, int64_t n_classes);
// Attaches float targets: targets is (n, ...) NB_F32 / NB_F64, copied into ds->targets
// (replacing earlier ones). Errors as nb_dataset_set_labels; non-finite values are
// NB_ERR_NONFINITE.
nb_status nb_dataset_set_targets(nb_dataset *ds, const nb_tensor *targets);
// Elements per sample (the product of the sample shape); 0 for NULL or an empty dataset.
int64_t nb_dataset_sample_numel(const nb_dataset *ds);

// Shuffled (or ordered) mini-batches over a set of sample indices; opaque.
typedef struct nb_batch_iter nb_batch_iter;

// ---- loading -------------------------------------------------------------------------------

// Default cap on the image bytes one load may hold in memory (NB_IDX_OPTIONS.max_bytes = 0):
// 1 GiB, twenty times MNIST's training set. The header's claim is checked against it before
// anything is read, so a small gzip file cannot expand into gigabytes.
#define NB_IDX_DEFAULT_MAX_BYTES ((uint64_t)1 << 30)

// Optional limits for nb_idx_load_ex / nb_mnist_load_ex; a zeroed struct gives the defaults.
typedef struct nb_idx_options {
    // Number of classes the labels index (1 .. 256: uint8 labels); 0 means NB_MNIST_CLASSES.
    int64_t n_classes;
    // Read only the first `limit` samples (0: all). The rest of the file is never read or
    // decompressed (so data after them is not checked either).
    int64_t limit;
    // Largest image payload (samples kept x rows x cols bytes) accepted; 0 means
    // NB_IDX_DEFAULT_MAX_BYTES. A header claiming more fails with NB_ERR_FORMAT before any
    // allocation, naming the size and the limit.
    uint64_t max_bytes;
    // When non-NULL, polled between 1 MiB chunks of decompressed data: once it reads non-zero
    // (e.g. set by a SIGINT handler) the load stops with NB_ERR_STATE ("interrupted") within
    // milliseconds, leaving *out zeroed.
    const volatile sig_atomic_t *cancel;
} nb_idx_options;

// Loads an idx3-ubyte image file (n, rows, cols) and its idx1-ubyte label file (n); either may
// be gzip-compressed. Every header field, the exact payload length (short or trailing data),
// the count agreement and each label (< the options' n_classes, default NB_MNIST_CLASSES) are
// checked. The result is uint8 storage, samples (1, rows, cols) (so batches are (B, 1, rows,
// cols) for a convolution or flat (B, rows * cols)), uint8 labels. On failure *out is left
// zeroed and nothing leaks. Errors: NB_ERR_NULL, NB_ERR_IO, NB_ERR_FORMAT, NB_ERR_NOMEM.
// Only regular files are read: a FIFO, device or directory is refused (NB_ERR_IO) without
// blocking.
nb_status nb_idx_load(const char *images_path, const char *labels_path, nb_dataset *out);
// The same with limits (opts may be NULL: the defaults).
nb_status nb_idx_load_ex(const char *images_path, const char *labels_path,
                         const nb_idx_options *opts, nb_dataset *out);
// Loads "<dir>/<split>-images-idx3-ubyte[.gz]" and the matching labels, preferring the .gz
// name when both exist. split is "train" or "t10k" (else NB_ERR_ARG). Errors as nb_idx_load.
nb_status nb_mnist_load(const char *dir, const char *split, nb_dataset *out);
nb_status nb_mnist_load_ex(const char *dir, const char *split, const nb_idx_options *opts,
                           nb_dataset *out);
// Releases the storage, labels and targets and zeroes *ds. A zeroed or NULL dataset is a no-op.
void nb_dataset_free(nb_dataset *ds);

// ---- batches -------------------------------------------------------------------------------

// For the n samples idx[0..n): x := the samples (uint8 storage: v / 255) as (n, *sample_shape)
// or flat (n, sample numel); onehot := (n, n_classes) one-hot rows; labels := (n) NB_I32 class
// indices. x and onehot are NB_F32 or NB_F64; any of the three may be NULL (onehot and labels
// need class labels). Everything is checked before anything is written: NB_ERR_SHAPE /
// NB_ERR_DTYPE for a tensor that does not fit, NB_ERR_ARG for an index outside [0, ds->n),
// NB_ERR_STATE for a dataset that is empty, inconsistent or has no class labels. For a short
// last batch, wrap a (count, ...) view over the full tensors.
nb_status nb_dataset_fill_batch(const nb_dataset *ds, const int64_t *idx, int64_t n, nb_tensor *x,
                                nb_tensor *onehot, nb_tensor *labels);
// targets := the samples' targets as (n, *target shape) or flat (n, target numel), NB_F32 or
// NB_F64 (converted), checked as nb_dataset_fill_batch; NB_ERR_STATE without targets.
nb_status nb_dataset_fill_targets(const nb_dataset *ds, const int64_t *idx, int64_t n,
                                  nb_tensor *targets);
// out := (n, classes) NB_F32/NB_F64 with out[i, labels[i]] = 1, zeros elsewhere. A label
// outside [0, classes) is NB_ERR_ARG and leaves out untouched.
nb_status nb_one_hot(const int32_t *labels, int64_t n, int64_t classes, nb_tensor *out);

// ---- shuffling and splitting ---------------------------------------------------------------

// In-place Fisher-Yates shuffle of idx[0..n): every permutation equally likely given rng.
nb_status nb_shuffle(int64_t *idx, int64_t n, nb_rng *rng);
// Random disjoint split of 0..n-1: n_val indices into val (n_val), the other n - n_val into
// train (n - n_val), each list ascending. Deterministic given rng; allocates nothing.
// NB_ERR_ARG unless 0 <= n_val <= n.
nb_status nb_split_indices(int64_t n, int64_t n_val, nb_rng *rng, int64_t *train, int64_t *val);

// An iterator over `indices` (n of them; NULL means 0..n-1, copied) in batches of batch_size.
// With shuffle, each epoch visits them in a fresh Fisher-Yates order drawn from an rng seeded
// with `seed`, so epoch k's order depends only on (seed, k). Returns NULL and sets
// nb_last_error on n <= 0, batch_size <= 0 or out-of-memory. Caller owns it.
nb_batch_iter *nb_batch_iter_create(const int64_t *indices, int64_t n, int64_t batch_size,
                                    bool shuffle, uint64_t seed);
void nb_batch_iter_destroy(nb_batch_iter *it);
// Points *batch at the next up-to-batch_size indices (valid until the next call) and returns
// their count; the last batch of an epoch may be smaller. Returns 0 once at the end of each
// epoch, after which the next call starts the following epoch. 0 also for NULL arguments.
int64_t nb_batch_iter_next(nb_batch_iter *it, const int64_t **batch);
// Epochs completed so far (0 during the first).
int64_t nb_batch_iter_epoch(const nb_batch_iter *it);
// Batches per epoch: ceil(n / batch_size).
int64_t nb_batch_iter_num_batches(const nb_batch_iter *it);

#ifdef __cplusplus
}
#endif
#endif
