/**
 * Segmentation in the page: a LARGO checkpoint from bytes, the network of one
 * modality subset, and an asynchronous sliding window (GPU reads are
 * asynchronous in browsers) that reports progress per batch of tiles. The
 * tile layout, Gaussian weights and float64 accumulation are largo's own
 * helpers in the same order as `largo predict`, so the CPU result matches the
 * CLI and the GPU results match it up to rounding.
 */
import { tensor, tidy } from '@largo/core';
import { noGrad } from '@largo/autograd';
import {
  decodeCheckpoint,
  checkCompatible,
  restoreParams,
  resolveConfig,
  buildSegNet,
  zeroFill,
  prepareSubset,
  tileStarts,
  gaussianImportance,
  predLabels,
  subsetIndex,
  subsetName,
  type CheckpointData,
  type LargoConfig,
} from 'largo/browser';
import {
  BRATS_LABELS,
  BRATS_REGIONS,
  ISLES_LABELS,
  ISLES_REGIONS,
  zscoreNonzero,
  type Region,
} from '@largo/datasets/browser';

export interface ModelInfo {
  name: string;
  method: string;
  modalities: string[];
  classes: number;
  labelMode: 'regions' | 'labels';
  labelValues: readonly number[];
  regions: readonly Region[];
  patchSize: number[];
  step: number;
  batchSize: number;
  cfg: LargoConfig;
  ck: CheckpointData;
}

/** Reads a checkpoint; every problem is an Error whose message names the file. */
export function readCheckpoint(bytes: Uint8Array, name: string): ModelInfo {
  const ck = decodeCheckpoint(bytes, name);
  const desc = ck.model;
  if (desc['network'] !== 'unet3d')
    throw new Error(
      `checkpoint ${name}: a ${String(desc['network'] ?? 'non-segmentation')} checkpoint, not a 3-D segmentation network`,
    );
  const cfg = resolveConfig(ck.config as Record<string, unknown>, {}, `checkpoint ${name}`);
  // a checkpoint of another configuration fails here, when it is loaded, not when it is run
  const net = buildSegNet(cfg, desc.method, { modalities: desc.modalities, classes: desc.classes });
  try {
    checkCompatible(name, ck, desc, net.namedParameters());
  } finally {
    net.dispose();
  }
  const isles = cfg.dataset === 'isles';
  return {
    name,
    method: desc.method,
    modalities: [...desc.modalities],
    classes: desc.classes,
    labelMode: (desc['labelMode'] as 'regions' | 'labels') ?? cfg.data.labelMode,
    labelValues: isles ? ISLES_LABELS : BRATS_LABELS,
    regions: isles ? ISLES_REGIONS : BRATS_REGIONS,
    patchSize: [...cfg.train.patchSize],
    step: cfg.eval.step,
    batchSize: cfg.eval.batchSize,
    cfg,
    ck,
  };
}

export interface Volumes {
  /** modality name → raw voxel values [D, H, W] */
  data: Map<string, Float32Array>;
  spatial: number[];
}

export interface SegmentOptions {
  /** tiles per forward pass (default: the checkpoint's eval.batchSize) */
  batchSize?: number;
  onProgress?: (done: number, total: number) => void;
}

export interface SegmentResult {
  /** label values (BraTS 0/1/2/4 or ISLES 0/1), [D, H, W] */
  labels: Uint8Array;
  /** distance of each voxel from the decision boundary (smallest |logit| over regions, or the top-2 gap) */
  margin: Float32Array;
  subset: number;
  subsetName: string;
  tiles: number;
  seconds: number;
}

/** The network input [M, D, H, W]: each present modality z-scored inside its nonzero mask, the missing ones zero. */
export function networkInput(model: ModelInfo, vols: Volumes): { image: Float32Array; k: number } {
  const n = vols.spatial.reduce((a, b) => a * b, 1);
  const M = model.modalities.length;
  const image = new Float32Array(M * n);
  const present = model.modalities.map((m) => vols.data.has(m));
  if (!present.some(Boolean)) throw new Error('no modality selected');
  model.modalities.forEach((m, i) => {
    const v = vols.data.get(m);
    if (!v) return;
    const a = v.slice();
    zscoreNonzero(a);
    image.set(a, i * n);
  });
  const k = subsetIndex(present);
  return { image: zeroFill(image, M, k), k };
}

/** Segments with the current backend; the network is built, restored, cached for the subset and freed here. */
export async function segment(model: ModelInfo, vols: Volumes, o: SegmentOptions = {}): Promise<SegmentResult> {
  const t0 = performance.now();
  const { image, k } = networkInput(model, vols);
  const net = buildSegNet(model.cfg, model.method, { modalities: model.modalities, classes: model.classes });
  try {
    const params = net.namedParameters();
    checkCompatible(model.name, model.ck, model.ck.model, params);
    restoreParams(model.ck, params);
    prepareSubset(net, k);
    const M = model.modalities.length;
    const ps = model.patchSize;
    const predict = async (patches: Float32Array, count: number): Promise<Float32Array> => {
      const out = noGrad(() => tidy(() => net.forward(tensor(patches, [count, M, ...ps]), k)[0]!));
      try {
        const d = await out.data();
        return d instanceof Float32Array ? d : Float32Array.from(d as ArrayLike<number>);
      } finally {
        out.dispose();
      }
    };
    const { logits, tiles } = await slidingWindowAsync(
      image,
      [M, ...vols.spatial],
      model.classes,
      predict,
      ps,
      model.step,
      o.batchSize ?? model.batchSize,
      o.onProgress,
    );
    const n = vols.spatial.reduce((a, b) => a * b, 1);
    const labels = predLabels(
      logits,
      {
        labelMode: model.labelMode,
        classes: model.classes,
        labelValues: model.labelValues,
        regions: model.regions,
      } as Parameters<typeof predLabels>[1],
      n,
    );
    return {
      labels,
      margin: decisionMargin(logits, model, n),
      subset: k,
      subsetName: subsetName(k, model.modalities),
      tiles,
      seconds: (performance.now() - t0) / 1000,
    };
  } finally {
    net.dispose();
  }
}

