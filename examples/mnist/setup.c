// mnist's set-up (train.h): the data and its split, the model and its memory budget, the
// optimizer's two groups, the lr schedule, --resume, and the run's release.
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "mnist/train.h"

#define SPLIT_STREAM 0x9e3779b97f4a7c15u   // xor-ed into --seed for the validation split
#define SHUFFLE_STREAM 0xd1b54a32d192ed03u // ... and for the per-epoch shuffling
#define AUGMENT_STREAM 0x94d049bb133111ebu // ... and for --augment's random shifts

void mnist_run_free(run_state *r) {
    nb_batch_iter_destroy(r->it);
    nb_tensor_destroy(r->x_tail);
    nb_tensor_destroy(r->y_tail);
    nb_tensor_destroy(r->x);
    nb_tensor_destroy(r->y);
    nb_optim_destroy(r->opt);
    nb_graph_destroy(r->g);
    nb_graph_destroy(r->eval_g);
    mnist_mlp_destroy(&r->model);
    nb_dataset_free(&r->train);
    nb_dataset_free(&r->test);
    free(r->train_idx);
    free(r->val_idx);
    free(r->test_idx);
    free(r->rows);
    nb_dist_reducer_destroy(r->red);
    nb_params_destroy(r->ps);
    mnist_views_free(&r->views);
}

// Loads the test set (and unless --eval-only the training set), checks they agree, and makes
// the index lists: train/val split of the first --limit training samples, 0..n-1 for test.
// Only --limit training samples are read; SIGINT stops a long load within milliseconds.
int mnist_load_data(run_state *r) {
    const mnist_options *o = &r->o;
    nb_idx_options io = {.max_bytes = (uint64_t)o->max_data_mb << 20, .cancel = &mnist_interrupted};
    nb_idx_options train_io = io;
    train_io.limit = o->limit;
    if (!o->eval_only && nb_mnist_load_ex(o->data_dir, "train", &train_io, &r->train) != NB_OK)
        return mnist_fail_lib(nb_last_error());
    if (nb_mnist_load_ex(o->data_dir, "t10k", &io, &r->test) != NB_OK)
        return mnist_fail_lib(nb_last_error());
    if (!o->eval_only && (r->train.rows != r->test.rows || r->train.cols != r->test.cols))
        return mnist_fail("%s: train images are %" PRId64 "x%" PRId64
                          " but test images are %" PRId64 "x%" PRId64,
                          o->data_dir, r->train.rows, r->train.cols, r->test.rows, r->test.cols);
    r->test_idx = malloc((size_t)r->test.n * sizeof *r->test_idx);
    if (!r->test_idx)
        return mnist_fail("out of memory");
    for (int64_t i = 0; i < r->test.n; i++)
        r->test_idx[i] = i;
    if (o->eval_only)
        return 0;
    int64_t n = o->limit > 0 && o->limit < r->train.n ? o->limit : r->train.n;
    if (o->val >= n)
        return mnist_fail("--val %" PRId64 " leaves no training samples (%" PRId64 " available)",
                          o->val, n);
    r->n_val = o->val;
    r->n_train = n - o->val;
    r->train_idx = malloc((size_t)r->n_train * sizeof *r->train_idx);
    r->val_idx = malloc((size_t)(r->n_val ? r->n_val : 1) * sizeof *r->val_idx);
    if (!r->train_idx || !r->val_idx)
        return mnist_fail("out of memory");
    nb_rng rng;
    nb_rng_seed(&rng, o->seed ^ SPLIT_STREAM);
    if (nb_split_indices(n, r->n_val, &rng, r->train_idx, r->val_idx) != NB_OK)
        return mnist_fail_lib(nb_last_error());
    return 0;
}

