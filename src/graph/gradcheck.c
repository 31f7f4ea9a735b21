// Finite-difference gradient check, a public feature for researchers. Analytic gradients come
// from one backward pass; numeric ones from central differences (f(x+h) - f(x-h)) / 2h, all in
// float64. A non-scalar output is reduced with a seeded random weighted sum Σ wᵢ yᵢ, which
// exercises every element of dy (a plain sum would hide errors that cancel).
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "graph/graph_priv.h"

#define WEIGHT_SEED 0x6e61626c61ull // "nabla"

typedef struct {
    nb_gradcheck_fn f;
    void *ctx;
    nb_tensor *const *inputs;
    int n;
    nb_graph *g;
    nb_tensor *w; // weights for non-scalar outputs, made on first evaluation
    bool second;  // gradgradcheck: f calls nb_grad, so grad mode stays on, and an output that
                  // depends on no input (a zero derivative everywhere) has analytic gradient 0
} gc_state;

static nb_gradcheck_result fail(nb_gradcheck_result r, nb_status st, const char *msg) {
    r.ok = false;
    r.status = st;
    snprintf(r.message, sizeof r.message, "%s", msg);
    return r;
}

// Runs f on a fresh tape; returns y or NULL (message on g).
static nb_tensor *evaluate(gc_state *s, bool grad) {
    nb_graph_reset(s->g);
    nb_graph_set_grad_enabled(s->g, grad || s->second);
    nb_tensor *y = s->f(s->g, s->inputs, s->n, s->ctx);
    if (y && y->dtype != NB_F64) {
        nb__graph_fail(s->g, NB_ERR_DTYPE, "gradcheck: the function returned %s, need float64",
                       nb_dtype_name(y->dtype));
        return NULL;
    }
    if (y && y->numel > 1 && !s->w) {
        s->w = nb_tensor_create(NB_F64, y->ndim, y->shape);
        nb_rng rng;
        nb_rng_seed(&rng, WEIGHT_SEED);
        if (s->w)
            nb_init_uniform(s->w, &rng, -1.0, 1.0);
        else
            nb__graph_fail(s->g, NB_ERR_NOMEM, "gradcheck: out of memory");
    }
    if (y && s->w && (y->numel != s->w->numel)) {
        nb__graph_fail(s->g, NB_ERR_SHAPE, "gradcheck: output shape changed between calls");
        return NULL;
    }
    return nb_graph_status(s->g) == NB_OK ? y : NULL;
}

// Σ wᵢ yᵢ (or y itself for a scalar), accumulated in double.
static double reduce(const gc_state *s, const nb_tensor *y) {
    const double *yd = y->data;
    if (y->numel == 1)
        return yd[0];
    double acc = 0;
    for (int64_t i = 0; i < y->numel; i++)
        acc += ((const double *)s->w->data)[i] * yd[i];
    return acc;
}

