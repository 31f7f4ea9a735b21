// The layer base (dispatch, names, train/eval, whole-model checkpoints) and the basic kinds:
// linear, relu, flatten, sequential.
// Ops called here record the user's nb_layer_forward call site (its macro in nabla/nn.h), not
// a line of this file.
#define NB_NO_SITE_MACROS
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "base/base_impl.h"
#include "nabla/io.h"
#include "nabla/ops.h"
#include "nn/nn_impl.h"

// ---- the base ------------------------------------------------------------------------------

void nb_layer_init(nb_layer *layer, const nb_layer_ops *ops) {
    if (!layer)
        return;
    layer->ops = ops;
    layer->training = true;
    layer->owner = NULL;
    layer->name[0] = '\0';
}

nb_layer *nb__layer_alloc(size_t size, const nb_layer_ops *ops, const char *fn) {
    nb_layer *l = nb__calloc(1, size);
    if (!l) {
        nb__set_last_error(NB_ERR_NOMEM, "%s: out of memory", fn);
        return NULL;
    }
    nb_layer_init(l, ops);
    return l;
}

const char *nb__layer_who(const nb_layer *l, char *buf, size_t size) {
    if (l->name[0])
        snprintf(buf, size, "%s '%s'", l->ops->kind, l->name);
    else
        snprintf(buf, size, "%s", l->ops->kind);
    return buf;
}

nb_tensor *nb__uniform_param(nb_dtype dtype, int ndim, const int64_t *shape, nb_rng *rng,
                             double bound) {
    nb_tensor *t = nb_tensor_create(dtype, ndim, shape);
    if (!t)
        return NULL;
    if (nb_init_uniform(t, rng, -bound, bound) != NB_OK ||
        nb_tensor_set_requires_grad(t, true) != NB_OK) {
        nb_tensor_destroy(t);
        return NULL;
    }
    return t;
}

nb_tensor *nb__buffer(nb_dtype dtype, int ndim, const int64_t *shape, double v) {
    nb_tensor *t = nb_tensor_create(dtype, ndim, shape);
    if (t)
        nb_tensor_fill(t, v);
    return t;
}

nb_status nb__layer_create_failed(nb_status code, const char *fn, const char *what) {
    char why[256];
    snprintf(why, sizeof why, "%s", nb_last_error());
    return nb__set_last_error(code, "%s: %s: %s", fn, what, *why ? why : "out of memory");
}

nb_tensor *nb_layer_forward(nb_graph *g, nb_layer *layer, nb_tensor *x) {
    if (!g) { // no graph to hold the error: nb_last_error, as the ops do
        nb__set_last_error(NB_ERR_NULL, "%s: graph is NULL",
                           layer && layer->ops ? NB_WHO(layer) : "nb_layer_forward");
        return NULL;
    }
    if (nb_graph_status(g) != NB_OK)
        return NULL;
    if (!layer || !layer->ops || !layer->ops->forward) {
        nb_graph_fail(g, NB_ERR_NULL, "nb_layer_forward: layer is NULL or has no forward");
        return NULL;
    }
    if (!x) {
        nb_graph_fail(g, NB_ERR_NULL, "%s: input is NULL", NB_WHO(layer));
        return NULL;
    }
    return layer->ops->forward(layer, g, x);
}

nb_status nb_layer_collect(nb_layer *layer, nb_params *set, const char *prefix) {
    if (!layer || !layer->ops || !set)
        return nb__set_last_error(NB_ERR_NULL, "nb_layer_collect: %s is NULL",
                                  !set ? "set" : "layer");
    // The layer's name is the prefix itself: a longer one could name no entry of the set
    // (nb_params_add refuses it too), so it is refused here rather than cut.
    size_t len = prefix ? strlen(prefix) : 0;
    if (len > NB_PARAM_NAME_MAX)
        return nb__set_last_error(NB_ERR_ARG,
                                  "nb_layer_collect: prefix '%.32s...' is longer than %d bytes",
                                  prefix, NB_PARAM_NAME_MAX);
    memcpy(layer->name, prefix ? prefix : "", len);
    layer->name[len] = '\0';
    return layer->ops->collect ? layer->ops->collect(layer, set, prefix) : NB_OK;
}

