// libFuzzer harness for the op API: the input is a small program run against one graph.
// Each instruction creates a user tensor (any dtype, rank 0..6, dims from 0 to 2^62, some
// NULL), calls one op on tensors picked from 8 slots (or NULL), or runs backward, replay,
// reset, clear-error, grad-mode and anomaly-mode switches in any order, including reuse of op
// outputs from earlier steps. Oracles ("an error or the correct result, never UB"):
//   - a call returns NULL exactly when the graph is in error, with a message naming the op;
//     a call on a healthy graph that fails must leave a new message;
//   - an op given an output of an earlier step (any number of resets back) fails with
//     NB_ERR_STATE, never reads it;
//   - a result has the shape the op's contract gives, and for the ops with a simple reference
//     (elementwise, sum, shape ops, matmul of 2-D) the values it should have;
//   - nb_backward succeeds exactly when its root is a live, grad-requiring scalar;
//   - and ASan + UBSan + leak checks throughout (run.sh builds it with them).
// One allocation may be made to fail (the input picks which): then NB_ERR_NOMEM, no leak.
#define _GNU_SOURCE
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "fuzz_util.h"
#include "nabla/graph.h"
#include "nabla/ops.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SLOTS 8
#define MAX_LEAF_NUMEL 4096 // larger leaves are created only when empty or refused

typedef struct {
    const uint8_t *p;
    size_t n, i;
} reader;

static unsigned u8(reader *r) {
    return r->i < r->n ? r->p[r->i++] : 0;
}

typedef struct {
    nb_tensor *t;
    bool leaf;     // created here (destroyed at the end), else an op output
    uint64_t step; // reset count when an op output was made
} slot;

typedef struct {
    nb_graph *g;
    slot s[SLOTS];
    uint64_t step;
    nb_tensor *leaves[64]; // every leaf made, freed at the end (ops may still reference them)
    int n_leaves;
} state;

// Dims worth trying: small, empty, and huge (valid only next to a 0 or refused cleanly).
static const int64_t dim_table[16] = {
    0,        1, 2, 3, 4, 5, 1, 2, 3, 7, 1, 2, (int64_t)1 << 31, (int64_t)1 << 40, (int64_t)1 << 62,
    INT64_MAX};
static const double value_table[16] = {0,    1,  -1,   0.5, -0.25, 2,     3,    -3,
                                       1e-3, 10, -7.5, 0.1, 100,   -1e-6, 1e30, -2};

static void make_leaf(state *st, reader *r, int k) {
    unsigned c = u8(r);
    nb_dtype dt = (c & 7) == 7 ? NB_I32 : (c & 1) ? NB_F64 : NB_F32;
    int ndim = (int)(u8(r) % 8) - (c & 0x80 ? 1 : 0); // -1 and 7 are invalid
    int64_t shape[8];
    double numel = 1;
    for (int d = 0; d < 8; d++) {
        shape[d] = dim_table[u8(r) % 16];
        if (d < ndim)
            numel *= (double)shape[d];
    }
    if (ndim > 0 && numel > MAX_LEAF_NUMEL)
        shape[u8(r) % (unsigned)ndim] = 0; // keep it small: empty, with the huge dims
    nb_tensor *t = nb_tensor_create(dt, ndim, (c & 0x40) && ndim > 0 ? NULL : shape);
    if (!t) {
        FZ_CHECK(nb_last_error()[0] != '\0');
        return;
    }
    FZ_CHECK(ndim >= 0 && ndim <= NB_MAX_DIMS);
    int64_t n = nb_tensor_numel(t);
    for (int64_t i = 0; i < n; i++) {
        double v = value_table[u8(r) % 16];
        nb_tensor_set(t, i, v);
        double want = dt == NB_F32    ? (double)(float)v
                      : dt == NB_F64  ? v
                      : fabs(v) < 2e9 ? trunc(v)
                                      : 0;
        FZ_CHECK(nb_tensor_get(t, i) == want);
    }
    if (dt != NB_I32 && (c & 0x10))
        FZ_CHECK(nb_tensor_set_requires_grad(t, true) == NB_OK);
    if (st->n_leaves == 64) {
        nb_tensor_destroy(t);
        return;
    }
    st->leaves[st->n_leaves++] = t;
    st->s[k] = (slot){t, true, 0};
}

