// Reverse-mode sweep. The tape is in execution order, so walking it backwards visits a node
// only after every consumer of its output. One reverse pass marks the nodes that lead to the
// root and plans the first write of each (recycled) grad (plan: a store by its last consumer,
// or zeroing), a second runs each op's backward, which adds (+=) into its inputs' grads (or
// stores, on a planned first write): a tensor used twice simply receives two contributions.
#include <string.h>

#include "graph/graph_priv.h"

// ---- grad-ready hook: when each leaf's grad is final --------------------------------------
// A leaf's last contribution comes from its marked consumer with the lowest tape index (the
// sweep runs from the root down). One pass from the root down over the marked nodes finds it
// for every leaf, with an open-addressing table keyed by the leaf; each leaf is then chained
// to that node (head[node] -> entry -> entry ...), so the sweep fires a node's leaves right
// after its backward. All of it lives in the arena: nothing is allocated once it has grown.

typedef struct {
    nb_tensor *leaf;
    int64_t node; // lowest marked consumer
    int64_t seq;  // order first seen from the root down: a fixed order within a node
    int64_t next; // next entry of the same node, -1: none
} ready_entry;

static bool is_leaf_param(const nb_tensor *t) {
    return t->requires_grad && t->node < 0 && !t->graph;
}

// A sweep's plan lives in a block of the arena kept on the graph (nb__graph_keep) and reused
// by every later sweep on the same tape: a replayed step calls nb_backward again without a
// reset, and a fresh allocation per sweep grew the arena without bound (~24 bytes per node and
// input each time, until the tape budget stopped the loop). 64-byte pieces are carved from it
// by sweep_carve.
static size_t sweep_round(size_t n) {
    return (n + 63) & ~(size_t)63;
}
static void *sweep_carve(char **at, size_t bytes) {
    void *p = *at;
    *at += sweep_round(bytes);
    return p;
}

// *list: the leaves reached from root, by seq; *head: (root + 1) first entry per node, or -1.
static nb_status plan_ready(nb_graph *g, int64_t root, ready_entry **list_out, int64_t **head_out) {
    int64_t m = 0;
    for (int64_t i = 0; i <= root; i++)
        if (g->nodes[i].mark)
            m += g->nodes[i].n_in;
    size_t cap = 16;
    while (cap < 2 * (size_t)m)
        cap *= 2;
    size_t tb = cap * sizeof(ready_entry), lb = ((size_t)m + 1) * sizeof(ready_entry),
           hb = ((size_t)root + 1) * sizeof(int64_t);
    char *at =
        nb__graph_keep(g, NB_KEEP_READY, sweep_round(tb) + sweep_round(lb) + sweep_round(hb));
    if (!at)
        return g->status;
    ready_entry *table = sweep_carve(&at, tb), *list = sweep_carve(&at, lb);
    int64_t *head = sweep_carve(&at, hb);
    memset(table, 0, cap * sizeof *table);
    int64_t n = 0;
    for (int64_t i = root; i >= 0; i--) {
        const nb_node *nd = &g->nodes[i];
        if (!nd->mark)
            continue;
        for (int k = 0; k < nd->n_in; k++) {
            nb_tensor *t = nd->in[k];
            if (!is_leaf_param(t))
                continue;
            size_t h = (size_t)(((uintptr_t)t >> 4) * 0x9e3779b97f4a7c15u) & (cap - 1);
            while (table[h].leaf && table[h].leaf != t)
                h = (h + 1) & (cap - 1);
            if (!table[h].leaf)
                table[h] = (ready_entry){t, i, n++, -1};
            table[h].node = i; // from the root down: the last write is the lowest index
        }
    }
    for (size_t h = 0; h < cap; h++)
        if (table[h].leaf)
            list[table[h].seq] = table[h];
    for (int64_t i = 0; i <= root; i++)
        head[i] = -1;
    for (int64_t e = n - 1; e >= 0; e--) { // prepending from the last: each chain by seq
        list[e].next = head[list[e].node];
        head[list[e].node] = e;
    }
    *list_out = list;
    *head_out = head;
    return NB_OK;
}

void nb_graph_set_grad_ready(nb_graph *g, nb_grad_ready_fn fn, void *ctx) {
    if (!g)
        return;
    g->ready_fn = fn;
    g->ready_ctx = fn ? ctx : NULL;
}

static size_t grad_bytes(const nb_tensor *t) {
    return (size_t)t->numel * nb_dtype_size(t->dtype);
}
static void zero_grad(nb_tensor *t) {
    memset(t->grad, 0, grad_bytes(t));
}