nb_status nb_layer_collect_child(nb_layer *child, nb_params *set, const char *prefix,
                                 const char *name) {
    if (!name)
        return nb__set_last_error(NB_ERR_NULL, "nb_layer_collect_child: name is NULL");
    // One byte more than a name may have: a longer result is detected, not cut.
    char full[NB_PARAM_NAME_MAX + 2];
    bool pre = prefix && *prefix;
    int len = snprintf(full, sizeof full, "%s%s%s", pre ? prefix : "", pre ? "." : "", name);
    if (len < 0 || len > NB_PARAM_NAME_MAX)
        return nb__set_last_error(NB_ERR_ARG,
                                  "nb_layer_collect_child: name '%.32s...' is longer than %d bytes",
                                  full, NB_PARAM_NAME_MAX);
    // A relative path ("mlp.0") is allowed; an empty component is not.
    size_t n = strlen(name);
    if (!n || name[0] == '.' || name[n - 1] == '.' || strstr(name, ".."))
        return nb__set_last_error(NB_ERR_ARG,
                                  "nb_layer_collect_child: child name '%s' under '%s' is empty or "
                                  "has an empty component",
                                  name, pre ? prefix : "");
    return nb_layer_collect(child, set, full);
}

void nb_layer_train(nb_layer *layer, bool training) {
    if (!layer || !layer->ops)
        return;
    layer->training = training;
    if (layer->ops->set_training)
        layer->ops->set_training(layer, training);
}

void nb_layer_destroy(nb_layer *layer) {
    if (layer && layer->ops && layer->ops->destroy)
        layer->ops->destroy(layer);
}

const char *nb_layer_kind(const nb_layer *layer) {
    return layer && layer->ops && layer->ops->kind ? layer->ops->kind : "?";
}

// As load_state_dict(strict=True): every tensor of the checkpoint must be the model's, so a
// file of a larger or different architecture is not half-loaded in silence. Optimizer state
// saved beside the model ("optim.*", nb_optim_export) is allowed.
static nb_status unexpected_tensors(const nb_params *set, const char *path) {
    nb_safetensors *f;
    nb_status st = nb_safetensors_open(path, &f);
    if (st != NB_OK)
        return st;
    for (int i = 0; st == NB_OK && i < nb_safetensors_count(f); i++) {
        const char *name = nb_safetensors_name(f, i);
        if (strncmp(name, "optim.", 6) != 0 && !nb_params_find(set, name, NULL)) {
            int nd = 0;
            int64_t shape[NB_MAX_DIMS];
            nb_safetensors_find(f, name, NULL, &nd, shape);
            char dims[NB_MAX_DIMS * 22 + 4] = "";
            for (int d = 0, k = 0; d < nd && d < NB_MAX_DIMS; d++)
                k += snprintf(dims + k, sizeof dims - (size_t)k, "%s%lld", d ? ", " : "",
                              (long long)shape[d]);
            st = nb__set_last_error(NB_ERR_FORMAT,
                                    "nb_layer_load: %s: tensor '%.200s' (%s) is not in the model "
                                    "(%d parameters, %d buffers): a checkpoint of another "
                                    "architecture? (beside the model's tensors only optimizer "
                                    "state, 'optim.*', may be in the file; nb_params_load reads "
                                    "a set's tensors and ignores the rest)",
                                    path, name, dims, nb_params_count(set, NB_PARAM),
                                    nb_params_count(set, NB_BUFFER));
        }
    }
    nb_safetensors_close(f);
    return st;
}

