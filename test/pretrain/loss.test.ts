/**
 * The contrastive loss graph against independent truth: float64 central finite differences through both towers,
 * a plain-JS computation of the loss from the graph's own embeddings, and the compact token table against
 * training the full table.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { buildTrainStep } from '../../src/graph/index.ts';
import { Engine } from '../../src/runtime/engine.ts';
import { TrainState } from '../../src/runtime/train-state.ts';
import type { TensorData } from '../../src/runtime/types.ts';
import { tinyClipConfig, type ClipConfig } from '../../src/clip/config.ts';
import { randomClipWeights } from '../../src/clip/random.ts';
import type { ClipWeights } from '../../src/clip/weights.ts';
import { buildPretrainStep, contrastiveLossGraph, contrastiveLossReference, decays, textTextLossReference, TOKEN_EMBEDDING } from '../../src/pretrain/loss.ts';
import { CompactVocab } from '../../src/pretrain/vocab.ts';
import { Rng } from '../../src/util/rng.ts';

const engine = await Engine.create({ worker: false, threads: 1 });
after(() => engine.close());

/** One layer per tower, 16-px images in 8-px patches, a vocabulary of 64 ids (63 = EOT, 62 = SOT). */
const cfg: ClipConfig = tinyClipConfig({
  vision: { layers: 1, imageSize: 16, patchSize: 8, width: 8, heads: 2, mlpDim: 12 },
  text: { layers: 1, vocabSize: 64, contextLength: 8, width: 8, heads: 2, mlpDim: 12 },
  embedDim: 6,
});
const B = 4;
const S = 16;
/** Images 0 and 2 show the class of text 0, image 1 text 1, image 3 text 2. */
const TEXT_OF_IMAGE = [0, 1, 0, 2];
const K = 3;
/** Caption rows (original ids): SOT … EOT, zero padded. */
const ROWS = [
  [62, 5, 17, 9, 63, 0],
  [62, 40, 63, 0, 0, 0],
  [62, 9, 5, 40, 17, 63],
];
/** Text pairs (3 pairs: a rows, then b rows); pairs 0 and 2 have equal b texts, so they are interchangeable. */
const PAIR_ROWS = [
  [62, 9, 17, 63, 0],
  [62, 40, 5, 9, 63],
  [62, 5, 63, 0, 0],
  [62, 33, 34, 63, 0],
  [62, 35, 63, 0, 0],
  [62, 33, 34, 63, 0],
];
const PAIR_TARGETS = [
  [1, 0, 1],
  [0, 1, 0],
  [1, 0, 1],
];
const VOCAB = new CompactVocab([...ROWS.flat(), ...PAIR_ROWS.flat()]);

function targets(dtype: 'float32' | 'float64'): TensorData {
  const t = dtype === 'float64' ? new Float64Array(B * K) : new Float32Array(B * K);
  TEXT_OF_IMAGE.forEach((k, b) => (t[b * K + k] = 1));
  return { dtype, dims: [B, K], data: t };
}
function compactIds(): TensorData {
  const T = ROWS[0]!.length;
  const lengths = ROWS.map((r) => r.indexOf(63) + 1);
  return { dtype: 'int64', dims: [K, T], data: VOCAB.compactRows(Int32Array.from(ROWS.flat()), K, T, lengths) };
}
function pairIds(): TensorData {
  const T = PAIR_ROWS[0]!.length;
  const lengths = PAIR_ROWS.map((r) => r.indexOf(63) + 1);
  return { dtype: 'int64', dims: [6, T], data: VOCAB.compactRows(Int32Array.from(PAIR_ROWS.flat()), 6, T, lengths) };
}
function fullIds(): TensorData {
  return { dtype: 'int64', dims: [K, ROWS[0]!.length], data: BigInt64Array.from(ROWS.flat(), (v) => BigInt(v)) };
}
function pixelsOf(seed: number, dtype: 'float32' | 'float64'): TensorData {
  const r = new Rng(seed);
  const n = B * 3 * S * S;
  const data = dtype === 'float64' ? new Float64Array(n) : new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = r.normal();
  return { dtype, dims: [B, 3, S, S], data };
}
/** The weights with the token table replaced by its compact rows. */
function compactWeights(W: ClipWeights): ClipWeights {
  const out = new Map(W);
  out.set(TOKEN_EMBEDDING, VOCAB.gatherRows(W.get(TOKEN_EMBEDDING)!));
  return out;
}

