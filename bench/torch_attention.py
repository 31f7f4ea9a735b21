"""Causal attention forward + backward in PyTorch at the shapes of bench_attention.c:
(B, H, T, D) = (32, 4, T, 32), T = 64, 128, 256, float32. torch 1.13 (Debian's python3-torch)
has no F.scaled_dot_product_attention, so this is its math path written out: q kᵀ / sqrt(d),
masked_fill of the causal triangle, softmax, @ v, then backward of sum(o * dy). Times are
process CPU time (time.process_time, all threads), medians, as in bench_attention.c.
Usage: /usr/bin/python3 bench/torch_attention.py [--threads N] [--reps R]"""
import argparse
import json
import math
import time

import torch

ap = argparse.ArgumentParser()
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--reps", type=int, default=20)
a = ap.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(1)
B, H, D = 32, 4, 32
for T in (64, 128, 256):
    q, k, v = (torch.rand(B, H, T, D) * 2 - 1 for _ in range(3))
    for t in (q, k, v):
        t.requires_grad_()
    dy = torch.rand(B, H, T, D) * 2 - 1
    mask = torch.ones(T, T, dtype=torch.bool).triu(1)
    times = []
    for r in range(a.reps + 2):
        t0 = time.process_time()
        s = (q @ k.transpose(-1, -2)) / math.sqrt(D)
        p = s.masked_fill(mask, float("-inf")).softmax(-1)
        o = p @ v
        (o * dy).sum().backward()
        q.grad = k.grad = v.grad = None
        if r >= 2:
            times.append(time.process_time() - t0)
    times.sort()
    print(json.dumps({"bench": "torch_attention", "B": B, "H": H, "T": T, "D": D,
                      "threads": a.threads, "torch": torch.__version__,
                      "fwd_bwd_cpu_ms": round(1e3 * times[len(times) // 2], 3)}))
