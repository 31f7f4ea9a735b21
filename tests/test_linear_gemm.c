// src/ops/linear_gemm.c: linear's float32 register-tiled GEMMs (AVX-512 only; skipped on other
// CPUs, where linear stays on OpenBLAS). The three kernels against a double-precision sum over
// odd shapes: 1 element, rows and columns that are and are not multiples of the 8-row tiles and
// 16-float vectors, dw's K below, at and past its 256-row blocks (128 for x wider than 256); dx and
// dw written over NaN and accumulated, and the bias grad dw's tiles sum on the way (bit for bit
// the row-order float sum). Then through nb_linear (the minimum of rows lowered so small
// shapes take the tiles): a rank-3 x, x and w feeding two linears through a scale (so dx and dw are
// first written by one backward, then accumulated by the other), against the OpenBLAS path
// (nb__lgemm_isa = 1); and the bits of y and of every grad at 1 and 2 threads on a shape that forks
// the team (dx, dw and the bias grad in one region, each thread taking a share of all three).
// nb__lgemm_bwd_f32 (one thread, dx and dw interleaved) gives the parts' bits on every shape.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nabla.h"
#include "ops/ops_impl.h" // nb__lgemm_*

static double urand(unsigned *s) {
    *s = *s * 1103515245u + 12345u;
    return (double)((*s >> 8) & 0xFFFF) / 32768.0 - 1.0;
}

static bool have_tiles(void) {
    return nb__lgemm_ok(NB_F32, 4096, 128, 128);
}

static float *frand(int64_t n, unsigned *seed) {
    float *p = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    assert_non_null(p);
    for (int64_t i = 0; i < n; i++)
        p[i] = (float)urand(seed);
    return p;
}

// |got - Σ_p a(i, p) b(p, j) - c0| within (k + 2) eps (Σ|a b| + |c0|), whatever the order.
static void expect_close(double got, double s, double mag, double c0, int64_t k) {
    double tol = (double)(k + 2) * (double)FLT_EPSILON * (mag + fabs(c0));
    if (!(fabs(got - (s + c0)) <= tol))
        fail_msg("got %.9g want %.9g (tol %.3g, k %lld)", got, s + c0, tol, (long long)k);
}

