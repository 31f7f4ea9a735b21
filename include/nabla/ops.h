// nabla ops: every differentiable operation. Each takes the graph first, runs immediately and
// records itself on the tape. Results are owned by g (invalid after nb_graph_reset). On bad
// input an op records "<op>: <what>: <shapes>" on g and returns NULL; any op given NULL or
// called on a graph in error returns NULL, so an expression can be checked once at the end.
// Shape vocabulary: (batch, in) inputs, (out, in) weights, (batch, classes) logits.
#ifndef NABLA_OPS_H
#define NABLA_OPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nabla/graph.h"
#include "nabla/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

// How a loss folds its per-sample terms.
typedef enum {
    NB_REDUCE_MEAN = 0, // mean (over the batch, or over all elements for mse)
    NB_REDUCE_SUM,      // plain sum
    NB_REDUCTION_COUNT
} nb_reduction;

// Probabilities given to log are clamped to [NB_PROB_EPS, 1 - NB_PROB_EPS] in the
// probability-space losses (bce, cross_entropy), so a saturated prediction gives a large
// finite loss instead of inf.
#define NB_PROB_EPS 1e-12

// ---- linear algebra ----------------------------------------------------------------------

// Matrix product with NumPy / PyTorch (torch.matmul) shape rules:
//   a (k)         · b (k)         -> ()              dot product
//   a (k)         · b (..., k, n) -> (..., n)        a taken as (1, k), that 1 dropped
//   a (..., m, k) · b (k)         -> (..., m)        b taken as (k, 1), that 1 dropped
//   a (..., m, k) · b (..., k, n) -> (B..., m, n)    B = the batch dims broadcast (NumPy rules)
// e.g. (2, 1, 5, 3) · (4, 3, 7) -> (2, 4, 5, 7). cblas_sgemm / cblas_dgemm per matrix, no
// operand copied; when b is one matrix the batch is folded into one GEMM, otherwise small
// products run in parallel over the batch. NB_ERR_SHAPE for a 0-dim operand, differing inner
// dims or batch dims that do not broadcast.
nb_tensor *nb_matmul(nb_graph *g, nb_tensor *a, nb_tensor *b);
// nb_matmul of op(a) and op(b), where op swaps the last two axes when ta / tb is set (a GEMM
// flag, never a copy): nb_matmul_t(g, q, k, false, true) is q kᵀ for q (..., t, d) and
// k (..., s, d) -> (..., t, s). A transposed operand needs >= 2 dims (else NB_ERR_SHAPE).
nb_tensor *nb_matmul_t(nb_graph *g, nb_tensor *a, nb_tensor *b, bool ta, bool tb);
// y = x wᵀ + b; x (..., in), w (out, in), b (out) or NULL -> (..., out); any leading dims
// (or none: x (in) -> (out)) are rows of one GEMM. w is never copied: the transpose is a GEMM
// flag.
nb_tensor *nb_linear(nb_graph *g, nb_tensor *x, nb_tensor *w, nb_tensor *b);

// ---- convolution and pooling (NCHW, PyTorch's F.conv2d / F.max_pool2d conventions) ------------

// 2-D convolution (cross-correlation, as PyTorch): x (N, C, H, W), w (O, C/groups, KH, KW),
// b (O) or NULL -> (N, O, OH, OW), OH = (H + 2 padding - dilation (KH - 1) - 1) / stride + 1
// (floor), likewise OW. groups splits C and O into that many independent convolutions.
// stride, dilation >= 1, padding >= 0 (zeros), groups >= 1 dividing C and O, the dilated kernel
// no larger than the padded input: otherwise NB_ERR_ARG / NB_ERR_SHAPE naming the shapes.
// im2col + one GEMM per (sample, group); the column buffers live in the graph arena (kept
// for backward when w needs its gradient: N groups K OH OW elements, K = C/groups KH KW).
nb_tensor *nb_conv2d(nb_graph *g, nb_tensor *x, nb_tensor *w, nb_tensor *b, int stride, int padding,
                     int dilation, int groups);
// nb_conv2d with (height, width) pairs for stride, padding and dilation.
nb_tensor *nb_conv2d_hw(nb_graph *g, nb_tensor *x, nb_tensor *w, nb_tensor *b, const int stride[2],
                        const int padding[2], const int dilation[2], int groups);
// 1-D convolution: x (N, C, L), w (O, C/groups, K), b (O) or NULL -> (N, O, OL), OL as OH
// above; recorded as conv2d over (N, C, 1, L) between reshapes.
nb_tensor *nb_conv1d(nb_graph *g, nb_tensor *x, nb_tensor *w, nb_tensor *b, int stride, int padding,
                     int dilation, int groups);
// Max pooling over kernel x kernel windows of each (n, c) plane: x (N, C, H, W) -> (N, C, OH, OW),
// OH = (H + 2 padding - dilation (kernel - 1) - 1) / stride + 1, rounded up with ceil_mode (a
// window starting in the right padding is dropped, as PyTorch). stride 0 means stride = kernel
// (PyTorch's default). Padding counts as -inf; a NaN in a window wins. The argmax of each window
// is kept for backward (the gradient goes to it). kernel, stride >= 1 (or stride 0), dilation
// >= 1, 0 <= padding <= half the dilated kernel extent, the kernel no larger than the padded
// input: otherwise NB_ERR_ARG / NB_ERR_SHAPE naming the shape.
nb_tensor *nb_max_pool2d(nb_graph *g, nb_tensor *x, int kernel, int stride, int padding,
                         int dilation, bool ceil_mode);
