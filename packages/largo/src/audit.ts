// `largo audit`: replays reference cases (made by scripts/make-fixtures.py
// with PyTorch) on every requested backend and compares outputs and
// vector-Jacobian products with the stored ones.
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as core from '@largo/core';
import { engine, tensor, tidy, type Tensor } from '@largo/core';
import { backward, requireGrad } from '@largo/autograd';
import { allBackends, selectBackend } from './backend-select.js';

interface AuditCase {
  name: string;
  op: string;
  params?: Record<string, unknown>;
  inputs: string[];
  outputs: string[];
  upstream?: Record<string, string>;
  grads?: Record<string, string>;
  rtol?: number;
  atol?: number;
}

export interface AuditRow {
  case: string;
  op: string;
  backend: string;
  /** "y" for an output, "grad x" for a gradient. */
  quantity: string;
  maxAbsErr: number;
  maxRelErr: number;
  pass: boolean;
  note?: string;
}

type OpRunner = (inp: Record<string, Tensor>, p: Record<string, any>) => Tensor | Tensor[];

function op(name: string): (...args: any[]) => Tensor {
  const f = (core as Record<string, unknown>)[name];
  if (typeof f !== 'function') throw new Error(`the engine has no op '${name}'`);
  return f as (...args: any[]) => Tensor;
}

const convParams = (p: Record<string, any>) => ({ stride: p.stride, padding: p.padding, dilation: p.dilation });

/** PyTorch argument meaning → our ops. */
const RUNNERS: Record<string, OpRunner> = {
  matmul: (i) => op('matmul')(i.a, i.b),
  conv3d: (i, p) => op('conv3d')(i.x, i.w, i.b, convParams(p)),
  conv2d: (i, p) => op('conv2d')(i.x, i.w, i.b, convParams(p)),
  conv_transpose3d: (i, p) =>
    op('convTranspose3d')(i.x, i.w, i.b, {
      stride: p.stride,
      padding: p.padding,
      outputPadding: p.output_padding,
      dilation: p.dilation,
    }),
  instance_norm: (i, p) => op('instanceNorm')(i.x, i.weight, i.bias, p.eps ?? 1e-5),
  leaky_relu: (i, p) => op('leakyRelu')(i.x, p.negative_slope ?? 0.01),
  softmax: (i, p) => op('softmax')(i.x, p.dim),
  log_softmax: (i, p) => op('logSoftmax')(i.x, p.dim),
  sum: (i, p) => op('sum')(i.x, p.dim ?? undefined, Boolean(p.keepdim)),
  mean: (i, p) => op('mean')(i.x, p.dim ?? undefined, Boolean(p.keepdim)),
  cross_entropy: (i) => op('crossEntropy')(i.logits, i.target),
  bce_with_logits: (i) => op('bceWithLogits')(i.logits, i.target),
  soft_dice_loss: (i, p) =>
    op('softDiceLoss')(i.probs, i.target, { smooth: p.smooth, batchDice: Boolean(p.batch_dice) }),
  cp_reconstruct: (i) => op('cpReconstruct')(i.weights, i.a_out, i.a_in, i.a_kernel),
};

export const AUDIT_OPS = Object.keys(RUNNERS);

function errors(actual: ArrayLike<number>, expected: ArrayLike<number>, rtol: number, atol: number) {
  let maxAbs = 0,
    maxRel = 0,
    pass = actual.length === expected.length;
  for (let k = 0; k < Math.min(actual.length, expected.length); k++) {
    const a = actual[k],
      e = expected[k];
    const abs = Math.abs(a - e);
    if (!(abs <= atol + rtol * Math.abs(e))) pass = false;
    if (abs > maxAbs || Number.isNaN(abs)) maxAbs = abs;
    if (Math.abs(e) > atol) maxRel = Math.max(maxRel, abs / Math.abs(e));
  }
  return { maxAbs, maxRel, pass };
}

interface Stored {
  shape: number[];
  data: Float32Array | Int32Array;
}

