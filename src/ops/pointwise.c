// Unary elementwise ops: y = f(x), same shape. Backward: dx += dy · f'(x), with f' allowed to
// use x, y and the op's scalar parameter p. One generator line per op keeps each function
// beside its derivative; <tgmath.h> makes exp(x) expf for float, so one expression serves
// both dtypes. Constants are cast to T so -Wdouble-promotion stays quiet.
// The transcendental ones (exp, log, sigmoid, tanh, elu, softplus, silu, gelu, gelu_tanh) run
// the vectorised kernels of ops/vmath.h instead of scalar libm (issue 17: 3-17 % of triad
// bandwidth before); their derivatives that need only x, y and arithmetic stay expressions.
#include <tgmath.h>

#include <string.h>

#include "ops/kernels.h"
#include "ops/ops_impl.h"
#include "ops/vmath.h"

typedef struct {
    double p;
} pw_params;

static nb_status pw_infer(nb_node *nd, nb_shape *out) {
    const nb_tensor *x = nd->in[0];
    out->ndim = x->ndim;
    for (int i = 0; i < x->ndim; i++)
        out->dim[i] = x->shape[i];
    return NB_OK;
}

static double pw_p(const nb_node *nd) {
    return nd->params ? ((const pw_params *)nd->params)->p : 0;
}

static void pw_forward(nb_node *nd, const nb_unary_kernels *k) {
    const nb_tensor *x = nd->in[0];
    k->fwd(x->dtype, x->data, nd->out->data, x->numel, pw_p(nd));
}

// dx += dy · f'; or dx = dy · f' when dx is due its first write (nb__grad_first).
static void pw_backward(nb_node *nd, const nb_unary_kernels *k) {
    nb_tensor *x = nd->in[0], *y = nd->out;
    if (NB_WANTS_GRAD(x))
        (nb__grad_first(nd, 0) ? k->bwd_set : k->bwd)(x->dtype, x->data, y->data, y->grad, x->grad,
                                                      x->numel, pw_p(nd));
}

// Stamps the typed kernels, forward/backward, descriptor and the recording helper pw_<name>.
// The derivative goes through a local so GCC computes it as a select and vectorises the
// loop (written inline, relu's `x > 0 ? 1 : 0` became a branch: 8x slower on 16M elements).
#define PW_KERNELS(name, T, sfx, FWD, DER)                                                         \
    static void name##_fwd_##sfx(const T *xs, T *ys, int64_t n, T p) {                             \
        (void)p;                                                                                   \
        NB_FOR(n, i, T x = xs[i]; ys[i] = (FWD););                                                 \
    }                                                                                              \
    static void name##_bwd_##sfx(const T *xs, const T *ys, const T *gy, T *gx, int64_t n, T p) {   \
        (void)p;                                                                                   \
        NB_FOR(n, i, T x = xs[i]; T y = ys[i]; (void)x; (void)y; T d = (DER);                      \
               gx[i] += gy[i] * d;);                                                               \
    }                                                                                              \
    PW_BWD_SET(name, T, sfx, DER)
// The store variant of a DER backward: gx = gy · f' (gx's first write of the sweep).
#define PW_BWD_SET(name, T, sfx, DER)                                                              \
    static void name##_bwdset_##sfx(const T *xs, const T *ys, const T *gy, T *gx, int64_t n,       \
                                    T p) {                                                         \
        (void)p;                                                                                   \
        NB_FOR(n, i, T x = xs[i]; T y = ys[i]; (void)x; (void)y; T d = (DER); gx[i] = gy[i] * d;); \
    }
// Typed kernels on vmath: forward y = nb_vm_<name>(x); backward either an expression DER as in
// PW_KERNELS (PW_VM_FWD) or nb_vm_<name>_bwd (PW_VM_BOTH).
#define PW_VM_FWD_ONLY(name, T, sfx)                                                               \
    static void name##_fwd_##sfx(const T *xs, T *ys, int64_t n, T p) {                             \
        (void)p;                                                                                   \
        VM_CHUNKS(n, nb_vm_##name##_##sfx(xs + lo, ys + lo, len));                                 \
    }
