#!/usr/bin/python3
"""torch.matmul on the shapes of bench_matmul.c, float32, at 1 and 2 threads.

fwd: y = a @ b for a (32, M, K), b (32, K, N); bwd: the two products autograd runs,
da = dy @ b^T and db = a^T @ dy (transposes as strided views, as autograd passes them).
One JSON object per measurement on stdout, like the C benchmarks.
Usage: /usr/bin/python3 bench/torch_matmul.py [--reps R]
"""
import argparse
import json
import time

import torch

SHAPES = [("32x(64x64)(64x64)", 64, 64, 64), ("32x(128x64)(64x128)", 128, 64, 128)]
MIN_SECONDS = 0.05


def timed(fn):
    iters = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(iters):
            fn()
        dt = time.perf_counter() - t0
        if dt >= MIN_SECONDS:
            return iters / dt
        iters *= 2


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    torch.manual_seed(1)
    for name, m, k, n in SHAPES:
        a = torch.rand(32, m, k) * 2 - 1
        b = torch.rand(32, k, n) * 2 - 1
        gy = torch.rand(32, m, n) * 2 - 1
        flops = 2.0 * 32 * m * k * n
        for rep in range(-1, args.reps):
            for threads in (1, 2):
                torch.set_num_threads(threads)
                fwd = timed(lambda: torch.matmul(a, b))
                bwd = timed(lambda: (torch.matmul(gy, b.transpose(-1, -2)),
                                     torch.matmul(a.transpose(-1, -2), gy)))
                if rep < 0:
                    continue
                for d, rate, f in (("fwd", fwd, flops), ("bwd", bwd, 2 * flops)):
                    print(json.dumps({"bench": "torch_bmm", "shape": name, "dir": d,
                                      "threads": threads, "gflops": round(rate * f * 1e-9, 3)}),
                          flush=True)


if __name__ == "__main__":
    main()
