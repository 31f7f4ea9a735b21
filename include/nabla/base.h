// nabla base: status codes, error messages, the pluggable allocator and thread settings.
// Functions that have no graph report errors as an nb_status plus a thread-local message
// (nb_last_error); ops report on their graph (see graph.h). Nothing here allocates.
#ifndef NABLA_BASE_H
#define NABLA_BASE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    NB_OK = 0,
    NB_ERR_NULL,      // a required pointer argument was NULL
    NB_ERR_SHAPE,     // shapes do not fit the operation
    NB_ERR_DTYPE,     // wrong or mixed dtypes
    NB_ERR_ARG,       // a value out of range (axis, size, hyper-parameter)
    NB_ERR_NOMEM,     // an allocation failed
    NB_ERR_STATE,     // call not valid in the object's current state
    NB_ERR_IO,        // a file could not be opened, read or written
    NB_ERR_FORMAT,    // a file's content is corrupt, truncated or of the wrong kind
    NB_ERR_NONFINITE, // NaN or Inf where a finite number was required
    NB_STATUS_COUNT
} nb_status;

// Short human-readable name of a status, e.g. "shape mismatch". Never NULL.
const char *nb_status_str(nb_status s);

// Message of the most recent failed call made on this thread that has no graph
// (tensor creation, file I/O, optimizer). Like errno: every function that can fail says so by
// its return value (an nb_status other than NB_OK, NULL, or NaN for nb_tensor_get), and only
// then is the message meaningful; a call that succeeds leaves it unchanged, so check the
// return value first, and clear it with nb_clear_last_error to tell later failures apart.
// Empty string if no call failed yet. Thread-local; owned by the library. Ops report on their
// graph instead (nb_graph_error).
const char *nb_last_error(void);
// Empties this thread's nb_last_error message.
void nb_clear_last_error(void);

// Replace the allocator used for every heap allocation the library makes (like libuv's
// uv_replace_allocator). Call before creating any object. Any NULL restores the default.
typedef void *(*nb_malloc_fn)(size_t size);
typedef void *(*nb_realloc_fn)(void *ptr, size_t size);
typedef void (*nb_free_fn)(void *ptr);
void nb_set_allocator(nb_malloc_fn m, nb_realloc_fn r, nb_free_fn f);

// Set the number of threads used by both the OpenMP elementwise kernels and OpenBLAS.
// n <= 0 means "number of cores". Returns the count now in effect.
int nb_set_num_threads(int n);
int nb_get_num_threads(void);

#ifdef __cplusplus
}
#endif
#endif
