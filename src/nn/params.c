// The named parameter set: two ordered lists (parameters, buffers) of (name, borrowed tensor),
// kept as parallel arrays so optimizers and checkpoints take them without copying.
// Ops called here record the user's nb_layer_forward call site (its macro in nabla/nn.h), not
// a line of this file.
#define NB_NO_SITE_MACROS
#include <string.h>

#include "base/base_impl.h"
#include "nabla/io.h"
#include "nabla/nn.h"

typedef struct {
    char **names;        // (cap) owned strings
    nb_tensor **tensors; // (cap) borrowed
    int n, cap;
} entry_list;

struct nb_params {
    entry_list lists[NB_PARAM_KIND_COUNT];
};

nb_params *nb_params_create(void) {
    nb_params *set = nb__calloc(1, sizeof *set);
    if (!set)
        nb__set_last_error(NB_ERR_NOMEM, "nb_params_create: out of memory");
    return set;
}

void nb_params_clear(nb_params *set) {
    if (!set)
        return;
    for (int k = 0; k < NB_PARAM_KIND_COUNT; k++) {
        entry_list *l = &set->lists[k];
        for (int i = 0; i < l->n; i++)
            nb__free(l->names[i]);
        l->n = 0;
    }
}

void nb_params_destroy(nb_params *set) {
    if (!set)
        return;
    nb_params_clear(set);
    for (int k = 0; k < NB_PARAM_KIND_COUNT; k++) {
        nb__free(set->lists[k].names);
        nb__free(set->lists[k].tensors);
    }
    nb__free(set);
}

static bool kind_ok(const nb_params *set, nb_param_kind kind) {
    return set && (int)kind >= 0 && kind < NB_PARAM_KIND_COUNT;
}

nb_tensor *nb_params_find(const nb_params *set, const char *name, nb_param_kind *kind_out) {
    if (!set || !name)
        return NULL;
    for (int k = 0; k < NB_PARAM_KIND_COUNT; k++) {
        const entry_list *l = &set->lists[k];
        for (int i = 0; i < l->n; i++)
            if (strcmp(l->names[i], name) == 0) {
                if (kind_out)
                    *kind_out = (nb_param_kind)k;
                return l->tensors[i];
            }
    }
    return NULL;
}

static const char *find_tensor(const nb_params *set, const nb_tensor *t) {
    for (int k = 0; k < NB_PARAM_KIND_COUNT; k++)
        for (int i = 0; i < set->lists[k].n; i++)
            if (set->lists[k].tensors[i] == t)
                return set->lists[k].names[i];
    return NULL;
}

// Components separated by '.', none empty.
static bool name_ok(const char *s) {
    if (!*s || *s == '.')
        return false;
    for (; *s; s++)
        if (*s == '.' && (s[1] == '.' || s[1] == '\0'))
            return false;
    return true;
}

nb_status nb_params_add(nb_params *set, const char *prefix, const char *name, nb_tensor *t,
                        nb_param_kind kind) {
    static const char *fn = "nb_params_add";
    if (!set || !name || !t)
        return nb__set_last_error(NB_ERR_NULL, "%s: %s is NULL", fn,
                                  !set    ? "set"
                                  : !name ? "name"
                                          : "tensor");
    if (!kind_ok(set, kind))
        return nb__set_last_error(NB_ERR_ARG,
                                  "%s: '%s': kind %d is neither NB_PARAM nor "
                                  "NB_BUFFER",
                                  fn, name, (int)kind);
    char full[NB_PARAM_NAME_MAX + 2];
    bool pre = prefix && *prefix;
    int len = snprintf(full, sizeof full, "%s%s%s", pre ? prefix : "", pre ? "." : "", name);
    if (len < 0 || len > NB_PARAM_NAME_MAX)
        return nb__set_last_error(NB_ERR_ARG, "%s: name '%s%s%.32s...' is longer than %d bytes", fn,
                                  pre ? prefix : "", pre ? "." : "", name, NB_PARAM_NAME_MAX);
    if (!name_ok(full))
        return nb__set_last_error(NB_ERR_ARG, "%s: name '%s' is empty or has an empty component",
                                  fn, full);
    if (nb_params_find(set, full, NULL))
        return nb__set_last_error(NB_ERR_ARG, "%s: name '%s' is already in the set", fn, full);
    const char *other = find_tensor(set, t);
    if (other)
        return nb__set_last_error(NB_ERR_ARG, "%s: '%s' is the same tensor as '%s'", fn, full,
                                  other);
    if (!nb_tensor_is_leaf(t))
        return nb__set_last_error(NB_ERR_ARG, "%s: '%s' is an op output, not a leaf tensor", fn,
                                  full);
    if (kind == NB_PARAM) {
        nb_dtype dt = nb_tensor_dtype(t);
        if (dt != NB_F32 && dt != NB_F64)
            return nb__set_last_error(NB_ERR_DTYPE,
                                      "%s: parameter '%s' is %s, not float32 or "
                                      "float64",
                                      fn, full, nb_dtype_name(dt));
        if (!nb_tensor_requires_grad(t))
            return nb__set_last_error(NB_ERR_STATE,
                                      "%s: parameter '%s' does not require grad (register it "
                                      "as a buffer?)",
                                      fn, full);
    }
    entry_list *l = &set->lists[kind];
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 8;
        char **nn = nb__realloc(l->names, (size_t)cap * sizeof *nn);
        if (nn)
            l->names = nn;
        nb_tensor **nt = nn ? nb__realloc(l->tensors, (size_t)cap * sizeof *nt) : NULL;
        if (nt)
            l->tensors = nt;
        if (!nn || !nt)
            return nb__set_last_error(NB_ERR_NOMEM, "%s: out of memory", fn);
        l->cap = cap;
    }
    char *copy = nb__malloc((size_t)len + 1);
    if (!copy)
        return nb__set_last_error(NB_ERR_NOMEM, "%s: out of memory", fn);
    memcpy(copy, full, (size_t)len + 1);
    l->names[l->n] = copy;
    l->tensors[l->n] = t;
    l->n++;
    return NB_OK;
}

