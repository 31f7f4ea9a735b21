// nabla layers: a thin part above the ops. A layer is a small struct (create, forward, destroy)
// that owns its tensors and registers them under hierarchical names ("fc1.weight",
// "features.3.running_mean") in a named parameter set, which optimizers and checkpoints take.
// Names and default initialisers follow PyTorch's torch.nn, so a model saved here loads with
// load_state_dict into the matching PyTorch module (tests/nn_torch_interop.py shows it).
//
//   nb_rng rng; nb_rng_seed(&rng, 1);
//   nb_layer *model = nb_nn_sequential_create();
//   nb_nn_sequential_add(model, "fc1", nb_nn_linear_create(784, 128, true, NB_F32, &rng));
//   nb_nn_sequential_add(model, NULL, nb_nn_relu_create());          // named "1"
//   nb_nn_sequential_add(model, "fc2", nb_nn_linear_create(128, 10, true, NB_F32, &rng));
//   nb_params *ps = nb_params_create();
//   nb_layer_collect(model, ps, NULL);          // "fc1.weight", "fc1.bias", "fc2.weight", ...
//   nb_optim *opt = nb_params_optim_create(ps, cfg, true); // no weight decay on 1-D tensors
//   ... y = nb_layer_forward(g, model, x); loss, backward, nb_optim_step ...
//   nb_layer_save(model, "model.safetensors");
#ifndef NABLA_NN_H
#define NABLA_NN_H

#include <stdbool.h>
#include <stdint.h>

#include "nabla/base.h"
#include "nabla/graph.h"
#include "nabla/optim.h"
#include "nabla/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

// ---- the named parameter set ---------------------------------------------------------------

// What an entry is: a parameter (trained: requires grad, handed to optimizers) or a buffer
// (state that is saved but not trained, e.g. batch norm's running_mean).
typedef enum { NB_PARAM = 0, NB_BUFFER = 1, NB_PARAM_KIND_COUNT } nb_param_kind;

// Longest full name (bytes, without the NUL).
#define NB_PARAM_NAME_MAX 255

// An ordered set of named tensors, parameters and buffers kept apart, each in registration
// order. The set borrows the tensors (their layers own them) and copies the names.
typedef struct nb_params nb_params;

// New empty set, or NULL (nb_last_error) when out of memory.
nb_params *nb_params_create(void);
// Frees the set and its names, not the tensors. NULL is a no-op.
void nb_params_destroy(nb_params *set);
// Forget every entry (keeps the memory).
void nb_params_clear(nb_params *set);

// Registers t under "prefix.name" (just "name" when prefix is NULL or ""). A parameter must be
// a float32/float64 leaf that requires grad; a buffer any leaf tensor. Errors (set unchanged,
// nb_last_error names the entry): NB_ERR_NULL, NB_ERR_ARG (empty name, a name with an empty
// component such as "a..b", longer than NB_PARAM_NAME_MAX, a name or a tensor already in the
// set), NB_ERR_DTYPE, NB_ERR_STATE (a parameter that does not require grad), NB_ERR_NOMEM.
nb_status nb_params_add(nb_params *set, const char *prefix, const char *name, nb_tensor *t,
                        nb_param_kind kind);

// Number of entries of one kind (0 for NULL or a bad kind).
int nb_params_count(const nb_params *set, nb_param_kind kind);
// Total number of elements over the entries of one kind (the "parameter count" of a model).
int64_t nb_params_numel(const nb_params *set, nb_param_kind kind);
// Entry i (0 <= i < count) of one kind, in registration order; NULL out of range.
const char *nb_params_name(const nb_params *set, nb_param_kind kind, int i);
nb_tensor *nb_params_tensor(const nb_params *set, nb_param_kind kind, int i);
// The entries of one kind as arrays (count long), e.g. for nb_optim_create or
// nb_save_safetensors; valid until the set is next changed or destroyed. NULL when empty.
nb_tensor *const *nb_params_tensors(const nb_params *set, nb_param_kind kind);
const char *const *nb_params_names(const nb_params *set, nb_param_kind kind);
// The tensor registered under the full name (either kind), or NULL. *kind_out may be NULL.
nb_tensor *nb_params_find(const nb_params *set, const char *name, nb_param_kind *kind_out);

