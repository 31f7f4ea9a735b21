"""The op families of issues 10-13 and 17 in the suite (bench/suite.py imports this): batched
matmul and permute, conv2d, layer norm, attention, the charlm transformer step, the LSTM layer
and the Adam step. Each family runs nabla's bench program and its PyTorch script alternately,
--reps times, at 1 and 2 threads, and prints one side-by-side table: nabla, PyTorch, the
family's limit (GEMMs through CBLAS or a triad timed in the same process), and a verdict
against the target of the family's issue. libtorch (bench/libtorch_ops.cpp, the same
workloads as the Python scripts in PyTorch's C++ frontend) runs right after PyTorch when it was
built; where the target is a ratio to PyTorch, it stands against libtorch too (the charlm
step's 1.5x with its own ratio and verdict column).

Each measure_* returns a dict that its table_* turns into markdown lines; `ctx` carries the
bench dir, the options, the raw log and the helpers of suite.py (run, torch_env, fmt, ...).
"""
import os
import resource
import statistics
import time

THREADS = (1, 2)
# Targets, by issue. None: the issue gives no number; the table shows the figures and no verdict.
BMM_LIMIT = 0.80  # issue 10: >= 80 % of the same GEMMs through a CBLAS loop, 1 and 2 threads
BMM_TORCH = 1.0  # issue 10: >= 1.0x torch.matmul
PERMUTE_MEMCPY = 0.50  # issue 10: permute of 16 M floats >= 50 % of memcpy
ADAM_TRIAD = 0.70  # issue 13: the Adam step >= 70 % of the triad's bandwidth
CHARLM_TORCH = 1.5  # issue 12: the charlm step >= 1.5x PyTorch's tokens/s, 1 and 2 threads
TORCH_PARITY = 1.0  # families whose issue names no figure: shown against >= 1.0x PyTorch


def med(v):
    return statistics.median(v) if v else float("nan")


def _collect(ctx, cmd, env=None):
    rows = ctx.run(cmd, env)
    for r in rows:
        ctx.log_row(r)
    return rows


def _exe(ctx, name):
    return os.path.join(ctx.bench, name)


def _py(ctx, name):
    return [ctx.PY, os.path.join(ctx.HERE, name)]


# ---- batched matmul + permute (issue 10) ------------------------------------------------------

def measure_matmul(ctx):
    """bmm[(shape, dir, threads)] = {"nabla": [...], "cblas": [...], "torch": [...]} GFLOP/s;
    perm[(perm, threads)] = [(GB/s, memcpy GB/s), ...]."""
    bmm, perm = {}, {}
    for rep in range(ctx.a.reps):
        for r in _collect(ctx, [_exe(ctx, "bench_matmul"), "--reps", "1"], ctx.passive_env()):
            if r["bench"] == "bmm":
                d = bmm.setdefault((r["shape"], r["dir"], r["threads"]), {})
                d.setdefault("nabla", []).append(r["gflops"])
                d.setdefault("cblas", []).append(r["cblas_loop_gflops"])
            else:
                perm.setdefault((r["perm"], r["threads"]), []).append(
                    (r["gbps"], r["memcpy_gbps"]))
        for r in _collect(ctx, _py(ctx, "torch_matmul.py") + ["--reps", "1"], ctx.passive_env()):
            bmm.setdefault((r["shape"], r["dir"], r["threads"]), {}).setdefault(
                "torch", []).append(r["gflops"])
        lt = _libtorch(ctx, ["matmul", "--reps", "1"])
        for r in _collect(ctx, lt, ctx.passive_env()) if lt else []:
            bmm.setdefault((r["shape"], r["dir"], r["threads"]), {}).setdefault(
                "libtorch", []).append(r["gflops"])
        ctx.progress("matmul rep %d done" % (rep + 1))
    return {"bmm": bmm, "perm": perm}


