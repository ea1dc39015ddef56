import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import {
  readNifti,
  niftiToVolume,
  niftiAffine,
  createNifti,
  encodeNifti,
  zscoreNonzero,
  discoverCases,
  LAYOUTS,
  BRATS_LABELS,
  BRATS_REGIONS,
  ISLES_LABELS,
  ISLES_REGIONS,
  type NiftiImage,
} from '@largo/datasets';
import { loadCheckpoint, checkCompatible, restoreParams, writeFileAtomic } from '../checkpoint.js';
import { resolveConfig, type LargoConfig } from '../config.js';
import { buildSegNet } from '../train/experiment.js';
import { predLabels, type SegData } from '../train/data.js';
import { prepareSubset, predictVolume } from '../infer/predict.js';
import { subsetIndex, subsetName } from '../subsets.js';
import { BACKEND_HELP, InputError, parse, useBackend, UsageError, type Options } from './common.js';
import { onCpu, placeOn } from '../backend-select.js';

export const PREDICT_HELP = `largo predict — segment one case from whatever modalities it has

Usage: largo predict --checkpoint FILE.safetensors --out SEG.nii.gz --<modality> FILE.nii.gz [...]
       largo predict --checkpoint FILE.safetensors --out SEG.nii.gz --case CASE_DIR

Reads the given modalities (NIfTI-1, .nii or .nii.gz; all on one voxel grid),
z-scores each inside its nonzero mask, zero-fills the missing ones, runs the
network of the matching modality subset (LARGO reconstructs that subset's
kernels once) with a Gaussian-weighted sliding window, and writes a label map
(BraTS values 0/1/2/4, ISLES 0/1) with the input's shape and affine, plus
OUT.json with the checkpoint, subset, input files, effective config and seed.

Options:
  --checkpoint FILE        a segmentation checkpoint (e.g. runs/<run>/largo/last.safetensors)
  --out FILE               output segmentation (.nii or .nii.gz); never overwritten without --force
  --<modality> FILE        one per available modality, named as in the checkpoint
                           (e.g. --flair f.nii.gz --t1ce t.nii.gz; BraTS aliases such as --t1post work)
  --input NAME=FILE        the same, for any modality name (repeatable)
  --case DIR               a case folder; files are matched by their _<modality> suffix
  --mirror                 test-time mirroring
  --step X                 sliding-window step as a fraction of the patch (default 0.5)
${BACKEND_HELP}
  --force                  overwrite --out
  -h, --help               this help`;

function preScan(argv: string[], name: string): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === `--${name}`) return argv[i + 1];
    if (argv[i]!.startsWith(`--${name}=`)) return argv[i]!.slice(name.length + 3);
  }
  return undefined;
}

/** Canonical modality name → accepted flag names (the name itself plus layout aliases). */
function aliasesFor(modalities: string[]): Map<string, string> {
  const flagToMod = new Map<string, string>();
  for (const m of modalities) {
    flagToMod.set(m, m);
    for (const spec of Object.values(LAYOUTS))
      for (const a of spec.aliases[m] ?? []) if (!flagToMod.has(a)) flagToMod.set(a, m);
  }
  return flagToMod;
}

