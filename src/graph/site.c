// Call-site capture: the public op macros bracket every call with NB__SITE (nabla/graph.h);
// nb__record copies the innermost open site into the node, so error and anomaly reports name
// the user's file:line. A stack rather than one slot, so in nb_relu(g, nb_exp(g, x)) each op
// gets its own call (the inner one runs inside the outer).
//
// Three calls per op (enter, current, leave), so this is on the per-op path (bench_overhead).
// The library is position-independent (it is also linked into libnabla.so), where a
// thread-local access is a call to the TLS resolver; CMake builds this file with TLS
// descriptors (-mtls-dialect=gnu2 where supported), whose call clobbers no register and which
// the linker turns into a plain %fs-relative access in an executable. Only integer registers are
// live across it here (glibc before 2.39 did not preserve vector registers in its dynamic-TLS
// descriptor path).
#include "graph/graph_priv.h"

// Deeper nesting than this still balances (depth keeps counting); those calls report no site.
#define SITE_DEPTH 32

typedef struct site_stack {
    const char *file[SITE_DEPTH];
    int line[SITE_DEPTH];
    int depth;
} site_stack;
static _Thread_local site_stack sites;

// Each function takes the thread's stack address once (the empty asm keeps GCC from computing
// it a second time for the store).
void nb__site_enter(const char *file, int line) {
    site_stack *s = &sites;
    __asm__("" : "+r"(s));
    int d = s->depth;
    if (d < SITE_DEPTH) {
        s->file[d] = file;
        s->line[d] = line;
    }
    s->depth = d + 1;
}

nb_tensor *nb__site_leave(nb_tensor *result) {
    site_stack *s = &sites;
    if (s->depth > 0)
        s->depth--;
    return result;
}

void nb__site_current(const char **file, int *line) {
    const site_stack *s = &sites;
    int d = s->depth;
    bool known = d > 0 && d <= SITE_DEPTH;
    *file = known ? s->file[d - 1] : NULL;
    *line = known ? s->line[d - 1] : 0;
}
