// charlm: a GPT-style character-level transformer (examples/charlm/model.c) or, with --model
// lstm, an LSTM (examples/charlm/lstm.c) trained through the tape on the text of Debian's
// fortunes package. Per epoch it prints the train and validation loss in bits per character;
// a progress bar runs on stderr. --save writes an atomic checkpoint (weights, the vocabulary,
// AdamW's state and the run's position) after every epoch, --resume continues from one, and the
// run ends by sampling text (temperature, top-k, seeded).
//   charlm [--data DIR] [--epochs N] [--save FILE] [--resume FILE] [--sample N] ...
// --distributed (under mpirun -np N): data parallel over the ranks, as examples/mnist: each rank
// trains on its slice of every global batch of windows (the same shuffled order everywhere), the
// gradients are averaged across ranks, the losses summed; rank 0 alone prints, saves and
// samples; a checkpoint resumes on any number of ranks. Dropout masks come from a per-rank,
// per-step stream.
// Exit status: 0 done, 1 runtime error (data, checkpoint, training), 2 usage error.
// Files: charlm/cli.c (command line), charlm/checkpoint.c (--save, --resume), charlm/sample.c
// (the closing sample), this file (training, --distributed and main); charlm/train.h.
#define _POSIX_C_SOURCE 200809L // clock_gettime, isatty, fileno

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "charlm/train.h"
#include "common/dist_cli.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

// CPU time of the process, all threads.
static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

// The progress bar: one redrawn line on a terminal (10 times a second), a line per tenth of
// the epoch otherwise.
static void progress(bool tty, int epoch, int epochs, int64_t done, int64_t total, double tok_s,
                     double bits, int *tenth) {
    if (tty) {
        char bar[25];
        for (int i = 0; i < 24; i++)
            bar[i] = i < done * 24 / total ? '#' : '.';
        bar[24] = 0;
        fprintf(stderr,
                "\repoch %d/%d [%s] %" PRId64 "/%" PRId64 "  %.0f tok/s  %.3f bits/char\033[K",
                epoch, epochs, bar, done, total, tok_s, bits);
    } else {
        if (done * 10 < *tenth * total)
            return;
        while (done * 10 >= *tenth * total)
            (*tenth)++;
        fprintf(stderr, "epoch %d/%d  %" PRId64 "/%" PRId64 "  %.0f tok/s  %.3f bits/char\n", epoch,
                epochs, done, total, tok_s, bits);
    }
    fflush(stderr);
}

static int64_t charlm_steps_per_epoch(const charlm_run *r) {
    int64_t n = r->n_train / r->o.batch;
    return r->o.max_steps > 0 && r->o.max_steps < n ? r->o.max_steps : n;
}

// The learning rate at step s: linear warm-up, then cosine to 0 at the last step.
static double lr_at(const charlm_run *r, int64_t s) {
    double w = r->o.warmup * (double)r->total_steps;
    if (s < w)
        return r->o.lr * (double)(s + 1) / w;
    double t = (double)(s - w) / fmax(1.0, (double)r->total_steps - w);
    return r->o.lr * 0.5 * (1 + cos(3.14159265358979323846 * fmin(t, 1.0)));
}

// Mean loss (bits per character) over windows list[0..n) in batches, without gradients.
static int eval_bits(charlm_run *r, const int64_t *list, int64_t n, double *bits) {
    nb_layer_train(r->model, false);
    double sum = 0;
    int64_t count = 0, b = r->o.batch;
    for (int64_t i = 0; i + b <= n; i += b) {
        nb_graph_reset(r->g);
        nb_graph_set_grad_enabled(r->g, false);
        if (nb_text_fill_batch(&r->txt, r->o.context, list + i + r->off, r->rows, r->x, r->y) !=
            NB_OK)
            return 1;
        nb_tensor *yf = r->yflat;
        nb_tensor *loss = nb_sparse_cross_entropy_logits(
            r->g, nb_layer_forward(r->g, r->model, r->x), yf, NB_REDUCE_MEAN);
        if (!loss) {
            fprintf(stderr, "charlm: %s\n", nb_graph_error(r->g));
            return 1;
        }
        // --distributed: this rank's share of the batch's summed loss (rows of b windows)
        sum +=
            r->dist ? nb_tensor_get(loss, 0) * (double)r->rows / (double)b : nb_tensor_get(loss, 0);
        count++;
    }
    nb_graph_set_grad_enabled(r->g, true);
    nb_layer_train(r->model, true);
    if (r->dist && nb_dist_allreduce_sum(r->dist, &sum, 1) != NB_OK) {
        fprintf(stderr, "charlm: %s\n", nb_last_error());
        return 1;
    }
    *bits = count ? sum / (double)count / log(2.0) : (double)NAN;
    return 0;
}