void nb__grad_unshare(nb_graph *g, int64_t root) {
    for (int64_t i = 0; i <= root; i++) {
        nb_node *nd = &g->nodes[i];
        nd->grad_shared = 0;
        if (nd->grad_own)
            nd->out->grad = nd->grad_own;
    }
}

// Node p's output t has exactly one marked consumer c (slot k), whose backward was planned to
// store dy into t->grad (grad_first). When c's d out / d t is the identity (grad_pass), t->grad
// would be an exact copy of c's out->grad: t shares that buffer instead, and c's backward skips
// t. Safe for the sweep and for whoever reads grads afterwards: the only other writers of the
// buffer are c's output's consumers, which all run before c, and t has no other consumer to add
// into it, so both tensors hold their own, equal, gradient at every point after c's backward.
// A chain of such ops (add of an add's output) shares one buffer: c's out->grad is already
// final (c was planned before p). Leaves never share (their grads accumulate across calls).
static void share_grad(nb_node *nodes, nb_node *p) {
    if (p->uses != 1 || p->claim_k >= 8) // the node's bits cover its first 8 inputs
        return;
    nb_node *c = &nodes[p->claim];
    uint8_t bit = (uint8_t)(1u << p->claim_k);
    if (!(c->grad_first & bit) || !(c->grad_pass & bit))
        return;
    p->out->grad = c->out->grad;
    c->grad_first &= (uint8_t)~bit;
    c->grad_shared |= bit;
}

// ---- recycling op outputs' grads (nb_graph_set_retain_grads(g, false)) -------------------
// By default every op output keeps its own grad buffer, readable after the sweep. Recycling, an
// op output's grad lives from its first write (its claiming consumer's backward) to the end of
// its own node's backward, and the buffer then serves a grad born later in the sweep. The plan
// walks the nodes in the sweep's order, so it hands the buffers out as the sweep will use them:
// a stack of released buffers, the most recently released (the likeliest still in cache) on
// top. The sweep's working set shrinks from every grad of the tape to the few alive at once
// (charlm: 37 MiB of grads down to 11 MiB, in a step whose ~100 MiB outgrew the L3).
// Zeroing, and the debug poison of a planned store, cannot happen in the plan: a recycled
// buffer still holds a live grad until the sweep reaches the node that frees it. So they are
// listed (fill) in sweep order and run applies each right before its node's backward.

#define RECYCLE_WINDOW 16 // released buffers searched for the best fit, from the top

typedef struct {
    void *p;
    size_t cap;
} grad_buf;
typedef struct {
    int64_t node; // right before this node's backward,
    nb_tensor *t; // t->grad is filled with byte
    int byte;
} grad_fill;
typedef struct {
    grad_buf *free; // released buffers, a stack
    int64_t n_free;
    size_t *cap;     // per node: bytes of the buffer its out->grad is in (kept out of nb_node: a
                     // larger node slowed recording, bench_overhead)
    grad_fill *fill; // by node, from the root down (sweep order)
    int64_t n_fill;
    const nb_node *nodes; // the tape, for the index of a node
} recycle_plan;

// p's output gets a grad buffer: the smallest released one that fits among the top
// RECYCLE_WINDOW, else its own (never touched before this sweep; an empty output's, always).
static void recycle_take(recycle_plan *rp, nb_node *p) {
    size_t need = grad_bytes(p->out);
    int64_t best = -1;
    for (int64_t e = rp->n_free - 1; need && e >= 0 && e >= rp->n_free - RECYCLE_WINDOW; e--)
        if (rp->free[e].cap >= need && (best < 0 || rp->free[e].cap < rp->free[best].cap))
            best = e;
    if (best < 0) {
        p->out->grad = p->grad_own;
        rp->cap[p - rp->nodes] = need;
        return;
    }
    p->out->grad = rp->free[best].p;
    rp->cap[p - rp->nodes] = rp->free[best].cap;
    for (int64_t e = best; e + 1 < rp->n_free; e++) // keep the stack's order
        rp->free[e] = rp->free[e + 1];
    rp->n_free--;
}

static void recycle_fill(recycle_plan *rp, int64_t node, nb_tensor *t, int byte) {
    rp->fill[rp->n_fill++] = (grad_fill){node, t, byte};
}

