// The tape: graph lifecycle, sticky errors, and nb__record, the one function that creates
// nodes. Ops run as they are called (define-by-run) and are appended in execution order, so
// the tape is already a topological order for backward.
#include <inttypes.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <string.h>

#include "graph/graph_priv.h"

// Epochs are unique across all graphs and steps, so `t->epoch == g->epoch` alone says "an
// output of this graph's current step". Leaves hold NB_LEAF_EPOCH, below the first one. A
// graph reserves NB_EPOCH_BLOCK of them at a time (one atomic add) and hands them to its
// resets in turn, so a reset costs no locked instruction (per-op overhead, bench_overhead).
#define NB_EPOCH_BLOCK ((uint64_t)1 << 20)
static atomic_uint_fast64_t next_block = NB_LEAF_EPOCH + 1;

static uint64_t new_epoch(nb_graph *g) {
    if (g->epoch_next == g->epoch_end) {
        uint64_t b = (uint64_t)atomic_fetch_add(&next_block, NB_EPOCH_BLOCK);
        g->epoch_next = b;
        g->epoch_end = b + NB_EPOCH_BLOCK;
    }
    return g->epoch_next++;
}

nb_graph *nb_graph_create(void) {
    nb_graph *g = nb__calloc(1, sizeof *g);
    if (!g) {
        nb__set_last_error(NB_ERR_NOMEM, "nb_graph_create: out of memory");
        return NULL;
    }
    nb__arena_init(&g->arenas[0]);
    nb__arena_init(&g->arenas[1]);
    g->arena = &g->arenas[0];
    g->grad_enabled = true;
    g->epoch = new_epoch(g);
    g->max_ops = NB_GRAPH_DEFAULT_MAX_OPS;
    g->max_bytes = NB_GRAPH_DEFAULT_MAX_BYTES;
    nb__hdr_init(&g->hdrs);
    return g;
}

void nb_graph_set_limits(nb_graph *g, int64_t max_ops, size_t max_bytes) {
    if (!g)
        return;
    g->max_ops = max_ops > 0 ? max_ops : NB_GRAPH_DEFAULT_MAX_OPS;
    g->max_bytes = max_bytes > 0 ? max_bytes : NB_GRAPH_DEFAULT_MAX_BYTES;
}

void nb_graph_destroy(nb_graph *g) {
    if (!g)
        return;
    nb__arena_free(&g->arenas[0]);
    nb__arena_free(&g->arenas[1]);
    nb__hdr_free(&g->hdrs);
    nb__free(g->nodes);
    nb__free(g);
}

void nb_graph_reset(nb_graph *g) {
    if (!g)
        return;
        // Every build: the step's headers stay where they are (headers.c) with their old epoch,
        // so a tensor kept across any number of resets is reported when an op is given it.
#ifdef NB_DEBUG_LIFETIME
    // Debug builds also poison the step just finished and run the next step in the other
    // arena, so reading a kept tensor's data (not only passing it to an op) shows poison
    // instead of a newer tensor's values. Costs the memory of a second arena.
    nb__arena_poison(g->arena);
    g->arena = g->arena == &g->arenas[0] ? &g->arenas[1] : &g->arenas[0];
    nb__hdr_reset(&g->hdrs, true);
#else
    nb__hdr_reset(&g->hdrs, false);
#endif
    nb__arena_reset(g->arena);
    for (int k = 0; k < NB_KEEP_SLOTS; k++) // in the arena just reset
        g->keep[k] = NULL, g->keep_size[k] = 0;
    g->n_nodes = 0;
    g->epoch = new_epoch(g);
    nb_graph_clear_error(g);
}

nb_status nb_graph_status(const nb_graph *g) {
    return g ? g->status : NB_ERR_NULL;
}
const char *nb_graph_error(const nb_graph *g) {
    return g ? g->error : "graph is NULL";
}

void nb_graph_clear_error(nb_graph *g) {
    if (!g)
        return;
    g->status = NB_OK;
    g->error[0] = '\0';
}

void nb_graph_set_grad_enabled(nb_graph *g, bool enabled) {
    if (g)
        g->grad_enabled = enabled;
}
bool nb_graph_grad_enabled(const nb_graph *g) {
    return g && g->grad_enabled;
}
int64_t nb_graph_size(const nb_graph *g) {
    return g ? g->n_nodes : 0;
}

