// linear: y = x wᵀ + b,  x (..., in), w (out, in), b (out) optional -> y (..., out). The
// leading dims of x (batch = their product, 1 for x (in)) are the rows of one GEMM.
// On OpenBLAS the bias is folded into the GEMM: y is first filled with b row by row, then the
// GEMM accumulates with beta = 1; wᵀ is a GEMM flag, so w is never copied. Float32 shapes like
// charlm's (2048 rows, 128-512 features) run on linear_gemm.c's register tiles instead
// (nb__lgemm_ok), which add the bias in their store and transpose w once into scratch.
// Backward: dx += dy w (batch, out)(out, in);  dw += dyᵀ x (out, batch)(batch, in);
//           db += Σ_batch dy.
#include <string.h>

#include "ops/ops_impl.h"

// Rows of the GEMM: the product of x's leading dims (x has numel = rows · in; no division:
// this runs for every linear op).
static int64_t linear_rows(const nb_tensor *x) {
    int64_t rows = 1;
    for (int i = 0; i < x->ndim - 1; i++)
        rows *= x->shape[i];
    return rows;
}

static nb_status linear_infer(nb_node *nd, nb_shape *out) {
    const nb_tensor *x = nd->in[0], *w = nd->in[1];
    if (nd->n_in < 2 || nd->n_in > 3)
        return nb__node_fail(nd, NB_ERR_ARG, "expects x, w and optional b");
    if (x->ndim < 1 || w->ndim != 2)
        return nb__node_fail(nd, NB_ERR_SHAPE, "x %s must be (..., in) and w %s (out, in)",
                             NB_SHAPE_STR(x), NB_SHAPE_STR(w));
    if (x->shape[x->ndim - 1] != w->shape[1])
        return nb__node_fail(nd, NB_ERR_SHAPE, "x is %s but w is %s: in-features differ",
                             NB_SHAPE_STR(x), NB_SHAPE_STR(w));
    if (nd->n_in == 3) {
        const nb_tensor *b = nd->in[2];
        if (b->ndim != 1 || b->shape[0] != w->shape[0])
            return nb__node_fail(nd, NB_ERR_SHAPE, "b is %s but w is %s: b must be (out)",
                                 NB_SHAPE_STR(b), NB_SHAPE_STR(w));
    }
    int64_t in = w->shape[1];
    if (!nb__gemm_dims_ok(in ? linear_rows(x) : 0, w->shape[0], in))
        return nb__node_fail(nd, NB_ERR_SHAPE, "dimensions exceed BLAS int range: %s, %s",
                             NB_SHAPE_STR(x), NB_SHAPE_STR(w));
    out->ndim = x->ndim;
    for (int i = 0; i < x->ndim - 1; i++)
        out->dim[i] = x->shape[i];
    out->dim[x->ndim - 1] = w->shape[0];
    return NB_OK;
}

static void linear_forward(nb_node *nd) {
    const nb_tensor *x = nd->in[0], *w = nd->in[1];
    nb_tensor *y = nd->out;
    int64_t batch = linear_rows(x), in = w->shape[1], out = w->shape[0];
    if (nb__lgemm_ok(y->dtype, batch, in, out)) { // wᵀ in transient scratch, the bias in the store
        float *wt =
            nb__graph_transient(nd->graph, (size_t)NB_LGEMM_WT_FLOATS(in, out) * sizeof(float));
        if (wt)
            nb__lgemm_fwd_f32(F32(x), F32(w), nd->n_in == 3 ? F32(nd->in[2]) : NULL, F32(y), batch,
                              in, out, wt);
        return;
    }
    size_t row = (size_t)out * nb_dtype_size(y->dtype);
    double beta = 0.0;
    if (nd->n_in == 3) {
        for (int64_t r = 0; r < batch; r++)
            memcpy((char *)y->data + (size_t)r * row, nd->in[2]->data, row);
        beta = 1.0;
    }
    nb__gemm(y->dtype, false, true, batch, out, in, 1.0, x->data, w->data, beta, y->data);
}

