#!/usr/bin/env python3
"""Write numeric-audit fixtures with PyTorch: DIR/manifest.json + DIR/tensors.safetensors.

The format is described in docs/audit-format.md. In short: manifest.json lists cases
(op, params, which tensors are inputs / outputs / upstream cotangents / gradients, and the
tolerances rtol, atol); tensor T of case C is stored in tensors.safetensors as "C.T"
(float32; int64 for class labels). Reference values are computed in float64 from the
float32-rounded inputs, so a float32 engine that is right differs from them only by its own
rounding.

Regenerate the committed fixture folder (from the repository root):

    python3 scripts/make-fixtures.py --out fixtures/audit-default --seed 0 --scale small

and the safetensors interop fixture read by packages/core/test/safetensors.test.ts:

    python3 scripts/make-fixtures.py --interop-file packages/core/test/fixtures/torch-written.safetensors

Other modes:
    --dump FILE     print a .safetensors file's tensors as JSON (uses the `safetensors` package
                    when installed, else this script's own reader); the tests use it to check
                    that PyTorch reads what LARGO.ts writes.

Needs only PyTorch (Debian: apt-get install python3-torch) and the standard library; no pip
package. Different seeds give different shapes and parameters; a seed and scale give the same
fixture bytes on every run with the same PyTorch version.
"""

import argparse
import json
import math
import os
import struct
import sys

import torch
import torch.nn.functional as F

# --------------------------------------------------------------------------- safetensors I/O

# dtype code, struct format character, bytes per element
_DTYPES = {
    torch.float64: ('F64', 'd', 8),
    torch.float32: ('F32', 'f', 4),
    torch.float16: ('F16', 'H', 2),
    torch.bfloat16: ('BF16', 'H', 2),
    torch.int64: ('I64', 'q', 8),
    torch.int32: ('I32', 'i', 4),
    torch.int16: ('I16', 'h', 2),
    torch.int8: ('I8', 'b', 1),
    torch.uint8: ('U8', 'B', 1),
    torch.bool: ('BOOL', 'B', 1),
}
_CODE_TO_TORCH = {code: dt for dt, (code, _, _) in _DTYPES.items()}
# Position in the reference implementation's Dtype enum (ordered by alignment): the writer
# sorts tensors by descending rank, then by name.
_RANK = {'BOOL': 0, 'U8': 1, 'I8': 2, 'I16': 5, 'U16': 6, 'F16': 7, 'BF16': 8, 'I32': 9,
         'U32': 10, 'F32': 11, 'F64': 12, 'I64': 13, 'U64': 14}
_SIZE = {code: size for (code, _, size) in _DTYPES.values()}


def _tensor_bytes(t):
    t = t.detach().contiguous().cpu()
    code, fmt, _ = _DTYPES[t.dtype]
    if t.dtype in (torch.float16, torch.bfloat16):
        vals = [v & 0xFFFF for v in t.view(torch.int16).reshape(-1).tolist()]
    elif t.dtype == torch.bool:
        vals = [1 if v else 0 for v in t.reshape(-1).tolist()]
    else:
        vals = t.reshape(-1).tolist()
    return code, struct.pack('<%d%s' % (len(vals), fmt), *vals)


