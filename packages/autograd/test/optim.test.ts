// SGD (momentum, dampening, Nesterov, weight decay) and Adam (L2 weight
// decay, amsgrad) against update loops written here in plain float64 JS, and
// against PyTorch when /usr/bin/python3 has torch; clipping and schedules.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import * as C from '@largo/core';
import { tensor, tidy, memory, type DType, type Tensor } from '@largo/core';
import {
  Adam,
  SGD,
  backward,
  noGrad,
  clipGradNorm,
  constantLr,
  cosineLr,
  polyLr,
  requireGrad,
  type Optimizer,
} from '@largo/autograd';
import { PYTHON, requirement } from '@largo/test-support';

// A small ill-conditioned quadratic: loss = ½ Σ a_i (p_i − c_i)² over two parameter tensors.
const P0 = [
  [0.5, -1.2, 2.0, 0.1],
  [1.5, -0.3],
];
const A = [
  [1, 4, 0.5, 10],
  [2, 0.25],
];
const Cc = [
  [0.2, 0.4, -1, 1],
  [-0.5, 3],
];
const STEPS = 8;

interface Case {
  name: string;
  kind: 'SGD' | 'Adam';
  opts: Record<string, unknown>;
}
const CASES: Case[] = [
  { name: 'SGD', kind: 'SGD', opts: { lr: 0.05 } },
  { name: 'SGD momentum', kind: 'SGD', opts: { lr: 0.05, momentum: 0.9 } },
  { name: 'SGD momentum + dampening', kind: 'SGD', opts: { lr: 0.05, momentum: 0.8, dampening: 0.3 } },
  {
    name: 'SGD Nesterov + weight decay',
    kind: 'SGD',
    opts: { lr: 0.05, momentum: 0.99, nesterov: true, weightDecay: 3e-2 },
  },
  { name: 'SGD weight decay', kind: 'SGD', opts: { lr: 0.05, weightDecay: 0.1 } },
  { name: 'Adam', kind: 'Adam', opts: { lr: 0.1 } },
  {
    name: 'Adam betas/eps + weight decay',
    kind: 'Adam',
    opts: { lr: 0.05, betas: [0.8, 0.99], eps: 1e-6, weightDecay: 0.1 },
  },
  { name: 'Adam amsgrad', kind: 'Adam', opts: { lr: 0.2, amsgrad: true } },
];

/** The reference: PyTorch's update equations, one parameter vector at a time, in float64. */
function reference(
  c: Case,
  steps: number,
  lrAt: (s: number) => number = () => Number(c.opts.lr ?? 1e-3),
): number[][][] {
  const o = c.opts as {
    momentum?: number;
    dampening?: number;
    nesterov?: boolean;
    weightDecay?: number;
    betas?: number[];
    eps?: number;
    amsgrad?: boolean;
  };
  const ps = P0.map((p) => [...p]);
  const buf: (number[] | null)[] = ps.map(() => null);
  const m = ps.map((p) => p.map(() => 0)),
    v = ps.map((p) => p.map(() => 0)),
    vmax = ps.map((p) => p.map(() => 0));
  const out: number[][][] = [];
  for (let s = 0; s < steps; s++) {
    const lr = lrAt(s);
    ps.forEach((p, k) => {
      const wd = o.weightDecay ?? 0;
      const g = p.map((x, i) => A[k][i] * (x - Cc[k][i]) + wd * x);
      if (c.kind === 'SGD') {
        const mu = o.momentum ?? 0,
          damp = o.dampening ?? 0;
        let d = g;
        if (mu !== 0) {
          const b = buf[k] === null ? [...g] : buf[k]!.map((bi, i) => mu * bi + (1 - damp) * g[i]);
          buf[k] = b;
          d = o.nesterov ? g.map((gi, i) => gi + mu * b[i]) : b;
        }
        for (let i = 0; i < p.length; i++) p[i] -= lr * d[i];
      } else {
        const [b1, b2] = o.betas ?? [0.9, 0.999],
          eps = o.eps ?? 1e-8,
          step = s + 1;
        for (let i = 0; i < p.length; i++) {
          m[k][i] = m[k][i] + (1 - b1) * (g[i] - m[k][i]);
          v[k][i] = b2 * v[k][i] + (1 - b2) * g[i] * g[i];
          vmax[k][i] = Math.max(vmax[k][i], v[k][i]);
          const second = o.amsgrad ? vmax[k][i] : v[k][i];
          const denom = Math.sqrt(second) / Math.sqrt(1 - b2 ** step) + eps;
          p[i] -= (lr / (1 - b1 ** step)) * (m[k][i] / denom);
        }
      }
    });
    out.push(ps.map((p) => [...p]));
  }
  return out;
}

