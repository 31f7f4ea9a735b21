// charlm example, --model lstm: the recurrent variant. Token embedding (V, E) -> an LSTM of
// `layers` layers and hidden size H over the window -> a linear head (H -> V), named as the
// PyTorch module nn.Embedding + nn.LSTM + nn.Linear ("tok_emb.weight", "lstm.weight_ih_l0",
// ..., "head.weight", "head.bias"). Shapes: ids (B, T) -> embedded (B, T, E) -> time-major
// (T, B, E) -> LSTM (T, B, H) -> (B, T, H) -> logits (B T, V). The state starts at zero in
// every window, as the transformer sees only its window.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "charlm.h"

typedef struct charlm_lstm {
    nb_layer base;
    int64_t hidden;
    nb_layer *tok_emb, *lstm, *head;
} charlm_lstm;

static nb_tensor *lstm_forward(nb_layer *self, nb_graph *g, nb_tensor *ids) {
    charlm_lstm *m = (charlm_lstm *)self;
    if (!ids || nb_tensor_ndim(ids) != 2) {
        nb_graph_fail(g, NB_ERR_SHAPE, "charlm lstm: ids must be (batch, T), got %d dims",
                      ids ? nb_tensor_ndim(ids) : 0);
        return NULL;
    }
    int64_t b = nb_tensor_dim(ids, 0), t = nb_tensor_dim(ids, 1);
    nb_tensor *e = nb_transpose_axes(g, nb_layer_forward(g, m->tok_emb, ids), 0, 1);
    nb_tensor *h = nb_transpose_axes(g, nb_layer_forward(g, m->lstm, e), 0, 1);
    return nb_layer_forward(g, m->head, nb_reshape(g, h, 2, (int64_t[]){b * t, m->hidden}));
}

static nb_status lstm_collect(nb_layer *self, nb_params *set, const char *prefix) {
    charlm_lstm *m = (charlm_lstm *)self;
    nb_status st = nb_layer_collect_child(m->tok_emb, set, prefix, "tok_emb");
    if (st == NB_OK)
        st = nb_layer_collect_child(m->lstm, set, prefix, "lstm");
    return st == NB_OK ? nb_layer_collect_child(m->head, set, prefix, "head") : st;
}

static void lstm_destroy(nb_layer *self) {
    charlm_lstm *m = (charlm_lstm *)self;
    nb_layer_destroy(m->tok_emb);
    nb_layer_destroy(m->lstm);
    nb_layer_destroy(m->head);
    free(m);
}

static const nb_layer_ops lstm_ops = {"charlm_lstm", lstm_forward, lstm_collect, NULL,
                                      lstm_destroy};

nb_layer *charlm_lstm_create(int64_t vocab, int64_t width, int64_t hidden, int64_t layers,
                             nb_rng *rng) {
    charlm_lstm *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    nb_layer_init(&m->base, &lstm_ops);
    m->hidden = hidden;
    m->tok_emb = nb_nn_embedding_create(vocab, width, NB_F32, rng);
    m->lstm = m->tok_emb ? nb_nn_lstm_create(width, hidden, (int)layers, true, NB_F32, rng) : NULL;
    m->head = m->lstm ? nb_nn_linear_create(hidden, vocab, true, NB_F32, rng) : NULL;
    if (!m->head) {
        fprintf(stderr, "charlm: %s\n", nb_last_error());
        lstm_destroy(&m->base);
        return NULL;
    }
    return &m->base;
}
