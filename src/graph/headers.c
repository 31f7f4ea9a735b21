// Headers of op-made tensors, kept apart from the arena so a stale pointer can always be told
// from a live one. The arena reuses its memory every step, so a header kept across
// nb_graph_reset used to be overwritten by the next step's header at the same address, which
// then passed every check (the stamp it read was the new one). Here headers are handed out
// from a large reserved range at ever-increasing addresses, across resets: the memory behind
// a pointer from an earlier step holds that step's header (an old epoch) or, once its pages
// are given back, zeros (epoch 0); neither matches a live epoch. Only after
// NB_HDR_RESERVE / sizeof(nb_tensor) headers (about 600 million) does the range wrap around.
//
// The range is reserved address space (MAP_NORESERVE): memory is only used for the pages of
// live steps. Every NB_HDR_RELEASE bytes of dead headers are replaced by fresh zero pages in
// one mmap call, which frees their memory and page tables; no allocation through the
// library's allocator, so a steady-state step still allocates nothing.
#define _DEFAULT_SOURCE // MAP_ANONYMOUS, MAP_NORESERVE

#include <string.h>
#include <sys/mman.h>

#include "graph/headers.h"
#include "graph/arena.h" // NB_POISON_BYTE

#define NB_HDR_RESERVE ((size_t)1 << 36) // 64 GiB of address space per graph
#define NB_HDR_MIN_RESERVE ((size_t)1 << 26)
#define NB_HDR_RELEASE ((size_t)1 << 21) // give dead pages back 2 MiB at a time

// Headers go to ever-new addresses, so every fresh 4 KiB page was a page fault (one per ~20
// op outputs): the recorded per-op overhead rose from 0.25 to 0.37 us (bench_overhead, 1 thread).
// Transparent huge pages make that one fault per 2 MiB (0.28 us). Advice only: where THP is
// off, madvise fails and nothing else changes.
static void huge_pages(void *p, size_t size) {
    (void)madvise(p, size, MADV_HUGEPAGE);
}

static void *reserve(size_t size) {
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    huge_pages(p, size);
    return p;
}

void nb__hdr_init(nb_hdr_pool *p) {
    memset(p, 0, sizeof *p);
    // Smaller reservations when address space is limited (ulimit -v); none at all falls back
    // to arena headers, the old behaviour (see nb__hdr_alloc).
    for (size_t size = NB_HDR_RESERVE; size >= NB_HDR_MIN_RESERVE && !p->base; size >>= 4) {
        p->base = reserve(size);
        p->size = p->base ? size : 0;
    }
}

void nb__hdr_free(nb_hdr_pool *p) {
    if (p->base)
        munmap(p->base, p->size);
    memset(p, 0, sizeof *p);
}

nb_tensor *nb__hdr_alloc(nb_hdr_pool *p) {
    if (!p->base)
        return NULL;
    if (p->size - p->next < sizeof(nb_tensor)) { // wrapped: the oldest headers are reused
        p->next = 0;
        p->released = 0;
    }
    nb_tensor *t = (nb_tensor *)(void *)(p->base + p->next);
    p->next += sizeof(nb_tensor);
    return t;
}

void nb__hdr_reset(nb_hdr_pool *p, bool poison) {
    if (!p->base)
        return;
    // Debug builds also poison the step's headers, as the arena's data (NB_POISON_EPOCH).
    if (poison && p->next > p->step_start)
        memset(p->base + p->step_start, NB_POISON_BYTE, p->next - p->step_start);
    p->step_start = p->next;
    // Whole NB_HDR_RELEASE blocks entirely before the next header are dead: replace them by
    // zero pages (reads give epoch 0), returning their memory.
    size_t end = p->next / NB_HDR_RELEASE * NB_HDR_RELEASE;
    if (end > p->released) {
        mmap(p->base + p->released, end - p->released, PROT_READ | PROT_WRITE,
             MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0);
        huge_pages(p->base + p->released, end - p->released); // a fresh mapping: advise again
        p->released = end;
    }
}