static int train(charlm_run *r) {
    const charlm_opts *o = &r->o;
    int64_t steps_per_epoch = charlm_steps_per_epoch(r);
    bool tty = !o->quiet && isatty(fileno(stderr)) == 1;
    double t_start = now();
    int64_t *order = malloc((size_t)r->n_train * sizeof *order);
    if (!order)
        return 1;
    for (; r->epoch < o->epochs; r->epoch++) {
        // The epoch's order depends only on (seed, epoch): a resumed run draws the same one.
        nb_rng er;
        nb_rng_seed(&er, o->seed * 1000003u + (uint64_t)r->epoch);
        memcpy(order, r->train, (size_t)r->n_train * sizeof *order);
        for (int64_t i = r->n_train - 1; i > 0; i--) {
            int64_t j = (int64_t)nb_rng_below(&er, (uint64_t)i + 1), t = order[i];
            order[i] = order[j], order[j] = t;
        }
        double t0 = now(), c0 = cpu_now(), sum = 0;
        int tenth = 1;
        for (int64_t s = 0; s < steps_per_epoch; s++) {
            nb_graph_reset(r->g);
            if (r->dist) // masks differ across ranks and steps, whatever the rank count
                nb_rng_seed(&r->drop_rng, o->seed * 0x9e3779b97f4a7c15u +
                                              (uint64_t)r->step * 4099u +
                                              (uint64_t)nb_dist_rank(r->dist));
            if (nb_text_fill_batch(&r->txt, o->context, order + s * o->batch + r->off, r->rows,
                                   r->x, r->y) != NB_OK) {
                fprintf(stderr, "charlm: %s\n", nb_last_error());
                return free(order), 1;
            }
            nb_tensor *yf = r->yflat;
            nb_tensor *loss = nb_sparse_cross_entropy_logits(
                r->g, nb_layer_forward(r->g, r->model, r->x), yf, NB_REDUCE_MEAN);
            nb_optim_zero_grad(r->opt);
            if (!loss || nb_backward(r->g, loss) != NB_OK) {
                fprintf(stderr, "charlm: training step %" PRId64 ": %s\n", r->step,
                        nb_graph_error(r->g));
                return free(order), 1;
            }
            double l = nb_tensor_get(loss, 0);
            // --distributed: the global batch's mean gradient and loss on every rank.
            if (r->dist) {
                l *= (double)r->rows / (double)o->batch;
                if (nb_dist_allreduce_grads(r->red, (double)r->rows) != NB_OK ||
                    nb_dist_allreduce_sum(r->dist, &l, 1) != NB_OK) {
                    fprintf(stderr, "charlm: %s\n", nb_last_error());
                    return free(order), 1;
                }
            }
            if (!isfinite(l)) {
                fprintf(stderr, "charlm: the loss diverged (%g) at step %" PRId64 "\n", l, r->step);
                return free(order), 1;
            }
            sum += l;
            nb_optim_set_lr(r->opt, lr_at(r, r->step));
            nb_optim_step(r->opt);
            r->step++;
            if (!o->quiet) {
                double el = now() - t0;
                if (!tty || s + 1 == steps_per_epoch || ((s & 15) == 0))
                    progress(tty, r->epoch + 1, o->epochs, s + 1, steps_per_epoch,
                             el > 0 ? (double)((s + 1) * o->batch * o->context) / el : 0,
                             sum / (double)(s + 1) / log(2.0), &tenth);
            }
        }
        if (tty)
            fputs("\r\033[K", stderr);
        double secs = now() - t0, csecs = cpu_now() - c0, vbits = (double)NAN;
        if (eval_bits(r, r->val, r->n_val, &vbits))
            return free(order), 1;
        // tok/s of wall time, and per CPU-second of the process (all threads): on a shared
        // machine the second, times the thread count, estimates the quiet rate.
        double toks = (double)(steps_per_epoch * o->batch * o->context);
        printf("epoch %d/%d  train %.3f bits/char  val %.3f bits/char  %.0f tok/s  (%.0f tok per "
               "CPU-s)  %.0f s\n",
               r->epoch + 1, o->epochs, sum / (double)steps_per_epoch / log(2.0), vbits,
               toks / secs, toks / csecs, now() - t_start);
        fflush(stdout);
        if (o->save) {
            r->epoch++; // the checkpoint counts this epoch as finished
            nb_status s = charlm_save_checkpoint(r);
            r->epoch--;
            if (s != NB_OK) {
                fprintf(stderr, "charlm: --save: %s\n", nb_last_error());
                return free(order), 1;
            }
        }
        if (o->stop_after > 0 && r->epoch + 1 >= o->stop_after) {
            r->epoch++;
            printf("stopping after epoch %d (--stop-after)\n", r->epoch);
            break;
        }
        bool out_of_time = o->max_minutes > 0 && now() - t_start > 60 * o->max_minutes;
        if (r->dist && nb_dist_broadcast_bytes(r->dist, &out_of_time, sizeof out_of_time) != NB_OK)
            return free(order), fprintf(stderr, "charlm: %s\n", nb_last_error()), 1;
        if (out_of_time) { // rank 0's clock decides for all
            r->epoch++;
            printf("stopping: --max-minutes %.3g reached\n", o->max_minutes);
            break;
        }
    }
    free(order);
    return 0;
}

