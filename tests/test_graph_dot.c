// nb_graph_to_dot and nb_graph_summary: the picture names every op with its output shape and
// dtype, highlights parameters, draws each input edge once in argument order, shows the call
// site and (on request) value / gradient statistics; the table sums parameters and bytes.
// Bad arguments and failing streams return a status, never crash.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <math.h>

#include "nabla.h"

static nb_tensor *tensor(int ndim, const int64_t *shape, const double *v, bool grad) {
    nb_tensor *t = nb_tensor_create(NB_F64, ndim, shape);
    assert_non_null(t);
    for (int64_t i = 0; i < nb_tensor_numel(t); i++)
        nb_tensor_set(t, i, v[i]);
    if (grad)
        assert_int_equal(nb_tensor_set_requires_grad(t, true), NB_OK);
    return t;
}

// Output of a writer into a malloc'ed string (caller frees).
typedef nb_status (*writer)(const nb_graph *g, FILE *f, const void *ctx);
static char *capture(const nb_graph *g, writer w, const void *ctx, nb_status want) {
    FILE *f = tmpfile();
    assert_non_null(f);
    assert_int_equal(w(g, f, ctx), want);
    long n = ftell(f);
    assert_true(n >= 0);
    char *buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    rewind(f);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    assert_int_equal(fclose(f), 0);
    return buf;
}
static nb_status dot_writer(const nb_graph *g, FILE *f, const void *ctx) {
    return nb_graph_to_dot(g, f, *(const nb_dot_options *)ctx);
}
static nb_status summary_writer(const nb_graph *g, FILE *f, const void *ctx) {
    (void)ctx;
    return nb_graph_summary(g, f);
}

static int count(const char *s, const char *needle) {
    int k = 0;
    size_t off = 0;
    for (const char *p; (p = strstr(s + off, needle)) != NULL; off = (size_t)(p - s) + 1)
        k++;
    return k;
}

// The whole line of `s` that contains `needle` (static buffer), or fails the test.
static const char *line_with(const char *s, const char *needle) {
    static char line[1024];
    const char *p = strstr(s, needle);
    if (!p)
        fprintf(stderr, "no \"%s\" in:\n%s\n", needle, s);
    assert_non_null(p);
    const char *a = p, *b = p;
    while (a > s && a[-1] != '\n')
        a--;
    while (*b && *b != '\n')
        b++;
    assert_true((size_t)(b - a) < sizeof line);
    memcpy(line, a, (size_t)(b - a));
    line[b - a] = '\0';
    return line;
}

static void expect(const char *s, const char *needle) {
    if (!strstr(s, needle))
        fprintf(stderr, "no \"%s\" in:\n%s\n", needle, s);
    assert_non_null(strstr(s, needle));
}

// Every quote outside an escape pairs up, braces balance: dot would parse the structure.
static void well_formed(const char *s) {
    assert_int_equal(strncmp(s, "digraph nabla {\n", 16), 0);
    assert_string_equal(s + strlen(s) - 2, "}\n");
    int quotes = 0;
    for (const char *p = s; *p; p++) {
        if (*p == '\\' && p[1])
            p++;
        else
            quotes += *p == '"';
    }
    assert_int_equal(quotes % 2, 0);
}

// x (2, 3) input, w (4, 3) and b (4) parameters: loss = sum(relu(x w^T + b)).
typedef struct mlp {
    nb_graph *g;
    nb_tensor *x, *w, *b, *loss;
    int line; // of the linear call
} mlp;

static mlp mlp_make(void) {
    mlp m;
    m.g = nb_graph_create();
    assert_non_null(m.g);
    m.x = tensor(2, (int64_t[]){2, 3}, (double[]){1, -2, 3, 0.5, 1, -1}, false);
    m.w = tensor(2, (int64_t[]){4, 3}, (double[]){1, 0, 0, 0, 1, 0, 0, 0, 1, 1, 1, 1}, true);
    m.b = tensor(1, (int64_t[]){4}, (double[]){0, 0, 0, -10}, true);
    nb_tensor *h = nb_linear(m.g, m.x, m.w, m.b);
    m.line = __LINE__ - 1;
    m.loss = nb_sum(m.g, nb_relu(m.g, h));
    assert_non_null(m.loss);
    assert_int_equal(nb_backward(m.g, m.loss), NB_OK);
    return m;
}

