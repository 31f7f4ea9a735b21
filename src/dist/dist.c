// nabla dist, the part that does not depend on the communicator: consistent start
// (fingerprint, then broadcast), the bucketed gradient all-reduce, metrics, agreement and
// sharding, over the primitives of dist_impl.h (dist_mpi.c or dist_none.c).
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "dist/dist_impl.h"

#define NB_DIST_DEFAULT_TIMEOUT 300.0

double nb__dist_default_timeout(void) {
    const char *s = getenv("NABLA_DIST_TIMEOUT");
    if (s && *s) {
        char *end;
        double v = strtod(s, &end);
        if (*end == '\0' && v > 0 && isfinite(v))
            return v;
        fprintf(stderr,
                "nabla dist: ignoring NABLA_DIST_TIMEOUT='%s' (want seconds > 0); using %g\n", s,
                NB_DIST_DEFAULT_TIMEOUT);
    }
    return NB_DIST_DEFAULT_TIMEOUT;
}

void nb__dist_print_abort(const nb_dist *d, const char *msg) {
    if (d)
        fprintf(stderr, "nabla dist: rank %d of %d: %s; stopping all ranks\n", d->rank, d->size,
                msg);
    else
        fprintf(stderr, "nabla dist: %s; stopping all ranks\n", msg);
    fflush(stderr);
}

int nb_dist_rank(const nb_dist *d) {
    return d ? d->rank : 0;
}
int nb_dist_size(const nb_dist *d) {
    return d ? d->size : 1;
}
bool nb_dist_is_root(const nb_dist *d) {
    return !d || d->rank == 0;
}

nb_status nb_dist_set_timeout(nb_dist *d, double seconds) {
    if (!d)
        return nb__set_last_error(NB_ERR_NULL, "nb_dist_set_timeout: dist is NULL");
    if (!(seconds > 0) || !isfinite(seconds))
        return nb__set_last_error(NB_ERR_ARG, "nb_dist_set_timeout: %g s (want > 0, finite)",
                                  seconds);
    d->timeout = seconds;
    return NB_OK;
}

double nb_dist_timeout(const nb_dist *d) {
    return d ? d->timeout : 0;
}

void nb_dist_slice(int64_t n, int rank, int size, int64_t *offset, int64_t *count) {
    int64_t off = 0, cnt = 0;
    if (n > 0 && size > 0 && rank >= 0 && rank < size) {
        int64_t q = n / size, rem = n % size;
        off = rank * q + (rank < rem ? rank : rem);
        cnt = q + (rank < rem ? 1 : 0);
    }
    if (offset)
        *offset = off;
    if (count)
        *count = cnt;
}

// ---- fingerprints --------------------------------------------------------------------------

