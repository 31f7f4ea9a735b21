#!/usr/bin/python3
"""The PyTorch side of the nabla benchmarks, mirroring bench_mlp.c and bench_overhead.c.

  torch_bench.py mlp --hidden 512,512 --batch 64 --threads 1 [--warmup N] [--samples N]
  torch_bench.py overhead [--iters N] [--reps R]

Run with the system python3 (Debian's python3-torch). The caller sets OMP_NUM_THREADS and
OPENBLAS_NUM_THREADS before start (Debian's torch sends Linear to the system OpenBLAS); this
script also calls torch.set_num_threads. Prints one JSON line per measurement.
"""
import argparse
import gzip
import json
import os
import resource
import time

import numpy as np
import torch
import torch.nn.functional as F

DATA = "/usr/share/datasets/fashion-mnist"


def load_idx(path, offset):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        return np.frombuffer(f.read(), dtype=np.uint8, offset=offset)


def load_fashion(data_dir):
    """uint8 images (n, 784) and labels (n), kept compact like nabla's nb_dataset."""
    def find(stem):
        gz = os.path.join(data_dir, stem + ".gz")
        return gz if os.path.exists(gz) else os.path.join(data_dir, stem)
    images = load_idx(find("train-images-idx3-ubyte"), 16).reshape(-1, 784)
    labels = load_idx(find("train-labels-idx1-ubyte"), 8)
    return images, labels


def batches(n, batch, seed=7):
    """Shuffled index batches forever; the short last batch of an epoch is skipped (as in C)."""
    rng = np.random.default_rng(seed)
    while True:
        order = rng.permutation(n)
        for i in range(0, n - batch + 1, batch):
            yield order[i:i + batch]


def max_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def bench_mlp(a):
    torch.set_num_threads(a.threads)
    torch.manual_seed(42)
    images, labels = load_fashion(a.data)
    dims = [784] + [int(h) for h in a.hidden.split(",")] + [10]
    layers = []
    for i in range(len(dims) - 1):
        layers.append(torch.nn.Linear(dims[i], dims[i + 1]))
        if i + 2 < len(dims):
            layers.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*layers)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    it = batches(len(labels), a.batch)

    def step():
        idx = next(it)
        x = torch.from_numpy(images[idx]).float().div_(255.0)  # bytes -> float per batch
        y = torch.from_numpy(labels[idx].astype(np.int64))
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss

    for _ in range(a.warmup):
        step()
    steps = (a.samples + a.batch - 1) // a.batch
    t0 = time.perf_counter()
    for _ in range(steps):
        loss = step()
    dt = time.perf_counter() - t0
    n = steps * a.batch
    print(json.dumps({"bench": "mlp", "impl": "torch", "hidden": a.hidden, "batch": a.batch,
                      "threads": a.threads, "samples": n, "samples_per_s": n / dt,
                      "max_rss_mib": max_rss_mib(), "loss": float(loss)}), flush=True)


def bench_overhead(a):
    """y = relu(x·w + b) on 1-element tensors, forward + backward; grads accumulate. Timed as
    bench_overhead.c: 20 chunks per rep by process CPU time, us_per_iter from the fastest
    chunk; the whole rep's CPU and wall times too."""
    torch.set_num_threads(1)
    x = torch.tensor([[0.5]], requires_grad=True)
    w = torch.tensor([[0.75]], requires_grad=True)
    b = torch.tensor([0.25], requires_grad=True)

    def run(iters, chunks=20):
        per = max(1, iters // chunks)
        best, done = float("inf"), 0
        w0, c0 = time.perf_counter(), time.process_time()
        while done < iters:
            n = iters - done if iters - done < 2 * per else per
            cc = time.process_time()
            for _ in range(n):
                y = torch.relu(x @ w + b)
                y.backward()
            best = min(best, (time.process_time() - cc) / n)
            done += n
        return best, (time.process_time() - c0) / iters, (time.perf_counter() - w0) / iters

    run(a.iters // 10 + 1)
    for _ in range(a.reps):
        best, cpu, wall = run(a.iters)
        print(json.dumps({"bench": "overhead", "impl": "torch", "iters": a.iters,
                          "us_per_iter": round(best * 1e6, 4),
                          "cpu_us_per_iter": round(cpu * 1e6, 4),
                          "wall_us_per_iter": round(wall * 1e6, 4)}), flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("mlp")
    m.add_argument("--hidden", default="512,512")
    m.add_argument("--batch", type=int, default=64)
    m.add_argument("--threads", type=int, default=1)
    m.add_argument("--warmup", type=int, default=50)
    m.add_argument("--samples", type=int, default=60000)
    m.add_argument("--data", default=DATA)
    o = sub.add_parser("overhead")
    o.add_argument("--iters", type=int, default=20000)
    o.add_argument("--reps", type=int, default=3)
    a = p.parse_args()
    bench_mlp(a) if a.cmd == "mlp" else bench_overhead(a)


if __name__ == "__main__":
    main()
