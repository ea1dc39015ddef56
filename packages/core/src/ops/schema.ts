// The op schema: the one declaration of every kernel op — its named inputs
// (required, then optional), its attributes type, its outputs and its place in
// autograd. Backends type their kernel tables against it (`KernelTable`), so a
// missing or mistyped kernel is a compile error naming the op; the engine
// checks input counts against it; autograd and the coverage guard derive
// their lists from it. See docs/design.md, "Add an op".
import type { DType } from '../dtype.js';
import type { Conv3dAttrs, Conv3dGradInputAttrs, Conv3dGradWeightAttrs } from '../conv-geometry.js';

/**
 * How autograd treats an op:
 *  - 'rule': it has a gradient rule (registered by @largo/autograd);
 *  - 'backward': a backward kernel called inside another op's rule (no rule of its own: no second derivatives);
 *  - 'none': not differentiable (integer or boolean outputs, piecewise-constant); `why` says so.
 */
export type GradKind = 'rule' | 'backward' | 'none';

/** One op's declaration. `attrs` is a phantom: only its type matters (written `attrs<T>()`). */
export interface OpSpec<A = unknown> {
  readonly inputs: readonly string[];
  readonly optional?: readonly string[];
  readonly outputs: readonly string[];
  readonly attrs: A;
  readonly grad: GradKind;
  /** For 'backward': the op whose rule calls it. For 'none': why it has no gradient. */
  readonly why?: string;
}

/** The attributes' type, as a phantom value for the schema. */
const attrs = <A>(): A => undefined as unknown as A;

// Attribute types. Kernels, ops and gradient rules import them from here.
export type NoAttrs = Record<string, never>;
export interface LeakyReluAttrs {
  alpha: number;
}
export interface ClampAttrs {
  min: number;
  max: number;
}
/** What a kernel shared by all the unary ops may receive. */
export type UnaryAttrs = Partial<LeakyReluAttrs & ClampAttrs>;
/** Result dtype of a cast, a binary op (comparisons give uint8 regardless) or `where`. */
export interface DTypeAttrs {
  dtype: DType;
}
export interface ReduceAttrs {
  axes: number[];
  keepDims: boolean;
}
export interface PermuteAttrs {
  perm: number[];
}
export interface SliceAttrs {
  begin: number[];
  size: number[];
}
export interface PadAttrs {
  pads: [number, number][];
  value: number;
}
export interface AxisAttrs {
  axis: number;
}
export interface IndexAddAttrs {
  axis: number;
  shape: number[];
}
export interface ShapeAttrs {
  shape: number[];
}
export interface MatmulAttrs {
  transposeA?: boolean;
  transposeB?: boolean;
}
export interface SoftmaxAttrs {
  axis: number;
}
export interface InstanceNormAttrs {
  eps: number;
  hasWeight: boolean;
  hasBias: boolean;
}
export interface InstanceNormGradAttrs {
  hasWeight: boolean;
  hasStatGrads?: boolean;
}
export interface CrossEntropyAttrs {
  ignoreIndex: number;
  hasWeight: boolean;
}
export interface SoftDiceAttrs {
  smooth: number;
  batchDice: boolean;
  reduction: 'mean' | 'none';
}
export type { Conv3dAttrs, Conv3dGradInputAttrs, Conv3dGradWeightAttrs };

const unary = (grad: GradKind = 'rule', why?: string) =>
  ({ inputs: ['x'], outputs: ['y'], attrs: attrs<NoAttrs>(), grad, why }) as const;
const binary = (grad: GradKind = 'rule', why?: string) =>
  ({ inputs: ['a', 'b'], outputs: ['y'], attrs: attrs<DTypeAttrs>(), grad, why }) as const;
const reduce = (grad: GradKind = 'rule', why?: string) =>
  ({ inputs: ['x'], outputs: ['y'], attrs: attrs<ReduceAttrs>(), grad, why }) as const;
const COMPARISON = 'a comparison: boolean (uint8) output, zero gradient almost everywhere';
const LOGICAL = 'a logical op on booleans';

