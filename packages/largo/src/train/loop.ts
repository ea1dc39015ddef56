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
import { keep, zeros, type Tensor } from '@largo/core';
import type { LargoConfig } from '../config.js';
import {
  checkCompatible, loadCheckpoint, restoreParams, saveCheckpoint, writeFileAtomic, NonFiniteCheckpointError, type ModelDescriptor,
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
  /** forward + backward of step `step` (0-based); gradients accumulate into the parameters; returns the loss */
  lossStep(step: number): number;
  /** validation: higher `score` is better */
  validate(): { score: number; metrics: Record<string, number> };
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
  label?: string;
  /** polled after every step; a signal name stops training with a checkpoint at that step */
  interrupt?: () => string | undefined;
}

export function emptyHistory(): History { return { loss: [], lr: [], val: [], segments: [] }; }

/** Training stopped because the loss or the weights stopped being finite (exit code 3). */
export class DivergenceError extends Error {
  constructor(readonly method: string, readonly step: number, readonly loss: number, readonly lastGood: { file: string; step: number } | null, detail: string) {
    super(`${method} diverged at step ${step} (${detail}); ${lastGood ? `the last good checkpoint is kept: ${lastGood.file} (step ${lastGood.step})` : 'no checkpoint was written before it'}. Lower the learning rate (--lr) or set train.clipGradNorm`);
    this.name = 'DivergenceError';
  }
}

/** Training stopped on request (SIGINT / SIGTERM) after writing a checkpoint at the current step (exit code 130). */
export class TrainingInterrupted extends Error {
  constructor(readonly method: string, readonly step: number, readonly file: string, readonly signal: string) {
    super(`${signal}: stopped ${method} at step ${step}; checkpoint written to ${file}`);
    this.name = 'TrainingInterrupted';
  }
}

export function trainLoop(task: TrainTask, cfg: LargoConfig, o: TrainLoopOptions): TrainResult {
  const it = trainSteps(task, cfg, o);
  for (;;) { const r = it.next(); if (r.done) return r.value; }
}

/**
 * The same loop, giving the event loop a turn after every step so that
 * signals are seen: when `o.interrupt()` returns a signal name, a checkpoint
 * is written at the current step and TrainingInterrupted is thrown.
 */
export async function trainLoopAsync(task: TrainTask, cfg: LargoConfig, o: TrainLoopOptions): Promise<TrainResult> {
  const it = trainSteps(task, cfg, o);
  for (;;) {
    const r = it.next();
    if (r.done) return r.value;
    await new Promise((res) => setImmediate(res));
  }
}

function* trainSteps(task: TrainTask, cfg: LargoConfig, o: TrainLoopOptions): Generator<number, TrainResult> {
  makeDirs(o.dir);
  cleanStaleTemps(o.dir);
  const t = cfg.train;
  const total = t.steps;
  const params = task.params;
  let history = emptyHistory();
  let best: { step: number; score: number } | null = null;
  let start = 0;
  const lastBase = join(o.dir, 'last');
  const opt: TrainOptimizer = makeOptimizer(params, cfg, task.subsetParams);
  let resumed = false;
  if (o.resume && existsSync(`${lastBase}.safetensors`)) {
    const file = `${lastBase}.safetensors`;
    let ck;
    try {
      ck = loadCheckpoint(file);
      checkCompatible(file, ck, task.descriptor, params, cfg);
    } catch (e) { opt.dispose(); throw e; }
    resumed = true;
    restoreParams(ck, params);
    opt.load(ck.optim, ck.optimScalars, file);
    task.setRngState(ck.rng['task'] as Record<string, unknown>, file);
    if (ck.rng['global']) setGlobalGeneratorState(ck.rng['global'] as PhiloxState);
    history = (ck.extra['history'] as History | undefined) ?? history;
    best = (ck.extra['best'] as typeof best | undefined) ?? null;
    start = ck.step;
  }
  const resumedFrom = start;
  let lastGood: { file: string; step: number } | null = resumed ? { file: `${lastBase}.safetensors`, step: start } : null;
  const progress = new Progress({ total, start, label: o.label ?? o.method, stream: o.stream, tty: o.tty });
  const t0 = performance.now();
  let segStart = performance.now();

  const save = (base: string, step: number, loss: number) => {
    const seg = [...history.segments, { fromStep: resumedFrom, toStep: step, seconds: (performance.now() - segStart) / 1000 }];
    const st = opt.state();
    try {
      saveCheckpoint(base, {
        step, method: o.method, config: cfg, model: task.descriptor, params,
        optim: st.tensors, optimScalars: st.scalars,
        rng: { task: task.rngState(), global: globalGeneratorState() },
        extra: { history: { ...history, segments: seg }, best },
      });
    } catch (e) {
      // weights that are no longer finite are never written: the previous checkpoint stays the good one
      if (e instanceof NonFiniteCheckpointError) throw new DivergenceError(o.method, step, loss, lastGood, `${e.tensorName} is no longer finite; loss ${loss}`);
      throw e;
    }
    if (base === lastBase) lastGood = { file: `${base}.safetensors`, step };
  };

  if (start >= total) {
    progress.log(`${o.method}: already trained (${start}/${total} steps in ${lastBase}.safetensors)`);
    opt.dispose();
    return { history, best, steps: start, resumedFrom, seconds: 0 };
  }

  task.setTraining(true);
  let stepsThisCall = 0;
  try {
  for (let s = start; s < total; s++) {
    const lr = scheduledLr(cfg, s);
    opt.setLr(lr);
    const loss = task.lossStep(s);
    if (!Number.isFinite(loss)) throw new DivergenceError(o.method, s + 1, loss, lastGood, `the loss became ${loss} with learning rate ${lr}`);
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
    history.loss.push([step, loss]);
    history.lr.push([step, lr]);
    progress.tick({ loss, lr });
    const isLast = step === total;
    const isVal = (t.valEvery > 0 && step % t.valEvery === 0) || isLast;
    if (isVal) {
      task.setTraining(false);
      const v = task.validate();
      task.setTraining(true);
      history.val.push([step, v.score, v.metrics]);
      const improved = best === null || v.score > best.score;
      if (improved) best = { step, score: v.score };
      progress.log(`${o.method} step ${step}: validation ${v.score.toFixed(4)}${improved ? ' (best)' : ''}`);
      if (improved) save(join(o.dir, 'best'), step, loss);
    }
    const signal = isLast ? undefined : o.interrupt?.();
    if (isVal || isLast || signal || (t.checkpointEvery > 0 && step % t.checkpointEvery === 0)) save(lastBase, step, loss);
    if (signal) throw new TrainingInterrupted(o.method, step, `${lastBase}.safetensors`, signal);
    stepsThisCall++;
    if (o.stopAfter !== undefined && stepsThisCall >= o.stopAfter && !isLast) {
      progress.done();
      opt.dispose();
      return { history, best, steps: step, resumedFrom, seconds: (performance.now() - t0) / 1000 };
    }
    if (!isLast) yield step;
  }
  } catch (e) {
    progress.done();
    opt.dispose();
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

/** Copies a checkpoint pair (used when `best` must mirror `last`). */
export function copyCheckpoint(from: string, to: string): void {
  copyFileSync(`${from}.safetensors`, `${to}.safetensors`);
  if (existsSync(`${from}.json`)) copyFileSync(`${from}.json`, `${to}.json`);
}

export function writeJson(path: string, v: unknown): void {
  writeFileSync(path, JSON.stringify(v, null, 2) + '\n');
}
