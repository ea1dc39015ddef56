// The WebAssembly SIMD kernels: against the float64 oracle whatever the
// LARGO_CPU_KERNELS of this run (they are forced on here), bitwise the same
// with 1, 2 and 4 threads, and clear errors for bad settings. The other op
// test files run over both kernel sets through LARGO_CPU_KERNELS (see .ci/run).
import t from 'tap';
import fc from 'fast-check';
import { spawnSync } from 'node:child_process';
import {
  add,
  div,
  leakyRelu,
  leakyReluGrad,
  mul,
  sub,
  tensor,
  conv3d,
  conv3dGradInput,
  conv3dGradWeight,
  convTranspose3d,
  cpuKernelMode,
  cpuThreads,
  instanceNormGrad,
  instanceNormWithStats,
  matmul,
  memory,
  randn,
  setCpuKernels,
  setCpuThreads,
  tidy,
  type Tensor,
} from '@largo/core';
import { refConv3d, refConv3dGradInput, refConv3dGradWeight, refMatmul } from '@largo/core/reference';
import { compare, oracleCase, toRef, reductionTol, FC_RUNS } from '@largo/test-support';

const prod = (xs: readonly number[]) => xs.reduce((a, b) => a * b, 1);

/** Runs body with the wasm kernels forced on and the given thread count, restoring both after. */
function withKernels<T>(threads: number, body: () => T): T {
  const m = cpuKernelMode(),
    n = cpuThreads();
  setCpuKernels('wasm');
  setCpuThreads(threads);
  try {
    return body();
  } finally {
    setCpuKernels(m);
    setCpuThreads(n);
  }
}

const arbConv = fc
  .record({
    N: fc.integer({ min: 1, max: 2 }),
    C: fc.integer({ min: 1, max: 5 }),
    O: fc.integer({ min: 1, max: 9 }),
    axes: fc.array(
      fc.record({
        n: fc.integer({ min: 1, max: 11 }),
        k: fc.integer({ min: 1, max: 3 }),
        s: fc.integer({ min: 1, max: 3 }),
        p: fc.integer({ min: 0, max: 2 }),
        d: fc.integer({ min: 1, max: 2 }),
      }),
      { minLength: 3, maxLength: 3 },
    ),
    bias: fc.boolean(),
    // input channels per reduction block of the forward kernel (0: its own choice, one block at these sizes)
    block: fc.integer({ min: 0, max: 3 }),
    seed: fc.integer({ min: 0, max: 1 << 30 }),
  })
  .map((g) => {
    const axes = g.axes.map((a) => ({ ...a, n: Math.max(a.n, a.d * (a.k - 1) + 1 - 2 * a.p) }));
    return {
      N: g.N,
      C: g.C,
      O: g.O,
      bias: g.bias,
      block: g.block,
      seed: g.seed,
      inSp: axes.map((a) => a.n),
      k: axes.map((a) => a.k),
      stride: axes.map((a) => a.s),
      padding: axes.map((a) => a.p),
      dilation: axes.map((a) => a.d),
    };
  });

