// Anomaly mode (nb_graph_set_check_finite): the first NaN in forward, NaN/Inf in backward, is
// reported with the op, the pass, the shape, the element and the user's file:line; a healthy
// graph is unaffected bit for bit; with the mode off NaN flows silently. Each expected line is
// captured with __LINE__ next to the op call.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <float.h>
#include <math.h>

#include "nabla.h"

static nb_tensor *tensor(nb_dtype dt, int ndim, const int64_t *shape, const double *v, bool grad) {
    nb_tensor *t = nb_tensor_create(dt, ndim, shape);
    assert_non_null(t);
    for (int64_t i = 0; i < nb_tensor_numel(t); i++)
        nb_tensor_set(t, i, v[i]);
    if (grad)
        assert_int_equal(nb_tensor_set_requires_grad(t, true), NB_OK);
    return t;
}

static nb_graph *checked_graph(void) {
    nb_graph *g = nb_graph_create();
    assert_non_null(g);
    assert_false(nb_graph_check_finite(g)); // off by default
    nb_graph_set_check_finite(g, true);
    assert_true(nb_graph_check_finite(g));
    return g;
}

// The message holds every fragment, and "<this file>:<line>" exactly (followed by the end).
static void expect_report(const nb_graph *g, const char *const *parts, int line) {
    const char *msg = nb_graph_error(g);
    assert_int_equal(nb_graph_status(g), NB_ERR_NONFINITE);
    for (const char *const *p = parts; *p; p++) {
        if (!strstr(msg, *p))
            fprintf(stderr, "missing \"%s\" in: %s\n", *p, msg);
        assert_non_null(strstr(msg, *p));
    }
    char site[512];
    snprintf(site, sizeof site, "op called at %s:%d", __FILE__, line);
    const char *at = strstr(msg, site);
    if (!at)
        fprintf(stderr, "expected \"%s\" in: %s\n", site, msg);
    assert_non_null(at);
    assert_string_equal(at, site);
}

static void log_of_negative_is_caught_in_forward(void **state) {
    (void)state;
    nb_graph *g = checked_graph();
    nb_tensor *x = tensor(NB_F32, 2, (int64_t[]){2, 3}, (double[]){1, 2, 3, 4, -1, 6}, true);
    nb_tensor *y = nb_log(g, x);
    int line = __LINE__ - 1; // the op call on the line above
    assert_null(y);
    expect_report(g,
                  (const char *[]){"log: ", "in forward", "output (2, 3) float32",
                                   "element 4 [1, 1]", "nan", NULL},
                  line);
    // Sticky: later ops return NULL and keep the first message.
    assert_null(nb_sum(g, y));
    assert_non_null(strstr(nb_graph_error(g), "log: "));
    // The mode survives reset, which clears the error.
    nb_graph_reset(g);
    assert_true(nb_graph_check_finite(g));
    assert_int_equal(nb_graph_status(g), NB_OK);
    nb_tensor_destroy(x);
    nb_graph_destroy(g);
}

// exp(1000) = inf in forward is not reported (±inf can be deliberate: a -inf mask); the inf
// gradient it leads to is, at the op that wrote it.
static void exp_overflow_is_caught_in_backward(void **state) {
    (void)state;
    nb_graph *g = checked_graph();
    nb_tensor *x = tensor(NB_F64, 1, (int64_t[]){3}, (double[]){0, 1000, 1}, true);
    nb_tensor *y = nb_exp(g, nb_scale(g, x, 1.0));
    int line = __LINE__ - 1; // the op call on the line above
    assert_non_null(y);
    assert_true(isinf(nb_tensor_get(y, 1)));
    assert_int_equal(nb_backward(g, nb_sum(g, y)), NB_ERR_NONFINITE);
    expect_report(g,
                  (const char *[]){"exp: ", "in backward", "grad of input 0 (3) float64",
                                   "element 1 [1]", "inf", NULL},
                  line);
    nb_tensor_destroy(x);
    nb_graph_destroy(g);
}

