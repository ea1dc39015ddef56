import { engine } from '../engine.js';
import { OpError, fmtShape } from '../errors.js';
import { Tensor } from '../tensor.js';
import { reshape } from './layout.js';
import { run1 } from './util.js';
import { convOutputSize, convTransposeOutputSize, type Conv3dAttrs } from '../conv-geometry.js';

/** An int for every spatial axis, or one int for all of them. */
export type Spatial = number | readonly number[];

export interface ConvOptions {
  stride?: Spatial;
  padding?: Spatial;
  dilation?: Spatial;
}

export interface ConvTransposeOptions extends ConvOptions {
  /** Extra size added to one side of each output axis; must be < stride or < dilation (as in PyTorch). */
  outputPadding?: Spatial;
}

/** Validation context: every message names the op and the shapes involved. */
class Check {
  constructor(
    readonly op: string,
    readonly shapes: string,
  ) {}
  fail(msg: string): never {
    throw new OpError(this.op, `${msg} (${this.shapes})`);
  }

  tensor(x: unknown, what: string): asserts x is Tensor {
    if (!(x instanceof Tensor)) this.fail(`${what} must be a Tensor, got ${x === null ? 'null' : typeof x}`);
    x.assertAlive(this.op);
  }

  float(x: Tensor, what: string): void {
    if (x.dtype !== 'float32' && x.dtype !== 'float64') this.fail(`${what} must be float32 or float64, got ${x.dtype}`);
  }

  rank(x: Tensor | readonly number[], r: number, what: string, layout: string): void {
    const shape = x instanceof Tensor ? x.shape : x;
    if (shape.length !== r) this.fail(`${what} must have rank ${r} ${layout}, got ${fmtShape(shape)}`);
  }

  ints(name: string, v: Spatial | undefined, n: number, dflt: number, min: number): number[] {
    const arr =
      v === undefined ? new Array<number>(n).fill(dflt) : typeof v === 'number' ? new Array<number>(n).fill(v) : [...v];
    if (arr.length !== n) this.fail(`${name} must have ${n} entries, got [${arr.join(', ')}]`);
    for (const a of arr) {
      if (!Number.isInteger(a) || a < min) {
        this.fail(`${name} must be ${min === 0 ? 'non-negative' : 'positive'} integers, got [${arr.join(', ')}]`);
      }
    }
    return arr;
  }

  sameDtype(a: Tensor, b: Tensor, what: string): void {
    if (a.dtype !== b.dtype) this.fail(`dtype mismatch: ${what} is ${b.dtype}, expected ${a.dtype}`);
  }

  bias(b: Tensor | null | undefined, channels: number, x: Tensor): void {
    if (b === null || b === undefined) return;
    this.tensor(b, 'bias');
    if (b.rank !== 1 || b.shape[0] !== channels)
      this.fail(`bias must have shape [${channels}], got ${fmtShape(b.shape)}`);
    this.sameDtype(x, b, 'bias');
  }
}

const names = (...xs: [string, unknown][]) =>
  xs
    .map(([n, t]) => `${n} ${t instanceof Tensor ? fmtShape(t.shape) : Array.isArray(t) ? fmtShape(t) : String(t)}`)
    .join(', ');

interface Parsed {
  stride: number[];
  padding: number[];
  dilation: number[];
}

function parseCommon(c: Check, n: number, o: ConvOptions): Parsed {
  return {
    stride: c.ints('stride', o.stride, n, 1, 1),
    padding: c.ints('padding', o.padding, n, 0, 0),
    dilation: c.ints('dilation', o.dilation, n, 1, 1),
  };
}