t.test(oracleCase('conv3d') + ' (wasm kernels: forward, grad-input, grad-weight)', async (t) => {
  const before = memory().tensors;
  const conv = await import(new URL('../dist/cpu/wasm/conv.js', import.meta.url).href);
  t.teardown(() => conv.setConvChannelBlock(0));
  withKernels(1, () =>
    fc.assert(
      fc.property(arbConv, (g) => {
        conv.setConvChannelBlock(g.block);
        const msg = tidy(() => {
          const x = randn([g.N, g.C, ...g.inSp], { seed: g.seed });
          const w = randn([g.O, g.C, ...g.k], { seed: g.seed + 1 });
          const b = g.bias ? randn([g.O], { seed: g.seed + 2 }) : null;
          const o = { stride: g.stride, padding: g.padding, dilation: g.dilation };
          const y = conv3d(x, w, b, o);
          const dy = randn(y.shape, { seed: g.seed + 3 });
          const Kc = g.C * prod(g.k);
          const P = prod(y.shape.slice(2));
          return (
            compare(y, refConv3d(toRef(x), toRef(w), b && toRef(b), o), reductionTol(Kc)) ??
            compare(
              conv3dGradInput(dy, w, [g.N, g.C, ...g.inSp], o),
              refConv3dGradInput(toRef(dy), toRef(w), [g.N, g.C, ...g.inSp], o),
              reductionTol(g.O * prod(g.k)),
            ) ??
            compare(
              conv3dGradWeight(x, dy, [g.O, g.C, ...g.k], o),
              refConv3dGradWeight(toRef(x), toRef(dy), [g.O, g.C, ...g.k], o),
              reductionTol(g.N * P),
            )
          );
        });
        if (msg) throw new Error(`${msg} for ${JSON.stringify(g)}`);
      }),
      { numRuns: FC_RUNS },
    ),
  );
  t.equal(memory().tensors, before, 'no tensor leaked');
});

t.test(oracleCase('conv3dGradWeight') + ' (wasm kernels: long rows)', async (t) => {
  // the property above keeps rows at 11 or less: rows of 20, 32 and 40 floats
  // (5, 8 and 10 vector steps per row, float64 flushes inside a channel's rows)
  withKernels(1, () => {
    for (const W of [20, 32, 40]) {
      const msg = tidy(() => {
        const x = randn([2, 3, 3, 4, W], { seed: W }),
          w = randn([5, 3, 3, 3, 3], { seed: W + 1 });
        const o = { padding: [1, 1, 1] };
        const y = conv3d(x, w, null, o);
        const dy = randn(y.shape, { seed: W + 2 });
        return compare(
          conv3dGradWeight(x, dy, w.shape, o),
          refConv3dGradWeight(toRef(x), toRef(dy), w.shape, o),
          reductionTol(2 * prod(y.shape.slice(2))),
        );
      });
      t.equal(msg, null, `rows of ${W}: grad-weight matches the oracle`);
    }
  });
});

t.test(oracleCase('matmul') + ' (wasm kernels)', async (t) => {
  withKernels(1, () =>
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 40 }),
        fc.integer({ min: 0, max: 300 }),
        fc.integer({ min: 1, max: 40 }),
        fc.boolean(),
        fc.boolean(),
        fc.integer({ min: 0, max: 1 << 30 }),
        (M, K, N, tA, tB, seed) => {
          const msg = tidy(() => {
            const a = randn(tA ? [K, M] : [M, K], { seed }),
              b = randn(tB ? [N, K] : [K, N], { seed: seed + 1 });
            const o = { transposeA: tA, transposeB: tB };
            return compare(matmul(a, b, o), refMatmul(toRef(a), toRef(b), o), reductionTol(K));
          });
          if (msg) throw new Error(`${msg} for M=${M} K=${K} N=${N} tA=${tA} tB=${tB}`);
        },
      ),
      { numRuns: FC_RUNS },
    ),
  );
  t.pass('matmul matches the oracle');
});