static void mlp_free(mlp *m) {
    nb_graph_destroy(m->g);
    nb_tensor_destroy(m->x);
    nb_tensor_destroy(m->w);
    nb_tensor_destroy(m->b);
}

static void dot_names_ops_shapes_params_and_sites(void **state) {
    (void)state;
    mlp m = mlp_make();
    const char *names[] = {"fc1.weight", "loss"};
    nb_dot_options o = {
        .tensors = (const nb_tensor *[]){m.w, m.loss}, .names = names, .n_names = 2};
    char *s = capture(m.g, dot_writer, &o, NB_OK);
    well_formed(s);
    // One box per op, in tape order, with output shape and dtype.
    expect(line_with(s, "n0 [label=\"linear"), "(2, 4) float64");
    expect(line_with(s, "n1 [label=\"relu"), "(2, 4) float64");
    char scalar[64];
    char want[96];
    snprintf(want, sizeof want, "n2 [label=\"sum -> loss\\n%s float64",
             nb_tensor_shape_str(m.loss, scalar, sizeof scalar));
    expect(s, want);
    assert_non_null(strstr(line_with(s, "n2 [label="), "bold")); // the last op stands out
    // Parameters highlighted (named and unnamed alike), the data input not.
    const char *w = line_with(s, "p0 [label=\"fc1.weight (p0)");
    expect(w, "(4, 3) float64");
    expect(w, "12 parameters");
    expect(w, "fillcolor=\"#f6c85f\"");
    const char *b = line_with(s, "p1 [label=\"parameter p1");
    expect(b, "4 parameters");
    expect(b, "fillcolor=\"#f6c85f\"");
    const char *x = line_with(s, "x0 [label=\"input x0");
    assert_null(strstr(x, "#f6c85f"));
    assert_null(strstr(x, "parameters"));
    // Edges: every input once, numbered by argument position when an op has several.
    assert_int_equal(count(s, " -> n"), 5);
    expect(s, "  x0 -> n0 [label=\"0\"");
    expect(s, "  p0 -> n0 [label=\"1\"");
    expect(s, "  p1 -> n0 [label=\"2\"");
    expect(s, "  n0 -> n1;\n");
    expect(s, "  n1 -> n2;\n");
    // The user's call site (file name without its directory), and no statistics by default.
    char site[64];
    snprintf(site, sizeof site, "at test_graph_dot.c:%d", m.line);
    expect(line_with(s, "n0 [label="), site);
    assert_null(strstr(s, "mean"));
    expect(s, "3 ops, 2 parameter tensors, 1 other inputs");
    free(s);

    nb_dot_options quiet = {.hide_sites = true, .title = "a \"quoted\" title"};
    s = capture(m.g, dot_writer, &quiet, NB_OK);
    well_formed(s);
    assert_null(strstr(s, "test_graph_dot.c"));
    expect(s, "label=\"a \\\"quoted\\\" title\\n3 ops");
    free(s);
    mlp_free(&m);
}

static void dot_statistics_of_values_and_grads(void **state) {
    (void)state;
    nb_graph *g = nb_graph_create();
    nb_tensor *p = tensor(1, (int64_t[]){4}, (double[]){1, -2, 3, -4}, true);
    nb_tensor *q = tensor(1, (int64_t[]){4}, (double[]){1, (double)NAN, 0, 0}, false);
    nb_tensor *y = nb_scale(g, p, 2); // [2, -4, 6, -8]
    nb_tensor *loss = nb_sum(g, nb_add(g, y, nb_mul(g, q, q)));
    assert_non_null(loss);
    nb_graph_set_check_finite(g, false);
    assert_int_equal(nb_backward(g, loss), NB_OK);
    nb_dot_options o = {.stats = true};
    char *s = capture(g, dot_writer, &o, NB_OK);
    well_formed(s);
    // p: values -4..3, mean -0.5, norm sqrt(30); grad 2 everywhere, norm 4.
    const char *pl = line_with(s, "p0 [label=");
    expect(pl, "value [-4, 3] mean -0.5 norm 5.48");
    expect(pl, "grad [2, 2] mean 2 norm 4");
    // scale output [2, -4, 6, -8] (norm sqrt(120)), its grad is all ones.
    const char *yl = line_with(s, "n0 [label=\"scale");
    expect(yl, "value [-8, 6] mean -1 norm 11");
    expect(yl, "grad [1, 1] mean 1 norm 2");
    // Non-finite elements are counted, and left out of min/max/mean/norm.
    expect(line_with(s, "x0 [label="), "value [0, 1] mean 0.333 norm 1 (1 non-finite)");
    assert_null(strstr(line_with(s, "x0 [label="), "grad ["));
    free(s);
    nb_graph_destroy(g);
    nb_tensor_destroy(p);
    nb_tensor_destroy(q);
}

