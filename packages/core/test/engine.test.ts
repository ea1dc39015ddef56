// Engine: scopes (tidy/keep), storage sharing, memory counters, backends and
// the kernel registry.
import t from 'tap';
import * as C from '@largo/core';
import {
  engine,
  memory,
  tidy,
  keep,
  tensor,
  type Backend,
  type DataId,
  type DType,
  type TypedArray,
} from '@largo/core';

/** A second, minimal host backend: same data model as the CPU one but its own name and no kernels. */
class OtherBackend implements Backend {
  readonly name = 'other';
  private live = 0;
  alloc(dtype: DType, size: number): DataId {
    this.live++;
    return { backendName: 'other', values: C.newArray(dtype, size) } as DataId;
  }
  write(id: DataId, v: TypedArray): void {
    (id as unknown as { values: TypedArray }).values.set(v);
  }
  readSync(id: DataId): TypedArray {
    return (id as unknown as { values: TypedArray }).values;
  }
  async read(id: DataId): Promise<TypedArray> {
    return this.readSync(id);
  }
  free(): void {
    this.live--;
  }
  copy(src: DataId, dst: DataId): void {
    this.write(dst, this.readSync(src));
  }
  liveBuffers(): number {
    return this.live;
  }
  dispose(): void {}
}

t.test('tidy disposes intermediates and keeps what is returned', async (t) => {
  const base = memory();
  const x = tensor([1, 2, 3]);
  let inner: C.Tensor | null = null;
  const y = tidy(() => {
    inner = C.mul(x, 2);
    return C.add(inner, 1);
  });
  t.ok(inner!.isDisposed, 'intermediate disposed');
  t.notOk(y.isDisposed, 'result kept');
  t.notOk(x.isDisposed, 'inputs from outside untouched');
  t.same(Array.from(y.dataSync()), [3, 5, 7]);
  t.same(memory().tensors, base.tensors + 2);
  // Results inside arrays, objects and Maps survive too.
  const r = tidy(() => {
    const a = C.neg(x),
      b = C.exp(x),
      c = C.abs(x),
      d = C.sqrt(x);
    C.sign(x);
    return { list: [a, { b }], m: new Map([['c', c]]), d, n: 3 };
  });
  t.notOk(r.list[0] instanceof C.Tensor && r.list[0].isDisposed);
  t.same(
    [r.list[0], (r.list[1] as { b: C.Tensor }).b, r.m.get('c')!, r.d].map((q) => (q as C.Tensor).isDisposed),
    [false, false, false, false],
  );
  t.same(memory().tensors, base.tensors + 6, 'only the unreturned sign() went');
  for (const q of [r.list[0], (r.list[1] as { b: C.Tensor }).b, r.m.get('c')!, r.d]) (q as C.Tensor).dispose();
  x.dispose();
  y.dispose();
  t.same(memory(), base, 'back to baseline');
});

t.test('keep() survives scopes; nested scopes hand results outward', async (t) => {
  const base = memory();
  let k: C.Tensor | null = null;
  let innerResult: C.Tensor | null = null;
  let innerTmp: C.Tensor | null = null;
  const out = tidy(() => {
    k = keep(C.ones([2]));
    innerResult = tidy(() => {
      innerTmp = C.zeros([2]);
      return C.add(innerTmp, 1);
    });
    t.ok(innerTmp!.isDisposed, 'inner temporary disposed at the inner end');
    t.notOk(innerResult.isDisposed, 'inner result alive in the outer scope');
    return C.mul(innerResult, 3);
  });
  t.ok(innerResult!.isDisposed, 'inner result disposed at the outer end (not returned)');
  t.notOk(k!.isDisposed, 'kept tensor survives');
  t.notOk(out.isDisposed);
  // A result returned from both the inner and the outer scope stays alive.
  const both = tidy(() => tidy(() => C.ones([1])));
  t.notOk(both.isDisposed);
  both.dispose();
  out.dispose();
  k!.dispose();
  t.same(memory(), base);
});

