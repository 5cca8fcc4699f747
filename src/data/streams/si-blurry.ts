/**
 * Si-Blurry online stream (Moon et al.; as built by LifeLong-CLIP's `OnlineSampler`):
 *
 * 1. C classes, T tasks. disjoint_num = ⌊C·N/100⌋ rounded down to a multiple of T; blurry_num = C − disjoint_num
 *    rounded down to a multiple of T; the classes left over are dropped (not in the stream, not in the label space).
 * 2. A seeded permutation of the classes: the first disjoint_num are disjoint, the next blurry_num blurry.
 * 3. Fixed N/M (`randomNM: false`): disjoint and blurry classes are each cut into T equal groups; every sample
 *    goes to the task of its class; each task moves ⌊M%⌋ of its blurry-class samples to a pool; the pool is
 *    shuffled and dealt back evenly (the reference drops the |pool| mod T remainder; here it is dealt one
 *    each to the first tasks so that every sample stays in the stream).
 *    Stochastic N/M (`randomNM: true`, the true Si-Blurry): the groups are cut at T−1 sorted random points in
 *    [0, size − 1] (tasks before the last may be empty; see {@link randomCuts}); the number of blurred samples
 *    ⌊(#blurry samples)·M/100⌋ is cut the same way into chunks; task i gives min(chunk_i, its blurry samples)
 *    to the pool and gets as many back from the shuffled pool.
 *    The samples a task gives up are a random choice of its blurry samples (the reference takes the first ones
 *    in dataset order, which is random for CIFAR's shuffled files; class-sorted datasets would otherwise give
 *    up whole classes).
 * 4. Each task is shuffled. Global label = position of the class in [disjoint…, blurry…] of the permutation.
 * Test items of a task = test samples of the classes first seen in it (`newClasses`).
 * `describe()` adds `disjointClasses` / `blurryClasses` (global labels per task), `droppedClasses` (dataset labels)
 * with `droppedClassNames`, and the blurred-sample counts.
 */
import { classSubsetOf } from '../../pretrain/classes.ts';
import { Rng } from '../../util/rng.ts';
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
import type { SiBlurrySpec } from './spec.ts';

/**
 * [0, c_1, …, c_{T−1}, total] with the inner cut points sorted uniform integers in [0, total − 1], as the
 * reference draws them (`torch.randint(0, total, (T − 1,))`): groups before the last may be empty, the last one
 * never is. With `total` = 0 every cut is 0 and nothing is drawn (the reference skips the draw).
 */
export function randomCuts(rng: Rng, total: number, parts: number): number[] {
  if (total === 0) return Array<number>(parts + 1).fill(0);
  const inner = Array.from({ length: parts - 1 }, () => rng.int(total)).sort((a, b) => a - b);
  return [0, ...inner, total];
}

/** [0, k, 2k, …, total] for total divisible by parts. */
function equalCuts(total: number, parts: number): number[] {
  return Array.from({ length: parts + 1 }, (_, i) => (i * total) / parts);
}

/** The class-count rules of step 1. */
export function siBlurryClassCounts(C: number, T: number, n: number): { disjoint: number; blurry: number } {
  let disjoint = Math.floor((C * n) / 100);
  disjoint = Math.floor(disjoint / T) * T;
  let blurry = C - disjoint;
  blurry = Math.floor(blurry / T) * T;
  return { disjoint, blurry };
}

