// Gradient-check cases for the broadcasting binary ops add, sub, mul, div: same shape (1-element,
// non-square, 3-D), every kind of broadcast in both argument orders ((B, N) with (N), (B, 1), a
// 0-dim scalar and (1); a 3-D middle broadcast (2, 1, 4) with (3, 1); (2, 3, 4) with (3, 4)),
// and a constant operand that gets no gradient. Divisors stay away from 0.
#include "support/opcheck.h"

#define BUILD(name)                                                                                \
    static nb_tensor *b_##name(nb_graph *g, nb_tensor *const *in, int n) {                         \
        (void)n;                                                                                   \
        return nb_##name(g, in[0], in[1]);                                                         \
    }
BUILD(add)
BUILD(sub)
BUILD(mul)
BUILD(div)
BUILD(maximum)
BUILD(minimum)
BUILD(eq)
BUILD(ne)
BUILD(lt)
BUILD(le)
BUILD(gt)
BUILD(ge)

// An input of 0-3 dims with values in [lo, hi); role OC_VALUES (requires grad) unless given.
#define S0(lo_, hi_)                                                                               \
    { .ndim = 0, .lo = lo_, .hi = hi_ }
#define S1(a, lo_, hi_)                                                                            \
    { .ndim = 1, .shape = {a}, .lo = lo_, .hi = hi_ }
#define S2(a, b, lo_, hi_)                                                                         \
    { .ndim = 2, .shape = {a, b}, .lo = lo_, .hi = hi_ }
#define S3(a, b, c, lo_, hi_)                                                                      \
    { .ndim = 3, .shape = {a, b, c}, .lo = lo_, .hi = hi_ }
#define K2(a, b)                                                                                   \
    { .ndim = 2, .shape = {a, b}, .role = OC_CONST }
#define C2(a, b, lo_, hi_)                                                                         \
    { .ndim = 2, .shape = {a, b}, .role = OC_CONST, .lo = lo_, .hi = hi_ }

