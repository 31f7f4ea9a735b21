// The opt-in phase profile of bench_mlp (issue 17, net B at 2 threads, where perf record doubles
// the step). The target bench_mlp_prof is bench_mlp.c built with BENCH_MLP_PROFILE; in the
// plain bench_mlp every PROF_* macro is empty, so its step is untouched. See mlp_prof.c for
// what is timed and how (rdtsc; the library is not rebuilt or changed).
#ifndef NABLA_BENCH_MLP_PROF_H
#define NABLA_BENCH_MLP_PROF_H

#ifdef BENCH_MLP_PROFILE
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "nabla.h"

// Marks, in the order a step passes them. PM_STEP and PM_LIMIT open a training / GEMM-limit
// step, the others close the phase named after them.
enum { PM_STEP, PM_GATHER, PM_REPLAY, PM_ZERO, PM_BACKWARD, PM_SGD, PM_LIMIT, PM_LIMIT_END };

// Appends a mark (an rdtsc read, ~10 ns). Always on in bench_mlp_prof, hooks on or off.
void prof_mark(int what);
// Hooks on: each node of g runs through a timing wrapper (its nb_op swapped for a copy whose
// forward / backward time the original), and every cblas_sgemm call and OpenMP parallel region
// is logged. Off: g's nodes get their own ops back and the logs stop. Call between steps.
void prof_set(nb_graph *g, bool on);
// Labels the next training steps (0: the step as bench_mlp runs it, 1: the fused-SGD variant,
// 2: the grads zeroed serially, tensor by tensor).
void prof_variant(int v);
// Per-phase medians (and 10th / 90th percentiles) over the steps, in microseconds.
void prof_report(FILE *f, int threads);
// The gradient buffer of node i's output (float32), for the hand-made fused-SGD step.
float *prof_node_grad(nb_graph *g, int64_t i);

#define PROF_MARK(k) prof_mark(k)
#else
#define PROF_MARK(k) ((void)0)
#endif

#endif
