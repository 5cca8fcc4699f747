/**
 * Checkpoints in process: a run stopped at any batch or task end and resumed gives the uninterrupted run folder
 * (NCM on augmented MNIST-layout files, a fractional `onlineIter` and a reservoir memory, so the generator
 * states, the step credit and the memory all matter); folder states and their messages; methods without state
 * refuse checkpoints; Rng snapshots continue exactly (the cached Box–Muller normal included).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { loadConfig } from '../../src/config/load.ts';
import { registerMethod } from '../../src/methods/registry.ts';
import { assertFinishedRun, runFolderStatus } from '../../src/run/checkpoint.ts';
import { resumeExperiment, runExperiment, RunStoppedError } from '../../src/run/experiment.ts';
import { Rng } from '../../src/util/rng.ts';
import { tempMnistRoot } from './fixtures.ts';

const root = tempMnistRoot('moeclip-ckpt-', 6);

const cfgFile = join(root, 'ncm.yaml');
writeFileSync(
  cfgFile,
  [
    'seed: 7',
    'stream:',
    '  kind: class-incremental',
    '  dataset: { name: mnist, root: data }',
    '  tasks: 3',
    '  classOrder: [0, 1, 2, 3, 4, 5]',
    '  trainTransform: [{ randomCrop: { padding: 2 } }, { flip: 0.5 }]',
    'method: { name: ncm, size: 10, color: gray }',
    'run:',
    '  batchSize: 5',
    '  onlineIter: 1.5',
    '  evalPeriod: 7',
    '  memory: { capacity: 6, batchSize: 3 }',
    '',
  ].join('\n'),
);

const FILES = ['metrics.json', 'acc_matrix.csv', 'anytime.csv', 'task_acc.csv', 'class_acc.csv', 'online.csv', 'config.resolved.json'];
const events = (dir: string) =>
  readFileSync(join(dir, 'events.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => {
      const { ms: _ms, timings: _t, rssMB: _r, ...rest } = JSON.parse(l) as Record<string, unknown>;
      return rest;
    });

test('Rng snapshot: continues the same sequence, including a cached normal', () => {
  const a = new Rng(11);
  for (let i = 0; i < 3; i++) a.normal(); // an odd count leaves a cached second value
  const b = new Rng(0);
  b.restore(JSON.parse(JSON.stringify(a.snapshot())));
  const xs = Array.from({ length: 5 }, () => [a.normal(), a.float(), a.int(7)]);
  const ys = Array.from({ length: 5 }, () => [b.normal(), b.float(), b.int(7)]);
  assert.deepEqual(ys, xs);
  assert.throws(() => b.restore({ state: [1, 2, 3], spare: null }, 'ck.rng'), /ck\.rng\.state: Rng state must be four unsigned 32-bit integers/);
  assert.throws(() => b.restore({ state: [1, 2, 3, 4], spare: Number.NaN }, 'ck.rng'), /ck\.rng\.spare: expected a finite number or null/);
});

test('a run stopped at any batch or task end and resumed gives the uninterrupted run folder', async () => {
  const full = join(root, 'full');
  await runExperiment(await loadConfig(cfgFile), { outDir: full });
  // 3 tasks × 12 samples in batches of 5: 9 batches, 2 task ends with a pause after them (not the last)
  for (const k of [1, 3, 4, 8, 11]) {
    const dir = join(root, `stop-${k}`);
    let calls = 0;
    await assert.rejects(
      runExperiment(await loadConfig(cfgFile), { outDir: dir, shouldStop: () => ++calls === k }),
      (e: unknown) => e instanceof RunStoppedError && e.checkpoint === join(dir, 'checkpoint'),
    );
    const st = runFolderStatus(dir);
    assert.equal(st.kind, 'checkpointed', `stop ${k}`);
    assert.throws(() => assertFinishedRun(dir), /the run is incomplete \(no metrics\.json\): it was interrupted after \d+\/36 stream samples \(task \d\/3\); continue it with `moeclip run --resume /);
    await resumeExperiment(dir);
    for (const f of FILES) assert.equal(readFileSync(join(dir, f), 'utf8'), readFileSync(join(full, f), 'utf8'), `stop ${k}: ${f}`);
    assert.deepEqual(events(dir), events(full), `stop ${k}: events`);
    assert.equal(runFolderStatus(dir).kind, 'finished');
    assert.ok(!existsSync(join(dir, 'checkpoint')));
    await assert.rejects(resumeExperiment(dir), /the run has finished \(metrics\.json exists\); nothing to resume/);
  }
});

test('periodic checkpoints do not change the run; a resumed run keeps checkpointing', async () => {
  const full = join(root, 'full-2');
  await runExperiment(await loadConfig(cfgFile), { outDir: full });
  const dir = join(root, 'every');
  const seen: number[] = [];
  let calls = 0;
  await assert.rejects(
    runExperiment(await loadConfig(cfgFile), { outDir: dir, checkpointEvery: 10, shouldStop: () => ++calls === 6, onControl: (e) => e.type === 'checkpoint' && seen.push(e.samplesSeen) }),
    RunStoppedError,
  );
  // batch ends at 5, 10, 12 | 17, 22, 24 | 29, 34, 36 samples: checkpoints at the first reaching 10, 20, 30; the
  // stop request at the 6th pause (the batch end at 22) finds its checkpoint already written
  assert.deepEqual(seen, [10, 22]);
  const after: number[] = [];
  await resumeExperiment(dir, { onControl: (e) => e.type === 'checkpoint' && after.push(e.samplesSeen) });
  assert.deepEqual(after, [34]);
  for (const f of FILES) assert.equal(readFileSync(join(dir, f), 'utf8'), readFileSync(join(full, f), 'utf8'), f);
});

test('a method without saveState/loadState refuses checkpoints; stopping it leaves no checkpoint', async () => {
  registerMethod('stateless-test', {
    summary: 'predicts nothing, keeps no state',
    schema: z.strictObject({}),
    create: async () => ({
      name: 'stateless-test',
      observe: async () => {},
      predict: async (images) => new Int32Array(images.length).fill(-1),
      describeCost: () => ({ trainableParams: 0, totalParams: 0 }),
    }),
  });
  const sets = ['method={name: stateless-test}'];
  await assert.rejects(
    runExperiment(await loadConfig(cfgFile, { sets }), { outDir: join(root, 'stateless'), checkpointEvery: 10 }),
    /method 'stateless-test' cannot save its state \(no saveState\/loadState\), so it cannot be checkpointed: drop --checkpoint-every/,
  );
  const dir = join(root, 'stateless-stop');
  await assert.rejects(runExperiment(await loadConfig(cfgFile, { sets }), { outDir: dir, shouldStop: () => true }), (e: unknown) => e instanceof RunStoppedError && e.checkpoint === null);
  assert.equal(runFolderStatus(dir).kind, 'interrupted');
  assert.throws(() => assertFinishedRun(dir), /the run is incomplete \(no metrics\.json\) and has no checkpoint to continue from/);
  assert.throws(() => assertFinishedRun(join(root, 'nothing')), /not a run folder/);
});
