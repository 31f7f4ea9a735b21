// The graph arena: chunked bump allocation that grows without limit. On reset, a multi-chunk
// arena is replaced by one chunk of the high-water size, so after the first step (warm-up) a
// step of the same shape allocates nothing. Every block is 64-byte aligned for SIMD/BLAS.
#include <string.h>

#include "graph/arena.h"

#define ARENA_ALIGN NB_ARENA_ALIGN
#define ARENA_MIN_CHUNK (1u << 20)

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
