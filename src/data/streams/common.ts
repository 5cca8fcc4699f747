/**
 * Shared pieces of the stream builders: dataset loading (memoised per build), items, transforms and the
 * `Stream` object with its JSON description.
 */
import type { Rng } from '../../util/rng.ts';
import { loadDataset as registryLoad, type DatasetSpec, type LoadOptions } from '../registry.ts';
import { testSpecOf, transformFromSpec, rotationTaskSpecs, blurTaskSpecs, type TransformSpec } from '../transforms.ts';
import type { Dataset, Stream, StreamItem, StreamKind, StreamTask, Transform } from '../types.ts';
import type { DatasetRef, TaskSource } from './spec.ts';

/** Hooks for building streams (tests inject in-memory datasets; the CLI passes progress callbacks). */
export interface BuildOptions {
  /** Replaces the registry loader. */
  loadDataset?: (spec: DatasetSpec) => Promise<Dataset>;
  /** Options passed to every dataset load (cache folder, progress, warnings). */
  datasetOptions?: LoadOptions;
}

export interface NormalisedRef {
  name: string;
  root?: string;
  trainSplit: string;
  testSplit: string;
  imageSize?: number;
}

export function normaliseRef(ref: DatasetRef): NormalisedRef {
  if (typeof ref === 'string') return { name: ref, trainSplit: 'train', testSplit: 'test' };
  return {
    name: ref.name,
    trainSplit: ref.trainSplit ?? 'train',
    testSplit: ref.testSplit ?? 'test',
    ...(ref.root !== undefined ? { root: ref.root } : {}),
    ...(ref.imageSize !== undefined ? { imageSize: ref.imageSize } : {}),
  };
}

/** Loads datasets once per (name, root, split, limit, size) during one build. */
export class DatasetCache {
  private readonly memo = new Map<string, Promise<Dataset>>();
  constructor(private readonly opts: BuildOptions) {}

  load(ref: NormalisedRef, which: 'train' | 'test', limitPerClass: number | undefined): Promise<Dataset> {
    const split = which === 'train' ? ref.trainSplit : ref.testSplit;
    const spec: DatasetSpec = {
      ...this.opts.datasetOptions,
      name: ref.name,
      split,
      ...(ref.root !== undefined ? { root: ref.root } : {}),
      ...(ref.imageSize !== undefined ? { imageSize: ref.imageSize } : {}),
      ...(limitPerClass !== undefined ? { limitPerClass } : {}),
    };
    const key = JSON.stringify([ref.name, ref.root ?? null, split, limitPerClass ?? null, ref.imageSize ?? null]);
    let p = this.memo.get(key);
    if (!p) {
      p = (this.opts.loadDataset ?? registryLoad)(spec);
      this.memo.set(key, p);
    }
    return p;
  }
}

/** The per-class sample limits of a stream spec (quick runs). */
export interface SplitLimits {
  limitPerClass?: number | undefined;
  testLimitPerClass?: number | undefined;
}

/** The train and test splits of one dataset reference, each with its per-class limit. */
export async function loadSplits(cache: DatasetCache, ref: NormalisedRef, limits: SplitLimits): Promise<{ train: Dataset; test: Dataset }> {
  const train = await cache.load(ref, 'train', limits.limitPerClass);
  const test = await cache.load(ref, 'test', limits.testLimitPerClass);
  return { train, test };
}

/** The dataset of a single-dataset stream (class-incremental, Si-Blurry): its normalised reference and both splits. */
export async function loadStreamDataset(
  spec: SplitLimits & { dataset: DatasetRef },
  opts: BuildOptions,
): Promise<{ ref: NormalisedRef; train: Dataset; test: Dataset }> {
  const ref = normaliseRef(spec.dataset);
  return { ref, ...(await loadSplits(new DatasetCache(opts), ref, spec)) };
}

/** Global labels by position: dataset label `order[i]` becomes `i` (only labels in `order` are mapped). */
export function labelByPosition(order: readonly number[]): (y: number) => number {
  const globalOf = new Map(order.map((c, i) => [c, i]));
  return (y) => globalOf.get(y)!;
}

/** Indices of `labels` grouped by class (dataset order within a class). */
export function indicesByClass(labels: Int32Array, numClasses: number): number[][] {
  const out: number[][] = Array.from({ length: numClasses }, () => []);
  labels.forEach((y, i) => out[y]?.push(i));
  return out;
}

/**
 * Sample split `index` of `of`: within every class the samples (dataset order) are cut into `of` contiguous
 * chunks, chunk k being [⌊k·n/of⌋, ⌊(k+1)·n/of⌋). Returns ascending indices.
 */
