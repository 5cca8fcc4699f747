/**
 * Checkpointing the CNN learner: a learner saved mid-set (and after a merge), written to files, read back into a
 * freshly created learner, continues exactly as the uninterrupted one — the same observe results step by step,
 * the same predictions, bit-identical weights and heads, the same costs apart from wall time.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Image } from '../../src/data/types.ts';
import { quadrantSample } from './fixtures.ts';
import { CLIP_RESOURCES, ClipResources } from '../../src/methods/clip-resources.ts';
import type { Method, MethodStateContext, ObserveContext, PredictContext, StreamView, TaskContext, TaskInfo } from '../../src/methods/method.ts';
import { createMethod } from '../../src/methods/registry.ts';
import { canSaveState, readMethodState, writeMethodState } from '../../src/methods/state.ts';
import { Rng } from '../../src/util/rng.ts';

const resources = new ClipResources({ threads: 1 });
const dir = mkdtempSync(join(tmpdir(), 'moeclip-cnn-state-'));
after(async () => {
  await resources.dispose();
  rmSync(dir, { recursive: true, force: true });
});

const S = 8;
const K = 4;
const view: StreamView = { classNames: ['a', 'b', 'c', 'd'], templatesFor: () => ['{}'], kind: 'sets' };
const stateCtx: MethodStateContext = { memory: null, resolveItem: () => { throw new Error('no items'); } };

const sample = (c: number, perm: number, rng: Rng): Image => quadrantSample(c, perm, rng, S);

type Step = { kind: 'begin' | 'end'; set: number } | { kind: 'batch'; set: number; b: number; images: Image[]; labels: Int32Array };

/** Sets of the given permutations, `batches` batches of 16 each, as a flat list of steps. */
function plan(dists: number[], batches: number): Step[] {
  const rng = new Rng(11);
  const steps: Step[] = [];
  dists.forEach((d, set) => {
    steps.push({ kind: 'begin', set });
    for (let b = 0; b < batches; b++) {
      const labels = Int32Array.from({ length: 16 }, (_, i) => i % K);
      steps.push({ kind: 'batch', set, b, images: [...labels].map((c) => sample(c, d, rng)), labels });
    }
    steps.push({ kind: 'end', set });
  });
  return steps;
}

const all = [0, 1, 2, 3];
const info = (set: number, n: number): TaskInfo => ({ id: set, name: `set${set}`, classes: all, size: n, numTasks: 4 });

/** Runs steps [from, to) on `m`; returns what observe and the online predictions gave. */
async function drive(m: Method, steps: Step[], from: number, to: number): Promise<string[]> {
  const out: string[] = [];
  const rng = new Rng(5);
  for (const s of steps.slice(from, to)) {
    const tctx: TaskContext = { ...view, rng, memory: null, exposedClasses: all, samplesSeen: 0, reportPhase: () => {} };
    if (s.kind === 'begin') await m.beginTask!(info(s.set, 64), tctx);
    else if (s.kind === 'end') await m.endTask!(info(s.set, 64), tctx);
    else if (s.kind === 'batch') {
      const pctx: PredictContext = { ...view, exposedClasses: all, purpose: 'online', reportPhase: () => {} };
      const preds = await m.predict(s.images, all, pctx);
      const octx: ObserveContext = { ...view, rng, memory: null, step: 0, stepsThisBatch: 1, exposedClasses: all, samplesSeen: 0, batchIndex: s.b, task: info(s.set, 64), reportPhase: () => {} };
      const r = await m.observe({ images: s.images, labels: s.labels, items: [], numIncoming: s.labels.length }, octx);
      out.push(JSON.stringify({ preds: [...preds], ...r }));
    }
  }
  return out;
}

const untimed = (m: Method) => Object.fromEntries(Object.entries(m.describeCost().extra ?? {}).filter(([k]) => !k.endsWith('Ms') && !k.startsWith('setSeconds')));

type Internals = Method & { net: { weights(): Promise<Record<string, Float32Array>> }; tasks: Map<number, { head: { w: Float32Array; b: Float32Array } }> };

