// Sequence layers: embedding (torch.nn.Embedding) and multihead_attention
// (torch.nn.MultiheadAttention with batch_first=True) over the fused attention op.
// Ops called here record the user's nb_layer_forward call site (its macro in nabla/nn.h), not
// a line of this file.
#define NB_NO_SITE_MACROS
#include <math.h>
#include <stdio.h>

#include "base/base_impl.h"
#include "nabla/ops.h"
#include "nn/nn_impl.h"

static bool float_dtype(nb_dtype dt) {
    return dt == NB_F32 || dt == NB_F64;
}

// ---- embedding ---------------------------------------------------------------------------

static nb_tensor *embedding_forward(nb_layer *self, nb_graph *g, nb_tensor *x) {
    nb_nn_embedding *e = (nb_nn_embedding *)self;
    nb_dtype dt = x ? nb_tensor_dtype(x) : NB_I32;
    if (dt != NB_I32 && dt != NB_I64) {
        nb_graph_fail(g, NB_ERR_DTYPE, "%s (%lld x %lld): ids %s are %s, expected int32 or int64",
                      NB_WHO(self), (long long)e->num_embeddings, (long long)e->embedding_dim,
                      NB_SHAPE_STR(x), nb_dtype_name(dt));
        return NULL;
    }
    // The layer names itself and the table size (the op would name index_select).
    const int32_t *i32 = dt == NB_I32 ? nb_tensor_data_i32(x) : NULL;
    const int64_t *i64 = dt == NB_I64 ? nb_tensor_data_i64(x) : NULL;
    for (int64_t i = 0; i < nb_tensor_numel(x); i++) {
        int64_t id = i32 ? i32[i] : i64[i];
        if (id < 0 || id >= e->num_embeddings) {
            nb_graph_fail(g, NB_ERR_ARG,
                          "%s: id %lld at position %lld of %s is outside [0, %lld) (the table "
                          "has %lld rows of %lld)",
                          NB_WHO(self), (long long)id, (long long)i, NB_SHAPE_STR(x),
                          (long long)e->num_embeddings, (long long)e->num_embeddings,
                          (long long)e->embedding_dim);
            return NULL;
        }
    }
    return nb_embedding(g, e->weight, x);
}

static nb_status embedding_collect(nb_layer *self, nb_params *set, const char *prefix) {
    return nb_params_add(set, prefix, "weight", ((nb_nn_embedding *)self)->weight, NB_PARAM);
}

static void embedding_destroy(nb_layer *self) {
    nb_tensor_destroy(((nb_nn_embedding *)self)->weight);
    nb__free(self);
}

static const nb_layer_ops embedding_ops = {"embedding", embedding_forward, embedding_collect, NULL,
                                           embedding_destroy};

nb_layer *nb_nn_embedding_create(int64_t num_embeddings, int64_t embedding_dim, nb_dtype dtype,
                                 nb_rng *rng) {
    static const char *fn = "nb_nn_embedding_create";
    if (!rng || num_embeddings < 1 || embedding_dim < 1 || !float_dtype(dtype)) {
        nb__set_last_error(!rng                  ? NB_ERR_NULL
                           : !float_dtype(dtype) ? NB_ERR_DTYPE
                                                 : NB_ERR_ARG,
                           "%s: %s (num_embeddings %lld, embedding_dim %lld, %s)", fn,
                           !rng                  ? "rng is NULL"
                           : !float_dtype(dtype) ? "dtype must be float32 or float64"
                                                 : "sizes must be >= 1",
                           (long long)num_embeddings, (long long)embedding_dim,
                           nb_dtype_name(dtype));
        return NULL;
    }
    nb_nn_embedding *e = (nb_nn_embedding *)nb__layer_alloc(sizeof *e, &embedding_ops, fn);
    if (!e)
        return NULL;
    e->num_embeddings = num_embeddings;
    e->embedding_dim = embedding_dim;
    e->weight = nb_tensor_create(dtype, 2, (int64_t[]){num_embeddings, embedding_dim});
    // PyTorch's reset_parameters: normal_(0, 1).
    if (!e->weight || nb_init_normal(e->weight, rng, 0.0, 1.0) != NB_OK ||
        nb_tensor_set_requires_grad(e->weight, true) != NB_OK) {
        nb__layer_create_failed(NB_ERR_NOMEM, fn, "allocating the weight");
        embedding_destroy(&e->base);
        return NULL;
    }
    return &e->base;
}

nb_nn_embedding *nb_nn_embedding_of(nb_layer *l) {
    return l && l->ops == &embedding_ops ? (nb_nn_embedding *)l : NULL;
}

// ---- multihead_attention -------------------------------------------------------------------

// x (B, T, E) -> qkv = x in_projᵀ + b (B, T, 3E) -> attention over the heads read in place
// from qkv's column blocks, written merged (B, T, E) (nb_attention_qkv) -> out_proj.
static nb_tensor *mha_forward(nb_layer *self, nb_graph *g, nb_tensor *x) {
    nb_nn_multihead_attention *a = (nb_nn_multihead_attention *)self;
    int64_t e = a->embed_dim, h = a->num_heads;
    if (nb_tensor_ndim(x) != 3 || nb_tensor_dim(x, 2) != e) {
        nb_graph_fail(g, NB_ERR_SHAPE,
                      "%s (embed_dim %lld, %lld heads): input %s is not (batch, seq, %lld)",
                      NB_WHO(self), (long long)e, (long long)h, NB_SHAPE_STR(x), (long long)e);
        return NULL;
    }
    nb_tensor *qkv = nb_linear(g, x, a->in_proj_weight, a->in_proj_bias);
    double p = self->training ? a->dropout : 0.0;
    nb_tensor *y = nb_attention_qkv(g, qkv, h, a->causal, p, a->rng);
    return nb_linear(g, y, a->out_proj_weight, a->out_proj_bias);
}

