// Anomaly mode: the opt-in NaN/Inf checks on op outputs (forward, replay) and on the grads each
// backward step writes. The report names the user's line from the call site nb__record copied
// into the node (site.c).
#include <math.h>
#include <string.h>

#include "graph/graph_priv.h"

// ---- mode -------------------------------------------------------------------------------------

void nb_graph_set_check_finite(nb_graph *g, bool on) {
    if (g)
        g->check_finite = on;
}
bool nb_graph_check_finite(const nb_graph *g) {
    return g && g->check_finite;
}

// ---- scans ------------------------------------------------------------------------------------

// Index of the first NaN/Inf among x[0..n), or -1. Inf and NaN are the values whose exponent
// bits are all ones; adding the exponent's lowest bit to the masked exponent then carries into
// the (masked-off) sign bit. That test is branch-free adds and ors, so the compiler vectorizes
// it over a block (even for 64-bit words on baseline SSE2); only a block that has a hit is
// searched element by element. Blocks keep the early exit cheap.
// NaN alone: the magnitude bits exceed the exponent mask; adding (sign bit - mask - 1) to the
// magnitude carries into the sign bit exactly then (the same vectorisable form).
#define SCAN_BLOCK 4096
#define FIRST_BAD(name, T, U, MASK, ADD, BAD)                                                      \
    static int64_t name(const T *x, int64_t n) {                                                   \
        for (int64_t i0 = 0; i0 < n; i0 += SCAN_BLOCK) {                                           \
            int64_t i1 = n - i0 < SCAN_BLOCK ? n : i0 + SCAN_BLOCK;                                \
            U carry = 0;                                                                           \
            for (int64_t i = i0; i < i1; i++) {                                                    \
                U u;                                                                               \
                memcpy(&u, &x[i], sizeof u);                                                       \
                carry |= (u & (MASK)) + (ADD);                                                     \
            }                                                                                      \
            if (carry >> (sizeof(U) * 8 - 1))                                                      \
                for (int64_t i = i0; i < i1; i++)                                                  \
                    if (BAD(x[i]))                                                                 \
                        return i;                                                                  \
        }                                                                                          \
        return -1;                                                                                 \
    }
#define NONFINITE(v) (!isfinite(v))
FIRST_BAD(first_nonfinite_float, float, uint32_t, UINT32_C(0x7f800000), UINT32_C(0x00800000),
          NONFINITE)
FIRST_BAD(first_nonfinite_double, double, uint64_t, UINT64_C(0x7ff0000000000000),
          UINT64_C(0x0010000000000000), NONFINITE)
FIRST_BAD(first_nan_float, float, uint32_t, UINT32_C(0x7fffffff), UINT32_C(0x007fffff), isnan)
FIRST_BAD(first_nan_double, double, uint64_t, UINT64_C(0x7fffffffffffffff),
          UINT64_C(0x000fffffffffffff), isnan)

// First bad element of a float buffer shaped like t, or -1; its value into *value. Bad is NaN
// or ±inf, or NaN alone when nan_only (op outputs: an inf there can be deliberate, such as a
// -inf attention mask before softmax; a gradient never should be).
static int64_t scan(const nb_tensor *t, const void *buf, bool nan_only, double *value) {
    int64_t i = -1;
    if (t->dtype == NB_F32) {
        i = nan_only ? first_nan_float(buf, t->numel) : first_nonfinite_float(buf, t->numel);
        *value = i >= 0 ? (double)((const float *)buf)[i] : 0;
    } else if (t->dtype == NB_F64) {
        i = nan_only ? first_nan_double(buf, t->numel) : first_nonfinite_double(buf, t->numel);
        *value = i >= 0 ? ((const double *)buf)[i] : 0;
    }
    return i;
}

// Record the report: "<op>: non-finite value in <pass>: <what> (2, 3) float32 has nan at
// element 4 [1, 1]; op called at model.c:57" (nb__node_fail adds the call site when known).
static nb_status report(nb_node *nd, const char *pass, const char *what, const nb_tensor *t,
                        int64_t index, double value) {
    char idx[NB_MAX_DIMS * 22 + 1] = "";
    size_t k = 0;
    int64_t rest = index;
    for (int d = 0; d < t->ndim; d++) { // flat index -> [i0, i1, ...], row-major
        int64_t stride = 1;
        for (int e = d + 1; e < t->ndim; e++)
            stride *= t->shape[e];
        int w =
            snprintf(idx + k, sizeof idx - k, "%s%lld", d ? ", " : "", (long long)(rest / stride));
        if (w > 0 && (size_t)w < sizeof idx - k)
            k += (size_t)w;
        rest %= stride;
    }
    return nb__node_fail(
        nd, NB_ERR_NONFINITE, "non-finite value in %s: %s %s %s has %g at element %lld [%s]%s",
        pass, what, NB_SHAPE_STR(t), nb_dtype_name(t->dtype), value, (long long)index, idx,
        nd->file ? "" : "; call site unknown (op called without the nabla.h op macros)");
}

nb_status nb__check_output(nb_node *nd) {
    double v;
    int64_t i = scan(nd->out, nd->out->data, true, &v);
    return i < 0 ? NB_OK : report(nd, "forward", "output", nd->out, i, v);
}

nb_status nb__check_input_grads(nb_node *nd) {
    for (int k = 0; k < nd->n_in; k++) {
        const nb_tensor *t = nd->in[k];
        if (!t->requires_grad || !t->grad)
            continue;
        bool seen = false; // x used twice by one op (x * x): scan its grad once
        for (int j = 0; j < k && !seen; j++)
            seen = nd->in[j] == t;
        double v;
        int64_t i = seen ? -1 : scan(t, t->grad, false, &v);
        if (i >= 0) {
            char what[32];
            snprintf(what, sizeof what, "grad of input %d", k);
            return report(nd, "backward", what, t, i, v);
        }
    }
    return NB_OK;
}