// An optimizer over the set's parameters (buffers are never optimized), with their names (so
// its exported state is "optim.exp_avg.fc1.weight" ...). no_decay_1d: the usual split, weight
// decay (cfg.weight_decay) on tensors of 2 or more dims only, none on biases and norm gains.
// NULL with nb_last_error on a bad config or an empty set (see nb_optim_create).
nb_optim *nb_params_optim_create(const nb_params *set, nb_optim_config cfg, bool no_decay_1d);

// Saves every entry (parameters, then buffers) under its name to a safetensors file, written
// to a temporary file and renamed (an old file is kept whole on any failure). NB_ERR_ARG for an
// empty set; otherwise as nb_save_safetensors.
nb_status nb_params_save(const nb_params *set, const char *path);
// Loads every entry from the file by name, all or nothing: a missing name (NB_ERR_FORMAT), a
// different dtype (NB_ERR_DTYPE) or shape (NB_ERR_SHAPE), a bad checksum or a non-finite
// value fails naming the file and the tensor, and then no tensor of the set has changed.
// Other tensors in the file (e.g. optimizer state) are ignored. As nb_load_safetensors.
nb_status nb_params_load(nb_params *set, const char *path);

// ---- layers ------------------------------------------------------------------------------

typedef struct nb_layer nb_layer;

// What a kind of layer does. Write your own layer by embedding nb_layer first in a struct and
// pointing it at a static nb_layer_ops with nb_layer_init (below).
typedef struct nb_layer_ops {
    const char *kind; // "linear", "sequential", ...
    // x -> y on g; on bad input record an error on g (nb_graph_fail) and return NULL.
    nb_tensor *(*forward)(nb_layer *self, nb_graph *g, nb_tensor *x);
    // Register the layer's tensors (and its children's) under prefix (NULL or "" at the top).
    // May be NULL: no tensors.
    nb_status (*collect)(nb_layer *self, nb_params *set, const char *prefix);
    // Called by nb_layer_train after self->training is set. A layer with children must pass
    // the switch on (nb_layer_train(child, training) for each, as sequential does): left
    // NULL, its children keep their mode, and a child dropout stays active in eval. May be
    // NULL for a layer without children.
    void (*set_training)(nb_layer *self, bool training);
    // Free the layer, its tensors and its children.
    void (*destroy)(nb_layer *self);
} nb_layer_ops;

struct nb_layer {
    const nb_layer_ops *ops;
    bool training; // true after create (as PyTorch); see nb_layer_train
    // The container that owns the layer and destroys it with itself (nb_nn_sequential_add;
    // a custom layer that destroys children sets it on them), NULL until one takes it. A layer
    // has one owner: to share its weights, call the same layer more than once in one forward.
    const nb_layer *owner;
    // The layer's full name in its model ("features.0"), set by nb_layer_collect; used in
    // error messages. "" until then.
    char name[NB_PARAM_NAME_MAX + 1];
};
// Sets up the nb_layer that starts your own layer's struct, as the built-in creates do: ops,
// training mode on (nb_layer_train switches it), no owner, no name yet. Call it first.
void nb_layer_init(nb_layer *layer, const nb_layer_ops *ops);

// y = the layer applied to x on g. NULL if x is NULL, the graph is in error or the layer
// refuses x (the graph's error names the layer, e.g. "linear 'fc1' (784 -> 128): input
// (64, 100) has 100 features, expected 784; op called at model.c:57"). Like the ops it is a
// macro capturing the caller's line (NB__SITE): the ops a layer records, their errors and
// anomaly reports name that line ((nb_layer_forward)(...) calls the plain function).
nb_tensor *nb_layer_forward(nb_graph *g, nb_layer *layer, nb_tensor *x);
#ifndef NB_NO_SITE_MACROS
#define nb_layer_forward(...) NB__SITE(nb_layer_forward, __VA_ARGS__)
#endif
// Registers every tensor of the layer and its children in set under prefix; also sets each
// layer's name. On error the entries added so far stay (clear the set).
// Errors: NB_ERR_NULL, NB_ERR_ARG (prefix longer than NB_PARAM_NAME_MAX, a name taken, ...).
nb_status nb_layer_collect(nb_layer *layer, nb_params *set, const char *prefix);
// For a composite layer's collect: collects child under "prefix.name" (just "name" when prefix
// is NULL or ""), as PyTorch names a submodule's tensors ("blocks.0.attn" + "." +
// "in_proj_weight"). name may be a relative path ("mlp.0"). Errors (nb_last_error names the child):
// NB_ERR_NULL, NB_ERR_ARG (empty name or component, full name longer than NB_PARAM_NAME_MAX),
// or nb_layer_collect's own.
nb_status nb_layer_collect_child(nb_layer *child, nb_params *set, const char *prefix,
                                 const char *name);
