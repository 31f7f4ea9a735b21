// The gradient all-reduce overlapped with backward. backward's grad-ready hook reports each
// parameter when its grad is final; when the last parameter of a bucket is reported, the bucket
// is packed (on the backward thread) and marked ready; a communication thread sums the ready
// buckets over the ranks strictly in bucket order (every rank must enter the same collectives
// in the same order, whatever order its backward finished them in), with the blocking
// collective of the non-overlapped path, so the result is bitwise the same. end() packs what
// backward did not reach, waits for the last sum and unpacks on the calling thread.
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "dist/dist_impl.h"

struct nb__dist_overlap {
    // Set up by the first begin, read-only afterwards.
    int *bucket_of;      // (n_params) bucket of each parameter
    nb_tensor **by_addr; // (n_params) the parameters sorted by address, for the hook's lookup
    int *by_addr_idx;    // (n_params) their index in r->params
    int *pending;        // (n_buckets) parameters not yet reported in this step
    bool *reported;      // (n_params)
    double weight;       // this step's
    bool bad;            // weight invalid: flagged in the buckets, refused at end on all ranks
    double hook_seconds; // packing time in the hook, this step
    int early;           // buckets handed over by the hook, this step
    pthread_t thread;
    pthread_mutex_t lock; // guards the fields below
    pthread_cond_t cv;
    bool active;  // between begin and end
    bool stop;    // the reducer is being destroyed
    bool *packed; // (n_buckets) handed to the thread
    int n_sent;   // buckets the thread has summed (always a prefix: bucket order)
    nb_status st; // the first collective error of this step, its message in err
    char err[512];
};

static int cmp_addr(const void *a, const void *b) {
    uintptr_t x = (uintptr_t) * (nb_tensor *const *)a, y = (uintptr_t) * (nb_tensor *const *)b;
    return x < y ? -1 : x > y;
}

static void *comm_thread(void *arg) {
    nb_dist_reducer *r = arg;
    struct nb__dist_overlap *ov = r->ov;
    pthread_mutex_lock(&ov->lock);
    while (!ov->stop) {
        int b = ov->n_sent;
        if (!ov->active || b >= r->n_buckets || !ov->packed[b]) {
            pthread_cond_wait(&ov->cv, &ov->lock);
            continue;
        }
        pthread_mutex_unlock(&ov->lock);
        nb_status st = nb__dist_reduce_bucket(r, b); // blocking, under the watchdog
        pthread_mutex_lock(&ov->lock);
        if (st != NB_OK && ov->st == NB_OK) { // nb_last_error is per thread: keep the message
            ov->st = st;
            snprintf(ov->err, sizeof ov->err, "%s", nb_last_error());
        }
        ov->n_sent = b + 1;
        pthread_cond_broadcast(&ov->cv);
    }
    pthread_mutex_unlock(&ov->lock);
    return NULL;
}

void nb__dist_overlap_free(nb_dist_reducer *r) {
    struct nb__dist_overlap *ov = r->ov;
    if (!ov)
        return;
    pthread_mutex_lock(&ov->lock);
    ov->stop = true;
    pthread_cond_broadcast(&ov->cv);
    pthread_mutex_unlock(&ov->lock);
    pthread_join(ov->thread, NULL);
    pthread_cond_destroy(&ov->cv);
    pthread_mutex_destroy(&ov->lock);
    nb__free(ov->bucket_of);
    nb__free(ov->by_addr);
    nb__free(ov->by_addr_idx);
    nb__free(ov->pending);
    nb__free(ov->reported);
    nb__free(ov->packed);
    nb__free(ov);
    r->ov = NULL;
}

bool nb__dist_overlap_active(const nb_dist_reducer *r) {
    if (!r->ov)
        return false;
    pthread_mutex_lock(&r->ov->lock);
    bool active = r->ov->active;
    pthread_mutex_unlock(&r->ov->lock);
    return active;
}

