// Library-private: the bump arena that owns every op-made tensor between graph resets.
#ifndef NABLA_ARENA_H
#define NABLA_ARENA_H

#include <stddef.h>

#include "tensor/tensor_impl.h"

typedef struct nb_arena {
    struct nb_chunk *head; // newest chunk first
    int n_chunks;
    size_t in_use;     // bytes handed out since the last reset
    size_t high_water; // most bytes ever in use at once
} nb_arena;

void nb__arena_init(nb_arena *a);
// 64-byte aligned block, valid until reset; NULL when out of memory. Not zeroed.
void *nb__arena_alloc(nb_arena *a, size_t n);
void nb__arena_reset(nb_arena *a);
void nb__arena_free(nb_arena *a);
// Fill every byte handed out since the last reset with NB_POISON_BYTE (debug builds).
void nb__arena_poison(nb_arena *a);

// A poisoned tensor header reads this epoch, which no live graph ever reaches.
#define NB_POISON_BYTE 0xDB
#define NB_POISON_EPOCH 0xDBDBDBDBDBDBDBDBull

#endif
