#!/usr/bin/python3
"""PyTorch interop of nabla's whole-model checkpoints (nb_layer_save / nb_layer_load).

usage: nn_torch_interop.py NN_INTEROP_BINARY WORKDIR

1. nabla saves a model (tests/nn_interop.c) and a fixed input/output pair;
2. this script reads the file (safetensors parsed here with json + struct + torch.frombuffer,
   so the `safetensors` package is not needed (Debian 12 does not package it); its
   safetensors.torch.load_file is compared as well when installed), loads it with
   load_state_dict(strict=True) into the matching torch.nn module (conv, batch norm with its
   running statistics and counter, pooling, dropout, layer norm, linear), checks that two
   training steps in torch from nabla's initial model give nabla's running statistics, and
   checks torch's eval output on the same input against nabla's;
3. the script saves the torch module's state_dict (initialised by torch, batch / layer norm
   tensors randomised; every tensor in its own dtype, num_batches_tracked int64) as safetensors,
   nabla loads it with nb_layer_load and must reproduce torch's output.
Exit 0 on success, 77 (skipped) when torch is not importable, 1 on any mismatch.
"""
import collections
import json
import os
import struct
import subprocess
import sys

try:
    import torch
except ImportError:
    print("nn_torch_interop: torch not importable, skipped")
    sys.exit(77)

DTYPES = {"F32": torch.float32, "F64": torch.float64, "I32": torch.int32, "I64": torch.int64}
NAMES = {v: k for k, v in DTYPES.items()}


def read_safetensors(path):
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n].decode("utf-8"))
    data = blob[8 + n:]
    out = collections.OrderedDict()
    for name, e in header.items():
        if name == "__metadata__":
            continue
        lo, hi = e["data_offsets"]
        t = torch.frombuffer(bytearray(data[lo:hi]), dtype=DTYPES[e["dtype"]])
        out[name] = t.reshape(e["shape"]).clone()
    return out


def write_safetensors(path, tensors):
    header, chunks, off = {}, [], 0
    for name, t in tensors.items():
        t = t.detach().contiguous().cpu()
        raw = t.numpy().tobytes()
        header[name] = {"dtype": NAMES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [off, off + len(raw)]}
        chunks.append(raw)
        off += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(chunks))


def model():
    nn = torch.nn
    return nn.Sequential(collections.OrderedDict([
        ("features", nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                                   nn.MaxPool2d(2), nn.AvgPool2d(3, 1, 1), nn.Dropout(0.5),
                                   nn.Flatten(), nn.LayerNorm(16), nn.Linear(16, 6, bias=False))),
        ("act", nn.ReLU()),
        ("head", nn.Linear(6, 3)),
    ]))


def main():
    binary, work = sys.argv[1], sys.argv[2]
    os.makedirs(work, exist_ok=True)
    subprocess.run([binary, "save", work], check=True)
    state = read_safetensors(os.path.join(work, "nabla_model.safetensors"))
    try:  # the reference reader agrees, when it is installed
        from safetensors.torch import load_file
        ref = load_file(os.path.join(work, "nabla_model.safetensors"))
        assert ref.keys() == state.keys() and all(torch.equal(ref[k], state[k]) for k in ref)
        print("nn_torch_interop: safetensors.torch.load_file reads the file")
    except ImportError:
        pass
    io = read_safetensors(os.path.join(work, "nabla_io.safetensors"))
    m = model()
    expected = set(m.state_dict().keys())
    if set(state.keys()) != expected:
        print("nn_torch_interop: names differ: nabla %s, torch %s"
              % (sorted(state.keys()), sorted(expected)))
        return 1
    # Every tensor in the file has the dtype of torch's own state_dict (num_batches_tracked
    # int64, not a narrower integer that load_state_dict would quietly widen).
    want = m.state_dict()
    bad = [(k, str(state[k].dtype), str(want[k].dtype)) for k in want if state[k].dtype != want[k].dtype]
    if bad:
        print("nn_torch_interop: dtypes differ from torch's state_dict (name, nabla, torch): %s" % bad)
        return 1
    m.load_state_dict(state, strict=True)
    bn = m.features[1]
    if bn.num_batches_tracked.dtype != torch.int64 or bn.num_batches_tracked.item() != 2:
        print("nn_torch_interop: num_batches_tracked %s, want int64 2" % bn.num_batches_tracked)
        return 1
    if bool((bn.running_mean == 0).any()) or bool((bn.running_var == 1).any()):
        print("nn_torch_interop: running statistics did not move: %s %s"
              % (bn.running_mean, bn.running_var))
        return 1
    # nabla's running statistics are PyTorch's: the initial model, two training forwards in
    # torch on the same input (dropout comes after batch norm, so its masks do not matter).
    m0 = model()
    m0.load_state_dict(read_safetensors(os.path.join(work, "nabla_init.safetensors")), strict=True)
    m0.train()
    with torch.no_grad():
        for _ in range(2):
            m0(io["x"])
    for name in ("running_mean", "running_var"):
        a, b = getattr(m0.features[1], name), getattr(bn, name)
        if not torch.allclose(a, b, rtol=1e-5, atol=1e-6):
            print("nn_torch_interop: %s after two training steps: torch %s, nabla %s" % (name, a, b))
            return 1
    print("nn_torch_interop: batch norm's running statistics match torch's after two training "
          "steps (max diff %.3g)" % max((m0.features[1].running_mean - bn.running_mean).abs().max(),
                                         (m0.features[1].running_var - bn.running_var).abs().max()))
    m.eval()
    with torch.no_grad():
        y = m(io["x"])
    if not torch.allclose(y, io["y"], rtol=1e-5, atol=1e-6):
        print("nn_torch_interop: outputs differ by %.3g" % (y - io["y"]).abs().max().item())
        return 1
    print("nn_torch_interop: nabla's checkpoint loads with load_state_dict(strict=True); "
          "outputs agree (max diff %.3g)" % (y - io["y"]).abs().max().item())

    # The other way: a torch-initialised module saved from its state_dict, loaded by nabla.
    torch.manual_seed(0)
    t = model()
    with torch.no_grad():  # tensors that start as ones / zeros moved away from their start
        for name, v in t.state_dict().items():
            if name.startswith(("features.1.", "features.7.")) and v.is_floating_point():
                v.uniform_(0.5, 1.5) if name.endswith(("var", "weight")) else v.uniform_(-0.5, 0.5)
        t.features[1].num_batches_tracked.fill_(7)
    t.eval()
    with torch.no_grad():
        yt = t(io["x"])
    # The state_dict as torch has it (num_batches_tracked int64), as safetensors.torch.save_file.
    write_safetensors(os.path.join(work, "torch_model.safetensors"), t.state_dict())
    write_safetensors(os.path.join(work, "torch_io.safetensors"), {"y": yt})
    subprocess.run([binary, "check", work], check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
