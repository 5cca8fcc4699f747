/**
 * Continual-learning streams: class-incremental (disjoint), Si-Blurry, domain sequences and multi-dataset
 * (MTIL). A stream is pure given its spec: the same spec and seed build the same tasks, item order and
 * transforms. See ./streams/spec.ts for the spec format and each builder for its exact rules.
 */
import type { Stream } from './types.ts';
import { buildClassIncremental } from './streams/class-incremental.ts';
import type { BuildOptions } from './streams/common.ts';
import { buildDomain, buildMultiDataset } from './streams/domain.ts';
import { buildSiBlurry } from './streams/si-blurry.ts';
import { buildSets } from './streams/sets.ts';
import { parseStreamSpec, type StreamSpec, type StreamSpecInput } from './streams/spec.ts';

export {
  StreamSpecSchema,
  parseStreamSpec,
  DatasetRefSchema,
  TaskSourceSchema,
  type StreamSpec,
  type StreamSpecInput,
  type ClassIncrementalSpec,
  type SiBlurrySpec,
  type DomainSpec,
  type MultiDatasetSpec,
  type SetsSpec,
  type DatasetRef,
  type TaskSource,
} from './streams/spec.ts';
export type { BuildOptions } from './streams/common.ts';
export { taskSizes } from './streams/class-incremental.ts';
export { siBlurryClassCounts } from './streams/si-blurry.ts';

/**
 * Validates a spec (zod, defaults filled in) and builds the stream, loading datasets through `loadDataset`
 * (or `options.loadDataset`).
 */
export async function buildStream(spec: StreamSpecInput | StreamSpec, options: BuildOptions = {}): Promise<Stream> {
  const s = parseStreamSpec(spec);
  switch (s.kind) {
    case 'class-incremental':
      return buildClassIncremental(s, options);
    case 'si-blurry':
      return buildSiBlurry(s, options);
    case 'domain':
      return buildDomain(s, options);
    case 'multi-dataset':
      return buildMultiDataset(s, options);
    case 'sets':
      return buildSets(s, options);
  }
}
