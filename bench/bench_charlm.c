// One training step of examples/charlm's model (2 blocks, 4 heads, width 128, context 64,
// batch 32, vocabulary 113: forward, sparse cross-entropy, backward, AdamW) on random ids, in
// tokens per second of process CPU time (all threads; steadier than wall time on a shared
// machine) and of wall time, medians over the timed steps; peak RSS; allocations per
// steady-state step. bench/torch_charlm.py times the same model in PyTorch.
//   bench_charlm [--threads N] [--steps S]
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../examples/charlm/charlm.h"
#include "bench_util.h"

static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    int64_t threads = 2, steps = 30;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc && bu_int(argv[i + 1], 1, 64, &threads))
            i++;
        else if (!strcmp(argv[i], "--steps") && i + 1 < argc &&
                 bu_int(argv[i + 1], 1, 100000, &steps))
            i++;
        else {
            fprintf(stderr, "usage: bench_charlm [--threads N] [--steps S]\n");
            return 2;
        }
    }
    nb_set_num_threads((int)threads);
    const int64_t B = 32, T = 64, V = 113;
    nb_rng rng;
    nb_rng_seed(&rng, 1);
    charlm_model *m = charlm_create((charlm_config){V, T, 128, 4, 2, 0.0}, &rng);
    nb_params *ps = nb_params_create();
    if (!m || !ps || nb_layer_collect(&m->base, ps, NULL) != NB_OK)
        return 1;
    nb_optim_config cfg = nb_optim_defaults(NB_OPTIM_ADAMW, 3e-3);
    nb_optim *opt = nb_params_optim_create(ps, cfg, true);
    nb_tensor *x = nb_tensor_create(NB_I32, 2, (int64_t[]){B, T});
    nb_tensor *y = nb_tensor_create(NB_I32, 1, (int64_t[]){B * T});
    nb_graph *g = nb_graph_create();
    double *cpu = malloc((size_t)steps * sizeof *cpu), *wall = malloc((size_t)steps * sizeof *wall);
    int64_t allocs = 0;
    for (int64_t s = -3; s < steps; s++) {
        for (int64_t i = 0; i < B * T; i++) {
            nb_tensor_set(x, i, (double)nb_rng_below(&rng, V));
            nb_tensor_set(y, i, (double)nb_rng_below(&rng, V));
        }
        if (s == 0)
            bu_count_allocations();
        int64_t a0 = bu_allocations();
        double c0 = cpu_now(), w0 = bu_now();
        nb_graph_reset(g);
        nb_tensor *loss =
            nb_sparse_cross_entropy_logits(g, charlm_logits(g, m, x), y, NB_REDUCE_MEAN);
        nb_optim_zero_grad(opt);
        if (!loss || nb_backward(g, loss) != NB_OK || nb_optim_step(opt) != NB_OK) {
            fprintf(stderr, "bench_charlm: %s\n", nb_graph_error(g));
            return 1;
        }
        if (s >= 0) {
            cpu[s] = cpu_now() - c0;
            wall[s] = bu_now() - w0;
            allocs += bu_allocations() - a0;
        }
    }
    qsort(cpu, (size_t)steps, sizeof *cpu, cmp_d);
    qsort(wall, (size_t)steps, sizeof *wall, cmp_d);
    double tok = (double)(B * T);
    printf("{\"bench\": \"charlm_step\", \"threads\": %d, \"params\": %lld, \"step_cpu_ms\": %.2f, "
           "\"tok_per_cpu_s\": %.0f, \"step_wall_ms\": %.2f, \"tok_per_s\": %.0f, "
           "\"peak_rss_mib\": %.1f, \"allocs_per_step\": %.2f}\n",
           (int)threads, (long long)nb_params_numel(ps, NB_PARAM), 1e3 * cpu[steps / 2],
           tok / cpu[steps / 2], 1e3 * wall[steps / 2], tok / wall[steps / 2], bu_max_rss_mib(),
           (double)allocs / (double)steps);
    free(cpu), free(wall);
    nb_graph_destroy(g);
    nb_optim_destroy(opt);
    nb_params_destroy(ps);
    charlm_destroy(m);
    nb_tensor_destroy(x), nb_tensor_destroy(y);
    return 0;
}