export async function predictCommand(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(PREDICT_HELP);
    return 0;
  }
  const ckPath = preScan(argv, 'checkpoint');
  if (!ckPath) throw new UsageError(`predict: --checkpoint FILE is required (see 'largo predict --help')`);
  const ck = loadCheckpoint(ckPath);
  const desc = ck.model;
  if (desc['network'] !== 'unet3d')
    throw new InputError(
      `predict: ${ckPath} is a ${String(desc['network'] ?? 'non-segmentation')} checkpoint, not a segmentation network`,
    );
  const modalities = desc.modalities;
  const flagToMod = aliasesFor(modalities);
  const options: Options = {
    checkpoint: { type: 'string' },
    out: { type: 'string' },
    case: { type: 'string' },
    input: { type: 'string', multiple: true },
    mirror: { type: 'boolean' },
    step: { type: 'string' },
    force: { type: 'boolean' },
    backend: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  };
  for (const f of flagToMod.keys()) if (!(f in options)) options[f] = { type: 'string' };
  const { values } = parse('predict', argv, options);
  const out = values['out'] as string | undefined;
  if (!out) throw new UsageError(`predict: --out FILE is required (see 'largo predict --help')`);
  if (!/\.nii(\.gz)?$/.test(out)) throw new UsageError(`predict: --out must end in .nii or .nii.gz, got '${out}'`);
  if (existsSync(out) && !values['force'])
    throw new InputError(`predict: ${out} already exists; pass --force to overwrite it`);
  if (existsSync(`${out}.json`) && !values['force'])
    throw new InputError(`predict: ${out}.json already exists; pass --force to overwrite it`);

  const stepFlag = values['step'] !== undefined ? Number(values['step']) : undefined;
  if (stepFlag !== undefined && !(stepFlag > 0 && stepFlag <= 1))
    throw new UsageError(`predict: --step must be in (0, 1], got '${String(values['step'])}'`);

  // which file for which modality
  const files = new Map<string, string>();
  const add = (mod: string, file: string, how: string) => {
    if (files.has(mod) && files.get(mod) !== file)
      throw new UsageError(`predict: modality '${mod}' given twice (${files.get(mod)} and ${file}, via ${how})`);
    files.set(mod, file);
  };
  for (const [flag, mod] of flagToMod) if (values[flag] !== undefined) add(mod, String(values[flag]), `--${flag}`);
  for (const s of (values['input'] as string[] | undefined) ?? []) {
    const i = s.indexOf('=');
    if (i <= 0) throw new UsageError(`predict: --input expects NAME=FILE, got '${s}'`);
    const mod = flagToMod.get(s.slice(0, i).toLowerCase());
    if (!mod)
      throw new UsageError(
        `predict: unknown modality '${s.slice(0, i)}' (this checkpoint knows ${modalities.join(', ')})`,
      );
    add(mod, s.slice(i + 1), '--input');
  }
  if (values['case']) {
    const dir = String(values['case']);
    if (!existsSync(dir)) throw new InputError(`predict: case folder ${dir} does not exist`);
    const d = discoverCases(dir, { layout: 'auto' });
    if (d.cases.length === 0) throw new InputError(`predict: no NIfTI files with a known modality suffix in ${dir}`);
    if (d.cases.length > 1)
      throw new InputError(
        `predict: ${dir} holds ${d.cases.length} cases (${d.cases
          .slice(0, 5)
          .map((c) => c.id)
          .join(', ')}); give one case folder or the files`,
      );
    const found = Object.entries(d.cases[0]!.files);
    const unused = found.filter(([m]) => !modalities.includes(m)).map(([m]) => m);
    if (found.length && unused.length === found.length && files.size === 0) {
      throw new InputError(
        `predict: the case in ${dir} has ${unused.join(', ')} (${d.layout} layout), but this checkpoint takes ${modalities.join(', ')}; use a checkpoint trained on ${d.layout} data`,
      );
    }
    if (unused.length)
      console.error(
        `predict: ignoring ${unused.join(', ')} from ${dir} (not a modality of this checkpoint: ${modalities.join(', ')})`,
      );
    for (const [m, f] of found) if (modalities.includes(m)) add(m, f, '--case');
  }
  if (files.size === 0)
    throw new UsageError(
      `predict: no input modality given; this checkpoint takes ${modalities.map((m) => `--${m}`).join(', ')} (any non-empty subset) or --case DIR`,
    );
  for (const [m, f] of files) if (!existsSync(f)) throw new InputError(`predict: the ${m} file ${f} does not exist`);

  // read, check geometry and values
  const present = modalities.filter((m) => files.has(m));
  const images = new Map<string, NiftiImage>();
  for (const m of present) images.set(m, await readNifti(files.get(m)!));
  const ref = present[0]!,
    refFile = files.get(ref)!,
    refImg = images.get(ref)!;
  const refVol = niftiToVolume(refImg, refFile);
  for (const m of present) {
    const h = images.get(m)!.header;
    const sp = h.pixdim.slice(1, 4);
    // the output copies the geometry: a NaN spacing would be written into it
    if (sp.some((v) => !Number.isFinite(v)))
      throw new InputError(
        `predict: ${files.get(m)} (${m}) has a non-finite voxel size (pixdim ${sp.join(', ')}); fix its header`,
      );
    if ([...h.quatern, ...h.qoffset, ...h.srow.flat()].some((v) => !Number.isFinite(v)))
      throw new InputError(`predict: ${files.get(m)} (${m}) has non-finite values in its qform/sform; fix its header`);
  }
  const refAff = niftiAffine(refImg.header);
  const vols = present.map((m) => {
    const f = files.get(m)!;
    const v = m === ref ? refVol : niftiToVolume(images.get(m)!, f);
    if (v.shape.join(',') !== refVol.shape.join(','))
      throw new InputError(
        `predict: ${f} (${m}) has shape [${v.shape.join(', ')}] but ${refFile} (${ref}) has [${refVol.shape.join(', ')}]; all modalities must share one voxel grid`,
      );
    const aff = niftiAffine(images.get(m)!.header);
    const diff = Math.max(...aff.flatMap((r, i) => r.map((x, j) => Math.abs(x - refAff[i]![j]!))));
    if (diff > 1e-3)
      throw new InputError(
        `predict: ${f} (${m}) has a different affine from ${refFile} (${ref}); resample the modalities onto one grid first`,
      );
    let bad = 0;
    for (let i = 0; i < v.data.length; i++) if (!Number.isFinite(v.data[i]!)) bad++;
    if (bad)
      throw new InputError(`predict: ${f} (${m}) holds ${bad} NaN/Inf voxel(s); fix or mask them before predicting`);
    return v;
  });
  const spatial = refVol.shape;
  const n = spatial.reduce((a, b) => a * b, 1);
  const M = modalities.length;
  const image = new Float32Array(M * n);
  present.forEach((m, i) => {
    const a = vols[i]!.data.slice();
    zscoreNonzero(a);
    image.set(a, modalities.indexOf(m) * n);
  });
  const k = subsetIndex(modalities.map((m) => files.has(m)));

  // network
  const cfg: LargoConfig = resolveConfig(ck.config as Record<string, unknown>, {});
  const classes = desc.classes;
  const be = await useBackend('predict', values, (s) => console.error(s));
  const net = onCpu(() => buildSegNet(cfg, desc.method, { modalities, classes }));
  try {
    const params = net.namedParameters();
    checkCompatible(ckPath, ck, desc, params);
    onCpu(() => restoreParams(ck, params));
    placeOn(params);
    prepareSubset(net, k);
    const step = stepFlag ?? cfg.eval.step;
    const t0 = performance.now();
    const logits = await predictVolume(net, image, spatial, k, {
      patchSize: cfg.train.patchSize,
      step,
      mirror: Boolean(values['mirror']),
    });
    const isles = cfg.dataset === 'isles';
    const seg: Pick<SegData, 'labelMode' | 'classes' | 'labelValues' | 'regions'> = {
      labelMode: (desc['labelMode'] as 'regions' | 'labels') ?? cfg.data.labelMode,
      classes,
      labelValues: isles ? ISLES_LABELS : BRATS_LABELS,
      regions: isles ? ISLES_REGIONS : BRATS_REGIONS,
    };
    const labels = predLabels(logits, seg as SegData, n);
    // output in the input's geometry: same dims, pixdim, qform and sform
    const h = refImg.header;
    const img = createNifti(labels, h.dims.slice(0, 3));
    Object.assign(img.header, {
      pixdim: [...h.pixdim],
      qformCode: h.qformCode,
      sformCode: h.sformCode,
      quatern: [...h.quatern],
      qoffset: [...h.qoffset],
      srow: h.srow.map((r) => [...r]),
      xyztUnits: h.xyztUnits,
      descrip: `largo ${desc.method} subset ${subsetName(k, modalities)}`.slice(0, 79),
    });
    writeFileAtomic(out, encodeNifti(img, { gzip: out.endsWith('.gz') }));
    // the provenance beside the result: checkpoint, subset, inputs, effective config and seed
    writeFileAtomic(
      `${out}.json`,
      JSON.stringify(
        {
          output: resolve(out),
          checkpoint: resolve(ckPath),
          step: ck.step,
          method: desc.method,
          subset: k,
          modalities: Object.fromEntries([...files].map(([m, f]) => [m, resolve(f)])),
          seed: cfg.seed,
          config: cfg,
          options: { mirror: Boolean(values['mirror']), step },
          backend: { name: be.name, adapter: be.adapter },
          written: new Date().toISOString(),
        },
        null,
        2,
      ) + '\n',
    );
    const counts = new Map<number, number>();
    for (const v of labels) counts.set(v, (counts.get(v) ?? 0) + 1);
    console.error(
      `predict: ${desc.method}, subset ${subsetName(k, modalities)} (k=${k}), ${spatial.join('×')} voxels on ${be.name} (${be.adapter}) in ${((performance.now() - t0) / 1000).toFixed(2)} s; labels ${[
        ...counts,
      ]
        .sort((a, b) => a[0] - b[0])
        .map(([l, c]) => `${l}:${c}`)
        .join(' ')}`,
    );
    console.log(resolve(out));
  } finally {
    net.dispose();
  }
  return 0;
}