// Formats "<prefix>: <message>" and, when the op's call site is known (the ops.h macros), adds
// "; op called at <file>:<line>", so a model with five linear calls says which one failed.
static nb_status vfail(nb_graph *g, nb_status code, const char *prefix, const char *file, int line,
                       const char *fmt, va_list ap) {
    if (g->status != NB_OK) // first error wins: it is the root cause
        return code;
    g->status = code;
    int k = prefix ? snprintf(g->error, sizeof g->error, "%s: ", prefix) : 0;
    if (k < 0 || (size_t)k >= sizeof g->error)
        k = 0;
    vsnprintf(g->error + k, sizeof g->error - (size_t)k, fmt, ap);
    size_t len = strlen(g->error);
    if (file && len < sizeof g->error)
        snprintf(g->error + len, sizeof g->error - len, "; op called at %s:%d", file, line);
    return code;
}

// From inside an op call (nb__record's own checks, an op's argument checks) the innermost
// open call site is the user's line; elsewhere (backward, replay) there is none.
nb_status nb__graph_fail(nb_graph *g, nb_status code, const char *fmt, ...) {
    const char *file;
    int line;
    nb__site_current(&file, &line);
    va_list ap;
    va_start(ap, fmt);
    vfail(g, code, NULL, file, line, fmt, ap);
    va_end(ap);
    return code;
}

nb_status nb_graph_fail(nb_graph *g, nb_status code, const char *fmt, ...) {
    if (!g || !fmt)
        return NB_ERR_NULL;
    va_list ap;
    // A layer's own message: inside nb_layer_forward (its macro) the open call site is the
    // user's line; outside any op call there is none.
    const char *file;
    int line;
    nb__site_current(&file, &line);
    va_start(ap, fmt);
    vfail(g, code, NULL, file, line, fmt, ap);
    va_end(ap);
    return code;
}

nb_status nb__node_fail(nb_node *nd, nb_status code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vfail(nd->graph, code, nd->op->name, nd->file, nd->line, fmt, ap);
    va_end(ap);
    return code;
}

bool nb__axis(int axis, int ndim, int *out) {
    if (axis < 0)
        axis += ndim;
    if (axis < 0 || axis >= ndim)
        return false;
    *out = axis;
    return true;
}

// The likely cause when a tape outgrows its budget.
#define FORGOT_RESET                                                                               \
    "forgot nb_graph_reset in a loop? (raise the budget with nb_graph_set_limits if the graph "    \
    "is really this large)"

// Out of line: the common path of nb__graph_alloc stays a compare and a bump.
static __attribute__((noinline, cold)) void *over_budget(nb_graph *g, size_t nbytes) {
    nb__graph_fail(g, NB_ERR_STATE,
                   "%s: the tape holds %" PRId64 " ops and %zu MiB since the last reset; %zu "
                   "more bytes exceed its %zu MiB budget: " FORGOT_RESET,
                   g->cur_op ? g->cur_op : "nb_graph", g->n_nodes, g->arena->in_use >> 20, nbytes,
                   g->max_bytes >> 20);
    return NULL;
}

// Inlined into nb__record (several calls per op).
static inline __attribute__((always_inline)) void *galloc(nb_graph *g, size_t nbytes) {
    // No overflow: nbytes < 2^63 (numel * 8 passed nb__shape_check) and in_use is far smaller.
    if (g->arena->in_use + nbytes > g->max_bytes)
        return over_budget(g, nbytes);
    void *p = nb__arena_alloc(g->arena, nbytes);
    if (!p)
        nb__graph_fail(g, NB_ERR_NOMEM, "out of memory (arena block of %zu bytes)", nbytes);
    return p;
}

void *nb__graph_alloc(nb_graph *g, size_t nbytes) {
    return galloc(g, nbytes);
}