export function partIndices(labels: Int32Array, numClasses: number, part: { index: number; of: number }): number[] {
  const out: number[] = [];
  for (const list of indicesByClass(labels, numClasses)) {
    const n = list.length;
    out.push(...list.slice(Math.floor((part.index * n) / part.of), Math.floor(((part.index + 1) * n) / part.of)));
  }
  return out.sort((a, b) => a - b);
}

/** The indices of every sample of `classes`, ascending, from per-class index lists (see {@link indicesByClass}). */
export function indicesOfClasses(byClass: readonly number[][], classes: readonly number[]): number[] {
  return classes.flatMap((c) => byClass[c]!).sort((a, b) => a - b);
}

/** Stream items for dataset indices, labelled by `label(datasetLabel)`. */
export function makeItems(ds: Dataset, indices: readonly number[], task: number, label: (y: number) => number): StreamItem[] {
  return indices.map((index) => ({ dataset: ds, index, label: label(ds.labels[index]!), task }));
}

/** The train and test transforms of a task from its own steps and the stream-level ones. */
export function taskTransforms(
  task: Partial<TaskSource>,
  stream: { trainTransform?: TransformSpec | undefined; testTransform?: TransformSpec | undefined },
): { train: TransformSpec; test: TransformSpec; trainFn: Transform; testFn: Transform } {
  const train: TransformSpec = [];
  const test: TransformSpec = [];
  if (task.rotate !== undefined) {
    const r = rotationTaskSpecs(task.rotate, { jitter: task.jitter ?? 10 });
    // the shortcut contributes the rotation only; crop/flip augmentation is the stream's trainTransform
    train.push(r.train[0]!);
    test.push(...r.test);
  }
  if (task.blur !== undefined && task.blur > 0) {
    const b = blurTaskSpecs(task.blur);
    test.push(...b.test);
    train.push(...b.test);
  }
  const own = task.trainTransform ?? task.transform ?? [];
  train.push(...own);
  test.push(...(task.testTransform ?? testSpecOf(task.transform ?? [])));
  train.push(...(stream.trainTransform ?? []));
  test.push(...(stream.testTransform ?? testSpecOf(stream.trainTransform ?? [])));
  return { train, test, trainFn: transformFromSpec(train), testFn: transformFromSpec(test) };
}

/** Fills `classes` (labels present in train) and `newClasses` (first seen in this task) in stream order. */
export function computeClasses(tasks: { train: StreamItem[] }[]): { classes: number[]; newClasses: number[] }[] {
  const seen = new Set<number>();
  return tasks.map((t) => {
    const present = new Set<number>();
    const fresh: number[] = [];
    for (const it of t.train) {
      present.add(it.label);
      if (!seen.has(it.label)) {
        seen.add(it.label);
        fresh.push(it.label);
      }
    }
    return { classes: [...present].sort((a, b) => a - b), newClasses: fresh.sort((a, b) => a - b) };
  });
}

/** A built stream: tasks, global class names, templates per label and a JSON description. */
export class BuiltStream implements Stream {
  constructor(
    readonly kind: StreamKind,
    readonly classNames: string[],
    readonly tasks: StreamTask[],
    private readonly templates: (label: number) => readonly string[],
    private readonly facts: Record<string, unknown>,
    private readonly spec: unknown,
  ) {}

  templatesFor(label: number): readonly string[] {
    if (!Number.isInteger(label) || label < 0 || label >= this.classNames.length) {
      throw new RangeError(`label ${label} is outside the stream's ${this.classNames.length} classes`);
    }
    return this.templates(label);
  }

  /** The spec plus derived facts (class counts, task sizes); plain JSON. */
  describe(): Record<string, unknown> {
    const tasks = this.tasks.map((t) => ({
      id: t.id,
      name: t.name,
      train: t.train.length,
      test: t.test.length,
      classes: t.classes.length,
      newClasses: t.newClasses ?? [],
    }));
    return JSON.parse(
      JSON.stringify({
        kind: this.kind,
        spec: this.spec,
        numClasses: this.classNames.length,
        numTasks: this.tasks.length,
        totalTrain: tasks.reduce((a, t) => a + t.train, 0),
        totalTest: tasks.reduce((a, t) => a + t.test, 0),
        tasks,
        ...this.facts,
      }),
    ) as Record<string, unknown>;
  }
}

/** Assembles a task object. */
export function makeTask(
  id: number,
  name: string,
  train: StreamItem[],
  test: StreamItem[],
  cls: { classes: number[]; newClasses: number[] },
  trainTransform: Transform,
  testTransform: Transform,
): StreamTask {
  return { id, name, train, test, classes: cls.classes, newClasses: cls.newClasses, trainTransform, testTransform };
}

/** Shuffles a copy (seeded). */
export function shuffledCopy<T>(rng: Rng, a: readonly T[]): T[] {
  return rng.shuffle([...a]);
}

