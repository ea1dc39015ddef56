/**
 * The LARGO segmentation page. Everything runs here, in the browser: the
 * checkpoint and the scans are read from files the user picks (or the
 * bundled phantom), nothing is uploaded.
 */
import {
  parseNiftiBytes,
  niftiToVolume,
  niftiAffine,
  createNifti,
  encodeNiftiBytes,
  generatePhantomCase,
  LAYOUTS,
  type NiftiHeader,
} from '@largo/datasets/browser';
import { engine } from '@largo/core';
import { readCheckpoint, segment, type ModelInfo, type SegmentResult } from './segment.js';
import { BACKENDS, bestBackend, useBackend, type BackendName } from './backends.js';
import { displayWindow, drawPlane, type Plane, type ViewState } from './viewer.js';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

interface Scan {
  file: string;
  data: Float32Array;
  spatial: number[];
  header: NiftiHeader | null;
  affine: number[][];
}

const state = {
  model: null as ModelInfo | null,
  scans: new Map<string, Scan>(),
  /** modality → ticked for the next run (kept across re-renders) */
  ticked: new Map<string, boolean>(),
  backend: 'cpu' as BackendName,
  result: null as SegmentResult | null,
  busy: false,
};
const view: ViewState = {
  volume: null,
  labels: null,
  spatial: [1, 1, 1],
  index: { axial: 0, coronal: 0, sagittal: 0 },
  opacity: 0.5,
  window: [0, 1],
};

/** What the browser tests read (window.__largo). */
const api = {
  state,
  view,
  ready: false,
  runs: 0,
  messages: [] as string[],
  results: {} as Record<string, SegmentResult>,
  backendDetail: '',
};
(window as unknown as { __largo: typeof api }).__largo = api;