export const OPS = {
  // elementwise (ops/elementwise.ts)
  neg: unary(),
  exp: unary(),
  log: unary(),
  sqrt: unary(),
  abs: unary(),
  relu: unary(),
  sigmoid: unary(),
  tanh: unary(),
  sign: unary('none', 'piecewise constant: zero gradient almost everywhere'),
  floor: unary('none', 'piecewise constant: zero gradient almost everywhere'),
  leakyRelu: { inputs: ['x'], outputs: ['y'], attrs: attrs<LeakyReluAttrs>(), grad: 'rule' },
  /** leakyRelu's gradient in one pass: dx = x > 0 ? dy : alpha·dy (its own rule, so second derivatives work). */
  leakyReluGrad: { inputs: ['x', 'dy'], outputs: ['dx'], attrs: attrs<LeakyReluAttrs>(), grad: 'rule' },
  clamp: { inputs: ['x'], outputs: ['y'], attrs: attrs<ClampAttrs>(), grad: 'rule' },
  cast: { inputs: ['x'], outputs: ['y'], attrs: attrs<DTypeAttrs>(), grad: 'rule' },
  add: binary(),
  sub: binary(),
  mul: binary(),
  div: binary(),
  pow: binary(),
  maximum: binary(),
  minimum: binary(),
  equal: binary('none', COMPARISON),
  notEqual: binary('none', COMPARISON),
  less: binary('none', COMPARISON),
  lessEqual: binary('none', COMPARISON),
  greater: binary('none', COMPARISON),
  greaterEqual: binary('none', COMPARISON),
  logicalAnd: binary('none', LOGICAL),
  logicalOr: binary('none', LOGICAL),
  where: { inputs: ['condition', 'a', 'b'], outputs: ['y'], attrs: attrs<DTypeAttrs>(), grad: 'rule' },
  // reductions (ops/reduce.ts)
  sum: reduce(),
  max: reduce(),
  min: reduce(),
  argmax: reduce('none', 'integer (index) output'),
  argmin: reduce('none', 'integer (index) output'),
  // layout (ops/layout.ts)
  permute: { inputs: ['x'], outputs: ['y'], attrs: attrs<PermuteAttrs>(), grad: 'rule' },
  slice: { inputs: ['x'], outputs: ['y'], attrs: attrs<SliceAttrs>(), grad: 'rule' },
  pad: { inputs: ['x'], outputs: ['y'], attrs: attrs<PadAttrs>(), grad: 'rule' },
  /** Variadic: every input is a part (`inputs` names the first; `optional` the rest). */
  concat: { inputs: ['first'], optional: ['...rest'], outputs: ['y'], attrs: attrs<AxisAttrs>(), grad: 'rule' },
  indexSelect: { inputs: ['x', 'indices'], outputs: ['y'], attrs: attrs<AxisAttrs>(), grad: 'rule' },
  indexAdd: { inputs: ['src', 'indices'], outputs: ['y'], attrs: attrs<IndexAddAttrs>(), grad: 'rule' },
  broadcastTo: { inputs: ['x'], outputs: ['y'], attrs: attrs<ShapeAttrs>(), grad: 'rule' },
  // matmul (ops/matmul.ts)
  matmul: { inputs: ['a', 'b'], outputs: ['y'], attrs: attrs<MatmulAttrs>(), grad: 'rule' },
  // convolution (ops/conv.ts)
  conv3d: { inputs: ['x', 'weight'], optional: ['bias'], outputs: ['y'], attrs: attrs<Conv3dAttrs>(), grad: 'rule' },
  conv3dGradInput: {
    inputs: ['dy', 'weight'],
    optional: ['bias'],
    outputs: ['dx'],
    attrs: attrs<Conv3dGradInputAttrs>(),
    grad: 'rule',
  },
  conv3dGradWeight: { inputs: ['x', 'dy'], outputs: ['dweight'], attrs: attrs<Conv3dGradWeightAttrs>(), grad: 'rule' },
  // softmax (ops/softmax.ts)
  softmax: { inputs: ['x'], outputs: ['y'], attrs: attrs<SoftmaxAttrs>(), grad: 'rule' },
  logSoftmax: { inputs: ['x'], outputs: ['y'], attrs: attrs<SoftmaxAttrs>(), grad: 'rule' },
  // instance norm (ops/instance-norm.ts); optional inputs are present as the has* attributes say, in this order
  instanceNorm: {
    inputs: ['x'],
    optional: ['weight', 'bias'],
    outputs: ['y', 'mean', 'invstd'],
    attrs: attrs<InstanceNormAttrs>(),
    grad: 'rule',
  },
  instanceNormGrad: {
    inputs: ['dy', 'x', 'mean', 'invstd'],
    optional: ['weight', 'dmean', 'dinvstd'],
    outputs: ['dx', 'dweight', 'dbias'],
    attrs: attrs<InstanceNormGradAttrs>(),
    grad: 'backward',
    why: 'instanceNorm',
  },
  // losses (ops/losses.ts)
  crossEntropy: {
    inputs: ['logits', 'target'],
    optional: ['weight'],
    outputs: ['loss'],
    attrs: attrs<CrossEntropyAttrs>(),
    grad: 'rule',
  },
  crossEntropyGrad: {
    inputs: ['logits', 'target', 'dy'],
    optional: ['weight'],
    outputs: ['dlogits'],
    attrs: attrs<CrossEntropyAttrs>(),
    grad: 'backward',
    why: 'crossEntropy',
  },
  bceWithLogits: { inputs: ['logits', 'target'], outputs: ['loss'], attrs: attrs<NoAttrs>(), grad: 'rule' },
  bceWithLogitsGrad: {
    inputs: ['logits', 'target', 'dy'],
    outputs: ['dlogits', 'dtarget'],
    attrs: attrs<NoAttrs>(),
    grad: 'backward',
    why: 'bceWithLogits',
  },
  softDiceLoss: { inputs: ['probs', 'target'], outputs: ['loss'], attrs: attrs<SoftDiceAttrs>(), grad: 'rule' },
  softDiceLossGrad: {
    inputs: ['probs', 'target', 'dy'],
    outputs: ['dprobs', 'dtarget'],
    attrs: attrs<SoftDiceAttrs>(),
    grad: 'backward',
    why: 'softDiceLoss',
  },
  // CP reconstruction (ops/cp-reconstruct.ts)
  cpReconstruct: {
    inputs: ['weights', 'aOut', 'aIn', 'aKernel'],
    outputs: ['w'],
    attrs: attrs<NoAttrs>(),
    grad: 'rule',
  },
  cpReconstructGrad: {
    inputs: ['dW', 'weights', 'aOut', 'aIn', 'aKernel'],
    outputs: ['dweights', 'daOut', 'daIn', 'daKernel'],
    attrs: attrs<NoAttrs>(),
    grad: 'backward',
    why: 'cpReconstruct',
  },
} as const satisfies Record<string, OpSpec>;

