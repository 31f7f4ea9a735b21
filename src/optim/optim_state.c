// Optimizer state export/import for exact resume. Export hands out views of the live buffers
// (no copy); import reads "optim.meta" first, refuses a state it would misread, then loads
// everything else into staging buffers and copies them in only when all of it arrived, so a
// failed import leaves the optimizer exactly as it was.
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "optim/optim_impl.h"
#include "base/base_impl.h"

static uint64_t fnv(uint64_t h, const void *data, size_t n) {
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

uint64_t nb__optim_fingerprint(const nb_optim *o) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (int i = 0; i < o->n; i++) {
        nb_tensor *p = o->params[i];
        int32_t head[3] = {(int32_t)nb_tensor_dtype(p), nb_tensor_ndim(p), o->group[i]};
        h = fnv(h, o->names[i], strlen(o->names[i]) + 1);
        h = fnv(h, head, sizeof head);
        h = fnv(h, nb_tensor_shape(p), (size_t)nb_tensor_ndim(p) * sizeof(int64_t));
    }
    return h;
}

// The meta vector for this optimizer as it is now.
static void fill_meta(const nb_optim *o, double *m) {
    uint64_t fp = nb__optim_fingerprint(o);
    memset(m, 0, NB_OPTIM_META_LEN * sizeof *m);
    m[NB_META_VERSION] = NB_OPTIM_STATE_VERSION;
    m[NB_META_KIND] = o->cfg.kind;
    m[NB_META_N_PARAMS] = o->n;
    m[NB_META_N_GROUPS] = o->n_groups;
    m[NB_META_N_SLOTS] = o->n_slots;
    m[NB_META_FP_LO] = (double)(fp & 0xffffffffu);
    m[NB_META_FP_HI] = (double)(fp >> 32);
    m[NB_META_LR] = o->cfg.lr;
    m[NB_META_AMSGRAD] = o->cfg.amsgrad;
    m[NB_META_CENTERED] = o->cfg.centered;
    m[NB_META_MOMENTUM_ON] = o->cfg.momentum > 0;
    m[NB_META_NESTEROV] = o->cfg.nesterov;
}

int nb_optim_state_export(nb_optim *o, const char *const **names, nb_tensor *const **tensors) {
    if (!o || !names || !tensors) {
        nb__set_last_error(NB_ERR_NULL, "nb_optim_state_export: %s is NULL",
                           !o       ? "optimizer"
                           : !names ? "names"
                                    : "tensors");
        return 0;
    }
    fill_meta(o, o->meta);
    for (int i = 0; i < o->n; i++)
        o->step_f64[i] = (double)o->steps[i];
    *names = (const char *const *)o->state_names;
    *tensors = o->state;
    return o->n_state;
}

static const char *flag_name(int k) {
    return k == NB_META_AMSGRAD    ? "amsgrad"
           : k == NB_META_CENTERED ? "centered"
           : k == NB_META_NESTEROV ? "nesterov"
                                   : "momentum > 0";
}

// NB_OK when the saved meta m describes a state this optimizer reads the same way.
static nb_status check_meta(const nb_optim *o, const double *m) {
    const char *who = "nb_optim_state_import";
    double mine[NB_OPTIM_META_LEN];
    fill_meta(o, mine);
    if (m[NB_META_VERSION] != NB_OPTIM_STATE_VERSION)
        return nb__set_last_error(NB_ERR_FORMAT,
                                  "%s: unknown state format version %g (this build "
                                  "reads %d)",
                                  who, m[NB_META_VERSION], NB_OPTIM_STATE_VERSION);
    if (m[NB_META_KIND] != mine[NB_META_KIND]) {
        double k = m[NB_META_KIND];
        return nb__set_last_error(
            NB_ERR_FORMAT,
            "%s: the checkpoint holds %s optimizer state, this optimizer is "
            "%s",
            who,
            k >= 0 && k < NB_OPTIM_KIND_COUNT ? nb_optim_kind_name((nb_optim_kind)k) : "unknown",
            nb_optim_kind_name(o->cfg.kind));
    }
    for (int k = NB_META_AMSGRAD; k <= NB_META_NESTEROV; k++)
        if (m[k] != mine[k])
            return nb__set_last_error(NB_ERR_FORMAT,
                                      "%s: %s is %s in the checkpoint but %s here (the state "
                                      "layout differs)",
                                      who, flag_name(k), m[k] != 0 ? "on" : "off",
                                      mine[k] != 0 ? "on" : "off");
    if (m[NB_META_N_PARAMS] != mine[NB_META_N_PARAMS] ||
        m[NB_META_N_GROUPS] != mine[NB_META_N_GROUPS])
        return nb__set_last_error(NB_ERR_FORMAT,
                                  "%s: the checkpoint's optimizer has %g parameters in %g groups, "
                                  "this one %d in %d (a different model)",
                                  who, m[NB_META_N_PARAMS], m[NB_META_N_GROUPS], o->n, o->n_groups);
    if (m[NB_META_FP_LO] != mine[NB_META_FP_LO] || m[NB_META_FP_HI] != mine[NB_META_FP_HI] ||
        m[NB_META_N_SLOTS] != mine[NB_META_N_SLOTS])
        return nb__set_last_error(NB_ERR_FORMAT,
                                  "%s: the checkpoint's parameter list differs from this "
                                  "optimizer's (names, shapes, dtypes, groups or order)",
                                  who);
    double lr = m[NB_META_LR];
    if (!(lr >= 0 && isfinite(lr)))
        return nb__set_last_error(NB_ERR_FORMAT, "%s: the checkpoint's lr %g is invalid", who, lr);
    return NB_OK;
}

