// Gradient-check cases for the unary pointwise ops: a non-square matrix, a 1-element tensor
// and a 3-D tensor each. Inputs stay away from kinks (relu, leaky_relu, elu, step at 0) and
// inside each function's domain (log, sqrt, pow).
#include "support/opcheck.h"

#define UNARY(name, expr)                                                                          \
    static nb_tensor *b_##name(nb_graph *g, nb_tensor *const *in, int n) {                         \
        (void)n;                                                                                   \
        nb_tensor *x = in[0];                                                                      \
        return expr;                                                                               \
    }
UNARY(neg, nb_neg(g, x))
UNARY(add_scalar, nb_add_scalar(g, x, 2.5))
UNARY(scale, nb_scale(g, x, -1.5))
UNARY(exp, nb_exp(g, x))
UNARY(log, nb_log(g, x))
UNARY(sqrt, nb_sqrt(g, x))
UNARY(pow_scalar, nb_pow_scalar(g, x, 3.0))
UNARY(pow_frac, nb_pow_scalar(g, x, 0.5))
UNARY(sigmoid, nb_sigmoid(g, x))
UNARY(tanh, nb_tanh(g, x))
UNARY(relu, nb_relu(g, x))
UNARY(leaky_relu, nb_leaky_relu(g, x, 0.1))
UNARY(elu, nb_elu(g, x, 1.3))
UNARY(softplus, nb_softplus(g, x))
UNARY(silu, nb_silu(g, x))
UNARY(gelu, nb_gelu(g, x))
UNARY(gelu_tanh, nb_gelu_tanh(g, x))
UNARY(step, nb_step(g, x))
UNARY(abs, nb_abs(g, x))
UNARY(log1p, nb_log1p(g, x))
UNARY(expm1, nb_expm1(g, x))
UNARY(sin, nb_sin(g, x))
UNARY(cos, nb_cos(g, x))
UNARY(square, nb_square(g, x))
UNARY(rsqrt, nb_rsqrt(g, x))
UNARY(erf, nb_erf(g, x))

#define IN(nd, s0, s1, s2, lo_, hi_, kink)                                                         \
    {                                                                                              \
        { .ndim = nd, .shape = {s0, s1, s2}, .lo = lo_, .hi = hi_, .min_abs = kink }               \
    }
// Three shapes per op: (3, 5), (1), (2, 3, 4).
#define CASES(name, fn, lo, hi, kink)                                                              \
    {#name, "(3, 5)", b_##fn, 1, IN(2, 3, 5, 0, lo, hi, kink)},                                    \
        {#name, "(1)", b_##fn, 1, IN(1, 1, 0, 0, lo, hi, kink)}, {                                 \
#name, "(2, 3, 4)", b_##fn, 1, IN(3, 2, 3, 4, lo, hi, kink)                                \
    }

const oc_case oc_cases_pointwise[] = {
    CASES(neg, neg, -2, 2, 0),
    CASES(add_scalar, add_scalar, -2, 2, 0),
    CASES(scale, scale, -2, 2, 0),
    CASES(exp, exp, -2, 2, 0),
    CASES(log, log, 0.2, 3, 0),
    CASES(sqrt, sqrt, 0.2, 3, 0),
    CASES(pow_scalar, pow_scalar, -2, 2, 0),
    CASES(pow_scalar, pow_frac, 0.2, 3, 0),
    CASES(sigmoid, sigmoid, -4, 4, 0),
    CASES(tanh, tanh, -3, 3, 0),
    CASES(relu, relu, -2, 2, 0.05),
    CASES(leaky_relu, leaky_relu, -2, 2, 0.05),
    CASES(elu, elu, -2, 2, 0.05),
    CASES(softplus, softplus, -5, 5, 0),
    CASES(silu, silu, -4, 4, 0),
    CASES(gelu, gelu, -3, 3, 0),
    CASES(gelu_tanh, gelu_tanh, -3, 3, 0),
    CASES(step, step, -2, 2, 0.05),
    CASES(abs, abs, -2, 2, 0.05),
    CASES(log1p, log1p, -0.8, 3, 0),
    CASES(expm1, expm1, -2, 2, 0),
    CASES(sin, sin, -4, 4, 0),
    CASES(cos, cos, -4, 4, 0),
    CASES(square, square, -2, 2, 0),
    CASES(rsqrt, rsqrt, 0.2, 3, 0),
    CASES(erf, erf, -2.5, 2.5, 0),
    {0},
};

// ---- bad input: an int32 tensor (class indices) is not differentiable data --------------------

#define BAD(name)                                                                                  \
    {                                                                                              \
#name, "int32 x (2, 3)", b_##name, 1,                                                      \
            {{.ndim = 2, .shape = {2, 3 }, .role = OC_INDEX, .classes = 3 } }, NB_ERR_DTYPE, {     \
            "int32"                                                                                \
        }                                                                                          \
    }
const oc_bad_case oc_bad_pointwise[] = {
    BAD(neg),        BAD(add_scalar),
    BAD(scale),      BAD(exp),
    BAD(log),        BAD(sqrt),
    BAD(pow_scalar), BAD(sigmoid),
    BAD(tanh),       BAD(relu),
    BAD(leaky_relu), BAD(elu),
    BAD(softplus),   BAD(silu),
    BAD(gelu),       BAD(gelu_tanh),
    BAD(step),       BAD(abs),
    BAD(log1p),      BAD(expm1),
    BAD(sin),        BAD(cos),
    BAD(square),     BAD(rsqrt),
    BAD(erf),        {0},
};
