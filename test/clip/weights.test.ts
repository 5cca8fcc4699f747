import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tinyClipConfig } from '../../src/clip/config.ts';
import {
  clipWeightShapes,
  openClipWeightShapes,
  weightsFromHF,
  weightsFromOpenClip,
  weightsToOpenClip,
  canonicalClipWeights,
  detectLayout,
  type WeightTensor,
} from '../../src/clip/weights.ts';
import { randomClipWeights } from '../../src/clip/random.ts';

const cfg = tinyClipConfig({ vision: { layers: 1 }, text: { layers: 1, vocabSize: 100 } });

test('open_clip layout: in_proj split into q/k/v rows, projections transposed, names mapped', () => {
  const W = randomClipWeights(cfg, 1, { perturbStd: 0.1 });
  const oc = weightsToOpenClip(W, cfg);
  const w = cfg.vision.width;
  const inProj = oc.get('visual.transformer.resblocks.0.attn.in_proj_weight')!;
  assert.deepEqual(inProj.shape, [3 * w, w]);
  const k = W.get('vision_model.encoder.layers.0.self_attn.k_proj.weight')!;
  // row r of k_proj is row w + r of in_proj
  for (const [r, c] of [[0, 0], [3, 7], [w - 1, w - 1]] as const) assert.equal(inProj.data[(w + r) * w + c], k.data[r * w + c]);
  const vb = W.get('vision_model.encoder.layers.0.self_attn.v_proj.bias')!;
  assert.equal(oc.get('visual.transformer.resblocks.0.attn.in_proj_bias')!.data[2 * w + 5], vb.data[5]);
  const proj = oc.get('visual.proj')!; // [w, e]
  const hproj = W.get('visual_projection.weight')!; // [e, w]
  assert.deepEqual(proj.shape, [w, cfg.embedDim]);
  assert.equal(proj.data[3 * cfg.embedDim + 2], hproj.data[2 * w + 3]);
  assert.deepEqual(oc.get('text_projection')!.shape, [cfg.text.width, cfg.embedDim]);
  assert.deepEqual(oc.get('transformer.resblocks.0.mlp.c_fc.weight')!.data, W.get('text_model.encoder.layers.0.mlp.fc1.weight')!.data);
  assert.equal(oc.get('visual.class_embedding')!.data, W.get('vision_model.embeddings.class_embedding')!.data);
  assert.deepEqual([...openClipWeightShapes(cfg).keys()].sort(), [...oc.keys()].sort());
});

test('open_clip → canonical → open_clip is the identity; both readers give the same canonical weights', () => {
  const W = randomClipWeights(cfg, 2, { perturbStd: 0.1 });
  const oc = weightsToOpenClip(W, cfg);
  const back = weightsFromOpenClip(oc, cfg);
  assert.deepEqual(back.warnings, []);
  for (const [name, t] of W) {
    assert.deepEqual(back.weights.get(name)!.shape, t.shape, name);
    assert.deepEqual(back.weights.get(name)!.data, t.data, name);
  }
  const hf = weightsFromHF(W, cfg);
  assert.equal(hf.weights.size, clipWeightShapes(cfg).size);
});

test('wrapper prefixes are stripped, known extras ignored, unknown extras reported', () => {
  const W = randomClipWeights(cfg, 3);
  const prefixed = new Map<string, WeightTensor>();
  for (const [k, v] of W) prefixed.set(`module.model.${k}`, v);
  prefixed.set('text_model.embeddings.position_ids', { shape: [1, 16], data: new Float32Array(16) });
  prefixed.set('module.something_new.weight', { shape: [2], data: new Float32Array(2) });
  assert.equal(detectLayout(prefixed.keys()), 'hf');
  const r = canonicalClipWeights(prefixed, cfg, 'ckpt.safetensors');
  assert.equal(r.layout, 'hf');
  assert.equal(r.warnings.length, 1);
  assert.match(r.warnings[0]!, /ckpt\.safetensors: ignored 1 unknown tensor\(s\): something_new\.weight/);
  const oc = weightsToOpenClip(W, cfg);
  assert.equal(detectLayout(oc.keys()), 'open_clip');
});

test('logit_scale stored as [1] is accepted as a scalar', () => {
  const W = randomClipWeights(cfg, 4);
  W.set('logit_scale', { shape: [1], data: Float32Array.of(4.6) });
  const r = weightsFromHF(W, cfg);
  assert.deepEqual(r.weights.get('logit_scale')!.shape, []);
  assert.equal(r.weights.get('logit_scale')!.data[0], Float32Array.of(4.6)[0]);
});

test('missing or misshapen tensors fail naming the file, the tensor and both shapes', () => {
  const W = randomClipWeights(cfg, 5);
  const bad = new Map(W);
  bad.set('text_model.encoder.layers.0.mlp.fc1.weight', { shape: [32, 64], data: new Float32Array(32 * 64) });
  assert.throws(() => weightsFromHF(bad, cfg, 'dir/model.safetensors'), /dir\/model\.safetensors: tensor 'text_model\.encoder\.layers\.0\.mlp\.fc1\.weight' has shape \[32,64\], expected \[64,32\]/);
  const missing = new Map(W);
  missing.delete('vision_model.post_layernorm.bias');
  assert.throws(() => weightsFromHF(missing, cfg, 'm.safetensors'), /m\.safetensors: missing tensor 'vision_model\.post_layernorm\.bias' \(expected shape \[32\]\)/);
  const oc = weightsToOpenClip(W, cfg);
  oc.set('visual.transformer.resblocks.0.attn.in_proj_weight', { shape: [32, 32], data: new Float32Array(32 * 32) });
  assert.throws(() => weightsFromOpenClip(oc, cfg, 'oc.safetensors'), /oc\.safetensors: tensor 'visual\.transformer\.resblocks\.0\.attn\.in_proj_weight' has shape \[32,32\], expected \[96,32\]/);
  assert.throws(() => detectLayout(['foo', 'bar'], 'x.safetensors'), /x\.safetensors: cannot tell the weight layout/);
});

test('random init follows CLIP: LN ones/zeros, zero biases, token embedding std 0.02, logit scale ln(1/0.07)', () => {
  const big = tinyClipConfig({ text: { vocabSize: 2000, width: 64, heads: 2 } });
  const W = randomClipWeights(big, 7);
  const tok = W.get('text_model.embeddings.token_embedding.weight')!.data;
  let s2 = 0;
  for (const x of tok) s2 += x * x;
  const std = Math.sqrt(s2 / tok.length);
  assert.ok(Math.abs(std - 0.02) < 0.0005, `std ${std}`);
  assert.ok(W.get('text_model.final_layer_norm.weight')!.data.every((x) => x === 1));
  assert.ok(W.get('text_model.encoder.layers.0.mlp.fc1.bias')!.data.every((x) => x === 0));
  assert.equal(W.get('logit_scale')!.data[0], Math.fround(Math.log(1 / 0.07)));
  // same seed → same weights; different seed → different
  assert.deepEqual(randomClipWeights(big, 7).get('visual_projection.weight')!.data, W.get('visual_projection.weight')!.data);
  assert.notDeepEqual(randomClipWeights(big, 8).get('visual_projection.weight')!.data, W.get('visual_projection.weight')!.data);
});
