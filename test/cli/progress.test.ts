/**
 * The progress bar: smoothed ETA (hand-computed), lines printed above the bar while it runs, and the run
 * reporter printing end-of-task lines when the task ends (task numbers "task k/T").
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EtaEstimator, formatDuration, ProgressBar, runProgressReporter } from '../../src/cli/progress.ts';
import type { CliIO } from '../../src/cli/command.ts';
import type { RunEvent } from '../../src/run/events.ts';
import type { RunMetrics } from '../../src/eval/metrics.ts';

const close = (a: number | null, b: number, eps = 1e-9) => {
  assert.ok(a !== null, 'null');
  assert.ok(Math.abs(a - b) < eps, `${a} ≠ ${b}`);
};

test('ETA: nothing during the warm-up, then the warm-up mean rate, then a time-weighted average', () => {
  const e = new EtaEstimator(100); // τ 20 s; warm-up: 3 updates and 2 s after the first interval
  e.update(0, 0);
  e.update(10, 4000); // the first interval (4 s for 10 units: session building) is left out
  e.update(20, 5000);
  e.update(30, 6000);
  assert.equal(e.seconds(), null); // 2 updates into the warm-up
  e.update(40, 7000);
  close(e.rate(), 10); // (40 − 10) / 3 s
  close(e.seconds(), 6); // (100 − 40) / 10
  // a slow step (10 s for 10 units, e.g. an evaluation): rate ← 10 + (1 − e^(−10/20))·(1 − 10)
  e.update(50, 17000);
  const r = 10 + (1 - Math.exp(-0.5)) * (1 - 10);
  close(e.rate(), r);
  close(e.seconds(), 50 / r); // 7.74 s, where the last step's own rate would say 50 s
  // same instant: ignored, the next update spans both
  e.update(55, 17000);
  e.update(60, 18000);
  close(e.rate(), r + (1 - Math.exp(-1 / 20)) * (10 - r));
});

test('ETA: the start-up before the first step does not count (pretraining shows none at step 1)', () => {
  // pretraining: the bar starts at step 0; step 1 comes 110 s later (sessions, data), then a step every 1.4 s
  const e = new EtaEstimator(2344);
  e.update(0, 0);
  e.update(1, 110_000);
  assert.equal(e.seconds(), null);
  e.update(2, 111_400);
  e.update(3, 112_800);
  assert.equal(e.seconds(), null);
  e.update(4, 114_200);
  close(e.rate(), 3 / 4.2); // steps 1 → 4 in 4.2 s; the 110 s start would have made it 4 / 114.2
  close(e.seconds(), (2344 - 4) / (3 / 4.2), 1e-6); // ≈ 54.6 min, not ≈ 18.6 h
  // minSeconds: fast updates wait for 2 s of warm-up
  const f = new EtaEstimator(1000);
  for (let i = 0; i <= 10; i++) f.update(i, i * 100);
  assert.equal(f.seconds(), null); // 0.9 s of warm-up
  for (let i = 11; i <= 21; i++) f.update(i, i * 100);
  close(f.rate(), 10);
});

test('ETA stays smooth over periodic evaluation pauses (consecutive estimates within ±30 %)', () => {
  // 1 unit per second, and every 10th update also waits 5 s (an anytime evaluation)
  const e = new EtaEstimator(400);
  let t = 0;
  let prev: number | null = null;
  let worst = 1;
  for (let v = 0; v <= 300; v++) {
    e.update(v, t * 1000);
    const s = e.seconds();
    if (s !== null && prev !== null) worst = Math.max(worst, s / prev);
    if (s !== null && prev !== null) assert.ok(s / prev < 1.3 && s / prev > 0.7, `ETA ${prev} → ${s} at ${v}`);
    prev = s;
    t += 1 + (v % 10 === 9 ? 5 : 0);
  }
  assert.ok(worst > 1, 'the pauses do raise the estimate a little');
  // the average throughput is 10 units / 15 s; the estimate tracks it within 25 %
  const rate = e.rate()!;
  assert.ok(Math.abs(rate - 10 / 15) / (10 / 15) < 0.25, `rate ${rate}`);
});

test('formatDuration', () => {
  assert.equal(formatDuration(null), '—');
  assert.equal(formatDuration(42.4), '42s');
  assert.equal(formatDuration(185), '3m05s');
  assert.equal(formatDuration(7620), '2h07m');
});

test('ProgressBar: redraws in place, log() prints above the bar and redraws it, stop() erases it', () => {
  let out = '';
  let clock = 0;
  const bar = new ProgressBar((t) => void (out += t), {
    total: 10,
    width: 10,
    now: () => clock,
    render: (s, f) => `[${s.bar}] ${s.value}/${s.total} ${f['x'] ?? '-'} ETA ${s.eta}`,
  });
  bar.update(0);
  assert.equal(out, '\r\x1b[2K[░░░░░░░░░░] 0/10 - ETA —');
  out = '';
  clock = 50;
  bar.update(1, { x: 'a' }); // within 100 ms of the last draw: not redrawn
  assert.equal(out, '');
  clock = 200;
  bar.update(5);
  assert.equal(out, '\r\x1b[2K[█████░░░░░] 5/10 a ETA —');
  out = '';
  bar.log('end of task 1/2');
  assert.equal(out, '\r\x1b[2Kend of task 1/2\n\r\x1b[2K[█████░░░░░] 5/10 a ETA —');
  out = '';
  bar.stop();
  assert.equal(out, '\r\x1b[2K');
  out = '';
  bar.update(7);
  bar.log('after');
  assert.equal(out, 'after\n');
});

function ttyIO(isTTY: boolean): CliIO & { err: string } {
  const io = { err: '', isTTY, env: {}, stdout: () => {}, stderr: (t: string) => void (io.err += t) };
  return io;
}

const METRICS = { A_auc: null, A_avg: 0.5, A_last: 0.5, F_last: null, online: 0.5, transfer: null, average: null, last: null, bwt: null, forgetting: null, fwt: null } as RunMetrics;

function events(): RunEvent[] {
  const batch = (task: number, batch: number, samplesSeen: number): RunEvent => ({ type: 'batch', task, batch, n: 5, correct: 2, samplesSeen, steps: 1, replay: [0], newClasses: [], ms: 3 });
  return [
    { type: 'run_start', kind: 'class-incremental', tasks: 2, trainSamples: 20, classes: 4, taskBoundaries: true },
    { type: 'task_start', task: 0, name: 'toy classes 0–1', size: 10, classes: [0, 1] },
    batch(0, 0, 5),
    batch(0, 1, 10),
    { type: 'task_end', task: 0, samplesSeen: 10, accuracy: 0.75, n: 4, row: [0.75, null], classAcc: {} },
    { type: 'task_start', task: 1, name: 'toy classes 2–3', size: 10, classes: [2, 3] },
    batch(1, 2, 15),
    batch(1, 3, 20),
    { type: 'task_end', task: 1, samplesSeen: 20, accuracy: 0.5, n: 8, row: [0.5, 0.5], classAcc: {} },
    { type: 'run_end', samplesSeen: 20, metrics: METRICS, timings: {} },
  ];
}

test('run reporter on a terminal: end-of-task lines appear above the bar when the task ends', () => {
  const io = ttyIO(true);
  let clock = 0;
  const p = runProgressReporter(io, { now: () => (clock += 500) });
  const evs = events();
  const at: string[] = [];
  for (const e of evs) {
    const before = io.err.length;
    p.onEvent(e);
    at.push(io.err.slice(before));
  }
  // at the first task_end: the line, then the bar redrawn beneath it with the task-end accuracy
  assert.match(at[4]!, /^\r\x1b\[2Kend of task 1\/2: accuracy on exposed classes 75\.00% \(4 test samples\)\n\r\x1b\[2Ktask 1\/2 \|/);
  assert.match(at[4]!, /task-end acc 75\.00%/);
  assert.match(at[5]!, /^\r\x1b\[2Ktask 2\/2 \(toy classes 2–3\): 10 samples, 2 classes\n/);
  // run_end erases the bar and prints only the summary: no end-of-task lines held back
  assert.match(at[9]!, /^\r\x1b\[2Kdone: 20 samples in \d+\.\ds\n$/);
  assert.equal(io.err.match(/end of task/g)!.length, 2);
});

test('run reporter without a terminal: plain lines, tasks numbered k/T', () => {
  const io = ttyIO(false);
  const p = runProgressReporter(io, { now: () => 0 });
  for (const e of events()) p.onEvent(e);
  const lines = io.err.trimEnd().split('\n');
  assert.equal(lines[0], 'stream: class-incremental, 2 tasks, 20 training samples, 4 classes');
  assert.equal(lines[1], 'task 1/2 (toy classes 0–1): 10 samples, 2 classes');
  assert.ok(lines.includes('end of task 1/2: accuracy on exposed classes 75.00% (4 test samples)'));
  assert.ok(lines.includes('end of task 2/2: accuracy on exposed classes 50.00% (8 test samples)'));
  assert.ok(!io.err.includes('\x1b'));
  assert.equal(lines[lines.length - 1], 'done: 20 samples in 0.0s');
});

test('run reporter: a seed prefix on every line, resume starts the bar where the run stopped, checkpoints above it', () => {
  const io = ttyIO(true);
  const p = runProgressReporter(io, { prefix: '[seed 2] ', now: () => 0 });
  p.onEvent({ type: 'resume', samplesSeen: 10, trainSamples: 20, task: 1, tasks: 2 });
  assert.match(io.err, /^\[seed 2\] resuming after 10\/20 samples \(task 2\/2\)\n\r\x1b\[2K\[seed 2\] task 2\/2 \|█{15}░{15}\| 10\/20 samples/);
  const before = io.err.length;
  p.onEvent({ type: 'checkpoint', samplesSeen: 15, path: '/runs/x/checkpoint' });
  assert.match(io.err.slice(before), /^\r\x1b\[2K\[seed 2\] {3}checkpoint after 15 samples: \/runs\/x\/checkpoint\n\r\x1b\[2K\[seed 2\] task 2\/2 \|/);
  p.onEvent({ type: 'run_end', samplesSeen: 20, metrics: METRICS, timings: {} });
  assert.match(io.err, /\[seed 2\] done: 20 samples in 0\.0s\n$/);
});
