/**
 * `sets` streams (the CNN track's OMCP pattern): a sequence of fixed-size sets drawn from named sources that
 * recur, e.g. Tiny ImageNet splits interleaved with permuted-MNIST permutations that come back.
 *
 * - Labels: one global label per (dataset, dataset class) in order of first appearance along the sequence, so
 *   every permutation or rotation of MNIST shares the ten digit labels (a returning or a different permutation is
 *   told apart by its distribution, not its labels) while each Tiny ImageNet split brings its own labels. Class
 *   names and templates come from the dataset.
 * - Each entry of `sequence` is one runner task named `<source>#<k>` (k = occurrence of that source, from 0)
 *   with `setSize` training samples, drawn class-balanced without replacement from the source's training split
 *   (round-robin over its classes in a seeded order), continuing across the source's occurrences: occurrence k
 *   gets samples not used before; a class whose samples are used up starts again, reshuffled. The set's samples
 *   are shuffled.
 * - Tests: every occurrence of a source is tested on the source's test split (after `testLimitPerClass`), the
 *   same items each time (their `task` is the source's first occurrence), through the source's deterministic
 *   test transform. The runner keeps test items of different tasks apart, as for `domain` streams.
 */
import { Rng } from '../../util/rng.ts';
import type { StreamItem } from '../types.ts';
import { BuiltStream, makeItems, makeTask, taskTransforms, type BuildOptions } from './common.ts';
import { loadTasks } from './domain.ts';
import type { SetsSpec } from './spec.ts';

export async function buildSets(spec: SetsSpec, opts: BuildOptions): Promise<BuiltStream> {
  const loaded = await loadTasks(spec.sources, spec, opts);
  const byName = new Map(spec.sources.map((s, i) => [s.name, i]));
  // global labels per (dataset, dataset label), in order of first appearance along the sequence
  const globalOf = new Map<string, number>();
  const classNames: string[] = [];
  const templatesOf: Array<readonly string[]> = [];
  const keep = loaded.map((l) => {
    const labels: number[] = [];
    l.labelMap.forEach((k, y) => {
      if (k >= 0) labels[k] = y;
    });
    return labels;
  });
  for (const name of spec.sequence) {
    const i = byName.get(name)!;
    const l = loaded[i]!;
    for (const y of keep[i]!) {
      const key = `${l.train.name}\u0000${y}`;
      if (globalOf.has(key)) continue;
      globalOf.set(key, classNames.length);
      classNames.push(l.train.classNames[y]!);
      templatesOf.push(l.train.templates);
    }
  }
  const labelFn = (i: number) => (y: number) => globalOf.get(`${loaded[i]!.train.name}\u0000${y}`)!;
  const rng = new Rng(spec.seed);
  // per source: a queue of training indices per selected class
  const queues = loaded.map((l) => {
    const perClass = new Map<number, number[]>();
    for (const idx of l.trainIdx) {
      const y = l.train.labels[idx]!;
      const list = perClass.get(y) ?? [];
      list.push(idx);
      perClass.set(y, list);
    }
    const classes = [...perClass.keys()].sort((a, b) => a - b);
    if (classes.length === 0) throw new Error(`sets stream: source '${l.src.name}' has no training samples`);
    return { classes, pools: classes.map((y) => rng.shuffle([...perClass.get(y)!])), pos: classes.map(() => 0), next: 0 };
  });
  const transforms = loaded.map((l) => taskTransforms(l.src, spec));
  // test items carry the task of their source's first occurrence: every occurrence shares them (one transform),
  // and the runner tells items of different sources (e.g. two permutations of one MNIST image) apart by task
  const first = new Map<number, number>();
  spec.sequence.forEach((n, t) => {
    const i = byName.get(n)!;
    if (!first.has(i)) first.set(i, t);
  });
  const tests = loaded.map((l, i) => (first.has(i) ? makeItems(l.test, l.testIdx, first.get(i)!, labelFn(i)) : []));
  const occurrences = new Map<string, number>();
  const seen = new Set<number>();
  const tasks = spec.sequence.map((name, t) => {
    const i = byName.get(name)!;
    const k = occurrences.get(name) ?? 0;
    occurrences.set(name, k + 1);
    const q = queues[i]!;
    const l = loaded[i]!;
    const picked: number[] = [];
    for (let n = 0; n < spec.setSize; n++) {
      const c = q.next;
      q.next = (q.next + 1) % q.classes.length;
      if (q.pos[c]! >= q.pools[c]!.length) {
        q.pools[c] = rng.shuffle(q.pools[c]!);
        q.pos[c] = 0;
      }
      picked.push(q.pools[c]![q.pos[c]!++]!);
    }
    const train: StreamItem[] = rng.shuffle(makeItems(l.train, picked, t, labelFn(i)));
    const test = tests[i]!;
    const classes = keep[i]!.map(labelFn(i)).sort((a, b) => a - b);
    const newClasses = classes.filter((c) => !seen.has(c));
    for (const c of classes) seen.add(c);
    return makeTask(t, `${name}#${k}`, train, test, { classes, newClasses }, transforms[i]!.trainFn, transforms[i]!.testFn);
  });
  return new BuiltStream('sets', classNames, tasks, (label) => templatesOf[label]!, {
    sources: spec.sources.map((s) => s.name),
    setSize: spec.setSize,
    trainTransforms: transforms.map((t) => t.train),
    testTransforms: transforms.map((t) => t.test),
  }, spec);
}
