// Private to src/graph: the graph struct itself. Ops see only graph_impl.h.
#ifndef NABLA_GRAPH_PRIV_H
#define NABLA_GRAPH_PRIV_H

#include "graph/arena.h"
#include "graph/graph_impl.h"
#include "graph/headers.h"

// Blocks of the arena that outlive one op call or sweep until the next reset, one per use,
// each grown when a use needs more (nb__graph_keep): the transient scratch of op calls
// (nb__graph_transient), and backward's recycling and grad-ready plans (backward.c).
typedef enum { NB_KEEP_TRANSIENT, NB_KEEP_RECYCLE, NB_KEEP_READY, NB_KEEP_SLOTS } nb_keep;
void *nb__graph_keep(nb_graph *g, nb_keep slot, size_t nbytes);

struct nb_graph {
    nb_arena arenas[2]; // every op output, grad, saved state and node input array
    nb_arena *arena;    // the one in use; debug builds alternate them (see nb_graph_reset)
    nb_node *nodes;     // the tape, in execution order (grows during warm-up only)
    int64_t n_nodes;
    int64_t cap_nodes;
    bool grad_enabled;
    bool check_finite;         // anomaly mode (anomaly.c)
    bool recycle_grads;        // nb_graph_set_retain_grads(g, false) (backward.c)
    nb_grad_ready_fn ready_fn; // grad-ready hook (backward.c), NULL: none
    void *ready_ctx;
    void *keep[NB_KEEP_SLOTS]; // nb__graph_keep's blocks (arena), NULL after a reset
    size_t keep_size[NB_KEEP_SLOTS];
    uint64_t epoch; // unique to this graph and step (a process-wide counter); op outputs
                    // remember theirs, so one compare tells a live output of this step
    uint64_t epoch_next, epoch_end; // the block of epochs this graph reserved (graph.c)
    nb_hdr_pool hdrs;               // the op outputs' headers (headers.c)
    int64_t max_ops;                // tape budget between resets (nb_graph_set_limits)
    size_t max_bytes;
    const char *cur_op; // name of the op being recorded, or of the last one
    nb_status status;   // first error since reset / clear (sticky)
    char error[512];
};

// Give every op output of nodes 0..root its own grad buffer back and clear the nodes'
// grad_shared bits: a sweep plans its own sharing (backward.c), and nb_grad's kernels share none.
void nb__grad_unshare(nb_graph *g, int64_t root);

// The innermost open op call site (NULL, 0 if none): site.c.
void nb__site_current(const char **file, int *line);
// Anomaly mode (anomaly.c).
// Scan a node's output / the grads of its inputs for NaN or Inf; on the first one record
// NB_ERR_NONFINITE naming the op, pass, shape, element and call site, and return it.
nb_status nb__check_output(nb_node *nd);
nb_status nb__check_input_grads(nb_node *nd);

#endif
