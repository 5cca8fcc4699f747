/**
 * Turning stream items into images: each item's pixels go through its task's train or test transform.
 */
import { Rng } from '../util/rng.ts';
import { fnv1a } from './cache.ts';
import type { Image, StreamItem, StreamTask } from './types.ts';

/**
 * A generator seeded by the item's identity (dataset, split, index, task): test transforms with random steps
 * (e.g. blur σ) give every test image a fixed draw, identical in every evaluation and run.
 */
export function itemRng(item: StreamItem): Rng {
  return new Rng(fnv1a(`${item.dataset.name}/${item.dataset.split}#${item.index}@${item.task}`));
}

/**
 * The transformed images of `items`, in order. Training items (`train = true`) use their task's
 * `trainTransform` with draws from `rng` (so the rng state determines the augmentation); test items use the
 * task's `testTransform` with `itemRng(item)` (deterministic, `rng` is not touched).
 */
export function materialize(items: readonly StreamItem[], tasks: readonly StreamTask[], train: boolean, rng: Rng): Image[] {
  const byId = new Map(tasks.map((t) => [t.id, t]));
  return items.map((it) => {
    const task = byId.get(it.task);
    if (!task) throw new Error(`materialize: item of task ${it.task} but the stream has no such task`);
    const img = it.dataset.image(it.index);
    return train ? task.trainTransform(img, rng) : task.testTransform(img, itemRng(it));
  });
}

/** The global labels of `items` as an Int32Array. */
export function labelsOf(items: readonly StreamItem[]): Int32Array {
  return Int32Array.from(items, (it) => it.label);
}
