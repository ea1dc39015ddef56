/**
 * `largo/browser`: what segmentation inference needs, without `node:` imports
 * (checkpoint bytes, config, network, subset caching, sliding-window helpers,
 * logits → labels). Used by the web page (packages/web).
 */
export {
  decodeCheckpoint,
  checkCompatible,
  restoreParams,
  CheckpointError,
  CHECKPOINT_FORMAT,
  type CheckpointData,
  type ModelDescriptor,
} from './checkpoint.js';
export { resolveConfig, ConfigError, type LargoConfig } from './config.js';
export { buildSegNet } from './nets/build.js';
export { zeroFill, prepareSubset, familyPredictor } from './infer/predict.js';
export { tileStarts, gaussianImportance, flipBlock, type SlidingWindowOptions } from './infer/sliding-window.js';
export { predLabels } from './infer/labels.js';
export * from './subsets.js';
