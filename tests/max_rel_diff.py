#!/usr/bin/env python3
"""max_rel_diff.py A B: the largest difference between two safetensors checkpoints' float32
model tensors (the optimizer's "optim.*" state left out), relative to each tensor's largest
magnitude in A; printed with 3 digits. Exit 1 when the files hold different tensors."""
import json
import struct
import sys


def load(path):
    with open(path, "rb") as f:
        raw = f.read()
    n = struct.unpack("<Q", raw[:8])[0]
    header, base, out = json.loads(raw[8:8 + n]), 8 + n, {}
    for name, v in header.items():
        if name == "__metadata__" or v["dtype"] != "F32" or name.startswith("optim."):
            continue
        s, e = v["data_offsets"]
        out[name] = struct.unpack("<%df" % ((e - s) // 4), raw[base + s:base + e])
    return out


a, b = load(sys.argv[1]), load(sys.argv[2])
if not a or a.keys() != b.keys() or any(len(a[k]) != len(b[k]) for k in a):
    sys.exit("max_rel_diff: %s and %s hold different tensors" % (sys.argv[1], sys.argv[2]))
worst = 0.0
for k in a:
    scale = max(max(abs(x) for x in a[k]), 1e-30)
    worst = max(worst, max(abs(x - y) for x, y in zip(a[k], b[k])) / scale)
print("%.3g" % worst)
