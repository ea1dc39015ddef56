import {
  add,
  DIFFERENTIABLE_OPS,
  engine,
  fmtShape,
  newArray,
  NON_DIFFERENTIABLE_OPS,
  OpError,
  reshape,
  shapesEqual,
  Tensor,
  type GradNodeLike,
  type OpName,
  type RecordedAttrs,
  type Recorder,
  type ViewOpName,
} from '@largo/core';

export interface GradContext<A = any> {
  /** Saved copies of the op's inputs and outputs (valid during the rule). */
  inputs: readonly Tensor[];
  outputs: readonly Tensor[];
  attrs: A;
  /** Which inputs need a gradient; rules may skip the others (return null). */
  needs: readonly boolean[];
}

/** Maps output cotangents to input cotangents, using forward ops only. */
export type GradRule<A = any> = (dys: readonly Tensor[], ctx: GradContext<A>) => readonly (Tensor | null | undefined)[];

const rules = new Map<string, GradRule>();
/**
 * Ops whose outputs carry no gradient (integer or piecewise-constant
 * results), from the op schema (grad: 'none', each with its reason).
 */
export const NON_DIFFERENTIABLE: ReadonlySet<string> = new Set<string>(NON_DIFFERENTIABLE_OPS.keys());

/**
 * Registers the gradient rule of a kernel op or a view op; its attributes are
 * typed by the op schema. Only ops the schema declares grad: 'rule' take one,
 * and only once.
 */
export function registerGrad<Op extends OpName | ViewOpName>(op: Op, rule: GradRule<RecordedAttrs<Op>>): void {
  if (!(DIFFERENTIABLE_OPS as readonly string[]).includes(op)) {
    throw new Error(
      `registerGrad: the op schema does not declare '${op}' differentiable (grad: 'rule' in packages/core/src/ops/schema.ts)`,
    );
  }
  if (rules.has(op)) throw new Error(`registerGrad: '${op}' already has a gradient rule`);
  rules.set(op, rule as GradRule);
}
export function hasGrad(op: string): boolean {
  return rules.has(op);
}
export function gradOps(): string[] {
  return [...rules.keys()].sort();
}

let enabled = true;
export function isGradEnabled(): boolean {
  return enabled;
}

/** Runs `fn` without recording anything on the tape (inference, metrics, optimizer steps). */
export function noGrad<T>(fn: () => T): T {
  const prev = enabled;
  enabled = false;
  try {
    return fn();
  } finally {
    enabled = prev;
  }
}

/**
 * One recorded op. Reference-counted by the output tensors that point to it
 * and by child nodes; when the count drops to zero the saved tensors are
 * released, so a graph that is never backpropagated frees itself on dispose.
 */
class Node implements GradNodeLike {
  refs = 0;
  freed = false;
  readonly parents: (Node | null)[];
  readonly parentSlot: number[];
  readonly leaves: (Tensor | null)[];
  readonly outputIds: number[];

  constructor(
    readonly op: string,
    public inputs: Tensor[],
    public outputs: Tensor[],
    readonly attrs: unknown,
    readonly needs: boolean[],
    originals: readonly Tensor[],
    outs: readonly Tensor[],
  ) {
    this.outputIds = outs.map((t) => t.id);
    this.parents = originals.map((t) => (t.gradNode as Node | null) ?? null);
    this.parentSlot = originals.map((t) => {
      const p = t.gradNode as Node | null;
      return p ? p.outputIds.indexOf(t.id) : -1;
    });
    this.leaves = originals.map((t, i) => (needs[i] && !t.gradNode ? t : null));
    for (const p of this.parents) if (p) p.refs++;
  }

  release(): void {
    if (--this.refs <= 0) this.free();
  }

  /** Releases the saved tensors; the node can no longer be backpropagated through. */
  dropSaved(): void {
    if (this.freed) return;
    this.freed = true;
    for (const t of this.inputs) t.dispose();
    for (const t of this.outputs) t.dispose();
    this.inputs = [];
    this.outputs = [];
  }

