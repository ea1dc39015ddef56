/**
 * The training loop shared by segmentation and avMNIST: learning-rate
 * schedule, gradient clipping, optimizer step under noGrad, validation
 * every N steps, `last` / `best` checkpoints and bitwise-exact resume.
 *
 * Everything a step consumes is a pure function of the saved state: the
 * weights, the optimizer state, the step counter and the Philox states of
 * every random stream (subset sampling, data order, dropout, global). So a
 * run stopped after step s and resumed from its checkpoint reaches, on the
 * CPU, bitwise the same weights as a run that never stopped.
 */
import { existsSync, copyFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { noGrad, zeroGrad } from '@largo/autograd';
import { concat, keep, reshape, tidy, zeros, type Tensor } from '@largo/core';
import type { LargoConfig } from '../config.js';
import {
  checkCompatible,
  loadCheckpoint,
  restoreParams,
  saveCheckpointAsync,
  writeFileAtomic,
  NonFiniteCheckpointError,
  type ModelDescriptor,
} from '../checkpoint.js';
import { cleanStaleTemps, makeDirs } from '../files.js';
import { Progress, type ProgressStream } from '../progress.js';
import { makeOptimizer, scheduledLr, clipGradients, type TrainOptimizer } from './optimizer.js';
import { globalGeneratorState, setGlobalGeneratorState, type PhiloxState } from './rng.js';

export interface TrainTask {
  readonly params: readonly [string, Tensor][];
  readonly descriptor: ModelDescriptor;
  /** names of the parameters that belong to one subset only (for `train.subsetLrScale`) */
  readonly subsetParams?: ReadonlySet<string>;
  /** switch train / eval behaviour (dropout, kernel caches) */
  setTraining(on: boolean): void;
  /**
   * forward + backward of step `step` (0-based); gradients accumulate into the parameters; returns the
   * loss as scalar parts whose sum is the step's loss (the caller reads and disposes them: on a device
   * the read is asynchronous and overlaps the next step)
   */
  lossStep(step: number): Tensor[];
  /** validation: higher `score` is better */
  validate(): Promise<{ score: number; metrics: Record<string, number> }>;
  rngState(): Record<string, unknown>;
  setRngState(s: Record<string, unknown>, where: string): void;
}

export interface History {
  /** [step, loss] after each step (1-based step numbers) */
  loss: [number, number][];
  lr: [number, number][];
  /** [step, score, metrics] */
  val: [number, number, Record<string, number>][];
  /** wall seconds spent in each training segment (one entry per start or resume) */
  segments: { fromStep: number; toStep: number; seconds: number }[];
}

export interface TrainResult {
  history: History;
  best: { step: number; score: number } | null;
  steps: number;
  resumedFrom: number;
  seconds: number;
}

export interface TrainLoopOptions {
  /** method folder: last.* / best.* / history.json go here */
  dir: string;
  method: string;
  /** continue from `dir/last.safetensors` when it exists */
  resume?: boolean;
  stream?: ProgressStream;
  tty?: boolean;
  /** stop after this many steps of this call (tests simulate a crash) */
  stopAfter?: number;
  /** called after each step (1-based), its update queued and its checkpoints written (tests watch memory here) */
  onStep?: (step: number) => void;
  label?: string;
  /** polled after every step; a signal name stops training with a checkpoint at that step */
  interrupt?: () => string | undefined;
}

export function emptyHistory(): History {
  return { loss: [], lr: [], val: [], segments: [] };
}

/** A step whose loss is still on the device: read back while the next step is queued. */
interface PendingStep {
  step: number;
  lr: number;
  value: number | Promise<number>;
}

/** The sum of a step's loss parts, in part order in float64 (as on the CPU); the parts are disposed. */
function readLoss(parts: readonly Tensor[], host: boolean): number | Promise<number> {
  if (host) {
    let v = 0;
    for (const p of parts) {
      v += p.item();
      p.dispose();
    }
    return v;
  }
  // one read for all parts: concatenate the scalars on the device
  const all = parts.length === 1 ? parts[0]! : tidy(() => concat(parts.map((p) => reshape(p, [1]))));
  if (all !== parts[0]) for (const p of parts) p.dispose();
  return all
    .data()
    .then((d) => {
      let v = 0;
      for (let i = 0; i < d.length; i++) v += d[i]!;
      return v;
    })
    .finally(() => all.dispose());
}

/** GPU errors that mean the device is gone (Dawn's messages), not a bug in a kernel. */
const DEVICE_LOST = /device (was )?lost|device was destroyed|device is lost|destroyed device|instance dropped/i;

/** Training stopped because the loss or the weights stopped being finite (exit code 3). */
export class DivergenceError extends Error {
  constructor(
    readonly method: string,
    readonly step: number,
    readonly loss: number,
    readonly lastGood: { file: string; step: number } | null,
    detail: string,
  ) {
    super(
      `${method} diverged at step ${step} (${detail}); ${lastGood ? `the last good checkpoint is kept: ${lastGood.file} (step ${lastGood.step})` : 'no checkpoint was written before it'}. Lower the learning rate (--lr) or set train.clipGradNorm`,
    );
    this.name = 'DivergenceError';
  }
}

/** Training stopped on request (SIGINT / SIGTERM) after writing a checkpoint at the current step (exit code 130). */
export class TrainingInterrupted extends Error {
  constructor(
    readonly method: string,
    readonly step: number,
    readonly file: string,
    readonly signal: string,
  ) {
    super(`${signal}: stopped ${method} at step ${step}; checkpoint written to ${file}`);
    this.name = 'TrainingInterrupted';
  }
}

/** The training loop is asynchronous on every backend; this name is kept for callers that poll signals. */
export const trainLoopAsync = (task: TrainTask, cfg: LargoConfig, o: TrainLoopOptions): Promise<TrainResult> =>
  trainLoop(task, cfg, o);

export async function trainLoop(task: TrainTask, cfg: LargoConfig, o: TrainLoopOptions): Promise<TrainResult> {
  makeDirs(o.dir);
  cleanStaleTemps(o.dir);
  const t = cfg.train;
  const total = t.steps;
  const params = task.params;
  // the CPU reads synchronously: its loss is checked before the update, exactly as it always was
  const host = params.length === 0 || params[0]![1].backend.name === 'cpu';
  const opt: TrainOptimizer = makeOptimizer(params, cfg, task.subsetParams);
  let history = emptyHistory();
  let best: { step: number; score: number } | null = null;
  let start = 0;
  const lastBase = join(o.dir, 'last');
  if (o.resume && existsSync(`${lastBase}.safetensors`)) {
    const file = `${lastBase}.safetensors`;
    const ck = loadCheckpoint(file);
    checkCompatible(file, ck, task.descriptor, params, cfg);
    restoreParams(ck, params);
    opt.load(ck.optim, ck.optimScalars, file);
    task.setRngState(ck.rng['task'] as Record<string, unknown>, file);
    if (ck.rng['global']) setGlobalGeneratorState(ck.rng['global'] as PhiloxState);
    history = (ck.extra['history'] as History | undefined) ?? history;
    best = (ck.extra['best'] as typeof best | undefined) ?? null;
    start = ck.step;
  }
  const resumedFrom = start;
  const progress = new Progress({ total, start, label: o.label ?? o.method, stream: o.stream, tty: o.tty });
  const t0 = performance.now();
  let segStart = performance.now();
  let lastSaved = resumedFrom > 0 ? resumedFrom : -1;
  let lastGood: { file: string; step: number } | null =
    resumedFrom > 0 ? { file: `${lastBase}.safetensors`, step: resumedFrom } : null;

  const save = async (base: string, step: number) => {
    const seg = [
      ...history.segments,
      { fromStep: resumedFrom, toStep: step, seconds: (performance.now() - segStart) / 1000 },
    ];
    const st = opt.state();
    const loss = history.loss.length ? history.loss[history.loss.length - 1]![1] : NaN;
    try {
      await saveCheckpointAsync(base, {
        step,
        method: o.method,
        config: cfg,
        model: task.descriptor,
        params,
        optim: st.tensors,
        optimScalars: st.scalars,
        rng: { task: task.rngState(), global: globalGeneratorState() },
        extra: { history: { ...history, segments: seg }, best },
      });
    } catch (e) {
      // weights that are no longer finite are never written: the previous checkpoint stays the good one
      if (e instanceof NonFiniteCheckpointError)
        throw new DivergenceError(o.method, step, loss, lastGood, `${e.tensorName} is no longer finite; loss ${loss}`);
      throw e;
    }
    if (base === lastBase) {
      lastSaved = step;
      lastGood = { file: `${base}.safetensors`, step };
    }
  };

  if (start >= total) {
    progress.log(`${o.method}: already trained (${start}/${total} steps in ${lastBase}.safetensors)`);
    opt.dispose();
    return { history, best, steps: start, resumedFrom, seconds: 0 };
  }

  // a step's bookkeeping once its loss is known (at once on the CPU, one step later on a device)
  const settle = async (p: PendingStep) => {
    const loss = await p.value;
    if (!Number.isFinite(loss))
      throw new DivergenceError(o.method, p.step, loss, lastGood, `the loss became ${loss} with learning rate ${p.lr}`);
    history.loss.push([p.step, loss]);
    history.lr.push([p.step, p.lr]);
    progress.tick({ loss, lr: p.lr });
  };

  task.setTraining(true);
  let stepsThisCall = 0;
  let pending: PendingStep | null = null;
  let current = start;
  try {
    for (let s = start; s < total; s++) {
      current = s + 1;
      const lr = scheduledLr(cfg, s);
      opt.setLr(lr);
      const parts = task.lossStep(s);
      const value = readLoss(parts, host);
      // observed now: if an earlier step throws first, this read's rejection (a lost device) must not go unhandled
      if (typeof value !== 'number') value.catch(() => undefined);
      if (host && !Number.isFinite(value as number))
        throw new DivergenceError(
          o.method,
          s + 1,
          value as number,
          lastGood,
          `the loss became ${value as number} with learning rate ${lr}`,
        );
      noGrad(() => {
        if (t.unusedGrads === 'zero') {
          // parameters this step did not reach (other subsets' stems) get their exact gradient, zero,
          // so momentum keeps carrying them as it carries the unused rows of [K, ...] tensors
          for (const [, p] of params) if (!p.grad) p.grad = keep(zeros(p.shape, p.dtype));
        }
        if (t.clipGradNorm > 0) clipGradients(params, t.clipGradNorm);
        opt.step();
      });
      zeroGrad(params.map(([, p]) => p));
      const step = s + 1;
      // the previous step's loss arrives while this one runs on the device
      if (pending) await settle(pending);
      pending = { step, lr, value };
      const isLast = step === total;
      const isVal = (t.valEvery > 0 && step % t.valEvery === 0) || isLast;
      // a signal seen after this step: checkpoint here and stop (the event loop gets a turn per step below)
      const signal = isLast ? undefined : o.interrupt?.();
      const isCkpt = isVal || isLast || !!signal || (t.checkpointEvery > 0 && step % t.checkpointEvery === 0);
      const stopping = o.stopAfter !== undefined && stepsThisCall + 1 >= o.stopAfter && !isLast;
      if (host || isVal || isCkpt || stopping) {
        await settle(pending);
        pending = null;
      }
      if (isVal) {
        task.setTraining(false);
        const v = await task.validate();
        task.setTraining(true);
        history.val.push([step, v.score, v.metrics]);
        const improved = best === null || v.score > best.score;
        if (improved) best = { step, score: v.score };
        progress.log(`${o.method} step ${step}: validation ${v.score.toFixed(4)}${improved ? ' (best)' : ''}`);
        if (improved) await save(join(o.dir, 'best'), step);
      }
      if (isCkpt) await save(lastBase, step);
      if (signal) throw new TrainingInterrupted(o.method, step, `${lastBase}.safetensors`, signal);
      stepsThisCall++;
      o.onStep?.(step);
      if (stopping) {
        progress.done();
        opt.dispose();
        return { history, best, steps: step, resumedFrom, seconds: (performance.now() - t0) / 1000 };
      }
      // a macrotask turn, so that SIGINT / SIGTERM handlers run between steps
      if (o.interrupt && !isLast) await new Promise((res) => setImmediate(res));
    }
  } catch (e) {
    progress.done();
    opt.dispose();
    const msg = (e as Error)?.message ?? String(e);
    if (!host && DEVICE_LOST.test(msg)) {
      const kept =
        lastSaved >= 0
          ? `the last checkpoint ${lastBase}.safetensors (step ${lastSaved}) is intact; continue with 'largo train --resume' (on --backend cpu if the GPU is gone)`
          : 'no checkpoint was written yet';
      throw new DeviceLostError(
        `${o.method}: the GPU device was lost during step ${current} (${msg.split('\n')[0]}); ${kept}`,
      );
    }
    throw e;
  }
  progress.done();
  opt.dispose();
  const seconds = (performance.now() - t0) / 1000;
  history.segments.push({ fromStep: resumedFrom, toStep: total, seconds: (performance.now() - segStart) / 1000 });
  segStart = performance.now();
  writeFileAtomic(join(o.dir, 'history.json'), JSON.stringify({ method: o.method, best, history }) + '\n');
  return { history, best, steps: total, resumedFrom, seconds };
}

/** The GPU went away mid-training; the message names the last usable checkpoint. */
export class DeviceLostError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DeviceLostError';
  }
}

/** Copies a checkpoint pair (used when `best` must mirror `last`). */
export function copyCheckpoint(from: string, to: string): void {
  copyFileSync(`${from}.safetensors`, `${to}.safetensors`);
  if (existsSync(`${from}.json`)) copyFileSync(`${from}.json`, `${to}.json`);
}

export function writeJson(path: string, v: unknown): void {
  writeFileSync(path, JSON.stringify(v, null, 2) + '\n');
}