/** Checks x [N, C, ...sp] against a conv weight [O, C, ...k] and returns the output spatial extents. */
function checkConv(
  c: Check,
  x: Tensor,
  w: Tensor,
  bias: Tensor | null | undefined,
  nsp: number,
  opts: ConvOptions,
): Parsed & { out: number[] } {
  const layout = nsp === 3 ? ['[N, C, D, H, W]', '[O, C, kd, kh, kw]'] : ['[N, C, H, W]', '[O, C, kh, kw]'];
  c.tensor(x, 'input');
  c.tensor(w, 'weight');
  c.float(x, 'input');
  c.sameDtype(x, w, 'weight');
  c.rank(x, nsp + 2, 'input', layout[0]);
  c.rank(w, nsp + 2, 'weight', layout[1]);
  if (x.shape[1] !== w.shape[1]) c.fail(`input has ${x.shape[1]} channels but weight expects ${w.shape[1]}`);
  c.bias(bias, w.shape[0], x);
  const p = parseCommon(c, nsp, opts);
  const out: number[] = [];
  for (let i = 0; i < nsp; i++) {
    const n = x.shape[i + 2],
      k = w.shape[i + 2];
    const span = p.dilation[i] * (k - 1) + 1,
      padded = n + 2 * p.padding[i];
    if (k < 1 || span > padded) {
      c.fail(
        `kernel extent ${span} (size ${k}, dilation ${p.dilation[i]}) is larger than the padded input extent ${padded} along spatial axis ${i}`,
      );
    }
    out.push(convOutputSize(n, k, p.stride[i], p.padding[i], p.dilation[i]));
  }
  return { ...p, out };
}

function runConv(x: Tensor, w: Tensor, bias: Tensor | null | undefined, attrs: Conv3dAttrs): Tensor {
  return run1('conv3d', bias ? [x, w, bias] : [x, w], attrs);
}

/**
 * 3-D convolution (cross-correlation, as in PyTorch): x [N, C, D, H, W],
 * w [O, C, kd, kh, kw], optional bias [O] → [N, O, D', H', W'].
 */
export function conv3d(x: Tensor, w: Tensor, bias?: Tensor | null, opts: ConvOptions = {}): Tensor {
  const c: Check = new Check(
    'conv3d',
    names(['input', x], ['weight', w], ...(bias ? [['bias', bias] as [string, unknown]] : [])),
  );
  const p = checkConv(c, x, w, bias, 3, opts);
  return runConv(x, w, bias, { stride: p.stride, padding: p.padding, dilation: p.dilation });
}

/**
 * 2-D convolution: x [N, C, H, W], w [O, C, kh, kw], optional bias [O]. Runs
 * the 3-D kernels with a depth of 1 (the reshapes share storage).
 */
export function conv2d(x: Tensor, w: Tensor, bias?: Tensor | null, opts: ConvOptions = {}): Tensor {
  const c: Check = new Check(
    'conv2d',
    names(['input', x], ['weight', w], ...(bias ? [['bias', bias] as [string, unknown]] : [])),
  );
  const p = checkConv(c, x, w, bias, 2, opts);
  const e = engine();
  const x5 = e.tidy(() => reshape(x, [x.shape[0], x.shape[1], 1, x.shape[2], x.shape[3]]));
  const w5 = e.tidy(() => reshape(w, [w.shape[0], w.shape[1], 1, w.shape[2], w.shape[3]]));
  const y5 = runConv(x5, w5, bias, {
    stride: [1, ...p.stride],
    padding: [0, ...p.padding],
    dilation: [1, ...p.dilation],
  });
  x5.dispose();
  w5.dispose();
  const y = e.tidy(() => reshape(y5, [y5.shape[0], y5.shape[1], y5.shape[3], y5.shape[4]]));
  y5.dispose();
  return y;
}

/**
 * 3-D transposed convolution (PyTorch's ConvTranspose3d without groups):
 * x [N, I, D, H, W], w [I, O, kd, kh, kw], optional bias [O] →
 * [N, O, (D−1)·s − 2p + d·(kd−1) + outputPadding + 1, ...]. It is the adjoint
 * of conv3d, so it runs the conv3dGradInput kernel with x in the role of dy.
 */
export function convTranspose3d(x: Tensor, w: Tensor, bias?: Tensor | null, opts: ConvTransposeOptions = {}): Tensor {
  const c: Check = new Check(
    'convTranspose3d',
    names(['input', x], ['weight', w], ...(bias ? [['bias', bias] as [string, unknown]] : [])),
  );
  c.tensor(x, 'input');
  c.tensor(w, 'weight');
  c.float(x, 'input');
  c.sameDtype(x, w, 'weight');
  c.rank(x, 5, 'input', '[N, I, D, H, W]');
  c.rank(w, 5, 'weight', '[I, O, kd, kh, kw]');
  if (x.shape[1] !== w.shape[0]) c.fail(`input has ${x.shape[1]} channels but weight expects ${w.shape[0]}`);
  c.bias(bias, w.shape[1], x);
  const p = parseCommon(c, 3, opts);
  const op = c.ints('outputPadding', opts.outputPadding, 3, 0, 0);
  const out: number[] = [];
  for (let i = 0; i < 3; i++) {
    if (op[i] >= p.stride[i] && op[i] >= p.dilation[i]) {
      c.fail(
        `outputPadding ${op[i]} must be smaller than either stride ${p.stride[i]} or dilation ${p.dilation[i]} along spatial axis ${i}`,
      );
    }
    if (w.shape[i + 2] < 1) c.fail(`kernel size must be positive along spatial axis ${i}`);
    const n = convTransposeOutputSize(x.shape[i + 2], w.shape[i + 2], p.stride[i], p.padding[i], p.dilation[i], op[i]);
    if (n < 1) c.fail(`output extent ${n} along spatial axis ${i} is not positive (padding ${p.padding[i]} too large)`);
    out.push(n);
  }
  const attrs = {
    stride: p.stride,
    padding: p.padding,
    dilation: p.dilation,
    inputShape: [x.shape[0], w.shape[1], ...out],
  };
  return run1('conv3dGradInput', bias ? [x, w, bias] : [x, w], attrs);
}

