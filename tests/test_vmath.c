// Accuracy of the vectorised transcendental kernels (src/ops/vmath_*.c) over dense sweeps:
// every float32 and float64 kernel against libm's long double functions (64-bit mantissa, far
// more precise than either type). Each sweep runs a log-spaced pass over the bit patterns of
// all finite magnitudes, both signs (tiny, subnormal, huge inputs), plus a uniform pass over
// the range where the function is not flat. The error is counted in ulps of the exact result
// (subnormal results: the subnormal spacing); for derivatives, which cross zero, in ulps of
// their largest term. The bounds asserted here are the ones stated in vmath_f32.c and
// vmath_f64.c. Also: special values, and that a kernel gives the same bits for an element
// whether it lands in the vector body or the scalar remainder (so results cannot depend on
// how the threads split an array).
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nabla.h"
#include "ops/vmath.h"

typedef long double LD;
typedef void (*map32)(const float *, float *, int64_t);
typedef void (*map64)(const double *, double *, int64_t);
typedef void (*grad32)(const float *, const float *, float *, int64_t);
typedef void (*grad64)(const double *, const double *, double *, int64_t);

// ---- exact references (long double) ----
static LD r_exp(LD x) {
    return expl(x);
}
static LD r_log(LD x) {
    return logl(x);
}
static LD r_tanh(LD x) {
    return tanhl(x);
}
static LD r_sigmoid(LD x) {
    return 1 / (1 + expl(-x));
}
static LD r_erf(LD x) {
    return erfl(x);
}
static LD r_Phi(LD x) {
    return 0.5L * erfcl(-x / sqrtl(2));
}
static LD r_phi(LD x) {
    return expl(-0.5L * x * x) / sqrtl(2 * acosl(-1));
}
static LD r_gelu(LD x) {
    return x * r_Phi(x);
}
static LD gt_u(LD x) {
    return sqrtl(2 / acosl(-1)) * (x + 0.044715L * x * x * x);
}
static LD gt_du(LD x) {
    return sqrtl(2 / acosl(-1)) * (1 + 3 * 0.044715L * x * x);
}
static LD r_gelu_tanh(LD x) {
    return x * r_sigmoid(2 * gt_u(x));
}
static LD r_silu(LD x) {
    return x * r_sigmoid(x);
}
static LD r_softplus(LD x) {
    return fmaxl(x, 0) + log1pl(expl(-fabsl(x)));
}
static LD r_elu(LD x) {
    return x > 0 ? x : expm1l(x);
}
// derivatives and the size of their largest term
static LD r_dgelu(LD x) {
    return r_Phi(x) + x * r_phi(x);
}
static LD s_dgelu(LD x) {
    return fmaxl(r_Phi(x), fabsl(x * r_phi(x)));
}
static LD gt_term(LD x) {
    LD s = r_sigmoid(2 * gt_u(x));
    return 2 * x * s * (1 - s) * gt_du(x);
}
static LD r_dgelu_tanh(LD x) {
    return r_sigmoid(2 * gt_u(x)) + gt_term(x);
}
static LD s_dgelu_tanh(LD x) {
    return fmaxl(r_sigmoid(2 * gt_u(x)), fabsl(gt_term(x)));
}
static LD r_dsilu(LD x) {
    LD s = r_sigmoid(x);
    return s * (1 + x * (1 - s));
}
static LD s_dsilu(LD x) {
    LD s = r_sigmoid(x);
    return fmaxl(s, fabsl(x * s * (1 - s)));
}

