/**
 * The MoE hooks inside a tiny random CLIP: zero-init experts leave both towers bit-identical to the plain model in
 * every mode, the text router token (EOT vs SOT) behaves as described, frozen experts and other routers stay
 * bit-identical through training steps (buildTrainStep + TrainState + Engine), and the dense adapter baseline
 * equals its JS formula.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Graph, buildTrainStep, crossEntropy, exp, matmul, mul, normalize, transpose } from '../../src/graph/index.ts';
import { Engine } from '../../src/runtime/engine.ts';
import { TrainState } from '../../src/runtime/train-state.ts';
import type { TensorData } from '../../src/runtime/types.ts';
import { tinyClipConfig, type ClipConfig } from '../../src/clip/config.ts';
import { randomClipWeights } from '../../src/clip/random.ts';
import { clipWeightSource, imageEncoder, textEncoder, type ClipHooks } from '../../src/clip/model.ts';
import { Rng } from '../../src/util/rng.ts';
import {
  EXPERT_PARTS,
  MoeLayout,
  buildAdapterHooks,
  buildMoeHooks,
  expertTensorName,
  moeWeightSource,
  routerTensorName,
  usageOutputName,
  type MoeHookOptions,
  type MoeMode,
} from '../../src/moe/index.ts';

const engine = await Engine.create({ worker: false, threads: 1 });
after(() => engine.close());

/** 2-layer tiny CLIP, vocabulary of 50 ids (49 = EOT). */
const cfg: ClipConfig = tinyClipConfig({
  vision: { layers: 2, imageSize: 16, patchSize: 8, width: 16, heads: 2, mlpDim: 24 },
  text: { layers: 2, vocabSize: 50, contextLength: 8, width: 12, heads: 2, mlpDim: 24 },
  embedDim: 8,
});
const W = randomClipWeights(cfg, 11, { perturbStd: 0.2 });
const S = cfg.vision.imageSize;
const IDS = [
  [48, 3, 17, 5, 49, 0, 0, 0],
  [48, 22, 49, 0, 0, 0, 0, 0],
  [48, 9, 9, 40, 12, 30, 49, 0],
  [48, 31, 2, 49, 0, 0, 0, 0],
];
const B = IDS.length;
const rng0 = new Rng(5);
const PIXELS = Float32Array.from({ length: B * 3 * S * S }, () => rng0.normal());

const idsTensor = (rows: number[][]): TensorData => ({ dtype: 'int64', dims: [rows.length, rows[0]!.length], data: BigInt64Array.from(rows.flat(), (v) => BigInt(v)) });
const f32 = (dims: number[], data: ArrayLike<number>): TensorData => ({ dtype: 'float32', dims, data: Float32Array.from(data) });
const randn = (rng: Rng, n: number, std = 1): number[] => Array.from({ length: n }, () => std * rng.normal());

/** Non-zero up weights and gates so that experts and routers matter. */
function perturb(layout: MoeLayout, values: Record<string, TensorData>, rng: Rng, gateStd = 1): void {
  for (const [name, t] of Object.entries(values)) {
    const n = t.data.length;
    if (name.endsWith('.up.weight') || name.endsWith('.down.bias') || name.endsWith('.up.bias')) values[name] = { ...t, data: Float32Array.from(randn(rng, n, 0.3)) };
    if (name.endsWith('.gate')) values[name] = { ...t, data: Float32Array.from(randn(rng, n, gateStd)) };
  }
  assert.ok(layout.sites.length > 0);
}

/** Builds and runs both towers (with optional hook options) on the fixed batch. */
async function runTowers(key: string, layout: MoeLayout | null, values: Record<string, TensorData>, opts: Omit<MoeHookOptions, 'source' | 'textIds'> | null, extra: (inputs: Record<string, string>) => Record<string, TensorData> = () => ({})) {
  const g = new Graph({ name: key });
  const src = clipWeightSource(g, W);
  const px = g.input('pixels', 'float32', ['batch', 3, S, S]);
  const ids = g.input('ids', 'int64', ['prompts', 'tokens']);
  let hooks: ClipHooks | undefined;
  const names: Record<string, string> = {};
  let usage: Record<string, unknown> = {};
  let res: ReturnType<typeof buildMoeHooks> | null = null;
  if (layout && opts) {
    res = buildMoeHooks(g, layout, { ...opts, source: moeWeightSource(g, values), textIds: ids });
    hooks = res.hooks;
  }
  g.output(imageEncoder(g, src, cfg, px, hooks), 'img');
  g.output(textEncoder(g, src, cfg, ids, hooks), 'txt');
  if (res) {
    for (const [k, t] of Object.entries(res.usage)) g.output(t, usageOutputName(k));
    for (const [k, t] of Object.entries(res.inputs.noise)) names[`noise:${k}`] = t.name;
    if (res.inputs.seed) names['seed'] = res.inputs.seed.name;
    if (res.inputs.router) names['router'] = res.inputs.router.name;
    if (res.inputs.routerText) names['routerText'] = res.inputs.routerText.name;
    usage = res.usage;
  }
  const s = await engine.session(key, () => g.toBytes());
  const out = await engine.run(s, { pixels: f32([B, 3, S, S], PIXELS), ids: idsTensor(IDS), ...extra(names) });
  return { out, names, built: Object.keys(usage) };
}

