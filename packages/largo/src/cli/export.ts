import { existsSync } from 'node:fs';
import { encodeSafetensors, type StEntry } from '@largo/core';
import { loadCheckpoint, checkCompatible, restoreParams, writeFileAtomic } from '../checkpoint.js';
import { resolveConfig } from '../config.js';
import { buildSegNet } from '../train/experiment.js';
import { plainSubsetWeights } from '../infer/export.js';
import { numSubsets, subsetIndex, subsetName, channelsOf } from '../subsets.js';
import { BACKEND_HELP, InputError, parse, useBackend, UsageError } from './common.js';
import { onCpu, placeOn } from '../backend-select.js';

export const EXPORT_HELP = `largo export — write the plain network of one modality subset

Usage: largo export --checkpoint FILE.safetensors --subset SUBSET --out PLAIN.safetensors

Reconstructs subset k's kernels from the family (CP / Tucker factors, or the
dedicated copy) and writes them with the subset's stem, heads and norm
affines as an ordinary U-Net with |subset| input channels: tensor names
<layer>.weight / <layer>.bias, metadata with the subset and its modalities.

Options:
  --checkpoint FILE        a segmentation checkpoint
  --subset SUBSET          subset index k, or modality names joined by '+' or ',' (e.g. flair+t1ce)
  --out FILE               output .safetensors (never overwritten without --force)
  --force                  overwrite --out
${BACKEND_HELP}
  -h, --help               this help`;

export async function exportCommand(argv: string[]): Promise<number> {
  const { values } = parse('export', argv, {
    checkpoint: { type: 'string' },
    subset: { type: 'string' },
    out: { type: 'string' },
    force: { type: 'boolean' },
    backend: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values['help']) {
    console.log(EXPORT_HELP);
    return 0;
  }
  const ckPath = values['checkpoint'] as string | undefined,
    out = values['out'] as string | undefined,
    sub = values['subset'] as string | undefined;
  if (!ckPath || !out || sub === undefined)
    throw new UsageError(`export: --checkpoint, --subset and --out are required (see 'largo export --help')`);
  if (existsSync(out) && !values['force'])
    throw new InputError(`export: ${out} already exists; pass --force to overwrite it`);
  const ck = loadCheckpoint(ckPath);
  const desc = ck.model;
  if (desc['network'] !== 'unet3d') throw new InputError(`export: ${ckPath} is not a segmentation (U-Net) checkpoint`);
  const M = desc.modalities.length;
  let k: number;
  if (/^\d+$/.test(sub)) {
    k = Number(sub);
    if (k >= numSubsets(M)) throw new UsageError(`export: subset ${k} out of range [0, ${numSubsets(M) - 1}]`);
  } else {
    try {
      k = subsetIndex(
        sub.split(/[+,]/).map((s) => s.trim()),
        desc.modalities,
      );
    } catch (e) {
      throw new UsageError(`export: ${(e as Error).message}`);
    }
  }
  const cfg = resolveConfig(ck.config as Record<string, unknown>, {});
  await useBackend('export', values, (s) => console.error(s));
  const net = onCpu(() => buildSegNet(cfg, desc.method, { modalities: desc.modalities, classes: desc.classes }));
  try {
    const params = net.namedParameters();
    checkCompatible(ckPath, ck, desc, params);
    onCpu(() => restoreParams(ck, params));
    placeOn(params);
    const w = await plainSubsetWeights(net, k);
    const entries: Record<string, StEntry> = {};
    for (const [name, t] of w) entries[name] = { dtype: 'F32', shape: t.shape, data: t.data };
    const mods = channelsOf(k, M).map((i) => desc.modalities[i]!);
    writeFileAtomic(
      out,
      encodeSafetensors(entries, {
        'largo.export': '1',
        'largo.subset': String(k),
        'largo.modalities': JSON.stringify(mods),
        'largo.method': desc.method,
        'largo.model': JSON.stringify({ ...desc, method: 'full-only', modalities: mods }),
        'largo.step': String(ck.step),
        'largo.config': JSON.stringify(cfg),
        'largo.seed': String(cfg.seed),
        'largo.source': ckPath,
      }),
    );
    const total = [...w.values()].reduce((a, t) => a + t.data.length, 0);
    console.log(
      `exported subset ${k} (${subsetName(k, desc.modalities)}) of ${desc.method}: ${w.size} tensors, ${total} parameters → ${out}`,
    );
  } finally {
    net.dispose();
  }
  return 0;
}
