// The optimizer interface: creation from parameter groups (with every check an algorithm
// shares), zero_grad, step dispatch, lr. The algorithms (sgd.c, adam.c, rmsprop.c, adagrad.c,
// lion.c) only supply their state buffers and update kernels through an nb_optim_algo.
// Every state buffer lives in one zeroed block allocated here, so a step allocates nothing.
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "optim/optim_impl.h"
#include "base/base_impl.h"
#include "tensor/parallel.h"

static const nb_optim_algo *const algos[NB_OPTIM_KIND_COUNT] = {
    [NB_OPTIM_SGD] = &nb_optim_sgd_algo,         [NB_OPTIM_ADAM] = &nb_optim_adam_algo,
    [NB_OPTIM_ADAMW] = &nb_optim_adam_algo,      [NB_OPTIM_RMSPROP] = &nb_optim_rmsprop_algo,
    [NB_OPTIM_ADAGRAD] = &nb_optim_adagrad_algo, [NB_OPTIM_LION] = &nb_optim_lion_algo,
};
static const char *const kind_names[NB_OPTIM_KIND_COUNT] = {
    "sgd", "adam", "adamw", "rmsprop", "adagrad", "lion",
};

const char *nb_optim_kind_name(nb_optim_kind kind) {
    return (unsigned)kind < NB_OPTIM_KIND_COUNT ? kind_names[kind] : "?";
}

nb_optim_kind nb_optim_kind_from_name(const char *s) {
    int k = 0;
    while (s && k < NB_OPTIM_KIND_COUNT && strcmp(s, kind_names[k]))
        k++;
    return s ? (nb_optim_kind)k : NB_OPTIM_KIND_COUNT;
}

nb_optim_config nb_optim_defaults(nb_optim_kind kind, double lr) {
    nb_optim_config c = {.kind = kind, .lr = lr};
    switch (kind) {
    case NB_OPTIM_ADAMW:
        c.weight_decay = 1e-2;
        // fall through
    case NB_OPTIM_ADAM:
        c.beta1 = 0.9, c.beta2 = 0.999, c.eps = 1e-8;
        break;
    case NB_OPTIM_RMSPROP:
        c.alpha = 0.99, c.eps = 1e-8;
        break;
    case NB_OPTIM_ADAGRAD:
        c.eps = 1e-10;
        break;
    case NB_OPTIM_LION:
        c.beta1 = 0.9, c.beta2 = 0.99;
        break;
    default:
        break;
    }
    return c;
}

// ---- checks shared by every algorithm ----------------------------------------------------------

static nb_status check_config(const nb_optim_config *c, const char *who) {
    if ((unsigned)c->kind >= NB_OPTIM_KIND_COUNT)
        return nb__set_last_error(NB_ERR_ARG, "%s: unknown optimizer kind %d", who, (int)c->kind);
    if (!(c->lr > 0 && isfinite(c->lr)))
        return nb__set_last_error(NB_ERR_ARG, "%s: lr must be finite and > 0, got %g", who, c->lr);
    if (!(c->weight_decay >= 0 && isfinite(c->weight_decay)))
        return nb__set_last_error(NB_ERR_ARG, "%s: weight_decay must be finite and >= 0, got %g",
                                  who, c->weight_decay);
    char why[160] = "";
    if (!algos[c->kind]->check(c, why, sizeof why))
        return nb__set_last_error(NB_ERR_ARG, "%s: %s: %s", who, nb_optim_kind_name(c->kind), why);
    return NB_OK;
}

static nb_status check_param(nb_tensor *p, int g, int i, const char *who) {
    if (!p)
        return nb__set_last_error(NB_ERR_NULL, "%s: group %d params[%d] is NULL", who, g, i);
    nb_dtype dt = nb_tensor_dtype(p);
    if (dt != NB_F32 && dt != NB_F64)
        return nb__set_last_error(NB_ERR_DTYPE,
                                  "%s: params[%d] %s is %s; only float32 and float64 tensors can "
                                  "be optimized",
                                  who, i, NB_SHAPE_STR(p), nb_dtype_name(dt));
    if (!nb_tensor_requires_grad(p))
        return nb__set_last_error(NB_ERR_ARG,
                                  "%s: params[%d] %s does not require grad (call "
                                  "nb_tensor_set_requires_grad first)",
                                  who, i, NB_SHAPE_STR(p));
    if (!nb_tensor_is_leaf(p))
        return nb__set_last_error(NB_ERR_ARG,
                                  "%s: params[%d] %s is an op output owned by a graph; parameters "
                                  "must be tensors you created",
                                  who, i, NB_SHAPE_STR(p));
    return NB_OK;
}

