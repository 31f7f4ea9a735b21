// Determinism: with a fixed seed and thread count two trainings are bitwise identical; with 1
// and 2 threads they agree to float rounding (BLAS may split sums differently; nabla's own
// kernels use fixed static chunks and serial reductions, so they do not change results).
// The layer sizes put the elementwise kernels above NB_OMP_MIN (its default: main sets it, as
// OMP_WAIT_POLICY=passive would raise it), so threads really run.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <math.h>

#include "nabla.h"
#include "tensor/parallel.h" // nb__omp_min

enum { BATCH = 64, IN = 96, HIDDEN = 1024, CLASSES = 10, STEPS = 8, N_PARAMS = 4 };

typedef struct {
    nb_tensor *p[N_PARAMS];
    double losses[STEPS];
} run_result;

static run_result train(int threads, nb_dtype dt) {
    nb_set_num_threads(threads);
    run_result r;
    const int64_t shapes[N_PARAMS][2] = {
        {HIDDEN, IN}, {HIDDEN, 0}, {CLASSES, HIDDEN}, {CLASSES, 0}};
    nb_rng rng;
    nb_rng_seed(&rng, 2024);
    for (int i = 0; i < N_PARAMS; i++) {
        r.p[i] = nb_tensor_create(dt, shapes[i][1] ? 2 : 1, shapes[i]);
        nb_init_he_uniform(r.p[i], &rng);
        nb_tensor_set_requires_grad(r.p[i], true);
    }
    nb_tensor *x = nb_tensor_create(dt, 2, (int64_t[]){BATCH, IN});
    nb_tensor *y = nb_tensor_create(NB_I32, 1, (int64_t[]){BATCH});
    nb_sgd *opt = nb_sgd_create(r.p, N_PARAMS, (nb_sgd_config){.lr = 0.05, .momentum = 0.9});
    nb_graph *g = nb_graph_create();
    for (int step = 0; step < STEPS; step++) {
        nb_init_uniform(x, &rng, -1, 1);
        for (int i = 0; i < BATCH; i++)
            nb_tensor_set(y, i, (double)nb_rng_below(&rng, CLASSES));
        nb_graph_reset(g);
        nb_sgd_zero_grad(opt);
        nb_tensor *h = nb_gelu(g, nb_linear(g, x, r.p[0], r.p[1]));
        nb_tensor *loss =
            nb_sparse_cross_entropy_logits(g, nb_linear(g, h, r.p[2], r.p[3]), y, NB_REDUCE_MEAN);
        assert_non_null(loss);
        assert_int_equal(nb_backward(g, loss), NB_OK);
        assert_int_equal(nb_sgd_step(opt), NB_OK);
        r.losses[step] = nb_tensor_get(loss, 0);
    }
    nb_graph_destroy(g);
    nb_sgd_destroy(opt);
    nb_tensor_destroy(x);
    nb_tensor_destroy(y);
    return r;
}

static void release(run_result *r) {
    for (int i = 0; i < N_PARAMS; i++)
        nb_tensor_destroy(r->p[i]);
}

static void same_threads_bitwise_identical(void **state) {
    (void)state;
    for (int threads = 1; threads <= 2; threads++) {
        run_result a = train(threads, NB_F32), b = train(threads, NB_F32);
        assert_memory_equal(a.losses, b.losses, sizeof a.losses);
        for (int i = 0; i < N_PARAMS; i++)
            assert_memory_equal(nb_tensor_data(a.p[i]), nb_tensor_data(b.p[i]),
                                (size_t)nb_tensor_numel(a.p[i]) * sizeof(float));
        release(&a);
        release(&b);
    }
}

static void one_and_two_threads_agree(void **state) {
    (void)state;
    nb_dtype dts[] = {NB_F32, NB_F64};
    double tols[] = {1e-5, 1e-12};
    for (int d = 0; d < 2; d++) {
        run_result a = train(1, dts[d]), b = train(2, dts[d]);
        for (int s = 0; s < STEPS; s++)
            assert_true(fabs(a.losses[s] - b.losses[s]) <= tols[d] * fabs(a.losses[s]));
        for (int i = 0; i < N_PARAMS; i++)
            for (int64_t k = 0; k < nb_tensor_numel(a.p[i]); k++) {
                double u = nb_tensor_get(a.p[i], k), v = nb_tensor_get(b.p[i], k);
                assert_true(fabs(u - v) <= tols[d] * (1 + fabs(u)));
            }
        release(&a);
        release(&b);
    }
}

int main(void) {
    nb__omp_min = NB_OMP_MIN_DEFAULT;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(same_threads_bitwise_identical),
        cmocka_unit_test(one_and_two_threads_agree),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
