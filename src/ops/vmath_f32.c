// float32 vectorised transcendentals (see vmath.h for the design and why not SLEEF). Every
// multiply-add of the polynomials and reductions is an explicit fmaf (one rounding on every
// build, see vmath_impl.h), so the kernels still give the same bits on every ISA and lane.
// Max error in ulps of the exact result: the bound tests/test_vmath.c asserts, then in
// brackets the max over a 2^24-point sweep (the test's own sweep is 2^17 points):
//   exp 1.5 [1.05]   log 1 [0.81]   tanh 2.5 [2.32]   sigmoid 3 [2.64]   erf 2.5 [1.95]
//   gelu 7 [6.00]   silu 4 [3.28]   softplus 3 [2.42]   elu 1.5 [0.85]
//   softplus with β = 0.7, threshold 40: 3.5 [2.50], its backward 3 [2.05] (2^17 points)
//   gelu_tanh 3.5 [3.23] in ulps of max(|f|, |x f'|): f = x σ(2u(x)) has a condition number
//     |x f'/f| of ~230 at x = -10, so this bounds the backward error (the result is f at an
//     input within ~3.5 ulps of x), the best evaluating u in float can do.
//   backward, in ulps of the largest term of f' (f' crosses zero): gelu 6 [4.87]
//     gelu_tanh 5.5 [4.88] (also of |x f''|, as above)   silu 5 [4.36]   softplus (= σ) 3 [2.71]
// Subnormal results: within 8 subnormal spacings (measured 2.6).
// Inputs: NaN gives NaN; ±inf and huge values give the limits (exp(-inf) = 0, tanh(±inf) = ±1,
// log(0) = -inf, log(x < 0) = NaN); subnormal inputs and outputs are handled.
#include <math.h>

#include "ops/vmath_impl.h"

// The element type and what the type-generic parts (vmath_sigmoid.inc, vmath_exp_kernels.inc)
// need to know of it: suffix, elements per AVX-512 vector, kernel definer, |x|.
#define T float
#define SFX f32
#define W 16
#define KERNEL NB_VM_KERNEL
#define FABS fabsf

typedef union {
    float f;
    int32_t i;
    uint32_t u;
} fbits;
NB_VM_INLINE uint32_t f2u(float f) {
    fbits b;
    b.f = f;
    return b.u;
}
NB_VM_INLINE float u2f(uint32_t u) {
    fbits b;
    b.u = u;
    return b.f;
}

#define FMA(a, b, c) fmaf(a, b, c) // one rounding on every build (see vmath_impl.h)
#define SHIFT 0x1.8p23f            // adding it rounds |v| < 2^22 to an integer held in the low bits
#define LOG2E 1.44269504f          // 1/ln 2
#define LN2_HI 0x1.62ep-1f         // ln 2 to 12 bits: k LN2_HI is exact for |k| < 4096
#define LN2_LO 3.19461833e-05f     // ln 2 - LN2_HI
#define INV_SQRT_2PI 0.398942280f

NB_VM_INLINE float clampf(float v, float lo, float hi) {
    v = v < lo ? lo : v; // comparisons with NaN are false: NaN passes through
    return v > hi ? hi : v;
}

// 2^k for -126 <= k <= 127, built from the exponent bits (unsigned shift: no UB for any k).
NB_VM_INLINE float pow2i(int32_t k) {
    return u2f((uint32_t)(k + 127) << 23);
}

// e^r - 1 for |r| <= ln2/2: Taylor to r^7 (truncation < 2e-8 relative); r stays the exact
// leading term so tiny r keeps full relative accuracy.
NB_VM_INLINE float em1_poly(float r) {
    float p = 1.0f / 5040;
    p = FMA(p, r, 1.0f / 720);
    p = FMA(p, r, 1.0f / 120);
    p = FMA(p, r, 1.0f / 24);
    p = FMA(p, r, 1.0f / 6);
    p = FMA(p, r, 0.5f);
    return FMA(r * r, p, r);
}