def write_safetensors(path, tensors, metadata=None):
    """Write a dict name -> torch.Tensor as safetensors, laid out like the reference writer.

    Written to PATH.tmp-PID, fsynced, then renamed over PATH.
    """
    items = []
    for name, t in tensors.items():
        code, data = _tensor_bytes(t)
        items.append((name, code, [int(s) for s in t.shape], data))
    items.sort(key=lambda it: (-_RANK[it[1]], it[0].encode('utf-8')))
    header = {}
    if metadata is not None:
        header['__metadata__'] = {k: str(metadata[k]) for k in sorted(metadata, key=lambda k: k.encode('utf-8'))}
    offset = 0
    for name, code, shape, data in items:
        header[name] = {'dtype': code, 'shape': shape, 'data_offsets': [offset, offset + len(data)]}
        offset += len(data)
    hb = json.dumps(header, separators=(',', ':'), ensure_ascii=False).encode('utf-8')
    hb += b' ' * (-len(hb) % 8)
    tmp = '%s.tmp-%d' % (path, os.getpid())
    with open(tmp, 'wb') as f:
        f.write(struct.pack('<Q', len(hb)))
        f.write(hb)
        for _, _, _, data in items:
            f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_safetensors(path):
    """Read a safetensors file into (dict name -> torch.Tensor, metadata), checking it as the
    reference reader does."""
    with open(path, 'rb') as f:
        buf = f.read()
    if len(buf) < 8:
        raise ValueError('%s: truncated (%d bytes)' % (path, len(buf)))
    (n,) = struct.unpack('<Q', buf[:8])
    if 8 + n > len(buf):
        raise ValueError('%s: header length %d beyond the file' % (path, n))
    header = json.loads(buf[8:8 + n].decode('utf-8'))
    metadata = header.pop('__metadata__', None) or {}
    data = buf[8 + n:]
    spans = sorted((tuple(info['data_offsets']), name) for name, info in header.items())
    pos = 0
    for (b, e), name in spans:
        if b != pos or e < b:
            raise ValueError('%s: bad data_offsets for %r' % (path, name))
        pos = e
    if pos != len(data):
        raise ValueError('%s: data_offsets do not cover the data buffer' % path)
    out = {}
    for name, info in header.items():
        code, shape = info['dtype'], info['shape']
        b, e = info['data_offsets']
        count = math.prod(shape)
        if e - b != count * _SIZE[code]:
            raise ValueError('%s: %r: shape/dtype do not match its byte range' % (path, name))
        dt = _CODE_TO_TORCH[code]
        if count == 0:
            t = torch.zeros(shape, dtype=dt)
        else:
            t = torch.frombuffer(bytearray(data[b:e]), dtype=dt).reshape(shape)
            if sys.byteorder != 'little' and _SIZE[code] > 1:
                raise ValueError('big-endian hosts are not supported by this reader')
        out[name] = t
    return out, metadata


def dump(path):
    """Print a safetensors file as JSON: values as strings (repr of float / int)."""
    try:
        from safetensors.torch import load_file  # the reference reader, when installed
        from safetensors import safe_open
        tensors = load_file(path)
        with safe_open(path, framework='pt') as f:
            metadata = f.metadata() or {}
        reader = 'safetensors'
    except ImportError:
        tensors, metadata = read_safetensors(path)
        reader = 'make-fixtures.py'
    out = {}
    for name, t in tensors.items():
        code = _DTYPES[t.dtype][0]
        if t.dtype in (torch.float16, torch.bfloat16):
            vals = [repr(v) for v in t.double().reshape(-1).tolist()]
        elif t.dtype == torch.bool:
            vals = ['1' if v else '0' for v in t.reshape(-1).tolist()]
        else:
            vals = [repr(v) for v in t.reshape(-1).tolist()]
        out[name] = {'dtype': code, 'shape': list(t.shape), 'values': vals}
    json.dump({'reader': reader, 'metadata': metadata, 'tensors': out}, sys.stdout)
    sys.stdout.write('\n')


def write_interop_file(path):
    """A small file covering every dtype, 0-d and empty tensors, a non-ASCII name and
    metadata; packages/core/test/safetensors.test.ts knows the exact values."""
    tensors = {
        'f64': torch.tensor([[-1.5, 0.0, 2.0 ** -1074], [1e300, -0.0, math.pi]], dtype=torch.float64),
        'f32': (torch.arange(24, dtype=torch.float32) / 4 - 3).reshape(2, 3, 4),
        'f16': torch.tensor([0.0, -2.5, 65504.0, 2.0 ** -24, 1.0 / 3.0], dtype=torch.float16),
        'bf16': torch.tensor([1.0, -3.140625, 2.0 ** 100, -(2.0 ** -130)], dtype=torch.bfloat16),
        'i64': torch.tensor([-(2 ** 40), 0, 2 ** 53 + 1], dtype=torch.int64),
        'labels': torch.tensor([[0, 1], [2, 3]], dtype=torch.int64),
        'i32': torch.tensor([-(2 ** 31), 7, 2 ** 31 - 1], dtype=torch.int32),
        'i16': torch.tensor([-32768, 32767], dtype=torch.int16),
        'i8': torch.tensor([-128, 0, 127], dtype=torch.int8),
        'u8': torch.tensor([[0, 1], [200, 255]], dtype=torch.uint8),
        'mask': torch.tensor([True, False, True]),
        'scalar': torch.tensor(42.5, dtype=torch.float32),
        'empty': torch.zeros((0, 3), dtype=torch.float32),
        'conv.weight': torch.tensor([1.0, 2.0], dtype=torch.float32),
        'b\u00fcro.\u00e9t\u00e9': torch.tensor([1.0], dtype=torch.float32),
    }
    write_safetensors(path, tensors, {'format': 'pt', 'written_by': 'scripts/make-fixtures.py'})


