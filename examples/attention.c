// Multi-head causal self-attention built from nabla's N-D primitives, with no loop over the
// batch or the heads, then checked three ways:
//   1. float64 finite-difference gradient check of every parameter and of the input;
//   2. causality: changing the last time step leaves every earlier output bitwise unchanged;
//   3. a plain-C reference (loops over batch, head, query, key) gives the same output.
// The block, for x (B, T, D) with H heads of Dh = D / H:
//   qkv  = x Wqkvᵀ + bqkv                         (B, T, 3D)        linear on (..., in)
//   q, k, v: reshape (B, T, 3, H, Dh), permute (2, 0, 3, 1, 4) -> (3, B, H, T, Dh), slice
//   s    = q kᵀ / √Dh                             (B, H, T, T)      batched matmul, kᵀ by flag
//   mask = gt(arange(T), arange(T) as (T, 1))     (T, T) key > query, made on the tape
//   s    = masked_fill(s, mask, -inf)             mask broadcast over (B, H)
//   p    = softmax(s)  (last axis)                masked entries are exactly 0
//   ctx  = p v, permute (0, 2, 1, 3), reshape     (B, T, D)
//   y    = ctx Woᵀ + bo                           (B, T, D)
// Usage: attention [--batch B --time T --dim D --heads H]. Exits 1 when a check fails.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nabla.h"

typedef struct {
    int64_t B, T, D, H;
} attn_cfg;

// Inputs, in order: x (B, T, D), wqkv (3D, D), bqkv (3D), wo (D, D), bo (D).
enum { X, WQKV, BQKV, WO, BO, N_IN };

static nb_tensor *attention(nb_graph *g, nb_tensor *const *in, const attn_cfg *c) {
    int64_t B = c->B, T = c->T, D = c->D, H = c->H, Dh = D / H;
    nb_tensor *qkv = nb_linear(g, in[X], in[WQKV], in[BQKV]);
    qkv = nb_reshape(g, qkv, 5, (int64_t[]){B, T, 3, H, Dh});
    qkv = nb_permute(g, qkv, 5, (const int[]){2, 0, 3, 1, 4}); // (3, B, H, T, Dh)
    nb_tensor *q = nb_squeeze(g, nb_slice(g, qkv, 0, 0, 1), 0);
    nb_tensor *k = nb_squeeze(g, nb_slice(g, qkv, 0, 1, 2), 0);
    nb_tensor *v = nb_squeeze(g, nb_slice(g, qkv, 0, 2, 3), 0);
    nb_tensor *s = nb_scale(g, nb_matmul_t(g, q, k, false, true), 1.0 / sqrt((double)Dh));
    // The causal mask, a constant on the tape: 1 where key index j > query index i (the future).
    nb_tensor *pos = nb_arange(g, nb_tensor_dtype(in[X]), 0, (double)T, 1); // (T)
    nb_tensor *mask = nb_gt(g, pos, nb_reshape(g, pos, 2, (int64_t[]){T, 1}));
    s = nb_masked_fill(g, s, mask, -INFINITY);
    nb_tensor *p = nb_softmax(g, s);
    nb_tensor *ctx = nb_matmul(g, p, v);                    // (B, H, T, Dh)
    ctx = nb_permute(g, ctx, 4, (const int[]){0, 2, 1, 3}); // (B, T, H, Dh)
    ctx = nb_reshape(g, ctx, 3, (int64_t[]){B, T, D});
    return nb_linear(g, ctx, in[WO], in[BO]);
}

// A scalar to differentiate: Σ y ⊙ w for a fixed random w, so every output element matters.
typedef struct {
    attn_cfg cfg;
    nb_tensor *w; // (B, T, D)
} loss_ctx;

static nb_tensor *loss_fn(nb_graph *g, nb_tensor *const *in, int n, void *ctx) {
    (void)n;
    const loss_ctx *lc = ctx;
    return nb_sum(g, nb_mul(g, attention(g, in, &lc->cfg), lc->w));
}

static nb_tensor *rand_tensor(nb_dtype dt, int ndim, const int64_t *shape, nb_rng *rng,
                              double scale, bool grad) {
    nb_tensor *t = nb_tensor_create(dt, ndim, shape);
    if (t) {
        nb_init_uniform(t, rng, -scale, scale);
        nb_tensor_set_requires_grad(t, grad);
    }
    return t;
}

// The same block by plain loops (float64), y (B, T, D) out.
static void reference(const attn_cfg *c, nb_tensor *const *in, double *y) {
    int64_t B = c->B, T = c->T, D = c->D, H = c->H, Dh = D / H;
    double *qkv = calloc((size_t)(B * T * 3 * D), sizeof *qkv);
    double *ctx = calloc((size_t)(B * T * D), sizeof *ctx);
    double *p = calloc((size_t)T, sizeof *p);
    for (int64_t r = 0; r < B * T; r++)
        for (int64_t o = 0; o < 3 * D; o++) {
            double acc = nb_tensor_get(in[BQKV], o);
            for (int64_t i = 0; i < D; i++)
                acc += nb_tensor_get(in[X], r * D + i) * nb_tensor_get(in[WQKV], o * D + i);
            qkv[r * 3 * D + o] = acc;
        }
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < H; h++)
            for (int64_t t = 0; t < T; t++) {
                const double *q = qkv + (b * T + t) * 3 * D + h * Dh;
                double mx = -INFINITY, sum = 0;
                for (int64_t s = 0; s <= t; s++) { // only the past and present
                    const double *k = qkv + (b * T + s) * 3 * D + D + h * Dh;
                    double dot = 0;
                    for (int64_t e = 0; e < Dh; e++)
                        dot += q[e] * k[e];
                    p[s] = dot / sqrt((double)Dh);
                    mx = fmax(mx, p[s]);
                }
                for (int64_t s = 0; s <= t; s++)
                    sum += p[s] = exp(p[s] - mx);
                for (int64_t e = 0; e < Dh; e++) {
                    double acc = 0;
                    for (int64_t s = 0; s <= t; s++)
                        acc += p[s] / sum * qkv[(b * T + s) * 3 * D + 2 * D + h * Dh + e];
                    ctx[(b * T + t) * D + h * Dh + e] = acc;
                }
            }
    for (int64_t r = 0; r < B * T; r++)
        for (int64_t o = 0; o < D; o++) {
            double acc = nb_tensor_get(in[BO], o);
            for (int64_t i = 0; i < D; i++)
                acc += ctx[r * D + i] * nb_tensor_get(in[WO], o * D + i);
            y[r * D + o] = acc;
        }
    free(qkv);
    free(ctx);
    free(p);
}