#define PW_VM_FWD(name, T, sfx, DER)                                                               \
    PW_VM_FWD_ONLY(name, T, sfx)                                                                   \
    static void name##_bwd_##sfx(const T *xs, const T *ys, const T *gy, T *gx, int64_t n, T p) {   \
        (void)p;                                                                                   \
        NB_FOR(n, i, T x = xs[i]; T y = ys[i]; (void)x; (void)y; T d = (DER);                      \
               gx[i] += gy[i] * d;);                                                               \
    }                                                                                              \
    PW_BWD_SET(name, T, sfx, DER)
#define PW_VM_BOTH(name, T, sfx)                                                                   \
    PW_VM_FWD_ONLY(name, T, sfx)                                                                   \
    static void name##_bwd_##sfx(const T *xs, const T *ys, const T *gy, T *gx, int64_t n, T p) {   \
        (void)p;                                                                                   \
        (void)ys;                                                                                  \
        VM_CHUNKS(n, nb_vm_##name##_bwd_##sfx(xs + lo, gy + lo, gx + lo, len));                    \
    }                                                                                              \
    /* one pass storing gx (not zeroing, then adding: a second write and read of gx) */            \
    static void name##_bwdset_##sfx(const T *xs, const T *ys, const T *gy, T *gx, int64_t n,       \
                                    T p) {                                                         \
        (void)p;                                                                                   \
        (void)ys;                                                                                  \
        VM_CHUNKS(n, nb_vm_##name##_bwdset_##sfx(xs + lo, gy + lo, gx + lo, len));                 \
    }

// NB_POINTWISE also gives the dtype-dispatching kernels of ops/kernels.h (name##_kernels),
// through which the node's forward and backward run.
#define NB_POINTWISE(name, FWD, DER)                                                               \
    PW_KERNELS(name, float, f32, FWD, DER)                                                         \
    PW_KERNELS(name, double, f64, FWD, DER)                                                        \
    PW_OP(name)
// Forward on vmath, backward the expression DER (of x, y, p).
#define NB_POINTWISE_VM(name, DER)                                                                 \
    PW_VM_FWD(name, float, f32, DER)                                                               \
    PW_VM_FWD(name, double, f64, DER)                                                              \
    PW_OP(name)
// Forward and backward on vmath.
#define NB_POINTWISE_VM2(name)                                                                     \
    PW_VM_BOTH(name, float, f32)                                                                   \
    PW_VM_BOTH(name, double, f64)                                                                  \
    PW_OP(name)
// The dtype dispatch, node functions, descriptor and recording helper of a kernel pair.
#define PW_OP(name)                                                                                \
    static void name##_kfwd(nb_dtype dt, const void *x, void *y, int64_t n, double p) {            \
        if (dt == NB_F32)                                                                          \
            name##_fwd_f32(x, y, n, (float)p);                                                     \
        else                                                                                       \
            name##_fwd_f64(x, y, n, p);                                                            \
    }                                                                                              \
    static void name##_kbwd(nb_dtype dt, const void *x, const void *y, const void *gy, void *gx,   \
                            int64_t n, double p) {                                                 \
        if (dt == NB_F32)                                                                          \
            name##_bwd_f32(x, y, gy, gx, n, (float)p);                                             \
        else                                                                                       \
            name##_bwd_f64(x, y, gy, gx, n, p);                                                    \
    }                                                                                              \
    static void name##_kbwdset(nb_dtype dt, const void *x, const void *y, const void *gy,          \
                               void *gx, int64_t n, double p) {                                    \
        if (dt == NB_F32)                                                                          \
            name##_bwdset_f32(x, y, gy, gx, n, (float)p);                                          \
        else                                                                                       \
            name##_bwdset_f64(x, y, gy, gx, n, p);                                                 \
    }                                                                                              \
    static const nb_unary_kernels name##_kernels = {#name, name##_kfwd, name##_kbwd,               \
                                                    name##_kbwdset};                               \
    static void name##_forward(nb_node *nd) {                                                      \
        pw_forward(nd, &name##_kernels);                                                           \
    }                                                                                              \
    static void name##_backward(nb_node *nd) {                                                     \
        pw_backward(nd, &name##_kernels);                                                          \
    }                                                                                              \
    const nb_op nb_op_##name = {#name,           1,          0,    pw_infer, name##_forward,       \
                                name##_backward, name##_vjp, NULL, true,     false};               \
    static nb_tensor *pw_##name(nb_graph *g, nb_tensor *x, double p) {                             \
        pw_params prm = {p};                                                                       \
        return nb__record(g, &nb_op_##name, &x, 1, &prm, sizeof prm);                              \
    }

