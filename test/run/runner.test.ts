import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Image } from '../../src/data/types.ts';
import { createReplay } from '../../src/data/replay.ts';
import type { Method, ObserveContext, PredictContext, TaskInfo, TrainBatch } from '../../src/methods/method.ts';
import { runStream } from '../../src/run/runner.ts';
import type { RunEvent } from '../../src/run/events.ts';
import { imageKey, makeDataset, makeStream } from './fixtures.ts';

/** Remembers the label of every image it trained on; predicts it back, or -1 for unknown images. */
class Memoriser implements Method {
  readonly name = 'memoriser';
  readonly known = new Map<number, number>();
  calls: string[] = [];
  steps: Array<{ step: number; n: number; incoming: number; task: TaskInfo | null; exposed: number[] }> = [];
  predicts: Array<{ purpose: string; n: number; candidates: number[] }> = [];
  async beginTask(t: TaskInfo) {
    this.calls.push(`begin${t.id}`);
  }
  async endTask(t: TaskInfo) {
    this.calls.push(`end${t.id}`);
  }
  async observe(b: TrainBatch, ctx: ObserveContext) {
    assert.equal(b.images.length, b.items.length);
    assert.deepEqual([...b.labels], b.items.map((i) => i.label));
    this.steps.push({ step: ctx.step, n: b.images.length, incoming: b.numIncoming, task: ctx.task, exposed: [...ctx.exposedClasses] });
    b.images.forEach((im, i) => this.known.set(imageKey(im), b.labels[i]!));
    return { loss: 1 };
  }
  async predict(images: Image[], candidates: readonly number[], ctx: PredictContext) {
    this.predicts.push({ purpose: ctx.purpose, n: images.length, candidates: [...candidates] });
    return Int32Array.from(images, (im) => this.known.get(imageKey(im)) ?? -1);
  }
  describeCost() {
    return { trainableParams: 0, totalParams: this.known.size };
  }
}

// 4 classes: task 0 = {0,1}, task 1 = {2,3}; train 6 per class (12 + 12), test 3 per class
const train = makeDataset('toy', 'train', 4, 6);
const testSameAsTrain = makeDataset('toy', 'train', 4, 6); // same images → a memoriser gets them all right
const testOther = makeDataset('toy-test', 'test', 4, 3, { offset: 1000 });

test('prequential accuracy is measured before training; end-of-task rows; event order', async () => {
  const stream = makeStream(train, testSameAsTrain, [
    [0, 1],
    [2, 3],
  ]);
  const m = new Memoriser();
  const events: RunEvent[] = [];
  const r = await runStream({
    stream,
    method: m,
    memory: null,
    rng: 1,
    options: { batchSize: 4, onlineIter: 1, evalPeriod: 0, evalBatchSize: 5 },
    onEvent: (e) => events.push(e),
  });
  // every training sample is new when it arrives: a memoriser scores 0 prequentially …
  assert.equal(r.metrics.online, 0);
  assert.ok(r.log.online.every((b) => b.correct === 0));
  // … but 100 % on test images it has trained on (the test set here is the training images)
  assert.deepEqual(r.log.matrix, [
    [1, null],
    [1, 1],
  ]);
  assert.deepEqual(r.log.taskAcc, [1, 1]);
  assert.deepEqual(r.log.classAcc, [
    { 0: 1, 1: 1 },
    { 0: 1, 1: 1, 2: 1, 3: 1 },
  ]);
  assert.equal(r.metrics.A_last, 1);
  assert.equal(r.metrics.bwt, 0);
  assert.equal(r.samplesSeen, 24);
  assert.equal(r.batches, 6);
  assert.equal(r.steps, 6);
  const types = events.map((e) => e.type);
  assert.deepEqual(types, [
    'run_start',
    'cost',
    'task_start',
    'phase', // begin_task
    'batch',
    'batch',
    'batch',
    'phase', // end_task
    'task_end',
    'cost',
    'task_start',
    'phase',
    'batch',
    'batch',
    'batch',
    'phase',
    'task_end',
    'cost',
    'run_end',
  ]);
  // the cost events carry the method's counts and where in the stream they were taken
  const costs = events.filter((e) => e.type === 'cost');
  // (the Memoriser reports the samples it has stored as its total parameters: counts as of each event)
  assert.deepEqual(costs.map((e) => (e.type === 'cost' ? [e.task, e.samplesSeen, e.trainableParams, e.totalParams] : [])), [
    [0, 0, 0, 0],
    [0, 12, 0, 12],
    [1, 24, 0, 24],
  ]);
  assert.ok(costs.every((e) => e.type === 'cost' && e.rssMB > 0));
  // every batch event has its wall time
  assert.ok(events.every((e) => e.type !== 'batch' || (Number.isFinite(e.ms) && e.ms >= 0)));
  assert.deepEqual(m.calls, ['begin0', 'end0', 'begin1', 'end1']);
  // predictions for evaluation come in chunks of at most evalBatchSize
  assert.ok(m.predicts.filter((p) => p.purpose === 'task_end').every((p) => p.n <= 5));
  // the online candidates include the classes of the incoming batch (exposed so far)
  const online = m.predicts.filter((p) => p.purpose === 'online');
  assert.deepEqual(online[0]!.candidates, [0]); // first batch: 4 samples of class 0
  assert.deepEqual(online[3]!.candidates, [0, 1, 2]);
  const be = events.filter((e) => e.type === 'batch');
  assert.deepEqual(be.map((e) => (e.type === 'batch' ? e.samplesSeen : 0)), [4, 8, 12, 16, 20, 24]);
  assert.deepEqual(be.map((e) => (e.type === 'batch' ? e.newClasses : [])), [[0], [1], [], [2], [3], []]);
});