t.test('errors inside tidy dispose the scope and propagate', async (t) => {
  const base = memory();
  let tmp: C.Tensor | null = null;
  t.throws(
    () =>
      tidy(() => {
        tmp = C.ones([4]);
        tidy(() => {
          C.zeros([3]);
          throw new Error('boom');
        });
      }),
    /boom/,
  );
  t.ok(tmp!.isDisposed, 'outer temporaries disposed too');
  t.same(memory(), base, 'nothing leaked');
  // The scope stack is intact afterwards: a new tidy works normally.
  const y = tidy(() => C.add(C.ones([2]), 1));
  t.same(Array.from(y.dataSync()), [2, 2]);
  y.dispose();
  t.same(memory(), base);
  t.throws(
    () =>
      tidy(() => {
        C.ones([2]);
        return Promise.resolve(1) as unknown as number;
      }),
    /tidy: the function must be synchronous/,
  );
  t.same(memory(), base, "the async function's tensors were disposed");
  t.throws(() => engine().endScope(), /endScope without startScope/, 'no scope was left open');
});

t.test('reshape shares storage; storage is freed with its last handle', async (t) => {
  const base = memory();
  const x = tensor([1, 2, 3, 4, 5, 6], [2, 3]);
  const v = C.reshape(x, [3, 2]);
  t.equal(v.storage, x.storage, 'same storage');
  t.same(memory(), { tensors: base.tensors + 2, storages: base.storages + 1, backendBuffers: base.backendBuffers + 1 });
  x.dispose();
  t.ok(x.isDisposed);
  t.same(
    v.toArray(),
    [
      [1, 2],
      [3, 4],
      [5, 6],
    ],
    'the view still reads after the original is disposed',
  );
  t.same(memory(), { tensors: base.tensors + 1, storages: base.storages + 1, backendBuffers: base.backendBuffers + 1 });
  const w = C.reshape(v, [6]);
  v.dispose();
  t.same(Array.from(w.dataSync()), [1, 2, 3, 4, 5, 6]);
  w.dispose();
  w.dispose(); // idempotent
  t.same(memory(), base, 'storage freed once, with the last handle');
  // Other order: the view goes first.
  const a = tensor([1, 2]);
  const b = C.reshape(a, [2, 1]);
  b.dispose();
  t.same(Array.from(a.dataSync()), [1, 2]);
  a.dispose();
  t.same(memory(), base);
  // permute, slice and clone copy.
  const m = tensor([
    [1, 2],
    [3, 4],
  ]);
  for (const c of [C.permute(m, [1, 0]), C.slice(m, [0, 0], [1, 2]), C.clone(m)]) {
    t.not(c.storage, m.storage);
    c.dispose();
  }
  m.dispose();
  t.same(memory(), base);
});

t.test('memory() counts tensors, storages and backend buffers', async (t) => {
  const base = memory();
  const a = C.zeros([10]);
  t.same(memory(), { tensors: base.tensors + 1, storages: base.storages + 1, backendBuffers: base.backendBuffers + 1 });
  const b = C.add(a, 1);
  t.same(memory(), { tensors: base.tensors + 2, storages: base.storages + 2, backendBuffers: base.backendBuffers + 2 });
  a.dispose();
  b.dispose();
  t.same(memory(), base);
  // Scalars created for numbers in binary ops are not leaked.
  const c = C.ones([3]);
  const d = tidy(() => C.mul(C.add(c, 2), 0.5));
  t.same(memory().tensors, base.tensors + 2);
  c.dispose();
  d.dispose();
  // Buffers are pooled and reused: same-size allocations after dispose stay at the same count.
  for (let i = 0; i < 50; i++)
    tidy(() => {
      C.add(C.ones([64]), C.ones([64]));
    });
  t.same(memory(), base, 'steady state after a loop');
});