// ---- vjps: dx = dy · f'(x), with f' written once more as public ops (x, y, p as above), so
// higher-order gradients can differentiate it. tests/test_higher_order.c checks, for every
// gradient-check case, that it agrees with the kernel to 1e-12 and passes gradgradcheck.
#define PW_VJP(name, DX)                                                                           \
    static nb_status name##_vjp(nb_node *nd, nb_tensor *gy, const bool *want, nb_tensor **gin) {   \
        nb_graph *g = nd->graph;                                                                   \
        nb_tensor *x = nd->in[0], *y = nd->out;                                                    \
        double p = pw_p(nd);                                                                       \
        (void)x;                                                                                   \
        (void)y;                                                                                   \
        (void)p;                                                                                   \
        (void)gy;                                                                                  \
        if (want[0])                                                                               \
            gin[0] = (DX);                                                                         \
        return nb_graph_status(g);                                                                 \
    }
#define ONE_MINUS(t) nb_add_scalar(g, nb_neg(g, t), 1.0)
#define SQRT_2_OVER_PI 0.7978845608028654
#define INV_SQRT_2 0.7071067811865476
#define INV_SQRT_2PI 0.3989422804014327
#define TWO_OVER_SQRT_PI 1.1283791670955126

// gelu_tanh' = ½(1 + tanh u) + ½ x (1 - tanh² u) u',  u = √(2/π)(x + 0.044715 x³)
static nb_tensor *gelu_tanh_der(nb_graph *g, nb_tensor *x) {
    nb_tensor *x2 = nb_mul(g, x, x);
    nb_tensor *u =
        nb_scale(g, nb_add(g, x, nb_scale(g, nb_mul(g, x2, x), 0.044715)), SQRT_2_OVER_PI);
    nb_tensor *th = nb_tanh(g, u);
    nb_tensor *du =
        nb_scale(g, nb_add_scalar(g, nb_scale(g, x2, 3 * 0.044715), 1.0), SQRT_2_OVER_PI);
    nb_tensor *a = nb_scale(g, nb_add_scalar(g, th, 1.0), 0.5);
    nb_tensor *b = nb_mul(g, nb_scale(g, x, 0.5), nb_mul(g, ONE_MINUS(nb_mul(g, th, th)), du));
    return nb_add(g, a, b);
}

// gelu' = Φ(x) + x φ(x) = ½(1 + erf(x / √2)) + x e^(-x²/2) / √(2π)
static nb_tensor *gelu_der(nb_graph *g, nb_tensor *x) {
    nb_tensor *cdf = nb_scale(g, nb_add_scalar(g, nb_erf(g, nb_scale(g, x, INV_SQRT_2)), 1.0), 0.5);
    nb_tensor *pdf = nb_scale(g, nb_exp(g, nb_scale(g, nb_mul(g, x, x), -0.5)), INV_SQRT_2PI);
    return nb_add(g, cdf, nb_mul(g, x, pdf));
}

// elu' = x > 0 ? 1 : y + alpha, as m + (y + alpha)(1 - m) with m = step(x) (exact either way).
static nb_tensor *elu_der(nb_graph *g, nb_tensor *x, nb_tensor *y, double alpha) {
    nb_tensor *m = nb_step(g, x);
    return nb_add(g, m, nb_mul(g, nb_add_scalar(g, y, alpha), ONE_MINUS(m)));
}

// silu' = s (1 + x (1 - s)), s = sigmoid x
static nb_tensor *silu_der(nb_graph *g, nb_tensor *x) {
    nb_tensor *s = nb_sigmoid(g, x);
    return nb_mul(g, s, nb_add_scalar(g, nb_mul(g, x, ONE_MINUS(s)), 1.0));
}

