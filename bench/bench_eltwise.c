// bench_eltwise: memory bandwidth of the elementwise kernels against a plain triad loop
// a = b + s c, timed right before each kernel so every pair sees the same machine. Float32;
// sizes 1 K, 64 K and 16 M elements; 1 and 2 threads, alternating within each repetition
// (nb_set_num_threads; the triad uses the same OpenMP team and size threshold as the library's
// NB_PARALLEL_FOR).
// Bytes counted are the ones the kernel must move, as STREAM counts them:
//   unary forward (relu, sigmoid, ...)   read x, write y                     8 n
//   unary backward                       read x or y, read dy, update dx     16 n
//   add forward                          read a, b, write y                  12 n
//   add backward                         read dy, update da and db           20 n
//   triad                                read b, c, write a                  12 n
// Each kernel is called directly through the library-private ops/kernels.h, without a graph
// or a tape, so nothing but the kernel is timed. At 1 thread the same pairs are also timed by
// the thread's CPU time (cpu_gbps, triad_cpu_gbps), a ratio that a loaded machine disturbs less.
// Each timing repeats the kernel for at least MIN_SECONDS (iterations calibrated in a first
// pass that also warms caches and thread teams). Inputs are uniform in [-2, 2] ([0.01, 4] for
// log); elu uses alpha = 1. Usage: bench_eltwise [--reps R] [--n N (one size only)].
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "bench_util.h"
#include "nabla.h"
#include "ops/kernels.h"

#define MIN_SECONDS 0.03

// Every unary op with a transcendental (issue 17) beside relu and add (issue 4); ADD last.
enum { N_OPS = 11, ADD = N_OPS - 1 };
static const char *const op_names[N_OPS] = {
    "relu", "sigmoid", "tanh", "exp", "log", "gelu", "gelu_tanh", "silu", "softplus", "elu", "add"};

typedef struct {
    const nb_unary_kernels *unary;   // relu, sigmoid, gelu
    const nb_binary_kernels *binary; // add
    nb_tensor *a, *b, *y;            // inputs (b only for add) and the output
    nb_tensor *gy, *ga, *gb;         // upstream gradient and the input gradients
} op_case;

// The plain loop; above NB_OMP_MIN split across the team. The branch is in C, not an OpenMP if()
// clause, so a small triad never enters the OpenMP runtime.
static void triad(float *a, const float *b, const float *c, float s, int64_t n) {
    if (n > NB_OMP_MIN) {
#ifdef _OPENMP
#pragma omp parallel for schedule(static)
#endif
        for (int64_t i = 0; i < n; i++)
            a[i] = b[i] + s * c[i];
    } else {
        for (int64_t i = 0; i < n; i++)
            a[i] = b[i] + s * c[i];
    }
}

static nb_tensor *rand_in(int64_t n, nb_rng *rng, double lo, double hi) {
    nb_tensor *t = nb_tensor_create(NB_F32, 1, &n);
    if (t && nb_init_uniform(t, rng, lo, hi) != NB_OK) {
        nb_tensor_destroy(t);
        t = NULL;
    }
    return t;
}
static nb_tensor *rand_vec(int64_t n, nb_rng *rng) {
    return rand_in(n, rng, -2, 2);
}

// Inputs, output and gradients of one kernel call, all finite.
static bool case_init(op_case *c, int op, int64_t n, nb_rng *rng) {
    memset(c, 0, sizeof *c);
    if (op == ADD)
        c->binary = nb__binary_kernels(op_names[op]);
    else
        c->unary = nb__unary_kernels(op_names[op]);
    c->a = strcmp(op_names[op], "log") ? rand_vec(n, rng) : rand_in(n, rng, 0.01, 4);
    c->b = rand_vec(n, rng);
    c->y = rand_vec(n, rng);
    c->gy = rand_vec(n, rng);
    c->ga = rand_vec(n, rng);
    c->gb = rand_vec(n, rng);
    return (c->unary || c->binary) && c->a && c->b && c->y && c->gy && c->ga && c->gb;
}

static void case_free(op_case *c) {
    nb_tensor *t[] = {c->a, c->b, c->y, c->gy, c->ga, c->gb};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        nb_tensor_destroy(t[i]);
}

static void run_kernel(const op_case *c, int bwd, int64_t n) {
    if (c->binary && bwd)
        c->binary->bwd(c->a, c->b, c->y, nb_tensor_data(c->gy), nb_tensor_data(c->ga),
                       nb_tensor_data(c->gb));
    else if (c->binary)
        c->binary->fwd(c->a, c->b, c->y);
    else if (bwd)
        c->unary->bwd(NB_F32, nb_tensor_data(c->a), nb_tensor_data(c->y), nb_tensor_data(c->gy),
                      nb_tensor_data(c->ga), n, 1.0);
    else
        c->unary->fwd(NB_F32, nb_tensor_data(c->a), nb_tensor_data(c->y), n, 1.0);
}

