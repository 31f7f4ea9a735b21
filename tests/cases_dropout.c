// Gradient-check and bad-input cases for dropout. The build seeds its own rng on every call, so
// the finite-difference evaluations all see the same mask (the op is then linear in x).
#include "support/opcheck.h"

static nb_tensor *drop(nb_graph *g, nb_tensor *const *in, int n) {
    (void)n;
    nb_rng rng;
    nb_rng_seed(&rng, 11);
    return nb_dropout(g, in[0], 0.4, true, &rng);
}
static nb_tensor *drop_bad_p(nb_graph *g, nb_tensor *const *in, int n) {
    (void)n;
    nb_rng rng;
    nb_rng_seed(&rng, 11);
    return nb_dropout(g, in[0], 1.5, true, &rng);
}
static nb_tensor *drop_no_rng(nb_graph *g, nb_tensor *const *in, int n) {
    (void)n;
    return nb_dropout(g, in[0], 0.5, true, NULL);
}

const oc_case oc_cases_dropout[] = {
    {"dropout", "1-element", drop, 1, {{.ndim = 1, .shape = {1}}}},
    {"dropout", "(3, 5)", drop, 1, {{.ndim = 2, .shape = {3, 5}}}},
    {"dropout", "(2, 3, 4, 5)", drop, 1, {{.ndim = 4, .shape = {2, 3, 4, 5}}}},
    {NULL, NULL, NULL, 0, {{0}}},
};

const oc_bad_case oc_bad_dropout[] = {
    {"dropout",
     "p 1.5",
     drop_bad_p,
     1,
     {{.ndim = 2, .shape = {3, 5}}},
     NB_ERR_ARG,
     {"p = 1.5", "(3, 5)"}},
    {"dropout",
     "no rng",
     drop_no_rng,
     1,
     {{.ndim = 2, .shape = {3, 5}}},
     NB_ERR_NULL,
     {"rng is NULL", "(3, 5)"}},
    {NULL, NULL, NULL, 0, {{0}}, NB_OK, {NULL}},
};
