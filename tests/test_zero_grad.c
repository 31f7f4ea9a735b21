// nb_tensor_zero_grad defers its memset (issue 17): a leaf's grad is flagged logically zero and
// the next backward's first write into it stores (GEMM beta = 0) instead of adding, while every
// other reader (accessors, optimizers, clipping, gradcheck, DOT) sees zeros. Each case compares
// that path, bit for bit, with the old one: zero_grad, then the grad fetched (which zeroes it
// for real, as the old memset did), then backward accumulating into zeros. The grads hold NaN
// before each zero_grad, so an element that the new path neither zeroes nor overwrites, or adds
// to instead of storing, shows.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nabla.h"

#define MAXP 6

// A loss over params p and a data tensor x, recorded on g.
typedef nb_tensor *(*loss_fn)(nb_graph *g, nb_tensor *const *p, nb_tensor *const *x);

typedef struct {
    const char *name;
    int n_p, n_x;
    int64_t shape[MAXP * 2][3]; // params first, then data; trailing 0s end a shape
    loss_fn loss;
} zg_case;

// Each parameter used once: a two-layer MLP.
static nb_tensor *l_once(nb_graph *g, nb_tensor *const *p, nb_tensor *const *x) {
    nb_tensor *h = nb_relu(g, nb_linear(g, x[0], p[0], p[1]));
    return nb_sum(g, nb_tanh(g, nb_linear(g, h, p[2], p[3])));
}
// Each of p0..p4 passed two or three times to its only user (no store: the op adds its
// contributions): mul, linear (as x and w), matmul, maximum, layer norm (input, weight, bias).
static nb_tensor *l_twice(nb_graph *g, nb_tensor *const *p, nb_tensor *const *x) {
    (void)x;
    nb_tensor *s = nb_add(g, nb_sum(g, nb_mul(g, p[0], p[0])),
                          nb_sum(g, nb_tanh(g, nb_linear(g, p[1], p[1], NULL))));
    s = nb_add(g, s, nb_sum(g, nb_tanh(g, nb_matmul(g, p[2], p[2]))));
    s = nb_add(g, s, nb_sum(g, nb_tanh(g, nb_maximum(g, p[3], p[3]))));
    return nb_add(g, s, nb_sum(g, nb_mul(g, nb_layer_norm(g, p[4], 1, p[4], p[4], 1e-5), p[5])));
}
// W used by two ops: linear (earlier on the tape, adds) and square (the last user, stores).
static nb_tensor *l_two_ops(nb_graph *g, nb_tensor *const *p, nb_tensor *const *x) {
    nb_tensor *y = nb_sum(g, nb_tanh(g, nb_linear(g, x[0], p[0], p[1])));
    return nb_add(g, y, nb_sum(g, nb_square(g, p[0])));
}
// W's last user on the tape has an empty output (x[1] is (0, 3)): its backward does not run,
// so the first write is W's earlier user's; b is used only there and gets no contribution.
static nb_tensor *l_empty(nb_graph *g, nb_tensor *const *p, nb_tensor *const *x) {
    nb_tensor *y = nb_sum(g, nb_mul(g, p[0], x[0]));
    return nb_add(g, y, nb_sum(g, nb_linear(g, x[1], p[0], p[1])));
}

static const zg_case CASES[] = {
    {"used_once", 4, 1, {{5, 3}, {5}, {2, 5}, {2}, {4, 3}}, l_once},
    {"used_twice_in_one_op", 6, 0, {{3, 4}, {4, 4}, {4, 4}, {3, 4}, {5}, {5}}, l_twice},
    {"used_by_two_ops", 2, 1, {{5, 3}, {5}, {4, 3}}, l_two_ops},
    {"last_user_empty", 2, 2, {{4, 3}, {4}, {4, 3}, {0, 3}}, l_empty},
};

static nb_tensor *make(const int64_t *shape, nb_dtype dt, nb_rng *rng) {
    int nd = 0;
    while (nd < 3 && (shape[nd] || (nd == 0 && shape[1]))) // {0, 3}: an empty first dim
        nd++;
    nb_tensor *t = nb_tensor_create(dt, nd, shape);
    assert_non_null(t);
    assert_int_equal(nb_init_uniform(t, rng, -1, 1), NB_OK);
    return t;
}

static size_t grad_bytes(const nb_tensor *t) {
    return (size_t)nb_tensor_numel(t) * nb_dtype_size(nb_tensor_dtype(t));
}