function message(text: string, kind: 'info' | 'error' = 'info'): void {
  const el = $('message');
  el.textContent = text;
  el.className = kind;
  api.messages.push(`${kind}: ${text}`);
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Runs a UI action; any failure becomes a message in the page, not a console stack trace. */
function guarded<A extends unknown[]>(fn: (...a: A) => Promise<void> | void): (...a: A) => Promise<void> {
  return async (...a: A) => {
    try {
      await fn(...a);
    } catch (e) {
      message(errorText(e), 'error');
    }
  };
}

// ------------------------------------------------------------------ checkpoint

async function setCheckpoint(bytes: Uint8Array, name: string): Promise<void> {
  const model = readCheckpoint(bytes, name);
  state.model = model;
  state.result = null;
  // scans of modalities this checkpoint does not know are dropped from the inputs
  for (const m of [...state.scans.keys()]) if (!model.modalities.includes(m)) state.scans.delete(m);
  $('checkpoint-info').textContent =
    `${name}: ${model.method}, modalities ${model.modalities.join(', ')}, ${model.classes} ${model.labelMode === 'regions' ? 'regions' : 'classes'}, patch ${model.patchSize.join('×')}, step ${model.step}`;
  renderInputs();
}

// ------------------------------------------------------------------ scans

/** Canonical modality of a file name (`..._t1post.nii.gz` → t1ce), from the checkpoint's names and the layouts' aliases. */
function modalityOfFile(file: string): string | null {
  const base = file.toLowerCase().replace(/\.nii(\.gz)?$/, '');
  const suffix = base.slice(base.lastIndexOf('_') + 1);
  const mods = state.model?.modalities ?? [];
  if (mods.includes(suffix)) return suffix;
  for (const spec of Object.values(LAYOUTS))
    for (const [m, al] of Object.entries(spec.aliases)) if (mods.includes(m) && al.includes(suffix)) return m;
  return null;
}

async function addScan(modality: string, file: File): Promise<void> {
  const img = await parseNiftiBytes(await file.arrayBuffer(), file.name);
  const vol = niftiToVolume(img, file.name);
  if (vol.shape.length !== 3)
    throw new Error(`${file.name}: expected a 3-D volume, got shape [${vol.shape.join(', ')}]`);
  for (const [m, s] of state.scans) {
    if (m !== modality && s.spatial.join(',') !== vol.shape.join(',')) {
      throw new Error(
        `${file.name} (${modality}) has shape [${vol.shape.join(', ')}] but ${s.file} (${m}) has [${s.spatial.join(', ')}]; all modalities must share one voxel grid`,
      );
    }
  }
  state.scans.set(modality, {
    file: file.name,
    data: vol.data,
    spatial: vol.shape,
    header: img.header,
    affine: niftiAffine(img.header),
  });
  state.ticked.set(modality, true);
  state.result = null;
  renderInputs();
  showScan(modality);
}

/** Files dropped together are one case: they replace the scans loaded before (only once at least one of them reads). */
async function addDroppedFiles(files: FileList | File[]): Promise<void> {
  const problems: string[] = [];
  const previous = new Map(state.scans);
  state.scans.clear();
  for (const f of Array.from(files)) {
    const m = modalityOfFile(f.name);
    if (!m) {
      problems.push(
        `${f.name}: no modality suffix this checkpoint knows (${state.model?.modalities.map((x) => `_${x}`).join(', ')})`,
      );
      continue;
    }
    try {
      await addScan(m, f);
    } catch (e) {
      problems.push(errorText(e));
    }
  }
  if (state.scans.size === 0) for (const [m, s] of previous) state.scans.set(m, s);
  renderInputs();
  if (problems.length) message(problems.join('\n'), 'error');
  else message(`loaded ${files.length} file(s)`);
}

function loadPhantom(): void {
  const model = state.model;
  if (!model) throw new Error('load a checkpoint first');
  const mods = ['flair', 't1', 't1ce', 't2'];
  if (!mods.every((m) => model.modalities.includes(m)))
    throw new Error(
      `the built-in phantom has modalities ${mods.join(', ')}; this checkpoint expects ${model.modalities.join(', ')}`,
    );
  const c = generatePhantomCase(7, { size: 32, modalities: 4, seed: 0 });
  const [D, H, W] = c.spatialShape as [number, number, number];
  const n = D * H * W;
  state.scans.clear();
  c.modalities.forEach((m, i) => {
    state.ticked.set(m, true);
    state.scans.set(m, {
      file: `phantom-case7_${m}`,
      data: c.image.slice(i * n, (i + 1) * n),
      spatial: [D, H, W],
      header: null,
      affine: [
        [1, 0, 0, 0],
        [0, 1, 0, 0],
        [0, 0, 1, 0],
        [0, 0, 0, 1],
      ],
    });
  });
  state.result = null;
  renderInputs();
  showScan(c.modalities[0]!);
  message('loaded the built-in phantom case (4 modalities, 32³ voxels)');
}

// ------------------------------------------------------------------ UI state

function renderInputs(): void {
  const box = $('modalities');
  box.replaceChildren();
  for (const m of state.model?.modalities ?? []) {
    const row = document.createElement('div');
    row.className = 'modality';
    const scan = state.scans.get(m);
    const tick = document.createElement('input');
    tick.type = 'checkbox';
    tick.id = `use-${m}`;
    tick.checked = !!scan && state.ticked.get(m) !== false;
    tick.disabled = !scan;
    tick.addEventListener('change', () => state.ticked.set(m, tick.checked));
    const label = document.createElement('label');
    label.htmlFor = tick.id;
    label.textContent = m;
    const file = document.createElement('input');
    file.type = 'file';
    file.id = `file-${m}`;
    file.accept = '.nii,.gz';
    file.addEventListener(
      'change',
      guarded(async () => {
        if (file.files?.[0]) {
          await addScan(m, file.files[0]);
          message(`${m}: ${file.files[0].name}`);
        }
      }),
    );
    const info = document.createElement('span');
    info.className = 'scan-info';
    info.textContent = scan ? `${scan.file} [${scan.spatial.join('×')}]` : 'missing';
    const show = document.createElement('button');
    show.textContent = 'view';
    show.disabled = !scan;
    show.addEventListener('click', () => showScan(m));
    row.append(tick, label, file, info, show);
    box.append(row);
  }
  ($('run') as HTMLButtonElement).disabled = state.busy || !state.model || state.scans.size === 0;
  ($('download') as HTMLButtonElement).disabled = !state.result;
}

function selectedVolumes(): { data: Map<string, Float32Array>; spatial: number[] } {
  const data = new Map<string, Float32Array>();
  let spatial: number[] = [];
  for (const [m, s] of state.scans) {
    if (state.ticked.get(m) !== false) {
      data.set(m, s.data);
      spatial = s.spatial;
    }
  }
  if (data.size === 0) throw new Error('tick at least one available modality');
  return { data, spatial };
}

function showScan(m: string): void {
  const s = state.scans.get(m);
  if (!s) return;
  const newShape = view.spatial.join(',') !== s.spatial.join(',');
  view.volume = s.data;
  view.spatial = s.spatial;
  view.window = displayWindow(s.data);
  if (newShape) {
    view.index = { axial: s.spatial[0]! >> 1, coronal: s.spatial[1]! >> 1, sagittal: s.spatial[2]! >> 1 };
    view.labels = null;
  }
  view.labels = state.result && state.result.labels.length === s.data.length ? state.result.labels : null;
  $('view-name').textContent = `${m} (${s.file})`;
  for (const p of ['axial', 'coronal', 'sagittal'] as Plane[]) {
    const sl = $(`slice-${p}`) as HTMLInputElement;
    const max = p === 'axial' ? s.spatial[0]! : p === 'coronal' ? s.spatial[1]! : s.spatial[2]!;
    sl.max = String(max - 1);
    sl.value = String(view.index[p]);
  }
  redraw();
}

function redraw(): void {
  if (!view.volume) return;
  for (const p of ['axial', 'coronal', 'sagittal'] as Plane[]) drawPlane($(`view-${p}`) as HTMLCanvasElement, p, view);
}

// ------------------------------------------------------------------ segmentation

async function chooseBackend(choice: string): Promise<void> {
  if (choice === 'auto') state.backend = await bestBackend();
  else {
    const why = await useBackend(choice as BackendName);
    if (why) throw new Error(`backend ${choice} is not available here: ${why}`);
    state.backend = choice as BackendName;
  }
  $('backend-in-use').textContent = state.backend;
}

/** The backend and what it runs on, e.g. 'gpujs (webgl2)' or 'webgpu (google swiftshader)'. */
function backendDetail(): string {
  const b = engine().backend as unknown as {
    name: string;
    mode?: string;
    info?: { vendor?: string; architecture?: string; description?: string };
  };
  const on =
    b.name === 'gpujs'
      ? b.mode
      : b.name === 'webgpu'
        ? [b.info?.vendor, b.info?.architecture, b.info?.description].filter(Boolean).join(' ')
        : 'JavaScript';
  return `${b.name} (${on})`;
}

async function run(): Promise<void> {
  if (!state.model) throw new Error('load a checkpoint first');
  const vols = selectedVolumes();
  state.busy = true;
  renderInputs();
  try {
    await chooseBackend(($('backend') as HTMLSelectElement).value);
    const bar = $('progress') as HTMLProgressElement;
    message(`segmenting on ${state.backend}…`);
    // a GPU works best with several tiles per dispatch; the CPU keeps the checkpoint's batch (as largo predict)
    const batchSize = state.backend === 'cpu' ? undefined : 8;
    const r = await segment(state.model, vols, {
      batchSize,
      onProgress: (d, t) => {
        bar.max = t;
        bar.value = d;
        $('progress-text').textContent = `${d} / ${t} tiles`;
      },
    });
    state.result = r;
    api.results[state.backend] = r;
    api.runs++;
    const counts = new Map<number, number>();
    for (const v of r.labels) counts.set(v, (counts.get(v) ?? 0) + 1);
    api.backendDetail = backendDetail();
    $('backend-in-use').textContent = api.backendDetail;
    message(
      `done on ${api.backendDetail}: subset ${r.subsetName}, ${r.tiles} tiles in ${r.seconds.toFixed(2)} s; labels ${[
        ...counts,
      ]
        .sort((a, b) => a[0] - b[0])
        .map(([l, c]) => `${l}:${c}`)
        .join(' ')}`,
    );
    const first = [...vols.data.keys()][0]!;
    showScan(first);
  } finally {
    state.busy = false;
    renderInputs();
  }
}

async function download(): Promise<void> {
  const r = state.result;
  if (!r || !state.model) throw new Error('segment first');
  const ref = [...state.scans.values()].find((s) => s.data.length === r.labels.length)!;
  const [D, H, W] = ref.spatial as [number, number, number];
  const img = createNifti(r.labels, [W, H, D]);
  const h = ref.header;
  // the input's geometry: same dims, pixdim, qform and sform
  if (h) {
    Object.assign(img.header, {
      pixdim: [...h.pixdim],
      qformCode: h.qformCode,
      sformCode: h.sformCode,
      quatern: [...h.quatern],
      qoffset: [...h.qoffset],
      srow: h.srow.map((row) => [...row]),
      xyztUnits: h.xyztUnits,
    });
  }
  img.header.descrip = `largo ${state.model.method} subset ${r.subsetName}`.slice(0, 79);
  const bytes = await encodeNiftiBytes(img, { gzip: true });
  const a = document.createElement('a');
  a.href = URL.createObjectURL(new Blob([bytes as BlobPart], { type: 'application/gzip' }));
  a.download = `segmentation-${r.subsetName.replace(/[^a-z0-9+]+/gi, '_')}.nii.gz`;
  document.body.append(a);
  a.click();
  a.remove();
}

// ------------------------------------------------------------------ wiring

function wire(): void {
  const sel = $('backend') as HTMLSelectElement;
  for (const b of BACKENDS) {
    const o = document.createElement('option');
    o.value = b;
    o.textContent = b;
    sel.append(o);
  }
  sel.addEventListener(
    'change',
    guarded(async () => {
      await chooseBackend(sel.value);
      message(`backend: ${state.backend}`);
    }),
  );
  const ck = $('checkpoint-file') as HTMLInputElement;
  ck.addEventListener(
    'change',
    guarded(async () => {
      const f = ck.files?.[0];
      if (!f) return;
      await setCheckpoint(new Uint8Array(await f.arrayBuffer()), f.name);
      message(`checkpoint ${f.name} loaded`);
    }),
  );
  const multi = $('scan-files') as HTMLInputElement;
  multi.addEventListener(
    'change',
    guarded(async () => {
      if (multi.files) await addDroppedFiles(multi.files);
    }),
  );
  const drop = $('drop');
  drop.addEventListener('dragover', (e) => {
    e.preventDefault();
    drop.classList.add('over');
  });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener(
    'drop',
    guarded(async (e: DragEvent) => {
      e.preventDefault();
      drop.classList.remove('over');
      const files = Array.from(e.dataTransfer?.files ?? []);
      const cks = files.filter((f) => f.name.endsWith('.safetensors'));
      for (const f of cks) await setCheckpoint(new Uint8Array(await f.arrayBuffer()), f.name);
      await addDroppedFiles(files.filter((f) => !f.name.endsWith('.safetensors')));
    }),
  );
  $('phantom').addEventListener('click', guarded(loadPhantom));
  $('run').addEventListener('click', guarded(run));
  $('download').addEventListener('click', guarded(download));
  const op = $('opacity') as HTMLInputElement;
  op.addEventListener('input', () => {
    view.opacity = Number(op.value) / 100;
    redraw();
  });
  for (const p of ['axial', 'coronal', 'sagittal'] as Plane[]) {
    const sl = $(`slice-${p}`) as HTMLInputElement;
    sl.addEventListener('input', () => {
      view.index[p] = Number(sl.value);
      redraw();
    });
  }
  window.addEventListener('error', (e) => message(e.message, 'error'));
  window.addEventListener('unhandledrejection', (e) => message(errorText(e.reason), 'error'));
}

async function start(): Promise<void> {
  wire();
  const res = await fetch('phantom-largo.safetensors');
  if (!res.ok) throw new Error(`the bundled checkpoint could not be fetched (${res.status})`);
  await setCheckpoint(new Uint8Array(await res.arrayBuffer()), 'phantom-largo.safetensors');
  const auto = await bestBackend();
  state.backend = auto;
  ($('backend') as HTMLSelectElement).value = auto;
  $('backend-in-use').textContent = auto;
  message(`ready: bundled checkpoint loaded; backend ${auto}`);
  api.ready = true;
}

guarded(start)();
