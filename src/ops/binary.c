// Broadcasting arithmetic: y = a ∘ b for ∘ in {+, -, ×, ÷}. NumPy rules: shapes are right-
// aligned, each dim pair is equal or contains a 1, and y takes the larger, so (B, N) ∘ (N),
// (B, N) ∘ (B, 1), (B, N) ∘ () and (2, 1, 4) ∘ (3, 1) -> (2, 3, 4) all work.
// Each operand is read through strides over y's dims (0 along a broadcast dim). A plan drops
// size-1 dims and merges dims that stay contiguous in all three tensors: same-shape and scalar
// operands become one flat loop, (B, N) ∘ (N) a loop over B rows of N.
// Backward: dx += Σ over x's broadcast dims of dy ∂y/∂x (plain elementwise when x is not
// broadcast), or dx = that sum on dx's first write of the sweep (grad_store). Each parallel work
// item owns a run of x's grad elements and sums in double, so there are no races and the result
// does not depend on the thread count.
#include <math.h>
#include <string.h>

#include "ops/kernels.h"
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
    // add's dy/da = dy/db = 1 and sub's dy/da = 1: an operand with y's element count is not
    // broadcast (its dims are y's, give or take 1s), so its gradient is dy itself, element for
    // element, and may share y's grad buffer (nb_node.grad_pass; a residual add's branch).
    if (nd->op == &nb_op_add || nd->op == &nb_op_sub) {
        int64_t ny = 1;
        for (int k = 0; k < out->ndim; k++)
            ny *= out->dim[k];
        nd->grad_pass = (uint8_t)((a->numel == ny) | (nd->op == &nb_op_add && b->numel == ny) << 1);
    }
    return NB_OK;
}

