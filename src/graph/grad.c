// nb_grad: gradients returned as tensors (PyTorch's torch.autograd.grad). Two walks over the
// same marks:
//   lead[i]  node i leads to some output (reverse pass from the outputs)
//   dep[i]   node i depends on some requested input (forward pass from the inputs)
// Only nodes with both can carry a gradient from an output to an input, so only they run.
// create_graph = false runs the op kernels into the tape's grad buffers, with every leaf's grad
// pointer redirected for the duration (requested leaves to arena scratch, the others to NULL,
// which kernels skip), so no user ->grad is touched. create_graph = true calls each op's vjp,
// which records the gradient computation with public ops after the forward nodes: the tape
// stays a topological order and a later nb_backward / nb_grad differentiates through it.
// The graph knows no op: the two it records itself (a sum of contributions, a copy) come from
// the ops layer through nb_grad_ops (src/ops/autograd.c defines nb_grad over this walk).
#include <stdio.h>
#include <string.h>

#include "graph/graph_priv.h"

typedef struct {
    nb_graph *g;
    nb_tensor *const *outputs;
    nb_tensor *const *grad_outputs;
    int n_out;
    nb_tensor *const *inputs;
    int n_in;
    int64_t root; // the latest output's node
    bool *lead, *dep, *req;
    const nb_grad_ops *ops;
} walk;

static const char *FN = "nb_grad";

static bool same_shape(const nb_tensor *a, const nb_tensor *b) {
    return a->ndim == b->ndim &&
           memcmp(a->shape, b->shape, (size_t)a->ndim * sizeof a->shape[0]) == 0;
}

// A tensor usable on g: a user tensor, or a live tensor of g. `what` names it in the error.
static nb_status check_owner(nb_graph *g, const nb_tensor *t, const char *what, int i) {
    if (t->epoch == NB_POISON_EPOCH || (t->graph == g && t->epoch != g->epoch))
        return nb__graph_fail(g, NB_ERR_STATE,
                              "%s: %s %d %s is a stale op output, used after "
                              "nb_graph_reset",
                              FN, what, i, NB_SHAPE_STR(t));
    if (t->graph && t->graph != g)
        return nb__graph_fail(g, NB_ERR_STATE, "%s: %s %d %s belongs to another graph", FN, what, i,
                              NB_SHAPE_STR(t));
    return NB_OK;
}

static nb_status check_args(walk *w, nb_tensor **grads) {
    nb_graph *g = w->g;
    if (!w->outputs || !w->inputs || !grads)
        return nb__graph_fail(g, NB_ERR_NULL, "%s: outputs, inputs or grads is NULL", FN);
    if (w->n_out < 1 || w->n_in < 1)
        return nb__graph_fail(g, NB_ERR_ARG,
                              "%s: need at least one output and one input (got "
                              "%d outputs, %d inputs)",
                              FN, w->n_out, w->n_in);
    w->root = -1;
    for (int i = 0; i < w->n_out; i++) {
        const nb_tensor *y = w->outputs[i];
        if (!y)
            return nb__graph_fail(g, NB_ERR_NULL, "%s: output %d is NULL", FN, i);
        if (check_owner(g, y, "output", i) != NB_OK)
            return g->status;
        if (y->graph != g || y->node < 0 || y->node >= g->n_nodes)
            return nb__graph_fail(g, NB_ERR_STATE,
                                  "%s: output %d %s was not produced by an op "
                                  "on this graph",
                                  FN, i, NB_SHAPE_STR(y));
        if (!y->requires_grad)
            return nb__graph_fail(g, NB_ERR_STATE,
                                  "%s: output %d %s does not require grad (no "
                                  "input with requires_grad leads to it, or grad mode was off)",
                                  FN, i, NB_SHAPE_STR(y));
        const nb_tensor *v = w->grad_outputs ? w->grad_outputs[i] : NULL;
        if (!v && y->numel != 1)
            return nb__graph_fail(g, NB_ERR_SHAPE,
                                  "%s: output %d %s is not a scalar: pass its "
                                  "grad_outputs entry (same shape)",
                                  FN, i, NB_SHAPE_STR(y));
        if (v && check_owner(g, v, "grad_output", i) != NB_OK)
            return g->status;
        if (v && (v->dtype != y->dtype || !same_shape(v, y)))
            return nb__graph_fail(g, NB_ERR_SHAPE,
                                  "%s: grad_output %d %s %s must match output "
                                  "%s %s",
                                  FN, i, NB_SHAPE_STR(v), nb_dtype_name(v->dtype), NB_SHAPE_STR(y),
                                  nb_dtype_name(y->dtype));
        if (y->node > w->root)
            w->root = y->node;
    }
    for (int j = 0; j < w->n_in; j++) {
        const nb_tensor *x = w->inputs[j];
        if (!x)
            return nb__graph_fail(g, NB_ERR_NULL, "%s: input %d is NULL", FN, j);
        if (check_owner(g, x, "input", j) != NB_OK)
            return g->status;
        if (!x->requires_grad)
            return nb__graph_fail(g, NB_ERR_STATE, "%s: input %d %s does not require grad", FN, j,
                                  NB_SHAPE_STR(x));
    }
    return NB_OK;
}