// --distributed: join the MPI job; this rank's rows of every global batch. Rank 0 alone prints,
// saves and samples, and reads --resume (the others get the state by broadcast).
static int dist_join(charlm_run *r, int *argc, char ***argv) {
    int rc = dist_cli_join("charlm", argc, argv, r->o.batch, &r->dist);
    if (rc)
        return rc;
    nb_dist_slice(r->o.batch, nb_dist_rank(r->dist), nb_dist_size(r->dist), &r->off, &r->rows);
    if (!nb_dist_is_root(r->dist))
        r->o.save = NULL, r->o.sample = 0, r->o.quiet = true;
    return 0;
}

// --distributed: rank 0 reads --resume; then every rank gets its parameters, optimizer state
// and position (after a model fingerprint check: another corpus or --width on a rank fails).
static int dist_start(charlm_run *r) {
    nb_status st = r->o.resume && nb_dist_is_root(r->dist) && charlm_resume(r) ? NB_ERR_IO : NB_OK;
    if (nb_dist_agree(r->dist, st, "reading the checkpoint") != NB_OK) {
        if (st == NB_OK)
            fprintf(stderr, "charlm: --resume: %s\n", nb_last_error());
        return 1;
    }
    int64_t pos[2] = {r->epoch, r->step};
    if (nb_dist_broadcast_params(r->dist, r->params) != NB_OK ||
        (r->o.resume && nb_dist_broadcast_optim(r->dist, r->opt) != NB_OK) ||
        nb_dist_broadcast_bytes(r->dist, pos, sizeof pos) != NB_OK) {
        fprintf(stderr, "charlm: rank %d: --distributed: %s\n", nb_dist_rank(r->dist),
                nb_last_error());
        return 1;
    }
    r->epoch = (int)pos[0], r->step = pos[1];
    return 0;
}

