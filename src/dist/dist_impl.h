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

#endif