// x = k ln2 + r (Cody-Waite, two-part ln 2). Needs |x| < 2^21; returns r, sets *k.
NB_VM_INLINE float reduce(float x, int32_t *k) {
    float t = FMA(x, LOG2E, SHIFT);
    float n = t - SHIFT;
    *k = (int32_t)(f2u(t) - f2u(SHIFT));
    return FMA(-n, LN2_LO, FMA(-n, LN2_HI, x));
}

// e^x. The scale 2^k is applied as two factors so results down in the subnormals (k = -150)
// and up to overflow (k = 130 gives inf) come out right with a single final rounding.
NB_VM_INLINE float vexp(float x) {
    int32_t k;
    float r = reduce(clampf(x, -105.0f, 90.0f), &k);
    int32_t k1 = k / 2;
    return (1.0f + em1_poly(r)) * pow2i(k1) * pow2i(k - k1);
}

// e^x 2^SC for x <= 0, SC = 64, for the sigmoid family below, which only uses it
// times UNSCALE. x is clamped at -130, where e^x 2^SC >= 2^-124 is still normal, so one scale
// factor 2^(k+SC) is exact (no split scaling). Below -130 it is 0: e^x 2^SC UNSCALE times any
// factor the sigmoid family uses there (|x| itself for silu, below 2^13 otherwise) is under
// 2^-150 and rounds to the same ±0, so every result keeps the bits of the exact scaling.
#define SC 64
#define UNSCALE 0x1p-64f
#define S_LO -130.0f
NB_VM_INLINE float vexp_s(float x) {
    int32_t k;
    float r = reduce(clampf(x, S_LO, 0.0f), &k);
    float e = (1.0f + em1_poly(r)) * pow2i(k + SC);
    return x < S_LO ? 0.0f : e;
}
// e^(a + c) 2^SC with a tiny correction c (|c| < 2^-20 |a|, the low part of an exactly split
// argument), which joins the reduced argument; exact down to a = -150 (softplus_bt divides by a
// small β, so no factor bound holds): two scale factors, 0 below -150.
NB_VM_INLINE float vexp_sc(float a, float c) {
    int32_t k;
    float r = reduce(clampf(a, -150.0f, 0.0f), &k) + c;
    int32_t k1 = k / 2;
    float e = (1.0f + em1_poly(r)) * pow2i(k1) * pow2i(k - k1 + SC);
    return a < -150.0f ? 0.0f : e;
}

// e^(v/2) for |v| <= ln 2 (and a little beyond): 7-term fit (scripts/vmath_fit.py), relative
// error 2.6e-9.
NB_VM_INLINE float exp_half(float v) {
    float p = 2.178345425e-5f;
    p = FMA(p, v, 0.0002617302635f);
    p = FMA(p, v, 0.002604146828f);
    p = FMA(p, v, 0.02083301575f);
    p = FMA(p, v, 0.1250000012f);
    p = FMA(p, v, 0.5000000192f);
    return FMA(p, v, 1.0f);
}
// e^(-(h + l)/2) = e^(v/2) 2^(k+64) *s for 0 <= h <= 2^8 and |l| <= 2^-20 h: k = round(-h/2
// log2 e), v = -h - 2k ln2 - l (Cody-Waite; 2k LN2_HI is exact). Working with v = 2r instead
// of r saves a halving. 2^(k+64) >= 2^-121 stays normal, so every product with it rounds once,
// at the end. Returns e^(v/2); the low bits of tk hold k.
NB_VM_INLINE float exp_neg_half(float h, float l, float *s) {
    float tk = FMA(h, -0.5f * LOG2E, SHIFT);
    float n = tk - SHIFT;
    float v = FMA(n, -2.0f * LN2_HI, -h);
    v = FMA(n, -2.0f * LN2_LO, v) - l;
    *s = u2f((f2u(tk) + (uint32_t)(127 + SC) - f2u(SHIFT)) << 23);
    return exp_half(v);
}
// e^x - 1 for x in [-30, 40] (clamped): 2^k (e^r - 1) + (2^k - 1), exact at k = 0.
NB_VM_INLINE float vexpm1(float x) {
    int32_t k;
    float r = reduce(clampf(x, -30.0f, 40.0f), &k);
    float s = pow2i(k);
    return s * em1_poly(r) + (s - 1.0f);
}

