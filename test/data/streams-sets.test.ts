/**
 * `sets` streams (the CNN track's OMCP pattern) on in-memory datasets: labels, set sizes, draws across
 * occurrences, shared tests, seeds, bad specs; a run of `ncm` on one; the presets/cnn stream sections.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildStream } from '../../src/data/streams.ts';
import type { DatasetSpec } from '../../src/data/registry.ts';
import type { Dataset } from '../../src/data/types.ts';
import { materialize } from '../../src/data/batch.ts';
import { Rng } from '../../src/util/rng.ts';
import { loadConfig, parseConfig } from '../../src/config/load.ts';
import { runExperiment } from '../../src/run/experiment.ts';
import { makeDataset, MemDataset } from '../run/fixtures.ts';

const data: Record<string, Dataset> = {
  'digits/train': makeDataset('digits', 'train', 3, 10, { seed: 1, pattern: true }),
  'digits/test': makeDataset('digits', 'test', 3, 4, { seed: 2, offset: 1000, pattern: true }),
  'objects/train': makeDataset('objects', 'train', 4, 6, { seed: 3 }),
  'objects/test': makeDataset('objects', 'test', 4, 2, { seed: 4, offset: 2000 }),
};
const opts = {
  loadDataset: async (spec: DatasetSpec): Promise<Dataset> => {
    const ds = data[`${spec.name}/${spec.split}`];
    if (!ds) throw new Error(`no fixture ${spec.name}/${spec.split}`);
    return ds;
  },
};
const spec = {
  kind: 'sets' as const,
  sources: [
    { name: 'obj', dataset: 'objects', classes: [1, 3] },
    { name: 'p0', dataset: 'digits', transform: [{ permute: 0 }] },
    { name: 'p1', dataset: 'digits', transform: [{ permute: 1 }] },
  ],
  sequence: ['obj', 'p0', 'p1', 'p0', 'p0', 'obj'],
  setSize: 9,
  seed: 5,
};

test('sets: labels per (dataset, class) in order of appearance, shared by every permutation of one dataset', async () => {
  const s = await buildStream(spec, opts);
  assert.equal(s.kind, 'sets');
  assert.deepEqual(s.tasks.map((t) => t.name), ['obj#0', 'p0#0', 'p1#0', 'p0#1', 'p0#2', 'obj#1']);
  assert.deepEqual(s.classNames, ['class1', 'class3', 'class0', 'class1', 'class2']);
  assert.deepEqual(s.tasks.map((t) => t.classes), [[0, 1], [2, 3, 4], [2, 3, 4], [2, 3, 4], [2, 3, 4], [0, 1]]);
  assert.deepEqual(s.tasks.map((t) => t.newClasses), [[0, 1], [2, 3, 4], [], [], [], []]);
  for (const t of s.tasks) assert.equal(t.train.length, 9);
});

test('sets: class-balanced draws; occurrences of a source get unused samples until it runs out; tests shared per source', async () => {
  const s = await buildStream(spec, opts);
  const keys = (i: number) => s.tasks[i]!.train.map((it) => `${it.dataset.name}:${it.index}`);
  // digits: 30 training samples; p0#0, p0#1, p0#2 take 9 each (27 < 30): all distinct
  const p0 = [...keys(1), ...keys(3), ...keys(4)];
  assert.equal(new Set(p0).size, 27);
  // class-balanced: 3 per class in every digits set
  for (const i of [1, 2, 3, 4]) {
    const per = new Map<number, number>();
    for (const it of s.tasks[i]!.train) per.set(it.label, (per.get(it.label) ?? 0) + 1);
    assert.deepEqual([...per.values()], [3, 3, 3]);
  }
  // objects with classes [1, 3]: 12 samples; obj#0 takes 9, obj#1 the other 3 then starts again
  assert.equal(new Set([...keys(0), ...keys(5)]).size, 12);
  // every occurrence of a source is tested on the same items (task = the source's first occurrence)
  assert.deepEqual(s.tasks[3]!.test, s.tasks[1]!.test);
  assert.ok(s.tasks[1]!.test.every((it) => it.task === 1));
  assert.ok(s.tasks[2]!.test.every((it) => it.task === 2));
  assert.equal(s.tasks[1]!.test.length, 12);
  // the two permutations show the same test image differently, each occurrence of one permutation alike
  const [a] = materialize([s.tasks[1]!.test[0]!], s.tasks, false, new Rng(1));
  const [b] = materialize([s.tasks[2]!.test[0]!], s.tasks, false, new Rng(1));
  assert.notDeepEqual([...a!.pixels], [...b!.pixels]);
  // deterministic by seed, different for another seed
  const again = await buildStream(spec, opts);
  assert.deepEqual(again.tasks.map((t) => t.train.map((it) => it.index)), s.tasks.map((t) => t.train.map((it) => it.index)));
  const other = await buildStream({ ...spec, seed: 6 }, opts);
  assert.notDeepEqual(other.tasks.map((t) => t.train.map((it) => it.index)), s.tasks.map((t) => t.train.map((it) => it.index)));
});

test('sets: bad specs name the field', async () => {
  await assert.rejects(() => buildStream({ ...spec, sequence: ['obj', 'nope'] }, opts), /sequence\.1.*'nope' names no source/s);
  await assert.rejects(() => buildStream({ ...spec, sources: [spec.sources[0]!, { ...spec.sources[1]!, name: 'obj' }] }, opts), /sources\.1\.name.*duplicate source name 'obj'/s);
  await assert.rejects(() => buildStream({ ...spec, setSize: 0 }, opts), /setSize/);
});

test('sets: `moeclip run` accepts the stream (config validation, runner, per-source tests) with ncm on pixels', async () => {
  const loaded = await parseConfig(
    { stream: spec, method: { name: 'ncm', size: 4 }, run: { batchSize: 4, evalPeriod: 0, evalBatchSize: 8, taskBoundaries: true, evalCandidates: 'task' } },
    { baseDir: process.cwd() },
  );
  assert.equal(loaded.config.stream.kind, 'sets');
  const stream = await buildStream(loaded.config.stream, opts);
  const { result } = await runExperiment(loaded, { stream, threads: 1, plots: false });
  assert.equal(result.samplesSeen, 6 * 9);
  const m = result.log.matrix;
  assert.equal(m.length, 6);
  // row t holds a test accuracy for every set up to t
  m.forEach((row, t) => row.forEach((a, j) => assert.equal(a === null, j > t, `matrix[${t}][${j}]`)));
  // the occurrences of one source share their test items, hence their accuracy
  assert.equal(m[5]![3], m[5]![1]);
  assert.equal(m[5]![4], m[5]![1]);
  assert.equal(m[5]![5], m[5]![0]);
});

// presets/cnn: the stream sections parse and build (on stand-in datasets of the right class counts)
const PRESETS = new URL('../../presets/cnn/', import.meta.url).pathname;
/** `perClass` square `size`×`size` images per class with `channels` channels, seeded noise. */
function square(name: string, split: string, classes: number, perClass: number, size: number, channels: 1 | 3, seed: number): Dataset {
  const rng = new Rng(seed);
  const labels = Int32Array.from({ length: classes * perClass }, (_, i) => Math.floor(i / perClass));
  const images = Array.from(labels, () => ({ width: size, height: size, channels, pixels: Uint8Array.from({ length: size * size * channels }, () => rng.int(256)) }));
  return new MemDataset(name, split, Array.from({ length: classes }, (_, c) => `${name}-${c}`), labels, images);
}
const standIn: Record<string, Dataset> = {
  'tiny-imagenet/train': square('tiny-imagenet', 'train', 200, 3, 8, 3, 7),
  'tiny-imagenet/test': square('tiny-imagenet', 'test', 200, 1, 8, 3, 8),
  'mnist/train': square('mnist', 'train', 10, 4, 7, 1, 9),
  'mnist/test': square('mnist', 'test', 10, 2, 7, 1, 10),
};
const standInOpts = {
  loadDataset: async (s: DatasetSpec): Promise<Dataset> => {
    const ds = standIn[`${s.name}/${s.split}`];
    if (!ds) throw new Error(`no stand-in for ${s.name}/${s.split}`);
    return ds;
  },
};
/** The reference's task-identity oracle: each set's index of the first set of its source. */
const oracle = (names: string[]) => names.map((n) => names.findIndex((m) => m.split('#')[0] === n.split('#')[0]));