t.test(
  "wasm elementwise kernels (add, sub, mul, div, leakyRelu, leakyReluGrad) give the JavaScript kernels' bits",
  async (t) => {
    // Same shape, a scalar on either side, lengths with a tail past the last
    // vector, and the special values (±0, ±∞, NaN, subnormals, huge products).
    const special = fc.constantFrom(0, -0, Infinity, -Infinity, NaN, 1e-45, -3e-39, 3.4e38, -1, 1);
    const f32 = fc.oneof(fc.float(), special);
    const arb = fc.record({
      n: fc.integer({ min: 1, max: 23 }),
      a: fc.array(f32, { minLength: 23, maxLength: 23 }),
      b: fc.array(f32, { minLength: 23, maxLength: 23 }),
      form: fc.constantFrom('same', 'a scalar', 'b scalar'),
      alpha: fc.oneof(fc.double({ min: -2, max: 2, noNaN: true }), fc.constant(0.01)),
    });
    const bits = (x: Float32Array) =>
      Array.from(x, (v) => (Number.isNaN(v) ? 'NaN' : Object.is(v, -0) ? '-0' : String(v)));
    const each = (
      mode: 'js' | 'wasm',
      c: fc.RecordValue<{ n: number; a: number[]; b: number[]; form: string; alpha: number }>,
    ) => {
      const m = cpuKernelMode();
      setCpuKernels(mode);
      try {
        return tidy(() => {
          const a = tensor(
            c.form === 'a scalar' ? c.a.slice(0, 1) : c.a.slice(0, c.n),
            c.form === 'a scalar' ? [1] : [c.n],
          );
          const b = tensor(
            c.form === 'b scalar' ? c.b.slice(0, 1) : c.b.slice(0, c.n),
            c.form === 'b scalar' ? [1] : [c.n],
          );
          const ys = [add(a, b), sub(a, b), mul(a, b), div(a, b), leakyRelu(a, c.alpha)];
          if (c.form === 'same') ys.push(leakyReluGrad(a, b, c.alpha));
          return ys.map((y) => bits(y.dataSync() as Float32Array));
        });
      } finally {
        setCpuKernels(m);
      }
    };
    fc.assert(
      fc.property(arb, (c) => {
        const js = each('js', c),
          wasm = each('wasm', c);
        for (let i = 0; i < js.length; i++) if (js[i]!.join() !== wasm[i]!.join()) return false;
        return true;
      }),
      { numRuns: FC_RUNS * 4 },
    );
    t.pass('wasm elementwise = JavaScript elementwise, bitwise');
  },
);

t.test('wasm kernels: the same bits with 1, 2 and 4 threads', async (t) => {
  // Every call below goes to the threads, however small (the package's
  // threshold is ~2 ms of work); restored after.
  const pool = await import(new URL('../dist/cpu/wasm/pool.js', import.meta.url).href);
  const conv = await import(new URL('../dist/cpu/wasm/conv.js', import.meta.url).href);
  pool.setParallelMinWork(0);
  t.teardown(() => pool.setParallelMinWork(pool.PARALLEL_MIN_WORK));
  t.teardown(() => conv.setConvChannelBlock(0));
  const run = (threads: number): Float32Array[] =>
    withKernels(threads, () =>
      tidy(() => {
        const out: Tensor[] = [];
        for (const stride of [1, 2]) {
          const x = randn([2, 8, 14, 13, 15], { seed: 1 }),
            w = randn([12, 8, 3, 3, 3], { seed: 2 }),
            b = randn([12], { seed: 3 });
          const o = { stride: [stride, stride, stride], padding: [1, 1, 1], dilation: [1, 1, 1] };
          const y = conv3d(x, w, b, o);
          const dy = randn(y.shape, { seed: 4 });
          out.push(y, conv3dGradInput(dy, w, x.shape, o), conv3dGradWeight(x, dy, w.shape, o));
          // the forward's reduction in blocks of 3 input channels (3 + 3 + 2)
          conv.setConvChannelBlock(3);
          out.push(conv3d(x, w, b, o));
          conv.setConvChannelBlock(0);
        }
        const up = randn([1, 16, 10, 10, 10], { seed: 5 }),
          wt = randn([16, 8, 2, 2, 2], { seed: 6 });
        out.push(convTranspose3d(up, wt, null, { stride: [2, 2, 2] }));
        out.push(matmul(randn([300, 200], { seed: 7 }), randn([200, 700], { seed: 8 })));
        // B handed as rows of Bᵀ (CP reconstruction's case): the wasm gather, 37 full panels and a partial one
        out.push(matmul(randn([40, 300], { seed: 15 }), randn([301, 300], { seed: 16 }), { transposeB: true }));
        // instance norm: 10 rows of 210 floats (a scalar tail after the vectors), affine, statistics' cotangents
        const xi = randn([2, 5, 7, 6, 5], { seed: 9 }),
          gw = randn([5], { seed: 10 }),
          gb = randn([5], { seed: 11 });
        const st = instanceNormWithStats(xi, gw, gb);
        const stats = { dmean: randn([2, 5], { seed: 13 }), dinvstd: randn([2, 5], { seed: 14 }) };
        const gr = instanceNormGrad(randn(xi.shape, { seed: 12 }), xi, st.mean, st.invstd, gw, stats);
        out.push(st.y, st.mean, st.invstd, gr.dx, gr.dweight, gr.dbias);
        return out.map((y) => Float32Array.from(y.dataSync() as Float32Array));
      }),
    );
  const j0 = pool.pooledJobs();
  const one = run(1);
  t.equal(pool.pooledJobs(), j0, 'one thread: nothing goes to the pool');
  for (const n of [2, 4]) {
    const before = pool.pooledJobs();
    const other = run(n);
    t.ok(pool.pooledJobs() - before >= 15, `${n} threads: every kernel call was split across the pool`);
    one.forEach((a, i) => {
      const b = other[i];
      let same = a.length === b.length;
      for (let j = 0; same && j < a.length; j++) if (Object.is(a[j], b[j]) === false) same = false;
      t.ok(same, `output ${i}: ${n} threads give the bits of 1 thread`);
    });
  }
});