// Shape and argument errors name the user's line too (anomaly mode or not): in a model with
// five linear calls the message says which one failed.
static void expect_site(const nb_graph *g, nb_status st, const char *part, int line) {
    char site[512];
    snprintf(site, sizeof site, "; op called at %s:%d", __FILE__, line);
    const char *msg = nb_graph_error(g), *at = strstr(msg, site);
    if (nb_graph_status(g) != st || !strstr(msg, part) || !at)
        fprintf(stderr, "expected %s with \"%s\" and \"%s\" in: %s\n", nb_status_str(st), part,
                site, msg);
    assert_int_equal(nb_graph_status(g), st);
    assert_non_null(strstr(msg, part));
    assert_non_null(at);
    assert_string_equal(at, site);
}

static void shape_errors_carry_the_call_site(void **state) {
    (void)state;
    nb_graph *g = nb_graph_create();
    nb_tensor *x = nb_tensor_create(NB_F32, 2, (int64_t[]){4, 3});
    nb_tensor *w = nb_tensor_create(NB_F32, 2, (int64_t[]){2, 5});
    nb_tensor *w64 = nb_tensor_create(NB_F64, 2, (int64_t[]){2, 3});
    nb_tensor *h = nb_linear(g, x, w, NULL);
    int line = __LINE__ - 1;
    assert_null(h);
    expect_site(g, NB_ERR_SHAPE, "linear: x is (4, 3) but w is (2, 5)", line);
    nb_graph_reset(g);
    assert_null(nb_relu(g, nb_linear(g, x, w64, NULL))); // dtype: checked before infer
    line = __LINE__ - 1;
    expect_site(g, NB_ERR_DTYPE, "linear: mixed dtypes", line);
    nb_graph_reset(g);
    assert_null(nb_squeeze(g, x, 5)); // a convenience's own check
    line = __LINE__ - 1;
    expect_site(g, NB_ERR_ARG, "squeeze: axis 5", line);
    nb_graph_reset(g);
    assert_null((nb_linear)(g, x, w, NULL)); // called without the macro: no site to give
    assert_null(strstr(nb_graph_error(g), "op called at"));
    nb_tensor_destroy(x);
    nb_tensor_destroy(w);
    nb_tensor_destroy(w64);
    nb_graph_destroy(g);
}

// A -inf attention mask before softmax: exact zeros, finite gradients, nothing reported.
static void minus_inf_mask_is_not_reported(void **state) {
    (void)state;
    nb_graph *g = checked_graph();
    nb_tensor *s = tensor(NB_F32, 2, (int64_t[]){2, 2}, (double[]){1, 2, 3, 4}, true);
    nb_tensor *m = tensor(NB_F32, 2, (int64_t[]){2, 2}, (double[]){0, 1, 0, 0}, false);
    nb_tensor *p = nb_softmax(g, nb_masked_fill(g, s, m, -INFINITY));
    assert_non_null(p);
    assert_true(nb_tensor_get(p, 1) == 0.0);
    assert_int_equal(nb_backward(g, nb_sum(g, nb_mul(g, p, p))), NB_OK);
    assert_int_equal(nb_graph_status(g), NB_OK);
    nb_tensor_destroy(s);
    nb_tensor_destroy(m);
    nb_graph_destroy(g);
}

// Nested calls each keep their own site: the inner op runs (and closes its site) first, so a
// single slot would lose the outer call's line or report the inner one's.
static nb_tensor *doubled(nb_graph *g, nb_tensor *x) {
    return nb_scale(g, x, 2.0);
}
enum { LOG_LINE = __LINE__ + 2 }; // the nb_log call two lines below
static nb_tensor *logged(nb_graph *g, nb_tensor *x) {
    return nb_log(g, x);
}