// ln x: x = 2^k m with m in [√½, √2), f = m - 1, s = f/(2+f), ln(1+f) = 2 atanh s written as
// f - (f²/2 - s (f²/2 + R)) so that f, exact, leads; R = 2s²/3 + 2s⁴/5 + ... (Taylor, 4 terms).
NB_VM_INLINE float vlog(float x) {
    int sub = x < 0x1p-126f; // subnormal (or <= 0): scale into the normals first
    float xs = sub ? x * 0x1p23f : x;
    uint32_t ix = f2u(xs) + (0x3f800000u - 0x3f3504f3u); // moves m >= √2 into the next binade
    int32_t k = (int32_t)(ix >> 23) - 127 - (sub ? 23 : 0);
    float f = u2f((ix & 0x007fffffu) + 0x3f3504f3u) - 1.0f;
    float s = f / (2.0f + f);
    float z = s * s;
    float R = z * FMA(z, FMA(z, FMA(z, 2.0f / 9, 2.0f / 7), 2.0f / 5), 2.0f / 3);
    float hfsq = 0.5f * f * f;
    float kf = (float)k;
    float y = kf * LN2_HI - ((hfsq - (s * (hfsq + R) + kf * LN2_LO)) - f);
    y = x < 0.0f ? NAN : y;
    y = x == 0.0f ? -INFINITY : y;
    y = x == INFINITY ? x : y;
    return x != x ? x : y;
}

// ln(1 + e) for e in [0, 1] as e P(e), P an 11-term fit centred at ½ (scripts/vmath_fit.py):
// no division, no exponent split.
NB_VM_INLINE float log1p01(float e) {
    float w = e - 0.5f;
    float p = 1.986696618e-03f;
    p = FMA(p, w, -3.254343523e-03f);
    p = FMA(p, w, 4.011690617e-03f);
    p = FMA(p, w, -6.744104438e-03f);
    p = FMA(p, w, 1.184775587e-02f);
    p = FMA(p, w, -2.057138458e-02f);
    p = FMA(p, w, 3.661122173e-02f);
    p = FMA(p, w, -6.768762320e-02f);
    p = FMA(p, w, 1.326097548e-01f);
    p = FMA(p, w, -2.885271013e-01f);
    return e * FMA(p, w, 8.109301925e-01f);
}

NB_VM_INLINE float vtanh(float x) {
    float a = clampf(fabsf(x), 0.0f, 10.0f); // tanh(10) rounds to 1
    float e = vexpm1(2.0f * a);
    return copysignf(e / (e + 2.0f), x);
}

#include "ops/vmath_sigmoid.inc" // sig_parts, vsigmoid, times_sigmoid, sigmoid_grad_form

// erf(x)/x = P(x²) on |x| <= 1: 7-term fit centred at x² = 0.5 (scripts/vmath_fit.py).
NB_VM_INLINE float erf_small(float x2) {
    float w = x2 - 0.5f;
    float p = 7.87587487e-05f;
    p = FMA(p, w, -5.65410184e-04f);
    p = FMA(p, w, 3.48021672e-03f);
    p = FMA(p, w, -1.82833560e-02f);
    p = FMA(p, w, 7.94099867e-02f);
    p = FMA(p, w, -2.81072199e-01f);
    return FMA(p, w, 9.65468764e-01f);
}

// G(z) = erfc(z) e^(z²) for z in [0, 10] as t H(t), t = 2/(2+z), H a 12-term fit centred at
// t = 7/12 (scripts/vmath_fit.py; G alone vanishes with t, H stays near ½).
NB_VM_INLINE float erfc_scaled(float z) {
    float t = 2.0f / (2.0f + z);
    float w = t - 0.583333333f;
    float p = -3.233045340e-02f;
    p = FMA(p, w, 3.221277148e-02f);
    p = FMA(p, w, 3.285368532e-02f);
    p = FMA(p, w, -7.229956985e-02f);
    p = FMA(p, w, -4.436109448e-04f);
    p = FMA(p, w, 1.138783470e-01f);
    p = FMA(p, w, -4.914887249e-02f);
    p = FMA(p, w, -2.041774243e-01f);
    p = FMA(p, w, 8.242423832e-02f);
    p = FMA(p, w, 5.876915455e-01f);
    p = FMA(p, w, 7.829340696e-01f);
    return t * FMA(p, w, 5.720119476e-01f);
}

