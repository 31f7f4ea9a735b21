// The OpenMP size threshold of tensor/parallel.h, chosen once at load time from libgomp's
// wait policy (which libgomp itself reads from the environment once, when it loads).
#include <ctype.h>
#include <stdlib.h>

#include "tensor/parallel.h"

int64_t nb__omp_min = NB_OMP_MIN_DEFAULT;
bool nb__omp_passive = false;

// True when s is `word` up to case, with blanks around it: how libgomp parses OMP_WAIT_POLICY
// ("passive", " PASSIVE " are passive; anything else leaves libgomp's default).
static bool policy_is(const char *s, const char *word) {
    while (isspace((unsigned char)*s))
        s++;
    for (; *word; s++, word++)
        if (tolower((unsigned char)*s) != *word)
            return false;
    while (isspace((unsigned char)*s))
        s++;
    return *s == '\0';
}

int64_t nb__omp_min_for(const char *wait_policy) {
    return wait_policy && policy_is(wait_policy, "passive") ? NB_OMP_MIN_PASSIVE
                                                            : NB_OMP_MIN_DEFAULT;
}

// Before main, like libgomp's own reading of the variable: every op sees one threshold.
__attribute__((constructor)) static void omp_min_init(void) {
    const char *p = getenv("OMP_WAIT_POLICY");
    nb__omp_min = nb__omp_min_for(p);
    nb__omp_passive = nb__omp_min == NB_OMP_MIN_PASSIVE;
}
