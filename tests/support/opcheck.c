// Table-driven op checker: float64 finite differences through nb_gradcheck, and float32 vs
// float64 agreement of outputs and gradients on the same input values.
#include "support/opcheck.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *const oc_op_names[] = {
#define X(name) #name,
#define COMPOSITE(name, op) #name,
#include "ops/ops.def"
#undef X
#undef COMPOSITE
    NULL,
};

// Public function -> the op it records ("matmul_t" -> "matmul"; an op records itself).
static const struct {
    const char *name, *op;
} records[] = {
#define X(name) {#name, #name},
#define COMPOSITE(name, op) {#name, #op},
#include "ops/ops.def"
#undef X
#undef COMPOSITE
};

// A message names the op when it starts with "<word>:" where word is the function's name,
// the op it records, or a stem of the name (transpose_axes reports as "transpose").
static bool names_op(const char *msg, const char *name) {
    size_t w = strcspn(msg, ": ");
    if (msg[w] != ':' || w == 0)
        return false;
    if (strncmp(msg, name, w) == 0 && (name[w] == '\0' || name[w] == '_'))
        return true;
    for (size_t i = 0; i < sizeof records / sizeof records[0]; i++)
        if (strcmp(records[i].name, name) == 0 && strlen(records[i].op) == w &&
            strncmp(msg, records[i].op, w) == 0)
            return true;
    return false;
}

static bool near_kink(const oc_input *spec, double v) {
    if (spec->n_kinks == 0)
        return fabs(v) < spec->min_abs;
    for (int k = 0; k < spec->n_kinks; k++)
        if (fabs(v - spec->kinks[k]) < spec->min_abs)
            return true;
    return false;
}

nb_tensor *oc_make_input(const oc_input *spec, nb_dtype dt, nb_rng *rng) {
    nb_dtype make_dt = spec->role == OC_INDEX ? NB_I32 : spec->role == OC_INDEX64 ? NB_I64 : dt;
    nb_tensor *t = nb_tensor_create(make_dt, spec->ndim, spec->shape);
    if (!t)
        return NULL;
    int64_t n = nb_tensor_numel(t);
    int64_t last = spec->ndim ? spec->shape[spec->ndim - 1] : 1;
    double lo = spec->lo, hi = spec->hi;
    if (lo == 0 && hi == 0) {
        lo = -2;
        hi = 2;
    }
    switch (spec->role) {
    case OC_VALUES:
    case OC_CONST:
        for (int64_t i = 0; i < n; i++) {
            double v;
            do {
                v = lo + (hi - lo) * nb_rng_uniform(rng);
            } while (near_kink(spec, v));
            nb_tensor_set(t, i, v);
        }
        break;
    case OC_ONEHOT:
        for (int64_t r = 0; last > 0 && r < n / last; r++)
            nb_tensor_set(t, r * last + (int64_t)nb_rng_below(rng, (uint64_t)last), 1.0);
        break;
    case OC_SIMPLEX:
        for (int64_t r = 0; last > 0 && r < n / last; r++) {
            double sum = 0;
            for (int64_t j = 0; j < last; j++) {
                double v = 0.2 + nb_rng_uniform(rng);
                nb_tensor_set(t, r * last + j, v);
                sum += nb_tensor_get(t, r * last + j);
            }
            for (int64_t j = 0; j < last; j++)
                nb_tensor_set(t, r * last + j, nb_tensor_get(t, r * last + j) / sum);
        }
        break;
    case OC_INDEX:
    case OC_INDEX64:
        for (int64_t i = 0; i < n; i++)
            nb_tensor_set(t, i, spec->lo + (double)nb_rng_below(rng, (uint64_t)spec->classes));
        break;
    }
    if (spec->role == OC_VALUES || spec->role == OC_SIMPLEX)
        nb_tensor_set_requires_grad(t, true);
    return t;
}

static nb_tensor *gc_build(nb_graph *g, nb_tensor *const *in, int n, void *ctx) {
    const oc_case *c = ctx;
    return c->build(g, in, n);
}

static bool close_enough(const char *what, const nb_tensor *t32, const nb_tensor *t64, bool grads,
                         const oc_case *c) {
    int64_t n = nb_tensor_numel(t64);
    double maxabs = 0;
    for (int64_t i = 0; i < n; i++)
        maxabs = fmax(maxabs, fabs(grads ? nb_tensor_grad_get(t64, i) : nb_tensor_get(t64, i)));
    for (int64_t i = 0; i < n; i++) {
        double a = grads ? nb_tensor_grad_get(t64, i) : nb_tensor_get(t64, i);
        double b = grads ? nb_tensor_grad_get(t32, i) : nb_tensor_get(t32, i);
        double tol = 1e-4 * fmax(1.0, maxabs) + 1e-3 * fabs(a);
        if (!(fabs(a - b) <= tol)) {
            fprintf(stderr, "  %s [%s]: float32 %s disagrees at %lld: f64 %.9g, f32 %.9g\n", c->op,
                    c->label, what, (long long)i, a, b);
            return false;
        }
    }
    return true;
}

