/**
 * The data side of pretraining: class split, captions and the compact vocabulary, augmentation, batch stream.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Image } from '../../src/data/types.ts';
import { CLIP_MEAN, CLIP_STD } from '../../src/clip/preprocess.ts';
import { augmentInto, drawAugment, identityDraw, randomResizedCropBox, type AugmentDraw } from '../../src/pretrain/augment.ts';
import { CaptionSampler, fillCaption, tokenizeCaptions } from '../../src/pretrain/captions.ts';
import { classNameChoices, classSubsetOf, samplesOfClasses, selectClassLabels } from '../../src/pretrain/classes.ts';
import { AugmentSchema } from '../../src/pretrain/config.ts';
import { BatchSampler, type SamplerOptions } from '../../src/pretrain/sampler.ts';
import { CompactVocab } from '../../src/pretrain/vocab.ts';
import { Rng } from '../../src/util/rng.ts';
import { shapesDataset, SHAPE_CLASSES, tokenizer } from './fixtures.ts';

test('class split: even/odd positions of the SORTED class ids, returned as labels', () => {
  // label order is not sorted: sorted ids are a(2) b(0) c(3) d(1) e(4)
  const ids = ['b', 'd', 'a', 'c', 'e'];
  assert.deepEqual(selectClassLabels(ids, 'even'), [2, 3, 4].sort((x, y) => x - y)); // a, c, e
  assert.deepEqual(selectClassLabels(ids, 'odd'), [0, 1]); // b, d
  assert.deepEqual(selectClassLabels(ids, 'all'), [0, 1, 2, 3, 4]);
  // Tiny ImageNet style: already-sorted wnids → even labels 0, 2, …, odd labels 1, 3, …
  const wnids = Array.from({ length: 200 }, (_, i) => `n${String(1000 + i * 7).padStart(8, '0')}`);
  const even = selectClassLabels(wnids, 'even');
  assert.equal(even.length, 100);
  assert.deepEqual(even.slice(0, 3), [0, 2, 4]);
  assert.deepEqual(selectClassLabels(wnids, 'odd').slice(-2), [197, 199]);
  const ds = shapesDataset(3);
  assert.deepEqual(classSubsetOf(ds, 'odd'), [1, 3]);
  const idx = samplesOfClasses(ds, [1, 3]);
  assert.equal(idx.length, 6);
  for (const i of idx) assert.ok([1, 3].includes(ds.labels[i]!));
  assert.deepEqual(classNameChoices(ds, true)[2], ['blue stripe', 'navy bar']);
  assert.deepEqual(classNameChoices(ds, false)[2], ['blue stripe']);
});

test('captions: a random synonym in a random template; the compact vocabulary covers every caption', () => {
  const tok = tokenizer();
  const cs = new CaptionSampler([['red circle', 'crimson disk'], ['green square']], ['a photo of a {}.', '{} and {}']);
  assert.equal(fillCaption('{} and {}', 'x'), 'x and x');
  const all = new Set(cs.allCaptions([0, 1]));
  assert.equal(all.size, 6);
  const rng = new Rng(1);
  const seen = new Set<string>();
  for (let i = 0; i < 200; i++) {
    const c = cs.sample(0, rng);
    assert.ok(all.has(c), c);
    seen.add(c);
  }
  assert.equal(seen.size, 4, 'both synonyms and both templates occur');
  const vocab = cs.vocabulary(tok, [0, 1], 77);
  // "a photo of a cat." has the known ids 320 1125 539 320 2368 269: check the template's tokens are present
  for (const id of [0, 320, 1125, 539, 269, 49406, 49407]) assert.doesNotThrow(() => vocab.compact(id), String(id));
  const batch = tokenizeCaptions(tok, vocab, ['a photo of a red circle.', 'green square and green square'], 77);
  const [n, T] = batch.dims;
  assert.equal(n, 2);
  // row → original ids round trip; EOT stays the highest compact id; padding is 0
  const orig = tok.tokenize(batch.texts, 77);
  for (let r = 0; r < n; r++) {
    for (let t = 0; t < T; t++) {
      const c = Number(batch.ids[r * T + t]!);
      if (t < orig.lengths[r]!) assert.equal(vocab.ids[c], orig.ids[r * 77 + t]);
      else assert.equal(c, 0);
    }
  }
  assert.equal(vocab.compact(49407), vocab.size - 1);
  assert.equal(T, Math.max(...orig.lengths));
  assert.throws(() => vocab.compact(2368), /not in the compact table/); // "cat" never occurs
});

test('compact table gather/scatter round trip', () => {
  const v = new CompactVocab([7, 2, 2, 5]);
  assert.deepEqual(Array.from(v.ids), [2, 5, 7]);
  const full = { shape: [9, 2], data: Float32Array.from({ length: 18 }, (_, i) => i) };
  const c = v.gatherRows(full);
  assert.deepEqual(Array.from(c.data), [4, 5, 10, 11, 14, 15]);
  const back = v.scatterRows(full, Float32Array.from([-1, -2, -3, -4, -5, -6]));
  assert.deepEqual(Array.from(back.data.subarray(4, 6)), [-1, -2]);
  assert.deepEqual(Array.from(back.data.subarray(14, 16)), [-5, -6]);
  assert.equal(back.data[0], 0);
  assert.equal(full.data[4], 4, 'the input is not modified');
});

/** A 4×4 RGB image with pixel (y, x, c) = 10·y + 2·x + 50·c + 5. */
function img4(): Image {
  const p = new Uint8Array(4 * 4 * 3);
  for (let y = 0; y < 4; y++) for (let x = 0; x < 4; x++) for (let c = 0; c < 3; c++) p[(y * 4 + x) * 3 + c] = 10 * y + 2 * x + 50 * c + 5;
  return { width: 4, height: 4, channels: 3, pixels: p };
}
const px = (y: number, x: number, c: number) => 10 * y + 2 * x + 50 * c + 5;
function run(draw: AugmentDraw, S = 4): Float32Array {
  const out = new Float32Array(3 * S * S);
  augmentInto(img4(), draw, S, CLIP_MEAN, CLIP_STD, out, 0);
  return out;
}
const norm = (v: number, c: number) => (v / 255 - CLIP_MEAN[c]!) / CLIP_STD[c]!;

