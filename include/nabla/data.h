// nabla data: datasets of N-D samples (images as (C, H, W), feature vectors, ...) stored as
// uint8 (compact: 47 MB for MNIST train; drawn as v / 255) or as float, with class labels (any
// number of classes) or float targets; MNIST-style IDX files (raw or gzip) load into one.
// Text corpora for language modelling (characters or bytes -> int32 tokens). Mini-batch
// filling, shuffling and train/validation splits. A dataset's buffers are the library's,
// released with nb_dataset_free; an nb_batch_iter is freed with its destroy.
// Every function reports failure as an nb_status with the message in nb_last_error().
//
//   nb_dataset ds;                                  // 500 RGB 32x32 images, 100 classes
//   nb_dataset_create(500, 3, (int64_t[]){3, 32, 32}, NB_DATA_U8, &ds);
//   memcpy(ds.images, pixels, 500 * 3 * 32 * 32);   // or nb_tensor_data(ds.samples) for float
//   nb_dataset_set_labels(&ds, labels, 100);      // (500) NB_I32 or NB_I64
//   nb_dataset_fill_batch(&ds, idx, 64, x /* (64, 3, 32, 32) f32 */, NULL, y /* (64) i32/i64 */);
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
    int64_t cols;      // image width: the sample's last dim
    int64_t n_classes; // every class label is in [0, n_classes); 0: no class labels
    uint8_t *images;   // uint8 storage: (n, sample numel) values 0..255, row-major; else NULL
    uint8_t *labels;   // (n) uint8 class labels as IDX files hold them (unless class_labels)
    // The general form. A dataset built by hand with only the fields above (sample_ndim 0)
    // means one (1, rows, cols) image per sample, uint8 labels: MNIST's layout.
    int sample_ndim;                       // rank of one sample, 1 .. NB_MAX_DIMS - 1
    int64_t sample_shape[NB_MAX_DIMS - 1]; // e.g. (C, H, W); IDX images: (1, rows, cols)
    nb_tensor *samples;      // float storage: (n, *sample_shape) NB_F32 / NB_F64; else NULL
    nb_tensor *class_labels; // (n) NB_I32 / NB_I64 class indices (instead of labels), or NULL
    nb_tensor *targets;      // (n, ...) NB_F32 / NB_F64 targets (e.g. regression), or NULL
} nb_dataset;

// A new dataset of n samples shaped sample_shape (sample_ndim dims, 1 .. NB_MAX_DIMS - 1, each
// >= 1), zero-filled storage of the given kind for the caller to fill (ds->images or
// nb_tensor_data(ds->samples)); no labels or targets yet. On failure *out is zeroed. Errors:
// NB_ERR_NULL, NB_ERR_ARG (n < 1, a bad rank, size or storage, a size that overflows),
// NB_ERR_NOMEM.
nb_status nb_dataset_create(int64_t n, int sample_ndim, const int64_t *sample_shape,
                            nb_data_storage storage, nb_dataset *out);
// Attaches class labels: labels is (n) NB_I32 or NB_I64 (PyTorch's dtype for labels), each in
// [0, n_classes), 1 <= n_classes < 2^31 for either dtype. Copied (dtype kept) into
// ds->class_labels, which then takes precedence over ds->labels (uint8
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
// or flat (n, sample numel); onehot := (n, n_classes) one-hot rows; labels := (n) NB_I32 or
// NB_I64 class indices (either, whatever dtype the dataset's labels have). x and onehot are NB_F32
// or NB_F64; any of the three may be NULL (onehot and labels need class labels). Everything is
// checked before anything is written: NB_ERR_SHAPE / NB_ERR_DTYPE for a tensor that does not fit,
// NB_ERR_ARG for an index outside [0, ds->n), NB_ERR_STATE for a dataset that is empty,
// inconsistent or has no class labels. For a short last batch, wrap a (count, ...) view over the
// full tensors.
nb_status nb_dataset_fill_batch(const nb_dataset *ds, const int64_t *idx, int64_t n, nb_tensor *x,
                                nb_tensor *onehot, nb_tensor *labels);
// targets := the samples' targets as (n, *target shape) or flat (n, target numel), NB_F32 or
// NB_F64 (converted), checked as nb_dataset_fill_batch; NB_ERR_STATE without targets.
nb_status nb_dataset_fill_targets(const nb_dataset *ds, const int64_t *idx, int64_t n,
                                  nb_tensor *targets);
