/**
 * RNG bookkeeping for bitwise-reproducible resume: every Philox stream that
 * training consumes (subset sampling, the data order, dropout masks inside
 * the network, the global default stream) is found, and its state saved in
 * and restored from checkpoints.
 */
import { Philox, defaultGenerator } from '@largo/core';
import { Rng } from '@largo/datasets';
import type { Layer } from '../layers/base.js';

export interface PhiloxState {
  k0: number;
  k1: number;
  counter: number;
}

/** A seed for a named sub-stream of the run seed (stable across versions). */
export function deriveSeed(seed: number, ...ids: number[]): number {
  return Rng.derive(seed, ...ids);
}

/** Stream ids (second argument of deriveSeed) used by the training loop. */
export const STREAM = { subsets: 1, patches: 2, order: 3, split: 4 } as const;

/**
 * Every distinct Philox instance referenced by a property of the module's
 * layers (e.g. Dropout.generator), in the deterministic layer order.
 */
export function moduleGenerators(module: Layer): [string, Philox][] {
  const out: [string, Philox][] = [];
  const seen = new Set<Philox>();
  for (const [path, layer] of module.namedLayers()) {
    for (const [key, v] of Object.entries(layer)) {
      if (v instanceof Philox && !seen.has(v)) {
        seen.add(v);
        out.push([`${path || '<root>'}.${key}`, v]);
      }
    }
  }
  return out;
}

export function generatorStates(gens: readonly [string, Philox][]): Record<string, PhiloxState> {
  const out: Record<string, PhiloxState> = {};
  for (const [name, g] of gens) out[name] = g.state;
  return out;
}

export function restoreGenerators(
  gens: readonly [string, Philox][],
  states: Record<string, unknown>,
  where: string,
): void {
  for (const [name, g] of gens) {
    const s = states[name] as PhiloxState | undefined;
    if (!s || typeof s.counter !== 'number')
      throw new Error(`${where}: no saved state for the random stream '${name}'`);
    g.state = s;
  }
}

export function globalGeneratorState(): PhiloxState {
  return defaultGenerator().state;
}
export function setGlobalGeneratorState(s: PhiloxState): void {
  defaultGenerator().state = s;
}
