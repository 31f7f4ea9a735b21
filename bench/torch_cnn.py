#!/usr/bin/env python3
"""PyTorch side of bench_cnn: one training step of examples/cnn's default model, float32:
conv(1->32, 3x3, pad 1) BatchNorm2d ReLU MaxPool(2), conv(32->64) BatchNorm2d ReLU MaxPool(2),
Flatten Dropout(0.25) Linear(3136->128) ReLU Dropout(0.25) Linear(128->10), F.cross_entropy,
backward, Adam(lr 1e-3), zero_grad(set_to_none=True), on one batch of random images and labels
made once. Usage: torch_cnn.py --threads T [--batch B] [--steps S] [--reps R] [--hidden H
(the hidden linear layer's width, 128)]; the best of R
runs of S steps, one JSON line."""
import argparse, json, time
import torch
import torch.nn as nn
import torch.nn.functional as F


def model(hidden):
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Dropout(0.25), nn.Linear(64 * 49, hidden), nn.ReLU(), nn.Dropout(0.25),
        nn.Linear(hidden, 10))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--hidden", type=int, default=128, help="width of the hidden linear layer")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(7)
    m = model(a.hidden)
    opt = torch.optim.Adam(m.parameters(), lr=1e-3)
    x = torch.rand(a.batch, 1, 28, 28)
    y = torch.randint(0, 10, (a.batch,))
    best = 1e30
    for r in range(a.reps + 1):  # rep 0 warms up
        t0 = time.perf_counter()
        for _ in range(a.steps):
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(m(x), y)
            loss.backward()
            opt.step()
        t = (time.perf_counter() - t0) / a.steps
        if r > 0:
            best = min(best, t)
    print(json.dumps({"bench": "cnn step", "batch": a.batch, "hidden": a.hidden, "threads": a.threads,
                      "torch_step_ms": round(best * 1e3, 3),
                      "torch_samples_per_s": round(a.batch / best), "torch": torch.__version__}),
          flush=True)


if __name__ == "__main__":
    main()