// out := (n, classes) NB_F32/NB_F64 with out[i, labels[i]] = 1, zeros elsewhere. A label
// outside [0, classes) is NB_ERR_ARG and leaves out untouched.
nb_status nb_one_hot(const int32_t *labels, int64_t n, int64_t classes, nb_tensor *out);
// The same for int64 labels.
nb_status nb_one_hot_i64(const int64_t *labels, int64_t n, int64_t classes, nb_tensor *out);

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
// Where the iterator stands: epochs completed and batches handed out in the current epoch
// (num_batches once its last batch is out, until the 0 that ends it). Save both with a
// checkpoint to resume in the middle of an epoch.
void nb_batch_iter_position(const nb_batch_iter *it, int64_t *epoch, int64_t *batch);
// Moves the iterator forward to a position nb_batch_iter_position reported, on an iterator
// created alike (same indices, batch size, shuffle and seed): the batches that follow are those
// that followed there, as if nb_batch_iter_next had been called up to it. O(epochs x n).
// NB_ERR_ARG for a batch outside [0, num_batches] or a position behind the current one;
// NB_ERR_NULL for NULL.
nb_status nb_batch_iter_seek(nb_batch_iter *it, int64_t epoch, int64_t batch);
// Batches per epoch: ceil(n / batch_size).
int64_t nb_batch_iter_num_batches(const nb_batch_iter *it);

// ---- text corpora (language modelling) -----------------------------------------------------
//
// A corpus is read whole into memory and tokenised into ids: by default one id per UTF-8
// character (code point), with bytes = true one id per byte. The vocabulary is the sorted set of
// symbols that occur (ids ascend with the symbol), so the same text always gives the same ids.
// Training data are contiguous windows: window w (0 <= w < nb_text_windows) is the inputs
// tokens[w*T, w*T + T) with next-token targets tokens[w*T + 1, w*T + T + 1).
//
//   nb_text txt;
//   if (nb_text_load_dir("/usr/share/games/fortunes", NULL, &txt) != NB_OK) ... nb_last_error()
//   int64_t W = nb_text_windows(&txt, 64), nt, nv;
//   int64_t *train = malloc(W * sizeof *train), *val = malloc(W * sizeof *val);
//   nb_text_split(&txt, 64, 0.1, seed, train, &nt, val, &nv);  // 10 % of the windows
//   nb_batch_iter *it = nb_batch_iter_create(train, nt, 32, true, seed);
//   ... nb_text_fill_batch(&txt, 64, batch, count, x, y);     // x, y: (32, 64) NB_I32 / I64
//
// Checkpoints: save the vocabulary as a tensor, nb_vocab_to_tensor(&txt.vocab), registered as a
// buffer (e.g. "vocab", NB_BUFFER) of the model's nb_params, so it travels in the safetensors
// file next to the weights (PyTorch reads it as an int32 tensor of code points). On resume,
// read it back and compare with nb_vocab_check before loading the weights: a corpus whose
// vocabulary differs is refused naming both sizes and the first differing symbol. To run a
// saved model on new text, rebuild the vocabulary with nb_vocab_from_tensor and pass it as
// nb_text_options.vocab.

// Default cap on the corpus bytes one load reads (nb_text_options.max_bytes = 0): 256 MiB.
#define NB_TEXT_DEFAULT_MAX_BYTES ((uint64_t)256 << 20)
// Default cap on the number of distinct symbols (nb_text_options.max_vocab = 0).
#define NB_TEXT_DEFAULT_MAX_VOCAB 4096
// Most files nb_text_load_dir reads.
#define NB_TEXT_MAX_FILES 4096

// A vocabulary: id i stands for symbols[i], a Unicode code point (or a byte value 0..255 when
// bytes is set; below 128 both agree). symbols strictly ascend. Plain data; free with
// nb_vocab_free (or nb_text_free for a corpus's own).
typedef struct nb_vocab {
    int32_t size;     // number of ids, >= 1
    bool bytes;       // symbols are bytes, not code points
    int32_t *symbols; // (size)
} nb_vocab;

// A tokenised corpus. Free with nb_text_free.
typedef struct nb_text {
    int64_t n;       // number of tokens
    int32_t *tokens; // (n) ids in [0, vocab.size)
    nb_vocab vocab;
} nb_text;

// Options for the loaders; a zeroed struct (or NULL) gives the defaults.
typedef struct nb_text_options {
    bool bytes;         // one token per byte (vocabulary <= 256) instead of per UTF-8 character
    uint64_t max_bytes; // largest total corpus accepted, checked before reading; 0: the default
    int32_t max_vocab;  // most distinct symbols accepted; 0: NB_TEXT_DEFAULT_MAX_VOCAB
    // Non-NULL: tokenise with this vocabulary (e.g. one saved with a model; its `bytes` must
    // equal the option's) instead of building one; a symbol outside it fails naming the
    // symbol, the file and the offset. The vocabulary is copied into the result.
    const nb_vocab *vocab;
} nb_text_options;