// Average pooling, shapes as nb_max_pool2d (no dilation). The divisor is the window clipped to
// the padded input with count_include_pad, else clipped to the input (PyTorch's rule).
nb_tensor *nb_avg_pool2d(nb_graph *g, nb_tensor *x, int kernel, int stride, int padding,
                         bool ceil_mode, bool count_include_pad);
// Adaptive average pooling to (out_h, out_w) (>= 1): window i spans [floor(i H / out_h),
// ceil((i + 1) H / out_h)) as PyTorch. (1, 1) is global average pooling: (N, C, 1, 1).
nb_tensor *nb_adaptive_avg_pool2d(nb_graph *g, nb_tensor *x, int out_h, int out_w);

// ---- dropout and normalisation ---------------------------------------------------------------

// Inverted dropout: in training, y = x m with m_i = 1 / (1 - p) with probability 1 - p, else 0,
// drawn from rng (one nb_rng_uniform per element, in order: bitwise reproducible for a seed);
// the mask is kept for backward; nb_graph_replay draws a new one (the next step's, as PyTorch
// draws one per forward) from the same rng. Not training, or p = 0: returns
// x itself (no node, no draw). p outside [0, 1] -> NB_ERR_ARG; rng NULL in training ->
// NB_ERR_NULL.
nb_tensor *nb_dropout(nb_graph *g, nb_tensor *x, double p, bool training, nb_rng *rng);
// Batch normalisation (F.batch_norm): x (N, C, *) normalised per channel over N and the
// trailing dims; weight, bias (C) or NULL. training: batch statistics (biased variance), and
// running_mean / running_var (C, x's dtype, or NULL) are updated in place with
// r = (1 - momentum) r + momentum s, the variance's s unbiased (M / (M - 1), M values per
// channel), as PyTorch. Eval: normalises with running_mean / running_var (required). eps > 0,
// momentum in [0, 1], training needs M > 1. Fused forward and backward kernels.
nb_tensor *nb_batch_norm(nb_graph *g, nb_tensor *x, nb_tensor *weight, nb_tensor *bias,
                         nb_tensor *running_mean, nb_tensor *running_var, bool training,
                         double momentum, double eps);
// Layer normalisation over the last `dims` axes of x (F.layer_norm with normalized_shape =
// x.shape[-dims:]): y = (x - mean) / sqrt(var + eps) weight + bias, biased variance; weight and
// bias shaped as those axes, or NULL. eps > 0, 1 <= dims <= x's rank.
nb_tensor *nb_layer_norm(nb_graph *g, nb_tensor *x, int dims, nb_tensor *weight, nb_tensor *bias,
                         double eps);
// RMS normalisation over the last `dims` axes: y = x / sqrt(mean(x²) + eps) weight (weight
// shaped as those axes, or NULL); as nb_layer_norm otherwise.
nb_tensor *nb_rms_norm(nb_graph *g, nb_tensor *x, int dims, nb_tensor *weight, double eps);

// ---- attention --------------------------------------------------------------------------------

// Fused scaled dot-product attention (F.scaled_dot_product_attention): q (..., tq, d),
// k (..., tk, d), v (..., tk, dv) with the same leading dims, e.g. (B, H) -> (..., tq, dv):
//   S = q kᵀ / sqrt(d) + mask,  P = softmax(S) over the keys,  y = dropout(P) v.
// mask: NULL, or an additive float mask (q's dtype) broadcasting to (..., tq, tk) (PyTorch's
// float attn_mask: 0 keeps, -inf hides; it receives a gradient when it requires grad). causal:
// query i sees keys j <= i (top-left aligned, as is_causal); it may be combined with a mask. A
// query that sees no key (all -inf) gives 0, not NaN, and passes no gradient, in backward and in
// the vjp of higher order alike (PyTorch >= 2.5's convention; its 2.0-2.4 gave NaN). dropout_p in
// [0, 1] on P with the inverted scaling, its mask drawn from rng (one seed per forward,
// nb_graph_replay included: bitwise reproducible, any thread count); pass 0 in eval. Numerically
// stable (row max subtracted); backward recomputes P from the saved log-sum-exp in blocks of query
// rows, never holding the whole (tq, tk) P of the batch. NB_ERR_SHAPE naming the shapes for
// mismatched q / k / v or a mask that does not broadcast, NB_ERR_ARG for p outside [0, 1],
// NB_ERR_NULL for a NULL rng with p > 0.
nb_tensor *nb_scaled_dot_product_attention(nb_graph *g, nb_tensor *q, nb_tensor *k, nb_tensor *v,
                                           nb_tensor *mask, bool causal, double dropout_p,
                                           nb_rng *rng);
