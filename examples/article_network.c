// The worked network of the "neural networks from scratch" article, built from nabla ops and
// checked against the article's hand-derived backpropagation formulas:
//   z1 = W1 x + b1 (2)   a1 = R(z1)   z2 = W2 a1 + b2 (3)   a2 = σ(z2)   L = ½ Σ (y − a2)²
// with W1 (2, 4) and W2 (3, 2) ("weights follow the math"). The article gives no numbers, so x,
// y and the weights below are small values chosen here, with both hidden neurons active
// (z1 > 0) so every gradient is non-zero. nabla holds one sample as a batch of one: x (1, 4),
// and z1 = x W1ᵀ + b1 is the article's column W1 x + b1 written as a row.
// Exits 1 if autodiff and the formulas differ by 1e-12 or more, or if the SGD step is not the
// article's update or fails to lower the loss.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "nabla.h"

#define N_IN 4
#define N_HID 2
#define N_OUT 3
#define ALPHA 0.5 // learning rate α
#define TOL 1e-12 // autodiff vs hand formulas

// Matrices are laid out as matrices.
// clang-format off
static const double x_v[N_IN] = {1.0, 0.5, -1.5, 2.0};
static const double y_v[N_OUT] = {1.0, 0.0, 0.0};
static const double w1_v[N_HID * N_IN] = {  // (2, 4)
     0.2, -0.4,  0.1,  0.3,
    -0.5,  0.6, -0.2,  0.4,
};
static const double b1_v[N_HID] = {0.1, -0.1};
static const double w2_v[N_OUT * N_HID] = { // (3, 2)
     0.7, -0.3,
    -0.6,  0.9,
     0.2,  0.5,
};
static const double b2_v[N_OUT] = {0.0, 0.1, -0.2};
// clang-format on

// ---- printing -------------------------------------------------------------------------------

static void print_row(const double *v, int cols) {
    printf("[");
    for (int j = 0; j < cols; j++)
        printf(" %9.6f", v[j]);
    printf(" ]");
}

// "  name   = " padded to one column whatever the name's UTF-8 length (δ, ∂ are multi-byte).
static void print_label(const char *name, bool first) {
    int width = 0;
    for (const char *c = name; *c; c++)
        width += ((unsigned char)*c & 0xC0) != 0x80; // count code points, not bytes
    printf("  %s%*s %s ", first ? name : "", first ? 6 - width : 6, "", first ? "=" : " ");
}

// name = one bracketed line per row, with an optional note after the first row.
static void print_mat(const char *name, const double *v, int rows, int cols, const char *note) {
    for (int i = 0; i < rows; i++) {
        print_label(name, i == 0);
        print_row(v + i * cols, cols);
        if (i == 0 && note)
            printf("   %s", note);
        printf("\n");
    }
}

// A gradient: its formula on the name's line, then nabla's rows (left) beside the formula's.
static void print_pair(const char *name, const char *formula, const double *a, const double *b,
                       int rows, int cols) {
    printf("  %s = %s\n", name, formula);
    for (int i = 0; i < rows; i++) {
        printf("      ");
        print_row(a + i * cols, cols);
        printf("   ");
        print_row(b + i * cols, cols);
        printf("\n");
    }
}

// ---- helpers ---------------------------------------------------------------------------------

static nb_tensor *tensor(int ndim, int64_t d0, int64_t d1, const double *v, bool param) {
    int64_t shape[2] = {d0, d1};
    nb_tensor *t = nb_tensor_from_data(NB_F64, ndim, shape, v);
    if (!t || (param && nb_tensor_set_requires_grad(t, true) != NB_OK)) {
        fprintf(stderr, "article_network: %s\n", nb_last_error());
        exit(1);
    }
    return t;
}

// Every op result is checked; the graph keeps the first error with the op name and shapes.
static nb_tensor *check(nb_graph *g, nb_tensor *t, const char *what) {
    if (!t) {
        fprintf(stderr, "article_network: %s failed: %s\n", what, nb_graph_error(g));
        exit(1);
    }
    return t;
}

static double max_abs_diff(const double *a, const double *b, int n) {
    double m = 0;
    for (int i = 0; i < n; i++)
        m = fmax(m, fabs(a[i] - b[i]));
    return m;
}

typedef struct net {
    nb_tensor *x, *y, *w1, *b1, *w2, *b2;
} net;

typedef struct forward {
    nb_tensor *z1, *a1, *z2, *a2, *loss;
} forward;

static forward run_forward(nb_graph *g, const net *n) {
    forward f;
    nb_graph_reset(g);
    f.z1 = check(g, nb_linear(g, n->x, n->w1, n->b1), "z1 = linear(x, W1, b1)");
    f.a1 = check(g, nb_relu(g, f.z1), "a1 = relu(z1)");
    f.z2 = check(g, nb_linear(g, f.a1, n->w2, n->b2), "z2 = linear(a1, W2, b2)");
    f.a2 = check(g, nb_sigmoid(g, f.z2), "a2 = sigmoid(z2)");
    f.loss = check(g, nb_half_sse_loss(g, f.a2, n->y, NB_REDUCE_SUM), "half_sse_loss(a2, y)");
    return f;
}

