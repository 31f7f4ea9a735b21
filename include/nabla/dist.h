// nabla dist: data-parallel training over MPI. Every rank (process) holds the whole model and
// trains on its own slice of each global batch; after backward, the gradients are averaged
// across ranks (a bucketed all-reduce of contiguous buffers), so every rank applies the same
// update and the parameters stay identical without ever being sent again.
//
//   nb_dist *d = nb_dist_init(&argc, &argv);          // under mpirun -np N
//   ... build the model, nb_params *ps, nb_optim *opt ...
//   nb_dist_broadcast_params(d, ps);                  // same start everywhere (checked first)
//   nb_dist_reducer *r = nb_dist_reducer_create(d, ps, 0);  // default bucket size
//   for each global batch of B samples (same shuffled order on every rank):
//       nb_dist_slice(B, rank, size, &off, &n);       // this rank's n samples
//       zero_grad; forward/backward of the mean loss over those n samples;
//       nb_dist_allreduce_grads(r, (double)n);       // grads := global-batch mean gradient
//       nb_optim_step(opt);
//   nb_dist_reducer_destroy(r); nb_dist_finalize(d);
//
// MPI is optional at build time (NABLA_WITH_MPI). Without it nb_dist_init gives a one-rank
// world whose collectives are identities, and refuses (clear error) to run under mpirun with
// more than one rank. Collectives fail loudly instead of hanging: a watchdog thread aborts the
// whole job (MPI_Abort) when one lasts longer than the timeout (a rank died, hung or took
// another code path), after printing which collective it was, on which rank.
// Every call is collective (all ranks call it in the same order) unless it says "local".
#ifndef NABLA_DIST_H
#define NABLA_DIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nabla/base.h"
#include "nabla/nn.h"
#include "nabla/optim.h"
#include "nabla/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct nb_dist nb_dist;

// Local: true when this nabla was built with MPI (NABLA_WITH_MPI).
bool nb_dist_built_with_mpi(void);

// Joins the job: initialises MPI (MPI_Init_thread, serialized) unless the application already
// did, and works on a duplicate of MPI_COMM_WORLD. argc/argv may be NULL. Returns NULL with
// nb_last_error on failure, e.g. (no MPI built in) when launched by mpirun with several ranks.
nb_dist *nb_dist_init(int *argc, char ***argv);
// Works on a duplicate of the application's communicator: mpi_comm points to an MPI_Comm (a
// void pointer so this header does not need mpi.h). MPI must be initialised; the application
// keeps MPI_Finalize. NULL with nb_last_error on failure or without MPI built in.
nb_dist *nb_dist_attach(const void *mpi_comm);
// Frees the duplicate communicator and, if nb_dist_init initialised MPI, finalises it.
// NULL is a no-op.
void nb_dist_finalize(nb_dist *d);

// Local: this process's rank in [0, size) and the number of ranks (0 / 1 for NULL).
int nb_dist_rank(const nb_dist *d);
int nb_dist_size(const nb_dist *d);
// Local: rank 0, the one that prints and writes checkpoints.
bool nb_dist_is_root(const nb_dist *d);

// Local: how long a collective may wait for the other ranks before the job is aborted with a
// message (seconds, > 0). Default 300, or the environment's NABLA_DIST_TIMEOUT.
nb_status nb_dist_set_timeout(nb_dist *d, double seconds);
double nb_dist_timeout(const nb_dist *d);

// Local: prints "nabla dist: rank r of n: <message>; stopping all ranks" on stderr and ends the
// whole job with exit code `code` (MPI_Abort; exit without MPI).
void nb_dist_abort(const nb_dist *d, int code, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 3, 4)));

// ---- consistent start ----------------------------------------------------------------------

// Checks that every rank has the same set (names, kinds, dtypes, shapes, order: a fingerprint
// exchanged first), then copies every parameter and buffer from rank 0 to the others.
// A mismatch is NB_ERR_ARG on every rank, the differing rank naming the first entry that
// differs; nothing is copied then.
nb_status nb_dist_broadcast_params(nb_dist *d, nb_params *set);
// The optimizer's whole state (moments, step counts, lr; see nb_optim_state_export) from rank 0
// to the others, e.g. after rank 0 resumed from a checkpoint. Every rank's optimizer must be of
// the same kind and layout over the same parameters (checked first: NB_ERR_ARG everywhere).
nb_status nb_dist_broadcast_optim(nb_dist *d, nb_optim *opt);

// bytes of buf from rank 0 to every rank (e.g. a training position); every rank passes the
// same size.
nb_status nb_dist_broadcast_bytes(nb_dist *d, void *buf, size_t bytes);

// ---- gradient all-reduce -------------------------------------------------------------------

typedef struct nb_dist_reducer nb_dist_reducer;

// Default bucket size: 16 MiB (tens of MB per collective amortise the per-message latency; see
// bench/README.md for the sweep).
#define NB_DIST_DEFAULT_BUCKET_BYTES ((size_t)16 << 20)