test('onlineIter steps per batch (integer and fractional), ctx fields, hidden boundaries', async () => {
  const stream = makeStream(train, testOther, [
    [0, 1],
    [2, 3],
  ]);
  const m = new Memoriser();
  const events: RunEvent[] = [];
  const r = await runStream({
    stream,
    method: m,
    memory: null,
    rng: 2,
    options: { batchSize: 4, onlineIter: 3, evalPeriod: 0, taskBoundaries: false },
    onEvent: (e) => events.push(e),
  });
  assert.equal(m.steps.length, 6 * 3);
  assert.deepEqual(m.steps.slice(0, 6).map((s) => s.step), [0, 1, 2, 0, 1, 2]);
  assert.ok(m.steps.every((s) => s.task === null && s.n === 4 && s.incoming === 4));
  assert.deepEqual(m.calls, []); // boundaries hidden: no beginTask/endTask …
  assert.equal(events.filter((e) => e.type === 'task_end').length, 2); // … but end-of-task evaluations still happen
  assert.equal(events.filter((e) => e.type === 'phase').length, 0);
  // unseen test images: memoriser abstains everywhere
  assert.deepEqual(r.log.matrix, [
    [0, null],
    [0, 0],
  ]);

  const half = new Memoriser();
  const ev2: RunEvent[] = [];
  await runStream({ stream, method: half, memory: null, rng: 2, options: { batchSize: 4, onlineIter: 0.5, evalPeriod: 0 }, onEvent: (e) => ev2.push(e) });
  assert.deepEqual(ev2.flatMap((e) => (e.type === 'batch' ? [e.steps] : [])), [0, 1, 0, 1, 0, 1]);
  assert.equal(half.steps.length, 3);
  assert.ok(half.steps.every((s) => s.task !== null));
  assert.equal(half.steps[0]!.task!.id, 0);
  assert.deepEqual(half.steps[0]!.task!.classes, [0, 1]);
});