# --------------------------------------------------------------------------- random draws


class Draw:
    """Seeded draws of integers, choices and float64 tensors rounded to float32."""

    def __init__(self, seed):
        self.g = torch.Generator().manual_seed(seed)

    def int(self, lo, hi):
        """Uniform integer in [lo, hi]."""
        return int(torch.randint(lo, hi + 1, (1,), generator=self.g))

    def choice(self, options):
        return options[self.int(0, len(options) - 1)]

    def ints(self, n, lo, hi):
        return [self.int(lo, hi) for _ in range(n)]

    def normal(self, shape, std=1.0, mean=0.0):
        x = torch.randn(shape, generator=self.g, dtype=torch.float64) * std + mean
        return x.float().double()  # the stored float32 value is the true input

    def uniform(self, shape, lo=0.0, hi=1.0):
        x = torch.rand(shape, generator=self.g, dtype=torch.float64) * (hi - lo) + lo
        return x.float().double()

    def labels(self, shape, classes):
        return torch.randint(0, classes, shape, generator=self.g, dtype=torch.int64)


SCALES = {
    # batch, channels, 3-D spatial extent, 2-D spatial extent, matmul dims
    'small': dict(n=(1, 2), c=(1, 4), s3=(3, 6), s2=(4, 9), m=(1, 9)),
    'medium': dict(n=(2, 3), c=(2, 8), s3=(6, 12), s2=(8, 24), m=(8, 48)),
}


def sig(x, digits=1):
    """Round x up to `digits` significant digits (tolerances are only ever loosened)."""
    if x <= 0:
        return x
    e = math.floor(math.log10(x)) - digits + 1
    return math.ceil(x / 10 ** e - 1e-9) * 10 ** e


def tolerances(reduction, scale):
    """rtol grows with the square root of the longest reduction (float32 rounding error of a
    sum of L terms grows like sqrt(L) typically); atol is relative to the typical magnitude
    (RMS) of the values compared."""
    r = math.sqrt(max(1, reduction))
    rtol = min(1e-3, max(1e-4, 2e-5 * r))
    atol = min(1e-4, max(1e-5, 2e-6 * r)) * max(1.0, scale)
    return float('%.1g' % sig(rtol)), float('%.1g' % sig(atol))


# --------------------------------------------------------------------------- case builder