static nb_status save_or_load(nb_layer *model, const char *path, bool save) {
    const char *fn = save ? "nb_layer_save" : "nb_layer_load";
    if (!model || !path)
        return nb__set_last_error(NB_ERR_NULL, "%s: %s is NULL", fn, !model ? "model" : "path");
    nb_params *set = nb_params_create();
    if (!set)
        return NB_ERR_NOMEM;
    nb_status st = nb_layer_collect(model, set, NULL);
    if (st == NB_OK && !save)
        st = unexpected_tensors(set, path);
    if (st == NB_OK)
        st = save ? nb_params_save(set, path) : nb_params_load(set, path);
    nb_params_destroy(set);
    return st;
}

nb_status nb_layer_save(nb_layer *model, const char *path) {
    return save_or_load(model, path, true);
}
nb_status nb_layer_load(nb_layer *model, const char *path) {
    return save_or_load(model, path, false);
}

// ---- linear ------------------------------------------------------------------------------

static nb_tensor *linear_forward(nb_layer *self, nb_graph *g, nb_tensor *x) {
    nb_nn_linear *l = (nb_nn_linear *)self;
    int nd = nb_tensor_ndim(x);
    if (nd < 1 || nb_tensor_dim(x, nd - 1) != l->in_features) {
        nb_graph_fail(
            g, NB_ERR_SHAPE, "%s (%lld -> %lld): input %s has %lld features, expected %lld",
            NB_WHO(self), (long long)l->in_features, (long long)l->out_features, NB_SHAPE_STR(x),
            nd < 1 ? 0LL : (long long)nb_tensor_dim(x, nd - 1), (long long)l->in_features);
        return NULL;
    }
    return nb_linear(g, x, l->weight, l->bias);
}

static nb_status linear_collect(nb_layer *self, nb_params *set, const char *prefix) {
    nb_nn_linear *l = (nb_nn_linear *)self;
    nb_status st = nb_params_add(set, prefix, "weight", l->weight, NB_PARAM);
    if (st == NB_OK && l->bias)
        st = nb_params_add(set, prefix, "bias", l->bias, NB_PARAM);
    return st;
}

static void linear_destroy(nb_layer *self) {
    nb_nn_linear *l = (nb_nn_linear *)self;
    nb_tensor_destroy(l->weight);
    nb_tensor_destroy(l->bias);
    nb__free(l);
}

static const nb_layer_ops linear_ops = {"linear", linear_forward, linear_collect, NULL,
                                        linear_destroy};

nb_layer *nb_nn_linear_create(int64_t in_features, int64_t out_features, bool bias, nb_dtype dtype,
                              nb_rng *rng) {
    static const char *fn = "nb_nn_linear_create";
    if (!rng) {
        nb__set_last_error(NB_ERR_NULL, "%s: rng is NULL", fn);
        return NULL;
    }
    if (in_features < 1 || out_features < 1) {
        nb__set_last_error(NB_ERR_ARG, "%s: in_features %lld and out_features %lld must be >= 1",
                           fn, (long long)in_features, (long long)out_features);
        return NULL;
    }
    if (dtype != NB_F32 && dtype != NB_F64) {
        nb__set_last_error(NB_ERR_DTYPE, "%s: dtype %s is not float32 or float64", fn,
                           nb_dtype_name(dtype));
        return NULL;
    }
    nb_nn_linear *l = nb__calloc(1, sizeof *l);
    if (!l) {
        nb__set_last_error(NB_ERR_NOMEM, "%s: out of memory", fn);
        return NULL;
    }
    nb_layer_init(&l->base, &linear_ops);
    l->in_features = in_features;
    l->out_features = out_features;
    // kaiming_uniform_(a = sqrt(5)): gain sqrt(2 / (1 + 5)), bound gain sqrt(3 / fan_in)
    // = 1 / sqrt(fan_in); the bias uses the same bound.
    double bound = 1.0 / sqrt((double)in_features);
    l->weight = nb__uniform_param(dtype, 2, (int64_t[]){out_features, in_features}, rng, bound);
    if (l->weight && bias)
        l->bias = nb__uniform_param(dtype, 1, (int64_t[]){out_features}, rng, bound);
    if (!l->weight || (bias && !l->bias)) {
        nb__layer_create_failed(NB_ERR_NOMEM, fn, "allocating the weights");
        linear_destroy(&l->base);
        return NULL;
    }
    return &l->base;
}

