// The layering rules, checked over the sources: no import cycles inside a
// package's src; packages import each other by name only, along the arrows
// core <- autograd <- largo, core <- gpu, core <- datasets (the test-only
// @largo/test-support may import anything and nothing imports it from src);
// no relative import reaches into another package.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';

/** Which @largo packages each package's src may import. */
export const ALLOWED_DEPS: Readonly<Record<string, readonly string[]>> = {
  core: [],
  autograd: ['core'],
  gpu: ['core'],
  datasets: ['core'],
  largo: ['core', 'autograd', 'datasets', 'gpu'],
  // the browser page (private, bundled by esbuild)
  web: ['core', 'autograd', 'datasets', 'gpu', 'largo'],
};

const SPEC =
  /(?:^|[^\w.])(?:import|export)\s+(type\s+)?(?:[^'"]*?\s+from\s+)?['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/gm;

export interface ImportRef {
  spec: string;
  typeOnly: boolean;
}

/** Import specifiers of a source text (static, re-exports and literal dynamic imports). */
export function importsOf(src: string): ImportRef[] {
  const out: ImportRef[] = [];
  for (const m of src.matchAll(SPEC)) out.push({ spec: m[2] ?? m[3], typeOnly: !!m[1] });
  return out;
}

function walk(dir: string, out: string[]): void {
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name === 'dist' || name === 'fixtures') continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) out.push(p);
  }
}

/** Files of packages/<pkg>/<sub> for every package. */
export function packageFiles(root: string, sub: 'src' | 'test'): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const pkg of readdirSync(join(root, 'packages'))) {
    const dir = join(root, 'packages', pkg, sub);
    try {
      if (!statSync(dir).isDirectory()) continue;
    } catch {
      continue;
    }
    const files: string[] = [];
    walk(dir, files);
    out.set(pkg, files);
  }
  return out;
}

/** Strongly connected components with more than one file (or a self-import): the import cycles. */
export function findCycles(graph: ReadonlyMap<string, readonly string[]>): string[][] {
  let index = 0;
  const idx = new Map<string, number>(),
    low = new Map<string, number>(),
    onStack = new Set<string>(),
    stack: string[] = [];
  const cycles: string[][] = [];
  const visit = (v: string): void => {
    idx.set(v, index);
    low.set(v, index);
    index++;
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
    }
    if (low.get(v) === idx.get(v)) {
      const comp: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        comp.push(w);
      } while (w !== v);
      if (comp.length > 1 || (graph.get(v) ?? []).includes(v)) cycles.push(comp.sort());
    }
  };
  for (const v of graph.keys()) if (!idx.has(v)) visit(v);
  return cycles;
}

/** Every layering problem of the repository at `root`, one line each. */
export function layeringProblems(root: string): string[] {
  const problems: string[] = [];
  const pkgOf = (file: string) => relative(join(root, 'packages'), file).split(sep)[0];
  const graph = new Map<string, string[]>();
  for (const sub of ['src', 'test'] as const) {
    for (const [pkg, files] of packageFiles(root, sub)) {
      for (const file of files) {
        const rel = relative(root, file);
        const edges: string[] = [];
        for (const { spec, typeOnly } of importsOf(readFileSync(file, 'utf8'))) {
          if (spec.startsWith('.')) {
            const target = resolve(dirname(file), spec).replace(/\.js$/, '.ts');
            if (pkgOf(target) !== pkg || !target.startsWith(join(root, 'packages'))) {
              problems.push(`${rel}: relative import '${spec}' reaches into another package (import it by name)`);
            } else if (sub === 'src' && !typeOnly) edges.push(target);
          } else if (spec.startsWith('@largo/')) {
            const dep = spec.slice('@largo/'.length).split('/')[0];
            if (sub === 'src' && dep !== pkg && !(ALLOWED_DEPS[pkg] ?? []).includes(dep) && pkg !== 'test-support') {
              problems.push(
                `${rel}: imports @largo/${dep}, against the package arrows (${pkg} may import: ${(ALLOWED_DEPS[pkg] ?? []).join(', ') || 'nothing'})`,
              );
            }
          }
        }
        if (sub === 'src') graph.set(file, edges);
      }
    }
  }
  for (const c of findCycles(graph)) problems.push(`import cycle: ${c.map((f) => relative(root, f)).join(' <-> ')}`);
  return problems;
}