// The model's memory before it is allocated: weights + biases, and as much again for their
// gradients and (when training) for each optimizer state buffer (SGD momentum 1, Adam/AdamW 2,
// RMSprop 1 + momentum). Doubles: no overflow.
static int check_model_budget(const run_state *r, int64_t features) {
    const mnist_options *o = &r->o;
    double params = 0;
    double in = (double)features;
    for (int l = 0; l <= o->n_hidden; l++) {
        double out = l < o->n_hidden ? (double)o->hidden[l] : NB_MNIST_CLASSES;
        params += in * out + out;
        in = out;
    }
    int slots = o->optim == NB_OPTIM_SGD       ? o->momentum > 0
                : o->optim == NB_OPTIM_RMSPROP ? 1 + (o->momentum > 0)
                                               : 2;
    double bytes = params * (double)nb_dtype_size(o->dtype) * (o->eval_only ? 1 : 2 + slots);
    double budget = (double)o->max_model_mb * 1048576.0;
    if (bytes <= budget)
        return 0;
    return mnist_fail("the model (%" PRId64
                      " inputs, %.0f parameters) needs %.0f MiB for weights%s, "
                      "over the --max-model-mb %" PRId64 " budget: use smaller --hidden layers or "
                      "smaller images, or raise --max-model-mb",
                      features, params, bytes / 1048576.0,
                      o->eval_only ? "" : ", gradients and optimizer state", o->max_model_mb);
}

// Creates the model (seeded init), overwrites it from --load, and the evaluation graph.
int mnist_setup_model(run_state *r, int64_t features) {
    if (check_model_budget(r, features))
        return 1;
    nb_rng rng;
    nb_rng_seed(&rng, r->o.seed);
    if (mnist_mlp_create(&r->model, &r->o, features, NB_MNIST_CLASSES, &rng) != NB_OK)
        return mnist_fail("cannot create the model: %s", nb_last_error());
    char err[768];
    bool unchecked = false;
    nb_status st =
        r->o.load ? mnist_mlp_load(&r->model, r->o.load, &unchecked, err, sizeof err) : NB_OK;
    if (st != NB_OK)
        return mnist_fail("cannot load checkpoint: %s%s", err,
                          st == NB_ERR_SHAPE || st == NB_ERR_DTYPE
                              ? " (--hidden and --dtype must match the checkpoint)"
                              : "");
    if (unchecked)
        fprintf(stderr,
                "mnist: note: %s has no nabla checksums (written by another tool?); "
                "its weights were loaded unverified\n",
                r->o.load);
    if (!(r->eval_g = nb_graph_create()))
        return mnist_fail_lib(nb_last_error());
    nb_graph_set_grad_enabled(r->eval_g, false);
    return 0;
}

// One optimizer, two groups: weights with --weight-decay, biases without (same lr).
static int setup_optimizer(run_state *r) {
    const mnist_options *o = &r->o;
    const mnist_mlp *m = &r->model;
    const char *wn[MNIST_MAX_HIDDEN + 1], *bn[MNIST_MAX_HIDDEN + 1];
    for (int l = 0; l < m->n_layers; l++)
        wn[l] = m->names[2 * l], bn[l] = m->names[2 * l + 1];
    nb_optim_config cfg = nb_optim_defaults(o->optim, o->lr);
    cfg.momentum = o->momentum;
    nb_param_group groups[2] = {
        {(nb_tensor *const *)m->w, wn, m->n_layers, 1.0, o->weight_decay},
        {(nb_tensor *const *)m->b, bn, m->n_layers, 1.0, 0.0},
    };
    if (!(r->opt = nb_optim_create_groups(groups, 2, cfg)))
        return mnist_fail_lib(nb_last_error());
    return 0;
}