// Reads the files paths[0..n_paths) in order as one corpus (their contents concatenated). Only
// regular files are read (a FIFO, device or directory is refused without blocking). Errors, with
// the file and byte offset in the message, *out left zeroed: NB_ERR_NULL, NB_ERR_ARG (n_paths <
// 1, bad options), NB_ERR_IO, NB_ERR_FORMAT (a NUL byte: binary data; invalid UTF-8 unless
// bytes; more symbols than max_vocab; a symbol not in opts->vocab; an empty corpus; more than
// max_bytes), NB_ERR_NOMEM.
nb_status nb_text_load(const char *const *paths, int n_paths, const nb_text_options *opts,
                       nb_text *out);
// Every regular file directly in dir, in byte order of their names, skipping names that start
// with '.' or end in ".dat" (the fortune(6) index files), symbolic links (Debian's fortunes
// ships "<name>.u8" links to the same files) and subdirectories. NB_ERR_FORMAT when no file is
// left or more than NB_TEXT_MAX_FILES are; otherwise as nb_text_load.
nb_status nb_text_load_dir(const char *dir, const nb_text_options *opts, nb_text *out);
// The same checks and tokenisation over bytes in memory; `name` (may be NULL) is used in
// messages.
nb_status nb_text_from_memory(const void *data, size_t len, const char *name,
                              const nb_text_options *opts, nb_text *out);
// Releases the tokens and the vocabulary and zeroes *t. NULL or zeroed is a no-op.
void nb_text_free(nb_text *t);

// Number of windows of T tokens with their targets: (n - 1) / T; 0 when n <= T or T < 1.
int64_t nb_text_windows(const nb_text *t, int64_t T);
// A seeded random split of the windows: round(val_fraction * W) of them (at least 1 when
// val_fraction > 0) into val, the rest into train, each list ascending; *n_train and *n_val get
// the counts. train and val need room for nb_text_windows(t, T) entries each. The same (corpus,
// T, val_fraction, seed) always gives the same split. Errors: NB_ERR_NULL; NB_ERR_ARG (T < 1,
// val_fraction outside [0, 1)); NB_ERR_FORMAT when the corpus is too short for one training
// window (and one validation window if asked), naming its length and T.
nb_status nb_text_split(const nb_text *t, int64_t T, double val_fraction, uint64_t seed,
                        int64_t *train, int64_t *n_train, int64_t *val, int64_t *n_val);
// x[i, :] := the inputs of window windows[i], y[i, :] := its targets, for 0 <= i < n. x and y
// are NB_I32 or NB_I64 tensors of shape (n, T) (either may be NULL, each its own dtype). Everything
// is checked before anything is written: NB_ERR_SHAPE / NB_ERR_DTYPE for a tensor that does not
// fit, NB_ERR_ARG for a window outside [0, nb_text_windows(t, T)).
nb_status nb_text_fill_batch(const nb_text *t, int64_t T, const int64_t *windows, int64_t n,
                             nb_tensor *x, nb_tensor *y);

// Writes the text of ids[0..n) into buf as UTF-8 (raw bytes for a bytes vocabulary), always
// NUL-terminated when cap > 0 (truncated at a symbol boundary if it does not fit). Returns the
// bytes the whole text needs (without the NUL), or -1 with nb_last_error for a NULL argument
// or an id outside [0, v->size).
int64_t nb_vocab_decode(const nb_vocab *v, const int32_t *ids, int64_t n, char *buf, size_t cap);
// Tokenises s[0..len) with v into ids (room for cap). Returns the token count (which may exceed
// cap: only cap are written), or -1 with nb_last_error (invalid UTF-8, a symbol not in v).
int64_t nb_vocab_encode(const nb_vocab *v, const char *s, size_t len, int32_t *ids, int64_t cap);
// A new NB_I32 tensor (v->size) holding the symbols, for checkpoints; NULL with nb_last_error.
nb_tensor *nb_vocab_to_tensor(const nb_vocab *v);
// Rebuilds a vocabulary from such a tensor (NB_I32, 1-D, non-empty, strictly ascending, valid
// code points -- bytes: 0..255). *out zeroed on error (NB_ERR_NULL/DTYPE/SHAPE/FORMAT/NOMEM).
nb_status nb_vocab_from_tensor(const nb_tensor *t, bool bytes, nb_vocab *out);
// NB_OK when the saved tensor holds exactly v's symbols; otherwise NB_ERR_FORMAT (NB_ERR_DTYPE
// for a tensor that is not 1-D NB_I32) with a message naming both sizes and the first id where
// they differ, e.g. "vocabulary mismatch: checkpoint has 97 symbols, corpus 98; id 40 is 'G'
// in the checkpoint, 'F' in the corpus".
nb_status nb_vocab_check(const nb_vocab *v, const nb_tensor *saved);
// Frees v->symbols and zeroes *v. NULL is a no-op.
void nb_vocab_free(nb_vocab *v);

#ifdef __cplusplus
}
#endif
#endif