test('task-free runs: detections a method reports (detectedAt:k) are scored against the true boundaries in its cost', async () => {
  const stream = makeStream(train, testOther, [[0, 1], [2, 3], [0, 2]]);
  // tasks of 12 samples (boundaries at 12 and 24), batches of 4: detections at 16 (delay 1 batch) and 20 (false)
  class Detector extends Memoriser {
    override describeCost() {
      return { trainableParams: 0, totalParams: 0, extra: { detectedBoundaries: 2, 'detectedAt:0': 16, 'detectedAt:1': 20 } };
    }
  }
  const free = await runStream({ stream, method: new Detector(), memory: null, rng: 2, options: { batchSize: 4, evalPeriod: 0, taskBoundaries: false } });
  const x = free.cost.extra!;
  assert.deepEqual([x['boundaries'], x['boundariesFound'], x['boundariesMissed'], x['falseBoundaries'], x['boundaryDelayBatches'], x['boundaryDelay:0']], [2, 1, 1, 1, 1, 4]);
  const aware = await runStream({ stream, method: new Detector(), memory: null, rng: 2, options: { batchSize: 4, evalPeriod: 0 } });
  assert.equal(aware.cost.extra!['boundaries'], undefined, 'with boundaries given there is nothing to score');
  const plain = await runStream({ stream, method: new Memoriser(), memory: null, rng: 2, options: { batchSize: 4, evalPeriod: 0, taskBoundaries: false } });
  assert.equal(plain.cost.extra, undefined, 'a method that reports no detections gets no score');
});

test('replay batches: memory batch concatenated per step, memory updated after the steps', async () => {
  const stream = makeStream(train, testOther, [
    [0, 1],
    [2, 3],
  ]);
  const m = new Memoriser();
  const events: RunEvent[] = [];
  const memory = createReplay({ kind: 'reservoir', capacity: 6 });
  await runStream({
    stream,
    method: m,
    memory,
    rng: 3,
    options: { batchSize: 4, onlineIter: 2, evalPeriod: 0, memoryBatchSize: 5 },
    onEvent: (e) => events.push(e),
  });
  const replay = events.flatMap((e) => (e.type === 'batch' ? [e.replay] : []));
  // memory size before each batch: 0, 4, 6, 6, 6, 6 → replay per step min(5, size)
  assert.deepEqual(replay, [
    [0, 0],
    [4, 4],
    [5, 5],
    [5, 5],
    [5, 5],
    [5, 5],
  ]);
  assert.deepEqual(
    m.steps.map((s) => s.n),
    replay.flat().map((k) => 4 + k),
  );
  assert.ok(m.steps.every((s) => s.incoming === 4));
  assert.equal(memory.size, 6);
});

test('anytime evaluation schedule, exposed-class test sets, future-task matrix and baseline', async () => {
  // task sizes 12 and 8 (class 3 has only 2 training samples); batch 4 → samples seen 4,8,12,16,20
  const tr = makeDataset('toy', 'train', 4, 6);
  const stream = makeStream(tr, testOther, [
    [0, 1],
    [2, 3],
  ]);
  stream.tasks[1]!.train = stream.tasks[1]!.train.filter((it) => it.label === 2 || it.index % 6 < 2);
  assert.equal(stream.tasks[1]!.train.length, 8);
  const m = new Memoriser();
  const events: RunEvent[] = [];
  const r = await runStream({
    stream,
    method: m,
    memory: null,
    rng: 4,
    options: { batchSize: 4, onlineIter: 1, evalPeriod: 6, anytimeCadence: 'multiples', evalFutureTasks: true, baseline: true },
    onEvent: (e) => events.push(e),
  });
  // the reference cadence (the default): samples seen must EXCEED the threshold 6, which then rises by 6:
  // 8 > 6 (→ 12), 12 is not > 12, 16 > 12 (→ 18), 20 > 18 (→ 24)
  const ref = await runStream({ stream, method: new Memoriser(), memory: null, rng: 4, options: { batchSize: 4, onlineIter: 1, evalPeriod: 6 } });
  assert.deepEqual(ref.log.anytime.map((p) => p.samplesSeen), [8, 16, 20]);
  // `multiples`: marks 6, 12, 18 are reached (≥) after the batches ending at 8, 12, 20
  assert.deepEqual(r.log.anytime.map((p) => p.samplesSeen), [8, 12, 20]);
  const evals = events.filter((e) => e.type === 'eval');
  // exposed classes then: {0,1} (6 test images), {0,1}, {0,1,2,3} (12 test images)
  assert.deepEqual(evals.map((e) => (e.type === 'eval' ? [e.n, e.exposed] : [])), [
    [6, 2],
    [6, 2],
    [12, 4],
  ]);
  // the whole matrix is filled and the baseline (b_i) was evaluated before training
  assert.ok(r.log.matrix.every((row) => row.every((v) => v === 0)));
  assert.deepEqual(r.log.baseline, [0, 0]);
  assert.deepEqual(events.slice(0, 3).map((e) => e.type), ['run_start', 'cost', 'baseline']);
  assert.equal(r.metrics.transfer, 0);
  assert.equal(r.metrics.fwt, 0);
  // future task 1 at the end of task 0 is classified among exposed ∪ its own classes
  const te = m.predicts.filter((p) => p.purpose === 'task_end');
  assert.ok(te.some((p) => p.candidates.join() === '0,1,2,3'));
  const base = m.predicts.filter((p) => p.purpose === 'baseline');
  assert.deepEqual(base.map((p) => p.candidates), [
    [0, 1],
    [2, 3],
  ]);
});