// ---- the article's formulas, in plain C ------------------------------------------------------

typedef struct hand {
    double z1[N_HID], a1[N_HID], z2[N_OUT], a2[N_OUT], loss;
    double d2[N_OUT], d1[N_HID]; // error terms δ2, δ1
    double gw1[N_HID * N_IN], gb1[N_HID], gw2[N_OUT * N_HID], gb2[N_OUT];
} hand;

static hand by_hand(void) {
    hand h = {0};
    for (int j = 0; j < N_HID; j++) { // z1 = W1 x + b1, a1 = R(z1)
        h.z1[j] = b1_v[j];
        for (int k = 0; k < N_IN; k++)
            h.z1[j] += w1_v[j * N_IN + k] * x_v[k];
        h.a1[j] = h.z1[j] > 0 ? h.z1[j] : 0;
    }
    for (int i = 0; i < N_OUT; i++) { // z2 = W2 a1 + b2, a2 = σ(z2), L = ½ Σ (y − a2)²
        h.z2[i] = b2_v[i];
        for (int j = 0; j < N_HID; j++)
            h.z2[i] += w2_v[i * N_HID + j] * h.a1[j];
        h.a2[i] = 1 / (1 + exp(-h.z2[i]));
        h.loss += 0.5 * (y_v[i] - h.a2[i]) * (y_v[i] - h.a2[i]);
    }
    for (int i = 0; i < N_OUT; i++) { // δ2 = −(y − a2) ∗ σ′(z2), σ′ = σ (1 − σ)
        h.d2[i] = -(y_v[i] - h.a2[i]) * h.a2[i] * (1 - h.a2[i]);
        h.gb2[i] = h.d2[i]; // ∂L/∂b2 = δ2
        for (int j = 0; j < N_HID; j++)
            h.gw2[i * N_HID + j] = h.d2[i] * h.a1[j]; // ∂L/∂W2 = δ2 a1ᵀ
    }
    for (int j = 0; j < N_HID; j++) { // δ1 = W2ᵀ δ2 ∗ R′(z1), R′ = z1 > 0 ? 1 : 0
        double s = 0;
        for (int i = 0; i < N_OUT; i++)
            s += w2_v[i * N_HID + j] * h.d2[i];
        h.d1[j] = s * (h.z1[j] > 0 ? 1 : 0);
        h.gb1[j] = h.d1[j]; // ∂L/∂b1 = δ1
        for (int k = 0; k < N_IN; k++)
            h.gw1[j * N_IN + k] = h.d1[j] * x_v[k]; // ∂L/∂W1 = δ1 xᵀ
    }
    return h;
}

// ---- main ------------------------------------------------------------------------------------

