#!/usr/bin/env python3
"""PyTorch side of bench_lstm: one torch.nn.LSTM layer's forward + backward over a (T, B, F)
sequence (float32, zero initial state, upstream gradient on every output), the same step and
shapes as bench_lstm. Usage: torch_lstm.py --threads T [--reps R]. One JSON line per shape."""
import argparse, json, time
import torch

SHAPES = [(64, 32, 64, 128), (64, 32, 128, 256)]

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--reps", type=int, default=3)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(7)
    for t_, b, f, h in SHAPES:
        m = torch.nn.LSTM(f, h)
        x = torch.rand(t_, b, f).mul_(2).sub_(1).requires_grad_()
        gy = torch.rand(t_, b, h).mul_(2).sub_(1)
        best = 1e30
        for r in range(a.reps + 1):
            it, t0 = 0, time.perf_counter()
            while True:
                y, _ = m(x)
                y.backward(gy)
                m.zero_grad(set_to_none=True)
                x.grad = None
                it += 1
                t = time.perf_counter() - t0
                if t >= 0.3:
                    break
            if r > 0:
                best = min(best, t / it)
        print(json.dumps({"bench": "lstm fwd+bwd", "T": t_, "B": b, "F": f, "H": h,
                          "threads": a.threads, "torch_ms": round(best * 1e3, 3),
                          "tokens_per_s": round(t_ * b / best), "torch": torch.__version__}),
              flush=True)

if __name__ == "__main__":
    main()