nb_gradcheck_result nb__gradcheck(nb_gradcheck_fn f, void *ctx, nb_tensor *const *inputs,
                                  int n_inputs, double h, double atol, double rtol, bool second) {
    nb_gradcheck_result r = {.ok = false, .worst_input = -1, .worst_index = -1};
    if (!f || !inputs || n_inputs <= 0)
        return fail(r, NB_ERR_NULL, "gradcheck: no function or no inputs");
    if (!(h > 0) || !(atol >= 0) || !(rtol >= 0))
        return fail(r, NB_ERR_ARG, "gradcheck: h must be > 0, atol and rtol >= 0");
    for (int i = 0; i < n_inputs; i++) {
        if (!inputs[i])
            return fail(r, NB_ERR_NULL, "gradcheck: an input is NULL");
        if (inputs[i]->requires_grad && inputs[i]->dtype != NB_F64)
            return fail(r, NB_ERR_DTYPE, "gradcheck: inputs that require grad must be float64");
        if (inputs[i]->graph)
            return fail(r, NB_ERR_STATE, "gradcheck: inputs must be leaf tensors");
    }
    bool any = false;
    for (int i = 0; i < n_inputs; i++)
        any = any || inputs[i]->requires_grad;
    if (!any)
        return fail(r, NB_ERR_ARG, "gradcheck: no input has requires_grad: nothing to check");
    gc_state s = {f, ctx, inputs, n_inputs, nb_graph_create(), NULL, second};
    if (!s.g)
        return fail(r, NB_ERR_NOMEM, "gradcheck: out of memory");

    // Analytic: snapshot and zero existing grads so we read exactly this pass's gradient.
    int64_t total = 0;
    for (int i = 0; i < n_inputs; i++)
        total += inputs[i]->requires_grad ? inputs[i]->numel : 0;
    double *analytic = nb__calloc((size_t)total + 1, sizeof(double));
    double *saved = nb__calloc((size_t)total + 1, sizeof(double));
    nb_tensor *y = analytic && saved ? evaluate(&s, true) : NULL;
    nb_status st = NB_OK;
    if (!analytic || !saved) {
        st = NB_ERR_NOMEM;
    } else if (!y) {
        st = nb_graph_status(s.g) != NB_OK ? nb_graph_status(s.g) : NB_ERR_NULL;
    } else {
        int64_t off = 0;
        for (int i = 0; i < n_inputs; i++) {
            nb_tensor *t = inputs[i];
            if (!t->requires_grad)
                continue;
            if (t->grad)
                memcpy(saved + off, t->grad, (size_t)t->numel * sizeof(double));
            nb_tensor_zero_grad(t);
            off += t->numel;
        }
        bool zero = second && !y->requires_grad; // constant grads: every analytic element 0
        if (!zero)
            st = y->numel == 1 ? nb_backward(s.g, y) : nb_backward_with(s.g, y, s.w);
        off = 0;
        for (int i = 0; i < n_inputs && st == NB_OK; i++) {
            nb_tensor *t = inputs[i];
            if (!t->requires_grad)
                continue;
            for (int64_t k = 0; k < t->numel; k++)
                analytic[off + k] = t->grad && !zero ? ((double *)t->grad)[k] : 0.0;
            if (t->grad) // restore the caller's accumulated grads
                memcpy(t->grad, saved + off, (size_t)t->numel * sizeof(double));
            off += t->numel;
        }
    }
    if (st != NB_OK) {
        char msg[sizeof r.message];
        snprintf(msg, sizeof msg, "gradcheck: %s",
                 nb_graph_status(s.g) != NB_OK ? nb_graph_error(s.g) : nb_status_str(st));
        r = fail(r, st, msg);
        goto done;
    }

    // Numeric: perturb one element at a time, in place, and restore it exactly.
    double worst_excess = -(double)INFINITY;
    int64_t off = 0;
    for (int i = 0; i < n_inputs; i++) {
        nb_tensor *t = inputs[i];
        if (!t->requires_grad)
            continue;
        double *x = t->data;
        for (int64_t k = 0; k < t->numel; k++) {
            double x0 = x[k];
            x[k] = x0 + h;
            nb_tensor *yp = evaluate(&s, false);
            double fp = yp ? reduce(&s, yp) : (double)NAN;
            x[k] = x0 - h;
            nb_tensor *ym = evaluate(&s, false);
            double fm = ym ? reduce(&s, ym) : (double)NAN;
            x[k] = x0;
            if (!yp || !ym) {
                char msg[sizeof r.message];
                snprintf(msg, sizeof msg, "gradcheck: %s", nb_graph_error(s.g));
                r = fail(r, nb_graph_status(s.g), msg);
                goto done;
            }
            double num = (fp - fm) / (2 * h);
            double ana = analytic[off + k];
            double abs_err = fabs(ana - num);
            double scale = fmax(fabs(ana), fabs(num));
            double rel_err = abs_err / fmax(scale, 1e-12);
            double excess = abs_err - (atol + rtol * scale);
            r.max_abs_err = fmax(r.max_abs_err, abs_err);
            r.max_rel_err = fmax(r.max_rel_err, rel_err);
            r.n_checked++;
            if (excess > worst_excess || isnan(excess)) {
                worst_excess = isnan(excess) ? (double)INFINITY : excess;
                r.worst_input = i;
                r.worst_index = k;
                r.worst_analytic = ana;
                r.worst_numeric = num;
            }
        }
        off += t->numel;
    }
    r.status = NB_OK;
    r.ok = worst_excess <= 0;
    if (!r.ok)
        snprintf(r.message, sizeof r.message,
                 "gradcheck: input %d element %lld: analytic %.10g, numeric %.10g (max abs err "
                 "%.3g, max rel err %.3g)",
                 r.worst_input, (long long)r.worst_index, r.worst_analytic, r.worst_numeric,
                 r.max_abs_err, r.max_rel_err);
done:
    nb__free(analytic);
    nb__free(saved);
    nb_tensor_destroy(s.w);
    nb_graph_destroy(s.g);
    return r;
}

nb_gradcheck_result nb_gradcheck(nb_gradcheck_fn f, void *ctx, nb_tensor *const *inputs,
                                 int n_inputs, double h, double atol, double rtol) {
    return nb__gradcheck(f, ctx, inputs, n_inputs, h, atol, rtol, false);
}
