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
    int index_arg;    // 1-based position of an NB_I32 (class index) input, 0 if none
    // Validate inputs and params, compute the output shape. No allocation; no data access
    // except for index inputs, whose range it may check (sparse cross-entropy labels).
    // On failure call nb__node_fail(nd, ...) and return its status.
    nb_status (*infer)(nb_node *nd, nb_shape *out);
    // Writes nd->out from nd->in[] (and may save state with nb__node_save).
    void (*forward)(nb_node *nd);
    // Adds (+=) into in[i]->grad for every input with requires_grad, from out->grad.
    void (*backward)(nb_node *nd);
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
    bool needs_grad;  // some input requires grad and grad mode was on
    bool mark;        // scratch for backward: this node leads to the current root
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

// Record "<op name>: <formatted message>" on the node's graph; returns code.
nb_status nb__node_fail(nb_node *nd, nb_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
// Record a formatted message on g (first error wins); returns code.
nb_status nb__graph_fail(nb_graph *g, nb_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

// Normalise an axis (negative counts from the end). Returns false if out of range.
bool nb__axis(int axis, int ndim, int *out);

// 64-byte aligned arena allocation owned by g until reset. NULL + graph error on OOM.
void *nb__graph_alloc(nb_graph *g, size_t nbytes);

#endif
