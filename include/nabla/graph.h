// nabla graph: the tape. Every op called on a graph runs at once (define-by-run) and is
// appended to the tape; nb_backward walks the tape in reverse, accumulating (+=) gradients.
// Tensors returned by ops are owned by the graph and are invalid after nb_graph_reset or
// nb_graph_destroy. Errors are sticky: the first one is kept and later ops return NULL.
#ifndef NABLA_GRAPH_H
#define NABLA_GRAPH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "nabla/base.h"
#include "nabla/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct nb_graph nb_graph;

// ---- lifecycle ---------------------------------------------------------------------------

// New empty graph, or NULL (nb_last_error) when out of memory. Caller destroys it.
nb_graph *nb_graph_create(void);
// Frees the graph, every tensor its ops made and its memory. NULL is a no-op.
void nb_graph_destroy(nb_graph *g);
// Forget the tape and release every op-made tensor, keeping the memory for the next step
// (after warm-up a step allocates nothing). Clears any error. User tensors are untouched.
void nb_graph_reset(nb_graph *g);

// ---- errors -----------------------------------------------------------------------------------

// NB_OK, or the first error recorded since the last reset / clear.
nb_status nb_graph_status(const nb_graph *g);
// Message of that error, e.g. "matmul: inner dimensions differ: (64, 784) x (748, 10)";
// "" when healthy. Owned by g.
const char *nb_graph_error(const nb_graph *g);
void nb_graph_clear_error(nb_graph *g);
// Records an error on g as an op does (the first error since the last reset or clear wins;
// later ops then return NULL), for layers and user code that check their own inputs. printf
// format; "; op called at <file>:<line>" is added when called inside an op or nb_layer_forward
// macro (the caller's line). Returns code (NB_ERR_NULL if g is NULL).
nb_status nb_graph_fail(nb_graph *g, nb_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

// ---- modes --------------------------------------------------------------------------------

// With grad disabled (evaluation), op outputs never require grad and nothing is kept for
// backward. Enabled by default.
void nb_graph_set_grad_enabled(nb_graph *g, bool enabled);
bool nb_graph_grad_enabled(const nb_graph *g);

// Anomaly mode, off by default. When on, every op's output is scanned for NaN as the op runs
// (and again in nb_graph_replay) — ±inf in a forward value is allowed, since it can be
// deliberate (a -inf attention mask before softmax) — and after each node's backward every
// input grad it added into is scanned for NaN and ±inf (a gradient never should be infinite). The
// first hit records NB_ERR_NONFINITE and stops: the op returns NULL, or nb_backward /
// nb_graph_replay return the status. The message names the op, the pass, the tensor, its shape, the
// first bad element and value, and the call site captured by the op macros of nabla/ops.h, e.g.
// "log: non-finite value in forward: output (64, 10) float32 has nan at element 3 [0, 3]; op called
// at model.c:57". Costs one read of each output and grad (about 2% of a 784-256-10 MLP training
// step). The setting survives nb_graph_reset.
void nb_graph_set_check_finite(nb_graph *g, bool on);
bool nb_graph_check_finite(const nb_graph *g);

// Number of ops recorded since the last reset.
int64_t nb_graph_size(const nb_graph *g);

// Budget of one tape (everything recorded between two resets): at most max_ops ops and
// max_bytes of op outputs, grads and saved state. An op that would exceed it fails with
// NB_ERR_STATE and a message naming the likely cause (a loop that never calls
// nb_graph_reset), instead of memory growing until the machine swaps. 0 keeps the default
// (NB_GRAPH_DEFAULT_MAX_OPS, NB_GRAPH_DEFAULT_MAX_BYTES); INT64_MAX / SIZE_MAX mean no limit.
#define NB_GRAPH_DEFAULT_MAX_OPS ((int64_t)100000)
#define NB_GRAPH_DEFAULT_MAX_BYTES ((size_t)1 << 30) // 1 GiB
void nb_graph_set_limits(nb_graph *g, int64_t max_ops, size_t max_bytes);

// Re-run every recorded op's forward in tape order on the current contents of the input
// tensors (refill them in place with the next batch), without re-recording and without
// allocating. Shapes are fixed by the recording: for a different batch size, reset and record
// again. Then call nb_backward as usual. Fails (NB_ERR_STATE) on a graph in error or empty.
nb_status nb_graph_replay(nb_graph *g);

// ---- backward --------------------------------------------------------------------------------

// Reverse-mode sweep from a scalar `loss` (1 element) made on g: every tensor with
// requires_grad that leads to loss gets d loss / d tensor added to its grad. Parameter grads
// accumulate across calls until zeroed. Records and returns an error (no crash) if loss is
// NULL, not scalar, not from g, or does not require grad. May run again on the same tape
// (no retain flag needed): intermediate grads are re-zeroed, leaf grads add up again.
nb_status nb_backward(nb_graph *g, nb_tensor *loss);
// Same for a non-scalar output with an explicit upstream gradient `grad_out`
// (same shape and dtype as out; any ownership).
nb_status nb_backward_with(nb_graph *g, nb_tensor *out, const nb_tensor *grad_out);

// Grad-ready hook: nb_backward and nb_backward_with (not nb_grad) call fn(ctx, leaf) for each
// leaf that backward reaches (a tensor the user made, with requires_grad: a parameter) as soon
// as its grad is final for this sweep, i.e. right after the last node that adds into it has run,
// while backward goes on with the earlier nodes. Once per leaf per backward, on the calling
// thread, in the order the leaves become final (the same order for the same tape). fn may read
// or copy the grad, not change it; it must not record ops or call backward on g. Data-parallel
// training uses it to start reducing a bucket of gradients during the rest of backward
// (nabla/dist.h: nb_dist_grad_ready). A NULL fn removes it; the hook survives nb_graph_reset.
// Costs one pass over the marked tape per backward, and nothing when no hook is set.
typedef void (*nb_grad_ready_fn)(void *ctx, nb_tensor *leaf);
void nb_graph_set_grad_ready(nb_graph *g, nb_grad_ready_fn fn, void *ctx);

// Whether nb_backward and nb_backward_with keep the grads of op outputs (intermediate tensors).
// true (the default): every tensor that leads to the root keeps its grad, readable afterwards.
// false, as PyTorch without retain_grad: an op output's grad buffer serves later grads of the
// same sweep once the op's backward has read it, so the sweep touches the few grads alive at
// once instead of one buffer per op output; after a sweep that completes, nb_tensor_grad of
// each op output it reached is NULL (a grad pointer taken earlier may then alias another
// tensor's grad: do not keep one across sweeps). Leaves' (parameters') grads are the same
// either way, bit for bit; nb_grad, gradcheck and the other gradient functions are unaffected.
// Training loops want false: charlm's 1-thread step is ~2 % faster (bench/README.md, round 7).
// Survives nb_graph_reset.
void nb_graph_set_retain_grads(nb_graph *g, bool retain);
bool nb_graph_retain_grads(const nb_graph *g);

// ---- gradient check ---------------------------------------------------------------------------

// A user function: builds a scalar from `inputs` with ops on g and returns it (or NULL).
typedef nb_tensor *(*nb_gradcheck_fn)(nb_graph *g, nb_tensor *const *inputs, int n_inputs,
                                      void *ctx);

typedef struct nb_gradcheck_result {
    bool ok;               // every element within tolerance and no error
    nb_status status;      // NB_OK, or why the check could not run
    double max_abs_err;    // max |analytic - numeric| over all checked elements
    double max_rel_err;    // max |a - n| / max(|a|, |n|, 1e-12)
    int worst_input;       // input index of the element furthest outside tolerance (-1 none)
    int64_t worst_index;   // flat element index in that input
    double worst_analytic; // the two values at that element
    double worst_numeric;
    int64_t n_checked; // elements compared
    char message[256]; // error text when status != NB_OK, or a summary of a failure
} nb_gradcheck_result;

// Compares every analytic gradient element of every input with requires_grad against the
// central difference (f(x+h) - f(x-h)) / 2h, in float64 (inputs must be NB_F64).
// An element passes when |a - n| <= atol + rtol * max(|a|, |n|). Inputs are restored.
// Typical values: h = 1e-6, atol = 1e-7, rtol = 1e-5.
nb_gradcheck_result nb_gradcheck(nb_gradcheck_fn f, void *ctx, nb_tensor *const *inputs,
                                 int n_inputs, double h, double atol, double rtol);

// ---- pictures and tables of the tape (dot.c) -------------------------------------------------

// Options of nb_graph_to_dot; zero-initialised means: call sites shown, no statistics.
typedef struct nb_dot_options {
    bool stats;        // per node: value min/max/mean/L2 norm, and the gradient's once computed
    bool hide_sites;   // leave out the "at file.c:57" line of each op
    const char *title; // first line of the picture's caption, or NULL
    // Names for some tensors (parameters, inputs, op outputs): tensors[i] is labelled names[i].
    const nb_tensor *const *tensors;
    const char *const *names;
    int n_names;
} nb_dot_options;

// Writes the recorded tape as a Graphviz DOT digraph: one box per op (name, output shape and
// dtype, call site; the last op bold; ops that need grad in blue), one node per tensor the user
// passed in (parameters, i.e. requires_grad leaves, highlighted in gold with their element
// count; other inputs grey), edges along the data flow, labelled with the argument position when
// an op has several inputs. Works on a graph in error (the tape up to the failing op). Render
// with `dot -Tpng tape.dot -o tape.png`. NB_ERR_NULL / NB_ERR_ARG for bad arguments, NB_ERR_IO
// when writing fails (nb_last_error says why). Reads the graph only; allocates a small table.
nb_status nb_graph_to_dot(const nb_graph *g, FILE *out, nb_dot_options options);

// Writes a text table of the tape: per op its index, name, output shape and dtype, output bytes,
// the parameters it is the first to read (so the column sums to the model's count), its inputs
// (#k an op output, pK a parameter, xK another input) and call site; then totals of parameters
// and bytes. Same errors as nb_graph_to_dot.
nb_status nb_graph_summary(const nb_graph *g, FILE *out);

// ---- call sites -------------------------------------------------------------------------------
// Internal (do not call): the tape's call-site capture. NB__SITE(fn, args...) calls fn(args...)
// between nb__site_enter and nb__site_leave, so the node fn records remembers the caller's
// __FILE__:__LINE__ for anomaly reports (nb_graph_set_check_finite). Sites nest, so
// nb_relu(g, nb_exp(g, x)) names each call. The op macros in nabla/ops.h are built on it.
void nb__site_enter(const char *file, int line);
nb_tensor *nb__site_leave(nb_tensor *result);
#define NB__SITE(fn, ...) (nb__site_enter(__FILE__, __LINE__), nb__site_leave((fn)(__VA_ARGS__)))

// ---- gradients as tensors, higher order ------------------------------------------------------
// See docs/higher-order.md. Every op either has a differentiable vector-Jacobian product or is
// listed as first-order only (nb_op_first_order_reason in nabla/ops.h). These record ops, so
// they are implemented in src/ops (autograd.c) over the graph's walk.

// PyTorch's torch.autograd.grad: grads[j] := Σ_i d<outputs[i], grad_outputs[i]> / d inputs[j],
// returned as tensors owned by g (valid until reset). outputs are op results on g; inputs are
// tensors with requires_grad (leaves or op results on g) that lead to some output.
// grad_outputs may be NULL, or have NULL entries, for 1-element outputs (seed 1); otherwise
// same shape and dtype as its output, any ownership (it may itself require grad).
// create_graph = false: the kernels of nb_backward run and the grads are constants; no leaf's
// ->grad is touched. create_graph = true: each op's vjp records the gradient computation on g
// after the forward ops, so the grads can be used in further ops and differentiated again
// (nb_backward, nb_grad); an op without a vjp on the way is an NB_ERR_STATE naming it.
// An input that no output depends on, a non-scalar output without grad_outputs, tensors of
// another graph or a stale tensor are errors recorded on g (first error wins).
nb_status nb_grad(nb_graph *g, nb_tensor *const *outputs, nb_tensor *const *grad_outputs,
                  int n_outputs, nb_tensor *const *inputs, int n_inputs, bool create_graph,
                  nb_tensor **grads);

// Hessian-vector products: hv[j] := Σ_k (d² loss / d params[j] d params[k]) v[k], for a scalar
// loss made on g (v[k] shaped like params[k], any ownership). Two reverse passes: the gradient
// with create_graph, then the gradient of Σ_k <grad_k, v_k>. Results owned by g.
nb_status nb_hvp(nb_graph *g, nb_tensor *loss, nb_tensor *const *params, nb_tensor *const *v, int n,
                 nb_tensor **hv);

// Forward-mode Jacobian-vector product by the double-vjp trick: jv := Σ_k (d output / d
// inputs[k]) v[k], shaped like output. With create_graph the result is differentiable.
nb_status nb_jvp(nb_graph *g, nb_tensor *output, nb_tensor *const *inputs, nb_tensor *const *v,
                 int n, bool create_graph, nb_tensor **jv);

// PyTorch's gradgradcheck: nb_gradcheck of the first-derivative function
// (inputs, v) -> nb_grad(f(inputs), v, create_graph), i.e. finite differences of the analytic
// gradient against its own analytic derivative, with respect to every input with
// requires_grad and to a random grad_output v (seeded). Same arguments and result as
// nb_gradcheck (worst_input == n_inputs means v).
nb_gradcheck_result nb_gradgradcheck(nb_gradcheck_fn f, void *ctx, nb_tensor *const *inputs,
                                     int n_inputs, double h, double atol, double rtol);

#ifdef __cplusplus
}
#endif
#endif
