// attention_qkv: the packed (B, T, 3E) projection against the same attention written with
// the heads split out: values, gradients, dropout, threads and the zero-allocation steady
// state. (Its gradient checks and bad-input cases: cases_attention_qkv.c.)
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "support/alloc_count.h"
#include "support/expect.h"

static nb_tensor *rand_t(nb_dtype dt, int ndim, const int64_t *shape, nb_rng *rng, bool grad) {
    nb_tensor *t = nb_tensor_create(dt, ndim, shape);
    nb_init_uniform(t, rng, -2, 2);
    nb_tensor_set_requires_grad(t, grad);
    return t;
}

// attention_qkv on a packed (B, T, 3E) projection equals splitting it into heads (reshape,
// permute, slice), scaled_dot_product_attention and merging back: the output and qkv's gradient,
// in float64 and float32, several row chunks (T 150), causal with dropout (the same counter-based
// mask: the slices are numbered alike), at one and two threads, and a steady-state step
// allocates nothing.
static nb_tensor *split_heads(nb_graph *g, nb_tensor *qkv, int64_t b, int64_t t, int64_t h,
                              int64_t dh, double p, nb_rng *rng) {
    nb_tensor *x = nb_permute(g, nb_reshape(g, qkv, 5, (int64_t[]){b, t, 3, h, dh}), 5,
                              (int[]){2, 0, 3, 1, 4});
    nb_tensor *q = nb_slice(g, x, 0, 0, 1), *k = nb_slice(g, x, 0, 1, 2),
              *v = nb_slice(g, x, 0, 2, 3);
    nb_tensor *y = nb_scaled_dot_product_attention(g, q, k, v, NULL, true, p, rng);
    y = nb_permute(g, y, 5, (int[]){1, 3, 0, 2, 4});
    return nb_reshape(g, y, 3, (int64_t[]){b, t, h * dh});
}

static void packed_qkv_matches_split_heads(void **state) {
    (void)state;
    const int64_t b = 2, t = 150, h = 3, dh = 8, e = h * dh;
    for (int f = 0; f < 2; f++) {
        nb_dtype dt = f ? NB_F32 : NB_F64;
        double tol = f ? 1e-5 : 1e-12;
        nb_rng rng;
        nb_rng_seed(&rng, 9);
        nb_tensor *qkv = rand_t(dt, 3, (int64_t[]){b, t, 3 * e}, &rng, true);
        nb_tensor *gy = rand_t(dt, 3, (int64_t[]){b, t, e}, &rng, false);
        double *ref[2] = {NULL, NULL};
        int64_t n[2] = {b * t * e, b * t * 3 * e};
        for (int pass = 0; pass < 3; pass++) { // split, packed at 1 thread, packed at 2
            nb_set_num_threads(pass == 2 ? 2 : 1);
            nb_tensor_zero_grad(qkv);
            nb_rng dr;
            nb_rng_seed(&dr, 11);
            nb_graph *g = nb_graph_create();
            nb_tensor *o = pass ? nb_attention_qkv(g, qkv, h, true, 0.2, &dr)
                                : split_heads(g, qkv, b, t, h, dh, 0.2, &dr);
            assert_int_equal(nb_backward(g, nb_sum(g, nb_mul(g, o, gy))), NB_OK);
            for (int i = 0; i < 2; i++) {
                const nb_tensor *x = i ? qkv : o;
                if (pass == 0) {
                    ref[i] = malloc((size_t)n[i] * sizeof(double));
                    for (int64_t j = 0; j < n[i]; j++)
                        ref[i][j] = i ? nb_tensor_grad_get(x, j) : nb_tensor_get(x, j);
                } else
                    assert_true(all_near(x, i, ref[i], n[i], tol));
            }
            nb_graph_destroy(g);
        }
        free(ref[0]), free(ref[1]);
        nb_set_num_threads(2);
        tc_count_allocs_start();
        nb_graph *g = nb_graph_create();
        long before = 0;
        for (int step = 0; step < 4; step++) {
            if (step == 2)
                before = tc_allocs();
            nb_graph_reset(g);
            nb_rng_seed(&rng, 5);
            nb_tensor *o = nb_attention_qkv(g, qkv, h, true, 0.1, &rng);
            assert_int_equal(nb_backward(g, nb_sum(g, o)), NB_OK);
        }
        long steady = tc_allocs() - before;
        tc_count_allocs_stop();
        assert_int_equal(steady, 0);
        nb_graph_destroy(g);
        nb_tensor_destroy(qkv), nb_tensor_destroy(gy);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(packed_qkv_matches_split_heads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