def table_matmul(res, ctx, out):
    fmt, verdict = ctx.fmt, ctx.verdict
    out.append("### Batched matmul, attention shapes, 32 matrices (issue 10; GFLOP/s)\n")
    out.append("| shape | pass | thr | nabla | CBLAS loop (limit) | PyTorch | libtorch | nabla ÷ "
               "limit (pairwise) | nabla ÷ PyTorch | nabla ÷ libtorch | target | verdict |")
    out.append("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for (shape, d, t), v in sorted(res["bmm"].items()):
        q = [x / y for x, y in zip(v["nabla"], v["cblas"])]
        qt = [x / y for x, y in zip(v["nabla"], v.get("torch", []))]
        ql = [x / y for x, y in zip(v["nabla"], v.get("libtorch", []))]
        ok = med(q) >= BMM_LIMIT and all(med(r) >= BMM_TORCH for r in (qt, ql) if r)
        out.append("| %s | %s | %d | %s | %s | %s | %s | %s | %s | %s | ≥ %.2f limit, ≥ %.1f× "
                   "PyTorch and libtorch | %s |" % (
                       shape, d, t, fmt(v["nabla"], 1), fmt(v["cblas"], 1),
                       fmt(v.get("torch"), 1), fmt(v.get("libtorch"), 1), fmt(q, 2), fmt(qt, 2),
                       fmt(ql, 2), BMM_LIMIT, BMM_TORCH, verdict(ok)))
    out.append("")
    out.append("### Permute of a (16, 256, 16, 256) float32 tensor (issue 10; GB/s, read + "
               "write)\n")
    out.append("| permutation | thr | nabla GB/s | memcpy GB/s (limit) | nabla ÷ memcpy "
               "(pairwise) | target | verdict |")
    out.append("|---|---|---|---|---|---|---|")
    for (p, t), v in sorted(res["perm"].items()):
        q = [x / y for x, y in v]
        out.append("| (%s) | %d | %s | %s | %s | ≥ %.2f | %s |" % (
            ", ".join(p), t, fmt([x for x, _ in v], 1), fmt([y for _, y in v], 1), fmt(q, 2),
            PERMUTE_MEMCPY, verdict(med(q) >= PERMUTE_MEMCPY)))
    out.append("")


# ---- conv2d alone (issue 11) ------------------------------------------------------------------

def _libtorch(ctx, args):
    """libtorch_ops with args, or None when it was not built (no libtorch-dev)."""
    return ctx.libtorch_cmd(ctx.bench, "ops", args)


def _per_thread(ctx, name, nabla_cmd, torch_cmd, key, lt_args=None, reps=None, torch_extra=None):
    """Runs nabla_cmd + [--threads T], torch_cmd + [--threads T] and libtorch_ops lt_args +
    [--threads T] alternately per repetition and thread count, in the order nabla, PyTorch,
    libtorch on even repetitions and the reverse on odd ones (so neither a drift within a
    repetition nor what the previous run left in the caches favours one side); reps defaults
    to --reps; torch_extra (a dict) is added to PyTorch's and libtorch's environment.
    res[(key(row), T)] = {"nabla": [rows], "torch": [rows], "libtorch": [rows]}; each row also
    gets "rep", "others_cpu_pct" and "steal_pct" (others_share)."""
    res = {}
    extra = torch_extra or {}
    for rep in range(reps or ctx.a.reps):
        for t in THREADS:
            th = ["--threads", str(t)]
            runs = [("nabla", nabla_cmd + th, ctx.passive_env()),
                    ("torch", torch_cmd + th, dict(ctx.torch_env(t, passive=True), **extra))]
            lt = _libtorch(ctx, lt_args + th) if lt_args else None
            if lt:
                runs.append(("libtorch", lt, dict(ctx.torch_env(t, passive=True), **extra)))
            for impl, cmd, e in runs if rep % 2 == 0 else runs[::-1]:
                s0 = machine_sample()
                rows = ctx.run(cmd, e)
                others, steal = others_share(s0, machine_sample())
                for r in rows:
                    r.update(rep=rep, others_cpu_pct=others, steal_pct=steal)
                    ctx.log_row(r)
                    res.setdefault((key(r), t), {}).setdefault(impl, []).append(r)
        ctx.progress("%s rep %d done" % (name, rep + 1))
    return res


def machine_sample():
    """(wall s, busy CPU s of the whole machine, steal s, CPU s of this process's finished
    children) now, from /proc/stat (USER_HZ ticks) and getrusage."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    hz = os.sysconf("SC_CLK_TCK")
    ch = resource.getrusage(resource.RUSAGE_CHILDREN)
    busy = v[0] + v[1] + v[2] + v[5] + v[6]  # user nice system irq softirq
    return time.monotonic(), busy / hz, v[7] / hz, ch.ru_utime + ch.ru_stime


def others_share(a, b):
    """What other processes took during a run (between samples a and b): their CPU time (the
    machine's busy time less the run's own) and the hypervisor's steal, in % of the machine's
    capacity over the run (2 cores x wall). Others show up even in CPU time: shared caches,
    memory bandwidth, preemptions."""
    cap = (b[0] - a[0]) * (os.cpu_count() or 1)
    others = max(0.0, (b[1] - a[1]) - (b[3] - a[3]))
    return round(100 * others / cap, 1), round(100 * (b[2] - a[2]) / cap, 1)


def _lt_cell(ctx, d, field, nabla_field=None, digits=2):
    """'libtorch value (libtorch ÷ nabla, pairwise median)' and those ratios (times: > 1 means
    nabla is faster), or ('—', []) when libtorch was not run."""
    lt = d.get("libtorch", [])
    if not lt:
        return "—", []
    q = [y[field] / x[nabla_field or field] for x, y in zip(d["nabla"], lt)]
    return "%s (%s×)" % (ctx.fmt([y[field] for y in lt], digits), "%.2f" % med(q)), q


def _ok(q, *more, goal=TORCH_PARITY):
    """Every non-empty ratio list's median reaches goal."""
    return all(med(r) >= goal for r in (q,) + more if r)


def measure_conv(ctx):
    return _per_thread(ctx, "conv", [_exe(ctx, "bench_conv"), "--reps", "1"],
                       _py(ctx, "torch_conv.py") + ["--reps", "1"], lambda r: r["shape"],
                       ["conv", "--reps", "1"])


def table_conv(res, ctx, out):
    fmt, verdict = ctx.fmt, ctx.verdict
    out.append("### conv2d forward + backward alone, batch 64, Fashion-MNIST CNN shapes "
               "(issue 11; ms per call)\n")
    out.append("| shape | thr | nabla ms | GEMM limit ms | limit ÷ nabla | PyTorch ms | PyTorch ÷ "
               "nabla (pairwise) | libtorch ms (÷ nabla) | allocs/step | target | verdict |")
    out.append("|---|---|---|---|---|---|---|---|---|---|---|")
    for (shape, t), d in sorted(res.items()):
        nb, tor = d["nabla"], d.get("torch", [])
        q = [y["torch_ms"] / x["nabla_ms"] for x, y in zip(nb, tor)]
        lcell, ql = _lt_cell(ctx, d, "torch_ms", "nabla_ms")
        out.append("| %s | %d | %s | %s | %s | %s | %s | %s | %s | ≥ %.1f× PyTorch and libtorch "
                   "(none in issue 11) | %s |" % (
                       shape, t, fmt([x["nabla_ms"] for x in nb], 2),
                       fmt([x["gemm_limit_ms"] for x in nb], 2),
                       fmt([x["limit_over_nabla"] for x in nb], 2),
                       fmt([x["torch_ms"] for x in tor], 2), fmt(q, 2), lcell,
                       fmt([x["allocs_per_step"] for x in nb], 1), TORCH_PARITY,
                       verdict(_ok(q, ql))))
    out.append("")


# ---- layer norm (issues 11, 17) ---------------------------------------------------------------

def measure_layernorm(ctx):
    return _per_thread(ctx, "layernorm", [_exe(ctx, "bench_layernorm"), "--reps", "1"],
                       _py(ctx, "torch_layernorm.py") + ["--reps", "1"],
                       lambda r: (r["rows"], r["cols"]), ["layernorm", "--reps", "1"])


def table_layernorm(res, ctx, out):
    fmt, verdict = ctx.fmt, ctx.verdict
    out.append("### Layer norm forward + backward over the last axis, affine, float32 "
               "(GB/s counting 20 n bytes; limit: a triad timed just before)\n")
    out.append("| shape | thr | nabla GB/s | triad GB/s (limit) | nabla ÷ triad | PyTorch GB/s "
               "| nabla ÷ PyTorch (pairwise) | libtorch ms (÷ nabla) | allocs (steady) | target "
               "| verdict |")
    out.append("|---|---|---|---|---|---|---|---|---|---|---|")
    for ((rows, cols), t), d in sorted(res.items()):
        nb, tor = d["nabla"], d.get("torch", [])
        q = [y["torch_ms"] / x["nabla_ms"] for x, y in zip(nb, tor)]
        lcell, ql = _lt_cell(ctx, d, "torch_ms", "nabla_ms", 3)
        out.append("| (%d, %d) | %d | %s | %s | %s | %s | %s | %s | %d | ≥ %.1f× PyTorch and "
                   "libtorch (none in issue 11) | %s |" % (
                       rows, cols, t, fmt([x["nabla_gbs"] for x in nb], 1),
                       fmt([x["triad_gbs"] for x in nb], 1),
                       fmt([x["ratio_to_triad"] for x in nb], 2),
                       fmt([x["torch_gbs"] for x in tor], 1), fmt(q, 2), lcell,
                       max(x["steady_allocs"] for x in nb), TORCH_PARITY,
                       verdict(_ok(q, ql))))
    out.append("")


# ---- attention and the charlm step (issue 12) -------------------------------------------------

def measure_attention(ctx):
    return _per_thread(ctx, "attention", [_exe(ctx, "bench_attention"), "--reps", "5"],
                       _py(ctx, "torch_attention.py") + ["--reps", "5"], lambda r: r["T"],
                       ["attention", "--reps", "5"])


def table_attention(res, ctx, out):
    fmt, verdict = ctx.fmt, ctx.verdict
    out.append("### Fused causal attention forward + backward, (B, H, D) = (32, 4, 32) "
               "(issue 12; process CPU ms, all threads)\n")
    out.append("| T | thr | nabla CPU ms | GEMM limit CPU ms | limit ÷ nabla | PyTorch (math "
               "path) CPU ms | PyTorch ÷ nabla (pairwise) | libtorch CPU ms (÷ nabla) | allocs/step | target "
               "| verdict |")
    out.append("|---|---|---|---|---|---|---|---|---|---|---|")
    for (T, t), d in sorted(res.items()):
        nb, tor = d["nabla"], d.get("torch", [])
        q = [y["fwd_bwd_cpu_ms"] / x["fwd_bwd_cpu_ms"] for x, y in zip(nb, tor)]
        allocs = max(x["steady_allocs"] for x in nb)
        lcell, _ = _lt_cell(ctx, d, "fwd_bwd_cpu_ms", digits=1)
        out.append("| %d | %d | %s | %s | %s | %s | %s | %s | %d | 0 allocs; limit share "
                   "reported | %s |" % (
                       T, t, fmt([x["fwd_bwd_cpu_ms"] for x in nb], 1),
                       fmt([x["gemm_limit_cpu_ms"] for x in nb], 1),
                       fmt([1 / x["ratio_to_limit"] for x in nb], 2),
                       fmt([x["fwd_bwd_cpu_ms"] for x in tor], 1), fmt(q, 2), lcell, allocs,
                       verdict(allocs == 0)))
    out.append("")


# PyTorch and libtorch allocate ~20 MB of activations in each charlm step. With glibc's default
# (dynamic) mmap and trim thresholds, freeing them gives pages back to the kernel and the next
# step faults them in again: at 1 thread libtorch took 4800 page faults and 9-13 ms of kernel
# time per ~60 ms step, PyTorch 400-1300 faults and 0.3-3 ms (bench/README.md, "Measuring the
# charlm step"). Fixed thresholds (both are needed: either one alone freezes the other at its
# default, and a 128 KiB mmap threshold costs 32 000 faults per step) keep the pages: libtorch
# ~30 faults and ~11 ms faster, PyTorch ~0-150 faults. So PyTorch and libtorch run with them,
# as PyTorch's CPU tuning advice (a caching malloc) would have it: the stricter comparison for
# nabla. nabla's step makes no allocation (0 faults either way; the same tunables measured no
# speed change for it, only +20 MB of peak RSS from setup buffers kept), so it keeps glibc's
# defaults. `--env GLIBC_TUNABLES=` (empty) runs all three with glibc's defaults instead.
CHARLM_MALLOC = "glibc.malloc.trim_threshold=1073741824:glibc.malloc.mmap_threshold=33554432"
CHARLM_STEPS = "20"  # timed steps per run (after 5 untimed ones): ~1 s of steps per run
CHARLM_REPS = 5  # at least this many alternations: the pairwise ratio's range needs them


def measure_charlm(ctx):
    extra = {} if "GLIBC_TUNABLES" in ctx.base_env() else {"GLIBC_TUNABLES": CHARLM_MALLOC}
    steps = ["--steps", CHARLM_STEPS]
    return _per_thread(ctx, "charlm", [_exe(ctx, "bench_charlm")] + steps,
                       _py(ctx, "torch_charlm.py") + steps, lambda r: "step",
                       ["charlm"] + steps, reps=max(ctx.a.reps, CHARLM_REPS), torch_extra=extra)


def table_charlm(res, ctx, out):
    """Issue 12's >= 1.5x tokens/s against PyTorch, and (issue 17) against libtorch with its own
    ratio and verdict, as medians [min-max] of per-repetition ratios (pairs measured next to
    each other). At 1 thread the ratio is of tokens per CPU-second: each run has one busy
    thread (os_threads 1, cores_used ~1) and, idle, CPU time equals wall time, but on a busy
    machine wall time also counts the time spent waiting for a core. At 2 threads: wall time."""
    fmt, verdict = ctx.fmt, ctx.verdict
    out.append("### examples/charlm transformer training step, batch 32 × 64 tokens "
               "(issue 12; 1 thread: tokens per CPU-second; 2 threads: tokens per wall second)\n")
    out.append("| thr | nabla tok/s | PyTorch tok/s | nabla ÷ PyTorch (pairwise) | target | "
               "verdict | libtorch tok/s | nabla ÷ libtorch (pairwise) | target | verdict | "
               "fastest steps: nabla ÷ PyTorch / ÷ libtorch | "
               "wall tok/s nabla / PyTorch / libtorch | OS threads | page faults/step "
               "nabla / PyTorch / libtorch | peak RSS nabla / PyTorch / libtorch MiB "
               "| allocs/step | others' CPU % |")
    out.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for (_, t), d in sorted(res.items()):
        nb, tor, lt = d["nabla"], d.get("torch", []), d.get("libtorch", [])
        f = "tok_per_cpu_s" if t == 1 else "tok_per_s"
        q = [x[f] / y[f] for x, y in zip(nb, tor)]
        ql = [x[f] / y[f] for x, y in zip(nb, lt)]
        # The same ratios from each run's fastest step (ms: PyTorch's over nabla's).
        b = "best_step_cpu_ms" if t == 1 else "best_step_wall_ms"
        bq = [y[b] / x[b] for x, y in zip(nb, tor) if b in x and b in y]
        bql = [y[b] / x[b] for x, y in zip(nb, lt) if b in x and b in y]
        target = "≥ %.1f×" % CHARLM_TORCH
        thr = "/".join(sorted({str(x.get("os_threads", "?")) for x in nb}) or "—") + " / " + \
            "/".join(sorted({str(x.get("os_threads", "?")) for x in tor}) or "—") + " / " + \
            "/".join(sorted({str(x.get("os_threads", "?")) for x in lt}) or "—")
        busy = [x["others_cpu_pct"] for x in nb + tor + lt if "others_cpu_pct" in x]
        out.append("| %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s / %s | %s / %s / %s "
                   "| %s | %s / %s / %s | %s / %s / %s | %s | %s |" % (
                       t, fmt([x[f] for x in nb]), fmt([x[f] for x in tor]),
                       fmt(q, 2), target, verdict(med(q) >= CHARLM_TORCH),
                       fmt([x[f] for x in lt]), fmt(ql, 2), target if lt else "—",
                       verdict(med(ql) >= CHARLM_TORCH) if lt else "—", fmt(bq, 2), fmt(bql, 2),
                       fmt([x["tok_per_s"] for x in nb]), fmt([x["tok_per_s"] for x in tor]),
                       fmt([x["tok_per_s"] for x in lt]), thr,
                       fmt([x.get("minflt_per_step", 0) for x in nb]),
                       fmt([x.get("minflt_per_step", 0) for x in tor]),
                       fmt([x.get("minflt_per_step", 0) for x in lt]),
                       fmt([x["peak_rss_mib"] for x in nb]), fmt([x["peak_rss_mib"] for x in tor]),
                       fmt([x["peak_rss_mib"] for x in lt]),
                       fmt([x["allocs_per_step"] for x in nb], 1), fmt(busy)))
    out.append("")
    out.append("Fastest steps: the same ratios from each run's fastest timed step (CPU time at "
               "1 thread, wall at 2); other processes' bursts miss some steps, so where these "
               "and the medians' ratios disagree, the machine was not quiet enough.\n")
    out.append("Others' CPU: what other processes used of the 2 cores during each run "
               "(/proc/stat less the run's own CPU time). Above ~10 %% the runs shared the "
               "machine, which slows PyTorch (larger working set, page faults) more than nabla "
               "even in CPU time: rerun such a verdict on a quiet machine. All three ran with "
               "OMP_WAIT_POLICY=passive; %s (suite_families.py says why).\n" % (
                   "GLIBC_TUNABLES as given by --env" if "GLIBC_TUNABLES" in ctx.base_env()
                   else "PyTorch and libtorch with GLIBC_TUNABLES=" + CHARLM_MALLOC))


# ---- LSTM layer (issue 12) --------------------------------------------------------------------

def measure_lstm(ctx):
    return _per_thread(ctx, "lstm", [_exe(ctx, "bench_lstm"), "--reps", "1"],
                       _py(ctx, "torch_lstm.py") + ["--reps", "1"],
                       lambda r: (r["T"], r["B"], r["F"], r["H"]), ["lstm", "--reps", "1"])


def table_lstm(res, ctx, out):
    fmt, verdict = ctx.fmt, ctx.verdict
    out.append("### LSTM layer forward + backward over (T, B) = (64, 32) (issue 12; ms per "
               "sequence)\n")
    out.append("| F → H | thr | nabla ms | tokens/s | GEMM limit ms | limit ÷ nabla | PyTorch "
               "(nn.LSTM) ms | PyTorch ÷ nabla (pairwise) | libtorch ms (÷ nabla) | allocs | target | "
               "verdict |")
    out.append("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for ((T, B, F, H), t), d in sorted(res.items()):
        nb, tor = d["nabla"], d.get("torch", [])
        q = [y["torch_ms"] / x["nabla_ms"] for x, y in zip(nb, tor)]
        lcell, ql = _lt_cell(ctx, d, "torch_ms", "nabla_ms", 1)
        out.append("| %d → %d | %d | %s | %s | %s | %s | %s | %s | %s | %d | ≥ %.1f× PyTorch and "
                   "libtorch (none in issue 12) | %s |" % (
                       F, H, t, fmt([x["nabla_ms"] for x in nb], 1),
                       fmt([x["tokens_per_s"] for x in nb]),
                       fmt([x["gemm_limit_ms"] for x in nb], 1),
                       fmt([x["gemm_limit_ms"] / x["nabla_ms"] for x in nb], 2),
                       fmt([x["torch_ms"] for x in tor], 1), fmt(q, 2), lcell,
                       max(x["allocs_after_warmup"] for x in nb), TORCH_PARITY,
                       verdict(_ok(q, ql))))
    out.append("")


# ---- Adam step (issue 13) ---------------------------------------------------------------------

def measure_adam(ctx):
    """res[threads] = {"nabla": [rows], "torch": [rows]} (each program alternates 1 and 2
    threads inside one process, each with its own triad)."""
    res = {}
    for rep in range(ctx.a.reps):
        runs = [("nabla", [_exe(ctx, "bench_adam"), "--reps", "1"]),
                ("torch", _py(ctx, "torch_adam.py") + ["--reps", "1"])]
        lt = _libtorch(ctx, ["adam", "--reps", "1"])
        if lt:
            runs.append(("libtorch", lt))
        for impl, cmd in runs:
            for r in _collect(ctx, cmd, ctx.passive_env()):
                res.setdefault(r["threads"], {}).setdefault(impl, []).append(r)
        ctx.progress("adam rep %d done" % (rep + 1))
    return res


def table_adam(res, ctx, out):
    fmt, verdict = ctx.fmt, ctx.verdict
    out.append("### Adam step over 10 M float32 parameters (issue 13; GB/s counting 28 n "
               "bytes; limit: a triad timed just before each step)\n")
    out.append("| thr | nabla ms | nabla GB/s | nabla ÷ triad | PyTorch (foreach) ms | PyTorch ÷ "
               "triad | PyTorch ÷ nabla (time) | libtorch ms (÷ nabla) | target | verdict |")
    out.append("|---|---|---|---|---|---|---|---|---|---|")
    for t, d in sorted(res.items()):
        nb, tor = d["nabla"], d.get("torch", [])
        q = [y["adam_ms"] / x["adam_ms"] for x, y in zip(nb, tor)]
        ratio = [x["ratio"] for x in nb]
        lcell, _ = _lt_cell(ctx, d, "adam_ms", digits=1)
        out.append("| %d | %s | %s | %s | %s | %s | %s | %s | ≥ %.2f triad | %s |" % (
            t, fmt([x["adam_ms"] for x in nb], 1), fmt([x["adam_gbs"] for x in nb], 1),
            fmt(ratio, 2), fmt([x["adam_ms"] for x in tor], 1), fmt([x["ratio"] for x in tor], 2),
            fmt(q, 2), lcell, ADAM_TRIAD, verdict(med(ratio) >= ADAM_TRIAD)))
    out.append("")


# name -> (measure, table) in the report's order
FAMILIES = {
    "matmul": (measure_matmul, table_matmul),
    "conv": (measure_conv, table_conv),
    "layernorm": (measure_layernorm, table_layernorm),
    "attention": (measure_attention, table_attention),
    "charlm": (measure_charlm, table_charlm),
    "lstm": (measure_lstm, table_lstm),
    "adam": (measure_adam, table_adam),
}
BINARIES = ["bench_matmul", "bench_conv", "bench_layernorm", "bench_attention", "bench_charlm",
            "bench_lstm", "bench_adam"]
