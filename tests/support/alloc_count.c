#include "alloc_count.h"

#include <stdlib.h>

#include "nabla.h"

static long n_allocs;

static void *count_malloc(size_t n) {
    n_allocs++;
    return malloc(n);
}

static void *count_realloc(void *p, size_t n) {
    n_allocs++;
    return realloc(p, n);
}

void tc_count_allocs_start(void) {
    nb_set_allocator(count_malloc, count_realloc, free);
}

long tc_allocs(void) {
    return n_allocs;
}

void tc_count_allocs_stop(void) {
    nb_set_allocator(NULL, NULL, NULL);
}
