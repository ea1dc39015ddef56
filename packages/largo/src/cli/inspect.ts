import { inspectPath } from '@largo/datasets';
import { parse, UsageError } from './common.js';

export const INSPECT_HELP = `largo inspect — describe a NIfTI file or a data folder

Usage: largo inspect PATH

For a NIfTI file: header, shape, spacing, affine, value range and, for label
maps, the label values with voxel counts (values outside the BraTS/ISLES set
are reported). For a folder: the detected layout (BraTS / ISLES), the cases,
their modalities and what is missing.

Options:
  -h, --help               this help`;

export async function inspectCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse('inspect', argv, { help: { type: 'boolean', short: 'h' } }, true);
  if (values['help']) {
    console.log(INSPECT_HELP);
    return 0;
  }
  if (positionals.length !== 1) throw new UsageError(`inspect: expects exactly one PATH (see 'largo inspect --help')`);
  console.log(await inspectPath(positionals[0]!));
  return 0;
}