test('augmentation: identity is CLIP normalisation in CHW; flip, padded crop, jitter and grayscale by hand', () => {
  const id = run(identityDraw(4, 4));
  for (let c = 0; c < 3; c++) for (let y = 0; y < 4; y++) for (let x = 0; x < 4; x++) {
    assert.ok(Math.abs(id[c * 16 + y * 4 + x]! - norm(px(y, x, c), c)) < 1e-5);
  }
  const flip = run({ ...identityDraw(4, 4), flip: true });
  assert.ok(Math.abs(flip[1 * 16 + 2 * 4 + 0]! - norm(px(2, 3, 1), 1)) < 1e-5);
  // a window shifted by (−1, +1): row 0 is padding (black), column x shows source x + 1 (black past the edge)
  const pad = run({ ...identityDraw(4, 4), box: { top: -1, left: 1, height: 4, width: 4 } });
  assert.ok(Math.abs(pad[0]! - norm(0, 0)) < 1e-5);
  assert.ok(Math.abs(pad[2 * 4 + 1]! - norm(px(1, 2, 0), 0)) < 1e-5);
  assert.ok(Math.abs(pad[2 * 4 + 3]! - norm(0, 0)) < 1e-5);
  // 2×2 centre crop upsampled to 4×4 (bilinear, centres (i+½)/2 − ½, clamped): output (0,0) = source (1,1)
  const zoom = run({ ...identityDraw(4, 4), box: { top: 1, left: 1, height: 2, width: 2 } });
  assert.ok(Math.abs(zoom[0]! - norm(px(1, 1, 0), 0)) < 1e-5);
  // output (1,1) samples (0.25, 0.25) inside the box: 0.75² p11 + 0.75·0.25 (p12 + p21) + 0.25² p22
  const v11 = 0.5625 * px(1, 1, 0) + 0.1875 * (px(1, 2, 0) + px(2, 1, 0)) + 0.0625 * px(2, 2, 0);
  assert.ok(Math.abs(zoom[5]! - norm(v11, 0)) < 1e-5);
  // brightness ×1.2 then grayscale: every channel = 0.299 r + 0.587 g + 0.114 b of the brightened pixel
  const g = run({ ...identityDraw(4, 4), brightness: 1.2, gray: true });
  const [r, gg, b] = [0, 1, 2].map((c) => Math.min(1, (px(3, 1, c) / 255) * 1.2));
  const gray = 0.299 * r! + 0.587 * gg! + 0.114 * b!;
  for (let c = 0; c < 3; c++) assert.ok(Math.abs(g[c * 16 + 3 * 4 + 1]! - (gray - CLIP_MEAN[c]!) / CLIP_STD[c]!) < 1e-5);
  // contrast 0: every pixel becomes the mean gray level of the image
  const flat = run({ ...identityDraw(4, 4), contrast: 1e-9 });
  let m = 0;
  for (let y = 0; y < 4; y++) for (let x = 0; x < 4; x++) m += (0.299 * px(y, x, 0) + 0.587 * px(y, x, 1) + 0.114 * px(y, x, 2)) / 255 / 16;
  assert.ok(Math.abs(flat[7]! - (m - CLIP_MEAN[0]!) / CLIP_STD[0]!) < 1e-4);
  // saturation 0 is grayscale
  const sat = run({ ...identityDraw(4, 4), saturation: 1e-9 });
  const gray0 = (0.299 * px(0, 0, 0) + 0.587 * px(0, 0, 1) + 0.114 * px(0, 0, 2)) / 255;
  assert.ok(Math.abs(sat[32]! - (gray0 - CLIP_MEAN[2]!) / CLIP_STD[2]!) < 1e-4);
});

