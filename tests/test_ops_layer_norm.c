// layer_norm and rms_norm against PyTorch 1.13 (F.layer_norm; rms_norm as x rsqrt(mean(x²) +
// eps) w in torch, which 1.13 lacks as a function), float64 reference numbers computed once from
// the patterns named in the comments.
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "support/expect.h"
#include "support/opcheck.h"

// layer_norm over (4, 5) of x = 2 sin(0.37 i) (3, 4, 5), w = 1 + 0.5 cos(0.9 i), b = sin(1.3 i),
// eps 1e-5, dy = cos(0.3 i)
static const double ref_ln_y[60] = {
    -0.117261323526,  1.56640600769,  1.33556279669,   -0.000280722606545, -0.109151016244,
    1.42479680478,    2.45698897646,  1.3714479445,    -0.579313784713,    -1.07539426438,
    -0.0516217258192, 0.281652839301, -1.25670556492,  -2.9930350736,      -2.71407513061,
    -0.78792942676,   0.400833750476, -0.145445391344, -0.724402769705,    0.43034995741,
    1.54042704704,    2.48397041554,  1.49891953824,   -0.204232970898,    -0.602387567501,
    0.252028387631,   0.393852546141, -1.06623032162,  -2.50967532211,     -2.08587852749,
    -0.422471022782,  0.206461038433, -0.88394167946,  -1.81561979163,     -0.869809695096,
    1.01266112823,    1.56862551571,  0.449163141064,  -0.337746271637,    0.589047084802,
    1.57296698998,    1.80769661794,  0.637467769787,  -0.908036478562,    -1.3808608788,
    -0.942476721535,  -1.01129789955, -2.02895506681,  -2.66397927819,     -1.70553156105,
    0.0880583721931,  0.943649926967, 0.514630770104,  0.266809114541,     1.22379586464,
    2.36440975064,    2.0545979755,   0.455373905021,  -0.631537123419,    -0.302980912495};
static const double ref_ln_dx[60] = {
    1.18138154813,   0.85304056746,    0.341123970496,  -0.0379292118844, -0.182536351267,
    -0.270385340019, -0.474547281787,  -0.706705967032, -0.722033811051,  -0.450735902199,
    -0.124594111573, -0.0237696656215, -0.15337643866,  -0.253201581409,  -0.126115655454,
    0.128448680552,  0.263519223825,   0.214820051378,  0.182950232615,   0.360647043495,
    0.636936558529,  0.499853763129,   0.199975383861,  0.0147518642457,  0.0762437285673,
    0.231271781092,  0.252878536708,   0.127150970519,  0.0497481496254,  0.143375677586,
    0.267963496828,  0.177987247419,   -0.164604719274, -0.5183107046,    -0.627738916708,
    -0.499418586672, -0.350026457475,  -0.305517687915, -0.241940283953,  0.0294201984853,
    1.09163915877,   1.03929603517,    0.697161733252,  0.358529860468,   0.241286485106,
    0.255707885013,  0.155525875826,   -0.12828499959,  -0.397653891552,  -0.450412400937,
    -0.351014295513, -0.35388798662,   -0.571100249993, -0.808284769493,  -0.784501396532,
    -0.466106495778, -0.0995357434929, 0.0919205331406, 0.160324246669,   0.31939041609};
static const double ref_ln_dw[20] = {
    1.79277691816,   2.22038193038,   1.95532646425,   1.11987907234,  0.0919304816131,
    -0.659863524135, -0.781019787388, -0.18743267077,  0.894954370285, 2.02446061621,
    2.73149166911,   2.71895237882,   1.9888378462,    0.84044154357,  -0.258955655545,
    -0.875008444923, -0.792063374464, -0.103609379971, 0.83144375553,  1.547469889};
static const double ref_ln_db[20] = {
    2.80402424538,  2.9199277434,    2.77500279237,   2.38219510656,  1.77659302665,
    1.01229318281,  0.157568203819,  -0.711231873545, -1.51649972587, -2.1863031742,
    -2.66081067134, -2.89763587578,  -2.87562389731,  -2.59674100043, -2.08589896373,
    -1.38872978493, -0.567509510427, 0.304404698456,  1.14912734222,  1.89120186289};