static nb_tensor *pick(state *st, reader *r) {
    unsigned c = u8(r);
    return c % 16 == 15 ? NULL : st->s[c % SLOTS].t;
}

// An op output made before the last reset (the slot holding it says when).
static bool is_stale(const state *st, const nb_tensor *t) {
    bool old = false;
    for (int k = 0; k < SLOTS; k++) {
        if (t && st->s[k].t == t && !st->s[k].leaf) {
            if (st->s[k].step == st->step)
                return false; // the same address made again this step (arena fallback)
            old = true;
        }
    }
    return old;
}

static int axis_arg(reader *r) {
    return (int)(u8(r) % 15) - 7; // -7..7: some out of range
}

static int64_t ndims(nb_tensor *t) {
    return nb_tensor_ndim(t);
}

static bool same_shape(nb_tensor *a, nb_tensor *b) {
    return ndims(a) == ndims(b) &&
           !memcmp(nb_tensor_shape(a), nb_tensor_shape(b), (size_t)ndims(a) * sizeof(int64_t));
}

// |got - want| within float32 or float64 rounding of a value of size `scale`.
static bool close_to(nb_tensor *y, double got, double want, double scale) {
    if (isnan(want))
        return isnan(got);
    if (isinf(want))
        return got == want || nb_tensor_dtype(y) == NB_F32;
    double tol = (nb_tensor_dtype(y) == NB_F32 ? 1e-5 : 1e-12) * (fabs(want) + scale + 1e-30);
    if (nb_tensor_dtype(y) == NB_F32 && fabs(want) > 3e38)
        return true; // float32 overflow: inf is the right answer
    return fabs(got - want) <= tol;
}

// Copies are exact, NaN included.
static bool same_val(double a, double b) {
    return a == b || (isnan(a) && isnan(b));
}

typedef double (*unary_ref)(double);
static double ref_neg(double x) {
    return -x;
}
static double ref_relu(double x) {
    return x > 0 ? x : 0;
}
static double ref_sigmoid(double x) {
    return 1 / (1 + exp(-x));
}
static double ref_step(double x) {
    return x > 0 ? 1 : 0;
}

static void check_unary(nb_tensor *x, nb_tensor *y, unary_ref f) {
    FZ_CHECK(same_shape(x, y));
    for (int64_t i = 0; i < nb_tensor_numel(y); i++) {
        double want = f(nb_tensor_get(x, i));
        FZ_CHECK(close_to(y, nb_tensor_get(y, i), want, 0));
    }
}

// y = a op b with NumPy broadcasting, checked element by element.
static void check_binary(nb_tensor *a, nb_tensor *b, nb_tensor *y, int op) {
    int nd = ndims(y);
    FZ_CHECK(nd == (ndims(a) > ndims(b) ? ndims(a) : ndims(b)));
    const int64_t *ys = nb_tensor_shape(y);
    for (int64_t i = 0; i < nb_tensor_numel(y); i++) {
        int64_t rem = i, ia = 0, ib = 0, sa = 1, sb = 1;
        for (int d = nd - 1; d >= 0; d--) {
            int64_t idx = rem % ys[d];
            rem /= ys[d];
            int da = d - (nd - (int)ndims(a)), db = d - (nd - (int)ndims(b));
            if (da >= 0) {
                int64_t n = nb_tensor_shape(a)[da];
                ia += (n == 1 ? 0 : idx) * sa;
                sa *= n;
            }
            if (db >= 0) {
                int64_t n = nb_tensor_shape(b)[db];
                ib += (n == 1 ? 0 : idx) * sb;
                sb *= n;
            }
        }
        double u = nb_tensor_get(a, ia), v = nb_tensor_get(b, ib);
        double want = op == 0   ? u + v
                      : op == 1 ? u - v
                      : op == 2 ? u * v
                      : op == 3 ? u / v
                      : op == 4 ? (isnan(u) || isnan(v) ? NAN
                                   : u > v              ? u
                                                        : v)
                                : (isnan(u) || isnan(v) ? NAN
                                   : u < v              ? u
                                                        : v);
        FZ_CHECK(close_to(y, nb_tensor_get(y, i), want, op < 2 ? fabs(u) + fabs(v) : 0));
    }
}

