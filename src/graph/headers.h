// Library-private: where op-made tensor headers live (headers.c). Apart from the arena, at
// addresses never reused across nb_graph_reset, so stale pointers stay detectable.
#ifndef NABLA_HEADERS_H
#define NABLA_HEADERS_H

#include <stdbool.h>
#include <stddef.h>

#include "tensor/tensor_impl.h"

typedef struct nb_hdr_pool {
    unsigned char *base; // reserved address range; NULL when none could be reserved
    size_t size;         // bytes reserved
    size_t next;         // offset of the next header
    size_t step_start;   // offset of the current step's first header
    size_t released;     // [0, released) has been taken away (reads as zeros)
    size_t ready;        // blocks up to here were moved ahead for the next headers
} nb_hdr_pool;

void nb__hdr_init(nb_hdr_pool *p);
void nb__hdr_free(nb_hdr_pool *p);
// A header for a new op output, or NULL when the pool has no range (the caller then uses
// the arena, as before). Not zeroed. Inline: one per op (per-op overhead, bench_overhead).
static inline nb_tensor *nb__hdr_alloc(nb_hdr_pool *p) {
    if (!p->base)
        return NULL;
    if (p->size - p->next < sizeof(nb_tensor)) { // wrapped: the oldest headers are reused
        p->next = 0;
        p->released = 0;
        p->ready = 0;
    }
    nb_tensor *t = (nb_tensor *)(void *)(p->base + p->next);
    p->next += sizeof(nb_tensor);
    return t;
}
// Dead headers are taken away NB_HDR_BLOCK bytes (one huge page) at a time.
#define NB_HDR_BLOCK ((size_t)1 << 21)

// The rest of nb__hdr_reset: poisons, takes whole dead blocks away (headers.c).
void nb__hdr_release(nb_hdr_pool *p, bool poison);
// End of a step: its headers are dead (poisoned first when `poison`, in debug builds). Inline
// for the common case, a step that completed no new block: nothing to release (one per reset).
static inline void nb__hdr_reset(nb_hdr_pool *p, bool poison) {
    if (!poison && p->next / NB_HDR_BLOCK * NB_HDR_BLOCK <= p->released) {
        p->step_start = p->next;
        return;
    }
    nb__hdr_release(p, poison);
}

#endif
