"""PyTorch (CPU) side of `bench/compare.mjs`.

Runs as a long-lived subprocess of the Node driver, so that PyTorch samples can
be interleaved with the in-process ones. Protocol: one JSON object per line on
stdin, one JSON object per line on stdout.

  {"cmd": "info"}                                   -> versions and threads
  {"cmd": "setup", "case": NAME, "inputs": {k: {"path", "shape"}}, "dir": D}
      -> loads the raw float32 inputs (NCDHW, written by the driver), runs the
         case once and writes its outputs to D: {"outputs": {k: {"path", "shape"}}}
  {"cmd": "time", "case": NAME, "inner": N}
      -> runs the case N times: {"wall_ms": ..., "cpu_ms": ...} for the N runs
  {"cmd": "free", "case": NAME}
  {"cmd": "quit"}

Usage: /usr/bin/python3 torch_peer.py THREADS
"""
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

THREADS = int(sys.argv[1]) if len(sys.argv) > 1 else 2
torch.set_num_threads(THREADS)
torch.set_grad_enabled(False)


def load(spec):
    a = np.fromfile(spec["path"], dtype="<f4").reshape(spec["shape"])
    return torch.from_numpy(a.copy())


def save(d, name, t):
    path = os.path.join(d, f"torch-{name}.f32")
    arr = t.detach().contiguous().to(torch.float32).numpy()
    arr.astype("<f4").tofile(path)
    return {"path": path, "shape": list(arr.shape)}


# ---------------------------------------------------------------------------
# cases: each builder takes the input dict and returns (run, outputs)
#   run():     the timed computation
#   outputs(): dict of tensors compared against ours (computed once, untimed)


def case_matmul(i):
    a, b = i["a"], i["b"]
    return (lambda: torch.matmul(a, b)), (lambda: {"y": torch.matmul(a, b)})


def case_conv_fwd(i):
    x, w = i["x"], i["w"]
    f = lambda: F.conv3d(x, w, padding=1)
    return f, (lambda: {"y": f()})


def case_conv_gi(i):
    dy, w, x = i["dy"], i["w"], i["x"]
    shape = list(x.shape)
    f = lambda: torch.nn.grad.conv3d_input(shape, w, dy, padding=1)
    return f, (lambda: {"dx": f()})


def case_conv_gw(i):
    x, dy, w = i["x"], i["dy"], i["w"]
    shape = list(w.shape)
    f = lambda: torch.nn.grad.conv3d_weight(x, shape, dy, padding=1)
    return f, (lambda: {"dw": f()})


def case_conv_fb(i):
    x, w, dy = i["x"], i["w"], i["dy"]

    def f():
        xx, ww = x.detach().requires_grad_(True), w.detach().requires_grad_(True)
        with torch.enable_grad():
            y = F.conv3d(xx, ww, padding=1)
            dx, dw = torch.autograd.grad(y, (xx, ww), dy)
        return y.detach(), dx, dw

    return f, (lambda: dict(zip(("y", "dx", "dw"), f())))


def case_instnorm(i):
    x = i["x"]
    f = lambda: F.instance_norm(x, eps=1e-5)
    return f, (lambda: {"y": f()})


def case_instnorm_fb(i):
    x, dy = i["x"], i["dy"]

    def f():
        xx = x.detach().requires_grad_(True)
        with torch.enable_grad():
            y = F.instance_norm(xx, eps=1e-5)
            (dx,) = torch.autograd.grad(y, (xx,), dy)
        return y.detach(), dx

    return f, (lambda: dict(zip(("y", "dx"), f())))


def case_cp(i):
    w, a_out, a_in, a_k = i["weights"], i["aOut"], i["aIn"], i["aKernel"]
    O, R = a_out.shape
    I, S = a_in.shape[0], a_k.shape[0]

    def f():
        # W[o, (i,s)] = sum_r (w_r aOut[o,r]) * (aIn[i,r] aKernel[s,r]): Khatri-Rao product then one GEMM
        kr = (a_in[:, None, :] * a_k[None, :, :]).reshape(I * S, R)
        return torch.matmul(a_out * w, kr.t()).reshape(O, I, S)

    return f, (lambda: {"W": f()})