nb_tensor *nb__graph_tensor(nb_graph *g, nb_dtype dtype, int ndim, const int64_t *shape) {
    char err[128];
    int64_t numel = 0;
    if (nb__shape_check(ndim, shape, &numel, err, sizeof err) != NB_OK) {
        nb__graph_fail(g, NB_ERR_SHAPE, "graph tensor: %s", err);
        return NULL;
    }
    nb_tensor *t = nb__graph_alloc(g, sizeof *t);
    size_t nbytes = (size_t)numel * nb_dtype_size(dtype);
    void *data = t ? nb__graph_alloc(g, nbytes ? nbytes : 1) : NULL;
    if (!data)
        return NULL;
    memset(t, 0, sizeof *t);
    memset(data, 0, nbytes);
    t->dtype = dtype;
    t->ndim = ndim;
    if (ndim > 0)
        memcpy(t->shape, shape, (size_t)ndim * sizeof *shape);
    t->numel = numel;
    t->data = data;
    t->graph = g;
    t->epoch = g->epoch;
    t->node = -1;
    return t;
}

static void *node_buffer(nb_node *nd, size_t nbytes, bool zero) {
    if (nd->saved && nd->saved_size >= nbytes) // replayed forward: reuse
        return nd->saved;
    void *p = nb__graph_alloc(nd->graph, nbytes);
    if (p) {
        if (zero)
            memset(p, 0, nbytes);
        nd->saved = p;
        nd->saved_size = nbytes;
    }
    return p;
}

void *nb__node_save(nb_node *nd, size_t nbytes) {
    return node_buffer(nd, nbytes, true);
}

void *nb__node_scratch(nb_node *nd, size_t nbytes) {
    return node_buffer(nd, nbytes, false);
}

void *nb__graph_keep(nb_graph *g, nb_keep slot, size_t nbytes) {
    if (g->keep_size[slot] < nbytes) { // the earlier, smaller one stays in the arena until reset
        void *p = nb__graph_alloc(g, nbytes);
        if (!p)
            return NULL;
        g->keep[slot] = p;
        g->keep_size[slot] = nbytes;
    }
    return g->keep[slot];
}

void *nb__graph_transient(nb_graph *g, size_t nbytes) {
    return nb__graph_keep(g, NB_KEEP_TRANSIENT, nbytes);
}

// Dtype and ownership rules every op shares, checked before the op's own infer.
// Why input i (whose epoch is neither this step's nor a leaf's) cannot be used.
static nb_status lifetime_error(nb_graph *g, const char *op_name, const nb_tensor *t, int i) {
    if (t->epoch == NB_POISON_EPOCH || t->epoch == 0) // a dead header, poisoned or released
        return nb__graph_fail(g, NB_ERR_STATE,
                              "%s: input %d is an op output used after nb_graph_reset (its "
                              "memory was released); keep values across steps in your own "
                              "tensors (nb_tensor_copy)",
                              op_name, i);
    if (t->graph == g || !t->graph)
        return nb__graph_fail(g, NB_ERR_STATE,
                              "%s: input %d %s is a stale op output, used after "
                              "nb_graph_reset (made before it); keep values across steps in "
                              "your own tensors (nb_tensor_copy)",
                              op_name, i, NB_SHAPE_STR(t));
    return nb__graph_fail(g, NB_ERR_STATE, "%s: input %d %s was made on another graph", op_name, i,
                          NB_SHAPE_STR(t));
}

// Alive on g now: made on this step of g, or a leaf (a user tensor belongs to no graph).
static inline bool is_live(const nb_graph *g, const nb_tensor *t) {
    return t->epoch == g->epoch || (t->epoch == NB_LEAF_EPOCH && !t->graph);
}

nb_status nb__graph_check_live(nb_graph *g, const char *op_name, const nb_tensor *t, int i) {
    return is_live(g, t) ? NB_OK : lifetime_error(g, op_name, t, i);
}