nb_nn_linear *nb_nn_linear_of(nb_layer *l) {
    return l && l->ops == &linear_ops ? (nb_nn_linear *)l : NULL;
}

// ---- relu, flatten -------------------------------------------------------------------------

typedef struct {
    nb_layer base;
    int start, end;
} flatten_layer;

static void plain_destroy(nb_layer *self) {
    nb__free(self);
}

static nb_tensor *relu_forward(nb_layer *self, nb_graph *g, nb_tensor *x) {
    (void)self;
    return nb_relu(g, x);
}

static nb_tensor *flatten_forward(nb_layer *self, nb_graph *g, nb_tensor *x) {
    flatten_layer *f = (flatten_layer *)self;
    return nb_flatten(g, x, f->start, f->end);
}

static const nb_layer_ops relu_ops = {"relu", relu_forward, NULL, NULL, plain_destroy};
static const nb_layer_ops flatten_ops = {"flatten", flatten_forward, NULL, NULL, plain_destroy};

nb_layer *nb_nn_relu_create(void) {
    return nb__layer_alloc(sizeof(nb_layer), &relu_ops, "nb_nn_relu_create");
}

nb_layer *nb_nn_flatten_create(int start, int end) {
    nb_layer *l = nb__layer_alloc(sizeof(flatten_layer), &flatten_ops, "nb_nn_flatten_create");
    if (l) {
        ((flatten_layer *)l)->start = start;
        ((flatten_layer *)l)->end = end;
    }
    return l;
}

// ---- sequential ----------------------------------------------------------------------------

typedef struct {
    nb_layer base;
    nb_layer **children;
    char **names;
    int n, cap;
} sequential_layer;

static nb_tensor *sequential_forward(nb_layer *self, nb_graph *g, nb_tensor *x) {
    sequential_layer *s = (sequential_layer *)self;
    for (int i = 0; i < s->n && x; i++)
        x = nb_layer_forward(g, s->children[i], x);
    return x;
}

static nb_status sequential_collect(nb_layer *self, nb_params *set, const char *prefix) {
    sequential_layer *s = (sequential_layer *)self;
    for (int i = 0; i < s->n; i++) {
        nb_status st = nb_layer_collect_child(s->children[i], set, prefix, s->names[i]);
        if (st != NB_OK)
            return st;
    }
    return NB_OK;
}

static void sequential_set_training(nb_layer *self, bool training) {
    sequential_layer *s = (sequential_layer *)self;
    for (int i = 0; i < s->n; i++)
        nb_layer_train(s->children[i], training);
}

static void sequential_destroy(nb_layer *self) {
    sequential_layer *s = (sequential_layer *)self;
    for (int i = 0; i < s->n; i++) {
        nb_layer_destroy(s->children[i]);
        nb__free(s->names[i]);
    }
    nb__free(s->children);
    nb__free(s->names);
    nb__free(s);
}

static const nb_layer_ops sequential_ops = {"sequential", sequential_forward, sequential_collect,
                                            sequential_set_training, sequential_destroy};

nb_layer *nb_nn_sequential_create(void) {
    return nb__layer_alloc(sizeof(sequential_layer), &sequential_ops, "nb_nn_sequential_create");
}

static sequential_layer *as_sequential(nb_layer *l) {
    return l && l->ops == &sequential_ops ? (sequential_layer *)l : NULL;
}

