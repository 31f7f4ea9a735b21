// float64 vectorised transcendentals: the algorithms of vmath_f32.c with double-precision
// constants, longer polynomials and 64-bit exponent arithmetic (see vmath.h for the design).
// Max error in ulps of the exact result: the bound tests/test_vmath.c asserts, then in
// brackets the max over two sweeps of 2^21 and 2^22 points; see vmath_f32.c for the measures:
//   exp 1.5 [0.96]   log 1 [0.82]   tanh 2.5 [2.41]   sigmoid 3 [2.74]   erf 2.5 [2.01]
//   gelu 7 [6.21]   silu 4 [3.35]   softplus 2.5 [1.83]   elu 1.5 [1.08]   gelu_tanh 4 [3.69]
//   backward: gelu 6 [5.22]   gelu_tanh 6 [5.77]   silu 5 [4.79]   softplus (= σ) 3 [2.62]
//   softplus with β = 0.7, threshold 40: 3.5 [2.83], its backward 3 [2.16] (2^16 points)
// Subnormal results: within 8 subnormal spacings (measured 2.0).
#include <math.h>

#include "ops/vmath_impl.h"

// The element type and what the type-generic parts (vmath_sigmoid.inc, vmath_exp_kernels.inc)
// need to know of it: suffix, elements per AVX-512 vector, kernel definer, |x|.
#define T double
#define SFX f64
#define W 8
#define KERNEL NB_VM_CLONED
#define FABS fabs

typedef union {
    double f;
    int64_t i;
    uint64_t u;
} fbits;
NB_VM_INLINE uint64_t f2u(double f) {
    fbits b;
    b.f = f;
    return b.u;
}
NB_VM_INLINE double u2f(uint64_t u) {
    fbits b;
    b.u = u;
    return b.f;
}
// (double)k and k/2 for |k| < 2^50 through the bits of k + SHIFT: SSE2 and AVX2 have neither
// an int64 -> double conversion nor a 64-bit arithmetic shift, so these keep the loops vector.

#define SHIFT 0x1.8p52 // adding it rounds |v| < 2^51 to an integer held in the low bits
#define LOG2E 1.4426950408889634
#define LN2_HI 0x1.62e42fefa0000p-1   // ln 2 to 37 bits: k LN2_HI is exact for |k| < 2^16
#define LN2_LO 1.6465949582897082e-12 // ln 2 - LN2_HI
#define INV_SQRT2 0.7071067811865476
#define INV_SQRT_2PI 0.3989422804014327
#define SQRT_2_OVER_PI 0.7978845608028654

NB_VM_INLINE double i2d(int64_t k) {
    return u2f(f2u(SHIFT) + (uint64_t)k) - SHIFT;
}

NB_VM_INLINE double clampd(double v, double lo, double hi) {
    v = v < lo ? lo : v; // comparisons with NaN are false: NaN passes through
    return v > hi ? hi : v;
}

// 2^k for -1022 <= k <= 1023, built from the exponent bits (unsigned shift: no UB for any k).
NB_VM_INLINE double pow2i(int64_t k) {
    return u2f((uint64_t)(k + 1023) << 52);
}

// e^r - 1 for |r| <= ln2/2: Taylor to r^13 (truncation < 2e-17 relative); r stays the exact
// leading term so tiny r keeps full relative accuracy.
NB_VM_INLINE double em1_poly(double r) {
    double p = 1.0 / 6227020800;
    p = p * r + 1.0 / 479001600;
    p = p * r + 1.0 / 39916800;
    p = p * r + 1.0 / 3628800;
    p = p * r + 1.0 / 362880;
    p = p * r + 1.0 / 40320;
    p = p * r + 1.0 / 5040;
    p = p * r + 1.0 / 720;
    p = p * r + 1.0 / 120;
    p = p * r + 1.0 / 24;
    p = p * r + 1.0 / 6;
    p = p * r + 0.5;
    return r + r * r * p;
}