/** Every case well-formed and named once; an empty manifest audits nothing and is refused. */
function checkCases(mpath: string, cases: unknown[]): void {
  if (cases.length === 0) throw new Error(`audit: ${mpath} lists no cases (an empty audit proves nothing)`);
  const names = new Set<string>();
  const strList = (v: unknown) => Array.isArray(v) && v.every((x) => typeof x === 'string');
  const strMap = (v: unknown) =>
    v === undefined ||
    (v !== null && typeof v === 'object' && !Array.isArray(v) && Object.values(v).every((x) => typeof x === 'string'));
  cases.forEach((c, i) => {
    const where = `audit: ${mpath}: case ${i}`;
    if (c === null || typeof c !== 'object' || Array.isArray(c)) throw new Error(`${where} is not an object`);
    const k = c as Record<string, unknown>;
    if (typeof k['name'] !== 'string' || !k['name']) throw new Error(`${where}: 'name' must be a non-empty string`);
    const at = `audit: ${mpath}: case '${k['name']}'`;
    if (names.has(k['name'])) throw new Error(`${at} appears twice (case names must be unique)`);
    names.add(k['name']);
    if (typeof k['op'] !== 'string') throw new Error(`${at}: 'op' must be a string`);
    if (!strList(k['inputs'])) throw new Error(`${at}: 'inputs' must be a list of tensor names`);
    if (!strList(k['outputs']) || (k['outputs'] as string[]).length === 0)
      throw new Error(`${at}: 'outputs' must be a non-empty list of tensor names`);
    if (!strMap(k['upstream'])) throw new Error(`${at}: 'upstream' must map outputs to tensor names`);
    if (!strMap(k['grads'])) throw new Error(`${at}: 'grads' must map inputs to tensor names`);
    if (
      k['params'] !== undefined &&
      (k['params'] === null || typeof k['params'] !== 'object' || Array.isArray(k['params']))
    )
      throw new Error(`${at}: 'params' must be an object`);
    for (const tol of ['rtol', 'atol'])
      if (k[tol] !== undefined && !(typeof k[tol] === 'number' && (k[tol] as number) >= 0))
        throw new Error(`${at}: '${tol}' must be a number ≥ 0`);
  });
}

function loadFixtures(dir: string): { cases: AuditCase[]; tensors: Map<string, Stored> } {
  const mpath = join(dir, 'manifest.json');
  const tpath = join(dir, 'tensors.safetensors');
  if (!existsSync(mpath)) throw new Error(`audit: ${mpath} not found`);
  if (!existsSync(tpath)) throw new Error(`audit: ${tpath} not found`);
  let manifest: { version: number; cases: AuditCase[] };
  try {
    manifest = JSON.parse(readFileSync(mpath, 'utf8'));
  } catch (e) {
    throw new Error(`audit: ${mpath} is not valid JSON (${(e as Error).message})`);
  }
  if (manifest === null || typeof manifest !== 'object' || manifest.version !== 1 || !Array.isArray(manifest.cases)) {
    throw new Error(`audit: ${mpath} must be {"version": 1, "cases": [...]}`);
  }
  checkCases(mpath, manifest.cases);
  const decoded = core.decodeSafetensors(new Uint8Array(readFileSync(tpath)), tpath);
  const tensors = new Map<string, Stored>();
  for (const [name, e] of Object.entries(decoded.tensors)) {
    let data: Float32Array | Int32Array;
    if (e.data instanceof BigInt64Array || e.data instanceof BigUint64Array)
      data = core.int64ToInt32(e.data, `${tpath}: ${name}`);
    else if (e.dtype === 'I32' || e.dtype === 'I16' || e.dtype === 'I8' || e.dtype === 'U8' || e.dtype === 'BOOL')
      data = Int32Array.from(e.data as ArrayLike<number>);
    else data = Float32Array.from(core.stEntryToFloat64(e, `${tpath}: ${name}`));
    tensors.set(name, { shape: e.shape, data });
  }
  return { cases: manifest.cases, tensors };
}

/** A row to emit: already decided (a failure), or a tensor still to read and compare with a stored one. */
type Pending = { row: AuditRow } | { quantity: string; t: Tensor; expected: Stored; rtol: number; atol: number };

