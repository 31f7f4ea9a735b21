// The optimizer interface around the algorithms: bad configurations and parameter lists, lr
// get/set, skipped parameters, the no-decay-on-1-D split, gradient clipping edge cases,
// gradient accumulation (k micro-batches == one big batch), and state export/import through a
// safetensors file: a round trip continues bitwise, and a state from another kind, layout,
// model or parameter order is refused with the optimizer left untouched.
#define _POSIX_C_SOURCE 200809L // mkdtemp
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "nabla.h"

static void assert_contains(const char *msg, const char *part) {
    if (!strstr(msg, part))
        fail_msg("message \"%s\" lacks \"%s\"", msg, part);
}

static void ensure_grad(nb_tensor *t) {
    nb_graph *g = nb_graph_create();
    assert_non_null(g);
    assert_int_equal(nb_backward(g, nb_sum(g, t)), NB_OK);
    nb_graph_destroy(g);
}

// A tensor of the given shape with values sin(i + phase), requiring grad, grad allocated.
static nb_tensor *param(nb_dtype dt, int ndim, const int64_t *shape, double phase) {
    nb_tensor *t = nb_tensor_create(dt, ndim, shape);
    assert_non_null(t);
    for (int64_t i = 0; i < nb_tensor_numel(t); i++)
        nb_tensor_set(t, i, sin((double)i + phase));
    assert_int_equal(nb_tensor_set_requires_grad(t, true), NB_OK);
    ensure_grad(t);
    return t;
}

static void set_grads(nb_tensor *const *ps, int n, int step) {
    for (int k = 0; k < n; k++)
        for (int64_t i = 0; i < nb_tensor_numel(ps[k]); i++) {
            double g = cos(0.7 * (double)i + 1.1 * step + k) + 0.3 * nb_tensor_get(ps[k], i);
            if (nb_tensor_dtype(ps[k]) == NB_F32)
                nb_tensor_grad_f32(ps[k])[i] = (float)g;
            else
                nb_tensor_grad_f64(ps[k])[i] = g;
        }
}

static void expect_refused(nb_tensor *const *ps, const char *const *names, int n,
                           nb_optim_config cfg, const char *part) {
    nb_optim *o = nb_optim_create(ps, names, n, cfg);
    if (o) {
        nb_optim_destroy(o);
        fail_msg("accepted a bad call; expected an error containing \"%s\"", part);
    }
    assert_contains(nb_last_error(), "nb_optim_create");
    assert_contains(nb_last_error(), part);
}

