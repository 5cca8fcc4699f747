/**
 * Domain and multi-dataset streams: each task is one dataset (optionally one sample part of it) seen through
 * that task's transform.
 *
 * - `domain`: all tasks share one label space (the first task's classes; every task's dataset must have the
 *   same class count), e.g. rotated MNIST 0/45/90/… or blurred copies: the FCP-Rot-Seq / FCP-Blur-Seq pattern
 *   with shared labels.
 * - `multi-dataset` (MTIL): task i's labels are offset by the class counts of tasks 0..i−1; class names are
 *   concatenated (names may repeat, as CM-MoE's rotated copies do) and templates follow each label's dataset.
 *
 * Each task's training items are shuffled with the seed; its test items are the test split (same part) with
 * the task's deterministic test transform.
 */
import { classSubsetOf } from '../../pretrain/classes.ts';
import { Rng } from '../../util/rng.ts';
import { MTIL_ORDER_I, MTIL_ORDER_II } from '../registry.ts';
import type { Dataset, StreamItem } from '../types.ts';
import {
  BuiltStream,
  computeClasses,
  DatasetCache,
  loadSplits,
  makeItems,
  makeTask,
  normaliseRef,
  partIndices,
  taskTransforms,
  type BuildOptions,
} from './common.ts';
import type { DomainSpec, MultiDatasetSpec, SetsSpec, TaskSource } from './spec.ts';

export function taskName(src: TaskSource, dsName: string): string {
  if (src.name) return src.name;
  const parts = [dsName];
  if (src.rotate !== undefined) parts.push(`rot=${src.rotate}`);
  if (src.blur !== undefined) parts.push(`blur=${src.blur}`);
  if (src.part) parts.push(`part=${src.part.index}/${src.part.of}`);
  return parts.join(' ');
}

function allIndices(ds: Dataset): number[] {
  return Array.from({ length: ds.length }, (_, i) => i);
}

export interface LoadedTask {
  src: TaskSource;
  train: Dataset;
  test: Dataset;
  trainIdx: number[];
  testIdx: number[];
  /** Dataset label → task label (position in the class subset), −1 when not selected. */
  labelMap: Int32Array;
  /** Class names in task-label order. */
  names: string[];
}

/** The dataset labels a task's `classes` option selects (ascending), or all labels. */
function selectedLabels(src: TaskSource, ds: Dataset): number[] {
  const C = ds.classNames.length;
  if (src.classes === undefined) return Array.from({ length: C }, (_, k) => k);
  if (Array.isArray(src.classes)) {
    const bad = src.classes.filter((c) => c >= C);
    if (bad.length) throw new Error(`task ${taskName(src, ds.name)}: classes ${bad.join(', ')} are out of range (${ds.name} has ${C} classes)`);
    return [...new Set(src.classes)].sort((a, b) => a - b);
  }
  return classSubsetOf(ds, src.classes);
}

export async function loadTasks(
  sources: TaskSource[],
  spec: DomainSpec | MultiDatasetSpec | SetsSpec,
  opts: BuildOptions,
): Promise<LoadedTask[]> {
  const cache = new DatasetCache(opts);
  const out: LoadedTask[] = [];
  for (const src of sources) {
    const { train, test } = await loadSplits(cache, normaliseRef(src.dataset), spec);
    const C = train.classNames.length;
    const keep = selectedLabels(src, train);
    const labelMap = new Int32Array(C).fill(-1);
    keep.forEach((y, k) => (labelMap[y] = k));
    const inSubset = (ds: Dataset) => (i: number) => labelMap[ds.labels[i]!]! >= 0;
    out.push({
      src,
      train,
      test,
      trainIdx: (src.part ? partIndices(train.labels, C, src.part) : allIndices(train)).filter(inSubset(train)),
      testIdx: (src.part ? partIndices(test.labels, C, src.part) : allIndices(test)).filter(inSubset(test)),
      labelMap,
      names: keep.map((y) => train.classNames[y]!),
    });
  }
  return out;
}

