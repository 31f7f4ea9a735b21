// nabla data: MNIST-style IDX datasets (raw or gzip), mini-batch filling, shuffling and
// train/validation splits. A loaded nb_dataset keeps its pixels as uint8 (compact: 47 MB for
// MNIST train) and batches are converted to float as they are drawn. The dataset's buffers are
// the caller's, released with nb_dataset_free; an nb_batch_iter is freed with its destroy.
// Every function reports failure as an nb_status with the message in nb_last_error().
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

// Number of classes in MNIST and Fashion-MNIST; loading rejects labels >= this.
#define NB_MNIST_CLASSES 10

// A labelled image set. Plain data: fields may be read directly; do not free them yourself.
typedef struct nb_dataset {
    int64_t n;         // number of samples (> 0 once loaded)
    int64_t rows;      // image height
    int64_t cols;      // image width; features per sample = rows * cols
    int64_t n_classes; // every label is in [0, n_classes)
    uint8_t *images;   // (n, rows * cols) pixels 0..255, row-major
    uint8_t *labels;   // (n)
} nb_dataset;

// Shuffled (or ordered) mini-batches over a set of sample indices; opaque.
typedef struct nb_batch_iter nb_batch_iter;

// ---- loading -------------------------------------------------------------------------------

// Default cap on the image bytes one load may hold in memory (NB_IDX_OPTIONS.max_bytes = 0):
// 1 GiB, twenty times MNIST's training set. The header's claim is checked against it before
// anything is read, so a small gzip file cannot expand into gigabytes.
#define NB_IDX_DEFAULT_MAX_BYTES ((uint64_t)1 << 30)

// Optional limits for nb_idx_load_ex / nb_mnist_load_ex; a zeroed struct gives the defaults.
typedef struct nb_idx_options {
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
// the count agreement and each label (< NB_MNIST_CLASSES) are checked. On failure *out is left
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
// Releases the buffers and zeroes *ds. A zeroed or NULL dataset is a no-op.
void nb_dataset_free(nb_dataset *ds);

// ---- batches -------------------------------------------------------------------------------

// For the n samples idx[0..n): x := pixels / 255 as (n, rows*cols) or (n, 1, rows, cols),
// onehot := (n, n_classes) one-hot rows, labels := (n) NB_I32 class indices. x and onehot are
// NB_F32 or NB_F64; any of the three may be NULL. Everything is checked before anything is
// written: NB_ERR_SHAPE / NB_ERR_DTYPE for a tensor that does not fit, NB_ERR_ARG for an index
// outside [0, ds->n). For a short last batch, wrap a (count, ...) view over the full tensors.
nb_status nb_dataset_fill_batch(const nb_dataset *ds, const int64_t *idx, int64_t n, nb_tensor *x,
                                nb_tensor *onehot, nb_tensor *labels);
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
