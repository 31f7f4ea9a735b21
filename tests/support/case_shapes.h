// Test support: shorthand for the input specs of the case tables (support/opcheck.h), e.g.
// {"sum", "(2, 3)", sum_all, 1, {M2(2, 3)}}. Values uniform in [-2, 2) with a gradient unless
// the role says otherwise.
#ifndef NABLA_TEST_CASE_SHAPES_H
#define NABLA_TEST_CASE_SHAPES_H

#include "support/opcheck.h"

#define S0                                                                                         \
    { .ndim = 0 }
#define V1(a)                                                                                      \
    {                                                                                              \
        .ndim = 1, .shape = { a }                                                                  \
    }
#define M2(a, b)                                                                                   \
    {                                                                                              \
        .ndim = 2, .shape = { a, b }                                                               \
    }
#define T3(a, b, c)                                                                                \
    {                                                                                              \
        .ndim = 3, .shape = { a, b, c }                                                            \
    }
#define T4(a, b, c, d)                                                                             \
    {                                                                                              \
        .ndim = 4, .shape = { a, b, c, d }                                                         \
    }
// int32 class indices in [0, c) (OC_INDEX)
#define I1(a, c)                                                                                   \
    { .ndim = 1, .shape = {a}, .role = OC_INDEX, .classes = c }
#define I2(a, b, c)                                                                                \
    { .ndim = 2, .shape = {a, b}, .role = OC_INDEX, .classes = c }
#define I3(a, b, c, k)                                                                             \
    { .ndim = 3, .shape = {a, b, c}, .role = OC_INDEX, .classes = k }
// int64 class indices (PyTorch's index dtype, OC_INDEX64)
#define L1(a, c)                                                                                   \
    { .ndim = 1, .shape = {a}, .role = OC_INDEX64, .classes = c }
#define L2(a, b, c)                                                                                \
    { .ndim = 2, .shape = {a, b}, .role = OC_INDEX64, .classes = c }
#define L3(a, b, c, k)                                                                             \
    { .ndim = 3, .shape = {a, b, c}, .role = OC_INDEX64, .classes = k }
// a constant input (no gradient)
#define K2(a, b)                                                                                   \
    { .ndim = 2, .shape = {a, b}, .role = OC_CONST }

#endif
