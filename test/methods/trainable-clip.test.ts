/**
 * The trainable CLIP methods on a tiny random model, through the real trainer (resident state, one session per
 * step): the backbone never changes; a training step moves the adapters; MoE-Adapters' activate-freeze leaves
 * frozen expert rows bit-identical while they keep receiving traffic; a new task's router leaves the old router
 * bit-identical; stacked experts compute what per-expert tensors compute; bad options name their field.
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
import type { MethodEnv, ObserveContext, StreamView, TaskContext, TaskInfo } from '../../src/methods/method.ts';
import { createMethod, parseMethodOptions } from '../../src/methods/registry.ts';
import { visibleClassesFor } from '../../src/methods/clip-trainer.ts';
import { maskedSoftmax } from '../../src/methods/lwf.ts';
import { MoeLayout } from '../../src/moe/layout.ts';
import { STACK_PARTS, stackedTensorName, stackExpertData } from '../../src/moe/hooks.ts';
import { Rng } from '../../src/util/rng.ts';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const BPE = join(REPO, '../shared/clip/bpe_simple_vocab_16e6.txt.gz');
const root = mkdtempSync(join(tmpdir(), 'moeclip-trainable-'));
const modelDir = join(root, 'model');
writeRandomClip(modelDir, tinyClipConfig(), { layout: 'hf', seed: 3, bpePath: BPE, perturbStd: 0.1 });
const resources = new ClipResources({ threads: 1 });
after(async () => {
  await resources.dispose();
  rmSync(root, { recursive: true, force: true });
});

const CLASSES = ['cat', 'dog', 'red car', 'tree'];
const view: StreamView = { classNames: CLASSES, templatesFor: () => ['a photo of a {}.'], kind: 'class-incremental' };
const env = (): MethodEnv => ({ stream: view, rng: new Rng(1), resources: { [CLIP_RESOURCES]: resources } });
const rng = new Rng(5);
const images: Image[] = Array.from({ length: 8 }, () => ({ width: 20, height: 20, channels: 3, pixels: Uint8Array.from({ length: 1200 }, () => rng.int(256)) }));

function task(id: number, classes: number[]): TaskInfo {
  return { id, name: `t${id}`, classes, size: 8, numTasks: 2 };
}
const taskCtx = (exposed: number[]): TaskContext => ({ ...view, rng: new Rng(2), memory: null, exposedClasses: exposed, samplesSeen: 0, reportPhase: () => {} });
function obsCtx(t: TaskInfo, exposed: number[]): ObserveContext {
  return { ...view, rng: new Rng(3), memory: null, step: 0, stepsThisBatch: 1, exposedClasses: exposed, samplesSeen: 0, batchIndex: 0, task: t, reportPhase: () => {} };
}
const batch = (labels: number[]) => ({ images, labels: Int32Array.from(labels), items: [], numIncoming: images.length });

function same(a: Record<string, { data: ArrayLike<number> }>, b: Record<string, { data: ArrayLike<number> }>, names: string[]): boolean {
  return names.every((n) => {
    const x = a[n]!.data;
    const y = b[n]!.data;
    if (x.length !== y.length) return false;
    for (let i = 0; i < x.length; i++) if (!Object.is(x[i], y[i])) return false;
    return true;
  });
}

test('visible classes: batch, all, task (task keeps replayed classes visible)', () => {
  assert.deepEqual(visibleClassesFor('batch', [3, 1, 3], [0, 1, 2, 3], null), [1, 3]);
  assert.deepEqual(visibleClassesFor('all', [3], [0, 1, 2, 3], null), [0, 1, 2, 3]);
  assert.deepEqual(visibleClassesFor('task', [2, 0], [0, 1, 2], [2, 3]), [2, 0]);
  assert.deepEqual(visibleClassesFor('task', [2], [0, 1, 2], null), [2]);
});

test('LwF masked softmax: hand case', () => {
  const p = maskedSoftmax(Float32Array.of(0, Math.log(3), 5), 1, Uint8Array.of(1, 1, 0), 1);
  assert.ok(Math.abs(p[0]! - 0.25) < 1e-6 && Math.abs(p[1]! - 0.75) < 1e-6 && p[2] === 0);
});

test('adapter-clip: a step changes the adapters, never the backbone, and loss is finite', async () => {
  const m = (await createMethod('adapter-clip', { model: modelDir, lr: 1e-2, dropout: 0 }, env())) as never as {
    trainer: { state: { get(n?: string[]): Promise<Record<string, { data: Float32Array }>>; names: string[] }; model: { weights: Map<string, { data: Float32Array }> } };
    observe: (b: unknown, c: ObserveContext) => Promise<{ loss: number }>;
    predict: (i: Image[], c: number[], ctx: unknown) => Promise<Int32Array>;
    dispose(): Promise<void>;
  };
  const backbone = new Map([...m.trainer.model.weights].map(([k, v]) => [k, v.data.slice()]));
  const before = await m.trainer.state.get();
  const t = task(0, [0, 1]);
  let r = await m.observe(batch([0, 1, 0, 1, 0, 1, 0, 1]), obsCtx(t, [0, 1]));
  r = await m.observe(batch([0, 1, 0, 1, 0, 1, 0, 1]), obsCtx(t, [0, 1]));
  assert.ok(Number.isFinite(r.loss));
  const afterSteps = await m.trainer.state.get();
  // up projections start at zero and move after two steps (the first step moves them, the second the down ones)
  assert.ok(!same(before, afterSteps, m.trainer.state.names), 'adapters changed');
  for (const [k, v] of m.trainer.model.weights) assert.ok(v.data.every((x, i) => Object.is(x, backbone.get(k)![i])), `backbone ${k} unchanged`);
  const preds = await m.predict(images, [0, 1, 2], { ...view, exposedClasses: [0, 1, 2], purpose: 'task_end', reportPhase: () => {} });
  assert.equal(preds.length, images.length);
  assert.ok([...preds].every((p) => p >= 0 && p <= 2));
  await m.dispose();
});

test('moe-adapters: frozen expert rows stay bit-identical while routed; a new router leaves the old one bit-identical', async () => {
  const m = (await createMethod('moe-adapters', { model: modelDir, experts: 4, topK: 2, routers: 'per-task', ddas: { enabled: false }, lr: 1e-2 }, env())) as never as {
    trainer: { state: { get(n?: string[]): Promise<Record<string, { data: Float32Array }>> } };
    moe: { layout: MoeLayout; router: number };
    beginTask(t: TaskInfo, c: TaskContext): Promise<void>;
    endTask(t: TaskInfo, c: TaskContext): Promise<void>;
    observe: (b: unknown, c: ObserveContext) => Promise<{ loss: number }>;
    describeCost(): { extra?: Record<string, number> };
    dispose(): Promise<void>;
  };
  const t0 = task(0, [0, 1]);
  await m.beginTask(t0, taskCtx([]));
  for (let i = 0; i < 3; i++) await m.observe(batch([0, 1, 0, 1, 0, 1, 0, 1]), obsCtx(t0, [0, 1]));
  await m.endTask(t0, taskCtx([0, 1]));
  const L = m.moe.layout;
  const site = L.sites[0]!;
  const frozen = L.frozen(site);
  assert.equal(frozen.length, 2, 'activate-freeze froze the 2 most used experts of the site');
  const snap = await m.trainer.state.get();
  const t1 = task(1, [2, 3]);
  await m.beginTask(t1, taskCtx([0, 1]));
  assert.equal(m.moe.router, 1);
  const usageBefore = L.usage(1, site).reduce((a, b) => a + b, 0);
  for (let i = 0; i < 3; i++) await m.observe(batch([2, 3, 2, 3, 2, 3, 2, 3]), obsCtx(t1, [0, 1, 2, 3]));
  const later = await m.trainer.state.get();
  assert.ok(L.usage(1, site).reduce((a, b) => a + b, 0) > usageBefore, 'router 1 routed samples');
  // frozen rows of every stacked tensor: bit-identical; some unfrozen row changed
  for (const s of L.sites) {
    const cols = L.frozen(s).map((id) => L.column(s, id));
    for (const part of ['down', 'up'] as const) {
      const name = stackedTensorName(s, part);
      const a = snap[name]!.data;
      const b = later[name]!.data;
      const per = a.length / L.experts(s).length;
      for (const c of cols) for (let i = c * per; i < (c + 1) * per; i++) assert.ok(Object.is(a[i], b[i]), `${name} frozen row ${c}`);
    }
  }
  assert.ok(!same(snap, later, [stackedTensorName(site, 'down')]), 'unfrozen experts trained');
  const r0 = L.sites.flatMap((s) => [`moe.${s.key}.r0.gate`, `moe.${s.key}.r0.noise`]);
  assert.ok(same(snap, later, r0), 'router 0 bit-identical after training router 1');
  const cost = m.describeCost();
  assert.equal(cost.extra?.['expertsPerBlock'], 4);
  assert.equal(cost.extra?.['routers'], 2);
  await m.dispose();
});

test('stacked expert tensors hold the per-expert tensors in column order (transposed weights)', () => {
  const L = MoeLayout.forClip({ vision: { layers: 2, width: 6 }, text: { layers: 1, width: 4 } }, { experts: 3, routers: 1, bottleneck: 2 });
  const flat = L.initTensors(new Rng(4));
  for (const [n, t] of Object.entries(flat)) if (n.includes('.up.weight')) t.data.forEach((_, i, a) => ((a as Float32Array)[i] = i * 0.5 + 1));
  const site = L.sites[1]!;
  const st = stackExpertData(L, site, flat);
  const id = L.experts(site)[2]!;
  const dw = flat[`moe.${site.key}.e${id}.down.weight`]!.data; // [bn, d]
  const down = st[stackedTensorName(site, 'down')]!.data; // [E, d, bn]
  const uw = flat[`moe.${site.key}.e${id}.up.weight`]!.data; // [d, bn]
  const up = st[stackedTensorName(site, 'up')]!.data; // [E, bn, d]
  const d = 6;
  const bn = 2;
  for (let i = 0; i < bn; i++) for (let j = 0; j < d; j++) assert.equal(down[2 * d * bn + j * bn + i], dw[i * d + j]);
  for (let i = 0; i < d; i++) for (let j = 0; j < bn; j++) assert.equal(up[2 * bn * d + j * d + i], uw[i * bn + j]);
});

test('bad options name their field: unknown option, topK > experts, block out of range', async () => {
  await assert.rejects(() => parseMethodOptions('moe-adapters', { expertz: 3 }), /unrecognized|expertz/i);
  await assert.rejects(() => parseMethodOptions('moe-adapters', { experts: 2, topK: 3 }), /method\.topK/);
  await assert.rejects(() => createMethod('adapter-clip', { model: modelDir, blocks: [0, 7] }, env()), /method\.blocks\[1\]: layer 7 is out of range/);
});

test('cm-moe: subnets open per task, merge beyond maxSubnets, deleted experts leave the state, growth stays bounded', async () => {
  const { makeDataset } = await import('../run/fixtures.ts');
  const { createReplay } = await import('../../src/data/replay.ts');
  const ds = makeDataset('toy', 'train', 4, 6, { pattern: true });
  const memory = createReplay({ kind: 'reservoir', capacity: 64 });
  const mrng = new Rng(9);
  const m = (await createMethod('cm-moe', { model: modelDir, expertsPerSubnet: 2, topK: 2, maxSubnets: 2, numClusters: 2, finetuneSteps: 1, lr: 1e-2 }, env())) as never as {
    trainer: { state: { names: string[]; store: unknown }; engine: { storeInfo(s: unknown): ReadonlyMap<string, { dims: number[] }> } };
    moe: { layout: MoeLayout };
    registry: { subnets(): { id: number; router: number }[] };
    beginTask(t: TaskInfo, c: TaskContext): Promise<void>;
    endTask(t: TaskInfo, c: TaskContext): Promise<void>;
    observe: (b: unknown, c: ObserveContext) => Promise<{ loss: number }>;
    describeCost(): { extra?: Record<string, number> };
    dispose(): Promise<void>;
  };
  const sizes: number[] = [];
  for (let t = 0; t < 3; t++) {
    const info = task(t, [t % 4, (t + 1) % 4]);
    const exposed = [0, 1, 2, 3].slice(0, Math.min(4, t + 2));
    await m.beginTask(info, { ...taskCtx(exposed), memory });
    for (let i = 0; i < 2; i++) await m.observe(batch([t % 4, (t + 1) % 4, t % 4, (t + 1) % 4, t % 4, (t + 1) % 4, t % 4, (t + 1) % 4]), { ...obsCtx(info, exposed), memory });
    for (let i = 0; i < ds.length; i += 3) memory.add({ dataset: ds, index: i, label: ds.labels[i]!, task: t }, mrng);
    await m.endTask(info, { ...taskCtx(exposed), memory });
    sizes.push(m.moe.layout.experts(m.moe.layout.sites[0]!).length);
  }
  const cost = m.describeCost();
  assert.equal(cost.extra?.['merges'], 1, 'one merge when the third subnet closed');
  assert.deepEqual(sizes.slice(0, 2), [2, 4]);
  assert.ok(sizes[2]! <= 4, `experts after the merge: ${sizes[2]}`);
  assert.equal(m.registry.subnets().length, 2);
  const L = m.moe.layout;
  const info = m.trainer.engine.storeInfo(m.trainer.state.store);
  for (const s of L.sites) {
    assert.equal(info.get(stackedTensorName(s, 'down'))!.dims[0], L.experts(s).length, `${s.key}: state rows = layout experts`);
    assert.equal(info.get(`${stackedTensorName(s, 'down')}.m`)!.dims[0], L.experts(s).length);
  }
  const routers = new Set(m.registry.subnets().map((s) => s.router));
  for (const name of info.keys()) {
    const r = /\.r(\d+)\.(gate|noise)/.exec(name);
    if (r) assert.ok(routers.has(Number(r[1])), `${name} belongs to a live router`);
  }
  await m.dispose();
});

/** The type of what {@link threeToyTasks} drives. */
interface TaskDriven {
  beginTask(t: TaskInfo, c: TaskContext): Promise<void>;
  endTask(t: TaskInfo, c: TaskContext): Promise<void>;
  observe: (b: unknown, c: ObserveContext) => Promise<{ loss: number }>;
}