static void check_sum(nb_tensor *x, nb_tensor *y) {
    FZ_CHECK(ndims(y) == 0 && nb_tensor_numel(y) == 1);
    double s = 0, mag = 0;
    for (int64_t i = 0; i < nb_tensor_numel(x); i++) {
        s += nb_tensor_get(x, i);
        mag += fabs(nb_tensor_get(x, i));
    }
    FZ_CHECK(close_to(y, nb_tensor_get(y, 0), s, mag));
}

// y = x with its axes reordered: y.shape[k] = x.shape[perm[k]] (transposes and permute).
static void check_permute(nb_tensor *x, nb_tensor *y, const int *perm) {
    int nd = (int)ndims(x);
    FZ_CHECK(ndims(y) == nd);
    for (int k = 0; k < nd; k++)
        FZ_CHECK(nb_tensor_dim(y, k) == nb_tensor_dim(x, perm[k]));
    for (int64_t i = 0; i < nb_tensor_numel(y); i++) {
        int64_t xi[NB_MAX_DIMS], rem = i, flat = 0;
        for (int k = nd - 1; k >= 0; k--) {
            xi[perm[k]] = rem % nb_tensor_dim(y, k);
            rem /= nb_tensor_dim(y, k);
        }
        for (int d = 0; d < nd; d++)
            flat = flat * nb_tensor_dim(x, d) + xi[d];
        FZ_CHECK(same_val(nb_tensor_get(y, i), nb_tensor_get(x, flat)));
    }
}

// The permutation swapping axes a0 and a1 (already normalised) of an nd-dim tensor.
static void swap_perm(int nd, int a0, int a1, int *perm) {
    for (int k = 0; k < nd; k++)
        perm[k] = k;
    perm[a0] = a1;
    perm[a1] = a0;
}

static void check_same_data(nb_tensor *x, nb_tensor *y) {
    FZ_CHECK(nb_tensor_numel(x) == nb_tensor_numel(y));
    for (int64_t i = 0; i < nb_tensor_numel(y); i++)
        FZ_CHECK(same_val(nb_tensor_get(y, i), nb_tensor_get(x, i)));
}

// The (outer, len, inner) view around axis ax; only called on tensors whose numel fits.
static void view3(nb_tensor *x, int ax, int64_t *outer, int64_t *len, int64_t *inner) {
    *outer = *inner = 1;
    *len = nb_tensor_dim(x, ax);
    for (int d = 0; d < ax; d++)
        *outer *= nb_tensor_dim(x, d);
    for (int d = ax + 1; d < ndims(x); d++)
        *inner *= nb_tensor_dim(x, d);
}

static void check_slice(nb_tensor *x, nb_tensor *y, int axis, int64_t start, int64_t stop) {
    int ax = axis < 0 ? axis + (int)ndims(x) : axis;
    FZ_CHECK(start >= 0 && start <= stop && stop <= nb_tensor_dim(x, ax));
    FZ_CHECK(nb_tensor_dim(y, ax) == stop - start && ndims(y) == ndims(x));
    if (nb_tensor_numel(y) == 0)
        return;
    int64_t outer, len, inner;
    view3(x, ax, &outer, &len, &inner);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t k = 0; k < stop - start; k++)
            for (int64_t i = 0; i < inner; i++)
                FZ_CHECK(same_val(nb_tensor_get(y, (o * (stop - start) + k) * inner + i),
                                  nb_tensor_get(x, (o * len + start + k) * inner + i)));
}

static void check_concat(nb_tensor *const *xs, int n, nb_tensor *y, int axis) {
    int ax = axis < 0 ? axis + (int)ndims(y) : axis;
    int64_t total = 0;
    for (int k = 0; k < n; k++)
        total += nb_tensor_dim(xs[k], ax);
    FZ_CHECK(nb_tensor_dim(y, ax) == total);
    if (nb_tensor_numel(y) == 0)
        return;
    int64_t outer, len, inner, off = 0;
    view3(y, ax, &outer, &len, &inner);
    for (int k = 0; k < n; k++) {
        int64_t lk = nb_tensor_dim(xs[k], ax);
        for (int64_t o = 0; o < outer; o++)
            for (int64_t j = 0; j < lk * inner; j++)
                FZ_CHECK(same_val(nb_tensor_get(y, o * len * inner + off * inner + j),
                                  nb_tensor_get(xs[k], o * lk * inner + j)));
        off += lk;
    }
}