/**
 * Runs one case on the active backend. The op and its backward run inside
 * one synchronous tidy scope; the tensors to compare are returned from it
 * (the caller reads them, synchronously or not, then disposes them), so
 * that backends without synchronous reads (webgpu) can be audited too.
 */
function runCase(c: AuditCase, tensors: Map<string, Stored>, backendName: string): Pending[] {
  const rtol = c.rtol ?? 1e-4,
    atol = c.atol ?? 1e-5;
  const fail = (quantity: string, note: string): Pending => ({
    row: { case: c.name, op: c.op, backend: backendName, quantity, maxAbsErr: NaN, maxRelErr: NaN, pass: false, note },
  });
  const runner = RUNNERS[c.op];
  if (!runner) return [fail('-', `unknown op '${c.op}'`)];
  const get = (n: string): Stored => {
    const t = tensors.get(`${c.name}.${n}`);
    if (!t) throw new Error(`tensor '${c.name}.${n}' is missing from tensors.safetensors`);
    return t;
  };
  try {
    return tidy(() => {
      const grads = c.grads ?? {};
      const leaves: Record<string, Tensor> = {};
      for (const n of c.inputs) {
        const s = get(n);
        const t = tensor(s.data, s.shape, s.data instanceof Int32Array ? 'int32' : 'float32');
        leaves[n] = n in grads ? requireGrad(t) : t;
      }
      const out = runner(leaves, c.params ?? {});
      const outs = Array.isArray(out) ? out : [out];
      if (outs.length !== c.outputs.length)
        return [fail('-', `op returned ${outs.length} outputs, manifest lists ${c.outputs.length}`)];
      const pending: Pending[] = [];
      c.outputs.forEach((name, k) => {
        const exp = get(name);
        const shapeOk = outs[k].shape.length === exp.shape.length && outs[k].shape.every((d, i) => d === exp.shape[i]);
        pending.push(
          shapeOk
            ? { quantity: name, t: outs[k], expected: exp, rtol, atol }
            : fail(name, `shape [${outs[k].shape}] != stored [${exp.shape}]`),
        );
      });
      if (Object.keys(grads).length) {
        // Upstream cotangents turn the outputs into one scalar whose gradient is the VJP.
        let total: Tensor | null = null;
        c.outputs.forEach((name, k) => {
          const up = c.upstream?.[name];
          const term = up ? core.sum(core.mul(outs[k], tensor(get(up).data, get(up).shape))) : core.sum(outs[k]);
          total = total ? core.add(total, term) : term;
        });
        backward(total!);
        for (const [input, gname] of Object.entries(grads)) {
          const g = leaves[input].grad;
          leaves[input].grad = null;
          pending.push(
            g
              ? { quantity: `grad ${input}`, t: g, expected: get(gname), rtol, atol }
              : fail(`grad ${input}`, 'no gradient reached this input'),
          );
        }
        for (const l of Object.values(leaves)) {
          l.grad?.dispose();
          l.grad = null;
        }
      }
      for (const l of Object.values(leaves)) l.dispose();
      // Tensors not returned (outputs that failed their shape check, intermediates) are released by the scope.
      return pending;
    });
  } catch (e) {
    return [fail('-', (e as Error).message)];
  }
}

function finish(
  p: Pending,
  c: AuditCase,
  backendName: string,
  values: ArrayLike<number> | null,
  readError?: string,
): AuditRow {
  if ('row' in p) return p.row;
  const base = { case: c.name, op: c.op, backend: backendName, quantity: p.quantity };
  if (!values) return { ...base, maxAbsErr: NaN, maxRelErr: NaN, pass: false, note: readError };
  const r = errors(values, p.expected.data, p.rtol, p.atol);
  return { ...base, maxAbsErr: r.maxAbs, maxRelErr: r.maxRel, pass: r.pass };
}

