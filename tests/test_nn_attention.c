// The sequence layers (src/nn/attention.c): embedding and multihead_attention against
// torch.nn.MultiheadAttention(4, 2, batch_first=True) of PyTorch 1.13 (float64, causal
// attn_mask, weights set from the patterns named below), their parameter names, a float64
// gradient check through the whole layer, and bad input naming the layer.
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "support/expect.h"
#include "support/opcheck.h"

static void set_pattern(nb_tensor *t, double (*f)(double), double a, double scale) {
    for (int64_t i = 0; i < nb_tensor_numel(t); i++)
        nb_tensor_set(t, i, scale * f(a * (double)i));
}

// in_proj_weight 0.5 sin(0.31 i), in_proj_bias 0.1 cos(0.7 i), out_proj.weight 0.6 cos(0.43 i),
// out_proj.bias 0.2 sin(1.1 i); x = sin(0.53 i) (2, 3, 4); dy = cos(0.3 i).
static const double ref_y[24] = {
    -0.510975528465,  -0.52925527356,  0.883014582567,   0.461499557285,  -0.390131740336,
    -0.22419763913,   0.671476732476,  0.219332421955,   0.206185590842,  0.117155310197,
    -0.0263253086168, 0.0854369967463, -0.571382542099,  -0.549059776129, 0.949309502552,
    0.461594487293,   -0.38262599161,  -0.219370612667,  0.662535902022,  0.217163516907,
    0.214392374528,   0.129411418725,  -0.0381758505335, 0.0767040709275};
static const double ref_dx[24] = {
    -0.260149812283,   -0.311963102291,    -0.334036057471,  -0.324264399873,  -0.0969733685734,
    -0.132203161325,   -0.154829648577,    -0.162695782581,  -0.0205711697349, -0.0150618693275,
    -0.00811667783664, -0.000397700232117, 0.250245515541,   0.330889773166,   0.379989362295,
    0.39286347866,     0.030294875453,     0.0550347830012,  0.0745280672738,  0.0869163777259,
    -0.0262689662014,  -0.0288840619848,   -0.0287455575241, -0.0258666568458};
static const double ref_dwin[48] = {
    -0.0543515009161, -0.0541417429064, -0.0390762562632, -0.0132887974798,  0.0144240194713,
    0.0183839386054,  0.0172995649541,  0.011468435313,   0.112730671577,    0.113953648037,
    0.0839093548973,  0.0308415213384,  0.0262343674569,  0.0311864022931,   0.027581329348,
    0.0164083296581,  0.0124297283246,  0.0158834695364,  0.014979011316,    0.00996452420917,
    0.0549156448869,  0.0603377605451,  0.0492040479478,  0.0245694403895,   0.0168822837558,
    0.0289781203422,  0.0331227704871,  0.0281790008004,  -0.0639925181369,  -0.0797855097843,
    -0.0736864857962, -0.0473689321083, 0.0145496114565,  -0.00201988438873, -0.018035152521,
    -0.0291018298371, 0.016717864004,   0.0335058601215,  0.0411003220291,   0.0374174367727,
    0.0141740999722,  0.0610326068966,  0.0911446295525,  0.0962478547381,   0.0101563731064,
    0.0775924856312,  0.123738317336,   0.135932104552};

static nb_layer *torch_like_mha(nb_dtype dt, nb_rng *rng) {
    nb_layer *l =
        nb_nn_multihead_attention_create(4, 2, (nb_nn_mha_options){.causal = true}, dt, rng);
    nb_nn_multihead_attention *a = nb_nn_multihead_attention_of(l);
    assert_non_null(a);
    set_pattern(a->in_proj_weight, sin, 0.31, 0.5);
    set_pattern(a->in_proj_bias, cos, 0.7, 0.1);
    set_pattern(a->out_proj_weight, cos, 0.43, 0.6);
    set_pattern(a->out_proj_bias, sin, 1.1, 0.2);
    return l;
}