/**
 * Ops that run no kernel: views of existing storage, recorded for autograd
 * through `engine().recordView` (reshape shares the input's storage).
 */
export const VIEW_OPS = {
  reshape: { inputs: ['x'], outputs: ['y'], attrs: attrs<ShapeAttrs>(), grad: 'rule' },
} as const satisfies Record<string, OpSpec>;

/**
 * Ops composed of other ops (no kernel of their own; `uses` names the kernels
 * they run). Each runs on every backend that has those kernels, so the
 * coverage guard asks for its oracle test on each such backend, and for a
 * gradient test (its gradient comes from its parts' rules).
 */
export const COMPOSITE_OPS = {
  conv2d: { uses: ['conv3d'] },
  convTranspose3d: { uses: ['conv3dGradInput'] },
  mean: { uses: ['sum', 'div'] },
  variance: { uses: ['sum', 'sub', 'mul', 'div'] },
  dropout: { uses: ['mul'] },
  stack: { uses: ['concat'] },
} as const satisfies Record<string, { readonly uses: readonly OpName[] }>;

/** Every kernel op's name. */
export type OpName = keyof typeof OPS;
export type ViewOpName = keyof typeof VIEW_OPS;
/** The attributes an op's kernel receives. */
export type AttrsOf<Op extends OpName> = (typeof OPS)[Op]['attrs'];
/** The attributes a gradient rule of a kernel op or a view op receives. */
export type RecordedAttrs<Op extends OpName | ViewOpName> = Op extends OpName
  ? AttrsOf<Op>
  : Op extends ViewOpName
    ? (typeof VIEW_OPS)[Op]['attrs']
    : never;

/** The elementwise binary ops (inputs a, b; result dtype attribute), derived from the schema. */
export type BinaryOpName = {
  [Op in OpName]: (typeof OPS)[Op]['inputs'] extends readonly ['a', 'b']
    ? AttrsOf<Op> extends DTypeAttrs
      ? Op
      : never
    : never;
}[OpName];

type Fill<R extends readonly unknown[], T> = { -readonly [K in keyof R]: T };
/**
 * What a kernel of `Op` receives: a tuple with one TensorInfo per required
 * input (so destructuring them is typed), then the optional ones, if present.
 */
export type KernelInputs<Op extends OpName, T> = readonly [...Fill<(typeof OPS)[Op]['inputs'], T>, ...T[]];

/** Ops with no gradient, derived from the schema (autograd skips them on the tape). */
export const NON_DIFFERENTIABLE_OPS: ReadonlyMap<OpName, string> = new Map(
  (Object.entries(OPS) as [OpName, OpSpec][]).filter(([, s]) => s.grad === 'none').map(([op, s]) => [op, s.why ?? '']),
);

/** Backward-only kernels, each with the op whose gradient rule calls it. */
export const BACKWARD_OPS: ReadonlyMap<OpName, OpName> = new Map(
  (Object.entries(OPS) as [OpName, OpSpec][])
    .filter(([, s]) => s.grad === 'backward')
    .map(([op, s]) => [op, s.why as OpName]),
);

/** Ops that need a gradient rule: kernel ops declared 'rule', and the view ops. */
export const DIFFERENTIABLE_OPS: readonly (OpName | ViewOpName)[] = [
  ...(Object.keys(OPS) as OpName[]).filter((op) => OPS[op].grad === 'rule'),
  ...(Object.keys(VIEW_OPS) as ViewOpName[]),
];

export const opNames = (): OpName[] => Object.keys(OPS) as OpName[];
export const isOpName = (op: string): op is OpName => Object.prototype.hasOwnProperty.call(OPS, op);
