import t from 'tap';
import { inflateSync } from 'node:zlib';
import { encodePng, crc32, Canvas, PNG_SIGNATURE } from '../src/report/png.js';
import { caseFigure, overlayTile, TP, FP, FN } from '../src/report/figures.js';
import { lineChartSvg } from '../src/report/curves.js';

/** A tiny independent PNG reader: chunks, CRCs, IHDR, inflated IDAT, filter-0 rows → RGB. */
function decode(png: Uint8Array): { width: number; height: number; rgb: Uint8Array; chunks: string[] } {
  for (let i = 0; i < 8; i++) if (png[i] !== PNG_SIGNATURE[i]) throw new Error('bad signature');
  const dv = new DataView(png.buffer, png.byteOffset, png.byteLength);
  let off = 8,
    width = 0,
    height = 0;
  const idat: Uint8Array[] = [];
  const chunks: string[] = [];
  while (off < png.length) {
    const len = dv.getUint32(off);
    const type = String.fromCharCode(...png.subarray(off + 4, off + 8));
    const data = png.subarray(off + 8, off + 8 + len);
    const crc = dv.getUint32(off + 8 + len);
    if (crc !== crc32(png.subarray(off + 4, off + 8 + len))) throw new Error(`bad CRC in ${type}`);
    chunks.push(type);
    if (type === 'IHDR') {
      const h = new DataView(data.buffer, data.byteOffset, data.byteLength);
      width = h.getUint32(0);
      height = h.getUint32(4);
      if (data[8] !== 8 || data[9] !== 2 || data[12] !== 0) throw new Error('not RGB8 non-interlaced');
    }
    if (type === 'IDAT') idat.push(data);
    off += 12 + len;
  }
  const raw = inflateSync(Buffer.concat(idat));
  const rgb = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    if (raw[y * (width * 3 + 1)] !== 0) throw new Error('unexpected filter');
    rgb.set(raw.subarray(y * (width * 3 + 1) + 1, (y + 1) * (width * 3 + 1)), y * width * 3);
  }
  return { width, height, rgb, chunks };
}

t.test('CRC-32 check value', async (t) => {
  t.equal(crc32(new TextEncoder().encode('123456789')), 0xcbf43926);
  t.equal(crc32(new Uint8Array(0)), 0);
});

t.test('PNG round trip: header, IDAT through zlib, pixels', async (t) => {
  const w = 5,
    h = 3;
  const rgb = new Uint8Array(w * h * 3);
  for (let i = 0; i < rgb.length; i++) rgb[i] = (i * 37) & 255;
  const png = encodePng(w, h, rgb);
  const d = decode(png);
  t.same(d.chunks, ['IHDR', 'IDAT', 'IEND']);
  t.equal(d.width, 5);
  t.equal(d.height, 3);
  t.same([...d.rgb], [...rgb]);
  t.throws(() => encodePng(2, 2, new Uint8Array(5)), /5 bytes for 2×2/);
});

t.test('canvas drawing and the TP/FP/FN overlay colours', async (t) => {
  const c = new Canvas(4, 2, [0, 0, 0]);
  c.set(1, 1, [10, 20, 30]);
  c.rect(3, 0, 1, 1, [255, 0, 0]);
  const d = decode(c.png());
  t.same([...d.rgb.subarray(3 * (1 * 4 + 1), 3 * (1 * 4 + 1) + 3)], [10, 20, 30]);
  t.same([...d.rgb.subarray(9, 12)], [255, 0, 0]);
  // overlay on a black 1×2×2 slice: pred [1,1,0,0], gt [1,0,1,0] → TP, FP, FN, none
  const grey = new Uint8Array(12);
  const tile = overlayTile(grey, [1, 1, 0, 0], [1, 0, 1, 0], [1, 2, 2], 0, 1);
  // rows are flipped (anterior up): voxel (h=0,w) is drawn on the bottom row
  t.same([...tile.subarray(6, 9)], [...TP]);
  t.same([...tile.subarray(9, 12)], [...FP]);
  t.same([...tile.subarray(0, 3)], [...FN]);
  t.same([...tile.subarray(3, 6)], [0, 0, 0]);
});

t.test('case figure: tiles per modality, GT and methods; decodes', async (t) => {
  const D = 4,
    H = 6,
    W = 6,
    n = D * H * W;
  const image = new Float32Array(2 * n).map((_, i) => (i % 7) + 1);
  const gt = new Uint8Array(n);
  gt[2 * H * W + 2 * W + 2] = 1;
  const cv = caseFigure({
    caseId: 'x',
    modalities: ['a', 'b'],
    image,
    shape: [D, H, W],
    gt,
    rows: [{ label: 'a', available: [true, false], predictions: [{ method: 'm', mask: gt }] }],
    scale: 4,
  });
  const d = decode(cv.png());
  t.equal(d.width, cv.width);
  t.ok(
    d.rgb.some((v, i) => i % 3 === 1 && v === 200),
    'green TP pixel somewhere',
  );
});

t.test('SVG line chart', async (t) => {
  const svg = lineChartSvg(
    [
      {
        name: 'largo',
        points: [
          [0, 1],
          [10, 0.5],
        ],
      },
      {
        name: 'dropout<x>',
        points: [
          [0, 1.2],
          [10, 0.7],
        ],
      },
    ],
    { title: 'loss', logY: true },
  );
  t.match(svg, /^<svg/);
  t.match(svg, /dropout&lt;x&gt;/);
  t.match(svg, /<path d="M/);
});