static void mha_matches_torch(void **state) {
    (void)state;
    for (int f = 0; f < 2; f++) {
        nb_dtype dt = f ? NB_F32 : NB_F64;
        double tol = f ? 2e-6 : 1e-11;
        nb_rng rng;
        nb_rng_seed(&rng, 1);
        nb_layer *l = torch_like_mha(dt, &rng);
        nb_params *ps = nb_params_create();
        assert_int_equal(nb_layer_collect(l, ps, "blocks.0.attn"), NB_OK);
        const char *want[] = {"blocks.0.attn.in_proj_weight", "blocks.0.attn.in_proj_bias",
                              "blocks.0.attn.out_proj.weight", "blocks.0.attn.out_proj.bias"};
        assert_int_equal(nb_params_count(ps, NB_PARAM), 4);
        for (int i = 0; i < 4; i++)
            assert_string_equal(nb_params_name(ps, NB_PARAM, i), want[i]);
        nb_tensor *x = nb_tensor_create(dt, 3, (int64_t[]){2, 3, 4});
        set_pattern(x, sin, 0.53, 1.0);
        nb_tensor_set_requires_grad(x, true);
        nb_tensor *gy = nb_tensor_create(dt, 3, (int64_t[]){2, 3, 4});
        set_pattern(gy, cos, 0.3, 1.0);
        nb_graph *g = nb_graph_create();
        nb_tensor *y = nb_layer_forward(g, l, x);
        assert_int_equal(nb_backward(g, nb_sum(g, nb_mul(g, y, gy))), NB_OK);
        assert_true(all_near(y, false, ref_y, 24, tol));
        assert_true(all_near(x, true, ref_dx, 24, tol));
        assert_true(
            all_near(nb_nn_multihead_attention_of(l)->in_proj_weight, true, ref_dwin, 48, tol));
        nb_graph_destroy(g);
        nb_params_destroy(ps);
        nb_tensor_destroy(x), nb_tensor_destroy(gy);
        nb_layer_destroy(l);
    }
}

typedef struct {
    nb_layer *l;
} gc_ctx;
static nb_tensor *mha_fn(nb_graph *g, nb_tensor *const *in, int n, void *ctx) {
    (void)n;
    nb_tensor *y = nb_layer_forward(g, ((gc_ctx *)ctx)->l, in[0]);
    return nb_sum(g, nb_mul(g, y, y));
}

// float64 finite differences through the layer: x and every parameter.
static void mha_gradcheck(void **state) {
    (void)state;
    nb_rng rng;
    nb_rng_seed(&rng, 2);
    nb_layer *l = torch_like_mha(NB_F64, &rng);
    nb_nn_multihead_attention *a = nb_nn_multihead_attention_of(l);
    nb_tensor *x = nb_tensor_create(NB_F64, 3, (int64_t[]){2, 5, 4});
    nb_init_uniform(x, &rng, -1, 1);
    nb_tensor_set_requires_grad(x, true);
    nb_tensor *in[5] = {x, a->in_proj_weight, a->in_proj_bias, a->out_proj_weight,
                        a->out_proj_bias};
    gc_ctx c = {l};
    nb_gradcheck_result r = nb_gradcheck(mha_fn, &c, in, 5, 1e-6, 1e-6, 1e-5);
    assert_int_equal(r.status, NB_OK);
    assert_true(r.ok);
    nb_tensor_destroy(x);
    nb_layer_destroy(l);
}

