/**
 * The graph towers against independent truth: a plain-JS float64 forward (test/clip/reference.ts), hand-checked
 * EOT pooling and causality, and a whole training step's gradients against central finite differences.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Graph, buildTrainStep, type Tensor, linear, relu, reshape, mul, exp, normalize, matmul, transpose, crossEntropy } from '../../src/graph/index.ts';
import { Engine } from '../../src/runtime/engine.ts';
import type { TensorData } from '../../src/runtime/types.ts';
import { tinyClipConfig, type ClipConfig } from '../../src/clip/config.ts';
import { randomClipWeights } from '../../src/clip/random.ts';
import { clipWeightSource, imageEncoder, textEncoder, type ClipHooks } from '../../src/clip/model.ts';
import type { ClipWeights } from '../../src/clip/weights.ts';
import { Rng } from '../../src/util/rng.ts';
import { refImageEmbeds, refTextForward, type RefHook } from './reference.ts';

const engine = await Engine.create({ worker: false, threads: 1 });
after(() => engine.close());

/** 1-layer tiny CLIP: QuickGELU image tower, tanh-GELU text tower, vocabulary of 50 ids. */
const cfg: ClipConfig = tinyClipConfig({
  vision: { layers: 1, imageSize: 16, patchSize: 8, width: 16, heads: 2, mlpDim: 24 },
  text: { layers: 1, vocabSize: 50, contextLength: 8, width: 16, heads: 2, mlpDim: 24, act: 'gelu_tanh' },
  embedDim: 8,
});
const W = randomClipWeights(cfg, 11, { perturbStd: 0.2 });
const B = 2;
const S = cfg.vision.imageSize;
const rng = new Rng(5);
const pixels = Float64Array.from({ length: B * 3 * S * S }, () => rng.normal());
/** EOT (49) is the highest id; padding after it is 0; row 1 is shorter than row 0. */
const IDS = [
  [48, 3, 17, 5, 49, 0, 0, 0],
  [48, 22, 49, 0, 0, 0, 0, 0],
];

function idsTensor(rows: number[][]): TensorData {
  return { dtype: 'int64', dims: [rows.length, rows[0]!.length], data: BigInt64Array.from(rows.flat(), (v) => BigInt(v)) };
}
function pixelTensor(dtype: 'float32' | 'float64', px: Float64Array = pixels): TensorData {
  return { dtype, dims: [B, 3, S, S], data: dtype === 'float64' ? px : Float32Array.from(px) };
}
function maxAbsDiff(ref: Float64Array[], got: ArrayLike<number>): number {
  let e = 0;
  const d = ref[0]!.length;
  ref.forEach((r, b) => r.forEach((v, i) => (e = Math.max(e, Math.abs(v - got[b * d + i]!)))));
  return e;
}

async function runTowers(dtype: 'float32' | 'float64', weights: ClipWeights, c: ClipConfig, key: string, hooks?: (g: Graph) => ClipHooks) {
  const g = new Graph({ name: key });
  const src = clipWeightSource(g, weights, { dtype });
  const h = hooks?.(g);
  const px = g.input('pixels', dtype, ['batch', 3, S, S]);
  const ids = g.input('ids', 'int64', ['batch', 'tokens']);
  g.output(imageEncoder(g, src, c, px, h), 'img');
  g.output(textEncoder(g, src, c, ids, h), 'txt');
  const s = await engine.session(key, () => g.toBytes(), { optimizationLevel: 'basic' });
  return engine.run(s, { pixels: pixelTensor(dtype), ids: idsTensor(IDS) });
}

test('float64 graph towers match the plain-JS float64 reference to 1e-9', async () => {
  const out = await runTowers('float64', W, cfg, 'fwd64');
  const eImg = maxAbsDiff(refImageEmbeds(W, cfg, pixels, B), out['img']!.data as Float64Array);
  const eTxt = maxAbsDiff(refTextForward(W, cfg, IDS).embeds, out['txt']!.data as Float64Array);
  assert.ok(eImg < 1e-9, `image max error ${eImg}`);
  assert.ok(eTxt < 1e-9, `text max error ${eTxt}`);
});

