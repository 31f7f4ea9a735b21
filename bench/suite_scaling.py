"""Scaling curves of issue 17 (bench/suite.py imports this): training throughput of net A
(784-w-w-10, SGD) and of examples/cnn's model (batch-norm CNN, Adam) against the batch size
(16 ... 1024) and against the hidden width (net A's w; the CNN's hidden linear layer), nabla and PyTorch at 1 and 2 threads,
plus the GEMM limit (the same products through cblas_sgemm, measured by bench_mlp and
bench_cnn in the same process as nabla's run). One point per (x, implementation, thread count): the sweep is the repetition,
so the curves are single measurements, alternated nabla / PyTorch at every point.

The data go to <outdir>/<name>.dat (one block per curve) and gnuplot (Debian gnuplot-nox)
turns each into <outdir>/<name>.png; the report links the PNGs. Without gnuplot the tables and
.dat files are still written and the report says the plots were skipped.
"""
import os
import shutil
import subprocess

THREADS = (1, 2)
BATCHES = (16, 32, 64, 128, 256, 512, 1024)
WIDTHS = (64, 128, 256, 512, 1024, 2048)
WIDTH_BATCH = 256  # net A's headline batch (issue 4's row)
MLP_FLOP_BUDGET = 6e10  # multiply-adds x 2 timed per net-A point (~0.5 s at 100 GFLOP/s)
CNN_WIDTHS = (32, 128, 512, 2048)  # the CNN's hidden linear layer (examples/cnn: 128)
CNN_WIDTH_BATCH = 64  # examples/cnn's batch
CNN_SAMPLES = 512  # samples per timed CNN run (steps = this / batch, at least 2)


def mlp_flops_per_sample(w):
    """Training FLOPs per sample of 784-w-w-10: 3 products per layer (the first layer's dX
    skipped, as bench_mlp's limit counts it), 2 flops per multiply-add."""
    dims = [784, w, w, 10]
    macs = sum(a * b for a, b in zip(dims, dims[1:]))
    return 2.0 * (3 * macs - 784 * w)


def _shrink(ctx):
    """--quick-sweep (a check of the suite, not a measurement) also times 8x less per point."""
    return 8 if ctx.a.quick_sweep else 1


