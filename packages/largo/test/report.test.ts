import t from 'tap';
import {
  toMarkdown,
  toCsv,
  toCaseCsv,
  toJson,
  summarize,
  averages,
  overallAverage,
  cellKey,
  type ResultsTable,
} from '../src/report/table.js';
import { Progress, formatDuration } from '../src/progress.js';
import { lineChartSvg, smooth } from '../src/report/curves.js';
import { enumerateSubsets, subsetMask } from '../src/subsets.js';

function table(): ResultsTable {
  const subsets = enumerateSubsets(4).map((_, k) => ({ index: k, available: subsetMask(k, 4) }));
  const records = [];
  for (const method of ['largo', 'dropout'])
    for (const s of subsets)
      for (const caseId of ['a', 'b']) {
        const base = method === 'largo' ? 0.8 : 0.7;
        records.push({
          method,
          subset: s.index,
          caseId,
          values: [base + (caseId === 'a' ? 0.1 : -0.1), base - 0.2, base - 0.4],
          hd95: [1, 2, 3],
        });
      }
  return {
    title: 'Dice',
    modalities: ['Fl', 'T1', 'T1c', 'T2'],
    subsets,
    groups: ['WT', 'TC', 'ET'],
    methods: ['largo', 'dropout'],
    metric: 'Dice',
    records,
  };
}

t.test(
  'paper-shaped markdown table: one row per subset with ●/○, a column per region × method, an Average row',
  async (t) => {
    const md = toMarkdown(table());
    const rows = md
      .trim()
      .split('\n')
      .filter((l) => l.startsWith('|'));
    t.equal(rows.length, 2 + 15 + 1, 'header, rule, 15 subsets, Average');
    t.equal(rows[0], '| Fl | T1 | T1c | T2 | WT largo | WT dropout | TC largo | TC dropout | ET largo | ET dropout |');
    t.equal(
      rows[2],
      '| ● | ○ | ○ | ○ | **80.00** | 70.00 | **60.00** | 50.00 | **40.00** | 30.00 |',
      'single FLAIR row, best in bold',
    );
    t.equal(
      rows[16],
      '| ● | ● | ● | ● | **80.00** | 70.00 | **60.00** | 50.00 | **40.00** | 30.00 |',
      'full set is the last subset',
    );
    t.match(rows[17]!, /^\| Average \|  \|  \|  \| \*\*80\.00\*\* \| 70\.00 \|/);
    t.match(toMarkdown(table(), { showStd: true }), /80\.00 ± 10\.00/);
  },
);

t.test('summary statistics: mean ± population std over cases, averages over subsets', async (t) => {
  const tb = table();
  const cells = summarize(tb);
  const c = cells.get(cellKey('largo', 0, 0))!;
  t.ok(Math.abs(c.value.mean - 0.8) < 1e-12);
  t.ok(Math.abs(c.value.std - 0.1) < 1e-12);
  t.equal(c.value.n, 2);
  t.equal(c.hd95!.mean, 1);
  t.ok(Math.abs(averages(tb).get('dropout\u00002')!.mean - 0.3) < 1e-12);
  t.ok(Math.abs(overallAverage(tb, 'largo') - 0.6) < 1e-12);
});

t.test('CSV and JSON', async (t) => {
  const csv = toCsv(table()).trim().split('\n');
  t.equal(csv[0], 'method,subset,modalities,group,metric,mean,std,n,hd95_mean,hd95_std');
  t.equal(csv.length, 1 + 2 * 15 * 3);
  t.equal(csv[1], 'largo,0,Fl,WT,Dice,0.8,0.1,2,1,0');
  const cases = toCaseCsv(table()).trim().split('\n');
  t.equal(cases[0], 'method,subset,modalities,case,WT_Dice,TC_Dice,ET_Dice,WT_hd95,TC_hd95,ET_hd95');
  t.equal(cases.length, 1 + 2 * 15 * 2);
  const j = JSON.parse(JSON.stringify(toJson(table()))) as { summary: { method: string; overall: number }[] };
  t.same(
    j.summary.map((s) => s.method),
    ['largo', 'dropout'],
  );
});

t.test('progress: a bar redrawn in place on a TTY, plain lines otherwise', async (t) => {
  let clock = 0;
  const tty: string[] = [];
  const p = new Progress({
    total: 4,
    stream: { write: (s: string) => tty.push(s), isTTY: true, columns: 200 },
    now: () => clock,
    label: 'largo',
  });
  for (let i = 0; i < 4; i++) {
    clock += 500;
    p.tick({ loss: 1 / (i + 1) });
  }
  p.log('validation 0.5');
  p.done();
  t.ok(
    tty.every((s) => !s.includes('\n') || s === 'validation 0.5\n' || s === '\n'),
    'no newlines in bar updates',
  );
  t.ok(tty.filter((s) => s.startsWith('\r')).length >= 4);
  t.match(
    tty.find((s) => s.includes('step 4/4'))!,
    /█{24} largo step 4\/4 \(100%\) loss 0\.2500 \| 500ms\/step, eta 0ms/,
  );
  const plain: string[] = [];
  const q = new Progress({
    total: 100,
    stream: { write: (s: string) => plain.push(s), isTTY: false },
    now: () => (clock += 2000),
  });
  for (let i = 0; i < 100; i++) q.tick({ loss: 0.5 });
  t.ok(
    plain.every((s) => s.endsWith('\n') && !s.includes('\r')),
    'plain lines',
  );
  t.ok(plain.length >= 20 && plain.length <= 22, `about 20 lines (${plain.length})`);
  t.match(plain[1]!, /step 5\/100 \(5%\) loss 0\.5000 \| 2\.0s\/step, eta 3m10s/);
  t.equal(formatDuration(3725), '1h02m');
  t.equal(formatDuration(0.25), '250ms');
});

t.test('curves', async (t) => {
  t.same(
    smooth(
      [
        [1, 1],
        [2, 3],
        [3, 5],
      ],
      2,
    ),
    [
      [1, 1],
      [2, 2],
      [3, 4],
    ],
  );
  const svg = lineChartSvg([{ name: 'a', points: [] }], { title: 'empty' });
  t.match(svg, /<svg/);
});

t.test('curves: a log axis over decades is labelled at whole decades; x range options', async (t) => {
  const svg = lineChartSvg(
    [
      {
        name: 'a',
        points: [
          [2, 20],
          [6, 1000],
        ],
      },
    ],
    { title: 'p', logY: true, xMin: 2, xMax: 6 },
  );
  const yLabels = [...svg.matchAll(/text-anchor="end" dominant-baseline="middle">([^<]+)</g)].map((m) => m[1]);
  t.same(yLabels, ['100', '1000'], 'decade ticks inside [20, 1000], written as plain numbers');
  const xLabels = [...svg.matchAll(/text-anchor="middle">([\d.]+)</g)].map((m) => Number(m[1]));
  t.equal(Math.min(...xLabels), 2, 'x axis starts at xMin, not 0');
  t.equal(Math.max(...xLabels), 6);
  const tiny = lineChartSvg(
    [
      {
        name: 'a',
        points: [
          [0, 1e-8],
          [1, 1e-2],
        ],
      },
    ],
    { title: 'e', logY: true },
  );
  t.ok(tiny.includes('>1e-8<') && tiny.includes('>1e-2<') && !tiny.includes('e-2.5'), 'small decades stay in 1eN form');
});
