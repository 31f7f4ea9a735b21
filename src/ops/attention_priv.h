// What scaled_dot_product_attention (attention.c) shares with attention_qkv (attention_qkv.c):
// the geometry of a call, its operands by base pointer, the saved block, and the forward,
// backward and unfused-vjp drivers that both ops run on their own geometry.
#ifndef NB_OPS_ATTENTION_PRIV_H
#define NB_OPS_ATTENTION_PRIV_H

#include "ops/ops_impl.h"

typedef struct sdpa_geom {
    int64_t bh, tq, tk, d, dv, rows;
    // Row strides of q, k, v and o (and of their gradients), and the heads packed side by side
    // in one row (1 for separate (..., t, d) tensors; attention_qkv's H): slice bh starts at
    // row (bh / heads) t and column (bh % heads) d of its tensor.
    int64_t ldq, ldk, ldv, ldo, heads;
    double scale, p;
    bool causal;
    uint64_t seed;
    // The mask's strides: over the leading dims of q (0 where broadcast), its rows and columns.
    int nlead;
    int64_t lead[NB_MAX_DIMS], m_ls[NB_MAX_DIMS], m_rs, m_cs;
} sdpa_geom;

// The saved block: this header, lse (bh tq doubles), then per thread the scratch a, b
// ((rows, tk) each, of the dtype), kᵀ (d, tk) and vᵀ (dv, tk). The thread count is fixed at
// the first forward (a replay keeps the partition); the dropout seed is each forward's, for
// backward.
typedef struct {
    int threads;
    uint64_t seed;
} sdpa_saved;
#define SDPA_HDR 64

// The operands of one call, by base pointer: q, k, v, o's gradient go and their gradients (NULL
// when not wanted) are read through the geometry's strides and sdpa_off, so q, k and v may be
// columns of one packed tensor (attention_qkv). mask and gmask are NULL without a mask.
typedef struct {
    const void *q, *k, *v, *m, *go;
    void *gq, *gk, *gv, *gm;
    // Backward: gq, gk and gv hold garbage (attention_qkv's first write, grad_store); each
    // slice's kernel stores its rows rather than adding into them (sdpa_bwd's `store`), in the
    // parallel loop, instead of backward's serial zeroing pass over the whole (..., t, 3E) grad.
    bool store;
} sdpa_ptrs;

// The dropout arguments of an infer: p in [0, 1], and an rng when p > 0; the error names
// `what` and t's shape ("q", q).
nb_status nb__sdpa_check_dropout(nb_node *nd, double p, const nb_rng *rng, const char *what,
                                 const nb_tensor *t);
// rows (query rows per chunk) and scale = 1 / sqrt(d), from tq and d.
void nb__sdpa_scale_rows(sdpa_geom *g);
// Forward over every slice; `seed_rng` draws this forward's dropout seed (backward reuses it).
void nb__sdpa_run_forward(nb_node *nd, sdpa_geom g, nb_rng *seed_rng, sdpa_ptrs x);
// Backward over every slice: accumulates into the non-NULL gradients of x (stores into them
// when x.store).
void nb__sdpa_run_backward(nb_node *nd, sdpa_geom g, sdpa_ptrs x);
// The derivative from recorded ops (the unfused math), for the gradients `want` of q, k, v and
// mask (NULL without one) into gin: the vjp of both ops.
nb_status nb__sdpa_vjp_math(nb_graph *gr, const sdpa_geom *gp, nb_tensor *q, nb_tensor *k,
                            nb_tensor *v, nb_tensor *m, nb_tensor *gy, const bool *want,
                            nb_tensor **gin);

#endif