static void test_bad_input(void **state) {
    (void)state;
    nb_tensor *w = param(NB_F32, 2, (int64_t[]){3, 2}, 0), *b = param(NB_F32, 1, (int64_t[]){3}, 1);
    nb_tensor *p[2] = {w, b};
    nb_optim_config adam = nb_optim_defaults(NB_OPTIM_ADAM, 1e-3);
    nb_optim_config c = adam;
    c.lr = -1e-3;
    expect_refused(p, NULL, 2, c, "lr must be finite and > 0, got -0.001");
    c.lr = 0;
    expect_refused(p, NULL, 2, c, "lr must be finite and > 0");
    c = adam, c.beta1 = 1;
    expect_refused(p, NULL, 2, c, "beta1 must be in [0, 1), got 1");
    c = adam, c.beta2 = -0.1;
    expect_refused(p, NULL, 2, c, "beta2 must be in [0, 1)");
    c = adam, c.beta2 = (double)NAN;
    expect_refused(p, NULL, 2, c, "beta2");
    c = adam, c.eps = 0;
    expect_refused(p, NULL, 2, c, "eps must be finite and > 0, got 0");
    c = nb_optim_defaults(NB_OPTIM_RMSPROP, 0.01), c.eps = -1;
    expect_refused(p, NULL, 2, c, "rmsprop: eps");
    c = nb_optim_defaults(NB_OPTIM_RMSPROP, 0.01), c.alpha = 1;
    expect_refused(p, NULL, 2, c, "alpha");
    c = nb_optim_defaults(NB_OPTIM_ADAGRAD, 0.01), c.eps = 0;
    expect_refused(p, NULL, 2, c, "adagrad: eps");
    c = nb_optim_defaults(NB_OPTIM_LION, 0.01), c.beta1 = 1.5;
    expect_refused(p, NULL, 2, c, "lion: beta1");
    c = nb_optim_defaults(NB_OPTIM_SGD, 0.1), c.momentum = 0.9, c.dampening = 0.5,
    c.nesterov = true;
    expect_refused(p, NULL, 2, c, "nesterov needs dampening 0");
    c = adam, c.weight_decay = -1;
    expect_refused(p, NULL, 2, c, "weight_decay");
    c = adam, c.kind = NB_OPTIM_KIND_COUNT;
    expect_refused(p, NULL, 2, c, "unknown optimizer kind");
    expect_refused(p, NULL, 0, adam, "empty parameter list");
    expect_refused(NULL, NULL, 2, adam, "params is NULL");
    expect_refused((nb_tensor *[]){w, b, w}, NULL, 3, adam,
                   "params[0] and params[2] are the same tensor (3, 2)");
    expect_refused(p, (const char *[]){"fc.weight", "fc.weight"}, 2, adam,
                   "both named 'fc.weight'");
    expect_refused(p, (const char *[]){"fc.weight", ""}, 2, adam, "empty or NULL name");
    nb_tensor *nograd = nb_tensor_create(NB_F32, 1, (int64_t[]){2});
    expect_refused((nb_tensor *[]){w, nograd}, NULL, 2, adam, "does not require grad");
    nb_param_group g = {p, NULL, 2, 0, 0};
    assert_null(nb_optim_create_groups(&g, 1, adam));
    assert_contains(nb_last_error(), "lr_scale must be finite and > 0");
    nb_param_group twice[2] = {{p, NULL, 1, 1, 0}, {p, NULL, 1, 1, 0}};
    assert_null(nb_optim_create_groups(twice, 2, adam));
    assert_contains(nb_last_error(), "same tensor");

    // lr: negative and NaN refused with the old value kept; 0 allowed (a schedule's end).
    nb_optim *o = nb_optim_create(p, NULL, 2, adam);
    assert_non_null(o);
    assert_int_equal(nb_optim_set_lr(o, -1), NB_ERR_ARG);
    assert_contains(nb_last_error(), "kept 0.001");
    assert_int_equal(nb_optim_set_lr(o, (double)NAN), NB_ERR_ARG);
    assert_true(nb_optim_get_lr(o) == 1e-3);
    assert_int_equal(nb_optim_set_lr(o, 0), NB_OK);
    assert_int_equal(nb_optim_step(NULL), NB_ERR_NULL);
    assert_int_equal(nb_optim_set_lr(NULL, 1), NB_ERR_NULL);
    nb_optim_zero_grad(NULL);
    nb_optim_destroy(NULL);
    assert_true(nb_optim_kind_from_name("adamw") == NB_OPTIM_ADAMW);
    assert_true(nb_optim_kind_from_name("adamx") == NB_OPTIM_KIND_COUNT);
    nb_optim_destroy(o);
    nb_tensor_destroy(nograd);
    nb_tensor_destroy(w);
    nb_tensor_destroy(b);
}

// A parameter whose grad was never computed is skipped and its step count stays 0; the
// no-decay split leaves a 1-D tensor undecayed while AdamW shrinks the weight.
static void test_skip_and_no_decay_split(void **state) {
    (void)state;
    nb_tensor *w = param(NB_F64, 2, (int64_t[]){2, 2}, 0), *b = param(NB_F64, 1, (int64_t[]){2}, 1);
    nb_tensor *never = nb_tensor_create(NB_F64, 1, (int64_t[]){2});
    assert_int_equal(nb_tensor_set_requires_grad(never, true), NB_OK);
    nb_optim_config cfg = nb_optim_defaults(NB_OPTIM_ADAMW, 0.1); // weight decay 1e-2
    nb_optim *o = nb_optim_create_no_decay_1d(
        (nb_tensor *[]){b, w, never}, (const char *[]){"fc.bias", "fc.weight", "x"}, 3, cfg);
    assert_non_null(o);
    nb_optim_zero_grad(o); // zero grads: Adam's update is 0, only the decay acts
    double w0 = nb_tensor_get(w, 1), b0 = nb_tensor_get(b, 1);
    assert_int_equal(nb_optim_step(o), NB_OK);
    assert_true(nb_tensor_get(w, 1) == w0 * (1 - 0.1 * 1e-2));
    assert_true(nb_tensor_get(b, 1) == b0);
    int n = 0;
    nb_tensor *const *ps = nb_optim_params(o, &n);
    assert_int_equal(n, 3);
    assert_ptr_equal(ps[0], w); // decayed group first
    assert_int_equal(nb_optim_param_steps(o, 0), 1);
    assert_int_equal(nb_optim_param_steps(o, 2), 0); // "never" has no grad
    const char *const *names;
    nb_tensor *const *ts;
    int k = nb_optim_state_export(o, &names, &ts);
    assert_int_equal(k, 2 + 3 * 2);
    assert_string_equal(names[0], "optim.meta");
    assert_string_equal(names[1], "optim.step");
    assert_string_equal(names[2], "optim.exp_avg.fc.weight");
    assert_string_equal(names[3], "optim.exp_avg_sq.fc.weight");
    assert_string_equal(names[4], "optim.exp_avg.fc.bias");
    nb_optim_destroy(o);
    nb_tensor_destroy(w);
    nb_tensor_destroy(b);
    nb_tensor_destroy(never);
}

