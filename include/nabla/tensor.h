// nabla tensors: contiguous row-major arrays of float32 or float64 (int32 / int64 for indices),
// with an optional gradient buffer of the same shape and dtype, plus the explicit random
// generator and weight initialisers. Tensors made by nb_tensor_create* / nb_tensor_wrap are the
// caller's and are freed with nb_tensor_destroy; tensors returned by ops belong to their graph.
#ifndef NABLA_TENSOR_H
#define NABLA_TENSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nabla/base.h"

#ifdef __cplusplus
extern "C" {
#endif

#define NB_MAX_DIMS 6

typedef enum {
    NB_F32 = 0, // float: training speed
    NB_F64,     // double: gradient checks and reference runs
    NB_I32,     // int32: class indices (labels for sparse cross-entropy); not differentiable
    NB_I64,     // int64: the same, as PyTorch stores them; accepted wherever int32 indices are
    NB_DTYPE_COUNT
} nb_dtype;

typedef struct nb_tensor nb_tensor;

// Explicit random generator (xoshiro256**, seeded with splitmix64). A plain value: copy it to
// fork a stream. Same seed -> same sequence on every machine.
typedef struct nb_rng {
    uint64_t s[4];
} nb_rng;

// ---- lifecycle ---------------------------------------------------------------------------

// New zero-filled tensor of `ndim` dims (0 <= ndim <= NB_MAX_DIMS; ndim 0 is a scalar). Dims
// are >= 0 and the nonzero ones multiply to at most 2^60, for an empty tensor too (PyTorch also
// refuses (2^40, 2^40, 0)). Returns NULL and sets nb_last_error on a bad shape, dtype or
// out-of-memory. Caller owns it.
nb_tensor *nb_tensor_create(nb_dtype dtype, int ndim, const int64_t *shape);
// Same, then copies numel elements of `dtype` from `data`.
nb_tensor *nb_tensor_from_data(nb_dtype dtype, int ndim, const int64_t *shape, const void *data);
// A tensor header over the caller's buffer (not copied, not freed): the caller keeps `data`
// alive and correctly sized (numel elements of dtype) for the tensor's lifetime.
nb_tensor *nb_tensor_wrap(nb_dtype dtype, int ndim, const int64_t *shape, void *data);
// Frees a tensor the caller created (and its grad). NULL is a no-op (NB_OK). Destroying a
// graph-owned tensor is refused (NB_ERR_STATE, nb_last_error) since the graph frees it.
nb_status nb_tensor_destroy(nb_tensor *t);

// ---- accessors -----------------------------------------------------------------------------

nb_dtype nb_tensor_dtype(const nb_tensor *t);
int nb_tensor_ndim(const nb_tensor *t);
// Size of dim i; negative i counts from the end. 0 if out of range.
int64_t nb_tensor_dim(const nb_tensor *t, int i);
const int64_t *nb_tensor_shape(const nb_tensor *t);
int64_t nb_tensor_numel(const nb_tensor *t);
// Size of one element in bytes (4 or 8).
size_t nb_dtype_size(nb_dtype dtype);
const char *nb_dtype_name(nb_dtype dtype);

// Raw data; the typed forms return NULL when the dtype differs.
void *nb_tensor_data(nb_tensor *t);
float *nb_tensor_data_f32(nb_tensor *t);
double *nb_tensor_data_f64(nb_tensor *t);
int32_t *nb_tensor_data_i32(nb_tensor *t);
int64_t *nb_tensor_data_i64(nb_tensor *t);
// Gradient buffer, NULL until a backward pass has reached the tensor.
void *nb_tensor_grad(nb_tensor *t);
float *nb_tensor_grad_f32(nb_tensor *t);
double *nb_tensor_grad_f64(nb_tensor *t);

// Element i of the flat (row-major) data or grad, converted to double. A NULL tensor or i
// outside [0, numel) gives NaN and sets nb_last_error; a grad not allocated yet reads as 0.
double nb_tensor_get(const nb_tensor *t, int64_t i);
double nb_tensor_grad_get(const nb_tensor *t, int64_t i);
// data[i] := v. NB_ERR_NULL for a NULL tensor, NB_ERR_ARG (tensor unchanged) for i outside
// [0, numel) or a value an int32 tensor cannot hold.
nb_status nb_tensor_set(nb_tensor *t, int64_t i, double v);

// Mark a leaf tensor as a parameter whose gradient backward must compute. Refused
// (NB_ERR_DTYPE) for NB_I32 and NB_I64.
nb_status nb_tensor_set_requires_grad(nb_tensor *t, bool requires_grad);
bool nb_tensor_requires_grad(const nb_tensor *t);
// True for tensors the caller created (parameters, inputs); false for op outputs, which belong
// to their graph.
bool nb_tensor_is_leaf(const nb_tensor *t);

// Writes the shape as "(64, 784)" into buf (always NUL-terminated); returns buf.
char *nb_tensor_shape_str(const nb_tensor *t, char *buf, size_t size);

// ---- data movement ----------------------------------------------------------------------------

// Every element := v. NB_ERR_NULL for a NULL tensor, NB_ERR_ARG (unchanged) for a value an
// int32 tensor cannot hold.
nb_status nb_tensor_fill(nb_tensor *t, double v);
// Copy n = numel elements from `src` (given in src_dtype, converted) into t, or out of t.
nb_status nb_tensor_copy_in(nb_tensor *t, const void *src, nb_dtype src_dtype, int64_t n);
nb_status nb_tensor_copy_out(const nb_tensor *t, void *dst, nb_dtype dst_dtype, int64_t n);
// dst := src; same numel required, dtypes may differ (converted).
nb_status nb_tensor_copy(nb_tensor *dst, const nb_tensor *src);
// grad := 0 (no-op if the grad was never allocated).
void nb_tensor_zero_grad(nb_tensor *t);

// ---- random numbers and initialisers -----------------------------------------------------------

void nb_rng_seed(nb_rng *rng, uint64_t seed);
uint64_t nb_rng_u64(nb_rng *rng);
// Uniform in [0, 1) with 53 random bits.
double nb_rng_uniform(nb_rng *rng);
// Standard normal (Box-Muller).
double nb_rng_normal(nb_rng *rng);
// Uniform integer in [0, n), unbiased. n must be > 0.
uint64_t nb_rng_below(nb_rng *rng, uint64_t n);

// Initialisers fill t in place. fan_in / fan_out follow the (out, in) weight layout:
// fan_out = shape[0], fan_in = product of the remaining dims (1 for a 1-D tensor).
nb_status nb_init_uniform(nb_tensor *t, nb_rng *rng, double lo, double hi);
nb_status nb_init_normal(nb_tensor *t, nb_rng *rng, double mean, double stddev);
// Glorot: U(-a, a), a = sqrt(6 / (fan_in + fan_out)).
nb_status nb_init_xavier_uniform(nb_tensor *t, nb_rng *rng);
// Glorot: N(0, 2 / (fan_in + fan_out)).
nb_status nb_init_xavier_normal(nb_tensor *t, nb_rng *rng);
// He/Kaiming for ReLU: U(-a, a), a = sqrt(6 / fan_in).
nb_status nb_init_he_uniform(nb_tensor *t, nb_rng *rng);
// He/Kaiming for ReLU: N(0, 2 / fan_in).
nb_status nb_init_he_normal(nb_tensor *t, nb_rng *rng);

#ifdef __cplusplus
}
#endif
#endif