static void nested_calls_keep_their_own_sites(void **state) {
    (void)state;
    nb_graph *g = checked_graph();
    nb_tensor *x = tensor(NB_F32, 1, (int64_t[]){2}, (double[]){1, -50}, false);
    nb_tensor *y = nb_sqrt(g, doubled(g, x));
    int line = __LINE__ - 1; // the op call on the line above
    assert_null(y);
    expect_report(g, (const char *[]){"sqrt: ", "element 1 [1]", "nan", NULL}, line);
    nb_graph_reset(g);
    nb_tensor_set(x, 1, -1);
    assert_null(nb_exp(g, logged(g, x)));
    expect_report(g, (const char *[]){"log: ", "element 1 [1]", "nan", NULL}, LOG_LINE);
    nb_tensor_destroy(x);
    nb_graph_destroy(g);
}

// sqrt at 0: forward 0 is fine, backward 1 / (2 sqrt 0) = inf lands in a leaf's grad.
static void sqrt_at_zero_is_caught_in_backward(void **state) {
    (void)state;
    nb_graph *g = checked_graph();
    nb_tensor *x = tensor(NB_F64, 1, (int64_t[]){3}, (double[]){4, 0, 1}, true);
    nb_tensor *r = nb_sqrt(g, x);
    int line = __LINE__ - 1; // the op call on the line above
    nb_tensor *loss = nb_sum(g, r);
    assert_non_null(loss);
    assert_int_equal(nb_graph_status(g), NB_OK);
    assert_int_equal(nb_backward(g, loss), NB_ERR_NONFINITE);
    expect_report(g,
                  (const char *[]){"sqrt: ", "in backward", "grad of input 0 (3) float64",
                                   "element 1 [1]", "inf", NULL},
                  line);
    nb_tensor_destroy(x);
    nb_graph_destroy(g);
}

// (x x)^0.5 at x = 0: the inf appears in the grad of an intermediate (the product), written by
// pow_scalar's backward; the sweep stops there.
static void pow_at_zero_is_caught_in_an_intermediate_grad(void **state) {
    (void)state;
    nb_graph *g = checked_graph();
    nb_tensor *x = tensor(NB_F32, 2, (int64_t[]){2, 2}, (double[]){1, 2, 0, 3}, true);
    nb_tensor *sq = nb_mul(g, x, x);
    nb_tensor *r = nb_pow_scalar(g, sq, 0.5);
    int line = __LINE__ - 1; // the op call on the line above
    nb_tensor *loss = nb_mean(g, r);
    assert_non_null(loss);
    assert_int_equal(nb_backward(g, loss), NB_ERR_NONFINITE);
    expect_report(g,
                  (const char *[]){"pow_scalar: ", "in backward", "grad of input 0 (2, 2) float32",
                                   "element 2 [1, 0]", "inf", NULL},
                  line);
    nb_tensor_destroy(x);
    nb_graph_destroy(g);
}

// Replay re-checks every output: a refreshed input that makes log NaN is reported with the
// line of the original call.
static void replay_is_checked(void **state) {
    (void)state;
    nb_graph *g = checked_graph();
    nb_tensor *x = tensor(NB_F64, 1, (int64_t[]){2}, (double[]){1, 2}, true);
    nb_tensor *loss = nb_sum(g, nb_log(g, x));
    int line = __LINE__ - 1; // the op call on the line above
    assert_non_null(loss);
    assert_int_equal(nb_graph_replay(g), NB_OK);
    nb_tensor_set(x, 0, -3);
    assert_int_equal(nb_graph_replay(g), NB_ERR_NONFINITE);
    expect_report(g, (const char *[]){"log: ", "in forward", "element 0 [0]", NULL}, line);
    nb_tensor_destroy(x);
    nb_graph_destroy(g);
}

// Calling the function itself, not the macro, still checks; only the site is unknown.
static void calls_without_the_macro_report_no_site(void **state) {
    (void)state;
    nb_graph *g = checked_graph();
    nb_tensor *x = tensor(NB_F64, 1, (int64_t[]){1}, (double[]){-1}, false);
    assert_null((nb_log)(g, x));
    assert_int_equal(nb_graph_status(g), NB_ERR_NONFINITE);
    assert_non_null(strstr(nb_graph_error(g), "call site unknown"));
    nb_tensor_destroy(x);
    nb_graph_destroy(g);
}

