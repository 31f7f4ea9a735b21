// bench_matmul: batched matmul on attention shapes against the same GEMMs called directly
// through CBLAS in a loop, in the same process, timed back to back so each pair sees the same
// machine. Float32, 1 and 2 threads (nb_set_num_threads, which also sets OpenBLAS's count).
//   fwd: y[i] = a[i] b[i] for i < 32               (32 GEMMs)
//   bwd: da[i] += dy[i] b[i]ᵀ, db[i] += a[i]ᵀ dy[i] (64 GEMMs, transposes as GEMM flags)
// nabla's forward runs through nb_graph_replay of a one-op tape; its backward calls the node's
// backward directly (library-private headers), so the grad memsets of nb_backward_with are not
// counted. The loop is what a user would write without batched matmul: one cblas_sgemm per
// matrix, each free to use OpenBLAS's threads.
// Also: permute of a 16 M-element 4-D float tensor (0, 2, 1, 3), the attention head split,
// against memcpy of the same bytes (both read 64 MiB and write 64 MiB).
// Usage: bench_matmul [--reps R]. One JSON object per measurement on stdout.
#include <cblas.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "bench_util.h"
#include "graph/graph_priv.h"
#include "nabla.h"

#define MIN_SECONDS 0.05
#define BATCH 32

typedef struct {
    const char *name;
    int64_t m, k, n;
} mm_shape;

typedef struct {
    nb_graph *g;
    nb_tensor *a, *b, *gy;
    nb_node *node;
    const mm_shape *s;
} mm_case;

static bool case_init(mm_case *c, const mm_shape *s, nb_rng *rng) {
    memset(c, 0, sizeof *c);
    c->s = s;
    c->g = nb_graph_create();
    c->a = bu_rand_f32(3, (int64_t[]){BATCH, s->m, s->k}, rng, true);
    c->b = bu_rand_f32(3, (int64_t[]){BATCH, s->k, s->n}, rng, true);
    c->gy = bu_rand_f32(3, (int64_t[]){BATCH, s->m, s->n}, rng, false);
    if (!c->g || !c->a || !c->b || !c->gy)
        return false;
    nb_tensor *y = nb_matmul(c->g, c->a, c->b);
    if (!y || nb_backward_with(c->g, y, c->gy) != NB_OK) {
        fprintf(stderr, "bench_matmul: %s\n", nb_graph_error(c->g));
        return false;
    }
    c->node = &c->g->nodes[y->node];
    return true;
}

static void case_free(mm_case *c) {
    nb_graph_destroy(c->g);
    nb_tensor_destroy(c->a);
    nb_tensor_destroy(c->b);
    nb_tensor_destroy(c->gy);
}

// The same products as the node, one cblas_sgemm per matrix.
static void cblas_loop(mm_case *c, int bwd) {
    const mm_shape *s = c->s;
    int m = (int)s->m, k = (int)s->k, n = (int)s->n;
    float *a = nb_tensor_data_f32(c->a), *b = nb_tensor_data_f32(c->b);
    float *y = nb_tensor_data_f32(c->node->out), *gy = nb_tensor_data_f32(c->gy);
    float *ga = nb_tensor_grad(c->a), *gb = nb_tensor_grad(c->b);
    for (int i = 0; i < BATCH; i++) {
        float *ai = a + (size_t)i * m * k, *bi = b + (size_t)i * k * n;
        float *yi = y + (size_t)i * m * n, *gyi = gy + (size_t)i * m * n;
        if (!bwd) {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1, ai, k, bi, n, 0, yi,
                        n);
        } else {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, k, n, 1, gyi, n, bi, n, 1,
                        ga + (size_t)i * m * k, k);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, k, n, m, 1, ai, k, gyi, n, 1,
                        gb + (size_t)i * k * n, n);
        }
    }
}

// Seconds for *iters runs (calibrating: doubling from 1 until MIN_SECONDS).
static double time_mm(mm_case *c, int which, int bwd, int64_t *iters, bool calibrate) {
    for (int64_t r = calibrate ? 1 : *iters;; r *= 2) {
        double t0 = bu_now();
        for (int64_t q = 0; q < r; q++) {
            if (which == 1)
                cblas_loop(c, bwd);
            else if (bwd)
                c->node->op->backward(c->node);
            else
                nb_graph_replay(c->g);
        }
        double dt = bu_now() - t0;
        *iters = r;
        if (!calibrate || dt >= MIN_SECONDS)
            return dt;
    }
}