// Index of leaf t among the requested inputs, or -1.
static int requested_leaf(const walk *w, const nb_tensor *t) {
    for (int j = 0; j < w->n_in; j++)
        if (w->inputs[j] == t)
            return j;
    return -1;
}

// Does input t of a node carry a gradient towards a requested input?
static bool wanted(const walk *w, const nb_tensor *t) {
    if (!t->requires_grad)
        return false;
    if (t->node >= 0)
        return t->node <= w->root && (w->dep[t->node] || w->req[t->node]);
    return requested_leaf(w, t) >= 0;
}

// lead, dep and req; then every input must lead to an output.
static nb_status mark(walk *w) {
    nb_graph *g = w->g;
    size_t n = (size_t)w->root + 1;
    w->lead = nb__graph_alloc(g, 3 * n);
    if (!w->lead)
        return g->status;
    memset(w->lead, 0, 3 * n);
    w->dep = w->lead + n;
    w->req = w->dep + n;
    for (int j = 0; j < w->n_in; j++)
        if (w->inputs[j]->node >= 0 && w->inputs[j]->node <= w->root)
            w->req[w->inputs[j]->node] = true;
    for (int64_t i = 0; i <= w->root; i++) {
        const nb_node *nd = &g->nodes[i];
        for (int k = 0; nd->needs_grad && k < nd->n_in && !w->dep[i]; k++)
            w->dep[i] = wanted(w, nd->in[k]);
    }
    for (int i = 0; i < w->n_out; i++)
        w->lead[w->outputs[i]->node] = true;
    for (int64_t i = w->root; i >= 0; i--) {
        const nb_node *nd = &g->nodes[i];
        if (!w->lead[i] || !nd->needs_grad)
            continue;
        for (int k = 0; k < nd->n_in; k++)
            if (nd->in[k]->requires_grad && nd->in[k]->node >= 0)
                w->lead[nd->in[k]->node] = true;
    }
    for (int j = 0; j < w->n_in; j++) {
        const nb_tensor *x = w->inputs[j];
        bool reached = false;
        if (x->node >= 0) {
            reached = x->node <= w->root && w->lead[x->node];
        } else {
            for (int64_t i = 0; i <= w->root && !reached; i++) {
                const nb_node *nd = &g->nodes[i];
                for (int k = 0; w->lead[i] && nd->needs_grad && k < nd->n_in && !reached; k++)
                    reached = nd->in[k] == x;
            }
        }
        if (!reached)
            return nb__graph_fail(g, NB_ERR_STATE,
                                  "%s: input %d %s does not lead to any of the "
                                  "outputs (its gradient would be undefined)",
                                  FN, j, NB_SHAPE_STR(x));
    }
    return NB_OK;
}

static bool active(const walk *w, int64_t i) {
    return w->lead[i] && w->dep[i] && w->g->nodes[i].needs_grad;
}

// A graph-owned copy of src's shape with the given data (copied), or zeros when data is NULL.
static nb_tensor *constant(nb_graph *g, const nb_tensor *like, const void *data) {
    nb_tensor *t = nb__graph_tensor(g, like->dtype, like->ndim, like->shape);
    if (t && data)
        memcpy(t->data, data, (size_t)t->numel * nb_dtype_size(t->dtype));
    return t;
}