static nb_status mha_collect(nb_layer *self, nb_params *set, const char *prefix) {
    nb_nn_multihead_attention *a = (nb_nn_multihead_attention *)self;
    char sub[NB_PARAM_NAME_MAX + 1];
    bool pre = prefix && *prefix;
    snprintf(sub, sizeof sub, "%s%sout_proj", pre ? prefix : "", pre ? "." : "");
    nb_status st = nb_params_add(set, prefix, "in_proj_weight", a->in_proj_weight, NB_PARAM);
    if (st == NB_OK && a->in_proj_bias)
        st = nb_params_add(set, prefix, "in_proj_bias", a->in_proj_bias, NB_PARAM);
    if (st == NB_OK)
        st = nb_params_add(set, sub, "weight", a->out_proj_weight, NB_PARAM);
    if (st == NB_OK && a->out_proj_bias)
        st = nb_params_add(set, sub, "bias", a->out_proj_bias, NB_PARAM);
    return st;
}

static void mha_destroy(nb_layer *self) {
    nb_nn_multihead_attention *a = (nb_nn_multihead_attention *)self;
    nb_tensor_destroy(a->in_proj_weight);
    nb_tensor_destroy(a->in_proj_bias);
    nb_tensor_destroy(a->out_proj_weight);
    nb_tensor_destroy(a->out_proj_bias);
    nb__free(a);
}

static const nb_layer_ops mha_ops = {"multihead_attention", mha_forward, mha_collect, NULL,
                                     mha_destroy};

nb_layer *nb_nn_multihead_attention_create(int64_t embed_dim, int64_t num_heads,
                                           nb_nn_mha_options opt, nb_dtype dtype, nb_rng *rng) {
    static const char *fn = "nb_nn_multihead_attention_create";
    const char *bad = NULL;
    if (!rng)
        bad = "rng is NULL";
    else if (embed_dim < 1 || num_heads < 1)
        bad = "embed_dim and num_heads must be >= 1";
    else if (embed_dim % num_heads)
        bad = "num_heads must divide embed_dim";
    else if (!(opt.dropout >= 0 && opt.dropout <= 1))
        bad = "dropout must be in [0, 1]";
    else if (!float_dtype(dtype))
        bad = "dtype must be float32 or float64";
    if (bad) {
        nb__set_last_error(!rng                  ? NB_ERR_NULL
                           : !float_dtype(dtype) ? NB_ERR_DTYPE
                                                 : NB_ERR_ARG,
                           "%s: %s (embed_dim %lld, num_heads %lld, dropout %g, %s)", fn, bad,
                           (long long)embed_dim, (long long)num_heads, opt.dropout,
                           nb_dtype_name(dtype));
        return NULL;
    }
    nb_nn_multihead_attention *a =
        (nb_nn_multihead_attention *)nb__layer_alloc(sizeof *a, &mha_ops, fn);
    if (!a)
        return NULL;
    a->embed_dim = embed_dim;
    a->num_heads = num_heads;
    a->causal = opt.causal;
    a->dropout = opt.dropout;
    a->rng = rng;
    // PyTorch's _reset_parameters: xavier_uniform_(in_proj_weight), in_proj_bias and
    // out_proj.bias 0; out_proj.weight keeps Linear's kaiming-uniform (a = sqrt(5)), i.e.
    // U(±1/sqrt(E)), drawn first (at out_proj's construction).
    a->out_proj_weight = nb__uniform_param(dtype, 2, (int64_t[]){embed_dim, embed_dim}, rng,
                                           1 / sqrt((double)embed_dim));
    a->in_proj_weight = nb_tensor_create(dtype, 2, (int64_t[]){3 * embed_dim, embed_dim});
    bool ok = a->out_proj_weight && a->in_proj_weight &&
              nb_init_xavier_uniform(a->in_proj_weight, rng) == NB_OK &&
              nb_tensor_set_requires_grad(a->in_proj_weight, true) == NB_OK;
    if (ok && !opt.no_bias) {
        a->in_proj_bias = nb__buffer(dtype, 1, (int64_t[]){3 * embed_dim}, 0.0);
        a->out_proj_bias = nb__buffer(dtype, 1, (int64_t[]){embed_dim}, 0.0);
        ok = a->in_proj_bias && a->out_proj_bias &&
             nb_tensor_set_requires_grad(a->in_proj_bias, true) == NB_OK &&
             nb_tensor_set_requires_grad(a->out_proj_bias, true) == NB_OK;
    }
    if (!ok) {
        nb__layer_create_failed(NB_ERR_NOMEM, fn, "allocating the weights");
        mha_destroy(&a->base);
        return NULL;
    }
    return &a->base;
}

nb_nn_multihead_attention *nb_nn_multihead_attention_of(nb_layer *l) {
    return l && l->ops == &mha_ops ? (nb_nn_multihead_attention *)l : NULL;
}
