// The graph arena: chunked bump allocation that grows without limit. On reset, a multi-chunk
// arena is replaced by one chunk of the high-water size, so after the first step (warm-up) a
// step of the same shape allocates nothing. Every block is 64-byte aligned for SIMD/BLAS.
#define _GNU_SOURCE // MADV_HUGEPAGE

#include <string.h>
#ifdef __linux__
#include <sys/mman.h>
#endif

#include "graph/arena.h"

#define ARENA_ALIGN NB_ARENA_ALIGN
#define ARENA_MIN_CHUNK (1u << 20)
// A step's arena is far larger than the caches (charlm's: 86 MB of outputs and grads), so
// nearly every kernel streams it from DRAM; with 4 KiB pages the hardware prefetchers stop at
// each page boundary and every page costs a TLB miss. Chunks of HUGE_MIN bytes and more ask for
// transparent huge pages (the 2 MiB-aligned part of the chunk; only our own pages): the charlm
// step at 1 thread took 1.9 ms (~5 %) less (/tmp A/B, bench_charlm, medians of 5 pairs). Advice
// only: where THP is off or the memory is not anonymous, madvise fails and nothing changes.
#define HUGE_PAGE ((uintptr_t)2 << 20)
#define HUGE_MIN ((size_t)8 << 20)

static struct nb_chunk *chunk_new(size_t size) {
    // One allocation: header, alignment slack, payload.
    struct nb_chunk *c = nb__malloc(sizeof *c + ARENA_ALIGN + size);
    if (!c)
        return NULL;
    uintptr_t p = (uintptr_t)(c + 1);
    p = (p + ARENA_ALIGN - 1) & ~(uintptr_t)(ARENA_ALIGN - 1);
    c->base = (unsigned char *)p;
    c->next = NULL;
    c->size = size;
    c->used = 0;
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    if (size >= HUGE_MIN) {
        uintptr_t lo = ((uintptr_t)c->base + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1);
        uintptr_t hi = ((uintptr_t)c->base + size) & ~(uintptr_t)(HUGE_PAGE - 1);
        if (hi > lo)
            (void)madvise((void *)lo, hi - lo, MADV_HUGEPAGE);
    }
#endif
    return c;
}

void nb__arena_init(nb_arena *a) {
    memset(a, 0, sizeof *a);
}

void *nb__arena_grow(nb_arena *a, size_t n) {
    struct nb_chunk *c = a->head;
    size_t size = c ? c->size * 2 : ARENA_MIN_CHUNK;
    if (size < n)
        size = n;
    struct nb_chunk *fresh = chunk_new(size);
    if (!fresh)
        return NULL;
    fresh->next = c;
    a->head = fresh;
    a->n_chunks++;
    c = fresh;
    void *p = c->base + c->used;
    c->used += n;
    a->in_use += n;
    if (a->in_use > a->high_water)
        a->high_water = a->in_use;
    return p;
}

static void free_chunks(struct nb_chunk *c) {
    while (c) {
        struct nb_chunk *next = c->next;
        nb__free(c);
        c = next;
    }
}

void nb__arena_reset(nb_arena *a) {
    if (a->n_chunks > 1) {
        // Consolidate: one chunk big enough for the whole last step. If that allocation
        // fails we simply keep the old chunks.
        struct nb_chunk *one = chunk_new(a->high_water);
        if (one) {
            free_chunks(a->head);
            a->head = one;
            a->n_chunks = 1;
        }
    }
    for (struct nb_chunk *c = a->head; c; c = c->next)
        c->used = 0;
    a->in_use = 0;
}

void nb__arena_free(nb_arena *a) {
    free_chunks(a->head);
    nb__arena_init(a);
}

void nb__arena_poison(nb_arena *a) {
    for (struct nb_chunk *c = a->head; c; c = c->next)
        memset(c->base, NB_POISON_BYTE, c->used);
}