static nb_status check_inputs(nb_graph *g, const nb_op *op, nb_tensor *const *in, int n_in) {
    // Lifetimes first, for every input: a stale tensor is reported as such, never read.
    for (int i = 0; i < n_in; i++)
        if (!is_live(g, in[i]))
            return lifetime_error(g, op->name, in[i], i);
    nb_dtype dt = NB_DTYPE_COUNT;
    for (int i = 0; i < n_in; i++) {
        const nb_tensor *t = in[i];
        bool is_index = (op->index_arg == i + 1);
        if (is_index) {
            if (t->dtype != NB_I32 && t->dtype != NB_I64)
                return nb__graph_fail(g, NB_ERR_DTYPE,
                                      "%s: input %d %s must be int32 or int64 indices, got %s",
                                      op->name, i, NB_SHAPE_STR(t), nb_dtype_name(t->dtype));
            continue;
        }
        bool is_int = t->dtype == NB_I32 || t->dtype == NB_I64;
        if (t->dtype != NB_F32 && t->dtype != NB_F64 && !(is_int && op->takes_ints))
            return nb__graph_fail(g, NB_ERR_DTYPE,
                                  "%s: input %d %s has dtype %s; expected float32 or float64",
                                  op->name, i, NB_SHAPE_STR(t), nb_dtype_name(t->dtype));
        if (dt == NB_DTYPE_COUNT)
            dt = t->dtype;
        else if (t->dtype != dt)
            return nb__graph_fail(g, NB_ERR_DTYPE,
                                  "%s: mixed dtypes: input 0 is %s, input %d %s is %s (convert "
                                  "explicitly)",
                                  op->name, nb_dtype_name(dt), i, NB_SHAPE_STR(t),
                                  nb_dtype_name(t->dtype));
    }
    return NB_OK;
}

static bool grow_tape(nb_graph *g) {
    if (g->n_nodes < g->cap_nodes)
        return true;
    int64_t cap = g->cap_nodes ? g->cap_nodes * 2 : 256;
    nb_node *nodes = nb__realloc(g->nodes, (size_t)cap * sizeof *nodes);
    if (!nodes)
        return false;
    g->nodes = nodes;
    g->cap_nodes = cap;
    return true;
}