// rms_norm (x rsqrt(mean(x^2) + 1e-6) w, over (4, 5)), same x, w, dy
static const double ref_rms_y[60] = {0,
                                     0.703175367244,
                                     0.886652038703,
                                     0.728102490868,
                                     0.814941839303,
                                     1.27572263646,
                                     1.55668266066,
                                     1.1660507136,
                                     0.349400457889,
                                     -0.244012038844,
                                     -0.427923483346,
                                     -0.659689777551,
                                     -1.28994843092,
                                     -1.95446605289,
                                     -1.98594898606,
                                     -1.28811457848,
                                     -0.458544918099,
                                     0.00546948681084,
                                     0.305305987433,
                                     0.918136139528,
                                     1.79929366087,
                                     1.74339941634,
                                     1.13503614841,
                                     0.579566755014,
                                     0.381552067449,
                                     0.20763251884,
                                     -0.341082044447,
                                     -1.07227505587,
                                     -1.40080895455,
                                     -1.13109883951,
                                     -0.722712924144,
                                     -0.659438628011,
                                     -0.80033854878,
                                     -0.616430330231,
                                     0.0272812565855,
                                     0.64817564798,
                                     0.794688758384,
                                     0.651129817951,
                                     0.744309044951,
                                     1.16429494776,
                                     1.72445370533,
                                     0.979562609752,
                                     0.216119901331,
                                     -0.160368427846,
                                     -0.435522348055,
                                     -1.05522114524,
                                     -1.85733622713,
                                     -2.17406899925,
                                     -1.68605410703,
                                     -0.844153177813,
                                     -0.271942505019,
                                     0.0165592926874,
                                     0.501154160191,
                                     1.33072852736,
                                     1.97861774167,
                                     1.88761581014,
                                     1.21244949773,
                                     0.618669389482,
                                     0.413190849642,
                                     0.213208344488};
static const double ref_rms_dx[60] = {
    1.11260209217,   0.787983765518,   0.279978962462,   -0.0962538784613, -0.239666658541,
    -0.327509408797, -0.532291943292,  -0.765798488626,  -0.783667617407,  -0.515966282848,
    -0.193396740884, -0.0949194201221, -0.225356453695,  -0.325120147104,  -0.197647432684,
    0.0578266010664, 0.194852513444,   0.149029518769,   0.119977780259,   0.29948050187,
    0.543911578476,  0.412004943396,   0.116681348726,   -0.0696131990576, -0.0166552666157,
    0.126214491896,  0.137499914987,   0.00488848997758, -0.0783384259827, 0.00923394746137,
    0.130715178236,  0.0452374046736,  -0.284929351751,  -0.623579996253,  -0.721204768734,
    -0.585535113372, -0.430550203639,  -0.38100336862,   -0.316032340483,  -0.050766699428,
    1.07122826615,   1.01849085023,    0.677450909297,   0.339836313744,   0.222407919665,
    0.23607310763,   0.136068332742,   -0.14618184328,   -0.413734187038,  -0.465617281157,
    -0.365992450166, -0.36793567792,   -0.582994217744,  -0.818040106199,  -0.793850892915,
    -0.477049449522, -0.112688671326,  0.0772370672676,  0.144549283045,   0.301830936694};
static const double ref_rms_dw[20] = {
    2.12187693068,   2.56326310262,   2.28602656262,    1.41220462829,  0.319853286596,
    -0.520409073431, -0.748868494484, -0.272222648732,  0.696106088388, 1.72828118335,
    2.36707485279,   2.32360722663,   1.60230765732,    0.499070015491, -0.526600802526,
    -1.05017322812,  -0.865545385003, -0.0740553363415, 0.959438473172, 1.76441715052};

static void norms_match_torch(void **state) {
    (void)state;
    for (int d = 0; d < 2; d++) {
        nb_dtype dt = d ? NB_F64 : NB_F32;
        double tol = d ? 1e-10 : 2e-5;
        nb_tensor *x = pattern(dt, 3, (int64_t[]){3, 4, 5}, sin, 0.37, 2, 0, true);
        nb_tensor *w = pattern(dt, 2, (int64_t[]){4, 5}, cos, 0.9, 0.5, 1, true);
        nb_tensor *b = pattern(dt, 2, (int64_t[]){4, 5}, sin, 1.3, 1, 0, true);
        nb_tensor *dy = pattern(dt, 3, (int64_t[]){3, 4, 5}, cos, 0.3, 1, 0, false);
        nb_graph *g = nb_graph_create();
        nb_tensor *y = nb_layer_norm(g, x, 2, w, b, 1e-5);
        assert_true(all_near(y, false, ref_ln_y, 60, tol));
        assert_int_equal(nb_backward_with(g, y, dy), NB_OK);
        assert_true(all_near(x, true, ref_ln_dx, 60, tol));
        assert_true(all_near(w, true, ref_ln_dw, 20, tol));
        assert_true(all_near(b, true, ref_ln_db, 20, tol));
        nb_graph_reset(g);
        nb_tensor_zero_grad(x);
        nb_tensor_zero_grad(w);
        y = nb_rms_norm(g, x, 2, w, 1e-6);
        assert_true(all_near(y, false, ref_rms_y, 60, tol));
        assert_int_equal(nb_backward_with(g, y, dy), NB_OK);
        assert_true(all_near(x, true, ref_rms_dx, 60, tol));
        assert_true(all_near(w, true, ref_rms_dw, 20, tol));
        nb_graph_destroy(g);
        nb_tensor *ts[] = {x, w, b, dy};
        for (int i = 0; i < 4; i++)
            nb_tensor_destroy(ts[i]);
    }
}