// The shape matrix for one op, tag appended to each label. The first operand's values are in
// [-2, 2), the second's (the divisor for div) in [lo, hi).
#define CASES(name, tag, lo, hi)                                                                   \
    {#name, "(1) . (1)" tag, b_##name, 2, {S1(1, -2, 2), S1(1, lo, hi)}},                          \
        {#name, "(3, 5) . (3, 5)" tag, b_##name, 2, {S2(3, 5, -2, 2), S2(3, 5, lo, hi)}},          \
        {#name,                                                                                    \
         "(2, 3, 4) . (2, 3, 4)" tag,                                                              \
         b_##name,                                                                                 \
         2,                                                                                        \
         {S3(2, 3, 4, -2, 2), S3(2, 3, 4, lo, hi)}},                                               \
        {#name, "(4, 3) . (3)" tag, b_##name, 2, {S2(4, 3, -2, 2), S1(3, lo, hi)}},                \
        {#name, "(3) . (4, 3)" tag, b_##name, 2, {S1(3, -2, 2), S2(4, 3, lo, hi)}},                \
        {#name, "(4, 3) . (4, 1)" tag, b_##name, 2, {S2(4, 3, -2, 2), S2(4, 1, lo, hi)}},          \
        {#name, "(4, 1) . (4, 3)" tag, b_##name, 2, {S2(4, 1, -2, 2), S2(4, 3, lo, hi)}},          \
        {#name, "(2, 5) . ()" tag, b_##name, 2, {S2(2, 5, -2, 2), S0(lo, hi)}},                    \
        {#name, "() . (2, 5)" tag, b_##name, 2, {S0(-2, 2), S2(2, 5, lo, hi)}},                    \
        {#name, "(3, 2) . (1)" tag, b_##name, 2, {S2(3, 2, -2, 2), S1(1, lo, hi)}},                \
        {#name, "(1) . (3, 2)" tag, b_##name, 2, {S1(1, -2, 2), S2(3, 2, lo, hi)}},                \
        {#name, "(2, 1, 4) . (3, 1)" tag, b_##name, 2, {S3(2, 1, 4, -2, 2), S2(3, 1, lo, hi)}},    \
        {#name, "(3, 1) . (2, 1, 4)" tag, b_##name, 2, {S2(3, 1, -2, 2), S3(2, 1, 4, lo, hi)}},    \
        {#name, "(2, 3, 4) . (3, 4)" tag, b_##name, 2, {S3(2, 3, 4, -2, 2), S2(3, 4, lo, hi)}},    \
        {#name, "(1, 3) . (2, 1, 1)" tag, b_##name, 2, {S2(1, 3, -2, 2), S3(2, 1, 1, lo, hi)}},    \
        {#name, "(3, 4) . (3, 4) constant" tag, b_##name, 2, {S2(3, 4, -2, 2), C2(3, 4, lo, hi)}}, \
    {                                                                                              \
#name, "(3, 4) constant . (4)" tag, b_##name, 2, {                                         \
            {.ndim = 2, .shape = {3, 4}, .role = OC_CONST}, S1(4, lo, hi)                          \
        }                                                                                          \
    }

const oc_case oc_cases_binary[] = {
    CASES(add, "", -2, 2),
    CASES(sub, "", -2, 2),
    CASES(mul, "", -2, 2),
    CASES(div, ", b > 0", 0.5, 2),
    CASES(div, ", b < 0", -3, -0.7),
    CASES(maximum, "", -2, 2),
    CASES(minimum, "", -2, 2),
    // Comparisons: the gradient is 0 on both sides (no crossing within the step h).
    {"eq", "(3, 4) . (4)", b_eq, 2, {S2(3, 4, -2, 2), S1(4, -2, 2)}},
    {"ne", "(1) . (1)", b_ne, 2, {S1(1, -2, 2), S1(1, -2, 2)}},
    {"lt", "(2, 3, 4) . (3, 1)", b_lt, 2, {S3(2, 3, 4, -2, 2), S2(3, 1, -2, 2)}},
    {"le", "(4, 3) . ()", b_le, 2, {S2(4, 3, -2, 2), S0(-2, 2)}},
    {"gt", "(3) . (4, 3)", b_gt, 2, {S1(3, -2, 2), S2(4, 3, -2, 2)}},
    {"ge", "(2, 1, 4) . (3, 1)", b_ge, 2, {S3(2, 1, 4, -2, 2), S2(3, 1, -2, 2)}},
    // 1-element and rank-3 operands for each comparison (masks: the gradient check sees zeros).
    {"eq", "(1, 1, 1) . (2, 3, 1)", b_eq, 2, {S3(1, 1, 1, -2, 2), S3(2, 3, 1, -2, 2)}},
    {"ne", "(2, 1, 3) . (4, 1)", b_ne, 2, {S3(2, 1, 3, -2, 2), S2(4, 1, -2, 2)}},
    {"lt", "(1) . (1)", b_lt, 2, {S1(1, -2, 2), S1(1, -2, 2)}},
    {"le", "(2, 3, 4) . (1, 4)", b_le, 2, {S3(2, 3, 4, -2, 2), S2(1, 4, -2, 2)}},
    {"gt", "(1, 1) . (2, 2, 3)", b_gt, 2, {S2(1, 1, -2, 2), S3(2, 2, 3, -2, 2)}},
    {"ge", "(1) . (1)", b_ge, 2, {S1(1, -2, 2), S1(1, -2, 2)}},
    {0},
};

// ---- bad input: shapes that do not broadcast ---------------------------------------------------

#define BAD(name)                                                                                  \
    {                                                                                              \
#name, "(2, 3) with (4)", b_##name, 2,                                                     \
            {{.ndim = 2, .shape = {2, 3 } }, {.ndim = 1, .shape = {4 } } }, NB_ERR_SHAPE, {        \
            "(2, 3)", "(4)"                                                                        \
        }                                                                                          \
    }
#define M(a, b)                                                                                    \
    {                                                                                              \
        .ndim = 2, .shape = { a, b }                                                               \
    }
const oc_bad_case oc_bad_binary[] = {
    BAD(add), BAD(sub), BAD(mul), BAD(div), BAD(maximum), BAD(minimum), BAD(eq),
    BAD(ne),  BAD(lt),  BAD(le),  BAD(gt),  BAD(ge),      {0},
};