/**
 * Three tasks of two toy classes each (one batch of 8 per task); after each task's batch every sample of the
 * 24-sample toy set joins a fresh 500-sample memory under that task (24 per task, nothing evicted).
 */
async function threeToyTasks(m: TaskDriven): Promise<void> {
  const { makeDataset } = await import('../run/fixtures.ts');
  const { createReplay } = await import('../../src/data/replay.ts');
  const ds = makeDataset('toy', 'train', 4, 6, { pattern: true });
  const memory = createReplay({ kind: 'reservoir', capacity: 500 });
  const mrng = new Rng(9);
  for (let t = 0; t < 3; t++) {
    const info = task(t, [t % 4, (t + 1) % 4]);
    const exposed = [0, 1, 2, 3].slice(0, Math.min(4, t + 2));
    await m.beginTask(info, { ...taskCtx(exposed), memory });
    await m.observe(batch([0, 1, 0, 1, 0, 1, 0, 1].map((k) => (t + k) % 4)), { ...obsCtx(info, exposed), memory });
    for (let i = 0; i < ds.length; i++) memory.add({ dataset: ds, index: i, label: ds.labels[i]!, task: t }, mrng);
    await m.endTask(info, { ...taskCtx(exposed), memory });
  }
}

test("cm-moe fine-tuning after a merge: 'epoch' shows each pooled sample once in batches of 16, a number takes that many steps", async () => {
  const { makeDataset } = await import('../run/fixtures.ts');
  assert.equal(makeDataset('toy', 'train', 4, 6, { pattern: true }).length, 24);
  const runWith = async (finetuneSteps: number | 'epoch', metricSamples = 32) => {
    const m = (await createMethod('cm-moe', { model: modelDir, expertsPerSubnet: 2, topK: 2, maxSubnets: 2, numClusters: 2, finetuneSteps, metricSamples, lr: 1e-2 }, env())) as never as {
      merges: { members: number[][]; ms: number; phasesMs?: Record<string, number>; metricSamples?: number; finetune?: { steps: number; samples: number } }[];
      beginTask(t: TaskInfo, c: TaskContext): Promise<void>;
      endTask(t: TaskInfo, c: TaskContext): Promise<void>;
      observe: (b: unknown, c: ObserveContext) => Promise<{ loss: number }>;
      dispose(): Promise<void>;
    };
    await threeToyTasks(m);
    const merges = m.merges.map((g) => ({ members: g.members, ms: g.ms, phasesMs: g.phasesMs!, metricSamples: g.metricSamples, ...g.finetune! }));
    await m.dispose();
    return merges;
  };
  const epoch = await runWith('epoch');
  assert.equal(epoch.length, 1);
  // subnets hold one task each, so a merged group pools 24 samples per member
  const pooled = epoch[0]!.members.reduce((n, g) => n + 24 * g.length, 0);
  assert.ok(pooled >= 48, JSON.stringify(epoch));
  assert.equal(epoch[0]!.samples, pooled, 'each pooled sample once');
  assert.equal(epoch[0]!.steps, epoch[0]!.members.reduce((n, g) => n + Math.ceil((24 * g.length) / 16), 0));
  // the metric pass: 3 tasks with 24 memory samples each, capped at metricSamples per task
  assert.equal(epoch[0]!.metricSamples, 3 * 24);
  // the phases partition the merge's time
  const phases = epoch[0]!.phasesMs;
  assert.deepEqual(Object.keys(phases).sort(), ['apply', 'cluster', 'finetune', 'metrics']);
  assert.ok(Math.abs(Object.values(phases).reduce((a, b) => a + b, 0) - epoch[0]!.ms) < 1e-6 * Math.max(1, epoch[0]!.ms));
  const fixed = await runWith(2, 5);
  assert.equal(fixed[0]!.metricSamples, 3 * 5);
  assert.equal(fixed[0]!.steps, 2 * fixed[0]!.members.length);
  assert.equal(fixed[0]!.samples, 2 * 16 * fixed[0]!.members.length, 'batches of 16 drawn with replacement');
  await assert.rejects(() => parseMethodOptions('cm-moe', { finetuneSteps: 'twice' }), /method\.finetuneSteps/);
  await assert.rejects(() => parseMethodOptions('cm-moe', { metricSamples: 0 }), /method\.metricSamples/);
});