/** Replays every case on each backend; reads synchronously (backends that can: cpu). */
export function audit(dir: string, backends: string[]): AuditRow[] {
  const { cases, tensors } = loadFixtures(dir);
  const rows: AuditRow[] = [];
  const prev = engine().backend.name;
  try {
    for (const b of backends) {
      engine().setBackend(b);
      for (const c of cases) {
        for (const p of runCase(c, tensors, b)) {
          if ('row' in p) {
            rows.push(p.row);
            continue;
          }
          try {
            rows.push(finish(p, c, b, p.t.dataSync()));
          } catch (e) {
            rows.push(finish(p, c, b, null, (e as Error).message));
          } finally {
            p.t.dispose();
          }
        }
      }
    }
  } finally {
    engine().setBackend(prev);
  }
  return rows;
}

/** Like `audit`, with asynchronous reads: works on every backend (webgpu included). */
export async function auditAsync(dir: string, backends: string[]): Promise<AuditRow[]> {
  const { cases, tensors } = loadFixtures(dir);
  const rows: AuditRow[] = [];
  const prev = engine().backend.name;
  try {
    for (const b of backends) {
      engine().setBackend(b);
      for (const c of cases) {
        for (const p of runCase(c, tensors, b)) {
          if ('row' in p) {
            rows.push(p.row);
            continue;
          }
          try {
            rows.push(finish(p, c, b, await p.t.data()));
          } catch (e) {
            rows.push(finish(p, c, b, null, (e as Error).message));
          } finally {
            p.t.dispose();
          }
        }
      }
    }
  } finally {
    engine().setBackend(prev);
  }
  return rows;
}

export function formatAuditTable(rows: readonly AuditRow[]): string {
  const fmt = (x: number) => (Number.isNaN(x) ? '-' : x.toExponential(2));
  const head = ['case', 'op', 'backend', 'quantity', 'max abs err', 'max rel err', 'result'];
  const body = rows.map((r) => [
    r.case,
    r.op,
    r.backend,
    r.quantity,
    fmt(r.maxAbsErr),
    fmt(r.maxRelErr),
    r.pass ? 'pass' : `FAIL${r.note ? ': ' + r.note : ''}`,
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) => '| ' + cells.map((c, i) => c.padEnd(widths[i])).join(' | ') + ' |';
  return [line(head), '|' + widths.map((w) => '-'.repeat(w + 2)).join('|') + '|', ...body.map(line)].join('\n');
}

const HELP = `largo audit --fixtures DIR [--backend cpu|webgpu|auto|all] [--json]

Replays every case of DIR/manifest.json (tensors in DIR/tensors.safetensors)
on the requested backends (webgpu/auto: as for 'largo train --backend'), compares outputs and gradients with the stored
reference values, prints a table and exits 1 if any case is out of tolerance.
Make fixtures with: python3 scripts/make-fixtures.py --out DIR --seed N`;

/** CLI entry; returns the exit code. */
export async function runAudit(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      fixtures: { type: 'string' },
      backend: { type: 'string', default: 'cpu' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  if (!values.fixtures) {
    console.error('audit: --fixtures DIR is required\n\n' + HELP);
    return 2;
  }
  let backends: string[];
  // @largo/gpu is optional: loaded (lazily, via backend-select) only when asked for
  if (values.backend === 'all') backends = await allBackends();
  else if (values.backend === 'webgpu' || values.backend === 'auto') {
    let sel;
    try {
      sel = await selectBackend(values.backend, { log: (s) => console.error(s) });
    } catch (e) {
      console.error(`audit: ${(e as Error).message}`);
      return 2;
    }
    console.error(`audit: backend ${sel.name} (${sel.adapter})`);
    backends = [sel.name];
  } else backends = [values.backend!];
  const known = engine().backendNames();
  for (const b of backends)
    if (!known.includes(b)) {
      console.error(`audit: unknown backend '${b}' (known: ${known.join(', ')}, webgpu, all)`);
      return 2;
    }
  let rows: AuditRow[];
  try {
    rows = await auditAsync(values.fixtures, backends);
  } catch (e) {
    console.error((e as Error).message);
    return 2;
  }
  const failed = rows.filter((r) => !r.pass).length;
  if (values.json) console.log(JSON.stringify({ rows, failed, total: rows.length }, null, 2));
  else {
    console.log(formatAuditTable(rows));
    console.log(`\n${rows.length - failed} of ${rows.length} checks pass on ${backends.join(', ')}`);
  }
  return failed ? 1 : 0;
}