// gb (out) += Σ_rows gy (batch, out); a first write (set) starts from 0 instead of gb. Each
// column is summed over the rows in order (the same bits for any vector width and thread
// count), BG_COLS columns at a time: their partial sums stay in registers over all the rows
// (4 AVX-512 registers of floats) instead of being loaded and stored back for every row, and the
// blocks are shared over the OpenMP team for large gy (each block on one thread). The block
// kernels are built for AVX-512, AVX2 and SSE2, picked once at load time (GCC on x86-64; the
// baseline build elsewhere): `omp simd` loops (-fopenmp-simd, CMakeLists.txt).
#define BG_COLS 64
#define BG_BLOCKS(out) (((out) + BG_COLS - 1) / BG_COLS)
#define DEFINE_BIAS_GRAD(T, sfx)                                                                   \
    static NB_CLONES void bias_full_##sfx(const T *restrict gy, T *restrict gb, int64_t batch,     \
                                          int64_t out, bool set) {                                 \
        T acc[BG_COLS];                                                                            \
        _Pragma("omp simd") for (int j = 0; j < BG_COLS; j++) acc[j] = set ? (T)0 : gb[j];         \
        for (int64_t r = 0; r < batch; r++) {                                                      \
            const T *restrict row = gy + r * out;                                                  \
            _Pragma("omp simd") for (int j = 0; j < BG_COLS; j++) acc[j] += row[j];                \
        }                                                                                          \
        memcpy(gb, acc, sizeof acc);                                                               \
    }                                                                                              \
    static NB_CLONES void bias_part_##sfx(const T *restrict gy, T *restrict gb, int64_t batch,     \
                                          int64_t out, int64_t w, bool set) {                      \
        T acc[BG_COLS];                                                                            \
        for (int64_t j = 0; j < w; j++)                                                            \
            acc[j] = set ? (T)0 : gb[j];                                                           \
        for (int64_t r = 0; r < batch; r++) {                                                      \
            const T *restrict row = gy + r * out;                                                  \
            _Pragma("omp simd") for (int64_t j = 0; j < w; j++) acc[j] += row[j];                  \
        }                                                                                          \
        memcpy(gb, acc, (size_t)w * sizeof(T));                                                    \
    }                                                                                              \
    /* column block b: columns [b BG_COLS, min(out, (b + 1) BG_COLS)) */                           \
    static void bias_block_##sfx(int64_t b, const T *gy, T *gb, int64_t batch, int64_t out,        \
                                 bool set) {                                                       \
        int64_t j0 = b * BG_COLS, w = out - j0 < BG_COLS ? out - j0 : BG_COLS;                     \
        if (w == BG_COLS)                                                                          \
            bias_full_##sfx(gy + j0, gb + j0, batch, out, set);                                    \
        else                                                                                       \
            bias_part_##sfx(gy + j0, gb + j0, batch, out, w, set);                                 \
    }                                                                                              \
    static void bias_grad_##sfx(const T *gy, T *gb, int64_t batch, int64_t out, bool set) {        \
        NB_FOR_WORK(BG_BLOCKS(out), batch *out, b, bias_block_##sfx(b, gy, gb, batch, out, set);); \
    }
DEFINE_BIAS_GRAD(float, f32)
DEFINE_BIAS_GRAD(double, f64)

// linear's backward on the float32 tiles in one OpenMP region (under OMP_WAIT_POLICY=passive
// each fork-join costs ~55-60 µs on the 2-vCPU VM, more than charlm's bias grad of 0.26-1 M
// elements takes on one core): each thread does its share of dx's row tiles, then of dw's
// (with the bias grad of their rows), or of the bias grad's column blocks when dw is not
// wanted, with no barrier between them (they write different grads and only read dy, w and
// x). Every element is still computed by one thread in a fixed order: the bits do not depend
// on the thread count. Forks when either GEMM would have (NB_LGEMM_PAR_MIN multiply-adds) or
// the bias grad would have (NB_OMP_MIN elements). A thread that has all of dx and dw (one
// thread, or no fork) interleaves them by dw's blocks of rows instead (nb__lgemm_bwd_f32: dw
// then reads each block of dy and x from L2; the same bits).
// gx, gw, gb: the grads to write, or NULL; fx, fw, fb: their first write of the sweep.
// wp: w in panels for a stored dx (nb__lgemm_pack_w), or NULL.
static void linear_backward_tiles(const float *dy, const float *x, const float *w, float *gx,
                                  float *gw, float *gb, int64_t batch, int64_t in, int64_t out,
                                  bool fx, bool fw, bool fb, const float *wp) {
    int64_t tx = gx ? nb__lgemm_tiles(batch) : 0, tw = gw ? nb__lgemm_tiles(out) : 0;
    // With dw, the bias grad comes out of dw's tiles (they load every dy entry anyway; a pass of
    // its own re-read all of dy, ~0.7 % of charlm's step); alone, it has its column blocks.
    float *gbw = gw ? gb : NULL;
    int64_t nbg = gb && !gw ? BG_BLOCKS(out) : 0;
    bool fork = ((gx || gw) && batch * in * out > NB_LGEMM_PAR_MIN) ||
                (gb && batch * out > NB_OMP_MIN && nbg > 1);
    NB_TEAM_IF(fork, {
        int64_t lo, hi, wlo, whi;
        nb__share(tx, &lo, &hi);
        nb__share(tw, &wlo, &whi);
        if (gx && gw && lo == 0 && hi == tx && wlo == 0 && whi == tw) { // one thread does both
            nb__lgemm_bwd_f32(dy, x, w, gx, gw, batch, in, out, !fx, !fw, gbw, !fb, wp);
        } else {
            nb__lgemm_dx_part_f32(lo, hi, dy, w, gx, batch, in, out, !fx, wp);         // dx = dy w
            nb__lgemm_dw_part_f32(wlo, whi, dy, x, gw, batch, in, out, !fw, gbw, !fb); // dyᵀ x
        }
        nb__share(nbg, &lo, &hi);
        for (int64_t b = lo; b < hi; b++)
            bias_block_f32(b, dy, gb, batch, out, fb);
    });
}