// Rows of ±1e4 around 1e4: the two-pass variance keeps full precision (a one-pass E[x²] - E[x]²
// would cancel to noise in float32).
static void layer_norm_large_offset(void **state) {
    (void)state;
    nb_tensor *x = nb_tensor_create(NB_F32, 2, (int64_t[]){1, 4});
    const double v[] = {10000, 10001, 10002, 10003};
    for (int i = 0; i < 4; i++)
        nb_tensor_set(x, i, v[i]);
    nb_graph *g = nb_graph_create();
    nb_tensor *y = nb_layer_norm(g, x, 1, NULL, NULL, 1e-5);
    // mean 10001.5, var 1.25: y = (v - mean) / sqrt(1.25 + 1e-5)
    for (int i = 0; i < 4; i++)
        assert_true(oc_near(nb_tensor_get(y, i), (v[i] - 10001.5) / sqrt(1.25 + 1e-5), 1e-5));
    nb_graph_destroy(g);
    nb_tensor_destroy(x);
}

// x (r, d) = offset + spread sin(0.37 i), weight 1 + 0.5 cos(0.9 j), bias sin(1.3 j),
// dy = cos(0.3 i), made in float32 and, for `like`, copied from it into float64 (the same
// values). run_norm: y = layer_norm (rms: rms_norm) over the last axis and `sweeps` backward
// passes without zeroing, so the second adds into every gradient.
typedef struct {
    nb_tensor *x, *w, *b, *dy, *y;
    nb_graph *g;
} ln_run;
static nb_tensor *copy_as(nb_dtype dt, const nb_tensor *t, bool grad) {
    nb_tensor *c = nb_tensor_create(dt, nb_tensor_ndim(t), nb_tensor_shape(t));
    assert_non_null(c);
    for (int64_t i = 0; i < nb_tensor_numel(t); i++)
        nb_tensor_set(c, i, nb_tensor_get(t, i));
    nb_tensor_set_requires_grad(c, grad);
    return c;
}
static ln_run ln_inputs(int64_t r, int64_t d, double offset, double spread) {
    ln_run u = {.g = nb_graph_create()};
    u.x = pattern(NB_F32, 2, (int64_t[]){r, d}, sin, 0.37, spread, offset, true);
    u.w = pattern(NB_F32, 1, (int64_t[]){d}, cos, 0.9, 0.5, 1, true);
    u.b = pattern(NB_F32, 1, (int64_t[]){d}, sin, 1.3, 1, 0, true);
    u.dy = pattern(NB_F32, 2, (int64_t[]){r, d}, cos, 0.3, 1, 0, false);
    return u;
}
static ln_run ln_as_f64(const ln_run *f) {
    ln_run u = {.g = nb_graph_create()};
    u.x = copy_as(NB_F64, f->x, true), u.w = copy_as(NB_F64, f->w, true);
    u.b = copy_as(NB_F64, f->b, true), u.dy = copy_as(NB_F64, f->dy, false);
    return u;
}
static void run_norm(ln_run *u, bool rms, int sweeps) {
    for (int s = 0; s < sweeps; s++) {
        nb_graph_reset(u->g);
        u->y = rms ? nb_rms_norm(u->g, u->x, 1, u->w, 1e-6)
                   : nb_layer_norm(u->g, u->x, 1, u->w, u->b, 1e-5);
        assert_non_null(u->y);
        assert_int_equal(nb_backward_with(u->g, u->y, u->dy), NB_OK);
    }
}
static void ln_free(ln_run *u) {
    nb_graph_destroy(u->g);
    nb_tensor *ts[] = {u->x, u->w, u->b, u->dy};
    for (int i = 0; i < 4; i++)
        nb_tensor_destroy(ts[i]);
}
// The values (grad: gradients) of a and b, same shape, agree bit for bit.
static bool same_bits(const nb_tensor *a, const nb_tensor *b, bool grad) {
    for (int64_t i = 0; i < nb_tensor_numel(a); i++) {
        double va = grad ? nb_tensor_grad_get(a, i) : nb_tensor_get(a, i);
        double vb = grad ? nb_tensor_grad_get(b, i) : nb_tensor_get(b, i);
        if (memcmp(&va, &vb, sizeof va) != 0) {
            fprintf(stderr, "  element %lld: %.17g vs %.17g\n", (long long)i, va, vb);
            return false;
        }
    }
    return true;
}
// Within tol (relative to max(1, |b|)) of the float64 run b.
static bool near_rel(const nb_tensor *a, const nb_tensor *b, bool grad, double tol) {
    for (int64_t i = 0; i < nb_tensor_numel(a); i++) {
        double va = grad ? nb_tensor_grad_get(a, i) : nb_tensor_get(a, i);
        double vb = grad ? nb_tensor_grad_get(b, i) : nb_tensor_get(b, i);
        if (!(fabs(va - vb) <= tol * fmax(1, fabs(vb)))) {
            fprintf(stderr, "  element %lld: %.9g vs float64 %.12g\n", (long long)i, va, vb);
            return false;
        }
    }
    return true;
}

