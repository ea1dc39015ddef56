// The benchmark cases, each written once per library with that library's
// idiomatic API. Inputs are made once (float32, NCDHW, PyTorch layout) from
// our seeded generator and handed to every library, so all of them compute on
// the same numbers; tfjs gets them transposed to its channels-last layout
// (NDHWC activations, [kd, kh, kw, in, out] filters) outside the timed region,
// and its outputs are transposed back before they are compared.
//
// A case has:
//   id, label, kind (the PyTorch builder in peers/torch_peer.py), what (README text)
//   make()        -> { name: { shape, data: Float32Array } }
//   ours(inputs)  -> { run(), outputs() -> Promise<{ name: Float32Array }>, dispose() }
//   tfjs(tf, inputs) -> the same, on tf's current backend
import * as C from '@largo/core';
import { SGD, backward, requireGrad, noGrad, zeroGrad } from '@largo/autograd';
import {
  cpRank,
  resolveConfig,
  loadSegData,
  buildSegNet,
  SegTask,
  makeOptimizer,
  scheduledLr,
  clipGradients,
} from 'largo';
import { readFileSync } from 'node:fs';

// ---------------------------------------------------------------------------
// inputs

// Each case draws its inputs from a stream seeded by its id (see `seededCase`),
// so they do not depend on which other cases were selected or in what order.
let seed = 1000;
const caseSeed = (id) => {
  let h = 2166136261;
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 16777619) >>> 0;
  return 1000 + (h % 1000000);
};
/** The case with its `make` reseeded from the case id first. */
export const seededCase = (cs) => ({
  ...cs,
  make: () => {
    seed = caseSeed(cs.id);
    return cs.make();
  },
});
const randnArr = (shape, std = 1, mean = 0) => {
  const t = C.randn(shape, { seed: seed++, std, mean });
  const data = Float32Array.from(t.dataSync());
  t.dispose();
  return { shape: [...shape], data };
};
const zerosArr = (shape) => ({ shape: [...shape], data: new Float32Array(shape.reduce((a, b) => a * b, 1)) });

/** A one-hot float target [N, K, ...spatial] of uniform random labels. */
function oneHotArr(n, k, spatial) {
  const vox = spatial.reduce((a, b) => a * b, 1);
  const u = C.rand([n * vox], { seed: seed++ });
  const uv = u.dataSync();
  const data = new Float32Array(n * k * vox);
  for (let b = 0; b < n; b++) {
    for (let v = 0; v < vox; v++) {
      const lbl = Math.min(k - 1, Math.floor(uv[b * vox + v] * k));
      data[(b * k + lbl) * vox + v] = 1;
    }
  }
  u.dispose();
  return { shape: [n, k, ...spatial], data };
}

const ours = (a) => C.tensor(Float32Array.from(a.data), a.shape);

// tfjs layouts
const NCDHW_TO_NDHWC = [0, 2, 3, 4, 1];
const NDHWC_TO_NCDHW = [0, 4, 1, 2, 3];
const OIDHW_TO_DHWIO = [2, 3, 4, 1, 0];
const DHWIO_TO_OIDHW = [4, 3, 0, 1, 2];

function tfIn(tf, a, perm) {
  return tf.tidy(() => {
    const t = tf.tensor(Float32Array.from(a.data), a.shape, 'float32');
    return perm ? tf.transpose(t, perm) : t;
  });
}
/** Reads a tfjs tensor (asynchronously: GPU backends cannot read synchronously), transposed back to our layout. */
async function tfOut(tf, t, perm) {
  const r = tf.tidy(() => (perm ? tf.transpose(t, perm) : t.clone()));
  try {
    return (await r.data()).slice();
  } finally {
    r.dispose();
  }
}

/** Our outputs: `fn` builds { name: Tensor } in a tidy scope; the values are read asynchronously (any backend). */
async function readOurs(fn) {
  const ts = C.tidy(fn);
  const out = {};
  try {
    for (const [k, t] of Object.entries(ts)) out[k] = await t.data();
  } finally {
    for (const t of Object.values(ts)) t.dispose();
  }
  return out;
}
const disposeAll = (xs) => {
  for (const x of Object.values(xs)) x.dispose();
};

