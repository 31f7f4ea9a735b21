// nabla dist on MPI. Collectives run under a watchdog with a deadline: a rank that died, hangs
// or calls a different collective would otherwise leave the others blocked forever inside
// MPI_Allreduce. When the deadline passes the waiting rank says what it was waiting for and
// MPI_Abort ends the job on every node.
#define _POSIX_C_SOURCE 200809L // clock_gettime under -std=c11

#include <limits.h>
#include <mpi.h>
#include <pthread.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dist/dist_impl.h"

struct nb_dist_backend {
    MPI_Comm comm;
    bool owns_mpi; // nb_dist_init called MPI_Init_thread: nb_dist_finalize calls MPI_Finalize
    // The watchdog thread and what it watches (under lock): the collective this rank is in
    // (NULL: none) and since when.
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool stop;
    const char *what;
    double since;
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

static void *watchdog(void *arg);

bool nb__dist_threads_ok(const nb_dist *d) {
    (void)d;
    int provided = MPI_THREAD_SINGLE;
    return MPI_Query_thread(&provided) == MPI_SUCCESS && provided >= MPI_THREAD_SERIALIZED;
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
    pthread_mutex_init(&be->lock, NULL);
    pthread_cond_init(&be->wake, NULL);
    if (pthread_create(&be->thread, NULL, watchdog, d) != 0) {
        pthread_cond_destroy(&be->wake);
        pthread_mutex_destroy(&be->lock);
        MPI_Comm_free(&be->comm);
        nb__free(d->gather);
        nb__free(be);
        nb__free(d);
        nb__set_last_error(NB_ERR_STATE, "%s: cannot start the watchdog thread", who);
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
        // Serialized: the overlapped all-reduce (dist_overlap.c) calls collectives from its
        // communication thread while the main thread computes (never two at once).
        int rc = MPI_Init_thread(argc, argv, MPI_THREAD_SERIALIZED, &provided);
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
    pthread_mutex_lock(&d->be->lock);
    d->be->stop = true;
    pthread_cond_signal(&d->be->wake);
    pthread_mutex_unlock(&d->be->lock);
    pthread_join(d->be->thread, NULL);
    pthread_cond_destroy(&d->be->wake);
    pthread_mutex_destroy(&d->be->lock);
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

// The watchdog: a thread that wakes every quarter timeout (at most 1 s) and, when the rank has
// been inside one collective longer than the timeout, says which and aborts the job. The
// collectives themselves are MPI's blocking ones: the nonblocking forms completed by polling
// were tried first, and Open MPI's (libnbc) all-reduce of 1 MB was 60x slower than
// MPI_Allreduce on a loaded machine (a round per poll).
static void *watchdog(void *arg) {
    nb_dist *d = arg;
    struct nb_dist_backend *be = d->be;
    pthread_mutex_lock(&be->lock);
    while (!be->stop) {
        double period = d->timeout / 4 < 1 ? d->timeout / 4 : 1;
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        double t = (double)until.tv_sec + 1e-9 * (double)until.tv_nsec + period;
        until.tv_sec = (time_t)t;
        until.tv_nsec = (long)((t - (double)until.tv_sec) * 1e9);
        pthread_cond_timedwait(&be->wake, &be->lock, &until);
        if (be->stop || !be->what)
            continue;
        double waited = now_s() - be->since;
        if (waited > d->timeout) {
            const char *what = be->what;
            pthread_mutex_unlock(&be->lock);
            // MPI_Abort from this thread: an emergency exit Open MPI honours from any thread.
            nb_dist_abort(d, 1,
                          "no progress in the %s for %.0f s: another rank died, hung, or is not "
                          "calling the same collective (timeout: nb_dist_set_timeout or "
                          "NABLA_DIST_TIMEOUT)",
                          what, waited);
        }
    }
    pthread_mutex_unlock(&be->lock);
    return NULL;
}

static void enter(nb_dist *d, const char *what) {
    pthread_mutex_lock(&d->be->lock);
    d->be->what = what;
    d->be->since = now_s();
    pthread_mutex_unlock(&d->be->lock);
}

static void leave(nb_dist *d) {
    pthread_mutex_lock(&d->be->lock);
    d->be->what = NULL;
    pthread_mutex_unlock(&d->be->lock);
}

static MPI_Datatype mpi_type(nb_dtype dt) {
    return dt == NB_F32 ? MPI_FLOAT : dt == NB_F64 ? MPI_DOUBLE : MPI_INT32_T;
}

nb_status nb__dist_sum(nb_dist *d, void *buf, int64_t count, nb_dtype dtype, const char *what) {
    size_t es = nb_dtype_size(dtype);
    // MPI counts are int: a larger buffer goes in chunks.
    for (int64_t o = 0; o < count;) {
        int64_t c = count - o < INT_MAX / 2 ? count - o : INT_MAX / 2;
        enter(d, what);
        int rc = MPI_Allreduce(MPI_IN_PLACE, (char *)buf + (size_t)o * es, (int)c, mpi_type(dtype),
                               MPI_SUM, d->be->comm);
        leave(d);
        if (rc != MPI_SUCCESS)
            return mpi_fail(rc, "nabla dist", what);
        o += c;
    }
    return NB_OK;
}

nb_status nb__dist_bcast(nb_dist *d, void *buf, int64_t bytes, const char *what) {
    for (int64_t o = 0; o < bytes;) {
        int64_t c = bytes - o < INT_MAX / 2 ? bytes - o : INT_MAX / 2;
        enter(d, what);
        int rc = MPI_Bcast((char *)buf + o, (int)c, MPI_BYTE, 0, d->be->comm);
        leave(d);
        if (rc != MPI_SUCCESS)
            return mpi_fail(rc, "nabla dist", what);
        o += c;
    }
    return NB_OK;
}

nb_status nb__dist_allgather_i32(nb_dist *d, int32_t value, int32_t *all, const char *what) {
    enter(d, what);
    int rc = MPI_Allgather(&value, 1, MPI_INT32_T, all, 1, MPI_INT32_T, d->be->comm);
    leave(d);
    return rc == MPI_SUCCESS ? NB_OK : mpi_fail(rc, "nabla dist", what);
}