test('task-incremental candidates and a domain stream keep per-task test images apart', async () => {
  const stream = makeStream(train, testOther, [[0, 1], [0, 1]], { kind: 'domain' });
  const m = new Memoriser();
  const r = await runStream({ stream, method: m, memory: null, rng: 5, options: { batchSize: 6, evalPeriod: 12, anytimeCadence: 'multiples', evalCandidates: 'task' } });
  // domain: the anytime set at 12 samples is task 0's test images only (6); at 24 both tasks' (12)
  const anytime = m.predicts.filter((p) => p.purpose === 'anytime');
  assert.equal(anytime.reduce((s, p) => s + p.n, 0), 6 + 12);
  const te = m.predicts.filter((p) => p.purpose === 'task_end');
  assert.ok(te.every((p) => p.candidates.join() === '0,1'));
  assert.equal(r.log.matrix.length, 2);
});

test('invalid runner options are rejected naming the option', async () => {
  const stream = makeStream(train, testOther, [[0, 1]]);
  await assert.rejects(runStream({ stream, method: new Memoriser(), memory: null, rng: 1, options: { batchSize: 0 } }), /run\.batchSize: expected a positive integer/);
  await assert.rejects(runStream({ stream, method: new Memoriser(), memory: null, rng: 1, options: { onlineIter: -1 } }), /run\.onlineIter/);
});

test('each step re-materialises with the train transform; prequential and eval use the test transform; method phases are timed', async () => {
  const stream = makeStream(train, testOther, [[0, 1], [2, 3]]);
  // train transform writes a fresh random byte into pixel 2; test transform leaves images untouched
  for (const t of stream.tasks) {
    t.trainTransform = (im, rng) => {
      const px = Uint8Array.from(im.pixels);
      px[2] = 1 + rng.int(255);
      return { ...im, pixels: px };
    };
  }
  const seenAug: number[][] = [];
  const predictedPixels: number[] = [];
  const m: Method = {
    name: 'probe',
    async observe(b) {
      seenAug.push(b.images.map((im) => im.pixels[2]!));
    },
    async predict(images) {
      images.forEach((im) => predictedPixels.push(im.pixels[2]!));
      return new Int32Array(images.length).fill(-1);
    },
    async endTask(_t, ctx) {
      ctx.reportPhase('merge', 5);
    },
    describeCost: () => ({ trainableParams: 0, totalParams: 0 }),
  };
  const events: RunEvent[] = [];
  const r = await runStream({ stream, method: m, memory: null, rng: 9, options: { batchSize: 4, onlineIter: 3, evalPeriod: 8 }, onEvent: (e) => events.push(e) });
  assert.ok(seenAug.flat().every((v) => v >= 1)); // every training image went through the train transform
  assert.notDeepEqual(seenAug[0], seenAug[1]); // steps of one batch see different augmentations
  assert.ok(predictedPixels.every((v) => v === 0)); // predictions never see augmented images
  assert.equal(r.timings['method:merge'], 10);
  const merges = events.filter((e) => e.type === 'phase' && e.name === 'merge');
  assert.deepEqual(merges.map((e) => (e.type === 'phase' ? [e.task, e.samplesSeen] : [])), [
    [0, 12],
    [1, 24],
  ]);
});
