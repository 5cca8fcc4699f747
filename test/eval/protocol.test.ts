/**
 * The anytime-evaluation cadence and the fractional online_iter rule, on hand-worked batch sequences.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AnytimeSchedule, StepCredit, type AnytimeCadence } from '../../src/eval/protocol.ts';

/** Samples seen after each batch of a stream cut into `batches` (sizes), and where the schedule evaluates. */
function points(period: number, cadence: AnytimeCadence, batches: readonly number[]): number[] {
  const s = new AnytimeSchedule(period, cadence);
  const out: number[] = [];
  let seen = 0;
  for (const b of batches) {
    seen += b;
    if (s.due(seen)) out.push(seen);
  }
  return out;
}

const repeat = (n: number, size: number) => Array<number>(n).fill(size);

test('reference cadence: strictly past the threshold, which then grows by one period', () => {
  // period 10, batches of 4: seen 4 8 12 16 20 24 28 32
  //   reference: 12 > 10 ✓ (→ 20), 16, 20 (not > 20), 24 ✓ (→ 30), 28, 32 ✓ (→ 40)
  assert.deepEqual(points(10, 'reference', repeat(8, 4)), [12, 24, 32]);
  //   multiples: 12 ≥ 10 ✓ (→ 20), 20 ≥ 20 ✓ (→ 30), 32 ≥ 30 ✓ (→ 40)
  assert.deepEqual(points(10, 'multiples', repeat(8, 4)), [12, 20, 32]);
});

test('a stream whose length is a multiple of the period: the reference has no point at an exact multiple', () => {
  // 50 samples in batches of 10, period 10: reference evaluates at 20 (> 10), 30 (> 20), 40, 50: four points;
  // multiples at 10, 20, 30, 40, 50: five, the last one at the end of the stream (what A_last also measures)
  assert.deepEqual(points(10, 'reference', repeat(5, 10)), [20, 30, 40, 50]);
  assert.deepEqual(points(10, 'multiples', repeat(5, 10)), [10, 20, 30, 40, 50]);
  // the demo's Split-MNIST shape: 3000 samples, batches of 10, period 1000
  assert.deepEqual(points(1000, 'reference', repeat(300, 10)), [1010, 2010]);
  assert.deepEqual(points(1000, 'multiples', repeat(300, 10)), [1000, 2000, 3000]);
});

test('batches larger than the period: the reference threshold falls behind, multiples skips ahead', () => {
  // period 5, batches of 12: seen 12 24 36 48
  //   reference: 12 > 5 (→ 10), 24 > 10 (→ 15), 36 > 15 (→ 20), 48 > 20 (→ 25): every batch
  //   multiples: 12 ≥ 5 (→ 15), 24 ≥ 15 (→ 25), 36 ≥ 25 (→ 40), 48 ≥ 40 (→ 50): every batch too, thresholds differ
  const r = new AnytimeSchedule(5, 'reference');
  const m = new AnytimeSchedule(5, 'multiples');
  const rt: number[] = [];
  const mt: number[] = [];
  for (const seen of [12, 24, 36, 48]) {
    assert.equal(r.due(seen), true);
    assert.equal(m.due(seen), true);
    rt.push(r.threshold);
    mt.push(m.threshold);
  }
  assert.deepEqual(rt, [10, 15, 20, 25]);
  assert.deepEqual(mt, [15, 25, 40, 50]);
  // uneven batches (a task's partial last batch of 4): period 8, seen 6 12 16 22
  //   reference: 12 > 8 (→ 16), 16 is not > 16, 22 > 16 (→ 24); multiples: 12 ≥ 8 (→ 16), 16 ≥ 16 (→ 24), 22 < 24
  assert.deepEqual(points(8, 'reference', [6, 6, 4, 6]), [12, 22]);
  assert.deepEqual(points(8, 'multiples', [6, 6, 4, 6]), [12, 16]);
});

test('period 0 never evaluates; a schedule continues from a saved threshold; bad options name the field', () => {
  assert.deepEqual(points(0, 'reference', repeat(10, 7)), []);
  const a = new AnytimeSchedule(10, 'reference');
  a.due(12);
  a.due(24);
  const b = new AnytimeSchedule(10, 'reference', a.threshold);
  assert.equal(b.due(28), a.due(28));
  assert.equal(b.due(32), a.due(32));
  assert.equal(b.threshold, a.threshold);
  assert.throws(() => new AnytimeSchedule(-1), /run\.evalPeriod: expected an integer ≥ 0, got -1/);
  assert.throws(() => new AnytimeSchedule(10, 'often' as AnytimeCadence), /run\.anytimeCadence: expected one of reference, multiples, got 'often'/);
});

test('online_iter accumulate (CLIB credit rule, per batch) vs truncate (Si-Blurry int(online_iter))', () => {
  const seq = (c: StepCredit, n: number) => Array.from({ length: n }, () => c.next());
  assert.deepEqual(seq(new StepCredit(0.5, 'accumulate'), 6), [0, 1, 0, 1, 0, 1]);
  assert.deepEqual(seq(new StepCredit(1.5, 'accumulate'), 6), [1, 2, 1, 2, 1, 2]);
  // 0.25 → one step every fourth batch; 0.1 reaches a whole step on the 10th batch despite float rounding
  assert.deepEqual(seq(new StepCredit(0.25, 'accumulate'), 8), [0, 0, 0, 1, 0, 0, 0, 1]);
  const tenth = seq(new StepCredit(0.1, 'accumulate'), 20);
  assert.deepEqual([tenth.indexOf(1), tenth.lastIndexOf(1), tenth.reduce((a, b) => a + b, 0)], [9, 19, 2]);
  assert.deepEqual(seq(new StepCredit(3, 'accumulate'), 3), [3, 3, 3]);
  // truncate: the reference's `for _ in range(int(online_iter))`
  assert.deepEqual(seq(new StepCredit(1.5, 'truncate'), 4), [1, 1, 1, 1]);
  assert.deepEqual(seq(new StepCredit(0.5, 'truncate'), 4), [0, 0, 0, 0]);
  assert.deepEqual(seq(new StepCredit(3, 'truncate'), 2), [3, 3]);
  // continuing from a carried credit
  const c = new StepCredit(0.5, 'accumulate');
  c.next();
  assert.equal(c.credit, 0.5);
  assert.deepEqual(seq(new StepCredit(0.5, 'accumulate', c.credit), 2), [1, 0]);
  assert.throws(() => new StepCredit(0), /run\.onlineIter: expected a positive number, got 0/);
  assert.throws(() => new StepCredit(1, 'round' as 'truncate'), /run\.onlineIterRule: expected one of accumulate, truncate, got 'round'/);
});
