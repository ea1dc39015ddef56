// The demo page end to end in headless Chromium: the built-in phantom on
// webgpu, gpujs and cpu (the three label maps agree), the BraTS sample with
// modality subsets against `largo predict` on Node, the NIfTI download, bad
// input shown as a message in the page, and a screenshot. Skips, saying
// why, when Chromium is not installed.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Page } from 'playwright-core';
import { decodeSafetensors, encodeSafetensors } from '@largo/core';
import { readNifti, niftiAffine, createNifti, encodeNifti } from '@largo/datasets';
import { REPO, browserSkip, buildPage, launch, startPage } from './helpers.js';

const skip = browserSkip();
// software WebGPU compiles every pipeline on first use: longer than the suite's 600 s per file on a busy machine
t.setTimeout(1_800_000);
const BRATS = process.env.LARGO_SHARED_DATASETS
  ? join(process.env.LARGO_SHARED_DATASETS, 'brats-sample')
  : join(REPO, '..', 'shared', 'datasets', 'brats-sample');
const CASE = 'BraTS19_2013_10_1';
const CHECKPOINT = join(REPO, 'packages/web/public/phantom-largo.safetensors');
/** Voxels whose logits lie this close to the decision boundary may differ between backends (float32 sums in another order). */
const TIE = 1e-3;
const SCREENSHOT = process.env.LARGO_SCREENSHOT ?? join(REPO, 'runs', 'browser', 'web-demo.png');

interface Api {
  ready: boolean;
  runs: number;
  messages: string[];
  backendDetail: string;
  results: Record<string, { labels: Uint8Array; margin: Float32Array; subsetName: string }>;
}
const api = (): Api => (window as unknown as { __largo: Api }).__largo;

async function message(page: Page): Promise<{ kind: string; text: string }> {
  return page.evaluate(() => {
    const m = document.getElementById('message')!;
    return { kind: m.className, text: m.textContent ?? '' };
  });
}

/** Does `act` (an input change the page handles asynchronously) and waits for the page's next message. */
async function after(page: Page, act: () => Promise<unknown>): Promise<{ kind: string; text: string }> {
  const n = await page.evaluate(() => (window as unknown as { __largo: Api }).__largo.messages.length);
  await act();
  await page.waitForFunction((k) => (window as unknown as { __largo: Api }).__largo.messages.length > k, n, {
    timeout: 60_000,
  });
  return message(page);
}

/** Selects `backend`, clicks "segment" and waits for the run (or an error message). */
async function segmentOn(page: Page, backend: string): Promise<{ kind: string; text: string }> {
  await page.selectOption('#backend', backend);
  const runs = await page.evaluate(() => (window as unknown as { __largo: Api }).__largo.runs);
  // clicked from a timer: the handler computes for a while, and a direct click would wait on it
  await page.evaluate(() => {
    setTimeout(() => (document.getElementById('run') as HTMLButtonElement).click(), 0);
  });
  await page.waitForFunction(
    (r) => {
      const a = (window as unknown as { __largo: Api }).__largo;
      return a.runs > r || document.getElementById('message')!.className === 'error';
    },
    runs,
    { timeout: 600_000, polling: 250 },
  );
  return message(page);
}

/** Voxels where `backend`'s labels differ from `want` although its logits are clear of the boundary. */
async function realMismatches(
  page: Page,
  backend: string,
  want: number[],
): Promise<{ differ: number; beyondTies: number; n: number }> {
  return page.evaluate(
    ([b, w, tie]) => {
      const r = (window as unknown as { __largo: Api }).__largo.results[b as string]!;
      let differ = 0,
        beyond = 0;
      for (let i = 0; i < r.labels.length; i++) {
        if (r.labels[i] !== (w as number[])[i]) {
          differ++;
          if (r.margin[i]! >= (tie as number)) beyond++;
        }
      }
      return { differ, beyondTies: beyond, n: r.labels.length };
    },
    [backend, want, TIE] as const,
  );
}