// erf = 1 - e^(-z²) G(z) from z = 1 on, e^(-z²) from the exact z² (see exp_half_sq)
NB_VM_INLINE float verf(float x) {
    float z = fabsf(x), s;
    float zc = clampf(z, 1.0f, 10.0f); // erfc(10) is below the type's range
    float h = zc * zc;
    float e = exp_neg_half(2.0f * h, 2.0f * FMA(zc, zc, -h), &s) * s * UNSCALE;
    float big = copysignf(1.0f - e * erfc_scaled(zc), x);
    return z < 1.0f ? x * erf_small(x * x) : big;
}

// Exact GELU from q = Φ(-|x|) = ½ erfc(|x|/√2) = e^(-x²/2) R(|x|), R(a) = ½ G(a/√2) (from ½
// down to 0.027 on the range): gelu = x q for x < 0 (q keeps its relative accuracy far into the
// tail) and x - x q above; gelu' = Φ + x φ with φ = e^(-x²/2)/√(2π). No erf branch, no
// cancellation; one division (t below), one exponential, 10 + 7 polynomial terms.
// x is clamped at ±GC: below -GC gelu and gelu' round to ±0 (|x| φ(x) < 2^-150 from -14.6),
// above GC 1 - Φ(x) < 2^-150.
#define GC 14.75f
// R(a) 2^-64 for a in [0, GC] as t H(t), t = 3.25/(3.25 + a), H a 10-term fit centred at
// t = 19/32 (scripts/vmath_fit.py; R falls like 1/a, H stays within [0.149, 0.5]). The
// 2^-64 (exact) undoes the 2^64 of exp_half_sq's scale in the same multiply.
#define R_(c) (c##f * 0x1p-64f)
NB_VM_INLINE float gelu_r(float a) {
    float t = 3.25f / (3.25f + a);
    float w = t - 0.59375f;
    float p = R_(-0.01991862909);
    p = FMA(p, w, R_(-0.005561313969));
    p = FMA(p, w, R_(0.0434732233));
    p = FMA(p, w, R_(0.005618699554));
    p = FMA(p, w, R_(-0.08668262841));
    p = FMA(p, w, R_(-0.03470731267));
    p = FMA(p, w, R_(0.1937755732));
    p = FMA(p, w, R_(0.3934050099));
    p = FMA(p, w, R_(0.4005650803));
    return t * FMA(p, w, R_(0.2611611564));
}
// e^(-x²/2) from the exact x² = h + l (h = x x rounded, l its FMA remainder): a rounded x² would
// bring an exponent error growing with x².
NB_VM_INLINE float exp_half_sq(float x, float *s) {
    float h = x * x;
    return exp_neg_half(h, FMA(x, x, -h), s);
}

// gelu = x Φ(x): x q below 0, x - x q above, q = p s with p = R e^r 2^-64, from a = |x|
// clamped at GC (NaN stays NaN). a s is exact (a power-of-two scaling, normal for every x, tiny
// x included), so each result is one rounding of an exact product or FMA. The select takes
// x = ±0 to 0 - 0 = +0, as does x = -inf (gelu(-inf) = +0, as in float64).
NB_VM_INLINE float vgelu(float x, float gc) {
    float a = fabsf(x), s;
    a = a > gc ? gc : a;
    float p = gelu_r(a) * exp_half_sq(a, &s);
    float as = a * s;
    float lo = 0.0f - as * p;
    float hi = FMA(-as, p, x);
    return x <= 0.0f ? lo : hi;
}
// gelu' = Φ + x φ: (R - a/√(2π)) e^(-x²/2) below 0, 1 + (a/√(2π) - R) e^(-x²/2) above. The
// clamped a in the φ term gives the limits 0 and 1 at ∓inf instead of inf·0.
#define INV_SQRT_2PI_S (INV_SQRT_2PI * 0x1p-64f)
NB_VM_INLINE float dgelu(float x, float gc) {
    float a = fabsf(x), s;
    a = a > gc ? gc : a;
    float e = exp_half_sq(a, &s) * s; // e^(-x²/2) 2^64
    float r = gelu_r(a);
    float lo = FMA(a, -INV_SQRT_2PI_S, r) * e;
    float hi = FMA(FMA(a, INV_SQRT_2PI_S, -r), e, 1.0f);
    return x < 0.0f ? lo : hi;
}