// Multi-head attention on a packed projection: qkv (..., t, 3E) laid out as
// nn.MultiheadAttention's in_proj writes it (q, k, v in column blocks [0, E), [E, 2E), [2E, 3E),
// head h in columns [h Dh, (h + 1) Dh) of each block, Dh = E / heads) -> (..., t, E) with the
// heads merged the same way: the result of splitting into (..., heads, t, Dh),
// nb_scaled_dot_product_attention(q, k, v, NULL, causal, dropout_p, rng) and merging back, read
// and written in place through strides (no copies). Rank 2 to 4. NB_ERR_SHAPE naming the shape
// when the last dim is not 3 E with heads dividing E; dropout as nb_scaled_dot_product_attention.
nb_tensor *nb_attention_qkv(nb_graph *g, nb_tensor *qkv, int64_t heads, bool causal,
                            double dropout_p, nb_rng *rng);

// ---- elementwise arithmetic, NumPy broadcasting on trailing dims ------------------------------

nb_tensor *nb_add(nb_graph *g, nb_tensor *a, nb_tensor *b);
nb_tensor *nb_sub(nb_graph *g, nb_tensor *a, nb_tensor *b);
nb_tensor *nb_mul(nb_graph *g, nb_tensor *a, nb_tensor *b);
nb_tensor *nb_div(nb_graph *g, nb_tensor *a, nb_tensor *b);
// Elementwise max / min with broadcasting (torch.maximum / minimum): NaN propagates; at a tie
// each operand receives half the gradient, as in PyTorch.
nb_tensor *nb_maximum(nb_graph *g, nb_tensor *a, nb_tensor *b);
nb_tensor *nb_minimum(nb_graph *g, nb_tensor *a, nb_tensor *b);

// ---- masks and selection ---------------------------------------------------------------------
// A mask is a float tensor of the operands' dtype holding 1 (true) or 0; any nonzero value
// counts as true where a mask is read.

// Comparisons a == b, a != b, a < b, a <= b, a > b, a >= b with NumPy broadcasting -> a mask
// of the broadcast shape (NaN compares false except in ne). Not differentiable: no gradient
// flows back through a mask (its derivative is 0 wherever it exists).
nb_tensor *nb_eq(nb_graph *g, nb_tensor *a, nb_tensor *b);
nb_tensor *nb_ne(nb_graph *g, nb_tensor *a, nb_tensor *b);
nb_tensor *nb_lt(nb_graph *g, nb_tensor *a, nb_tensor *b);
nb_tensor *nb_le(nb_graph *g, nb_tensor *a, nb_tensor *b);
nb_tensor *nb_gt(nb_graph *g, nb_tensor *a, nb_tensor *b);
nb_tensor *nb_ge(nb_graph *g, nb_tensor *a, nb_tensor *b);
// y = cond ? a : b elementwise; cond, a and b broadcast together (NumPy rules) to y's shape.
// dy flows to a where cond, to b elsewhere (summed over broadcast dims); none to cond.
nb_tensor *nb_where(nb_graph *g, nb_tensor *cond, nb_tensor *a, nb_tensor *b);
// y = mask ? value : x, y shaped as x; mask must broadcast to x's shape (e.g. a (T, T) causal
// mask on (B, H, T, T) scores). value may be ±inf (an attention mask); NaN is NB_ERR_ARG.
// dx = dy where the mask is false, 0 where it is true.
nb_tensor *nb_masked_fill(nb_graph *g, nb_tensor *x, nb_tensor *mask, double value);
// y = min(max(x, lo), hi); ±inf for a one-sided clamp; lo > hi or a NaN bound is NB_ERR_ARG.
// dx = dy where lo <= x <= hi (bounds included, as PyTorch), else 0.
nb_tensor *nb_clamp(nb_graph *g, nb_tensor *x, double lo, double hi);

// y = -x
nb_tensor *nb_neg(nb_graph *g, nb_tensor *x);
// y = x + c
nb_tensor *nb_add_scalar(nb_graph *g, nb_tensor *x, double c);
// y = c x
nb_tensor *nb_scale(nb_graph *g, nb_tensor *x, double c);
// y = e^x
nb_tensor *nb_exp(nb_graph *g, nb_tensor *x);
// y = ln x (x <= 0 gives -inf / NaN, as in IEEE; use anomaly checks to catch it)
nb_tensor *nb_log(nb_graph *g, nb_tensor *x);
// y = sqrt x
nb_tensor *nb_sqrt(nb_graph *g, nb_tensor *x);
// y = x^p for a constant p (d/dx x^0 = 0 everywhere, x = 0 included)
nb_tensor *nb_pow_scalar(nb_graph *g, nb_tensor *x, double p);
// |x|; its derivative at 0 is taken as 0 (PyTorch's convention)
nb_tensor *nb_abs(nb_graph *g, nb_tensor *x);
// ln(1 + x) and e^x - 1, accurate near 0
nb_tensor *nb_log1p(nb_graph *g, nb_tensor *x);
nb_tensor *nb_expm1(nb_graph *g, nb_tensor *x);
nb_tensor *nb_sin(nb_graph *g, nb_tensor *x);
nb_tensor *nb_cos(nb_graph *g, nb_tensor *x);
// x², and 1 / √x
nb_tensor *nb_square(nb_graph *g, nb_tensor *x);
nb_tensor *nb_rsqrt(nb_graph *g, nb_tensor *x);

// ---- reductions ------------------------------------------------------------------------------