static void test_clip_edges(void **state) {
    (void)state;
    nb_tensor *a = param(NB_F32, 1, (int64_t[]){4}, 0), *b = param(NB_F64, 1, (int64_t[]){3}, 0);
    float *ga = nb_tensor_grad_f32(a);
    double *gb = nb_tensor_grad_f64(b);
    for (int i = 0; i < 4; i++)
        ga[i] = (float)(i - 1.5); // -1.5 -0.5 0.5 1.5
    gb[0] = 3, gb[1] = -4, gb[2] = 0;
    double norm = 0;
    nb_tensor *ps[2] = {a, b};
    // Below max_norm: nothing changes, the norm is still reported (sqrt(5 + 25)).
    assert_int_equal(nb_clip_grad_norm(ps, 2, 100, &norm), NB_OK);
    assert_true(fabs(norm - sqrt(30)) < 1e-12);
    assert_true(ga[0] == -1.5f && gb[1] == -4);
    // By value: clamped to [-1, 1].
    assert_int_equal(nb_clip_grad_value(ps, 2, 1), NB_OK);
    assert_true(ga[0] == -1 && ga[1] == -0.5f && ga[3] == 1 && gb[0] == 1 && gb[1] == -1);
    // A NaN grad: reported, grads untouched.
    gb[2] = (double)NAN;
    assert_int_equal(nb_clip_grad_norm(ps, 2, 0.1, &norm), NB_ERR_NONFINITE);
    assert_true(isnan(norm));
    assert_contains(nb_last_error(), "params[1] (3)");
    assert_true(ga[0] == -1 && gb[0] == 1);
    gb[2] = (double)INFINITY;
    assert_int_equal(nb_clip_grad_norm(ps, 2, 0.1, &norm), NB_ERR_NONFINITE);
    assert_true(isinf(norm));
    assert_int_equal(nb_clip_grad_norm(ps, 2, 0, &norm), NB_ERR_ARG);
    assert_int_equal(nb_clip_grad_value(ps, 2, -1), NB_ERR_ARG);
    assert_int_equal(nb_clip_grad_norm(NULL, 2, 1, NULL), NB_ERR_NULL);
    nb_tensor_destroy(a);
    nb_tensor_destroy(b);
}