// Every element of t's grad := v (through the accessor, so the buffer is real).
static void fill_grad(nb_tensor *t, double v) {
    void *gr = nb_tensor_grad(t);
    assert_non_null(gr);
    for (int64_t i = 0; i < nb_tensor_numel(t); i++) {
        if (nb_tensor_dtype(t) == NB_F32)
            ((float *)gr)[i] = (float)v;
        else
            ((double *)gr)[i] = v;
    }
}

static void expect_zero_grad(nb_tensor *t, const char *what) {
    for (int64_t i = 0; i < nb_tensor_numel(t); i++)
        if (nb_tensor_grad_get(t, i) != 0.0)
            fail_msg("%s: grad_get element %lld is %g, not 0", what, (long long)i,
                     nb_tensor_grad_get(t, i));
    const unsigned char *gr = nb_tensor_grad(t);
    for (size_t i = 0; i < grad_bytes(t); i++)
        if (gr[i])
            fail_msg("%s: grad byte %zu is %u, not 0", what, i, gr[i]);
}

typedef struct {
    nb_tensor *p[MAXP], *x[MAXP];
    int n_p, n_x;
    nb_graph *g;
    nb_tensor *loss;
    const zg_case *c;
} fixture;

static void setup(fixture *f, const zg_case *c, nb_dtype dt) {
    nb_rng rng;
    nb_rng_seed(&rng, 12);
    *f = (fixture){.n_p = c->n_p, .n_x = c->n_x, .c = c};
    for (int i = 0; i < c->n_p; i++) {
        f->p[i] = make(c->shape[i], dt, &rng);
        assert_int_equal(nb_tensor_set_requires_grad(f->p[i], true), NB_OK);
    }
    for (int i = 0; i < c->n_x; i++)
        f->x[i] = make(c->shape[c->n_p + i], dt, &rng);
    f->g = nb_graph_create();
    assert_non_null(f->g);
}

// The step's forward: replayed, or recorded afresh on a reset graph.
static void forward(fixture *f, bool replay) {
    if (replay && f->loss) {
        assert_int_equal(nb_graph_replay(f->g), NB_OK);
        return;
    }
    nb_graph_reset(f->g);
    f->loss = f->c->loss(f->g, f->p, f->x);
    assert_non_null(f->loss);
}

static void backward(fixture *f) {
    assert_int_equal(nb_backward(f->g, f->loss), NB_OK);
}

// The grads as bytes, in one buffer.
static unsigned char *snapshot(fixture *f) {
    size_t n = 0;
    for (int i = 0; i < f->n_p; i++)
        n += grad_bytes(f->p[i]);
    unsigned char *s = malloc(n + 1), *q = s;
    assert_non_null(s);
    for (int i = 0; i < f->n_p; i++) {
        memcpy(q, nb_tensor_grad(f->p[i]), grad_bytes(f->p[i]));
        q += grad_bytes(f->p[i]);
    }
    return s;
}

static void expect_grads(fixture *f, const unsigned char *want, const char *what, int step) {
    const unsigned char *q = want;
    for (int i = 0; i < f->n_p; i++) {
        const unsigned char *got = nb_tensor_grad(f->p[i]);
        if (memcmp(got, q, grad_bytes(f->p[i])) != 0)
            fail_msg("%s (%s, %s) step %d: param %d's grad differs from zero-then-accumulate",
                     f->c->name, nb_dtype_name(nb_tensor_dtype(f->p[i])), what, step, i);
        q += grad_bytes(f->p[i]);
    }
}

static void teardown(fixture *f) {
    nb_graph_destroy(f->g);
    for (int i = 0; i < f->n_p; i++)
        nb_tensor_destroy(f->p[i]);
    for (int i = 0; i < f->n_x; i++)
        nb_tensor_destroy(f->x[i]);
}

// NaN into every grad, then zero_grad; old: fetch each grad too (the old eager memset).
static void zero_grads(fixture *f, bool old) {
    for (int i = 0; i < f->n_p; i++) {
        fill_grad(f->p[i], (double)NAN);
        nb_tensor_zero_grad(f->p[i]);
        if (old)
            assert_non_null(nb_tensor_grad(f->p[i]));
    }
}

// zero_grad + backward equals zero + accumulate, recorded and replayed, over three steps.
static void run_case(const zg_case *c, nb_dtype dt, bool replay) {
    fixture f;
    setup(&f, c, dt);
    forward(&f, replay);
    backward(&f); // allocates the grads
    zero_grads(&f, true);
    forward(&f, replay);
    backward(&f);
    unsigned char *want = snapshot(&f);
    for (int step = 0; step < 3; step++) {
        zero_grads(&f, false);
        forward(&f, replay);
        backward(&f);
        expect_grads(&f, want, replay ? "replayed" : "recorded", step);
    }
    free(want);
    teardown(&f);
}

