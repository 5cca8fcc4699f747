/**
 * The CNN learner end to end on tiny synthetic sets (width 1/16, 8×8 images): a returning permutation is
 * recognised and trains its own subnet again, a different permutation opens a new subnet; a subnet outside a
 * merge keeps its outputs bit for bit through the merge and through other subnets' training; the baselines run.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Image } from '../../src/data/types.ts';
import { quadrantSample } from './fixtures.ts';
import { CLIP_RESOURCES, ClipResources } from '../../src/methods/clip-resources.ts';
import type { Method, ObserveContext, PredictContext, StreamView, TaskContext, TaskInfo } from '../../src/methods/method.ts';
import { createMethod, parseMethodOptions } from '../../src/methods/registry.ts';
import { groupMasks } from '../../src/cnn/masks.ts';
import { Rng } from '../../src/util/rng.ts';

const resources = new ClipResources({ threads: 1 });
after(() => resources.dispose());

const S = 8;
const K = 4;
const view: StreamView = { classNames: ['a', 'b', 'c', 'd'], templatesFor: () => ['{}'], kind: 'sets' };
const env = () => ({ stream: view, rng: new Rng(1), resources: { [CLIP_RESOURCES]: resources } });

const sample = (c: number, perm: number, rng: Rng): Image => quadrantSample(c, perm, rng, S);

type Internals = Method & {
  owners: Int32Array[];
  net: { features(x: Float32Array, m: Float32Array[]): Promise<Float32Array> };
  pixels(images: Image[]): Float32Array;
  tasks: Map<number, { subnet: number }>;
  merges: unknown[];
};

async function runSets(m: Method, dists: number[], batches: number, seed = 3): Promise<Array<Record<string, unknown>>> {
  const rng = new Rng(seed);
  const infos: Array<Record<string, unknown>> = [];
  let seen = 0;
  for (const [s, d] of dists.entries()) {
    const info: TaskInfo = { id: s, name: `set${s}`, classes: [0, 1, 2, 3], size: batches * 16, numTasks: dists.length };
    const tctx: TaskContext = { ...view, rng, memory: null, exposedClasses: [0, 1, 2, 3], samplesSeen: seen, reportPhase: () => {} };
    await m.beginTask!(info, tctx);
    for (let b = 0; b < batches; b++) {
      const labels = Int32Array.from({ length: 16 }, (_, i) => i % K);
      const images = [...labels].map((c) => sample(c, d, rng));
      const pctx: PredictContext = { ...view, exposedClasses: [0, 1, 2, 3], purpose: 'online', reportPhase: () => {} };
      await m.predict(images, [0, 1, 2, 3], pctx);
      const octx: ObserveContext = { ...view, rng, memory: null, step: 0, stepsThisBatch: 1, exposedClasses: [0, 1, 2, 3], samplesSeen: seen, batchIndex: b, task: info, reportPhase: () => {} };
      const r = await m.observe({ images, labels, items: [], numIncoming: 16 }, octx);
      if (b === 0) infos.push({ ...(r && r.info ? r.info : {}) });
      seen += 16;
    }
    await m.endTask!(info, tctx);
  }
  return infos;
}

const small = { width: 0.0625, imageSize: S, onlineEpochs: 4, lr: 0.1, bufferPerClass: 8, pruneBatch: 2, prunePercPerLayer: 0.5, finetuneEpochs: 1, trainEpochs: 1, offlineBatch: 16 };

test('cnn-subnets: a returning permutation is identified and trains its own subnet; a new one opens a new subnet', async () => {
  const m = (await createMethod('cnn-subnets', { ...small, maxSubnets: 5 }, env())) as Internals;
  const infos = await runSets(m, [0, 1, 0], 6);
  assert.equal(infos[0]!['newTask'], true);
  assert.equal(infos[1]!['newTask'], true, `permutation 1 is new: ${JSON.stringify(infos[1])}`);
  assert.equal(infos[2]!['newTask'], false, `permutation 0 returns: ${JSON.stringify(infos[2])}`);
  assert.equal(infos[2]!['task'], 0);
  assert.equal(m.tasks.size, 2);
  // the learned permutation is classified well, through test-time head choice
  const rng = new Rng(9);
  const labels = Array.from({ length: 32 }, (_, i) => i % K);
  const preds = await m.predict(labels.map((c) => sample(c, 0, rng)), [0, 1, 2, 3], { ...view, exposedClasses: [0, 1, 2, 3], purpose: 'task_end', reportPhase: () => {} });
  const acc = labels.filter((c, i) => preds[i] === c).length / labels.length;
  assert.ok(acc > 0.6, `accuracy on permutation 0: ${acc}`);
  await m.dispose!();
});

test('cnn-subnets: a subnet outside the merge keeps its own-mask outputs bit for bit through later training and the merge', async () => {
  const m = (await createMethod('cnn-subnets', { ...small, maxSubnets: 2, numClusters: 2, thresholdFloor: 0.99 }, env())) as Internals;
  const probe = m.pixels(Array.from({ length: 8 }, (_, i) => sample(i % K, 0, new Rng(i))));
  await runSets(m, [0], 4);
  const snaps = new Map<number, Float32Array>();
  const snap = async () => {
    for (const s of [...new Set([...m.tasks.values()].map((t) => t.subnet))]) if (!snaps.has(s)) snaps.set(s, await m.net.features(probe, groupMasks(m.owners, [s])));
  };
  await snap();
  await runSets(m, [1], 4, 4);
  await snap();
  await runSets(m, [2], 4, 5);
  assert.equal(m.merges.length, 1, 'three subnets > maxSubnets 2: one merge');
  const subnets = new Set([...m.tasks.values()].map((t) => t.subnet));
  assert.equal(subnets.size, 2);
  const untouched = [...snaps.keys()].filter((s) => subnets.has(s) && [...m.tasks.values()].filter((t) => t.subnet === s).length === 1);
  assert.ok(untouched.length >= 1, 'some subnet was not merged');
  for (const s of untouched) {
    const now = await m.net.features(probe, groupMasks(m.owners, [s]));
    assert.ok(now.every((v, i) => Object.is(v, snaps.get(s)![i])), `subnet ${s} changed`);
  }
  await m.dispose!();
});

test('cnn-replay, cnn-prune and cnn-finetune run on the same sets; options are checked by name', async () => {
  for (const name of ['cnn-replay', 'cnn-prune', 'cnn-finetune']) {
    const m = (await createMethod(name, small, env())) as Internals;
    await runSets(m, [0, 1], 3);
    const c = m.describeCost();
    assert.ok(c.totalParams > 0 && Number.isFinite(c.extra!['flopsTraining']!) && c.extra!['flopsTraining']! > 0, name);
    assert.equal(c.extra!['subnets'], name === 'cnn-prune' ? 2 : 1, name);
    await m.dispose!();
  }
  await assert.rejects(() => parseMethodOptions('cnn-subnets', { prunePercPerLayer: 1 }), /method\.prunePercPerLayer/);
  await assert.rejects(() => parseMethodOptions('cnn-prune', { widht: 1 }), /widht/);
});