static void summary_table_counts_parameters_and_bytes(void **state) {
    (void)state;
    mlp m = mlp_make();
    char *s = capture(m.g, summary_writer, NULL, NB_OK);
    // Header, one row per op; parameters counted once, at their first use.
    expect(s, "op");
    expect(s, "call site");
    const char *lin = line_with(s, "linear");
    expect(lin, "(2, 4)");
    expect(lin, "float64");
    expect(lin, " 64 "); // 2 x 4 doubles
    expect(lin, " 16 "); // 12 + 4 parameters
    expect(lin, "x0 p0 p1");
    char site[64];
    snprintf(site, sizeof site, "test_graph_dot.c:%d", m.line);
    expect(lin, site);
    expect(line_with(s, "relu"), "#0");
    expect(s, "3 ops; parameters: 2 tensors, 16 elements, 128 bytes; op outputs: 136 bytes");
    free(s);
    mlp_free(&m);
}

static void empty_and_failed_graphs_still_draw(void **state) {
    (void)state;
    nb_graph *g = nb_graph_create();
    nb_dot_options o = {0};
    char *s = capture(g, dot_writer, &o, NB_OK);
    well_formed(s);
    expect(s, "0 ops, 0 parameter tensors");
    assert_int_equal(count(s, "->"), 0);
    free(s);
    s = capture(g, summary_writer, NULL, NB_OK);
    expect(s, "0 ops; parameters: 0 tensors, 0 elements");
    free(s);
    // A failing op leaves the tape up to it; the picture says so.
    nb_tensor *a = tensor(2, (int64_t[]){2, 3}, (double[]){1, 2, 3, 4, 5, 6}, false);
    assert_non_null(nb_exp(g, a));
    assert_null(nb_matmul(g, a, a));
    s = capture(g, dot_writer, &o, NB_OK);
    well_formed(s);
    expect(s, "1 ops");
    expect(s, "graph in error");
    free(s);
    nb_graph_destroy(g);
    nb_tensor_destroy(a);
}

static void bad_arguments_and_failing_streams(void **state) {
    (void)state;
    mlp m = mlp_make();
    nb_dot_options o = {0};
    assert_int_equal(nb_graph_to_dot(NULL, stdout, o), NB_ERR_NULL);
    expect(nb_last_error(), "nb_graph_to_dot: graph is NULL");
    assert_int_equal(nb_graph_to_dot(m.g, NULL, o), NB_ERR_NULL);
    expect(nb_last_error(), "FILE is NULL");
    assert_int_equal(nb_graph_summary(NULL, stdout), NB_ERR_NULL);
    assert_int_equal(nb_graph_summary(m.g, NULL), NB_ERR_NULL);
    nb_dot_options bad = {.n_names = 2};
    assert_int_equal(nb_graph_to_dot(m.g, stdout, bad), NB_ERR_ARG);
    expect(nb_last_error(), "n_names is 2");
    bad.n_names = -1;
    assert_int_equal(nb_graph_to_dot(m.g, stdout, bad), NB_ERR_ARG);
    // A full disk: the write error is reported, not swallowed.
    FILE *full = fopen("/dev/full", "w");
    if (full) {
        assert_int_equal(nb_graph_to_dot(m.g, full, o), NB_ERR_IO);
        expect(nb_last_error(), "nb_graph_to_dot: write failed");
        clearerr(full);
        assert_int_equal(nb_graph_summary(m.g, full), NB_ERR_IO);
        expect(nb_last_error(), "nb_graph_summary: write failed");
        fclose(full);
    }
    mlp_free(&m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(dot_names_ops_shapes_params_and_sites),
        cmocka_unit_test(dot_statistics_of_values_and_grads),
        cmocka_unit_test(summary_table_counts_parameters_and_bytes),
        cmocka_unit_test(empty_and_failed_graphs_still_draw),
        cmocka_unit_test(bad_arguments_and_failing_streams),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