static void check_matmul(nb_tensor *a, nb_tensor *b, nb_tensor *y) {
    if (ndims(a) != 2 || ndims(b) != 2)
        return;
    int64_t m = nb_tensor_dim(a, 0), k = nb_tensor_dim(a, 1), n = nb_tensor_dim(b, 1);
    FZ_CHECK(ndims(y) == 2 && nb_tensor_dim(y, 0) == m && nb_tensor_dim(y, 1) == n);
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            // s2 leaves out the terms with a zero factor: BLAS kernels may skip them (the
            // reference DGEMM tests B(l, j) != 0), so 0 * inf gives NaN in one and not the other.
            // sl and magl are in long double (x86-64: 15-bit exponent), where no product or sum
            // of these terms overflows.
            double s = 0, s2 = 0;
            long double sl = 0, magl = 0;
            for (int64_t p = 0; p < k; p++) {
                double u = nb_tensor_get(a, i * k + p), v = nb_tensor_get(b, p * n + j);
                s += u * v;
                s2 += u == 0 || v == 0 ? 0 : u * v;
                sl += (long double)u * v;
                magl += fabsl((long double)u * v);
            }
            double got = nb_tensor_get(y, i * n + j), mag = (double)magl;
            double scale = mag * (1 + (double)k / 16);
            bool ok = close_to(y, got, s, scale) || close_to(y, got, s2, scale);
            // A GEMM's rounding error grows with k. Once the terms' magnitudes add up past the
            // dtype's largest value, partial sums overflow or not depending on the order the
            // kernel picks: inf in one order, inf - inf = NaN in another, a finite sum in a
            // third (then within rounding of the exact sum, taken in long double).
            long double big = nb_tensor_dtype(y) == NB_F32 ? 3.4028234663852886e38L : DBL_MAX;
            if (!ok && !(magl <= big)) {
                long double tol = (nb_tensor_dtype(y) == NB_F32 ? 1e-5L : 1e-12L) * magl *
                                  (1 + (long double)k / 16);
                ok = !isfinite(got) || fabsl((long double)got - sl) <= tol;
            }
            if (!ok && fz_verbose())
                fprintf(stderr,
                        "matmul (%s) y[%" PRId64 ", %" PRId64
                        "] = %.17g; want %.17g or %.17g (exact %.17Lg), magnitude %.17Lg\n",
                        nb_dtype_name(nb_tensor_dtype(y)), i, j, got, s, s2, sl, magl);
            FZ_CHECK(ok);
        }
}

