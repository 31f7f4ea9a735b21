// Library-private: the tensor struct and the allocator/error plumbing every module shares.
// Included by src/tensor, src/graph and src/ops only; everything else uses the public header.
#ifndef NABLA_TENSOR_IMPL_H
#define NABLA_TENSOR_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

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
    uint64_t epoch;         // graph epoch at creation: detects use after nb_graph_reset
};

// The pluggable allocator (base.c). Every library allocation goes through these.
void *nb__malloc(size_t n);
void *nb__calloc(size_t count, size_t size);
void *nb__realloc(void *p, size_t n);
void nb__free(void *p);

// Record the thread-local message for graph-less calls; returns code. printf-style.
nb_status nb__set_last_error(nb_status code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

// Checks a shape (0 <= ndim <= NB_MAX_DIMS, dims >= 0, numel fits int64 and memory) and
// computes numel. Writes a message into err (size n) on failure.
nb_status nb__shape_check(int ndim, const int64_t *shape, int64_t *numel, char *err, size_t n);

// Internal invariant check: stays on in release builds, reports file:line, then aborts.
// Library bugs only, never user input.
#define NB_ASSERT(cond)                                                                            \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "nabla: internal error at %s:%d: %s\n", __FILE__, __LINE__, #cond);    \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

// "(64, 784)" into a caller buffer; with a compound literal the buffer lives in the caller's
// block: NB_SHAPE_STR(t) is usable directly as a printf argument.
#define NB_SHAPE_STR(t) nb_tensor_shape_str((t), (char[96]){0}, 96)

#endif