// The first write of t (node p's output) at consumer nd (index i, slot k): t's grad buffer and,
// unless nd stores every element, its zeroing before nd runs. When nd passes dy through to t
// unchanged (grad_pass), t takes over nd's own grad buffer instead (which then is not
// released): dy is already in it, and nd's output grad is dead once nd has run. Unlike
// share_grad this is right whatever else adds into t's grad later, so it needs no `uses`;
// one input per node takes the buffer (*given).
static void recycle_claim(recycle_plan *rp, nb_node *nd, int64_t i, int k, nb_node *p, bool store,
                          bool *given) {
    uint8_t bit = (uint8_t)(1u << (k < 8 ? k : 0));
    if (store && k < 8 && (nd->grad_pass & bit) && !*given) {
        p->out->grad = nd->out->grad;
        rp->cap[p - rp->nodes] = rp->cap[nd - rp->nodes];
        nd->grad_shared |= bit;
        *given = true;
        return;
    }
    recycle_take(rp, p);
    if (store) {
        nd->grad_first |= bit;
#ifdef NB_DEBUG_LIFETIME
        recycle_fill(rp, i, p->out, NB_POISON_BYTE); // see plan
#endif
    } else {
        recycle_fill(rp, i, p->out, 0);
    }
}

// One pass from the root down plans the sweep (one loop instead of three: this runs in every
// nb_backward, so it is per-op overhead, bench_overhead). The tape is in execution order, so a
// node comes up after all its consumers: its `mark`, `grad_seen` and `uses` are final by then.
//  - Mark the nodes the root depends on; a leaf that needs a grad gets one, once.
//  - Plan the first write of each op output's (recycled) grad. The first marked consumer met
//    is the output's last user on the tape, so its backward writes the grad first: if its op
//    has grad_store it stores there (bit k of grad_first) and the grad is not zeroed. Otherwise
//    (an op without grad_store, the same tensor passed twice to the consumer, k >= 8) the grad
//    is zeroed here, and so is a marked output that no running backward writes (all its
//    consumers are empty, run skips them) when its own node comes up. The root's grad is
//    seeded whole by run.
//  - An output whose one consumer passes dy through unchanged shares its grad (share_grad).
// With rp (recycling), buffers come from recycle_take / recycle_claim and every zeroing is
// listed in rp->fill instead; a node's own buffer is released once its inputs are planned.
// Inlined into plan_keep (rp NULL) and plan_recycle, so the default sweep pays nothing for
// recycling (per-op overhead, bench_overhead).
static inline __attribute__((always_inline)) nb_status plan(nb_graph *g, int64_t root,
                                                            recycle_plan *rp) {
    nb_node *nodes = g->nodes;
    for (int64_t i = 0; i <= root; i++) {
        nb_node *nd = &nodes[i];
        nd->mark = false;
        nd->grad_seen = false;
        nd->grad_first = 0;
        nd->grad_shared = 0;
        nd->uses = 0;
        if (nd->grad_own) // an earlier sweep's sharing or recycling ends here
            nd->out->grad = nd->grad_own;
    }
    if (rp) // the root's own buffer, seeded by run (every other grad gets its cap when claimed)
        rp->cap[root] = grad_bytes(nodes[root].out);
    nodes[root].mark = true;
    nodes[root].grad_seen = true;
    for (int64_t i = root; i >= 0; i--) {
        nb_node *nd = &nodes[i];
        if (!nd->mark)
            continue;
        if (!nd->grad_seen && rp) {
            recycle_take(rp, nd);
            recycle_fill(rp, i, nd->out, 0);
        } else if (!nd->grad_seen) {
            zero_grad(nd->out);
        } else if (i != root && !rp) {
            share_grad(nodes, nd);
        }
        bool runs = nd->out->numel > 0; // run skips an empty output's backward: it writes nothing
        bool given = false;             // rp: nd's grad buffer went to an input
        for (int k = 0; k < nd->n_in; k++) {
            nb_tensor *t = nd->in[k];
            if (!t->requires_grad)
                continue;
            if (t->node >= 0) {
                nb_node *p = &nodes[t->node];
                p->mark = true;
                if (!runs)
                    continue;
                if (p->uses < 2)
                    p->uses++;
                if (p->grad_seen)
                    continue; // a later consumer already claimed t's first write
                p->grad_seen = true;
                p->claim = i;
                p->claim_k = (uint8_t)(k < 8 ? k : 8); // 8: a slot past the bits, never shared
                bool store = nd->op->grad_store && k < 8;
                for (int j = 0; j < nd->n_in && store; j++)
                    store = j == k || nd->in[j] != t;
                if (rp) {
                    recycle_claim(rp, nd, i, k, p, store, &given);
                } else if (store) {
                    nd->grad_first |= (uint8_t)(1u << k);
#ifdef NB_DEBUG_LIFETIME
                    // Debug builds: garbage for real, so a backward that claims grad_store but
                    // leaves an element unwritten fails every gradient check through it.
                    memset(t->grad, NB_POISON_BYTE, grad_bytes(t));
#endif
                } else {
                    zero_grad(t);
                }
            } else if (!t->grad) { // a leaf's grad is allocated once, on first need
                size_t nbytes = (size_t)t->numel * nb_dtype_size(t->dtype);
                if (t->graph) { // a graph-owned constant (nb_jvp's dummy): grad in the arena
                    t->grad = nb__graph_alloc(g, nbytes ? nbytes : 1);
                    if (!t->grad)
                        return g->status;
                    memset(t->grad, 0, nbytes);
                    continue;
                }
                t->grad = nb__calloc_aligned((size_t)t->numel, nb_dtype_size(t->dtype));
                if (!t->grad)
                    return nb__graph_fail(g, NB_ERR_NOMEM,
                                          "backward: out of memory for the "
                                          "grad of a %s leaf",
                                          NB_SHAPE_STR(t));
            }
        }
        if (rp && !given && runs) // free once nd has run (an empty output's buffer: never used)
            rp->free[rp->n_free++] = (grad_buf){nd->out->grad, rp->cap[i]};
    }
    return NB_OK;
}
static nb_status plan_keep(nb_graph *g, int64_t root) {
    return plan(g, root, NULL);
}
static nb_status plan_recycle(nb_graph *g, int64_t root, recycle_plan *rp) {
    return plan(g, root, rp);
}

