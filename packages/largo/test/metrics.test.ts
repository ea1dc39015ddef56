import t from 'tap';
import fc from 'fast-check';
import {
  dice,
  hd95,
  surface,
  squaredEdt,
  percentile,
  meanStd,
  accuracy,
  volumeDiagonal,
  regionScores,
  directedSurfaceDistances,
} from '../src/eval/metrics.js';

// ---------------------------------------------------------------- oracles (brute force, written independently)

function coords(i: number, shape: readonly number[]): number[] {
  const c: number[] = [];
  for (let d = shape.length - 1; d >= 0; d--) {
    c.unshift(i % shape[d]!);
    i = Math.floor(i / shape[d]!);
  }
  return c;
}

function bruteSurface(mask: ArrayLike<number>, shape: number[]): number[] {
  const out: number[] = [];
  const n = mask.length;
  for (let i = 0; i < n; i++) {
    if (!mask[i]) continue;
    const c = coords(i, shape);
    let onSurface = false;
    for (let d = 0; d < shape.length; d++) {
      for (const s of [-1, 1]) {
        const cc = [...c];
        cc[d]! += s;
        if (cc[d]! < 0 || cc[d]! >= shape[d]!) {
          onSurface = true;
          continue;
        }
        let j = 0;
        for (let k = 0; k < shape.length; k++) j = j * shape[k]! + cc[k]!;
        if (!mask[j]) onSurface = true;
      }
    }
    if (onSurface) out.push(i);
  }
  return out;
}

function bruteDist(i: number, j: number, shape: number[], spacing: number[]): number {
  const a = coords(i, shape),
    b = coords(j, shape);
  let s = 0;
  for (let d = 0; d < shape.length; d++) s += ((a[d]! - b[d]!) * spacing[d]!) ** 2;
  return Math.sqrt(s);
}

function bruteHd95(p: number[], g: number[], shape: number[], spacing: number[]): number {
  const np = p.filter(Boolean).length,
    ng = g.filter(Boolean).length;
  if (np === 0 && ng === 0) return 0;
  if (np === 0 || ng === 0) return Math.sqrt(shape.reduce((s, n, d) => s + (n * spacing[d]!) ** 2, 0));
  const sp = bruteSurface(p, shape),
    sg = bruteSurface(g, shape);
  const ds: number[] = [];
  for (const i of sp) ds.push(Math.min(...sg.map((j) => bruteDist(i, j, shape, spacing))));
  for (const j of sg) ds.push(Math.min(...sp.map((i) => bruteDist(j, i, shape, spacing))));
  ds.sort((a, b) => a - b);
  const pos = 0.95 * (ds.length - 1);
  const lo = Math.floor(pos),
    hi = Math.ceil(pos);
  return ds[lo]! + (ds[hi]! - ds[lo]!) * (pos - lo);
}

// ---------------------------------------------------------------- Dice

t.test('Dice: hand-computed values and BraTS conventions', async (t) => {
  t.equal(dice([1, 1, 0, 0], [1, 0, 1, 0]), 0.5, '2·1/(2+2)');
  t.equal(dice([1, 1, 1, 0], [1, 1, 0, 0]), 0.8, '2·2/(3+2)');
  t.equal(dice([0, 0, 0], [0, 0, 0]), 1, 'both empty → 1');
  t.equal(dice([1, 0, 0], [0, 0, 0]), 0, 'only ground truth empty → 0');
  t.equal(dice([0, 0, 0], [0, 1, 0]), 0, 'only prediction empty → 0');
  t.equal(dice(new Uint8Array([3, 0, 7]), new Uint8Array([1, 0, 1])), 1, 'nonzero means foreground');
  t.throws(() => dice([1], [1, 0]), /1 voxels, ground truth 2/);
});

t.test('accuracy, mean ± std, percentile', async (t) => {
  t.equal(accuracy([1, 2, 3, 4], [1, 2, 0, 4]), 0.75);
  const s = meanStd([1, 2, 3, 4]);
  t.equal(s.mean, 2.5);
  t.ok(Math.abs(s.std - Math.sqrt(1.25)) < 1e-15, 'population std');
  t.equal(percentile([1, 2, 3, 4, 5], 50), 3);
  t.equal(percentile([0, 10], 95), 9.5);
  t.ok(Math.abs(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 95) - 9.55) < 1e-12, 'numpy linear: 9.55');
  t.throws(() => meanStd([1, NaN]), /non-finite/);
});

// ---------------------------------------------------------------- surface / EDT / HD95

t.test('surface: a 3×3×3 cube in a 5³ volume is its 26 shell voxels', async (t) => {
  const shape = [5, 5, 5];
  const m = new Uint8Array(125);
  for (let d = 1; d < 4; d++) for (let h = 1; h < 4; h++) for (let w = 1; w < 4; w++) m[(d * 5 + h) * 5 + w] = 1;
  const s = surface(m, shape);
  t.equal(
    s.reduce((a, b) => a + b, 0),
    26,
  );
  t.equal(s[(2 * 5 + 2) * 5 + 2], 0, 'centre is interior');
  // a mask touching the border: border voxels are surface (outside counts as background)
  const full = new Uint8Array(27).fill(1);
  t.equal(
    surface(full, [3, 3, 3]).reduce((a, b) => a + b, 0),
    26,
  );
});