// Sum / mean of all elements -> scalar (ndim 0). Sums accumulate in double for float32 too.
// The mean of an empty tensor is refused (NB_ERR_SHAPE).
nb_tensor *nb_sum(nb_graph *g, nb_tensor *x);
nb_tensor *nb_mean(nb_graph *g, nb_tensor *x);
// Along one axis (negative counts from the end); keepdim keeps it as size 1, e.g. (2, 3) on
// axis 1 -> (2) or (2, 1). An axis out of range is NB_ERR_ARG; the mean or max over an empty
// axis is NB_ERR_SHAPE (a sum over it is 0).
nb_tensor *nb_sum_axis(nb_graph *g, nb_tensor *x, int axis, bool keepdim);
nb_tensor *nb_mean_axis(nb_graph *g, nb_tensor *x, int axis, bool keepdim);
// Max / min along an axis; the gradient flows to the first maximal / minimal element (the one
// nb_argmax / nb_argmin return). A NaN is the max and the min (it propagates).
nb_tensor *nb_max_axis(nb_graph *g, nb_tensor *x, int axis, bool keepdim);
nb_tensor *nb_min_axis(nb_graph *g, nb_tensor *x, int axis, bool keepdim);
// Over a set of axes: axes[0..n) (negative counts from the end, each at most once; n = 0
// means every axis); keepdim keeps each reduced axis as size 1: (2, 3, 4) over {0, 2} ->
// (3) or (1, 3, 1). Sums in double. var / std divide by N - 1 when unbiased (PyTorch's
// default), else N; std's gradient is infinite where std is 0. logsumexp is max-subtracted
// (an all -inf slice gives -inf with zero gradient). NB_ERR_ARG for a bad axis list;
// NB_ERR_SHAPE for a mean / var / std / logsumexp of no elements (or of 1, unbiased).
nb_tensor *nb_sum_axes(nb_graph *g, nb_tensor *x, int n, const int *axes, bool keepdim);
nb_tensor *nb_mean_axes(nb_graph *g, nb_tensor *x, int n, const int *axes, bool keepdim);
nb_tensor *nb_var_axes(nb_graph *g, nb_tensor *x, int n, const int *axes, bool unbiased,
                       bool keepdim);
nb_tensor *nb_std_axes(nb_graph *g, nb_tensor *x, int n, const int *axes, bool unbiased,
                       bool keepdim);
nb_tensor *nb_logsumexp_axes(nb_graph *g, nb_tensor *x, int n, const int *axes, bool keepdim);
// Max / min of all elements -> scalar (ndim 0); empty x is NB_ERR_SHAPE.
nb_tensor *nb_max(nb_graph *g, nb_tensor *x);
nb_tensor *nb_min(nb_graph *g, nb_tensor *x);
// Index (int32) of the first max / min along axis: (2, 3) axis 1 -> (2) or (2, 1) with
// keepdim; over everything: flatten first. No gradient (int32 output). Pair with nb_max_axis
// for values and indices: both pick the same element.
nb_tensor *nb_argmax(nb_graph *g, nb_tensor *x, int axis, bool keepdim);
nb_tensor *nb_argmin(nb_graph *g, nb_tensor *x, int axis, bool keepdim);

// ---- indexing (int32 or int64 index tensors; an index out of range is NB_ERR_ARG naming it) --

// NumPy take along one axis: x (A..., L, B...), idx (I...) -> (A..., I..., B...),
// y[a, i, b] = x[a, idx[i], b]. Backward scatter-adds: a repeated index receives the sum.
nb_tensor *nb_index_select(nb_graph *g, nb_tensor *x, int axis, nb_tensor *idx);
// Embedding lookup: weight (V, D), idx (I...) token ids -> (I..., D); index_select on
// axis 0 (errors name index_select).
nb_tensor *nb_embedding(nb_graph *g, nb_tensor *weight, nb_tensor *idx);
// torch.gather: idx has x's ndim and is no larger than x except along axis; y has idx's
// shape, y[.., i, ..] = x[.., idx[.., i, ..], ..] along axis. Backward scatter-adds.
nb_tensor *nb_gather(nb_graph *g, nb_tensor *x, int axis, nb_tensor *idx);
// One-hot rows on the tape (op "one_hot"; nb_one_hot in nabla/data.h fills a batch tensor
// from a C array): idx (I...) in [0, classes) -> (I..., classes) of 0 / 1 in dtype
// (NB_F32 or NB_F64). No gradient.
nb_tensor *nb_one_hot_tensor(nb_graph *g, nb_tensor *idx, int64_t classes, nb_dtype dtype);

// ---- shape ------------------------------------------------------------------------------------

