// Library-private: the bump arena that owns every op-made tensor between graph resets.
#ifndef NABLA_ARENA_H
#define NABLA_ARENA_H

#include <stddef.h>

#include "tensor/tensor_impl.h"

// Every block is aligned to (and a multiple of) this many bytes, for SIMD/BLAS.
#define NB_ARENA_ALIGN 64
#define NB_ARENA_ROUND(n) (((n) + NB_ARENA_ALIGN - 1) & ~(size_t)(NB_ARENA_ALIGN - 1))

struct nb_chunk {
    struct nb_chunk *next;
    size_t size; // usable bytes after the aligned start
    size_t used;
    unsigned char *base; // first aligned byte
};

typedef struct nb_arena {
    struct nb_chunk *head; // newest chunk first
    int n_chunks;
    size_t in_use;     // bytes handed out since the last reset
    size_t high_water; // most bytes ever in use at once
} nb_arena;

void nb__arena_init(nb_arena *a);
// The slow path of nb__arena_alloc: a new chunk. n is already rounded.
void *nb__arena_grow(nb_arena *a, size_t n);
// 64-byte aligned block, valid until reset; NULL when out of memory. Not zeroed. Inline: a
// compare and a bump in the common case (several per op: per-op overhead, bench_overhead).
static inline void *nb__arena_alloc(nb_arena *a, size_t n) {
    n = n ? NB_ARENA_ROUND(n) : NB_ARENA_ALIGN;
    struct nb_chunk *c = a->head;
    if (!c || c->size - c->used < n)
        return nb__arena_grow(a, n);
    void *p = c->base + c->used;
    c->used += n;
    a->in_use += n;
    if (a->in_use > a->high_water)
        a->high_water = a->in_use;
    return p;
}
void nb__arena_reset(nb_arena *a);
void nb__arena_free(nb_arena *a);
// Fill every byte handed out since the last reset with NB_POISON_BYTE (debug builds).
void nb__arena_poison(nb_arena *a);

// A poisoned tensor header reads this epoch, which no live graph ever reaches.
#define NB_POISON_BYTE 0xDB
#define NB_POISON_EPOCH 0xDBDBDBDBDBDBDBDBull

#endif
