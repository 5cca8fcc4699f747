/**
 * What a loader receives: the resolved root folder, the canonical split and the caller's options.
 */
import type { Dataset } from '../types.ts';
import { selectPerClass, stratifiedSplit, SubsetDataset, TableDataset, type DatasetMeta, type PixelTable } from '../dataset.ts';

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

/** The dataset metadata of a load: its registry name, split, class names and templates. */
export function datasetMeta(ctx: LoadContext): DatasetMeta {
  return { name: ctx.name, split: ctx.split, classNames: ctx.classNames, templates: ctx.templates };
}

/**
 * The requested split of a dataset that comes as one table without an official split: `all` is the whole
 * table, `train` / `test` the deterministic stratified 80/20 split of `stratifiedSplit(labels, 0.2)` (the first
 * 80 % of each class in table order are train); then `limitPerClass`. `source` names the file or folder read.
 */
export function stratifiedSplitOfTable(ctx: LoadContext, table: PixelTable, source: string): Dataset {
  const all = new TableDataset(datasetMeta(ctx), table, { source });
  if (ctx.split === 'all') return applyLimit(all, ctx.options);
  const parts = stratifiedSplit(table.labels, 0.2);
  return applyLimit(new SubsetDataset(all, ctx.split === 'train' ? parts.train : parts.test), ctx.options);
}

/** Applies `limitPerClass` to a fully loaded dataset (array formats decode everything anyway). */
export function applyLimit(ds: Dataset, options: LoadOptions): Dataset {
  if (options.limitPerClass === undefined) return ds;
  return new SubsetDataset(ds, selectPerClass(ds.labels, options.limitPerClass, options.seed));
}
