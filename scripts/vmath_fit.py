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


def fit(name, f, a, b, terms):
    c, h = (a + b) / 2, (b - a) / 2
    coef = mp.chebyfit(lambda w: f(w + c), [-h, h], terms)
    err = max(abs((mp.polyval(coef, w) - f(w + c)) / f(w + c))
              for w in mp.linspace(-h, h, 1001))
    print(f"{name}: {terms} terms in w = v - {mp.nstr(c, 17)}, max rel error {mp.nstr(err, 3)}")
    print("   ", ", ".join(mp.nstr(x, 17) for x in coef))


# erf(x)/x = P(x^2) for |x| <= 1
fit("erf_small f32", erf_over_x, mp.mpf(0), mp.mpf(1), 7)
fit("erf_small f64", erf_over_x, mp.mpf(0), mp.mpf(1), 12)
# G(z)/t: float on all of z in [0, 10] (erfc(10) underflows; one path for every x of the normal
# CDF of GELU, no erf branch), double on z in [0.5, 28] (erfc(28) underflows)
fit("erfc_scaled f32", erfc_scaled_of_t, 2 / mp.mpf(12), mp.mpf(1), 12)
fit("erfc_scaled f64", erfc_scaled_of_t, 2 / mp.mpf(30), 2 / mp.mpf(2.5), 24)
# ln(1 + e)/e on [0, 1] for float softplus (no division, no exponent split)
fit("log1p_over f32", lambda e: mp.log1p(e) / e if e != 0 else mp.mpf(1), mp.mpf(0), mp.mpf(1), 11)
