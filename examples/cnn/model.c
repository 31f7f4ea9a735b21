// cnn's model (one sequential, PyTorch's names), its data and evaluation, and the run's
// resources (cnn.h).
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "cnn/cnn.h"

void cnn_run_free(run_state *r) {
    nb_dist_reducer_destroy(r->red);
    nb_batch_iter_destroy(r->it);
    nb_optim_destroy(r->opt);
    nb_graph_destroy(r->g);
    nb_graph_destroy(r->eval_g);
    nb_tensor_destroy(r->x);
    nb_tensor_destroy(r->y);
    nb_tensor_destroy(r->xe);
    nb_tensor_destroy(r->ye);
    nb_params_destroy(r->ps);
    nb_layer_destroy(r->model);
    free(r->names);
    free(r->tensors);
    nb_dataset_free(&r->train);
    nb_dataset_free(&r->test);
}

#define ADD(layer)                                                                                 \
    do {                                                                                           \
        if (nb_nn_sequential_add(m, NULL, (layer)) != NB_OK)                                       \
            return NULL;                                                                           \
    } while (0)

// The model as one sequential, children named by position as PyTorch's nn.Sequential.
static nb_layer *build(nb_layer *m, const cnn_options *o, int64_t rows, int64_t cols, nb_rng *init,
                       nb_rng *drop) {
    int64_t ch[3] = {1, o->c1, o->c2};
    for (int b = 0; b < 2; b++) {
        nb_nn_conv2d_options k3 = {.kernel = {3, 3}, .padding = {1, 1}, .no_bias = o->bn};
        ADD(nb_nn_conv2d_create(ch[b], ch[b + 1], k3, NB_F32, init));
        if (o->bn) // its shift makes the convolution's bias redundant
            ADD(nb_nn_batch_norm2d_create(ch[b + 1], 1e-5, 0.1, true, NB_F32));
        ADD(nb_nn_relu_create());
        ADD(nb_nn_max_pool2d_create(2, 2, 0));
    }
    ADD(nb_nn_flatten_create(1, -1));
    if (o->dropout > 0)
        ADD(nb_nn_dropout_create(o->dropout, drop));
    ADD(nb_nn_linear_create(o->c2 * (rows / 4) * (cols / 4), o->hidden, true, NB_F32, init));
    ADD(nb_nn_relu_create());
    if (o->dropout > 0)
        ADD(nb_nn_dropout_create(o->dropout, drop));
    ADD(nb_nn_linear_create(o->hidden, CLASSES, true, NB_F32, init));
    return m;
}

// --distributed: v[0..n) := their sums over the ranks (counts: exact in float64).
static nb_status dist_sum_counts(nb_dist *d, int64_t *v, int n) {
    for (int k = 0; k < n; k += 64) {
        double buf[64];
        int m = n - k < 64 ? n - k : 64;
        for (int i = 0; i < m; i++)
            buf[i] = (double)v[k + i];
        nb_status st = nb_dist_allreduce_sum(d, buf, m);
        if (st != NB_OK)
            return st;
        for (int i = 0; i < m; i++)
            v[k + i] = (int64_t)buf[i];
    }
    return NB_OK;
}

double cnn_evaluate(run_state *r, int64_t *confusion) {
    int64_t idx[EVAL_CHUNK], tally[1 + CLASSES * CLASSES] = {0}, lo = 0, cnt = r->test.n;
    int64_t *correct = tally, *conf = tally + 1;
    nb_dist_slice(r->test.n, nb_dist_rank(r->dist), nb_dist_size(r->dist), &lo, &cnt);
    nb_status bad = NB_OK;
    nb_layer_train(r->model, false);
    for (int64_t s = lo; s < lo + cnt; s += EVAL_CHUNK) {
        int64_t n = lo + cnt - s < EVAL_CHUNK ? lo + cnt - s : EVAL_CHUNK;
        for (int64_t i = 0; i < n; i++)
            idx[i] = s + i;
        nb_tensor *x = r->xe, *y = r->ye;
        if (n < EVAL_CHUNK) {
            x = nb_tensor_wrap(NB_F32, 4, (int64_t[]){n, 1, r->test.rows, r->test.cols},
                               nb_tensor_data(r->xe));
            y = nb_tensor_wrap(NB_I32, 1, (int64_t[]){n}, nb_tensor_data(r->ye));
        }
        nb_graph_reset(r->eval_g);
        nb_tensor *logits = NULL;
        if (x && y && nb_dataset_fill_batch(&r->test, idx, n, x, NULL, y) == NB_OK)
            logits = nb_layer_forward(r->eval_g, r->model, x);
        for (int64_t i = 0; logits && i < n; i++) {
            int pred = mnist_argmax_row(logits, i), truth = nb_tensor_data_i32(y)[i];
            *correct += pred == truth;
            conf[truth * CLASSES + pred]++;
        }
        if (x != r->xe) {
            nb_tensor_destroy(x);
            nb_tensor_destroy(y);
        }
        if (!logits) {
            cnn_fail("evaluating: %s", nb_graph_status(r->eval_g) != NB_OK
                                           ? nb_graph_error(r->eval_g)
                                           : nb_last_error());
            bad = NB_ERR_STATE;
            break;
        }
    }
    nb_layer_train(r->model, true);
    if (r->dist && (nb_dist_agree(r->dist, bad, "evaluating") != NB_OK ||
                    dist_sum_counts(r->dist, tally, 1 + CLASSES * CLASSES) != NB_OK))
        return bad ? -1 : cnn_fail("evaluating: %s", nb_last_error()), -1;
    if (bad)
        return -1;
    for (int k = 0; confusion && k < CLASSES * CLASSES; k++)
        confusion[k] += conf[k];
    return (double)*correct / (double)r->test.n;
}