// ---------------------------------------------------------------------------
// matmul

export function matmulCase(m, k, n) {
  return {
    id: `matmul-${m}x${k}x${n}`,
    label: m === k && k === n ? `matmul ${m}³` : `matmul ${m}×${k}×${n}`,
    kind: 'matmul',
    what: `C = A·B, A [${m}, ${k}], B [${k}, ${n}]`,
    flops: 2 * m * k * n,
    make: () => ({ a: randnArr([m, k]), b: randnArr([k, n]) }),
    ours(i) {
      const a = ours(i.a),
        b = ours(i.b);
      return {
        run: () =>
          C.tidy(() => {
            C.matmul(a, b);
          }),
        outputs: () => readOurs(() => ({ y: C.matmul(a, b) })),
        dispose: () => {
          a.dispose();
          b.dispose();
        },
      };
    },
    tfjs(tf, i) {
      const a = tfIn(tf, i.a),
        b = tfIn(tf, i.b);
      return {
        run: () =>
          tf.tidy(() => {
            tf.matMul(a, b);
          }),
        outputs: async () => {
          const y = tf.matMul(a, b);
          try {
            return { y: await tfOut(tf, y) };
          } finally {
            y.dispose();
          }
        },
        dispose: () => {
          a.dispose();
          b.dispose();
        },
      };
    },
  };
}

// ---------------------------------------------------------------------------
// conv3d, stride 1, padding 1 (tfjs: 'same', which is padding 1 for 3×3×3)

export function convCases(tag, xs, ws) {
  const [n, , d, h, w] = xs;
  const [o, ci] = ws;
  const ys = [n, o, d, h, w]; // stride 1, padding 1, odd kernel: same spatial size
  const macs = n * o * d * h * w * ci * ws[2] * ws[3] * ws[4];
  const shapeTxt = `[${xs.join(',')}]×[${ws.join(',')}]`;
  const make = () => ({ x: randnArr(xs), w: randnArr(ws, 1 / Math.sqrt(ci * 27)), dy: randnArr(ys) });
  const base = { flops: 2 * macs, make };
  const opts = { padding: 1 };
  return [
    {
      ...base,
      id: `conv3d-fwd-${tag}`,
      kind: 'conv_fwd',
      label: `conv3d fwd ${shapeTxt}`,
      what: `y = conv3d(x, w), x [${xs}], w [${ws}], padding 1, no bias`,
      ours(i) {
        const x = ours(i.x),
          wt = ours(i.w);
        const f = () => C.conv3d(x, wt, null, opts);
        return {
          run: () =>
            C.tidy(() => {
              f();
            }),
          outputs: () => readOurs(() => ({ y: f() })),
          dispose: () => {
            x.dispose();
            wt.dispose();
          },
        };
      },
      tfjs(tf, i) {
        const x = tfIn(tf, i.x, NCDHW_TO_NDHWC),
          wt = tfIn(tf, i.w, OIDHW_TO_DHWIO);
        const f = () => tf.conv3d(x, wt, 1, 'same');
        return {
          run: () =>
            tf.tidy(() => {
              f();
            }),
          outputs: async () => {
            const r = f();
            try {
              return { y: await tfOut(tf, r, NDHWC_TO_NCDHW) };
            } finally {
              r.dispose();
            }
          },
          dispose: () => {
            x.dispose();
            wt.dispose();
          },
        };
      },
    },
    {
      ...base,
      id: `conv3d-gi-${tag}`,
      kind: 'conv_gi',
      label: `conv3d grad-input ${shapeTxt}`,
      what: `dx = ∂⟨conv3d(x, w), dy⟩/∂x for the same shapes (a transposed convolution)`,
      ours(i) {
        const dy = ours(i.dy),
          wt = ours(i.w);
        const f = () => C.conv3dGradInput(dy, wt, xs, opts);
        return {
          run: () =>
            C.tidy(() => {
              f();
            }),
          outputs: () => readOurs(() => ({ dx: f() })),
          dispose: () => {
            dy.dispose();
            wt.dispose();
          },
        };
      },
      tfjs(tf, i) {
        const dy = tfIn(tf, i.dy, NCDHW_TO_NDHWC),
          wt = tfIn(tf, i.w, OIDHW_TO_DHWIO);
        const xShape = NCDHW_TO_NDHWC.map((p) => xs[p]);
        // the public op behind Conv3D's gradient w.r.t. x (kernel Conv3DBackpropInputV2)
        const f = () => tf.conv3dTranspose(dy, wt, xShape, 1, 'same');
        return {
          run: () =>
            tf.tidy(() => {
              f();
            }),
          outputs: async () => {
            const r = f();
            try {
              return { dx: await tfOut(tf, r, NDHWC_TO_NCDHW) };
            } finally {
              r.dispose();
            }
          },
          dispose: () => {
            dy.dispose();
            wt.dispose();
          },
        };
      },
    },
    {
      ...base,
      id: `conv3d-gw-${tag}`,
      kind: 'conv_gw',
      label: `conv3d grad-weight ${shapeTxt}`,
      what: `dw = ∂⟨conv3d(x, w), dy⟩/∂w for the same shapes`,
      ours(i) {
        const x = ours(i.x),
          dy = ours(i.dy);
        const f = () => C.conv3dGradWeight(x, dy, ws, opts);
        return {
          run: () =>
            C.tidy(() => {
              f();
            }),
          outputs: () => readOurs(() => ({ dw: f() })),
          dispose: () => {
            x.dispose();
            dy.dispose();
          },
        };
      },
      tfjs(tf, i) {
        const x = tfIn(tf, i.x, NCDHW_TO_NDHWC),
          dy = tfIn(tf, i.dy, NCDHW_TO_NDHWC);
        const filterShape = OIDHW_TO_DHWIO.map((p) => ws[p]);
        // tfjs has no public grad-filter op: this is the kernel tf.grad runs for Conv3D's filter
        const f = () =>
          tf.engine().runKernel('Conv3DBackpropFilterV2', { x, dy }, { strides: [1, 1, 1], pad: 'same', filterShape });
        return {
          run: () =>
            tf.tidy(() => {
              f();
            }),
          outputs: async () => {
            const r = f();
            try {
              return { dw: await tfOut(tf, r, DHWIO_TO_OIDHW) };
            } finally {
              r.dispose();
            }
          },
          dispose: () => {
            x.dispose();
            dy.dispose();
          },
        };
      },
    },
  ];
}

