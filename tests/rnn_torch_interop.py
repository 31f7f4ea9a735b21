#!/usr/bin/python3
"""The recurrent layers (nb_nn_rnn_create / gru / lstm) against torch.nn.RNN, GRU and LSTM.

usage: rnn_torch_interop.py RNN_INTEROP_BINARY WORKDIR

For every mode (tanh and relu RNN, GRU, LSTM) and a few variants (2 layers with initial states,
1 layer without biases or states, float32), torch initialises a module; its state_dict, an
input x (T, B, F), the initial states and upstream gradients are written as safetensors; the
helper (tests/rnn_interop.c) loads them by name, runs forward and backward through the tape and
writes its outputs and every gradient; they must match torch's (float64: 1e-10, float32: 1e-5
relative). Then nabla's own initialised layer must load into torch with
load_state_dict(strict=True). Exit 0 on success, 77 (skipped) without torch, 1 on a mismatch.
"""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
try:
    import torch
except ImportError:
    print("rnn_torch_interop: torch not importable, skipped")
    sys.exit(77)
from nn_torch_interop import read_safetensors, write_safetensors  # noqa: E402

T, B, F, H = 7, 3, 5, 4


def module(mode, layers, bias):
    nn = torch.nn
    if mode in ("tanh", "relu"):
        return nn.RNN(F, H, layers, nonlinearity=mode, bias=bias)
    return (nn.GRU if mode == "gru" else nn.LSTM)(F, H, layers, bias=bias)


def check_case(binary, work, mode, layers, bias, dtype, states, seed):
    torch.manual_seed(seed)
    tdt = torch.float64 if dtype == "f64" else torch.float32
    m = module(mode, layers, bias).to(tdt)
    x = torch.randn(T, B, F, dtype=tdt, requires_grad=True)
    feed = {"x": x, "gy": torch.randn(T, B, H, dtype=tdt),
            "ghn": torch.randn(layers, B, H, dtype=tdt)}
    if mode == "lstm":
        feed["gcn"] = torch.randn(layers, B, H, dtype=tdt)
    if states:
        feed["h0"] = torch.randn(layers, B, H, dtype=tdt, requires_grad=True)
        if mode == "lstm":
            feed["c0"] = torch.randn(layers, B, H, dtype=tdt, requires_grad=True)
    tag = "%s_l%d_b%d_%s_s%d" % (mode, layers, bias, dtype, states)
    fin, fout = os.path.join(work, tag + "_in.safetensors"), os.path.join(work, tag + "_out.safetensors")
    write_safetensors(fin, dict(list(m.state_dict().items()) + list(feed.items())))
    subprocess.run([binary, "run", mode, str(layers), str(int(bias)), dtype, fin, fout], check=True)
    got = read_safetensors(fout)

    if mode == "lstm":
        init = (feed["h0"], feed["c0"]) if states else None
        y, (hn, cn) = m(x, init)
    else:
        y, hn = m(x, feed["h0"] if states else None)
        cn = None
    loss = (y * feed["gy"]).sum() + (hn * feed["ghn"]).sum()
    if cn is not None:
        loss = loss + (cn * feed["gcn"]).sum()
    loss.backward()
    want = {"y": y, "h_n": hn, "grad.x": x.grad}
    if cn is not None:
        want["c_n"] = cn
    if states:
        want["grad.h0"] = feed["h0"].grad
        if mode == "lstm":
            want["grad.c0"] = feed["c0"].grad
    for name, p in m.named_parameters():
        want["grad." + name] = p.grad
    if set(want) != set(got):
        print("rnn_torch_interop: %s: tensors differ: nabla %s, torch %s" % (tag, sorted(got), sorted(want)))
        return 1
    rtol, atol = (1e-9, 1e-10) if dtype == "f64" else (1e-5, 1e-5)
    worst = 0.0
    for name, w in want.items():
        w = w.detach()
        if got[name].shape != w.shape or not torch.allclose(got[name], w, rtol=rtol, atol=atol):
            print("rnn_torch_interop: %s: %s differs: max diff %.3g" % (tag, name, (got[name] - w).abs().max().item()))
            return 1
        worst = max(worst, (got[name] - w).abs().max().item())
    print("rnn_torch_interop: %-24s %2d tensors agree (max diff %.2g)" % (tag, len(want), worst))
    return 0


def check_init(binary, work, mode, layers, bias):
    path = os.path.join(work, "init_%s.safetensors" % mode)
    subprocess.run([binary, "init", mode, str(layers), str(int(bias)), path], check=True)
    state = read_safetensors(path)
    m = module(mode, layers, bias)
    m.load_state_dict(state, strict=True)  # raises on a missing, extra or misshapen tensor
    bound = 1 / H ** 0.5
    if any(t.abs().max().item() > bound for t in state.values()):
        print("rnn_torch_interop: %s: initial values outside torch's U(-1/sqrt(H), 1/sqrt(H))" % mode)
        return 1
    print("rnn_torch_interop: nabla's %s (%d layers) loads with load_state_dict(strict=True)" % (mode, layers))
    return 0


def main():
    binary, work = sys.argv[1], sys.argv[2]
    os.makedirs(work, exist_ok=True)
    torch.set_num_threads(1)
    bad = 0
    for k, mode in enumerate(("tanh", "relu", "gru", "lstm")):
        bad |= check_case(binary, work, mode, 2, True, "f64", True, 10 * k)
        bad |= check_case(binary, work, mode, 1, False, "f64", False, 10 * k + 1)
        bad |= check_case(binary, work, mode, 2, True, "f32", True, 10 * k + 2)
        bad |= check_init(binary, work, mode, 2, True)
    return bad


if __name__ == "__main__":
    sys.exit(main())
