#!/usr/bin/env python3
"""PyTorch side of bench_layernorm: F.layer_norm over the last axis (affine, float32) forward +
backward with an upstream gradient, x, weight and bias needing gradients, at (2048, 128) and
(8192, 1024); GB/s counts 20 n bytes as bench_layernorm does. Usage: torch_layernorm.py
--threads T [--reps R]; best of R runs of >= 0.2 s, one JSON line per shape."""
import argparse, json, time
import torch
import torch.nn.functional as F

SHAPES = [(2048, 128), (8192, 1024)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--reps", type=int, default=3)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(7)
    for rows, cols in SHAPES:
        x = torch.rand(rows, cols).mul_(2).sub_(1).requires_grad_()
        w = torch.rand(cols).mul_(2).sub_(1).requires_grad_()
        b = torch.rand(cols).mul_(2).sub_(1).requires_grad_()
        gy = torch.rand(rows, cols)
        best = 1e30
        for r in range(a.reps + 1):  # run 0 warms up
            it, t0 = 0, time.perf_counter()
            while True:
                y = F.layer_norm(x, (cols,), w, b, 1e-5)
                y.backward(gy)
                x.grad = w.grad = b.grad = None
                it += 1
                t = time.perf_counter() - t0
                if t >= 0.2:
                    break
            if r > 0:
                best = min(best, t / it)
        print(json.dumps({"bench": "layer_norm fwd+bwd", "rows": rows, "cols": cols,
                          "threads": a.threads, "torch_ms": round(best * 1e3, 4),
                          "torch_gbs": round(20.0 * rows * cols / best / 1e9, 2),
                          "torch": torch.__version__}), flush=True)


if __name__ == "__main__":
    main()