// x = k ln2 + r (Cody-Waite, two-part ln 2). Needs |x| < 2^50; returns r, sets *k.
NB_VM_INLINE double reduce(double x, int64_t *k) {
    double t = x * LOG2E + SHIFT;
    double n = t - SHIFT;
    *k = (int64_t)(f2u(t) - f2u(SHIFT));
    return (x - n * LN2_HI) - n * LN2_LO;
}

// e^x. The scale 2^k is applied as two factors so results down in the subnormals (k = -1075)
// and up to overflow (k = 1025 gives inf) come out right with a single final rounding.
NB_VM_INLINE double vexp(double x) {
    int64_t k;
    double r = reduce(clampd(x, -746.0, 710.0), &k);
    int64_t k1 = (int64_t)(f2u(0.5 * i2d(k) + SHIFT) - f2u(SHIFT)); // k/2 rounded, exact
    return (1.0 + em1_poly(r)) * pow2i(k1) * pow2i(k - k1);
}

// e^x 2^SC for x <= 0, SC = 128: normal down to x = -797, 0 below -800 (see the sigmoid
// family below).
#define SC 128
#define UNSCALE 0x1p-128
NB_VM_INLINE double vexp_s(double x) {
    int64_t k;
    double r = reduce(clampd(x, -800.0, 0.0), &k);
    int64_t k1 = (int64_t)(f2u(0.5 * i2d(k) + SHIFT) - f2u(SHIFT));
    double e = (1.0 + em1_poly(r)) * pow2i(k1) * pow2i(k - k1 + SC);
    return x < -800.0 ? 0.0 : e; // e^-800 x (any double x) is below the subnormals
}

// e^x - 1 for x in [-40, 80] (clamped): 2^k (e^r - 1) + (2^k - 1), exact at k = 0.
NB_VM_INLINE double vexpm1(double x) {
    int64_t k;
    double r = reduce(clampd(x, -40.0, 80.0), &k);
    double s = pow2i(k);
    return s * em1_poly(r) + (s - 1.0);
}

// ln x: x = 2^k m with m in [√½, √2), f = m - 1, s = f/(2+f), ln(1+f) = 2 atanh s written as
// f - (f²/2 - s (f²/2 + R)) so that f, exact, leads; R = 2s²/3 + 2s⁴/5 + ... (Taylor, 11 terms).
NB_VM_INLINE double vlog(double x) {
    int sub = x < 0x1p-1022; // subnormal (or <= 0): scale into the normals first
    double xs = sub ? x * 0x1p54 : x;
    // moves m >= √2 into the next binade
    uint64_t ix = f2u(xs) + (0x3ff0000000000000u - 0x3fe6a09e667f3bcdu);
    int64_t k = (int64_t)(ix >> 52) - 1023 - (sub ? 54 : 0);
    double f = u2f((ix & 0x000fffffffffffffu) + 0x3fe6a09e667f3bcdu) - 1.0;
    double s = f / (2.0 + f);
    double z = s * s;
    double R = 2.0 / 23;
    R = R * z + 2.0 / 21;
    R = R * z + 2.0 / 19;
    R = R * z + 2.0 / 17;
    R = R * z + 2.0 / 15;
    R = R * z + 2.0 / 13;
    R = R * z + 2.0 / 11;
    R = R * z + 2.0 / 9;
    R = R * z + 2.0 / 7;
    R = R * z + 2.0 / 5;
    R = R * z + 2.0 / 3;
    R = R * z;
    double hfsq = 0.5 * f * f;
    double kf = i2d(k);
    double y = kf * LN2_HI - ((hfsq - (s * (hfsq + R) + kf * LN2_LO)) - f);
    y = x < 0.0 ? (double)NAN : y;
    y = x == 0.0 ? -(double)INFINITY : y;
    y = x == (double)INFINITY ? x : y;
    return x != x ? x : y;
}

