// A program that uses nabla the way an outside project does: only <nabla.h>, linked against an
// installed (or add_subdirectory'd) nabla. It checks a gradient against its closed form, that
// a shape error comes back as a message naming the call site, and that the headers and the
// library agree on the version. Exit 0 and "consumer: ok" when all hold.
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <nabla.h>

static int fail(const char *what) {
    fprintf(stderr, "consumer: FAIL: %s\n", what);
    return 1;
}

int main(void) {
    if (strcmp(nb_version(), NABLA_VERSION_STRING) != 0 ||
        nb_version_number() != NABLA_VERSION_NUMBER)
        return fail("nb_version() differs from the headers' NABLA_VERSION_STRING");

    // loss = sum(tanh(x W^T)): x (2, 3), W (4, 3). dloss/dW[j][k] = sum_i (1 - y_ij^2) x_ik.
    const double xs[6] = {0.5, -1.0, 2.0, 1.5, 0.25, -0.75};
    double ws[12];
    for (int i = 0; i < 12; i++)
        ws[i] = 0.1 * (i - 5);
    nb_tensor *x = nb_tensor_from_data(NB_F64, 2, (int64_t[]){2, 3}, xs);
    nb_tensor *w = nb_tensor_from_data(NB_F64, 2, (int64_t[]){4, 3}, ws);
    nb_graph *g = nb_graph_create();
    if (!x || !w || !g)
        return fail(nb_last_error());
    nb_tensor_set_requires_grad(w, true);
    nb_tensor *y = nb_tanh(g, nb_linear(g, x, w, NULL));
    nb_tensor *loss = nb_sum(g, y);
    if (!loss || nb_backward(g, loss) != NB_OK)
        return fail(nb_graph_error(g));
    double worst = 0;
    for (int j = 0; j < 4; j++)
        for (int k = 0; k < 3; k++) {
            double want = 0;
            for (int i = 0; i < 2; i++) {
                double yij = nb_tensor_get(y, i * 4 + j);
                want += (1 - yij * yij) * xs[i * 3 + k];
            }
            worst = fmax(worst, fabs(nb_tensor_grad_get(w, j * 3 + k) - want));
        }
    if (worst > 1e-12)
        return fail("gradient differs from the closed form");

    // Errors are values naming the op.
    nb_graph_reset(g);
    nb_tensor *bad = nb_matmul(g, x, x); // (2, 3) x (2, 3)
    if (bad || !strstr(nb_graph_error(g), "matmul"))
        return fail("a shape error did not come back as a message naming the op");
    // Anomaly mode names this file's line: the op macros' call-site helpers are exported.
    nb_graph_reset(g);
    nb_graph_set_check_finite(g, true);
    nb_tensor *nan = nb_log(g, nb_neg(g, x)); // log of negative numbers
    const char *msg = nb_graph_error(g);
    if (nan || !strstr(msg, "main.c"))
        return fail("anomaly mode did not report the call site in main.c");

    printf("consumer: ok: nabla %s, %d threads, max gradient error %.1e; error message: %s\n",
           nb_version(), nb_get_num_threads(), worst, msg);
    nb_graph_destroy(g);
    nb_tensor_destroy(x);
    nb_tensor_destroy(w);
    return 0;
}