static void check_shape(int64_t rows, int64_t in, int64_t out, unsigned seed) {
    float *x = frand(rows * in, &seed), *w = frand(out * in, &seed), *b = frand(out, &seed);
    float *dy = frand(rows * out, &seed), *y = frand(rows * out, &seed);
    float *wp = malloc((size_t)NB_LGEMM_WP_FLOATS(in, out) * sizeof(float));
    float *wt = malloc((size_t)NB_LGEMM_WT_FLOATS(in, out) * sizeof(float)),
          *dx = frand(rows * in, &seed);
    float *dw = frand(out * in, &seed), *dx0 = frand(rows * in, &seed);
    float *dw0 = frand(out * in, &seed), *db = frand(out, &seed), *db0 = frand(out, &seed);
    // the parts' results, for nb__lgemm_bwd_f32 below: [acc]
    float *pdx[2], *pdw[2], *pdb[2], *fdx = malloc((size_t)(rows * in) * sizeof(float));
    float *fdw = malloc((size_t)(out * in) * sizeof(float)),
          *fdb = malloc((size_t)out * sizeof *fdb);
    assert_non_null(wt), assert_non_null(wp);
    nb__lgemm_pack_w(w, out, in, wp);
    assert_non_null(fdx), assert_non_null(fdw), assert_non_null(fdb);
    for (int bias = 0; bias < 2; bias++) { // forward: y = x wᵀ (+ b)
        for (int64_t i = 0; i < rows * out; i++)
            y[i] = NAN;
        nb__lgemm_fwd_f32(x, w, bias ? b : NULL, y, rows, in, out, wt);
        for (int64_t r = 0; r < rows; r++)
            for (int64_t o = 0; o < out; o++) {
                double s = 0, mag = 0;
                float chain = 0; // the kernel's order: one FMA chain over p, then + b
                for (int64_t p = 0; p < in; p++) {
                    double t = (double)x[r * in + p] * (double)w[o * in + p];
                    s += t, mag += fabs(t);
                    chain = fmaf(x[r * in + p], w[o * in + p], chain);
                }
                expect_close(y[r * out + o], s, mag, bias ? (double)b[o] : 0.0, in);
                if (bias)
                    chain += b[o];
                if (memcmp(&chain, &y[r * out + o], sizeof chain) != 0)
                    fail_msg("forward (%lld, %lld, %lld) y[%lld, %lld] = %a, one FMA chain %a",
                             (long long)rows, (long long)in, (long long)out, (long long)r,
                             (long long)o, (double)y[r * out + o], (double)chain);
            }
    }
    for (int acc = 0; acc < 2; acc++) {
        for (int64_t i = 0; i < rows * in; i++)
            dx[i] = acc ? dx0[i] : NAN;
        for (int64_t i = 0; i < out * in; i++)
            dw[i] = acc ? dw0[i] : NAN;
        // dx (rows, in) = dy w, dw (out, in) = dyᵀ x, each in two tile ranges (as two threads
        // of linear's backward region would take them)
        int64_t tx = nb__lgemm_tiles(rows), tw = nb__lgemm_tiles(out);
        nb__lgemm_dx_part_f32(0, tx / 2, dy, w, dx, rows, in, out, acc, NULL);
        nb__lgemm_dx_part_f32(tx / 2, tx, dy, w, dx, rows, in, out, acc, NULL);
        if (!acc) { // stored dx on w's panels: the same bits, those of one FMA chain over o
            for (int64_t i = 0; i < rows * in; i++)
                fdx[i] = NAN;
            nb__lgemm_dx_part_f32(0, tx / 2, dy, w, fdx, rows, in, out, false, wp);
            nb__lgemm_dx_part_f32(tx / 2, tx, dy, w, fdx, rows, in, out, false, wp);
            if (memcmp(fdx, dx, (size_t)(rows * in) * sizeof(float)))
                fail_msg("dx on w's panels differs (rows %lld, in %lld, out %lld)", (long long)rows,
                         (long long)in, (long long)out);
            for (int64_t r = 0; r < rows; r++)
                for (int64_t i = 0; i < in; i++) {
                    float chain = 0;
                    for (int64_t o = 0; o < out; o++)
                        chain = fmaf(dy[r * out + o], w[o * in + i], chain);
                    if (memcmp(&chain, &dx[r * in + i], sizeof chain) != 0)
                        fail_msg("dx (%lld, %lld, %lld)[%lld, %lld] = %a, one FMA chain %a",
                                 (long long)rows, (long long)in, (long long)out, (long long)r,
                                 (long long)i, (double)dx[r * in + i], (double)chain);
                }
        }
        for (int64_t o = 0; o < out; o++)
            db[o] = acc ? db0[o] : NAN;
        nb__lgemm_dw_part_f32(0, tw / 2, dy, x, dw, rows, in, out, acc, db, acc);
        nb__lgemm_dw_part_f32(tw / 2, tw, dy, x, dw, rows, in, out, acc, db, acc);
        for (int64_t o = 0; o < out; o++) { // db: the float sum in row order, bit for bit
            float want = acc ? db0[o] : 0.0f;
            for (int64_t r = 0; r < rows; r++)
                want += dy[r * out + o];
            if (db[o] != want)
                fail_msg("db[%lld] = %.9g, want %.9g (rows %lld, in %lld, out %lld, acc %d)",
                         (long long)o, (double)db[o], (double)want, (long long)rows, (long long)in,
                         (long long)out, acc);
        }
        for (int64_t r = 0; r < rows; r++)
            for (int64_t i = 0; i < in; i++) {
                double s = 0, mag = 0;
                for (int64_t o = 0; o < out; o++) {
                    double t = (double)dy[r * out + o] * (double)w[o * in + i];
                    s += t, mag += fabs(t);
                }
                expect_close(dx[r * in + i], s, mag, acc ? (double)dx0[r * in + i] : 0.0, out);
            }
        for (int64_t o = 0; o < out; o++)
            for (int64_t i = 0; i < in; i++) {
                double s = 0, mag = 0;
                for (int64_t r = 0; r < rows; r++) {
                    double t = (double)dy[r * out + o] * (double)x[r * in + i];
                    s += t, mag += fabs(t);
                }
                expect_close(dw[o * in + i], s, mag, acc ? (double)dw0[o * in + i] : 0.0, rows);
            }
        pdx[acc] = dx, pdw[acc] = dw, pdb[acc] = db;
        if (!acc)
            dx = frand(rows * in, &seed), dw = frand(out * in, &seed), db = frand(out, &seed);
    }
    // The 1-thread backward (dx and dw interleaved by blocks): the parts' bits, for every mix of
    // first writes and accumulation, with and without the bias grad, with and without w's panels.
    for (int mix = 0; mix < 16; mix++) {
        bool ax = mix & 1, aw = mix & 2, ab = mix & 4;
        const float *pw = mix & 8 ? wp : NULL;
        for (int64_t i = 0; i < rows * in; i++)
            fdx[i] = ax ? dx0[i] : NAN;
        for (int64_t i = 0; i < out * in; i++)
            fdw[i] = aw ? dw0[i] : NAN;
        for (int64_t o = 0; o < out; o++)
            fdb[o] = ab ? db0[o] : NAN;
        bool with_db = mix != 3; // db's sums do not depend on dw's flag; once without db
        nb__lgemm_bwd_f32(dy, x, w, fdx, fdw, rows, in, out, ax, aw, with_db ? fdb : NULL, ab, pw);
        if (memcmp(fdx, pdx[ax], (size_t)(rows * in) * sizeof(float)) ||
            memcmp(fdw, pdw[aw], (size_t)(out * in) * sizeof(float)) ||
            (with_db && memcmp(fdb, pdb[ab], (size_t)out * sizeof(float))))
            fail_msg("nb__lgemm_bwd_f32 differs from the parts (rows %lld, in %lld, out %lld, acc "
                     "dx %d dw %d db %d, panels %d)",
                     (long long)rows, (long long)in, (long long)out, ax, aw, ab, pw != NULL);
    }
    free(x), free(w), free(b), free(dy), free(y), free(wt), free(wp), free(dx0), free(dw0);
    free(db0);
    for (int a = 0; a < 2; a++)
        free(pdx[a]), free(pdw[a]), free(pdb[a]);
    free(fdx), free(fdw), free(fdb);
}

