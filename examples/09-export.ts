/**
 * 09 · Exporting one subset's plain network.
 *
 * A trained LARGO family holds all 15 networks. For deployment on sites that
 * always have the same modalities, reconstruct subset k's kernels once and
 * write them as an ordinary U-Net with |subset k| input channels: no factors,
 * no subset index, the parameter count of one plain network. The plain network
 * must compute exactly what the family computes for subset k.
 * (`largo export --checkpoint … --subset flair+t1ce --out …` does the same; docs/cli.md.)
 *
 * Run: npx tsx examples/09-export.ts   (after example 07; or --checkpoint FILE, --out FILE)
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { encodeSafetensors, indexSelect, randn, tensor, tidy, type StEntry } from '@largo/core';
import { noGrad } from '@largo/autograd';
import {
  buildSegNet, buildSegmentationFamily, channelsOf, checkCompatible, loadCheckpoint, paramCount, plainSubsetWeights,
  resolveConfig, restoreParams, subsetIndex, type ModelDescriptor,
} from 'largo';

const arg = (name: string, dflt: string) => { const i = process.argv.indexOf(name); return i > 0 ? process.argv[i + 1]! : dflt; };
const file = arg('--checkpoint', 'runs/example-07/largo/last.safetensors');
const out = arg('--out', 'runs/example-09/plain-flair-t1ce.safetensors');
if (!existsSync(file)) {
  console.error(`09-export: checkpoint ${file} does not exist; run 'npx tsx examples/07-train-largo.ts' first or pass --checkpoint FILE`);
  process.exit(1);
}

// #region load
const ck = loadCheckpoint(file);
const desc = ck.model as ModelDescriptor & { modalities: string[]; classes: number };
const cfg = resolveConfig(ck.config as Record<string, unknown>, {});
const family = buildSegNet(cfg, desc.method, desc);
checkCompatible(file, ck, desc, family.namedParameters());
restoreParams(ck, family.namedParameters());
const k = subsetIndex(['flair', 't1ce'], desc.modalities), ch = channelsOf(k, desc.modalities.length);
console.log(`${desc.method} family, step ${ck.step}: ${paramCount(family)} parameters for ${2 ** desc.modalities.length - 1} subsets; exporting subset ${k} = {${ch.map((m) => desc.modalities[m]).join(', ')}}`);
// #endregion load

// #region export
const weights = plainSubsetWeights(family, k);            // name → { shape, data }, subset k's reconstructed kernels
const entries: Record<string, StEntry> = {};
for (const [name, t] of weights) entries[name] = { dtype: 'F32', shape: t.shape, data: t.data };
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, encodeSafetensors(entries, { 'largo.subset': String(k), 'largo.modalities': JSON.stringify(ch.map((m) => desc.modalities[m])) }));
const m = cfg.model;
const plain = buildSegmentationFamily({
  method: 'full-only', modalities: ch.length, classes: desc.classes, baseFeatures: m.baseFeatures, depth: m.depth,
  maxFeatures: m.maxFeatures, deepSupervision: m.deepSupervision, convsPerStage: m.convsPerStage,
});
for (const [name, p] of plain.namedParameters()) {           // the plain U-Net's names are the exported ones
  const w = weights.get(name)!, t = tensor(w.data, w.shape);
  p.backend.copy(t.dataId, p.dataId);
  t.dispose();
}
console.log(`wrote ${weights.size} tensors to ${out}; plain U-Net with ${ch.length} input channels: ${paramCount(plain)} parameters`);
// #endregion export

// #region check
const S = cfg.train.patchSize;
const diff = noGrad(() => tidy(() => {
  const x = randn([1, desc.modalities.length, ...S], { seed: 4 });   // 4 channels; the family's stem picks subset k's
  family.train(false); plain.train(false);
  const a = family.forward(x, k)[0]!.dataSync(), b = plain.forward(indexSelect(x, 1, [...ch]), 0)[0]!.dataSync();
  let d = 0, n = 0;
  for (let i = 0; i < a.length; i++) { d = Math.max(d, Math.abs(a[i]! - b[i]!)); n = Math.max(n, Math.abs(a[i]!)); }
  return { d, n };
}));
console.log(`family on subset ${k} vs plain network, same input: max |difference| ${diff.d.toExponential(0)} (outputs up to ${diff.n.toFixed(2)})`);
// #endregion check
