/**
 * A whole experiment: train every configured method, evaluate each on all
 * modality subsets of the test cases, and write the paper-style table (md,
 * JSON, CSV), figures, training curves, checkpoints and the effective config
 * to one run folder.
 */
import { existsSync, readFileSync } from 'node:fs';
import { cleanStaleTemps, makeDirs } from '../files.js';
import { join } from 'node:path';
import { configDiff, ConfigError, type LargoConfig } from '../config.js';
import { loadCheckpoint, restoreParams, checkCompatible } from '../checkpoint.js';
import { buildSegNet } from '../nets/build.js';
import { buildAvMnistNet, type AvMnistNet } from '../nets/avmnist.js';
import type { Method } from '../nets/factory.js';

export { buildSegNet };
import { enumerateSubsets, fullSubset, subsetMask, subsetName } from '../subsets.js';
import { evaluateSegmentation, evaluateAvMnist } from '../eval/evaluate.js';
import {
  toMarkdown,
  toCsv,
  toCaseCsv,
  toJson,
  overallAverage,
  type ResultsTable,
  type CaseRecord,
} from '../report/table.js';
import { caseFigure } from '../report/figures.js';
import { lineChartSvg, smooth } from '../report/curves.js';
import { writeFileAtomic } from '../checkpoint.js';
import type { ProgressStream } from '../progress.js';
import { formatDuration } from '../progress.js';
import { loadSegData, loadAvData, gtRegions, type SegData, type AvData } from './data.js';
import { SegTask, segDescriptor } from './seg-task.js';
import { AvTask, avDescriptor } from './av-task.js';
import { trainLoop, TrainingInterrupted, type History, type TrainResult } from './loop.js';
import { onCpu, placeOn } from '../backend-select.js';
import { AUDIO_FEATURES, IMAGE_FEATURES } from './encoders.js';

export interface ExperimentOptions {
  runDir: string;
  resume?: boolean;
  /** progress output (default stderr) */
  stream?: ProgressStream;
  tty?: boolean;
  /** log lines (default: stderr) */
  log?: (s: string) => void;
  /** skip the evaluation (train only) */
  evaluate?: boolean;
  /** tests: stop each method after this many steps of this call (simulated crash) */
  stopAfter?: number;
  /** evaluate existing checkpoints only (every method must be fully trained) */
  evalOnly?: boolean;
  /** extra facts stored in config.json (command line, versions) */
  meta?: Record<string, unknown>;
  /** polled after every training step; a signal name stops with a checkpoint (TrainingInterrupted) */
  interrupt?: () => string | undefined;
}

export interface ExperimentResult {
  runDir: string;
  table: ResultsTable | null;
  markdown: string;
  train: Record<string, TrainResult>;
  averages: Record<string, number>;
  seconds: { total: number; train: Record<string, number>; eval: Record<string, number> };
  /** parameter count of each method's network (parameters of every subset included) */
  params: Record<string, number>;
  /** the training/validation/test cases (ids) the run used, for the record */
  splits?: { train: string[]; val: string[]; test: string[] };
}

const MODALITY_LABELS: Record<string, string> = {
  flair: 'Fl',
  t1: 'T1',
  t1ce: 'T1c',
  t2: 'T2',
  dwi: 'DWI',
  adc: 'ADC',
  image: 'Image',
  audio: 'Audio',
};

/** Writes config.json, or checks it against an existing one when resuming (error names the differing keys). */
export function writeRunConfig(
  runDir: string,
  cfg: LargoConfig,
  resume: boolean,
  meta: Record<string, unknown> = {},
): void {
  makeDirs(runDir);
  cleanStaleTemps(runDir);
  const path = join(runDir, 'config.json');
  if (resume && existsSync(path)) {
    const prev = JSON.parse(readFileSync(path, 'utf8')) as { config: unknown };
    const diff = configDiff(prev.config, cfg, [
      'out',
      'runName',
      'train.valEvery',
      'train.checkpointEvery',
      'eval',
      'data.incomplete',
      'data.gridMismatch',
    ]);
    if (diff.length) {
      throw new ConfigError(
        `${path}: the run was started with another configuration; differing key(s): ${diff.map((d) => `${d.key} (run ${d.a ?? '(absent)'}, now ${d.b ?? '(absent)'})`).join(', ')}`,
      );
    }
  }
  writeFileAtomic(
    path,
    JSON.stringify({ seed: cfg.seed, config: cfg, ...meta, written: new Date().toISOString() }, null, 2) + '\n',
  );
}

