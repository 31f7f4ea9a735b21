// Every optimizer against PyTorch: five steps on a fixed trajectory, float64 and float32, with
// the reference parameters computed once by tests/optim_reference.py (torch.optim 1.13) and
// embedded from tests/optim_reference.inc. Also parameter groups (AdamW with two groups),
// clip_grad_norm_, every schedule and ReduceLROnPlateau against PyTorch's values.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "nabla.h"

typedef struct {
    const char *name;
    nb_optim_config cfg;
    double f64[5][6]; // parameters after steps 1..5
    float f32[5][6];
} ref_case;

typedef struct {
    const char *name;
    nb_schedule s;
    int n;
    double lr[20]; // lr at steps 0..n-1
} ref_sched;

#include "optim_reference.inc"

// Allocates t's grad buffer (a backward of sum(t)), so tests can write gradients directly.
static void ensure_grad(nb_tensor *t) {
    nb_graph *g = nb_graph_create();
    assert_non_null(g);
    nb_tensor *y = nb_sum(g, t);
    assert_non_null(y);
    assert_int_equal(nb_backward(g, y), NB_OK);
    nb_graph_destroy(g);
}

static nb_tensor *param(nb_dtype dt, double scale) {
    nb_tensor *t = nb_tensor_create(dt, 2, (int64_t[]){2, 3});
    assert_non_null(t);
    for (int i = 0; i < REF_N; i++)
        nb_tensor_set(t, i, scale * 2 * sin(0.9 * i + 0.3));
    assert_int_equal(nb_tensor_set_requires_grad(t, true), NB_OK);
    ensure_grad(t);
    return t;
}

// The script's gradient: g[i] = cos(1.3 i + 0.7 t) + 0.5 w[i], in double, then cast.
static void set_grad(nb_tensor *w, int t) {
    for (int i = 0; i < REF_N; i++) {
        double g = cos(1.3 * i + 0.7 * t) + 0.5 * nb_tensor_get(w, i);
        if (nb_tensor_dtype(w) == NB_F32)
            nb_tensor_grad_f32(w)[i] = (float)g;
        else
            nb_tensor_grad_f64(w)[i] = g;
    }
}

// Largest |ours - torch| / max(1, |torch|) over the run; fails above tol.
static double run_case(const ref_case *c, nb_dtype dt, double tol) {
    nb_tensor *w = param(dt, 1);
    nb_optim *opt = nb_optim_create(&w, NULL, 1, c->cfg);
    if (!opt)
        fail_msg("%s: %s", c->name, nb_last_error());
    double worst = 0;
    for (int t = 1; t <= REF_STEPS; t++) {
        set_grad(w, t);
        assert_int_equal(nb_optim_step(opt), NB_OK);
        for (int i = 0; i < REF_N; i++) {
            double want = dt == NB_F64 ? c->f64[t - 1][i] : (double)c->f32[t - 1][i];
            double err = fabs(nb_tensor_get(w, i) - want) / fmax(1, fabs(want));
            worst = fmax(worst, err);
            if (!(err <= tol))
                fail_msg("%s (%s) step %d [%d]: %.17g, torch %.17g (error %.3g > %.3g)", c->name,
                         nb_dtype_name(dt), t, i, nb_tensor_get(w, i), want, err, tol);
        }
    }
    assert_int_equal(nb_optim_param_steps(opt, 0), REF_STEPS);
    nb_optim_destroy(opt);
    nb_tensor_destroy(w);
    return worst;
}

static void test_against_pytorch(void **state) {
    (void)state;
    double worst64 = 0, worst32 = 0;
    for (size_t k = 0; k < sizeof ref_cases / sizeof ref_cases[0]; k++) {
        double e64 = run_case(&ref_cases[k], NB_F64, 1e-13);
        double e32 = run_case(&ref_cases[k], NB_F32, 1e-6);
        printf("  %-30s float64 %.2e  float32 %.2e\n", ref_cases[k].name, e64, e32);
        worst64 = fmax(worst64, e64);
        worst32 = fmax(worst32, e32);
    }
    printf("  worst relative difference from PyTorch: float64 %.2e, float32 %.2e\n", worst64,
           worst32);
}

// Each configuration of the reference table over a (50003) float32 tensor whose element i
// starts as element i mod 6 of the reference parameter and gets that element's gradient:
// above the parallel threshold, in 8192-element work items and a remainder, at 1 and 2
// threads. Every element must match the 6-element run bit for bit.
static void test_large_tensor_matches_small(void **state) {
    (void)state;
    const int64_t n = 50003;
    int before = nb_get_num_threads();
    for (size_t k = 0; k < sizeof ref_cases / sizeof ref_cases[0]; k++)
        for (int th = 1; th <= 2; th++) {
            nb_set_num_threads(th);
            nb_tensor *w = param(NB_F32, 1), *big = nb_tensor_create(NB_F32, 1, &n);
            assert_non_null(big);
            float *bw = nb_tensor_data_f32(big);
            for (int64_t i = 0; i < n; i++)
                bw[i] = nb_tensor_data_f32(w)[i % REF_N];
            assert_int_equal(nb_tensor_set_requires_grad(big, true), NB_OK);
            ensure_grad(big);
            nb_optim *os = nb_optim_create(&w, NULL, 1, ref_cases[k].cfg);
            nb_optim *ob = nb_optim_create(&big, NULL, 1, ref_cases[k].cfg);
            assert_non_null(os);
            assert_non_null(ob);
            for (int t = 1; t <= REF_STEPS; t++) {
                set_grad(w, t);
                for (int64_t i = 0; i < n; i++)
                    nb_tensor_grad_f32(big)[i] = nb_tensor_grad_f32(w)[i % REF_N];
                assert_int_equal(nb_optim_step(os), NB_OK);
                assert_int_equal(nb_optim_step(ob), NB_OK);
                for (int64_t i = 0; i < n; i++)
                    if (memcmp(&bw[i], &nb_tensor_data_f32(w)[i % REF_N], sizeof(float)) != 0)
                        fail_msg("%s, %d thread(s), step %d [%lld]: %.9g, 6-element run %.9g",
                                 ref_cases[k].name, th, t, (long long)i, (double)bw[i],
                                 (double)nb_tensor_data_f32(w)[i % REF_N]);
            }
            nb_optim_destroy(os), nb_optim_destroy(ob);
            nb_tensor_destroy(w), nb_tensor_destroy(big);
        }
    nb_set_num_threads(before);
}

