/**
 * `npm run bench:moe` — one training step of models/moeclip-tiny with MoE adapters in every block of both towers
 * (22 experts, top-2, one router) against the same model with one dense adapter per block, same batch
 * (16 images, 10 class prompts), measured in the same run. Prints progress to stderr and a last JSON line:
 *   moe_step_ms, dense_step_ms (medians over the timed steps), moe_over_dense (target ≤ 1.25),
 *   train_img_per_s (MoE), session_create_ms (MoE train session, first step minus a timed step),
 *   bytes_per_step (feeds + fetched outputs crossing the thread boundary per MoE step), state_bytes (resident
 *   tensors: backbone + MoE parameters + moments), traffic_share = bytes_per_step / state_bytes (target ≤ 1 %).
 * Diagnosis of the gap: moe_optimizer_ms / dense_optimizer_ms time the AdamW update alone (optim.ts's `adamw`,
 *   per-row step counters as in training, no masks: nothing is frozen at task 0) over each method's trainable
 *   tensors, resident in a store of an in-process host with the engine's session options; and
 *   moe_over_dense_without_optimizer = (moe_step_ms − moe_optimizer_ms) / (dense_step_ms − dense_optimizer_ms).
 *   The optimizer touches every trainable expert each step, selected or not (as the reference's AdamW does:
 *   unselected experts get zero gradients, and their moments still move them).
 * Options: --steps N (default 12), --threads N.
 */
import { parseArgs } from 'node:util';
import { createMethod } from '../src/methods/registry.ts';
import { ClipResources, CLIP_RESOURCES, DEFAULT_CLIP_MODEL_DIR } from '../src/methods/clip-resources.ts';
import type { ObserveContext, StreamView, TaskInfo } from '../src/methods/method.ts';
import type { Image } from '../src/data/types.ts';
import { Rng } from '../src/util/rng.ts';
import { availableParallelism } from 'node:os';
import { Graph } from '../src/graph/builder.ts';
import { adamw } from '../src/graph/optim.ts';
import { add } from '../src/graph/ops/elementwise.ts';
import { OrtHost } from '../src/runtime/ort-host.ts';
import type { TensorData } from '../src/runtime/types.ts';

const { values } = parseArgs({ options: { steps: { type: 'string', default: '12' }, threads: { type: 'string' } } });
const steps = Number(values.steps);
if (!Number.isInteger(steps) || steps < 1) throw new Error(`bench:moe --steps: expected an integer ≥ 1, got '${values.steps}'`);
const threads = values.threads ? Number(values.threads) : undefined;
if (threads !== undefined && (!Number.isInteger(threads) || threads < 1)) throw new Error(`bench:moe --threads: expected an integer ≥ 1, got '${values.threads}'`);
const classes = Array.from({ length: 10 }, (_, i) => `class ${i}`);
const view: StreamView = { classNames: classes, templatesFor: () => ['a photo of a {}.'], kind: 'class-incremental' };
const rng = new Rng(7);
const images: Image[] = Array.from({ length: 16 }, () => ({ width: 64, height: 64, channels: 3, pixels: Uint8Array.from({ length: 64 * 64 * 3 }, () => rng.int(256)) }));
const labels = Int32Array.from({ length: 16 }, (_, i) => i % 10);
const task: TaskInfo = { id: 0, name: 't0', classes: classes.map((_, i) => i), size: 16, numTasks: 1 };
const ctx = (i: number): ObserveContext => ({
  ...view,
  rng: new Rng(i),
  memory: null,
  step: 0,
  stepsThisBatch: 1,
  exposedClasses: task.classes,
  samplesSeen: i * 16,
  batchIndex: i,
  task,
  reportPhase: () => {},
});

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

interface Measured {
  first: number;
  step: number;
  bytesPerStep: number;
  stateBytes: number;
  params: number;
  /** Trainable tensors: dims, and whether the step counter is per row ([E,1,1]). */
  trainable: Array<{ dims: number[]; rowed: boolean }>;
}

async function measure(name: string, options: Record<string, unknown>): Promise<Measured> {
  const res = new ClipResources(threads !== undefined ? { threads } : {});
  const m = (await createMethod(name, { model: DEFAULT_CLIP_MODEL_DIR, ...options }, { stream: view, rng: new Rng(1), resources: { [CLIP_RESOURCES]: res } })) as never as {
    observe(b: unknown, c: ObserveContext): Promise<unknown>;
    beginTask?(t: TaskInfo, c: unknown): Promise<void>;
    trainer: { engine: { stats(): { bytesToHost: number; bytesFromHost: number }; storeInfo(s: unknown): ReadonlyMap<string, { dims: number[] }> }; state: { store: unknown; paramCount: number; names: string[] } };
    dispose(): Promise<void>;
  };
  await m.beginTask?.(task, { ...view, rng: new Rng(2), memory: null, exposedClasses: [], samplesSeen: 0, reportPhase: () => {} });
  const batch = { images, labels, items: [], numIncoming: 16 };
  let t0 = performance.now();
  await m.observe(batch, ctx(0));
  const first = performance.now() - t0;
  const times: number[] = [];
  const s0 = m.trainer.engine.stats();
  for (let i = 1; i <= steps; i++) {
    t0 = performance.now();
    await m.observe(batch, ctx(i));
    times.push(performance.now() - t0);
    process.stderr.write(`${name}: step ${i}/${steps} ${times[times.length - 1]!.toFixed(0)} ms\n`);
  }
  const s1 = m.trainer.engine.stats();
  const bytesPerStep = (s1.bytesToHost - s0.bytesToHost + s1.bytesFromHost - s0.bytesFromHost) / steps;
  let stateFloats = 0;
  const info = m.trainer.engine.storeInfo(m.trainer.state.store);
  for (const i of info.values()) stateFloats += i.dims.reduce((a, b) => a * b, 1);
  const params = m.trainer.state.paramCount;
  const trainable = m.trainer.state.names.map((n) => ({ dims: [...info.get(n)!.dims], rowed: (info.get(`${n}.t`)?.dims.length ?? 0) > 0 }));
  await m.dispose();
  await res.dispose();
  return { first, step: median(times), bytesPerStep, stateBytes: stateFloats * 4, params, trainable };
}

