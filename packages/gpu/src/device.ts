/// <reference types="@webgpu/types" />
/**
 * WebGPU device acquisition.
 *
 * Browsers: `navigator.gpu`. Node: the `webgpu` package (Dawn), first with
 * Dawn's default backend (Vulkan / Metal / D3D12), then with
 * `backend=opengles` and `featureLevel: 'compatibility'`, which on a machine
 * without a GPU runs on Mesa's llvmpipe (needs `libegl1 libegl-mesa0 libgles2
 * libgl1-mesa-dri`) — that is how CI executes every WGSL kernel.
 *
 * The GPU object is kept in this module, never on `globalThis.navigator`.
 */
import { prepareNodeEnv } from './device-node.js';

export interface GpuDeviceInfo {
  /** Which path gave the adapter: 'browser', 'dawn-default' or 'dawn-opengles'. */
  path: 'browser' | 'dawn-default' | 'dawn-opengles';
  featureLevel: 'core' | 'compatibility';
  vendor: string;
  architecture: string;
  device: string;
  description: string;
}

export interface AcquiredDevice {
  device: GPUDevice;
  adapter: GPUAdapter;
  info: GpuDeviceInfo;
}

/** Limits requested at their adapter maximum (compatibility mode would otherwise default to small values). */
export const REQUESTED_LIMITS = [
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY',
  'maxComputeWorkgroupSizeZ',
  'maxComputeWorkgroupStorageSize',
  'maxComputeWorkgroupsPerDimension',
  'maxStorageBuffersPerShaderStage',
  'maxStorageBufferBindingSize',
  'maxUniformBufferBindingSize',
  'maxBufferSize',
] as const;

const isNode = typeof process !== 'undefined' && !!process.versions?.node;

type CreateFn = (options: string[]) => GPU;
let dawnCreate: CreateFn | null = null;
/** Dawn GPU instances must outlive their adapters and devices: keep them referenced here. */
const instances: GPU[] = [];

async function loadDawn(): Promise<CreateFn> {
  if (dawnCreate) return dawnCreate;
  // A variable specifier keeps browser bundlers from resolving the Node-only package.
  const spec = 'webgpu';
  const mod = (await import(/* @vite-ignore */ spec)) as { create: CreateFn };
  dawnCreate = mod.create;
  return dawnCreate;
}

function describe(
  adapter: GPUAdapter,
  path: GpuDeviceInfo['path'],
  featureLevel: GpuDeviceInfo['featureLevel'],
): GpuDeviceInfo {
  const i = adapter.info;
  return {
    path,
    featureLevel,
    vendor: i?.vendor ?? '',
    architecture: i?.architecture ?? '',
    device: i?.device ?? '',
    description: i?.description ?? '',
  };
}

async function requestDevice(adapter: GPUAdapter): Promise<GPUDevice> {
  const requiredLimits: Record<string, number> = {};
  for (const k of REQUESTED_LIMITS) {
    const v = (adapter.limits as unknown as Record<string, number | undefined>)[k];
    if (typeof v === 'number') requiredLimits[k] = v;
  }
  return adapter.requestDevice({ requiredLimits, label: 'largo' });
}

/**
 * Finds an adapter and creates a device with the adapter's real limits.
 * Returns the reason as a string when no adapter can be found.
 */
export async function acquireDevice(): Promise<AcquiredDevice | string> {
  const reasons: string[] = [];
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  if (!isNode) {
    if (!nav?.gpu) return 'navigator.gpu is not available in this browser';
    const adapter = await nav.gpu.requestAdapter({ powerPreference: 'high-performance' });
    if (!adapter) return 'navigator.gpu.requestAdapter() returned null';
    return { adapter, device: await requestDevice(adapter), info: describe(adapter, 'browser', 'core') };
  }
  if (process.env.LARGO_WEBGPU === 'off') return 'disabled by LARGO_WEBGPU=off';
  await prepareNodeEnv(onProcessExit);
  let create: CreateFn;
  try {
    create = await loadDawn();
  } catch (e) {
    // `webgpu` is an optional dependency (npm may skip it, or a user may omit optional ones)
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'ERR_MODULE_NOT_FOUND' && err.message.includes("'webgpu'"))
      return `the 'webgpu' package (Dawn for Node) is not installed: npm install webgpu`;
    return `the 'webgpu' package (Dawn for Node) could not be loaded: ${err.message}`;
  }
  const attempts: {
    path: GpuDeviceInfo['path'];
    options: string[];
    request: GPURequestAdapterOptions;
    level: GpuDeviceInfo['featureLevel'];
  }[] = [
    { path: 'dawn-default', options: [], request: { powerPreference: 'high-performance' }, level: 'core' },
    {
      path: 'dawn-opengles',
      options: ['backend=opengles'],
      request: { featureLevel: 'compatibility' } as GPURequestAdapterOptions,
      level: 'compatibility',
    },
  ];
  for (const a of attempts) {
    try {
      const gpu = create(a.options);
      const adapter = await gpu.requestAdapter(a.request);
      if (!adapter) {
        reasons.push(`${a.path}: no adapter`);
        continue;
      }
      instances.push(gpu);
      const device = await requestDevice(adapter);
      return { adapter, device, info: describe(adapter, a.path, a.level) };
    } catch (e) {
      reasons.push(`${a.path}: ${(e as Error).message}`);
    }
  }
  return `no WebGPU adapter found (${reasons.join('; ')}); without a GPU, Mesa's llvmpipe needs the Debian packages libegl1 libegl-mesa0 libgles2 libgl1-mesa-dri`;
}

const exitHooks = new Set<() => void>();
const lastHooks = new Set<() => void>();
let exitHookInstalled = false;

/** Runs `fn` when the process exits (Node) — used to destroy the device. */
export function onProcessExit(fn: () => void, last = false): () => void {
  if (last) lastHooks.add(fn);
  else exitHooks.add(fn);
  if (isNode && !exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', () => {
      for (const h of [...exitHooks, ...lastHooks]) {
        try {
          h();
        } catch {
          /* exiting anyway */
        }
      }
      exitHooks.clear();
      lastHooks.clear();
    });
  }
  return () => {
    exitHooks.delete(fn);
    lastHooks.delete(fn);
  };
}
