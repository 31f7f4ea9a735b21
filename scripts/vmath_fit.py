#!/usr/bin/env python3
"""Regenerates the polynomial coefficients of src/ops/vmath_f32.c and vmath_f64.c (issue 17).

Near-minimax fits by Chebyshev interpolation in 40-digit arithmetic (mpmath.chebyfit), each on
an interval centred at 0 so the monomial coefficients stay small. For each fit it prints the
coefficients (highest degree first, as Horner runs) and the max relative error of the fit
itself; the rounding added by evaluating in float/double is measured by tests/test_vmath.c.
Usage: /usr/bin/python3 scripts/vmath_fit.py   (needs python3-mpmath)
"""
import mpmath as mp

mp.mp.dps = 40


def erf_over_x(s):  # erf(x)/x as a function of s = x^2
    return mp.erf(mp.sqrt(s)) / mp.sqrt(s) if s > 0 else 2 / mp.sqrt(mp.pi)


def erfc_scaled_of_t(t):  # G(z)/t, G(z) = erfc(z) e^(z^2), z = 2/t - 2, i.e. t = 2/(2 + z)
    z = 2 / t - 2          # (G ~ 1/(z sqrt(pi)) vanishes with t: fitting G/t keeps the
    return mp.erfc(z) * mp.exp(z * z) / t  # polynomial's value large against its terms)


def fit(name, f, a, b, terms, c=None):
    """c: the centre (default the midpoint); pass one exact in float when the kernel subtracts
    it in float, or the rounded centre shifts the polynomial."""
    c = (a + b) / 2 if c is None else c
    coef = mp.chebyfit(lambda w: f(w + c), [a - c, b - c], terms)
    err = max(abs((mp.polyval(coef, w) - f(w + c)) / f(w + c))
              for w in mp.linspace(a - c, b - c, 1001))
    print(f"{name}: {terms} terms in w = v - {mp.nstr(c, 17)}, max rel error {mp.nstr(err, 3)}")
    print("   ", ", ".join(mp.nstr(x, 17) for x in coef))


def gelu_r_of_t(t):  # R(a)/t, R(a) = 1/2 erfc(a/sqrt2) e^(a^2/2), a = 3.25/t - 3.25
    a = mp.mpf(3.25) / t - mp.mpf(3.25)
    z = a / mp.sqrt(2)
    return mp.erfc(z) * mp.exp(z * z) / (2 * t)


# erf(x)/x = P(x^2) for |x| <= 1
fit("erf_small f32", erf_over_x, mp.mpf(0), mp.mpf(1), 7)
fit("erf_small f64", erf_over_x, mp.mpf(0), mp.mpf(1), 12)
# G(z)/t: float on all of z in [0, 10] (erfc(10) underflows; one path for every x of the normal
# CDF of GELU, no erf branch), double on z in [0.5, 28] (erfc(28) underflows)
fit("erfc_scaled f32", erfc_scaled_of_t, 2 / mp.mpf(12), mp.mpf(1), 12)
fit("erfc_scaled f64", erfc_scaled_of_t, 2 / mp.mpf(30), 2 / mp.mpf(2.5), 24)
# float exact GELU: R(a) = Phi(-a) e^(a^2/2) on a in [0, 14.75] (below -14.75 gelu and gelu' round
# to 0) as t H(t), t = 3.25/(3.25 + a), centred at 19/32 (exact in float)
fit("gelu_r f32", gelu_r_of_t, mp.mpf(3.25) / mp.mpf(18), mp.mpf(1), 10, mp.mpf(19) / 32)
# e^(v/2) on |v| <= ln 2 (+ slack for the Cody-Waite remainder), float GELU and tanh-GELU
fit("exp_half f32", lambda v: mp.exp(v / 2), -mp.log(2) - mp.mpf(2e-3), mp.log(2) + mp.mpf(2e-3), 7,
    mp.mpf(0))
# ln(1 + e)/e on [0, 1] for float softplus (no division, no exponent split)
fit("log1p_over f32", lambda e: mp.log1p(e) / e if e != 0 else mp.mpf(1), mp.mpf(0), mp.mpf(1), 11)
