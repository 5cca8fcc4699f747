/**
 * Engine benchmark (`npm run bench:engine`). Heavy: run it alone on the machine.
 *
 * (a) one training step of 4 frozen ViT-B blocks (width 768, 12 heads, MLP 3072, 197 tokens, batch 8) with a
 *     768→64→768 ReLU adapter per block in parallel with the MLP (adapters trainable, AdamW): one graph, one run;
 * (b) the forward pass of a ViT-B/16-shaped image tower (random weights, batch 8);
 * (c) numpy fp32 GEMM (M=1576, K=768, N=3072) in the same run, as the machine's reference throughput: sampled
 *     before, between and after the ORT timings (median of the three), since a shared machine's speed drifts.
 * Each timing: warm-up runs, then the median of N runs. FLOPs are counted analytically (matrix products only,
 * 2·M·K·N each; elementwise work is not counted), counting only the work a step needs:
 *   forward per block  = 8Nd² (q,k,v,out) + 4Ndm (MLP) + 4BT²d (scores, context) + 4Ndr (adapter)
 *   backward, blocks 1..3 (their input depends on earlier adapters): the input gradient of every product,
 *                        8Nd² + 4Ndm + 8BT²d; block 0 needs none
 *   adapter backward   = 6Ndr per block (dUp, d hidden, dDown) + 2Ndr for blocks 1..3 (d input)
 * with N = B·T tokens, d = 768, m = 3072, r = 64.
 * The last line of output is JSON: step_ms, step_gflops, forward_ms, numpy_gemm_gflops, step_ratio and details.
 *
 * `--profile`: after the timings, the step graph also runs in an in-process session with ORT's profiler on
 * (same session options as the engine's); kernel time of the profiled runs (after 3 warm-up runs) is
 * summed by op type and by phase of the node name (`grad/…` backward, `optimizer/…` optimizer, else forward),
 * printed to stderr and added to the JSON as `profile` (op type → % of kernel time) and `profile_phase`.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type * as Ort from 'onnxruntime-node';
import { Graph, buildTrainStep, linear, mul, reduceMean, relu, reshape, type Tensor } from '../src/graph/index.ts';
import { Engine } from '../src/runtime/engine.ts';
import type { TensorData } from '../src/runtime/types.ts';
import { VIT_B_16, type ClipConfig } from '../src/clip/config.ts';
import { randomClipWeights } from '../src/clip/random.ts';
import { clipWeightSource, imageEncoder, residualBlock, type BlockSpec } from '../src/clip/model.ts';
import { Rng } from '../src/util/rng.ts';

const B = 8;
const T = 197;
const D = 768;
const HEADS = 12;
const MLP = 3072;
const R = 64;
const BLOCKS = 4;
const threads = availableParallelism();

const log = (s: string) => process.stdout.write(s + '\n');
const PROFILE = process.argv.includes('--profile');
const PROFILE_WARMUP = 3;
const PROFILE_RUNS = 5;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const k = s.length >> 1;
  return s.length % 2 ? s[k]! : (s[k - 1]! + s[k]!) / 2;
}

async function timeRuns(warmup: number, runs: number, fn: () => Promise<void>): Promise<{ median: number; all: number[] }> {
  for (let i = 0; i < warmup; i++) await fn();
  const all: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await fn();
    all.push(performance.now() - t0);
  }
  return { median: median(all), all };
}

function randn(n: number, std: number, rng: Rng): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = std * rng.normal();
  return a;
}

/** A CLIP config whose image tower is ViT-B/16-shaped with `layers` blocks and whose text tower is negligible. */
function vitConfig(layers: number): ClipConfig {
  return {
    ...VIT_B_16,
    vision: { ...VIT_B_16.vision, layers },
    text: { contextLength: 4, vocabSize: 8, width: 8, layers: 1, heads: 1, mlpDim: 8, act: 'quick_gelu', lnEps: 1e-5 },
  };
}

/** Analytic FLOPs of the training step (see the module doc). */
function stepFlops(): number {
  const N = B * T;
  const linearF = 8 * N * D * D + 4 * N * D * MLP;
  const attnF = 4 * B * T * T * D;
  const adapterF = 4 * N * D * R;
  const forward = BLOCKS * (linearF + attnF + adapterF);
  const backward = (BLOCKS - 1) * (linearF + 2 * attnF) + BLOCKS * 3 * (2 * N * D * R) + (BLOCKS - 1) * 2 * N * D * R;
  return forward + backward;
}

