import { paramReport, paramTable } from '../params.js';
import { buildSegNet, buildAvNet } from '../train/experiment.js';
import { configFrom, configHelp, configOptions, parse } from './common.js';

export const PARAMS_HELP = `largo params — parameter counts of each method's network

Usage: largo params [--config FILE] [options] [--per-layer | --per-parameter]

Builds each configured method's network (no data needed) and prints the
parameters per role (stem, inner, head, norm) and in total, plus a table per
layer (--per-layer) or per tensor (--per-parameter).

Options:
${configHelp()}
  --per-layer              one row per layer (shapes, CP/Tucker ranks)
  --per-parameter          one row per parameter tensor
  --json                   machine-readable output
  -h, --help               this help`;

const PHANTOM_NAMES = ['flair', 't1', 't1ce', 't2', 'dwi'];

export async function paramsCommand(argv: string[]): Promise<number> {
  const { values } = parse('params', argv, {
    ...configOptions(),
    'per-layer': { type: 'boolean' },
    'per-parameter': { type: 'boolean' },
    json: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values['help']) {
    console.log(PARAMS_HELP);
    return 0;
  }
  // params needs no data: allow a missing data path
  const cfg = configFrom('params', {
    ...values,
    ...(values['data'] ? {} : { set: [...((values['set'] as string[]) ?? []), 'data.path="-"'] }),
  });
  const summary: Record<string, unknown>[] = [];
  const M = cfg.dataset === 'isles' ? 3 : cfg.dataset === 'phantom' ? cfg.data.phantom.modalities : 4;
  const names = cfg.dataset === 'isles' ? ['dwi', 'adc', 'flair'] : PHANTOM_NAMES.slice(0, M);
  const classes = cfg.data.labelMode === 'labels' ? (cfg.dataset === 'isles' ? 2 : 4) : cfg.dataset === 'isles' ? 1 : 3;
  for (const method of cfg.methods) {
    const net =
      cfg.dataset === 'avmnist' ? buildAvNet(cfg, method) : buildSegNet(cfg, method, { modalities: names, classes });
    try {
      const r = paramReport(net);
      summary.push({ method, total: r.total, ...r.byRole, innerWeights: r.innerWeights });
      if (!values['json']) {
        console.log(`## ${method}\n`);
        if (values['per-layer'] || values['per-parameter'])
          console.log(paramTable(r, { perParameter: Boolean(values['per-parameter']) }));
        else console.log(paramTable(r).split('\n\n').slice(-1)[0]);
      }
    } finally {
      net.dispose();
    }
  }
  if (values['json']) console.log(JSON.stringify(summary, null, 2));
  else {
    console.log('| method | stem | inner | head | norm | total |\n|---|---:|---:|---:|---:|---:|');
    for (const s of summary)
      console.log(
        `| ${String(s['method'])} | ${s['stem']} | ${s['inner']} | ${s['head']} | ${s['norm']} | ${s['total']} |`,
      );
  }
  return 0;
}