// ln(1 + e) for e in [0, 1]: u = 1 + e rounds; (e - (u - 1)) / u corrects for that rounding.
NB_VM_INLINE double log1p01(double e) {
    double u = 1.0 + e;
    return vlog(u) + (e - (u - 1.0)) / u;
}

NB_VM_INLINE double vtanh(double x) {
    double a = clampd(fabs(x), 0.0, 20.0); // tanh(20) rounds to 1
    double e = vexpm1(2.0 * a);
    return copysign(e / (e + 2.0), x);
}

#include "ops/vmath_sigmoid.inc" // sig_parts, vsigmoid, times_sigmoid, sigmoid_grad_form

// erf(x)/x = P(x²) on |x| <= 1: 12-term fit centred at x² = 0.5 (scripts/vmath_fit.py).
NB_VM_INLINE double erf_small(double x2) {
    double w = x2 - 0.5;
    double p = -7.7958988270021422e-10;
    p = p * w + 9.4323201919265074e-9;
    p = p * w - 1.0420387617195658e-7;
    p = p * w + 1.0536323840680665e-6;
    p = p * w - 9.6148086413901955e-6;
    p = p * w + 7.8296496883798865e-5;
    p = p * w - 0.0005611894221209663;
    p = p * w + 0.0034802744965701582;
    p = p * w - 0.018283884489152684;
    p = p * w + 0.079409986755936874;
    p = p * w - 0.28107217804543424;
    return p * w + 0.9654687386698673;
}

// G(z) = erfc(z) e^(z²) for z in [0.5, 28] as t H(t), t = 2/(2+z), H a 24-term fit centred
// at t = 13/30 (scripts/vmath_fit.py; G alone vanishes with t, H stays near ½).
NB_VM_INLINE double erfc_scaled(double z) {
    double t = 2.0 / (2.0 + z);
    double w = t - 0.43333333333333333;
    double p = 0.1498644533796739;
    p = p * w - 0.16608776299134063;
    p = p * w - 0.092312053034179831;
    p = p * w + 0.22639248650126391;
    p = p * w - 0.069267120040882269;
    p = p * w - 0.12430974512667985;
    p = p * w + 0.13897747967706405;
    p = p * w - 0.0059923803353978889;
    p = p * w - 0.10586502420620539;
    p = p * w + 0.079747830093880415;
    p = p * w + 0.036930792322483491;
    p = p * w - 0.095127968286966109;
    p = p * w + 0.022492744520458207;
    p = p * w + 0.081081499712656613;
    p = p * w - 0.062836792443950733;
    p = p * w - 0.063636816159805929;
    p = p * w + 0.094643265884557178;
    p = p * w + 0.063873158184342221;
    p = p * w - 0.13686470282126469;
    p = p * w - 0.13160652658898586;
    p = p * w + 0.18650803388584918;
    p = p * w + 0.52553623630453803;
    p = p * w + 0.61477134840178582;
    return t * (p * w + 0.46741839154874838);
}

// e^(-v²) and e^(-v²/2) without the error a rounded v² would bring (it grows with v² as an
// absolute error in the exponent): v = vh + vl with vh's 26 leading bits, so vh² is exact
// and v² = vh² + (v - vh)(v + vh), the second part small.
NB_VM_INLINE double hi_half(double v) {
    return u2f(f2u(v) & 0xfffffffff8000000u);
}
NB_VM_INLINE double exp_neg_sq(double v) {
    double vh = hi_half(v);
    return vexp_s(-(vh * vh)) * vexp((vh - v) * (vh + v)) * UNSCALE;
}
NB_VM_INLINE double verf(double x) {
    double z = fabs(x);
    double zc = clampd(z, 1.0, 28.0); // erfc(28) is below the type's range
    double big = copysign(1.0 - exp_neg_sq(zc) * erfc_scaled(zc), x);
    return z < 1.0 ? x * erf_small(x * x) : big;
}

