// Library-private: the typed kernels of the elementwise ops, callable without a graph or a
// tape (benchmarks time a kernel alone, tests call one directly). Kernels read and write
// contiguous buffers of one dtype (NB_F32 or NB_F64) and never allocate. Below tensors in the
// dependency order: this header needs only the tensor type and the OpenMP threshold.
#ifndef NABLA_OPS_KERNELS_H
#define NABLA_OPS_KERNELS_H

#include <stdint.h>

#include "nabla/tensor.h"
#include "tensor/parallel.h" // NB_OMP_MIN: kernels with more elements use the OpenMP team

// Unary pointwise ops (pointwise.c): y = f(x) and gx += gy f'(x) over n elements; p is the
// op's scalar parameter (leaky_relu's slope, elu's alpha, scale's c), ignored by the others.
typedef struct nb_unary_kernels {
    const char *name; // the op name, e.g. "relu"
    void (*fwd)(nb_dtype dt, const void *x, void *y, int64_t n, double p);
    void (*bwd)(nb_dtype dt, const void *x, const void *y, const void *gy, void *gx, int64_t n,
                double p);
    // The same with gx = dy · f' (a store: gx's first write in nb_backward, nb__grad_first).
    void (*bwd_set)(nb_dtype dt, const void *x, const void *y, const void *gy, void *gx, int64_t n,
                    double p);
} nb_unary_kernels;

// Broadcasting binary ops (binary.c): y = a ∘ b, with y shaped by NumPy broadcasting of a and
// b (as nb_add computes it); backward adds dy ∂y/∂a into ga and dy ∂y/∂b into gb (each the
// size of its operand, skipped when NULL), summing over broadcast dims.
typedef struct nb_binary_kernels {
    const char *name; // "add", "sub", "mul" or "div"
    void (*fwd)(const nb_tensor *a, const nb_tensor *b, nb_tensor *y);
    void (*bwd)(const nb_tensor *a, const nb_tensor *b, const nb_tensor *y, const void *gy,
                void *ga, void *gb);
} nb_binary_kernels;

// The kernels of the op with this name, or NULL if it is not a unary pointwise / binary op.
const nb_unary_kernels *nb__unary_kernels(const char *name);
const nb_binary_kernels *nb__binary_kernels(const char *name);

#endif
