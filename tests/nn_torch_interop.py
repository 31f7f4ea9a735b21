#!/usr/bin/python3
"""PyTorch interop of nabla's whole-model checkpoints (nb_layer_save / nb_layer_load).

usage: nn_torch_interop.py NN_INTEROP_BINARY WORKDIR

1. nabla saves a model (tests/nn_interop.c) and a fixed input/output pair;
2. this script reads the file (safetensors parsed here with json + struct + torch.frombuffer,
   so the `safetensors` package is not needed; it is used as well when installed), loads it with
   load_state_dict(strict=True) into the matching torch.nn module and checks torch's output on
   the same input against nabla's;
3. the script saves the torch module's state_dict (freshly initialised by torch) as safetensors,
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
        ("features", nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Flatten(),
                                   nn.Linear(16, 6, bias=False))),
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
    m.load_state_dict(state, strict=True)
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
    t = model().eval()
    with torch.no_grad():
        yt = t(io["x"])
    write_safetensors(os.path.join(work, "torch_model.safetensors"), t.state_dict())
    write_safetensors(os.path.join(work, "torch_io.safetensors"), {"y": yt})
    subprocess.run([binary, "check", work], check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