// a Φ(x) + b φ(x) for the clamped x, Φ the standard normal CDF and φ = e^(-x²/2)/√(2π) its
// density: ½(1 + erf(x/√2)) for |x|/√2 < ½; in the tails ½ erfc(|x|/√2) = ½ e^(-x²/2) G, which
// keeps relative accuracy for very negative x. The scaled exponential multiplies in last.
NB_VM_INLINE double normal_form(double a, double b, double x) {
    double xh = hi_half(x); // e^(-x²/2) = e_big 2^-SC e_small, as for exp_neg_sq
    double e_big = vexp_s(0.5 * -(xh * xh));
    double e_small = vexp(0.5 * ((xh - x) * (xh + x)));
    double z = x * INV_SQRT2;
    double az = fabs(z);
    double hg = 0.5 * erfc_scaled(clampd(az, 0.5, 28.0));
    double bphi = b * INV_SQRT_2PI;
    double mid_phi = 0.5 + 0.5 * (z * erf_small(z * z));
    double lo = (a * hg + bphi) * e_small * e_big * UNSCALE; // x <= -√½
    double hi = a * (1.0 - hg * e_small * e_big * UNSCALE) + bphi * e_small * e_big * UNSCALE;
    double mid = a * mid_phi + bphi * e_small * e_big * UNSCALE;
    return az < 0.5 ? mid : x < 0.0 ? lo : hi;
}

// gelu = x Φ(x); gelu' = Φ(x) + x φ(x). The clamped x in the φ term gives the limits 0 and 1
// at ∓inf instead of inf·0.
NB_VM_INLINE double vgelu(double x) {
    double xc = clampd(x, -40.0, 40.0); // gelu underflows to 0 below -40
    return normal_form(x < -40.0 ? 0.0 : x, 0.0, xc);
}
NB_VM_INLINE double dgelu(double x) {
    double xc = clampd(x, -40.0, 40.0);
    return normal_form(1.0, xc, xc);
}

// ½x(1 + tanh u) = x σ(2u), u = √(2/π)(x + 0.044715x³): no cancellation for negative x.
NB_VM_INLINE double vgelu_tanh(double x) {
    double xc = clampd(x, -40.0, 40.0); // σ(2u) is exactly 0 or 1 beyond
    double u = SQRT_2_OVER_PI * (xc + 0.044715 * xc * xc * xc);
    return times_sigmoid(x, 2.0 * u);
}
// d/dx x σ(2u) = σ + 2x σ(1 - σ) u' = σ (1 + 2x u' (1 - σ))
NB_VM_INLINE double dgelu_tanh(double x) {
    double xc = clampd(x, -40.0, 40.0);
    double u = SQRT_2_OVER_PI * (xc + 0.044715 * xc * xc * xc);
    double du = SQRT_2_OVER_PI * (1.0 + 3.0 * 0.044715 * xc * xc);
    return sigmoid_grad_form(2.0 * xc * du, 2.0 * u);
}

// silu = x σ(x); silu' = σ (1 + x (1 - σ))
NB_VM_INLINE double vsilu(double x) {
    return times_sigmoid(x, x);
}
NB_VM_INLINE double dsilu(double x) {
    double xc = clampd(x, -800.0, 800.0);
    return sigmoid_grad_form(xc, xc);
}

// softplus = max(x, 0) + ln(1 + e^-|x|): never overflows; its derivative is σ(x).
NB_VM_INLINE double vsoftplus(double x) {
    return (x > 0.0 ? x : 0.0) + log1p01(vexp(-fabs(x)));
}

