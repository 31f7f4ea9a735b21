// The CNN training step of examples/cnn built from layers (conv2d, batch_norm2d, relu,
// max_pool2d, flatten, dropout, linear; sparse cross-entropy; Adam): after the first steps a
// step allocates nothing (nb_graph_reset keeps the arena; the optimizer's state and the leaf
// gradients exist), at 1 and 2 threads, and the loss falls on a fixed batch.
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "nabla.h"
#include "support/alloc_count.h"

#define ADD(m, layer) assert_int_equal(nb_nn_sequential_add(m, NULL, layer), NB_OK)

static nb_layer *small_cnn(nb_rng *init, nb_rng *drop) {
    nb_layer *m = nb_nn_sequential_create();
    assert_non_null(m);
    int64_t ch[3] = {1, 4, 8};
    for (int b = 0; b < 2; b++) {
        nb_nn_conv2d_options k3 = {.kernel = {3, 3}, .padding = {1, 1}, .no_bias = true};
        ADD(m, nb_nn_conv2d_create(ch[b], ch[b + 1], k3, NB_F32, init));
        ADD(m, nb_nn_batch_norm2d_create(ch[b + 1], 1e-5, 0.1, true, NB_F32));
        ADD(m, nb_nn_relu_create());
        ADD(m, nb_nn_max_pool2d_create(2, 2, 0));
    }
    ADD(m, nb_nn_flatten_create(1, -1));
    ADD(m, nb_nn_dropout_create(0.25, drop));
    ADD(m, nb_nn_linear_create(8 * 3 * 3, 16, true, NB_F32, init));
    ADD(m, nb_nn_relu_create());
    ADD(m, nb_nn_dropout_create(0.25, drop));
    ADD(m, nb_nn_linear_create(16, 10, true, NB_F32, init));
    return m;
}

static void cnn_step_allocates_nothing(void **state) {
    (void)state;
    for (int threads = 1; threads <= 2; threads++) {
        nb_set_num_threads(threads);
        tc_count_allocs_start();
        nb_rng init, drop;
        nb_rng_seed(&init, 1);
        nb_rng_seed(&drop, 2);
        nb_layer *model = small_cnn(&init, &drop);
        nb_params *ps = nb_params_create();
        assert_int_equal(nb_layer_collect(model, ps, NULL), NB_OK);
        nb_optim *opt = nb_params_optim_create(ps, nb_optim_defaults(NB_OPTIM_ADAM, 1e-2), true);
        assert_non_null(opt);
        nb_tensor *x = nb_tensor_create(NB_F32, 4, (int64_t[]){16, 1, 12, 12});
        nb_tensor *y = nb_tensor_create(NB_I32, 1, (int64_t[]){16});
        assert_int_equal(nb_init_uniform(x, &init, 0, 1), NB_OK);
        for (int64_t i = 0; i < 16; i++)
            nb_tensor_set(y, i, (double)(i % 10));
        nb_graph *g = nb_graph_create();
        long before = 0;
        double first = 0, last = 0;
        for (int step = 0; step < 30; step++) {
            if (step == 5)
                before = tc_allocs();
            nb_graph_reset(g);
            nb_tensor *loss =
                nb_sparse_cross_entropy_logits(g, nb_layer_forward(g, model, x), y, NB_REDUCE_MEAN);
            assert_non_null(loss);
            nb_optim_zero_grad(opt);
            assert_int_equal(nb_backward(g, loss), NB_OK);
            assert_int_equal(nb_optim_step(opt), NB_OK);
            last = nb_tensor_get(loss, 0);
            if (step == 0)
                first = last;
        }
        long steady = tc_allocs() - before;
        tc_count_allocs_stop();
        assert_int_equal(steady, 0);
        assert_true(isfinite(last) && last < 0.5 * first);
        nb_graph_destroy(g);
        nb_tensor_destroy(x);
        nb_tensor_destroy(y);
        nb_optim_destroy(opt);
        nb_params_destroy(ps);
        nb_layer_destroy(model);
    }
    nb_set_num_threads(2);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(cnn_step_allocates_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
