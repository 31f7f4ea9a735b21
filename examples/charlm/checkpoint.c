// charlm's checkpoints (train.h): --save after every epoch, --resume.
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "charlm/train.h"

// ---- checkpoints: the named parameters, "vocab" (int32 code points), the optimizer's state and
// "train.state" float64 (4): version, finished epochs, steps, total steps.
#define MAX_T 512
nb_status charlm_save_checkpoint(charlm_run *r) {
    const char *names[MAX_T];
    nb_tensor *ts[MAX_T];
    int n = 0;
    for (int i = 0; i < nb_params_count(r->params, NB_PARAM); i++) {
        names[n] = nb_params_name(r->params, NB_PARAM, i);
        ts[n++] = nb_params_tensor(r->params, NB_PARAM, i);
    }
    const char *const *on;
    nb_tensor *const *ot;
    int k = nb_optim_state_export(r->opt, &on, &ot);
    for (int i = 0; i < k && n < MAX_T - 2; i++)
        names[n] = on[i], ts[n++] = ot[i];
    double st[4] = {1, r->epoch, (double)r->step, (double)r->total_steps};
    nb_tensor *ts_state = nb_tensor_wrap(NB_F64, 1, (int64_t[]){4}, st);
    names[n] = "vocab", ts[n++] = r->vocab;
    names[n] = "train.state", ts[n++] = ts_state;
    nb_status s = nb_save_safetensors(r->o.save, names, ts, n);
    nb_tensor_destroy(ts_state);
    return s;
}

static nb_status state_loader(void *ctx, const char *const *names, nb_tensor *const *ts, int n) {
    return nb_load_safetensors(ctx, names, ts, n);
}

int charlm_resume(charlm_run *r) {
    const char *path = r->o.resume;
    nb_safetensors *f = NULL;
    nb_status s = nb_safetensors_open(path, &f);
    if (s != NB_OK) {
        fprintf(stderr, "charlm: --resume: %s\n", nb_last_error());
        return 1;
    }
    // Another model's checkpoint (the transformer's has no LSTM weights, and the reverse) is
    // refused by name before its tensors' shapes are compared.
    bool saved_lstm = nb_safetensors_find(f, "lstm.weight_ih_l0", NULL, NULL, NULL);
    // The transformer's position table (pos_emb.weight, (context, width)) fixes the longest
    // window it can read: a run with longer windows is refused here, naming both sizes, rather
    // than as a shape mismatch deep in the load.
    int pdt = 0, pnd = 0;
    int64_t pshape[NB_MAX_DIMS] = {0};
    bool has_pos = nb_safetensors_find(f, "pos_emb.weight", &pdt, &pnd, pshape);
    nb_safetensors_close(f);
    if (saved_lstm != !strcmp(r->o.model, "lstm")) {
        fprintf(stderr, "charlm: --resume: %s was written by --model %s, not --model %s\n", path,
                saved_lstm ? "lstm" : "transformer", r->o.model);
        return 1;
    }
    if (!saved_lstm && has_pos && pnd == 2 && pshape[0] != r->o.context) {
        fprintf(stderr,
                "charlm: --resume: %s: its position embedding pos_emb.weight is (%" PRId64
                ", %" PRId64 "), a table of %" PRId64 " positions, but --context %" PRId64
                " windows are %" PRId64 " characters%s: resume with --context %" PRId64 "\n",
                path, pshape[0], pshape[1], pshape[0], r->o.context, r->o.context,
                r->o.context > pshape[0] ? " (T longer than the position table)" : "", pshape[0]);
        return 1;
    }
    // The vocabulary first: a checkpoint of another corpus is refused before anything changes.
    nb_tensor *saved = nb_tensor_create(NB_I32, 1, (int64_t[]){r->txt.vocab.size});
    const char *vn = "vocab";
    s = nb_load_safetensors(path, &vn, &saved, 1);
    if (s == NB_ERR_SHAPE || s == NB_OK) {
        // a size mismatch: read it at its own size for nb_vocab_check's message
        if (s == NB_OK)
            s = nb_vocab_check(&r->txt.vocab, saved);
        else
            s = NB_ERR_FORMAT, fprintf(stderr,
                                       "charlm: --resume: %s has a vocabulary of another size "
                                       "than this corpus's %d symbols: not the same data\n",
                                       path, r->txt.vocab.size);
    }
    nb_tensor_destroy(saved);
    if (s != NB_OK) {
        if (s != NB_ERR_FORMAT || !strstr(nb_last_error(), "another size"))
            fprintf(stderr, "charlm: --resume: %s: %s\n", path, nb_last_error());
        return 1;
    }
    double st[4];
    nb_tensor *tst = nb_tensor_wrap(NB_F64, 1, (int64_t[]){4}, st);
    const char *sn = "train.state";
    s = nb_load_safetensors(path, &sn, &tst, 1);
    nb_tensor_destroy(tst);
    if (s != NB_OK || st[0] != 1 || st[3] != (double)r->total_steps) {
        fprintf(stderr, "charlm: --resume: %s: %s\n", path,
                s != NB_OK ? nb_last_error()
                           : "written by a run with other flags (steps per run differ): resume "
                             "with the flags of that run");
        return 1;
    }
    if ((s = nb_params_load(r->params, path)) != NB_OK ||
        (s = nb_optim_state_import(r->opt, state_loader, (void *)(uintptr_t)path)) != NB_OK) {
        fprintf(stderr, "charlm: --resume: %s\n", nb_last_error());
        return 1;
    }
    r->epoch = (int)st[1];
    r->step = (int64_t)st[2];
    printf("resumed %s at epoch %d, step %" PRId64 "\n", path, r->epoch, r->step);
    return 0;
}