// The scan: the largest finite values and subnormals pass; Inf/NaN of either sign are found
// at the first position, in any block of the scan (blocks are 4096 elements).
static void scan_finds_the_first_bad_element_anywhere(void **state) {
    (void)state;
    for (int d = 0; d < 2; d++) {
        nb_dtype dt = d ? NB_F64 : NB_F32;
        double big = d ? DBL_MAX : (double)FLT_MAX, tiny = d ? DBL_TRUE_MIN : (double)FLT_TRUE_MIN;
        nb_tensor *x = nb_tensor_create(dt, 2, (int64_t[]){100, 100});
        nb_tensor *up = nb_tensor_create(dt, 2, (int64_t[]){100, 100});
        for (int64_t i = 0; i < 10000; i++) {
            nb_tensor_set(x, i, i % 3 == 0 ? big : i % 3 == 1 ? -big : tiny);
            nb_tensor_set(up, i, i % 3 == 0 ? big : i % 3 == 1 ? -big : tiny);
        }
        nb_tensor_set_requires_grad(x, true);
        nb_graph *g = checked_graph();
        // Forward outputs: ±inf is allowed (a -inf mask is deliberate), NaN is reported.
        nb_tensor_set(x, 5, (double)INFINITY);
        nb_tensor_set(x, 7000, -(double)INFINITY);
        assert_non_null(nb_neg(g, x));
        const struct {
            int64_t at;
            double v;
            const char *where;
        } nan_at[] = {{9999, (double)NAN, "element 9999 [99, 99]"},
                      {4097, -(double)NAN, "element 4097 [40, 97]"},
                      {0, (double)NAN, "element 0 [0, 0]"}},
          inf_at[] = {{9999, -(double)INFINITY, "element 9999 [99, 99]"},
                      {4097, (double)NAN, "element 4097 [40, 97]"},
                      {0, (double)INFINITY, "element 0 [0, 0]"}};
        for (int k = 0; k < 3; k++) {
            nb_tensor_set(x, nan_at[k].at, nan_at[k].v); // earlier hits stay: each is first
            nb_graph_reset(g);
            assert_null(nb_neg(g, x));
            assert_int_equal(nb_graph_status(g), NB_ERR_NONFINITE);
            if (!strstr(nb_graph_error(g), nan_at[k].where))
                fprintf(stderr, "expected %s in: %s\n", nan_at[k].where, nb_graph_error(g));
            assert_non_null(strstr(nb_graph_error(g), nan_at[k].where));
        }
        // Gradients: ±inf and NaN are both reported (dx = -dy of neg).
        for (int64_t i = 0; i < 10000; i++)
            nb_tensor_set(x, i, 1.0);
        for (int k = 0; k < 3; k++) {
            nb_tensor_set(up, inf_at[k].at, inf_at[k].v);
            nb_graph_reset(g);
            nb_tensor_zero_grad(x);
            nb_tensor *y = nb_neg(g, x);
            assert_non_null(y);
            assert_int_equal(nb_backward_with(g, y, up), NB_ERR_NONFINITE);
            const char *msg = nb_graph_error(g);
            if (!strstr(msg, inf_at[k].where) || !strstr(msg, "in backward"))
                fprintf(stderr, "expected %s in backward in: %s\n", inf_at[k].where, msg);
            assert_non_null(strstr(msg, inf_at[k].where));
            assert_non_null(strstr(msg, "in backward"));
        }
        nb_tensor_destroy(x);
        nb_tensor_destroy(up);
        nb_graph_destroy(g);
    }
}