static nb_status setup(nb_dist_reducer *r) {
    const char *who = "nb_dist_overlap_begin";
    if (!nb__dist_threads_ok(r->d))
        return nb__set_last_error(NB_ERR_STATE,
                                  "%s: MPI was initialised without MPI_THREAD_SERIALIZED (the "
                                  "collectives run on a communication thread); use "
                                  "nb_dist_allreduce_grads after backward instead",
                                  who);
    struct nb__dist_overlap *ov = nb__calloc(1, sizeof *ov);
    int n = r->n_params, nb = r->n_buckets;
    if (ov) {
        ov->bucket_of = nb__calloc((size_t)n, sizeof *ov->bucket_of);
        ov->by_addr = nb__calloc((size_t)n, sizeof *ov->by_addr);
        ov->by_addr_idx = nb__calloc((size_t)n, sizeof *ov->by_addr_idx);
        ov->reported = nb__calloc((size_t)n, sizeof *ov->reported);
        ov->pending = nb__calloc((size_t)nb, sizeof *ov->pending);
        ov->packed = nb__calloc((size_t)nb, sizeof *ov->packed);
    }
    if (!ov || !ov->bucket_of || !ov->by_addr || !ov->by_addr_idx || !ov->reported ||
        !ov->pending || !ov->packed) {
        if (ov) {
            nb__free(ov->bucket_of), nb__free(ov->by_addr), nb__free(ov->by_addr_idx);
            nb__free(ov->reported), nb__free(ov->pending), nb__free(ov->packed);
        }
        nb__free(ov);
        return nb__set_last_error(NB_ERR_NOMEM, "%s: out of memory", who);
    }
    for (int b = 0; b < nb; b++)
        for (int j = 0; j < r->buckets[b].n; j++)
            ov->bucket_of[r->buckets[b].first + j] = b;
    for (int i = 0; i < n; i++)
        ov->by_addr[i] = r->params[i];
    qsort(ov->by_addr, (size_t)n, sizeof *ov->by_addr, cmp_addr);
    for (int k = 0; k < n; k++)
        for (int i = 0; i < n; i++)
            if (r->params[i] == ov->by_addr[k])
                ov->by_addr_idx[k] = i;
    pthread_mutex_init(&ov->lock, NULL);
    pthread_cond_init(&ov->cv, NULL);
    r->ov = ov;
    if (pthread_create(&ov->thread, NULL, comm_thread, r) != 0) {
        pthread_cond_destroy(&ov->cv);
        pthread_mutex_destroy(&ov->lock);
        r->ov = NULL;
        nb__free(ov->bucket_of), nb__free(ov->by_addr), nb__free(ov->by_addr_idx);
        nb__free(ov->reported), nb__free(ov->pending), nb__free(ov->packed);
        nb__free(ov);
        return nb__set_last_error(NB_ERR_STATE, "%s: cannot start the communication thread", who);
    }
    return NB_OK;
}

nb_status nb_dist_overlap_begin(nb_dist_reducer *r, double weight) {
    if (!r)
        return nb__set_last_error(NB_ERR_NULL, "nb_dist_overlap_begin: reducer is NULL");
    nb_status st = r->ov ? NB_OK : setup(r);
    if (st != NB_OK)
        return st;
    struct nb__dist_overlap *ov = r->ov;
    if (nb__dist_overlap_active(r))
        return nb__set_last_error(
            NB_ERR_STATE, "nb_dist_overlap_begin: called twice without nb_dist_overlap_end");
    for (int b = 0; b < r->n_buckets; b++)
        ov->pending[b] = r->buckets[b].n;
    memset(ov->reported, 0, (size_t)r->n_params * sizeof *ov->reported);
    ov->weight = weight;
    ov->bad = !(weight >= 0) || !isfinite(weight);
    ov->hook_seconds = 0;
    ov->early = 0;
    pthread_mutex_lock(&ov->lock);
    memset(ov->packed, 0, (size_t)r->n_buckets * sizeof *ov->packed);
    ov->n_sent = 0;
    ov->st = NB_OK;
    ov->active = true;
    pthread_mutex_unlock(&ov->lock);
    return NB_OK;
}

static void hand_over(struct nb__dist_overlap *ov, int b) {
    pthread_mutex_lock(&ov->lock);
    ov->packed[b] = true;
    pthread_cond_broadcast(&ov->cv);
    pthread_mutex_unlock(&ov->lock);
}

void nb_dist_grad_ready(void *reducer, nb_tensor *leaf) {
    nb_dist_reducer *r = reducer;
    struct nb__dist_overlap *ov = r ? r->ov : NULL;
    if (!ov || !leaf || !nb__dist_overlap_active(r))
        return;
    int lo = 0, hi = r->n_params - 1, i = -1; // binary search by address
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        int c = cmp_addr(&leaf, &ov->by_addr[mid]);
        if (c == 0) {
            i = ov->by_addr_idx[mid];
            break;
        }
        if (c < 0)
            hi = mid - 1;
        else
            lo = mid + 1;
    }
    if (i < 0 || ov->reported[i])
        return;
    ov->reported[i] = true;
    int b = ov->bucket_of[i];
    if (--ov->pending[b] > 0)
        return;
    double t0 = nb__dist_now();
    nb__dist_pack(r, b, ov->weight, ov->bad);
    hand_over(ov, b);
    ov->hook_seconds += nb__dist_now() - t0;
    ov->early++;
}

nb_status nb_dist_overlap_end(nb_dist_reducer *r) {
    const char *who = "nb_dist_overlap_end";
    if (!r)
        return nb__set_last_error(NB_ERR_NULL, "%s: reducer is NULL", who);
    if (!nb__dist_overlap_active(r))
        return nb__set_last_error(NB_ERR_STATE, "%s: no nb_dist_overlap_begin before it", who);
    struct nb__dist_overlap *ov = r->ov;
    double t0 = nb__dist_now();
    for (int b = 0; b < r->n_buckets; b++) // buckets backward did not finish: packed now
        if (ov->pending[b] > 0) {
            ov->pending[b] = 0;
            nb__dist_pack(r, b, ov->weight, ov->bad);
            hand_over(ov, b);
        }
    pthread_mutex_lock(&ov->lock);
    while (ov->n_sent < r->n_buckets)
        pthread_cond_wait(&ov->cv, &ov->lock);
    ov->active = false;
    nb_status st = ov->st;
    pthread_mutex_unlock(&ov->lock);
    if (st != NB_OK)
        nb__set_last_error(st, "%s", ov->err);
    else
        st = nb__dist_unpack(r, ov->weight, ov->bad, who);
    r->stats.seconds += nb__dist_now() - t0 + ov->hook_seconds;
    r->stats.early_buckets += ov->early;
    return st;
}
