#!/usr/bin/python3
"""torch.optim.Adam(foreach=True) step over n float32 parameters (one tensor), 1 and 2 threads
alternating, with the same triad a = b + s c timed before each step (torch ops: torch.add with
alpha into a preallocated output), so the figures sit next to bench_adam's.
Bytes counted as in bench_adam.c: Adam 28 n, triad 12 n.
Usage: /usr/bin/python3 bench/torch_adam.py [--n N] [--reps R] [--foreach 0|1]"""
import argparse
import json
import statistics
import sys
import time

import torch

STEPS_PER = 9


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=10_000_000)
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--foreach", type=int, default=1)
    a = ap.parse_args()
    n = a.n
    torch.manual_seed(1)
    p = (torch.rand(n) * 2 - 1).requires_grad_(True)
    p.grad = (torch.rand(n) - 0.5) * 1e-3
    opt = torch.optim.Adam([p], lr=1e-3, foreach=bool(a.foreach))
    ta, tb, tc = torch.zeros(n), torch.ones(n), torch.full((n,), 2.0)
    res = {1: [], 2: []}
    for r in range(a.reps):
        for th in (1, 2):
            torch.set_num_threads(th)
            torch.add(tb, tc, alpha=0.5, out=ta)
            opt.step()
            tt, at = [], []
            for _ in range(STEPS_PER):
                t0 = time.perf_counter()
                torch.add(tb, tc, alpha=0.5, out=ta)
                t1 = time.perf_counter()
                opt.step()
                t2 = time.perf_counter()
                tt.append(t1 - t0)
                at.append(t2 - t1)
            t_tri, t_adam = statistics.median(tt), statistics.median(at)
            row = {"bench": "torch_adam", "foreach": a.foreach, "n": n, "threads": th, "rep": r,
                   "adam_ms": t_adam * 1e3, "adam_gbs": 28 * n / t_adam / 1e9,
                   "triad_gbs": 12 * n / t_tri / 1e9}
            row["ratio"] = row["adam_gbs"] / row["triad_gbs"]
            res[th].append(row)
            print(json.dumps(row))
    for th in (1, 2):
        rows = res[th]
        med = lambda k: statistics.median(x[k] for x in rows)
        print(f"torch Adam(foreach={bool(a.foreach)}) step, {n} float32, {th} thread(s): "
              f"{med('adam_ms'):.2f} ms, {med('adam_gbs'):.1f} GB/s; triad {med('triad_gbs'):.1f} GB/s; "
              f"ratio {100 * med('ratio'):.0f}% (median of {a.reps})", file=sys.stderr)


if __name__ == "__main__":
    main()
