// The inference-op property suite (@largo/test-support/op-suite) inside
// headless Chromium: gpujs on WebGL2 and webgpu on SwiftShader, each op
// reported to tap. Skips, saying why, when Chromium is not installed.
import t from 'tap';
import { browserSkip, buildOpsPage, launch, startPage } from './helpers.js';

const skip = browserSkip();
// software WebGPU compiles every pipeline on first use: longer than the suite's 600 s per file on a busy machine
t.setTimeout(1_800_000);
const RUNS = Number(process.env.LARGO_BROWSER_FC_RUNS ?? 4);

t.test('inference ops in the browser against the float64 oracle', { skip, timeout: 900_000 }, async (t) => {
  await buildOpsPage();
  const srv = await startPage();
  const browser = await launch();
  t.teardown(async () => {
    await browser.close();
    await srv.close();
  });
  const page = await browser.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`${srv.url}test/ops.html`);
  await page.waitForFunction(() => document.title === 'ops ready', null, { timeout: 60_000 });
  const ops = await page.evaluate(() => (window as unknown as { __ops: { ops: string[] } }).__ops.ops);
  for (const backend of ['gpujs', 'webgpu'] as const) {
    const r = await page.evaluate(
      ([b, n]) =>
        (
          window as unknown as {
            __ops: {
              run: (
                b: string,
                n: number,
              ) => Promise<{
                available: string | null;
                mode: string;
                results: { op: string; error: string | null; runs: number; ms: number }[];
              }>;
            };
          }
        ).__ops.run(b, n),
      [backend, RUNS] as const,
    );
    t.equal(r.available, null, `${backend} is available in headless Chromium${r.available ? `: ${r.available}` : ''}`);
    if (backend === 'gpujs') t.equal(r.mode, 'webgl2', `gpu.js runs on WebGL2 in the browser (mode ${r.mode})`);
    else t.comment(`webgpu adapter: ${r.mode}`);
    t.same(
      r.results.map((x) => x.op),
      ops,
      `${backend}: every op of the suite ran`,
    );
    for (const x of r.results) if (x.error) t.comment(`${x.op} [${backend}]: ${x.error.replace(/\s*\n\s*/g, ' | ')}`);
    for (const x of r.results)
      t.equal(
        x.error,
        null,
        `${x.op} [${backend}, browser] matches the float64 oracle (${x.runs} runs, ${x.ms.toFixed(0)} ms)`,
      );
  }
  t.same(errors, [], 'no uncaught page errors');
});