static void zero_grad_then_backward_equals_zero_and_accumulate(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof CASES / sizeof CASES[0]; i++)
        for (int replay = 0; replay < 2; replay++) {
            run_case(&CASES[i], NB_F64, replay);
            run_case(&CASES[i], NB_F32, replay);
        }
}

// b in last_user_empty gets no contribution: after zero_grad + backward it reads zeros.
static void param_without_contribution_reads_zeros(void **state) {
    (void)state;
    fixture f;
    setup(&f, &CASES[3], NB_F64);
    forward(&f, false);
    backward(&f);
    zero_grads(&f, false);
    forward(&f, true);
    backward(&f);
    expect_zero_grad(f.p[1], "bias of an empty linear");
    teardown(&f);
}

// Two backwards without zero_grad in between add up (only the first backward's first write
// stores): the same bits as two backwards after the old eager zeroing. (Not 2·g exactly: a
// reduction such as the bias grad adds row by row into what the grad holds.)
static void two_backwards_accumulate(void **state) {
    (void)state;
    for (int replay = 0; replay < 2; replay++)
        for (size_t c = 0; c < sizeof CASES / sizeof CASES[0]; c++) {
            fixture f;
            setup(&f, &CASES[c], NB_F64);
            forward(&f, replay);
            backward(&f);
            unsigned char *want = NULL;
            for (int old = 1; old >= 0; old--) {
                zero_grads(&f, old);
                for (int k = 0; k < 2; k++) {
                    forward(&f, replay);
                    backward(&f);
                }
                if (old)
                    want = snapshot(&f);
                else
                    expect_grads(&f, want, replay ? "two replayed backwards" : "two backwards", 0);
            }
            free(want);
            teardown(&f);
        }
}

// Right after zero_grad every reader sees zeros (grad_get, the pointer), and a backward after
// such a read accumulates into those zeros.
static void read_right_after_zero_grad(void **state) {
    (void)state;
    fixture f;
    setup(&f, &CASES[0], NB_F32);
    forward(&f, false);
    backward(&f);
    unsigned char *one = snapshot(&f);
    for (int i = 0; i < f.n_p; i++) {
        fill_grad(f.p[i], 7.0);
        nb_tensor_zero_grad(f.p[i]);
        assert_true(nb_tensor_grad_get(f.p[i], 0) == 0.0);
        expect_zero_grad(f.p[i], "right after zero_grad");
    }
    forward(&f, true);
    backward(&f);
    expect_grads(&f, one, "read, then backward", 0);
    free(one);
    teardown(&f);
}

// A loss over w alone; v is a parameter the optimizer knows but this step does not use.
static nb_tensor *l_w_only(nb_graph *g, nb_tensor *const *p, nb_tensor *const *x) {
    return nb_sum(g, nb_tanh(g, nb_mul(g, p[0], x[0])));
}
static nb_tensor *l_w_and_v(nb_graph *g, nb_tensor *const *p, nb_tensor *const *x) {
    return nb_add(g, l_w_only(g, p, x), nb_sum(g, nb_square(g, p[1])));
}

// An unused parameter's grad (zero_grad'ed, stale bytes 1.0) is zeros for the optimizer and for
// clipping: SGD leaves the parameter unchanged, and the clip norm is w's alone.
static void optimizer_and_clip_see_zeros(void **state) {
    (void)state;
    static const zg_case c = {"unused", 2, 1, {{3, 4}, {6}, {3, 4}}, l_w_and_v};
    fixture f;
    setup(&f, &c, NB_F64);
    forward(&f, false);
    backward(&f); // both grads allocated
    nb_optim *opt = nb_optim_create(f.p, NULL, 2, nb_optim_defaults(NB_OPTIM_SGD, 0.5));
    assert_non_null(opt);
    fill_grad(f.p[1], 1.0);
    nb_optim_zero_grad(opt);
    nb_graph_reset(f.g);
    f.loss = l_w_only(f.g, f.p, f.x);
    backward(&f);
    double v0[6];
    memcpy(v0, nb_tensor_data(f.p[1]), sizeof v0);
    assert_int_equal(nb_optim_step(opt), NB_OK);
    assert_memory_equal(v0, nb_tensor_data(f.p[1]), sizeof v0);
    expect_zero_grad(f.p[1], "unused parameter after the step");

    double gw2 = 0;
    for (int64_t e = 0; e < nb_tensor_numel(f.p[0]); e++)
        gw2 += nb_tensor_grad_get(f.p[0], e) * nb_tensor_grad_get(f.p[0], e);
    fill_grad(f.p[1], 1.0);
    nb_tensor_zero_grad(f.p[1]);
    double norm = -1;
    assert_int_equal(nb_optim_clip_grad_norm(opt, 1e9, &norm), NB_OK);
    assert_true(fabs(norm - sqrt(gw2)) <= 1e-12 * sqrt(gw2));
    expect_zero_grad(f.p[1], "unused parameter after clipping");
    nb_optim_destroy(opt);
    teardown(&f);
}