test('float32 graph towers (exact-erf GELU, fused LayerNorm) match the reference to ~1e-5', async () => {
  const c = tinyClipConfig({ ...cfg, vision: { ...cfg.vision, act: 'gelu' }, text: { ...cfg.text, act: 'gelu', layers: 2 }, embedDim: 8 });
  const W2 = randomClipWeights(c, 12, { perturbStd: 0.2 });
  const out = await runTowers('float32', W2, c, 'fwd32');
  const eImg = maxAbsDiff(refImageEmbeds(W2, c, pixels, B), out['img']!.data as Float32Array);
  const eTxt = maxAbsDiff(refTextForward(W2, c, IDS).embeds, out['txt']!.data as Float32Array);
  assert.ok(eImg < 2e-5, `image max error ${eImg}`);
  assert.ok(eTxt < 2e-5, `text max error ${eTxt}`);
});

test('EOT pooling takes the position of the highest id; the causal mask hides later tokens', async () => {
  const g = new Graph({ name: 'eot' });
  const src = clipWeightSource(g, W, { dtype: 'float64' });
  const ids = g.input('ids', 'int64', ['batch', 'tokens']);
  let hidden: Tensor | null = null;
  g.output(textEncoder(g, src, cfg, ids, { final: ({ hidden: h }) => (hidden = h) }), 'txt');
  g.output(hidden!, 'hidden');
  const s = await engine.session('eot', () => g.toBytes(), { optimizationLevel: 'basic' });
  // row 0: highest id (49) at position 2, followed by tokens that are not padding; row 1: same prefix, other tail
  const rows = [
    [48, 7, 49, 9, 30, 0, 0, 0],
    [48, 7, 49, 21, 4, 33, 2, 1],
  ];
  const out = await engine.run(s, { ids: idsTensor(rows) });
  const T = 8;
  const w = cfg.text.width;
  const E = cfg.embedDim;
  const hid = out['hidden']!.data as Float64Array;
  const txt = out['txt']!.data as Float64Array;
  const proj = W.get('text_projection.weight')!.data;
  for (let b = 0; b < 2; b++) {
    // embeds[b] = hidden[b, 2] · Wprojᵀ
    for (let e = 0; e < E; e++) {
      let sum = 0;
      for (let i = 0; i < w; i++) sum += hid[(b * T + 2) * w + i]! * proj[e * w + i]!;
      assert.ok(Math.abs(sum - txt[b * E + e]!) < 1e-12, `row ${b} dim ${e}`);
    }
  }
  // positions 0..2 agree between the rows (same prefix), position 3 does not (different token there)
  const rowDiff = (t: number) => Math.max(...Array.from({ length: w }, (_, i) => Math.abs(hid[t * w + i]! - hid[(T + t) * w + i]!)));
  for (let t = 0; t <= 2; t++) assert.ok(rowDiff(t) < 1e-13, `position ${t} changed by later tokens: ${rowDiff(t)}`);
  assert.ok(rowDiff(3) > 1e-3, 'position 3 should differ');
  // so the pooled embeddings agree as well
  for (let e = 0; e < E; e++) assert.ok(Math.abs(txt[e]! - txt[E + e]!) < 1e-13);
  // the reference's hidden states agree too
  const ref = refTextForward(W, cfg, rows).hidden;
  let err = 0;
  ref.forEach((X, b) => X.forEach((x, t) => x.forEach((v, i) => (err = Math.max(err, Math.abs(v - hid[(b * T + t) * w + i]!))))));
  assert.ok(err < 1e-9, `hidden error ${err}`);
});

test('a shorter padding gives the same text embeddings (symbolic token count)', async () => {
  const g = new Graph({ name: 'short' });
  const src = clipWeightSource(g, W, { dtype: 'float64' });
  g.output(textEncoder(g, src, cfg, g.input('ids', 'int64', ['batch', 'tokens'])), 'txt');
  const s = await engine.session('short', () => g.toBytes(), { optimizationLevel: 'basic' });
  const full = await engine.run(s, { ids: idsTensor(IDS) });
  const short = await engine.run(s, { ids: idsTensor(IDS.map((r) => r.slice(0, 5))) });
  const a = full['txt']!.data as Float64Array;
  const b = short['txt']!.data as Float64Array;
  for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i]! - b[i]!) < 1e-13);
});