test('zero-init experts leave both towers bit-identical to plain CLIP in every mode (noise, dropout, per-sample routers)', async () => {
  const layout = MoeLayout.forClip(cfg, { experts: 4, routers: 3 });
  const values = layout.initTensors(new Rng(1));
  // random gates and noise weights, experts as initialised (up weight and biases 0)
  const r = new Rng(2);
  for (const [name, t] of Object.entries(values)) if (name.endsWith('.gate') || name.endsWith('.noise')) values[name] = { ...t, data: Float32Array.from(randn(r, t.data.length)) };
  const plain = await runTowers('plain', null, values, null);
  const modes: [string, MoeMode][] = [
    ['train', { kind: 'train', router: 1, noise: true, dropout: true }],
    ['eval', { kind: 'eval', router: 2 }],
    ['per-sample', { kind: 'eval-per-sample' }],
    ['none', { kind: 'eval', router: -1 }],
  ];
  for (const [label, mode] of modes) {
    const res = await runTowers(`zero-${label}`, layout, values, { mode, topK: 2 }, (names) => {
      const f: Record<string, TensorData> = {};
      const nr = new Rng(3);
      for (const [k, v] of Object.entries(names)) {
        if (k.startsWith('noise:')) f[v] = f32([B, 4], randn(nr, B * 4));
        if (k === 'seed') f[v] = { dtype: 'int64', dims: [], data: BigInt64Array.of(77n) };
        if (k === 'router' || k === 'routerText') f[v] = { dtype: 'int64', dims: [B], data: BigInt64Array.of(0n, -1n, 2n, 1n) };
      }
      return f;
    });
    assert.deepEqual(Array.from(res.out['img']!.data as Float32Array), Array.from(plain.out['img']!.data as Float32Array), `${label}: image embeddings`);
    assert.deepEqual(Array.from(res.out['txt']!.data as Float32Array), Array.from(plain.out['txt']!.data as Float32Array), `${label}: text embeddings`);
    if (label === 'none') {
      assert.deepEqual(res.built, [], 'router −1 builds no branch');
      continue;
    }
    assert.deepEqual(res.built.sort(), layout.sites.map((s) => s.key).sort());
    // usage: every sample (routed ones in the per-sample mode) selects exactly 2 experts per site
    const routed = label === 'per-sample' ? 3 : B;
    for (const k of res.built) {
      const u = Array.from(res.out[usageOutputName(k)]!.data as Float32Array);
      assert.equal(u.reduce((a, b) => a + b, 0), 2 * routed, `${label} ${k}: ${u}`);
    }
    if (label === 'eval') assert.deepEqual(res.names, {}, 'evaluation: no noise, no dropout seed');
    if (label === 'train') assert.deepEqual(Object.keys(res.names).sort(), ['noise:image.0', 'noise:image.1', 'noise:text.0', 'noise:text.1', 'seed']);
    if (label === 'per-sample') assert.deepEqual([res.names['router'], res.names['routerText']], ['router_index', 'router_index_text']);
  }
});

