// The tape: accumulation, noGrad, retainGraph, freed graphs, lifetimes of
// saved tensors, and misuse errors.
import t from 'tap';
import * as C from '@largo/core';
import { tensor, tidy, memory, keep, type Tensor } from '@largo/core';
import { backward, hasGrad, isGradEnabled, noGrad, registerGrad, requireGrad, zeroGrad } from '@largo/autograd';

const vals = (x: Tensor | null) => (x ? Array.from(x.dataSync()) : null);
const f64 = (v: number[], shape = [v.length]) => tensor(Float64Array.from(v), shape, 'float64');

t.test('gradients accumulate over two backward calls; zeroGrad clears', async (t) => {
  const base = memory();
  const x = requireGrad(f64([1, 2, 3]));
  tidy(() => backward(C.sum(C.mul(x, x))));
  t.same(vals(x.grad), [2, 4, 6]);
  tidy(() => backward(C.sum(C.mul(x, 3))));
  t.same(vals(x.grad), [5, 7, 9], 'second backward adds');
  zeroGrad([x]);
  t.equal(x.grad, null);
  tidy(() => backward(C.sum(x)));
  t.same(vals(x.grad), [1, 1, 1]);
  x.dispose();
  t.same(memory(), base, 'disposing the leaf disposes its grad');
});

t.test('shared subexpressions and diamonds sum their contributions', async (t) => {
  const x = requireGrad(f64([0.5, -1]));
  const y = requireGrad(f64([2, 3]));
  tidy(() => {
    const a = C.mul(x, y); // x*y
    const b = C.add(a, x); // x*y + x
    const c = C.mul(b, a); // (x*y + x) * x*y
    backward(C.sum(c));
  });
  // d/dx = (y + 1)·xy + (xy + x)·y ; d/dy = x·xy + (xy + x)·x
  const xs = [0.5, -1],
    ys = [2, 3];
  t.same(
    vals(x.grad),
    xs.map((q, i) => (ys[i] + 1) * q * ys[i] + (q * ys[i] + q) * ys[i]),
  );
  t.same(
    vals(y.grad),
    xs.map((q, i) => q * q * ys[i] + (q * ys[i] + q) * q),
  );
  x.dispose();
  y.dispose();
});

t.test('noGrad records nothing', async (t) => {
  const base = memory();
  const x = requireGrad(f64([1, 2]));
  t.ok(isGradEnabled());
  const y = noGrad(() => {
    t.notOk(isGradEnabled());
    return C.mul(x, 2);
  });
  t.ok(isGradEnabled(), 'restored after');
  t.notOk(y.requiresGrad, 'output is not on the tape');
  t.equal(y.gradNode, null);
  t.same(memory().tensors, base.tensors + 2, 'no saved tensors were made');
  t.throws(() => backward(y), { name: 'OpError', message: /^backward: tensor does not require grad/ });
  // Restored even when the function throws.
  t.throws(
    () =>
      noGrad(() => {
        throw new Error('inner');
      }),
    /inner/,
  );
  t.ok(isGradEnabled());
  y.dispose();
  x.dispose();
  t.same(memory(), base);
});

t.test('retainGraph allows a second backward; without it the second one throws', async (t) => {
  const base = memory();
  const x = requireGrad(f64([1, -2]));
  const loss = tidy(() => C.sum(C.mul(C.exp(x), x)));
  backward(loss, { retainGraph: true });
  const g1 = vals(x.grad)!;
  backward(loss);
  t.same(
    vals(x.grad),
    g1.map((v) => 2 * v),
    'retained graph gives the same gradient again',
  );
  t.throws(() => backward(loss), {
    name: 'OpError',
    message: /^backward: the graph was already freed by an earlier backward \(pass retainGraph: true\)/,
  });
  loss.dispose();
  x.dispose();
  t.same(memory(), base, 'everything freed');
});

t.test('a graph that is never backpropagated frees its saved tensors with its outputs', async (t) => {
  const base = memory();
  const x = requireGrad(f64([1, 2, 3]));
  const afterLeaf = memory();
  const out = tidy(() => C.sum(C.tanh(C.mul(C.add(x, 1), x))));
  t.ok(memory().tensors > afterLeaf.tensors + 1, 'saved tensors are held by the graph');
  out.dispose();
  t.same(memory(), afterLeaf, 'disposing the output releases the whole graph');
  // Intermediates disposed in a different order (outputs before their consumers' outputs).
  const a = C.mul(x, 2);
  const b = C.exp(a);
  const c = C.add(b, a);
  a.dispose();
  t.ok(c.requiresGrad);
  b.dispose();
  tidy(() => backward(C.sum(c)));
  t.same(
    vals(x.grad),
    [1, 2, 3].map((v) => 2 * Math.exp(2 * v) + 2),
    'the graph survives disposal of intermediate handles',
  );
  c.dispose();
  zeroGrad([x]);
  t.same(memory(), afterLeaf);
  x.dispose();
  t.same(memory(), base);
});

t.test('memory after backward returns to leaves plus grads', async (t) => {
  const base = memory();
  const w = requireGrad(f64([0.1, 0.2, 0.3, 0.4], [2, 2]));
  const inp = keep(f64([1, 2], [1, 2]));
  for (let i = 0; i < 3; i++) {
    tidy(() => {
      const h = C.sum(C.mul(C.reshape(inp, [2, 1]), w), 0);
      backward(C.mean(C.square(C.sigmoid(h))));
    });
    t.same(
      memory(),
      { tensors: base.tensors + 3, storages: base.storages + 3, backendBuffers: base.backendBuffers + 3 },
      `after step ${i}: w, input, w.grad`,
    );
  }
  w.dispose();
  inp.dispose();
  t.same(memory(), base);
});