// One op call. Returns the result (or NULL) and checks it against the reference where
// there is one. `name` is what the error message must mention.
static nb_tensor *run_op(state *st, reader *r, bool *stale, const char **name) {
    nb_graph *g = st->g;
    nb_tensor *a = pick(st, r);
    nb_tensor *b = pick(st, r);
    unsigned op = u8(r) % 36;
    double c = value_table[u8(r) % 16];
    int axis = axis_arg(r);
    bool keep = u8(r) & 1;
    nb_reduction red = (nb_reduction)(u8(r) % 3); // 2 is invalid
    nb_tensor *y = NULL;
    bool healthy = nb_graph_status(g) == NB_OK;
    // Which inputs an op reads decides whether it must report a stale one.
#define USE(t) (*stale = *stale || is_stale(st, (t)))
#define CHECKED(cond) (y && healthy && !*stale && (cond))
    bool unary = (op >= 6 && op <= 26 && op != 21) || op == 32 || op == 35;
    if (unary || op == 31)
        USE(a);
    else if (op != 21) {
        USE(a);
        USE(b);
    }
    switch (op) {
    case 0:
        *name = "matmul";
        y = nb_matmul(g, a, b);
        if (CHECKED(true))
            check_matmul(a, b, y);
        break;
    case 1: {
        *name = "linear";
        nb_tensor *bias = (u8(r) & 1) ? NULL : pick(st, r);
        USE(bias);
        y = nb_linear(g, a, b, bias);
        break;
    }
    case 2:
    case 3:
    case 4:
    case 5: {
        static const char *const nm[4] = {"add", "sub", "mul", "div"};
        *name = nm[op - 2];
        y = op == 2   ? nb_add(g, a, b)
            : op == 3 ? nb_sub(g, a, b)
            : op == 4 ? nb_mul(g, a, b)
                      : nb_div(g, a, b);
        if (CHECKED(true))
            check_binary(a, b, y, (int)op - 2);
        break;
    }
    case 6:
        *name = "neg";
        y = nb_neg(g, a);
        if (CHECKED(true))
            check_unary(a, y, ref_neg);
        break;
    case 7:
        *name = "add_scalar";
        y = nb_add_scalar(g, a, c);
        if (CHECKED(true))
            FZ_CHECK(same_shape(a, y));
        break;
    case 8:
        *name = "scale";
        y = nb_scale(g, a, c);
        break;
    case 9:
        *name = "exp";
        y = nb_exp(g, a);
        if (CHECKED(true))
            check_unary(a, y, exp);
        break;
    case 10:
        *name = "log";
        y = nb_log(g, a);
        break;
    case 11:
        *name = "sqrt";
        y = nb_sqrt(g, a);
        break;
    case 12:
        *name = "pow_scalar";
        y = nb_pow_scalar(g, a, c);
        break;
    case 13:
        *name = "sum";
        y = nb_sum(g, a);
        if (CHECKED(true))
            check_sum(a, y);
        break;
    case 14:
        *name = "mean";
        y = nb_mean(g, a);
        break;
    case 15:
        *name = "sum_axis";
        y = nb_sum_axis(g, a, axis, keep);
        break;
    case 16:
        *name = "mean_axis";
        y = nb_mean_axis(g, a, axis, keep);
        break;
    case 17:
        *name = "max_axis";
        y = nb_max_axis(g, a, axis, keep);
        break;
    case 18: {
        *name = "reshape";
        int nd = (int)(u8(r) % 8) - 1;
        int64_t shape[8];
        for (int d = 0; d < 8; d++)
            shape[d] = (u8(r) % 8 == 0) ? -1 : dim_table[u8(r) % 16];
        y = nb_reshape(g, a, nd, (u8(r) % 16 == 0) ? NULL : shape);
        if (CHECKED(true))
            check_same_data(a, y);
        break;
    }
    case 19: {
        *name = "transpose";
        y = nb_transpose(g, a);
        int perm[NB_MAX_DIMS];
        if (CHECKED(true)) {
            FZ_CHECK(ndims(a) >= 2);
            swap_perm((int)ndims(a), (int)ndims(a) - 2, (int)ndims(a) - 1, perm);
            check_permute(a, y, perm);
        }
        break;
    }
    case 20: {
        *name = "slice";
        int64_t s0 = (int64_t)(u8(r) % 6) - 1, s1 = (int64_t)(u8(r) % 6) - 1;
        if (u8(r) % 8 == 0)
            s1 = dim_table[u8(r) % 16];
        y = nb_slice(g, a, axis, s0, s1);
        if (CHECKED(true))
            check_slice(a, y, axis, s0, s1);
        break;
    }
    case 21: {
        *name = "concat";
        nb_tensor *xs[4] = {a, b, pick(st, r), pick(st, r)};
        int n = (int)(u8(r) % 5);
        bool null_xs = u8(r) % 16 == 0;
        for (int k = 0; k < n && !null_xs; k++)
            USE(xs[k]);
        y = nb_concat(g, null_xs ? NULL : xs, n, axis);
        if (CHECKED(true))
            check_concat(xs, n, y, axis);
        break;
    }
    case 22:
        *name = "sigmoid";
        y = nb_sigmoid(g, a);
        if (CHECKED(true))
            check_unary(a, y, ref_sigmoid);
        break;
    case 23:
        *name = "tanh";
        y = nb_tanh(g, a);
        if (CHECKED(true))
            check_unary(a, y, tanh);
        break;
    case 24:
        *name = "relu";
        y = nb_relu(g, a);
        if (CHECKED(true))
            check_unary(a, y, ref_relu);
        break;
    case 25:
        *name = "step";
        y = nb_step(g, a);
        if (CHECKED(true))
            check_unary(a, y, ref_step);
        break;
    case 26:
        *name = "softmax";
        y = (u8(r) & 1) ? nb_softmax(g, a) : nb_log_softmax(g, a);
        if (CHECKED(true))
            FZ_CHECK(same_shape(a, y));
        break;
    case 27:
        *name = "mse_loss";
        y = nb_mse_loss(g, a, b, red);
        break;
    case 28:
        *name = "bce";
        y = (u8(r) & 1) ? nb_bce_loss(g, a, b, red) : nb_bce_logits_loss(g, a, b, red);
        break;
    case 29:
        *name = "cross_entropy";
        y = (u8(r) & 1) ? nb_cross_entropy_loss(g, a, b, red)
                        : nb_cross_entropy_logits(g, a, b, red);
        break;
    case 30:
        *name = "sparse_cross_entropy_logits";
        y = nb_sparse_cross_entropy_logits(g, a, b, red);
        break;
    case 32: { // the other shape ops
        int perm[8], a1 = axis_arg(r);
        int64_t shape[8];
        for (int d = 0; d < 8; d++) {
            perm[d] = (int)(u8(r) % 9) - 2;
            shape[d] = (u8(r) % 4 == 0) ? -1 : dim_table[u8(r) % 16];
        }
        int nd = (int)(u8(r) % 8) - 1;
        switch (u8(r) % 6) {
        case 0:
            *name = "transpose_axes";
            y = nb_transpose_axes(g, a, axis, a1);
            if (CHECKED(true)) {
                int n = (int)ndims(a), q[NB_MAX_DIMS];
                swap_perm(n, axis < 0 ? axis + n : axis, a1 < 0 ? a1 + n : a1, q);
                check_permute(a, y, q);
            }
            break;
        case 1:
            *name = "permute";
            y = nb_permute(g, a, nd, (u8(r) % 16 == 0) ? NULL : perm);
            if (CHECKED(true)) {
                int q[NB_MAX_DIMS];
                for (int k = 0; k < nd; k++)
                    q[k] = perm[k] < 0 ? perm[k] + nd : perm[k];
                check_permute(a, y, q);
            }
            break;
        case 2:
            *name = "expand";
            y = nb_expand(g, a, nd, (u8(r) % 16 == 0) ? NULL : shape);
            break;
        case 3:
            *name = "squeeze";
            y = nb_squeeze(g, a, axis);
            if (CHECKED(true))
                check_same_data(a, y);
            break;
        case 4:
            *name = "unsqueeze";
            y = nb_unsqueeze(g, a, axis);
            if (CHECKED(true))
                check_same_data(a, y);
            break;
        default:
            *name = "flatten";
            y = nb_flatten(g, a, axis, a1);
            if (CHECKED(true))
                check_same_data(a, y);
        }
        break;
    }
    case 34: { // binary and indexing ops added later
        nb_tensor *c3 = pick(st, r);
        unsigned k = u8(r) % 14;
        static const char *const nm[14] = {
            "maximum", "minimum", "eq",          "ne",           "lt",        "le",     "gt",
            "ge",      "where",   "masked_fill", "index_select", "embedding", "gather", "gather"};
        *name = nm[k];
        if (k == 8)
            USE(c3);
        switch (k) {
        case 0:
        case 1:
            y = k == 0 ? nb_maximum(g, a, b) : nb_minimum(g, a, b);
            if (CHECKED(true))
                check_binary(a, b, y, 4 + (int)k);
            break;
        case 2:
            y = nb_eq(g, a, b);
            break;
        case 3:
            y = nb_ne(g, a, b);
            break;
        case 4:
            y = nb_lt(g, a, b);
            break;
        case 5:
            y = nb_le(g, a, b);
            break;
        case 6:
            y = nb_gt(g, a, b);
            break;
        case 7:
            y = nb_ge(g, a, b);
            break;
        case 8:
            y = nb_where(g, c3, a, b);
            break;
        case 9:
            y = nb_masked_fill(g, a, b, c);
            break;
        case 10:
            y = nb_index_select(g, a, axis, b);
            break;
        case 11:
            y = nb_embedding(g, a, b);
            break;
        default:
            y = nb_gather(g, a, axis, b);
        }
        break;
    }
    case 35: { // unary ops added later
        unsigned k = u8(r) % 22;
        int axes[8];
        for (int d = 0; d < 8; d++)
            axes[d] = axis_arg(r);
        int n = (int)(u8(r) % 8) - 1;
        const int *ax = (u8(r) % 16 == 0) ? NULL : axes;
        bool unb = u8(r) & 1;
        static const char *const nm[22] = {
            "clamp",    "abs",       "log1p",    "expm1",      "sin",       "cos",
            "square",   "rsqrt",     "min_axis", "sum_axes",   "mean_axes", "var_axes",
            "std_axes", "logsumexp", "max",      "min",        "argmax",    "argmin",
            "one_hot",  "softplus",  "softmax",  "log_softmax"};
        *name = nm[k];
        switch (k) {
        case 0:
            y = nb_clamp(g, a, c, value_table[u8(r) % 16]);
            break;
        case 1:
            y = nb_abs(g, a);
            if (CHECKED(true))
                check_unary(a, y, fabs);
            break;
        case 2:
            y = nb_log1p(g, a);
            break;
        case 3:
            y = nb_expm1(g, a);
            break;
        case 4:
            y = nb_sin(g, a);
            break;
        case 5:
            y = nb_cos(g, a);
            break;
        case 6:
            y = nb_square(g, a);
            break;
        case 7:
            y = nb_rsqrt(g, a);
            break;
        case 8:
            y = nb_min_axis(g, a, axis, keep);
            break;
        case 9:
            y = nb_sum_axes(g, a, n, ax, keep);
            break;
        case 10:
            y = nb_mean_axes(g, a, n, ax, keep);
            break;
        case 11:
            y = nb_var_axes(g, a, n, ax, unb, keep);
            break;
        case 12:
            y = nb_std_axes(g, a, n, ax, unb, keep);
            break;
        case 13:
            y = nb_logsumexp_axes(g, a, n, ax, keep);
            break;
        case 14:
            y = nb_max(g, a);
            break;
        case 15:
            y = nb_min(g, a);
            break;
        case 16:
            y = nb_argmax(g, a, axis, keep);
            break;
        case 17:
            y = nb_argmin(g, a, axis, keep);
            break;
        case 18:
            y = nb_one_hot_tensor(g, a, dim_table[u8(r) % 16], (nb_dtype)(u8(r) % 4));
            break;
        case 19:
            y = nb_softplus_bt(g, a, c, value_table[u8(r) % 16]);
            break;
        case 20:
            y = nb_softmax_axis(g, a, axis);
            break;
        default:
            y = nb_log_softmax_axis(g, a, axis);
        }
        break;
    }
    case 33:
        *name = "matmul";
        y = nb_matmul_t(g, a, b, u8(r) & 1, u8(r) & 2);
        break;
    default: {
        static const char *const nm[6] = {"leaky_relu", "elu",  "softplus",
                                          "silu",       "gelu", "gelu_tanh"};
        unsigned k = u8(r) % 6;
        *name = nm[k];
        y = k == 0   ? nb_leaky_relu(g, a, c)
            : k == 1 ? nb_elu(g, a, c)
            : k == 2 ? nb_softplus(g, a)
            : k == 3 ? nb_silu(g, a)
            : k == 4 ? nb_gelu(g, a)
                     : nb_gelu_tanh(g, a);
        if (CHECKED(true))
            FZ_CHECK(same_shape(a, y));
    }
    }
#undef CHECKED
#undef USE
    return y;
}