function makeOpt(c: Case, params: Tensor[] | [string, Tensor][]): Optimizer {
  return c.kind === 'SGD' ? new SGD(params, c.opts as never) : new Adam(params, c.opts as never);
}

/** One step of the engine: loss by core ops, backward, optimizer update. */
function trainStep(opt: Optimizer, ps: Tensor[], dtype: DType): number {
  opt.zeroGrad();
  return tidy(() => {
    let loss: Tensor | null = null;
    ps.forEach((p, k) => {
      const d = C.sub(p, tensor(Float64Array.from(Cc[k]), [Cc[k].length], dtype));
      const term = C.mul(C.sum(C.mul(tensor(Float64Array.from(A[k]), [A[k].length], dtype), C.square(d))), 0.5);
      loss = loss ? C.add(loss, term) : term;
    });
    backward(loss!);
    opt.step();
    return loss!.item();
  });
}

function run(c: Case, dtype: DType, steps: number, lrAt?: (s: number) => number): number[][][] {
  const ps = P0.map((p, k) => requireGrad(tensor(Float64Array.from(p), [p.length], dtype)));
  const opt = makeOpt(c, [
    ['w', ps[0]],
    ['b', ps[1]],
  ]);
  const traj: number[][][] = [];
  for (let s = 0; s < steps; s++) {
    if (lrAt) opt.setLr(lrAt(s));
    trainStep(opt, ps, dtype);
    traj.push(ps.map((p) => Array.from(p.dataSync())));
  }
  opt.dispose();
  ps.forEach((p) => p.dispose());
  return traj;
}

function maxRelErr(got: number[][][], want: number[][][], atol: number): { err: number; where: string } {
  let err = 0,
    where = '';
  got.forEach((st, s) =>
    st.forEach((p, k) =>
      p.forEach((x, i) => {
        const y = want[s][k][i];
        const e = Math.abs(x - y) / (Math.abs(y) + atol);
        if (!(e < err) && (e > 0 || where === '')) {
          err = e;
          where = `step ${s + 1} param ${k}[${i}]: ${x} vs ${y}`;
        }
      }),
    ),
  );
  return { err, where };
}

for (const c of CASES) {
  t.test(`${c.name} matches the float64 reference`, async (t) => {
    const base = memory();
    const want = reference(c, STEPS);
    const r64 = maxRelErr(run(c, 'float64', STEPS), want, 1e-12);
    t.ok(r64.err < 1e-12, `float64: max rel err ${r64.err.toExponential(2)} (${r64.where})`);
    const r32 = maxRelErr(run(c, 'float32', STEPS), want, 1e-4);
    t.ok(r32.err < 1e-4, `float32: max rel err ${r32.err.toExponential(2)} (${r32.where})`);
    // The trajectory really moves (a no-op optimizer would fail above anyway, but say so plainly).
    t.notSame(want[STEPS - 1][0], P0[0]);
    t.same(memory(), base, 'parameters, grads and optimizer state all freed');
  });
}