t.test('EDT: hand-computed anisotropic distances', async (t) => {
  const sites = new Uint8Array(3 * 4 * 5);
  sites[0] = 1; // (0,0,0)
  const d2 = squaredEdt(sites, [3, 4, 5], [2, 1, 0.5]);
  const at = (d: number, h: number, w: number) => d2[(d * 4 + h) * 5 + w]!;
  t.equal(at(0, 0, 0), 0);
  t.equal(at(1, 0, 0), 4);
  t.equal(at(0, 3, 0), 9);
  t.equal(at(0, 0, 4), 4);
  t.equal(at(2, 3, 4), 16 + 9 + 4);
  t.ok(
    squaredEdt(new Uint8Array(8), [2, 2, 2], [1, 1, 1]).every((v) => v === Infinity),
    'no sites → Infinity',
  );
});

t.test('HD95: hand-computed cases', async (t) => {
  // two single voxels 3 apart along W with spacing 2 mm → 6 mm
  const shape = [1, 1, 8];
  const a = new Uint8Array(8),
    b = new Uint8Array(8);
  a[1] = 1;
  b[4] = 1;
  t.equal(hd95(a, b, shape, [1, 1, 2]), 6);
  t.equal(hd95(a, a, shape, [1, 1, 2]), 0, 'identical masks → 0');
  t.equal(hd95(new Uint8Array(8), new Uint8Array(8), shape, [1, 1, 1]), 0, 'both empty → 0');
  t.equal(
    hd95(a, new Uint8Array(8), [2, 2, 2], [1, 2, 3]),
    volumeDiagonal([2, 2, 2], [1, 2, 3]),
    'one empty → volume diagonal',
  );
  t.equal(volumeDiagonal([2, 2, 2], [1, 2, 3]), Math.sqrt(4 + 16 + 36));
  // directed distances: a 1×1×3 bar vs a single voxel at its end
  const bar = new Uint8Array(8);
  bar[0] = bar[1] = bar[2] = 1;
  const one = new Uint8Array(8);
  one[2] = 1;
  t.same([...directedSurfaceDistances(bar, one, shape, [1, 1, 1])], [2, 1, 0]);
});

t.test('HD95 equals a brute-force oracle on random small masks with anisotropic spacing', async (t) => {
  const arb = fc.record({
    shape: fc.tuple(fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 6 }), fc.integer({ min: 1, max: 6 })),
    spacing: fc.tuple(
      fc.double({ min: 0.3, max: 5, noNaN: true }),
      fc.double({ min: 0.3, max: 5, noNaN: true }),
      fc.double({ min: 0.3, max: 5, noNaN: true }),
    ),
    seedP: fc.array(fc.boolean(), { minLength: 180, maxLength: 180 }),
    seedG: fc.array(fc.boolean(), { minLength: 180, maxLength: 180 }),
    density: fc.integer({ min: 1, max: 4 }),
  });
  fc.assert(
    fc.property(arb, ({ shape, spacing, seedP, seedG, density }) => {
      const n = shape[0] * shape[1] * shape[2];
      // thin the masks so that sparse, dense and empty masks all occur
      const p = Array.from({ length: n }, (_, i) => (seedP[i]! && i % density === 0 ? 1 : 0));
      const g = Array.from({ length: n }, (_, i) => (seedG[i]! && (i + 1) % density !== 0 ? 1 : 0));
      const want = bruteHd95(p, g, [...shape], [...spacing]);
      const got = hd95(p, g, [...shape], [...spacing]);
      return Math.abs(got - want) <= 1e-9 * Math.max(1, want);
    }),
    { numRuns: 300 },
  );
  t.pass('300 random cases');
});

t.test('EDT equals brute force on random sites', async (t) => {
  fc.assert(
    fc.property(
      fc.tuple(fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 5 })),
      fc.tuple(
        fc.double({ min: 0.2, max: 4, noNaN: true }),
        fc.double({ min: 0.2, max: 4, noNaN: true }),
        fc.double({ min: 0.2, max: 4, noNaN: true }),
      ),
      fc.array(fc.integer({ min: 0, max: 7 }), { minLength: 125, maxLength: 125 }),
      (shape, spacing, bits) => {
        const n = shape[0] * shape[1] * shape[2];
        const sites = bits.slice(0, n).map((b) => (b === 0 ? 1 : 0));
        const d2 = squaredEdt(sites, [...shape], [...spacing]);
        for (let i = 0; i < n; i++) {
          let best = Infinity;
          for (let j = 0; j < n; j++)
            if (sites[j]) best = Math.min(best, bruteDist(i, j, [...shape], [...spacing]) ** 2);
          if (best === Infinity ? d2[i] !== Infinity : Math.abs(d2[i]! - best) > 1e-9 * Math.max(1, best)) return false;
        }
        return true;
      },
    ),
    { numRuns: 200 },
  );
  t.pass('200 random cases');
});

t.test('regionScores splits channels', async (t) => {
  const spatial = [1, 2, 2];
  const pred = new Uint8Array([1, 0, 0, 0, /* r1 */ 0, 0, 0, 0]);
  const gt = new Uint8Array([1, 0, 0, 0, /* r1 */ 0, 0, 0, 0]);
  const s = regionScores(pred, gt, 2, spatial, [1, 1, 1]);
  t.same(s.dice, [1, 1]);
  t.same(s.hd95, [0, 0]);
});
