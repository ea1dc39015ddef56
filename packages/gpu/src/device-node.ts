/**
 * Node-only environment for Dawn (imports node:fs/os/path). Browser bundles
 * get `device-node.browser.ts` instead, through the package.json "browser" field.
 */
/** Dawn's EGL needs a surfaceless platform and a runtime dir when there is no display. */
export async function prepareNodeEnv(onProcessExit: (fn: () => void, last?: boolean) => void): Promise<void> {
  if (!process.env.EGL_PLATFORM) process.env.EGL_PLATFORM = 'surfaceless';
  if (!process.env.XDG_RUNTIME_DIR) {
    const fs = await import('node:fs');
    const os = await import('node:os');
    const path = await import('node:path');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'largo-xdg-'));
    fs.chmodSync(dir, 0o700);
    process.env.XDG_RUNTIME_DIR = dir;
    // Registered first, so it runs after the device is destroyed.
    onProcessExit(() => {
      try {
        fs.rmSync(dir, { recursive: true, force: true });
      } catch {
        /* best effort */
      }
    }, true);
  }
}