class Builder:
    def __init__(self, draw, scale, check=True):
        self.d = draw
        self.sc = SCALES[scale]
        self.cases = []
        self.tensors = {}
        self.check = check
        self.report = []

    def rng(self, key):
        lo, hi = self.sc[key]
        return self.d.int(lo, hi)

    def add(self, name, op, params, inputs, fn, grad_inputs, reduction, no_upstream=False):
        """inputs: ordered dict name -> float64 tensor (or int64 labels);
        fn(**inputs) -> dict output name -> tensor; grad_inputs: input names to differentiate."""
        leaves = {}
        for k, v in inputs.items():
            if k in grad_inputs:
                leaves[k] = v.detach().clone().requires_grad_(True)
            else:
                leaves[k] = v
        outs = fn(**leaves)
        upstream = {}
        for k, y in outs.items():
            if y.dim() == 0:
                upstream[k] = None  # scalar output: the gradient of y itself (cotangent 1)
            else:
                upstream[k] = self.d.normal(tuple(y.shape))
        grads = torch.autograd.grad(
            [outs[k] for k in outs],
            [leaves[k] for k in grad_inputs],
            grad_outputs=[upstream[k] if upstream[k] is not None else torch.ones((), dtype=torch.float64)
                          for k in outs],
        )
        grads = dict(zip(grad_inputs, grads))

        checked = [y.detach() for y in outs.values()] + [g for g in grads.values()]
        rms = max(float(t.pow(2).mean().sqrt()) if t.numel() else 0.0 for t in checked)
        rtol, atol = tolerances(reduction, rms)

        case = {'name': name, 'op': op, 'params': params, 'inputs': list(inputs),
                'outputs': list(outs)}
        ups = {k: 'g' + k for k, u in upstream.items() if u is not None}
        if ups:
            case['upstream'] = ups
        case['grads'] = {k: 'g' + k for k in grad_inputs}
        case['rtol'] = rtol
        case['atol'] = atol

        def put(local, t):
            key = '%s.%s' % (name, local)
            assert key not in self.tensors, key
            self.tensors[key] = t.detach().to(torch.int64 if not t.is_floating_point() else torch.float32)

        for k, v in inputs.items():
            put(k, v)
        for k, y in outs.items():
            put(k, y)
        for k, u in upstream.items():
            if u is not None:
                put('g' + k, u)
        for k, g in grads.items():
            put('g' + k, g)
        self.cases.append(case)

        if self.check:
            self._check_float32(case, inputs, fn, grad_inputs, outs, upstream, grads)

    def _check_float32(self, case, inputs, fn, grad_inputs, outs, upstream, grads):
        """PyTorch's own float32 result must pass the case's tolerance with a 4x margin."""
        leaves = {}
        for k, v in inputs.items():
            if v.is_floating_point():
                leaves[k] = v.float().detach().clone().requires_grad_(k in grad_inputs)
            else:
                leaves[k] = v
        o32 = fn(**leaves)
        g32 = torch.autograd.grad(
            [o32[k] for k in o32], [leaves[k] for k in grad_inputs],
            grad_outputs=[upstream[k].float() if upstream[k] is not None else torch.ones(()) for k in o32])
        worst = 0.0
        pairs = [(outs[k].detach(), o32[k].detach()) for k in outs] + \
                [(grads[k], g.detach()) for k, g in zip(grad_inputs, g32)]
        for want, got in pairs:
            want32 = want.float().double()  # the stored reference
            err = (got.double() - want32).abs() / (case['atol'] + case['rtol'] * want32.abs())
            if err.numel():
                worst = max(worst, float(err.max()))
        self.report.append((case['name'], worst))
        if worst > 0.25:
            raise AssertionError('%s: float32 PyTorch uses %.2f of the tolerance (want <= 0.25)'
                                 % (case['name'], worst))


def conv_out(s, k, stride, pad, dil):
    return (s + 2 * pad - dil * (k - 1) - 1) // stride + 1


def draw_conv_geometry(d, dims, size_range, stride_opts, pad_opts, dil_opts, kernel_opts, force):
    """Per-axis kernel, stride, padding, dilation and an input size that gives an output >= 1.
    `force` in {None, 'stride', 'dilation'} makes at least one axis use 2 for it."""
    k = [d.choice(kernel_opts) for _ in range(dims)]
    st = [d.choice(stride_opts) for _ in range(dims)]
    dl = [d.choice(dil_opts) for _ in range(dims)]
    pd = [d.choice(pad_opts) for _ in range(dims)]
    if force == 'stride' and 2 not in st:
        st[d.int(0, dims - 1)] = 2
    if force == 'dilation' and 2 not in dl:
        ax = d.int(0, dims - 1)
        dl[ax] = 2
        k[ax] = max(k[ax], 2)
    size = []
    for a in range(dims):
        s = d.int(*size_range)
        while conv_out(s, k[a], st[a], pd[a], dl[a]) < 1:
            s += 1
        size.append(s)
    return k, st, pd, dl, size