static void kernels_match_double_sums(void **state) {
    (void)state;
    if (!have_tiles())
        skip();
    static const int64_t R[] = {1, 7, 8, 9, 23, 255, 256, 257, 600};
    static const int64_t N[] = {1, 3, 16, 17, 33, 48, 113};
    unsigned seed = 11;
    for (size_t r = 0; r < sizeof R / sizeof *R; r++)
        for (size_t i = 0; i < sizeof N / sizeof *N; i++)
            for (size_t o = 0; o < sizeof N / sizeof *N; o++)
                if (R[r] <= 23 || (i + o) % 3 == 0) // the long K on a third of the widths
                    check_shape(R[r], N[i], N[o], seed++);
    // x wider than 256: dw's K in blocks of 128 rows (below, at and past them).
    static const int64_t RW[] = {127, 128, 129, 300};
    for (size_t r = 0; r < sizeof RW / sizeof *RW; r++)
        check_shape(RW[r], 257 + (int64_t)r * 127, 17 + (int64_t)r * 16, seed++);
}

// y = linear(x / 2, w / 2, b), and the grads of x (rank 3), w and b through two linears that
// share x / 2 and w / 2, for one setting of the kernels: (y, gx, gw, gb) in that order in res.
static void run_linear(int64_t bt, int64_t t, int64_t in, int64_t o, float *res) {
    unsigned seed = 5;
    nb_tensor *x = nb_tensor_create(NB_F32, 3, (int64_t[]){bt, t, in});
    nb_tensor *w = nb_tensor_create(NB_F32, 2, (int64_t[]){o, in});
    nb_tensor *b = nb_tensor_create(NB_F32, 1, (int64_t[]){o});
    nb_tensor *up = nb_tensor_create(NB_F32, 3, (int64_t[]){bt, t, o});
    nb_tensor *ts[] = {x, w, b, up};
    for (int k = 0; k < 4; k++) {
        assert_non_null(ts[k]);
        float *p = nb_tensor_data(ts[k]);
        for (int64_t i = 0; i < nb_tensor_numel(ts[k]); i++)
            p[i] = (float)urand(&seed);
        nb_tensor_set_requires_grad(ts[k], k < 3);
    }
    nb_graph *g = nb_graph_create();
    // xs and ws are not leaves: the backward of the later linear writes their grads first
    // (dx, dw over garbage), the earlier one adds.
    nb_tensor *xs = nb_scale(g, x, 0.5), *ws = nb_scale(g, w, 0.5);
    nb_tensor *y1 = nb_linear(g, xs, ws, b), *y2 = nb_linear(g, xs, ws, NULL);
    nb_tensor *y = nb_add(g, y1, y2);
    assert_int_equal(nb_backward_with(g, y, up), NB_OK);
    int64_t ny = bt * t * o, nx = bt * t * in;
    memcpy(res, nb_tensor_data(y1), (size_t)ny * sizeof(float));
    memcpy(res + ny, nb_tensor_grad(x), (size_t)nx * sizeof(float));
    memcpy(res + ny + nx, nb_tensor_grad(w), (size_t)(o * in) * sizeof(float));
    memcpy(res + ny + nx + o * in, nb_tensor_grad(b), (size_t)o * sizeof(float));
    nb_graph_destroy(g);
    for (int k = 0; k < 4; k++)
        nb_tensor_destroy(ts[k]);
}