test('float64 gradients of the contrastive loss through both towers match central finite differences', async (t) => {
  const W = compactWeights(randomClipWeights(cfg, 7, { perturbStd: 0.2 }));
  // a smaller temperature than CLIP's init keeps the softmaxes away from saturation, so every input matters
  W.set('logit_scale', { shape: [], data: Float32Array.of(1.2) });
  const c = contrastiveLossGraph(cfg, W, { dtype: 'float64', name: 'gradcheck' });
  const params = [...c.src.trainable.values()];
  assert.equal(params.length, W.size, 'every CLIP weight is a trainable input');
  buildTrainStep(c.g, { loss: c.loss, params, optimizer: { kind: 'sgd' }, extraOutputs: { img: c.imageEmbeds, txt: c.textEmbeds, i2t: c.lossI2T, t2i: c.lossT2I } });
  const s = await engine.session('gradcheck', () => c.g.toBytes(), { optimizationLevel: 'basic' });
  const values = new Map<string, Float64Array>();
  for (const p of params) values.set(p.name, Float64Array.from(W.get(p.name)!.data));
  const px = pixelsOf(1, 'float64');
  const feeds = (over?: { name: string; i: number; delta: number }): Record<string, TensorData> => {
    const f: Record<string, TensorData> = {
      pixels: px,
      ids: compactIds(),
      targets: targets('float64'),
      lr: { dtype: 'float64', dims: [], data: Float64Array.of(1) },
      step: { dtype: 'float64', dims: [], data: Float64Array.of(1) },
    };
    for (const p of params) {
      let data = values.get(p.name)!;
      if (over?.name === p.name) {
        data = data.slice();
        data[over.i]! += over.delta;
      }
      f[p.name] = { dtype: 'float64', dims: [...(p.shape as number[])], data };
    }
    return f;
  };
  const base = await engine.run(s, feeds());

  // the loss equals the plain-JS formula applied to the graph's own (normalised) embeddings
  const E = cfg.embedDim;
  const img = base['img']!.data as Float64Array;
  const txt = base['txt']!.data as Float64Array;
  const ref = contrastiveLossReference(
    Array.from({ length: B }, (_, b) => img.subarray(b * E, (b + 1) * E)),
    Array.from({ length: K }, (_, k) => txt.subarray(k * E, (k + 1) * E)),
    TEXT_OF_IMAGE,
    Math.fround(1.2), // the value the float32 weight holds
  );
  assert.ok(Math.abs(ref.loss - (base['loss']!.data[0] as number)) < 1e-12, `loss ${base['loss']!.data[0]} vs ${ref.loss}`);
  assert.ok(Math.abs(ref.i2t - (base['i2t']!.data[0] as number)) < 1e-12);
  assert.ok(Math.abs(ref.t2i - (base['t2i']!.data[0] as number)) < 1e-12);

  // SGD with lr 1: gradient = p − p.next
  const h = 1e-6;
  const pick = new Rng(4);
  let worst = 0;
  let checked = 0;
  const towers = new Set<string>();
  for (const p of params) {
    const n = values.get(p.name)!.length;
    const idx = n <= 2 ? Array.from({ length: n }, (_, i) => i) : [pick.int(n), pick.int(n)];
    const next = base[`${p.name}.next`]!.data as Float64Array;
    for (const i of idx) {
      const gradient = values.get(p.name)![i]! - next[i]!;
      const lp = (await engine.run(s, feeds({ name: p.name, i, delta: h }), ['loss']))['loss']!.data[0] as number;
      const lm = (await engine.run(s, feeds({ name: p.name, i, delta: -h }), ['loss']))['loss']!.data[0] as number;
      const fd = (lp - lm) / (2 * h);
      const err = Math.abs(fd - gradient) / Math.max(1e-3, Math.abs(fd));
      worst = Math.max(worst, err);
      checked++;
      if (Math.abs(fd) > 1e-6) towers.add(p.name.split('.')[0]!);
      assert.ok(err < 1e-5, `${p.name}[${i}]: graph ${gradient} vs finite difference ${fd}`);
    }
  }
  // both towers, both projections and the temperature received non-zero gradients
  for (const part of ['vision_model', 'text_model', 'visual_projection', 'text_projection', 'logit_scale']) assert.ok(towers.has(part), `${part} has a non-zero gradient`);
  t.diagnostic(`${checked} coordinates, worst relative error ${worst.toExponential(2)}`);
});

test('the reference loss is CLIP InfoNCE when classes are distinct and is symmetric-multi-positive otherwise', () => {
  // hand-computed: two orthogonal unit embeddings per side, scale e^0 = 1
  const img = [[1, 0], [0, 1]];
  const txt = [[1, 0], [0, 1]];
  const r = contrastiveLossReference(img, txt, [0, 1], 0);
  const ce = -(1 - Math.log(Math.E + 1)); // −log(e¹ / (e¹ + e⁰))
  assert.ok(Math.abs(r.i2t - ce) < 1e-12);
  assert.ok(Math.abs(r.t2i - ce) < 1e-12);
  // two images of one class: the text's target is ½ on each; identical images give log-softmax −log 2 each
  const r2 = contrastiveLossReference([[1, 0], [1, 0]], [[1, 0]], [0, 0], 0);
  assert.ok(Math.abs(r2.t2i - Math.log(2)) < 1e-12);
  assert.ok(Math.abs(r2.i2t) < 1e-12); // one text: softmax over one logit
});

