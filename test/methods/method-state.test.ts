/**
 * Method state round trips: a method trained for a while saves its state (written to safetensors + JSON and read
 * back); a fresh method of the same options loads it; from then on both take the same steps and must stay
 * bit-identical — same losses, same predictions, and the same saved state (every tensor and every JSON field:
 * weights, AdamW moments, per-parameter and per-row counters, layout and frozen sets, DDAS, teacher, Fisher,
 * generators). Every built-in trainable CLIP method on a tiny random model, and NCM.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tinyClipConfig } from '../../src/clip/config.ts';
import { writeRandomClip } from '../../src/clip/random.ts';
import type { Image } from '../../src/data/types.ts';
import { CLIP_RESOURCES, ClipResources } from '../../src/methods/clip-resources.ts';
import type { Method, MethodEnv, MethodState, MethodStateContext, ObserveContext, StreamView, TaskContext, TaskInfo } from '../../src/methods/method.ts';
import { createMethod } from '../../src/methods/registry.ts';
import { canSaveState, readMethodState, writeMethodState } from '../../src/methods/state.ts';
import { Rng } from '../../src/util/rng.ts';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const BPE = join(REPO, '../shared/clip/bpe_simple_vocab_16e6.txt.gz');
const root = mkdtempSync(join(tmpdir(), 'moeclip-state-'));
const modelDir = join(root, 'model');
writeRandomClip(modelDir, tinyClipConfig(), { layout: 'hf', seed: 3, bpePath: BPE, perturbStd: 0.1 });
const resources = new ClipResources({ threads: 1 });
after(async () => {
  await resources.dispose();
  rmSync(root, { recursive: true, force: true });
});

const CLASSES = ['cat', 'dog', 'red car', 'tree'];
const view: StreamView = { classNames: CLASSES, templatesFor: () => ['a photo of a {}.', 'a drawing of a {}.'], kind: 'multi-dataset' };
const env = (): MethodEnv => ({ stream: view, rng: new Rng(1), resources: { [CLIP_RESOURCES]: resources } });
const px = new Rng(5);
const images: Image[] = Array.from({ length: 6 }, () => ({ width: 20, height: 20, channels: 3, pixels: Uint8Array.from({ length: 1200 }, () => px.int(256)) }));
const stateCtx: MethodStateContext = { memory: null, resolveItem: () => assert.fail('no items') };

const task = (id: number, classes: number[]): TaskInfo => ({ id, name: `t${id}`, classes, size: 12, numTasks: 2 });
const taskCtx = (exposed: number[]): TaskContext => ({ ...view, rng: new Rng(2), memory: null, exposedClasses: exposed, samplesSeen: 0, reportPhase: () => {} });
const obsCtx = (t: TaskInfo, exposed: number[], step: number): ObserveContext => ({
  ...view, rng: new Rng(3), memory: null, step, stepsThisBatch: 1, exposedClasses: exposed, samplesSeen: 0, batchIndex: step, task: t, reportPhase: () => {},
});
const batch = (labels: number[]) => ({ images, labels: Int32Array.from(labels), items: [], numIncoming: images.length });

/** Task 0 on classes 0/1 (two steps), then task 1 on 2/3 begins with one step. */
async function prefix(m: Method): Promise<void> {
  const t0 = task(0, [0, 1]);
  await m.beginTask?.(t0, taskCtx([]));
  for (let i = 0; i < 2; i++) await m.observe(batch([0, 1, 0, 1, 0, 1]), obsCtx(t0, [0, 1], i));
  await m.endTask?.(t0, taskCtx([0, 1]));
  const t1 = task(1, [2, 3]);
  await m.beginTask?.(t1, taskCtx([0, 1]));
  await m.observe(batch([2, 3, 2, 3, 2, 3]), obsCtx(t1, [0, 1, 2, 3], 0));
}

/** The rest of task 1 and an evaluation; returns the losses and predictions. */
async function suffix(m: Method): Promise<{ losses: number[]; preds: number[] }> {
  const t1 = task(1, [2, 3]);
  const losses: number[] = [];
  for (let i = 1; i < 3; i++) {
    const r = await m.observe(batch([2, 3, 3, 2, 2, 3]), obsCtx(t1, [0, 1, 2, 3], i));
    if (r && typeof r.loss === 'number') losses.push(r.loss);
  }
  await m.endTask?.(t1, taskCtx([0, 1, 2, 3]));
  const preds = await m.predict(images, [0, 1, 2, 3], { ...view, exposedClasses: [0, 1, 2, 3], purpose: 'task_end', reportPhase: () => {} });
  return { losses, preds: [...preds] };
}

function assertSameState(a: MethodState, b: MethodState, what: string): void {
  assert.deepEqual(Object.keys(a.tensors).sort(), Object.keys(b.tensors).sort(), `${what}: tensor names`);
  for (const [n, t] of Object.entries(a.tensors)) {
    const u = b.tensors[n]!;
    assert.equal(u.dtype, t.dtype, `${what}: ${n} dtype`);
    assert.deepEqual(u.dims, t.dims, `${what}: ${n} dims`);
    assert.ok(Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength).equals(Buffer.from(u.data.buffer, u.data.byteOffset, u.data.byteLength)), `${what}: ${n} bit-identical`);
  }
  assert.deepEqual(JSON.parse(JSON.stringify(b.json)), JSON.parse(JSON.stringify(a.json)), `${what}: JSON state`);
}