// ---------------------------------------------------------------------------
// conv3d forward + backward (grad-input and grad-weight), one case

function convFwdBwdCase(xs, ws) {
  const [n, , d, h, w] = xs;
  const o = ws[0];
  const ys = [n, o, d, h, w];
  const macs = n * o * d * h * w * ws[1] * ws[2] * ws[3] * ws[4];
  const shapeTxt = `[${xs.join(',')}]×[${ws.join(',')}]`;
  const opts = { padding: 1 };
  return {
    id: `conv3d-fb-${xs.join('x')}`,
    kind: 'conv_fb',
    label: `conv3d fwd+bwd ${shapeTxt}`,
    flops: 6 * macs,
    what: `y = conv3d(x, w), then dx and dw for a given dy: the three convolutions of one training step, x [${xs}], w [${ws}], padding 1`,
    make: () => ({ x: randnArr(xs), w: randnArr(ws, 1 / Math.sqrt(ws[1] * 27)), dy: randnArr(ys) }),
    ours(i) {
      const x = ours(i.x),
        wt = ours(i.w),
        dy = ours(i.dy);
      const f = () => ({
        y: C.conv3d(x, wt, null, opts),
        dx: C.conv3dGradInput(dy, wt, xs, opts),
        dw: C.conv3dGradWeight(x, dy, ws, opts),
      });
      return {
        run: () =>
          C.tidy(() => {
            f();
          }),
        outputs: () => readOurs(f),
        dispose: () => {
          x.dispose();
          wt.dispose();
          dy.dispose();
        },
      };
    },
    tfjs(tf, i) {
      const x = tfIn(tf, i.x, NCDHW_TO_NDHWC),
        wt = tfIn(tf, i.w, OIDHW_TO_DHWIO),
        dy = tfIn(tf, i.dy, NCDHW_TO_NDHWC);
      const xShape = NCDHW_TO_NDHWC.map((p) => xs[p]),
        filterShape = OIDHW_TO_DHWIO.map((p) => ws[p]);
      const f = () => ({
        y: tf.conv3d(x, wt, 1, 'same'),
        dx: tf.conv3dTranspose(dy, wt, xShape, 1, 'same'),
        dw: tf
          .engine()
          .runKernel('Conv3DBackpropFilterV2', { x, dy }, { strides: [1, 1, 1], pad: 'same', filterShape }),
      });
      return {
        run: () =>
          tf.tidy(() => {
            f();
          }),
        // (the reads are asynchronous: the tensors are disposed after them, not by a tidy around them)
        outputs: async () => {
          const r = f();
          try {
            return {
              y: await tfOut(tf, r.y, NDHWC_TO_NCDHW),
              dx: await tfOut(tf, r.dx, NDHWC_TO_NCDHW),
              dw: await tfOut(tf, r.dw, DHWIO_TO_OIDHW),
            };
          } finally {
            for (const t of Object.values(r)) t.dispose();
          }
        },
        dispose: () => {
          x.dispose();
          wt.dispose();
          dy.dispose();
        },
      };
    },
  };
}

