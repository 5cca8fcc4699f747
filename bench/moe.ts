/**
 * `npm run bench:moe` — one training step of models/moeclip-tiny with MoE adapters in every block of both towers
 * (22 experts, top-2, one router) against the same model with one dense adapter per block, same batch
 * (16 images, 10 class prompts), measured in the same run. Prints progress to stderr and a last JSON line:
 *   moe_step_ms, dense_step_ms (medians over the timed steps), moe_over_dense (target ≤ 1.25),
 *   train_img_per_s (MoE), session_create_ms (MoE train session, first step minus a timed step),
 *   bytes_per_step (feeds + fetched outputs crossing the thread boundary per MoE step), state_bytes (resident
 *   tensors: backbone + MoE parameters + moments), traffic_share = bytes_per_step / state_bytes (target ≤ 1 %).
 * Options: --steps N (default 12), --threads N.
 */
import { parseArgs } from 'node:util';
import { createMethod } from '../src/methods/registry.ts';
import { ClipResources, CLIP_RESOURCES, DEFAULT_CLIP_MODEL_DIR } from '../src/methods/clip-resources.ts';
import type { ObserveContext, StreamView, TaskInfo } from '../src/methods/method.ts';
import type { Image } from '../src/data/types.ts';
import { Rng } from '../src/util/rng.ts';

const { values } = parseArgs({ options: { steps: { type: 'string', default: '12' }, threads: { type: 'string' } } });
const steps = Number(values.steps);
const threads = values.threads ? Number(values.threads) : undefined;
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
}

async function measure(name: string, options: Record<string, unknown>): Promise<Measured> {
  const res = new ClipResources(threads !== undefined ? { threads } : {});
  const m = (await createMethod(name, { model: DEFAULT_CLIP_MODEL_DIR, ...options }, { stream: view, rng: new Rng(1), resources: { [CLIP_RESOURCES]: res } })) as never as {
    observe(b: unknown, c: ObserveContext): Promise<unknown>;
    beginTask?(t: TaskInfo, c: unknown): Promise<void>;
    trainer: { engine: { stats(): { bytesToHost: number; bytesFromHost: number }; storeInfo(s: unknown): ReadonlyMap<string, { dims: number[] }> }; state: { store: unknown; paramCount: number } };
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
  for (const info of m.trainer.engine.storeInfo(m.trainer.state.store).values()) stateFloats += info.dims.reduce((a, b) => a * b, 1);
  const params = m.trainer.state.paramCount;
  await m.dispose();
  await res.dispose();
  return { first, step: median(times), bytesPerStep, stateBytes: stateFloats * 4, params };
}

const common = { lr: 1e-3, visibleClasses: 'all' as const };
const moe = await measure('moe-adapters', { ...common, experts: 22, topK: 2, routers: 'shared', ddas: { enabled: false } });
const dense = await measure('adapter-clip', { ...common });
// the backbone lives in its own resident store (shared by every session): count it into the state size
const { loadClip } = await import('../src/clip/load.ts');
let backbone = 0;
for (const w of loadClip(DEFAULT_CLIP_MODEL_DIR).weights.values()) backbone += w.data.length;
const stateBytes = moe.stateBytes + backbone * 4;
const out = {
  moe_step_ms: Math.round(moe.step),
  dense_step_ms: Math.round(dense.step),
  moe_over_dense: Number((moe.step / dense.step).toFixed(3)),
  train_img_per_s: Number((16 / (moe.step / 1000)).toFixed(1)),
  session_create_ms: Math.round(moe.first - moe.step),
  bytes_per_step: Math.round(moe.bytesPerStep),
  state_bytes: stateBytes,
  traffic_share: Number((moe.bytesPerStep / stateBytes).toFixed(5)),
  moe_trainable_params: moe.params,
  dense_trainable_params: dense.params,
  steps,
};
process.stdout.write(`${JSON.stringify(out)}\n`);
