/**
 * Model folders (HF and open_clip layouts written by writeRandomClip), loading, and the ClipModel API.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, readFileSync, writeFileSync, unlinkSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Engine } from '../../src/runtime/engine.ts';
import { tinyClipConfig } from '../../src/clip/config.ts';
import { writeRandomClip } from '../../src/clip/random.ts';
import { loadClip } from '../../src/clip/load.ts';
import { ClipModel, fillTemplate, type Matrix } from '../../src/clip/clip.ts';
import { readSafetensors, writeSafetensors } from '../../src/io/safetensors.ts';
import type { Image } from '../../src/data/types.ts';
import { Rng } from '../../src/util/rng.ts';
import { refImageEmbeds, refTextForward } from './reference.ts';

const BPE = fileURLToPath(new URL('../../../shared/clip/bpe_simple_vocab_16e6.txt.gz', import.meta.url));
const root = mkdtempSync(join(tmpdir(), 'moeclip-clip-'));
const engine = await Engine.create({ worker: false, threads: 1 });
after(async () => {
  await engine.close();
  rmSync(root, { recursive: true, force: true });
});

const cfg = tinyClipConfig({ vision: { imageSize: 32, patchSize: 8 } });
const hfDir = join(root, 'hf');
const ocDir = join(root, 'oc');
const W = writeRandomClip(hfDir, cfg, { layout: 'hf', seed: 7, bpePath: BPE, perturbStd: 0.1 });
writeRandomClip(ocDir, cfg, { layout: 'open_clip', seed: 7, bpePath: BPE, perturbStd: 0.1 });

function images(n: number, seed: number): Image[] {
  const r = new Rng(seed);
  return Array.from({ length: n }, (_, i) => {
    const width = 40 + 8 * i;
    const height = 36;
    return { width, height, channels: 3 as const, pixels: Uint8Array.from({ length: width * height * 3 }, () => r.int(256)) };
  });
}
const TEXTS = ['a photo of a dog.', 'a cat', 'a very long sentence about nothing in particular that goes on and on and on'];

function rowNorms(m: Matrix): number[] {
  const [n, d] = m.dims;
  return Array.from({ length: n }, (_, i) => Math.hypot(...m.data.subarray(i * d, (i + 1) * d)));
}

test('loadClip reads both layouts into the same canonical weights, tokenizer and preprocessing', () => {
  const a = loadClip(hfDir);
  const b = loadClip(ocDir);
  assert.equal(a.layout, 'hf');
  assert.equal(b.layout, 'open_clip');
  assert.deepEqual(a.config, cfg);
  assert.deepEqual(b.config, cfg);
  assert.deepEqual(a.warnings, []);
  assert.deepEqual(b.warnings, []);
  for (const [name, t] of W) {
    assert.deepEqual(a.weights.get(name)!.data, t.data, name);
    assert.deepEqual(b.weights.get(name)!.data, t.data, name);
  }
  assert.equal(a.preprocess.size, 32);
  assert.deepEqual(a.preprocess.mean, b.preprocess.mean);
  assert.deepEqual(a.preprocess.std, b.preprocess.std);
  assert.deepEqual(a.tokenizer.tokenize(TEXTS, 16), b.tokenizer.tokenize(TEXTS, 16));
  // known ids of the real CLIP vocabulary: "a photo of a dog." → SOT a photo of a dog . EOT
  assert.deepEqual(Array.from(a.tokenizer.tokenize(['a photo of a dog.'], 16).ids.subarray(0, 8)), [49406, 320, 1125, 539, 320, 1929, 269, 49407]);
});

test('HF and open_clip folders of the same weights give identical image and text embeddings', async () => {
  const m1 = await ClipModel.load(hfDir, { engine });
  const m2 = await ClipModel.load(ocDir, { engine });
  const imgs = images(3, 1);
  const i1 = await m1.encodeImages(imgs);
  const i2 = await m2.encodeImages(imgs);
  assert.deepEqual(i1.dims, [3, 16]);
  assert.deepEqual(i1.data, i2.data);
  const t1 = await m1.encodeTexts(TEXTS);
  const t2 = await m2.encodeTexts(TEXTS);
  assert.deepEqual(t1.data, t2.data);
  for (const n of [...rowNorms(i1), ...rowNorms(t1)]) assert.ok(Math.abs(n - 1) < 1e-6);
  await m1.close();
  await m2.close();
});

test('ClipModel embeddings equal the plain-JS reference on the same preprocessed pixels and token ids', async () => {
  const m = await ClipModel.load(hfDir, { engine, textBatch: 2, imageBatch: 2 });
  const imgs = images(3, 2);
  const px = m.preprocessImages(imgs);
  const got = await m.encodeImages(imgs, { normalize: false });
  const fromPixels = await m.encodeImages(px, { normalize: false });
  assert.deepEqual(got.data, fromPixels.data);
  const ref = refImageEmbeds(W, cfg, Float64Array.from(px.data), 3);
  ref.forEach((r, b) => r.forEach((v, i) => assert.ok(Math.abs(v - got.data[b * 16 + i]!) < 2e-5)));
  // texts: the model pads each chunk only to its longest text; the reference runs the full context
  const { ids } = m.tokenizer.tokenize(TEXTS, 16);
  const rows = Array.from({ length: TEXTS.length }, (_, i) => Array.from(ids.subarray(i * 16, (i + 1) * 16)));
  const rt = refTextForward(W, cfg, rows).embeds;
  const t = await m.encodeTexts(TEXTS, { normalize: false });
  rt.forEach((r, b) => r.forEach((v, i) => assert.ok(Math.abs(v - t.data[b * 16 + i]!) < 2e-5)));
  // the long text was truncated to 16 tokens ending in EOT
  const toks = m.tokenize(TEXTS);
  assert.equal(toks[2]!.length, 16);
  assert.equal(toks[2]![15], 49407);
  assert.deepEqual(toks[1], [49406, 320, 2368, 49407]);
  await m.close();
});

test('zero-shot classifier: mean of normalised template embeddings, renormalised; logits use exp(logit_scale)', async () => {
  const m = await ClipModel.load(hfDir, { engine });
  const classes = ['dog', 'cat'];
  const templates = ['a photo of a {}.', 'a drawing of the {}', '{}'];
  const Wz = await m.zeroShotClassifier(classes, templates);
  const E = 16;
  for (let c = 0; c < 2; c++) {
    const each = await m.encodeTexts(templates.map((t) => fillTemplate(t, classes[c]!)));
    const mean = Array.from({ length: E }, (_, j) => (each.data[j]! + each.data[E + j]! + each.data[2 * E + j]!) / 3);
    const n = Math.hypot(...mean);
    mean.forEach((v, j) => assert.ok(Math.abs(v / n - Wz.data[c * E + j]!) < 1e-6));
  }
  const img = await m.encodeImages(images(2, 3));
  const logits = m.logits(img, Wz);
  assert.ok(Math.abs(m.logitScale - 1 / 0.07) < 1e-4);
  for (let i = 0; i < 2; i++) {
    for (let c = 0; c < 2; c++) {
      let dot = 0;
      for (let j = 0; j < E; j++) dot += img.data[i * E + j]! * Wz.data[c * E + j]!;
      assert.ok(Math.abs(logits.data[i * 2 + c]! - m.logitScale * dot) < 1e-4);
    }
  }
  assert.throws(() => fillTemplate('no placeholder', 'dog'), /no \{\} placeholder/);
  await m.close();
});

test('float16 weights load (widened to float32) and give nearly the same embeddings', async () => {
  const dir = join(root, 'hf16');
  writeRandomClip(dir, cfg, { layout: 'hf', seed: 7, bpePath: BPE, perturbStd: 0.1, float: 'F16' });
  const m16 = await ClipModel.load(dir, { engine });
  const m32 = await ClipModel.load(hfDir, { engine });
  const a = await m16.encodeTexts(TEXTS);
  const b = await m32.encodeTexts(TEXTS);
  let err = 0;
  for (let i = 0; i < a.data.length; i++) err = Math.max(err, Math.abs(a.data[i]! - b.data[i]!));
  assert.ok(err > 0 && err < 1e-2, `float16 error ${err}`);
  await m16.close();
  await m32.close();
});

test('malformed folders fail with errors naming the file and the field or tensor', () => {
  // missing config field
  const d1 = join(root, 'bad-config');
  writeRandomClip(d1, cfg, { layout: 'open_clip', seed: 1, bpePath: BPE });
  const ocj = JSON.parse(readFileSync(join(d1, 'open_clip_config.json'), 'utf8'));
  delete ocj.model_cfg.embed_dim;
  writeFileSync(join(d1, 'open_clip_config.json'), JSON.stringify(ocj));
  assert.throws(() => loadClip(d1), (e: Error) => e.message.includes(join(d1, 'open_clip_config.json')) && e.message.includes('model_cfg.embed_dim: missing'));
  const d1b = join(root, 'bad-hf-config');
  writeRandomClip(d1b, cfg, { layout: 'hf', seed: 1, bpePath: BPE });
  const hfj = JSON.parse(readFileSync(join(d1b, 'config.json'), 'utf8'));
  hfj.text_config.hidden_size = 'wide';
  writeFileSync(join(d1b, 'config.json'), JSON.stringify(hfj));
  assert.throws(() => loadClip(d1b), (e: Error) => e.message.includes(join(d1b, 'config.json')) && e.message.includes('text_config.hidden_size'));

  // a weight with the wrong shape
  const d2 = join(root, 'bad-shape');
  writeRandomClip(d2, cfg, { layout: 'hf', seed: 1, bpePath: BPE });
  const st = readSafetensors(join(d2, 'model.safetensors'));
  const t = st.tensors.get('vision_model.encoder.layers.1.mlp.fc2.weight')!;
  st.tensors.set('vision_model.encoder.layers.1.mlp.fc2.weight', { dtype: 'float32', shape: [64, 32], data: (t.data as Float32Array).slice() });
  writeSafetensors(join(d2, 'model.safetensors'), st.tensors);
  assert.throws(
    () => loadClip(d2),
    (e: Error) => e.message.includes(join(d2, 'model.safetensors')) && e.message.includes("tensor 'vision_model.encoder.layers.1.mlp.fc2.weight' has shape [64,32], expected [32,64]"),
  );
  // open_clip: a missing tensor is named as spelled in the file
  const d2b = join(root, 'bad-oc-weights');
  writeRandomClip(d2b, cfg, { layout: 'open_clip', seed: 1, bpePath: BPE });
  const so = readSafetensors(join(d2b, 'open_clip_model.safetensors'));
  so.tensors.delete('visual.proj');
  writeSafetensors(join(d2b, 'open_clip_model.safetensors'), so.tensors);
  assert.throws(() => loadClip(d2b), /open_clip_model\.safetensors: missing tensor 'visual\.proj' \(expected shape \[32,16\]\)/);

  // a missing tokenizer file
  const d3 = join(root, 'no-tokenizer');
  writeRandomClip(d3, cfg, { layout: 'hf', seed: 1, bpePath: BPE });
  unlinkSync(join(d3, 'merges.txt'));
  assert.ok(existsSync(join(d3, 'vocab.json')));
  assert.throws(() => loadClip(d3), (e: Error) => e.message.includes(d3) && /vocab\.json \+ merges\.txt/.test(e.message));

  // not a model folder at all
  assert.throws(() => loadClip(join(root, 'nowhere')), /does not exist/);
  assert.throws(() => loadClip(root), /not a CLIP model folder/);
});