// Prepares the all-reduce of the set's parameter gradients (buffers are not reduced): the
// parameters, in reverse registration order (the order backward finishes them), are packed into
// contiguous buckets of about bucket_bytes (0: the default; a parameter larger than a bucket
// gets its own), one dtype per bucket. All buffers are allocated here: the all-reduce itself
// allocates nothing. NULL with nb_last_error on a bad set or no memory. Local.
nb_dist_reducer *nb_dist_reducer_create(nb_dist *d, const nb_params *set, size_t bucket_bytes);
void nb_dist_reducer_destroy(nb_dist_reducer *r);
// Local: number of buckets.
int nb_dist_reducer_buckets(const nb_dist_reducer *r);

// Every parameter's grad := Σ_r weight_r · grad_r / Σ_r weight_r over the ranks. With weight =
// the number of samples this rank's (mean) loss covered, that is the mean gradient over the
// whole global batch, whatever the split (uneven shards, a rank with weight 0 and no samples).
// weight >= 0 and finite; a total weight of 0 is NB_ERR_ARG on every rank (grads unchanged).
// A parameter without a grad counts as zeros; one that has a grad on some ranks but not on
// others is NB_ERR_STATE on every rank (backward must reach the same parameters everywhere: a
// rank without samples backwards a zero loss, or zeroes its grads).
nb_status nb_dist_allreduce_grads(nb_dist_reducer *r, double weight);

// ---- the all-reduce overlapped with backward ------------------------------------------------
// The same reduction started bucket by bucket while backward is still running: with the
// reducer as the graph's grad-ready hook (nabla/graph.h), a bucket is handed to a
// communication thread as soon as backward has finished the grads of all its parameters, and
// is summed over the ranks while backward computes the earlier layers' grads.
//   nb_graph_set_grad_ready(g, nb_dist_grad_ready, r);   // once
//   each step: zero_grad; forward;
//       nb_dist_overlap_begin(r, (double)n);   // this step's weight, before backward
//       nb_backward(g, loss);                  // one backward per begin
//       nb_dist_overlap_end(r);                // the rest; grads := the global batch's mean
// Buckets are summed by the same collectives, in the same bucket order and from the same
// packed values as nb_dist_allreduce_grads, so the grads are bitwise identical to it (a
// parameter backward did not reach is packed at end). Between begin and end this rank makes
// no other nb_dist call. Needs an MPI that allows calls from another thread, one at a time
// (MPI_THREAD_SERIALIZED: nb_dist_init asks for it; an application that initialised MPI itself
// must too): otherwise begin fails (NB_ERR_STATE) and nothing is started. The thread starts at
// the first begin and ends with the reducer.
nb_status nb_dist_overlap_begin(nb_dist_reducer *r, double weight);
// The hook (nb_grad_ready_fn): ctx is the reducer. Leaves that are not its parameters, and
// calls outside begin .. end, are ignored.
void nb_dist_grad_ready(void *reducer, nb_tensor *leaf);
// Packs the buckets still open, waits for every bucket's sum, then does what
// nb_dist_allreduce_grads does after its collectives (same checks, same errors on every rank).
nb_status nb_dist_overlap_end(nb_dist_reducer *r);

// Local: time spent in nb_dist_allreduce_grads (packing, waiting, unpacking) and bytes sent
// into the collectives, since creation or the last reset. Overlapped, only what the calling
// thread spends: packing in the hook and nb_dist_overlap_end (the exposed cost).
typedef struct nb_dist_stats {
    int64_t calls;
    double seconds;
    double bytes; // summed over the calls: every bucket buffer handed to the collective
    // Overlapped: buckets handed to the communication thread by the grad-ready hook, i.e.
    // while backward was still running (the others were packed by nb_dist_overlap_end).
    int64_t early_buckets;
} nb_dist_stats;
void nb_dist_reducer_stats(const nb_dist_reducer *r, nb_dist_stats *out);
void nb_dist_reducer_reset_stats(nb_dist_reducer *r);

// ---- metrics and agreement -----------------------------------------------------------------

// values[0..n) := their sum over the ranks (float64, e.g. loss sums, correct counts, sample
// counts), 1 <= n <= 64. Allocates nothing.
nb_status nb_dist_allreduce_sum(nb_dist *d, double *values, int n);
// Agreement on a local outcome, e.g. "could I read my data": NB_OK when every rank passed
// NB_OK; otherwise the first failing rank's status on every rank, and nb_last_error says
// "<what> failed on rank(s) ..." (a failing rank keeps its own message and appends that).
nb_status nb_dist_agree(nb_dist *d, nb_status local, const char *what);
nb_status nb_dist_barrier(nb_dist *d);

// ---- sharding ------------------------------------------------------------------------------

// Local, pure: rank's contiguous slice [*offset, *offset + *count) of n items split over size
// ranks as evenly as possible (the first n % size ranks get one more). Every item is in exactly
// one slice; a rank may get 0 items when n < size. Applied to each global batch of a shuffled
// epoch order that every rank draws from the same seed, each rank sees a disjoint part of every
// epoch and the union of the ranks' steps is exactly the single-process step.
void nb_dist_slice(int64_t n, int rank, int size, int64_t *offset, int64_t *count);

#ifdef __cplusplus
}
#endif
#endif