t.test('assign writes in place (views see it) and checks its operands', async (t) => {
  const p = tensor([1, 2, 3, 4]);
  const view = C.reshape(p, [2, 2]);
  const nv = tensor([9, 8, 7, 6]);
  engine().assign(p, nv);
  t.same(view.toArray(), [
    [9, 8],
    [7, 6],
  ]);
  t.throws(() => engine().assign(p, tensor([1, 2])), {
    name: 'OpError',
    message: /^assign: cannot assign float32 \[2\] to float32 \[4\]/,
  });
  t.throws(() => engine().assign(p, tensor([1, 2, 3, 4], [4], 'float64')), {
    name: 'OpError',
    message: /^assign: cannot assign float64 \[4\] to float32 \[4\]/,
  });
  nv.dispose();
  t.throws(() => engine().assign(p, nv), { name: 'OpError', message: /^assign: use of a disposed tensor/ });
});

t.test('kernel registry, backends, mixing and missing kernels', async (t) => {
  t.ok(C.hasKernel('add', 'cpu'));
  t.notOk(C.hasKernel('add', 'other'));
  t.ok(C.kernelsFor('cpu').includes('indexAdd'));
  t.same(C.kernelsFor('cpu'), [...C.kernelsFor('cpu')].sort(), 'sorted');
  t.ok(engine().backendNames().includes('cpu'));
  t.throws(() => engine().setBackend('nope'), /unknown backend 'nope' \(registered: .*cpu/);
  t.equal(C.getBackend().name, 'cpu', 'cpu is the default');

  const other = new OtherBackend();
  engine().addBackendInstance(other);
  C.setBackend('other');
  const o = tensor([1, 2, 3]);
  C.setBackend('cpu');
  const c = tensor([1, 2, 3]);
  t.equal(o.backend.name, 'other');
  t.equal(c.backend.name, 'cpu');
  t.same(Array.from(o.dataSync()), [1, 2, 3], 'data lives on the other backend');
  t.throws(() => C.add(c, o), {
    name: 'OpError',
    message: /^add: inputs live on different backends \('cpu' and 'other'\)/,
  });
  t.throws(() => C.neg(o), { name: 'OpError', message: /^neg: no kernel registered for backend 'other'/ });
  // A number combined with a tensor is created on the tensor's backend, not the active one.
  t.throws(() => C.add(o, 1), { name: 'OpError', message: /^add: no kernel registered for backend 'other'/ });
  // Registering a kernel for (op, backend) makes it available there and nowhere else.
  C.registerKernel('neg', 'other', (inputs, _attrs, backend) => {
    const x = inputs[0];
    const id = backend.alloc(
      x.dtype,
      x.shape.reduce((a, b) => a * b, 1),
    );
    const src = backend.readSync(x.dataId),
      dst = backend.readSync(id);
    for (let i = 0; i < src.length; i++) dst[i] = -src[i] * 10;
    return { dataId: id, shape: x.shape, dtype: x.dtype };
  });
  const n = C.neg(o);
  t.equal(n.backend, other);
  t.same(Array.from(n.dataSync()), [-10, -20, -30], 'the registered kernel ran');
  t.same(Array.from(C.neg(c).dataSync()), [-1, -2, -3], 'cpu unaffected');
  const before = other.liveBuffers();
  n.dispose();
  o.dispose();
  t.equal(other.liveBuffers(), before - 2, 'buffers freed on their own backend');
});

t.test("dropout makes its mask on the input's backend, not the active one", async (t) => {
  const other = engine().findBackend('other');
  // The mask has x's shape, so an elementwise product of equal sizes is all mul needs here.
  C.registerKernel('mul', 'other', (inputs, attrs: { dtype: DType }, backend) => {
    const [a, b] = inputs;
    const id = backend.alloc(
      attrs.dtype,
      a.shape.reduce((p, q) => p * q, 1),
    );
    const av = backend.readSync(a.dataId),
      bv = backend.readSync(b.dataId),
      dst = backend.readSync(id);
    for (let i = 0; i < dst.length; i++) dst[i] = av[i] * bv[i];
    return { dataId: id, shape: a.shape, dtype: attrs.dtype };
  });
  C.setBackend('other');
  const x = tensor([1, 2, 3, 4, 5, 6]);
  C.setBackend('cpu');
  const y = C.dropout(x, 0.5, { generator: new C.Philox(7) });
  t.equal(y.backend, other);
  const ref = C.dropout(tensor([1, 2, 3, 4, 5, 6]), 0.5, { generator: new C.Philox(7) });
  t.same(Array.from(y.dataSync()), Array.from(ref.dataSync()), 'same mask as on the cpu');
  x.dispose();
  y.dispose();
  ref.dispose();
});

t.test(
  'kernel registry: the schema decides what can be registered, twice is an error, override is explicit',
  async (t) => {
    const neg: C.KernelFn<'neg'> = (inputs, _attrs, backend) => {
      const x = inputs[0];
      const id = backend.alloc(
        x.dtype,
        x.shape.reduce((a, b) => a * b, 1),
      );
      backend.write(
        id,
        backend.readSync(x.dataId).map((v) => -v),
      );
      return { dataId: id, shape: x.shape, dtype: x.dtype };
    };
    t.throws(() => C.registerKernel('neg', 'cpu', neg), {
      message: /^registerKernel: 'neg' already has a kernel on backend 'cpu' \(use overrideKernel/,
    });
    t.throws(() => C.registerKernel('notAnOp' as C.OpName, 'cpu', neg as never), {
      message: /^registerKernel: 'notAnOp' \(backend 'cpu'\) is not an op of the schema/,
    });
    t.throws(() => C.overrideKernel('neg', 'registry-test', neg), {
      message: /^overrideKernel: 'neg' has no kernel on backend 'registry-test' to replace/,
    });

    // A deliberate replacement returns the previous kernel, which restores it.
    let calls = 0;
    const prev = C.overrideKernel('neg', 'cpu', (inputs, attrs, backend) => {
      calls++;
      return prev(inputs, attrs, backend);
    });
    const x = tensor([1, -2]);
    const y = C.neg(x);
    t.same(Array.from(y.dataSync()), [-1, 2], 'the override delegates to the previous kernel');
    t.equal(calls, 1, 'the override ran');
    C.overrideKernel('neg', 'cpu', prev);
    const z = C.neg(x);
    t.equal(calls, 1, 'restored: the override no longer runs');
    x.dispose();
    y.dispose();
    z.dispose();
  },
);

t.test('runKernel checks the input count against the schema', async (t) => {
  const x = tensor([1, 2]);
  t.throws(() => engine().runKernel('add', [x], { dtype: 'float32' }), {
    name: 'OpError',
    message: /^add: kernel takes inputs \(a, b\), got 1 tensor$/,
  });
  t.throws(
    () => engine().runKernel('conv3d', [x, x, x, x], { stride: [1, 1, 1], padding: [0, 0, 0], dilation: [1, 1, 1] }),
    { name: 'OpError', message: /^conv3d: kernel takes inputs \(x, weight, bias\?\), got 4 tensors$/ },
  );
  const c = engine().runKernel('concat', [x, x, x], { axis: 0 })[0];
  t.same(Array.from(c.dataSync()), [1, 2, 1, 2, 1, 2], 'variadic concat takes any count');
  t.throws(() => engine().runKernel('nope' as C.OpName, [x], {} as never), {
    name: 'OpError',
    message: /^nope: not an op of the schema/,
  });
  x.dispose();
  c.dispose();
});

t.test('the schema derives the autograd lists', async (t) => {
  t.equal(C.NON_DIFFERENTIABLE_OPS.get('argmax'), 'integer (index) output');
  t.equal(C.BACKWARD_OPS.get('instanceNormGrad'), 'instanceNorm');
  t.ok(C.DIFFERENTIABLE_OPS.includes('conv3d') && C.DIFFERENTIABLE_OPS.includes('reshape'));
  for (const op of C.opNames()) {
    const s = C.OPS[op];
    const kinds = [C.NON_DIFFERENTIABLE_OPS.has(op), C.BACKWARD_OPS.has(op), C.DIFFERENTIABLE_OPS.includes(op)].filter(
      Boolean,
    ).length;
    t.equal(kinds, 1, `${op}: exactly one of rule / backward / none (${s.grad})`);
    if (s.grad === 'backward') t.ok(C.isOpName(C.BACKWARD_OPS.get(op)!), `${op}: backward of an op of the schema`);
  }
});