// Staging copies of the step vector and every slot buffer, wrapped like the live views.
typedef struct {
    double *steps;
    void *block;
    nb_tensor **views; // (n_state - 1): step, then the slots
} staging;

static void staging_free(staging *s, int n_views) {
    for (int k = 0; s->views && k < n_views; k++)
        nb_tensor_destroy(s->views[k]);
    nb__free(s->views);
    nb__free(s->block);
    nb__free(s->steps);
}

static bool staging_alloc(staging *s, const nb_optim *o) {
    int n_views = o->n_state - 1;
    s->steps = nb__calloc((size_t)o->n, sizeof *s->steps);
    s->views = nb__calloc((size_t)n_views, sizeof *s->views);
    s->block = o->block_bytes ? nb__malloc(o->block_bytes) : NULL;
    if (!s->steps || !s->views || (o->block_bytes && !s->block))
        return false;
    if (!(s->views[0] = nb_tensor_wrap(NB_F64, 1, (int64_t[]){o->n}, s->steps)))
        return false;
    for (int k = 1; k < n_views; k++) {
        const nb_tensor *live = o->state[k + 1];
        char *at = (char *)s->block + ((char *)nb_tensor_data(o->state[k + 1]) - (char *)o->block);
        if (!(s->views[k] = nb_tensor_wrap(nb_tensor_dtype(live), nb_tensor_ndim(live),
                                           nb_tensor_shape(live), at)))
            return false;
    }
    return true;
}

// Prefixes the loader's message (copied first: it lives in the buffer being rewritten).
static nb_status loader_failed(nb_status st, const char *who) {
    char msg[512];
    snprintf(msg, sizeof msg, "%s", nb_last_error());
    return nb__set_last_error(st, "%s: %s", who, msg);
}

nb_status nb_optim_state_import(nb_optim *o, nb_optim_loader load, void *ctx) {
    const char *who = "nb_optim_state_import";
    if (!o || !load)
        return nb__set_last_error(NB_ERR_NULL, "%s: %s is NULL", who, o ? "loader" : "optimizer");
    double m[NB_OPTIM_META_LEN];
    nb_tensor *meta = nb_tensor_wrap(NB_F64, 1, (int64_t[]){NB_OPTIM_META_LEN}, m);
    if (!meta)
        return NB_ERR_NOMEM;
    const char *meta_name = "optim.meta";
    nb_status st = load(ctx, &meta_name, &meta, 1);
    nb_tensor_destroy(meta);
    if (st != NB_OK)
        return loader_failed(st, who);
    if ((st = check_meta(o, m)) != NB_OK)
        return st;
    staging s = {0};
    int n_views = o->n_state - 1;
    if (!staging_alloc(&s, o)) {
        staging_free(&s, n_views);
        return nb__set_last_error(NB_ERR_NOMEM, "%s: out of memory staging %zu bytes", who,
                                  o->block_bytes);
    }
    st = load(ctx, (const char *const *)o->state_names + 1, s.views, n_views);
    if (st != NB_OK) {
        loader_failed(st, who);
    } else {
        for (int i = 0; i < o->n && st == NB_OK; i++)
            if (!(s.steps[i] >= 0 && s.steps[i] <= 9007199254740992.0 &&
                  s.steps[i] == floor(s.steps[i])))
                st =
                    nb__set_last_error(NB_ERR_FORMAT, "%s: optim.step[%d] = %g is not a step count",
                                       who, i, s.steps[i]);
    }
    if (st == NB_OK) { // commit: nothing below can fail
        if (o->block_bytes)
            memcpy(o->block, s.block, o->block_bytes);
        for (int i = 0; i < o->n; i++)
            o->steps[i] = (int64_t)s.steps[i];
        o->cfg.lr = m[NB_META_LR];
    }
    staging_free(&s, n_views);
    return st;
}