// The per-step lr schedule over the whole run; then, with --resume, the saved parameters,
// optimizer state and position, and the shuffling iterator replayed to that epoch.
static int setup_schedule_and_resume(run_state *r, int64_t batch) {
    const mnist_options *o = &r->o;
    int64_t total = nb_batch_iter_num_batches(r->it) * o->epochs;
    nb_schedule *s = &r->sched;
    *s = (nb_schedule){.lr = o->lr, .total = total, .warmup = o->warmup, .warmup_start = 0.1};
    if (o->schedule == MNIST_SCHED_COSINE)
        s->kind = NB_SCHED_COSINE;
    else if (o->schedule == MNIST_SCHED_ONECYCLE)
        s->kind = NB_SCHED_ONECYCLE;
    else if (o->schedule == MNIST_SCHED_STEP) {
        int64_t rest = total - o->warmup;
        *s = (nb_schedule){.kind = NB_SCHED_MULTISTEP,
                           .lr = o->lr,
                           .gamma = 0.1,
                           .milestones = {rest / 2, rest * 3 / 4},
                           .n_milestones = 2,
                           .warmup = o->warmup,
                           .warmup_start = 0.1};
    }
    if (o->warmup >= total)
        return mnist_fail("--warmup %" PRId64 " must be below the run's %" PRId64 " steps",
                          o->warmup, total);
    if (o->warmup > 0 && o->schedule == MNIST_SCHED_ONECYCLE)
        return mnist_fail(
            "--warmup does not apply to --schedule onecycle (it has its own warm phase)");
    if (nb_schedule_check(s) != NB_OK)
        return mnist_fail("--schedule %s: %s", mnist_schedule_name(o->schedule), nb_last_error());
    r->ts = (mnist_train_state){.total_steps = total,
                                .batch = batch,
                                .n_train = r->n_train,
                                .seed = o->seed,
                                .aug_rng = r->aug_rng};
    char err[1024] = "";
    nb_status st = NB_OK;
    if (o->resume && nb_dist_is_root(r->dist)) // a distributed run: rank 0 reads, then sends
        st = mnist_checkpoint_resume(o->resume, &r->model, r->opt, &r->ts, err, sizeof err);
    if (r->dist) {
        if (nb_dist_agree(r->dist, st, "reading the checkpoint") != NB_OK && st == NB_OK)
            return mnist_fail("cannot resume: %s", nb_last_error());
        if (st == NB_OK &&
            mnist_dist_sync(r->dist, r->ps, r->opt, &r->ts, o->resume != NULL) != NB_OK)
            return mnist_fail("--distributed: %s", nb_last_error());
    }
    if (!o->resume)
        return 0;
    if (st != NB_OK)
        return mnist_fail("cannot resume: %s%s", err,
                          st == NB_ERR_SHAPE || st == NB_ERR_DTYPE
                              ? " (--hidden and --dtype must match the checkpoint)"
                              : "");
    if (r->ts.epoch > o->epochs)
        return mnist_fail("cannot resume: %s holds epoch %" PRId64 " of a run of %d", o->resume,
                          r->ts.epoch, o->epochs);
    r->aug_rng = r->ts.aug_rng;
    const int64_t *idx;
    for (int64_t e = 0; e < r->ts.epoch; e++) // epoch k's order depends only on the seed and k
        while (nb_batch_iter_next(r->it, &idx) > 0)
            ;
    printf("resumed from %s after epoch %" PRId64 " (step %" PRId64 ")\n", o->resume, r->ts.epoch,
           r->ts.step);
    fflush(stdout);
    return 0;
}

// Batch tensors, the tail views, the optimizers and the shuffling iterator.
int mnist_setup_training(run_state *r, int64_t features) {
    const mnist_options *o = &r->o;
    int64_t batch = o->batch < r->n_train ? o->batch : r->n_train;
    int64_t tail = r->n_train % batch;
    r->x = nb_tensor_create(o->dtype, 2, (int64_t[]){batch, features});
    r->y = nb_tensor_create(NB_I32, 1, (int64_t[]){batch});
    if (r->x && r->y && tail) {
        r->x_tail = nb_tensor_wrap(o->dtype, 2, (int64_t[]){tail, features}, nb_tensor_data(r->x));
        r->y_tail = nb_tensor_wrap(NB_I32, 1, (int64_t[]){tail}, nb_tensor_data(r->y));
    }
    if (!r->x || !r->y || (tail && (!r->x_tail || !r->y_tail)) || !(r->g = nb_graph_create()))
        return mnist_fail_lib(nb_last_error());
    nb_graph_set_check_finite(r->g, o->detect_anomaly);
    if (setup_optimizer(r))
        return 1;
    if (r->dist) {
        if (!(r->ps = nb_params_create()) || mnist_dist_params(&r->model, r->ps) != NB_OK ||
            !(r->red = nb_dist_reducer_create(r->dist, r->ps, 0)))
            return mnist_fail_lib(nb_last_error());
    }
    r->it = nb_batch_iter_create(r->train_idx, r->n_train, batch, true, o->seed ^ SHUFFLE_STREAM);
    nb_rng_seed(&r->aug_rng, o->seed ^ AUGMENT_STREAM);
    if (o->augment > 0 && r->train.rows * r->train.cols > MNIST_MAX_PIXELS)
        return mnist_fail("--augment supports images of at most %d pixels, these have %" PRId64
                          "x%" PRId64,
                          MNIST_MAX_PIXELS, r->train.rows, r->train.cols);
    r->rows = calloc((size_t)o->epochs, sizeof *r->rows);
    if (!r->it || !r->rows)
        return mnist_fail("%s", r->it ? "out of memory" : nb_last_error());
    return setup_schedule_and_resume(r, batch);
}