// Model-wide train (true) / eval (false) switch: sets every layer's mode (dropout off and
// batch norm on running statistics in eval). NULL is a no-op.
void nb_layer_train(nb_layer *layer, bool training);
// Frees the layer and everything it owns. NULL is a no-op.
void nb_layer_destroy(nb_layer *layer);
// The layer's kind ("linear"), "?" for NULL.
const char *nb_layer_kind(const nb_layer *layer);

// Whole-model checkpoints in one call: collect into a temporary set, then nb_params_save /
// nb_params_load (same guarantees: atomic write, all-or-nothing load naming the tensor, e.g.
// "ckpt.safetensors: 'features.1.running_mean' has shape (32), model expects (64)"). The load
// is strict as PyTorch's load_state_dict: a tensor in the file that the model lacks (other than
// optimizer state, "optim.*") is NB_ERR_FORMAT naming it, and nothing is loaded.
nb_status nb_layer_save(nb_layer *model, const char *path);
nb_status nb_layer_load(nb_layer *model, const char *path);

// ---- layer kinds ---------------------------------------------------------------------------

// torch.nn.Linear: y = x Wᵀ + b, x (..., in) -> (..., out). weight (out, in), bias (out).
// Initialised as PyTorch: weight kaiming-uniform with a = sqrt(5), i.e. U(-1/sqrt(in),
// 1/sqrt(in)), bias U(-1/sqrt(in), 1/sqrt(in)), drawn from rng (weight first). dtype NB_F32 or
// NB_F64. NULL with nb_last_error for sizes < 1, a bad dtype, a NULL rng or no memory.
typedef struct nb_nn_linear {
    nb_layer base;
    int64_t in_features, out_features;
    nb_tensor *weight; // (out, in)
    nb_tensor *bias;   // (out) or NULL
} nb_nn_linear;
nb_layer *nb_nn_linear_create(int64_t in_features, int64_t out_features, bool bias, nb_dtype dtype,
                              nb_rng *rng);
// The linear layer behind l, or NULL when l is not one.
nb_nn_linear *nb_nn_linear_of(nb_layer *l);

// torch.nn.Conv2d over nb_conv2d_hw: x (N, in, H, W) -> (N, out, OH, OW); weight (out,
// in/groups, KH, KW), bias (out). Initialised as PyTorch: weight and bias U(±1/sqrt(fan_in)),
// fan_in = in/groups · KH · KW (kaiming-uniform with a = sqrt(5)), weight drawn first. Options
// are (height, width) pairs; 0 stride / dilation / groups mean PyTorch's default 1, e.g.
//   nb_nn_conv2d_create(1, 32, (nb_nn_conv2d_options){.kernel = {5, 5}, .padding = {2, 2}},
//                       NB_F32, &rng)
// NULL with nb_last_error for channel counts or a kernel < 1, negative values, groups not
// dividing both channel counts, a bad dtype, a NULL rng. An input whose channel count differs
// records an error naming the layer, its channels and the input shape.
typedef struct nb_nn_conv2d_options {
    int kernel[2];   // >= 1
    int stride[2];   // >= 1 (0: 1)
    int padding[2];  // >= 0 (zeros)
    int dilation[2]; // >= 1 (0: 1)
    int groups;      // >= 1 (0: 1)
    bool no_bias;    // bias=False
} nb_nn_conv2d_options;
typedef struct nb_nn_conv2d {
    nb_layer base;
    int64_t in_channels, out_channels;
    int kernel[2], stride[2], padding[2], dilation[2], groups;
    nb_tensor *weight; // (out, in/groups, KH, KW)
    nb_tensor *bias;   // (out) or NULL
} nb_nn_conv2d;
nb_layer *nb_nn_conv2d_create(int64_t in_channels, int64_t out_channels, nb_nn_conv2d_options opt,
                              nb_dtype dtype, nb_rng *rng);