// Same data, new shape (same numel); one dim may be -1 (inferred). `shape` (ndim entries) is
// copied. The result is a copy, not a view. Bad dims (< -1, two -1s) are NB_ERR_ARG; a shape
// whose element count differs is NB_ERR_SHAPE. x may also be an int32 / int64 tensor (token
// ids, labels): its reshape is an integer tensor that requires no grad, as in PyTorch; so are
// squeeze, unsqueeze and flatten below.
nb_tensor *nb_reshape(nb_graph *g, nb_tensor *x, int ndim, const int64_t *shape);
// Swap the last two axes: (..., m, n) -> (..., n, m) (torch's x.mT), copied. Fewer than 2
// dims is NB_ERR_ARG. To multiply by a transpose, nb_matmul_t avoids the copy.
nb_tensor *nb_transpose(nb_graph *g, nb_tensor *x);
// Swap any two axes (negative counts from the end): (2, 3, 4) with (0, 2) -> (4, 3, 2), as
// torch.transpose. An axis out of range is NB_ERR_ARG.
nb_tensor *nb_transpose_axes(nb_graph *g, nb_tensor *x, int axis0, int axis1);
// Reorder the axes: y.shape[i] = x.shape[perm[i]]; perm (ndim = x's ndim entries, negative
// counts from the end) must name every axis once (else NB_ERR_ARG). (B, T, H, D) with
// {0, 2, 1, 3} -> (B, H, T, D). Copied; runs of unmoved inner axes are copied whole.
nb_tensor *nb_permute(nb_graph *g, nb_tensor *x, int ndim, const int *perm);
// Broadcast x to `shape` (NumPy broadcast_to / torch expand), copied: dims are right-aligned;
// each must equal x's, or x's is 1 (repeated), or be -1 (kept); new leading dims (>= 0, not
// -1) repeat the whole of x. (3, 1) to {2, 3, 4} -> (2, 3, 4). Backward sums the copies.
// Anything else is NB_ERR_SHAPE.
nb_tensor *nb_expand(nb_graph *g, nb_tensor *x, int ndim, const int64_t *shape);
// Conveniences over nb_reshape (they record a reshape; errors name the convenience):
// remove axis `axis` if its size is 1 (a no-op otherwise, as in PyTorch): (2, 1, 3), 1 -> (2, 3)
nb_tensor *nb_squeeze(nb_graph *g, nb_tensor *x, int axis);
// insert a size-1 axis at `axis` in [-ndim-1, ndim]: (2, 3), 1 -> (2, 1, 3); -1 appends
nb_tensor *nb_unsqueeze(nb_graph *g, nb_tensor *x, int axis);
// merge axes start..end (inclusive, negative counts from the end) into one:
// (2, 3, 4, 5), 1, 2 -> (2, 12, 5); (0, -1) flattens everything; a 0-dim x gives (1)
nb_tensor *nb_flatten(nb_graph *g, nb_tensor *x, int start, int end);
// Elements [start, stop) along axis; needs 0 <= start <= stop <= dim (else NB_ERR_ARG).
nb_tensor *nb_slice(nb_graph *g, nb_tensor *x, int axis, int64_t start, int64_t stop);
// Join n >= 1 tensors xs[0..n) along axis (of the same dtype); all other dims must agree
// (else NB_ERR_SHAPE). xs is only read during the call.
nb_tensor *nb_concat(nb_graph *g, nb_tensor *const *xs, int n, int axis);

// Zero-pad along axis: `before` zeros, then x, then `after` zeros (both >= 0, else NB_ERR_ARG):
// (2, 3) on axis 1 with 1, 2 -> (2, 6). The adjoint of nb_slice.
nb_tensor *nb_pad(nb_graph *g, nb_tensor *x, int axis, int64_t before, int64_t after);
// The adjoint of nb_expand: x summed down to `shape`, which must broadcast to x's shape:
// (4, 3) -> (3) sums the rows, (4, 3) -> (4, 1) sums each row, -> () sums everything.
nb_tensor *nb_sum_to(nb_graph *g, nb_tensor *x, int ndim, const int64_t *shape);
// ---- creation and dtype ------------------------------------------------------------------------

// x converted to dtype (NB_F32 or NB_F64; the same dtype gives a copy), differentiable: the
// gradient is converted back. The way to mix dtypes (ops refuse mixed inputs).
nb_tensor *nb_cast(nb_graph *g, nb_tensor *x, nb_dtype dtype);
// Constants made on the tape (owned by g, no gradient, re-made by replay): `shape` (ndim
// entries, each >= 0) filled with value / 0 / 1 in dtype (NB_F32 or NB_F64, else NB_ERR_ARG).
nb_tensor *nb_full(nb_graph *g, nb_dtype dtype, int ndim, const int64_t *shape, double value);
nb_tensor *nb_zeros(nb_graph *g, nb_dtype dtype, int ndim, const int64_t *shape);
nb_tensor *nb_ones(nb_graph *g, nb_dtype dtype, int ndim, const int64_t *shape);
// (n) with start + i step, n = ceil((stop - start) / step) (0 if negative), as torch.arange;
// step 0 or a non-finite bound is NB_ERR_ARG. A causal mask: nb_gt(g, arange(T),
// reshape(arange(T), (T, 1))).
nb_tensor *nb_arange(nb_graph *g, nb_dtype dtype, double start, double stop, double step);

// ---- activations ------------------------------------------------------------------------------