  private released = false;
  free(): void {
    this.dropSaved();
    if (this.released) return;
    this.released = true;
    for (const p of this.parents) if (p) p.release();
  }
}

const recorder: Recorder = {
  record(op, inputs, attrs, outputs) {
    if (!enabled || NON_DIFFERENTIABLE.has(op)) return;
    // Integer outputs (a cast to int32, say) carry no gradient.
    if (outputs.every((o) => o.dtype !== 'float32' && o.dtype !== 'float64')) return;
    let any = false;
    const needs = inputs.map((t) => {
      const r = t.requiresGrad;
      any ||= r;
      return r;
    });
    if (!any) return;
    const e = engine();
    const node = new Node(
      op,
      inputs.map((t) => e.share(t)),
      outputs.map((t) => e.share(t)),
      attrs,
      needs,
      inputs,
      outputs,
    );
    for (const o of outputs) {
      o.requiresGrad = true;
      o.gradNode = node;
      node.refs++;
    }
  },
};
engine().recorder = recorder;

/** Marks a tensor as a trainable leaf: it survives tidy scopes and accumulates `.grad`. */
export function requireGrad<T extends Tensor>(t: T): T {
  if (t.dtype !== 'float32' && t.dtype !== 'float64')
    throw new OpError('requireGrad', `only float tensors can require grad, got ${t.dtype}`);
  t.requiresGrad = true;
  t.kept = true;
  return t;
}

function topoOrder(root: Node): Node[] {
  const order: Node[] = [];
  const seen = new Set<Node>();
  const stack: [Node, number][] = [[root, 0]];
  seen.add(root);
  while (stack.length) {
    const top = stack[stack.length - 1];
    const [n, i] = top;
    if (i < n.parents.length) {
      top[1]++;
      const p = n.parents[i];
      if (p && !seen.has(p)) {
        seen.add(p);
        stack.push([p, 0]);
      }
    } else {
      order.push(n);
      stack.pop();
    }
  }
  return order.reverse();
}

export interface BackwardOptions {
  /** Cotangent of `root`; defaults to ones (a scalar loss). */
  grad?: Tensor;
  /** Keep the saved tensors for a second backward through the same graph. */
  retainGraph?: boolean;
}

/**
 * Reverse-mode sweep from `root`. Leaf gradients accumulate into `.grad`
 * (kept tensors); intermediate cotangents are disposed as soon as used.
 */
