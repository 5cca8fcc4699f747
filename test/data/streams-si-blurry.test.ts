/**
 * Si-Blurry details that follow LifeLong-CLIP's `OnlineSampler`: stochastic cut points in [0, total − 1] (the last
 * task is never empty), no draw for an empty group, task names without an index, and the facts `describe()` adds.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildStream } from '../../src/data/streams.ts';
import { randomCuts } from '../../src/data/streams/si-blurry.ts';
import type { DatasetSpec } from '../../src/data/registry.ts';
import type { Dataset } from '../../src/data/types.ts';
import { Rng } from '../../src/util/rng.ts';
import { memoryDataset } from './fixtures.ts';

test('randomCuts: inner cut points are in [0, total − 1], so the last group is never empty', () => {
  // total 1: the reference's randint(0, 1) can only give 0, so every class goes to the last group
  for (let seed = 0; seed < 20; seed++) assert.deepEqual(randomCuts(new Rng(seed), 1, 4), [0, 0, 0, 0, 1]);
  // total 2, 2 parts: the single cut is 0 or 1, never 2 (which would leave the second group empty)
  const seen = new Set<number>();
  for (let seed = 0; seed < 200; seed++) {
    const c = randomCuts(new Rng(seed), 2, 2);
    assert.equal(c.length, 3);
    assert.deepEqual([c[0], c[2]], [0, 2]);
    seen.add(c[1]!);
  }
  assert.deepEqual([...seen].sort(), [0, 1]);
  // total 5, 5 parts: sorted, within [0, 4], last group non-empty
  for (let seed = 0; seed < 200; seed++) {
    const c = randomCuts(new Rng(seed), 5, 5);
    assert.deepEqual(c, [...c].sort((a, b) => a - b));
    assert.ok(c.slice(1, -1).every((x) => x >= 0 && x <= 4), c.join(','));
    assert.ok(c[5]! - c[4]! >= 1);
  }
});

test('randomCuts of an empty group draws nothing (the reference skips the draw)', () => {
  const r = new Rng(3);
  assert.deepEqual(randomCuts(r, 0, 4), [0, 0, 0, 0, 0]);
  assert.equal(r.int(1000), new Rng(3).int(1000));
});

const data: Record<string, Dataset> = {
  'ten/train': memoryDataset('ten', 'train', [6, 6, 6, 6, 6, 6, 6, 6, 6, 6]),
  'ten/test': memoryDataset('ten', 'test', [2, 2, 2, 2, 2, 2, 2, 2, 2, 2]),
};
const opts = {
  loadDataset: async (spec: DatasetSpec): Promise<Dataset> => {
    const ds = data[`${spec.name}/${spec.split}`];
    if (!ds) throw new Error(`no fixture ${spec.name}/${spec.split}`);
    return ds;
  },
};

test('stochastic Si-Blurry: the last task always holds disjoint classes; names carry no index; describe() facts', async () => {
  // C = 10, T = 3, N = 50: disjoint = ⌊10·50/100⌋ = 5 → 3, blurry = 10 − 3 = 7 → 6, one class dropped
  for (let seed = 1; seed <= 30; seed++) {
    const s = await buildStream({ kind: 'si-blurry', dataset: 'ten', tasks: 3, n: 50, m: 10, randomNM: true, seed }, opts);
    const d = s.describe() as {
      classOrder: number[];
      disjointClasses: number[][];
      blurryClasses: number[][];
      droppedClasses: number[];
      droppedClassNames: string[];
    };
    assert.equal(d.disjointClasses.flat().length, 3);
    assert.equal(d.blurryClasses.flat().length, 6);
    assert.ok(d.disjointClasses[2]!.length >= 1, `seed ${seed}: last task has no disjoint class`);
    assert.ok(d.blurryClasses[2]!.length >= 1, `seed ${seed}: last task has no blurry class`);
    assert.ok(s.tasks[2]!.train.length > 0);
    // the dropped class is the one dataset class outside the class order, with its name
    const all = new Set(d.classOrder);
    const missing = [...Array(10).keys()].filter((c) => !all.has(c));
    assert.deepEqual(d.droppedClasses, missing);
    assert.deepEqual(d.droppedClassNames, missing.map((c) => `ten-class${c}`));
    s.tasks.forEach((t, i) => {
      assert.equal(t.name, `ten si-blurry (${d.disjointClasses[i]!.length} disjoint, ${d.blurryClasses[i]!.length} blurry classes)`);
    });
  }
});
