/** The segmentation network a config describes (browser-safe: used by the CLI, training and the web page). */
import type { LargoConfig } from '../config.js';
import type { SegData } from '../train/data.js';
import type { Method } from './factory.js';
import { buildSegmentationFamily, type UNet3D } from './unet.js';

export function buildSegNet(cfg: LargoConfig, method: string, data: Pick<SegData, 'modalities' | 'classes'>): UNet3D {
  const m = cfg.model;
  return buildSegmentationFamily({
    method: method as Method,
    modalities: data.modalities.length,
    classes: data.classes,
    baseFeatures: m.baseFeatures,
    depth: m.depth,
    maxFeatures: m.maxFeatures,
    rankMultiplier: m.rankMultiplier,
    rankRule: m.rankRule,
    deepSupervision: m.deepSupervision,
    convsPerStage: m.convsPerStage,
    seed: cfg.seed,
  });
}