export async function buildSiBlurry(spec: SiBlurrySpec, opts: BuildOptions): Promise<BuiltStream> {
  const { ref, train, test } = await loadStreamDataset(spec, opts);
  const C = train.classNames.length;
  const T = spec.tasks;
  const rng = new Rng(spec.seed);
  // `classes`: the stream uses only this subset of the dataset's classes (e.g. Tiny ImageNet's held-out ones)
  const subset = spec.classes === undefined ? null : Array.isArray(spec.classes) ? [...new Set(spec.classes)].sort((a, b) => a - b) : classSubsetOf(train, spec.classes);
  const bad = subset?.find((c) => c >= C);
  if (bad !== undefined) throw new Error(`classes: class ${bad} does not exist (dataset has ${C})`);
  const counts = siBlurryClassCounts(subset ? subset.length : C, T, spec.n);
  const perm = subset ? rng.permutation(subset.length).map((i) => subset[i]!) : rng.permutation(C);
  const disjointAll = perm.slice(0, counts.disjoint);
  const blurryAll = perm.slice(counts.disjoint, counts.disjoint + counts.blurry);
  const dropped = perm.slice(counts.disjoint + counts.blurry);
  const used = [...disjointAll, ...blurryAll];
  const label = labelByPosition(used);

  const dCuts = spec.randomNM ? randomCuts(rng, disjointAll.length, T) : equalCuts(disjointAll.length, T);
  const bCuts = spec.randomNM ? randomCuts(rng, blurryAll.length, T) : equalCuts(blurryAll.length, T);
  const disjointGroups = Array.from({ length: T }, (_, t) => disjointAll.slice(dCuts[t], dCuts[t + 1]));
  const blurryGroups = Array.from({ length: T }, (_, t) => blurryAll.slice(bCuts[t], bCuts[t + 1]));

  const byClass = indicesByClass(train.labels, C);
  const disjointIdx = disjointGroups.map((g) => indicesOfClasses(byClass, g));
  const blurryIdx = blurryGroups.map((g) => indicesOfClasses(byClass, g));

  // how many blurry samples each task gives to (and takes back from) the pool
  let give: number[];
  if (spec.randomNM) {
    const totalBlurry = blurryIdx.reduce((a, b) => a + b.length, 0);
    const cuts = randomCuts(rng, Math.floor((totalBlurry * spec.m) / 100), T);
    give = blurryIdx.map((b, t) => Math.min(cuts[t + 1]! - cuts[t]!, b.length));
  } else {
    give = blurryIdx.map((b) => Math.floor((b.length * spec.m) / 100));
  }
  const pool: number[] = [];
  const kept = blurryIdx.map((b, t) => {
    const s = rng.shuffle([...b]);
    pool.push(...s.slice(0, give[t]));
    return s.slice(give[t]);
  });
  rng.shuffle(pool);
  let take: number[];
  if (spec.randomNM) {
    take = give;
  } else {
    const per = Math.floor(pool.length / T);
    const rest = pool.length % T;
    take = Array.from({ length: T }, (_, t) => per + (t < rest ? 1 : 0));
  }
  const received: number[][] = [];
  let p = 0;
  for (let t = 0; t < T; t++) {
    received.push(pool.slice(p, p + take[t]!));
    p += take[t]!;
  }

  const tf = taskTransforms({}, spec);
  const drafts = Array.from({ length: T }, (_, t) => ({
    train: rng.shuffle(makeItems(train, [...disjointIdx[t]!, ...kept[t]!, ...received[t]!], t, label)),
  }));
  const cls = computeClasses(drafts);
  const testByClass = indicesByClass(test.labels, C);
  const tasks = drafts.map((d, t) => {
    const dataClasses = cls[t]!.newClasses.map((g) => used[g]!);
    const testItems = makeItems(test, indicesOfClasses(testByClass, dataClasses), t, label);
    // no index in the name: the CLI numbers tasks itself ("task 1/5"), files use the 0-based id
    const name = `${ref.name} si-blurry (${disjointGroups[t]!.length} disjoint, ${blurryGroups[t]!.length} blurry classes)`;
    return makeTask(t, name, d.train, testItems, cls[t]!, tf.trainFn, tf.testFn);
  });
  return new BuiltStream(
    'si-blurry',
    used.map((c) => train.classNames[c]!),
    tasks,
    () => train.templates,
    {
      dataset: ref.name,
      classOrder: used,
      droppedClasses: dropped,
      droppedClassNames: dropped.map((c) => train.classNames[c]!),
      disjointClasses: disjointGroups.map((g) => g.map(label)),
      blurryClasses: blurryGroups.map((g) => g.map(label)),
      blurredSamples: pool.length,
      blurredPerTask: take,
      trainTransform: tf.train,
      testTransform: tf.test,
    },
    spec,
  );
}
