/**
 * `sets` streams (the CNN track's OMCP pattern) on in-memory datasets, and the `permute` transform step.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildStream } from '../../src/data/streams.ts';
import type { DatasetSpec } from '../../src/data/registry.ts';
import type { Dataset, Image } from '../../src/data/types.ts';
import { materialize } from '../../src/data/batch.ts';
import { pixelPermutation, transformFromSpec } from '../../src/data/transforms.ts';
import { Rng } from '../../src/util/rng.ts';
import { makeDataset } from '../run/fixtures.ts';

const data: Record<string, Dataset> = {
  'digits/train': makeDataset('digits', 'train', 3, 10, { seed: 1 }),
  'digits/test': makeDataset('digits', 'test', 3, 4, { seed: 2, offset: 1000 }),
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

test('permute: a bijection of the H×W positions fixed by the seed, all channels moved alike; hand check on 2×2', () => {
  const p = pixelPermutation(0, 5, 7);
  assert.deepEqual([...p].sort((x, y) => x - y), Array.from({ length: 35 }, (_, i) => i));
  assert.deepEqual([...pixelPermutation(0, 5, 7)], [...p]);
  assert.notDeepEqual([...pixelPermutation(1, 5, 7)], [...p]);
  const img: Image = { width: 2, height: 2, channels: 3, pixels: Uint8Array.from([10, 11, 12, 20, 21, 22, 30, 31, 32, 40, 41, 42]) };
  const perm = pixelPermutation(4, 2, 2);
  const out = transformFromSpec([{ permute: 4 }])(img, new Rng(0));
  const want: number[] = [];
  for (let i = 0; i < 4; i++) for (let c = 0; c < 3; c++) want.push(img.pixels[perm[i]! * 3 + c]!);
  assert.deepEqual([...out.pixels], want);
  assert.throws(() => transformFromSpec([{ permute: -1 }]), /permute/);
});