int nb_params_count(const nb_params *set, nb_param_kind kind) {
    return kind_ok(set, kind) ? set->lists[kind].n : 0;
}

int64_t nb_params_numel(const nb_params *set, nb_param_kind kind) {
    int64_t total = 0;
    for (int i = 0; i < nb_params_count(set, kind); i++)
        total += nb_tensor_numel(set->lists[kind].tensors[i]);
    return total;
}

const char *nb_params_name(const nb_params *set, nb_param_kind kind, int i) {
    return i >= 0 && i < nb_params_count(set, kind) ? set->lists[kind].names[i] : NULL;
}

nb_tensor *nb_params_tensor(const nb_params *set, nb_param_kind kind, int i) {
    return i >= 0 && i < nb_params_count(set, kind) ? set->lists[kind].tensors[i] : NULL;
}

nb_tensor *const *nb_params_tensors(const nb_params *set, nb_param_kind kind) {
    return nb_params_count(set, kind) ? set->lists[kind].tensors : NULL;
}

const char *const *nb_params_names(const nb_params *set, nb_param_kind kind) {
    return nb_params_count(set, kind) ? (const char *const *)set->lists[kind].names : NULL;
}

nb_optim *nb_params_optim_create(const nb_params *set, nb_optim_config cfg, bool no_decay_1d) {
    if (!set) {
        nb__set_last_error(NB_ERR_NULL, "nb_params_optim_create: set is NULL");
        return NULL;
    }
    int n = nb_params_count(set, NB_PARAM);
    if (n == 0) {
        nb__set_last_error(NB_ERR_ARG,
                           "nb_params_optim_create: the set has no parameters "
                           "(%d buffers)",
                           nb_params_count(set, NB_BUFFER));
        return NULL;
    }
    nb_tensor *const *t = nb_params_tensors(set, NB_PARAM);
    const char *const *names = nb_params_names(set, NB_PARAM);
    return no_decay_1d ? nb_optim_create_no_decay_1d(t, names, n, cfg)
                       : nb_optim_create(t, names, n, cfg);
}

// Parameters then buffers in one pair of arrays (the io calls take one list).
static nb_status gather(const nb_params *set, const char *fn, const char ***names,
                        nb_tensor ***tensors, int *n) {
    if (!set)
        return nb__set_last_error(NB_ERR_NULL, "%s: set is NULL", fn);
    int np = set->lists[NB_PARAM].n, nbuf = set->lists[NB_BUFFER].n;
    *n = np + nbuf;
    if (*n == 0)
        return nb__set_last_error(NB_ERR_ARG, "%s: the set is empty", fn);
    *names = nb__malloc((size_t)*n * sizeof **names);
    *tensors = nb__malloc((size_t)*n * sizeof **tensors);
    if (!*names || !*tensors) {
        nb__free(*names);
        nb__free(*tensors);
        return nb__set_last_error(NB_ERR_NOMEM, "%s: out of memory", fn);
    }
    for (int k = 0, j = 0; k < NB_PARAM_KIND_COUNT; k++)
        for (int i = 0; i < set->lists[k].n; i++, j++) {
            (*names)[j] = set->lists[k].names[i];
            (*tensors)[j] = set->lists[k].tensors[i];
        }
    return NB_OK;
}

nb_status nb_params_save(const nb_params *set, const char *path) {
    const char **names;
    nb_tensor **tensors;
    int n;
    nb_status st = gather(set, "nb_params_save", &names, &tensors, &n);
    if (st != NB_OK)
        return st;
    st = nb_save_safetensors(path, names, tensors, n);
    nb__free(names);
    nb__free(tensors);
    return st;
}

nb_status nb_params_load(nb_params *set, const char *path) {
    const char **names;
    nb_tensor **tensors;
    int n;
    nb_status st = gather(set, "nb_params_load", &names, &tensors, &n);
    if (st != NB_OK)
        return st;
    st = nb_load_safetensors(path, names, tensors, n);
    nb__free(names);
    nb__free(tensors);
    return st;
}