t.test('backward with an explicit cotangent, and of a leaf', async (t) => {
  const x = requireGrad(f64([1, 2, 3]));
  const y = C.mul(x, x);
  const g = f64([1, 0, -1]);
  backward(y, { grad: g });
  t.same(vals(x.grad), [2, 0, -6]);
  t.notOk(g.isDisposed, 'the caller keeps its cotangent');
  t.throws(() => backward(C.mul(x, 2), { grad: f64([1, 2]) }), {
    name: 'OpError',
    message: /^backward: grad float64 \[2\] on 'cpu' does not match float64 \[3\]/,
  });
  // Same size, other shape: the rules would broadcast [1, 3] against [3, 1] and sum back a wrong gradient.
  t.throws(() => backward(C.reshape(C.mul(x, 2), [3, 1]), { grad: f64([1, 0, 0], [1, 3]) }), {
    name: 'OpError',
    message: /^backward: grad float64 \[1, 3\] .* does not match float64 \[3, 1\]/,
  });
  t.throws(() => backward(C.mul(x, 2), { grad: tensor([1, 0, 0]) }), {
    name: 'OpError',
    message: /^backward: grad float32 \[3\] .* does not match float64 \[3\]/,
  });
  t.same(vals(x.grad), [2, 0, -6], 'a rejected cotangent leaves the gradient alone');
  zeroGrad([x]);
  backward(x);
  t.same(vals(x.grad), [1, 1, 1], 'a leaf is its own gradient');
  y.dispose();
  g.dispose();
  x.dispose();
});

t.test('requireGrad and misuse', async (t) => {
  t.throws(() => requireGrad(tensor([1, 2], [2], 'int32')), {
    name: 'OpError',
    message: /^requireGrad: only float tensors can require grad, got int32/,
  });
  t.throws(() => requireGrad(tensor([1], [1], 'uint8')), { name: 'OpError', message: /^requireGrad: .*uint8/ });
  const x = requireGrad(tensor([1, 2]));
  t.ok(x.kept, 'trainable leaves survive tidy');
  const z = tidy(() => x);
  t.equal(z, x);
  t.notOk(x.isDisposed);
  const y = C.mul(x, 2);
  y.dispose();
  t.throws(() => backward(y), { name: 'OpError', message: /^backward: use of a disposed tensor/ });
  const plain = tensor([1]);
  t.throws(() => backward(plain), { name: 'OpError', message: /^backward: tensor does not require grad/ });
  // Leaves that do not reach the loss get no gradient.
  const u = requireGrad(tensor([3]));
  tidy(() => backward(C.sum(C.mul(x, 2))));
  t.equal(u.grad, null);
  // Gradients through float32 stay float32; through float64, float64.
  t.equal(x.grad!.dtype, 'float32');
  x.dispose();
  u.dispose();
  plain.dispose();
});

t.test('a disposed leaf is skipped, not resurrected', async (t) => {
  const base = memory();
  const x = requireGrad(f64([1, 2]));
  const y = requireGrad(f64([3, 4]));
  const loss = tidy(() => C.sum(C.mul(x, y)));
  x.dispose();
  backward(loss);
  t.same(vals(y.grad), [1, 2]);
  loss.dispose();
  y.dispose();
  t.same(memory(), base);
});

t.test('backward outside any scope leaves only the gradients behind', async (t) => {
  const x = requireGrad(f64([1, 2]));
  const base = memory();
  // `a` (not a leaf) feeds two consumers: its cotangents are summed inside backward.
  const a = C.mul(x, x),
    b = C.add(a, 1),
    c = C.mul(b, a),
    l = C.sum(c);
  backward(l);
  t.same(
    vals(x.grad),
    [1, 2].map((v) => 4 * v ** 3 + 2 * v),
    'd/dx (x²+1)x² = 4x³ + 2x',
  );
  for (const q of [a, b, c, l]) q.dispose();
  t.same(
    memory(),
    { tensors: base.tensors + 1, storages: base.storages + 1, backendBuffers: base.backendBuffers + 1 },
    'x.grad only',
  );
  zeroGrad([x]);
  x.dispose();
});

t.test('a failing backward (op without a rule) leaves nothing behind', async (t) => {
  // A backward-only kernel has no rule of its own (no second derivatives).
  const x = requireGrad(f64([1, 2]));
  const base = memory();
  const m = C.mul(x, 2),
    target = f64([0, 1]),
    dy = f64([1]);
  const { dlogits: y, dtarget } = C.bceWithLogitsGrad(m, target, dy);
  dtarget.dispose();
  const l = tidy(() => C.sum(C.mul(y, y)));
  t.throws(() => backward(l), { name: 'OpError', message: /^backward: no gradient rule for op 'bceWithLogitsGrad'/ });
  l.dispose();
  y.dispose();
  m.dispose();
  target.dispose();
  dy.dispose();
  t.same(memory(), base, 'the partial sweep released its cotangents and the graph');
  x.dispose();
});

t.test('registerGrad: only ops the schema declares differentiable, and once', async (t) => {
  const rule = () => [null];
  t.throws(() => registerGrad('argmax', rule), {
    message: /^registerGrad: the op schema does not declare 'argmax' differentiable/,
  });
  t.throws(
    () => registerGrad('instanceNormGrad', rule),
    { message: /does not declare 'instanceNormGrad' differentiable/ },
    'backward-only',
  );
  t.throws(() => registerGrad('exp', rule), { message: /^registerGrad: 'exp' already has a gradient rule$/ });
  t.ok(hasGrad('exp') && hasGrad('reshape'), 'kernel and view ops keep their rules');
});