function assemble(
  loaded: LoadedTask[],
  spec: DomainSpec | MultiDatasetSpec,
  offsets: number[],
): { drafts: { train: StreamItem[]; test: StreamItem[] }[]; transforms: ReturnType<typeof taskTransforms>[] } {
  const rng = new Rng(spec.seed);
  const transforms = loaded.map((l) => taskTransforms(l.src, spec));
  const drafts = loaded.map((l, t) => {
    const off = offsets[t]!;
    return {
      train: rng.shuffle(makeItems(l.train, l.trainIdx, t, (y) => l.labelMap[y]! + off)),
      test: makeItems(l.test, l.testIdx, t, (y) => l.labelMap[y]! + off),
    };
  });
  return { drafts, transforms };
}

function facts(loaded: LoadedTask[], transforms: ReturnType<typeof taskTransforms>[], offsets: number[]) {
  return {
    taskDatasets: loaded.map((l) => l.train.name),
    labelOffsets: offsets,
    trainTransforms: transforms.map((t) => t.train),
    testTransforms: transforms.map((t) => t.test),
  };
}

export async function buildDomain(spec: DomainSpec, opts: BuildOptions): Promise<BuiltStream> {
  const loaded = await loadTasks(spec.tasks, spec, opts);
  const first = loaded[0]!;
  const C = first.names.length;
  for (const l of loaded) {
    for (const ds of [l.train, l.test]) {
      const n = l.src.classes === undefined ? ds.classNames.length : l.names.length;
      if (n !== C) {
        throw new Error(
          `domain stream: ${ds.name}/${ds.split} has ${n} classes but ${first.train.name} has ${C}; domain tasks share one label space`,
        );
      }
    }
  }
  const offsets = loaded.map(() => 0);
  const { drafts, transforms } = assemble(loaded, spec, offsets);
  const cls = computeClasses(drafts);
  const tasks = drafts.map((d, t) =>
    makeTask(t, taskName(loaded[t]!.src, loaded[t]!.train.name), d.train, d.test, cls[t]!, transforms[t]!.trainFn, transforms[t]!.testFn),
  );
  return new BuiltStream('domain', [...first.names], tasks, () => first.train.templates, facts(loaded, transforms, offsets), spec);
}

export async function buildMultiDataset(spec: MultiDatasetSpec, opts: BuildOptions): Promise<BuiltStream> {
  const list =
    spec.datasets === 'mtil-order-1' ? [...MTIL_ORDER_I] : spec.datasets === 'mtil-order-2' ? [...MTIL_ORDER_II] : spec.datasets;
  const loaded = await loadTasks(list.map((t) => (typeof t === 'string' ? { dataset: t } : t)), spec, opts);
  const offsets: number[] = [];
  const classNames: string[] = [];
  const owner: number[] = [];
  loaded.forEach((l, t) => {
    if (l.test.classNames.length !== l.train.classNames.length) {
      throw new Error(`${l.train.name}: train and test splits have different class counts`);
    }
    offsets.push(classNames.length);
    for (const n of l.names) {
      classNames.push(n);
      owner.push(t);
    }
  });
  const { drafts, transforms } = assemble(loaded, spec, offsets);
  const cls = computeClasses(drafts);
  const tasks = drafts.map((d, t) => {
    // a task's classes are its dataset's whole label range, whether or not a limit left samples of each
    const l = loaded[t]!;
    const range = Array.from({ length: l.names.length }, (_, k) => k + offsets[t]!);
    return makeTask(t, taskName(l.src, l.train.name), d.train, d.test, { classes: cls[t]!.classes, newClasses: range }, transforms[t]!.trainFn, transforms[t]!.testFn);
  });
  return new BuiltStream('multi-dataset', classNames, tasks, (label) => loaded[owner[label]!]!.train.templates, facts(loaded, transforms, offsets), spec);
}