/** Analytic FLOPs of the ViT-B/16 image-tower forward. */
function forwardFlops(cfg: ClipConfig): number {
  const v = cfg.vision;
  const P = (v.imageSize / v.patchSize) ** 2;
  const Tt = P + 1;
  const N = B * Tt;
  const perBlock = 8 * N * v.width * v.width + 4 * N * v.width * v.mlpDim + 4 * B * Tt * Tt * v.width;
  return 2 * B * P * 3 * v.patchSize ** 2 * v.width + v.layers * perBlock + 2 * B * v.width * cfg.embedDim;
}

/** Builds the adapter training-step graph; returns its bytes and the names of the adapter tensors. */
function buildStepGraph(cfg: ClipConfig): { bytes: Uint8Array; params: Array<{ name: string; shape: number[] }> } {
  const weights = randomClipWeights(cfg, 1);
  const g = new Graph({ name: 'bench_step' });
  const W = clipWeightSource(g, weights);
  const x = g.input('x', 'float32', ['batch', T, D]);
  const params: Tensor[] = [];
  const spec: BlockSpec = { tower: 'image', width: D, heads: HEADS, act: 'quick_gelu', eps: 1e-5 };
  let h = x;
  for (let l = 0; l < BLOCKS; l++) {
    h = residualBlock(g, W, `vision_model.encoder.layers.${l}`, h, spec, l, null, {
      block: ({ x: xr, layer }) => {
        const p = (n: string, shape: number[]) => {
          const t = g.input(`adapter.${layer}.${n}`, 'float32', shape);
          params.push(t);
          return t;
        };
        const down = p('down.weight', [R, D]);
        const downB = p('down.bias', [R]);
        const up = p('up.weight', [D, R]);
        const upB = p('up.bias', [D]);
        const rows = reshape(xr, [-1, D]);
        return reshape(mul(linear(relu(linear(rows, down, downB)), up, upB), 0.1), [-1, T, D]);
      },
    });
  }
  const loss = reduceMean(mul(h, h));
  buildTrainStep(g, { loss, params, optimizer: { kind: 'adamw', weightDecay: 0 } });
  return { bytes: g.toBytes(), params: params.map((t) => ({ name: t.name, shape: t.shape as number[] })) };
}

