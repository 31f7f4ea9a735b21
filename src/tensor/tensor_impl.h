// Library-private: the tensor struct and shape checking. Included by src/tensor, src/graph
// and src/ops; the allocator and error helpers are in base/base_impl.h.
#ifndef NABLA_TENSOR_IMPL_H
#define NABLA_TENSOR_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "base/base_impl.h"
#include "nabla/tensor.h"

struct nb_graph;

struct nb_tensor {
    nb_dtype dtype;
    int ndim;
    int64_t shape[NB_MAX_DIMS];
    int64_t numel;
    void *data; // numel elements of dtype
    void *grad; // same shape and dtype, or NULL until backward reaches it
    bool requires_grad;
    bool owns_data;         // user tensors from nb_tensor_create: data is ours to free
    struct nb_graph *graph; // owning graph for op outputs, NULL for user tensors
    int64_t node;           // index of the producing tape node, -1 for leaves
    uint64_t epoch;         // graph epoch at creation (detects use after nb_graph_reset), or
                            // NB_LEAF_EPOCH for tensors the user made
};

// nb_dtype_size inline, for the per-op paths (0 for an invalid dtype, as nb_dtype_size).
static inline size_t nb__dtype_size(nb_dtype dtype) {
    return dtype == NB_F32 || dtype == NB_I32 ? 4 : dtype == NB_F64 || dtype == NB_I64 ? 8 : 0;
}

// The epoch of user-made tensors. Graph epochs start above it; a released op-output header
// reads 0 and a poisoned one NB_POISON_EPOCH (graph/arena.h): neither is a leaf's.
#define NB_LEAF_EPOCH 1u

// Checks a shape (0 <= ndim <= NB_MAX_DIMS, dims >= 0, the product of the nonzero dims at most
// 2^60, so every product of some dims fits int64 even for an empty tensor) and computes numel.
// Writes a message into err (size n) on failure.
nb_status nb__shape_check(int ndim, const int64_t *shape, int64_t *numel, char *err, size_t n);

// nb__shape_check with its common case inline, for nb__record (every op output, per-op
// overhead): all dims positive and the product within the limit. Anything else (an empty dim,
// a negative one, an overflow, a bad ndim) goes to nb__shape_check for the verdict and message.
static inline nb_status nb__shape_check_fast(int ndim, const int64_t *shape, int64_t *numel,
                                             char *err, size_t n) {
    if (ndim >= 0 && ndim <= NB_MAX_DIMS) {
        int64_t count = 1;
        int i = 0;
        for (; i < ndim; i++)
            if (shape[i] <= 0 || __builtin_mul_overflow(count, shape[i], &count) ||
                count > INT64_MAX / 8)
                break;
        if (i == ndim) {
            *numel = count;
            return NB_OK;
        }
    }
    return nb__shape_check(ndim, shape, numel, err, n);
}

#endif