// Every group and tensor, then duplicates across the whole list (tensors and names).
static nb_status check_groups(const nb_param_group *groups, int n_groups, const char *who,
                              int *total) {
    if (!groups)
        return nb__set_last_error(NB_ERR_NULL, "%s: params is NULL", who);
    if (n_groups < 1)
        return nb__set_last_error(NB_ERR_ARG, "%s: no parameter groups (n_groups = %d)", who,
                                  n_groups);
    int n = 0;
    for (int g = 0; g < n_groups; g++) {
        const nb_param_group *pg = &groups[g];
        if (!pg->params)
            return nb__set_last_error(NB_ERR_NULL, "%s: group %d: params is NULL", who, g);
        if (pg->n < 1)
            return nb__set_last_error(NB_ERR_ARG, "%s: empty parameter list (group %d, n = %d)",
                                      who, g, pg->n);
        if (!(pg->lr_scale > 0 && isfinite(pg->lr_scale)))
            return nb__set_last_error(NB_ERR_ARG,
                                      "%s: group %d: lr_scale must be finite and > 0 (1 for the "
                                      "optimizer's lr), got %g",
                                      who, g, pg->lr_scale);
        if (!(pg->weight_decay >= 0 && isfinite(pg->weight_decay)))
            return nb__set_last_error(NB_ERR_ARG,
                                      "%s: group %d: weight_decay must be finite and >= 0, got %g",
                                      who, g, pg->weight_decay);
        if (pg->n > INT32_MAX / 4 - n)
            return nb__set_last_error(NB_ERR_ARG, "%s: too many parameters", who);
        for (int i = 0; i < pg->n; i++) {
            nb_status st = check_param(pg->params[i], g, n + i, who);
            if (st != NB_OK)
                return st;
            if (pg->names && (!pg->names[i] || !pg->names[i][0]))
                return nb__set_last_error(NB_ERR_ARG, "%s: params[%d] has an empty or NULL name",
                                          who, n + i);
        }
        n += pg->n;
    }
    *total = n;
    return NB_OK;
}

// Quadratic, but runs once at creation over a parameter list (tens to thousands of tensors).
static nb_status check_duplicates(const nb_optim *o, const char *who) {
    for (int i = 0; i < o->n; i++)
        for (int j = 0; j < i; j++) {
            if (o->params[j] == o->params[i])
                return nb__set_last_error(NB_ERR_ARG,
                                          "%s: params[%d] and params[%d] are the same tensor %s; "
                                          "list each parameter once",
                                          who, j, i, NB_SHAPE_STR(o->params[i]));
            if (!strcmp(o->names[j], o->names[i]))
                return nb__set_last_error(NB_ERR_ARG,
                                          "%s: params[%d] and params[%d] are both named '%s'", who,
                                          j, i, o->names[i]);
        }
    return NB_OK;
}

// ---- creation ----------------------------------------------------------------------------------

size_t nb__optim_slot_bytes(nb_tensor *p) {
    size_t a = sizeof(double);
    size_t b = (size_t)nb_tensor_numel(p) * nb_dtype_size(nb_tensor_dtype(p));
    return (b + a - 1) / a * a;
}

static char *str_dup(const char *s) {
    size_t len = strlen(s) + 1;
    char *d = nb__malloc(len);
    if (d)
        memcpy(d, s, len);
    return d;
}

static char *str_cat3(const char *a, const char *b, const char *c) {
    size_t la = strlen(a), lb = strlen(b), lc = strlen(c);
    char *d = nb__malloc(la + lb + lc + 1);
    if (d) {
        memcpy(d, a, la);
        memcpy(d + la, b, lb);
        memcpy(d + la + lb, c, lc + 1);
    }
    return d;
}

