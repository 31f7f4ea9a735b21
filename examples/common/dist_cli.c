// The examples' shared --distributed start-up (dist_cli.h).
#define _POSIX_C_SOURCE 200809L // freopen's /dev/null is POSIX

#include "common/dist_cli.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

// The rank named in error messages: -1 outside a job of several ranks.
static int message_rank = -1;

// One write per message: the ranks share mpirun's stderr, and a prefix written apart from its
// message was seen interleaved with another rank's line.
int dist_cli_vfail(const char *prog, const char *fmt, va_list ap) {
    char line[2048];
    int k = message_rank >= 0 ? snprintf(line, sizeof line, "%s: rank %d: ", prog, message_rank)
                              : snprintf(line, sizeof line, "%s: ", prog);
    if (k > 0 && (size_t)k < sizeof line - 1)
        vsnprintf(line + k, sizeof line - 1 - (size_t)k, fmt, ap); // room kept for the newline
    size_t n = strlen(line);
    if (n + 1 < sizeof line)
        memcpy(line + n, "\n", 2);
    fputs(line, stderr);
    return 1;
}

int dist_cli_fail(const char *prog, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    dist_cli_vfail(prog, fmt, ap);
    va_end(ap);
    return 1;
}

int dist_cli_join(const char *prog, int *argc, char ***argv, int64_t global_batch, nb_dist **out) {
    *out = NULL;
    nb_dist *d = nb_dist_init(argc, argv);
    if (!d)
        return dist_cli_fail(prog, "--distributed: %s", nb_last_error());
    int size = nb_dist_size(d);
    if (size > 1)
        message_rank = nb_dist_rank(d);
    int rc = 0;
    if (global_batch < size) {
        dist_cli_fail(prog, "--batch %" PRId64 " (the global batch) is smaller than the %d ranks",
                      global_batch, size);
        rc = 2;
    } else if (!nb_dist_is_root(d) && !freopen("/dev/null", "w", stdout)) {
        rc = dist_cli_fail(prog, "cannot redirect stdout");
    }
    if (rc) {
        nb_dist_finalize(d);
        return rc;
    }
    *out = d;
    return 0;
}
