/**
 * Class-incremental stream with disjoint tasks: the classes, in a seeded (or given) order, are cut into
 * tasks; each task holds every training sample of its classes, shuffled with the seed.
 * Global label = position of the class in the order (so task 0 holds labels 0..k−1); `describe().classOrder`
 * maps back to dataset labels.
 */
import { classSubsetOf } from '../../pretrain/classes.ts';
import { Rng } from '../../util/rng.ts';
import type { StreamItem } from '../types.ts';
import {
  BuiltStream,
  computeClasses,
  indicesByClass,
  indicesOfClasses,
  labelByPosition,
  loadStreamDataset,
  makeItems,
  makeTask,
  taskTransforms,
  type BuildOptions,
} from './common.ts';
import type { ClassIncrementalSpec } from './spec.ts';

/** Class counts per task: `initialIncrement` then `increment` (last task takes the rest), or `tasks` near-equal groups. */
export function taskSizes(numClasses: number, spec: { tasks?: number | undefined; increment?: number | undefined; initialIncrement?: number | undefined }): number[] {
  if (spec.increment !== undefined) {
    const first = spec.initialIncrement ?? spec.increment;
    if (first > numClasses) throw new Error(`initialIncrement ${first} exceeds the ${numClasses} classes`);
    const sizes = [first];
    let left = numClasses - first;
    while (left > 0) {
      const k = Math.min(spec.increment, left);
      sizes.push(k);
      left -= k;
    }
    if (spec.tasks !== undefined && spec.tasks !== sizes.length) {
      throw new Error(`tasks = ${spec.tasks} disagrees with ${numClasses} classes split by increment (${sizes.length} tasks)`);
    }
    return sizes;
  }
  const t = spec.tasks!;
  if (t > numClasses) throw new Error(`${t} tasks need at least ${t} classes, the stream has ${numClasses}`);
  return Array.from({ length: t }, (_, i) => Math.floor(numClasses / t) + (i < numClasses % t ? 1 : 0));
}

export async function buildClassIncremental(spec: ClassIncrementalSpec, opts: BuildOptions): Promise<BuiltStream> {
  const { ref, train, test } = await loadStreamDataset(spec, opts);
  const C = train.classNames.length;
  if (test.classNames.length !== C) throw new Error(`${ref.name}: train and test splits have different class counts`);
  const rng = new Rng(spec.seed);
  let order: number[];
  if (spec.classOrder) {
    order = spec.classOrder;
    if (new Set(order).size !== order.length) throw new Error('classOrder has repeated classes');
    const bad = order.find((c) => c >= C);
    if (bad !== undefined) throw new Error(`classOrder: class ${bad} does not exist (dataset has ${C})`);
  } else if (spec.classes !== undefined) {
    // a seeded order of the chosen subset (e.g. Tiny ImageNet's held-out classes: `classes: odd`)
    const subset = Array.isArray(spec.classes) ? [...new Set(spec.classes)].sort((a, b) => a - b) : classSubsetOf(train, spec.classes);
    const bad = subset.find((c) => c >= C);
    if (bad !== undefined) throw new Error(`classes: class ${bad} does not exist (dataset has ${C})`);
    order = rng.permutation(subset.length).map((i) => subset[i]!);
  } else {
    order = rng.permutation(C);
  }
  const sizes = taskSizes(order.length, spec);
  const label = labelByPosition(order);
  const trainByClass = indicesByClass(train.labels, C);
  const testByClass = indicesByClass(test.labels, C);
  const tf = taskTransforms({}, spec);
  const drafts: { train: StreamItem[]; test: StreamItem[]; dataClasses: number[] }[] = [];
  let pos = 0;
  sizes.forEach((k, t) => {
    const dataClasses = order.slice(pos, pos + k);
    pos += k;
    const trainIdx = dataClasses.flatMap((c) => trainByClass[c]!);
    const testIdx = indicesOfClasses(testByClass, dataClasses);
    drafts.push({
      train: rng.shuffle(makeItems(train, trainIdx, t, label)),
      test: makeItems(test, testIdx, t, label),
      dataClasses,
    });
  });
  const cls = computeClasses(drafts);
  const tasks = drafts.map((d, t) => {
    // newClasses = the task's classes (so its test items cover them even if a class had no training sample)
    const c = { classes: cls[t]!.classes, newClasses: d.dataClasses.map(label).sort((a, b) => a - b) };
    const range = c.newClasses.length ? `${c.newClasses[0]}–${c.newClasses[c.newClasses.length - 1]}` : 'none';
    return makeTask(t, `${ref.name} classes ${range}`, d.train, d.test, c, tf.trainFn, tf.testFn);
  });
  return new BuiltStream(
    'class-incremental',
    order.map((c) => train.classNames[c]!),
    tasks,
    () => train.templates,
    {
      dataset: ref.name,
      classOrder: order,
      taskClasses: drafts.map((d) => d.dataClasses),
      trainTransform: tf.train,
      testTransform: tf.test,
    },
    spec,
  );
}
