/**
 * What a loader receives: the resolved root folder, the canonical split and the caller's options.
 */
import type { Dataset } from '../types.ts';
import { selectPerClass, SubsetDataset } from '../dataset.ts';

/** Options of a dataset load (see `DatasetSpec` in ../registry.ts, which adds `name`, `root`, `split`). */
export interface LoadOptions {
  /** Keep at most this many samples per class (first ones in dataset order, or a seeded random choice). */
  limitPerClass?: number;
  /** Seed for the `limitPerClass` choice; without it the first samples of each class are kept. */
  seed?: number;
  /** Image-file datasets: resize the shorter side to this size and centre-crop a square while decoding. */
  imageSize?: number;
  /** Use the decoded-pixel cache (default true). */
  cache?: boolean;
  /** Force the folder of cache files. */
  cacheDir?: string;
  /** Cache folder used when the data folder is read-only (default `.data/cache` under the working directory). */
  fallbackCacheDir?: string;
  /** Progress of long decodes (done, total). */
  onProgress?: (done: number, total: number) => void;
  /** Non-fatal problems (e.g. a cache that could not be written). */
  onWarning?: (message: string) => void;
}

/** The resolved request a loader works on. */
export interface LoadContext {
  /** Registry name. */
  name: string;
  /** Absolute folder (or file, for single-file datasets) to read. */
  root: string;
  /** Canonical split name (aliases resolved). */
  split: string;
  options: LoadOptions;
  classNames: readonly string[];
  templates: readonly string[];
}

/** Applies `limitPerClass` to a fully loaded dataset (array formats decode everything anyway). */
export function applyLimit(ds: Dataset, options: LoadOptions): Dataset {
  if (options.limitPerClass === undefined) return ds;
  return new SubsetDataset(ds, selectPerClass(ds.labels, options.limitPerClass, options.seed));
}