test('weight decay skips LayerNorm, biases, embeddings and logit_scale', () => {
  assert.equal(decays('vision_model.encoder.layers.0.self_attn.q_proj.weight'), true);
  assert.equal(decays('vision_model.embeddings.patch_embedding.weight'), true);
  assert.equal(decays('text_projection.weight'), true);
  for (const n of [
    'vision_model.encoder.layers.0.self_attn.q_proj.bias',
    'vision_model.pre_layrnorm.weight',
    'vision_model.post_layernorm.bias',
    'text_model.encoder.layers.0.layer_norm1.weight',
    'text_model.final_layer_norm.weight',
    'text_model.embeddings.token_embedding.weight',
    'text_model.embeddings.position_embedding.weight',
    'vision_model.embeddings.position_embedding.weight',
    'vision_model.embeddings.class_embedding',
    'logit_scale',
  ]) assert.equal(decays(n), false, n);
});

test('training the compact token table equals training the full table (AdamW, decay, clipping)', async () => {
  const W = randomClipWeights(cfg, 9);
  const optim = { weightDecay: 0.1, betas: [0.9, 0.98] as const, eps: 1e-6, clipNorm: 0.5 };
  const run = async (weights: ClipWeights, ids: TensorData, key: string) => {
    const built = buildPretrainStep(cfg, weights, optim);
    const s = await engine.session(key, () => built.bytes);
    const params: Record<string, TensorData> = {};
    for (const [n, w] of weights) params[n] = { dtype: 'float32', dims: [...w.shape], data: w.data };
    const state = new TrainState(params, { optimizer: 'adamw' });
    for (let step = 0; step < 3; step++) {
      await state.trainStep(engine, s, { pixels: pixelsOf(10 + step, 'float32'), ids, targets: targets('float32') }, 0.01);
    }
    return state;
  };
  const full = await run(W, fullIds(), 'full');
  const compact = await run(compactWeights(W), compactIds(), 'compact');
  const w = cfg.text.width;
  const fullTable = full.get(TOKEN_EMBEDDING).data as Float32Array;
  const compactTable = compact.get(TOKEN_EMBEDDING).data as Float32Array;
  const init = W.get(TOKEN_EMBEDDING)!.data;
  const used = new Set(VOCAB.ids);
  let moved = 0;
  for (let id = 0; id < cfg.text.vocabSize; id++) {
    for (let j = 0; j < w; j++) {
      const f = fullTable[id * w + j]!;
      if (!used.has(id)) assert.equal(f, init[id * w + j], `unused row ${id} never changes`);
      else {
        const c = compactTable[VOCAB.compact(id) * w + j]!;
        assert.ok(Math.abs(f - c) <= 1e-6 * Math.max(1, Math.abs(f)), `row ${id}[${j}]: full ${f} vs compact ${c}`);
        if (f !== init[id * w + j]) moved++;
      }
    }
  }
  assert.ok(moved > 0, 'the used rows were trained');
  // the moments of unused rows stay zero, and every other tensor agrees
  const m = full.get(`${TOKEN_EMBEDDING}.m`).data as Float32Array;
  for (let id = 0; id < cfg.text.vocabSize; id++) if (!used.has(id)) for (let j = 0; j < w; j++) assert.equal(m[id * w + j], 0);
  for (const name of full.names) {
    if (name === TOKEN_EMBEDDING) continue;
    const a = full.get(name).data as Float32Array;
    const b = compact.get(name).data as Float32Array;
    for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i]! - b[i]!) <= 1e-6 * Math.max(1, Math.abs(a[i]!)), `${name}[${i}]`);
  }
  // scattering the compact rows back gives the full table
  const back = VOCAB.scatterRows(W.get(TOKEN_EMBEDDING)!, compactTable).data;
  for (let i = 0; i < back.length; i++) assert.ok(Math.abs(back[i]! - fullTable[i]!) <= 1e-6 * Math.max(1, Math.abs(fullTable[i]!)));
});