async function sameLearner(a: Internals, b: Internals): Promise<void> {
  const [wa, wb] = [await a.net.weights(), await b.net.weights()];
  for (const k of Object.keys(wa)) assert.ok(wa[k]!.every((v, i) => Object.is(v, wb[k]![i])), `weight ${k}`);
  assert.deepEqual([...a.tasks.keys()], [...b.tasks.keys()]);
  for (const [id, t] of a.tasks) {
    assert.deepEqual(t.head.w, b.tasks.get(id)!.head.w, `head ${id}`);
    assert.deepEqual(t.head.b, b.tasks.get(id)!.head.b, `head ${id}`);
  }
  assert.deepEqual(untimed(b), untimed(a));
  const probe = Array.from({ length: 24 }, (_, i) => sample(i % K, i % 3, new Rng(100 + i)));
  const pctx: PredictContext = { ...view, exposedClasses: all, purpose: 'task_end', reportPhase: () => {} };
  assert.deepEqual(await b.predict(probe, all, pctx), await a.predict(probe, all, pctx));
}

for (const [name, opts] of [
  ['cnn-subnets', { runningStats: true, thresholdFloor: 0.99 }],
  ['cnn-replay', {}],
] as const) {
  test(`${name}: saved mid-set and after a merge, restored from files, continues exactly`, async () => {
    const small = { width: 0.0625, imageSize: S, onlineEpochs: 3, lr: 0.1, bufferPerClass: 6, pruneBatch: 2, prunePercPerLayer: 0.5, finetuneEpochs: 1, trainEpochs: 1, offlineBatch: 16, maxSubnets: 2, numClusters: 2, ...opts };
    const env = () => ({ stream: view, rng: new Rng(1), resources: { [CLIP_RESOURCES]: resources } });
    const steps = plan([0, 1, 2, 0], 4);
    const full = (await createMethod(name, small, env())) as Internals;
    assert.ok(canSaveState(full), `${name} saves its state`);
    const fullOut = await drive(full, steps, 0, steps.length);
    if (name === 'cnn-subnets') assert.equal(full.describeCost().extra!['merges'], 2, 'every set new (floor 0.99), maxSubnets 2: merges at the ends of sets 2 and 3');

    // cut 1: mid-set 1 (after its 2nd batch); cut 2: right after set 2's end (the merge)
    const cuts = [1 + 6 + 1 + 2, 3 * 6];
    let m = (await createMethod(name, small, env())) as Internals;
    let at = 0;
    const out: string[] = [];
    for (const [i, cut] of cuts.entries()) {
      out.push(...(await drive(m, steps, at, cut)));
      writeMethodState(dir, `${name}-${i}`, await m.saveState!(stateCtx));
      await m.dispose!();
      m = (await createMethod(name, small, { ...env(), rng: new Rng(99) })) as Internals;
      await m.loadState!(readMethodState(dir, `${name}-${i}`), stateCtx);
      at = cut;
    }
    out.push(...(await drive(m, steps, at, steps.length)));
    assert.deepEqual(out, fullOut, 'observe results and online predictions, step by step');
    await sameLearner(full, m);
    await full.dispose!();
    await m.dispose!();
  });
}

test('cnn learner state: a damaged state names the field', async () => {
  const env = { stream: view, rng: new Rng(1), resources: { [CLIP_RESOURCES]: resources } };
  const small = { width: 0.0625, imageSize: S, onlineEpochs: 1, bufferPerClass: 2, pruneBatch: 1, finetuneEpochs: 0 };
  const m = (await createMethod('cnn-subnets', small, env)) as Internals;
  await drive(m, plan([0], 1), 0, 3);
  const st = await m.saveState!(stateCtx);
  const fresh = (await createMethod('cnn-subnets', small, env)) as Internals;
  await assert.rejects(() => fresh.loadState!({ ...st, json: { ...st.json, nextTask: -1 } }, stateCtx), /cnn-subnets state\.nextTask: expected an integer >= 0/);
  const { 'owners/0': _drop, ...rest } = st.tensors;
  await assert.rejects(() => fresh.loadState!({ ...st, tensors: rest }, stateCtx), /tensors\['owners\/0'\]: missing/);
  const wide = (await createMethod('cnn-subnets', { ...small, width: 0.125 }, env)) as Internals;
  await assert.rejects(() => wide.loadState!(st, stateCtx), /cnn-subnets state\.tensors\['net\/[^']+'\]: expected float32 with \d+ values/);
  for (const x of [m, fresh, wide]) await x.dispose!();
});