static nb_status check_root(nb_graph *g, const char *fn, const nb_tensor *out) {
    if (!g)
        return nb__set_last_error(NB_ERR_NULL, "%s: graph is NULL", fn);
    if (g->status != NB_OK)
        return g->status;
    if (!out)
        return nb__graph_fail(g, NB_ERR_NULL, "%s: output tensor is NULL", fn);
    if (out->epoch == NB_POISON_EPOCH || out->epoch == 0) // a dead header: no shape to show
        return nb__graph_fail(g, NB_ERR_STATE,
                              "%s: the output is an op output used after nb_graph_reset (its "
                              "memory was released)",
                              fn);
    if (out->graph == g && out->epoch != g->epoch)
        return nb__graph_fail(g, NB_ERR_STATE,
                              "%s: output %s is a stale op output, used after "
                              "nb_graph_reset (made before it): record the step again",
                              fn, NB_SHAPE_STR(out));
    if (out->graph && out->graph != g)
        return nb__graph_fail(g, NB_ERR_STATE, "%s: output %s was made on another graph", fn,
                              NB_SHAPE_STR(out));
    if (out->graph != g || out->node < 0 || out->node >= g->n_nodes)
        return nb__graph_fail(g, NB_ERR_STATE,
                              "%s: output %s is not an op output of this graph (a leaf or user "
                              "tensor has nothing to differentiate)",
                              fn, NB_SHAPE_STR(out));
    if (!out->requires_grad)
        return nb__graph_fail(g, NB_ERR_STATE,
                              "%s: tensor %s does not require grad (no input with requires_grad "
                              "leads to it, or grad mode was off)",
                              fn, NB_SHAPE_STR(out));
    return NB_OK;
}

// rp's arrays for a sweep from root: one entry per node released, one fill per grad zeroed.
static nb_status recycle_alloc(nb_graph *g, int64_t root, recycle_plan *rp) {
    int64_t fills = root + 1;
    for (int64_t i = 0; i <= root; i++)
        fills += g->nodes[i].n_in;
    size_t fb = ((size_t)root + 1) * sizeof(grad_buf), cb = ((size_t)root + 1) * sizeof(size_t),
           lb = (size_t)fills * sizeof(grad_fill);
    char *at =
        nb__graph_keep(g, NB_KEEP_RECYCLE, sweep_round(fb) + sweep_round(cb) + sweep_round(lb));
    if (!at)
        return g->status;
    rp->free = sweep_carve(&at, fb);
    rp->cap = sweep_carve(&at, cb);
    rp->fill = sweep_carve(&at, lb);
    rp->n_free = rp->n_fill = 0;
    rp->nodes = g->nodes;
    return NB_OK;
}