def build(draw, scale, check=True):
    b = Builder(draw, scale, check)
    d = draw

    # ---- matmul: a [.., M, K] @ b [K, N] (PyTorch broadcasting)
    for name, kind in (('matmul_a', '2d'), ('matmul_b', 'batched'), ('matmul_c', 'broadcast')):
        M, K, N = b.rng('m'), b.rng('m'), b.rng('m')
        B = d.int(2, 3)
        if kind == '2d':
            sa, sb = (M, K), (K, N)
        elif kind == 'batched':
            sa, sb = (B, M, K), (B, K, N)
        else:
            sa, sb = (B, M, K), (K, N)
        A, Bm = d.normal(sa), d.normal(sb, std=1 / math.sqrt(K))
        bat = B if kind != '2d' else 1
        b.add(name, 'matmul', {}, {'a': A, 'b': Bm},
              lambda a, b: {'y': torch.matmul(a, b)}, ['a', 'b'],
              reduction=max(K, N, M * bat))

    # ---- conv3d / conv2d
    for op, dims, srange in (('conv3d', 3, 's3'), ('conv2d', 2, 's2')):
        conv = F.conv3d if dims == 3 else F.conv2d
        variants = (
            ('a', dict(stride_opts=[1], pad_opts=[1], dil_opts=[1], kernel_opts=[3], force=None), True),
            ('b', dict(stride_opts=[1, 2], pad_opts=[0, 1, 2], dil_opts=[1], kernel_opts=[1, 2, 3], force='stride'), True),
            ('c', dict(stride_opts=[1, 2], pad_opts=[0, 1, 2], dil_opts=[1, 2], kernel_opts=[1, 2, 3], force='dilation'), False),
        )
        for tag, geo, bias in variants:
            k, st, pd, dl, size = draw_conv_geometry(d, dims, b.sc[srange], **geo)
            N, C, O = b.rng('n'), b.rng('c'), b.rng('c')
            kvol = math.prod(k)
            x = d.normal((N, C, *size))
            w = d.normal((O, C, *k), std=1 / math.sqrt(C * kvol))
            inputs = {'x': x, 'w': w}
            if bias:
                inputs['b'] = d.normal((O,), std=0.1)
            params = {'stride': st, 'padding': pd, 'dilation': dl}
            out_vol = N * math.prod(conv_out(size[a], k[a], st[a], pd[a], dl[a]) for a in range(dims))

            def fn(x, w, b=None, conv=conv, st=st, pd=pd, dl=dl):
                return {'y': conv(x, w, b, stride=st, padding=pd, dilation=dl)}
            b.add('%s_%s' % (op, tag), op, params, inputs, fn, list(inputs),
                  reduction=max(C * kvol, O * kvol, out_vol))

    # ---- conv_transpose3d: weight [Cin, Cout, kd, kh, kw]
    variants = (
        ('a', lambda: ([2, 2, 2], [2, 2, 2], [0, 0, 0], [0, 0, 0]), True),
        ('b', lambda: ([3, 3, 3], [2, 2, 2], [1, 1, 1], [1, 1, 1]), True),
        ('c', None, False),
    )
    for tag, fixed, bias in variants:
        if fixed is not None:
            k, st, pd, op_ = fixed()
        else:
            k = [d.int(1, 3) for _ in range(3)]
            st = [d.int(1, 2) for _ in range(3)]
            pd = [d.int(0, min(2, k[a] - 1)) for a in range(3)]
            op_ = [d.int(0, st[a] - 1) for a in range(3)]
        size = [d.int(*b.sc['s3']) for _ in range(3)]
        size = [max(s, 2) for s in size]
        N, Ci, Co = b.rng('n'), b.rng('c'), b.rng('c')
        kvol = math.prod(k)
        x = d.normal((N, Ci, *size))
        w = d.normal((Ci, Co, *k), std=1 / math.sqrt(Ci * kvol / math.prod(st)))
        inputs = {'x': x, 'w': w}
        if bias:
            inputs['b'] = d.normal((Co,), std=0.1)
        params = {'stride': st, 'padding': pd, 'output_padding': op_}
        out_size = [(size[a] - 1) * st[a] - 2 * pd[a] + k[a] + op_[a] for a in range(3)]
        assert min(out_size) >= 1

        def fn(x, w, b=None, st=st, pd=pd, op_=op_):
            return {'y': F.conv_transpose3d(x, w, b, stride=st, padding=pd, output_padding=op_)}
        b.add('conv_transpose3d_%s' % tag, 'conv_transpose3d', params, inputs, fn, list(inputs),
              reduction=max(Ci * kvol, Co * kvol, N * math.prod(size)))

    # ---- instance_norm (per sample and channel over the spatial axes; biased variance)
    for tag, dims, affine, eps in (('a', 3, True, 1e-5), ('b', 2, False, 1e-5), ('c', 3, None, 1e-3)):
        if affine is None:
            affine = bool(d.int(0, 1))
        N, C = b.rng('n'), b.rng('c')
        size = [d.int(*b.sc['s3' if dims == 3 else 's2']) for _ in range(dims)]
        x = d.normal((N, C, *size), std=2.0, mean=3.0)
        inputs = {'x': x}
        if affine:
            inputs['weight'] = d.normal((C,), std=0.5, mean=1.0)
            inputs['bias'] = d.normal((C,), std=0.5)

        def fn(x, weight=None, bias=None, eps=eps):
            return {'y': F.instance_norm(x, weight=weight, bias=bias, eps=eps)}
        b.add('instance_norm_%s' % tag, 'instance_norm', {'eps': eps}, inputs, fn, list(inputs),
              reduction=max(math.prod(size), N))

    # ---- leaky_relu (inputs kept away from the kink at 0)
    for tag, slope, dims in (('a', 0.01, 5), ('b', 0.2, 2)):
        shape = (b.rng('n'), b.rng('c'), *[d.int(*b.sc['s3']) for _ in range(dims - 2)])
        r = d.normal(shape)
        x = (torch.sign(r) * (r.abs() + 0.05)).float().double()
        b.add('leaky_relu_%s' % tag, 'leaky_relu', {'negative_slope': slope}, {'x': x},
              lambda x, s=slope: {'y': F.leaky_relu(x, negative_slope=s)}, ['x'], reduction=1)

    # ---- softmax / log_softmax
    for op, f in (('softmax', F.softmax), ('log_softmax', F.log_softmax)):
        shapes = (
            ('a', (b.rng('n'), b.rng('c') + 1, *[d.int(*b.sc['s3']) for _ in range(3)]), 1),
            ('b', (b.rng('m'), b.rng('m') + 1), -1),
            ('c', (d.int(2, 4), d.int(2, 4), d.int(2, 5)), None),
        )
        for tag, shape, dim in shapes:
            if dim is None:
                dim = d.int(-3, 2)
            x = d.normal(shape, std=2.0)
            b.add('%s_%s' % (op, tag), op, {'dim': dim}, {'x': x},
                  lambda x, f=f, dim=dim: {'y': f(x, dim=dim)}, ['x'], reduction=shape[dim])

    # ---- sum / mean
    for op, f in (('sum', torch.sum), ('mean', torch.mean)):
        s5 = (b.rng('n'), b.rng('c'), *[d.int(*b.sc['s3']) for _ in range(3)])
        s3 = (d.int(2, 5), d.int(2, 5), d.int(2, 5))
        nd = d.int(1, 3)
        rand_dims = sorted(set(d.int(0, 3) for _ in range(nd)))
        variants = (
            ('a', s5, [2, 3, 4], True),
            ('b', s3, 1, False),
            ('c', (d.int(2, 4), d.int(1, 4), d.int(2, 4), d.int(2, 4)), rand_dims, bool(d.int(0, 1))),
            ('d', s3, [0, 1, 2], False),
        )
        for tag, shape, dim, keepdim in variants:
            x = d.normal(shape)
            dims_ = dim if isinstance(dim, list) else [dim]
            red = math.prod(shape[i] for i in dims_)
            b.add('%s_%s' % (op, tag), op, {'dim': dim, 'keepdim': keepdim}, {'x': x},
                  lambda x, f=f, dim=dim, keepdim=keepdim: {'y': f(x, dim=dim, keepdim=keepdim)},
                  ['x'], reduction=red)

    # ---- cross_entropy (class indices, mean over all elements)
    for tag, spatial in (('a', 0), ('b', 3), ('c', 2)):
        N, C = b.rng('n') + 1, b.rng('c') + 1
        sp = [d.int(*b.sc['s3' if spatial == 3 else 's2']) for _ in range(spatial)]
        logits = d.normal((N, C, *sp), std=2.0)
        target = d.labels((N, *sp), C)
        b.add('cross_entropy_%s' % tag, 'cross_entropy', {}, {'logits': logits, 'target': target},
              lambda logits, target: {'loss': F.cross_entropy(logits, target)}, ['logits'],
              reduction=max(C, N * math.prod(sp)))

    # ---- bce_with_logits (mean over all elements)
    for tag, soft in (('a', False), ('b', True)):
        if soft:
            shape = (b.rng('m'), b.rng('m'))
            target = d.uniform(shape)
        else:
            shape = (b.rng('n'), b.rng('c'), *[d.int(*b.sc['s3']) for _ in range(3)])
            target = (d.uniform(shape) > 0.5).double()
        logits = d.normal(shape, std=3.0)
        n = math.prod(shape)
        b.add('bce_with_logits_%s' % tag, 'bce_with_logits', {}, {'logits': logits, 'target': target},
              lambda logits, target: {'loss': F.binary_cross_entropy_with_logits(logits, target)},
              ['logits'], reduction=n)

    # ---- soft_dice_loss
    for tag, batch_dice, smooth, dims in (('a', False, 1e-5, 3), ('b', True, 1e-5, 3), ('c', None, 1.0, 2)):
        if batch_dice is None:
            batch_dice = bool(d.int(0, 1))
        N, C = b.rng('n') + 1, b.rng('c') + 1
        sp = [d.int(*b.sc['s3' if dims == 3 else 's2']) for _ in range(dims)]
        probs = F.softmax(d.normal((N, C, *sp), std=2.0), dim=1).float().double()
        lab = d.labels((N, *sp), C)
        if tag == 'c':
            lab = torch.where(lab == C - 1, torch.zeros_like(lab), lab)  # one class absent
        target = F.one_hot(lab, C).movedim(-1, 1).double()

        def fn(probs, target, smooth=smooth, batch_dice=batch_dice):
            axes = list(range(2, probs.dim()))
            if batch_dice:
                axes = [0] + axes
            tp = (probs * target).sum(dim=axes)
            den = probs.sum(dim=axes) + target.sum(dim=axes)
            return {'loss': 1 - ((2 * tp + smooth) / (den + smooth)).mean()}
        b.add('soft_dice_loss_%s' % tag, 'soft_dice_loss', {'smooth': smooth, 'batch_dice': batch_dice},
              {'probs': probs, 'target': target}, fn, ['probs'],
              reduction=(N if batch_dice else 1) * math.prod(sp))

    # ---- cp_reconstruct: W[o,i,s] = sum_r weights[r] a_out[o,r] a_in[i,r] a_kernel[s,r]
    for tag, S in (('a', 27), ('b', 1), ('c', 8)):
        R, O, I = d.int(2, 8), b.rng('c') + 1, b.rng('c') + 1
        inputs = {
            'weights': d.normal((R,), std=0.5, mean=1.0),
            'a_out': d.normal((O, R), std=1 / math.sqrt(O)),
            'a_in': d.normal((I, R), std=1 / math.sqrt(I)),
            'a_kernel': d.normal((S, R), std=1 / math.sqrt(S)),
        }
        b.add('cp_reconstruct_%s' % tag, 'cp_reconstruct', {}, inputs,
              lambda weights, a_out, a_in, a_kernel: {
                  'W': torch.einsum('r,or,ir,sr->ois', weights, a_out, a_in, a_kernel)},
              list(inputs), reduction=max(R, O * I * S))
    return b


