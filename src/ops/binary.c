// Broadcasting arithmetic: y = a ∘ b for ∘ in {+, -, ×, ÷}. NumPy rules: shapes are right-
// aligned, each dim pair is equal or contains a 1, and y takes the larger, so (B, N) ∘ (N),
// (B, N) ∘ (B, 1), (B, N) ∘ () and (2, 1, 4) ∘ (3, 1) -> (2, 3, 4) all work.
// Each operand is read through strides over y's dims (0 along a broadcast dim). A plan drops
// size-1 dims and merges dims that stay contiguous in all three tensors: same-shape and scalar
// operands become one flat loop, (B, N) ∘ (N) a loop over B rows of N.
// Backward: dx += Σ over x's broadcast dims of dy ∂y/∂x (plain elementwise when x is not
// broadcast). Each parallel work item owns a run of x's grad elements and sums in double, so
// there are no races and the result does not depend on the thread count.
#include "ops/ops_impl.h"

// y's dims with their element strides in y, a and b, innermost first (dim[0] varies fastest).
typedef struct {
    int nd;
    int64_t dim[NB_MAX_DIMS];
    int64_t st[3][NB_MAX_DIMS]; // [0] y, [1] a, [2] b; 0 along a dim that tensor broadcasts
} bc_plan;

static nb_status bin_infer(nb_node *nd, nb_shape *out) {
    const nb_tensor *a = nd->in[0], *b = nd->in[1];
    out->ndim = a->ndim > b->ndim ? a->ndim : b->ndim;
    for (int k = 0; k < out->ndim; k++) { // k counts dims from the last
        int64_t da = k < a->ndim ? a->shape[a->ndim - 1 - k] : 1;
        int64_t db = k < b->ndim ? b->shape[b->ndim - 1 - k] : 1;
        if (da != db && da != 1 && db != 1)
            return nb__node_fail(nd, NB_ERR_SHAPE,
                                 "shapes %s and %s cannot broadcast: dim %d is %lld vs %lld (dims "
                                 "align from the right and must match or be 1)",
                                 NB_SHAPE_STR(a), NB_SHAPE_STR(b), -1 - k, (long long)da,
                                 (long long)db);
        out->dim[out->ndim - 1 - k] = da == 1 ? db : da;
    }
    return NB_OK;
}

// Walks y's dims from the innermost, skipping size-1 dims and folding a dim into the previous
// (inner) one when every tensor's stride continues across the pair. Requires y->numel > 0.
static void make_plan(const nb_node *nd, bc_plan *p) {
    const nb_tensor *t[3] = {nd->out, nd->in[0], nd->in[1]};
    int64_t run[3] = {1, 1, 1}; // each tensor's contiguous stride at the current dim
    p->nd = 0;
    for (int k = 0; k < t[0]->ndim; k++) {
        int64_t d = t[0]->shape[t[0]->ndim - 1 - k];
        int64_t s[3];
        for (int j = 0; j < 3; j++) {
            int64_t dj = k < t[j]->ndim ? t[j]->shape[t[j]->ndim - 1 - k] : 1;
            s[j] = dj == 1 ? 0 : run[j];
            run[j] *= dj;
        }
        if (d == 1)
            continue;
        int q = p->nd - 1;
        bool merge = q >= 0;
        for (int j = 0; j < 3 && merge; j++)
            merge = s[j] == p->st[j][q] * p->dim[q];
        if (merge) {
            p->dim[q] *= d;
            continue;
        }
        q = p->nd++;
        p->dim[q] = d;
        for (int j = 0; j < 3; j++)
            p->st[j][q] = s[j];
    }
}

// The plan reordered for summing into operand j: dims j broadcasts along (stride 0) go inside
// the dims it keeps, so the terms of a grad element are consecutive rows and the kept dims
// enumerate j's elements in storage order. A kept innermost dim stays innermost: the sum then
// runs over whole contiguous rows of y into a vector of accumulators.
static void reduce_plan(const bc_plan *p, int j, bc_plan *r) {
    r->nd = 0;
    for (int pass = 0; pass < 3; pass++)
        for (int q = 0; q < p->nd; q++) {
            int where = p->st[j][q] == 0 ? 1 : q == 0 ? 0 : 2; // 0 inner, 1 summed, 2 outer
            if (where != pass)
                continue;
            r->dim[r->nd] = p->dim[q];
            for (int k = 0; k < 3; k++)
                r->st[k][r->nd] = p->st[k][q];
            r->nd++;
        }
}