// Linear regression y = x wᵀ on 12 samples: one batch of 12 (mean loss) against 4 micro-batches
// of 3 whose mean losses are scaled by 1/4, grads accumulated, one SGD step each time.
static void test_gradient_accumulation(void **state) {
    (void)state;
    enum { K = 4, B = 3, F = 5, N = K * B };
    double xs[N * F], ys[N];
    for (int i = 0; i < N * F; i++)
        xs[i] = sin(0.37 * i);
    for (int i = 0; i < N; i++)
        ys[i] = cos(0.5 * i);
    nb_tensor *w[2];
    nb_optim *o[2];
    nb_optim_config cfg = nb_optim_defaults(NB_OPTIM_SGD, 0.1);
    cfg.momentum = 0.9;
    for (int r = 0; r < 2; r++) {
        w[r] = param(NB_F64, 2, (int64_t[]){1, F}, 0.3);
        assert_non_null(o[r] = nb_optim_create(&w[r], NULL, 1, cfg));
    }
    nb_graph *g = nb_graph_create();
    for (int step = 0; step < 3; step++) {
        for (int r = 0; r < 2; r++) {
            nb_optim_zero_grad(o[r]);
            int micro = r == 0 ? 1 : K, rows = N / micro;
            for (int j = 0; j < micro; j++) {
                nb_graph_reset(g);
                nb_tensor *x = nb_tensor_wrap(NB_F64, 2, (int64_t[]){rows, F}, xs + j * rows * F);
                nb_tensor *y = nb_tensor_wrap(NB_F64, 2, (int64_t[]){rows, 1}, ys + j * rows);
                nb_tensor *loss = nb_mse_loss(g, nb_linear(g, x, w[r], NULL), y, NB_REDUCE_MEAN);
                loss = nb_scale(g, loss, 1.0 / micro);
                assert_non_null(loss);
                assert_int_equal(nb_backward(g, loss), NB_OK);
                nb_tensor_destroy(x);
                nb_tensor_destroy(y);
            }
            assert_int_equal(nb_optim_step(o[r]), NB_OK);
        }
        for (int i = 0; i < F; i++) {
            double a = nb_tensor_get(w[0], i), b = nb_tensor_get(w[1], i);
            if (!(fabs(a - b) <= 1e-14 * fmax(1, fabs(a))))
                fail_msg("step %d w[%d]: one batch %.17g, accumulated %.17g", step, i, a, b);
        }
    }
    // Without the 1/k scaling the update would be k times larger: the check can fail.
    assert_true(nb_tensor_get(w[0], 0) != sin(0.3));
    nb_graph_destroy(g);
    for (int r = 0; r < 2; r++) {
        nb_optim_destroy(o[r]);
        nb_tensor_destroy(w[r]);
    }
}

// ---- state export / import through a safetensors file ------------------------------------------

static char dir[64], path[96];

static nb_status file_loader(void *ctx, const char *const *names, nb_tensor *const *ts, int n) {
    return nb_load_safetensors(ctx, names, ts, n);
}

static void save_state(nb_optim *o, const char *file, int drop_last) {
    const char *const *names;
    nb_tensor *const *ts;
    int n = nb_optim_state_export(o, &names, &ts);
    assert_int_equal(nb_save_safetensors(file, names, ts, n - drop_last), NB_OK);
}

// Bytes of every exported tensor, concatenated (the optimizer's whole observable state).
static size_t snapshot(nb_optim *o, unsigned char *buf, size_t cap) {
    const char *const *names;
    nb_tensor *const *ts;
    int n = nb_optim_state_export(o, &names, &ts);
    size_t at = 0;
    for (int k = 0; k < n; k++) {
        size_t b = (size_t)nb_tensor_numel(ts[k]) * nb_dtype_size(nb_tensor_dtype(ts[k]));
        assert_true(at + b <= cap);
        memcpy(buf + at, nb_tensor_data(ts[k]), b);
        at += b;
    }
    return at;
}