int main(int argc, char **argv) {
    charlm_run r = {0};
    int rc = charlm_parse_args(argc, argv, &r.o);
    if (rc)
        return rc;
    const charlm_opts *o = &r.o;
    r.rows = o->batch;
    bool agreed = false;      // --distributed: the ranks' setups compared (nb_dist_agree)
    charlm_model *tfm = NULL; // the transformer (dropout's rng), NULL for --model lstm
    if (o->distributed && (rc = dist_join(&r, &argc, &argv)) != 0)
        return nb_dist_finalize(r.dist), rc;
    rc = 1;
    if (o->save && nb_check_output_path(o->save) != NB_OK) {
        fprintf(stderr, "charlm: --save: %s\n", nb_last_error());
        goto done;
    }
    if (nb_text_load_dir(o->data, NULL, &r.txt) != NB_OK) {
        fprintf(stderr, "charlm: %s\n", nb_last_error());
        goto done;
    }
    int64_t w = nb_text_windows(&r.txt, o->context);
    r.train = malloc((size_t)(w > 0 ? w : 1) * sizeof *r.train);
    r.val = malloc((size_t)(w > 0 ? w : 1) * sizeof *r.val);
    if (!r.train || !r.val)
        goto done;
    if (nb_text_split(&r.txt, o->context, o->val_frac, o->seed, r.train, &r.n_train, r.val,
                      &r.n_val) != NB_OK) {
        fprintf(stderr, "charlm: %s: %s\n", o->data, nb_last_error());
        goto done;
    }
    if (r.n_train < o->batch || r.n_val < o->batch) {
        fprintf(stderr,
                "charlm: %s: %" PRId64 " training and %" PRId64 " validation windows of %" PRId64
                " characters: fewer than one batch of %" PRId64 "\n",
                o->data, r.n_train, r.n_val, o->context, o->batch);
        goto done;
    }
    nb_rng_seed(&r.rng, o->seed);
    if (!strcmp(o->model, "lstm")) {
        r.model = charlm_lstm_create(r.txt.vocab.size, o->width, o->hidden, o->layers, &r.rng);
    } else {
        charlm_model *m = tfm =
            charlm_create((charlm_config){r.txt.vocab.size, o->context, o->width, o->heads,
                                          o->layers, o->dropout},
                          &r.rng);
        r.model = m ? &m->base : NULL;
    }
    r.params = nb_params_create();
    r.g = nb_graph_create();
    // Only the parameters' grads are read (as in PyTorch): backward recycles op outputs' grad
    // buffers within the sweep, a smaller working set (bench/README.md, round 7).
    nb_graph_set_retain_grads(r.g, false);
    r.x = nb_tensor_create(NB_I32, 2, (int64_t[]){r.rows, o->context});
    r.y = nb_tensor_create(NB_I32, 2, (int64_t[]){r.rows, o->context});
    if (r.y)
        r.yflat = nb_tensor_wrap(NB_I32, 1, (int64_t[]){r.rows * o->context}, nb_tensor_data(r.y));
    r.vocab = nb_vocab_to_tensor(&r.txt.vocab);
    if (!r.model || !r.params || !r.g || !r.x || !r.y || !r.yflat || !r.vocab ||
        nb_layer_collect(r.model, r.params, NULL) != NB_OK) {
        fprintf(stderr, "charlm: %s\n", nb_last_error());
        goto done;
    }
    nb_optim_config cfg = nb_optim_defaults(NB_OPTIM_ADAMW, o->lr);
    cfg.weight_decay = o->wd;
    r.opt = nb_params_optim_create(r.params, cfg, true);
    if (!r.opt || (r.dist && !(r.red = nb_dist_reducer_create(r.dist, r.params, 0)))) {
        fprintf(stderr, "charlm: %s\n", nb_last_error());
        goto done;
    }
    if (r.dist) { // a rank that could not read the corpus or build the model stops them all
        if (tfm)
            tfm->rng = &r.drop_rng;
        agreed = true;
        if (nb_dist_agree(r.dist, NB_OK, "loading the data") != NB_OK) {
            fprintf(stderr, "charlm: %s\n", nb_last_error());
            goto done;
        }
    }
    r.total_steps = (int64_t)o->epochs * charlm_steps_per_epoch(&r);
    printf("charlm (%s): %" PRId64 " characters, vocabulary %d, %" PRId64 " train / %" PRId64
           " val windows of %" PRId64 "; %" PRId64 " parameters; %d epochs of %" PRId64 " steps\n",
           o->model, r.txt.n, r.txt.vocab.size, r.n_train, r.n_val, o->context,
           nb_params_numel(r.params, NB_PARAM), o->epochs, charlm_steps_per_epoch(&r));
    fflush(stdout);
    if (r.dist ? dist_start(&r) : o->resume && charlm_resume(&r))
        goto done;
    if (train(&r))
        goto done;
    if (r.red) {
        nb_dist_stats st;
        nb_dist_reducer_stats(r.red, &st);
        printf(
            "distributed: %d ranks, gradient all-reduce %.3f ms/step, %d bucket(s), %.2f MB/step\n",
            nb_dist_size(r.dist), 1e3 * st.seconds / (double)(st.calls ? st.calls : 1),
            nb_dist_reducer_buckets(r.red), st.bytes / 1e6 / (double)(st.calls ? st.calls : 1));
    }
    if (o->sample > 0 && charlm_sample(&r))
        goto done;
    rc = 0;
done:
    if (r.dist && !agreed) // this rank failed before the others compared their setups
        nb_dist_agree(r.dist, NB_ERR_IO, "loading the data");
    nb_dist_reducer_destroy(r.red);
    nb_optim_destroy(r.opt);
    nb_params_destroy(r.params);
    nb_layer_destroy(r.model);
    nb_graph_destroy(r.g);
    nb_tensor_destroy(r.x), nb_tensor_destroy(r.yflat), nb_tensor_destroy(r.y);
    nb_tensor_destroy(r.vocab);
    free(r.train), free(r.val);
    nb_text_free(&r.txt);
    fflush(stdout); // output written after MPI_Finalize can be lost by mpirun's forwarding
    fflush(stderr);
    nb_dist_finalize(r.dist);
    return rc;
}