// ---------------------------------------------------------------------------
// one LARGO training step of the main job's network (npm start)

async function largoStepCase() {
  const here = new URL('../../packages/largo/configs/phantom.json', import.meta.url);
  const cfg = resolveConfig(JSON.parse(readFileSync(here, 'utf8')), {}, 'phantom.json');
  const data = await loadSegData(cfg);
  return {
    id: 'largo-step',
    kind: null,
    oursOnly: true,
    // steady state, as in the 1000 steps of `npm start`: the first steps run the
    // wasm kernels from V8's baseline compiler until they tier up (~130 ms vs ~90)
    warmup: 10,
    // a step's cost depends on the subsets it samples (60–140 ms): a sample is
    // 5 consecutive steps, the same step numbers in every column of a round
    minInner: 5,
    // and 9 rounds for our columns (the JS one stays within --budget-s)
    minReps: 9,
    label: `LARGO train step (main job: U-Net ${cfg.model.baseFeatures} features, depth ${cfg.model.depth}, batch ${cfg.train.batchSize}×${cfg.train.patchSize.join('×')})`,
    what:
      "One step of `npm start`'s LARGO training: sampled subset and full-modality passes (CP kernel reconstruction included), " +
      'deep-supervision loss, backward, gradient clipping, SGD with Nesterov momentum. No peer runs this network.',
    make: () => ({}),
    ours() {
      const net = buildSegNet(cfg, 'largo', data);
      const task = new SegTask(net, data, cfg, 'largo');
      const opt = makeOptimizer(task.params, cfg, task.subsetParams);
      task.setTraining(true);
      let s = 0;
      const step = () => {
        opt.setLr(scheduledLr(cfg, s));
        const loss = task.lossStep(s++);
        // as trainLoop does (unusedGrads 'zero', clipping, update)
        noGrad(() => {
          for (const [, p] of task.params) if (!p.grad) p.grad = C.keep(C.zeros(p.shape, p.dtype));
          clipGradients(task.params, cfg.train.clipGradNorm);
          opt.step();
        });
        zeroGrad(task.params.map(([, p]) => p));
        return loss;
      };
      return {
        run: () => {
          step();
        },
        outputs: () => ({ loss: Float32Array.of(step()) }),
        dispose: () => {
          opt.dispose();
          for (const [, p] of task.params) p.dispose();
        },
      };
    },
  };
}

// ---------------------------------------------------------------------------
// instance norm forward (no affine)