test('float64 gradients of the loss with the text–text term match finite differences; the term matches its reference', async (t) => {
  const W = compactWeights(randomClipWeights(cfg, 11, { perturbStd: 0.2 }));
  W.set('logit_scale', { shape: [], data: Float32Array.of(1.1) });
  const weight = 0.7;
  const c = contrastiveLossGraph(cfg, W, { dtype: 'float64', name: 'gradcheck-tt', textText: { pairs: 3, weight } });
  const params = [...c.src.trainable.values()];
  const tt = c.textText!;
  buildTrainStep(c.g, {
    loss: c.loss,
    params,
    optimizer: { kind: 'sgd' },
    extraOutputs: { img: c.imageEmbeds, txt: c.textEmbeds, a: tt.a, b: tt.b, tt: tt.loss, i2t: c.lossI2T, t2i: c.lossT2I },
  });
  const s = await engine.session('gradcheck-tt', () => c.g.toBytes(), { optimizationLevel: 'basic' });
  const values = new Map<string, Float64Array>();
  for (const p of params) values.set(p.name, Float64Array.from(W.get(p.name)!.data));
  const px = pixelsOf(2, 'float64');
  const feeds = (over?: { name: string; i: number; delta: number }): Record<string, TensorData> => {
    const f: Record<string, TensorData> = {
      pixels: px,
      ids: compactIds(),
      targets: targets('float64'),
      tt_ids: pairIds(),
      tt_targets: { dtype: 'float64', dims: [3, 3], data: Float64Array.from(PAIR_TARGETS.flat()) },
      lr: { dtype: 'float64', dims: [], data: Float64Array.of(1) },
      step: { dtype: 'float64', dims: [], data: Float64Array.of(1) },
    };
    for (const p of params) {
      let data = values.get(p.name)!;
      if (over?.name === p.name) {
        data = data.slice();
        data[over.i]! += over.delta;
      }
      f[p.name] = { dtype: 'float64', dims: [...(p.shape as number[])], data };
    }
    return f;
  };
  const base = await engine.run(s, feeds());
  const E = cfg.embedDim;
  const rows = (name: string, n: number) => Array.from({ length: n }, (_, i) => (base[name]!.data as Float64Array).subarray(i * E, (i + 1) * E));
  const ls = Math.fround(1.1);
  const ttRef = textTextLossReference(rows('a', 3), rows('b', 3), PAIR_TARGETS, ls);
  assert.ok(Math.abs(ttRef - (base['tt']!.data[0] as number)) < 1e-12, `text-text ${base['tt']!.data[0]} vs ${ttRef}`);
  const it = contrastiveLossReference(rows('img', B), rows('txt', K), TEXT_OF_IMAGE, ls).loss;
  assert.ok(Math.abs(it + weight * ttRef - (base['loss']!.data[0] as number)) < 1e-12);
  // the a and b embeddings are the text tower's on those rows: equal b texts give equal embeddings
  const b = rows('b', 3);
  assert.deepEqual(Array.from(b[0]!), Array.from(b[2]!));

  const h = 1e-6;
  const pick = new Rng(8);
  let worst = 0;
  const names = ['logit_scale', TOKEN_EMBEDDING, 'text_projection.weight', 'text_model.encoder.layers.0.mlp.fc1.weight', 'text_model.final_layer_norm.bias'];
  for (const name of names) {
    const n = values.get(name)!.length;
    // the token rows of the pair-only ids (33, 34, 35) get their gradient only from the text–text term
    const idx = name === TOKEN_EMBEDDING ? [VOCAB.compact(33) * cfg.text.width + 1, VOCAB.compact(35) * cfg.text.width + 2, pick.int(n)] : [pick.int(n), pick.int(n)];
    const next = base[`${name}.next`]!.data as Float64Array;
    for (const i of idx) {
      const gradient = values.get(name)![i]! - next[i]!;
      const lp = (await engine.run(s, feeds({ name, i, delta: h }), ['loss']))['loss']!.data[0] as number;
      const lm = (await engine.run(s, feeds({ name, i, delta: -h }), ['loss']))['loss']!.data[0] as number;
      const fd = (lp - lm) / (2 * h);
      const err = Math.abs(fd - gradient) / Math.max(1e-3, Math.abs(fd));
      worst = Math.max(worst, err);
      assert.ok(err < 1e-5, `${name}[${i}]: graph ${gradient} vs finite difference ${fd}`);
      if (name === TOKEN_EMBEDDING && i !== idx[2]) assert.ok(Math.abs(fd) > 1e-8, `pair-only token row ${i} has a gradient`);
    }
  }
  t.diagnostic(`worst relative error ${worst.toExponential(2)}`);
});

test('the text–text reference: hand-computed values', () => {
  // orthogonal unit pairs, scale 1: each direction is −log(e / (e + 1))
  const ce = -(1 - Math.log(Math.E + 1));
  assert.ok(Math.abs(textTextLossReference([[1, 0], [0, 1]], [[1, 0], [0, 1]], [[1, 0], [0, 1]], 0) - ce) < 1e-12);
  // two interchangeable pairs with identical embeddings: the targets are ½ each, log-softmax −log 2 everywhere
  assert.ok(Math.abs(textTextLossReference([[1, 0], [1, 0]], [[0, 1], [0, 1]], [[1, 1], [1, 1]], 0) - Math.log(2)) < 1e-12);
});
