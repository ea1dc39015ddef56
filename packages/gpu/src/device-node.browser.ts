/** Browser stand-in for `device-node.ts`: browsers need no EGL or runtime-dir setup. */
export async function prepareNodeEnv(_onProcessExit: (fn: () => void, last?: boolean) => void): Promise<void> {}
