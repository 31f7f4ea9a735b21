// nabla dist on MPI. Collectives are the nonblocking MPI_I* forms completed by a polling wait
// with a deadline: a rank that died, hangs or calls a different collective would otherwise
// leave the others blocked forever inside MPI_Allreduce. When the deadline passes the waiting
// rank says what it was waiting for and MPI_Abort ends the job on every node.
#include <limits.h>
#include <mpi.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dist/dist_impl.h"

struct nb_dist_backend {
    MPI_Comm comm;
    bool owns_mpi; // nb_dist_init called MPI_Init_thread: nb_dist_finalize calls MPI_Finalize
};

bool nb_dist_built_with_mpi(void) {
    return true;
}

static nb_status mpi_fail(int rc, const char *who, const char *what) {
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(rc, text, &len) != MPI_SUCCESS)
        snprintf(text, sizeof text, "MPI error %d", rc);
    return nb__set_last_error(NB_ERR_STATE, "%s: %s: %s", who, what, text);
}

static nb_dist *make(MPI_Comm parent, bool owns_mpi, const char *who) {
    nb_dist *d = nb__calloc(1, sizeof *d);
    struct nb_dist_backend *be = nb__calloc(1, sizeof *be);
    if (!d || !be) {
        nb__free(d);
        nb__free(be);
        nb__set_last_error(NB_ERR_NOMEM, "%s: out of memory", who);
        return NULL;
    }
    int rc = MPI_Comm_dup(parent, &be->comm);
    if (rc != MPI_SUCCESS) {
        nb__free(d);
        nb__free(be);
        mpi_fail(rc, who, "MPI_Comm_dup");
        return NULL;
    }
    // Errors come back as codes (reported with a message) instead of MPI's default abort.
    MPI_Comm_set_errhandler(be->comm, MPI_ERRORS_RETURN);
    MPI_Comm_rank(be->comm, &d->rank);
    MPI_Comm_size(be->comm, &d->size);
    be->owns_mpi = owns_mpi;
    d->be = be;
    d->timeout = nb__dist_default_timeout();
    d->gather = nb__calloc((size_t)d->size, sizeof *d->gather);
    if (!d->gather) {
        MPI_Comm_free(&be->comm);
        nb__free(be);
        nb__free(d);
        nb__set_last_error(NB_ERR_NOMEM, "%s: out of memory", who);
        return NULL;
    }
    return d;
}

nb_dist *nb_dist_init(int *argc, char ***argv) {
    const char *who = "nb_dist_init";
    int inited = 0, finalized = 0;
    MPI_Initialized(&inited);
    MPI_Finalized(&finalized);
    if (finalized) {
        nb__set_last_error(NB_ERR_STATE, "%s: MPI was already finalized in this process", who);
        return NULL;
    }
    if (!inited) {
        int provided = 0;
        int rc = MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
        if (rc != MPI_SUCCESS) {
            mpi_fail(rc, who, "MPI_Init_thread");
            return NULL;
        }
    }
    nb_dist *d = make(MPI_COMM_WORLD, !inited, who);
    if (!d && !inited)
        MPI_Finalize();
    return d;
}

nb_dist *nb_dist_attach(const void *mpi_comm) {
    const char *who = "nb_dist_attach";
    if (!mpi_comm) {
        nb__set_last_error(NB_ERR_NULL, "%s: communicator is NULL", who);
        return NULL;
    }
    int inited = 0;
    MPI_Initialized(&inited);
    if (!inited) {
        nb__set_last_error(NB_ERR_STATE,
                           "%s: MPI is not initialised (call MPI_Init first, or "
                           "nb_dist_init)",
                           who);
        return NULL;
    }
    return make(*(const MPI_Comm *)mpi_comm, false, who);
}

void nb_dist_finalize(nb_dist *d) {
    if (!d)
        return;
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized)
        MPI_Comm_free(&d->be->comm);
    if (d->be->owns_mpi && !finalized)
        MPI_Finalize();
    nb__free(d->gather);
    nb__free(d->be);
    nb__free(d);
}

void nb_dist_abort(const nb_dist *d, int code, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    nb__dist_print_abort(d, msg);
    int inited = 0, finalized = 0;
    MPI_Initialized(&inited);
    MPI_Finalized(&finalized);
    if (inited && !finalized)
        MPI_Abort(d ? d->be->comm : MPI_COMM_WORLD, code ? code : 1);
    _exit(code ? code : 1);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

// Completes *req, polling. Spins for the first millisecond (the common case: the others are
// already there), then sleeps 20 us between polls so a long wait does not burn a core.
static nb_status wait_for(nb_dist *d, MPI_Request *req, const char *what) {
    double t0 = now_s(), t = t0;
    for (long polls = 0;; polls++) {
        int done = 0;
        int rc = MPI_Test(req, &done, MPI_STATUS_IGNORE);
        if (rc != MPI_SUCCESS)
            return mpi_fail(rc, "nabla dist", what);
        if (done)
            return NB_OK;
        if ((polls & 63) == 0)
            t = now_s();
        if (t - t0 > d->timeout)
            nb_dist_abort(d, 1,
                          "no progress in the %s for %.0f s: another rank died, hung, or is not "
                          "calling the same collective (timeout: nb_dist_set_timeout or "
                          "NABLA_DIST_TIMEOUT)",
                          what, t - t0);
        if (t - t0 > 1e-3)
            nanosleep(&(struct timespec){0, 20000}, NULL);
    }
}

static MPI_Datatype mpi_type(nb_dtype dt) {
    return dt == NB_F32 ? MPI_FLOAT : dt == NB_F64 ? MPI_DOUBLE : MPI_INT32_T;
}

nb_status nb__dist_sum(nb_dist *d, void *buf, int64_t count, nb_dtype dtype, const char *what) {
    size_t es = nb_dtype_size(dtype);
    // MPI counts are int: a larger buffer goes in chunks.
    for (int64_t o = 0; o < count;) {
        int64_t c = count - o < INT_MAX / 2 ? count - o : INT_MAX / 2;
        MPI_Request req;
        int rc = MPI_Iallreduce(MPI_IN_PLACE, (char *)buf + (size_t)o * es, (int)c, mpi_type(dtype),
                                MPI_SUM, d->be->comm, &req);
        if (rc != MPI_SUCCESS)
            return mpi_fail(rc, "nabla dist", what);
        nb_status st = wait_for(d, &req, what);
        if (st != NB_OK)
            return st;
        o += c;
    }
    return NB_OK;
}

nb_status nb__dist_bcast(nb_dist *d, void *buf, int64_t bytes, const char *what) {
    for (int64_t o = 0; o < bytes;) {
        int64_t c = bytes - o < INT_MAX / 2 ? bytes - o : INT_MAX / 2;
        MPI_Request req;
        int rc = MPI_Ibcast((char *)buf + o, (int)c, MPI_BYTE, 0, d->be->comm, &req);
        if (rc != MPI_SUCCESS)
            return mpi_fail(rc, "nabla dist", what);
        nb_status st = wait_for(d, &req, what);
        if (st != NB_OK)
            return st;
        o += c;
    }
    return NB_OK;
}

nb_status nb__dist_allgather_i32(nb_dist *d, int32_t value, int32_t *all, const char *what) {
    MPI_Request req;
    int rc = MPI_Iallgather(&value, 1, MPI_INT32_T, all, 1, MPI_INT32_T, d->be->comm, &req);
    if (rc != MPI_SUCCESS)
        return mpi_fail(rc, "nabla dist", what);
    return wait_for(d, &req, what);
}