static void test_state_round_trip_and_refusals(void **state) {
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/nb_optim_XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/state.safetensors", dir);
    const char *names[3] = {"l1.weight", "l1.bias", "l2.weight"};
    nb_tensor *p[3] = {param(NB_F32, 2, (int64_t[]){3, 4}, 0), param(NB_F32, 1, (int64_t[]){3}, 1),
                       param(NB_F64, 2, (int64_t[]){3, 4}, 2)};
    nb_tensor *q[3] = {param(NB_F32, 2, (int64_t[]){3, 4}, 0), param(NB_F32, 1, (int64_t[]){3}, 1),
                       param(NB_F64, 2, (int64_t[]){3, 4}, 2)};
    nb_optim_config cfg = nb_optim_defaults(NB_OPTIM_ADAM, 0.01);
    cfg.amsgrad = true;
    nb_optim *a = nb_optim_create(p, names, 3, cfg);
    assert_non_null(a);
    for (int t = 1; t <= 3; t++) {
        set_grads(p, 3, t);
        assert_int_equal(nb_optim_step(a), NB_OK);
    }
    assert_int_equal(nb_optim_set_lr(a, 0.004), NB_OK);
    save_state(a, path, 0);
    for (int k = 0; k < 3; k++)
        assert_int_equal(nb_tensor_copy(q[k], p[k]), NB_OK);
    nb_optim *b = nb_optim_create(q, names, 3, cfg);
    assert_int_equal(nb_optim_state_import(b, file_loader, path), NB_OK);
    static unsigned char sa[4096], sb[4096];
    size_t na = snapshot(a, sa, sizeof sa), nbytes = snapshot(b, sb, sizeof sb);
    assert_true(na == nbytes && memcmp(sa, sb, na) == 0);
    assert_true(nb_optim_get_lr(b) == 0.004);
    assert_int_equal(nb_optim_param_steps(b, 2), 3);
    for (int t = 4; t <= 6; t++) { // both continue identically, bit for bit
        set_grads(p, 3, t);
        set_grads(q, 3, t);
        assert_int_equal(nb_optim_step(a), NB_OK);
        assert_int_equal(nb_optim_step(b), NB_OK);
    }
    for (int k = 0; k < 3; k++)
        assert_memory_equal(nb_tensor_data(p[k]), nb_tensor_data(q[k]),
                            (size_t)nb_tensor_numel(p[k]) * nb_dtype_size(nb_tensor_dtype(p[k])));

    // Refusals: each leaves the target optimizer's state exactly as it was.
    save_state(a, path, 0);
    struct {
        nb_optim *o;
        const char *part;
    } bad[5];
    nb_optim_config sgd = nb_optim_defaults(NB_OPTIM_SGD, 0.1);
    sgd.momentum = 0.9;
    nb_optim_config no_ams = cfg;
    no_ams.amsgrad = false;
    bad[0].o = nb_optim_create(q, names, 3, sgd);
    bad[0].part = "holds adam optimizer state, this optimizer is sgd";
    bad[1].o = nb_optim_create(q, names, 3, no_ams);
    bad[1].part = "amsgrad is on in the checkpoint but off here";
    bad[2].o = nb_optim_create(q, names, 2, cfg);
    bad[2].part = "3 parameters in 1 groups, this one 2 in 1";
    bad[3].o = nb_optim_create((nb_tensor *[]){q[2], q[1], q[0]},
                               (const char *[]){"l2.weight", "l1.bias", "l1.weight"}, 3, cfg);
    bad[3].part = "parameter list differs";
    bad[4].o = nb_optim_create(q, (const char *[]){"a", "b", "c"}, 3, cfg);
    bad[4].part = "parameter list differs";
    for (int k = 0; k < 5; k++) {
        assert_non_null(bad[k].o);
        set_grads(q, 3, 9);
        assert_int_equal(nb_optim_step(bad[k].o), NB_OK);
        size_t n0 = snapshot(bad[k].o, sa, sizeof sa);
        assert_int_equal(nb_optim_state_import(bad[k].o, file_loader, path), NB_ERR_FORMAT);
        assert_contains(nb_last_error(), "nb_optim_state_import");
        assert_contains(nb_last_error(), bad[k].part);
        assert_true(snapshot(bad[k].o, sb, sizeof sb) == n0 && memcmp(sa, sb, n0) == 0);
        nb_optim_destroy(bad[k].o);
    }
    // A file whose meta fits but that lacks a state tensor: refused, b unchanged.
    save_state(a, path, 1);
    size_t n0 = snapshot(b, sa, sizeof sa);
    assert_int_equal(nb_optim_state_import(b, file_loader, path), NB_ERR_FORMAT);
    assert_contains(nb_last_error(), "optim.max_exp_avg_sq.l2.weight");
    assert_true(snapshot(b, sb, sizeof sb) == n0 && memcmp(sa, sb, n0) == 0);
    // A missing file.
    assert_int_equal(nb_optim_state_import(b, file_loader, "/nonexistent/x.safetensors"),
                     NB_ERR_IO);
    assert_int_equal(nb_optim_state_import(b, NULL, path), NB_ERR_NULL);

    nb_optim_destroy(a);
    nb_optim_destroy(b);
    for (int k = 0; k < 3; k++) {
        nb_tensor_destroy(p[k]);
        nb_tensor_destroy(q[k]);
    }
    remove(path);
    rmdir(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_skip_and_no_decay_split),
        cmocka_unit_test(test_clip_edges),
        cmocka_unit_test(test_gradient_accumulation),
        cmocka_unit_test(test_state_round_trip_and_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