//     name        dx
PW_VJP(neg, nb_neg(g, gy))
PW_VJP(add_scalar, gy)
PW_VJP(scale, nb_scale(g, gy, p))
PW_VJP(exp, nb_mul(g, gy, y))
PW_VJP(log, nb_div(g, gy, x))
PW_VJP(sqrt, nb_div(g, nb_scale(g, gy, 0.5), y))
PW_VJP(pow_scalar, p == 0 ? NULL : nb_mul(g, gy, nb_scale(g, nb_pow_scalar(g, x, p - 1), p)))
PW_VJP(sigmoid, nb_mul(g, gy, nb_mul(g, y, ONE_MINUS(y))))
PW_VJP(tanh, nb_mul(g, gy, ONE_MINUS(nb_mul(g, y, y))))
PW_VJP(relu, nb_mul(g, gy, nb_step(g, x)))
PW_VJP(leaky_relu, nb_mul(g, gy, nb_add_scalar(g, nb_scale(g, nb_step(g, x), 1 - p), p)))
PW_VJP(elu, nb_mul(g, gy, elu_der(g, x, y, p)))
PW_VJP(softplus, nb_mul(g, gy, nb_sigmoid(g, x)))
PW_VJP(silu, nb_mul(g, gy, silu_der(g, x)))
PW_VJP(gelu, nb_mul(g, gy, gelu_der(g, x)))
PW_VJP(gelu_tanh, nb_mul(g, gy, gelu_tanh_der(g, x)))
PW_VJP(step, NULL) // zero everywhere (at the jump too, by convention)
PW_VJP(abs, nb_mul(g, gy, nb_sub(g, nb_step(g, x), nb_step(g, nb_neg(g, x))))) // sign, 0 at 0
PW_VJP(log1p, nb_div(g, gy, nb_add_scalar(g, x, 1.0)))
PW_VJP(expm1, nb_mul(g, gy, nb_add_scalar(g, y, 1.0)))
PW_VJP(sin, nb_mul(g, gy, nb_cos(g, x)))
PW_VJP(cos, nb_neg(g, nb_mul(g, gy, nb_sin(g, x))))
PW_VJP(square, nb_mul(g, gy, nb_scale(g, x, 2.0)))
PW_VJP(rsqrt, nb_mul(g, gy, nb_scale(g, nb_mul(g, nb_mul(g, y, y), y), -0.5)))
PW_VJP(erf, nb_mul(g, gy, nb_scale(g, nb_exp(g, nb_neg(g, nb_mul(g, x, x))), TWO_OVER_SQRT_PI)))

#define C(v) ((__typeof__(x))(v)) // a constant in the kernel's type
#define SIGMOID(v) (C(1) / (C(1) + exp(-(v))))

//           name        forward y(x)                          dy/dx (may use x, y, p)
NB_POINTWISE(neg, -x, C(-1))
NB_POINTWISE(add_scalar, x + p, C(1))
NB_POINTWISE(scale, p *x, p)
NB_POINTWISE_VM(exp, y)
NB_POINTWISE_VM(log, C(1) / x)
NB_POINTWISE(sqrt, sqrt(x), C(0.5) / y)
// d/dx x^0 is exactly 0, also at x = 0 where p x^(p-1) would be 0 * inf = NaN
NB_POINTWISE(pow_scalar, pow(x, p), p == 0 ? C(0) : p * pow(x, p - C(1)))
NB_POINTWISE_VM(sigmoid, y *(C(1) - y))
NB_POINTWISE_VM(tanh, C(1) - y * y)
// relu, derivative 0 at 0. Its loops are built for AVX-512, AVX2 and the baseline (NB_CLONES):
// the library's baseline build ran them 4 floats wide, ~0.7 us of net B's step (a 64 x 64
// forward and backward). Elementwise, so the ranges per thread do not change the bits; the
// multiply by d in {0, 1} is exact, so a contracted multiply-add in a clone gives the same bits.
#define RELU_SPANS(T, sfx)                                                                         \
    NB_CLONES static void relu_fwd_span_##sfx(const T *restrict x, T *restrict y, int64_t n) {     \
        for (int64_t i = 0; i < n; i++)                                                            \
            y[i] = x[i] > 0 ? x[i] : (T)0;                                                         \
    }                                                                                              \
    NB_CLONES static void relu_bwd_span_##sfx(const T *restrict x, const T *restrict gy,           \
                                              T *restrict gx, int64_t n, bool set) {               \
        if (set)                                                                                   \
            for (int64_t i = 0; i < n; i++) {                                                      \
                T d = x[i] > 0 ? (T)1 : (T)0;                                                      \
                gx[i] = gy[i] * d;                                                                 \
            }                                                                                      \
        else                                                                                       \
            for (int64_t i = 0; i < n; i++) {                                                      \
                T d = x[i] > 0 ? (T)1 : (T)0;                                                      \
                gx[i] += gy[i] * d;                                                                \
            }                                                                                      \
    }                                                                                              \
    static void relu_fwd_##sfx(const T *xs, T *ys, int64_t n, T p) {                               \
        (void)p;                                                                                   \
        NB_RANGES(n, NB_OMP_MIN, lo, hi, relu_fwd_span_##sfx(xs + lo, ys + lo, hi - lo));          \
    }                                                                                              \
    static void relu_bwd_##sfx(const T *xs, const T *ys, const T *gy, T *gx, int64_t n, T p) {     \
        (void)ys;                                                                                  \
        (void)p;                                                                                   \
        NB_RANGES(n, NB_OMP_MIN, lo, hi,                                                           \
                  relu_bwd_span_##sfx(xs + lo, gy + lo, gx + lo, hi - lo, false));                 \
    }                                                                                              \
    static void relu_bwdset_##sfx(const T *xs, const T *ys, const T *gy, T *gx, int64_t n, T p) {  \
        (void)ys;                                                                                  \
        (void)p;                                                                                   \
        NB_RANGES(n, NB_OMP_MIN, lo, hi,                                                           \
                  relu_bwd_span_##sfx(xs + lo, gy + lo, gx + lo, hi - lo, true));                  \
    }