// The message starts with a registered op's name ("transpose: ..." for nb_transpose_axes).
static bool names_an_op(const char *msg) {
    for (int i = 0; i < nb_op_count(); i++) {
        size_t n = strlen(nb_op_name(i));
        if (!strncmp(msg, nb_op_name(i), n) && msg[n] == ':')
            return true;
    }
    return false;
}

static void step_op(state *st, reader *r) {
    nb_graph *g = st->g;
    bool healthy = nb_graph_status(g) == NB_OK;
    int64_t size0 = nb_graph_size(g);
    bool stale = false;
    const char *name = "?";
    int k = (int)(u8(r) % SLOTS);
    nb_tensor *y = run_op(st, r, &stale, &name);
    nb_status s = nb_graph_status(g);
    if (fz_verbose())
        fprintf(stderr, "%s -> %s %s: %s\n", name, y ? "ok" : "NULL", nb_status_str(s),
                nb_graph_error(g));
    FZ_CHECK((y != NULL) == (s == NB_OK));
    if (!healthy) {
        FZ_CHECK(!y); // sticky
        return;
    }
    // An earlier step's output must be refused, not read: NB_ERR_STATE, unless an argument
    // check made before the tape (a NULL, an axis range) failed first.
    if (stale)
        FZ_CHECK(!y && (s == NB_ERR_STATE || s == NB_ERR_NULL || s == NB_ERR_ARG));
    if (!y) {
        const char *msg = nb_graph_error(g);
        FZ_CHECK(msg[0] != '\0');
        FZ_CHECK(s == NB_ERR_NOMEM || strstr(msg, name) || names_an_op(msg));
        FZ_CHECK(nb_graph_size(g) == size0);
        return;
    }
    FZ_CHECK(nb_graph_size(g) == size0 + 1);
    FZ_CHECK(!nb_tensor_is_leaf(y));
    // Detecting a stale pointer needs its address never to hold a later step's tensor.
    for (int j = 0; j < SLOTS; j++)
        FZ_CHECK(st->s[j].t != y || st->s[j].leaf || st->s[j].step == st->step);
    st->s[k] = (slot){y, false, st->step};
}