test('random resized crop boxes follow the scale and ratio ranges; draws are reproducible from the rng state', () => {
  const rng = new Rng(5);
  for (let i = 0; i < 500; i++) {
    const b = randomResizedCropBox(64, 64, [0.3, 1], [3 / 4, 4 / 3], rng);
    assert.ok(b.top >= 0 && b.left >= 0 && b.top + b.height <= 64 && b.left + b.width <= 64);
    const area = (b.height * b.width) / 4096;
    assert.ok(area > 0.28 && area <= 1, `area ${area}`);
    const ratio = b.width / b.height;
    assert.ok(ratio > 0.7 && ratio < 1.45, `ratio ${ratio}`);
  }
  // an impossible ratio range falls back to the centred whole-image box with the ratio clamped
  const fb = randomResizedCropBox(10, 40, [0.99, 1], [1, 1], new Rng(1));
  assert.deepEqual(fb, { top: 0, left: 15, height: 10, width: 10 });
  const cfg = AugmentSchema.parse({ crop: { kind: 'pad', padding: 2 }, flip: 0.5, colorJitter: { brightness: 0.3 }, grayscale: 0.5 });
  const a = new Rng(9);
  const state = a.getState();
  const d1 = Array.from({ length: 20 }, () => drawAugment(cfg, 8, 8, a));
  a.setState(state);
  const d2 = Array.from({ length: 20 }, () => drawAugment(cfg, 8, 8, a));
  assert.deepEqual(d1, d2);
  for (const d of d1) {
    assert.ok(d.box.top >= -2 && d.box.top <= 2 && d.box.height === 8);
    assert.ok(d.brightness >= 0.7 && d.brightness <= 1.3);
    assert.equal(d.contrast, 1);
  }
  assert.ok(d1.some((d) => d.flip) && d1.some((d) => !d.flip));
  assert.ok(d1.some((d) => d.gray) && d1.some((d) => !d.gray));
});

function samplerOpts(seed = 2): SamplerOptions {
  const ds = shapesDataset(5, 16);
  const tok = tokenizer();
  const captions = new CaptionSampler(classNameChoices(ds, true), ds.templates);
  const labels = [0, 1, 2, 3];
  return {
    dataset: ds,
    indices: samplesOfClasses(ds, labels),
    batchSize: 6,
    imageSize: 16,
    mean: CLIP_MEAN,
    std: CLIP_STD,
    augment: AugmentSchema.parse({ colorJitter: { brightness: 0.2 }, grayscale: 0.2 }),
    captions,
    tokenizer: tok,
    vocab: captions.vocabulary(tok, labels, 12),
    contextLength: 12,
    seed,
  };
}