t.test('setLr every step follows a schedule', async (t) => {
  for (const c of [CASES[3], CASES[5]]) {
    const lrAt = (s: number) => polyLr(0.1, s, STEPS);
    const r = maxRelErr(run(c, 'float64', STEPS, lrAt), reference(c, STEPS, lrAt), 1e-12);
    t.ok(r.err < 1e-12, `${c.name} with poly schedule: ${r.err.toExponential(2)} (${r.where})`);
  }
});

// PyTorch's own optimizers on the same problem, when /usr/bin/python3 has torch (one process, run once).
const TORCH_SCRIPT = `
import json, sys, torch
cfg = json.load(sys.stdin)
out = {}
for case in cfg['cases']:
    o = case['opts']
    ps = [torch.tensor(p, dtype=torch.float64, requires_grad=True) for p in cfg['p0']]
    a = [torch.tensor(x, dtype=torch.float64) for x in cfg['a']]
    c = [torch.tensor(x, dtype=torch.float64) for x in cfg['c']]
    if case['kind'] == 'SGD':
        opt = torch.optim.SGD(ps, lr=o['lr'], momentum=o.get('momentum', 0), dampening=o.get('dampening', 0),
                              weight_decay=o.get('weightDecay', 0), nesterov=o.get('nesterov', False))
    else:
        opt = torch.optim.Adam(ps, lr=o.get('lr', 1e-3), betas=tuple(o.get('betas', [0.9, 0.999])), eps=o.get('eps', 1e-8),
                               weight_decay=o.get('weightDecay', 0), amsgrad=o.get('amsgrad', False))
    traj = []
    for s in range(cfg['steps']):
        opt.zero_grad()
        loss = sum(0.5 * (ai * (p - ci) ** 2).sum() for p, ai, ci in zip(ps, a, c))
        loss.backward()
        opt.step()
        traj.append([p.detach().tolist() for p in ps])
    out[case['name']] = traj
print(json.dumps(out))
`;
const torchRun = spawnSync(PYTHON, ['-c', TORCH_SCRIPT], {
  input: JSON.stringify({ cases: CASES, p0: P0, a: A, c: Cc, steps: STEPS }),
  encoding: 'utf8',
  timeout: 120000,
});
// No python3, or `import torch` itself failed (line 2 of the script): skip (a failure under LARGO_REQUIRE_TORCH=1).
const noTorch =
  torchRun.error !== undefined ||
  (torchRun.status !== 0 && /No module named|line 2, in <module>/.test(torchRun.stderr ?? ''));

t.test(
  'agrees with PyTorch (when /usr/bin/python3 has torch)',
  {
    skip: requirement(
      'TORCH',
      noTorch &&
        `${PYTHON} cannot import torch (${(torchRun.error?.message ?? torchRun.stderr ?? '').trim().split('\n').pop()})`,
    ),
  },
  async (t) => {
    if (torchRun.status !== 0) {
      t.fail(`python3 failed: ${torchRun.stderr}`);
      return;
    }
    const torchOut = JSON.parse(torchRun.stdout) as Record<string, number[][][]>;
    for (const c of CASES) {
      const r = maxRelErr(run(c, 'float64', STEPS), torchOut[c.name], 1e-12);
      t.ok(r.err < 1e-9, `${c.name} vs torch: max rel err ${r.err.toExponential(2)} (${r.where})`);
    }
  },
);

