// Shared by the fuzz harnesses: an in-memory file reachable by a path (memfd behind
// /proc/self/fd/N), so readers that take a path are fed bytes without disk I/O or temp-file
// cleanup; an oracle check that aborts (libFuzzer then saves the input as a crash); and a
// counting allocator, installed through nb_set_allocator, that can fail the k-th allocation
// so every out-of-memory path is exercised for leaks and for leaving the outputs untouched.
#ifndef NABLA_FUZZ_UTIL_H
#define NABLA_FUZZ_UTIL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/types.h>
#include <unistd.h>

#include "nabla/base.h"

// Oracle failures are harness findings: report the broken property and crash.
#define FZ_CHECK(cond)                                                                             \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz oracle failed at %s:%d: %s\n", __FILE__, __LINE__, #cond);       \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

// NB_FUZZ_VERBOSE=1 prints each call's outcome (for replaying a single input by hand).
static inline bool fz_verbose(void) {
    static int v = -1;
    if (v < 0)
        v = getenv("NB_FUZZ_VERBOSE") != NULL;
    return v;
}

typedef struct fz_file {
    int fd;
    char path[48];
} fz_file;

static inline void fz_file_init(fz_file *f, const char *name) {
    f->fd = memfd_create(name, MFD_CLOEXEC);
    if (f->fd < 0) {
        perror("fuzz: memfd_create");
        abort();
    }
    snprintf(f->path, sizeof f->path, "/proc/self/fd/%d", f->fd);
}

// Replace the file's content with p[0..n).
static inline void fz_file_set(const fz_file *f, const void *p, size_t n) {
    const unsigned char *b = p;
    FZ_CHECK(ftruncate(f->fd, 0) == 0);
    for (size_t done = 0; done < n;) {
        ssize_t w = pwrite(f->fd, b + done, n - done, (off_t)done);
        FZ_CHECK(w > 0);
        done += (size_t)w;
    }
}

// ---- allocator -----------------------------------------------------------------------------

static size_t fz_alloc_count;   // library allocations since the last fz_alloc_arm
static size_t fz_alloc_fail_at; // 1-based allocation to fail; 0: none
static size_t fz_alloc_cap;     // NB_FUZZ_ALLOC_CAP_MB: larger requests fail (0: no cap)

static inline bool fz_alloc_fails(size_t n) {
    return ++fz_alloc_count == fz_alloc_fail_at || (fz_alloc_cap && n > fz_alloc_cap);
}
static inline void *fz_malloc(size_t n) {
    return fz_alloc_fails(n) ? NULL : malloc(n);
}
static inline void *fz_realloc(void *p, size_t n) {
    return fz_alloc_fails(n) ? NULL : realloc(p, n);
}
static inline void fz_free(void *p) {
    free(p);
}

// The cap is off by default, so that a reader asking for more than libFuzzer's malloc limit
// (rss_limit_mb) on a small input is reported; set it to keep fuzzing past such a finding.
static inline void fz_alloc_install(void) {
    const char *cap = getenv("NB_FUZZ_ALLOC_CAP_MB");
    fz_alloc_cap = cap ? (size_t)strtoull(cap, NULL, 10) << 20 : 0;
    nb_set_allocator(fz_malloc, fz_realloc, fz_free);
}

static inline void fz_alloc_arm(size_t fail_at) {
    fz_alloc_count = 0;
    fz_alloc_fail_at = fail_at;
}

// FNV-1a: picks which allocation to fail, reproducibly for a given input.
static inline size_t fz_hash(const uint8_t *p, size_t n) {
    uint64_t h = 1469598103934665603u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211u;
    return (size_t)h;
}

#endif
