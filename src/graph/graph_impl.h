// Library-private: the tape's node, the op descriptor every op implements, and the recording
// interface ops use. The graph knows ops only through nb_op (dependency inversion): it never
// includes an op file. Included by src/graph and src/ops.
#ifndef NABLA_GRAPH_IMPL_H
#define NABLA_GRAPH_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nabla/graph.h"
#include "tensor/tensor_impl.h"

typedef struct nb_node nb_node;

// Output shape computed by an op's infer.
typedef struct nb_shape {
    int ndim;
    int64_t dim[NB_MAX_DIMS];
    // Set by an infer whose output dtype is not the first float input's (argmax's int32
    // indices, one_hot). An int32 output carries no gradient.
    bool set_dtype;
    nb_dtype dtype;
} nb_shape;

// One const instance per op; the tape stores a pointer to it.
typedef struct nb_op {
    const char *name; // used in error messages and tests; also the key in ops.def
    int arity;        // number of tensor inputs, or -1 for variadic (concat)
    int index_arg;    // 1-based position of an int32 / int64 index input, 0 if none
    // Validate inputs and params, compute the output shape. No allocation; no data access
    // except for index inputs, whose range it may check (sparse cross-entropy labels).
    // On failure call nb__node_fail(nd, ...) and return its status.
    nb_status (*infer)(nb_node *nd, nb_shape *out);
    // Writes nd->out from nd->in[] (and may save state with nb__node_save).
    void (*forward)(nb_node *nd);
    // Adds (+=) into in[i]->grad for every input with requires_grad, from out->grad.
    // The fast first-order kernel: no recording, no allocation (nb_backward).
    void (*backward)(nb_node *nd);
    // The same derivative as a differentiable vector-Jacobian product, for higher-order
    // gradients (nb_grad with create_graph): for every i with want[i], set gin[i] to
    // dL/d in[i] (in[i]'s shape and dtype), built from gy (out's shape) and the node's inputs,
    // output and params with public ops recorded on nd->graph, so it can be differentiated
    // again. Leave gin[i] NULL for an identically zero gradient. Returns NB_OK or the graph's
    // status. nd is a copy: recording may move the tape. tests/test_higher_order.c requires it
    // to agree with backward to 1e-12 and to pass gradgradcheck on every gradient-check case.
    nb_status (*vjp)(nb_node *nd, nb_tensor *gy, const bool *want, nb_tensor **gin);
    // For an op without vjp: why it is first-order only (named in nb_grad's error). Exactly
    // one of vjp and first_order_only is set (enforced by the coverage test).
    const char *first_order_only;
    // backward honours nd->grad_first: for every input k whose bit is set it overwrites each
    // element of in[k]->grad (a store, GEMM beta = 0) instead of adding. nb_backward then skips
    // zeroing those grads (issue 17: the zeroing pass was ~11 % of a CNN step). An op without
    // it only ever sees grad_first == 0, and its inputs' grads are zeroed before the sweep.
    bool grad_store;
    // Integer (int32 / int64) inputs are accepted as data, not only float32 / float64: ops
    // that only move elements (reshape and its conveniences). An integer output never
    // requires grad (as in PyTorch).
    bool takes_ints;
} nb_op;

struct nb_node {
    const nb_op *op;
    struct nb_graph *graph;
    nb_tensor *const *in; // n_in inputs (array in the arena)
    int n_in;
    nb_tensor *out;
    const void *params; // copy of the op's parameter struct (arena), or NULL
    void *saved;        // state saved by forward for backward (arena), or NULL
    size_t saved_size;
    bool needs_grad; // some input requires grad and grad mode was on
    bool mark;       // scratch for backward: this node leads to the current root
    bool grad_seen;  // scratch for backward: a consumer already claimed out->grad's first write
    // Set by nb_backward for the sweep it runs (0 everywhere else): bit k (k < 8) says in[k]'s
    // grad holds garbage and this node's backward is the first to write it, so it must store
    // every element (see nb_op.grad_store). Only an op output's grad gets one, never a leaf's
    // (leaves accumulate across backward calls), and never an input passed twice to the node.
    uint8_t grad_first;
    // Set by the op's infer: bit k (k < 8) says d out / d in[k] is the identity (in[k] has out's
    // dtype, element count and element order: a same-shape add operand, a reshape), so when this
    // node is in[k]'s only consumer of a sweep, nb_backward lets in[k] share out's grad buffer
    // instead of copying it (a residual add's branch, the reshape before a head).
    uint8_t grad_pass;
    // Set by nb_backward for the sweep it runs (0 elsewhere): bit k says in[k]->grad is out->grad
    // (planned from grad_pass), so backward must not write in[k]'s grad: it already holds dy.
    uint8_t grad_shared;
    uint8_t uses;     // scratch for backward: marked consumers of out (saturates at 2)
    uint8_t claim_k;  // scratch for backward: the input slot of the consumer that claimed out
                      // (8 for any slot from 8 on: never shared)
    int64_t claim;    // scratch for backward: the node whose backward writes out->grad first
    void *grad_own;   // out's own grad buffer (nb__record); out->grad points elsewhere only
                      // while it shares a consumer's buffer (grad_pass), until the next plan,
                      // or in a recycling sweep (nb_graph_set_retain_grads)
    const char *file; // where the user called the op (ops.h macros), NULL if unknown
    int line;
};