/**
 * The avMNIST network of a method. Under train.encoders = 'pretrained' it is the fusion network on the
 * frozen encoders' features (the zero-input features come with the data; without data, for parameter
 * counts, placeholders of the right length).
 */
export function buildAvNet(cfg: LargoConfig, method: string, data?: Pick<AvData, 'features'>): AvMnistNet {
  const frozen =
    cfg.train.encoders === 'pretrained'
      ? (data?.features?.imputed ?? {
          image: new Float32Array(IMAGE_FEATURES),
          audio: new Float32Array(AUDIO_FEATURES),
        })
      : null;
  return buildAvMnistNet({
    method: method as Method,
    rankMultiplier: cfg.model.rankMultiplier,
    dropout: cfg.model.dropout,
    hidden: cfg.model.hidden,
    seed: cfg.seed,
    frozenFeatures: frozen,
  });
}

function subsetRows(M: number) {
  return enumerateSubsets(M).map((_, k) => ({ index: k, available: subsetMask(k, M) }));
}

/** Writes loss and validation curves of all methods as SVG. */
export function writeCurves(dir: string, histories: Record<string, History>, valName: string): void {
  const names = Object.keys(histories);
  const window = Math.max(1, Math.round(Math.max(...names.map((n) => histories[n]!.loss.length)) / 40));
  writeFileAtomic(
    join(dir, 'curves-loss.svg'),
    lineChartSvg(
      names.map((n) => ({ name: n, points: smooth(histories[n]!.loss, window) })),
      { title: `training loss (moving average over ${window} steps)`, xLabel: 'step', yLabel: 'loss', logY: true },
    ),
  );
  writeFileAtomic(
    join(dir, 'curves-val.svg'),
    lineChartSvg(
      names.map((n) => ({ name: n, points: histories[n]!.val.map(([s, v]) => [s, v] as [number, number]) })),
      { title: `validation ${valName}`, xLabel: 'step', yLabel: valName },
    ),
  );
}