/** A bottleneck adapter x → relu(x·Dᵀ + d)·Uᵀ + u per block, its tensors declared as graph inputs. */
function adapterHooks(g: Graph, dtype: 'float64', adapters: Map<string, { shape: number[]; data: Float64Array }>): ClipHooks {
  const inputs = new Map<string, Tensor>();
  const get = (name: string) => {
    let t = inputs.get(name);
    if (!t) {
      t = g.input(name, dtype, adapters.get(name)!.shape);
      inputs.set(name, t);
    }
    return t;
  };
  return {
    block: ({ tower, layer, x }) => {
      const p = `adapter.${tower}.${layer}`;
      const w = x.shape[2]!;
      const rows = reshape(x, [-1, w]);
      const hdn = relu(linear(rows, get(`${p}.down.weight`), get(`${p}.down.bias`)));
      const y = linear(hdn, get(`${p}.up.weight`), get(`${p}.up.bias`));
      return reshape(mul(y, 0.5), [-1, x.shape[1]!, w]);
    },
  };
}

test('training step of a tiny CLIP + block-hook adapters: gradients match float64 central differences', async (t) => {
  const r = new Rng(21);
  const adapters = new Map<string, { shape: number[]; data: Float64Array }>();
  for (const [tower, w] of [['image', cfg.vision.width], ['text', cfg.text.width]] as const) {
    const p = `adapter.${tower}.0`;
    const mk = (shape: number[], std: number) => ({ shape, data: Float64Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => std * r.normal()) });
    adapters.set(`${p}.down.weight`, mk([4, w], 0.3));
    adapters.set(`${p}.down.bias`, mk([4], 0.1));
    adapters.set(`${p}.up.weight`, mk([w, 4], 0.3));
    adapters.set(`${p}.up.bias`, mk([w], 0.1));
  }
  // Every CLIP weight is trainable too (the full-pretraining path): checks every VJP the towers use.
  const g = new Graph({ name: 'train' });
  const src = clipWeightSource(g, W, { dtype: 'float64', trainable: () => true });
  const hooks = adapterHooks(g, 'float64', adapters);
  const px = g.input('pixels', 'float64', ['batch', 3, S, S]);
  const ids = g.input('ids', 'int64', ['batch', 'tokens']);
  const labels = g.input('labels', 'int64', ['batch']);
  const img = normalize(imageEncoder(g, src, cfg, px, hooks));
  const txt = normalize(textEncoder(g, src, cfg, ids, hooks));
  // CLIP's image→text cross-entropy with the learned temperature
  const logits = mul(matmul(img, transpose(txt, [1, 0])), exp(src('logit_scale')));
  const loss = crossEntropy(logits, labels);
  const params = [...g.inputs.filter((t) => t.name.startsWith('adapter.')), ...src.trainable.values()];
  const spec = buildTrainStep(g, { loss, params, optimizer: { kind: 'sgd' } });
  const s = await engine.session('train', () => g.toBytes(), { optimizationLevel: 'basic' });

  const values = new Map<string, Float64Array>();
  for (const p of params) {
    values.set(p.name, adapters.get(p.name)?.data.slice() ?? Float64Array.from(W.get(p.name)!.data));
  }
  const feeds = (over?: { name: string; i: number; delta: number }): Record<string, TensorData> => {
    const f: Record<string, TensorData> = {
      pixels: pixelTensor('float64'),
      ids: idsTensor(IDS),
      labels: { dtype: 'int64', dims: [B], data: BigInt64Array.of(1n, 0n) },
      lr: { dtype: 'float64', dims: [], data: Float64Array.of(1) },
      step: { dtype: 'float64', dims: [], data: Float64Array.of(1) },
    };
    for (const p of params) {
      let data = values.get(p.name)!;
      if (over && over.name === p.name) {
        data = data.slice();
        data[over.i]! += over.delta;
      }
      f[p.name] = { dtype: 'float64', dims: [...(p.shape as number[])], data };
    }
    return f;
  };
  assert.equal(spec.optimizer, 'sgd');
  const base = await engine.run(s, feeds());
  // plain SGD with lr = 1: p.next = p − ∇p, so the step's gradient is p − p.next
  const h = 1e-6;
  let worst = 0;
  let checked = 0;
  const pick = new Rng(3);
  for (const p of params) {
    const n = values.get(p.name)!.length;
    const idx = n <= 3 ? Array.from({ length: n }, (_, i) => i) : [0, n - 1, pick.int(n)];
    const next = base[`${p.name}.next`]!.data as Float64Array;
    for (const i of idx) {
      const gradient = values.get(p.name)![i]! - next[i]!;
      const lp = (await engine.run(s, feeds({ name: p.name, i, delta: h }), ['loss']))['loss']!.data[0] as number;
      const lm = (await engine.run(s, feeds({ name: p.name, i, delta: -h }), ['loss']))['loss']!.data[0] as number;
      const fd = (lp - lm) / (2 * h);
      const err = Math.abs(fd - gradient) / Math.max(1, Math.abs(fd));
      worst = Math.max(worst, err);
      checked++;
      assert.ok(err < 1e-7, `${p.name}[${i}]: graph ${gradient} vs finite difference ${fd}`);
    }
  }
  // something non-trivial was checked: adapters got non-zero gradients
  for (const name of adapters.keys()) {
    const next = base[`${name}.next`]!.data as Float64Array;
    const norm = Math.sqrt(values.get(name)!.reduce((acc, v, i) => acc + (v - next[i]!) ** 2, 0));
    assert.ok(norm > 1e-4, `${name}: gradient norm ${norm} should be non-zero`);
  }
  assert.ok(checked > 60, `checked ${checked} coordinates`);
  // the float64 graph's loss agrees with the reference forward + the same loss in JS
  const refHook: RefHook = (tower, layer, x) => {
    const p = `adapter.${tower}.${layer}`;
    const D = adapters.get(`${p}.down.weight`)!.data;
    const d = adapters.get(`${p}.down.bias`)!.data;
    const U = adapters.get(`${p}.up.weight`)!.data;
    const u = adapters.get(`${p}.up.bias`)!.data;
    const w = x.length;
    const hid = Array.from({ length: 4 }, (_, k) => Math.max(0, d[k]! + x.reduce((s2, v, i) => s2 + D[k * w + i]! * v, 0)));
    return Float64Array.from({ length: w }, (_, i) => 0.5 * (u[i]! + hid.reduce((s2, v, k) => s2 + U[i * 4 + k]! * v, 0)));
  };
  const ri = refImageEmbeds(W, cfg, pixels, B, refHook).map(unit);
  const rt = refTextForward(W, cfg, IDS, refHook).embeds.map(unit);
  const scale = Math.exp(W.get('logit_scale')!.data[0]!);
  let refLoss = 0;
  [1, 0].forEach((label, b) => {
    const z = rt.map((t) => scale * t.reduce((s2, v, i) => s2 + v * ri[b]![i]!, 0));
    const m = Math.max(...z);
    refLoss += -(z[label]! - m - Math.log(z.reduce((s2, v) => s2 + Math.exp(v - m), 0))) / B;
  });
  assert.ok(Math.abs(refLoss - (base['loss']!.data[0] as number)) < 1e-9, `loss ${base['loss']!.data[0]} vs reference ${refLoss}`);
  assert.ok(worst < 1e-7);
  t.diagnostic(`gradient check: ${checked} coordinates, worst relative error ${worst.toExponential(2)}`);
});