RELU_SPANS(float, f32)
RELU_SPANS(double, f64)
PW_OP(relu)
NB_POINTWISE(leaky_relu, x > 0 ? x : p * x, x > 0 ? C(1) : p)
// elu = x for x > 0, p (e^x - 1) below (computed with expm1); its derivative there is y + p,
// written as m + (1 - m)(min(y, 0) + p) with m = [x > 0], exact in both cases (also at x = inf),
// because GCC keeps the select form of it scalar (measured 35-48 % of triad at 16 M).
#define PW_ELU_FWD(T, sfx)                                                                         \
    static void elu_fwd_##sfx(const T *xs, T *ys, int64_t n, T p) {                                \
        VM_CHUNKS(n, nb_vm_elu_##sfx(xs + lo, ys + lo, len, p));                                   \
    }                                                                                              \
    static void elu_bwd_##sfx(const T *xs, const T *ys, const T *gy, T *gx, int64_t n, T p) {      \
        NB_FOR(n, i, T m = (T)(xs[i] > 0); T y = ys[i] < 0 ? ys[i] : 0;                            \
               T d = m + (1 - m) * (y + p); gx[i] += gy[i] * d;);                                  \
    }                                                                                              \
    static void elu_bwdset_##sfx(const T *xs, const T *ys, const T *gy, T *gx, int64_t n, T p) {   \
        NB_FOR(n, i, T m = (T)(xs[i] > 0); T y = ys[i] < 0 ? ys[i] : 0;                            \
               T d = m + (1 - m) * (y + p); gx[i] = gy[i] * d;);                                   \
    }
PW_ELU_FWD(float, f32)
PW_ELU_FWD(double, f64)
PW_OP(elu)
// softplus = max(x, 0) + ln(1 + e^-|x|), its derivative σ(x); silu = x σ(x);
// gelu = x Φ(x), gelu' = Φ(x) + x φ(x); gelu_tanh = ½x(1 + tanh u), u = √(2/π)(x + 0.044715x³).
NB_POINTWISE_VM2(softplus)
NB_POINTWISE_VM2(silu)
NB_POINTWISE_VM2(gelu)
NB_POINTWISE_VM2(gelu_tanh)
NB_POINTWISE(abs, fabs(x), x > 0 ? C(1) : x < 0 ? C(-1) : C(0)) // abs'(0) = 0, as PyTorch
NB_POINTWISE(log1p, log1p(x), C(1) / (C(1) + x))                // exact near 0
NB_POINTWISE(expm1, expm1(x), y + C(1))
NB_POINTWISE(sin, sin(x), cos(x))
NB_POINTWISE(cos, cos(x), -sin(x))
NB_POINTWISE(square, x *x, C(2) * x)
NB_POINTWISE(rsqrt, C(1) / sqrt(x), C(-0.5) * y * y * y) // d x^(-1/2) = -½ x^(-3/2)
// Binary step: the derivative is 0 everywhere (undefined at the jump, taken as 0 there).
NB_POINTWISE(step, x > 0 ? C(1) : C(0), C(0))
NB_POINTWISE(erf, erf(x), C(TWO_OVER_SQRT_PI) * exp(-x * x))

