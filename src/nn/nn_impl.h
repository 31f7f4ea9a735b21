// Library-private helpers shared by the layer kinds (src/nn/*.c).
#ifndef NABLA_NN_IMPL_H
#define NABLA_NN_IMPL_H

#include <stddef.h>

// The ops and layers a layer calls record the user's nb_layer_forward call site (its macro in
// nabla/nn.h), never a line of the library: each src/nn file defines NB_NO_SITE_MACROS before
// its first include. Checked here, in every layer file: the macro defined, and no op's site
// macro already in force from an earlier include.
#if !defined(NB_NO_SITE_MACROS) || defined(nb_add) || defined(nb_layer_forward)
#error "src/nn: #define NB_NO_SITE_MACROS before the first #include (errors name the user's line)"
#endif
#include "nabla/nn.h"

// A zeroed layer struct of `size` bytes initialised with ops; NULL + nb_last_error ("fn: out of
// memory").
nb_layer *nb__layer_alloc(size_t size, const nb_layer_ops *ops, const char *fn);
// How a layer names itself in errors: "linear 'fc1'", or "linear" before nb_layer_collect.
const char *nb__layer_who(const nb_layer *l, char *buf, size_t size);
#define NB_WHO(l) nb__layer_who((l), (char[NB_PARAM_NAME_MAX + 32]){0}, NB_PARAM_NAME_MAX + 32)
// A parameter (requires grad) initialised U(-bound, bound) from rng; NULL on failure.
nb_tensor *nb__uniform_param(nb_dtype dtype, int ndim, const int64_t *shape, nb_rng *rng,
                             double bound);
// A buffer (no grad) filled with v; NULL on failure.
nb_tensor *nb__buffer(nb_dtype dtype, int ndim, const int64_t *shape, double v);
// "fn: <what>: <nb_last_error()>" as the new last error, with code (copies the old message
// first: it lives in the buffer being written).
nb_status nb__layer_create_failed(nb_status code, const char *fn, const char *what);

#endif