nb_nn_conv2d *nb_nn_conv2d_of(nb_layer *l);

// torch.nn.ReLU and torch.nn.Flatten(start, end) (PyTorch's default is (1, -1)). No tensors.
nb_layer *nb_nn_relu_create(void);
nb_layer *nb_nn_flatten_create(int start, int end);

// torch.nn.MaxPool2d(kernel, stride, padding) and torch.nn.AvgPool2d(kernel, stride, padding)
// (count_include_pad = true, ceil_mode = false: PyTorch's defaults) over nb_max_pool2d /
// nb_avg_pool2d, square windows; stride 0 means the kernel (PyTorch's default). x (N, C, H, W).
// No tensors. NULL with nb_last_error for kernel < 1, a negative stride, padding outside
// [0, kernel / 2].
nb_layer *nb_nn_max_pool2d_create(int kernel, int stride, int padding);
nb_layer *nb_nn_avg_pool2d_create(int kernel, int stride, int padding);
// torch.nn.AdaptiveAvgPool2d((out_h, out_w)); (1, 1) is global average pooling. No tensors.
nb_layer *nb_nn_adaptive_avg_pool2d_create(int out_h, int out_w);

// torch.nn.Dropout(p) over nb_dropout: active in training mode only (nb_layer_train), masks
// drawn from rng (borrowed: it must outlive the layer; bitwise reproducible for a seed), a new
// mask for every forward, a nb_graph_replay of the recorded step included (see nb_dropout).
// NULL with nb_last_error for p outside [0, 1] or a NULL rng.
nb_layer *nb_nn_dropout_create(double p, nb_rng *rng);

// torch.nn.BatchNorm2d(num_features, eps, momentum, affine) over nb_batch_norm: x (N, C, H, W)
// with C = num_features. Parameters weight (ones) and bias (zeros) when affine; buffers
// running_mean (zeros), running_var (ones) and num_batches_tracked (an int64 scalar, as PyTorch's:
// a torch state_dict saves and loads as it is; another dtype is refused by nb_layer_load naming
// the tensor and the dtypes).
// Training: batch statistics, and the running statistics updated in place with momentum (r = (1 -
// momentum) r + momentum s, the variance unbiased, as PyTorch; PyTorch's defaults are eps 1e-5,
// momentum 0.1), which every nb_graph_replay of the recorded step repeats; num_batches_tracked
// counts the training forwards through nb_layer_forward (not replays; PyTorch reads it only for
// momentum=None). Eval: the running statistics, nothing updated. An input that is not (N, C, H, W)
// records an error naming the layer, its channel count and the input shape.
typedef struct nb_nn_batch_norm2d {
    nb_layer base;
    int64_t num_features;
    double eps, momentum;
    nb_tensor *weight, *bias;              // (C) parameters, or NULL (affine = false)
    nb_tensor *running_mean, *running_var; // (C) buffers
    nb_tensor *num_batches_tracked;        // () int64 buffer
} nb_nn_batch_norm2d;
// NULL with nb_last_error for num_features < 1, eps <= 0, momentum outside [0, 1], a dtype
// other than NB_F32 / NB_F64.
nb_layer *nb_nn_batch_norm2d_create(int64_t num_features, double eps, double momentum, bool affine,
                                    nb_dtype dtype);
nb_nn_batch_norm2d *nb_nn_batch_norm2d_of(nb_layer *l);

// torch.nn.LayerNorm(normalized_shape, eps, elementwise_affine) over nb_layer_norm: normalises
// over the trailing ndim axes of x, which must equal shape. weight (ones) and bias (zeros)
// shaped as shape when affine. NULL with nb_last_error for a NULL shape, ndim outside
// [1, NB_MAX_DIMS], a size < 1, eps <= 0, a bad dtype.
typedef struct nb_nn_layer_norm {
    nb_layer base;
    int ndim;
    int64_t shape[NB_MAX_DIMS];
    double eps;
    nb_tensor *weight, *bias; // shape, or NULL
} nb_nn_layer_norm;
nb_layer *nb_nn_layer_norm_create(int ndim, const int64_t *shape, double eps, bool affine,
                                  nb_dtype dtype);