test('cm-moe finetuneExperts: the merged subnet\'s kept experts train in its fine-tuning and freeze again; every other expert is bit-identical to the router-only run', async () => {
  const runWith = async (finetuneExperts: boolean) => {
    const m = (await createMethod('cm-moe', { model: modelDir, expertsPerSubnet: 2, topK: 2, maxSubnets: 2, numClusters: 2, finetuneSteps: 2, finetuneExperts, lr: 1e-2 }, env())) as never as {
      moe: { layout: MoeLayout };
      registry: { subnets(): { id: number; router: number; experts: Record<string, number[]> }[] };
      merges: { members: number[][] }[];
      moeTensors(): Promise<Record<string, { data: ArrayLike<number> }>>;
      beginTask(t: TaskInfo, c: TaskContext): Promise<void>;
      endTask(t: TaskInfo, c: TaskContext): Promise<void>;
      observe: (b: unknown, c: ObserveContext) => Promise<{ loss: number }>;
      dispose(): Promise<void>;
    };
    await threeToyTasks(m);
    const L = m.moe.layout;
    // each expert's rows of the four stacked tensors, by site and expert id
    const tensors = await m.moeTensors();
    const rows = new Map<string, number[]>();
    for (const s of L.sites) {
      const ids = L.experts(s);
      for (const part of STACK_PARTS) {
        const data = Array.from(tensors[stackedTensorName(s, part)]!.data);
        const n = data.length / ids.length;
        ids.forEach((id, c) => rows.set(`${s.key}/${id}/${part}`, data.slice(c * n, (c + 1) * n)));
      }
    }
    const frozen = L.sites.map((s) => L.experts(s).map((id) => [id, L.isFrozen(s, id), L.frozenBy(s, id)]));
    const out = { merges: m.merges.map((g) => g.members), subnets: m.registry.subnets(), rows, frozen };
    await m.dispose();
    return out;
  };
  const routerOnly = await runWith(false);
  const withExperts = await runWith(true);
  assert.equal(routerOnly.merges.length, 1);
  // up to the fine-tuning both runs are the same computation: same merge, same layout, same freeze records after it
  assert.deepEqual(withExperts.merges, routerOnly.merges);
  assert.deepEqual(withExperts.subnets, routerOnly.subnets);
  assert.deepEqual(withExperts.frozen, routerOnly.frozen, 'the thawed experts are frozen again, by the same routers');
  const merged = new Set(routerOnly.merges[0]!.filter((g) => g.length > 1).map((g) => g[0]!));
  let changed = 0;
  let kept = 0;
  for (const sub of routerOnly.subnets) {
    for (const [site, ids] of Object.entries(sub.experts)) {
      for (const id of ids) {
        for (const part of STACK_PARTS) {
          const key = `${site}/${id}/${part}`;
          const a = routerOnly.rows.get(key)!;
          const b = withExperts.rows.get(key)!;
          if (merged.has(sub.id)) {
            if (a.some((v, i) => v !== b[i])) changed++;
          } else {
            kept++;
            assert.deepEqual(b, a, `${key}: an expert of an unmerged subnet never changes`);
          }
        }
      }
    }
  }
  assert.ok(changed > 0, 'the survivor\'s experts trained');
  assert.ok(kept > 0, 'an unmerged subnet was compared (3 subnets in 2 clusters leave one alone)');
  await assert.rejects(() => parseMethodOptions('cm-moe', { finetuneExperts: 'yes' }), /method\.finetuneExperts/);
});