test("text router token: 'sot' gives every prompt the same experts (input-independent), 'eot' does not", async () => {
  const layout = MoeLayout.forClip(cfg, { towers: ['text'], experts: 4, routers: 1 });
  const values = layout.initTensors(new Rng(4));
  perturb(layout, values, new Rng(5), 3);
  const sot = await runTowers('sot', layout, values, { mode: { kind: 'eval', router: 0 }, topK: 2, textRouterToken: 'sot' });
  const eot = await runTowers('eot', layout, values, { mode: { kind: 'eval', router: 0 }, topK: 2 });
  const counts = (res: typeof sot) => layout.sites.map((s) => Array.from(res.out[usageOutputName(s)]!.data as Float32Array));
  for (const u of counts(sot)) {
    assert.deepEqual([...u].sort(), [0, 0, B, B], `sot usage ${u}: two experts chosen by all ${B} prompts`);
  }
  assert.ok(counts(eot).some((u) => u.some((v) => v !== 0 && v !== B)), `eot usage ${JSON.stringify(counts(eot))} should depend on the prompt`);
  // the branch changes the text embeddings in both cases, never the image tower (no image sites)
  const plain = await runTowers('plain2', null, values, null);
  assert.deepEqual(Array.from(sot.out['img']!.data as Float32Array), Array.from(plain.out['img']!.data as Float32Array));
  assert.notDeepEqual(Array.from(sot.out['txt']!.data as Float32Array), Array.from(plain.out['txt']!.data as Float32Array));
  assert.notDeepEqual(Array.from(eot.out['txt']!.data as Float32Array), Array.from(sot.out['txt']!.data as Float32Array));
});

test('training router 1 with a frozen expert: the frozen expert stays bit-identical while selected, router 0 is not in the graph', async (t) => {
  const layout = MoeLayout.forClip(cfg, { experts: 3, routers: 2 });
  for (const s of layout.sites) layout.freeze(s, [1], 0);
  const values = layout.initTensors(new Rng(6));
  perturb(layout, values, new Rng(7), 0.5);
  const before = structuredClone(values);
  const names = new Set(layout.trainableTensorNames(1));
  assert.ok(![...names].some((n) => /\.e1\.|\.r0\./.test(n)));

  const g = new Graph({ name: 'moe-train' });
  const src = clipWeightSource(g, W);
  const moeSrc = moeWeightSource(g, values, { trainable: (n) => names.has(n) });
  const px = g.input('pixels', 'float32', ['batch', 3, S, S]);
  const ids = g.input('ids', 'int64', ['prompts', 'tokens']);
  const labels = g.input('labels', 'int64', ['batch']);
  const res = buildMoeHooks(g, layout, { source: moeSrc, mode: { kind: 'train', router: 1, noise: true, dropout: true }, topK: 2, textIds: ids });
  const img = normalize(imageEncoder(g, src, cfg, px, res.hooks));
  const txt = normalize(textEncoder(g, src, cfg, ids, res.hooks));
  const loss = crossEntropy(mul(matmul(img, transpose(txt, [1, 0])), exp(src('logit_scale'))), labels);
  const extraOutputs = Object.fromEntries(Object.entries(res.usage).map(([k, u]) => [usageOutputName(k), u]));
  const spec = buildTrainStep(g, { loss, params: [...moeSrc.trainable.values()], optimizer: { kind: 'adamw', weightDecay: 0 }, extraOutputs });
  assert.deepEqual(new Set(spec.paramNames), names, 'exactly the trainable tensors of router 1 are params');
  assert.ok(!spec.inputNames.some((n) => n.includes('.r0.') || n.includes('.e1.')), 'router 0 and the frozen expert are no inputs');
  assert.ok(!g.initializers.some((i) => i.tensor.name.includes('.r0.')), 'router 0 is not in the graph at all');
  assert.ok(g.initializers.some((i) => i.tensor.name === expertTensorName('image.0', 1, 'down.weight')), 'the frozen expert is an initializer');

  const handle = await engine.session('moe-train', () => g.toBytes());
  const state = new TrainState(Object.fromEntries([...names].map((n) => [n, values[n]!])), { optimizer: 'adamw' });
  const rng = new Rng(8);
  const losses: number[] = [];
  for (let step = 0; step < 3; step++) {
    const feeds: Record<string, TensorData> = { pixels: f32([B, 3, S, S], PIXELS), ids: idsTensor(IDS), labels: { dtype: 'int64', dims: [B], data: BigInt64Array.of(0n, 1n, 2n, 3n) } };
    for (const [k, eps] of Object.entries(res.inputs.noise)) feeds[eps.name] = f32([B, layout.experts(k).length], randn(rng, B * layout.experts(k).length));
    feeds[res.inputs.seed!.name] = { dtype: 'int64', dims: [], data: BigInt64Array.of(BigInt(rng.int(1 << 30))) };
    const out = await state.trainStep(engine, handle, feeds, 1e-2);
    losses.push(out['loss']!.data[0] as number);
    assert.deepEqual(layout.addUsageFromOutputs(1, out).sort(), layout.sites.map((s) => s.key).sort());
  }
  // write back what trained, as the training code does
  for (const n of state.names) values[n] = state.get(n);
  let frozenUses = 0;
  for (const s of layout.sites) {
    frozenUses += layout.usage(1, s)[layout.column(s, 1)]!;
    assert.equal(layout.usage(1, s).reduce((a, b) => a + b, 0), 3 * B * 2, `${s.key}: 3 steps × ${B} samples × k`);
    assert.deepEqual(layout.usage(0, s), [0, 0, 0], 'router 0 counts nothing');
    for (const p of EXPERT_PARTS) {
      const n = expertTensorName(s, 1, p);
      assert.deepEqual(values[n]!.data, before[n]!.data, `${n} is bit-identical`);
    }
    for (const kind of ['gate', 'noise'] as const) {
      const n0 = routerTensorName(s, 0, kind);
      assert.deepEqual(values[n0]!.data, before[n0]!.data, `${n0} is bit-identical`);
      const n1 = routerTensorName(s, 1, kind);
      assert.notDeepEqual(values[n1]!.data, before[n1]!.data, `${n1} trained`);
    }
    for (const id of [0, 2]) {
      const n = expertTensorName(s, id, 'up.weight');
      if (layout.usage(1, s)[layout.column(s, id)]! > 0) assert.notDeepEqual(values[n]!.data, before[n]!.data, `${n} trained`);
    }
  }
  assert.ok(frozenUses > 0, 'the frozen expert was selected');
  assert.ok(losses.every(Number.isFinite));
  t.diagnostic(`losses ${losses.map((l) => l.toFixed(4)).join(' ')}, frozen expert selected ${frozenUses} times`);
});