t.test('cpu kernel settings: bad values are named', async (t) => {
  t.throws(() => setCpuKernels('simd' as never), /setCpuKernels: mode must be 'js', 'wasm' or 'auto', got 'simd'/);
  t.throws(() => setCpuThreads(0), /setCpuThreads: thread count must be a positive integer, got 0/);
  t.throws(() => setCpuThreads(1.5), /got 1.5/);
  const core = new URL('../dist/index.js', import.meta.url).href;
  for (const [env, re] of [
    [{ LARGO_CPU_KERNELS: 'fast' }, /LARGO_CPU_KERNELS must be 'js', 'wasm' or 'auto', got 'fast'/],
    [{ LARGO_THREADS: 'many' }, /LARGO_THREADS must be a positive integer, got 'many'/],
  ] as const) {
    const r = spawnSync(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `const c = await import(${JSON.stringify(core)}); c.cpuThreads(); console.log('ok', c.cpuKernelMode());`,
      ],
      { env: { ...process.env, ...env }, encoding: 'utf8' },
    );
    t.not(r.status, 0, `${JSON.stringify(env)} fails`);
    t.match(r.stderr, re, `${JSON.stringify(env)} names the variable and the value`);
  }
});

t.test('wasm kernels: a trap on any thread is an error, not a hang, and the pool still works after it', async (t) => {
  const pool = await import(new URL('../dist/cpu/wasm/pool.js', import.meta.url).href);
  const runtime = await import(new URL('../dist/cpu/wasm/runtime.js', import.meta.url).href);
  const rt = runtime.wasmRuntime();
  const n = cpuThreads();
  setCpuThreads(2);
  try {
    // A-panel pointer far past the end of memory: every share traps.
    const bad = 0x7ff00000;
    t.throws(() => pool.parallelFor(rt, 'gemmBlocks', [bad, 0, 0, 1, 128, 16, 0, 0], 6, 7, 2, 1 << 30, 64));
    const ok = withKernels(2, () =>
      tidy(() => {
        const a = randn([300, 200], { seed: 1 }),
          b = randn([200, 700], { seed: 2 });
        return compare(matmul(a, b), refMatmul(toRef(a), toRef(b)), reductionTol(200));
      }),
    );
    t.equal(ok, null, 'a 2-thread matmul after the failure is right');
  } finally {
    setCpuThreads(n);
  }
});