export function instNormCase(xs) {
  return {
    id: `instnorm-${xs.join('x')}`,
    kind: 'instnorm',
    label: `instanceNorm fwd [${xs.join(',')}]`,
    what: `y = (x − mean)/sqrt(var + 1e-5) per (n, c) over the spatial axes, x [${xs}]`,
    make: () => ({ x: randnArr(xs, 2, 0.5) }),
    ours(i) {
      const x = ours(i.x);
      return {
        run: () =>
          C.tidy(() => {
            C.instanceNorm(x);
          }),
        outputs: () => readOurs(() => ({ y: C.instanceNorm(x) })),
        dispose: () => x.dispose(),
      };
    },
    tfjs(tf, i) {
      const x = tfIn(tf, i.x, NCDHW_TO_NDHWC);
      // no instance-norm op in tfjs: moments over the spatial axes (two-pass), then normalize
      const f = () =>
        tf.tidy(() => {
          const { mean, variance } = tf.moments(x, [1, 2, 3], true);
          return tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, 1e-5)));
        });
      return {
        run: () =>
          tf.tidy(() => {
            f();
          }),
        outputs: async () => {
          const r = f();
          try {
            return { y: await tfOut(tf, r, NDHWC_TO_NCDHW) };
          } finally {
            r.dispose();
          }
        },
        dispose: () => x.dispose(),
      };
    },
  };
}

// ---------------------------------------------------------------------------
// instance norm forward + backward (no affine): y and dx = vjp(dy)

export function instNormFwdBwdCase(xs) {
  return {
    id: `instnorm-fb-${xs.join('x')}`,
    kind: 'instnorm_fb',
    label: `instanceNorm fwd+bwd [${xs.join(',')}]`,
    what: `y = instanceNorm(x) (eps 1e-5, no affine) and dx = ∂⟨y, dy⟩/∂x through each library's autograd, x, dy [${xs}]`,
    make: () => ({ x: randnArr(xs, 2, 0.5), dy: randnArr(xs) }),
    ours(i) {
      const x = requireGrad(ours(i.x)),
        dy = ours(i.dy);
      const f = () => {
        x.grad?.dispose();
        x.grad = null;
        const y = C.instanceNorm(x);
        backward(y, { grad: dy });
        return y;
      };
      return {
        run: () =>
          C.tidy(() => {
            f();
          }),
        outputs: async () => {
          const y = C.tidy(f);
          try {
            return { y: await y.data(), dx: await x.grad.data() };
          } finally {
            y.dispose();
          }
        },
        dispose: () => {
          x.grad?.dispose();
          x.dispose();
          dy.dispose();
        },
      };
    },
    tfjs(tf, i) {
      const x = tfIn(tf, i.x, NCDHW_TO_NDHWC),
        dy = tfIn(tf, i.dy, NCDHW_TO_NDHWC);
      // no instance-norm op in tfjs: moments over the spatial axes, then normalize; tf.grad differentiates it
      const norm = (v) => {
        const { mean, variance } = tf.moments(v, [1, 2, 3], true);
        return tf.mul(tf.sub(v, mean), tf.rsqrt(tf.add(variance, 1e-5)));
      };
      const g = tf.grad(norm);
      const f = () => ({ y: norm(x), dx: g(x, dy) });
      return {
        run: () =>
          tf.tidy(() => {
            f();
          }),
        outputs: async () => {
          const r = tf.tidy(f);
          try {
            return { y: await tfOut(tf, r.y, NDHWC_TO_NCDHW), dx: await tfOut(tf, r.dx, NDHWC_TO_NCDHW) };
          } finally {
            r.y.dispose();
            r.dx.dispose();
          }
        },
        dispose: () => {
          x.dispose();
          dy.dispose();
        },
      };
    },
  };
}

// ---------------------------------------------------------------------------
// one training step of a small 3D U-Net block

const PARAMS = ['w1', 'b1', 'g1', 'be1', 'w2', 'b2', 'g2', 'be2', 'wh', 'bh'];