test('evenlySpaced: first, last and evenly between, in order; the whole list when it is short', async () => {
  const { evenlySpaced } = await import('../../src/methods/cm-moe.ts');
  const xs = Array.from({ length: 10 }, (_, i) => i);
  assert.deepEqual(evenlySpaced(xs, 4), [0, 3, 6, 9]);
  assert.deepEqual(evenlySpaced(xs, 3), [0, 5, 9]); // round(4.5) = 5
  assert.deepEqual(evenlySpaced(xs, 1), [0]);
  assert.deepEqual(evenlySpaced(xs, 10), xs);
  assert.deepEqual(evenlySpaced(xs.slice(0, 3), 5), [0, 1, 2]);
});

test('cm-moe without task boundaries: the first batch opens a subnet, its DDAS autoencoder trains, a detector watches it', async () => {
  const m = (await createMethod('cm-moe', { model: modelDir, expertsPerSubnet: 2, topK: 2, maxSubnets: 2, numClusters: 2, lr: 1e-2 }, env())) as never as {
    registry: { subnets(): { id: number; open: boolean; tasks: number[] }[] };
    ddas: { describe(): { tasks: number[]; trained: number[] } } | null;
    observe: (b: unknown, c: ObserveContext) => Promise<{ loss: number }>;
    dispose(): Promise<void>;
  };
  const ctx = (i: number): ObserveContext => ({ ...obsCtx(task(0, [0, 1]), [0, 1]), task: null, batchIndex: i, samplesSeen: i * 8 });
  for (let i = 0; i < 3; i++) {
    const r = await m.observe(batch([0, 1, 0, 1, 0, 1, 0, 1]), ctx(i));
    assert.ok(Number.isFinite(r.loss));
  }
  const subnets = m.registry.subnets();
  assert.equal(subnets.length, 1);
  assert.ok(subnets[0]!.open);
  assert.deepEqual(m.ddas?.describe().trained, [subnets[0]!.id], 'the open subnet’s autoencoder trained on the stream');
  await m.dispose();
});

