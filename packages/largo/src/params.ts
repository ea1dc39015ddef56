/**
 * Parameter accounting: per parameter, per layer, per role and in total
 * (`largo params` prints `paramTable(paramReport(model))`).
 *
 * Formulas (K subsets, O out, I in, S = kernel size, R CP rank):
 *   CP layer        R(K+O+I+S) + K·O
 *   dedicated       K(O·I·S + O)
 *   plain           O·I·S + O
 *   Tucker          K·R_o·R_i·S + O·R_o + I·R_i + K·O
 */
import type { Module } from './module.js';
import { Layer, type LayerRole, type ParamKind } from './layers/base.js';
import { FamilyLayer } from './layers/family.js';
import { CPWeights, TuckerWeights } from './layers/weights.js';

export interface ParamRow {
  /** Dotted parameter path. */
  name: string;
  /** What the tensor is: 'weight', 'bias', 'cp.out', 'norm.weight', ... */
  kind: ParamKind | 'param';
  shape: number[];
  count: number;
  /** Owning layer's path and class. */
  layer: string;
  layerKind: string;
  role: LayerRole;
}

export interface LayerRow {
  name: string;
  /** Layer class ("CPConv3d", "SubsetInstanceNorm", ...). */
  kind: string;
  role: LayerRole;
  /** Shapes of the layer's parameters, "aModel[15,1234] aOut[…] …". */
  shapes: string;
  /** CP rank or Tucker ranks, when factorized. */
  rank: string;
  count: number;
}

export interface ParamReport {
  rows: ParamRow[];
  layers: LayerRow[];
  byRole: Record<LayerRole, number>;
  /** Inner layers without biases: the factors / kernels LARGO compresses. */
  innerWeights: number;
  total: number;
}

function factorOf(l: Layer): CPWeights | TuckerWeights | null {
  if (l instanceof FamilyLayer && (l.weights instanceof CPWeights || l.weights instanceof TuckerWeights))
    return l.weights;
  return null;
}

export function paramReport(model: Module): ParamReport {
  const rows: ParamRow[] = [];
  if (model instanceof Layer) {
    for (const p of model.parameterInfo()) {
      rows.push({
        name: p.name,
        kind: p.kind,
        shape: [...p.tensor.shape],
        count: p.tensor.size,
        layer: p.layerPath,
        layerKind: p.layer.kind,
        role: p.layer.role,
      });
    }
  } else {
    for (const [name, t] of model.namedParameters()) {
      rows.push({
        name,
        kind: 'param',
        shape: [...t.shape],
        count: t.size,
        layer: name.split('.').slice(0, -1).join('.'),
        layerKind: '?',
        role: 'inner',
      });
    }
  }
  const layers: LayerRow[] = [];
  const byLayer = new Map<string, LayerRow>();
  const layerObjs = model instanceof Layer ? new Map(model.namedLayers()) : new Map<string, Layer>();
  for (const r of rows) {
    let l = byLayer.get(r.layer);
    if (!l) {
      const obj = layerObjs.get(r.layer);
      const f = obj ? factorOf(obj) : null;
      const rank =
        f instanceof CPWeights ? String(f.rank) : f instanceof TuckerWeights ? `${f.ranks.out}×${f.ranks.in}` : '';
      l = { name: r.layer, kind: r.layerKind, role: r.role, shapes: '', rank, count: 0 };
      byLayer.set(r.layer, l);
      layers.push(l);
    }
    const short = r.name.slice(r.layer ? r.layer.length + 1 : 0);
    l.shapes += `${l.shapes ? ' ' : ''}${short}[${r.shape.join(',')}]`;
    l.count += r.count;
  }
  const byRole: Record<LayerRole, number> = { stem: 0, inner: 0, head: 0, norm: 0, container: 0 };
  let innerWeights = 0,
    total = 0;
  for (const r of rows) {
    byRole[r.role] += r.count;
    total += r.count;
    if (r.role === 'inner' && r.kind !== 'bias') innerWeights += r.count;
  }
  return { rows, layers, byRole, innerWeights, total };
}

const fmt = (n: number): string => n.toLocaleString('en-US');

/** Markdown table: one row per layer (or per parameter), then totals by role. */
export function paramTable(report: ParamReport, opts: { perParameter?: boolean } = {}): string {
  const lines: string[] = [];
  if (opts.perParameter) {
    lines.push('| parameter | kind | layer | role | shape | count |', '|---|---|---|---|---|---:|');
    for (const r of report.rows)
      lines.push(`| ${r.name} | ${r.kind} | ${r.layerKind} | ${r.role} | [${r.shape.join(', ')}] | ${fmt(r.count)} |`);
  } else {
    lines.push('| layer | kind | role | rank | parameters | count |', '|---|---|---|---:|---|---:|');
    for (const l of report.layers)
      lines.push(`| ${l.name || '(root)'} | ${l.kind} | ${l.role} | ${l.rank} | ${l.shapes} | ${fmt(l.count)} |`);
  }
  lines.push('', '| role | count |', '|---|---:|');
  for (const role of ['stem', 'inner', 'head', 'norm'] as const)
    lines.push(`| ${role} | ${fmt(report.byRole[role])} |`);
  lines.push(`| inner (without biases) | ${fmt(report.innerWeights)} |`);
  lines.push(`| **total** | **${fmt(report.total)}** |`);
  return lines.join('\n') + '\n';
}
