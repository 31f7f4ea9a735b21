// Test support: a table-driven checker for ops. A case names the op, builds its output from
// inputs, and describes each input (shape, value range, role); oc_run_case then runs the
// float64 finite-difference gradient check and the float32-vs-float64 agreement check.
#ifndef NABLA_TEST_OPCHECK_H
#define NABLA_TEST_OPCHECK_H

#include <stdbool.h>
#include <stdint.h>

#include "nabla.h"

typedef nb_tensor *(*oc_build_fn)(nb_graph *g, nb_tensor *const *in, int n);

typedef enum {
    OC_VALUES = 0, // uniform in [lo, hi) (default [-2, 2)), requires grad
    OC_CONST,      // uniform in [lo, hi), no grad (e.g. a regression target)
    OC_ONEHOT,     // one-hot rows (last dim = classes), no grad
    OC_SIMPLEX,    // positive rows summing to 1 (probabilities), requires grad
    OC_INDEX,      // NB_I32 class indices in [0, classes), no grad
} oc_role;

typedef struct oc_input {
    int ndim;
    int64_t shape[NB_MAX_DIMS];
    oc_role role;
    double lo, hi;   // value range; both 0 means [-2, 2)
    double min_abs;  // keep |x| >= min_abs (stay away from kinks such as relu at 0)
    int64_t classes; // for OC_INDEX
} oc_input;

typedef struct oc_case {
    const char *op;    // op name as in ops.def (NULL terminates a case table)
    const char *label; // what this case covers, e.g. "(3, 5) x (5, 2)"
    oc_build_fn build;
    int n_in;
    oc_input in[4];
} oc_case;

// Make an input per spec in dtype dt (the same rng state gives the same values in f32/f64).
nb_tensor *oc_make_input(const oc_input *spec, nb_dtype dt, nb_rng *rng);

// Float64 gradient check (h 1e-6, atol 1e-6, rtol 1e-5) plus float32 agreement of outputs
// and gradients with float64 (atol 1e-4, rtol 1e-3). Prints the worst element on failure.
bool oc_run_case(const oc_case *c, uint64_t seed);

// True when `result` is NULL, g's status is st and its message contains every needle
// (NULL-terminated list). Prints what it got otherwise.
bool oc_expect_error(nb_graph *g, const nb_tensor *result, nb_status st, ...);

// |a - b| <= tol, printing both on failure. Use instead of cmocka's assert_float_equal,
// which converts to float and so cannot check float64 results: assert_true(oc_near(a, b, t)).
bool oc_near(double a, double b, double tol);

// Case tables, one per op family (tests/cases_<family>.c), each ended by an entry with op NULL.
extern const oc_case oc_cases_linalg[];
extern const oc_case oc_cases_pointwise[];
extern const oc_case oc_cases_binary[];
extern const oc_case oc_cases_reduce_shape[];
extern const oc_case oc_cases_softmax_loss[];

#endif
