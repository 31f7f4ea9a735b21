// bench_mlp_prof's phase profile: where one training step's time goes, op by op and GEMM by
// GEMM, at any thread count, without perf (whose sampling doubles net B's 2-thread step).
// Nothing in the library is rebuilt or changed; three things are timed from the bench binary:
// - Nodes: prof_set swaps each tape node's nb_op for a bench-owned copy whose forward and
//   backward read the clock around the original's. The original is put back in nd->op during
//   the call (some ops test their own identity, e.g. the sparse cross-entropy), so the op
//   computes exactly what it computes unwrapped.
// - GEMMs: cblas_sgemm is defined here and calls OpenBLAS's through dlsym(RTLD_NEXT). The
//   library is static, so its calls bind to this definition at link time.
// - OpenMP regions: GOMP_parallel (what libgomp compiles `omp parallel` to, for the library's
//   kernels and for the OpenMP OpenBLAS, which calls it through its PLT) is defined here too and
//   runs each thread's share through a trampoline that reads the clock when the share starts
//   and ends: the region's cost splits into waking the other thread, each thread's work and
//   the join.
// The clock is rdtsc (~10 ns a read on this VM against ~40 ns for clock_gettime through the
// vDSO; the TSC is invariant and the two vCPUs agreed within ~60 cycles in a ping-pong test),
// converted with a frequency calibrated against CLOCK_MONOTONIC over the run. Events go into
// a log allocated on the first prof_set and are only taken apart in prof_report.
#define _GNU_SOURCE
#include "mlp_prof.h"

#include <cblas.h>
#include <dlfcn.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <x86intrin.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "graph/graph_priv.h"

enum { EV_MARK, EV_FWD0, EV_FWD1, EV_BWD0, EV_BWD1, EV_GEMM0, EV_GEMM1, EV_PAR };

typedef struct {
    uint64_t t;
    uint8_t kind;
    uint8_t sub;  // marks: the mark | the variant << 4 | hooks on << 7
    uint32_t arg; // node index, GEMM or region record
} event;

typedef struct {
    int m, n, k;
    char ta, tb;
    float beta;
} gemm_rec;

#define MAX_THREADS 8
typedef struct {
    void (*fn)(void *);
    void *data;
    uint64_t call, ret;
    uint64_t start[MAX_THREADS], end[MAX_THREADS];
    int nthreads;
} region;

#define MAX_EVENTS (1 << 21)
#define MAX_RECS (1 << 19)
static event *ev_log;
static int64_t n_ev;
static gemm_rec *gemms;
static int64_t n_gemm;
static region *regions;
static int64_t n_region;
static bool logging, overflow;
static int variant;
static uint64_t tsc0;
static double wall0;

static inline uint64_t tsc(void) {
    return __rdtsc();
}