static void embedding_rows_names_and_bad_ids(void **state) {
    (void)state;
    nb_rng rng;
    nb_rng_seed(&rng, 3);
    nb_layer *e = nb_nn_embedding_create(5, 3, NB_F32, &rng);
    nb_params *ps = nb_params_create();
    assert_int_equal(nb_layer_collect(e, ps, "tok_emb"), NB_OK);
    assert_string_equal(nb_params_name(ps, NB_PARAM, 0), "tok_emb.weight");
    nb_tensor *w = nb_nn_embedding_of(e)->weight;
    int32_t idv[4] = {4, 0, 4, 2};
    nb_tensor *ids = nb_tensor_from_data(NB_I32, 2, (int64_t[]){2, 2}, idv);
    nb_graph *g = nb_graph_create();
    nb_tensor *y = nb_layer_forward(g, e, ids);
    assert_int_equal(nb_tensor_ndim(y), 3);
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 3; j++)
            assert_true(nb_tensor_get(y, i * 3 + j) == nb_tensor_get(w, idv[i] * 3 + j));
    // A repeated id gets the sum of its rows' gradients.
    assert_int_equal(nb_backward(g, nb_sum(g, y)), NB_OK);
    assert_true(nb_tensor_grad_get(w, 4 * 3) == 2.0 && nb_tensor_grad_get(w, 3) == 0.0);
    nb_graph_reset(g);
    nb_tensor_set(ids, 3, 5);
    assert_true(oc_expect_error(g, nb_layer_forward(g, e, ids), NB_ERR_ARG, "embedding 'tok_emb'",
                                "id 5", "[0, 5)", "(2, 2)", NULL));
    // The op the layer records names this file's line on the tape (nb_layer_forward's call
    // site), not a line of the library.
    nb_graph_reset(g);
    nb_tensor_set(ids, 3, 2);
    int line = __LINE__ + 1;
    assert_non_null(nb_layer_forward(g, e, ids));
    FILE *f = tmpfile();
    assert_non_null(f);
    assert_int_equal(nb_graph_summary(g, f), NB_OK);
    char text[4096] = {0}, site[300];
    rewind(f);
    assert_true(fread(text, 1, sizeof text - 1, f) > 0);
    fclose(f);
    snprintf(site, sizeof site, " test_nn_attention.c:%d\n", line); // the summary's basename
    assert_has(text, site);
    assert_null(strstr(text, " attention.c:"));
    nb_graph_reset(g);
    nb_tensor *fid = nb_tensor_create(NB_F32, 1, (int64_t[]){2});
    assert_true(oc_expect_error(g, nb_layer_forward(g, e, fid), NB_ERR_DTYPE, "embedding 'tok_emb'",
                                "expected int32 or int64", NULL));
    assert_null(nb_nn_embedding_create(0, 3, NB_F32, &rng));
    assert_non_null(strstr(nb_last_error(), "num_embeddings 0"));
    nb_graph_destroy(g);
    nb_params_destroy(ps);
    nb_tensor_destroy(ids), nb_tensor_destroy(fid);
    nb_layer_destroy(e);
}

// int64 ids (PyTorch's LongTensor) end to end: a text batch filled as int64 ids and targets ->
// the embedding layer -> a linear head -> cross-entropy -> backward gives the same loss and
// gradients, bitwise, as the int32 batch; an int64 id beyond int32's range or negative is
// named in full by the layer.
static double text_step(nb_text *t, nb_dtype ids_dt, nb_layer *emb, nb_layer *head) {
    const int64_t B = 3, T = 6, w[3] = {2, 0, 1};
    nb_tensor *x = nb_tensor_create(ids_dt, 2, (int64_t[]){B, T});
    nb_tensor *y = nb_tensor_create(ids_dt, 2, (int64_t[]){B, T});
    assert_int_equal(nb_text_fill_batch(t, T, w, B, x, y), NB_OK);
    nb_tensor *yf = nb_tensor_wrap(ids_dt, 1, (int64_t[]){B * T}, nb_tensor_data(y));
    nb_graph *g = nb_graph_create();
    nb_tensor *h = nb_reshape(g, nb_layer_forward(g, emb, x), 2, (int64_t[]){B * T, 4});
    nb_tensor *loss =
        nb_sparse_cross_entropy_logits(g, nb_layer_forward(g, head, h), yf, NB_REDUCE_MEAN);
    assert_non_null(loss);
    assert_int_equal(nb_backward(g, loss), NB_OK);
    double l = nb_tensor_get(loss, 0);
    nb_graph_destroy(g);
    nb_tensor_destroy(yf), nb_tensor_destroy(x), nb_tensor_destroy(y);
    return l;
}