// The parameter arrays, names and state block. false on out-of-memory.
static bool alloc_params(nb_optim *o, const nb_param_group *groups) {
    int n = o->n;
    o->params = nb__calloc((size_t)n, sizeof *o->params);
    o->names = nb__calloc((size_t)n, sizeof *o->names);
    o->group = nb__calloc((size_t)n, sizeof *o->group);
    o->steps = nb__calloc((size_t)n, sizeof *o->steps);
    o->lr_scale = nb__calloc((size_t)o->n_groups, sizeof *o->lr_scale);
    o->wd = nb__calloc((size_t)o->n_groups, sizeof *o->wd);
    o->slot = nb__calloc((size_t)n * (size_t)(o->n_slots ? o->n_slots : 1), sizeof *o->slot);
    if (!o->params || !o->names || !o->group || !o->steps || !o->lr_scale || !o->wd || !o->slot)
        return false;
    int k = 0;
    for (int g = 0; g < o->n_groups; g++) {
        o->lr_scale[g] = groups[g].lr_scale;
        o->wd[g] = groups[g].weight_decay;
        for (int i = 0; i < groups[g].n; i++, k++) {
            o->params[k] = groups[g].params[i];
            o->group[k] = g;
            char gen[24];
            snprintf(gen, sizeof gen, "p%d", k);
            if (!(o->names[k] = str_dup(groups[g].names ? groups[g].names[i] : gen)))
                return false;
        }
    }
    if (o->n_slots == 0)
        return true;
    size_t total = 0;
    for (int i = 0; i < n; i++)
        total += nb__optim_slot_bytes(o->params[i]) * (size_t)o->n_slots;
    if (!(o->block = nb__calloc(1, total)))
        return false;
    o->block_bytes = total;
    char *at = o->block;
    for (int i = 0; i < n; i++)
        for (int s = 0; s < o->n_slots; s++) {
            o->slot[i * o->n_slots + s] = at;
            at += nb__optim_slot_bytes(o->params[i]);
        }
    if (o->algo->init_slots)
        for (int i = 0; i < n; i++)
            o->algo->init_slots(&o->cfg, nb_tensor_dtype(o->params[i]), &o->slot[i * o->n_slots],
                                nb_tensor_numel(o->params[i]));
    return true;
}

// The export views: meta, step, then (parameter, slot) in order. false on out-of-memory.
static bool alloc_state_views(nb_optim *o) {
    o->n_state = 2 + o->n * o->n_slots;
    o->state_names = nb__calloc((size_t)o->n_state, sizeof *o->state_names);
    o->state = nb__calloc((size_t)o->n_state, sizeof *o->state);
    o->meta = nb__calloc(NB_OPTIM_META_LEN, sizeof *o->meta);
    o->step_f64 = nb__calloc((size_t)o->n, sizeof *o->step_f64);
    if (!o->state_names || !o->state || !o->meta || !o->step_f64)
        return false;
    o->state_names[0] = str_dup("optim.meta");
    o->state_names[1] = str_dup("optim.step");
    o->state[0] = nb_tensor_wrap(NB_F64, 1, (int64_t[]){NB_OPTIM_META_LEN}, o->meta);
    o->state[1] = nb_tensor_wrap(NB_F64, 1, (int64_t[]){o->n}, o->step_f64);
    if (!o->state_names[0] || !o->state_names[1] || !o->state[0] || !o->state[1])
        return false;
    for (int i = 0; i < o->n; i++)
        for (int s = 0; s < o->n_slots; s++) {
            int k = 2 + i * o->n_slots + s;
            nb_tensor *p = o->params[i];
            char prefix[40];
            snprintf(prefix, sizeof prefix, "optim.%s.", o->slot_names[s]);
            o->state_names[k] = str_cat3(prefix, o->names[i], "");
            o->state[k] = nb_tensor_wrap(nb_tensor_dtype(p), nb_tensor_ndim(p), nb_tensor_shape(p),
                                         o->slot[i * o->n_slots + s]);
            if (!o->state_names[k] || !o->state[k])
                return false;
        }
    return true;
}