// With the mode off the NaN flows through silently: status OK, NaN loss and grads.
static void off_lets_nan_flow(void **state) {
    (void)state;
    nb_graph *g = nb_graph_create();
    nb_tensor *x = tensor(NB_F64, 1, (int64_t[]){2}, (double[]){-1, 2}, true);
    nb_tensor *loss = nb_sum(g, nb_log(g, x));
    assert_non_null(loss);
    assert_true(isnan(nb_tensor_get(loss, 0)));
    assert_int_equal(nb_backward(g, loss), NB_OK);
    assert_int_equal(nb_graph_status(g), NB_OK);
    assert_string_equal(nb_graph_error(g), "");
    nb_tensor_destroy(x);
    nb_graph_destroy(g);
}

// A small MLP step: loss and every parameter grad, on or off.
typedef struct {
    double loss;
    double grads[4][64];
} step_result;

static step_result mlp_step(bool check, nb_dtype dt) {
    static const int64_t shapes[4][2] = {{6, 5}, {6, 1}, {3, 6}, {3, 1}};
    nb_tensor *p[4];
    nb_rng rng;
    nb_rng_seed(&rng, 7);
    for (int i = 0; i < 4; i++) {
        int ndim = shapes[i][1] == 1 ? 1 : 2;
        p[i] = nb_tensor_create(dt, ndim, shapes[i]);
        nb_init_normal(p[i], &rng, 0, 1);
        nb_tensor_set_requires_grad(p[i], true);
    }
    nb_tensor *x = nb_tensor_create(dt, 2, (int64_t[]){4, 5});
    nb_tensor *y = nb_tensor_create(dt, 2, (int64_t[]){4, 3});
    nb_init_uniform(x, &rng, -2, 2);
    for (int r = 0; r < 4; r++)
        nb_tensor_set(y, r * 3 + r % 3, 1);
    nb_graph *g = nb_graph_create();
    nb_graph_set_check_finite(g, check);
    nb_tensor *h = nb_tanh(g, nb_linear(g, x, p[0], p[1]));
    nb_tensor *loss = nb_cross_entropy_logits(g, nb_linear(g, h, p[2], p[3]), y, NB_REDUCE_MEAN);
    assert_non_null(loss);
    assert_int_equal(nb_backward(g, loss), NB_OK);
    assert_int_equal(nb_graph_replay(g), NB_OK);
    assert_string_equal(nb_graph_error(g), "");
    step_result s;
    memset(&s, 0, sizeof s);
    s.loss = nb_tensor_get(loss, 0);
    for (int i = 0; i < 4; i++) {
        for (int64_t k = 0; k < nb_tensor_numel(p[i]); k++)
            s.grads[i][k] = nb_tensor_grad_get(p[i], k);
        nb_tensor_destroy(p[i]);
    }
    nb_tensor_destroy(x);
    nb_tensor_destroy(y);
    nb_graph_destroy(g);
    return s;
}

static void healthy_graph_is_unaffected(void **state) {
    (void)state;
    for (int d = 0; d < 2; d++) {
        nb_dtype dt = d ? NB_F64 : NB_F32;
        step_result on = mlp_step(true, dt), off = mlp_step(false, dt);
        assert_true(isfinite(on.loss));
        assert_memory_equal(&on, &off, sizeof on);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(log_of_negative_is_caught_in_forward),
        cmocka_unit_test(exp_overflow_is_caught_in_backward),
        cmocka_unit_test(minus_inf_mask_is_not_reported),
        cmocka_unit_test(shape_errors_carry_the_call_site),
        cmocka_unit_test(nested_calls_keep_their_own_sites),
        cmocka_unit_test(sqrt_at_zero_is_caught_in_backward),
        cmocka_unit_test(pow_at_zero_is_caught_in_an_intermediate_grad),
        cmocka_unit_test(replay_is_checked),
        cmocka_unit_test(calls_without_the_macro_report_no_site),
        cmocka_unit_test(scan_finds_the_first_bad_element_anywhere),
        cmocka_unit_test(off_lets_nan_flow),
        cmocka_unit_test(healthy_graph_is_unaffected),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