t.test('state dict round trip resumes bitwise', async (t) => {
  const base = memory();
  for (const c of [CASES[3], CASES[7]]) {
    const ps = P0.map((p) => requireGrad(tensor(Float64Array.from(p), [p.length])));
    const opt = makeOpt(c, [
      ['w', ps[0]],
      ['b', ps[1]],
    ]);
    for (let s = 0; s < 3; s++) trainStep(opt, ps, 'float32');
    const sd = opt.stateDict();
    t.same(Object.keys(sd.steps).sort(), ['b', 'w']);
    t.same(sd.steps.w, 3);
    t.same(
      Object.keys(sd.slots).sort(),
      c.kind === 'SGD' ? ['momentum_buffer'] : ['exp_avg', 'exp_avg_sq', 'max_exp_avg_sq'],
    );
    // A second run from copies of the parameters and the loaded state.
    const qs = ps.map((p) => requireGrad(noGrad(() => C.clone(p))));
    const opt2 = makeOpt({ ...c, opts: { ...c.opts, lr: 123 } }, [
      ['w', qs[0]],
      ['b', qs[1]],
    ]);
    opt2.loadStateDict(sd);
    t.equal(opt2.lr, c.opts.lr, 'hyper-parameters restored');
    for (let s = 0; s < 4; s++) {
      trainStep(opt, ps, 'float32');
      trainStep(opt2, qs, 'float32');
    }
    ps.forEach((p, k) =>
      t.same(Array.from(qs[k].dataSync()), Array.from(p.dataSync()), `${c.name}: param ${k} identical after resuming`),
    );
    // The loaded state is a copy: disposing the source leaves the second optimizer intact.
    opt.dispose();
    trainStep(opt2, qs, 'float32');
    t.throws(() => opt2.loadStateDict({ ...opt2.stateDict(), type: 'Other' }), {
      name: 'OpError',
      message: /state is for Other/,
    });
    t.throws(() => opt2.loadStateDict({ ...opt2.stateDict(), steps: { zz: 1 } }), {
      name: 'OpError',
      message: /unknown parameter 'zz'/,
    });
    opt2.dispose();
    [...ps, ...qs].forEach((p) => p.dispose());
  }
  t.same(memory(), base);
});

t.test('optimizer bookkeeping', async (t) => {
  const base = memory();
  const a = requireGrad(tensor([1, 2])),
    b = requireGrad(tensor([3]));
  const opt = new SGD([a, b], { lr: 0.5, momentum: 0.9 });
  tidy(() => backward(C.sum(C.mul(a, a))));
  opt.step();
  t.same(Array.from(a.dataSync()), [0, 0], 'updated in place');
  t.same(Array.from(b.dataSync()), [3], 'a parameter without grad is left alone');
  t.same(Object.keys(opt.stateDict().steps), ['0'], 'and gets no state; unnamed parameters are keyed by index');
  const afterFirst = memory();
  for (let i = 0; i < 5; i++) {
    opt.zeroGrad();
    tidy(() => backward(C.sum(C.mul(a, a))));
    opt.step();
  }
  t.same(memory(), afterFirst, 'no growth across steps');
  opt.zeroGrad();
  t.equal(a.grad, null);
  opt.setLr(0.01);
  t.equal(opt.lr, 0.01);
  opt.dispose();
  a.dispose();
  b.dispose();
  t.same(memory(), base, 'dispose frees the momentum buffers');
  const p = requireGrad(tensor([1]));
  t.throws(() => new SGD([p], { lr: 0.1, nesterov: true }), {
    name: 'OpError',
    message: /^SGD: Nesterov momentum requires a momentum and zero dampening/,
  });
  t.throws(() => new SGD([p], { lr: -1 }), { name: 'OpError', message: /^SGD: invalid lr: -1/ });
  t.throws(() => new SGD([p, p], { lr: 1 }), { name: 'OpError', message: /appears twice/ });
  t.throws(() => new Adam([p], { betas: [0.9, 1] }), { name: 'OpError', message: /^Adam: invalid beta: 1/ });
  t.throws(() => new Adam([tensor([1], [1], 'int32')]), {
    name: 'OpError',
    message: /must be float32 or float64, got int32/,
  });
  t.throws(() => new SGD([p], { lr: 1 }).setLr(NaN), { name: 'OpError', message: /invalid lr: NaN/ });
  p.dispose();
});

