// Library-private: the communicator-independent part of nabla dist (dist.c: fingerprints,
// buckets, metrics, sharding) over a few primitives that a backend implements: dist_mpi.c on
// MPI, dist_none.c for a build without MPI (a one-rank world whose collectives are identities).
#ifndef NABLA_DIST_IMPL_H
#define NABLA_DIST_IMPL_H

#include <stdbool.h>
#include <stdint.h>

#include "base/base_impl.h"
#include "nabla/dist.h"

struct nb_dist_backend; // the backend's own state (the MPI communicator)

struct nb_dist {
    int rank, size;
    double timeout;  // seconds a collective may wait (> 0)
    int32_t *gather; // (size) scratch for nb_dist_agree, allocated at init
    struct nb_dist_backend *be;
};

// The primitives. Each is collective. A collective that makes no progress within d->timeout
// seconds aborts the job naming `what` (never returns then). They return NB_OK or an error
// from the communication layer (with nb_last_error set), and allocate nothing.
// buf[0..count) := its elementwise sum over the ranks; dtype NB_F32, NB_F64 or NB_I32.
nb_status nb__dist_sum(nb_dist *d, void *buf, int64_t count, nb_dtype dtype, const char *what);
// bytes of buf from rank 0 to every rank.
nb_status nb__dist_bcast(nb_dist *d, void *buf, int64_t bytes, const char *what);
// all[r] := rank r's value, for every r (all has d->size entries).
nb_status nb__dist_allgather_i32(nb_dist *d, int32_t value, int32_t *all, const char *what);

// Shared by the backends: the timeout from NABLA_DIST_TIMEOUT or the default.
double nb__dist_default_timeout(void);
// Shared by the backends: message and exit path of nb_dist_abort, minus the ending itself.
void nb__dist_print_abort(const nb_dist *d, const char *msg);

// ---- the gradient reducer (dist_reduce.c), shared with the overlapped form (dist_overlap.c) --

typedef struct nb__dist_bucket {
    nb_dtype dtype;
    int first, n;  // parameters r->params[first .. first + n)
    int64_t numel; // payload elements (Σ numel of its parameters)
    void *buf;     // numel + n + 2 elements of dtype: [w·grads | presence | w | bad]
} nb__dist_bucket;

struct nb__dist_overlap; // dist_overlap.c

struct nb_dist_reducer {
    nb_dist *d;
    int n_params;
    nb_tensor **params; // (n_params) reverse registration order: the order backward ends them
    const char **names; // (n_params) borrowed from the set (valid while the set is unchanged)
    int n_buckets;
    nb__dist_bucket *buckets;
    nb_dist_stats stats;
    struct nb__dist_overlap *ov; // NULL until the first nb_dist_overlap_begin
};

double nb__dist_now(void);
// Bucket b's buffer := [w·grads | presence flags | w | bad] from its parameters' grads.
void nb__dist_pack(const nb_dist_reducer *r, int b, double w, bool bad);
// Bucket b's buffer := its sum over the ranks (collective; counts the bytes in r->stats).
nb_status nb__dist_reduce_bucket(nb_dist_reducer *r, int b);
// After every bucket is reduced: the checks every rank makes alike, then grads := the sums / Σ w.
nb_status nb__dist_unpack(nb_dist_reducer *r, double weight, bool bad, const char *who);
bool nb__dist_overlap_active(const nb_dist_reducer *r);
void nb__dist_overlap_free(nb_dist_reducer *r);
// The backend allows collectives from a thread other than the one that started MPI, one thread
// at a time (MPI_THREAD_SERIALIZED); true without MPI.
bool nb__dist_threads_ok(const nb_dist *d);

#endif
