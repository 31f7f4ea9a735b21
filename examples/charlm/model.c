// charlm example: the GPT-style model. Token + position embedding, `layers` pre-norm blocks of
// causal multi-head attention and a GELU MLP with residuals, a final layer norm and a linear
// head. Layer norms use the nb_layer_norm op with the model's own gain and bias tensors.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "charlm.h"

static nb_tensor *ln_param(nb_dtype dt, int64_t n, double v) {
    nb_tensor *t = nb_tensor_create(dt, 1, &n);
    if (t && (nb_tensor_fill(t, v) != NB_OK || nb_tensor_set_requires_grad(t, true) != NB_OK)) {
        nb_tensor_destroy(t);
        return NULL;
    }
    return t;
}

static nb_status model_collect(nb_layer *self, nb_params *set, const char *prefix) {
    charlm_model *m = (charlm_model *)self;
    nb_status st = nb_layer_collect_child(m->tok_emb, set, prefix, "tok_emb");
    if (st == NB_OK)
        st = nb_layer_collect_child(m->pos_emb, set, prefix, "pos_emb");
    for (int l = 0; st == NB_OK && l < m->cfg.layers; l++) {
        charlm_block *b = &m->blocks[l];
        char p[64];
        snprintf(p, sizeof p, "%s%sblocks.%d", prefix && *prefix ? prefix : "",
                 prefix && *prefix ? "." : "", l);
        char ln1[80], ln2[80];
        snprintf(ln1, sizeof ln1, "%s.ln1", p);
        snprintf(ln2, sizeof ln2, "%s.ln2", p);
        if ((st = nb_params_add(set, ln1, "weight", b->ln1_w, NB_PARAM)) != NB_OK ||
            (st = nb_params_add(set, ln1, "bias", b->ln1_b, NB_PARAM)) != NB_OK ||
            (st = nb_layer_collect_child(b->attn, set, p, "attn")) != NB_OK ||
            (st = nb_params_add(set, ln2, "weight", b->ln2_w, NB_PARAM)) != NB_OK ||
            (st = nb_params_add(set, ln2, "bias", b->ln2_b, NB_PARAM)) != NB_OK ||
            (st = nb_layer_collect_child(b->fc, set, p, "mlp.0")) != NB_OK ||
            (st = nb_layer_collect_child(b->proj, set, p, "mlp.2")) != NB_OK)
            break;
    }
    char lnf[64];
    snprintf(lnf, sizeof lnf, "%s%sln_f", prefix && *prefix ? prefix : "",
             prefix && *prefix ? "." : "");
    if (st == NB_OK)
        st = nb_params_add(set, lnf, "weight", m->lnf_w, NB_PARAM);
    if (st == NB_OK)
        st = nb_params_add(set, lnf, "bias", m->lnf_b, NB_PARAM);
    if (st == NB_OK)
        st = nb_layer_collect_child(m->head, set, prefix, "head");
    return st;
}

static void model_train(nb_layer *self, bool training) {
    charlm_model *m = (charlm_model *)self;
    for (int l = 0; l < m->cfg.layers; l++)
        nb_layer_train(m->blocks[l].attn, training);
}

static nb_tensor *model_forward(nb_layer *self, nb_graph *g, nb_tensor *ids) {
    return charlm_logits(g, (charlm_model *)self, ids);
}

static void model_destroy(nb_layer *self) {
    charlm_model *m = (charlm_model *)self;
    nb_layer_destroy(m->tok_emb);
    nb_layer_destroy(m->pos_emb);
    for (int l = 0; l < CHARLM_MAX_LAYERS; l++) {
        charlm_block *b = &m->blocks[l];
        nb_tensor_destroy(b->ln1_w), nb_tensor_destroy(b->ln1_b);
        nb_tensor_destroy(b->ln2_w), nb_tensor_destroy(b->ln2_b);
        nb_layer_destroy(b->attn), nb_layer_destroy(b->fc), nb_layer_destroy(b->proj);
    }
    nb_tensor_destroy(m->lnf_w), nb_tensor_destroy(m->lnf_b);
    nb_layer_destroy(m->head);
    free(m);
}

static const nb_layer_ops model_ops = {"charlm", model_forward, model_collect, model_train,
                                       model_destroy};