// ---- create_graph = false: the kernels ------------------------------------------------------

typedef struct {
    nb_tensor *t;
    void *grad; // the pointer to restore
} saved_leaf;

static nb_status run_kernels(walk *w, nb_tensor **grads) {
    nb_graph *g = w->g;
    // Redirect every leaf grad the active nodes could write.
    int cap = 0, nl = 0;
    for (int64_t i = 0; i <= w->root; i++)
        if (active(w, i))
            cap += g->nodes[i].n_in;
    saved_leaf *sl = nb__graph_alloc(g, (size_t)(cap ? cap : 1) * sizeof *sl);
    void **scratch = nb__graph_alloc(g, (size_t)w->n_in * sizeof *scratch);
    if (!sl || !scratch)
        return g->status;
    memset(scratch, 0, (size_t)w->n_in * sizeof *scratch);
    nb_status st = NB_OK;
    for (int64_t i = 0; i <= w->root && st == NB_OK; i++) {
        const nb_node *nd = &g->nodes[i];
        for (int k = 0; active(w, i) && k < nd->n_in; k++) {
            nb_tensor *t = nd->in[k];
            bool seen = false;
            for (int s = 0; s < nl && !seen; s++)
                seen = sl[s].t == t;
            if (t->node >= 0 || !t->requires_grad || seen)
                continue;
            sl[nl++] = (saved_leaf){t, t->grad};
            int j = requested_leaf(w, t);
            t->grad = NULL;
            if (j >= 0) {
                size_t nbytes = (size_t)t->numel * nb_dtype_size(t->dtype);
                scratch[j] = nb__graph_alloc(g, nbytes ? nbytes : 1);
                if (!scratch[j])
                    st = g->status;
                else
                    memset(scratch[j], 0, nbytes);
                t->grad = scratch[j];
            }
        }
    }
    nb__grad_unshare(g, w->root); // every grad its own buffer: the kernels all accumulate
    for (int64_t i = 0; i <= w->root && st == NB_OK; i++) {
        nb_tensor *o = g->nodes[i].out;
        g->nodes[i].grad_first = 0; // every kernel accumulates here (nb_backward's plan is stale)
        if (w->lead[i] && o->grad)
            memset(o->grad, 0, (size_t)o->numel * nb_dtype_size(o->dtype));
    }
    for (int i = 0; i < w->n_out && st == NB_OK; i++) { // seeds add up: an output may repeat
        nb_tensor *y = w->outputs[i];
        const nb_tensor *v = w->grad_outputs ? w->grad_outputs[i] : NULL;
        for (int64_t e = 0; e < y->numel; e++) {
            double add = v ? nb_tensor_get(v, e) : 1.0;
            if (y->dtype == NB_F32)
                ((float *)y->grad)[e] += (float)add;
            else
                ((double *)y->grad)[e] += add;
        }
    }
    for (int64_t i = w->root; i >= 0 && st == NB_OK && g->status == NB_OK; i--) {
        nb_node *nd = &g->nodes[i];
        if (!active(w, i))
            continue;
        nd->op->backward(nd);
        if (g->check_finite)
            nb__check_input_grads(nd);
    }
    if (st == NB_OK)
        st = g->status;
    for (int j = 0; j < w->n_in && st == NB_OK; j++) {
        nb_tensor *x = w->inputs[j];
        grads[j] = constant(g, x, x->node >= 0 ? x->grad : scratch[j]);
        if (!grads[j])
            st = g->status;
    }
    for (int s = 0; s < nl; s++) // always give the leaves their own grads back
        sl[s].t->grad = sl[s].grad;
    return st;
}

// ---- create_graph = true: the vjps ----------------------------------------------------------

static nb_status accumulate(const walk *w, nb_tensor **acc, nb_tensor *c) {
    nb_graph *g = w->g;
    *acc = *acc ? w->ops->add(g, *acc, c) : c;
    return *acc ? NB_OK : g->status;
}