// The one function that creates nodes: sticky-error and NULL checks, dtype agreement, infer,
// output allocation, forward, append to the tape. `params` (params_size bytes) is copied.
// Returns the output, or NULL with an error recorded on g.
nb_tensor *nb__record(nb_graph *g, const nb_op *op, nb_tensor *const *in, int n_in,
                      const void *params, size_t params_size);

// Scratch memory from the graph arena for state backward needs (a mask, probabilities, an
// index). Idempotent per node: a replayed forward gets the same buffer back. Zeroed on first
// allocation. Returns NULL only when out of memory (then the graph is in error).
void *nb__node_save(nb_node *nd, size_t nbytes);
// The same, not zeroed: for a forward that writes every byte backward reads (linear's wᵀ,
// cross-entropy's probabilities), where zeroing megabytes per recorded step was wasted work.
// Debug builds (NB_DEBUG_LIFETIME) poison the arena on reset, so a byte read unwritten shows.
void *nb__node_scratch(nb_node *nd, size_t nbytes);
// Scratch for the op call running now only (forward or backward), not zeroed: one buffer of the
// graph's arena that every op call reuses, grown when a call needs more. For state no other
// call reads (linear's wᵀ, written and read inside its forward): the step touches one such
// buffer, which stays in cache, instead of one per node. NULL only when out of memory.
void *nb__graph_transient(nb_graph *g, size_t nbytes);

// Record "<op name>: <formatted message>" on the node's graph; returns code.
nb_status nb__node_fail(nb_node *nd, nb_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
// Record a formatted message on g (first error wins); returns code.
nb_status nb__graph_fail(nb_graph *g, nb_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

// Whether input i of op `op_name` may be used on g now: a leaf, or an output of g's current step.
// Otherwise records why not (a stale output, a released header, another graph's tensor) and
// returns NB_ERR_STATE. nb__record checks every input this way; an op that computes an argument
// from x's shape before recording (flatten, squeeze) calls it first, so a stale x is reported
// as such and its shape never read.
nb_status nb__graph_check_live(nb_graph *g, const char *op_name, const nb_tensor *t, int i);

// Normalise an axis (negative counts from the end). Returns false if out of range.
bool nb__axis(int axis, int ndim, int *out);

// 64-byte aligned arena allocation owned by g until reset. NULL + graph error on OOM.
void *nb__graph_alloc(nb_graph *g, size_t nbytes);

// nb_gradcheck's engine; second = the gradgradcheck variant (gradcheck.c): grad mode stays on
// for the numeric evaluations, and an output that depends on no input has analytic gradient 0.
nb_gradcheck_result nb__gradcheck(nb_gradcheck_fn f, void *ctx, nb_tensor *const *inputs,
                                  int n_inputs, double h, double atol, double rtol, bool second);

// The two ops the gradient walk records besides the vjps (the graph knows no op itself; the ops
// layer passes them in, src/ops/autograd.c): the sum of two gradient contributions of one
// shape, and a differentiable copy (for a grad_output returned as a gradient unchanged).
typedef struct nb_grad_ops {
    nb_tensor *(*add)(nb_graph *g, nb_tensor *a, nb_tensor *b);
    nb_tensor *(*copy)(nb_graph *g, nb_tensor *x);
} nb_grad_ops;
// nb_grad's walk (grad.c); arguments as nb_grad in nabla/graph.h.
nb_status nb__grad(nb_graph *g, nb_tensor *const *outputs, nb_tensor *const *grad_outputs,
                   int n_outputs, nb_tensor *const *inputs, int n_inputs, bool create_graph,
                   nb_tensor **grads, const nb_grad_ops *ops);

// A zero-filled tensor owned by g (valid until reset) that no op produced: a constant such as
// the seed of a gradient, or a zero gradient. NULL + graph error on a bad shape or OOM.
nb_tensor *nb__graph_tensor(nb_graph *g, nb_dtype dtype, int ndim, const int64_t *shape);

#endif