export async function runExperiment(cfg: LargoConfig, o: ExperimentOptions): Promise<ExperimentResult> {
  const t0 = performance.now();
  const log = o.log ?? ((s: string) => process.stderr.write(s + '\n'));
  // the data is read (and checked) before anything is written, so bad input leaves no run folder behind
  // eval-config.json is written only once the evaluation succeeded (a failed eval leaves the run as it was)
  const writeConfig = () => {
    if (!o.evalOnly) writeRunConfig(o.runDir, cfg, o.resume ?? false, o.meta);
  };
  const seconds = { total: 0, train: {} as Record<string, number>, eval: {} as Record<string, number> };
  const trainRes: Record<string, TrainResult> = {};
  const params: Record<string, number> = {};
  let splits: ExperimentResult['splits'];
  const countParams = (method: string, named: [string, { size: number }][]) => {
    params[method] = named.reduce((a, [, t]) => a + t.size, 0);
  };
  const histories: Record<string, History> = {};
  const records: CaseRecord[] = [];
  let table: ResultsTable | null = null;
  let hdTable: ResultsTable | null = null;
  const evaluate = o.evaluate ?? true;

  if (cfg.dataset === 'avmnist') {
    const tl = performance.now();
    const data: AvData = loadAvData(cfg, log);
    writeConfig();
    log(
      `avMNIST: ${data.train.count} train, ${data.val.count} val, ${data.test.count} test pairs (${((performance.now() - tl) / 1000).toFixed(1)} s to load)`,
    );
    for (const method of cfg.methods) {
      // built and initialized on the CPU (host-side init reads values), then placed on the active backend
      const net = onCpu(() => buildAvNet(cfg, method, data));
      countParams(method, net.namedParameters());
      try {
        const task = onCpu(() => new AvTask(net, data, cfg, method));
        placeOn(net.namedParameters());
        const r = o.evalOnly
          ? trainedResult(o.runDir, method, cfg)
          : await trainLoop(task, cfg, {
              dir: join(o.runDir, method),
              method,
              resume: o.resume,
              stream: o.stream,
              tty: o.tty,
              stopAfter: o.stopAfter,
              interrupt: o.interrupt,
            });
        trainRes[method] = r;
        histories[method] = r.history;
        seconds.train[method] = r.seconds;
        stopIfInterrupted(o, method, r.steps);
        if (!evaluate || r.steps < cfg.train.steps) continue;
        const te = performance.now();
        loadForEval(o.runDir, method, cfg, avDescriptor(cfg, method), net.namedParameters());
        records.push(...(await evaluateAvMnist(net, method, data.test, 'test')));
        seconds.eval[method] = (performance.now() - te) / 1000;
      } finally {
        net.dispose();
      }
    }
    table = {
      title: `avMNIST classification accuracy (${data.test.count} test pairs)`,
      modalities: ['Image', 'Audio'],
      subsets: subsetRows(2),
      groups: ['Accuracy'],
      methods: [...cfg.methods],
      metric: 'Accuracy',
      records,
    };
    writeCurves(o.runDir, histories, 'accuracy (mean over subsets)');
  } else {
    const tl = performance.now();
    const data = await loadSegData(cfg);
    writeConfig();
    log(
      `${data.name}: ${data.modalities.length} modalities (${data.modalities.join(', ')}), ${enumerateSubsets(data.modalities.length).length} subsets; ${data.train.length} train / ${data.val.length} val / ${data.test.length} test cases (${((performance.now() - tl) / 1000).toFixed(1)} s to load)`,
    );
    if (data.note) log(`warning: ${data.note}`);
    if (data.skipped?.length)
      log(
        `warning: ${data.skipped.length} case(s) left out because they lack a modality or the label (data.incomplete = '${cfg.data.incomplete}'; 'train' trains on those with a label, 'error' refuses them): ${data.skipped.map((c) => `${c.id} (lacks ${c.lacks.join(', ')})`).join(', ')}`,
      );
    if (data.trainedIncomplete?.length)
      log(
        `${data.trainedIncomplete.length} training case(s) lack a modality and train with it marked missing (data.incomplete = 'train'): ${data.trainedIncomplete.map((c) => `${c.id} (lacks ${c.lacks.join(', ')})`).join(', ')}`,
      );
    splits = { train: data.train.map((c) => c.id), val: data.val.map((c) => c.id), test: data.test.map((c) => c.id) };
    const M = data.modalities.length;
    const figCases = data.test.slice(0, cfg.eval.figureCases);
    const figSubsets =
      cfg.eval.figureRows === 'all'
        ? enumerateSubsets(M).map((_, k) => k)
        : [
            ...enumerateSubsets(M)
              .map((s, k) => (s.length === 1 ? k : -1))
              .filter((k) => k >= 0),
            fullSubset(M),
          ];
    const kept = new Map<string, Map<string, Uint8Array>>();
    for (const method of cfg.methods) {
      const net = onCpu(() => buildSegNet(cfg, method, data));
      countParams(method, net.namedParameters());
      try {
        const task = onCpu(() => new SegTask(net, data, cfg, method));
        placeOn(net.namedParameters());
        const r = o.evalOnly
          ? trainedResult(o.runDir, method, cfg)
          : await trainLoop(task, cfg, {
              dir: join(o.runDir, method),
              method,
              resume: o.resume,
              stream: o.stream,
              tty: o.tty,
              stopAfter: o.stopAfter,
              interrupt: o.interrupt,
            });
        trainRes[method] = r;
        histories[method] = r.history;
        seconds.train[method] = r.seconds;
        stopIfInterrupted(o, method, r.steps);
        if (!evaluate || r.steps < cfg.train.steps) continue;
        loadForEval(o.runDir, method, cfg, segDescriptor(cfg, method, data), net.namedParameters());
        const ev = await evaluateSegmentation(net, method, data, data.test, {
          patchSize: cfg.train.patchSize,
          step: cfg.eval.step,
          mirror: cfg.eval.mirror,
          hd95: cfg.eval.hd95,
          batchSize: cfg.eval.batchSize,
          keep: (id, k) => figCases.some((c) => c.id === id) && figSubsets.includes(k),
        });
        records.push(...ev.records);
        kept.set(method, ev.kept);
        seconds.eval[method] = ev.seconds;
        log(
          `${method}: evaluated ${data.test.length} case(s) × ${enumerateSubsets(M).length} subsets in ${formatDuration(ev.seconds)}`,
        );
      } finally {
        net.dispose();
      }
    }
    const labels = data.modalities.map((m) => MODALITY_LABELS[m] ?? m);
    table = {
      title: `${data.name}: Dice per region`,
      modalities: labels,
      subsets: subsetRows(M),
      groups: data.regions.map((r) => r.name),
      methods: [...cfg.methods],
      metric: 'Dice',
      records,
    };
    if (cfg.eval.hd95)
      hdTable = {
        ...table,
        title: `${data.name}: HD95 (mm) per region`,
        metric: 'HD95',
        records: records.map((r) => ({ ...r, values: r.hd95 ?? r.values.map(() => NaN) })),
      };
    writeCurves(o.runDir, histories, 'Dice (mean over subsets and regions)');
    if (evaluate && kept.size === cfg.methods.length) {
      makeDirs(join(o.runDir, 'figures'));
      const reg = Math.min(cfg.eval.figureRegion, data.regions.length - 1);
      for (const c of figCases) {
        const spatial = c.imageShape.slice(1);
        const n = spatial.reduce((a, b) => a * b, 1);
        const gt = gtRegions(c, data).subarray(reg * n, (reg + 1) * n);
        const cv = caseFigure({
          caseId: c.id,
          modalities: labels,
          image: c.image,
          shape: spatial,
          gt,
          rows: figSubsets.map((k) => ({
            label: subsetMask(k, M).every(Boolean) ? 'ALL' : subsetName(k, labels),
            available: subsetMask(k, M),
            predictions: cfg.methods.map((m) => ({
              method: m,
              mask: kept
                .get(m)!
                .get(`${c.id}\u0000${k}`)!
                .subarray(reg * n, (reg + 1) * n),
            })),
          })),
        });
        writeFileAtomic(join(o.runDir, 'figures', `${c.id}-${data.regions[reg]!.name}.png`), cv.png());
      }
    }
  }

  seconds.total = (performance.now() - t0) / 1000;
  const averages: Record<string, number> = {};
  let markdown = '';
  if (table && records.length) {
    for (const m of cfg.methods) if (records.some((r) => r.method === m)) averages[m] = overallAverage(table, m);
    markdown = toMarkdown(table, { modalityLabels: table.modalities });
    if (hdTable) markdown += '\n' + toMarkdown(hdTable, { scale: 1, digits: 2, bold: false });
    writeFileAtomic(
      join(o.runDir, 'results.md'),
      `# Results (${cfg.dataset}, seed ${cfg.seed})\n\n${markdown}\nAverages: ${Object.entries(averages)
        .map(([m, v]) => `${m} ${(v * 100).toFixed(2)}`)
        .join(', ')}\n`,
    );
    writeFileAtomic(join(o.runDir, 'results.csv'), toCsv(table));
    writeFileAtomic(join(o.runDir, 'results-cases.csv'), toCaseCsv(table));
    writeFileAtomic(
      join(o.runDir, 'results.json'),
      JSON.stringify(
        {
          seed: cfg.seed,
          dataset: cfg.dataset,
          ...(toJson(table) as object),
          hd95: hdTable ? toJson(hdTable) : undefined,
        },
        null,
        2,
      ) + '\n',
    );
  }
  writeFileAtomic(join(o.runDir, 'timing.json'), JSON.stringify(seconds, null, 2) + '\n');
  if (o.evalOnly)
    writeFileAtomic(
      join(o.runDir, 'eval-config.json'),
      JSON.stringify({ seed: cfg.seed, config: cfg, ...o.meta, written: new Date().toISOString() }, null, 2) + '\n',
    );
  return { runDir: o.runDir, table, markdown, train: trainRes, averages, seconds, params, splits };
}