nb_optim *nb__optim_create_groups(const nb_param_group *groups, int n_groups, nb_optim_config cfg,
                                  const char *who) {
    int n = 0;
    if (check_config(&cfg, who) != NB_OK || check_groups(groups, n_groups, who, &n) != NB_OK)
        return NULL;
    nb_optim *o = nb__calloc(1, sizeof *o);
    if (!o)
        goto nomem;
    o->cfg = cfg;
    o->algo = algos[cfg.kind];
    o->n = n;
    o->n_groups = n_groups;
    o->n_slots = o->algo->slots(&cfg, o->slot_names);
    if (!alloc_params(o, groups))
        goto nomem;
    if (check_duplicates(o, who) != NB_OK) {
        nb_optim_destroy(o);
        return NULL;
    }
    if (!alloc_state_views(o))
        goto nomem;
    return o;
nomem:
    nb_optim_destroy(o);
    nb__set_last_error(NB_ERR_NOMEM, "%s: out of memory for %d parameters", who, n);
    return NULL;
}

nb_optim *nb_optim_create_groups(const nb_param_group *groups, int n_groups, nb_optim_config cfg) {
    return nb__optim_create_groups(groups, n_groups, cfg, "nb_optim_create");
}

nb_optim *nb_optim_create(nb_tensor *const *params, const char *const *names, int n,
                          nb_optim_config cfg) {
    nb_param_group g = {params, names, n, 1.0, cfg.weight_decay};
    return nb__optim_create_groups(&g, 1, cfg, "nb_optim_create");
}

nb_optim *nb_optim_create_no_decay_1d(nb_tensor *const *params, const char *const *names, int n,
                                      nb_optim_config cfg) {
    const char *who = "nb_optim_create_no_decay_1d";
    if (!params || n < 1) {
        nb__set_last_error(params ? NB_ERR_ARG : NB_ERR_NULL, "%s: %s", who,
                           params ? "empty parameter list" : "params is NULL");
        return NULL;
    }
    // Two groups in the caller's relative order: the decayed tensors, then the others.
    nb_tensor **ts = nb__calloc((size_t)n, sizeof *ts);
    const char **ns = names ? nb__calloc((size_t)n, sizeof *ns) : NULL;
    nb_optim *o = NULL;
    if (!ts || (names && !ns)) {
        nb__set_last_error(NB_ERR_NOMEM, "%s: out of memory", who);
        goto done;
    }
    int k = 0;
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < n; i++) {
            bool decayed = params[i] && nb_tensor_ndim(params[i]) >= 2;
            if (decayed == (pass == 0)) {
                ts[k] = params[i];
                if (ns)
                    ns[k] = names[i];
                k++;
            }
        }
    int n_dec = 0;
    while (n_dec < n && ts[n_dec] && nb_tensor_ndim(ts[n_dec]) >= 2)
        n_dec++;
    nb_param_group g[2] = {
        {ts, ns, n_dec, 1.0, cfg.weight_decay},
        {ts + n_dec, ns ? ns + n_dec : NULL, n - n_dec, 1.0, 0.0},
    };
    // An empty group (no weights, or no biases) is dropped rather than refused.
    if (n_dec == 0)
        o = nb__optim_create_groups(&g[1], 1, cfg, who);
    else if (n_dec == n)
        o = nb__optim_create_groups(&g[0], 1, cfg, who);
    else
        o = nb__optim_create_groups(g, 2, cfg, who);
done:
    nb__free(ts);
    nb__free((void *)ns);
    return o;
}

void nb_optim_destroy(nb_optim *o) {
    if (!o)
        return;
    for (int k = 0; o->state && k < o->n_state; k++)
        nb_tensor_destroy(o->state[k]);
    for (int k = 0; o->state_names && k < o->n_state; k++)
        nb__free(o->state_names[k]);
    for (int i = 0; o->names && i < o->n; i++)
        nb__free(o->names[i]);
    nb__free(o->state);
    nb__free(o->state_names);
    nb__free(o->meta);
    nb__free(o->step_f64);
    nb__free(o->block);
    nb__free(o->slot);
    nb__free(o->wd);
    nb__free(o->lr_scale);
    nb__free(o->steps);
    nb__free(o->group);
    nb__free(o->names);
    nb__free(o->params);
    nb__free(o);
}

