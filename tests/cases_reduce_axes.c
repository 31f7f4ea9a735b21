// Gradient-check and bad-input cases for src/ops/reduce_axes.c: the multi-axis reductions
// (sum, mean, var, std, logsumexp over a set of axes, biased and unbiased, keepdim both ways),
// softmax / log_softmax along any axis and softplus with beta and threshold.
#include <math.h>

#include "support/case_shapes.h"

#define AXES_BUILD(tag, call)                                                                      \
    static nb_tensor *ax_##tag(nb_graph *g, nb_tensor *const *in, int n) {                         \
        (void)n;                                                                                   \
        nb_tensor *x = in[0];                                                                      \
        return call;                                                                               \
    }
AXES_BUILD(sum02k, nb_sum_axes(g, x, 2, (const int[]){0, 2}, true))
AXES_BUILD(sum_m1, nb_sum_axes(g, x, 1, (const int[]){-1}, false))
AXES_BUILD(sum_all, nb_sum_axes(g, x, 0, NULL, false))
AXES_BUILD(mean13, nb_mean_axes(g, x, 2, (const int[]){1, 3}, false))
AXES_BUILD(mean_m1k, nb_mean_axes(g, x, 1, (const int[]){-1}, true))
AXES_BUILD(var_u, nb_var_axes(g, x, 1, (const int[]){-1}, true, false))
AXES_BUILD(var_b02, nb_var_axes(g, x, 2, (const int[]){0, 2}, false, true))
AXES_BUILD(var_all, nb_var_axes(g, x, 0, NULL, true, false))
AXES_BUILD(std_u, nb_std_axes(g, x, 1, (const int[]){1}, true, true))
AXES_BUILD(std_b, nb_std_axes(g, x, 2, (const int[]){-1, 0}, false, false))
AXES_BUILD(lse_m1, nb_logsumexp_axes(g, x, 1, (const int[]){-1}, false))
AXES_BUILD(lse_01k, nb_logsumexp_axes(g, x, 2, (const int[]){0, 1}, true))
AXES_BUILD(sm0, nb_softmax_axis(g, x, 0))
AXES_BUILD(sm1, nb_softmax_axis(g, x, 1))
AXES_BUILD(sm_m1, nb_softmax_axis(g, x, -1))
AXES_BUILD(lsm1, nb_log_softmax_axis(g, x, 1))
AXES_BUILD(lsm0, nb_log_softmax_axis(g, x, 0))
AXES_BUILD(sp_default, nb_softplus_bt(g, x, 1, 20))
AXES_BUILD(sp_beta, nb_softplus_bt(g, x, 2.5, 3))
AXES_BUILD(sp_exact, nb_softplus_bt(g, x, 0.5, INFINITY))

