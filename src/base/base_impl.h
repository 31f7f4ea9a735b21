// Library-private: the allocator and error plumbing every module shares, below tensors in the
// dependency order (needs only nabla/base.h). optim, data and io include this, not the tensor
// internals.
#ifndef NABLA_BASE_IMPL_H
#define NABLA_BASE_IMPL_H

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include "nabla/base.h"

// The pluggable allocator (base.c). Every library allocation goes through these.
void *nb__malloc(size_t n);
void *nb__calloc(size_t count, size_t size);
void *nb__realloc(void *p, size_t n);
void nb__free(void *p);
// Zeroed count x size bytes at a 64-byte boundary (NB_ALIGN); only nb__free_aligned frees them.
#define NB_ALIGN 64
void *nb__calloc_aligned(size_t count, size_t size);
void nb__free_aligned(void *p);

// Record the thread-local message read by nb_last_error; returns code. printf-style.
nb_status nb__set_last_error(nb_status code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

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
// block: NB_SHAPE_STR(t) is usable directly as a printf argument. Needs nabla/tensor.h (the
// public nb_tensor_shape_str) where it is used.
#define NB_SHAPE_STR(t) nb_tensor_shape_str((t), (char[96]){0}, 96)

#endif