static size_t res_len(int64_t bt, int64_t t, int64_t in, int64_t o) {
    return (size_t)(bt * t * o + bt * t * in + o * in + o);
}

static void linear_op_matches_openblas(void **state) {
    (void)state;
    if (!have_tiles())
        skip();
    const int64_t bt = 3, t = 7, in = 19, o = 33;
    size_t n = res_len(bt, t, in, o);
    float *tiles = malloc(n * sizeof(float)), *blas = malloc(n * sizeof(float));
    assert_non_null(tiles), assert_non_null(blas);
    nb__lgemm_min_rows = 1;
    run_linear(bt, t, in, o, tiles);
    nb__lgemm_isa = 1;
    run_linear(bt, t, in, o, blas);
    nb__lgemm_isa = 0;
    nb__lgemm_min_rows = NB_LGEMM_MIN_ROWS_DEFAULT;
    for (size_t i = 0; i < n; i++) // sums of <= 2 x 33 products of |.| <= 1 in float
        if (!(fabsf(tiles[i] - blas[i]) <= 1e-4f))
            fail_msg("element %zu: tiles %.9g, OpenBLAS %.9g", i, (double)tiles[i],
                     (double)blas[i]);
    free(tiles), free(blas);
}

static void bits_do_not_depend_on_threads(void **state) {
    (void)state;
    if (!have_tiles())
        skip();
    const int64_t bt = 8, t = 75, in = 72, o = 130; // 600 rows: 75 row tiles, 2^22 MACs
    size_t n = res_len(bt, t, in, o);
    float *one = malloc(n * sizeof(float)), *two = malloc(n * sizeof(float));
    assert_non_null(one), assert_non_null(two);
    nb_set_num_threads(1);
    run_linear(bt, t, in, o, one);
    nb_set_num_threads(2);
    run_linear(bt, t, in, o, two);
    nb_set_num_threads(1);
    assert_memory_equal(one, two, n * sizeof(float));
    free(one), free(two);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(kernels_match_double_sums),
        cmocka_unit_test(linear_op_matches_openblas),
        cmocka_unit_test(bits_do_not_depend_on_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