// ½x(1 + tanh u) = x σ(2u), u = √(2/π)(x + 0.044715x³): no cancellation for negative x.
// 2u = x (K1 + K3 x²) and 2u' = K1 + 3 K3 x², K1 = 2√(2/π), K3 = 0.044715 K1: one FMA each.
// From a = |x| clamped at GTC (NaN stays NaN; beyond GTC, σ(2u) rounds to 0 or 1 and the
// results to x or ±0): e = e^(-2u(a)) 2^64 (normal down to 2u = -113), σ(2u) = 1/(1 + e 2^-64)
// for x >= 0 and e 2^-64/(1 + e 2^-64) below. One division, nothing else on the select.
#define GT_K1 1.59576912f
#define GT_K3 0.0713548163f
#define GT_3K3 0.214064449f
#define GTC 11.0f
// e^(-2u(a)) 2^64 for a >= 0; 2u(a) computed doubled (exact), as exp_neg_half takes it
NB_VM_INLINE float gt_exp(float a) {
    float s;
    float e = exp_neg_half(a * FMA(2.0f * GT_K3, a * a, 2.0f * GT_K1), 0.0f, &s);
    return e * s;
}
// x σ(2u): x/(1 + e) above 0, -(a e)/(1 + e) below (unscaled after the division: one rounding
// into the subnormals)
NB_VM_INLINE float vgelu_tanh(float x, float gc) {
    float a = fabsf(x);
    a = a > gc ? gc : a;
    float e = gt_exp(a);
    float q = (x >= 0.0f ? x : a * e) / FMA(e, UNSCALE, 1.0f);
    return x >= 0.0f ? q : q * -UNSCALE;
}
// d/dx x σ(2u) = σ + 2x σ(1 - σ) u' = σ (1 + 2x u' (1 - σ)); with E = e^(-2u(a)) (e holds
// E 2^64), p = 1/(1 + E), m = E p 2^64 and A = 2a u'(a) >= 0: p + A m p 2^-64 above 0,
// m (1 - A p) 2^-64 below.
NB_VM_INLINE float dgelu_tanh(float x, float gc) {
    float a = fabsf(x);
    a = a > gc ? gc : a;
    float e = gt_exp(a);
    float A = a * FMA(GT_3K3, a * a, GT_K1);
    float p = 1.0f / FMA(e, UNSCALE, 1.0f);
    float m = e * p;
    float pos = FMA(A * m, p * UNSCALE, p);
    float neg = m * FMA(A, -p, 1.0f) * UNSCALE;
    return x >= 0.0f ? pos : neg;
}

// silu = x σ(x); silu' = σ (1 + x (1 - σ))
NB_VM_INLINE float vsilu(float x) {
    return times_sigmoid(x, x);
}
NB_VM_INLINE float dsilu(float x) {
    float xc = clampf(x, -120.0f, 120.0f);
    return sigmoid_grad_form(xc, xc);
}

// softplus = max(x, 0) + ln(1 + e^-|x|): never overflows; its derivative is σ(x).
NB_VM_INLINE float vsoftplus(float x) {
    // e^-|x| from the one-factor scaled exponential: the same bits as vexp (one rounding of
    // (1 + p) 2^k either way, 0 below -104), fewer operations.
    return (x > 0.0f ? x : 0.0f) + log1p01(vexp_s(-fabsf(x)) * UNSCALE);
}

