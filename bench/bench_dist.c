// Data-parallel training cost (issue 16), run under mpirun (or alone as one rank):
//   1. the 784-512-512-10 MLP or examples/cnn's CNN (--model cnn) training step (float32,
//      SGD + momentum) with the global batch split over the ranks: step time, gradient
//      all-reduce time per step and its share, after backward or overlapped with it
//      (--overlap: grad-ready hook, buckets of --bucket KiB);
//   2. the all-reduce of that MLP's gradients (2.7 MB) for a sweep of bucket sizes;
//   3. all-reduce time against message size, nabla's reducer and a plain blocking
//      MPI_Allreduce, for the latency + bytes/bandwidth model in bench/README.md.
// One JSON object per measurement on stdout (rank 0). Medians over repetitions.
//   mpirun -np 2 bench_dist --threads 1        vs        bench_dist --threads 2
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "nabla.h"
#ifdef NB_BENCH_MPI
#include <mpi.h>
#endif

static nb_dist *d;

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static void need(bool ok, const char *what) {
    if (!ok)
        nb_dist_abort(d, 2, "bench_dist: %s: %s", what, nb_last_error());
}

// Every parameter of ps gets a grad (ones) through one backward of Σ sum(p).
static void give_grads(nb_params *ps) {
    nb_graph *g = nb_graph_create();
    nb_tensor *loss = NULL;
    for (int i = 0; i < nb_params_count(ps, NB_PARAM); i++) {
        nb_tensor *s = nb_sum(g, nb_params_tensor(ps, NB_PARAM, i));
        loss = loss ? nb_add(g, loss, s) : s;
    }
    need(nb_backward(g, loss) == NB_OK, "backward");
    nb_graph_destroy(g);
}

// examples/cnn's default model without dropout: conv 1->32 and 32->64 (3x3, pad 1, no bias)
// each with batch norm, relu, 2x2 max pooling, then 3136 -> 128 -> 10.
static nb_layer *cnn(nb_rng *rng) {
    nb_layer *m = nb_nn_sequential_create();
    int64_t ch[3] = {1, 32, 64};
    for (int b = 0; b < 2; b++) {
        nb_nn_conv2d_options k3 = {.kernel = {3, 3}, .padding = {1, 1}, .no_bias = true};
        nb_nn_sequential_add(m, NULL, nb_nn_conv2d_create(ch[b], ch[b + 1], k3, NB_F32, rng));
        nb_nn_sequential_add(m, NULL,
                             nb_nn_batch_norm2d_create(ch[b + 1], 1e-5, 0.1, true, NB_F32));
        nb_nn_sequential_add(m, NULL, nb_nn_relu_create());
        nb_nn_sequential_add(m, NULL, nb_nn_max_pool2d_create(2, 2, 0));
    }
    nb_nn_sequential_add(m, NULL, nb_nn_flatten_create(1, -1));
    nb_nn_sequential_add(m, NULL, nb_nn_linear_create(64 * 7 * 7, 128, true, NB_F32, rng));
    nb_nn_sequential_add(m, NULL, nb_nn_relu_create());
    nb_nn_sequential_add(m, NULL, nb_nn_linear_create(128, 10, true, NB_F32, rng));
    return m;
}

static nb_layer *mlp(nb_rng *rng) {
    nb_layer *m = nb_nn_sequential_create();
    nb_nn_sequential_add(m, "fc1", nb_nn_linear_create(784, 512, true, NB_F32, rng));
    nb_nn_sequential_add(m, NULL, nb_nn_relu_create());
    nb_nn_sequential_add(m, "fc2", nb_nn_linear_create(512, 512, true, NB_F32, rng));
    nb_nn_sequential_add(m, NULL, nb_nn_relu_create());
    nb_nn_sequential_add(m, "fc3", nb_nn_linear_create(512, 10, true, NB_F32, rng));
    return m;
}

// Median seconds of one nb_dist_allreduce_grads over reps (a barrier before each); *best gets
// the fastest (on a shared machine the closest to an idle one).
static double time_reduce(nb_dist_reducer *r, int reps, double *best) {
    double t[64];
    for (int i = 0; i < reps; i++) {
        nb_dist_barrier(d);
        double t0 = bu_now();
        need(nb_dist_allreduce_grads(r, 1.0) == NB_OK, "all-reduce");
        t[i] = bu_now() - t0;
    }
    double m = median(t, reps); // rank 0's; the barrier lines the ranks up before each call
    *best = t[0];               // sorted by median()
    return m;
}

