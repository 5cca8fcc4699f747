/**
 * Public API of the data layer: datasets (registry + loaders), transforms, streams, replay memory, batching.
 */
export type { Dataset, Image, Stream, StreamItem, StreamKind, StreamTask, Transform } from './types.ts';
export {
  DATASETS,
  MTIL_ORDER_I,
  MTIL_ORDER_II,
  loadDataset,
  resolveDatasetName,
  resolveRoot,
  resolveSplit,
  type DatasetInfo,
  type DatasetSpec,
  type LoadOptions,
} from './registry.ts';
export { TableDataset, SubsetDataset, selectPerClass, stratifiedSplit, labelHistogram, type DatasetExtras, type PixelTable } from './dataset.ts';
export { fillTemplate } from './catalog.ts';
export {
  transformFromSpec,
  testSpecOf,
  compose,
  identityTransform,
  rotationTaskSpecs,
  blurTaskSpecs,
  TransformSpecSchema,
  TRANSFORM_STEPS,
  type TransformSpec,
  type TransformStep,
} from './transforms.ts';
export * as imageOps from './image-ops.ts';
export {
  buildStream,
  parseStreamSpec,
  StreamSpecSchema,
  taskSizes,
  siBlurryClassCounts,
  type StreamSpec,
  type StreamSpecInput,
  type BuildOptions,
} from './streams.ts';
export { createReplay, streamItemResolver, itemRef, type ReplayMemory, type ReplaySpec, type ReplayKind, type ReplayItemRef } from './replay.ts';
export { materialize, itemRng, labelsOf } from './batch.ts';
export { decodeImageFile, decodeStats } from './decode.ts';