static uint64_t fnv(uint64_t h, const void *data, size_t n) {
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

#define FNV_START 0xcbf29ce484222325ull

static uint64_t tensor_hash(uint64_t h, const char *name, int kind, const nb_tensor *t) {
    int32_t head[3] = {kind, (int32_t)nb_tensor_dtype(t), nb_tensor_ndim(t)};
    h = fnv(h, name, strlen(name) + 1);
    h = fnv(h, head, sizeof head);
    return fnv(h, nb_tensor_shape(t), (size_t)nb_tensor_ndim(t) * sizeof(int64_t));
}

// Every rank's 64-bit value equal to rank 0's? (Two 32-bit gathers into d->gather.)
static nb_status same_as_root(nb_dist *d, uint64_t v, bool *same_all, const char *what) {
    *same_all = true;
    for (int half = 0; half < 2; half++) {
        int32_t part = (int32_t)(uint32_t)(half ? v >> 32 : v);
        nb_status st = nb__dist_allgather_i32(d, part, d->gather, what);
        if (st != NB_OK)
            return st;
        for (int r = 1; r < d->size; r++)
            if (d->gather[r] != d->gather[0])
                *same_all = false;
    }
    return NB_OK;
}

static void describe(const nb_tensor *t, char *buf, size_t n) {
    char shape[96];
    snprintf(buf, n, "%s %s", nb_dtype_name(nb_tensor_dtype(t)),
             nb_tensor_shape_str(t, shape, sizeof shape));
}

// After a fingerprint mismatch: rank 0's per-entry hashes go to everyone, and each rank that
// differs names its first differing entry. Returns NB_ERR_ARG (or a communication error).
static nb_status explain_mismatch(nb_dist *d, const nb_params *set, const char *who) {
    int64_t n = 0;
    for (int k = 0; k < NB_PARAM_KIND_COUNT; k++)
        n += nb_params_count(set, (nb_param_kind)k);
    int64_t n_root = n;
    nb_status st = nb__dist_bcast(d, &n_root, sizeof n_root, "model fingerprint");
    if (st != NB_OK)
        return st;
    uint64_t *root = nb__calloc((size_t)(n_root > 0 ? n_root : 1), sizeof *root);
    int ok = root != NULL;
    int64_t i = 0;
    for (int k = 0; k < NB_PARAM_KIND_COUNT && root; k++)
        for (int j = 0; j < nb_params_count(set, (nb_param_kind)k) && i < n_root; j++, i++)
            root[i] = tensor_hash(FNV_START, nb_params_name(set, (nb_param_kind)k, j), k,
                                  nb_params_tensor(set, (nb_param_kind)k, j));
    // All ranks must take part in the broadcast even if one could not allocate; it then sends
    // into a one-element scratch, and its message says why.
    uint64_t scratch;
    st = nb__dist_bcast(d, root ? (void *)root : (void *)&scratch,
                        root ? n_root * (int64_t)sizeof *root : (int64_t)sizeof scratch,
                        "model fingerprint");
    char msg[600] = "";
    if (st == NB_OK && !ok)
        snprintf(msg, sizeof msg, "out of memory comparing with rank 0's model");
    i = 0;
    for (int k = 0; k < NB_PARAM_KIND_COUNT && st == NB_OK && ok && !msg[0]; k++)
        for (int j = 0; j < nb_params_count(set, (nb_param_kind)k) && !msg[0]; j++, i++) {
            const char *name = nb_params_name(set, (nb_param_kind)k, j);
            const nb_tensor *t = nb_params_tensor(set, (nb_param_kind)k, j);
            char desc[160];
            describe(t, desc, sizeof desc);
            if (i >= n_root)
                snprintf(msg, sizeof msg,
                         "this rank has %lld entries, rank 0 has %lld (first extra: %s '%s' %s)",
                         (long long)n, (long long)n_root, k ? "buffer" : "parameter", name, desc);
            else if (tensor_hash(FNV_START, name, k, t) != root[i])
                snprintf(msg, sizeof msg,
                         "entry %lld, %s '%s' %s here, differs from rank 0's (name, kind, dtype "
                         "or shape)",
                         (long long)i, k ? "buffer" : "parameter", name, desc);
        }
    if (st == NB_OK && ok && !msg[0] && n != n_root)
        snprintf(msg, sizeof msg, "this rank has %lld entries, rank 0 has %lld", (long long)n,
                 (long long)n_root);
    nb__free(root);
    if (st != NB_OK)
        return st;
    if (msg[0])
        return nb__set_last_error(NB_ERR_ARG,
                                  "%s: the model on rank %d differs from rank 0's: %s (every "
                                  "rank must build the same model: names, kinds, dtypes, shapes "
                                  "and order)",
                                  who, d->rank, msg);
    return nb__set_last_error(NB_ERR_ARG,
                              "%s: the model differs from rank 0's on another rank (its message "
                              "names the entry); nothing was broadcast",
                              who);
}

nb_status nb_dist_broadcast_params(nb_dist *d, nb_params *set) {
    const char *who = "nb_dist_broadcast_params";
    if (!d || !set)
        return nb__set_last_error(NB_ERR_NULL, "%s: %s is NULL", who, !d ? "dist" : "set");
    uint64_t h = FNV_START;
    for (int k = 0; k < NB_PARAM_KIND_COUNT; k++)
        for (int j = 0; j < nb_params_count(set, (nb_param_kind)k); j++)
            h = tensor_hash(h, nb_params_name(set, (nb_param_kind)k, j), k,
                            nb_params_tensor(set, (nb_param_kind)k, j));
    bool same;
    nb_status st = same_as_root(d, h, &same, "model fingerprint");
    if (st != NB_OK)
        return st;
    if (!same)
        return explain_mismatch(d, set, who);
    for (int k = 0; k < NB_PARAM_KIND_COUNT; k++)
        for (int j = 0; j < nb_params_count(set, (nb_param_kind)k); j++) {
            nb_tensor *t = nb_params_tensor(set, (nb_param_kind)k, j);
            st = nb__dist_bcast(d, nb_tensor_data(t),
                                nb_tensor_numel(t) * (int64_t)nb_dtype_size(nb_tensor_dtype(t)),
                                "parameter broadcast");
            if (st != NB_OK)
                return st;
        }
    return NB_OK;
}

nb_status nb_dist_broadcast_bytes(nb_dist *d, void *buf, size_t bytes) {
    if (!d || (!buf && bytes))
        return nb__set_last_error(NB_ERR_NULL, "nb_dist_broadcast_bytes: %s is NULL",
                                  !d ? "dist" : "buf");
    return nb__dist_bcast(d, buf, (int64_t)bytes, "broadcast");
}

// ---- optimizer state -------------------------------------------------------------------------

typedef struct {
    nb_dist *d;
    const char *const *names; // rank 0's exported state (views of the live buffers)
    nb_tensor *const *tensors;
    int n;
    nb_status err;
} optim_bcast;

// nb_optim_loader: rank 0 copies its live state into the staging tensors, then every rank
// receives them. Every rank asks for the same names in the same order (layouts agreed first).
static nb_status optim_loader(void *ctx, const char *const *names, nb_tensor *const *tensors,
                              int n) {
    optim_bcast *c = ctx;
    for (int i = 0; i < n; i++) {
        if (c->d->rank == 0) {
            int j = 0;
            while (j < c->n && strcmp(c->names[j], names[i]) != 0)
                j++;
            nb_status st = j < c->n ? nb_tensor_copy(tensors[i], c->tensors[j]) : NB_ERR_FORMAT;
            if (st != NB_OK && c->err == NB_OK)
                c->err = nb__set_last_error(st,
                                            "nb_dist_broadcast_optim: rank 0 cannot send "
                                            "'%s'",
                                            names[i]);
        }
        nb_tensor *t = tensors[i];
        nb_status st =
            nb__dist_bcast(c->d, nb_tensor_data(t),
                           nb_tensor_numel(t) * (int64_t)nb_dtype_size(nb_tensor_dtype(t)),
                           "optimizer state broadcast");
        if (st != NB_OK)
            return st;
    }
    return NB_OK;
}

nb_status nb_dist_broadcast_optim(nb_dist *d, nb_optim *opt) {
    const char *who = "nb_dist_broadcast_optim";
    if (!d || !opt)
        return nb__set_last_error(NB_ERR_NULL, "%s: %s is NULL", who, !d ? "dist" : "optimizer");
    const char *const *names;
    nb_tensor *const *tensors;
    int n = nb_optim_state_export(opt, &names, &tensors);
    const nb_optim_config *cfg = nb_optim_config_of(opt);
    int32_t layout[5] = {(int32_t)cfg->kind, cfg->amsgrad, cfg->centered, cfg->momentum > 0,
                         cfg->nesterov};
    uint64_t h = fnv(FNV_START, layout, sizeof layout);
    for (int i = 0; i < n; i++)
        h = tensor_hash(h, names[i], 0, tensors[i]);
    bool same;
    nb_status st = same_as_root(d, h, &same, "optimizer fingerprint");
    if (st != NB_OK)
        return st;
    if (!same)
        return nb__set_last_error(NB_ERR_ARG,
                                  "%s: the optimizers differ across ranks (kind, amsgrad, "
                                  "centered, momentum on/off, nesterov, parameters or their "
                                  "names, shapes and dtypes); nothing was broadcast",
                                  who);
    optim_bcast c = {d, names, tensors, n, NB_OK};
    nb_status local = nb_optim_state_import(opt, optim_loader, &c);
    if (local == NB_OK && c.err != NB_OK)
        local = c.err;
    return nb_dist_agree(d, local, "optimizer state broadcast");
}

// ---- metrics, agreement --------------------------------------------------------------------

nb_status nb_dist_allreduce_sum(nb_dist *d, double *values, int n) {
    if (!d || !values)
        return nb__set_last_error(NB_ERR_NULL, "nb_dist_allreduce_sum: %s is NULL",
                                  !d ? "dist" : "values");
    // A bad n is a programming error that would desynchronise the ranks: stop the job.
    if (n < 1 || n > 64)
        nb_dist_abort(d, 1, "nb_dist_allreduce_sum: n = %d (want 1..64)", n);
    return nb__dist_sum(d, values, n, NB_F64, "metric all-reduce");
}

nb_status nb_dist_barrier(nb_dist *d) {
    if (!d)
        return nb__set_last_error(NB_ERR_NULL, "nb_dist_barrier: dist is NULL");
    int32_t x = 0;
    return nb__dist_sum(d, &x, 1, NB_I32, "barrier");
}

nb_status nb_dist_agree(nb_dist *d, nb_status local, const char *what) {
    if (!d)
        return nb__set_last_error(NB_ERR_NULL, "nb_dist_agree: dist is NULL");
    if (!what)
        what = "a step";
    char mine[512];
    snprintf(mine, sizeof mine, "%s", nb_last_error());
    nb_status st = nb__dist_allgather_i32(d, (int32_t)local, d->gather, what);
    if (st != NB_OK)
        return st;
    nb_status first = NB_OK;
    int failed = 0;
    char ranks[160] = "";
    size_t len = 0;
    for (int r = 0; r < d->size; r++) {
        if (d->gather[r] == NB_OK)
            continue;
        if (first == NB_OK)
            first = (nb_status)d->gather[r];
        if (failed++ < 8 && len < sizeof ranks)
            len += (size_t)snprintf(ranks + len, sizeof ranks - len, "%s%d", failed > 1 ? ", " : "",
                                    r);
    }
    if (first == NB_OK)
        return NB_OK;
    if (failed > 8 && len < sizeof ranks)
        snprintf(ranks + len, sizeof ranks - len, " and %d more", failed - 8);
    if (local != NB_OK)
        nb__set_last_error(first, "%s (%s failed on rank(s) %s)", mine, what, ranks);
    else
        nb__set_last_error(first, "%s failed on rank(s) %s of %d (their messages say why)", what,
                           ranks, d->size);
    return first;
}
