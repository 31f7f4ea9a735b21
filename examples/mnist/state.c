// mnist example: training checkpoints that --resume continues bit for bit. One safetensors file
// holds the parameters ("fc1.weight", ...), the optimizer's state ("optim.meta", "optim.step",
// "optim.exp_avg.fc1.weight", ...: nb_optim_state_export) and the run's position:
//   "train.state" float64 (8): format version, finished epochs, optimizer steps, total steps,
//                 batch, training samples, seed (low 32 bits, high 32 bits)
//   "train.rng"   int32 (8): the --augment stream's xoshiro state (4 x 64 bits, low word first)
// The shuffling needs no saving: the batch iterator's order for epoch k depends only on the
// seed, so the resumed run replays the iterator to its epoch. A plain --load reads only the
// parameters and ignores the rest. The model part is any set of named tensors with a loader
// (mnist_model_io): the MLP's (model.c) or the CNN's layers (examples/cnn.c).
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mnist.h"

#define STATE_VERSION 1

static void pack(const mnist_train_state *s, double *v, int32_t *rng) {
    double x[8] = {STATE_VERSION,
                   (double)s->epoch,
                   (double)s->step,
                   (double)s->total_steps,
                   (double)s->batch,
                   (double)s->n_train,
                   (double)(s->seed & 0xffffffffu),
                   (double)(s->seed >> 32)};
    memcpy(v, x, sizeof x);
    memcpy(rng, s->aug_rng.s, 8 * sizeof *rng);
}

nb_status mnist_checkpoint_save_model(const char *path, const mnist_model_io *model, nb_optim *opt,
                                      const mnist_train_state *s) {
    const char *const *onames;
    nb_tensor *const *ots;
    int n_opt = nb_optim_state_export(opt, &onames, &ots);
    if (n_opt < 0)
        return NB_ERR_ARG;
    int cap = model->n + n_opt + 2, n = 0;
    const char **names = malloc((size_t)cap * sizeof *names);
    nb_tensor **ts = malloc((size_t)cap * sizeof *ts);
    double v[8];
    int32_t rng[8];
    pack(s, v, rng);
    nb_tensor *tv = nb_tensor_wrap(NB_F64, 1, (int64_t[]){8}, v);
    nb_tensor *tr = nb_tensor_wrap(NB_I32, 1, (int64_t[]){8}, rng);
    nb_status st = NB_ERR_NOMEM;
    if (names && ts && tv && tr) {
        for (int k = 0; k < model->n; k++)
            names[n] = model->names[k], ts[n++] = model->tensors[k];
        for (int k = 0; k < n_opt; k++)
            names[n] = onames[k], ts[n++] = ots[k];
        names[n] = "train.state", ts[n++] = tv;
        names[n] = "train.rng", ts[n++] = tr;
        st = nb_save_safetensors(path, names, ts, n);
    }
    nb_tensor_destroy(tv);
    nb_tensor_destroy(tr);
    free(names);
    free(ts);
    return st;
}

static nb_status file_loader(void *ctx, const char *const *names, nb_tensor *const *ts, int n) {
    return nb_load_safetensors(ctx, names, ts, n);
}

// Copies one tensor `name` of `path` into a (len) buffer of dtype dt.
static nb_status load_vec(const char *path, const char *name, nb_dtype dt, void *buf, int64_t len) {
    nb_tensor *t = nb_tensor_wrap(dt, 1, &len, buf);
    if (!t)
        return NB_ERR_NOMEM;
    nb_status st = nb_load_safetensors(path, &name, &t, 1);
    nb_tensor_destroy(t);
    return st;
}

nb_status mnist_checkpoint_resume_model(const char *path, const mnist_model_io *model,
                                        nb_optim *opt, mnist_train_state *s, char *err,
                                        size_t err_size) {
    double v[8], want[8];
    int32_t rng[8], unused[8];
    nb_status st = load_vec(path, "train.state", NB_F64, v, 8);
    if (st == NB_ERR_FORMAT && strstr(nb_last_error(), "train.state")) {
        snprintf(err, err_size,
                 "%s holds no training state (written by --save of an older "
                 "build, or another tool): use --load to start from its weights",
                 path);
        return st;
    }
    if (st != NB_OK) {
        snprintf(err, err_size, "%s", nb_last_error());
        return st;
    }
    pack(s, want, unused);
    if (v[0] != STATE_VERSION || !(v[1] >= 0 && v[1] == (double)(int64_t)v[1]) ||
        !(v[2] >= 0 && v[2] == (double)(int64_t)v[2])) {
        snprintf(err, err_size, "%s: unknown or corrupt train.state", path);
        return NB_ERR_FORMAT;
    }
    if (memcmp(v + 3, want + 3, 5 * sizeof *v) != 0) {
        snprintf(err, err_size,
                 "%s was written by a run of %.0f steps (batch %.0f, %.0f training samples, seed "
                 "%" PRIu64 "); these flags give %" PRId64 " steps (batch %" PRId64 ", %" PRId64
                 " samples, seed %" PRIu64 "): resume with the flags of that run",
                 path, v[3], v[4], v[5], (uint64_t)v[6] | (uint64_t)v[7] << 32, s->total_steps,
                 s->batch, s->n_train, s->seed);
        return NB_ERR_ARG;
    }
    if ((st = model->load(model->ctx, path, err, err_size)) != NB_OK)
        return st;
    if ((st = nb_optim_state_import(opt, file_loader, (void *)(uintptr_t)path)) != NB_OK ||
        (st = load_vec(path, "train.rng", NB_I32, rng, 8)) != NB_OK) {
        snprintf(err, err_size, "%s", nb_last_error());
        return st;
    }
    s->epoch = (int64_t)v[1];
    s->step = (int64_t)v[2];
    memcpy(s->aug_rng.s, rng, sizeof rng);
    return NB_OK;
}
