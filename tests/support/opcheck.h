// Test support: a table-driven checker for ops. A case names the op, builds its output from
// inputs, and describes each input (shape, value range, role); oc_run_case then runs the
// float64 finite-difference gradient check and the float32-vs-float64 agreement check.
#ifndef NABLA_TEST_OPCHECK_H
#define NABLA_TEST_OPCHECK_H

#include <stdbool.h>
#include <stdint.h>

#include "nabla.h"

typedef nb_tensor *(*oc_build_fn)(nb_graph *g, nb_tensor *const *in, int n);

#define OC_MAX_KINKS 4

typedef enum {
    OC_VALUES = 0, // uniform in [lo, hi) (default [-2, 2)), requires grad
    OC_CONST,      // uniform in [lo, hi), no grad (e.g. a regression target)
    OC_ONEHOT,     // one-hot rows (last dim = classes), no grad
    OC_SIMPLEX,    // positive rows summing to 1 (probabilities), requires grad
    OC_INDEX,      // NB_I32 class indices in [lo, lo + classes) (lo 0 normally), no grad
    OC_INDEX64,    // the same as NB_I64 (PyTorch's index dtype)
} oc_role;

typedef struct oc_input {
    int ndim;
    int64_t shape[NB_MAX_DIMS];
    oc_role role;
    double lo, hi; // value range; both 0 means [-2, 2)
    // Points where the op is not differentiable (relu at 0, hardtanh at ±1): every value is
    // drawn at least min_abs away from each of kinks[0..n_kinks), or from 0 when n_kinks is 0,
    // so finite differences never straddle one. min_abs 0: no constraint.
    double min_abs;
    double kinks[OC_MAX_KINKS];
    int n_kinks;
    int64_t classes; // for OC_INDEX, OC_INDEX64
} oc_input;

typedef struct oc_case {
    const char *op;    // op name as in ops.def (NULL terminates a case table)
    const char *label; // what this case covers, e.g. "(3, 5) x (5, 2)"
    oc_build_fn build;
    int n_in;
    oc_input in[4];
} oc_case;

// A bad-input case: the op called on inputs (or arguments, fixed in build) it must refuse.
// oc_run_bad_case makes the inputs in float64 (OC_INDEX ones int32, OC_INDEX64 int64), calls build,
// and passes when the result is NULL, the graph's status is `status` and its message starts with
// "<op>:" (or the op a composite records, e.g. "matmul:" for matmul_t) and contains every
// non-NULL needle (e.g. the offending shapes).
typedef struct oc_bad_case {
    const char *op;    // public function name as in ops.def (NULL terminates a table)
    const char *label; // what is wrong, e.g. "inner dims 3 vs 4"
    oc_build_fn build;
    int n_in;
    oc_input in[4];
    nb_status status;
    const char *needle[3];
} oc_bad_case;

// Make an input per spec in dtype dt (the same rng state gives the same values in f32/f64).
nb_tensor *oc_make_input(const oc_input *spec, nb_dtype dt, nb_rng *rng);

// Float64 gradient check (h 1e-6, atol 1e-6, rtol 1e-5) plus float32 agreement of outputs
// and gradients with float64 (atol 1e-4, rtol 1e-3). Prints the worst element on failure.
bool oc_run_case(const oc_case *c, uint64_t seed);
bool oc_run_bad_case(const oc_bad_case *c);

// True when `result` is NULL, g's status is st and its message contains every needle
// (NULL-terminated list). Prints what it got otherwise.
bool oc_expect_error(nb_graph *g, const nb_tensor *result, nb_status st, ...);
// In a test with a graph g: reset g (an error is sticky), make the call, expect the error.
#define EXPECT_ERR(call, code, ...)                                                                \
    do {                                                                                           \
        nb_graph_reset(g);                                                                         \
        assert_true(oc_expect_error(g, (call), code, __VA_ARGS__, NULL));                          \
    } while (0)

// |a - b| <= tol, printing both on failure. Use instead of cmocka's assert_float_equal,
// which converts to float and so cannot check float64 results: assert_true(oc_near(a, b, t)).
bool oc_near(double a, double b, double tol);

// Case tables, one pair per family (tests/cases_<family>.c, listed once in tests/cases.def):
// oc_cases_<family>[] gradient checks and oc_bad_<family>[] bad input, each ended by an entry
// with op NULL.
#define FAMILY(f)                                                                                  \
    extern const oc_case oc_cases_##f[];                                                           \
    extern const oc_bad_case oc_bad_##f[];
#include "cases.def"
#undef FAMILY

// Every public op function, from src/ops/ops.def (ops and composites), NULL-terminated.
extern const char *const oc_op_names[];

#endif