const CASES: Array<[string, Record<string, unknown>]> = [
  ['adapter-clip', { dropout: 0.1 }],
  ['lora-clip', {}],
  ['finetune', { lastBlocks: 1 }],
  ['er', {}],
  ['lwf', {}],
  ['ewc', {}],
  ['moe-adapters', { experts: 4, topK: 2, bottleneck: 4, freezePerTask: 1, routers: 'per-task', ddas: { enabled: true, hidden: 8 } }],
  ['cm-moe', { expertsPerSubnet: 2, topK: 2, bottleneck: 4, maxSubnets: 4, numClusters: 2, ddas: { hidden: 8 } }],
];

for (const [name, opts] of CASES) {
  test(`${name}: saved state, loaded into a fresh method, continues bit-identically`, async () => {
    const options = { model: modelDir, lr: 1e-2, evalBatchSize: 8, ...opts };
    const a = await createMethod(name, options, env());
    const b = await createMethod(name, options, env());
    try {
      assert.ok(canSaveState(a));
      await prefix(a);
      const saved = await a.saveState!(stateCtx);
      const dir = join(root, name);
      writeMethodState(dir, 'method', saved);
      const back = readMethodState(dir, 'method');
      assertSameState(saved, back, 'file round trip');
      // b never trained: everything it knows comes from the loaded state
      await b.loadState!(back, stateCtx);
      assertSameState(saved, await b.saveState!(stateCtx), 'loaded state');
      const ra = await suffix(a);
      const rb = await suffix(b);
      assert.deepEqual(rb.losses, ra.losses, 'same losses after loading');
      assert.ok(ra.losses.length === 2 && ra.losses.every(Number.isFinite));
      assert.deepEqual(rb.preds, ra.preds, 'same predictions');
      assertSameState(await a.saveState!(stateCtx), await b.saveState!(stateCtx), 'after two more steps and a task end');
    } finally {
      await a.dispose?.();
      await b.dispose?.();
    }
  });
}

test('ncm: class means and counts round-trip exactly', async () => {
  const opts = { size: 4, color: 'gray' };
  const a = await createMethod('ncm', opts, { stream: view, rng: new Rng(1) });
  const b = await createMethod('ncm', opts, { stream: view, rng: new Rng(1) });
  const t0 = task(0, [0, 1]);
  await a.observe(batch([0, 1, 0, 1, 0, 0]), obsCtx(t0, [0, 1], 0));
  const dir = join(root, 'ncm');
  writeMethodState(dir, 'method', await a.saveState!(stateCtx));
  await b.loadState!(readMethodState(dir, 'method'), stateCtx);
  await a.observe(batch([1, 1, 0, 1, 0, 1]), obsCtx(t0, [0, 1], 0));
  await b.observe(batch([1, 1, 0, 1, 0, 1]), obsCtx(t0, [0, 1], 0));
  assertSameState(await a.saveState!(stateCtx), await b.saveState!(stateCtx), 'ncm');
  const ctx = { ...view, exposedClasses: [0, 1], purpose: 'task_end' as const, reportPhase: () => {} };
  assert.deepEqual([...(await b.predict(images, [0, 1], ctx))], [...(await a.predict(images, [0, 1], ctx))]);
  // 12 samples seen: the counts are the number of each label
  assert.deepEqual((await a.saveState!(stateCtx)).json['counts'], [[0, 6], [1, 6]]);
});

test('cm-moe: a state saved before label novelty (no detectedBy / labelsOf / lastNovelShare) loads; a bad one names the field', async () => {
  const options = { model: modelDir, lr: 1e-2, evalBatchSize: 8, expertsPerSubnet: 2, topK: 2, bottleneck: 4, maxSubnets: 4, numClusters: 2, ddas: { hidden: 8 } };
  const a = await createMethod('cm-moe', options, env());
  const b = await createMethod('cm-moe', options, env());
  const c = await createMethod('cm-moe', options, env());
  try {
    await prefix(a);
    const saved = await a.saveState!(stateCtx);
    const own = saved.json['own'] as Record<string, unknown>;
    const { detectedBy: _d, labelsOf: _l, lastNovelShare: _s, ...older } = own;
    await b.loadState!({ ...saved, json: { ...saved.json, own: older } }, stateCtx);
    const again = (await b.saveState!(stateCtx)).json['own'] as Record<string, unknown>;
    assert.deepEqual([again['detectedBy'], again['labelsOf'], again['lastNovelShare']], [[], [], null]);
    await assert.rejects(() => c.loadState!({ ...saved, json: { ...saved.json, own: { ...own, detectedBy: ['x'] } } }, stateCtx), /cm-moe state\.own\.detectedBy: expected 'labels' \| 'ddas' per detection/);
  } finally {
    for (const m of [a, b, c]) await m.dispose?.();
  }
});