static double wall(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static inline void put(uint8_t kind, uint8_t sub, uint32_t arg) {
    if (n_ev < MAX_EVENTS)
        ev_log[n_ev++] = (event){tsc(), kind, sub, arg};
    else
        overflow = true;
}

void prof_mark(int what) {
    if (ev_log)
        put(EV_MARK, (uint8_t)(what | variant << 4 | logging << 7), 0);
}

void prof_variant(int v) {
    variant = v;
}

// ---- nodes ------------------------------------------------------------------------------------

typedef struct {
    nb_op op; // the copy a wrapped node points to; first, so nd->op converts back
    const nb_op *orig;
} wrapped_op;

#define MAX_WRAPS 32
static wrapped_op wraps[MAX_WRAPS];
static int n_wraps;

static void wrapped_forward(nb_node *nd) {
    const wrapped_op *w = (const wrapped_op *)(const void *)nd->op;
    uint32_t i = (uint32_t)nd->out->node;
    put(EV_FWD0, 0, i);
    nd->op = w->orig;
    w->orig->forward(nd);
    nd->op = &w->op;
    put(EV_FWD1, 0, i);
}

static void wrapped_backward(nb_node *nd) {
    const wrapped_op *w = (const wrapped_op *)(const void *)nd->op;
    uint32_t i = (uint32_t)nd->out->node;
    put(EV_BWD0, 0, i);
    nd->op = w->orig;
    w->orig->backward(nd);
    nd->op = &w->op;
    put(EV_BWD1, 0, i);
}

static const nb_op *wrap_of(const nb_op *op) {
    for (int i = 0; i < n_wraps; i++)
        if (wraps[i].orig == op)
            return &wraps[i].op;
    if (n_wraps == MAX_WRAPS)
        return op;
    wraps[n_wraps].op = *op;
    wraps[n_wraps].op.forward = wrapped_forward;
    wraps[n_wraps].op.backward = wrapped_backward;
    wraps[n_wraps].orig = op;
    return &wraps[n_wraps++].op;
}

static const nb_op *unwrap(const nb_op *op) {
    for (int i = 0; i < n_wraps; i++)
        if (&wraps[i].op == op)
            return wraps[i].orig;
    return op;
}

#define MAX_NODES 256
static const char *node_name[MAX_NODES];

void prof_set(nb_graph *g, bool on) {
    if (!ev_log) {
        ev_log = calloc(MAX_EVENTS, sizeof *ev_log);
        gemms = calloc(MAX_RECS, sizeof *gemms);
        regions = calloc(MAX_RECS, sizeof *regions);
        if (!ev_log || !gemms || !regions) {
            fprintf(stderr, "bench_mlp_prof: out of memory for the event log\n");
            exit(1);
        }
        tsc0 = tsc();
        wall0 = wall();
    }
    for (int64_t i = 0; i < g->n_nodes && i < MAX_NODES; i++) {
        nb_node *nd = &g->nodes[i];
        nd->op = on ? wrap_of(unwrap(nd->op)) : unwrap(nd->op);
        node_name[i] = unwrap(nd->op)->name;
    }
    logging = on;
}

float *prof_node_grad(nb_graph *g, int64_t i) {
    return (float *)g->nodes[i].out->grad;
}

// ---- GEMMs and OpenMP regions -----------------------------------------------------------------

// The log has one writer, the thread that runs the step: calls from inside an OpenMP team (a
// batched matmul's per-thread GEMMs, a nested region) are passed through unlogged.
static bool in_team(void) {
#ifdef _OPENMP
    return omp_get_level() > 0;
#else
    return false;
#endif
}

typedef void (*sgemm_fn)(const enum CBLAS_ORDER, const enum CBLAS_TRANSPOSE,
                         const enum CBLAS_TRANSPOSE, const blasint, const blasint, const blasint,
                         const float, const float *, const blasint, const float *, const blasint,
                         const float, float *, const blasint);
static sgemm_fn real_sgemm;

static void *next_symbol(const char *name) {
    void *p = dlsym(RTLD_NEXT, name);
    if (!p) {
        fprintf(stderr, "bench_mlp_prof: %s not found after this binary\n", name);
        exit(1);
    }
    return p;
}

void cblas_sgemm(const enum CBLAS_ORDER order, const enum CBLAS_TRANSPOSE ta,
                 const enum CBLAS_TRANSPOSE tb, const blasint m, const blasint n, const blasint k,
                 const float alpha, const float *a, const blasint lda, const float *b,
                 const blasint ldb, const float beta, float *c, const blasint ldc) {
    if (!real_sgemm) {
        void *p = next_symbol("cblas_sgemm");
        memcpy(&real_sgemm, &p, sizeof p); // ISO C has no object-to-function pointer cast
    }
    bool log = logging && n_gemm < MAX_RECS && !in_team();
    if (log) {
        gemms[n_gemm] =
            (gemm_rec){m, n, k, ta == CblasTrans ? 'T' : 'N', tb == CblasTrans ? 'T' : 'N', beta};
        put(EV_GEMM0, 0, (uint32_t)n_gemm);
    }
    real_sgemm(order, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    if (log)
        put(EV_GEMM1, 0, (uint32_t)n_gemm++);
}

typedef void (*gomp_parallel_fn)(void (*)(void *), void *, unsigned, unsigned);
static gomp_parallel_fn real_parallel;
void GOMP_parallel(void (*fn)(void *), void *data, unsigned nthreads, unsigned flags);

static void trampoline(void *p) {
    region *r = p;
#ifdef _OPENMP
    int t = omp_get_thread_num();
#else
    int t = 0;
#endif
    uint64_t t0 = tsc();
    r->fn(r->data);
    if (t < MAX_THREADS) {
        r->start[t] = t0;
        r->end[t] = tsc();
    }
}

void GOMP_parallel(void (*fn)(void *), void *data, unsigned nthreads, unsigned flags) {
    if (!real_parallel) {
        void *p = next_symbol("GOMP_parallel");
        memcpy(&real_parallel, &p, sizeof p);
    }
    if (!logging || n_region >= MAX_RECS || in_team()) {
        real_parallel(fn, data, nthreads, flags);
        return;
    }
    region *r = &regions[n_region];
    *r = (region){.fn = fn, .data = data};
    r->call = tsc();
    real_parallel(trampoline, r, nthreads, flags);
    r->ret = tsc();
#ifdef _OPENMP
    r->nthreads = omp_get_max_threads();
#endif
    put(EV_PAR, 0, (uint32_t)n_region++);
}

// ---- the report -------------------------------------------------------------------------------

#define MAX_SERIES 160
#define NAME_LEN 200 // a context (CTX_LEN) and a suffix
#define CTX_LEN 120
typedef struct {
    char name[NAME_LEN];
    double *v;      // one value per step it occurred in (summed within a step)
    int64_t n, cap; // values
    int64_t occ;    // occurrences in all
    double cur;     // this step's sum
    bool in_step;
} series;
static series ser[MAX_SERIES];
static int n_ser;
static double us_per_tick;

static series *get(const char *name) {
    for (int i = 0; i < n_ser; i++)
        if (!strcmp(ser[i].name, name))
            return &ser[i];
    if (n_ser == MAX_SERIES)
        return NULL;
    series *s = &ser[n_ser++];
    snprintf(s->name, NAME_LEN, "%s", name);
    return s;
}

static void add(const char *name, uint64_t ticks) {
    series *s = get(name);
    if (!s)
        return;
    s->cur += (double)(int64_t)ticks * us_per_tick;
    s->in_step = true;
    s->occ++;
}

static void end_step(void) {
    for (int i = 0; i < n_ser; i++) {
        series *s = &ser[i];
        if (!s->in_step)
            continue;
        if (s->n == s->cap) {
            int64_t cap = s->cap ? 2 * s->cap : 1024;
            double *v = realloc(s->v, (size_t)cap * sizeof *v);
            if (!v)
                exit(1);
            s->v = v;
            s->cap = cap;
        }
        s->v[s->n++] = s->cur;
        s->cur = 0;
        s->in_step = false;
    }
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double pct(const double *v, int64_t n, double p) {
    double x = p * (double)(n - 1);
    int64_t i = (int64_t)x;
    return i + 1 < n ? v[i] + (x - (double)i) * (v[i + 1] - v[i]) : v[n - 1];
}

static const char *const phase_name[] = {"gather", "forward", "zero_grad", "backward", "sgd"};

// Region r's parts, under the name of whatever was running when it started.
static void add_region(const char *ctx, const region *r) {
    char nm[NAME_LEN];
    snprintf(nm, sizeof nm, "%s | omp region", ctx);
    add(nm, r->ret - r->call);
    if (r->nthreads < 2 || !r->start[1])
        return;
    uint64_t last = r->end[0] > r->end[1] ? r->end[0] : r->end[1];
    snprintf(nm, sizeof nm, "%s |   wake (thread 1 start - call)", ctx);
    add(nm, r->start[1] - r->call);
    snprintf(nm, sizeof nm, "%s |   thread 0 work", ctx);
    add(nm, r->end[0] - r->start[0]);
    snprintf(nm, sizeof nm, "%s |   thread 1 work", ctx);
    add(nm, r->end[1] - r->start[1]);
    snprintf(nm, sizeof nm, "%s |   join (return - last end)", ctx);
    add(nm, r->ret - last);
}

void prof_report(FILE *f, int threads) {
    if (!ev_log)
        return;
    us_per_tick = 1e6 * (wall() - wall0) / (double)(tsc() - tsc0);
    // Walk the log: a step opens at PM_STEP / PM_LIMIT; nodes, GEMMs and regions are named by
    // the innermost of (GEMM, node, phase) open when they began.
    uint64_t t_step = 0, t_phase = 0, t_node = 0, t_gemm = 0, node_sum = 0, gemm_in_node = 0;
    int phase = -1, node = -1, gemm = -1;
    bool limit = false, hooks = false, in_step = false;
    const char *pre = "train";
    char ctx[CTX_LEN], nm[NAME_LEN];
    for (int64_t e = 0; e < n_ev; e++) {
        const event *x = &ev_log[e];
        if (x->kind == EV_MARK) {
            int mk = x->sub & 15;
            if (mk == PM_STEP || mk == PM_LIMIT) {
                in_step = true;
                limit = mk == PM_LIMIT;
                hooks = x->sub >> 7;
                int v = (x->sub >> 4) & 7;
                pre = limit    ? (hooks ? "limit" : "limit[off]")
                      : v == 1 ? (hooks ? "fused" : "fused[off]")
                      : v == 2 ? (hooks ? "serialzero" : "serialzero[off]")
                               : (hooks ? "train" : "train[off]");
                t_step = t_phase = x->t;
                phase = limit ? -1 : 0;
                node = gemm = -1;
                node_sum = 0;
                continue;
            }
            if (!in_step)
                continue;
            if (mk == PM_LIMIT_END) {
                snprintf(nm, sizeof nm, "%s: step total", pre);
                add(nm, x->t - t_step);
                end_step();
                in_step = false;
                continue;
            }
            int ph = mk - PM_GATHER; // the phase this mark closes
            snprintf(nm, sizeof nm, "%s: %s", pre, phase_name[ph]);
            add(nm, x->t - t_phase);
            if (hooks && (ph == 1 || ph == 3)) {
                snprintf(nm, sizeof nm, "%s: %s |   outside nodes", pre, phase_name[ph]);
                add(nm, x->t - t_phase - node_sum);
            }
            node_sum = 0;
            t_phase = x->t;
            phase = ph + 1;
            if (mk == PM_SGD) {
                snprintf(nm, sizeof nm, "%s: step total", pre);
                add(nm, x->t - t_step);
                end_step();
                in_step = false;
            }
            continue;
        }
        if (!in_step)
            continue;
        const char *ph = limit ? "gemms" : phase >= 0 && phase < 5 ? phase_name[phase] : "?";
        switch (x->kind) {
        case EV_FWD0:
        case EV_BWD0:
            node = (int)x->arg;
            t_node = x->t;
            gemm_in_node = 0;
            break;
        case EV_FWD1:
        case EV_BWD1:
            snprintf(nm, sizeof nm, "%s: %s | node %d %s", pre, ph, node,
                     node >= 0 && node < MAX_NODES && node_name[node] ? node_name[node] : "?");
            add(nm, x->t - t_node);
            if (gemm_in_node) {
                snprintf(nm + strlen(nm), sizeof nm - strlen(nm), " | not GEMM");
                add(nm, x->t - t_node - gemm_in_node);
            }
            node_sum += x->t - t_node;
            node = -1;
            break;
        case EV_GEMM0:
            gemm = (int)x->arg;
            t_gemm = x->t;
            break;
        case EV_GEMM1: {
            const gemm_rec *gr = &gemms[x->arg];
            if (node >= 0)
                snprintf(ctx, sizeof ctx, "%s: %s | node %d %s", pre, ph, node, node_name[node]);
            else
                snprintf(ctx, sizeof ctx, "%s: %s", pre, ph);
            snprintf(nm, sizeof nm, "%s | gemm %dx%dx%d %c%c beta %g", ctx, gr->m, gr->n, gr->k,
                     gr->ta, gr->tb, (double)gr->beta);
            add(nm, x->t - t_gemm);
            gemm_in_node += x->t - t_gemm;
            gemm = -1;
            break;
        }
        case EV_PAR: {
            const region *r = &regions[x->arg];
            if (gemm >= 0) {
                const gemm_rec *gr = &gemms[gemm];
                snprintf(ctx, sizeof ctx, "%s: %s | gemm %dx%dx%d", pre, ph, gr->m, gr->n, gr->k);
            } else if (node >= 0) {
                snprintf(ctx, sizeof ctx, "%s: %s | node %d %s", pre, ph, node, node_name[node]);
            } else {
                snprintf(ctx, sizeof ctx, "%s: %s", pre, ph);
            }
            add_region(ctx, r);
            break;
        }
        default:
            break;
        }
    }
    fprintf(f, "# phase profile, %d thread(s), us (tsc %.4f GHz)%s\n", threads, 1e-3 / us_per_tick,
            overflow ? " [event log full: later steps not profiled]" : "");
    fprintf(f, "# %-70s %8s %8s %8s %7s %7s\n", "phase", "median", "p10", "p90", "steps",
            "per-step");
    for (int i = 0; i < n_ser; i++) {
        series *s = &ser[i];
        if (!s->n)
            continue;
        qsort(s->v, (size_t)s->n, sizeof *s->v, cmp_d);
        fprintf(f, "%-72s %8.2f %8.2f %8.2f %7" PRId64 " %7.2f\n", s->name, pct(s->v, s->n, 0.5),
                pct(s->v, s->n, 0.1), pct(s->v, s->n, 0.9), s->n, (double)s->occ / (double)s->n);
    }
}