def manifest_text(manifest):
    """The manifest as JSON with one case per line (readable diffs)."""
    cases = [json.dumps(c, ensure_ascii=False) for c in manifest['cases']]
    return '{"version": %d, "cases": [\n%s\n]}\n' % (manifest['version'], ',\n'.join(cases))


def write_fixture_dir(out, seed, scale, check=True, verbose=False):
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(seed)
    b = build(Draw(seed), scale, check)
    manifest = {'version': 1, 'cases': b.cases}
    meta = {'generator': 'scripts/make-fixtures.py', 'seed': str(seed), 'scale': scale,
            'torch': torch.__version__, 'manifest_version': '1'}
    write_safetensors(os.path.join(out, 'tensors.safetensors'), b.tensors, meta)
    tmp = os.path.join(out, 'manifest.json.tmp-%d' % os.getpid())
    with open(tmp, 'w', encoding='utf-8') as f:
        f.write(manifest_text(manifest))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, os.path.join(out, 'manifest.json'))
    if verbose:
        for name, worst in b.report:
            print('%-24s float32 PyTorch uses %.3f of the tolerance' % (name, worst))
    print('wrote %d cases, %d tensors to %s' % (len(b.cases), len(b.tensors), out))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--out', help='fixture folder to write (manifest.json, tensors.safetensors)')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--scale', choices=sorted(SCALES), default='small')
    p.add_argument('--no-check', action='store_true',
                   help='skip the check that float32 PyTorch passes each tolerance with margin')
    p.add_argument('--verbose', action='store_true')
    p.add_argument('--interop-file', metavar='PATH', help='write the safetensors interop fixture')
    p.add_argument('--dump', metavar='FILE', help='print a .safetensors file as JSON')
    a = p.parse_args(argv)
    torch.set_num_threads(1)  # deterministic float32 self-check
    if a.dump:
        dump(a.dump)
        return
    if a.interop_file:
        write_interop_file(a.interop_file)
        if not a.out:
            return
    if not a.out:
        p.error('--out DIR is required (or --interop-file / --dump)')
    write_fixture_dir(a.out, a.seed, a.scale, check=not a.no_check, verbose=a.verbose)


if __name__ == '__main__':
    main()