nb_tensor *nb__record(nb_graph *g, const nb_op *op, nb_tensor *const *in, int n_in,
                      const void *params, size_t params_size) {
    if (!g) {
        nb__set_last_error(NB_ERR_NULL, "%s: graph is NULL", op->name);
        return NULL;
    }
    if (g->status != NB_OK)
        return NULL; // sticky: keep the first message
    // arity 0: a constant made on the tape (zeros, arange), recorded with in NULL, n_in 0.
    if ((n_in < 1 && op->arity != 0) || (op->arity >= 0 && n_in != op->arity) ||
        (!in && n_in > 0)) {
        if (op->arity >= 0)
            nb__graph_fail(g, NB_ERR_ARG, "%s: expected %d inputs, got %d", op->name, op->arity,
                           n_in);
        else
            nb__graph_fail(g, NB_ERR_ARG, "%s: expected at least 1 input, got %d", op->name, n_in);
        return NULL;
    }
    for (int i = 0; i < n_in; i++) {
        if (!in[i]) {
            nb__graph_fail(g, NB_ERR_NULL, "%s: input %d is NULL", op->name, i);
            return NULL;
        }
    }
    if (check_inputs(g, op, in, n_in) != NB_OK)
        return NULL;
    g->cur_op = op->name; // for the arena budget's message
    if (g->n_nodes >= g->max_ops) {
        nb__graph_fail(g, NB_ERR_STATE,
                       "%s: the tape already holds %" PRId64 " ops (%zu MiB) since the last "
                       "reset, its budget: " FORGOT_RESET,
                       op->name, g->n_nodes, g->arena->in_use >> 20);
        return NULL;
    }

    nb_node nd = {.op = op, .graph = g, .in = in, .n_in = n_in, .params = params};
    nb__site_current(&nd.file, &nd.line);
    // A constant (n_in 0) has no input to take a default dtype from: its infer sets one.
    nb_shape shape = {.dtype = n_in == 0                        ? NB_F32
                               : op->index_arg == 1 && n_in > 1 ? in[1]->dtype
                                                                : in[0]->dtype};
    if (op->infer(&nd, &shape) != NB_OK) {
        if (g->status == NB_OK) // infer forgot to say why: still never fail silently
            nb__graph_fail(g, NB_ERR_SHAPE, "%s: invalid input", op->name);
        return NULL;
    }

    // Everything the node keeps lives in the arena, in one block carved into 64-byte aligned
    // pieces (the arena's alignment): the input array, the params copy, the output's data and,
    // when it needs one, its grad. One bump instead of four (per-op overhead, bench_overhead).
    nb_tensor *out = nb__hdr_alloc(&g->hdrs); // never at an earlier step's header address
    if (!out)
        out = galloc(g, sizeof *out); // no reserved range: the arena, as before
    if (!out)
        return NULL;
    char err[128];
    memset(out, 0, sizeof *out);
    out->dtype = shape.set_dtype      ? shape.dtype
                 : n_in == 0          ? NB_F32 // a constant's infer always sets it
                 : op->index_arg == 1 ? in[1]->dtype
                                      : in[0]->dtype;
    if (nb__shape_check_fast(shape.ndim, shape.dim, &out->numel, err, sizeof err) != NB_OK) {
        nb__graph_fail(g, NB_ERR_SHAPE, "%s: output shape: %s", op->name, err);
        return NULL;
    }
    out->ndim = shape.ndim;
    memcpy(out->shape, shape.dim, sizeof out->shape);
    out->graph = g;
    out->epoch = g->epoch;
    out->node = -1;

    bool any_grad = false;
    for (int i = 0; i < n_in; i++)
        any_grad = any_grad || in[i]->requires_grad;
    nd.needs_grad = g->grad_enabled && any_grad && out->dtype != NB_I32 && out->dtype != NB_I64;

    // nbytes < 2^63 (numel * 8 passed nb__shape_check); data and grad together could reach
    // 2^64, so more than 2^62 bytes (no memory holds) is refused before adding up (galloc
    // needs its size below 2^63).
    size_t nbytes = (size_t)out->numel * nb__dtype_size(out->dtype);
    size_t in_bytes = NB_ARENA_ROUND((size_t)n_in * sizeof(nb_tensor *));
    size_t params_bytes = NB_ARENA_ROUND(params_size);
    size_t data_bytes = NB_ARENA_ROUND(nbytes ? nbytes : 1);
    if (data_bytes > SIZE_MAX / 4)
        return over_budget(g, nbytes);
    unsigned char *block =
        galloc(g, in_bytes + params_bytes + data_bytes + (nd.needs_grad ? data_bytes : 0));
    if (!block)
        return NULL;
    nb_tensor **in_copy = n_in ? (nb_tensor **)(void *)block : NULL;
    void *params_copy = params_size ? block + in_bytes : NULL;
    for (int i = 0; i < n_in; i++) // a loop, not a memcpy call: 1-3 inputs, per op
        in_copy[i] = in[i];
    if (params_size)
        memcpy(params_copy, params, params_size);
    nd.in = in_copy;
    nd.params = params_copy;
    out->data = block + in_bytes + params_bytes;
    nd.out = out;
    if (nd.needs_grad) {
        out->requires_grad = true;
        out->grad = block + in_bytes + params_bytes + data_bytes; // zeroed by backward
        nd.grad_own = out->grad;
    }

    // An empty output has nothing to compute (and its backward nothing to add): skipping the
    // kernels keeps work and index arithmetic from scaling with the other, possibly huge, dims.
    if (out->numel > 0)
        op->forward(&nd);
    if (g->status != NB_OK) // forward could not get its scratch memory
        return NULL;
    if (g->check_finite && nb__check_output(&nd) != NB_OK)
        return NULL;
    if (!grow_tape(g)) {
        nb__graph_fail(g, NB_ERR_NOMEM, "%s: out of memory growing the tape", op->name);
        return NULL;
    }
    out->node = g->n_nodes;
    g->nodes[g->n_nodes++] = nd;
    return out;
}

nb_status nb_graph_replay(nb_graph *g) {
    if (!g)
        return nb__set_last_error(NB_ERR_NULL, "nb_graph_replay: graph is NULL");
    if (g->status != NB_OK)
        return g->status;
    if (g->n_nodes == 0)
        return nb__graph_fail(g, NB_ERR_STATE, "nb_graph_replay: nothing recorded since reset");
    // Kernels are pure functions of their inputs: re-running them in tape order recomputes
    // every intermediate from the refreshed leaves. Saved state is reused (nb__node_save).
    for (int64_t i = 0; i < g->n_nodes && g->status == NB_OK; i++) {
        if (g->nodes[i].out->numel > 0) // as in nb__record
            g->nodes[i].op->forward(&g->nodes[i]);
        if (g->check_finite)
            nb__check_output(&g->nodes[i]);
    }
    return g->status;
}