static void bench_step(int64_t global_batch, int steps, bool reduce, bool is_cnn, bool overlap,
                       size_t bucket) {
    int rank = nb_dist_rank(d), size = nb_dist_size(d);
    nb_rng rng;
    nb_rng_seed(&rng, 1);
    nb_layer *m = is_cnn ? cnn(&rng) : mlp(&rng);
    nb_params *ps = nb_params_create();
    need(nb_layer_collect(m, ps, NULL) == NB_OK, "collect");
    nb_optim_config cfg = nb_optim_defaults(NB_OPTIM_SGD, 0.01);
    cfg.momentum = 0.9;
    nb_optim *opt = nb_params_optim_create(ps, cfg, false);
    need(nb_dist_broadcast_params(d, ps) == NB_OK, "broadcast");
    nb_dist_reducer *r = reduce ? nb_dist_reducer_create(d, ps, bucket) : NULL;
    int64_t off, n;
    nb_dist_slice(global_batch, rank, size, &off, &n);
    nb_tensor *x = is_cnn ? nb_tensor_create(NB_F32, 4, (int64_t[]){n, 1, 28, 28})
                          : nb_tensor_create(NB_F32, 2, (int64_t[]){n, 784});
    nb_tensor *y = nb_tensor_create(NB_I32, 1, (int64_t[]){n});
    nb_rng drng;
    nb_rng_seed(&drng, 7 + (uint64_t)rank);
    nb_init_uniform(x, &drng, 0, 1);
    for (int64_t i = 0; i < n; i++)
        nb_tensor_set(y, i, (double)nb_rng_below(&drng, 10));
    nb_graph *g = nb_graph_create();
    if (r && overlap)
        nb_graph_set_grad_ready(g, nb_dist_grad_ready, r);
    double *t = calloc((size_t)steps, sizeof *t);
    for (int s = -5; s < steps; s++) { // 5 warm-up steps
        if (s == 0 && r)
            nb_dist_reducer_reset_stats(r);
        double t0 = bu_now();
        nb_graph_reset(g);
        nb_optim_zero_grad(opt);
        nb_tensor *loss =
            nb_sparse_cross_entropy_logits(g, nb_layer_forward(g, m, x), y, NB_REDUCE_MEAN);
        if (r && overlap)
            need(nb_dist_overlap_begin(r, (double)n) == NB_OK, "overlap");
        need(loss && nb_backward(g, loss) == NB_OK, "step");
        if (r)
            need((overlap ? nb_dist_overlap_end(r) : nb_dist_allreduce_grads(r, (double)n)) ==
                     NB_OK,
                 "all-reduce");
        nb_optim_step(opt);
        if (s >= 0)
            t[s] = bu_now() - t0;
    }
    nb_dist_stats st = {0};
    if (r)
        nb_dist_reducer_stats(r, &st);
    double sums[2] = {0, st.seconds / (double)(st.calls ? st.calls : 1)};
    double step = median(t, steps);
    sums[0] = step;
    nb_dist_allreduce_sum(d, sums, 2); // mean over ranks
    if (rank == 0)
        printf("{\"bench\": \"dist_step\", \"model\": \"%s\", \"ranks\": %d, \"threads\": %d, "
               "\"overlap\": %s, \"buckets\": %d, \"global_batch\": %lld, \"local_batch\": %lld, "
               "\"step_ms\": %.3f, \"allreduce_ms\": %.3f, \"allreduce_share\": %.3f, "
               "\"samples_per_s\": %.0f, \"params\": %lld}\n",
               is_cnn ? "cnn-32-64-128" : "784-512-512-10", size, nb_get_num_threads(),
               r && overlap ? "true" : "false", r ? nb_dist_reducer_buckets(r) : 0,
               (long long)global_batch, (long long)n, 1e3 * sums[0] / size, 1e3 * sums[1] / size,
               sums[1] / sums[0], (double)global_batch / (sums[0] / size),
               (long long)nb_params_numel(ps, NB_PARAM));
    free(t);
    nb_graph_destroy(g);
    nb_tensor_destroy(x);
    nb_tensor_destroy(y);
    nb_dist_reducer_destroy(r);
    nb_optim_destroy(opt);
    nb_params_destroy(ps);
    nb_layer_destroy(m);
}