function trainCase(n, cin, f, k, sp) {
  const spatial = [sp, sp, sp];
  return {
    id: `train-unet-block`,
    kind: 'train',
    label: `train step U-Net block [${n},${cin},${sp}³]`,
    what:
      `conv3d ${cin}→${f} (3³, pad 1, bias) → instanceNorm (affine) → leakyReLU 0.01 → conv3d ${f}→${f} → instanceNorm → leakyReLU → ` +
      `conv3d ${f}→${k} (1³ head) → softmax over channels → soft Dice (smooth 1e-5, mean over (n, class)); ` +
      `backward; SGD (lr 1e-2, Nesterov momentum 0.99) update of all 10 parameter tensors. Input [${n},${cin},${sp},${sp},${sp}].`,
    make: () => {
      const g1 = randnArr([f], 0.1, 1),
        g2 = randnArr([f], 0.1, 1);
      return {
        x: randnArr([n, cin, ...spatial]),
        target: oneHotArr(n, k, spatial),
        w1: randnArr([f, cin, 3, 3, 3], Math.sqrt(2 / (cin * 27))),
        b1: randnArr([f], 0.1),
        g1,
        be1: randnArr([f], 0.1),
        w2: randnArr([f, f, 3, 3, 3], Math.sqrt(2 / (f * 27))),
        b2: randnArr([f], 0.1),
        g2,
        be2: randnArr([f], 0.1),
        wh: randnArr([k, f, 1, 1, 1], Math.sqrt(2 / f)),
        bh: zerosArr([k]),
      };
    },
    ours(i) {
      const x = ours(i.x),
        target = ours(i.target);
      const p = Object.fromEntries(PARAMS.map((nm) => [nm, requireGrad(ours(i[nm]))]));
      const opt = new SGD(
        PARAMS.map((nm) => [nm, p[nm]]),
        { lr: 1e-2, momentum: 0.99, nesterov: true },
      );
      const lossFn = () => {
        let h = C.leakyRelu(C.instanceNorm(C.conv3d(x, p.w1, p.b1, { padding: 1 }), p.g1, p.be1, 1e-5), 0.01);
        h = C.leakyRelu(C.instanceNorm(C.conv3d(h, p.w2, p.b2, { padding: 1 }), p.g2, p.be2, 1e-5), 0.01);
        const probs = C.softmax(C.conv3d(h, p.wh, p.bh), 1);
        return C.softDiceLoss(probs, target, { smooth: 1e-5 });
      };
      return {
        run: () => {
          opt.zeroGrad();
          C.tidy(() => {
            backward(lossFn());
          });
          opt.step();
        },
        outputs: async () => {
          opt.zeroGrad();
          const l = C.tidy(() => {
            const v = lossFn();
            backward(v);
            return v;
          });
          const out = { loss: await l.data() };
          l.dispose();
          for (const nm of PARAMS) out[`grad_${nm}`] = await p[nm].grad.data();
          opt.zeroGrad();
          return out;
        },
        dispose: () => {
          opt.zeroGrad();
          opt.dispose();
          x.dispose();
          target.dispose();
          for (const t of Object.values(p)) t.dispose();
        },
      };
    },
    tfjs(tf, i) {
      const x = tfIn(tf, i.x, NCDHW_TO_NDHWC),
        target = tfIn(tf, i.target, NCDHW_TO_NDHWC);
      const perm = (nm) => (i[nm].shape.length === 5 ? OIDHW_TO_DHWIO : null);
      const v = Object.fromEntries(
        PARAMS.map((nm) => {
          const t = tfIn(tf, i[nm], perm(nm));
          const vr = tf.variable(t, true);
          t.dispose();
          return [nm, vr];
        }),
      );
      const varList = PARAMS.map((nm) => v[nm]);
      const opt = tf.train.momentum(1e-2, 0.99, true);
      const inorm = (h, g, b) => {
        const { mean, variance } = tf.moments(h, [1, 2, 3], true);
        return tf.add(tf.mul(tf.mul(tf.sub(h, mean), tf.rsqrt(tf.add(variance, 1e-5))), g), b);
      };
      const lossFn = () => {
        let h = tf.leakyRelu(inorm(tf.add(tf.conv3d(x, v.w1, 1, 'same'), v.b1), v.g1, v.be1), 0.01);
        h = tf.leakyRelu(inorm(tf.add(tf.conv3d(h, v.w2, 1, 'same'), v.b2), v.g2, v.be2), 0.01);
        const probs = tf.softmax(tf.add(tf.conv3d(h, v.wh, 1, 'valid'), v.bh)); // channels last
        const inter = tf.sum(tf.mul(probs, target), [1, 2, 3]);
        const denom = tf.add(tf.sum(probs, [1, 2, 3]), tf.sum(target, [1, 2, 3]));
        const dice = tf.div(tf.add(tf.mul(inter, 2), 1e-5), tf.add(denom, 1e-5));
        return tf.sub(1, tf.mean(dice));
      };
      return {
        run: () => {
          opt.minimize(lossFn, false, varList);
        },
        outputs: async () => {
          const { value, grads } = tf.variableGrads(lossFn, varList);
          try {
            const out = { loss: (await value.data()).slice() };
            for (const nm of PARAMS)
              out[`grad_${nm}`] = await tfOut(tf, grads[v[nm].name], perm(nm) ? DHWIO_TO_OIDHW : null);
            return out;
          } finally {
            value.dispose();
            for (const g of Object.values(grads)) g.dispose();
          }
        },
        dispose: () => {
          opt.dispose();
          x.dispose();
          target.dispose();
          for (const t of varList) t.dispose();
        },
      };
    },
  };
}

