/** The BraTS and ISLES file layouts: modality names and their filename suffixes. No Node imports. */

export type Layout = 'brats' | 'isles';

export interface LayoutSpec {
  /** canonical modality name → accepted filename suffixes (lower case) */
  aliases: Record<string, string[]>;
  /** suffixes of the label file */
  labelSuffixes: string[];
  /** default modality order */
  modalities: string[];
}

export const LAYOUTS: Readonly<Record<Layout, LayoutSpec>> = {
  brats: {
    aliases: { flair: ['flair'], t1: ['t1'], t1ce: ['t1ce', 't1post', 't1gd', 't1c'], t2: ['t2'] },
    labelSuffixes: ['seg'],
    modalities: ['flair', 't1', 't1ce', 't2'],
  },
  isles: {
    aliases: { dwi: ['dwi'], adc: ['adc'], flair: ['flair'] },
    labelSuffixes: ['msk', 'mask', 'lesion'],
    modalities: ['dwi', 'adc', 'flair'],
  },
};
