// bench_overhead: the fixed cost of an op. y = relu(x·w + b) on 1-element float32 tensors
// (x, w (1, 1), b (1), all requiring grad), forward + backward per iteration; the arithmetic
// is nil, so the time is the framework's bookkeeping. Gradients accumulate (no zeroing), as in
// the PyTorch side. Variants, alternated within each repetition:
//   rec     reset, record matmul + add + relu, backward
//   replay  record once; then nb_graph_replay + backward
//   linear  rec with the fused form relu(linear(x, w, b)): 2 ops instead of 3
// Usage: bench_overhead [--iters N] [--reps R]. Prints one JSON line per variant and rep.
//
// Clock: a rep runs its iterations in CHUNKS equal chunks, each timed by the process CPU clock;
// us_per_iter is the fastest chunk's. Wall time on this shared 2-vCPU machine measured the other
// processes: at load 4 the recorded variant read 0.25 µs in every rep of a suite run and
// 0.145-0.25 from run to run, while its CPU time was 0.14 (perf stat: the process got 12 % of
// a CPU at load 11, 204 page faults in all, none per step). CPU time drops the time-sharing;
// the fastest chunk drops the cache refills after other processes ran on the core. A chunk
// holds thousands of steps, so every periodic cost (the header pool's block release every
// ~4 k steps) is in each chunk. The whole rep's CPU and wall times are printed too.
// torch_bench.py and libtorch_bench time their overhead loop the same way.
#define _POSIX_C_SOURCE 200809L // clock_gettime

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "bench_util.h"
#include "nabla.h"

enum { REC, REPLAY, LINEAR, N_VARIANTS };
static const char *const names[N_VARIANTS] = {"nabla-rec", "nabla-replay", "nabla-rec-linear"};

static nb_tensor *expr(nb_graph *g, int variant, nb_tensor *x, nb_tensor *w, nb_tensor *b) {
    if (variant == LINEAR)
        return nb_relu(g, nb_linear(g, x, w, b));
    return nb_relu(g, nb_add(g, nb_matmul(g, x, w), b));
}

enum { CHUNKS = 20 };

static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

typedef struct {
    double best_cpu;  // seconds per iteration, fastest chunk by CPU time
    double cpu, wall; // seconds per iteration over the whole run
} timing;

// `iters` iterations of one variant in CHUNKS chunks (the last takes the remainder); false on
// a nabla error.
static bool run(int variant, int64_t iters, nb_graph *g, nb_tensor *x, nb_tensor *w, nb_tensor *b,
                timing *t) {
    nb_graph_reset(g);
    nb_tensor *y = expr(g, variant, x, w, b); // a recorded tape for replay
    if (!y || nb_backward(g, y) != NB_OK)
        return false;
    int64_t per = iters / CHUNKS > 0 ? iters / CHUNKS : 1;
    t->best_cpu = 1e30;
    double w0 = bu_now(), c0 = cpu_now();
    for (int64_t done = 0; done < iters;) {
        int64_t n = iters - done < 2 * per ? iters - done : per;
        double cc = cpu_now();
        if (variant == REPLAY) {
            for (int64_t i = 0; i < n; i++) {
                nb_graph_replay(g);
                nb_backward(g, y);
            }
        } else {
            for (int64_t i = 0; i < n; i++) {
                nb_graph_reset(g);
                y = expr(g, variant, x, w, b);
                nb_backward(g, y);
            }
        }
        double dc = (cpu_now() - cc) / (double)n;
        t->best_cpu = dc < t->best_cpu ? dc : t->best_cpu;
        done += n;
    }
    t->cpu = (cpu_now() - c0) / (double)iters;
    t->wall = (bu_now() - w0) / (double)iters;
    return nb_graph_status(g) == NB_OK;
}

int main(int argc, char **argv) {
    int64_t iters = 1000000, reps = 3;
    for (int i = 1; i < argc; i++) {
        bool ok = i + 1 < argc;
        if (ok && !strcmp(argv[i], "--iters"))
            ok = bu_int(argv[++i], 1, INT64_C(1) << 40, &iters);
        else if (ok && !strcmp(argv[i], "--reps"))
            ok = bu_int(argv[++i], 1, 1000, &reps);
        else
            ok = false;
        if (!ok) {
            fprintf(stderr, "usage: bench_overhead [--iters N] [--reps R]\n");
            return 2;
        }
    }
    nb_set_num_threads(1);
    nb_tensor *x = nb_tensor_from_data(NB_F32, 2, (int64_t[]){1, 1}, (float[]){0.5f});
    nb_tensor *w = nb_tensor_from_data(NB_F32, 2, (int64_t[]){1, 1}, (float[]){0.75f});
    nb_tensor *b = nb_tensor_from_data(NB_F32, 1, (int64_t[]){1}, (float[]){0.25f});
    nb_graph *g = nb_graph_create();
    if (!x || !w || !b || !g || nb_tensor_set_requires_grad(x, true) ||
        nb_tensor_set_requires_grad(w, true) || nb_tensor_set_requires_grad(b, true)) {
        fprintf(stderr, "bench_overhead: %s\n", nb_last_error());
        return 1;
    }
    timing t;
    for (int v = 0; v < N_VARIANTS; v++) // warm-up: grows the arena and tape once
        run(v, iters / 10 + 1, g, x, w, b, &t);
    for (int64_t r = 0; r < reps; r++) {
        for (int v = 0; v < N_VARIANTS; v++) {
            if (!run(v, iters, g, x, w, b, &t)) {
                fprintf(stderr, "bench_overhead: %s\n", nb_graph_error(g));
                return 1;
            }
            printf("{\"bench\": \"overhead\", \"impl\": \"%s\", \"iters\": %" PRId64
                   ", \"us_per_iter\": %.4f, \"cpu_us_per_iter\": %.4f, "
                   "\"wall_us_per_iter\": %.4f}\n",
                   names[v], iters, t.best_cpu * 1e6, t.cpu * 1e6, t.wall * 1e6);
            fflush(stdout);
        }
    }
    nb_graph_destroy(g);
    nb_tensor_destroy(x);
    nb_tensor_destroy(w);
    nb_tensor_destroy(b);
    return 0;
}
