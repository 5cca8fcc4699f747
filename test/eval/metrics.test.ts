import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  aAuc,
  aAvg,
  aAvgTasks,
  aLast,
  bwt,
  cilAverage,
  cilLast,
  computeMetrics,
  fLast,
  forgetting,
  fwt,
  matrixMetrics,
  mtilAverage,
  mtilLast,
  mtilTransfer,
  onlineAccuracy,
  checkMatrix,
} from '../../src/eval/metrics.ts';
import { accuracy, confusionCounts, perClassAccuracy } from '../../src/eval/accuracy.ts';

const close = (a: number | null, b: number, msg?: string) => {
  assert.ok(a !== null, `${msg ?? 'value'} is null`);
  assert.ok(Math.abs(a - b) < 1e-12, `${msg ?? 'value'}: ${a} ≠ ${b}`);
};

/*
 * Hand-worked 3×3 example (rows t = after task t, columns j = task evaluated):
 *
 *         j=0   j=1   j=2
 *   t=0  0.90  0.30  0.20
 *   t=1  0.95  0.80  0.40
 *   t=2  0.60  0.50  0.85
 *
 * Transfer   = mean( col1 upper: 0.30 ; col2 upper: (0.20+0.40)/2 = 0.30 ) = 0.30
 * Average    = (0.90+0.30+0.20+0.95+0.80+0.40+0.60+0.50+0.85)/9 = 5.50/9 = 0.6111…
 * Last       = (0.60+0.50+0.85)/3 = 0.65
 * BWT        = ((0.60−0.90) + (0.50−0.80))/2 = −0.30
 * Forgetting = f0 = max(0.90, 0.95) − 0.60 = 0.35 ; f1 = 0.80 − 0.50 = 0.30 ; mean = 0.325
 *              (A[0][1] = 0.30 lies above the diagonal and is not a learned accuracy)
 * FWT, b = [0.1, 0.2, 0.1]: ((0.30−0.20) + (0.40−0.10))/2 = 0.20
 */
const A3 = [
  [0.9, 0.3, 0.2],
  [0.95, 0.8, 0.4],
  [0.6, 0.5, 0.85],
];

test('3×3 hand-computed matrix metrics', () => {
  close(mtilTransfer(A3), 0.3, 'transfer');
  close(mtilAverage(A3), 5.5 / 9, 'average');
  close(mtilLast(A3), 0.65, 'last');
  close(bwt(A3), -0.3, 'bwt');
  close(forgetting(A3), 0.325, 'forgetting');
  close(fwt(A3, [0.1, 0.2, 0.1]), 0.2, 'fwt');
  const m = matrixMetrics(A3);
  assert.deepEqual(Object.keys(m), ['transfer', 'average', 'last', 'bwt', 'forgetting']);
});

test('Transfer averages each column first (not all upper entries pooled)', () => {
  // upper entries: col1 = {0.0}, col2 = {1.0, 1.0}; column-first = (0 + 1)/2 = 0.5, pooled would be 2/3
  const A = [
    [1, 0.0, 1.0],
    [1, 1, 1.0],
    [1, 1, 1],
  ];
  close(mtilTransfer(A), 0.5);
});

test('forgetting ignores entries above the diagonal (pre-learning accuracy)', () => {
  // zero-shot A[0][1] = 0.95 is higher than anything after learning task 1; f1 uses A[1][1] = 0.8 only
  const A = [
    [0.9, 0.95],
    [0.6, 0.8],
  ];
  close(forgetting(A), 0.3); // f0 = 0.9 − 0.6 ; only j = 0 < T−1
  const B = [
    [0.9, 0.95, 0.1],
    [0.7, 0.8, 0.2],
    [0.6, 0.5, 0.9],
  ];
  // f0 = max(0.9, 0.7) − 0.6 = 0.3 ; f1 = 0.8 − 0.5 = 0.3 (not 0.95 − 0.5)
  close(forgetting(B), 0.3);
});

test('2-task edge case', () => {
  const A = [
    [0.8, 0.1],
    [0.6, 0.9],
  ];
  close(mtilTransfer(A), 0.1);
  close(mtilAverage(A), 0.6);
  close(mtilLast(A), 0.75);
  close(bwt(A), -0.2);
  close(forgetting(A), 0.2);
  close(fwt(A, [0.5, 0.05]), 0.05);
});

test('1-task edge case: transfer, bwt, forgetting, fwt are null', () => {
  const A = [[0.7]];
  assert.equal(mtilTransfer(A), null);
  close(mtilAverage(A), 0.7);
  close(mtilLast(A), 0.7);
  assert.equal(bwt(A), null);
  assert.equal(forgetting(A), null);
  assert.equal(fwt(A, [0.2]), null);
  assert.equal(fLast([{ 0: 0.5 }]), null);
});

test('lower-triangular matrix: upper-triangle metrics null, the rest defined', () => {
  const A = [
    [0.9, null, null],
    [0.8, 0.7, null],
    [0.6, 0.5, 0.4],
  ];
  assert.equal(mtilTransfer(A), null);
  assert.equal(mtilAverage(A), null);
  assert.equal(fwt(A, [0, 0, 0]), null);
  close(mtilLast(A), 0.5);
  close(bwt(A), ((0.6 - 0.9) + (0.5 - 0.7)) / 2);
  close(forgetting(A), (0.3 + 0.2) / 2);
  assert.equal(fwt(A3, null), null);
});

test('checkMatrix rejects non-square matrices', () => {
  assert.throws(() => checkMatrix([[1, 2], [3]]), /row 1 has 1 entries, expected 2/);
  assert.throws(() => checkMatrix([]), /empty/);
  assert.throws(() => fwt(A3, [0, 0]), /baseline vector has 2 entries/);
});