int main(void) {
    net n = {
        .x = tensor(2, 1, N_IN, x_v, false),
        .y = tensor(2, 1, N_OUT, y_v, false),
        .w1 = tensor(2, N_HID, N_IN, w1_v, true),
        .b1 = tensor(1, N_HID, 0, b1_v, true),
        .w2 = tensor(2, N_OUT, N_HID, w2_v, true),
        .b2 = tensor(1, N_OUT, 0, b2_v, true),
    };
    nb_graph *g = nb_graph_create();
    if (!g) {
        fprintf(stderr, "article_network: %s\n", nb_last_error());
        return 1;
    }

    printf("The article's network: 4 inputs -> 2 ReLU -> 3 sigmoid, L = ½ Σ (y - a2)²\n");
    printf("(the numbers are this example's own; vectors are shown as rows)\n\n");
    print_mat("x", x_v, 1, N_IN, NULL);
    print_mat("y", y_v, 1, N_OUT, NULL);
    print_mat("W1", w1_v, N_HID, N_IN, NULL);
    print_mat("b1", b1_v, 1, N_HID, NULL);
    print_mat("W2", w2_v, N_OUT, N_HID, NULL);
    print_mat("b2", b2_v, 1, N_OUT, NULL);

    forward f = run_forward(g, &n);
    double loss0 = nb_tensor_get(f.loss, 0);
    printf("\nForward pass\n");
    print_mat("z1", nb_tensor_data_f64(f.z1), 1, N_HID, NULL);
    print_mat("a1", nb_tensor_data_f64(f.a1), 1, N_HID, NULL);
    print_mat("z2", nb_tensor_data_f64(f.z2), 1, N_OUT, NULL);
    print_mat("a2", nb_tensor_data_f64(f.a2), 1, N_OUT, NULL);
    print_label("L", true);
    printf("%.12f\n", loss0);

    if (nb_backward(g, f.loss) != NB_OK) {
        fprintf(stderr, "article_network: backward failed: %s\n", nb_graph_error(g));
        return 1;
    }
    hand h = by_hand();
    const double *gw1 = nb_tensor_grad_f64(n.w1), *gb1 = nb_tensor_grad_f64(n.b1);
    const double *gw2 = nb_tensor_grad_f64(n.w2), *gb2 = nb_tensor_grad_f64(n.b2);

    printf("\nBackward pass: nb_backward (left) vs the article's formulas (right)\n");
    print_mat("δ2", h.d2, 1, N_OUT, "-(y - a2) * σ'(z2),  σ'(z) = σ(z) (1 - σ(z))");
    print_mat("δ1", h.d1, 1, N_HID, "W2ᵀ δ2 * R'(z1),  R'(z) = z > 0 ? 1 : 0");
    print_pair("∂L/∂W2", "δ2 a1ᵀ", gw2, h.gw2, N_OUT, N_HID);
    print_pair("∂L/∂b2", "δ2", gb2, h.gb2, 1, N_OUT);
    print_pair("∂L/∂W1", "δ1 xᵀ", gw1, h.gw1, N_HID, N_IN);
    print_pair("∂L/∂b1", "δ1", gb1, h.gb1, 1, N_HID);

    double fwd_diff = fmax(fmax(max_abs_diff(nb_tensor_data_f64(f.z1), h.z1, N_HID),
                                max_abs_diff(nb_tensor_data_f64(f.a1), h.a1, N_HID)),
                           fmax(max_abs_diff(nb_tensor_data_f64(f.z2), h.z2, N_OUT),
                                max_abs_diff(nb_tensor_data_f64(f.a2), h.a2, N_OUT)));
    fwd_diff = fmax(fwd_diff, fabs(loss0 - h.loss));
    double grad_diff =
        fmax(fmax(max_abs_diff(gw1, h.gw1, N_HID * N_IN), max_abs_diff(gb1, h.gb1, N_HID)),
             fmax(max_abs_diff(gw2, h.gw2, N_OUT * N_HID), max_abs_diff(gb2, h.gb2, N_OUT)));
    printf("\n  largest |nabla - formula|: forward %.1e, gradients %.1e (must be < %.0e)\n",
           fwd_diff, grad_diff, TOL);
    if (!(fwd_diff < TOL && grad_diff < TOL)) {
        fprintf(stderr, "article_network: autodiff disagrees with the article's formulas\n");
        return 1;
    }

    // One gradient-descent step, W := W − α δ aᵀ and b := b − α δ, i.e. plain SGD.
    nb_tensor *params[4] = {n.w1, n.b1, n.w2, n.b2};
    nb_sgd *opt = nb_sgd_create(params, 4, (nb_sgd_config){.lr = ALPHA});
    if (!opt || nb_sgd_step(opt) != NB_OK) {
        fprintf(stderr, "article_network: sgd: %s\n", nb_last_error());
        return 1;
    }
    // The update must be exactly the article's, from the hand-derived gradients.
    const double *before[4] = {w1_v, b1_v, w2_v, b2_v};
    const double *hand_grad[4] = {h.gw1, h.gb1, h.gw2, h.gb2};
    double step_diff = 0;
    for (int p = 0; p < 4; p++)
        for (int64_t i = 0; i < nb_tensor_numel(params[p]); i++)
            step_diff = fmax(step_diff, fabs(nb_tensor_get(params[p], i) -
                                             (before[p][i] - ALPHA * hand_grad[p][i])));

    printf("\nOne SGD step, W := W - α ∂L/∂W, b := b - α ∂L/∂b, α = %g\n", ALPHA);
    print_mat("W1", nb_tensor_data_f64(n.w1), N_HID, N_IN, NULL);
    print_mat("b1", nb_tensor_data_f64(n.b1), 1, N_HID, NULL);
    print_mat("W2", nb_tensor_data_f64(n.w2), N_OUT, N_HID, NULL);
    print_mat("b2", nb_tensor_data_f64(n.b2), 1, N_OUT, NULL);

    f = run_forward(g, &n);
    double loss1 = nb_tensor_get(f.loss, 0);
    print_mat("a2", nb_tensor_data_f64(f.a2), 1, N_OUT, NULL);
    print_label("L", true);
    printf("%.12f  (was %.12f)\n", loss1, loss0);

    int status = 0;
    if (!(step_diff < TOL)) {
        fprintf(stderr, "article_network: SGD step differs from W - α ∂L/∂W by %.1e\n", step_diff);
        status = 1;
    }
    if (!(loss1 < loss0)) {
        fprintf(stderr, "article_network: the step did not lower the loss\n");
        status = 1;
    }
    nb_sgd_destroy(opt);
    nb_graph_destroy(g);
    nb_tensor_destroy(n.x);
    nb_tensor_destroy(n.y);
    for (int i = 0; i < 4; i++)
        nb_tensor_destroy(params[i]);
    return status;
}
