import { chromium } from 'playwright-core';
import { startServer } from './serve.mjs';
const { server, url } = await startServer(0);
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--headless','--no-sandbox','--enable-unsafe-webgpu','--enable-unsafe-swiftshader','--disable-gpu-sandbox','--no-first-run','--disable-background-networking','--disable-component-update','--disable-sync'] });
const page = await browser.newPage();
page.on('console', (m) => console.log('console:', m.type(), m.text()));
page.on('pageerror', (e) => console.log('pageerror:', e.message));
await page.goto(url);
await page.waitForFunction(() => window.__largo?.ready || window.__largo?.messages.length > 0, null, { timeout: 120000 });
console.log(await page.evaluate(() => window.__largo.messages));
console.log('isolated', await page.evaluate(() => crossOriginIsolated));
await page.click('#phantom');
for (const b of ['webgpu', 'gpujs', 'cpu']) {
  await page.selectOption('#backend', b);
  const runs = await page.evaluate(() => window.__largo.runs);
  await page.evaluate(() => { setTimeout(() => document.querySelector('#run').click(), 0); });
  await page.waitForFunction((r) => window.__largo.runs > r || document.querySelector('#message').className === 'error', runs, { timeout: 300000 });
  console.log(b, await page.evaluate(() => document.querySelector('#message').textContent));
}
await page.screenshot({ path: '/tmp/i10-shot.png', fullPage: true });
await browser.close(); server.close();
