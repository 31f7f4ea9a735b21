// Weight initialisers. fan_out = shape[0] and fan_in = the product of the other dims, matching
// the (out, in) layout of a dense weight.
#include <math.h>

#include "tensor/tensor_impl.h"

static nb_status init_check(const char *fn, nb_tensor *t, nb_rng *rng) {
    if (!t || !rng)
        return nb__set_last_error(NB_ERR_NULL, "%s: NULL argument", fn);
    if (t->dtype == NB_I32 || t->dtype == NB_I64)
        return nb__set_last_error(NB_ERR_DTYPE, "%s: %s tensor %s", fn, nb_dtype_name(t->dtype),
                                  NB_SHAPE_STR(t));
    return NB_OK;
}

static void fans(const nb_tensor *t, double *fan_in, double *fan_out) {
    double in = 1;
    for (int i = 1; i < t->ndim; i++)
        in *= (double)t->shape[i];
    *fan_in = in > 0 ? in : 1;
    *fan_out = t->ndim > 0 && t->shape[0] > 0 ? (double)t->shape[0] : 1;
}

nb_status nb_init_uniform(nb_tensor *t, nb_rng *rng, double lo, double hi) {
    nb_status st = init_check("nb_init_uniform", t, rng);
    if (st != NB_OK)
        return st;
    if (!(lo <= hi))
        return nb__set_last_error(NB_ERR_ARG, "nb_init_uniform: lo %g > hi %g", lo, hi);
    for (int64_t i = 0; i < t->numel; i++)
        nb_tensor_set(t, i, lo + (hi - lo) * nb_rng_uniform(rng));
    return NB_OK;
}

nb_status nb_init_normal(nb_tensor *t, nb_rng *rng, double mean, double stddev) {
    nb_status st = init_check("nb_init_normal", t, rng);
    if (st != NB_OK)
        return st;
    if (!(stddev >= 0))
        return nb__set_last_error(NB_ERR_ARG, "nb_init_normal: stddev %g < 0", stddev);
    for (int64_t i = 0; i < t->numel; i++)
        nb_tensor_set(t, i, mean + stddev * nb_rng_normal(rng));
    return NB_OK;
}

nb_status nb_init_xavier_uniform(nb_tensor *t, nb_rng *rng) {
    double fi = 1, fo = 1;
    if (t)
        fans(t, &fi, &fo);
    double a = sqrt(6.0 / (fi + fo));
    return nb_init_uniform(t, rng, -a, a);
}

nb_status nb_init_xavier_normal(nb_tensor *t, nb_rng *rng) {
    double fi = 1, fo = 1;
    if (t)
        fans(t, &fi, &fo);
    return nb_init_normal(t, rng, 0.0, sqrt(2.0 / (fi + fo)));
}

nb_status nb_init_he_uniform(nb_tensor *t, nb_rng *rng) {
    double fi = 1, fo = 1;
    if (t)
        fans(t, &fi, &fo);
    double a = sqrt(6.0 / fi);
    return nb_init_uniform(t, rng, -a, a);
}

nb_status nb_init_he_normal(nb_tensor *t, nb_rng *rng) {
    double fi = 1, fo = 1;
    if (t)
        fans(t, &fi, &fo);
    return nb_init_normal(t, rng, 0.0, sqrt(2.0 / fi));
}