/** Median ms of the AdamW update alone over `tensors` (resident in a host store, replaced by `.next` each run). */
async function optimizerMs(tensors: Measured['trainable'], weightDecay: number): Promise<number> {
  const g = new Graph({ name: 'adamw_only' });
  const lr = g.input('lr', 'float32', []);
  const store: Record<string, TensorData> = {};
  const replace: string[] = [];
  const rng = new Rng(3);
  const filled = (dims: number[], f: () => number): TensorData => ({ dtype: 'float32', dims, data: Float32Array.from({ length: dims.reduce((a, b) => a * b, 1) }, f) });
  tensors.forEach(({ dims, rowed }, i) => {
    const counterDims = rowed ? [dims[0]!, ...dims.slice(1).map(() => 1)] : [];
    const names = [`p${i}`, `p${i}.m`, `p${i}.v`, `p${i}.g`, `p${i}.t`];
    const [p, m, v, gr] = names.slice(0, 4).map((n) => g.input(n, 'float32', dims));
    const t = g.input(names[4]!, 'float32', counterDims);
    store[names[0]!] = filled(dims, () => 0.02 * rng.normal());
    store[names[1]!] = filled(dims, () => 1e-3 * rng.normal());
    store[names[2]!] = filled(dims, () => 1e-6 * rng.float());
    store[names[3]!] = filled(dims, () => 1e-3 * rng.normal());
    store[names[4]!] = filled(counterDims, () => 5);
    const tNext = add(t, 1);
    const r = adamw({ param: p!, grad: gr!, m: m!, v: v!, lr, step: tNext }, { weightDecay });
    g.output(r.param, `p${i}.next`);
    g.output(r.m, `p${i}.m.next`);
    g.output(r.v, `p${i}.v.next`);
    g.output(tNext, `p${i}.t.next`);
    replace.push(names[0]!, names[1]!, names[2]!, names[4]!);
  });
  const host = await OrtHost.load();
  await host.create(1, g.toBytes(), { threads: threads ?? availableParallelism(), optimizationLevel: 'all', disablePrepacking: false, logSeverity: 3 });
  await host.createStore(1, 'adamw');
  await host.putTensors(1, store);
  const inputs = Object.fromEntries(Object.keys(store).map((n) => [n, 1]));
  const plan = { inputs, update: 1, replace, returned: [] };
  const lrFeed: Record<string, TensorData> = { lr: { dtype: 'float32', dims: [], data: new Float32Array([1e-3]) } };
  const times: number[] = [];
  for (let i = 0; i < steps + 2; i++) {
    const t0 = performance.now();
    await host.run(1, lrFeed, undefined, plan);
    if (i >= 2) times.push(performance.now() - t0);
  }
  await host.releaseAll();
  return median(times);
}

const common = { lr: 1e-3, visibleClasses: 'all' as const, weightDecay: 0 };
const moe = await measure('moe-adapters', { ...common, experts: 22, topK: 2, routers: 'shared', ddas: { enabled: false } });
const dense = await measure('adapter-clip', { ...common });
// the backbone lives in its own resident store (shared by every session): count it into the state size
const { loadClip } = await import('../src/clip/load.ts');
let backbone = 0;
for (const w of loadClip(DEFAULT_CLIP_MODEL_DIR).weights.values()) backbone += w.data.length;
const stateBytes = moe.stateBytes + backbone * 4;
process.stderr.write('timing the AdamW update alone over each trainable set\n');
const moeOpt = await optimizerMs(moe.trainable, common.weightDecay);
const denseOpt = await optimizerMs(dense.trainable, common.weightDecay);
const out = {
  moe_step_ms: Math.round(moe.step),
  dense_step_ms: Math.round(dense.step),
  moe_over_dense: Number((moe.step / dense.step).toFixed(3)),
  train_img_per_s: Number((16 / (moe.step / 1000)).toFixed(1)),
  session_create_ms: Math.round(moe.first - moe.step),
  bytes_per_step: Math.round(moe.bytesPerStep),
  state_bytes: stateBytes,
  traffic_share: Number((moe.bytesPerStep / stateBytes).toFixed(5)),
  moe_optimizer_ms: Number(moeOpt.toFixed(1)),
  dense_optimizer_ms: Number(denseOpt.toFixed(1)),
  moe_over_dense_without_optimizer: Number(((moe.step - moeOpt) / (dense.step - denseOpt)).toFixed(3)),
  moe_trainable_params: moe.params,
  dense_trainable_params: dense.params,
  steps,
};
process.stdout.write(`${JSON.stringify(out)}\n`);