/**
 * The gradient of conv3d with respect to its input: dy [N, O, D', H', W'],
 * w [O, C, kd, kh, kw] → dx of `inputShape` [N, C, D, H, W]. Input voxels
 * that no output tap reads get 0. Used by gradient rules and as the
 * transposed-convolution forward pass.
 */
export function conv3dGradInput(dy: Tensor, w: Tensor, inputShape: readonly number[], opts: ConvOptions = {}): Tensor {
  const c: Check = new Check('conv3dGradInput', names(['dy', dy], ['weight', w], ['inputShape', [...inputShape]]));
  c.tensor(dy, 'dy');
  c.tensor(w, 'weight');
  c.float(dy, 'dy');
  c.sameDtype(dy, w, 'weight');
  c.rank(dy, 5, 'dy', '[N, O, D, H, W]');
  c.rank(w, 5, 'weight', '[O, C, kd, kh, kw]');
  c.rank(inputShape, 5, 'inputShape', '[N, C, D, H, W]');
  for (const d of inputShape) if (!Number.isInteger(d) || d < 0) c.fail('inputShape must hold non-negative integers');
  if (dy.shape[1] !== w.shape[0]) c.fail(`dy has ${dy.shape[1]} channels but weight has ${w.shape[0]} output channels`);
  if (inputShape[1] !== w.shape[1]) c.fail(`inputShape has ${inputShape[1]} channels but weight expects ${w.shape[1]}`);
  if (inputShape[0] !== dy.shape[0]) c.fail(`batch sizes differ: dy ${dy.shape[0]}, inputShape ${inputShape[0]}`);
  const p = parseCommon(c, 3, opts);
  return run1('conv3dGradInput', [dy, w], { ...p, inputShape: [...inputShape] });
}

/**
 * The gradient of conv3d with respect to its weight: x [N, C, D, H, W],
 * dy [N, O, D', H', W'] → dw of `weightShape` [O, C, kd, kh, kw].
 */
export function conv3dGradWeight(
  x: Tensor,
  dy: Tensor,
  weightShape: readonly number[],
  opts: ConvOptions = {},
): Tensor {
  const c: Check = new Check('conv3dGradWeight', names(['input', x], ['dy', dy], ['weightShape', [...weightShape]]));
  c.tensor(x, 'input');
  c.tensor(dy, 'dy');
  c.float(x, 'input');
  c.sameDtype(x, dy, 'dy');
  c.rank(x, 5, 'input', '[N, C, D, H, W]');
  c.rank(dy, 5, 'dy', '[N, O, D, H, W]');
  c.rank(weightShape, 5, 'weightShape', '[O, C, kd, kh, kw]');
  for (const d of weightShape) if (!Number.isInteger(d) || d < 0) c.fail('weightShape must hold non-negative integers');
  if (weightShape[0] !== dy.shape[1])
    c.fail(`dy has ${dy.shape[1]} channels but weightShape has ${weightShape[0]} output channels`);
  if (weightShape[1] !== x.shape[1])
    c.fail(`input has ${x.shape[1]} channels but weightShape expects ${weightShape[1]}`);
  if (x.shape[0] !== dy.shape[0]) c.fail(`batch sizes differ: input ${x.shape[0]}, dy ${dy.shape[0]}`);
  const p = parseCommon(c, 3, opts);
  return run1('conv3dGradWeight', [x, dy], { ...p, weightShape: [...weightShape] });
}