nb_nn_layer_norm *nb_nn_layer_norm_of(nb_layer *l);

// torch.nn.Sequential: children applied in order, named "0", "1", ... by position unless a
// name is given. nb_nn_sequential_add takes ownership of child in every case (a NULL child,
// e.g. from a failed create, is reported and the container left as it was; on any other error
// the child is destroyed, unless another container already owns it), so creates can be written
// inline. Errors: NB_ERR_NULL, NB_ERR_ARG (seq is not a sequential, a duplicate or invalid name,
// seq itself, a child that another container owns: a layer has one owner), NB_ERR_NOMEM.
nb_layer *nb_nn_sequential_create(void);
nb_status nb_nn_sequential_add(nb_layer *seq, const char *name, nb_layer *child);
int nb_nn_sequential_len(const nb_layer *seq);
// Child i, or NULL out of range / not a sequential.
nb_layer *nb_nn_sequential_child(nb_layer *seq, int i);

// torch.nn.RNN / GRU / LSTM (batch_first=False, unidirectional, no dropout, no projections):
// x (T, B, input_size) -> output (T, B, hidden_size), the last layer's h_t for every t. Each
// layer l holds PyTorch's tensors under PyTorch's names, so a state_dict loads either way:
//   weight_ih_l{l} (G*H, in)   in = input_size for l = 0, else hidden_size
//   weight_hh_l{l} (G*H, H)    bias_ih_l{l}, bias_hh_l{l} (G*H), unless bias is false
// with G = 1 (RNN), 3 (GRU: gates r, z, n in that order) or 4 (LSTM: i, f, g, o). Per step:
//   RNN  h' = act(x W_ihᵀ + b_ih + h W_hhᵀ + b_hh), act tanh (NB_RNN_TANH) or relu
//   GRU  r = σ(.. r rows ..), z = σ(.. z rows ..), n = tanh(x W_inᵀ + b_in + r ⊙ (h W_hnᵀ +
//        b_hn)), h' = (1 - z) ⊙ n + z ⊙ h
//   LSTM i, f, o = σ(..), g = tanh(..), c' = f ⊙ c + i ⊙ g, h' = o ⊙ tanh(c')
// Every tensor is initialised U(-1/sqrt(H), 1/sqrt(H)) as PyTorch, drawn layer by layer in the
// order above. The sequence is unrolled on the tape from existing ops (one GEMM for the input
// projection of all T steps per layer, then per step a GEMM, adds, slices and the
// nonlinearities), so its gradients -- to the weights, the input and the initial state -- are
// those of the ops, first and higher order. NULL with nb_last_error for sizes < 1, num_layers
// outside [1, 64], a bad dtype or mode, a NULL rng.
typedef enum { NB_RNN_TANH = 0, NB_RNN_RELU, NB_GRU, NB_LSTM, NB_RNN_MODE_COUNT } nb_rnn_mode;
#define NB_RNN_MAX_LAYERS 64
typedef struct nb_nn_rnn {
    nb_layer base;
    nb_rnn_mode mode;
    int64_t input_size, hidden_size;
    int num_layers;
    int gates;             // G: 1, 3 or 4
    nb_tensor **weight_ih; // [num_layers] (G*H, in)
    nb_tensor **weight_hh; // [num_layers] (G*H, H)
    nb_tensor **bias_ih;   // [num_layers] (G*H), all NULL without bias
    nb_tensor **bias_hh;
    nb_tensor **steps; // internal: per-step outputs of the running forward (steps_cap long)
    int64_t steps_cap;
} nb_nn_rnn;
nb_layer *nb_nn_rnn_create(nb_rnn_mode mode, int64_t input_size, int64_t hidden_size,
                           int num_layers, bool bias, nb_dtype dtype, nb_rng *rng);
// The same with the mode fixed (kinds "gru" and "lstm"; nb_nn_rnn_create's are "rnn" for both
// RNN modes).
nb_layer *nb_nn_gru_create(int64_t input_size, int64_t hidden_size, int num_layers, bool bias,
                           nb_dtype dtype, nb_rng *rng);