PARAMS = ["w1", "b1", "g1", "be1", "w2", "b2", "g2", "be2", "wh", "bh"]


def case_train(i):
    x, target = i["x"], i["target"]
    params = [i[k].clone().requires_grad_(True) for k in PARAMS]
    w1, b1, g1, be1, w2, b2, g2, be2, wh, bh = params
    opt = torch.optim.SGD(params, lr=1e-2, momentum=0.99, nesterov=True)

    def loss_fn():
        h = F.leaky_relu(F.instance_norm(F.conv3d(x, w1, b1, padding=1), weight=g1, bias=be1, eps=1e-5), 0.01)
        h = F.leaky_relu(F.instance_norm(F.conv3d(h, w2, b2, padding=1), weight=g2, bias=be2, eps=1e-5), 0.01)
        p = torch.softmax(F.conv3d(h, wh, bh), dim=1)
        axes = (2, 3, 4)
        inter = (p * target).sum(axes)
        denom = p.sum(axes) + target.sum(axes)
        dice = (2 * inter + 1e-5) / (denom + 1e-5)
        return 1 - dice.mean()

    def step():
        with torch.enable_grad():
            opt.zero_grad(set_to_none=True)
            loss = loss_fn()
            loss.backward()
        opt.step()

    def outputs():
        with torch.enable_grad():
            for p in params:
                p.grad = None
            loss = loss_fn()
            loss.backward()
        out = {"loss": loss.detach().reshape(1)}
        for k, p in zip(PARAMS, params):
            out["grad_" + k] = p.grad.detach().clone()
            p.grad = None
        return out

    return step, outputs


CASES = {
    "matmul": case_matmul,
    "conv_fwd": case_conv_fwd,
    "conv_gi": case_conv_gi,
    "conv_gw": case_conv_gw,
    "conv_fb": case_conv_fb,
    "instnorm": case_instnorm,
    "instnorm_fb": case_instnorm_fb,
    "cp": case_cp,
    "train": case_train,
}

live = {}


def blas_libraries():
    """The BLAS shared objects actually mapped into this process (Debian's torch uses the system libblas.so.3)."""
    torch.matmul(torch.ones(64, 64), torch.ones(64, 64))  # make sure GEMM has been reached
    found = set()
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                path = line.split()[-1]
                name = os.path.basename(path)
                if "blas" in name or "mkl_rt" in name:
                    found.add(os.path.realpath(path))
    except OSError:
        pass
    return sorted(found)


def handle(msg):
    cmd = msg["cmd"]
    if cmd == "info":
        return {
            "torch": torch.__version__,
            "numpy": np.__version__,
            "threads": torch.get_num_threads(),
            "python": sys.version.split()[0],
            "parallel": torch.__config__.parallel_info().splitlines()[:8],
            "mkldnn": torch.backends.mkldnn.is_available(),
            "blas": blas_libraries(),
        }
    if cmd == "setup":
        inputs = {k: load(v) for k, v in msg["inputs"].items()}
        run, outputs = CASES[msg["kind"]](inputs)
        live[msg["case"]] = run
        t0 = time.perf_counter()
        outs = outputs()
        ms = (time.perf_counter() - t0) * 1e3
        return {"ms": ms, "outputs": {k: save(msg["dir"], f"{msg['case']}-{k}", t) for k, t in outs.items()}}
    if cmd == "time":
        run = live[msg["case"]]
        n = int(msg.get("inner", 1))
        c0, t0 = time.process_time(), time.perf_counter()
        for _ in range(n):
            run()
        wall = (time.perf_counter() - t0) * 1e3
        cpu = (time.process_time() - c0) * 1e3
        return {"wall_ms": wall, "cpu_ms": cpu}
    if cmd == "free":
        live.pop(msg["case"], None)
        return {}
    raise ValueError(f"unknown command {cmd}")


def main():
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        msg = json.loads(line)
        if msg.get("cmd") == "quit":
            break
        try:
            reply = handle(msg)
        except Exception as e:  # report to the driver instead of dying
            reply = {"error": f"{type(e).__name__}: {e}"}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