// Cut short: the sweep stops at an op whose backward made Inf (anomaly mode), before w's only
// user ran. w's store was planned but never made: w's grad is still zeros, not its stale NaN.
static nb_tensor *l_fails(nb_graph *g, nb_tensor *const *p, nb_tensor *const *x) {
    nb_tensor *a = nb_sum(g, nb_mul(g, p[0], x[0]));  // w's only user: early on the tape
    return nb_add(g, a, nb_sum(g, nb_sqrt(g, p[1]))); // d sqrt(u) at u = 0: Inf
}

static void cut_short_backward_keeps_zeros(void **state) {
    (void)state;
    static const zg_case c = {"cut_short", 2, 1, {{3, 4}, {2}, {3, 4}}, l_fails};
    fixture f;
    setup(&f, &c, NB_F64);
    nb_tensor_fill(f.p[1], 1.0);
    forward(&f, false);
    backward(&f);
    zero_grads(&f, false);
    nb_tensor_fill(f.p[1], 0.0);
    nb_graph_set_check_finite(f.g, true);
    forward(&f, false);
    assert_int_not_equal(nb_backward(f.g, f.loss), NB_OK);
    expect_zero_grad(f.p[0], "w after a backward stopped before its user");
    teardown(&f);
}

// gradcheck saves, zeroes and restores the caller's grads: a deferred zero stays zeros.
static nb_tensor *gc_fn(nb_graph *g, nb_tensor *const *in, int n, void *ctx) {
    (void)n, (void)ctx;
    return nb_sum(g, nb_tanh(g, nb_mul(g, in[0], in[0])));
}

static void gradcheck_keeps_zeros(void **state) {
    (void)state;
    static const zg_case c = {"gradcheck", 1, 0, {{3, 2}}, l_twice};
    fixture f;
    setup(&f, &c, NB_F64);
    nb_graph *g = nb_graph_create();
    assert_int_equal(nb_backward(g, gc_fn(g, f.p, 1, NULL)), NB_OK);
    nb_graph_destroy(g);
    fill_grad(f.p[0], 3.0);
    nb_tensor_zero_grad(f.p[0]);
    nb_gradcheck_result r = nb_gradcheck(gc_fn, NULL, f.p, 1, 1e-6, 1e-7, 1e-5);
    assert_true(r.ok);
    expect_zero_grad(f.p[0], "after nb_gradcheck");
    teardown(&f);
}

// The DOT export's gradient statistics of a zero_grad'ed parameter are those of zeros.
static void dot_stats_see_zeros(void **state) {
    (void)state;
    fixture f;
    setup(&f, &CASES[0], NB_F64);
    forward(&f, false);
    backward(&f);
    fill_grad(f.p[0], 5.0);
    nb_tensor_zero_grad(f.p[0]);
    FILE *m = tmpfile();
    assert_non_null(m);
    const nb_tensor *named[] = {f.p[0]};
    const char *names[] = {"w1"};
    nb_dot_options o = {.stats = true, .tensors = named, .names = names, .n_names = 1};
    assert_int_equal(nb_graph_to_dot(f.g, m, o), NB_OK);
    long n = ftell(m);
    assert_true(n > 0);
    char *buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    rewind(m);
    assert_int_equal(fread(buf, 1, (size_t)n, m), (size_t)n);
    buf[n] = '\0';
    fclose(m);
    const char *w1 = strstr(buf, "w1 (");
    assert_non_null(w1);
    const char *gs = strstr(w1, "\\ngrad ");
    assert_non_null(gs);
    assert_true(strncmp(gs, "\\ngrad [0, 0] mean 0 norm 0", 27) == 0);
    free(buf);
    teardown(&f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(zero_grad_then_backward_equals_zero_and_accumulate),
        cmocka_unit_test(param_without_contribution_reads_zeros),
        cmocka_unit_test(two_backwards_accumulate),
        cmocka_unit_test(read_right_after_zero_grad),
        cmocka_unit_test(optimizer_and_clip_see_zeros),
        cmocka_unit_test(cut_short_backward_keeps_zeros),
        cmocka_unit_test(gradcheck_keeps_zeros),
        cmocka_unit_test(dot_stats_see_zeros),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
