/**
 * Shared setup of the browser tests: the built page served on 127.0.0.1
 * with the isolation headers, and Debian's Chromium driven by playwright-core
 * (never a downloaded browser). `chromiumPath()` is null when no Chromium is
 * installed; the tests then skip and say why.
 */
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser } from 'playwright-core';
import { requirement } from '@largo/test-support';

export const WEB_DIR = join(dirname(fileURLToPath(import.meta.url)), '..');
export const REPO = join(WEB_DIR, '..', '..');

export function chromiumPath(): string | null {
  const forced = process.env.LARGO_CHROMIUM;
  if (forced) return existsSync(forced) ? forced : null;
  for (const p of ['/usr/bin/chromium', '/usr/bin/chromium-browser']) if (existsSync(p)) return p;
  return null;
}

export const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--enable-unsafe-webgpu',
  '--enable-unsafe-swiftshader',
  '--disable-gpu-sandbox',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Builds the page bundle (esbuild, about a second). */
export function buildPage(): string {
  return execFileSync(process.execPath, [join(WEB_DIR, 'build.mjs')], { encoding: 'utf8' });
}

/** Builds the op test page into dist/test/ (served beside the demo). */
export async function buildOpsPage(): Promise<void> {
  const { build } = await import('esbuild');
  const out = join(WEB_DIR, 'dist', 'test');
  mkdirSync(out, { recursive: true });
  await build({
    entryPoints: [join(WEB_DIR, 'test/browser/ops-page.ts')],
    outfile: join(out, 'ops.js'),
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'chrome113',
    logLevel: 'warning',
  });
  copyFileSync(join(WEB_DIR, 'test/browser/ops.html'), join(out, 'ops.html'));
}

/** Skip reason when there is no Chromium; with LARGO_REQUIRE_BROWSER=1 (as .ci/run sets it) that is a failure instead. */
export function browserSkip(): string | false {
  const where = process.env.LARGO_CHROMIUM || '/usr/bin/chromium';
  return requirement(
    'BROWSER',
    chromiumPath() ? false : `no Chromium at ${where} (LARGO_CHROMIUM names another): browser tests skipped`,
  );
}

export async function startPage(): Promise<{ url: string; close: () => Promise<void> }> {
  const { startServer } = (await import(join(WEB_DIR, 'serve.mjs'))) as {
    startServer: (p: number) => Promise<{ server: import('node:http').Server; url: string }>;
  };
  const { server, url } = await startServer(0);
  return { url, close: () => new Promise((r) => server.close(() => r())) };
}

export async function launch(): Promise<Browser> {
  const { chromium } = await import('playwright-core');
  return chromium.launch({
    executablePath: chromiumPath()!,
    args: CHROMIUM_FLAGS,
    ignoreDefaultArgs: ['--headless=old'],
  });
}