static bool parse(int argc, char **argv, attn_cfg *c) {
    for (int i = 1; i < argc; i++) {
        int64_t *dst = !strcmp(argv[i], "--batch")   ? &c->B
                       : !strcmp(argv[i], "--time")  ? &c->T
                       : !strcmp(argv[i], "--dim")   ? &c->D
                       : !strcmp(argv[i], "--heads") ? &c->H
                                                     : NULL;
        char *end = NULL;
        if (!dst || i + 1 >= argc)
            return false;
        long long v = strtoll(argv[++i], &end, 10);
        if (*end || v < 1 || v > 64)
            return false;
        *dst = v;
    }
    return c->D % c->H == 0;
}

int main(int argc, char **argv) {
    attn_cfg cfg = {.B = 2, .T = 5, .D = 8, .H = 2};
    if (!parse(argc, argv, &cfg)) {
        fprintf(stderr, "usage: attention [--batch B] [--time T] [--dim D] [--heads H]\n"
                        "       (each 1..64, D divisible by H)\n");
        return 2;
    }
    int64_t B = cfg.B, T = cfg.T, D = cfg.D;
    nb_rng rng;
    nb_rng_seed(&rng, 42);
    nb_tensor *in[N_IN] = {
        rand_tensor(NB_F64, 3, (int64_t[]){B, T, D}, &rng, 1.0, true),
        rand_tensor(NB_F64, 2, (int64_t[]){3 * D, D}, &rng, 0.5, true),
        rand_tensor(NB_F64, 1, (int64_t[]){3 * D}, &rng, 0.1, true),
        rand_tensor(NB_F64, 2, (int64_t[]){D, D}, &rng, 0.5, true),
        rand_tensor(NB_F64, 1, (int64_t[]){D}, &rng, 0.1, true),
    };
    loss_ctx lc = {cfg, rand_tensor(NB_F64, 3, (int64_t[]){B, T, D}, &rng, 1.0, false)};
    int failures = 0;

    // 1. Gradients of every input against central differences.
    nb_gradcheck_result r = nb_gradcheck(loss_fn, &lc, in, N_IN, 1e-6, 1e-7, 1e-5);
    printf("gradcheck   %s: %lld elements, max abs err %.2e, max rel err %.2e\n",
           r.ok ? "ok  " : "FAIL", (long long)r.n_checked, r.max_abs_err, r.max_rel_err);
    if (!r.ok) {
        printf("            %s\n", r.message);
        failures++;
    }

    // 2 and 3. One forward; then again with the last time step of x changed.
    nb_graph *g = nb_graph_create();
    nb_tensor *y = attention(g, in, &lc.cfg);
    if (!y) {
        fprintf(stderr, "attention: %s\n", nb_graph_error(g));
        return 1;
    }
    double *ref = malloc((size_t)(B * T * D) * sizeof *ref);
    reference(&cfg, in, ref);
    double worst = 0;
    for (int64_t i = 0; i < B * T * D; i++)
        worst = fmax(worst, fabs(nb_tensor_get(y, i) - ref[i]));
    bool ref_ok = worst < 1e-12;
    printf("reference   %s: max |nabla - loops| = %.2e\n", ref_ok ? "ok  " : "FAIL", worst);
    failures += !ref_ok;

    double *before = malloc((size_t)(B * T * D) * sizeof *before);
    for (int64_t i = 0; i < B * T * D; i++)
        before[i] = nb_tensor_get(y, i);
    for (int64_t b = 0; b < B; b++)
        for (int64_t e = 0; e < D; e++) {
            int64_t at = (b * T + T - 1) * D + e;
            nb_tensor_set(in[X], at, nb_tensor_get(in[X], at) + 1.0);
        }
    nb_graph_reset(g);
    y = attention(g, in, &lc.cfg);
    int64_t moved_past = 0, moved_last = 0;
    for (int64_t i = 0; y && i < B * T * D; i++) {
        bool last = (i / D) % T == T - 1;
        bool same = nb_tensor_get(y, i) == before[i];
        moved_past += !last && !same;
        moved_last += last && !same;
    }
    bool causal_ok = y && moved_past == 0 && moved_last > 0;
    printf("causality   %s: %lld earlier outputs changed (want 0), %lld last-step outputs "
           "changed\n",
           causal_ok ? "ok  " : "FAIL", (long long)moved_past, (long long)moved_last);
    failures += !causal_ok;

    nb_graph_destroy(g);
    free(ref);
    free(before);
    for (int i = 0; i < N_IN; i++)
        nb_tensor_destroy(in[i]);
    nb_tensor_destroy(lc.w);
    printf("%s\n", failures ? "FAILED" : "all checks passed");
    return failures ? 1 : 0;
}
