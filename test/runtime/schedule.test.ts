import { test } from 'node:test';
import assert from 'node:assert/strict';
import { constantLr, makeSchedule, multiStepLr, stepDecayLr, warmupCosineLr } from '../../src/runtime/schedule.ts';

const close = (a: number, b: number, tol = 1e-15): void => assert.ok(Math.abs(a - b) <= tol, `${a} vs ${b}`);

test('constant', () => {
  const s = constantLr(0.01);
  assert.equal(s(0), 0.01);
  assert.equal(s(12345), 0.01);
  assert.throws(() => s(-1), /non-negative integer/);
  assert.throws(() => constantLr(NaN), /lr must be a finite number/);
});

test('warmup + cosine matches the MoE-Adapters form (lr 1e-3, 100 warmup, 1000 total)', () => {
  const s = warmupCosineLr({ lr: 1e-3, warmupSteps: 100, totalSteps: 1000 });
  // warmup: lr (t+1)/W
  close(s(0), 1e-5);
  close(s(49), 5e-4);
  close(s(99), 1e-3);
  // cosine: e = t - 100, es = 900
  close(s(100), 1e-3); // cos 0 = 1
  close(s(325), 0.5 * (1 + Math.SQRT1_2) * 1e-3); // e/es = 1/4
  close(s(550), 5e-4); // e/es = 1/2, cos = 0
  close(s(775), 0.5 * (1 - Math.SQRT1_2) * 1e-3); // e/es = 3/4
  close(s(1000), 0); // the reference's last (T+1-th) step
  close(s(1500), 0); // clamped past the end
});

test('warmup + cosine to a floor; no warmup', () => {
  const s = warmupCosineLr({ lr: 1e-3, warmupSteps: 10, totalSteps: 110, floor: 1e-4 });
  close(s(10), 1e-3);
  close(s(60), 1e-4 + 0.5 * 0.9e-3); // e/es = 1/2
  close(s(110), 1e-4);
  close(s(200), 1e-4);
  const n = warmupCosineLr({ lr: 2, warmupSteps: 0, totalSteps: 4 });
  close(n(0), 2);
  close(n(1), 0.5 * (1 + Math.SQRT1_2) * 2);
  close(n(2), 1);
  close(n(3), 0.5 * (1 - Math.SQRT1_2) * 2);
  close(n(4), 0);
  assert.throws(() => warmupCosineLr({ lr: 1, warmupSteps: 10, totalSteps: 5 }), /totalSteps must be an integer >= 10/);
});

test('step decay and multi-step', () => {
  const s = stepDecayLr({ lr: 0.1, stepSize: 10, gamma: 0.5 });
  assert.equal(s(0), 0.1);
  assert.equal(s(9), 0.1);
  assert.equal(s(10), 0.05);
  assert.equal(s(25), 0.025);
  assert.throws(() => stepDecayLr({ lr: 0.1, stepSize: 0, gamma: 0.5 }), /stepSize must be an integer >= 1/);
  const m = multiStepLr({ lr: 1, milestones: [3, 7], gamma: 0.1 });
  assert.deepEqual([0, 2, 3, 6, 7, 100].map(m), [1, 1, 0.1, 0.1, 0.1 ** 2, 0.1 ** 2]);
  assert.throws(() => multiStepLr({ lr: 1, milestones: [5, 5], gamma: 0.1 }), /strictly increasing/);
});

test('makeSchedule builds from plain data and rejects unknown kinds', () => {
  close(makeSchedule({ kind: 'warmup-cosine', lr: 1e-3, warmupSteps: 100, totalSteps: 1000 })(550), 5e-4);
  assert.equal(makeSchedule({ kind: 'constant', lr: 3 })(7), 3);
  assert.equal(makeSchedule({ kind: 'step', lr: 1, stepSize: 2, gamma: 0.5 })(4), 0.25);
  assert.equal(makeSchedule({ kind: 'multistep', lr: 1, milestones: [1], gamma: 0.5 })(1), 0.5);
  assert.throws(() => makeSchedule({ kind: 'linear' } as never), /unknown kind "linear"/);
});