// Offsets in y, a, b of row t, where rows index the plan's dims 1.. (dim 0 is the row).
static void row_offsets(const bc_plan *p, int64_t t, int64_t o[3]) {
    o[0] = o[1] = o[2] = 0;
    for (int q = 1; q < p->nd && t > 0; q++) {
        int64_t c = t % p->dim[q];
        t /= p->dim[q];
        for (int j = 0; j < 3; j++)
            o[j] += c * p->st[j][q];
    }
}

// Runs the body (the variadic arguments, so it may hold commas) for every element of y, with
// iy, ia, ib its offsets in y, a, b. One plan dim: a flat loop, kept apart for the same-shape
// case so it vectorises, strided (0 or 1) for a scalar operand; else parallel over rows.
// Small outputs take a copy of the loops without the pragma: even a false if() clause enters
// libgomp, which costs more than the arithmetic on a few elements.
#define PAR_YES(n) NB_PARALLEL_FOR(n)
#define PAR_NO(n)
#define FOR_EACH(p, numel, ...)                                                                    \
    do {                                                                                           \
        if ((numel) > NB_OMP_MIN)                                                                  \
            FOR_EACH_(PAR_YES, p, numel, __VA_ARGS__);                                             \
        else                                                                                       \
            FOR_EACH_(PAR_NO, p, numel, __VA_ARGS__);                                              \
    } while (0)