t.test('clipGradNorm: global L2 norm, in place', async (t) => {
  const base = memory();
  const a = requireGrad(tensor([0, 0])),
    b = requireGrad(tensor([0])),
    c = requireGrad(tensor([5]));
  a.grad = C.keep(tensor([3, 4]));
  b.grad = C.keep(tensor([12]));
  // c has no gradient.
  const norm = clipGradNorm([a, b, c], 6.5);
  t.equal(norm, 13, 'returns the norm before clipping: sqrt(9 + 16 + 144)');
  const k = 6.5 / (13 + 1e-6);
  t.same(
    Array.from(a.grad.dataSync()),
    [3, 4].map((v) => Math.fround(v * Math.fround(k))),
  );
  t.same(Array.from(b.grad.dataSync()), [Math.fround(12 * Math.fround(k))]);
  const after = Math.hypot(...a.grad.dataSync(), ...b.grad.dataSync());
  t.ok(Math.abs(after - 6.5) < 1e-5, `clipped norm ${after}`);
  t.ok(
    Math.abs(
      clipGradNorm(
        [
          ['a', a],
          ['b', b],
        ],
        100,
      ) - after,
    ) < 1e-5,
    'named parameters; below the limit nothing changes',
  );
  t.ok(Math.abs(Math.hypot(...a.grad.dataSync(), ...b.grad.dataSync()) - after) === 0);
  t.equal(clipGradNorm([a, b], 1, { normType: Infinity }), Math.fround(12 * Math.fround(k)), 'infinity norm');
  t.ok(Math.abs(Math.max(...a.grad.dataSync(), ...b.grad.dataSync()) - 1) < 1e-6);
  t.equal(clipGradNorm([c], 1), 0, 'no gradients: norm 0');
  b.grad.dispose();
  b.grad = C.keep(tensor([NaN]));
  t.throws(() => clipGradNorm([a, b], 1, { errorIfNonfinite: true }), {
    name: 'OpError',
    message: /^clipGradNorm: the total norm of the gradients is NaN/,
  });
  t.ok(Number.isNaN(clipGradNorm([a, b], 1)), 'NaN norm is returned (and propagates, as in PyTorch)');
  a.dispose();
  b.dispose();
  c.dispose();
  t.same(memory(), base);
});

t.test('schedules', async (t) => {
  t.equal(polyLr(0.01, 0, 100), 0.01);
  t.equal(polyLr(0.01, 50, 100), 0.01 * 0.5 ** 0.9);
  t.equal(polyLr(0.01, 100, 100), 0);
  t.equal(polyLr(0.01, 150, 100), 0, 'clamped past the end');
  t.equal(polyLr(1, 25, 100, 2), 0.75 ** 2);
  t.equal(cosineLr(1, 0, 10), 1);
  t.ok(Math.abs(cosineLr(1, 5, 10) - 0.5) < 1e-15);
  t.ok(Math.abs(cosineLr(1, 10, 10, 0.1) - 0.1) < 1e-15);
  t.equal(cosineLr(1, 20, 10, 0.1), 0.1, 'minLr after the end');
  t.equal(cosineLr(1, 0, 10, 0, 4), 1 / 5, 'linear warmup');
  t.equal(cosineLr(1, 3, 10, 0, 4), 4 / 5);
  t.equal(cosineLr(1, 4, 10, 0, 4), 1, 'base when warmup ends');
  t.ok(Math.abs(cosineLr(1, 7, 10, 0, 4) - 0.5) < 1e-15, 'cosine over the rest');
  for (let s = 1; s < 10; s++) t.ok(cosineLr(1, s, 10) <= cosineLr(1, s - 1, 10), 'monotone');
  t.equal(constantLr(0.3, 5, 10), 0.3);
  t.throws(() => polyLr(1, 0, 0), /polyLr: total must be positive/);
  t.throws(() => cosineLr(1, 0, 10, 0, 10), /cosineLr: warmup must be in \[0, total\)/);
  t.throws(() => cosineLr(1, -1, 10), /cosineLr: invalid step -1/);
});
