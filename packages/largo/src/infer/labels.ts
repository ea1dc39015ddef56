/** From fused logits to a label map (browser-safe: no Node imports). */
import type { SegData } from '../train/data.js';

/** Label values (e.g. BraTS 0/1/2/4) from fused logits: argmax, or the nested-region rule for regions. */
export function predLabels(logits: Float32Array, d: SegData, n: number): Uint8Array {
  const out = new Uint8Array(n);
  if (d.labelMode === 'labels') {
    for (let i = 0; i < n; i++) {
      let best = 0,
        bv = logits[i]!;
      for (let c = 1; c < d.classes; c++) {
        const v = logits[c * n + i]!;
        if (v > bv) {
          bv = v;
          best = c;
        }
      }
      out[i] = d.labelValues[best]!;
    }
    return out;
  }
  // regions → labels: the innermost region wins (BraTS: ET → 4, TC∖ET → 1, WT∖TC → 2)
  const order = d.regions.map((r, i) => ({ i, size: r.labels.length })).sort((a, b) => b.size - a.size);
  for (let v = 0; v < n; v++) {
    let lab = 0;
    for (const { i } of order) {
      if (logits[i * n + v]! > 0) {
        const r = d.regions[i]!;
        // the region's own label: the one not in any smaller region
        const smaller = d.regions.filter((q) => q.labels.length < r.labels.length).flatMap((q) => q.labels);
        lab = r.labels.find((l) => !smaller.includes(l)) ?? r.labels[0]!;
      }
    }
    out[v] = lab;
  }
  return out;
}
