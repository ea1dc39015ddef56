/**
 * Optional "shared start" for per-subset families (config
 * `train.syncSubsetInit`): every subset's uncompressed stem and head copies
 * start from the full-set copy — stem k is the full stem restricted to subset
 * k's input channels, head k equals the full head — so that at step 0 every
 * subset network f_k(x_k) computes exactly the full network on the
 * zero-filled input (CP inner layers already start identical: A_model = 1).
 * The paper leaves the init of the K stem/head copies open; with independent
 * random copies, a subset that is sampled once in 2^M − 1 steps has to learn
 * its stem and head against inner layers co-adapted to the full-set copies,
 * which a CPU-sized step budget does not allow.
 */
import { engine, tensor, type Tensor } from '@largo/core';
import { Layer } from '../layers/base.js';
import { FamilyLayer } from '../layers/family.js';
import { SubsetStem } from '../layers/subset.js';
import { channelsOf } from '../subsets.js';

function setData(t: Tensor, data: Float32Array): void {
  const src = tensor(data, t.shape, 'float32');
  engine().assign(t, src);
  src.dispose();
}

function f32(t: Tensor): Float32Array {
  const d = t.dataSync();
  return d instanceof Float32Array ? d : Float32Array.from(d as ArrayLike<number>);
}

/** Returns the number of layers synchronized. */
export function syncSubsetInit(net: Layer, numModalities: number): number {
  let n = 0;
  for (const [, layer] of net.namedLayers()) {
    if (layer instanceof SubsetStem) {
      const K = layer.copies.length;
      const full = layer.copies[K - 1]!;
      const fw = f32(full.weight(0));
      const [O, I] = full.weight(0).shape as [number, number];
      const S = fw.length / (O * I);
      for (let k = 0; k < K - 1; k++) {
        const ch = channelsOf(k, numModalities);
        const c = layer.copies[k]!;
        const w = new Float32Array(O * ch.length * S);
        for (let o = 0; o < O; o++)
          ch.forEach((m, j) => w.set(fw.subarray((o * I + m) * S, (o * I + m + 1) * S), (o * ch.length + j) * S));
        setData(c.weight(0), w);
        if (c.bias && full.bias) setData(c.bias, f32(full.bias));
      }
      n++;
    } else if (layer instanceof FamilyLayer && layer.role === 'head' && !layer.shared) {
      // dedicated copies [K, ...]: every row becomes the full set's row (K − 1)
      for (const [, p] of [
        ...layer.weights.namedParameters(),
        ...(layer.bias ? [['bias', layer.bias] as [string, Tensor]] : []),
      ]) {
        const K = p.shape[0]!;
        const d = f32(p);
        const per = d.length / K;
        const last = d.slice((K - 1) * per);
        for (let k = 0; k < K - 1; k++) d.set(last, k * per);
        setData(p, d);
      }
      n++;
    }
  }
  return n;
}