test('cm-moe without task boundaries: new labels open a subnet at their first batch, known labels re-enter theirs', async () => {
  const m = (await createMethod('cm-moe', { model: modelDir, expertsPerSubnet: 2, topK: 2, maxSubnets: 4, numClusters: 2, lr: 1e-2 }, env())) as never as {
    registry: { subnets(): { id: number; open: boolean }[] };
    observe: (b: unknown, c: ObserveContext) => Promise<{ loss: number; info?: Record<string, unknown> }>;
    describeCost(): { extra?: Record<string, number> };
    dispose(): Promise<void>;
  };
  const ctx = (i: number): ObserveContext => ({ ...obsCtx(task(0, [0, 1, 2, 3]), [0, 1, 2, 3]), task: null, batchIndex: i, samplesSeen: i * 8 });
  const plan = [[0, 1], [0, 1], [0, 1], [2, 3], [2, 3], [2, 3], [0, 1], [0, 1]];
  const infos: Array<Record<string, unknown>> = [];
  for (const [i, pair] of plan.entries()) infos.push((await m.observe(batch([0, 1, 2, 3, 4, 5, 6, 7].map((k) => pair[k % 2]!)), ctx(i))).info ?? {});
  const at = infos.flatMap((inf, i) => (inf['boundary'] ? [[i, inf['boundary'], inf['boundarySignal']]] : []));
  assert.deepEqual(at, [[3, 'new', 'labels'], [6, 'reenter', 'labels']], JSON.stringify(infos));
  assert.equal(infos[6]!['reentered'], m.registry.subnets()[0]!.id, 'labels 0, 1 go back to the first subnet');
  assert.equal(m.registry.subnets().length, 2);
  const extra = m.describeCost().extra!;
  assert.deepEqual([extra['detectedAt:0'], extra['detectedAt:1'], extra['detectedByLabels'], extra['detectedByDdas']], [24, 48, 2, 0]);
  // DDAS routing is scored against the subnet that trained on a task-protocol batch's classes
  const want = (c: number[]) => (m as never as { expectedRoute(c: number[], k: string): number | null }).expectedRoute(c, 'multi-dataset');
  const [s0, s1] = m.registry.subnets().map((s) => s.id);
  assert.deepEqual([want([0, 1]), want([2, 3]), want([1, 2]), want([4, 5])], [s0, s1, null, -1]);
  await m.dispose();
});

