// Headers of op-made tensors, kept apart from the arena so a stale pointer can always be told
// from a live one. The arena reuses its memory every step, so a header kept across
// nb_graph_reset used to be overwritten by the next step's header at the same address, which
// then passed every check (the stamp it read was the new one). Here headers are handed out
// from a large reserved range at ever-increasing addresses, across resets: the memory behind
// a pointer from an earlier step holds that step's header (an old epoch) or, once its pages
// are taken away, zeros (epoch 0); neither matches a live epoch. Only after
// NB_HDR_RESERVE / sizeof(nb_tensor) headers (about 500 million) does the range wrap around.
//
// The range is reserved address space (MAP_NORESERVE): memory is only used for the pages of
// live steps. Whole NB_HDR_BLOCK blocks of dead headers are taken away from their addresses in
// one system call each: their pages are moved ahead of the next header (mremap with
// MREMAP_DONTUNMAP, which leaves the old range mapped and reading zeros), where the next steps
// write their headers into memory that is already there, or, beyond what a step needs,
// replaced by fresh zero pages, which frees them. No allocation through the library's
// allocator, so a steady-state step still allocates nothing.
#define _GNU_SOURCE // MAP_ANONYMOUS, MAP_NORESERVE, mremap

#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#include "graph/headers.h"
#include "graph/arena.h" // NB_POISON_BYTE

#define NB_HDR_RESERVE ((size_t)1 << 36) // 64 GiB of address space per graph
#define NB_HDR_MIN_RESERVE ((size_t)1 << 26)

#ifndef MREMAP_DONTUNMAP // Linux 5.7; older kernels refuse the flag and get fresh pages instead
#define MREMAP_DONTUNMAP 4
#endif

// Headers go to ever-new addresses, so every fresh 4 KiB page was a page fault (one per ~20
// op outputs): the recorded per-op overhead rose from 0.25 to 0.37 us (bench_overhead, 1 thread).
// Transparent huge pages make that one fault per 2 MiB (0.28 us); moving dead pages ahead
// instead of faulting in (and zeroing) new ones took the rest. Advice only: where THP is
// off, madvise fails and nothing else changes.
static void huge_pages(void *p, size_t size) {
    (void)madvise(p, size, MADV_HUGEPAGE);
}

static size_t block_up(size_t x) {
    return (x + NB_HDR_BLOCK - 1) / NB_HDR_BLOCK * NB_HDR_BLOCK;
}

// `size` bytes of address space starting on a block boundary, so blocks are huge pages.
static unsigned char *reserve(size_t size) {
    unsigned char *p = mmap(NULL, size + NB_HDR_BLOCK, PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    size_t lead = block_up((size_t)(uintptr_t)p) - (size_t)(uintptr_t)p;
    if (lead)
        munmap(p, lead);
    munmap(p + lead + size, NB_HDR_BLOCK - lead);
    huge_pages(p + lead, size);
    return p + lead;
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

void nb__hdr_release(nb_hdr_pool *p, bool poison) {
    if (!p->base)
        return;
    // Debug builds also poison the step's headers, as the arena's data (NB_POISON_EPOCH).
    if (poison && p->next > p->step_start)
        memset(p->base + p->step_start, NB_POISON_BYTE, p->next - p->step_start);
    size_t step = p->next >= p->step_start ? p->next - p->step_start : p->next; // wrapped
    p->step_start = p->next;
    // Whole blocks entirely before the next header are dead: their addresses must read zeros
    // (epoch 0) from now on.
    size_t end = p->next / NB_HDR_BLOCK * NB_HDR_BLOCK;
    if (end <= p->released)
        return;
    // Keep up to a step's worth of headers (at least two blocks) ready ahead: the blocks after
    // the one being written, [ahead, ready) already moved there, nothing written to them yet.
    size_t ahead = block_up(p->next);
    size_t have = p->ready > ahead ? p->ready - ahead : 0;
    ahead += have;
    size_t want = block_up(step) > 2 * NB_HDR_BLOCK ? block_up(step) : 2 * NB_HDR_BLOCK;
    size_t move = want > have ? want - have : 0;
    if (move > end - p->released)
        move = end - p->released;
    if (move > p->size - ahead) // near the end of the range: p->size is a multiple of the block
        move = p->size - ahead;
    if (move &&
        mremap(p->base + p->released, move, move, MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP,
               p->base + ahead) != MAP_FAILED)
        p->ready = ahead + move;
    // Then fresh zero pages over all the dead blocks: frees any not moved (all of them where
    // the kernel cannot move pages), and lets the kernel merge the range with the earlier
    // dead ones into one mapping (moved-from ranges would stay one mapping each).
    mmap(p->base + p->released, end - p->released, PROT_READ | PROT_WRITE,
         MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0);
    huge_pages(p->base + p->released, end - p->released); // a fresh mapping: advise again
    p->released = end;
}