/*
 * F_last hand example, cls[t][c]:
 *   t=0: c0 0.9, c1 0.8
 *   t=1: c0 0.7, c1 0.85, c2 0.0, c3 0.6
 *   t=2: c0 0.5, c1 0.8,  c2 0.4, c3 0.3, c4 0.9
 * m_c = max over t < 2: c0 0.9, c1 0.85, c2 0 (never learned → excluded), c3 0.6, c4 — (not seen before → excluded)
 * F_last = ((0.9−0.5) + (0.85−0.8) + (0.6−0.3)) / 3 = 0.75/3 = 0.25
 */
test('F_last with a class never learned and a class seen only at the end', () => {
  const cls: Array<Record<number, number>> = [
    { 0: 0.9, 1: 0.8 },
    { 0: 0.7, 1: 0.85, 2: 0.0, 3: 0.6 },
    { 0: 0.5, 1: 0.8, 2: 0.4, 3: 0.3, 4: 0.9 },
  ];
  close(fLast(cls), 0.25);
  // a 2-task version: only t = 0 counts for the max
  close(fLast([{ 0: 0.6, 1: 0.0 }, { 0: 0.2, 1: 0.9 }]), 0.4);
  // no class ever learned → undefined
  assert.equal(fLast([{ 0: 0 }, { 0: 0.5 }]), null);
});

test('A_auc, A_avg, A_last, online accuracy, CIL avg/last', () => {
  // curve points at 100, 200, 300 samples: (0.5 + 0.7 + 0.6)/3
  close(
    aAuc([
      { samplesSeen: 100, accuracy: 0.5 },
      { samplesSeen: 200, accuracy: 0.7 },
      { samplesSeen: 300, accuracy: 0.6 },
    ]),
    0.6,
  );
  assert.equal(aAuc([]), null);
  close(aAvg([0.9, 0.6, 0.3]), 0.6);
  close(aLast([0.9, 0.6, 0.3]), 0.3);
  close(cilAverage([0.9, 0.6, 0.3]), 0.6);
  close(cilLast([0.9, 0.6, 0.3]), 0.3);
  assert.equal(aLast([]), null);
  // sample-weighted: (3 + 1)/(4 + 2), not the mean of 0.75 and 0.5
  close(
    onlineAccuracy([
      { correct: 3, total: 4 },
      { correct: 1, total: 2 },
    ]),
    4 / 6,
  );
  assert.equal(onlineAccuracy([]), null);
});

test('computeMetrics gathers everything and handles a missing end-of-task accuracy', () => {
  const m = computeMetrics({
    anytime: [{ samplesSeen: 10, accuracy: 0.4 }],
    taskAcc: [0.8, 0.6],
    classAcc: [{ 0: 0.8 }, { 0: 0.5, 1: 0.7 }],
    matrix: [
      [0.8, 0.2],
      [0.5, 0.7],
    ],
    online: [{ correct: 1, total: 2 }],
    baseline: [0.1, 0.1],
  });
  close(m.A_auc, 0.4);
  close(m.A_avg, 0.7);
  close(m.A_last, 0.6);
  close(m.F_last, 0.3);
  close(m.online, 0.5);
  close(m.transfer, 0.2);
  close(m.average, 0.55);
  close(m.last, 0.6);
  close(m.bwt, -0.3);
  close(m.forgetting, 0.3);
  close(m.fwt, 0.1);
  const n = computeMetrics({ anytime: [], taskAcc: [null, 0.5], classAcc: [], matrix: [], online: [] });
  close(n.A_avg, 0.5);
  close(n.A_last, 0.5);
  assert.equal(n.transfer, null);
  assert.equal(computeMetrics({ anytime: [], taskAcc: [null], classAcc: [], matrix: [], online: [] }).A_avg, null);
});

test('A_avg over the tasks with exposed classes: an empty first Si-Blurry task is left out', () => {
  // stochastic Si-Blurry, T = 4, task 0 empty: nothing exposed after it, so no end-of-task accuracy
  const taskAcc = [null, 0.9, 0.6, 0.3];
  close(aAvg(taskAcc), (0.9 + 0.6 + 0.3) / 3); // 0.6, not (0 + 0.9 + 0.6 + 0.3) / 4 = 0.45
  assert.deepEqual(aAvgTasks(taskAcc), [1, 2, 3]);
  assert.deepEqual(aAvgTasks([0.5, 0.25]), [0, 1]);
  close(aAvg([0.5, 0.25]), 0.375);
  assert.equal(aAvg([null, null]), null);
  assert.deepEqual(aAvgTasks([null, null]), []);
  const m = computeMetrics({ anytime: [], taskAcc, classAcc: [], matrix: [], online: [] });
  close(m.A_avg, 0.6);
  close(m.A_last, 0.3);
});

test('accuracy, per-class accuracy and confusion counts', () => {
  const pred = [0, 1, 1, 2, -1, 0];
  const y = [0, 1, 2, 2, 2, 1];
  close(accuracy(pred, y), 3 / 6);
  assert.equal(accuracy([], []), null);
  assert.throws(() => accuracy([1], [1, 2]), /1 predictions for 2 labels/);
  const pc = perClassAccuracy(pred, y);
  assert.deepEqual([...pc.keys()], [0, 1, 2]);
  close(pc.get(0)!, 1);
  close(pc.get(1)!, 0.5);
  close(pc.get(2)!, 1 / 3);
  const cm = confusionCounts(pred, y, [0, 1, 2]);
  // rows = true class, columns = predicted
  assert.deepEqual([...cm.counts], [1, 0, 0, 1, 1, 0, 0, 1, 1]);
  assert.deepEqual([...cm.other], [0, 0, 1]);
});