export function backward(root: Tensor, opts: BackwardOptions = {}): void {
  root.assertAlive('backward');
  if (!root.requiresGrad) throw new OpError('backward', 'tensor does not require grad (no trainable input reached it)');
  const e = engine();
  // Validate before making the seed, so that a failing call leaves nothing behind.
  const node = root.gradNode as Node | null;
  if (node?.freed)
    throw new OpError('backward', 'the graph was already freed by an earlier backward (pass retainGraph: true)');
  if (opts.grad) {
    const g = opts.grad;
    g.assertAlive('backward');
    // The exact shape, not just the size: gradient rules broadcast the cotangent
    // against saved tensors, so a [1, 4] seed for a [4, 1] root would silently
    // give a wrong gradient.
    if (!shapesEqual(g.shape, root.shape) || g.dtype !== root.dtype || g.backend !== root.backend) {
      throw new OpError(
        'backward',
        `grad ${g.dtype} ${fmtShape(g.shape)} on '${g.backend.name}' does not match ${root.dtype} ${fmtShape(root.shape)} on '${root.backend.name}'`,
      );
    }
  }
  const seed = opts.grad ?? filled(root, 1);
  if (!node) {
    accumulate(root, opts.grad ? e.share(seed) : own(seed));
    return;
  }
  const order = topoOrder(node);
  const pending = new Map<Node, (Tensor | null)[]>();
  pending.set(
    node,
    node.outputIds.map((id) => (id === root.id ? e.share(seed) : null)),
  );
  if (!opts.grad) seed.dispose();
  let current: (Tensor | null)[] | null = null;
  try {
    noGrad(() => {
      for (const n of order) {
        const gs = pending.get(n);
        pending.delete(n);
        current = gs ?? null;
        if (!gs || gs.every((g) => g === null)) continue;
        const rule = rules.get(n.op);
        if (!rule) throw new OpError('backward', `no gradient rule for op '${n.op}'`);
        if (n.freed) throw new OpError('backward', `graph through '${n.op}' was already freed`);
        const dys = gs.map((g, i) => g ?? filled(n.outputs[i], 0));
        const dxs = e.tidy(() => {
          const r = rule(dys, { inputs: n.inputs, outputs: n.outputs, attrs: n.attrs, needs: n.needs });
          // A rule may hand back a cotangent or a saved tensor itself, or one tensor twice: give each slot its own handle.
          const seen = new Set<Tensor>([...dys, ...n.inputs, ...n.outputs]);
          return r.map((g) => {
            if (!g) return null;
            if (seen.has(g)) return e.view(g, g.shape);
            seen.add(g);
            return g;
          });
        });
        for (const d of dys) d.dispose();
        current = null;
        for (let i = 0; i < n.inputs.length; i++) {
          const g = dxs[i];
          if (!g) continue;
          if (!n.needs[i]) {
            g.dispose();
            continue;
          }
          const shaped = fitShape(g, n.inputs[i].shape, n.op);
          const leaf = n.leaves[i];
          const parent = n.parents[i];
          if (leaf) {
            accumulate(leaf, shaped);
            continue;
          }
          if (!parent) {
            shaped.dispose();
            continue;
          }
          let slot = pending.get(parent);
          if (!slot) {
            slot = parent.outputIds.map(() => null);
            pending.set(parent, slot);
          }
          const k = n.parentSlot[i];
          const prev = slot[k];
          if (prev) {
            // own(): the tracked handle tidy hands back must go too, or it outlives backward() outside any scope.
            slot[k] = own(e.tidy(() => add(prev, shaped)));
            prev.dispose();
            shaped.dispose();
          } else slot[k] = shaped;
        }
        if (!opts.retainGraph) n.dropSaved();
      }
    });
  } finally {
    // Normally empty; after an error (a missing rule, say) nothing is left behind either.
    for (const g of (current as (Tensor | null)[] | null) ?? []) g?.dispose();
    for (const gs of pending.values()) for (const g of gs) g?.dispose();
  }
}

/** A tensor of `like`'s shape and dtype filled with `v`, on `like`'s backend (not the active one). */
function filled(like: Tensor, v: number): Tensor {
  const a = newArray(like.dtype, like.size);
  a.fill(v);
  return engine().fromValues(a, like.shape, like.dtype, like.backend);
}

/** An untracked handle owned by the backward pass; the tracked original goes. */
function own(g: Tensor): Tensor {
  const s = engine().share(g);
  g.dispose();
  return s;
}

/** Gradients come back in the input's shape; a mismatch means a broken rule. */
function fitShape(g: Tensor, shape: readonly number[], op: string): Tensor {
  if (g.shape.length === shape.length && g.shape.every((d, i) => d === shape[i])) return own(g);
  if (g.size === shape.reduce((a, b) => a * b, 1)) {
    const r = own(reshape(g, shape));
    g.dispose();
    return r;
  }
  throw new OpError(
    'backward',
    `gradient rule of '${op}' returned [${g.shape.join(', ')}] for an input of shape [${shape.join(', ')}]`,
  );
}

function accumulate(leaf: Tensor, g: Tensor): void {
  if (leaf.isDisposed) {
    g.dispose();
    return;
  }
  const e = engine();
  if (leaf.grad) {
    const prev = leaf.grad;
    leaf.grad = e.keep(e.tidy(() => add(prev, g)));
    prev.dispose();
    g.dispose();
  } else {
    leaf.grad = e.keep(g);
  }
}

/** Drops the accumulated gradients of the given tensors. */
export function zeroGrad(params: Iterable<Tensor>): void {
  for (const p of params) {
    if (p.grad) {
      p.grad.dispose();
      p.grad = null;
    }
  }
}
