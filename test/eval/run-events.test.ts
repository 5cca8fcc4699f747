/** Boundary detection and memory reports on hand-written event logs. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { boundaryReport, ddasTraceReport, memoryReport, type LoggedEvent } from '../../src/eval/run-events.ts';

/** Batches of 10 over tasks of the given sizes; `flags[i]` marks batch i (0-based) with a boundary kind. */
function batches(taskSizes: number[], flags: Record<number, string>): LoggedEvent[] {
  const out: LoggedEvent[] = [];
  let seen = 0;
  let i = 0;
  taskSizes.forEach((size, task) => {
    for (let s = 0; s < size; s += 10) {
      seen += 10;
      out.push({ type: 'batch', task, n: 10, samplesSeen: seen, ...(flags[i] ? { info: { boundary: flags[i]! } } : {}) });
      i++;
    }
  });
  return out;
}

test('boundaryReport: true boundaries at 30 and 60; detections matched with their delay, the rest false', () => {
  // tasks of 30, 30, 40 samples → true boundaries before samples 30 and 60 (batches 3 and 6)
  // detections on batches 4 (starts at 40: 10 samples after 30), 5 (a second one for the same boundary: false),
  // 6 (starts at 60: the new task's first batch, delay 0) and 1 (starts at 10, before any boundary: false)
  const r = boundaryReport(batches([30, 30, 40], { 1: 'new', 4: 'new', 5: 'new', 6: 'reenter' }));
  assert.deepEqual(r, {
    trueBoundaries: 2,
    detected: 4,
    matched: 2,
    missed: 0,
    falseBoundaries: 2,
    meanDelaySamples: 5,
    maxDelaySamples: 10,
    kinds: ['new', 'new', 'new', 'reenter'],
  });
});

test('boundaryReport: a detection late enough to pass the next boundary matches the next one; no detection → missed', () => {
  // boundaries at 30 and 60; one detection on batch 7 (starts at 70) → matches 60 (delay 10); 30 is missed
  const r = boundaryReport(batches([30, 30, 40], { 7: 'new' }));
  assert.equal(r.matched, 1);
  assert.equal(r.missed, 1);
  assert.equal(r.falseBoundaries, 0);
  assert.equal(r.meanDelaySamples, 10);
  const none = boundaryReport(batches([50], {}));
  assert.deepEqual([none.trueBoundaries, none.detected, none.meanDelaySamples], [0, 0, null]);
});

test('memoryReport: peak over the run, spread over the last half of the stream', () => {
  const ev: LoggedEvent[] = [
    { type: 'cost', samplesSeen: 0, rssMB: 100 },
    { type: 'batch', samplesSeen: 10 },
    { type: 'cost', samplesSeen: 40, rssMB: 900 }, // first half: counts for the peak only
    { type: 'cost', samplesSeen: 50, rssMB: 400 }, // 50 ≥ 100 / 2: last half
    { type: 'cost', samplesSeen: 80, rssMB: 440 },
    { type: 'cost', samplesSeen: 100, rssMB: 420 },
  ];
  assert.deepEqual(memoryReport(ev), { points: 5, peakMB: 900, lastHalfMinMB: 400, lastHalfMaxMB: 440, lastHalfSpread: 0.1 });
  assert.deepEqual(memoryReport([{ type: 'batch' }]), { points: 0, peakMB: null, lastHalfMinMB: null, lastHalfMaxMB: null, lastHalfSpread: null });
});

test('ddasTraceReport: per boundary, the previous autoencoder on the new task’s first k batches over its own last k', () => {
  const ev = (task: number, errs: Record<string, number>): LoggedEvent => ({ type: 'batch', task, n: 4, samplesSeen: 0, info: Object.fromEntries(Object.entries(errs).map(([s, v]) => [`ddasErr:${s}`, v])) });
  const events = [ev(0, {}), ev(0, { 0: 0.5 }), ev(0, { 0: 0.3 }), ev(0, { 0: 0.1 }), ev(1, { 0: 0.4, 1: 0.9 }), ev(1, { 0: 0.2 }), ev(1, { 0: 9 })];
  // k = 2: own tail mean(0.3, 0.1) = 0.2; next mean(0.4, 0.2) = 0.3 → 1.5
  const [b] = ddasTraceReport(events, 2);
  assert.equal(b!.task, 1);
  assert.ok(Math.abs(b!.ownTail! - 0.2) < 1e-15 && Math.abs(b!.next! - 0.3) < 1e-15 && Math.abs(b!.ratio! - 1.5) < 1e-12);
  assert.deepEqual(ddasTraceReport([ev(0, {}), ev(1, {})]), [{ task: 1, ownTail: null, next: null, ratio: null }], 'an untraced run has no ratios');
  assert.throws(() => ddasTraceReport(events, 0), /ddasTraceReport\.k: expected a positive integer/);
});