static void embedding_int64_ids(void **state) {
    (void)state;
    const char *s = "the quick brown fox jumps over the lazy dog";
    nb_text t;
    assert_int_equal(nb_text_from_memory(s, strlen(s), "s", NULL, &t), NB_OK);
    nb_rng rng;
    nb_rng_seed(&rng, 5);
    nb_layer *emb = nb_nn_embedding_create(t.vocab.size, 4, NB_F64, &rng);
    nb_layer *head = nb_nn_linear_create(4, t.vocab.size, true, NB_F64, &rng);
    nb_tensor *w = nb_nn_embedding_of(emb)->weight;
    int64_t n = nb_tensor_numel(w);
    double *g32 = calloc((size_t)n, sizeof *g32);
    double l32 = text_step(&t, NB_I32, emb, head);
    bool some = false;
    for (int64_t i = 0; i < n; i++) {
        g32[i] = nb_tensor_grad_get(w, i);
        some = some || g32[i] != 0;
    }
    assert_true(some);
    nb_tensor_zero_grad(w);
    double l64 = text_step(&t, NB_I64, emb, head);
    assert_true(l64 == l32 && isfinite(l32));
    for (int64_t i = 0; i < n; i++)
        assert_true(nb_tensor_grad_get(w, i) == g32[i]);
    // Out of range in int64: the id is printed in full, not truncated to 32 bits.
    nb_params *ps = nb_params_create();
    assert_int_equal(nb_layer_collect(emb, ps, "tok_emb"), NB_OK);
    int64_t big[3] = {1, (int64_t)1 << 40, 0}, neg[2] = {0, -3};
    nb_tensor *ib = nb_tensor_from_data(NB_I64, 1, (int64_t[]){3}, big);
    nb_tensor *in = nb_tensor_from_data(NB_I64, 1, (int64_t[]){2}, neg);
    nb_graph *g = nb_graph_create();
    assert_true(oc_expect_error(g, nb_layer_forward(g, emb, ib), NB_ERR_ARG, "embedding 'tok_emb'",
                                "id 1099511627776 at position 1", NULL));
    nb_graph_reset(g);
    assert_true(oc_expect_error(g, nb_layer_forward(g, emb, in), NB_ERR_ARG, "embedding 'tok_emb'",
                                "id -3 at position 1", NULL));
    nb_graph_destroy(g);
    nb_tensor_destroy(ib), nb_tensor_destroy(in);
    nb_params_destroy(ps);
    free(g32);
    nb_layer_destroy(emb), nb_layer_destroy(head);
    nb_text_free(&t);
}

static void mha_bad_input(void **state) {
    (void)state;
    nb_rng rng;
    nb_rng_seed(&rng, 4);
    assert_null(nb_nn_multihead_attention_create(6, 4, (nb_nn_mha_options){0}, NB_F32, &rng));
    assert_non_null(strstr(nb_last_error(), "num_heads must divide embed_dim"));
    assert_non_null(strstr(nb_last_error(), "embed_dim 6, num_heads 4"));
    assert_null(nb_nn_multihead_attention_create(8, 2, (nb_nn_mha_options){0}, NB_F32, NULL));
    nb_layer *l = nb_nn_multihead_attention_create(8, 2, (nb_nn_mha_options){0}, NB_F32, &rng);
    nb_params *ps = nb_params_create();
    assert_int_equal(nb_layer_collect(l, ps, "attn"), NB_OK);
    nb_tensor *x = nb_tensor_create(NB_F32, 3, (int64_t[]){2, 5, 6});
    nb_graph *g = nb_graph_create();
    assert_true(oc_expect_error(g, nb_layer_forward(g, l, x), NB_ERR_SHAPE,
                                "multihead_attention 'attn'", "(2, 5, 6)", "(batch, seq, 8)",
                                NULL));
    // The errors of the ops the layer records name this file's line (nb_layer_forward's call
    // site), not a line of the library.
    char site[300];
    nb_graph_reset(g);
    nb_tensor *x64 = nb_tensor_create(NB_F64, 3, (int64_t[]){2, 5, 8});
    int line = __LINE__ + 1;
    assert_null(nb_layer_forward(g, l, x64));
    snprintf(site, sizeof site,
             "input 0 is float64, input 1 (24, 8) is float32 (convert explicitly); op called at "
             "%s:%d",
             __FILE__, line);
    assert_has(nb_graph_error(g), site);
    nb_graph_destroy(g);
    nb_params_destroy(ps);
    nb_tensor_destroy(x), nb_tensor_destroy(x64);
    nb_layer_destroy(l);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(mha_matches_torch),
        cmocka_unit_test(mha_gradcheck),
        cmocka_unit_test(embedding_rows_names_and_bad_ids),
        cmocka_unit_test(embedding_int64_ids),
        cmocka_unit_test(mha_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