const oc_case oc_cases_reduce_axes[] = {
    {"sum_axes", "(2, 3, 4) axes {0, 2} keepdim", ax_sum02k, 1, {T3(2, 3, 4)}},
    {"sum_axes", "(1) axis -1", ax_sum_m1, 1, {V1(1)}},
    {"sum_axes", "(3, 5) all axes", ax_sum_all, 1, {M2(3, 5)}},
    {"mean_axes", "(2, 3, 4, 5) axes {1, 3}", ax_mean13, 1, {T4(2, 3, 4, 5)}},
    {"mean_axes", "(3, 5) axis -1 keepdim", ax_mean_m1k, 1, {M2(3, 5)}},
    {"mean_axes", "(1) axis -1 keepdim", ax_mean_m1k, 1, {V1(1)}},
    {"var_axes", "(3, 5) axis -1 unbiased", ax_var_u, 1, {M2(3, 5)}},
    {"var_axes", "(2, 3, 4) axes {0, 2} biased keepdim", ax_var_b02, 1, {T3(2, 3, 4)}},
    {"var_axes", "(2, 3, 4, 5) all unbiased", ax_var_all, 1, {T4(2, 3, 4, 5)}},
    {"var_axes", "(1, 1, 1) axes {0, 2} biased: var 0", ax_var_b02, 1, {T3(1, 1, 1)}},
    {"std_axes", "(2, 3, 4) axis 1 unbiased keepdim", ax_std_u, 1, {T3(2, 3, 4)}},
    {"std_axes", "(4, 3) axes {-1, 0} biased", ax_std_b, 1, {M2(4, 3)}},
    {"logsumexp_axes", "(3, 5) axis -1", ax_lse_m1, 1, {M2(3, 5)}},
    {"logsumexp_axes", "(1) axis -1", ax_lse_m1, 1, {V1(1)}},
    {"logsumexp_axes", "(2, 3, 4) axes {0, 1} keepdim", ax_lse_01k, 1, {T3(2, 3, 4)}},
    {"softmax_axis", "(2, 3, 4) axis 1", ax_sm1, 1, {T3(2, 3, 4)}},
    {"softmax_axis", "(3, 5) axis 0", ax_sm0, 1, {M2(3, 5)}},
    {"softmax_axis", "(1) axis -1", ax_sm_m1, 1, {V1(1)}},
    {"softmax_axis", "(2, 3, 4, 5) axis -1", ax_sm_m1, 1, {T4(2, 3, 4, 5)}},
    {"log_softmax_axis", "(2, 3, 4) axis 1", ax_lsm1, 1, {T3(2, 3, 4)}},
    {"log_softmax_axis", "(4, 3) axis 0", ax_lsm0, 1, {M2(4, 3)}},
    {"log_softmax_axis", "(1, 1) axis 0", ax_lsm0, 1, {M2(1, 1)}},
    {"softplus_bt", "(3, 5) beta 1 threshold 20", ax_sp_default, 1, {M2(3, 5)}},
    {"softplus_bt", "(1) beta 1 threshold 20", ax_sp_default, 1, {V1(1)}},
    {"softplus_bt", "(2, 3, 4) beta 2.5 threshold 3 (both sides)", ax_sp_beta, 1, {T3(2, 3, 4)}},
    {"softplus_bt", "(3, 5) beta 0.5 exact", ax_sp_exact, 1, {M2(3, 5)}},
    {0},
};

// ---- bad input ---------------------------------------------------------------------------------

#define BAD_BUILD(name, expr)                                                                      \
    static nb_tensor *bad_##name(nb_graph *g, nb_tensor *const *in, int n) {                       \
        (void)n;                                                                                   \
        return expr;                                                                               \
    }
BAD_BUILD(sum_axes, nb_sum_axes(g, in[0], 1, (const int[]){5}, false))
BAD_BUILD(mean_axes, nb_mean_axes(g, in[0], 2, (const int[]){0, 7}, true))
BAD_BUILD(var_axes, nb_var_axes(g, in[0], 1, (const int[]){-4}, true, false))
BAD_BUILD(std_axes, nb_std_axes(g, in[0], 1, (const int[]){3}, true, false))
BAD_BUILD(logsumexp_axes, nb_logsumexp_axes(g, in[0], 1, (const int[]){6}, false))
BAD_BUILD(softplus_bt, nb_softplus_bt(g, in[0], -1, 20))
BAD_BUILD(softmax_axis, nb_softmax_axis(g, in[0], 5))
BAD_BUILD(log_softmax_axis, nb_log_softmax_axis(g, in[0], -5))

const oc_bad_case oc_bad_reduce_axes[] = {
    {"sum_axes", "axis 5 of 2 dims", bad_sum_axes, 1, {M2(2, 3)}, NB_ERR_ARG, {"(2, 3)"}},
    {"mean_axes", "axis 7 of 2 dims", bad_mean_axes, 1, {M2(2, 3)}, NB_ERR_ARG, {"(2, 3)"}},
    {"var_axes", "axis -4 of 2 dims", bad_var_axes, 1, {M2(2, 3)}, NB_ERR_ARG, {"(2, 3)"}},
    {"std_axes", "axis 3 of 2 dims", bad_std_axes, 1, {M2(2, 3)}, NB_ERR_ARG, {"(2, 3)"}},
    {"logsumexp_axes",
     "axis 6 of 2 dims",
     bad_logsumexp_axes,
     1,
     {M2(2, 3)},
     NB_ERR_ARG,
     {"(2, 3)"}},
    {"softplus_bt", "beta -1", bad_softplus_bt, 1, {M2(2, 3)}, NB_ERR_ARG, {"beta"}},
    {"softmax_axis", "axis 5 of 2 dims", bad_softmax_axis, 1, {M2(2, 3)}, NB_ERR_ARG, {"(2, 3)"}},
    {"log_softmax_axis",
     "axis -5 of 2 dims",
     bad_log_softmax_axis,
     1,
     {M2(2, 3)},
     NB_ERR_ARG,
     {"(2, 3)"}},
    {0},
};