// 1 / (1 + e^-x)
nb_tensor *nb_sigmoid(nb_graph *g, nb_tensor *x);
nb_tensor *nb_tanh(nb_graph *g, nb_tensor *x);
// max(x, 0); derivative 0 at 0 by convention
nb_tensor *nb_relu(nb_graph *g, nb_tensor *x);
// x > 0 ? x : slope x
nb_tensor *nb_leaky_relu(nb_graph *g, nb_tensor *x, double slope);
// x > 0 ? x : alpha (e^x - 1)
nb_tensor *nb_elu(nb_graph *g, nb_tensor *x, double alpha);
// ln(1 + e^x), computed without overflow (the exact form: β = 1, no threshold)
nb_tensor *nb_softplus(nb_graph *g, nb_tensor *x);
// PyTorch's F.softplus(x, beta, threshold): ln(1 + e^(βx)) / β, and x itself where βx >
// threshold. PyTorch's defaults are beta 1, threshold 20; threshold INFINITY is the exact form.
// beta must be finite and > 0, threshold not NaN (else NB_ERR_ARG).
nb_tensor *nb_softplus_bt(nb_graph *g, nb_tensor *x, double beta, double threshold);
// swish / SiLU: x sigmoid(x)
nb_tensor *nb_silu(nb_graph *g, nb_tensor *x);
// GELU, exact: x Φ(x) = x (1 + erf(x / √2)) / 2
nb_tensor *nb_gelu(nb_graph *g, nb_tensor *x);
// GELU, tanh approximation: x (1 + tanh(√(2/π) (x + 0.044715 x³))) / 2
nb_tensor *nb_gelu_tanh(nb_graph *g, nb_tensor *x);
// Binary step: x > 0 ? 1 : 0. Its gradient is zero everywhere (defined as 0 at the jump), so
// nothing before it learns; it exists for the article's perceptron, not for training.
nb_tensor *nb_step(nb_graph *g, nb_tensor *x);
// Error function erf x = 2/√π ∫₀ˣ e^(-t²) dt.
nb_tensor *nb_erf(nb_graph *g, nb_tensor *x);
// Softmax / log-softmax along the last axis of x (any rank >= 1; same shape out),
// max-subtracted so rows of ±1000 stay finite. NB_ERR_SHAPE for a 0-dim x.
nb_tensor *nb_softmax(nb_graph *g, nb_tensor *x);
nb_tensor *nb_log_softmax(nb_graph *g, nb_tensor *x);
// The same along any axis (negative counts from the end): (B, C, H, W) over axis 1 normalises
// each channel vector. A row of all -inf gives NaN, as in PyTorch.
nb_tensor *nb_softmax_axis(nb_graph *g, nb_tensor *x, int axis);
nb_tensor *nb_log_softmax_axis(nb_graph *g, nb_tensor *x, int axis);

// ---- losses (scalar results) ---------------------------------------------------------------
// Every loss returns a 0-dim scalar, sums in double, and records NB_ERR_ARG for a reduction
// other than NB_REDUCE_MEAN / NB_REDUCE_SUM, NB_ERR_SHAPE for mismatched shapes or a MEAN over
// nothing. A float target that requires grad receives its gradient too.

// mean or sum over all elements of (pred - target)²; pred and target the same shape.
nb_tensor *nb_mse_loss(nb_graph *g, nb_tensor *pred, nb_tensor *target, nb_reduction r);
// The article's cost ½ Σ_j (y_j - ŷ_j)² per sample; MEAN divides by batch = dim 0
// (1 for a 1-D tensor), SUM does not.
nb_tensor *nb_half_sse_loss(nb_graph *g, nb_tensor *pred, nb_tensor *target, nb_reduction r);
// Binary cross-entropy on probabilities p in (0, 1), clamped by NB_PROB_EPS:
// -[y ln p + (1 - y) ln(1 - p)], reduced over all elements. Where the clamp is active the
// loss is flat in p, so d/dp is 0 there: prefer nb_bce_logits_loss for training.
nb_tensor *nb_bce_loss(nb_graph *g, nb_tensor *p, nb_tensor *target, nb_reduction r);
// Same from logits z (p = sigmoid z), stable: max(z, 0) - z y + ln(1 + e^-|z|);
// d/dz = sigmoid(z) - y (times 1/numel for MEAN).
nb_tensor *nb_bce_logits_loss(nb_graph *g, nb_tensor *z, nb_tensor *target, nb_reduction r);
// Categorical cross-entropy, probs (batch, classes) and one-hot / soft targets of that shape:
// -Σ_c y_c ln p_c per row (p clamped by NB_PROB_EPS; d/dp = -y/p, 0 where clamped).
// MEAN divides by batch.
nb_tensor *nb_cross_entropy_loss(nb_graph *g, nb_tensor *probs, nb_tensor *target, nb_reduction r);
// Fused log-softmax + cross-entropy from logits (batch, classes) and targets of that shape:
// Σ_c y_c (logsumexp(z) - z_c) per row, MEAN divides by batch; d/dz = p Σ_c y_c - y
// (= softmax - y for one-hot or probability rows).
nb_tensor *nb_cross_entropy_logits(nb_graph *g, nb_tensor *logits, nb_tensor *target,
                                   nb_reduction r);
// Sparse categorical cross-entropy from logits (batch, classes) and NB_I32 or NB_I64 labels (batch)
// holding class indices in [0, classes): logsumexp(z) - z_label per row, fused with
// log-softmax. The labels are read when the op is called: one outside [0, classes) records
// NB_ERR_ARG naming the label and its index. Float labels record NB_ERR_DTYPE.
nb_tensor *nb_sparse_cross_entropy_logits(nb_graph *g, nb_tensor *logits, nb_tensor *labels,
                                          nb_reduction r);

// ---- introspection ------------------------------------------------------------------------

