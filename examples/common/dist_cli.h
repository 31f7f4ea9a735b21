// What every example's --distributed start-up does (examples/mnist.c, cnn.c, charlm.c): join
// the MPI job, refuse a global batch smaller than the rank count, send the other ranks' stdout
// to /dev/null (rank 0 alone prints), and name this process's rank in its error messages.
// What else rank 0 alone does (write checkpoints, read --resume, sample) stays with each
// example: it knows its own options.
#ifndef EXAMPLES_COMMON_DIST_CLI_H
#define EXAMPLES_COMMON_DIST_CLI_H

#include <stdarg.h>
#include <stdint.h>

#include "nabla.h"

// Prints "<prog>: <message>\n" on stderr, or "<prog>: rank R: <message>\n" once dist_cli_join
// has joined a job of several ranks. Returns 1 (the examples' runtime-error exit).
int dist_cli_fail(const char *prog, const char *fmt, ...);
int dist_cli_vfail(const char *prog, const char *fmt, va_list ap);

// --distributed: *out = the job (NULL on failure). Returns 0, or (message printed, the job
// finalised) 1 when MPI cannot start or stdout cannot be redirected, 2 when global_batch is
// smaller than the number of ranks (a usage error: some rank would get no rows).
int dist_cli_join(const char *prog, int *argc, char ***argv, int64_t global_batch, nb_dist **out);

#endif
