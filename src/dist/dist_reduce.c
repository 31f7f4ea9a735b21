// The bucketed, weighted gradient all-reduce. Each bucket is one contiguous buffer of one dtype:
//   [ w·grad of its parameters, concatenated | one presence flag per parameter | w | bad-weight ]
// so a single sum over the ranks carries the weighted gradients, which ranks had a grad for each
// parameter, the total weight Σ w and whether any rank passed an invalid weight. Every rank
// then takes the same decision from the same reduced numbers (no second round trip), and the
// grads are written only once every bucket has arrived and the checks passed.
#define _POSIX_C_SOURCE 200809L // clock_gettime under -std=c11

#include <math.h>
#include <string.h>
#include <time.h>

#include "dist/dist_impl.h"

typedef nb__dist_bucket bucket;

double nb__dist_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void nb_dist_reducer_destroy(nb_dist_reducer *r) {
    if (!r)
        return;
    nb__dist_overlap_free(r);
    for (int b = 0; b < r->n_buckets; b++)
        nb__free(r->buckets[b].buf);
    nb__free(r->buckets);
    nb__free(r->params);
    nb__free(r->names);
    nb__free(r);
}

nb_dist_reducer *nb_dist_reducer_create(nb_dist *d, const nb_params *set, size_t bucket_bytes) {
    const char *who = "nb_dist_reducer_create";
    if (!d || !set) {
        nb__set_last_error(NB_ERR_NULL, "%s: %s is NULL", who, !d ? "dist" : "set");
        return NULL;
    }
    int n = nb_params_count(set, NB_PARAM);
    if (n < 1) {
        nb__set_last_error(NB_ERR_ARG, "%s: the set has no parameters", who);
        return NULL;
    }
    if (bucket_bytes == 0)
        bucket_bytes = NB_DIST_DEFAULT_BUCKET_BYTES;
    nb_dist_reducer *r = nb__calloc(1, sizeof *r);
    if (!r)
        goto nomem;
    r->d = d;
    r->n_params = n;
    r->params = nb__calloc((size_t)n, sizeof *r->params);
    r->names = nb__calloc((size_t)n, sizeof *r->names);
    r->buckets = nb__calloc((size_t)n, sizeof *r->buckets); // at most one per parameter
    if (!r->params || !r->names || !r->buckets)
        goto nomem;
    for (int i = 0; i < n; i++) {
        r->params[i] = nb_params_tensor(set, NB_PARAM, n - 1 - i);
        r->names[i] = nb_params_name(set, NB_PARAM, n - 1 - i);
    }
    // Greedy: a parameter joins the open bucket if the dtype matches and it still fits.
    for (int i = 0; i < n; i++) {
        nb_dtype dt = nb_tensor_dtype(r->params[i]);
        int64_t numel = nb_tensor_numel(r->params[i]);
        bucket *cur = r->n_buckets ? &r->buckets[r->n_buckets - 1] : NULL;
        if (!cur || cur->dtype != dt ||
            (size_t)(cur->numel + numel) * nb_dtype_size(dt) > bucket_bytes) {
            cur = &r->buckets[r->n_buckets++];
            cur->dtype = dt;
            cur->first = i;
        }
        cur->n++;
        cur->numel += numel;
    }
    for (int b = 0; b < r->n_buckets; b++) {
        bucket *k = &r->buckets[b];
        k->buf = nb__calloc((size_t)(k->numel + k->n + 2), nb_dtype_size(k->dtype));
        if (!k->buf)
            goto nomem;
    }
    return r;
nomem:
    nb_dist_reducer_destroy(r);
    nb__set_last_error(NB_ERR_NOMEM, "%s: out of memory for the gradient buckets", who);
    return NULL;
}

int nb_dist_reducer_buckets(const nb_dist_reducer *r) {
    return r ? r->n_buckets : 0;
}

void nb_dist_reducer_stats(const nb_dist_reducer *r, nb_dist_stats *out) {
    if (out)
        *out = r ? r->stats : (nb_dist_stats){0};
}

void nb_dist_reducer_reset_stats(nb_dist_reducer *r) {
    if (r)
        r->stats = (nb_dist_stats){0};
}

void nb__dist_pack(const nb_dist_reducer *r, int b, double w, bool bad) {
    const bucket *k = &r->buckets[b];
    int64_t o = 0;
    for (int j = 0; j < k->n; j++) {
        nb_tensor *p = r->params[k->first + j];
        int64_t m = nb_tensor_numel(p);
        const void *g = nb_tensor_grad(p);
        if (k->dtype == NB_F32) {
            float *dst = (float *)k->buf + o, wf = (float)w;
            const float *src = g;
            if (src && !bad)
                for (int64_t e = 0; e < m; e++)
                    dst[e] = wf * src[e];
            else
                memset(dst, 0, (size_t)m * sizeof *dst);
            dst = (float *)k->buf + k->numel;
            dst[j] = g ? 1.0f : 0.0f;
        } else {
            double *dst = (double *)k->buf + o;
            const double *src = g;
            if (src && !bad)
                for (int64_t e = 0; e < m; e++)
                    dst[e] = w * src[e];
            else
                memset(dst, 0, (size_t)m * sizeof *dst);
            dst = (double *)k->buf + k->numel;
            dst[j] = g ? 1.0 : 0.0;
        }
        o += m;
    }
    double tail[2] = {bad ? 0.0 : w, bad ? 1.0 : 0.0};
    for (int t = 0; t < 2; t++) {
        if (k->dtype == NB_F32)
            ((float *)k->buf)[k->numel + k->n + t] = (float)tail[t];
        else
            ((double *)k->buf)[k->numel + k->n + t] = tail[t];
    }
}