for (const [file, sets, setSize, splits, perms] of [
  ['omtp-reduced.yaml', 9, 1000, 3, 3],
  ['omtp.yaml', 28, 5000, 10, 6],
  ['rotmnist-reduced.yaml', 9, 1000, 3, 6],
] as const) {
  test(`presets/cnn/${file}: the stream parses and builds`, async () => {
    const { config } = await loadConfig(PRESETS + file);
    assert.equal(config.stream.kind, 'sets');
    const s = await buildStream(config.stream, standInOpts);
    assert.equal(s.tasks.length, sets);
    for (const t of s.tasks) assert.equal(t.train.length, setSize);
    // every Tiny ImageNet split brings 10 labels, the MNIST variants share the 10 digits
    assert.equal(s.classNames.length, 10 * splits + 10);
    const names = s.tasks.map((t) => t.name);
    assert.equal(new Set(names.map((n) => n.split('#')[0])).size, splits + perms);
    for (const t of s.tasks) assert.equal(t.classes.length, 10);
    // a Tiny ImageNet split every third set, the MNIST variants in between
    names.forEach((n, i) => assert.equal(n.startsWith('tin'), i % 3 === 0, n));
    if (file === 'omtp.yaml') assert.deepEqual(oracle(names), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 1, 2, 12, 4, 5, 15, 7, 8, 18, 1, 2, 21, 4, 5, 24, 7, 8, 27]);
    // the images at the final resolution: 32×32 RGB for both datasets
    const [a, b] = materialize([s.tasks[0]!.test[0]!, s.tasks[1]!.test[0]!], s.tasks, false, new Rng(1));
    assert.deepEqual([a!.width, a!.height, a!.channels, b!.width, b!.height, b!.channels], [32, 32, 3, 32, 32, 3]);
  });
}
