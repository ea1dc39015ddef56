import t from 'tap';
import fc from 'fast-check';
import {
  channelsOf,
  enumerateSubsets,
  fullSubset,
  numSubsets,
  subsetIndex,
  subsetMask,
  subsetName,
  subsetSize,
  subsetTable,
  subsetsContaining,
} from '../src/subsets.js';

t.test('documented order for M = 4 (BraTS: T1, T1c, T2, FLAIR)', async (t) => {
  t.same(
    enumerateSubsets(4).map((s) => [...s]),
    [
      [0],
      [1],
      [2],
      [3],
      [0, 1],
      [0, 2],
      [0, 3],
      [1, 2],
      [1, 3],
      [2, 3],
      [0, 1, 2],
      [0, 1, 3],
      [0, 2, 3],
      [1, 2, 3],
      [0, 1, 2, 3],
    ],
  );
  t.equal(fullSubset(4), 14);
  t.equal(subsetName(5, ['T1', 'T1c', 'T2', 'FLAIR']), 'T1+T2');
  t.same(subsetsContaining(3, 4), [3, 6, 8, 9, 11, 12, 13, 14]);
});

t.test('avMNIST order: image, audio, both', async (t) => {
  t.same(
    enumerateSubsets(2).map((s) => [...s]),
    [[0], [1], [0, 1]],
  );
  t.equal(subsetIndex(['audio'], ['image', 'audio']), 1);
  t.equal(subsetIndex(['audio', 'image'], ['image', 'audio']), 2);
});

t.test('table', async (t) => {
  const md = subsetTable(['DWI', 'ADC', 'FLAIR']);
  const lines = md.trim().split('\n');
  t.equal(lines.length, 2 + 7);
  t.equal(lines[0], '| k | DWI | ADC | FLAIR |');
  t.equal(lines[2], '| 0 | ● | ○ | ○ |');
  t.equal(lines[5], '| 3 | ● | ● | ○ |');
  t.equal(lines[8], '| 6 | ● | ● | ● |');
});

t.test('properties over M = 1..5', async (t) => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 5 }), (M) => {
      const subs = enumerateSubsets(M);
      if (subs.length !== numSubsets(M) || subs.length !== 2 ** M - 1) return false;
      // All distinct, non-empty, sorted, in range.
      const keys = new Set(subs.map((s) => s.join(',')));
      if (keys.size !== subs.length) return false;
      for (let k = 0; k < subs.length; k++) {
        const s = subs[k];
        if (s.length === 0 || s.some((v, i) => v < 0 || v >= M || (i > 0 && s[i - 1] >= v))) return false;
        // Size order, then lexicographic.
        if (k > 0) {
          const p = subs[k - 1];
          if (p.length > s.length) return false;
          if (p.length === s.length) {
            const i = p.findIndex((v, j) => v !== s[j]);
            if (i < 0 || p[i] > s[i]) return false;
          }
        }
      }
      return fullSubset(M) === subs.length - 1 && subs[subs.length - 1].length === M;
    }),
  );

  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 5 }).chain((M) => fc.tuple(fc.constant(M), fc.integer({ min: 0, max: 2 ** M - 2 }))),
      ([M, k]) => {
        const mask = subsetMask(k, M);
        const names = Array.from({ length: M }, (_, i) => `m${i}`);
        const avail = names.filter((_, i) => mask[i]);
        return (
          subsetIndex(mask) === k &&
          subsetIndex(avail, names) === k &&
          subsetIndex([...avail].reverse(), names) === k &&
          channelsOf(k, M).length === subsetSize(k, M) &&
          channelsOf(k, M).every((c) => mask[c])
        );
      },
    ),
  );

  t.pass('order properties hold');
  fc.assert(
    fc.property(fc.array(fc.boolean(), { minLength: 1, maxLength: 5 }), (mask) => {
      if (!mask.includes(true)) return true;
      const k = subsetIndex(mask);
      return subsetMask(k, mask.length).every((b, i) => b === mask[i]);
    }),
  );
  t.pass('index round trips hold');
});

t.test('errors', async (t) => {
  t.throws(() => subsetIndex([false, false]), /empty subset/);
  t.throws(() => channelsOf(3, 2), /\[0, 2\]/);
  t.throws(() => subsetIndex(['T3'], ['T1', 'T2']), /unknown modality 'T3'/);
  t.throws(() => numSubsets(0), RangeError);
});