nb_tensor *nb_neg(nb_graph *g, nb_tensor *x) {
    return pw_neg(g, x, 0);
}
nb_tensor *nb_add_scalar(nb_graph *g, nb_tensor *x, double c) {
    return pw_add_scalar(g, x, c);
}
nb_tensor *nb_scale(nb_graph *g, nb_tensor *x, double c) {
    return pw_scale(g, x, c);
}
nb_tensor *nb_exp(nb_graph *g, nb_tensor *x) {
    return pw_exp(g, x, 0);
}
nb_tensor *nb_log(nb_graph *g, nb_tensor *x) {
    return pw_log(g, x, 0);
}
nb_tensor *nb_sqrt(nb_graph *g, nb_tensor *x) {
    return pw_sqrt(g, x, 0);
}
nb_tensor *nb_pow_scalar(nb_graph *g, nb_tensor *x, double p) {
    return pw_pow_scalar(g, x, p);
}
nb_tensor *nb_sigmoid(nb_graph *g, nb_tensor *x) {
    return pw_sigmoid(g, x, 0);
}
nb_tensor *nb_tanh(nb_graph *g, nb_tensor *x) {
    return pw_tanh(g, x, 0);
}
nb_tensor *nb_relu(nb_graph *g, nb_tensor *x) {
    return pw_relu(g, x, 0);
}
nb_tensor *nb_leaky_relu(nb_graph *g, nb_tensor *x, double slope) {
    return pw_leaky_relu(g, x, slope);
}
nb_tensor *nb_elu(nb_graph *g, nb_tensor *x, double alpha) {
    return pw_elu(g, x, alpha);
}
nb_tensor *nb_softplus(nb_graph *g, nb_tensor *x) {
    return pw_softplus(g, x, 0);
}
nb_tensor *nb_silu(nb_graph *g, nb_tensor *x) {
    return pw_silu(g, x, 0);
}
nb_tensor *nb_gelu(nb_graph *g, nb_tensor *x) {
    return pw_gelu(g, x, 0);
}
nb_tensor *nb_gelu_tanh(nb_graph *g, nb_tensor *x) {
    return pw_gelu_tanh(g, x, 0);
}
nb_tensor *nb_step(nb_graph *g, nb_tensor *x) {
    return pw_step(g, x, 0);
}
nb_tensor *nb_abs(nb_graph *g, nb_tensor *x) {
    return pw_abs(g, x, 0);
}
nb_tensor *nb_log1p(nb_graph *g, nb_tensor *x) {
    return pw_log1p(g, x, 0);
}
nb_tensor *nb_expm1(nb_graph *g, nb_tensor *x) {
    return pw_expm1(g, x, 0);
}
nb_tensor *nb_sin(nb_graph *g, nb_tensor *x) {
    return pw_sin(g, x, 0);
}
nb_tensor *nb_cos(nb_graph *g, nb_tensor *x) {
    return pw_cos(g, x, 0);
}
nb_tensor *nb_square(nb_graph *g, nb_tensor *x) {
    return pw_square(g, x, 0);
}
nb_tensor *nb_rsqrt(nb_graph *g, nb_tensor *x) {
    return pw_rsqrt(g, x, 0);
}
nb_tensor *nb_erf(nb_graph *g, nb_tensor *x) {
    return pw_erf(g, x, 0);
}

// The graph-free kernels by op name (ops/kernels.h).
static const nb_unary_kernels *const kernel_table[] = {
    &neg_kernels,        &add_scalar_kernels, &scale_kernels,    &exp_kernels,   &log_kernels,
    &sqrt_kernels,       &pow_scalar_kernels, &sigmoid_kernels,  &tanh_kernels,  &relu_kernels,
    &leaky_relu_kernels, &elu_kernels,        &softplus_kernels, &silu_kernels,  &gelu_kernels,
    &gelu_tanh_kernels,  &step_kernels,       &abs_kernels,      &log1p_kernels, &expm1_kernels,
    &sin_kernels,        &cos_kernels,        &square_kernels,   &rsqrt_kernels, &erf_kernels,
};

const nb_unary_kernels *nb__unary_kernels(const char *name) {
    for (size_t i = 0; i < sizeof kernel_table / sizeof kernel_table[0]; i++)
        if (strcmp(kernel_table[i]->name, name) == 0)
            return kernel_table[i];
    return NULL;
}