/** numpy fp32 GEMM GFLOP/s (median of 10 after warm-up), or null with a hint when numpy is unavailable. */
function numpyGemm(): { gflops: number | null; note: string } {
  const script = [
    'import time, numpy as np',
    'M, K, N = 1576, 768, 3072',
    'a = np.random.rand(M, K).astype(np.float32); b = np.random.rand(K, N).astype(np.float32)',
    'for _ in range(3): a @ b',
    'ts = []',
    'for _ in range(10):',
    '    t = time.perf_counter(); a @ b; ts.append(time.perf_counter() - t)',
    'ts.sort(); print(2 * M * K * N / ts[len(ts) // 2] / 1e9)',
  ].join('\n');
  const env = { ...process.env };
  delete env['OPENBLAS_CORETYPE'];
  delete env['OPENBLAS_L2_SIZE'];
  try {
    const out = execFileSync('python3', ['-c', script], { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    return { gflops: Number(out.trim()), note: 'numpy via python3' };
  } catch (e) {
    return { gflops: null, note: `numpy unavailable (${(e as Error).message.split('\n')[0]}); install it with: apt-get install python3-numpy` };
  }
}

/** Kernel time (ms) by op type and by phase, over the profiled runs. */
interface ProfileSplit {
  runs: number;
  totalMs: number;
  byOp: Map<string, number>;
  byPhase: Map<string, number>;
}

/** One event of ORT's Chrome-trace profile (only the fields used here). */
interface TraceEvent {
  cat?: string;
  name?: string;
  ts?: number;
  dur?: number;
  args?: { op_name?: string };
}

/** Phase of a (possibly fused) node from its name: autodiff puts backward nodes under `grad/`. */
function phaseOf(nodeName: string): 'forward' | 'backward' | 'optimizer' {
  if (nodeName.startsWith('grad/')) return 'backward';
  if (nodeName.startsWith('optimizer/')) return 'optimizer';
  return 'forward';
}

/** Runs the step graph `PROFILE_WARMUP + PROFILE_RUNS` times with ORT's profiler on; splits the last runs' kernel time. */
async function profileStep(bytes: Uint8Array, feeds: Record<string, TensorData>): Promise<ProfileSplit> {
  const mod = await import('onnxruntime-node');
  const ort = (mod as unknown as { default?: typeof Ort }).default ?? (mod as unknown as typeof Ort);
  const dir = mkdtempSync(join(tmpdir(), 'moeclip-profile-'));
  try {
    const session = await ort.InferenceSession.create(bytes, {
      executionProviders: ['cpu'],
      intraOpNumThreads: threads,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
      enableCpuMemArena: true,
      enableMemPattern: true,
      logSeverityLevel: 4,
      enableProfiling: true,
      profileFilePrefix: join(dir, 'step'),
    });
    const ortFeeds: Record<string, Ort.Tensor> = {};
    for (const [name, t] of Object.entries(feeds)) ortFeeds[name] = new ort.Tensor(t.dtype, t.data, t.dims);
    for (let i = 0; i < PROFILE_WARMUP + PROFILE_RUNS; i++) await session.run(ortFeeds);
    session.endProfiling();
    await session.release();
    const files = readdirSync(dir).filter((f) => f.endsWith('.json'));
    if (files.length !== 1) throw new Error(`profile: expected one trace file in ${dir}, found ${files.length}`);
    const events = JSON.parse(readFileSync(join(dir, files[0]!), 'utf8')) as TraceEvent[];
    const runs = events.filter((e) => e.cat === 'Session' && e.name === 'model_run').sort((a, b) => a.ts! - b.ts!);
    const expected = PROFILE_WARMUP + PROFILE_RUNS;
    if (runs.length !== expected) throw new Error(`profile: expected ${expected} model_run events, found ${runs.length}`);
    const lastWarmup = runs[PROFILE_WARMUP - 1]!;
    const after = lastWarmup.ts! + lastWarmup.dur!;
    const split: ProfileSplit = { runs: PROFILE_RUNS, totalMs: 0, byOp: new Map(), byPhase: new Map() };
    for (const e of events) {
      if (e.cat !== 'Node' || !e.name?.endsWith('_kernel_time') || e.ts! < after) continue;
      const ms = e.dur! / 1e3 / PROFILE_RUNS;
      const op = e.args?.op_name ?? '?';
      const phase = phaseOf(e.name.slice(0, -'_kernel_time'.length));
      split.totalMs += ms;
      split.byOp.set(op, (split.byOp.get(op) ?? 0) + ms);
      split.byPhase.set(phase, (split.byPhase.get(phase) ?? 0) + ms);
    }
    return split;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Sorted `[key, ms]` pairs, largest first. */
function ranked(m: Map<string, number>): Array<[string, number]> {
  return [...m.entries()].sort((a, b) => b[1] - a[1]);
}

/** Prints the split to stderr (op type → ms and %, then phase → ms and %). */
function reportProfile(p: ProfileSplit): void {
  const err = (s: string) => process.stderr.write(s + '\n');
  const pct = (ms: number) => ((100 * ms) / p.totalMs).toFixed(1).padStart(5);
  err(`profile: kernel time per step ${p.totalMs.toFixed(1)} ms (mean of ${p.runs} runs)`);
  for (const [op, ms] of ranked(p.byOp)) err(`  ${op.padEnd(24)} ${ms.toFixed(1).padStart(8)} ms ${pct(ms)} %`);
  err('profile by phase:');
  for (const [ph, ms] of ranked(p.byPhase)) err(`  ${ph.padEnd(24)} ${ms.toFixed(1).padStart(8)} ms ${pct(ms)} %`);
}

/** `{key: percent}` with one decimal, largest first. */
function percentages(m: Map<string, number>, total: number): Record<string, number> {
  return Object.fromEntries(ranked(m).map(([k, ms]) => [k, Number(((100 * ms) / total).toFixed(1))]));
}

async function main(): Promise<void> {
  log(`engine bench: ${threads} threads; batch ${B}, ${T} tokens, width ${D}, ${HEADS} heads, MLP ${MLP}`);
  // numpy is sampled before, between and after the ORT timings (the machine is shared: its speed drifts)
  const npSamples: number[] = [];
  let npNote = '';
  const sampleNumpy = (when: string) => {
    const r = numpyGemm();
    npNote = r.note;
    if (r.gflops !== null) npSamples.push(r.gflops);
    log(`numpy fp32 GEMM 1576x768x3072 (${when}): ${r.gflops === null ? r.note : `${r.gflops.toFixed(1)} GFLOP/s`}`);
  };
  sampleNumpy('before');

  const engine = await Engine.create({ threads });
  const rng = new Rng(7);
  let result: Record<string, unknown>;
  try {
    // (a) training step
    const stepCfg = vitConfig(BLOCKS);
    let t0 = performance.now();
    const { bytes, params } = buildStepGraph(stepCfg);
    const stepMB = bytes.byteLength / 1e6;
    const buildMs = performance.now() - t0;
    t0 = performance.now();
    const step = await engine.session('bench/step', () => bytes);
    const createMs = performance.now() - t0;
    log(`step graph: ${stepMB.toFixed(1)} MB, built in ${buildMs.toFixed(0)} ms, session created in ${createMs.toFixed(0)} ms`);
    const feeds: Record<string, TensorData> = {
      x: { dtype: 'float32', dims: [B, T, D], data: randn(B * T * D, 1, rng) },
      lr: { dtype: 'float32', dims: [], data: Float32Array.of(1e-3) },
      step: { dtype: 'float32', dims: [], data: Float32Array.of(1) },
    };
    for (const p of params) {
      const n = p.shape.reduce((a, b) => a * b, 1);
      feeds[p.name] = { dtype: 'float32', dims: p.shape, data: randn(n, p.name.endsWith('weight') ? 0.03 : 0, rng) };
      feeds[`${p.name}.m`] = { dtype: 'float32', dims: p.shape, data: new Float32Array(n) };
      feeds[`${p.name}.v`] = { dtype: 'float32', dims: p.shape, data: new Float32Array(n) };
    }
    let loss = NaN;
    const stepT = await timeRuns(3, 7, async () => {
      const out = await engine.run(step, feeds);
      loss = out['loss']!.data[0] as number;
    });
    const sf = stepFlops();
    const stepGflops = sf / 1e9 / (stepT.median / 1e3);
    log(`train step: median ${stepT.median.toFixed(0)} ms of [${stepT.all.map((x) => x.toFixed(0)).join(', ')}], ${(sf / 1e9).toFixed(1)} GFLOP → ${stepGflops.toFixed(1)} GFLOP/s (loss ${loss.toFixed(4)})`);
    await engine.release('bench/step');
    const profile = PROFILE ? await profileStep(bytes, feeds) : null;
    if (profile) reportProfile(profile);
    sampleNumpy('between');

    // (b) ViT-B/16 image tower forward
    const fwdCfg = vitConfig(12);
    t0 = performance.now();
    const fwdWeights = randomClipWeights(fwdCfg, 2);
    const g = new Graph({ name: 'bench_vit_b16' });
    g.output(imageEncoder(g, clipWeightSource(g, fwdWeights), fwdCfg, g.input('pixels', 'float32', ['batch', 3, 224, 224])), 'embeds');
    const fbytes = g.toBytes();
    const fBuildMs = performance.now() - t0;
    t0 = performance.now();
    const fwd = await engine.session('bench/forward', () => fbytes);
    const fCreateMs = performance.now() - t0;
    log(`ViT-B/16 forward graph: built in ${fBuildMs.toFixed(0)} ms, session created in ${fCreateMs.toFixed(0)} ms`);
    const pixels: TensorData = { dtype: 'float32', dims: [B, 3, 224, 224], data: randn(B * 3 * 224 * 224, 1, rng) };
    const fwdT = await timeRuns(2, 5, async () => {
      await engine.run(fwd, { pixels });
    });
    const ff = forwardFlops(fwdCfg);
    const fwdGflops = ff / 1e9 / (fwdT.median / 1e3);
    log(`ViT-B/16 forward (batch ${B}): median ${fwdT.median.toFixed(0)} ms of [${fwdT.all.map((x) => x.toFixed(0)).join(', ')}], ${(ff / 1e9).toFixed(1)} GFLOP → ${fwdGflops.toFixed(1)} GFLOP/s`);

    sampleNumpy('after');
    const npGflops = npSamples.length ? median(npSamples) : null;
    if (npGflops === null) log(npNote);
    result = {
      step_ms: Math.round(stepT.median),
      step_gflops: Number(stepGflops.toFixed(1)),
      forward_ms: Math.round(fwdT.median),
      numpy_gemm_gflops: npGflops === null ? null : Number(npGflops.toFixed(1)),
      step_ratio: npGflops === null ? null : Number((stepGflops / npGflops).toFixed(3)),
      forward_gflops: Number(fwdGflops.toFixed(1)),
      forward_ratio: npGflops === null ? null : Number((fwdGflops / npGflops).toFixed(3)),
      numpy_samples: npSamples.map((x) => Number(x.toFixed(1))),
      step_gflop: Number((sf / 1e9).toFixed(1)),
      forward_gflop: Number((ff / 1e9).toFixed(1)),
      forward_batch: B,
      threads,
      step_session_create_ms: Math.round(createMs),
      forward_session_create_ms: Math.round(fCreateMs),
      ...(profile
        ? {
            profile: percentages(profile.byOp, profile.totalMs),
            profile_phase: percentages(profile.byPhase, profile.totalMs),
            profile_kernel_ms: Number(profile.totalMs.toFixed(1)),
          }
        : {}),
    };
  } finally {
    await engine.close();
  }
  log(JSON.stringify(result));
}

main().catch((e: unknown) => {
  process.stderr.write(`bench failed: ${(e as Error).stack ?? String(e)}\n`);
  process.exitCode = 1;
});