// ---------------------------------------------------------------------------
// LARGO's CP kernel reconstruction

function cpCase(O, I, S, K) {
  const R = cpRank(K, O, I, S);
  return {
    id: `cp-${O}x${I}x${S}`,
    kind: 'cp',
    label: `cpReconstruct ${O}×${I}×${S} R=${R}`,
    what:
      `W[o,i,s] = Σ_r w_r·A_out[o,r]·A_in[i,r]·A_kernel[s,r] for one subset, O=${O}, I=${I}, S=${S}; ` +
      `R = ${R} is the default rank floor(O·I·S/(K+O+I+S)) with K = ${K} subsets (4 modalities). ` +
      'Peers: Khatri-Rao product of A_in and A_kernel, then one GEMM (as tensorly does).',
    flops: 2 * O * I * S * R,
    make: () => ({ weights: randnArr([R]), aOut: randnArr([O, R]), aIn: randnArr([I, R]), aKernel: randnArr([S, R]) }),
    ours(i) {
      const t = Object.fromEntries(Object.entries(i).map(([k, a]) => [k, ours(a)]));
      const f = () => C.cpReconstruct(t.weights, t.aOut, t.aIn, t.aKernel);
      return {
        run: () =>
          C.tidy(() => {
            f();
          }),
        outputs: () => readOurs(() => ({ W: f() })),
        dispose: () => disposeAll(t),
      };
    },
    tfjs(tf, i) {
      const t = Object.fromEntries(Object.entries(i).map(([k, a]) => [k, tfIn(tf, a)]));
      const f = () =>
        tf.tidy(() => {
          const kr = tf.reshape(tf.mul(tf.expandDims(t.aIn, 1), tf.expandDims(t.aKernel, 0)), [I * S, R]);
          return tf.reshape(tf.matMul(tf.mul(t.aOut, t.weights), kr, false, true), [O, I, S]);
        });
      return {
        run: () =>
          tf.tidy(() => {
            f();
          }),
        outputs: async () => {
          const r = f();
          try {
            return { W: await tfOut(tf, r) };
          } finally {
            r.dispose();
          }
        },
        dispose: () => disposeAll(t),
      };
    },
  };
}

export const CASES = [
  matmulCase(256, 256, 256),
  matmulCase(1024, 1024, 1024),
  ...convCases('c32', [1, 32, 32, 32, 32], [32, 32, 3, 3, 3]).slice(0, 1),
  convFwdBwdCase([1, 32, 32, 32, 32], [32, 32, 3, 3, 3]),
  ...convCases('unet', [2, 16, 32, 32, 32], [16, 16, 3, 3, 3]),
  ...convCases('largo', [1, 32, 16, 16, 16], [64, 32, 3, 3, 3]),
  instNormCase([2, 32, 32, 32, 32]),
  instNormFwdBwdCase([2, 32, 32, 32, 32]),
  trainCase(2, 4, 16, 3, 32),
  cpCase(64, 64, 27, 15),
  await largoStepCase(),
].map(seededCase);