async function setTicks(page: Page, on: string[]): Promise<void> {
  for (const m of ['flair', 't1', 't1ce', 't2']) await page.setChecked(`#use-${m}`, on.includes(m));
}

t.test('the LARGO page in headless Chromium', { skip, timeout: 1_800_000 }, async (t) => {
  t.comment(buildPage().trim());
  const srv = await startPage();
  const browser = await launch();
  const tmp = mkdtempSync(join(tmpdir(), 'largo-web-'));
  t.teardown(async () => {
    await browser.close();
    await srv.close();
    rmSync(tmp, { recursive: true, force: true });
  });
  const page = await browser.newPage({ acceptDownloads: true, viewport: { width: 1280, height: 1000 } });
  const pageErrors: string[] = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  await page.goto(srv.url);
  await page.waitForFunction(() => (window as unknown as { __largo?: Api }).__largo?.ready === true, null, {
    timeout: 300_000,
  });
  t.ok(await page.evaluate(() => crossOriginIsolated), 'served cross-origin isolated (COOP/COEP)');
  t.equal(await page.textContent('#backend-in-use'), 'webgpu', 'auto picks WebGPU where Chromium has it');

  await t.test('the built-in phantom case: webgpu, gpujs and cpu agree', async (t) => {
    await page.click('#phantom');
    const shown: Record<string, string> = {};
    for (const b of ['webgpu', 'gpujs', 'cpu']) {
      const m = await segmentOn(page, b);
      t.equal(m.kind, 'info', `${b}: ${m.text}`);
      shown[b] = await page.evaluate(() => (window as unknown as { __largo: Api }).__largo.backendDetail);
    }
    t.match(shown.webgpu, /^webgpu \(/, `webgpu shown in the page: ${shown.webgpu}`);
    t.equal(shown.gpujs, 'gpujs (webgl2)', 'gpujs runs on WebGL2');
    t.equal(shown.cpu, 'cpu (JavaScript)');
    const cpu = await page.evaluate(() =>
      Array.from((window as unknown as { __largo: Api }).__largo.results.cpu!.labels),
    );
    t.ok(cpu.filter((v) => v !== 0).length > 100, 'the phantom tumour is found');
    for (const b of ['webgpu', 'gpujs']) {
      const mm = await realMismatches(page, b, cpu);
      t.equal(
        mm.beyondTies,
        0,
        `${b} labels equal cpu's up to ties (${mm.differ} of ${mm.n} voxels differ, all within ${TIE} of the boundary)`,
      );
    }
  });

  await t.test('BraTS sample: any subset equals largo predict on Node, on every backend', async (t) => {
    const files = ['flair', 't1', 't1post', 't2'].map((m) => join(BRATS, `${CASE}_${m}.nii.gz`));
    const loaded = await after(page, () => page.setInputFiles('#scan-files', files));
    t.equal(loaded.kind, 'info', `dropped the four BraTS files: ${loaded.text}`);
    for (const subset of [
      ['flair', 't1ce'],
      ['t1', 't2'],
    ]) {
      const out = join(tmp, `node-${subset.join('-')}.nii.gz`);
      const args = [join(REPO, 'packages/largo/dist/cli.js'), 'predict', '--checkpoint', CHECKPOINT, '--out', out];
      for (const m of subset) args.push(`--${m}`, join(BRATS, `${CASE}_${m === 't1ce' ? 't1post' : m}.nii.gz`));
      execFileSync(process.execPath, args, { stdio: 'pipe' });
      const want = Array.from((await readNifti(out)).data as Uint8Array);
      await setTicks(page, subset);
      for (const b of ['cpu', 'webgpu', 'gpujs']) {
        const m = await segmentOn(page, b);
        t.equal(m.kind, 'info', `${subset.join('+')} on ${b}: ${m.text}`);
        const mm = await realMismatches(page, b, want);
        if (b === 'cpu')
          t.equal(mm.differ, 0, `${subset.join('+')} on cpu: identical to largo predict (${mm.n} voxels)`);
        else
          t.equal(
            mm.beyondTies,
            0,
            `${subset.join('+')} on ${b}: equals largo predict up to ties (${mm.differ} of ${mm.n} voxels differ, all within ${TIE} of the boundary)`,
          );
      }
    }
  });

  await t.test('download: the segmentation as NIfTI with the input geometry', async (t) => {
    const [dl] = await Promise.all([page.waitForEvent('download'), page.click('#download')]);
    const file = join(tmp, dl.suggestedFilename());
    await dl.saveAs(file);
    t.match(dl.suggestedFilename(), /^segmentation-.*\.nii\.gz$/);
    const seg = await readNifti(file);
    const input = await readNifti(join(BRATS, `${CASE}_t2.nii.gz`));
    t.same(seg.header.dims, input.header.dims, 'same dims as the input');
    t.same(niftiAffine(seg.header), niftiAffine(input.header), 'same affine as the input');
    const shownLabels = await page.evaluate(() =>
      Array.from((window as unknown as { __largo: Api }).__largo.results.gpujs!.labels),
    );
    t.same(Array.from(seg.data as Uint8Array), shownLabels, 'the file holds the labels shown');
    mkdirSync(dirname(SCREENSHOT), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    t.comment(`screenshot: ${SCREENSHOT}`);
  });

  await t.test('bad input is a message in the page, and nothing loaded is lost', async (t) => {
    const before = await page.textContent('#checkpoint-info');
    let m = await after(page, () =>
      page.setInputFiles('#file-flair', {
        name: 'notes.nii.gz',
        mimeType: 'application/gzip',
        buffer: Buffer.from('these are not scans'),
      }),
    );
    t.equal(m.kind, 'error', 'a non-NIfTI file is refused');
    t.match(m.text, /notes\.nii\.gz/, `the message names the file: ${m.text}`);
    t.match(
      await page.textContent('.modality:first-child .scan-info'),
      /_flair\.nii\.gz/,
      'the flair scan loaded before is kept',
    );

    const small = join(tmp, 'other_t2.nii.gz');
    writeFileSync(small, encodeNifti(createNifti(new Float32Array(8 * 8 * 8).fill(1), [8, 8, 8]), { gzip: true }));
    m = await after(page, () => page.setInputFiles('#file-t2', small));
    t.equal(m.kind, 'error', 'a modality of another shape is refused');
    t.match(
      m.text,
      /other_t2\.nii\.gz.*\[8, 8, 8\].*_flair\.nii\.gz.*\[30, 30, 30\].*all modalities must share one voxel grid/,
      `the message names both files and shapes: ${m.text}`,
    );

    const ck = decodeSafetensors(new Uint8Array(readFileSync(CHECKPOINT)), 'ck');
    const cfg = JSON.parse(ck.metadata['largo.config']!);
    cfg.model.baseFeatures = 8;
    const other = encodeSafetensors(ck.tensors, { ...ck.metadata, 'largo.config': JSON.stringify(cfg) });
    m = await after(page, () =>
      page.setInputFiles('#checkpoint-file', {
        name: 'other-config.safetensors',
        mimeType: 'application/octet-stream',
        buffer: Buffer.from(other),
      }),
    );
    t.equal(m.kind, 'error', 'a checkpoint of another configuration is refused');
    t.match(
      m.text,
      /other-config\.safetensors: does not match/,
      `the message names the file and says why: ${m.text.slice(0, 200)}`,
    );
    t.equal(await page.textContent('#checkpoint-info'), before, 'the loaded checkpoint stays');

    m = await after(page, () =>
      page.setInputFiles('#checkpoint-file', {
        name: 'junk.safetensors',
        mimeType: 'application/octet-stream',
        buffer: Buffer.from('junk'),
      }),
    );
    t.equal(m.kind, 'error', 'a file that is no checkpoint is refused');
    t.match(m.text, /junk\.safetensors/, `named: ${m.text.slice(0, 200)}`);
    t.same(pageErrors, [], 'no uncaught errors (no stack trace in the console)');
  });
});
