"""examples/charlm's model in PyTorch: token + position embedding, 2 pre-norm blocks of 4-head
causal nn.MultiheadAttention (batch_first) + GELU MLP with residuals, final LayerNorm, linear
head; width 128, context 64, batch 32, vocabulary 113; one training step = forward,
cross-entropy, backward, AdamW (lr 3e-3, weight decay 0.01 on matrices). The parameter names
match the nabla model's (tok_emb.weight, blocks.0.attn.in_proj_weight, ...). Times are process
CPU time (time.process_time, all threads) and wall time per step, medians; tokens/s from each.
The protocol is bench_charlm.c's: WARMUP untimed steps, ids drawn outside the timer, and the
fields os_threads, cores_used, minflt_per_step, sys_ms_per_step, best_step_cpu_ms and
best_step_wall_ms (that file says what they are).
Debian's torch links the pthread OpenBLAS, whose own pool ignores torch.set_num_threads and
reads OPENBLAS_NUM_THREADS once when the library loads: so --threads also sets it (and
OMP_NUM_THREADS) before torch is imported, unless the caller set them; os_threads shows what
the run really had (1 at --threads 1; 4 at 2: main, an OpenMP worker, OpenBLAS's worker and
its server thread).
Usage: /usr/bin/python3 bench/torch_charlm.py [--threads N] [--steps S]"""
import argparse
import json
import os
import resource
import time

ap = argparse.ArgumentParser()
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--steps", type=int, default=30)
a = ap.parse_args()
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(var, str(a.threads))

import torch  # noqa: E402 (after the thread variables above)
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, e, h):
        super().__init__()
        self.ln1 = nn.LayerNorm(e)
        self.attn = nn.MultiheadAttention(e, h, batch_first=True)
        self.ln2 = nn.LayerNorm(e)
        self.mlp = nn.Sequential(nn.Linear(e, 4 * e), nn.GELU(), nn.Linear(4 * e, e))

    def forward(self, x, mask):
        a = self.ln1(x)
        x = x + self.attn(a, a, a, attn_mask=mask, need_weights=False)[0]
        return x + self.mlp(self.ln2(x))


class CharLM(nn.Module):
    def __init__(self, v, t, e, h, layers):
        super().__init__()
        self.tok_emb = nn.Embedding(v, e)
        self.pos_emb = nn.Embedding(t, e)
        self.blocks = nn.ModuleList(Block(e, h) for _ in range(layers))
        self.ln_f = nn.LayerNorm(e)
        self.head = nn.Linear(e, v)

    def forward(self, ids):
        t = ids.shape[1]
        x = self.tok_emb(ids) + self.pos_emb.weight[:t]
        mask = torch.ones(t, t, dtype=torch.bool).triu(1)
        for b in self.blocks:
            x = b(x, mask)
        return self.head(self.ln_f(x))


WARMUP = 5
torch.set_num_threads(a.threads)
torch.manual_seed(1)
B, T, V = 32, 64, 113
m = CharLM(V, T, 128, 4, 2)
decay = [p for p in m.parameters() if p.dim() >= 2]
no_decay = [p for p in m.parameters() if p.dim() < 2]
opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01},
                         {"params": no_decay, "weight_decay": 0.0}], lr=3e-3)
cpu, wall = [], []
minflt, sys_s = 0, 0.0
for s in range(WARMUP + a.steps):
    x = torch.randint(0, V, (B, T))
    y = torch.randint(0, V, (B, T))
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    c0, w0 = time.process_time(), time.perf_counter()
    loss = F.cross_entropy(m(x).reshape(B * T, V), y.reshape(B * T))
    opt.zero_grad()
    loss.backward()
    opt.step()
    if s >= WARMUP:
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - w0)
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        minflt += r1.ru_minflt - r0.ru_minflt
        sys_s += r1.ru_stime - r0.ru_stime
threads_now = len(os.listdir("/proc/self/task"))
cores_used = sum(cpu) / sum(wall)
cpu.sort()
wall.sort()
print(json.dumps({"bench": "torch_charlm_step", "threads": a.threads, "torch": torch.__version__,
                  "params": sum(p.numel() for p in m.parameters()),
                  "step_cpu_ms": round(1e3 * cpu[len(cpu) // 2], 2),
                  "tok_per_cpu_s": round(B * T / cpu[len(cpu) // 2]),
                  "step_wall_ms": round(1e3 * wall[len(wall) // 2], 2),
                  "tok_per_s": round(B * T / wall[len(wall) // 2]),
                  "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                  "os_threads": threads_now, "cores_used": round(cores_used, 2),
                  "minflt_per_step": round(minflt / a.steps),
                  "sys_ms_per_step": round(1e3 * sys_s / a.steps, 2), "warmup": WARMUP,
                  "best_step_cpu_ms": round(1e3 * cpu[0], 2),
                  "best_step_wall_ms": round(1e3 * wall[0], 2)}))