nb_layer *nb_nn_lstm_create(int64_t input_size, int64_t hidden_size, int num_layers, bool bias,
                            nb_dtype dtype, nb_rng *rng);
// The recurrent layer behind l, or NULL when l is not one.
nb_nn_rnn *nb_nn_rnn_of(nb_layer *l);
// The full call: x (T, B, in); h0 and (LSTM only) c0 (num_layers, B, H) initial states, or
// NULL for zeros; returns the output (T, B, H) and, when the pointers are not NULL, the final
// states h_n (and c_n for an LSTM) as (num_layers, B, H). nb_layer_forward(g, layer, x) is this
// with zero initial states. On bad input (not 3-D, a wrong feature count, a state of the wrong
// shape or dtype, c0 given to a non-LSTM) the graph's error names the layer and the shapes and
// NULL is returned (*h_n, *c_n too).
// A call-site macro like nb_layer_forward: errors and the recorded ops name the caller's line.
nb_tensor *nb_nn_rnn_forward(nb_graph *g, nb_layer *layer, nb_tensor *x, nb_tensor *h0,
                             nb_tensor *c0, nb_tensor **h_n, nb_tensor **c_n);
#ifndef NB_NO_SITE_MACROS
#define nb_nn_rnn_forward(...) NB__SITE(nb_nn_rnn_forward, __VA_ARGS__)
#endif

// ---- sequence layers ---------------------------------------------------------------------------

// torch.nn.Embedding: ids (I...) int32 or int64 (PyTorch's LongTensor) -> (I..., embedding_dim)
// rows of weight (num_embeddings, embedding_dim), initialised N(0, 1) from rng as PyTorch. An
// id outside [0, num_embeddings) or ids of another dtype record an error naming the layer, the
// id and the table size. NULL with nb_last_error for sizes < 1, a bad dtype or a NULL rng.
typedef struct nb_nn_embedding {
    nb_layer base;
    int64_t num_embeddings, embedding_dim;
    nb_tensor *weight; // (num_embeddings, embedding_dim)
} nb_nn_embedding;
nb_layer *nb_nn_embedding_create(int64_t num_embeddings, int64_t embedding_dim, nb_dtype dtype,
                                 nb_rng *rng);
nb_nn_embedding *nb_nn_embedding_of(nb_layer *l);

// torch.nn.MultiheadAttention(embed_dim, num_heads, dropout, bias, batch_first=True) as
// self-attention: x (B, T, E) -> (B, T, E). One fused projection qkv = x in_proj_weightᵀ +
// in_proj_bias ((3E, E), (3E): q, k, v stacked in that order, as PyTorch), split into heads of
// E / H, nb_scaled_dot_product_attention (causal if asked; dropout on the attention weights in
// training, drawn from the rng given at create, which must outlive the layer), heads joined,
// out_proj (E, E). Names: "in_proj_weight", "in_proj_bias", "out_proj.weight",
// "out_proj.bias", so a PyTorch state_dict loads. Init as PyTorch: xavier-uniform
// in_proj_weight, out_proj.weight U(±1/sqrt(E)), biases 0. NULL with nb_last_error for sizes
// < 1, num_heads not dividing embed_dim, dropout outside [0, 1], a bad dtype, a NULL rng.
typedef struct nb_nn_mha_options {
    bool causal;    // query i attends to keys j <= i
    double dropout; // on the attention weights, in training
    bool no_bias;   // bias=False
} nb_nn_mha_options;
typedef struct nb_nn_multihead_attention {
    nb_layer base;
    int64_t embed_dim, num_heads;
    bool causal;
    double dropout;
    nb_rng *rng;                                // borrowed, for dropout
    nb_tensor *in_proj_weight, *in_proj_bias;   // (3E, E), (3E) or NULL
    nb_tensor *out_proj_weight, *out_proj_bias; // (E, E), (E) or NULL
} nb_nn_multihead_attention;
nb_layer *nb_nn_multihead_attention_create(int64_t embed_dim, int64_t num_heads,
                                           nb_nn_mha_options opt, nb_dtype dtype, nb_rng *rng);
nb_nn_multihead_attention *nb_nn_multihead_attention_of(nb_layer *l);

#ifdef __cplusplus
}
#endif
#endif
