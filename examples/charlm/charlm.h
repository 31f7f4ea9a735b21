// charlm example: a GPT-style character-level language model (model.c), an LSTM one (lstm.c)
// and their trainer (charlm.c). Shapes: ids (B, T) int32 -> logits (B T, V).
#ifndef CHARLM_H
#define CHARLM_H

#include <stdbool.h>
#include <stdint.h>

#include "nabla.h"

#define CHARLM_MAX_LAYERS 16

typedef struct charlm_config {
    int64_t vocab, context, width, heads, layers;
    double dropout; // on the residual branches and the attention weights, in training
} charlm_config;

// One pre-norm block: h += attn(ln1(h)); h += mlp.2(gelu(mlp.0(ln2(h)))).
typedef struct charlm_block {
    nb_tensor *ln1_w, *ln1_b, *ln2_w, *ln2_b;
    nb_layer *attn;      // multihead_attention, causal
    nb_layer *fc, *proj; // linear width -> 4 width -> width ("mlp.0", "mlp.2")
} charlm_block;

// The model as one nb_layer (kind "charlm"): its tensors are named as the PyTorch module in
// bench/torch_charlm.py ("tok_emb.weight", "blocks.0.attn.in_proj_weight", "ln_f.bias", ...).
typedef struct charlm_model {
    nb_layer base;
    charlm_config cfg;
    nb_layer *tok_emb, *pos_emb;
    charlm_block blocks[CHARLM_MAX_LAYERS];
    nb_tensor *lnf_w, *lnf_b;
    nb_layer *head;
    nb_rng *rng; // dropout
} charlm_model;

// NULL with nb_last_error on a bad configuration (e.g. heads not dividing width).
charlm_model *charlm_create(charlm_config cfg, nb_rng *rng);
void charlm_destroy(charlm_model *m);
// Logits (B T, V) for ids (B, T), T <= context; NULL with the graph's error otherwise.
nb_tensor *charlm_logits(nb_graph *g, charlm_model *m, nb_tensor *ids);

// The recurrent variant (--model lstm) as one nb_layer (kind "charlm_lstm"): token embedding
// (vocab, width) -> an LSTM of `layers` layers of `hidden` units -> a linear head to vocab,
// named as PyTorch's nn.Embedding / nn.LSTM / nn.Linear ("tok_emb.weight",
// "lstm.weight_ih_l0", ..., "head.bias"). Its forward maps ids (B, T) to logits (B T, V).
// NULL with a message on stderr on a bad size.
nb_layer *charlm_lstm_create(int64_t vocab, int64_t width, int64_t hidden, int64_t layers,
                             nb_rng *rng);

#endif