// CPU time of the calling thread, which alone runs the kernels at 1 thread: unlike wall time it
// stops while the thread waits for a core, so on a loaded machine the 1-thread ratio of kernel
// to triad CPU times still measures the kernel (memory contention from others remains).
static double thread_cpu(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

// Seconds for *iters calls of one kernel (op -1 is the triad), wall time, and the calling
// thread's CPU seconds in *cpu. When calibrating, *iters doubles from 1 until the calls take
// MIN_SECONDS.
static double time_kernel(op_case *cs, int op, int bwd, float *a, const float *b, const float *c,
                          int64_t n, int64_t *iters, bool calibrate, double *cpu) {
    for (int64_t m = calibrate ? 1 : *iters;; m *= 2) {
        double c0 = thread_cpu(), t0 = bu_now();
        for (int64_t q = 0; q < m; q++) {
            if (op < 0)
                triad(a, b, c, 0.5f, n);
            else
                run_kernel(cs, bwd, n);
        }
        double dt = bu_now() - t0;
        *cpu = thread_cpu() - c0;
        *iters = m;
        if (!calibrate || dt >= MIN_SECONDS)
            return dt;
    }
}

// One JSON line; at 1 thread also GB/s by the thread's CPU time (cpu_gbps, triad_cpu_gbps).
static void report(int op, int bwd, int64_t n, int threads, double bytes, int64_t iters, double dt,
                   double triad_gbps, double cpu, double triad_cpu_gbps) {
    printf("{\"bench\": \"eltwise\", \"op\": \"%s\", \"dir\": \"%s\", \"n\": %" PRId64
           ", \"threads\": %d, \"gbps\": %.3f, \"triad_gbps\": %.3f",
           op_names[op], bwd ? "bwd" : "fwd", n, threads, bytes * (double)iters / dt * 1e-9,
           triad_gbps);
    if (threads == 1)
        printf(", \"cpu_gbps\": %.3f, \"triad_cpu_gbps\": %.3f", bytes * (double)iters / cpu * 1e-9,
               triad_cpu_gbps);
    printf("}\n");
}

int main(int argc, char **argv) {
    int64_t reps = 3, only_n = 0;
    for (int i = 1; i < argc; i++) {
        bool ok = i + 1 < argc;
        if (ok && !strcmp(argv[i], "--reps"))
            ok = bu_int(argv[++i], 1, 1000, &reps);
        else if (ok && !strcmp(argv[i], "--n"))
            ok = bu_int(argv[++i], 1, 1 << 28, &only_n);
        else
            ok = false;
        if (!ok) {
            fprintf(stderr, "usage: bench_eltwise [--reps R] [--n N]\n");
            return 2;
        }
    }
    const int64_t sizes[] = {1024, 65536, 16777216};
    double fwd_bytes[N_OPS], bwd_bytes[N_OPS];
    for (int op = 0; op < N_OPS; op++) {
        fwd_bytes[op] = op == ADD ? 12 : 8;
        bwd_bytes[op] = op == ADD ? 20 : 16;
    }
    nb_rng rng;
    nb_rng_seed(&rng, 1);
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
        int64_t n = only_n ? only_n : sizes[si];
        if (only_n && si > 0)
            break;
        op_case cs[N_OPS];
        nb_tensor *ta = rand_vec(n, &rng), *tb = rand_vec(n, &rng);
        nb_tensor *tc = rand_vec(n, &rng);
        for (int op = 0; op < N_OPS; op++)
            if (!case_init(&cs[op], op, n, &rng) || !ta || !tb || !tc) {
                fprintf(stderr, "bench_eltwise: setup failed for n = %" PRId64 "\n", n);
                return 1;
            }
        float *a = nb_tensor_data_f32(ta), *b = nb_tensor_data_f32(tb);
        float *c = nb_tensor_data_f32(tc);
        int64_t iters[3][N_OPS + 1][2] = {{{0}}}; // per thread count and kernel: calibrated
        for (int64_t r = -1; r < reps; r++) {     // pass -1 calibrates and warms up
            for (int threads = 1; threads <= 2; threads++) {
                nb_set_num_threads(threads);
                for (int k = 0; k < 2 * N_OPS; k++) {
                    // The triad runs right before each kernel: the pair sees the same machine.
                    int op = k / 2, bwd = k % 2;
                    int64_t *it_t = &iters[threads][0][0], *it = &iters[threads][op + 1][bwd];
                    double cpu_t, cpu;
                    double dt_t =
                        time_kernel(NULL, -1, 0, a, b, c, n, it_t, r < 0 && k == 0, &cpu_t);
                    double dt = time_kernel(&cs[op], op, bwd, a, b, c, n, it, r < 0, &cpu);
                    double bytes = (bwd ? bwd_bytes[op] : fwd_bytes[op]) * (double)n;
                    double triad_bytes = 12.0 * (double)n * (double)*it_t;
                    if (r >= 0)
                        report(op, bwd, n, threads, bytes, *it, dt, triad_bytes / dt_t * 1e-9, cpu,
                               triad_bytes / cpu_t * 1e-9);
                }
                fflush(stdout);
            }
        }
        for (int op = 0; op < N_OPS; op++)
            case_free(&cs[op]);
        nb_tensor_destroy(ta);
        nb_tensor_destroy(tb);
        nb_tensor_destroy(tc);
    }
    return 0;
}