static double slot(const bucket *k, int64_t i) {
    return k->dtype == NB_F32 ? (double)((const float *)k->buf)[i] : ((const double *)k->buf)[i];
}

nb_status nb__dist_reduce_bucket(nb_dist_reducer *r, int b) {
    bucket *k = &r->buckets[b];
    nb_status st = nb__dist_sum(r->d, k->buf, k->numel + k->n + 2, k->dtype, "gradient all-reduce");
    if (st == NB_OK)
        r->stats.bytes += (double)(k->numel + k->n + 2) * (double)nb_dtype_size(k->dtype);
    return st;
}

nb_status nb_dist_allreduce_grads(nb_dist_reducer *r, double weight) {
    const char *who = "nb_dist_allreduce_grads";
    if (!r)
        return nb__set_last_error(NB_ERR_NULL, "%s: reducer is NULL", who);
    if (nb__dist_overlap_active(r))
        return nb__set_last_error(
            NB_ERR_STATE,
            "%s: an overlapped all-reduce is under way (nb_dist_overlap_begin "
            "without nb_dist_overlap_end)",
            who);
    double t0 = nb__dist_now();
    // A bad weight still takes part in every collective (the other ranks are already in them);
    // it is flagged in the buckets, so every rank refuses the step together.
    bool bad = !(weight >= 0) || !isfinite(weight);
    for (int b = 0; b < r->n_buckets; b++) {
        nb__dist_pack(r, b, weight, bad);
        nb_status st = nb__dist_reduce_bucket(r, b);
        if (st != NB_OK)
            return st;
    }
    nb_status st = nb__dist_unpack(r, weight, bad, who);
    r->stats.seconds += nb__dist_now() - t0;
    return st;
}

nb_status nb__dist_unpack(nb_dist_reducer *r, double weight, bool bad, const char *who) {
    nb_dist *d = r->d;
    // The same decision on every rank, from the reduced numbers.
    const bucket *k0 = &r->buckets[0];
    double total = slot(k0, k0->numel + k0->n), n_bad = slot(k0, k0->numel + k0->n + 1);
    if (n_bad > 0) {
        if (bad)
            return nb__set_last_error(NB_ERR_ARG,
                                      "%s: weight %g on rank %d (want finite, >= 0); "
                                      "grads unchanged on every rank",
                                      who, weight, d->rank);
        return nb__set_last_error(NB_ERR_ARG,
                                  "%s: %g rank(s) passed an invalid weight (their "
                                  "messages say which); grads unchanged",
                                  who, n_bad);
    }
    if (!(total > 0))
        return nb__set_last_error(NB_ERR_ARG,
                                  "%s: the weights sum to 0 over the %d ranks (no "
                                  "samples in this step); grads unchanged",
                                  who, d->size);
    for (int b = 0; b < r->n_buckets; b++) {
        const bucket *k = &r->buckets[b];
        for (int j = 0; j < k->n; j++) {
            double have = slot(k, k->numel + j);
            if (have != 0 && have != d->size)
                return nb__set_last_error(
                    NB_ERR_STATE,
                    "%s: parameter '%s' has a gradient on %g of %d ranks (%s here): backward must "
                    "reach the same parameters on every rank (a rank without samples backwards a "
                    "zero loss or zeroes its grads); grads unchanged",
                    who, r->names[k->first + j], have, d->size,
                    nb_tensor_grad(r->params[k->first + j]) ? "present" : "absent");
        }
    }
    for (int b = 0; b < r->n_buckets; b++) {
        const bucket *k = &r->buckets[b];
        int64_t o = 0;
        for (int j = 0; j < k->n; j++) {
            nb_tensor *p = r->params[k->first + j];
            int64_t m = nb_tensor_numel(p);
            void *g = nb_tensor_grad(p);
            if (g && k->dtype == NB_F32) {
                const float *src = (const float *)k->buf + o;
                float *dst = g, tf = (float)total;
                for (int64_t e = 0; e < m; e++)
                    dst[e] = src[e] / tf;
            } else if (g) {
                const double *src = (const double *)k->buf + o;
                double *dst = g;
                for (int64_t e = 0; e < m; e++)
                    dst[e] = src[e] / total;
            }
            o += m;
        }
    }
    r->stats.calls++;
    return NB_OK;
}