// softplus with β = 0.7 (not a float: exercises the split product) and threshold 40 (where the
// jump PyTorch's threshold makes, ln(1 + e^-40)/β, is far below an ulp of x)
#define BT_BETA 0.7
#define BT_THR 40.0
static LD r_softplus_bt(LD x) {
    LD z = (LD)BT_BETA * x;
    return z > BT_THR ? x : (fmaxl(z, 0) + log1pl(expl(-fabsl(z)))) / (LD)BT_BETA;
}
static LD r_dsoftplus_bt(LD x) {
    LD z = (LD)BT_BETA * x;
    return z > BT_THR ? 1 : r_sigmoid(z);
}
static void spbt32(const float *x, float *y, int64_t n) {
    nb_vm_softplus_bt_f32(x, y, n, BT_BETA, BT_THR);
}
static void spbt64(const double *x, double *y, int64_t n) {
    nb_vm_softplus_bt_f64(x, y, n, BT_BETA, BT_THR);
}
static void spbt_bwd32(const float *x, const float *gy, float *gx, int64_t n) {
    nb_vm_softplus_bt_bwd_f32(x, gy, gx, n, BT_BETA, BT_THR);
}
static void spbt_bwd64(const double *x, const double *gy, double *gx, int64_t n) {
    nb_vm_softplus_bt_bwd_f64(x, gy, gx, n, BT_BETA, BT_THR);
}

// elu with alpha = 1 in the map shape
static void elu32(const float *x, float *y, int64_t n) {
    nb_vm_elu_f32(x, y, n, 1.0f);
}
static void elu64(const double *x, double *y, int64_t n) {
    nb_vm_elu_f64(x, y, n, 1.0);
}

typedef struct {
    const char *name;
    map32 f32;
    map64 f64;
    grad32 g32; // backward kernels: run with gy = 1 on gx = 0, giving f'(x)
    grad64 g64;
    LD (*ref)(LD);
    LD (*scale)(LD);         // NULL: ulps of the result itself
    int backward_error;      // also allow ulps of |x f'(x)| (see below)
    double bound32, bound64; // max ulp error stated in vmath_f32.c / vmath_f64.c
    double lo, hi;           // uniform pass
    int positive;            // domain x > 0 (log)
} vm_case;

