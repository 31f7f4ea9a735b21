// One training step of examples/charlm's model (2 blocks, 4 heads, width 128, context 64,
// batch 32, vocabulary 113: forward, sparse cross-entropy, backward, AdamW) on random ids, in
// tokens per second of process CPU time (all threads; steadier than wall time on a shared
// machine) and of wall time, medians over the timed steps; peak RSS; allocations per
// steady-state step. bench/torch_charlm.py and libtorch_ops charlm time the same model in
// PyTorch with the same protocol: WARMUP untimed steps, the ids drawn outside the timer, and
// the same extra fields, which show whether a run did what it claims: "os_threads" (tasks in
// /proc/self/task after the timed steps), "cores_used" (CPU time / wall time over them), and
// "minflt_per_step" / "sys_ms_per_step" (page faults and kernel time, means over them), and
// "best_step_cpu_ms" / "best_step_wall_ms" (the fastest step: other processes' bursts on a
// shared machine miss some steps, so a ratio of these cross-checks the ratio of medians).
//   bench_charlm [--threads N] [--steps S]
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/resource.h>
#include <time.h>

#include "../examples/charlm/charlm.h"
#include "bench_util.h"

static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

// Untimed steps, the same in all three programs: the first steps size the arena and create
// AdamW's moments (PyTorch: its allocator's caches and glibc's heap settle).
enum { WARMUP = 5 };

// Tasks (threads) of this process now: what the thread settings really gave.
static int os_threads(void) {
    DIR *d = opendir("/proc/self/task");
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        n += e->d_name[0] != '.';
    if (d)
        closedir(d);
    return n;
}

static double tv_s(struct timeval t) {
    return (double)t.tv_sec + 1e-6 * (double)t.tv_usec;
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
    nb_graph_set_retain_grads(g, false); // as PyTorch: op outputs' grads recycled in the sweep
    double *cpu = malloc((size_t)steps * sizeof *cpu), *wall = malloc((size_t)steps * sizeof *wall);
    int64_t allocs = 0;
    double cpu_sum = 0, wall_sum = 0, sys_sum = 0;
    long minflt = 0;
    for (int64_t s = -WARMUP; s < steps; s++) {
        for (int64_t i = 0; i < B * T; i++) {
            nb_tensor_set(x, i, (double)nb_rng_below(&rng, V));
            nb_tensor_set(y, i, (double)nb_rng_below(&rng, V));
        }
        if (s == 0)
            bu_count_allocations();
        int64_t a0 = bu_allocations();
        struct rusage r0, r1;
        getrusage(RUSAGE_SELF, &r0);
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
            getrusage(RUSAGE_SELF, &r1);
            allocs += bu_allocations() - a0;
            cpu_sum += cpu[s], wall_sum += wall[s];
            sys_sum += tv_s(r1.ru_stime) - tv_s(r0.ru_stime);
            minflt += r1.ru_minflt - r0.ru_minflt;
        }
    }
    int nthreads = os_threads();
    qsort(cpu, (size_t)steps, sizeof *cpu, cmp_d);
    qsort(wall, (size_t)steps, sizeof *wall, cmp_d);
    double tok = (double)(B * T);
    printf("{\"bench\": \"charlm_step\", \"threads\": %d, \"params\": %lld, \"step_cpu_ms\": %.2f, "
           "\"tok_per_cpu_s\": %.0f, \"step_wall_ms\": %.2f, \"tok_per_s\": %.0f, "
           "\"peak_rss_mib\": %.1f, \"allocs_per_step\": %.2f, \"os_threads\": %d, "
           "\"cores_used\": %.2f, \"minflt_per_step\": %.0f, \"sys_ms_per_step\": %.2f, "
           "\"warmup\": %d, \"best_step_cpu_ms\": %.2f, \"best_step_wall_ms\": %.2f}\n",
           (int)threads, (long long)nb_params_numel(ps, NB_PARAM), 1e3 * cpu[steps / 2],
           tok / cpu[steps / 2], 1e3 * wall[steps / 2], tok / wall[steps / 2], bu_max_rss_mib(),
           (double)allocs / (double)steps, nthreads, cpu_sum / wall_sum,
           (double)minflt / (double)steps, 1e3 * sys_sum / (double)steps, WARMUP, 1e3 * cpu[0],
           1e3 * wall[0]);
    free(cpu), free(wall);
    nb_graph_destroy(g);
    nb_optim_destroy(opt);
    nb_params_destroy(ps);
    charlm_destroy(m);
    nb_tensor_destroy(x), nb_tensor_destroy(y);
    return 0;
}
