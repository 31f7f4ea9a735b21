// bench_overhead: the fixed cost of an op. y = relu(x·w + b) on 1-element float32 tensors
// (x, w (1, 1), b (1), all requiring grad), forward + backward per iteration; the arithmetic
// is nil, so the time is the framework's bookkeeping. Gradients accumulate (no zeroing), as in
// the PyTorch side. Variants, alternated within each repetition:
//   rec     reset, record matmul + add + relu, backward
//   replay  record once; then nb_graph_replay + backward
//   linear  rec with the fused form relu(linear(x, w, b)): 2 ops instead of 3
// Usage: bench_overhead [--iters N] [--reps R]. Prints one JSON line per variant and rep.
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "bench_util.h"
#include "nabla.h"

enum { REC, REPLAY, LINEAR, N_VARIANTS };
static const char *const names[N_VARIANTS] = {"nabla-rec", "nabla-replay", "nabla-rec-linear"};

static nb_tensor *expr(nb_graph *g, int variant, nb_tensor *x, nb_tensor *w, nb_tensor *b) {
    if (variant == LINEAR)
        return nb_relu(g, nb_linear(g, x, w, b));
    return nb_relu(g, nb_add(g, nb_matmul(g, x, w), b));
}

// Seconds for `iters` iterations of one variant; < 0 on a nabla error.
static double run(int variant, int64_t iters, nb_graph *g, nb_tensor *x, nb_tensor *w,
                  nb_tensor *b) {
    nb_graph_reset(g);
    nb_tensor *y = expr(g, variant, x, w, b); // a recorded tape for replay
    if (!y || nb_backward(g, y) != NB_OK)
        return -1;
    double t0 = bu_now();
    if (variant == REPLAY) {
        for (int64_t i = 0; i < iters; i++) {
            nb_graph_replay(g);
            nb_backward(g, y);
        }
    } else {
        for (int64_t i = 0; i < iters; i++) {
            nb_graph_reset(g);
            y = expr(g, variant, x, w, b);
            nb_backward(g, y);
        }
    }
    double dt = bu_now() - t0;
    return nb_graph_status(g) == NB_OK ? dt : -1;
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
    for (int v = 0; v < N_VARIANTS; v++) // warm-up: grows the arena and tape once
        run(v, iters / 10 + 1, g, x, w, b);
    for (int64_t r = 0; r < reps; r++) {
        for (int v = 0; v < N_VARIANTS; v++) {
            double dt = run(v, iters, g, x, w, b);
            if (dt < 0) {
                fprintf(stderr, "bench_overhead: %s\n", nb_graph_error(g));
                return 1;
            }
            printf("{\"bench\": \"overhead\", \"impl\": \"%s\", \"iters\": %" PRId64
                   ", \"us_per_iter\": %.4f}\n",
                   names[v], iters, dt * 1e6 / (double)iters);
            fflush(stdout);
        }
    }
    nb_graph_destroy(g);
    nb_tensor_destroy(x);
    nb_tensor_destroy(w);
    nb_tensor_destroy(b);
    return 0;
}