#define FWD(n, r, b32, b64, lo, hi)                                                                \
    { #n, nb_vm_##n##_f32, nb_vm_##n##_f64, NULL, NULL, r, NULL, 0, b32, b64, lo, hi, 0 }
static const vm_case cases[] = {
    FWD(exp, r_exp, 1.5, 1.5, -110, 90),
    {"log", nb_vm_log_f32, nb_vm_log_f64, NULL, NULL, r_log, NULL, 0, 1, 1, 0, 4, 1},
    FWD(tanh, r_tanh, 2.5, 2.5, -10, 10),
    FWD(sigmoid, r_sigmoid, 3, 3, -30, 30),
    FWD(erf, r_erf, 2.5, 2.5, -6, 6),
    FWD(gelu, r_gelu, 7, 7, -40, 10),
    {"gelu_tanh", nb_vm_gelu_tanh_f32, nb_vm_gelu_tanh_f64, NULL, NULL, r_gelu_tanh, NULL, 1, 3.5,
     4, -20, 10, 0},
    FWD(silu, r_silu, 4, 4, -40, 20),
    FWD(softplus, r_softplus, 3, 2.5, -40, 40),
    {"elu", elu32, elu64, NULL, NULL, r_elu, NULL, 0, 1.5, 1.5, -40, 5, 0},
    {"softplus_bt", spbt32, spbt64, NULL, NULL, r_softplus_bt, NULL, 0, 3.5, 3.5, -60, 80, 0},
    {"softplus_bt_bwd", NULL, NULL, spbt_bwd32, spbt_bwd64, r_dsoftplus_bt, NULL, 0, 3, 3, -60, 80,
     0},
    {"gelu_bwd", NULL, NULL, nb_vm_gelu_bwd_f32, nb_vm_gelu_bwd_f64, r_dgelu, s_dgelu, 0, 6, 6, -40,
     10, 0},
    {"gelu_tanh_bwd", NULL, NULL, nb_vm_gelu_tanh_bwd_f32, nb_vm_gelu_tanh_bwd_f64, r_dgelu_tanh,
     s_dgelu_tanh, 1, 5.5, 6, -20, 10, 0},
    {"silu_bwd", NULL, NULL, nb_vm_silu_bwd_f32, nb_vm_silu_bwd_f64, r_dsilu, s_dsilu, 0, 5, 5, -40,
     20, 0},
    {"softplus_bwd", NULL, NULL, nb_vm_softplus_bwd_f32, nb_vm_softplus_bwd_f64, r_sigmoid, NULL, 0,
     3, 3, -40, 40, 0},
};
#define N_CASES (sizeof cases / sizeof cases[0])

// Results in the subnormal range lose relative precision by design (products of tiny
// factors); their absolute error is bounded in units of the smallest subnormal.
#define SUB_BOUND 8

// Points per sweep pass (x2 passes, x2 signs for the log-spaced one).
#ifndef N32 // -DN32=... for a denser offline run
#define N32 (1 << 17)
#endif
#ifndef N64
#define N64 (1 << 16)
#endif

// The spacing of a type with `bits` of mantissa, smallest normal 2^emin, at magnitude |v|.
static LD ulp_of(LD v, int bits, int emin) {
    int e;
    frexpl(fabsl(v), &e); // |v| = f 2^e, f in [0.5, 1)
    if (v == 0 || e - 1 < emin)
        e = emin + 1;
    return ldexpl(1, e - bits);
}

// |got - ref| in ulps at magnitude `size`. Matching infinities and NaNs are 0; anything else
// against a non-finite is infinite.
static double ulps(LD got, LD ref, LD size, int bits, int emin) {
    if (isnan(ref) || isnan(got))
        return isnan(ref) && isnan(got) ? 0 : INFINITY;
    if (isinf(ref) || isinf(got))
        return got == ref ? 0 : INFINITY;
    return (double)(fabsl(got - ref) / ulp_of(size, bits, emin));
}

// The sweep inputs: half log-spaced over bit patterns (both signs), half uniform on [lo, hi].
static void inputs64(const vm_case *c, double *x, int n) {
    int half = n / 2;
    uint64_t top = 0x7fefffffffffffffu, step = top / (uint64_t)(half / 2);
    for (int i = 0; i < half; i++) {
        uint64_t u = (uint64_t)(i / 2) * step;
        double v;
        memcpy(&v, &u, sizeof v);
        x[i] = (i % 2 && !c->positive) ? -v : v;
    }
    for (int i = half; i < n; i++)
        x[i] = c->lo + (c->hi - c->lo) * (i - half) / (n - half - 1);
}
static void inputs32(const vm_case *c, float *x, int n) {
    int half = n / 2;
    uint32_t top = 0x7f7fffffu, step = top / (uint32_t)(half / 2);
    for (int i = 0; i < half; i++) {
        uint32_t u = (uint32_t)(i / 2) * step;
        float v;
        memcpy(&v, &u, sizeof v);
        x[i] = (i % 2 && !c->positive) ? -v : v;
    }
    for (int i = half; i < n; i++)
        x[i] = (float)(c->lo + (c->hi - c->lo) * (i - half) / (n - half - 1));
}

static void run32(const vm_case *c, const float *x, float *y, int64_t n) {
    if (c->f32) {
        c->f32(x, y, n);
        return;
    }
    float *ones = malloc((size_t)n * sizeof *ones);
    assert_non_null(ones);
    for (int64_t i = 0; i < n; i++) {
        ones[i] = 1;
        y[i] = 0;
    }
    c->g32(x, ones, y, n);
    free(ones);
}
static void run64(const vm_case *c, const double *x, double *y, int64_t n) {
    if (c->f64) {
        c->f64(x, y, n);
        return;
    }
    double *ones = malloc((size_t)n * sizeof *ones);
    assert_non_null(ones);
    for (int64_t i = 0; i < n; i++) {
        ones[i] = 1;
        y[i] = 0;
    }
    c->g64(x, ones, y, n);
    free(ones);
}

// Error of one result in ulps. Backward-error cases (gelu_tanh, where f = x σ(2u(x)) has a
// relative condition number |x f'/f| of ~230 at x = -10) count ulps of max(|f|, |x f'(x)|):
// k such ulps mean the result is f at an input within about k ulps of x, all that evaluating
// u(x) in the working precision can give; f' is a central difference of the reference.
// Results below the smallest normal set *sub and count spacings of the subnormals.
static double err_of(const vm_case *c, LD got, LD x, int bits, int emin, bool *sub) {
    LD ref = c->ref(x);
    LD top = bits == 24 ? (LD)FLT_MAX : (LD)DBL_MAX; // beyond it the rounded result is inf
    if (fabsl(ref) > top)
        ref = copysignl(INFINITY, ref);
    LD size = c->scale ? c->scale(x) : ref;
    if (c->backward_error && isfinite(x) && x != 0) {
        LD h = fabsl(x) * 1e-7L;
        LD xd = fabsl(x * (c->ref(x + h) - c->ref(x - h)) / (2 * h));
        size = fmaxl(fabsl(size), isfinite(xd) ? xd : 0);
    }
    *sub = fabsl(size) < ldexpl(1, emin);
    return ulps(got, ref, size, bits, emin);
}

static void sweep_f32(void **state) {
    (void)state;
    float *x = malloc(N32 * sizeof *x), *y = malloc(N32 * sizeof *y);
    assert_true(x && y);
    int bad = 0;
    for (size_t k = 0; k < N_CASES; k++) {
        const vm_case *c = &cases[k];
        inputs32(c, x, N32);
        run32(c, x, y, N32);
        double worst = 0, worst_sub = 0;
        float at = 0;
        for (int i = 0; i < N32; i++) {
            bool sub;
            double e = err_of(c, y[i], x[i], 24, -126, &sub);
            if (sub) {
                worst_sub = e > worst_sub ? e : worst_sub;
                continue;
            }
            if (e > worst) {
                worst = e;
                at = x[i];
            }
        }
        printf("f32 %-14s max %.2f ulp at x = %.9g (bound %g); subnormal results %.1f\n", c->name,
               worst, (double)at, c->bound32, worst_sub);
        bad += !(worst <= c->bound32) + !(worst_sub <= SUB_BOUND);
    }
    assert_int_equal(bad, 0);
    free(x);
    free(y);
}

static void sweep_f64(void **state) {
    (void)state;
    double *x = malloc(N64 * sizeof *x), *y = malloc(N64 * sizeof *y);
    assert_true(x && y);
    int bad = 0;
    for (size_t k = 0; k < N_CASES; k++) {
        const vm_case *c = &cases[k];
        inputs64(c, x, N64);
        run64(c, x, y, N64);
        double worst = 0, worst_sub = 0, at = 0;
        for (int i = 0; i < N64; i++) {
            bool sub;
            double e = err_of(c, y[i], x[i], 53, -1022, &sub);
            if (sub) {
                worst_sub = e > worst_sub ? e : worst_sub;
                continue;
            }
            if (e > worst) {
                worst = e;
                at = x[i];
            }
        }
        printf("f64 %-14s max %.2f ulp at x = %.17g (bound %g); subnormal results %.1f\n", c->name,
               worst, at, c->bound64, worst_sub);
        bad += !(worst <= c->bound64) + !(worst_sub <= SUB_BOUND);
    }
    assert_int_equal(bad, 0);
    free(x);
    free(y);
}

// Limits and IEEE special values, float32 and float64 alike.
typedef struct {
    const char *name;
    double x, y;
} special;
static const special specials[] = {
    {"exp", INFINITY, INFINITY},
    {"exp", -INFINITY, 0},
    {"exp", 0, 1},
    {"log", 0, -INFINITY},
    {"log", INFINITY, INFINITY},
    {"log", 1, 0},
    {"log", -1, NAN},
    {"tanh", INFINITY, 1},
    {"tanh", -INFINITY, -1},
    {"tanh", -0.0, -0.0},
    {"sigmoid", INFINITY, 1},
    {"sigmoid", -INFINITY, 0},
    {"sigmoid", 0, 0.5},
    {"erf", INFINITY, 1},
    {"erf", -INFINITY, -1},
    {"erf", -0.0, -0.0},
    {"gelu", INFINITY, INFINITY},
    {"gelu", 0, 0},
    {"gelu_tanh", INFINITY, INFINITY},
    {"silu", INFINITY, INFINITY},
    {"softplus", INFINITY, INFINITY},
    {"softplus", -INFINITY, 0},
    {"elu", -INFINITY, -1},
    {"elu", INFINITY, INFINITY},
    {"gelu_bwd", INFINITY, 1},
    {"gelu_bwd", -INFINITY, 0},
    {"gelu_tanh_bwd", INFINITY, 1},
    {"gelu_tanh_bwd", -INFINITY, 0},
    {"silu_bwd", INFINITY, 1},
    {"silu_bwd", -INFINITY, 0},
    {"softplus_bwd", INFINITY, 1},
    {"softplus_bwd", -INFINITY, 0},
};

static const vm_case *find_case(const char *name) {
    for (size_t k = 0; k < N_CASES; k++)
        if (!strcmp(cases[k].name, name))
            return &cases[k];
    fail_msg("no case %s", name);
    return NULL;
}

static void same(double got, double want, const char *what, const char *name, double x) {
    bool ok = isnan(want) ? isnan(got) : got == want && signbit(got) == signbit(want);
    if (!ok)
        fail_msg("%s %s(%g) = %g, want %g", what, name, x, got, want);
}

static void special_values(void **state) {
    (void)state;
    for (size_t k = 0; k < sizeof specials / sizeof specials[0]; k++) {
        const special *sp = &specials[k];
        const vm_case *c = find_case(sp->name);
        float x32 = (float)sp->x, y32;
        double y64;
        run32(c, &x32, &y32, 1);
        run64(c, &sp->x, &y64, 1);
        same((double)y32, sp->y, "f32", sp->name, sp->x);
        same(y64, sp->y, "f64", sp->name, sp->x);
    }
    for (size_t k = 0; k < N_CASES; k++) { // NaN in, NaN out, for every kernel
        float x32 = NAN, y32;
        double x64 = NAN, y64;
        run32(&cases[k], &x32, &y32, 1);
        run64(&cases[k], &x64, &y64, 1);
        same((double)y32, NAN, "f32", cases[k].name, NAN);
        same(y64, NAN, "f64", cases[k].name, NAN);
    }
}

// Whole array in one call (vector body) against chunks of 1, 3 and 7 elements at every offset
// (remainder code, unaligned starts): the bits must match, as they must for any thread split.
#define NB_BITS 4099
static void vector_equals_scalar(void **state) {
    (void)state;
    float x32[NB_BITS], a32[NB_BITS], b32[NB_BITS];
    double x64[NB_BITS], a64[NB_BITS], b64[NB_BITS];
    for (size_t k = 0; k < N_CASES; k++) {
        const vm_case *c = &cases[k];
        for (int i = 0; i < NB_BITS; i++) { // mixed magnitudes and signs, including the tails
            double v = (c->lo + (c->hi - c->lo) * ((i * 37) % NB_BITS) / NB_BITS) *
                       (i % 5 == 0 ? 1e-3 : 1);
            x64[i] = c->positive ? fabs(v) + 1e-300 : v;
            x32[i] = c->positive ? fabsf((float)v) + 1e-30f : (float)v;
        }
        run32(c, x32, a32, NB_BITS);
        run64(c, x64, a64, NB_BITS);
        for (int chunk = 1; chunk <= 7; chunk += 2) {
            for (int i = 0; i < NB_BITS; i += chunk) {
                int m = NB_BITS - i < chunk ? NB_BITS - i : chunk;
                run32(c, x32 + i, b32 + i, m);
                run64(c, x64 + i, b64 + i, m);
            }
            if (memcmp(a32, b32, sizeof a32) || memcmp(a64, b64, sizeof a64))
                fail_msg("%s: chunks of %d differ from one call", c->name, chunk);
        }
    }
}

// Through the ops: forward and backward of every vmath-backed op on an array above the OpenMP
// threshold (and not a multiple of the block size), with 1 and 2 threads: identical bits.
typedef nb_tensor *(*unary_op)(nb_graph *, nb_tensor *);
static nb_tensor *elu_op(nb_graph *g, nb_tensor *x) {
    return nb_elu(g, x, 0.7);
}
static nb_tensor *log_op(nb_graph *g, nb_tensor *x) {
    return nb_log(g, nb_add_scalar(g, nb_mul(g, x, x), 0.01));
}
static void run_op(unary_op f, nb_dtype dt, int threads, void *y, void *gx, size_t bytes) {
    enum { N = 100003 };
    nb_set_num_threads(threads);
    nb_tensor *x = nb_tensor_create(dt, 1, (int64_t[]){N});
    assert_non_null(x);
    for (int64_t i = 0; i < N; i++)
        nb_tensor_set(x, i, 12.0 * sin(0.37 * (double)i) * (i % 3 ? 1 : 0.01));
    assert_int_equal(nb_tensor_set_requires_grad(x, true), NB_OK);
    nb_graph *g = nb_graph_create();
    nb_tensor *out = f(g, x);
    assert_non_null(out);
    nb_tensor *gy = nb_tensor_create(dt, 1, (int64_t[]){N});
    for (int64_t i = 0; i < N; i++)
        nb_tensor_set(gy, i, cos(0.11 * (double)i));
    assert_int_equal(nb_backward_with(g, out, gy), NB_OK);
    assert_int_equal(nb_tensor_numel(out), N);
    memcpy(y, nb_tensor_data(out), bytes);
    memcpy(gx, nb_tensor_grad(x), bytes);
    nb_graph_destroy(g);
    nb_tensor_destroy(x);
    nb_tensor_destroy(gy);
}
static void ops_thread_independent(void **state) {
    (void)state;
    const unary_op ops[] = {nb_exp,      log_op,  nb_sigmoid, nb_tanh,     elu_op,
                            nb_softplus, nb_silu, nb_gelu,    nb_gelu_tanh};
    enum { N = 100003 };
    static double y1[N], y2[N], g1[N], g2[N];
    for (int dt = 0; dt < 2; dt++) {
        nb_dtype t = dt ? NB_F64 : NB_F32;
        size_t bytes = (size_t)N * (dt ? sizeof(double) : sizeof(float));
        for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++) {
            run_op(ops[k], t, 1, y1, g1, bytes);
            run_op(ops[k], t, 2, y2, g2, bytes);
            if (memcmp(y1, y2, bytes) || memcmp(g1, g2, bytes))
                fail_msg("op %zu (%s): 1 and 2 threads differ", k, dt ? "f64" : "f32");
        }
    }
    nb_set_num_threads(0);
}