charlm_model *charlm_create(charlm_config c, nb_rng *rng) {
    if (c.layers < 1 || c.layers > CHARLM_MAX_LAYERS || c.vocab < 1 || c.context < 1 ||
        c.width < 1 || c.heads < 1) {
        fprintf(stderr, "charlm: layers must be in [1, %d]; vocab, context, width, heads >= 1\n",
                CHARLM_MAX_LAYERS);
        return NULL;
    }
    charlm_model *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    nb_layer_init(&m->base, &model_ops);
    m->cfg = c;
    m->rng = rng;
    const nb_dtype dt = NB_F32;
    bool ok = (m->tok_emb = nb_nn_embedding_create(c.vocab, c.width, dt, rng)) &&
              (m->pos_emb = nb_nn_embedding_create(c.context, c.width, dt, rng));
    for (int l = 0; ok && l < c.layers; l++) {
        charlm_block *b = &m->blocks[l];
        ok = (b->ln1_w = ln_param(dt, c.width, 1)) && (b->ln1_b = ln_param(dt, c.width, 0)) &&
             (b->attn = nb_nn_multihead_attention_create(
                  c.width, c.heads, (nb_nn_mha_options){.causal = true, .dropout = c.dropout}, dt,
                  rng)) &&
             (b->ln2_w = ln_param(dt, c.width, 1)) && (b->ln2_b = ln_param(dt, c.width, 0)) &&
             (b->fc = nb_nn_linear_create(c.width, 4 * c.width, true, dt, rng)) &&
             (b->proj = nb_nn_linear_create(4 * c.width, c.width, true, dt, rng));
    }
    ok = ok && (m->lnf_w = ln_param(dt, c.width, 1)) && (m->lnf_b = ln_param(dt, c.width, 0)) &&
         (m->head = nb_nn_linear_create(c.width, c.vocab, true, dt, rng));
    if (!ok) {
        fprintf(stderr, "charlm: %s\n", nb_last_error());
        model_destroy(&m->base);
        return NULL;
    }
    return m;
}

void charlm_destroy(charlm_model *m) {
    if (m)
        model_destroy(&m->base);
}

static nb_tensor *residual_dropout(nb_graph *g, charlm_model *m, nb_tensor *x) {
    return nb_dropout(g, x, m->cfg.dropout, m->base.training, m->rng);
}

nb_tensor *charlm_logits(nb_graph *g, charlm_model *m, nb_tensor *ids) {
    if (!ids || nb_tensor_ndim(ids) != 2 || nb_tensor_dim(ids, 1) > m->cfg.context) {
        char sh[96] = "NULL";
        if (ids)
            nb_tensor_shape_str(ids, sh, sizeof sh);
        nb_graph_fail(g, NB_ERR_SHAPE,
                      "charlm: ids %s must be (batch, T) with T <= the context %lld (the "
                      "position table's size)",
                      sh, (long long)m->cfg.context);
        return NULL;
    }
    int64_t b = nb_tensor_dim(ids, 0), t = nb_tensor_dim(ids, 1), e = m->cfg.width;
    nb_nn_embedding *pe = nb_nn_embedding_of(m->pos_emb);
    nb_tensor *h = nb_layer_forward(g, m->tok_emb, ids); // (B, T, E)
    h = nb_add(g, h, nb_slice(g, pe->weight, 0, 0, t));  // + (T, E)
    for (int l = 0; l < m->cfg.layers; l++) {
        charlm_block *bl = &m->blocks[l];
        nb_tensor *a = nb_layer_norm(g, h, 1, bl->ln1_w, bl->ln1_b, 1e-5);
        a = nb_layer_forward(g, bl->attn, a);
        h = nb_add(g, h, residual_dropout(g, m, a));
        nb_tensor *f = nb_layer_norm(g, h, 1, bl->ln2_w, bl->ln2_b, 1e-5);
        f = nb_layer_forward(g, bl->proj, nb_gelu(g, nb_layer_forward(g, bl->fc, f)));
        h = nb_add(g, h, residual_dropout(g, m, f));
    }
    h = nb_layer_norm(g, h, 1, m->lnf_w, m->lnf_b, 1e-5);
    h = nb_reshape(g, h, 2, (int64_t[]){b * t, e});
    return nb_layer_forward(g, m->head, h); // (B T, V)
}