test('dense adapter baseline: one expert per site with gate 1 equals 0.1·(U·relu(D·x + b) + c) and needs exactly one expert', async () => {
  const d = 5;
  const bn = 3;
  const layout = MoeLayout.forClip({ vision: { layers: 1, width: d }, text: { layers: 1, width: d } }, { towers: ['image'], experts: 1, bottleneck: bn });
  const site = layout.sites[0]!;
  const rng = new Rng(9);
  const v: Record<string, TensorData> = {};
  const ex = { down: randn(rng, bn * d), downB: randn(rng, bn, 0.3), up: randn(rng, d * bn), upB: randn(rng, d, 0.3) };
  v[expertTensorName(site, 0, 'down.weight')] = { dtype: 'float64', dims: [bn, d], data: Float64Array.from(ex.down) };
  v[expertTensorName(site, 0, 'down.bias')] = { dtype: 'float64', dims: [bn], data: Float64Array.from(ex.downB) };
  v[expertTensorName(site, 0, 'up.weight')] = { dtype: 'float64', dims: [d, bn], data: Float64Array.from(ex.up) };
  v[expertTensorName(site, 0, 'up.bias')] = { dtype: 'float64', dims: [d], data: Float64Array.from(ex.upB) };
  const [Bx, T] = [2, 3];
  const x = randn(rng, Bx * T * d);
  const g = new Graph({ name: 'adapter' });
  const xt = g.input('x', 'float64', ['batch', T, d]);
  const a = buildAdapterHooks(g, layout, { source: moeWeightSource(g, v) });
  assert.equal(a.inputs.seed, undefined);
  g.output(a.hooks.block!({ g, tower: 'image', layer: 0, x: xt, scope: '' })!, 'y');
  const s = await engine.session('adapter', () => g.toBytes(), { optimizationLevel: 'basic' });
  const y = (await engine.run(s, { x: { dtype: 'float64', dims: [Bx, T, d], data: Float64Array.from(x) } }))['y']!.data as Float64Array;
  for (let r = 0; r < Bx * T; r++) {
    const tok = x.slice(r * d, (r + 1) * d);
    const h = Array.from({ length: bn }, (_, j) => Math.max(0, ex.downB[j]! + tok.reduce((acc, xv, i) => acc + ex.down[j * d + i]! * xv, 0)));
    for (let i = 0; i < d; i++) {
      const want = 0.1 * (ex.upB[i]! + h.reduce((acc, hv, j) => acc + ex.up[i * bn + j]! * hv, 0));
      assert.ok(Math.abs(y[r * d + i]! - want) < 1e-14, `token ${r} feature ${i}`);
    }
  }
  const g2 = new Graph({ name: 'adapter2' });
  const withSeed = buildAdapterHooks(g2, layout, { source: moeWeightSource(g2, v), dropout: true });
  assert.equal(withSeed.inputs.seed!.name, 'dropout_seed');
  layout.addExperts(site, 1);
  assert.throws(() => buildAdapterHooks(new Graph(), layout, { source: moeWeightSource(new Graph(), v) }), /site image\.0 has 2 experts, the adapter baseline needs exactly 1/);
});