int cnn_setup(run_state *r) {
    const cnn_options *o = &r->o;
    nb_idx_options io = {.limit = o->test_limit, .cancel = &cnn_interrupted};
    nb_idx_options train_io = {.limit = o->limit, .cancel = &cnn_interrupted};
    if (!o->eval_only && nb_mnist_load_ex(o->data_dir, "train", &train_io, &r->train) != NB_OK)
        return cnn_fail("%s", nb_last_error());
    if (nb_mnist_load_ex(o->data_dir, "t10k", &io, &r->test) != NB_OK)
        return cnn_fail("%s", nb_last_error());
    int64_t rows = r->test.rows, cols = r->test.cols;
    if (rows % 4 || cols % 4 || (!o->eval_only && (r->train.rows != rows || r->train.cols != cols)))
        return cnn_fail("%s: images must share one size divisible by 4 (two 2x2 poolings); train "
                        "%" PRId64 "x%" PRId64 ", test %" PRId64 "x%" PRId64,
                        o->data_dir, r->train.rows, r->train.cols, rows, cols);
    if (r->test.n_classes > CLASSES || (!o->eval_only && r->train.n_classes > CLASSES))
        return cnn_fail("%s: labels go up to %" PRId64 ", this model has %d classes", o->data_dir,
                        r->train.n_classes > r->test.n_classes ? r->train.n_classes
                                                               : r->test.n_classes,
                        CLASSES);
    nb_rng_seed(&r->init_rng, o->seed);
    nb_rng_seed(&r->rng, o->seed ^ RANDOM_STREAM);
    r->model = nb_nn_sequential_create();
    r->ps = nb_params_create();
    nb_rng *drop = r->dist ? &r->drop_rng : &r->rng;
    if (!r->model || !r->ps || !build(r->model, o, rows, cols, &r->init_rng, drop) ||
        nb_layer_collect(r->model, r->ps, NULL) != NB_OK ||
        (r->dist && !(r->red = nb_dist_reducer_create(r->dist, r->ps, 0))))
        return cnn_fail("cannot build the model: %s", nb_last_error());
    int np = nb_params_count(r->ps, NB_PARAM), nbuf = nb_params_count(r->ps, NB_BUFFER);
    r->names = malloc((size_t)(np + nbuf) * sizeof *r->names);
    r->tensors = malloc((size_t)(np + nbuf) * sizeof *r->tensors);
    if (!r->names || !r->tensors)
        return cnn_fail("out of memory");
    for (int k = 0; k < np + nbuf; k++) {
        nb_param_kind kind = k < np ? NB_PARAM : NB_BUFFER;
        r->names[k] = nb_params_name(r->ps, kind, k < np ? k : k - np);
        r->tensors[k] = nb_params_tensor(r->ps, kind, k < np ? k : k - np);
    }
    r->n_tensors = np + nbuf;
    if (o->load && nb_params_load(r->ps, o->load) != NB_OK)
        return cnn_fail("cannot load %s: %s (--c1, --c2, --hidden and --bn must match the "
                        "checkpoint)",
                        o->load, nb_last_error());
    r->eval_g = nb_graph_create();
    r->xe = nb_tensor_create(NB_F32, 4, (int64_t[]){EVAL_CHUNK, 1, rows, cols});
    r->ye = nb_tensor_create(NB_I32, 1, (int64_t[]){EVAL_CHUNK});
    if (!r->eval_g || !r->xe || !r->ye)
        return cnn_fail("%s", nb_last_error());
    nb_graph_set_grad_enabled(r->eval_g, false);
    return 0;
}