// Number of ops and the name of op i (as in error messages), e.g. "matmul"; NULL if out of range.
int nb_op_count(void);
const char *nb_op_name(int i);
// Why op i is first-order only (nb_grad with create_graph refuses to pass through it), or NULL
// when it has a differentiable vector-Jacobian product (higher-order gradients work).
const char *nb_op_first_order_reason(int i);

// ---- call sites -------------------------------------------------------------------------------
// Every op is also a function-like macro of the same name that brackets the call with its
// site (NB__SITE, nabla/graph.h): a thread-local store, nothing else, so an anomaly report names
// the user's __FILE__:__LINE__. The macro does not re-expand its own name, and (nb_relu)(g, x)
// or a pointer to nb_relu reach the plain function (site unknown). For a call written over
// several lines, GCC reports its first line and clang its last.
// #define NB_NO_SITE_MACROS before including nabla.h to drop them all.
#ifndef NB_NO_SITE_MACROS
#define nb_matmul(...) NB__SITE(nb_matmul, __VA_ARGS__)
#define nb_matmul_t(...) NB__SITE(nb_matmul_t, __VA_ARGS__)
#define nb_linear(...) NB__SITE(nb_linear, __VA_ARGS__)
#define nb_conv2d(...) NB__SITE(nb_conv2d, __VA_ARGS__)
#define nb_conv2d_hw(...) NB__SITE(nb_conv2d_hw, __VA_ARGS__)
#define nb_conv1d(...) NB__SITE(nb_conv1d, __VA_ARGS__)
#define nb_max_pool2d(...) NB__SITE(nb_max_pool2d, __VA_ARGS__)
#define nb_avg_pool2d(...) NB__SITE(nb_avg_pool2d, __VA_ARGS__)
#define nb_adaptive_avg_pool2d(...) NB__SITE(nb_adaptive_avg_pool2d, __VA_ARGS__)
#define nb_dropout(...) NB__SITE(nb_dropout, __VA_ARGS__)
#define nb_batch_norm(...) NB__SITE(nb_batch_norm, __VA_ARGS__)
#define nb_layer_norm(...) NB__SITE(nb_layer_norm, __VA_ARGS__)
#define nb_rms_norm(...) NB__SITE(nb_rms_norm, __VA_ARGS__)
#define nb_scaled_dot_product_attention(...) NB__SITE(nb_scaled_dot_product_attention, __VA_ARGS__)
#define nb_attention_qkv(...) NB__SITE(nb_attention_qkv, __VA_ARGS__)
#define nb_add(...) NB__SITE(nb_add, __VA_ARGS__)
#define nb_sub(...) NB__SITE(nb_sub, __VA_ARGS__)
#define nb_mul(...) NB__SITE(nb_mul, __VA_ARGS__)
#define nb_div(...) NB__SITE(nb_div, __VA_ARGS__)
#define nb_maximum(...) NB__SITE(nb_maximum, __VA_ARGS__)
#define nb_minimum(...) NB__SITE(nb_minimum, __VA_ARGS__)
#define nb_eq(...) NB__SITE(nb_eq, __VA_ARGS__)
#define nb_ne(...) NB__SITE(nb_ne, __VA_ARGS__)
#define nb_lt(...) NB__SITE(nb_lt, __VA_ARGS__)
#define nb_le(...) NB__SITE(nb_le, __VA_ARGS__)
#define nb_gt(...) NB__SITE(nb_gt, __VA_ARGS__)
#define nb_ge(...) NB__SITE(nb_ge, __VA_ARGS__)
#define nb_where(...) NB__SITE(nb_where, __VA_ARGS__)
#define nb_masked_fill(...) NB__SITE(nb_masked_fill, __VA_ARGS__)
#define nb_clamp(...) NB__SITE(nb_clamp, __VA_ARGS__)
#define nb_abs(...) NB__SITE(nb_abs, __VA_ARGS__)
#define nb_log1p(...) NB__SITE(nb_log1p, __VA_ARGS__)
#define nb_expm1(...) NB__SITE(nb_expm1, __VA_ARGS__)
#define nb_sin(...) NB__SITE(nb_sin, __VA_ARGS__)
#define nb_cos(...) NB__SITE(nb_cos, __VA_ARGS__)
#define nb_square(...) NB__SITE(nb_square, __VA_ARGS__)
#define nb_rsqrt(...) NB__SITE(nb_rsqrt, __VA_ARGS__)
#define nb_neg(...) NB__SITE(nb_neg, __VA_ARGS__)
#define nb_add_scalar(...) NB__SITE(nb_add_scalar, __VA_ARGS__)
#define nb_scale(...) NB__SITE(nb_scale, __VA_ARGS__)
#define nb_exp(...) NB__SITE(nb_exp, __VA_ARGS__)
#define nb_log(...) NB__SITE(nb_log, __VA_ARGS__)
#define nb_sqrt(...) NB__SITE(nb_sqrt, __VA_ARGS__)
#define nb_pow_scalar(...) NB__SITE(nb_pow_scalar, __VA_ARGS__)
#define nb_sum(...) NB__SITE(nb_sum, __VA_ARGS__)
#define nb_mean(...) NB__SITE(nb_mean, __VA_ARGS__)
#define nb_sum_axis(...) NB__SITE(nb_sum_axis, __VA_ARGS__)
#define nb_mean_axis(...) NB__SITE(nb_mean_axis, __VA_ARGS__)
#define nb_max_axis(...) NB__SITE(nb_max_axis, __VA_ARGS__)
#define nb_sum_axes(...) NB__SITE(nb_sum_axes, __VA_ARGS__)
#define nb_mean_axes(...) NB__SITE(nb_mean_axes, __VA_ARGS__)
#define nb_var_axes(...) NB__SITE(nb_var_axes, __VA_ARGS__)
#define nb_std_axes(...) NB__SITE(nb_std_axes, __VA_ARGS__)
#define nb_logsumexp_axes(...) NB__SITE(nb_logsumexp_axes, __VA_ARGS__)
#define nb_softmax_axis(...) NB__SITE(nb_softmax_axis, __VA_ARGS__)
#define nb_log_softmax_axis(...) NB__SITE(nb_log_softmax_axis, __VA_ARGS__)
#define nb_softplus_bt(...) NB__SITE(nb_softplus_bt, __VA_ARGS__)
#define nb_min_axis(...) NB__SITE(nb_min_axis, __VA_ARGS__)
#define nb_max(...) NB__SITE(nb_max, __VA_ARGS__)
#define nb_min(...) NB__SITE(nb_min, __VA_ARGS__)
#define nb_argmax(...) NB__SITE(nb_argmax, __VA_ARGS__)
#define nb_argmin(...) NB__SITE(nb_argmin, __VA_ARGS__)
#define nb_index_select(...) NB__SITE(nb_index_select, __VA_ARGS__)
#define nb_embedding(...) NB__SITE(nb_embedding, __VA_ARGS__)
#define nb_gather(...) NB__SITE(nb_gather, __VA_ARGS__)
#define nb_one_hot_tensor(...) NB__SITE(nb_one_hot_tensor, __VA_ARGS__)
#define nb_reshape(...) NB__SITE(nb_reshape, __VA_ARGS__)
#define nb_transpose(...) NB__SITE(nb_transpose, __VA_ARGS__)
#define nb_transpose_axes(...) NB__SITE(nb_transpose_axes, __VA_ARGS__)
#define nb_permute(...) NB__SITE(nb_permute, __VA_ARGS__)
#define nb_squeeze(...) NB__SITE(nb_squeeze, __VA_ARGS__)
#define nb_unsqueeze(...) NB__SITE(nb_unsqueeze, __VA_ARGS__)
#define nb_flatten(...) NB__SITE(nb_flatten, __VA_ARGS__)
#define nb_slice(...) NB__SITE(nb_slice, __VA_ARGS__)
#define nb_concat(...) NB__SITE(nb_concat, __VA_ARGS__)
#define nb_pad(...) NB__SITE(nb_pad, __VA_ARGS__)
#define nb_expand(...) NB__SITE(nb_expand, __VA_ARGS__)
#define nb_sum_to(...) NB__SITE(nb_sum_to, __VA_ARGS__)
#define nb_erf(...) NB__SITE(nb_erf, __VA_ARGS__)
#define nb_cast(...) NB__SITE(nb_cast, __VA_ARGS__)
#define nb_full(...) NB__SITE(nb_full, __VA_ARGS__)
#define nb_zeros(...) NB__SITE(nb_zeros, __VA_ARGS__)
#define nb_ones(...) NB__SITE(nb_ones, __VA_ARGS__)
#define nb_arange(...) NB__SITE(nb_arange, __VA_ARGS__)
#define nb_sigmoid(...) NB__SITE(nb_sigmoid, __VA_ARGS__)
#define nb_tanh(...) NB__SITE(nb_tanh, __VA_ARGS__)
#define nb_relu(...) NB__SITE(nb_relu, __VA_ARGS__)
#define nb_leaky_relu(...) NB__SITE(nb_leaky_relu, __VA_ARGS__)
#define nb_elu(...) NB__SITE(nb_elu, __VA_ARGS__)
#define nb_softplus(...) NB__SITE(nb_softplus, __VA_ARGS__)
#define nb_silu(...) NB__SITE(nb_silu, __VA_ARGS__)
#define nb_gelu(...) NB__SITE(nb_gelu, __VA_ARGS__)
#define nb_gelu_tanh(...) NB__SITE(nb_gelu_tanh, __VA_ARGS__)
#define nb_step(...) NB__SITE(nb_step, __VA_ARGS__)
#define nb_softmax(...) NB__SITE(nb_softmax, __VA_ARGS__)
#define nb_log_softmax(...) NB__SITE(nb_log_softmax, __VA_ARGS__)
#define nb_mse_loss(...) NB__SITE(nb_mse_loss, __VA_ARGS__)
#define nb_half_sse_loss(...) NB__SITE(nb_half_sse_loss, __VA_ARGS__)
#define nb_bce_loss(...) NB__SITE(nb_bce_loss, __VA_ARGS__)
#define nb_bce_logits_loss(...) NB__SITE(nb_bce_logits_loss, __VA_ARGS__)
#define nb_cross_entropy_loss(...) NB__SITE(nb_cross_entropy_loss, __VA_ARGS__)
#define nb_cross_entropy_logits(...) NB__SITE(nb_cross_entropy_logits, __VA_ARGS__)
#define nb_sparse_cross_entropy_logits(...) NB__SITE(nb_sparse_cross_entropy_logits, __VA_ARGS__)
#endif

#ifdef __cplusplus
}
#endif
#endif