static int bench_matmul_shapes(int64_t reps, nb_rng *rng) {
    static const mm_shape shapes[] = {{"32x(64x64)(64x64)", 64, 64, 64},
                                      {"32x(128x64)(64x128)", 128, 64, 128}};
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        mm_case c;
        if (!case_init(&c, &shapes[si], rng))
            return 1;
        int64_t iters[3][2][2] = {{{0}}}; // [threads][nabla, cblas][fwd, bwd]
        for (int64_t r = -1; r < reps; r++)
            for (int threads = 1; threads <= 2; threads++) {
                nb_set_num_threads(threads);
                for (int bwd = 0; bwd < 2; bwd++) {
                    double flops = 2.0 * BATCH * (double)(c.s->m * c.s->k * c.s->n) * (bwd ? 2 : 1);
                    int64_t *itl = &iters[threads][1][bwd], *itn = &iters[threads][0][bwd];
                    double dl = time_mm(&c, 1, bwd, itl, r < 0);
                    double dn = time_mm(&c, 0, bwd, itn, r < 0);
                    if (r >= 0)
                        printf("{\"bench\": \"bmm\", \"shape\": \"%s\", \"dir\": \"%s\", "
                               "\"threads\": %d, \"gflops\": %.3f, \"cblas_loop_gflops\": %.3f}\n",
                               c.s->name, bwd ? "bwd" : "fwd", threads,
                               flops * (double)*itn / dn * 1e-9, flops * (double)*itl / dl * 1e-9);
                }
                fflush(stdout);
            }
        case_free(&c);
    }
    return 0;
}

// permute of 16 M floats (16, 256, 16, 256) against memcpy of 64 MiB: (0, 2, 1, 3), the
// attention head split (runs of 256 floats), and (0, 1, 3, 2), a transpose of the innermost
// axes (the tiled path).
static int bench_permute(int64_t reps, nb_rng *rng, const int *perm, const char *name) {
    const int64_t shape[4] = {16, 256, 16, 256};
    nb_tensor *x = bu_rand_f32(4, shape, rng, false);
    nb_graph *g = nb_graph_create();
    nb_tensor *y = x && g ? nb_permute(g, x, 4, perm) : NULL;
    if (!y) {
        fprintf(stderr, "bench_matmul: permute setup failed: %s\n", nb_graph_error(g));
        return 1;
    }
    int64_t n = nb_tensor_numel(x);
    void *dst = nb_tensor_data_f32(y), *src = nb_tensor_data_f32(x);
    double bytes = 2.0 * (double)n * sizeof(float); // read + write
    for (int64_t r = -1; r < reps; r++)
        for (int threads = 1; threads <= 2; threads++) {
            nb_set_num_threads(threads);
            double t0 = bu_now();
            for (int q = 0; q < 4; q++)
                memcpy(dst, src, (size_t)n * sizeof(float));
            double dm = (bu_now() - t0) / 4;
            t0 = bu_now();
            for (int q = 0; q < 4; q++)
                nb_graph_replay(g);
            double dp = (bu_now() - t0) / 4;
            if (r >= 0)
                printf("{\"bench\": \"permute\", \"perm\": \"%s\", \"n\": %" PRId64
                       ", \"threads\": %d, \"gbps\": %.3f, \"memcpy_gbps\": %.3f}\n",
                       name, n, threads, bytes / dp * 1e-9, bytes / dm * 1e-9);
            fflush(stdout);
        }
    nb_graph_destroy(g);
    nb_tensor_destroy(x);
    return 0;
}

int main(int argc, char **argv) {
    int64_t reps = 5;
    for (int i = 1; i < argc; i++) {
        bool ok = i + 1 < argc && !strcmp(argv[i], "--reps") && bu_int(argv[++i], 1, 1000, &reps);
        if (!ok) {
            fprintf(stderr, "usage: bench_matmul [--reps R]\n");
            return 2;
        }
    }
    nb_rng rng;
    nb_rng_seed(&rng, 1);
    if (bench_matmul_shapes(reps, &rng))
        return 1;
    if (bench_permute(reps, &rng, (const int[]){0, 2, 1, 3}, "0213"))
        return 1;
    return bench_permute(reps, &rng, (const int[]){0, 1, 3, 2}, "0132");
}