static bool f32_agreement(const oc_case *c, nb_tensor *const *in64) {
    nb_tensor *in32[4] = {0};
    bool ok = true;
    for (int i = 0; i < c->n_in; i++) {
        nb_dtype dt = nb_tensor_dtype(in64[i]);
        dt = dt == NB_I32 || dt == NB_I64 ? dt : NB_F32; // indices keep their dtype
        in32[i] = nb_tensor_create(dt, nb_tensor_ndim(in64[i]), nb_tensor_shape(in64[i]));
        nb_tensor_copy(in32[i], in64[i]);
        nb_tensor_set_requires_grad(in32[i], nb_tensor_requires_grad(in64[i]));
        nb_tensor_zero_grad(in64[i]);
    }
    nb_graph *g64 = nb_graph_create(), *g32 = nb_graph_create();
    nb_tensor *y64 = c->build(g64, in64, c->n_in);
    nb_tensor *y32 = c->build(g32, in32, c->n_in);
    if (!y64 || !y32) {
        fprintf(stderr, "  %s [%s]: build failed: %s | %s\n", c->op, c->label, nb_graph_error(g64),
                nb_graph_error(g32));
        ok = false;
        goto done;
    }
    ok = close_enough("output", y32, y64, false, c);
    // Same random upstream gradient in both dtypes.
    nb_tensor *w64 = nb_tensor_create(NB_F64, nb_tensor_ndim(y64), nb_tensor_shape(y64));
    nb_tensor *w32 = nb_tensor_create(NB_F32, nb_tensor_ndim(y64), nb_tensor_shape(y64));
    nb_rng rng;
    nb_rng_seed(&rng, 99);
    nb_init_uniform(w64, &rng, -1, 1);
    nb_tensor_copy(w32, w64);
    if (nb_backward_with(g64, y64, w64) != NB_OK || nb_backward_with(g32, y32, w32) != NB_OK) {
        fprintf(stderr, "  %s [%s]: backward failed: %s | %s\n", c->op, c->label,
                nb_graph_error(g64), nb_graph_error(g32));
        ok = false;
    }
    for (int i = 0; ok && i < c->n_in; i++)
        if (nb_tensor_requires_grad(in64[i]))
            ok = close_enough("gradient", in32[i], in64[i], true, c);
    nb_tensor_destroy(w64);
    nb_tensor_destroy(w32);
done:
    nb_graph_destroy(g64);
    nb_graph_destroy(g32);
    for (int i = 0; i < c->n_in; i++)
        nb_tensor_destroy(in32[i]);
    return ok;
}

bool oc_run_case(const oc_case *c, uint64_t seed) {
    nb_rng rng;
    nb_rng_seed(&rng, seed);
    nb_tensor *in[4] = {0};
    bool ok = true;
    for (int i = 0; i < c->n_in; i++) {
        in[i] = oc_make_input(&c->in[i], NB_F64, &rng);
        if (!in[i]) {
            fprintf(stderr, "  %s [%s]: cannot make input %d: %s\n", c->op, c->label, i,
                    nb_last_error());
            ok = false;
        }
    }
    if (ok) {
        nb_gradcheck_result r =
            nb_gradcheck(gc_build, (void *)(uintptr_t)c, in, c->n_in, 1e-6, 1e-6, 1e-5);
        if (!r.ok) {
            fprintf(stderr, "  %s [%s]: %s\n", c->op, c->label, r.message);
            ok = false;
        }
    }
    if (ok)
        ok = f32_agreement(c, in);
    for (int i = 0; i < c->n_in; i++)
        nb_tensor_destroy(in[i]);
    return ok;
}

bool oc_run_bad_case(const oc_bad_case *c) {
    nb_rng rng;
    nb_rng_seed(&rng, 7);
    nb_tensor *in[4] = {0};
    bool ok = true;
    for (int i = 0; i < c->n_in; i++)
        ok = ok && (in[i] = oc_make_input(&c->in[i], NB_F64, &rng)) != NULL;
    nb_graph *g = nb_graph_create();
    if (!ok || !g) {
        fprintf(stderr, "  %s [%s]: cannot set up: %s\n", c->op, c->label, nb_last_error());
        ok = false;
    } else {
        nb_tensor *y = c->build(g, in, c->n_in);
        const char *msg = nb_graph_error(g);
        ok = y == NULL && nb_graph_status(g) == c->status && names_op(msg, c->op);
        for (int k = 0; k < 3 && c->needle[k]; k++)
            ok = ok && strstr(msg, c->needle[k]) != NULL;
        if (!ok)
            fprintf(stderr,
                    "  %s [%s]: expected NULL and %s naming the op and \"%s\" \"%s\", got %s "
                    "\"%s\"\n",
                    c->op, c->label, nb_status_str(c->status), c->needle[0] ? c->needle[0] : "",
                    c->needle[1] ? c->needle[1] : "", nb_status_str(nb_graph_status(g)), msg);
    }
    nb_graph_destroy(g);
    for (int i = 0; i < c->n_in; i++)
        nb_tensor_destroy(in[i]);
    return ok;
}

bool oc_expect_error(nb_graph *g, const nb_tensor *result, nb_status st, ...) {
    const char *msg = nb_graph_error(g);
    bool ok = result == NULL && nb_graph_status(g) == st;
    va_list ap;
    va_start(ap, st);
    for (const char *needle; (needle = va_arg(ap, const char *)) != NULL;)
        ok = ok && strstr(msg, needle) != NULL;
    va_end(ap);
    if (!ok)
        fprintf(stderr, "  expected error %s, got result %p, status %s, message \"%s\"\n",
                nb_status_str(st), (const void *)result, nb_status_str(nb_graph_status(g)), msg);
    return ok;
}

bool oc_near(double a, double b, double tol) {
    bool ok = fabs(a - b) <= tol;
    if (!ok)
        fprintf(stderr, "  expected %.17g, got %.17g (diff %.3g > tol %.3g)\n", b, a, fabs(a - b),
                tol);
    return ok;
}
