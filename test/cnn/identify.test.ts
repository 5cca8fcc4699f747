/** Task identification rules of the CNN track (src/cnn/identify.ts), by hand. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { identify, thresholdFrom, Thresholds } from '../../src/cnn/identify.ts';

test('thresholdFrom: ≤ 2 values 0.95 × mean; 3..window the minimum without the first; more the minimum of the last window; floor', () => {
  assert.equal(thresholdFrom([]), 0.15);
  assert.ok(Math.abs(thresholdFrom([0.6, 0.8]) - 0.665) < 1e-12);
  assert.equal(thresholdFrom([0.1, 0.5, 0.7, 0.4]), 0.4);
  assert.equal(thresholdFrom([0.1, 0.5, 0.7, 0.4, 0.6, 0.9]), 0.4);
  assert.equal(thresholdFrom([0.1, 0.2, 0.5, 0.7, 0.4, 0.6, 0.9]), 0.2);
  assert.equal(thresholdFrom([0.1, 0.2, 0.5, 0.7, 0.4, 0.6, 0.9, 0.8]), 0.4);
  assert.equal(thresholdFrom([0.05, 0.1, 0.12]), 0.15);
  assert.equal(thresholdFrom([0.3, 0.3, 0.3], 6, 0.5), 0.5);
});

test('identify: the best task claims the set when it reaches its threshold, otherwise a new task', () => {
  const th = new Map([[0, 0.5], [1, 0.3], [2, 0.9]]);
  const d = identify(new Map([[0, 0.4], [1, 0.35], [2, 0.1]]), (t) => th.get(t)!);
  assert.equal(d.task, null, 'task 0 scores best but is below its threshold');
  assert.deepEqual(d.best, { task: 0, acc: 0.4, threshold: 0.5 });
  assert.equal(identify(new Map([[0, 0.2], [1, 0.35], [2, 0.1]]), (t) => th.get(t)!).task, 1);
  assert.equal(identify(new Map(), () => 0).task, null);
  assert.equal(identify(new Map([[3, 0.5], [1, 0.5]]), () => 0.2).task, 1, 'ties: the lower id');
});

test('Thresholds: online accuracies accumulate per task, held-out thresholds after retraining, recency after unusedThreshold sets', () => {
  const t = new Thresholds({ window: 6, floor: 0.15, unusedThreshold: 2 });
  t.add(0, 0);
  for (const a of [0.1, 0.6, 0.7]) t.recordOnline(0, a);
  assert.equal(t.threshold(0), 0.6);
  t.setHeldOut(0, 0.8);
  assert.ok(Math.abs(t.threshold(0) - 0.76) < 1e-12);
  t.recordOnline(0, 0.5);
  assert.ok(Math.abs(t.threshold(0) - 0.475) < 1e-12, 'new online values replace the held-out threshold');
  t.add(1, 1);
  assert.deepEqual(t.stale(2), []);
  assert.deepEqual(t.stale(3), [0], 'task 0 was last used in set 0: unused for 3 > 2 sets');
  t.use(0, 3);
  assert.deepEqual(t.stale(4), [1]);
  t.drop(1);
  assert.throws(() => t.threshold(1), /unknown task 1/);
});