// softplus(βx)/β = x⁺ + ln(1 + e^-|βx|)/β (exact identity; x⁺ stays exact, nothing
// overflows). βx = zh + zl by Dekker's product (hi_half's 26-bit halves, so the partial products
// are exact): e^-|βx| keeps the accuracy of e^-|x| even for large |βx|, where a rounded βx would
// cost |βx|/2 ulps. The threshold compares the rounded zh, as PyTorch compares its product.
// e^(a + c) 2^SC for a <= 0 and a tiny correction c joining the reduced argument
NB_VM_INLINE double vexp_sc(double a, double c) {
    int64_t k;
    double r = reduce(clampd(a, -800.0, 0.0), &k) + c;
    int64_t k1 = (int64_t)(f2u(0.5 * i2d(k) + SHIFT) - f2u(SHIFT));
    double e = (1.0 + em1_poly(r)) * pow2i(k1) * pow2i(k - k1 + SC);
    return a < -800.0 ? 0.0 : e;
}
// e^-|βv| 2^SC; *zh = the rounded βv
NB_VM_INLINE double bt_exp(double beta, double v, double *zh) {
    double h = beta * v;
    double bh = hi_half(beta), bl = beta - bh, vh = hi_half(v), vl = v - vh;
    double l = (((bh * vh - h) + bh * vl) + bl * vh) + bl * vl;
    l = fabs(h) < 1000.0 ? l : 0.0; // beyond, e is 0 (and the products may overflow)
    *zh = h;
    return vexp_sc(-fabs(h), v > 0.0 ? -l : l);
}
NB_VM_CLONES void nb_vm_softplus_bt_f64(const double *x, double *y, int64_t n, double beta,
                                        double thr) {
    double inv = 1.0 / beta;
    NB_VM_SIMD for (int64_t i = 0; i < n; i++) {
        double v = x[i], z;
        double e = bt_exp(beta, v, &z) * UNSCALE;
        double s = (v > 0.0 ? v : 0.0) + log1p01(e) * inv;
        y[i] = z > thr ? v : s;
    }
}
// σ(βx) = 1/(1 + e) for x >= 0, e/(1 + e) below, e = e^-|βx| (scaled until the last multiply)
NB_VM_CLONES void nb_vm_softplus_bt_bwd_f64(const double *x, const double *gy, double *gx,
                                            int64_t n, double beta, double thr) {
    NB_VM_SIMD for (int64_t i = 0; i < n; i++) {
        double v = x[i], z;
        double es = bt_exp(beta, v, &z);
        double sp = 1.0 / (1.0 + es * UNSCALE);
        double d = v >= 0.0 ? sp : sp * es * UNSCALE;
        gx[i] += gy[i] * (z > thr ? 1.0 : d);
    }
}

NB_VM_MAP(nb_vm_exp_f64, double, vexp)
NB_VM_MAP(nb_vm_log_f64, double, vlog)
NB_VM_MAP(nb_vm_tanh_f64, double, vtanh)
NB_VM_MAP(nb_vm_sigmoid_f64, double, vsigmoid)
NB_VM_MAP(nb_vm_erf_f64, double, verf)
NB_VM_MAP(nb_vm_gelu_f64, double, vgelu)
NB_VM_MAP(nb_vm_gelu_tanh_f64, double, vgelu_tanh)
NB_VM_MAP(nb_vm_silu_f64, double, vsilu)
NB_VM_MAP(nb_vm_softplus_f64, double, vsoftplus)
NB_VM_GRAD(nb_vm_gelu_bwd_f64, nb_vm_gelu_bwdset_f64, double, dgelu)
NB_VM_GRAD(nb_vm_gelu_tanh_bwd_f64, nb_vm_gelu_tanh_bwdset_f64, double, dgelu_tanh)
NB_VM_GRAD(nb_vm_silu_bwd_f64, nb_vm_silu_bwdset_f64, double, dsilu)
NB_VM_GRAD(nb_vm_softplus_bwd_f64, nb_vm_softplus_bwdset_f64, double, vsigmoid)

// elu, exp_shift_sum, exp_shift_rows, log_softmax_bwd, add_scaled_exp
#include "ops/vmath_exp_kernels.inc"
