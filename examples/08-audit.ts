/**
 * 08 · Auditing an op against a PyTorch fixture.
 *
 * fixtures/audit-default/ holds cases computed by PyTorch (scripts/make-fixtures.py;
 * format in docs/audit-format.md): inputs, outputs, an upstream cotangent gy and
 * the vector-Jacobian products gx = (∂y/∂x)ᵀ·gy. Here we replay one conv3d case
 * by hand, against PyTorch and against our float64 oracle (plain loops, written
 * independently of the fast kernels), then run every case as `largo audit` does.
 *
 * Run: npx tsx examples/08-audit.ts
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { conv3d, decodeSafetensors, mul, sum, tensor, type Tensor } from '@largo/core';
import { refConv3d, refTensor } from '@largo/core/reference';
import { backward, requireGrad } from '@largo/autograd';

const dir = 'fixtures/audit-default';
const manifest = JSON.parse(readFileSync(`${dir}/manifest.json`, 'utf8')) as { cases: { name: string; params: Record<string, number[]>; rtol: number; atol: number }[] };
const stored = decodeSafetensors(new Uint8Array(readFileSync(`${dir}/tensors.safetensors`)), dir).tensors;
const maxErr = (a: ArrayLike<number>, b: ArrayLike<number>) => { let m = 0; for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!)); return m; };

// #region replay
const c = manifest.cases.find((x) => x.name === 'conv3d_a')!;
const load = (n: string): Tensor => { const e = stored[`${c.name}.${n}`]!; return tensor(e.data as Float32Array, e.shape); };
const [x, w, b] = ['x', 'w', 'b'].map((n) => requireGrad(load(n))) as [Tensor, Tensor, Tensor];
const opts = { stride: c.params.stride!, padding: c.params.padding!, dilation: c.params.dilation! };
const y = conv3d(x, w, b, opts);
backward(sum(mul(y, load('gy'))));               // d⟨y, gy⟩/dx = (∂y/∂x)ᵀ gy, what PyTorch stored as gx
console.log(`${c.name}: x [${x.shape}], w [${w.shape}], ${JSON.stringify(c.params)}`);
for (const [name, ours, theirs] of [['y', y, 'y'], ['grad x', x.grad!, 'gx'], ['grad w', w.grad!, 'gw'], ['grad b', b.grad!, 'gb']] as const) {
  console.log(`  ${name.padEnd(6)} max |ours − PyTorch| = ${maxErr(ours.dataSync(), load(theirs).dataSync()).toExponential(1)}`);
}
// #endregion replay

// #region oracle
// The same output from the float64 oracle: if ours and PyTorch disagreed, this says who is right.
const ref = refConv3d(refTensor(x.shape, x.dataSync()), refTensor(w.shape, w.dataSync()), refTensor(b.shape, b.dataSync()), opts);
console.log(`  y      max |ours − float64 oracle| = ${maxErr(y.dataSync(), ref.data).toExponential(1)}, max |PyTorch − oracle| = ${maxErr(load('y').dataSync(), ref.data).toExponential(1)}`);
console.log(`  tolerance of this case: |err| <= ${c.atol} + ${c.rtol}·|expected|`);
// #endregion oracle

// #region all
// `largo audit` (docs/cli.md) replays every case, outputs and gradients, and exits 1 if any is out of tolerance.
const run = spawnSync(process.execPath, ['packages/largo/dist/cli.js', 'audit', '--fixtures', dir, '--backend', 'cpu'], { encoding: 'utf8' });
const lines = run.stdout.trim().split('\n');
console.log(lines.filter((l) => l.startsWith('| case') || l.includes('| conv3d_a ')).join('\n'));
console.log(`${lines.at(-1)} (exit code ${run.status})`);
// #endregion all