// Walks y's dims from the innermost, skipping size-1 dims and folding a dim into the previous
// (inner) one when every tensor's stride continues across the pair. Requires y->numel > 0.
static void make_plan(const nb_tensor *y, const nb_tensor *a, const nb_tensor *b, bc_plan *p) {
    // Shortcut for the common plans, the same result as the walk below: an operand with y's
    // element count broadcasts along no dim of y, so it is laid out as y (stride 1 on one
    // merged dim); one with a single element has stride 0. Size-1 dims are skipped, so a
    // 1-element y has no dim at all. This runs for every binary op and its backward.
    if ((a->numel == y->numel || a->numel == 1) && (b->numel == y->numel || b->numel == 1)) {
        p->nd = y->numel > 1;
        p->dim[0] = y->numel;
        p->st[0][0] = 1;
        p->st[1][0] = a->numel == y->numel;
        p->st[2][0] = b->numel == y->numel;
        return;
    }
    const nb_tensor *t[3] = {y, a, b};
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

// Accumulators per work item when summing into a broadcast operand (2 KB of stack).
#define CHUNK 256
// Elements per parallel work item when y is one long row (the same-shape case).
#define BLOCK 4096

// Forward and elementwise backward both walk y row by row; the typed kernels pick the loop.
typedef enum { BIN_FWD, BIN_DA, BIN_DB, BIN_DA_SET, BIN_DB_SET } bin_pass;
// Elementwise row loops vectorise under `omp simd` (-fopenmp-simd, CMakeLists.txt), which GCC's
// -O2 cost model would otherwise leave scalar for a row length it does not know.
#define BIN_SIMD _Pragma("omp simd")

// The typed kernels of each op: binary_kernels.inc, included once per op and dtype with T, SFX,
// OP and the op's F(a, b), DA(g, a, b) = g ∂y/∂a and DB(g, a, b) = g ∂y/∂b.
// Backward terms with g = dy: add ∂y/∂a = ∂y/∂b = 1; sub ∂y/∂b = -1; mul ∂y/∂a = b,
// ∂y/∂b = a; div ∂y/∂a = 1 / b, ∂y/∂b = -a / b². Shapes: g is y's; a, b read broadcast.
#define F(a, b) ((a) + (b))
#define DA(g, a, b) (g)
#define DB(g, a, b) (g)
#define OP add
#include "ops/binary_op.inc"

#define F(a, b) ((a) - (b))
#define DA(g, a, b) (g)
#define DB(g, a, b) (-(g))
#define OP sub
#include "ops/binary_op.inc"

#define F(a, b) ((a) * (b))
#define DA(g, a, b) ((g) * (b))
#define DB(g, a, b) ((g) * (a))
#define OP mul
#include "ops/binary_op.inc"

#define F(a, b) ((a) / (b))
#define DA(g, a, b) ((g) / (b))
#define DB(g, a, b) (-(g) * (a) / ((b) * (b)))
#define OP div
#include "ops/binary_op.inc"

// maximum / minimum: at a tie each operand gets half of dy (PyTorch's convention); NaN wins.
#define F(a, b) ((a) > (b) || isnan(a) ? (a) : (b))
#define DA(g, a, b) ((a) > (b) ? (g) : (a) == (b) ? (g) / 2 : 0)
#define DB(g, a, b) ((b) > (a) ? (g) : (a) == (b) ? (g) / 2 : 0)
#define OP maximum
#include "ops/binary_op.inc"

#define F(a, b) ((a) < (b) || isnan(a) ? (a) : (b))
#define DA(g, a, b) ((a) < (b) ? (g) : (a) == (b) ? (g) / 2 : 0)
#define DB(g, a, b) ((b) < (a) ? (g) : (a) == (b) ? (g) / 2 : 0)
#define OP minimum
#include "ops/binary_op.inc"

// Comparisons: masks of 1 / 0 in the operands' dtype (NaN compares false, except ne). Their
// derivative is 0 wherever it exists, so no gradient flows back through a mask.
#define F(a, b) ((a) == (b) ? 1 : 0)
#define DA(g, a, b) ((void)(g), (void)(a), (void)(b), 0)
#define DB(g, a, b) ((void)(g), (void)(a), (void)(b), 0)
#define OP eq
#include "ops/binary_op.inc"
#define F(a, b) ((a) != (b) ? 1 : 0)
#define DA(g, a, b) ((void)(g), (void)(a), (void)(b), 0)
#define DB(g, a, b) ((void)(g), (void)(a), (void)(b), 0)
#define OP ne
#include "ops/binary_op.inc"
#define F(a, b) ((a) < (b) ? 1 : 0)
#define DA(g, a, b) ((void)(g), (void)(a), (void)(b), 0)
#define DB(g, a, b) ((void)(g), (void)(a), (void)(b), 0)
#define OP lt
#include "ops/binary_op.inc"
#define F(a, b) ((a) <= (b) ? 1 : 0)
#define DA(g, a, b) ((void)(g), (void)(a), (void)(b), 0)
#define DB(g, a, b) ((void)(g), (void)(a), (void)(b), 0)
#define OP le
#include "ops/binary_op.inc"
#define F(a, b) ((a) > (b) ? 1 : 0)
#define DA(g, a, b) ((void)(g), (void)(a), (void)(b), 0)
#define DB(g, a, b) ((void)(g), (void)(a), (void)(b), 0)
#define OP gt
#include "ops/binary_op.inc"
#define F(a, b) ((a) >= (b) ? 1 : 0)
#define DA(g, a, b) ((void)(g), (void)(a), (void)(b), 0)
#define DB(g, a, b) ((void)(g), (void)(a), (void)(b), 0)
#define OP ge
#include "ops/binary_op.inc"

static nb_tensor *binary(nb_graph *g, const nb_op *op, nb_tensor *a, nb_tensor *b) {
    nb_tensor *in[] = {a, b};
    return nb__record(g, op, in, 2, NULL, 0);
}

// ---- vjps: the same partials as public ops; an operand that was broadcast gets its term
// summed back to its shape (sum_to), which is what the kernels' reduce loops do.
static nb_tensor *unbroadcast(nb_graph *g, nb_tensor *t, const nb_tensor *like) {
    if (!t || (t->ndim == like->ndim &&
               memcmp(t->shape, like->shape, (size_t)t->ndim * sizeof t->shape[0]) == 0))
        return t;
    return nb_sum_to(g, t, like->ndim, like->shape);
}

#define BIN_VJP(name, DA, DB)                                                                      \
    static nb_status name##_vjp(nb_node *nd, nb_tensor *gy, const bool *want, nb_tensor **gin) {   \
        nb_graph *g = nd->graph;                                                                   \
        nb_tensor *a = nd->in[0], *b = nd->in[1];                                                  \
        if (want[0])                                                                               \
            gin[0] = unbroadcast(g, (DA), a);                                                      \
        if (want[1])                                                                               \
            gin[1] = unbroadcast(g, (DB), b);                                                      \
        return nb_graph_status(g);                                                                 \
    }
BIN_VJP(add, gy, gy)
BIN_VJP(sub, gy, nb_neg(g, gy))
BIN_VJP(mul, nb_mul(g, gy, b), nb_mul(g, gy, a))
BIN_VJP(div, nb_div(g, gy, b), nb_neg(g, nb_div(g, nb_mul(g, gy, a), nb_mul(g, b, b))))
// maximum: dy to the larger operand, half each at a tie (0 to both when one is NaN), as masks
// [a > b] + ½ [a == b]; minimum the same with <.
#define TIE_MASK(g, first, second, CMP)                                                            \
    nb_add(g, CMP(g, first, second), nb_scale(g, nb_eq(g, first, second), 0.5))
BIN_VJP(maximum, nb_mul(g, gy, TIE_MASK(g, a, b, nb_gt)), nb_mul(g, gy, TIE_MASK(g, b, a, nb_gt)))
BIN_VJP(minimum, nb_mul(g, gy, TIE_MASK(g, a, b, nb_lt)), nb_mul(g, gy, TIE_MASK(g, b, a, nb_lt)))