/** A signal that arrived after a method's last step (or during the previous evaluation) stops before the next piece of work. */
function stopIfInterrupted(o: ExperimentOptions, method: string, step: number): void {
  const sig = o.interrupt?.();
  if (sig && !o.evalOnly) throw new TrainingInterrupted(method, step, join(o.runDir, method, 'last.safetensors'), sig);
}

/** The training record of a finished method, from its last checkpoint (for `largo eval`). */
function trainedResult(runDir: string, method: string, cfg: LargoConfig): TrainResult {
  const file = join(runDir, method, 'last.safetensors');
  const ck = loadCheckpoint(file);
  if (ck.step < cfg.train.steps)
    throw new ConfigError(
      `${file}: ${method} is trained for ${ck.step} of ${cfg.train.steps} steps; finish it with 'largo train --resume ${runDir}'`,
    );
  const history = (ck.extra['history'] as History | undefined) ?? { loss: [], lr: [], val: [], segments: [] };
  return {
    history,
    best: (ck.extra['best'] as TrainResult['best']) ?? null,
    steps: ck.step,
    resumedFrom: ck.step,
    seconds: 0,
  };
}

/** Loads the checkpoint chosen for evaluation (`eval.checkpoint`: last or best) into the network. */
function loadForEval(
  runDir: string,
  method: string,
  cfg: LargoConfig,
  desc: ReturnType<typeof segDescriptor>,
  params: [string, import('@largo/core').Tensor][],
): void {
  const base = join(runDir, method, cfg.eval.checkpoint);
  const file = existsSync(`${base}.safetensors`) ? `${base}.safetensors` : join(runDir, method, 'last.safetensors');
  const ck = loadCheckpoint(file);
  checkCompatible(file, ck, desc, params);
  restoreParams(ck, params);
}
