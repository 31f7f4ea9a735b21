// Status strings, the thread-local last-error message, the pluggable allocator and threads.
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base_impl.h"

#ifdef _OPENMP
#include <omp.h>
#endif
#include <cblas.h>

static nb_malloc_fn alloc_malloc = malloc;
static nb_realloc_fn alloc_realloc = realloc;
static nb_free_fn alloc_free = free;
static _Thread_local char last_error[512];

const char *nb_status_str(nb_status s) {
    static const char *const names[NB_STATUS_COUNT] = {
        [NB_OK] = "ok",
        [NB_ERR_NULL] = "NULL argument",
        [NB_ERR_SHAPE] = "shape mismatch",
        [NB_ERR_DTYPE] = "dtype mismatch",
        [NB_ERR_ARG] = "invalid argument",
        [NB_ERR_NOMEM] = "out of memory",
        [NB_ERR_STATE] = "invalid state",
        [NB_ERR_IO] = "I/O error",
        [NB_ERR_FORMAT] = "bad file format",
        [NB_ERR_NONFINITE] = "non-finite value",
    };
    return ((unsigned)s < NB_STATUS_COUNT) ? names[s] : "unknown status";
}

const char *nb_last_error(void) {
    return last_error;
}

void nb_clear_last_error(void) {
    last_error[0] = '\0';
}

nb_status nb__set_last_error(nb_status code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return code;
}

void nb_set_allocator(nb_malloc_fn m, nb_realloc_fn r, nb_free_fn f) {
    if (!m || !r || !f) {
        m = malloc;
        r = realloc;
        f = free;
    }
    alloc_malloc = m;
    alloc_realloc = r;
    alloc_free = f;
}

void *nb__malloc(size_t n) {
    return alloc_malloc(n ? n : 1);
}
void *nb__realloc(void *p, size_t n) {
    return alloc_realloc(p, n ? n : 1);
}
void nb__free(void *p) {
    if (p)
        alloc_free(p);
}
void *nb__calloc(size_t count, size_t size) {
    if (size && count > SIZE_MAX / size)
        return NULL;
    void *p = nb__malloc(count * size);
    if (p)
        memset(p, 0, count * size);
    return p;
}

// Zeroed, and 64-byte aligned (a cache line, an AVX-512 vector) through the caller's allocator:
// the block is over-allocated and the pointer malloc gave is kept just below the aligned one.
// Tensor data and leaf grads come from here: with malloc's 16-byte alignment charlm's weights
// and weight grads started 16-32 bytes into a line, and linear's tiles then split vector loads
// across two lines (dx 3-8 % slower in a microbenchmark). Freed by nb__free_aligned.
void *nb__calloc_aligned(size_t count, size_t size) {
    const size_t extra = NB_ALIGN + sizeof(void *);
    if (size && count > (SIZE_MAX - extra) / size)
        return NULL;
    char *raw = nb__malloc(count * size + extra);
    if (!raw)
        return NULL;
    uintptr_t a = ((uintptr_t)raw + sizeof(void *) + NB_ALIGN - 1) & ~(uintptr_t)(NB_ALIGN - 1);
    void *p = (void *)a;
    ((void **)p)[-1] = raw;
    memset(p, 0, count * size);
    return p;
}
void nb__free_aligned(void *p) {
    if (p)
        nb__free(((void **)p)[-1]);
}

int nb_set_num_threads(int n) {
#ifdef _OPENMP
    if (n <= 0)
        n = omp_get_num_procs();
    omp_set_num_threads(n);
#else
    if (n <= 0)
        n = 1;
#endif
    openblas_set_num_threads(n);
    return nb_get_num_threads();
}

int nb_get_num_threads(void) {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}