// (300, 200): 60 K elements, above the parallel threshold, in 4 blocks of rows (the weight and
// bias gradients are per-block partial sums), rows of 200 = 6 x 32 lanes + a remainder of 8.
// One and two threads give the same bits in y and every gradient, both dtypes, both ops.
static void layer_norm_threads_bitwise(void **state) {
    (void)state;
    int before = nb_get_num_threads();
    for (int k = 0; k < 4; k++) {
        bool f64 = k & 1, rms = k >= 2;
        ln_run a = ln_inputs(300, 200, 0.5, 2), b = ln_inputs(300, 200, 0.5, 2);
        if (f64) {
            ln_run a64 = ln_as_f64(&a), b64 = ln_as_f64(&b);
            ln_free(&a), ln_free(&b);
            a = a64, b = b64;
        }
        nb_set_num_threads(1);
        run_norm(&a, rms, 2);
        nb_set_num_threads(2);
        run_norm(&b, rms, 2);
        assert_true(same_bits(a.y, b.y, false));
        assert_true(same_bits(a.x, b.x, true));
        assert_true(same_bits(a.w, b.w, true));
        if (!rms)
            assert_true(same_bits(a.b, b.b, true));
        ln_free(&a), ln_free(&b);
    }
    nb_set_num_threads(before);
}

// float32 against float64 on the same inputs: (300, 200) as above, (7, 45) (a remainder in
// every loop) and rows of 1e4 + 0.05 sin, whose means no float holds: the float32 kernels
// subtract a mean as two floats (one rounded float would be off by up to 5e-4, 1 % of the
// spread, and fail here). Two backward sweeps: the second adds into every gradient.
static void layer_norm_f32_matches_f64(void **state) {
    (void)state;
    const struct {
        int64_t r, d;
        double offset, spread;
    } cases[] = {{300, 200, 0.5, 2}, {7, 45, -1, 3}, {64, 96, 1e4, 0.05}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
        for (int rms = 0; rms < 2; rms++) {
            ln_run f = ln_inputs(cases[c].r, cases[c].d, cases[c].offset, cases[c].spread);
            ln_run e = ln_as_f64(&f);
            run_norm(&f, rms, 2);
            run_norm(&e, rms, 2);
            // dw sums 300 rows: its terms are O(1), its tolerance scaled by the row count
            double tw = 2e-6 * (double)cases[c].r;
            assert_true(near_rel(f.y, e.y, false, 2e-6));
            assert_true(near_rel(f.x, e.x, true, 2e-5));
            assert_true(near_rel(f.w, e.w, true, tw));
            if (!rms)
                assert_true(near_rel(f.b, e.b, true, tw));
            ln_free(&f), ln_free(&e);
        }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(norms_match_torch),
        cmocka_unit_test(layer_norm_large_offset),
        cmocka_unit_test(layer_norm_threads_bitwise),
        cmocka_unit_test(layer_norm_f32_matches_f64),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
