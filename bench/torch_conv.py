#!/usr/bin/env python3
"""PyTorch side of bench_conv: conv2d forward + backward (F.conv2d, float32, padding 1) at the
Fashion-MNIST CNN's shapes, batch 64, the same step as bench_conv (conv1's input needs no
gradient, conv2's does). Usage: torch_conv.py --threads T [--reps R]. One JSON line per shape."""
import argparse, json, time
import torch
import torch.nn.functional as F

SHAPES = [("conv1 64x1x28x28 -> 32, 3x3", 64, 1, 28, 32, 3, False),
          ("conv2 64x32x14x14 -> 64, 3x3", 64, 32, 14, 64, 3, True)]

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--reps", type=int, default=3)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(7)
    for name, n, c, h, o, k, xg in SHAPES:
        x = torch.rand(n, c, h, h).mul_(2).sub_(1).requires_grad_(xg)
        w = torch.rand(o, c, k, k).mul_(2).sub_(1).requires_grad_()
        b = torch.rand(o).requires_grad_()
        gy = torch.rand(n, o, h, h)
        best = 1e30
        for r in range(a.reps + 1):
            it, t0 = 0, time.perf_counter()
            while True:
                y = F.conv2d(x, w, b, padding=k // 2)
                y.backward(gy)
                w.grad = None; b.grad = None; x.grad = None
                it += 1
                t = time.perf_counter() - t0
                if t >= 0.3:
                    break
            if r > 0:
                best = min(best, t / it)
        print(json.dumps({"bench": "conv2d fwd+bwd", "shape": name, "threads": a.threads,
                          "torch_ms": round(best * 1e3, 3), "torch": torch.__version__}), flush=True)

if __name__ == "__main__":
    main()
