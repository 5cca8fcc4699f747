import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { itemRng, labelsOf, materialize } from '../../src/data/batch.ts';
import { flipHorizontal } from '../../src/data/image-ops.ts';
import { transformFromSpec } from '../../src/data/transforms.ts';
import type { StreamItem, StreamTask } from '../../src/data/types.ts';
import { Rng } from '../../src/util/rng.ts';
import { memoryDataset } from './fixtures.ts';

const ds = memoryDataset('toy', 'test', [3, 3]);
const items: StreamItem[] = [0, 1, 2, 3, 4, 5].map((index) => ({ dataset: ds, index, label: ds.labels[index]!, task: 7 }));
const task: StreamTask = {
  id: 7,
  name: 'toy',
  train: items,
  test: items,
  classes: [0, 1],
  trainTransform: transformFromSpec([{ flip: 0.5 }]),
  testTransform: transformFromSpec([{ blur: 1 }]),
};

describe('materialize', () => {
  it('training items: the rng state decides the augmentation', () => {
    const state = new Rng(3).getState();
    const a = materialize(items, [task], true, new Rng(state));
    const b = materialize(items, [task], true, new Rng(state));
    assert.deepEqual(a.map((i) => [...i.pixels]), b.map((i) => [...i.pixels]));
    const r = new Rng(state);
    items.forEach((it, k) => {
      const raw = ds.image(it.index);
      const want = r.float() < 0.5 ? flipHorizontal(raw) : raw;
      assert.deepEqual(a[k]!.pixels, want.pixels);
    });
  });

  it('test items: deterministic per item, independent of the rng passed', () => {
    const rng = new Rng(1);
    const before = rng.getState();
    const a = materialize(items, [task], false, rng);
    assert.deepEqual(rng.getState(), before);
    const b = materialize([...items].reverse(), [task], false, new Rng(99)).reverse();
    assert.deepEqual(a.map((i) => [...i.pixels]), b.map((i) => [...i.pixels]));
    items.forEach((it, k) => assert.deepEqual(a[k]!.pixels, task.testTransform(ds.image(it.index), itemRng(it)).pixels));
  });

  it('labels and unknown tasks', () => {
    assert.deepEqual([...labelsOf(items)], [0, 0, 0, 1, 1, 1]);
    assert.throws(() => materialize([{ ...items[0]!, task: 3 }], [task], true, new Rng(0)), /task 3/);
  });
});