// The comparisons are masks: their derivative is 0 wherever it exists.
static nb_status cmp_vjp(nb_node *nd, nb_tensor *gy, const bool *want, nb_tensor **gin) {
    (void)gy;
    (void)want;
    (void)gin;
    return nb_graph_status(nd->graph);
}

const nb_op nb_op_add = {"add",        2,       0,    bin_infer, add_forward,
                         add_backward, add_vjp, NULL, true,      false};
const nb_op nb_op_sub = {"sub",        2,       0,    bin_infer, sub_forward,
                         sub_backward, sub_vjp, NULL, true,      false};
const nb_op nb_op_mul = {"mul",        2,       0,    bin_infer, mul_forward,
                         mul_backward, mul_vjp, NULL, true,      false};
const nb_op nb_op_div = {"div",        2,       0,    bin_infer, div_forward,
                         div_backward, div_vjp, NULL, true,      false};
const nb_op nb_op_maximum = {"maximum",        2,           0,    bin_infer, maximum_forward,
                             maximum_backward, maximum_vjp, NULL, true,      false};
const nb_op nb_op_minimum = {"minimum",        2,           0,    bin_infer, minimum_forward,
                             minimum_backward, minimum_vjp, NULL, true,      false};
const nb_op nb_op_eq = {"eq", 2, 0, bin_infer, eq_forward, eq_backward, cmp_vjp, NULL, true, false};
const nb_op nb_op_ne = {"ne", 2, 0, bin_infer, ne_forward, ne_backward, cmp_vjp, NULL, true, false};
const nb_op nb_op_lt = {"lt", 2, 0, bin_infer, lt_forward, lt_backward, cmp_vjp, NULL, true, false};
const nb_op nb_op_le = {"le", 2, 0, bin_infer, le_forward, le_backward, cmp_vjp, NULL, true, false};
const nb_op nb_op_gt = {"gt", 2, 0, bin_infer, gt_forward, gt_backward, cmp_vjp, NULL, true, false};
const nb_op nb_op_ge = {"ge", 2, 0, bin_infer, ge_forward, ge_backward, cmp_vjp, NULL, true, false};

nb_tensor *nb_add(nb_graph *g, nb_tensor *a, nb_tensor *b) {
    return binary(g, &nb_op_add, a, b);
}
nb_tensor *nb_sub(nb_graph *g, nb_tensor *a, nb_tensor *b) {
    return binary(g, &nb_op_sub, a, b);
}
nb_tensor *nb_mul(nb_graph *g, nb_tensor *a, nb_tensor *b) {
    return binary(g, &nb_op_mul, a, b);
}
nb_tensor *nb_div(nb_graph *g, nb_tensor *a, nb_tensor *b) {
    return binary(g, &nb_op_div, a, b);
}
nb_tensor *nb_maximum(nb_graph *g, nb_tensor *a, nb_tensor *b) {
    return binary(g, &nb_op_maximum, a, b);
}
nb_tensor *nb_minimum(nb_graph *g, nb_tensor *a, nb_tensor *b) {
    return binary(g, &nb_op_minimum, a, b);
}
nb_tensor *nb_eq(nb_graph *g, nb_tensor *a, nb_tensor *b) {
    return binary(g, &nb_op_eq, a, b);
}
nb_tensor *nb_ne(nb_graph *g, nb_tensor *a, nb_tensor *b) {
    return binary(g, &nb_op_ne, a, b);
}
nb_tensor *nb_lt(nb_graph *g, nb_tensor *a, nb_tensor *b) {
    return binary(g, &nb_op_lt, a, b);
}
nb_tensor *nb_le(nb_graph *g, nb_tensor *a, nb_tensor *b) {
    return binary(g, &nb_op_le, a, b);
}
nb_tensor *nb_gt(nb_graph *g, nb_tensor *a, nb_tensor *b) {
    return binary(g, &nb_op_gt, a, b);
}
nb_tensor *nb_ge(nb_graph *g, nb_tensor *a, nb_tensor *b) {
    return binary(g, &nb_op_ge, a, b);
}

static const nb_binary_kernels *const kernel_table[] = {
    &add_kernels, &sub_kernels, &mul_kernels, &div_kernels, &maximum_kernels, &minimum_kernels,
    &eq_kernels,  &ne_kernels,  &lt_kernels,  &le_kernels,  &gt_kernels,      &ge_kernels};

const nb_binary_kernels *nb__binary_kernels(const char *name) {
    for (size_t i = 0; i < sizeof kernel_table / sizeof kernel_table[0]; i++)
        if (strcmp(kernel_table[i]->name, name) == 0)
            return kernel_table[i];
    return NULL;
}