function unit(v: Float64Array): Float64Array {
  const n = Math.sqrt(v.reduce((s, x) => s + x * x, 0));
  return v.map((x) => x / n);
}

test('an attention hook adds its delta to the projection (LoRA entry point)', async () => {
  const c = cfg;
  // a hook adding a constant to every v projection output must change the result; a zero delta must not
  const base = await runTowers('float64', W, c, 'attn0');
  const zero = await runTowers('float64', W, c, 'attn1', (g) => ({ attn: ({ output }) => mul(output, g.constant(0, 'float64')) }));
  const bump = await runTowers('float64', W, c, 'attn2', () => ({ attn: ({ proj, output }) => (proj === 'v' ? mul(output, 0.5) : null) }));
  const a = base['img']!.data as Float64Array;
  const z = zero['img']!.data as Float64Array;
  const bb = bump['img']!.data as Float64Array;
  for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i]! - z[i]!) < 1e-14);
  // v·1.5 equals scaling v_proj weight and bias by 1.5 in the reference
  const W2 = new Map(W);
  for (const k of ['weight', 'bias']) {
    const n = `vision_model.encoder.layers.0.self_attn.v_proj.${k}`;
    W2.set(n, { shape: W.get(n)!.shape, data: W.get(n)!.data.map((x) => x * 1.5) });
  }
  const ref = refImageEmbeds(W2, c, pixels, B);
  assert.ok(maxAbsDiff(ref, bb) < 1e-6); // float32 rounding of the scaled weights in the reference
});