#define FOR_EACH_(PAR, p, numel, ...)                                                              \
    do {                                                                                           \
        const int64_t n0_ = (p)->nd ? (p)->dim[0] : 1, rows_ = (numel) / n0_;                      \
        const int64_t sa_ = (p)->nd ? (p)->st[1][0] : 0, sb_ = (p)->nd ? (p)->st[2][0] : 0;        \
        if (rows_ == 1 && sa_ == 1 && sb_ == 1) {                                                  \
            PAR(n0_) for (int64_t i = 0; i < n0_; i++) {                                           \
                const int64_t iy = i, ia = i, ib = i;                                              \
                __VA_ARGS__;                                                                       \
            }                                                                                      \
        } else if (rows_ == 1) {                                                                   \
            PAR(n0_) for (int64_t i = 0; i < n0_; i++) {                                           \
                const int64_t iy = i, ia = i * sa_, ib = i * sb_;                                  \
                __VA_ARGS__;                                                                       \
            }                                                                                      \
        } else {                                                                                   \
            PAR(numel) for (int64_t r = 0; r < rows_; r++) {                                       \
                int64_t o[3];                                                                      \
                row_offsets(p, r, o);                                                              \
                for (int64_t i = 0; i < n0_; i++) {                                                \
                    const int64_t iy = o[0] + i, ia = o[1] + i * sa_, ib = o[2] + i * sb_;         \
                    __VA_ARGS__;                                                                   \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
    } while (0)

// Accumulators per work item when summing into a broadcast operand (2 KB of stack).
#define CHUNK 256

// Typed kernels: forward y = F(a, b); backward into operand j (1 = a, 2 = b) of its partial
// DA or DB times g = dy. A non-broadcast operand shares y's offsets; a broadcast one sums.
#define BIN_KERNELS(name, T, sfx, F, DA, DB)                                                       \
    static void name##_fwd_##sfx(const bc_plan *p, int64_t numel, const T *A, const T *B, T *Y) {  \
        FOR_EACH(p, numel, {                                                                       \
            T a = A[ia], b = B[ib];                                                                \
            Y[iy] = (F);                                                                           \
        });                                                                                        \
    }                                                                                              \
    static void name##_bwd_##sfx(const bc_plan *p, int64_t numel, int j, const T *A, const T *B,   \
                                 const T *GY, T *GX, int64_t nx) {                                 \
        if (nx == numel && j == 1)                                                                 \
            FOR_EACH(p, numel, {                                                                   \
                T g = GY[iy], a = A[ia], b = B[ib];                                                \
                (void)a;                                                                           \
                (void)b;                                                                           \
                GX[iy] += (DA);                                                                    \
            });                                                                                    \
        if (nx == numel && j == 2)                                                                 \
            FOR_EACH(p, numel, {                                                                   \
                T g = GY[iy], a = A[ia], b = B[ib];                                                \
                (void)a;                                                                           \
                (void)b;                                                                           \
                GX[iy] += (DB);                                                                    \
            });                                                                                    \
        if (nx == numel)                                                                           \
            return;                                                                                \
        bc_plan r;                                                                                 \
        reduce_plan(p, j, &r);                                                                     \
        /* Work item: CHUNK consecutive x elements along a kept innermost dim (one element         \
           when dim 0 is summed); it owns its grad slots and sums its rows in double. */           \
        const bool keep = p->st[j][0] != 0;                                                        \
        const int64_t k0 = keep ? r.dim[0] : 1, nch = (k0 + CHUNK - 1) / CHUNK;                    \
        const int64_t rows = numel / nx / (keep ? 1 : r.dim[0]); /* rows per work item */          \
        NB_PARALLEL_FOR(numel) for (int64_t w = 0; w < nx / k0 * nch; w++) {                       \
            const int64_t e = w / nch, c0 = w % nch * CHUNK;                                       \
            const int64_t c1 = keep ? (c0 + CHUNK < k0 ? c0 + CHUNK : k0) : r.dim[0];              \
            const int64_t width = keep ? c1 - c0 : 1;                                              \
            double acc[CHUNK];                                                                     \
            for (int64_t i = 0; i < width; i++)                                                    \
                acc[i] = 0;                                                                        \
            for (int64_t t = e * rows; t < (e + 1) * rows; t++) {                                  \
                int64_t o[3];                                                                      \
                row_offsets(&r, t, o);                                                             \
                for (int64_t i = c0; i < c1; i++) {                                                \
                    T g = GY[o[0] + i], a = A[o[1] + i * r.st[1][0]],                              \
                      b = B[o[2] + i * r.st[2][0]];                                                \
                    (void)a;                                                                       \
                    (void)b;                                                                       \
                    acc[keep ? i - c0 : 0] += (double)(j == 1 ? (DA) : (DB));                      \
                }                                                                                  \
            }                                                                                      \
            for (int64_t i = 0; i < width; i++)                                                    \
                GX[e * k0 + c0 + i] += (T)acc[i];                                                  \
        }                                                                                          \
    }

// Stamps the float/double kernels, forward, backward, the descriptor and nb_<name>.
#define BIN_OP(name, F, DA, DB)                                                                    \
    BIN_KERNELS(name, float, f32, F, DA, DB)                                                       \
    BIN_KERNELS(name, double, f64, F, DA, DB)                                                      \
    static void name##_forward(nb_node *nd) {                                                      \
        nb_tensor *a = nd->in[0], *b = nd->in[1], *y = nd->out;                                    \
        bc_plan p;                                                                                 \
        if (y->numel == 0)                                                                         \
            return;                                                                                \
        make_plan(nd, &p);                                                                         \
        if (y->dtype == NB_F32)                                                                    \
            name##_fwd_f32(&p, y->numel, F32(a), F32(b), F32(y));                                  \
        else                                                                                       \
            name##_fwd_f64(&p, y->numel, F64(a), F64(b), F64(y));                                  \
    }                                                                                              \
    static void name##_backward(nb_node *nd) {                                                     \
        nb_tensor *a = nd->in[0], *b = nd->in[1], *y = nd->out;                                    \
        bc_plan p;                                                                                 \
        if (y->numel == 0) /* nothing flows back from an empty output */                           \
            return;                                                                                \
        make_plan(nd, &p);                                                                         \
        for (int j = 1; j <= 2; j++) {                                                             \
            nb_tensor *x = nd->in[j - 1];                                                          \
            if (!NB_WANTS_GRAD(x))                                                                 \
                continue;                                                                          \
            if (y->dtype == NB_F32)                                                                \
                name##_bwd_f32(&p, y->numel, j, F32(a), F32(b), G32(y), G32(x), x->numel);         \
            else                                                                                   \
                name##_bwd_f64(&p, y->numel, j, F64(a), F64(b), G64(y), G64(x), x->numel);         \
        }                                                                                          \
    }                                                                                              \
    const nb_op nb_op_##name = {#name, 2, 0, bin_infer, name##_forward, name##_backward};          \
    nb_tensor *nb_##name(nb_graph *g, nb_tensor *a, nb_tensor *b) {                                \
        nb_tensor *in[] = {a, b};                                                                  \
        return nb__record(g, &nb_op_##name, in, 2, NULL, 0);                                       \
    }

// Backward terms with g = dy: add ∂y/∂a = ∂y/∂b = 1; sub ∂y/∂b = -1; mul ∂y/∂a = b,
// ∂y/∂b = a; div ∂y/∂a = 1 / b, ∂y/∂b = -a / b². Shapes: g is y's; a, b read broadcast.
//     name  y          g ∂y/∂a     g ∂y/∂b
BIN_OP(add, a + b, g, g)
BIN_OP(sub, a - b, g, -g)
BIN_OP(mul, a *b, g *b, g *a)
BIN_OP(div, a / b, g / b, -g *a / (b * b))