// The store backward kernels (gx = gy f', a gradient's first write) against zeroing and then
// accumulating: the same value for every element (a -0 may become +0 when added to 0), whatever
// gx held before.
typedef struct {
    const char *name;
    grad32 add32, set32;
    grad64 add64, set64;
} store_case;
#define STORE_CASE(n)                                                                              \
    { #n, nb_vm_##n##_bwd_f32, nb_vm_##n##_bwdset_f32, nb_vm_##n##_bwd_f64, nb_vm_##n##_bwdset_f64 }
static bool same_value(double a, double b) {
    return a == b || (isnan(a) && isnan(b));
}
static void store_equals_accumulate(void **state) {
    (void)state;
    static const store_case sc[] = {STORE_CASE(gelu), STORE_CASE(gelu_tanh), STORE_CASE(silu),
                                    STORE_CASE(softplus)};
    enum { N = 4099 };
    static float x32[N], gy32[N], a32[N], s32[N];
    static double x64[N], gy64[N], a64[N], s64[N];
    for (int i = 0; i < N; i++) { // both tails, tiny values, specials
        double v = -60.0 + 90.0 * ((i * 37) % N) / N;
        v = i % 7 == 0 ? v * 1e-6 : i % 11 == 0 ? v * 1e6 : v;
        v = i == 1   ? (double)INFINITY
            : i == 2 ? -(double)INFINITY
            : i == 3 ? (double)NAN
            : i == 4 ? -0.0
                     : v;
        x64[i] = v;
        x32[i] = (float)v;
        gy64[i] = cos(0.3 * i);
        gy32[i] = (float)gy64[i];
    }
    for (size_t k = 0; k < sizeof sc / sizeof sc[0]; k++) {
        for (int i = 0; i < N; i++) {
            a32[i] = 0;
            a64[i] = 0;
            s32[i] = 7; // stale contents the store must replace
            s64[i] = 7;
        }
        sc[k].add32(x32, gy32, a32, N);
        sc[k].set32(x32, gy32, s32, N);
        sc[k].add64(x64, gy64, a64, N);
        sc[k].set64(x64, gy64, s64, N);
        for (int i = 0; i < N; i++)
            if (!same_value(a32[i], s32[i]) || !same_value(a64[i], s64[i]))
                fail_msg("%s: store %g / %g, zero + add %g / %g at x = %g", sc[k].name,
                         (double)s32[i], s64[i], (double)a32[i], a64[i], x64[i]);
    }
}

// exp_shift_rows against exp_shift_sum on each row: for every n up to 40 (whole vectors and
// tails of every length on every ISA) and every limit 0..n, the same bits in the first lim
// entries and in the sum, and exact zeros after them (the output starts as garbage).
static void exp_shift_rows_equals_rows(void **state) {
    (void)state;
    enum { NMAX = 40 };
    float x32[NMAX + 1][NMAX], m32[NMAX + 1], w32[NMAX];
    double x64[NMAX + 1][NMAX], m64[NMAX + 1], w64[NMAX];
    double s32[NMAX + 1], s64[NMAX + 1];
    int64_t lim[NMAX + 1];
    for (int64_t n = 1; n <= NMAX; n++) {
        for (int64_t r = 0; r <= n; r++) { // row r sees r keys
            lim[r] = r;
            m64[r] = 0.25 * (double)r;
            m32[r] = (float)m64[r];
            for (int64_t j = 0; j < n; j++) {
                x64[r][j] = sin(0.7 * (double)(r * NMAX + j)) * 9.0;
                x32[r][j] = (float)x64[r][j];
            }
        }
        // the block: rows n apart, the output filled with NaN
        float px32[(NMAX + 1) * NMAX], py32[(NMAX + 1) * NMAX];
        double px64[(NMAX + 1) * NMAX], py64[(NMAX + 1) * NMAX];
        for (int64_t r = 0; r <= n; r++)
            for (int64_t j = 0; j < n; j++) {
                px32[r * n + j] = x32[r][j], py32[r * n + j] = NAN;
                px64[r * n + j] = x64[r][j], py64[r * n + j] = NAN;
            }
        nb_vm_exp_shift_rows_f32(px32, m32, lim, py32, s32, n + 1, n);
        nb_vm_exp_shift_rows_f64(px64, m64, lim, py64, s64, n + 1, n);
        for (int64_t r = 0; r <= n; r++) {
            double w_s32 = nb_vm_exp_shift_sum_f32(x32[r], m32[r], w32, lim[r]);
            double w_s64 = nb_vm_exp_shift_sum_f64(x64[r], m64[r], w64, lim[r]);
            if (memcmp(&w_s32, &s32[r], sizeof w_s32) || memcmp(&w_s64, &s64[r], sizeof w_s64))
                fail_msg("n %lld, lim %lld: sums %.17g %.17g, exp_shift_sum %.17g %.17g",
                         (long long)n, (long long)r, s32[r], s64[r], w_s32, w_s64);
            for (int64_t j = 0; j < n; j++) {
                float e32 = j < r ? w32[j] : 0.0f;
                double e64 = j < r ? w64[j] : 0.0;
                if (memcmp(&e32, &py32[r * n + j], sizeof e32) ||
                    memcmp(&e64, &py64[r * n + j], sizeof e64))
                    fail_msg("n %lld, lim %lld, entry %lld: %.9g %.17g, want %.9g %.17g",
                             (long long)n, (long long)r, (long long)j, (double)py32[r * n + j],
                             py64[r * n + j], (double)e32, e64);
            }
        }
    }
}

int main(void) {
    printf("vmath kernels: %s build\n", nb_vm_isa());
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sweep_f32),
        cmocka_unit_test(sweep_f64),
        cmocka_unit_test(special_values),
        cmocka_unit_test(vector_equals_scalar),
        cmocka_unit_test(ops_thread_independent),
        cmocka_unit_test(store_equals_accumulate),
        cmocka_unit_test(exp_shift_rows_equals_rows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
