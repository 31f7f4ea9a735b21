// src/ops/attention_gemm.c: attention's small GEMMs and transposes against a naive reference,
// on every ISA build the CPU runs (nb__agemm_isa), float32 and float64, over the slice shapes
// T = 1, 2, 5, 12, 17, 30, 64, 256 (every row-block size: 8, 4, 1) and D = 1, 3, 32, 64, 100
// (widths that are and are not multiples of the vectors), A plain and transposed, C written and
// accumulated, rows with padding (ld past the width, padding checked untouched); the causal
// cuts on operands whose cut entries are 0, as attention's are; beta = 0 ignoring NaN in C.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>

#include "ops/ops_impl.h" // nb__agemm_*, nb__atranspose_*, nb__agemm_isa

static const int64_t TS[] = {1, 2, 5, 12, 17, 30, 64, 256}, DS[] = {1, 3, 32, 64, 100};
#define PAD 5    // extra elements per row of every operand
#define SENT 7.5 // what padding holds

static double urand(unsigned *s) {
    *s = *s * 1103515245u + 12345u;
    return (double)((*s >> 8) & 0xFFFF) / 32768.0 - 1.0;
}

// One product C (m, n) = alpha op(A) B (+ C), op(A) (m, k); with `cut`, A is 0 where the cut
// says its terms vanish (causal with offset r0: op(A)[i][p] = 0 for p > i + r0 when hi, for
// p < i - r0 when lo), and only the columns j <= i + r0 are compared when col. Checked
// against a double sum with the bound (k + 2) eps (|alpha| Σ|a b| + |c|), any order, FMA or not.
static void check_case(bool f32, int isa, bool ta, bool acc, int64_t m, int64_t n, int64_t k,
                       int cutkind, int64_t r0, unsigned seed) {
    int64_t lda = (ta ? m : k) + PAD, ldb = n + PAD, ldc = n + PAD;
    int64_t na = (ta ? k : m) * lda, nb = k * ldb, nc = m * ldc;
    double *a = malloc((size_t)na * sizeof(double)), *b = malloc((size_t)nb * sizeof(double));
    double *c0 = malloc((size_t)nc * sizeof(double));
    assert_non_null(a), assert_non_null(b), assert_non_null(c0);
    for (int64_t i = 0; i < na; i++)
        a[i] = urand(&seed);
    for (int64_t i = 0; i < nb; i++)
        b[i] = urand(&seed);
    for (int64_t i = 0; i < nc; i++)
        c0[i] = acc ? urand(&seed) : (double)NAN;
    for (int64_t i = 0; i < m; i++) // padding of A, B, C
        for (int64_t p = 0; p < k; p++) {
            double *e = ta ? &a[p * lda + i] : &a[i * lda + p];
            if ((cutkind == 1 && p > i + r0) || (cutkind == 2 && p < i - r0))
                *e = 0;
        }
    for (int64_t r = 0; r < (ta ? k : m); r++)
        for (int64_t j = lda - PAD; j < lda; j++)
            a[r * lda + j] = SENT;
    for (int64_t r = 0; r < k; r++)
        for (int64_t j = n; j < ldb; j++)
            b[r * ldb + j] = SENT;
    for (int64_t r = 0; r < m; r++)
        for (int64_t j = n; j < ldc; j++)
            c0[r * ldc + j] = SENT;
    float alpha = 0.375f;
    nb__agemm_cut cut = {-NB_AGEMM_OPEN, NB_AGEMM_OPEN, NB_AGEMM_OPEN};
    if (cutkind == 1)
        cut.hi = r0;
    if (cutkind == 2)
        cut.lo = -r0;
    if (cutkind == 3)
        cut.col = r0;
    const nb__agemm_cut *cp = cutkind ? &cut : NULL;
    double *c = malloc((size_t)nc * sizeof(double));
    assert_non_null(c);
    nb__agemm_isa = isa;
    if (f32) {
        float *af = malloc((size_t)na * sizeof(float)), *bf = malloc((size_t)nb * sizeof(float));
        float *cf = malloc((size_t)nc * sizeof(float));
        assert_non_null(af), assert_non_null(bf), assert_non_null(cf);
        for (int64_t i = 0; i < na; i++)
            af[i] = (float)a[i];
        for (int64_t i = 0; i < nb; i++)
            bf[i] = (float)b[i];
        for (int64_t i = 0; i < nc; i++)
            cf[i] = (float)c0[i];
        nb__agemm_f32(ta, m, n, k, alpha, af, lda, bf, ldb, acc, cf, ldc, cp);
        for (int64_t i = 0; i < nc; i++)
            c[i] = cf[i];
        free(af), free(bf), free(cf);
    } else {
        for (int64_t i = 0; i < nc; i++)
            c[i] = c0[i];
        nb__agemm_f64(ta, m, n, k, alpha, a, lda, b, ldb, acc, c, ldc, cp);
    }
    nb__agemm_isa = 0;
    double eps = f32 ? (double)FLT_EPSILON : DBL_EPSILON;
    for (int64_t i = 0; i < m; i++) {
        for (int64_t j = 0; j < n; j++) {
            double s = 0, mag = 0;
            for (int64_t p = 0; p < k; p++) {
                double t = (ta ? a[p * lda + i] : a[i * lda + p]) * b[p * ldb + j];
                if (f32) // the float operands
                    t = (double)(float)(ta ? a[p * lda + i] : a[i * lda + p]) *
                        (double)(float)b[p * ldb + j];
                s += t, mag += fabs(t);
            }
            double prev = acc ? (f32 ? (double)(float)c0[i * ldc + j] : c0[i * ldc + j]) : 0;
            double want = (double)alpha * s + prev, got = c[i * ldc + j];
            if (cutkind == 3 && j > i + r0) { // not compared, but not NaN (beta = 0 over NaN)
                assert_true(isfinite(got));
                continue;
            }
            double tol = (double)(k + 2) * eps * ((double)alpha * mag + fabs(prev));
            if (!(fabs(got - want) <= tol))
                fail_msg(
                    "f%d isa %d ta %d acc %d m %lld n %lld k %lld cut %d r0 %lld: C[%lld][%lld] "
                    "= %.9g, want %.9g (tol %.3g)",
                    f32 ? 32 : 64, isa, ta, acc, (long long)m, (long long)n, (long long)k, cutkind,
                    (long long)r0, (long long)i, (long long)j, got, want, tol);
        }
        for (int64_t j = n; j < ldc; j++)
            assert_true(c[i * ldc + j] == SENT);
    }
    free(a), free(b), free(c0), free(c);
}