static nb_status run(nb_graph *g, nb_tensor *out, const nb_tensor *grad_out) {
    int64_t root = out->node;
    recycle_plan rp;
    rp.n_fill = 0;
    nb_status st;
    if (g->recycle_grads) {
        st = recycle_alloc(g, root, &rp);
        if (st == NB_OK)
            st = plan_recycle(g, root, &rp);
    } else {
        st = plan_keep(g, root);
    }
    if (st != NB_OK)
        return st;
    if (grad_out)
        memcpy(out->grad, grad_out->data, (size_t)out->numel * nb_dtype_size(out->dtype));
    else if (out->dtype == NB_F32)
        *(float *)out->grad = 1.0f; // d loss / d loss
    else
        *(double *)out->grad = 1.0;
    // Without a grad-ready hook, anomaly mode or recycling (the common case) the sweep is only
    // the marked nodes' backward calls: no per-node hook lookup or check (per-op overhead,
    // replayed).
    if (!g->ready_fn && !g->check_finite && !g->recycle_grads) {
        for (int64_t i = root; i >= 0 && g->status == NB_OK; i--) {
            nb_node *nd = &g->nodes[i];
            if (nd->mark && nd->out->numel > 0) // an empty output contributes nothing
                nd->op->backward(nd);
        }
        return g->status;
    }
    ready_entry *ready = NULL;
    int64_t *head = NULL;
    if (g->ready_fn && (st = plan_ready(g, root, &ready, &head)) != NB_OK)
        return st;
    int64_t f = 0;
    for (int64_t i = root; i >= 0 && g->status == NB_OK; i--) {
        nb_node *nd = &g->nodes[i];
        for (; f < rp.n_fill && rp.fill[f].node == i; f++)
            memset(rp.fill[f].t->grad, rp.fill[f].byte, grad_bytes(rp.fill[f].t));
        if (nd->mark && nd->out->numel > 0) { // an empty output contributes nothing
            nd->op->backward(nd);
            if (g->check_finite) // anomaly mode: name the first op whose backward made NaN/Inf
                nb__check_input_grads(nd);
        }
        if (g->recycle_grads && nd->mark) // its buffer may hold another grad from here on
            nd->out->grad = NULL;
        // Leaves whose last contribution was node i: final now (not after an error).
        for (int64_t e = head ? head[i] : -1; e >= 0 && g->status == NB_OK; e = ready[e].next)
            g->ready_fn(g->ready_ctx, ready[e].leaf);
    }
    return g->status;
}

void nb_graph_set_retain_grads(nb_graph *g, bool retain) {
    if (g)
        g->recycle_grads = !retain;
}
bool nb_graph_retain_grads(const nb_graph *g) {
    return g && !g->recycle_grads;
}

nb_status nb_backward(nb_graph *g, nb_tensor *loss) {
    nb_status st = check_root(g, "nb_backward", loss);
    if (st != NB_OK)
        return st;
    if (loss->numel != 1)
        return nb__graph_fail(g, NB_ERR_SHAPE,
                              "nb_backward: loss must be a scalar, got %s (reduce it with nb_sum "
                              "or nb_mean, or use nb_backward_with)",
                              NB_SHAPE_STR(loss));
    return run(g, loss, NULL);
}

nb_status nb_backward_with(nb_graph *g, nb_tensor *out, const nb_tensor *grad_out) {
    nb_status st = check_root(g, "nb_backward_with", out);
    if (st != NB_OK)
        return st;
    if (!grad_out)
        return nb__graph_fail(g, NB_ERR_NULL, "nb_backward_with: grad_out is NULL");
    if (grad_out->epoch != NB_LEAF_EPOCH && grad_out->epoch != g->epoch) // any graph's, stale
        return nb__graph_fail(g, NB_ERR_STATE,
                              "nb_backward_with: grad_out is an op output used after "
                              "nb_graph_reset (or from another graph's earlier step)");
    if (grad_out->dtype != out->dtype || grad_out->numel != out->numel ||
        grad_out->ndim != out->ndim ||
        memcmp(grad_out->shape, out->shape, (size_t)out->ndim * sizeof out->shape[0]) != 0)
        return nb__graph_fail(g, NB_ERR_SHAPE,
                              "nb_backward_with: grad_out %s %s must match output %s %s",
                              NB_SHAPE_STR(grad_out), nb_dtype_name(grad_out->dtype),
                              NB_SHAPE_STR(out), nb_dtype_name(out->dtype));
    return run(g, out, grad_out);
}