static void linear_backward(nb_node *nd) {
    nb_tensor *x = nd->in[0], *w = nd->in[1], *y = nd->out;
    nb_tensor *b = nd->n_in == 3 ? nd->in[2] : NULL;
    int64_t batch = linear_rows(x), in = w->shape[1], out = w->shape[0];
    bool wx = NB_WANTS_GRAD(x), ww = NB_WANTS_GRAD(w), wb = b && NB_WANTS_GRAD(b);
    // One region only when the grads are distinct buffers: in linear(x, x) dx and dw add into
    // one grad (safe now only because both split n x n into the same row shares).
    if (nb__lgemm_ok(y->dtype, batch, in, out) && x != w && b != x && b != w) {
        bool fx = wx && nb__grad_first(nd, 0);
        // a stored dx runs on w's panels (transient scratch; without it, on w itself)
        float *wp =
            fx ? nb__graph_transient(nd->graph, (size_t)NB_LGEMM_WP_FLOATS(in, out) * sizeof(float))
               : NULL;
        if (wp)
            nb__lgemm_pack_w(F32(w), out, in, wp);
        linear_backward_tiles(G32(y), F32(x), F32(w), wx ? G32(x) : NULL, ww ? G32(w) : NULL,
                              wb ? G32(b) : NULL, batch, in, out, fx, ww && nb__grad_first(nd, 1),
                              wb && nb__grad_first(nd, 2), wp);
        return;
    }
    // beta 0 on a grad's first write of the sweep (nb__grad_first): no zeroing pass before it.
    if (wx) // dx (batch, in) += dy (batch, out) · w (out, in)
        nb__gemm(y->dtype, false, false, batch, in, out, 1.0, y->grad, w->data,
                 nb__grad_beta(nd, 0), x->grad);
    if (ww) // dw (out, in) += dyᵀ (out, batch) · x (batch, in)
        nb__gemm(y->dtype, true, false, out, in, batch, 1.0, y->grad, x->data, nb__grad_beta(nd, 1),
                 w->grad);
    if (wb) {
        bool set = nb__grad_first(nd, 2);
        if (y->dtype == NB_F32)
            bias_grad_f32(G32(y), G32(b), batch, out, set);
        else
            bias_grad_f64(G64(y), G64(b), batch, out, set);
    }
}

// The same as ops, x's leading dims folded into rows: dx = dy w,
// dw = dyᵀ x (batch, out)ᵀ(batch, in), db = Σ_batch dy.
static nb_status linear_vjp(nb_node *nd, nb_tensor *gy, const bool *want, nb_tensor **gin) {
    nb_graph *g = nd->graph;
    nb_tensor *x = nd->in[0], *w = nd->in[1];
    int64_t out = w->shape[0], in = w->shape[1];
    if (want[0])
        gin[0] = nb_matmul(g, gy, w);
    if (want[1])
        gin[1] = nb_matmul_t(g, nb_reshape(g, gy, 2, (int64_t[]){-1, out}),
                             nb_reshape(g, x, 2, (int64_t[]){-1, in}), true, false);
    if (nd->n_in == 3 && want[2])
        gin[2] = nb_sum_to(g, gy, 1, &out);
    return nb_graph_status(g);
}

const nb_op nb_op_linear = {"linear",        -1,         0,    linear_infer, linear_forward,
                            linear_backward, linear_vjp, NULL, true,         false};

nb_tensor *nb_linear(nb_graph *g, nb_tensor *x, nb_tensor *w, nb_tensor *b) {
    nb_tensor *in[] = {x, w, b};
    return nb__record(g, &nb_op_linear, in, b ? 3 : 2, NULL, 0);
}