test('batch stream: epochs are permutations, texts are the distinct classes, targets are one-hot', () => {
  const s = new BatchSampler(samplerOpts());
  const N = s.samples;
  assert.equal(N, 20);
  const seen: number[] = [];
  for (let k = 0; k < 10; k++) {
    const b = s.next();
    seen.push(...b.indices);
    const K = b.idsDims[0];
    assert.equal(K, new Set(b.labels).size);
    assert.deepEqual(b.textClasses, [...new Set(b.labels)]);
    for (let i = 0; i < 6; i++) {
      let ones = 0;
      for (let k2 = 0; k2 < K; k2++) {
        const t = b.targets[i * K + k2]!;
        ones += t;
        assert.equal(t, b.textClasses[k2] === b.labels[i] ? 1 : 0);
      }
      assert.equal(ones, 1);
      assert.equal(b.labels[i], s['opts'].dataset.labels[b.indices[i]!]);
    }
    b.captions.forEach((c, k2) => assert.ok(SHAPE_CLASSES[b.textClasses[k2]!]!.names.some((n) => c.includes(n)), c));
    assert.equal(b.pixels.length, 6 * 3 * 16 * 16);
  }
  // 60 samples = 3 epochs: each block of 20 is a permutation of the training set
  for (let e = 0; e < 3; e++) assert.deepEqual([...seen.slice(e * 20, e * 20 + 20)].sort((a, b) => a - b), Array.from({ length: 20 }, (_, i) => i));
  assert.deepEqual(s.progress, { epoch: 2, position: 20 });
});

test('batch stream: a restored state continues with identical batches (also across an epoch boundary)', () => {
  const a = new BatchSampler(samplerOpts());
  for (let k = 0; k < 3; k++) a.next(); // position 18 of epoch 0
  const st = JSON.parse(JSON.stringify(a.state()));
  const rest = Array.from({ length: 4 }, () => a.next());
  const b = new BatchSampler(samplerOpts());
  b.restore(st);
  for (const want of rest) {
    const got = b.next();
    assert.deepEqual(Array.from(got.indices), Array.from(want.indices));
    assert.deepEqual(got.captions, want.captions);
    assert.deepEqual(Array.from(got.ids), Array.from(want.ids));
    assert.ok(got.pixels.every((v, i) => v === want.pixels[i]));
  }
  // another seed gives another order; another training set is refused
  const c = new BatchSampler(samplerOpts(3));
  assert.notDeepEqual(Array.from(c.next().indices), Array.from(new BatchSampler(samplerOpts()).next().indices));
  const other = samplerOpts();
  other.indices = other.indices.subarray(0, 10);
  assert.throws(() => new BatchSampler(other).restore(st, 'ck'), /ck: the checkpoint was made with a different training set/);
});

test('batch stream: classes whose captions coincide share one text column (multi-positive for text→image)', () => {
  const o = samplerOpts();
  // every class is captioned by its hypernym; classes 0, 1 share "shape", 2, 3 share "line"
  const rel = [0, 1, 2, 3].map((y) => ({ hypernyms: [[y < 2 ? 'shape' : 'line']], definition: null }));
  o.captions = new CaptionSampler(classNameChoices(o.dataset, true), ['a {}.'], { relatives: rel, mix: { hypernym: 0, hypernymOnly: 1, gloss: 0 } });
  o.vocab = o.captions.vocabulary(tokenizer(), [0, 1, 2, 3], 12);
  const s = new BatchSampler(o);
  for (let k = 0; k < 5; k++) {
    const b = s.next();
    const K = b.idsDims[0];
    assert.deepEqual([...b.captions].sort(), [...new Set(Array.from(b.labels, (y) => (y < 2 ? 'a shape.' : 'a line.')))].sort());
    for (let i = 0; i < 6; i++) {
      const k2 = b.textOfImage[i]!;
      assert.equal(b.captions[k2], b.labels[i]! < 2 ? 'a shape.' : 'a line.');
      for (let c = 0; c < K; c++) assert.equal(b.targets[i * K + c], c === k2 ? 1 : 0);
    }
    b.textClasses.forEach((y, c) => assert.equal(b.captions[c], y < 2 ? 'a shape.' : 'a line.'));
  }
});