// softplus(βx)/β = x⁺ + ln(1 + e^-|βx|)/β (exact identity; x⁺ stays exact, nothing
// overflows). βx = zh + zl exactly enough (β = bh + bl split into floats, zh = bh x rounded, zl
// its FMA remainder + bl x), so e^-|βx| has the accuracy of e^-|x| even for large |βx|, where a
// rounded βx would cost |βx|/2 ulps. The threshold compares the rounded zh, in float as PyTorch.
typedef struct {
    float bh, bl, inv, thr;
} bt_params;
NB_VM_INLINE bt_params bt_split(double beta, double thr) {
    bt_params p;
    p.bh = (float)beta;
    p.bl = (float)(beta - (double)p.bh);
    p.inv = (float)(1.0 / beta);
    p.thr = (float)thr;
    return p;
}
// e^-|βv| 2^SC; *zh = the rounded βv
NB_VM_INLINE float bt_exp(bt_params p, float v, float *zh) {
    float h = p.bh * v;
    float l = FMA(p.bh, v, -h) + p.bl * v;
    *zh = h;
    return vexp_sc(-fabsf(h), v > 0.0f ? -l : l);
}
NB_VM_KERNEL(void, , nb_vm_softplus_bt_f32,
             (const float *x, float *y, int64_t n, double beta, double thr), (x, y, n, beta, thr)) {
    bt_params p = bt_split(beta, thr);
    NB_VM_SIMD for (int64_t i = 0; i < n; i++) {
        float v = x[i], z;
        float e = bt_exp(p, v, &z) * UNSCALE;
        float s = (v > 0.0f ? v : 0.0f) + log1p01(e) * p.inv;
        y[i] = z > p.thr ? v : s;
    }
}
// σ(βx) = 1/(1 + e) for x >= 0, e/(1 + e) below, e = e^-|βx| (scaled until the last multiply)
NB_VM_KERNEL(void, , nb_vm_softplus_bt_bwd_f32,
             (const float *x, const float *gy, float *gx, int64_t n, double beta, double thr),
             (x, gy, gx, n, beta, thr)) {
    bt_params p = bt_split(beta, thr);
    NB_VM_SIMD for (int64_t i = 0; i < n; i++) {
        float v = x[i], z;
        float es = bt_exp(p, v, &z);
        float sp = 1.0f / (1.0f + es * UNSCALE);
        float d = v >= 0.0f ? sp : sp * es * UNSCALE;
        gx[i] += gy[i] * (z > p.thr ? 1.0f : d);
    }
}

NB_VM_MAP_FMA(nb_vm_exp_f32, float, vexp)
NB_VM_MAP_FMA(nb_vm_log_f32, float, vlog)
NB_VM_MAP_FMA(nb_vm_tanh_f32, float, vtanh)
NB_VM_MAP_FMA(nb_vm_sigmoid_f32, float, vsigmoid)
NB_VM_MAP_FMA(nb_vm_erf_f32, float, verf)
NB_VM_MAP_FMA_C(nb_vm_gelu_f32, float, vgelu, GC)
NB_VM_MAP_FMA_C(nb_vm_gelu_tanh_f32, float, vgelu_tanh, GTC)
NB_VM_MAP_FMA(nb_vm_silu_f32, float, vsilu)
NB_VM_MAP_FMA(nb_vm_softplus_f32, float, vsoftplus)
NB_VM_GRAD_FMA_C(nb_vm_gelu_bwd_f32, nb_vm_gelu_bwdset_f32, float, dgelu, GC)
NB_VM_GRAD_FMA_C(nb_vm_gelu_tanh_bwd_f32, nb_vm_gelu_tanh_bwdset_f32, float, dgelu_tanh, GTC)
NB_VM_GRAD_FMA(nb_vm_silu_bwd_f32, nb_vm_silu_bwdset_f32, float, dsilu)
NB_VM_GRAD_FMA(nb_vm_softplus_bwd_f32, nb_vm_softplus_bwdset_f32, float, vsigmoid)

// elu, exp_shift_sum, exp_shift_rows, log_softmax_bwd, add_scaled_exp
#include "ops/vmath_exp_kernels.inc"

const char *nb_vm_isa(void) {
#if NB_VM_HAVE_CLONES
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f"))
        return "avx512f";
    if (__builtin_cpu_supports("avx2"))
        return "avx2";
#endif
    return "baseline";
}