static void step_backward(state *st, reader *r) {
    nb_graph *g = st->g;
    nb_tensor *y = pick(st, r);
    bool stale = is_stale(st, y);
    bool healthy = nb_graph_status(g) == NB_OK;
    bool op_out = y && !nb_tensor_is_leaf(y) && !stale;
    nb_status s = nb_backward(g, y);
    if (fz_verbose())
        fprintf(stderr, "backward -> %s: %s\n", nb_status_str(s), nb_graph_error(g));
    if (!healthy) {
        FZ_CHECK(s != NB_OK);
        return;
    }
    bool should = op_out && nb_tensor_numel(y) == 1 && nb_tensor_requires_grad(y);
    bool anomaly = s == NB_ERR_NONFINITE && nb_graph_check_finite(g); // a NaN grad, named
    if (s != NB_ERR_NOMEM && !anomaly)
        FZ_CHECK((s == NB_OK) == should);
    if (s != NB_OK)
        FZ_CHECK(nb_graph_error(g)[0] != '\0');
    else // d loss / d loss
        FZ_CHECK(nb_tensor_grad_get(y, 0) == 1.0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static bool installed;
    if (!installed) {
        fz_alloc_install();
        if (!fz_alloc_cap)
            fz_alloc_cap = (size_t)256 << 20; // a refused 2^31-element leaf, not an abort
        installed = true;
    }
    reader r = {data, size, 0};
    unsigned ctl = u8(&r);
    // Bit 0: fail one allocation (chosen by the input's hash) somewhere in the program.
    fz_alloc_arm((ctl & 1) ? 1 + fz_hash(data, size) % 64 : 0);
    state st;
    memset(&st, 0, sizeof st);
    st.g = nb_graph_create();
    if (!st.g) {
        fz_alloc_arm(0);
        return 0;
    }
    for (int n = 0; r.i < r.n && n < 64; n++) {
        unsigned cmd = u8(&r) % 16;
        if (cmd < 3) {
            make_leaf(&st, &r, (int)(u8(&r) % SLOTS));
        } else if (cmd < 11) {
            step_op(&st, &r);
        } else if (cmd == 11) {
            step_backward(&st, &r);
        } else if (cmd == 12) {
            if (fz_verbose())
                fprintf(stderr, "reset\n");
            nb_graph_reset(st.g); // op outputs in the slots are now stale
            st.step++;
            FZ_CHECK(nb_graph_status(st.g) == NB_OK && nb_graph_size(st.g) == 0);
        } else if (cmd == 13) {
            bool healthy = nb_graph_status(st.g) == NB_OK;
            nb_status s = nb_graph_replay(st.g);
            if (healthy && s != NB_ERR_NOMEM)
                FZ_CHECK((s == NB_OK) == (nb_graph_size(st.g) > 0) ||
                         (s == NB_ERR_NONFINITE && nb_graph_check_finite(st.g)));
        } else if (cmd == 14) {
            nb_graph_clear_error(st.g);
        } else {
            unsigned c = u8(&r);
            if (c & 1)
                nb_graph_set_grad_enabled(st.g, !nb_graph_grad_enabled(st.g));
            else
                nb_graph_set_check_finite(st.g, !nb_graph_check_finite(st.g));
        }
    }
    fz_alloc_arm(0);
    nb_graph_destroy(st.g);
    for (int i = 0; i < st.n_leaves; i++)
        nb_tensor_destroy(st.leaves[i]);
    return 0;
}