function decisionMargin(logits: Float32Array, model: ModelInfo, n: number): Float32Array {
  const out = new Float32Array(n);
  const C = model.classes;
  for (let i = 0; i < n; i++) {
    if (model.labelMode === 'regions') {
      let m = Infinity;
      for (let c = 0; c < C; c++) m = Math.min(m, Math.abs(logits[c * n + i]!));
      out[i] = m;
    } else {
      let a = -Infinity,
        b = -Infinity;
      for (let c = 0; c < C; c++) {
        const v = logits[c * n + i]!;
        if (v > a) {
          b = a;
          a = v;
        } else if (v > b) b = v;
      }
      out[i] = a - b;
    }
  }
  return out;
}

/**
 * largo's sliding window (infer/sliding-window.ts) with an asynchronous
 * predictor and progress: same centred padding, tile origins, Gaussian
 * weights and float64 accumulation order, no mirroring (largo predict's default).
 */
export async function slidingWindowAsync(
  image: Float32Array,
  shape: readonly number[],
  K: number,
  predict: (patches: Float32Array, n: number) => Promise<Float32Array>,
  ps: readonly number[],
  step: number,
  batchSize: number,
  onProgress?: (done: number, total: number) => void,
): Promise<{ logits: Float32Array; tiles: number }> {
  const [C, D, H, W] = shape as [number, number, number, number];
  const spatial = [D, H, W];
  const padded = spatial.map((s, i) => Math.max(s, ps[i]!));
  const before = spatial.map((s, i) => Math.floor((padded[i]! - s) / 2));
  const [PD, PH, PW] = padded as [number, number, number];
  const pn = PD * PH * PW;
  let img = image;
  if (PD !== D || PH !== H || PW !== W) {
    img = new Float32Array(C * pn);
    for (let c = 0; c < C; c++)
      for (let d = 0; d < D; d++)
        for (let h = 0; h < H; h++) {
          const src = ((c * D + d) * H + h) * W;
          img.set(image.subarray(src, src + W), ((c * PD + d + before[0]!) * PH + h + before[1]!) * PW + before[2]!);
        }
  }
  const weight = gaussianImportance(ps);
  const acc = new Float64Array(K * pn);
  const wsum = new Float64Array(pn);
  const starts = padded.map((s, i) => tileStarts(s, ps[i]!, step));
  const tiles: number[][] = [];
  for (const a of starts[0]!) for (const b of starts[1]!) for (const c of starts[2]!) tiles.push([a, b, c]);
  const [pd, ph, pw] = ps as [number, number, number];
  const tn = pd * ph * pw;
  const bs = Math.max(1, Math.floor(batchSize));
  onProgress?.(0, tiles.length);
  for (let t0 = 0; t0 < tiles.length; t0 += bs) {
    const group = tiles.slice(t0, t0 + bs);
    const n = group.length;
    const batch = new Float32Array(n * C * tn);
    group.forEach(([sd, sh, sw], b) => {
      for (let c = 0; c < C; c++)
        for (let d = 0; d < pd; d++)
          for (let h = 0; h < ph; h++) {
            const src = ((c * PD + sd! + d) * PH + sh! + h) * PW + sw!;
            batch.set(img.subarray(src, src + pw), ((b * C + c) * pd + d) * ph * pw + h * pw);
          }
    });
    const out = await predict(batch, n);
    if (out.length !== n * K * tn)
      throw new Error(
        `sliding window: the network returned ${out.length} values for ${n} patch(es), expected ${n * K * tn}`,
      );
    // the same float64 sums as largo's slidingWindow (pred is float64 there)
    group.forEach(([sd, sh, sw], b) => {
      for (let d = 0; d < pd; d++)
        for (let h = 0; h < ph; h++)
          for (let w = 0; w < pw; w++) {
            const pi = (d * ph + h) * pw + w;
            const vi = ((sd! + d) * PH + sh! + h) * PW + sw! + w;
            const g = weight[pi]!;
            wsum[vi] += g;
            for (let k = 0; k < K; k++) acc[k * pn + vi] += (0 + out[(b * K + k) * tn + pi]!) * g;
          }
    });
    onProgress?.(Math.min(tiles.length, t0 + n), tiles.length);
    // let the page repaint the progress bar (the CPU backend never yields otherwise)
    await new Promise((r) => setTimeout(r, 0));
  }
  const logits = new Float32Array(K * D * H * W);
  for (let k = 0; k < K; k++)
    for (let d = 0; d < D; d++)
      for (let h = 0; h < H; h++)
        for (let w = 0; w < W; w++) {
          const vi = ((d + before[0]!) * PH + h + before[1]!) * PW + w + before[2]!;
          logits[((k * D + d) * H + h) * W + w] = acc[k * pn + vi]! / wsum[vi]!;
        }
  return { logits, tiles: tiles.length };
}