test('cm-moe traceDdas: each trained autoencoder’s mean error on the incoming batch, taken before the batch trains', async () => {
  type M = {
    ddas: { errors(f: Float32Array[]): Promise<Float32Array>; describe(): { tasks: number[] } } | null;
    lease: { features: { images(i: Image[], mode: string): Promise<Float32Array[]> } };
    beginTask(t: TaskInfo, c: TaskContext): Promise<void>;
    observe: (b: unknown, c: ObserveContext) => Promise<{ info?: Record<string, unknown> }>;
    dispose(): Promise<void>;
  };
  const opts = { model: modelDir, expertsPerSubnet: 2, topK: 2, maxSubnets: 2, numClusters: 1, lr: 1e-2, ddas: { enabled: true, hidden: 8 } };
  for (const trace of [true, false]) {
    const m = (await createMethod('cm-moe', { ...opts, traceDdas: trace }, env())) as never as M;
    const t0 = task(0, [0, 1]);
    await m.beginTask(t0, taskCtx([0, 1]));
    const first = await m.observe(batch([0, 1, 0, 1, 0, 1, 0, 1]), obsCtx(t0, [0, 1]));
    assert.ok(!Object.keys(first.info ?? {}).some((k) => k.startsWith('ddasErr:')), 'no autoencoder has trained before the first batch');
    const ids = m.ddas!.describe().tasks;
    const errs = await m.ddas!.errors(await m.lease.features.images(images, 'none'));
    const want = Array.from(ids, (_, j) => images.reduce((a, _i, i) => a + errs[i * ids.length + j]!, 0) / images.length);
    const second = await m.observe(batch([0, 1, 0, 1, 0, 1, 0, 1]), { ...obsCtx(t0, [0, 1]), batchIndex: 1 });
    const got = Object.fromEntries(Object.entries(second.info ?? {}).filter(([k]) => k.startsWith('ddasErr:')));
    if (!trace) assert.deepEqual(got, {}, 'nothing traced when traceDdas is off');
    else {
      assert.deepEqual(Object.keys(got), ids.map((id) => `ddasErr:${id}`));
      ids.forEach((id, j) => assert.ok(Math.abs((got[`ddasErr:${id}`] as number) - want[j]!) < 1e-6, `subnet ${id}: ${got[`ddasErr:${id}`]} vs ${want[j]}`));
    }
    await m.dispose();
  }
});

