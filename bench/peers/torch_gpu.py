"""PyTorch on CUDA: the GPU bench's workloads (bench/gpu-compare.mjs), timed
the same way (median over rounds of ms per call, the stream synchronized
after each sample), for the real-GPU table in docs/bench.md.

Usage: python3 torch_gpu.py OUT.json [--reps 5]
Inputs are random (shapes as in bench/lib/cases.mjs): this script times the
peer; the agreement of outputs is checked against tfjs in gpu-compare.mjs.
"""
import json
import sys
import time

import torch
import torch.nn.functional as F


def median(xs):
    s = sorted(xs)
    m = len(s) // 2
    return s[m] if len(s) % 2 else (s[m - 1] + s[m]) / 2


def timed(fn, reps, sample_ms=200.0, max_inner=64):
    fn()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    fn()
    torch.cuda.synchronize()
    one = (time.perf_counter() - t0) * 1000
    inner = max(1, min(max_inner, round(sample_ms / max(one, 1e-3))))
    out = []
    for _ in range(reps):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        torch.cuda.synchronize()
        out.append((time.perf_counter() - t0) * 1000 / inner)
    return median(out)


def cases(dev):
    g = torch.Generator(device="cpu").manual_seed(0)
    r = lambda *s: torch.randn(*s, generator=g).to(dev)
    out = {}
    for n in (256, 1024):
        a, b = r(n, n), r(n, n)
        out[f"matmul-{n}x{n}x{n}"] = lambda a=a, b=b: a @ b
    for tag, xs, ws in (("unet", (2, 16, 32, 32, 32), (16, 16, 3, 3, 3)), ("largo", (1, 32, 16, 16, 16), (64, 32, 3, 3, 3)),
                        ("stage", (1, 32, 32, 32, 32), (32, 32, 3, 3, 3))):
        x, w = r(*xs), r(*ws)
        dy = r(xs[0], ws[0], *xs[2:])
        out[f"conv3d-fwd-{tag}"] = lambda x=x, w=w: F.conv3d(x, w, padding=1)
        out[f"conv3d-gi-{tag}"] = lambda dy=dy, w=w, xs=xs: torch.nn.grad.conv3d_input(xs, w, dy, padding=1)
        out[f"conv3d-gw-{tag}"] = lambda x=x, dy=dy, ws=ws: torch.nn.grad.conv3d_weight(x, ws, dy, padding=1)
    for shp in ((2, 32, 32, 32, 32), (1, 32, 32, 32, 32)):
        x = r(*shp)
        out["instnorm-" + "x".join(map(str, shp))] = lambda x=x: F.instance_norm(x, eps=1e-5)

    # the U-Net block training step of bench/lib/cases.mjs (trainCase(2, 4, 16, 3, 32))
    n, cin, f, k, sp = 2, 4, 16, 3, 32
    xin = r(n, cin, sp, sp, sp)
    lab = torch.randint(0, k, (n, sp, sp, sp), generator=g).to(dev)
    target = F.one_hot(lab, k).permute(0, 4, 1, 2, 3).float()
    ps = [r(f, cin, 3, 3, 3) * (2 / (cin * 27)) ** 0.5, r(f) * 0.1, 1 + 0.1 * r(f), 0.1 * r(f),
          r(f, f, 3, 3, 3) * (2 / (f * 27)) ** 0.5, r(f) * 0.1, 1 + 0.1 * r(f), 0.1 * r(f),
          r(k, f, 1, 1, 1) * (2 / f) ** 0.5, torch.zeros(k, device=dev)]
    for p in ps:
        p.requires_grad_(True)
    opt = torch.optim.SGD(ps, lr=1e-2, momentum=0.99, nesterov=True)

    def step():
        w1, b1, g1, be1, w2, b2, g2, be2, wh, bh = ps
        opt.zero_grad()
        h = F.leaky_relu(F.instance_norm(F.conv3d(xin, w1, b1, padding=1), weight=g1, bias=be1, eps=1e-5), 0.01)
        h = F.leaky_relu(F.instance_norm(F.conv3d(h, w2, b2, padding=1), weight=g2, bias=be2, eps=1e-5), 0.01)
        p = torch.softmax(F.conv3d(h, wh, bh), 1)
        inter = (p * target).sum((2, 3, 4))
        den = p.sum((2, 3, 4)) + target.sum((2, 3, 4))
        loss = 1 - ((2 * inter + 1e-5) / (den + 1e-5)).mean()
        loss.backward()
        opt.step()

    out["train-unet-block"] = step
    return out


def main():
    dest = sys.argv[1]
    reps = int(sys.argv[sys.argv.index("--reps") + 1]) if "--reps" in sys.argv else 5
    if not torch.cuda.is_available():
        raise SystemExit("torch_gpu.py: CUDA is not available to PyTorch")
    dev = torch.device("cuda")
    torch.backends.cudnn.benchmark = True
    res = {}
    for name, fn in cases(dev).items():
        with torch.set_grad_enabled(name.startswith("train")):
            res[name] = timed(fn, reps)
        print(f"torch-cuda {name}: {res[name]:.3f} ms", flush=True)
    info = {"torch": torch.__version__, "cuda": torch.version.cuda, "device": torch.cuda.get_device_name(0), "cudnn": torch.backends.cudnn.version()}
    with open(dest, "w") as fh:
        json.dump({"info": info, "ms": res}, fh, indent=2)


if __name__ == "__main__":
    main()
