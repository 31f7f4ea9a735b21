// Settings the OpenMP and OpenBLAS runtimes read from the environment once, when they load
// (before main): to change them the program sets the variables and restarts itself once
// (execv of /proc/self/exe with the same arguments). The restarted process finds them set
// and goes on.
#define _POSIX_C_SOURCE 200809L // setenv, unsetenv, strcasecmp

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "mnist.h"

// From OpenBLAS (linked through nabla); declared here so the example needs no BLAS header.
char *openblas_get_corename(void);

// OMP_WAIT_POLICY. libgomp's default keeps a thread that waits at a barrier or for the next
// parallel region spinning for a while before it sleeps. On a machine shared with other jobs
// that is the wrong bet: the spinning thread holds a core that the thread it waits for (or the
// other job) needs, and 2-thread training slowed 10-60x here until OMP_WAIT_POLICY=passive
// made waiting threads sleep at once. So passive is the default; an OMP_WAIT_POLICY already in
// the environment is respected; --wait-policy overrides both ("unset" = libgomp's default).
static bool pick_wait_policy(const char *flag) {
    const char *cur = getenv("OMP_WAIT_POLICY");
    const char *want = flag ? flag : cur ? NULL : "passive";
    if (!want)
        return false;
    if (!strcmp(want, "unset")) {
        if (!cur)
            return false;
        return unsetenv("OMP_WAIT_POLICY") == 0;
    }
    if (cur && !strcasecmp(cur, want))
        return false;
    return setenv("OMP_WAIT_POLICY", want, 1) == 0;
}

// OPENBLAS_CORETYPE. Debian 12's OpenBLAS 0.3.21 does not know CPUs newer than it (e.g.
// family 6 model 207) and falls back to its generic SSE3 "Prescott" kernels, 3x slower here
// than its AVX-512 ones. When the user has not chosen a kernel and the fallback was taken on
// a CPU with AVX-512 (or AVX2), choose it. MNIST_NO_CORETYPE=1 disables this.
static bool pick_blas_kernels(void) {
    const char *core = openblas_get_corename();
    if (getenv("OPENBLAS_CORETYPE") || getenv("MNIST_NO_CORETYPE") || !core ||
        strcmp(core, "Prescott") != 0)
        return false;
    __builtin_cpu_init();
    const char *pick = __builtin_cpu_supports("avx512f") ? "SkylakeX"
                       : __builtin_cpu_supports("avx2")  ? "Haswell"
                                                         : NULL;
    return pick && setenv("OPENBLAS_CORETYPE", pick, 1) == 0;
}

void mnist_prepare_runtime(char **argv, const char *wait_policy) {
    bool changed = pick_wait_policy(wait_policy);
    changed = pick_blas_kernels() || changed;
    if (changed)
        execv("/proc/self/exe", argv); // returns only on failure: run with what was loaded
}

const char *mnist_wait_policy(void) {
    const char *p = getenv("OMP_WAIT_POLICY");
    return p ? p : "default";
}