nb_status nb_nn_sequential_add(nb_layer *seq, const char *name, nb_layer *child) {
    static const char *fn = "nb_nn_sequential_add";
    if (!child) { // most often a create written inline that failed: its error, if any, is the last
        char why[256];
        snprintf(why, sizeof why, "%s", nb_last_error());
        return nb__set_last_error(NB_ERR_NULL, "%s: child is NULL (did its create fail? %s%s)", fn,
                                  *why ? "the last error: " : "no error recorded", why);
    }
    sequential_layer *s = as_sequential(seq);
    nb_status st = NB_OK;
    char buf[16];
    if (!seq)
        st = nb__set_last_error(NB_ERR_NULL, "%s: seq is NULL", fn);
    else if (!s)
        st = nb__set_last_error(NB_ERR_ARG, "%s: seq is a %s layer, not a sequential", fn,
                                nb_layer_kind(seq));
    else if (child == seq)
        st = nb__set_last_error(NB_ERR_ARG, "%s: a sequential cannot contain itself", fn);
    else if (child->owner && child->owner != seq)
        st = nb__set_last_error(
            NB_ERR_ARG,
            "%s: this %s layer already belongs to another container (%s%s%s%s); "
            "a layer has one owner: to share its weights, call it twice in "
            "one forward",
            fn, nb_layer_kind(child), nb_layer_kind(child->owner), *child->owner->name ? " '" : "",
            child->owner->name, *child->owner->name ? "'" : "");
    if (st == NB_OK && !name) {
        snprintf(buf, sizeof buf, "%d", s->n);
        name = buf;
    }
    if (st == NB_OK && (!*name || strchr(name, '.') || strlen(name) > NB_PARAM_NAME_MAX))
        st = nb__set_last_error(NB_ERR_ARG,
                                "%s: child name '%s' is empty, contains '.' or is "
                                "too long",
                                fn, name);
    for (int i = 0; st == NB_OK && i < s->n; i++) {
        if (strcmp(s->names[i], name) == 0)
            st = nb__set_last_error(NB_ERR_ARG, "%s: child name '%s' is taken", fn, name);
        else if (s->children[i] == child)
            st = nb__set_last_error(NB_ERR_ARG, "%s: this %s layer is already child '%s'", fn,
                                    nb_layer_kind(child), s->names[i]);
    }
    if (st == NB_OK && s->n == s->cap) {
        int cap = s->cap ? 2 * s->cap : 8;
        nb_layer **c = nb__realloc(s->children, (size_t)cap * sizeof *c);
        if (c)
            s->children = c;
        char **nm = c ? nb__realloc(s->names, (size_t)cap * sizeof *nm) : NULL;
        if (nm)
            s->names = nm;
        if (c && nm)
            s->cap = cap;
        else
            st = nb__set_last_error(NB_ERR_NOMEM, "%s: out of memory", fn);
    }
    char *copy = NULL;
    if (st == NB_OK) {
        copy = nb__malloc(strlen(name) + 1);
        if (!copy)
            st = nb__set_last_error(NB_ERR_NOMEM, "%s: out of memory", fn);
    }
    if (st != NB_OK) {
        // A child that this or another container owns must not be freed twice.
        if (!child->owner && child != seq)
            nb_layer_destroy(child);
        return st;
    }
    strcpy(copy, name);
    s->names[s->n] = copy;
    s->children[s->n] = child;
    s->n++;
    child->owner = seq;
    nb_layer_train(child, seq->training);
    return NB_OK;
}

int nb_nn_sequential_len(const nb_layer *seq) {
    return seq && seq->ops == &sequential_ops ? ((const sequential_layer *)seq)->n : 0;
}

nb_layer *nb_nn_sequential_child(nb_layer *seq, int i) {
    sequential_layer *s = as_sequential(seq);
    return s && i >= 0 && i < s->n ? s->children[i] : NULL;
}