static nb_status run_vjps(walk *w, nb_tensor **grads) {
    nb_graph *g = w->g;
    size_t n = (size_t)w->root + 1;
    nb_tensor **acc = nb__graph_alloc(g, n * sizeof *acc);
    nb_tensor **leaf_acc = nb__graph_alloc(g, (size_t)w->n_in * sizeof *leaf_acc);
    if (!acc || !leaf_acc)
        return g->status;
    memset(acc, 0, n * sizeof *acc);
    memset(leaf_acc, 0, (size_t)w->n_in * sizeof *leaf_acc);
    for (int i = 0; i < w->n_out; i++) {
        nb_tensor *y = w->outputs[i];
        nb_tensor *v = w->grad_outputs ? w->grad_outputs[i] : NULL;
        if (!v) {
            v = constant(g, y, NULL);
            if (!v)
                return g->status;
            nb_tensor_fill(v, 1.0);
        }
        if (accumulate(w, &acc[y->node], v) != NB_OK)
            return g->status;
    }
    for (int64_t i = w->root; i >= 0; i--) {
        if (!active(w, i) || !acc[i])
            continue;
        nb_node nd = g->nodes[i]; // a copy: the vjp records, which may move the tape
        if (!nd.op->vjp) {
            char site[300] = "";
            if (nd.file)
                snprintf(site, sizeof site, " (called at %s:%d)", nd.file, nd.line);
            return nb__graph_fail(g, NB_ERR_STATE,
                                  "%s: create_graph through op '%s'%s is not supported: %s is "
                                  "first-order only (%s); use create_graph = false",
                                  FN, nd.op->name, site, nd.op->name,
                                  nd.op->first_order_only ? nd.op->first_order_only : "no vjp");
        }
        bool *want = nb__graph_alloc(g, (size_t)nd.n_in * sizeof *want);
        nb_tensor **gin = nb__graph_alloc(g, (size_t)nd.n_in * sizeof *gin);
        if (!want || !gin)
            return g->status;
        for (int k = 0; k < nd.n_in; k++) {
            want[k] = wanted(w, nd.in[k]);
            gin[k] = NULL;
        }
        if (nd.op->vjp(&nd, acc[i], want, gin) != NB_OK || g->status != NB_OK)
            return g->status != NB_OK
                       ? g->status
                       : nb__graph_fail(g, NB_ERR_STATE, "%s: vjp of %s failed", FN, nd.op->name);
        for (int k = 0; k < nd.n_in; k++) {
            nb_tensor *x = nd.in[k], *c = gin[k];
            if (!c || !want[k])
                continue;
            NB_ASSERT(c->dtype == x->dtype && same_shape(c, x)); // a vjp bug, never user input
            nb_tensor **slot = x->node >= 0 ? &acc[x->node] : &leaf_acc[requested_leaf(w, x)];
            if (accumulate(w, slot, c) != NB_OK)
                return g->status;
        }
    }
    for (int j = 0; j < w->n_in; j++) {
        nb_tensor *x = w->inputs[j];
        nb_tensor *r = x->node >= 0 ? acc[x->node] : leaf_acc[j];
        if (!r)
            r = constant(g, x, NULL); // connected, but every path has a zero derivative
        else if (r->graph != g)       // a grad_output passed straight through: copy it
            r = w->ops->copy(g, r);
        if (!r)
            return g->status;
        grads[j] = r;
    }
    return NB_OK;
}

nb_status nb__grad(nb_graph *g, nb_tensor *const *outputs, nb_tensor *const *grad_outputs,
                   int n_outputs, nb_tensor *const *inputs, int n_inputs, bool create_graph,
                   nb_tensor **grads, const nb_grad_ops *ops) {
    if (!g)
        return nb__set_last_error(NB_ERR_NULL, "nb_grad: graph is NULL");
    if (g->status != NB_OK)
        return g->status;
    walk w = {g, outputs, grad_outputs, n_outputs, inputs, n_inputs, -1, NULL, NULL, NULL, ops};
    if (check_args(&w, grads) != NB_OK || mark(&w) != NB_OK)
        return g->status;
    for (int j = 0; j < n_inputs; j++)
        grads[j] = NULL;
    if (!create_graph)
        return run_kernels(&w, grads);
    bool mode = g->grad_enabled; // the recorded gradient must itself require grad
    g->grad_enabled = true;
    nb_status st = run_vjps(&w, grads);
    g->grad_enabled = mode;
    return st;
}