// A different lr and weight decay per group, as torch's param_groups.
static void test_groups_against_pytorch(void **state) {
    (void)state;
    nb_tensor *a = param(NB_F64, 1), *b = param(NB_F64, -0.5);
    nb_optim_config cfg = nb_optim_defaults(NB_OPTIM_ADAMW, 0.01);
    nb_param_group groups[2] = {{&a, (const char *[]){"a"}, 1, 1.0, 0.1},
                                {&b, (const char *[]){"b"}, 1, 0.5, 0.0}};
    nb_optim *opt = nb_optim_create_groups(groups, 2, cfg);
    assert_non_null(opt);
    for (int t = 1; t <= REF_STEPS; t++) {
        set_grad(a, t);
        set_grad(b, t + 10);
        assert_int_equal(nb_optim_step(opt), NB_OK);
        for (int i = 0; i < REF_N; i++) {
            assert_true(fabs(nb_tensor_get(a, i) - ref_groups_a[t - 1][i]) < 1e-14);
            assert_true(fabs(nb_tensor_get(b, i) - ref_groups_b[t - 1][i]) < 1e-14);
        }
    }
    nb_optim_destroy(opt);
    nb_tensor_destroy(a);
    nb_tensor_destroy(b);
}

static void test_clip_norm_against_pytorch(void **state) {
    (void)state;
    nb_tensor *x = nb_tensor_from_data(NB_F64, 1, (int64_t[]){3}, (double[]){3, -4, 1.5});
    nb_tensor *y = nb_tensor_from_data(NB_F64, 2, (int64_t[]){2, 2}, (double[]){0.25, -2, 7, 0.5});
    assert_int_equal(nb_tensor_set_requires_grad(x, true), NB_OK);
    assert_int_equal(nb_tensor_set_requires_grad(y, true), NB_OK);
    ensure_grad(x);
    ensure_grad(y);
    memcpy(nb_tensor_grad_f64(x), nb_tensor_data_f64(x), 3 * sizeof(double));
    memcpy(nb_tensor_grad_f64(y), nb_tensor_data_f64(y), 4 * sizeof(double));
    double norm = 0;
    assert_int_equal(nb_clip_grad_norm((nb_tensor *[]){x, y}, 2, 2.0, &norm), NB_OK);
    assert_true(fabs(norm - ref_clip_norm) < 1e-14);
    for (int i = 0; i < 3; i++)
        assert_true(fabs(nb_tensor_grad_get(x, i) - ref_clip_x[i]) < 1e-15);
    for (int i = 0; i < 4; i++)
        assert_true(fabs(nb_tensor_grad_get(y, i) - ref_clip_y[i]) < 1e-15);
    nb_tensor_destroy(x);
    nb_tensor_destroy(y);
}

static void test_schedules_against_pytorch(void **state) {
    (void)state;
    for (size_t k = 0; k < sizeof ref_scheds / sizeof ref_scheds[0]; k++) {
        const ref_sched *r = &ref_scheds[k];
        assert_int_equal(nb_schedule_check(&r->s), NB_OK);
        for (int t = 0; t < r->n; t++) {
            double lr = nb_schedule_lr(&r->s, t);
            if (!(fabs(lr - r->lr[t]) <= 1e-15 + 1e-12 * r->lr[t]))
                fail_msg("%s step %d: lr %.17g, torch %.17g", r->name, t, lr, r->lr[t]);
        }
    }
}

static void test_plateau_against_pytorch(void **state) {
    (void)state;
    nb_plateau p = {
        .factor = 0.5, .patience = 2, .threshold = 1e-2, .cooldown = 1, .min_lr = 0.004};
    assert_int_equal(nb_plateau_init(&p, 0.1), NB_OK);
    size_t n = sizeof ref_plateau_metric / sizeof ref_plateau_metric[0];
    for (size_t i = 0; i < n; i++) {
        double lr = nb_plateau_step(&p, ref_plateau_metric[i]);
        if (lr != ref_plateau_lr[i])
            fail_msg("epoch %zu: lr %.17g, torch %.17g", i, lr, ref_plateau_lr[i]);
    }
    assert_true(p.lr == 0.004); // reached the floor
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_against_pytorch),
        cmocka_unit_test(test_groups_against_pytorch),
        cmocka_unit_test(test_large_tensor_matches_small),
        cmocka_unit_test(test_clip_norm_against_pytorch),
        cmocka_unit_test(test_schedules_against_pytorch),
        cmocka_unit_test(test_plateau_against_pytorch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