static void test_products(void **state) {
    (void)state;
    unsigned seed = 1;
    for (int isa = 0; isa < 3; isa++)
        for (int f = 0; f < 2; f++)
            for (size_t ti = 0; ti < sizeof TS / sizeof *TS; ti++)
                for (size_t di = 0; di < sizeof DS / sizeof *DS; di++) {
                    int64_t t = TS[ti], d = DS[di];
                    for (int ta = 0; ta < 2; ta++)
                        for (int acc = 0; acc < 2; acc++) {
                            check_case(f == 0, isa, ta, acc, t, d, t, 0, 0, seed++); // P v
                            check_case(f == 0, isa, ta, acc, t, t, d, 0, 0, seed++); // q kᵀ
                        }
                }
}

// The causal cuts: P v and dS k (hi), Pᵀ dO and dSᵀ q (lo), the scores (col), at the chunk
// offsets attention uses (0 and the chunk's first row) and one past a vector.
static void test_cuts(void **state) {
    (void)state;
    unsigned seed = 99;
    const int64_t r0s[] = {0, 1, 17, 32};
    for (int isa = 0; isa < 3; isa++)
        for (int f = 0; f < 2; f++)
            for (size_t ti = 0; ti < sizeof TS / sizeof *TS; ti++)
                for (size_t ri = 0; ri < sizeof r0s / sizeof *r0s; ri++) {
                    int64_t t = TS[ti], r0 = r0s[ri];
                    for (size_t di = 0; di < sizeof DS / sizeof *DS; di++) {
                        int64_t d = DS[di];
                        check_case(f == 0, isa, false, true, t, d, t + r0, 1, r0, seed++);
                        check_case(f == 0, isa, true, true, t + r0, d, t, 2, r0, seed++);
                        check_case(f == 0, isa, false, false, t, t + r0, d, 3, r0, seed++);
                    }
                }
}

static void test_transpose(void **state) {
    (void)state;
    unsigned seed = 7;
    for (int isa = 0; isa < 3; isa++)
        for (size_t ti = 0; ti < sizeof TS / sizeof *TS; ti++)
            for (size_t di = 0; di < sizeof DS / sizeof *DS; di++) {
                int64_t n = TS[ti], w = DS[di], ld = w + PAD;
                float *xf = malloc((size_t)(n * ld) * sizeof(float)),
                      *tf = malloc((size_t)(n * w) * sizeof(float));
                double *xd = malloc((size_t)(n * ld) * sizeof(double)),
                       *td = malloc((size_t)(n * w) * sizeof(double));
                assert_non_null(xf), assert_non_null(tf), assert_non_null(xd), assert_non_null(td);
                for (int64_t i = 0; i < n * ld; i++)
                    xd[i] = urand(&seed), xf[i] = (float)xd[i];
                nb__agemm_isa = isa;
                nb__atranspose_f32(xf, n, w, ld, tf);
                nb__atranspose_f64(xd, n, w, ld, td);
                nb__agemm_isa = 0;
                for (int64_t j = 0; j < n; j++)
                    for (int64_t p = 0; p < w; p++) {
                        assert_true(tf[p * n + j] == xf[j * ld + p]);
                        assert_true(td[p * n + j] == xd[j * ld + p]);
                    }
                free(xf), free(tf), free(xd), free(td);
            }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_products),
        cmocka_unit_test(test_cuts),
        cmocka_unit_test(test_transpose),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