test('cm-moe before its first subnet (a task-free run’s baseline evaluation) answers as plain zero-shot CLIP', async () => {
  type P = { predictDetailed(i: Image[], c: number[], ctx: unknown): Promise<{ labels: Int32Array; probs: Float32Array[] | Float32Array; routes?: Int32Array }>; dispose(): Promise<void> };
  const cm = (await createMethod('cm-moe', { model: modelDir, expertsPerSubnet: 2, topK: 2, maxSubnets: 2, numClusters: 1 }, env())) as never as P;
  const zs = (await createMethod('zeroshot-clip', { model: modelDir }, env())) as never as P;
  const pctx = { ...view, kind: 'multi-dataset', exposedClasses: [], purpose: 'baseline', reportPhase: () => {} };
  const a = await cm.predictDetailed(images, [0, 1, 2, 3], pctx);
  const b = await zs.predictDetailed(images, [0, 1, 2, 3], pctx);
  assert.deepEqual([...a.labels], [...b.labels]);
  assert.deepEqual([...a.routes!], new Array(images.length).fill(-1), 'every sample answered by zero-shot (route −1)');
  const flatP = (p: Float32Array[] | Float32Array) => (Array.isArray(p) ? p.flatMap((r) => [...r]) : [...p]);
  const pa = flatP(a.probs);
  const pb = flatP(b.probs);
  assert.equal(pa.length, pb.length);
  pa.forEach((x, i) => assert.ok(Math.abs(x - pb[i]!) < 1e-5, `prob ${i}: ${x} vs ${pb[i]}`));
  await cm.dispose();
  await zs.dispose();
});
