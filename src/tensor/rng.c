// The explicit random generator: xoshiro256** seeded through splitmix64. No global state, so
// every stream is owned by whoever holds the nb_rng value.
#include <math.h>

#include "tensor/tensor_impl.h"

#define NB_TWO_PI 6.283185307179586476925286766559

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) {
    return (x << k) | (x >> (64 - k));
}

void nb_rng_seed(nb_rng *rng, uint64_t seed) {
    if (!rng)
        return;
    for (int i = 0; i < 4; i++)
        rng->s[i] = splitmix64(&seed);
}

// A NULL generator is the caller's bug: say so, and return a value that cannot pass for a draw
// where possible (NaN for the real-valued forms).
static bool null_rng(const char *fn, const nb_rng *rng) {
    if (rng)
        return false;
    nb__set_last_error(NB_ERR_NULL, "%s: rng is NULL", fn);
    return true;
}

static uint64_t next(nb_rng *rng) {
    uint64_t *s = rng->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

uint64_t nb_rng_u64(nb_rng *rng) {
    return null_rng("nb_rng_u64", rng) ? 0 : next(rng);
}

static double uniform(nb_rng *rng) {
    return (double)(next(rng) >> 11) * 0x1.0p-53;
}

double nb_rng_uniform(nb_rng *rng) {
    return null_rng("nb_rng_uniform", rng) ? (double)NAN : uniform(rng);
}

double nb_rng_normal(nb_rng *rng) {
    if (null_rng("nb_rng_normal", rng))
        return (double)NAN;
    // Box-Muller with u1 in (0, 1] so log never sees 0.
    double u1 = 1.0 - uniform(rng);
    double u2 = uniform(rng);
    return sqrt(-2.0 * log(u1)) * cos(NB_TWO_PI * u2);
}

uint64_t nb_rng_below(nb_rng *rng, uint64_t n) {
    if (null_rng("nb_rng_below", rng))
        return 0;
    if (n == 0) {
        nb__set_last_error(NB_ERR_ARG, "nb_rng_below: n = 0 (the range [0, n) is empty)");
        return 0;
    }
    // Rejection sampling: drop the top partial block so every residue is equally likely.
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do {
        x = next(rng);
    } while (x >= limit);
    return x % n;
}