static void bench_buckets(int reps) {
    nb_rng rng;
    nb_rng_seed(&rng, 1);
    nb_layer *m = mlp(&rng);
    nb_params *ps = nb_params_create();
    need(nb_layer_collect(m, ps, NULL) == NB_OK, "collect");
    give_grads(ps);
    static const size_t kb[] = {64, 256, 1024, 4096, 16384};
    for (size_t i = 0; i < sizeof kb / sizeof kb[0]; i++) {
        nb_dist_reducer *r = nb_dist_reducer_create(d, ps, kb[i] << 10);
        need(r != NULL, "reducer");
        double best, s = time_reduce(r, reps, &best);
        if (nb_dist_rank(d) == 0)
            printf("{\"bench\": \"dist_bucket\", \"ranks\": %d, \"bucket_kib\": %zu, "
                   "\"buckets\": %d, \"bytes\": %lld, \"allreduce_ms\": %.3f, "
                   "\"min_ms\": %.3f}\n",
                   nb_dist_size(d), kb[i], nb_dist_reducer_buckets(r),
                   (long long)(4 * nb_params_numel(ps, NB_PARAM)), 1e3 * s, 1e3 * best);
        nb_dist_reducer_destroy(r);
    }
    nb_params_destroy(ps);
    nb_layer_destroy(m);
}

static void bench_sizes(int reps) {
    for (int64_t bytes = 4096; bytes <= ((int64_t)64 << 20); bytes *= 4) {
        int64_t n = bytes / 4;
        nb_tensor *p = nb_tensor_create(NB_F32, 1, &n);
        nb_tensor_set_requires_grad(p, true);
        nb_params *ps = nb_params_create();
        nb_params_add(ps, NULL, "p", p, NB_PARAM);
        give_grads(ps);
        nb_dist_reducer *r = nb_dist_reducer_create(d, ps, (size_t)bytes);
        need(r != NULL, "reducer");
        double best, s = time_reduce(r, reps, &best), raw = NAN, raw_best = NAN;
#ifdef NB_BENCH_MPI
        // The same bytes through a blocking MPI_Allreduce: the library's floor.
        double t[64];
        float *buf = nb_tensor_grad_f32(p);
        for (int i = 0; i < reps; i++) {
            MPI_Barrier(MPI_COMM_WORLD);
            double t0 = bu_now();
            MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
            t[i] = bu_now() - t0;
        }
        raw = median(t, reps);
        raw_best = t[0];
#endif
        if (nb_dist_rank(d) == 0)
            printf("{\"bench\": \"dist_allreduce\", \"ranks\": %d, \"bytes\": %lld, "
                   "\"nabla_ms\": %.4f, \"nabla_min_ms\": %.4f, \"mpi_allreduce_ms\": %.4f, "
                   "\"mpi_min_ms\": %.4f}\n",
                   nb_dist_size(d), (long long)bytes, 1e3 * s, 1e3 * best, 1e3 * raw,
                   1e3 * raw_best);
        nb_dist_reducer_destroy(r);
        nb_params_destroy(ps);
        nb_tensor_destroy(p);
    }
}

int main(int argc, char **argv) {
    d = nb_dist_init(&argc, &argv);
    if (!d) {
        fprintf(stderr, "bench_dist: %s\n", nb_last_error());
        return 1;
    }
    int64_t threads = 1, batch = 64, steps = 60, reps = 21, bucket_kib = 0, overlap = 0;
    const char *what = "all", *model = "mlp";
    for (int i = 1; i + 1 < argc; i += 2) {
        bool ok = !strcmp(argv[i], "--threads")   ? bu_int(argv[i + 1], 1, 64, &threads)
                  : !strcmp(argv[i], "--batch")   ? bu_int(argv[i + 1], 1, 1 << 20, &batch)
                  : !strcmp(argv[i], "--steps")   ? bu_int(argv[i + 1], 1, 100000, &steps)
                  : !strcmp(argv[i], "--reps")    ? bu_int(argv[i + 1], 1, 64, &reps)
                  : !strcmp(argv[i], "--only")    ? (what = argv[i + 1], true)
                  : !strcmp(argv[i], "--model")   ? (model = argv[i + 1], true)
                  : !strcmp(argv[i], "--bucket")  ? bu_int(argv[i + 1], 1, 1 << 20, &bucket_kib)
                  : !strcmp(argv[i], "--overlap") ? bu_int(argv[i + 1], 0, 1, &overlap)
                                                  : false;
        if (!ok)
            nb_dist_abort(d, 2,
                          "usage: bench_dist [--threads T] [--batch B] [--steps K] [--reps R] "
                          "[--only step|buckets|sizes] [--model mlp|cnn] [--bucket KiB] "
                          "[--overlap 0|1]");
    }
    nb_set_num_threads((int)threads);
    if (!strcmp(what, "all") || !strcmp(what, "step")) {
        bench_step(batch, (int)steps, nb_dist_size(d) > 1, !strcmp(model, "cnn"), overlap != 0,
                   (size_t)bucket_kib << 10);
    }
    if (!strcmp(what, "all") || !strcmp(what, "buckets"))
        bench_buckets((int)reps);
    if (!strcmp(what, "all") || !strcmp(what, "sizes"))
        bench_sizes((int)reps);
    nb_dist_finalize(d);
    return 0;
}