// ---- training-step calls -----------------------------------------------------------------------

nb_status nb_optim_step(nb_optim *o) {
    if (!o)
        return nb__set_last_error(NB_ERR_NULL, "nb_optim_step: optimizer is NULL");
    for (int i = 0; i < o->n; i++) {
        nb_tensor *p = o->params[i];
        void *g = nb_tensor_grad(p);
        if (!g) // never reached by a backward pass: nothing to apply (PyTorch skips it too)
            continue;
        nb_optim_update u = {
            .cfg = &o->cfg,
            .lr = o->cfg.lr * o->lr_scale[o->group[i]],
            .wd = o->wd[o->group[i]],
            .step = ++o->steps[i],
            .n = nb_tensor_numel(p),
            .w = nb_tensor_data(p),
            .g = g,
        };
        for (int s = 0; s < o->n_slots; s++)
            u.slot[s] = o->slot[i * o->n_slots + s];
        if (nb_tensor_dtype(p) == NB_F32)
            o->algo->update_f32(&u);
        else
            o->algo->update_f64(&u);
    }
    return NB_OK;
}

// Clears the part [lo, hi) of the grads laid end to end (parameters without a grad skipped),
// counted in elements.
static void zero_share(const nb_optim *o, int64_t lo, int64_t hi) {
    int64_t at = 0;
    for (int i = 0; i < o->n && at < hi; i++) {
        nb_tensor *p = o->params[i];
        char *g = nb_tensor_grad(p);
        if (!g)
            continue;
        int64_t n = nb_tensor_numel(p), a = lo > at ? lo : at, b = hi < at + n ? hi : at + n;
        size_t es = nb_dtype_size(nb_tensor_dtype(p));
        if (a < b)
            memset(g + (size_t)(a - at) * es, 0, (size_t)(b - a) * es);
        at += n;
    }
}

// Clearing the grads is a memory pass like the update, so above NB_OMP_MIN elements in all it
// runs on the OpenMP team: one region for every grad (each thread clears one contiguous share of
// the grads laid end to end), not one per tensor. Net B (784-64-10, 51 K parameters) at 2
// threads: the serial memset took 2.3 us of a 62 us step against 1.4 us at 1 thread, half of
// W1's grad lines sitting in the other core's cache after the split GEMM and update
// (bench/README.md, "Net B, round 4").
void nb_optim_zero_grad(nb_optim *o) {
    if (!o)
        return;
    int64_t total = 0;
    for (int i = 0; i < o->n; i++)
        if (nb_tensor_grad(o->params[i]))
            total += nb_tensor_numel(o->params[i]);
    NB_RANGES(total, NB_OMP_MIN, lo, hi, zero_share(o, lo, hi));
}

nb_status nb_optim_set_lr(nb_optim *o, double lr) {
    if (!o)
        return nb__set_last_error(NB_ERR_NULL, "nb_optim_set_lr: optimizer is NULL");
    if (!(lr >= 0 && isfinite(lr)))
        return nb__set_last_error(NB_ERR_ARG,
                                  "nb_optim_set_lr: lr must be finite and >= 0, got %g (kept %g)",
                                  lr, o->cfg.lr);
    o->cfg.lr = lr;
    return NB_OK;
}

double nb_optim_get_lr(const nb_optim *o) {
    return o ? o->cfg.lr : 0.0;
}

nb_optim_kind nb_optim_kind_of(const nb_optim *o) {
    return o ? o->cfg.kind : NB_OPTIM_KIND_COUNT;
}

const nb_optim_config *nb_optim_config_of(const nb_optim *o) {
    return o ? &o->cfg : NULL;
}

nb_tensor *const *nb_optim_params(const nb_optim *o, int *n) {
    if (n)
        *n = o ? o->n : 0;
    return o ? o->params : NULL;
}

int64_t nb_optim_param_steps(const nb_optim *o, int i) {
    return o && i >= 0 && i < o->n ? o->steps[i] : -1;
}