def _mlp_point(ctx, w, batch, t):
    """(nabla replay samples/s, GEMM limit samples/s, PyTorch samples/s) at one point."""
    samples = int(MLP_FLOP_BUDGET / _shrink(ctx) / mlp_flops_per_sample(w))
    samples = max(4 * batch, min(samples, 60000) // batch * batch)
    common = ["--hidden", "%d,%d" % (w, w), "--batch", str(batch), "--threads", str(t),
              "--warmup", str(max(10, 2048 // batch)), "--samples", str(samples)]
    nb = ctx.run([os.path.join(ctx.bench, "bench_mlp"), "--mode", "replay"] + common,
                 ctx.passive_env())
    tor = ctx.run([ctx.PY, os.path.join(ctx.HERE, "torch_bench.py"), "mlp"] + common,
                  ctx.torch_env(t, passive=True))
    for r in nb + tor:
        ctx.log_row(dict(r, sweep="scaling"))
    return nb[0]["samples_per_s"], nb[0]["limit_samples_per_s"], tor[0]["samples_per_s"]


def _cnn_point(ctx, batch, t, hidden=128):
    """(nabla samples/s, GEMM limit samples/s, PyTorch samples/s) of the CNN step."""
    steps = str(max(2, CNN_SAMPLES // _shrink(ctx) // batch))
    common = ["--threads", str(t), "--batch", str(batch), "--steps", steps, "--reps", "1",
              "--hidden", str(hidden)]
    nb = ctx.run([os.path.join(ctx.bench, "bench_cnn")] + common, ctx.passive_env())
    tor = ctx.run([ctx.PY, os.path.join(ctx.HERE, "torch_cnn.py")] + common,
                  ctx.torch_env(t, passive=True))
    for r in nb + tor:
        ctx.log_row(dict(r, sweep="scaling"))
    n = nb[0]
    return (n["samples_per_s"], batch / (n["gemm_limit_ms"] * 1e-3),
            tor[0]["torch_samples_per_s"])


def measure_scaling(ctx):
    """curves[name] = {"x": label, "points": {(x, t): (nabla, limit, torch)}}; with
    --quick-sweep only the ends and the middle of each sweep (to check the suite itself)."""
    pick = (lambda v: (v[0], v[len(v) // 2], v[-1])) if ctx.a.quick_sweep else (lambda v: v)
    curves = {"mlp_batch": {"x": "batch size", "title": "net A (784-512-512-10, SGD): "
                            "training throughput vs batch size", "points": {}},
              "mlp_width": {"x": "hidden width w (784-w-w-10, batch %d)" % WIDTH_BATCH,
                            "title": "net A: training throughput vs hidden width",
                            "points": {}},
              "cnn_batch": {"x": "batch size", "title": "examples/cnn model (2 conv + BN, "
                            "Adam): training throughput vs batch size", "points": {}},
              "cnn_width": {"x": "hidden linear width (batch %d)" % CNN_WIDTH_BATCH,
                            "title": "examples/cnn model: training throughput vs the width of "
                            "its hidden linear layer", "points": {}}}
    for b in pick(BATCHES):
        for t in THREADS:
            curves["mlp_batch"]["points"][(b, t)] = _mlp_point(ctx, 512, b, t)
        ctx.progress("scaling: net A batch %d done" % b)
    for w in pick(WIDTHS):
        for t in THREADS:
            curves["mlp_width"]["points"][(w, t)] = _mlp_point(ctx, w, WIDTH_BATCH, t)
        ctx.progress("scaling: net A width %d done" % w)
    for b in pick(BATCHES):
        for t in THREADS:
            curves["cnn_batch"]["points"][(b, t)] = _cnn_point(ctx, b, t)
        ctx.progress("scaling: CNN batch %d done" % b)
    for w in pick(CNN_WIDTHS):
        for t in THREADS:
            curves["cnn_width"]["points"][(w, t)] = _cnn_point(ctx, CNN_WIDTH_BATCH, t, w)
        ctx.progress("scaling: CNN width %d done" % w)
    return curves


GNUPLOT = """set terminal pngcairo size 900,560 font "sans,10"
set output "{png}"
set title "{title}"
set xlabel "{x}"
set ylabel "samples / s"
set logscale x 2
set logscale y
set grid
set key left top
plot "{dat}" index 0 using 1:2 with linespoints lw 2 lc rgb "#1f77b4" pt 7 title "nabla, 1 thread", \\
     "{dat}" index 1 using 1:2 with linespoints lw 2 lc rgb "#1f77b4" pt 5 dt 2 title "nabla, 2 threads", \\
     "{dat}" index 0 using 1:4 with linespoints lw 2 lc rgb "#d62728" pt 7 title "PyTorch, 1 thread", \\
     "{dat}" index 1 using 1:4 with linespoints lw 2 lc rgb "#d62728" pt 5 dt 2 title "PyTorch, 2 threads", \\
     "{dat}" index 0 using 1:3 with lines lw 1 lc rgb "#555555" title "GEMM limit, 1 thread", \\
     "{dat}" index 1 using 1:3 with lines lw 1 lc rgb "#555555" dt 2 title "GEMM limit, 2 threads"
"""


def plot(curves, outdir, log):
    """Writes <name>.dat and, when gnuplot exists, <name>.png; returns the PNG names made."""
    made = []
    gp = shutil.which("gnuplot")
    for name, c in curves.items():
        dat = os.path.join(outdir, name + ".dat")
        with open(dat + ".tmp", "w") as f:
            f.write("# %s\n# x nabla_samples_per_s gemm_limit_samples_per_s "
                    "torch_samples_per_s\n" % c["title"])
            for t in THREADS:
                f.write("# threads %d\n" % t)
                for (x, tt), (nb, lim, tor) in sorted(c["points"].items()):
                    if tt == t:
                        f.write("%d %.1f %.1f %.1f\n" % (x, nb, lim, tor))
                f.write("\n\n")
        os.replace(dat + ".tmp", dat)
        if not gp:
            continue
        png = os.path.join(outdir, name + ".png")
        script = GNUPLOT.format(png=png + ".tmp", title=c["title"], x=c["x"], dat=dat)
        p = subprocess.run([gp], input=script, capture_output=True, text=True)
        if p.returncode != 0 or not os.path.exists(png + ".tmp"):
            log("suite: gnuplot failed for %s: %s" % (name, p.stderr.strip()))
            continue
        os.replace(png + ".tmp", png)
        made.append(name + ".png")
    return made


def table_scaling(curves, pngs, link_prefix, ctx, out):
    fmt1 = lambda v: "%.0f" % v
    out.append("### Scaling: throughput vs batch size and hidden width (issue 17; samples/s, "
               "one measurement per point)\n")
    if pngs:
        for p in pngs:
            out.append("![%s](%s%s)\n" % (p[:-4], link_prefix, p))
    else:
        out.append("(gnuplot not found: plots skipped; the data are in the .dat files)\n")
    for name, c in curves.items():
        out.append("%s\n" % c["title"])
        out.append("| %s | thr | nabla | PyTorch | nabla ÷ PyTorch | GEMM limit | nabla ÷ "
                   "limit |" % c["x"])
        out.append("|---|---|---|---|---|---|---|")
        for (x, t), (nb, lim, tor) in sorted(c["points"].items()):
            out.append("| %d | %d | %s | %s | %.2f | %s | %.0f%% |" % (
                x, t, fmt1(nb), fmt1(tor), nb / tor, fmt1(lim), 100 * nb / lim))
        out.append("")
