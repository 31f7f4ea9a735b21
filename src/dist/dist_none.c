// nabla dist without MPI (built with NABLA_WITH_MPI off): a one-rank world whose collectives are
// identities, so code written for nb_dist runs unchanged in one process. Launched by an MPI
// launcher with several ranks it refuses to start: each rank would silently train its own copy.
#include <stdarg.h>
#include <string.h>
#include <unistd.h>

#include "dist/dist_impl.h"

bool nb_dist_built_with_mpi(void) {
    return false;
}

// The world size an MPI launcher announced (Open MPI, MPICH/Hydra, PMIx, Slurm), or 1.
static long launcher_size(const char **var) {
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE",
                                       "SLURM_NTASKS"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const char *s = getenv(vars[i]);
        if (s && atol(s) > 1) {
            *var = vars[i];
            return atol(s);
        }
    }
    return 1;
}

nb_dist *nb_dist_init(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    const char *var = "";
    long n = launcher_size(&var);
    if (n > 1) {
        nb__set_last_error(NB_ERR_STATE,
                           "nb_dist_init: launched as one of %ld ranks (%s), but this nabla was "
                           "built without MPI (NABLA_WITH_MPI off; install libopenmpi-dev and "
                           "rebuild): each rank would train alone",
                           n, var);
        return NULL;
    }
    nb_dist *d = nb__calloc(1, sizeof *d);
    if (d)
        d->gather = nb__calloc(1, sizeof *d->gather);
    if (!d || !d->gather) {
        nb__free(d);
        nb__set_last_error(NB_ERR_NOMEM, "nb_dist_init: out of memory");
        return NULL;
    }
    d->rank = 0;
    d->size = 1;
    d->timeout = nb__dist_default_timeout();
    return d;
}

nb_dist *nb_dist_attach(const void *mpi_comm) {
    (void)mpi_comm;
    nb__set_last_error(NB_ERR_STATE, "nb_dist_attach: this nabla was built without MPI "
                                     "(NABLA_WITH_MPI off; install libopenmpi-dev and rebuild)");
    return NULL;
}

void nb_dist_finalize(nb_dist *d) {
    if (!d)
        return;
    nb__free(d->gather);
    nb__free(d);
}

void nb_dist_abort(const nb_dist *d, int code, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    nb__dist_print_abort(d, msg);
    _exit(code ? code : 1);
}

bool nb__dist_threads_ok(const nb_dist *d) {
    (void)d;
    return true;
}

nb_status nb__dist_sum(nb_dist *d, void *buf, int64_t count, nb_dtype dtype, const char *what) {
    (void)d, (void)buf, (void)count, (void)dtype, (void)what;
    return NB_OK;
}

nb_status nb__dist_bcast(nb_dist *d, void *buf, int64_t bytes, const char *what) {
    (void)d, (void)buf, (void)bytes, (void)what;
    return NB_OK;
}

nb_status nb__dist_allgather_i32(nb_dist *d, int32_t value, int32_t *all, const char *what) {
    (void)d, (void)what;
    all[0] = value;
    return NB_OK;
}
