import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  resize,
  resizeShortest,
  shortestSideSize,
  centerCrop,
  crop,
  toCHW,
  preprocessImage,
  preprocessBatch,
  preprocessConfigFromHF,
  resampleCoefficients,
  clipPreprocessConfig,
  CLIP_MEAN,
  CLIP_STD,
  type PreprocessConfig,
} from '../../src/clip/preprocess.ts';
import type { Image } from '../../src/data/types.ts';
import { Rng } from '../../src/util/rng.ts';

const gray = (width: number, height: number, values: number[]): Image => ({ width, height, channels: 1, pixels: new Uint8Array(values) });

function randomImage(width: number, height: number, channels: 1 | 3, seed: number): Image {
  const rng = new Rng(seed);
  const pixels = new Uint8Array(width * height * channels);
  for (let i = 0; i < pixels.length; i++) pixels[i] = rng.int(256);
  return { width, height, channels, pixels };
}

/*
 * Hand computation, bicubic (a = -0.5), 4 → 2 samples: scale 2, filter scale 2, support 4.
 *   f(0.25) = (1.5·0.25 − 2.5)·0.0625 + 1 = 0.8671875
 *   f(0.75) = (1.5·0.75 − 2.5)·0.5625 + 1 = 0.2265625
 *   f(1.25) = (((1.25 − 5)·1.25 + 8)·1.25 − 4)·(−0.5) = −0.0703125
 * Output 0: center 1, taps 0..3 at (x − 1 + 0.5)/2 = −0.25, 0.25, 0.75, 1.25 → weights 55.5, 55.5, 14.5, −4.5 (/64),
 * sum 121/64, so normalised weights are [55.5, 55.5, 14.5, −4.5] / 121. Output 1 is the mirror image.
 * With pixels [0, 100, 200, 255]:
 *   out0 = (55.5·0 + 55.5·100 + 14.5·200 − 4.5·255) / 121 = 7302.5 / 121 = 60.35 → 60
 *   out1 = (−4.5·0 + 14.5·100 + 55.5·200 + 55.5·255) / 121 = 26702.5 / 121 = 220.68 → 221
 */
test('bicubic 4 → 2: hand-computed coefficients and values (horizontal and vertical)', () => {
  const co = resampleCoefficients(4, 2, 'bicubic');
  assert.deepEqual(Array.from(co.start), [0, 0]);
  assert.deepEqual(Array.from(co.count), [4, 4]);
  const expect0 = [55.5, 55.5, 14.5, -4.5].map((v) => v / 121);
  const expect1 = [-4.5, 14.5, 55.5, 55.5].map((v) => v / 121);
  for (let t = 0; t < 4; t++) {
    assert.ok(Math.abs(co.kf[t]! - expect0[t]!) < 1e-15);
    assert.ok(Math.abs(co.kf[co.ksize + t]! - expect1[t]!) < 1e-15);
  }
  assert.deepEqual(Array.from(resize(gray(4, 1, [0, 100, 200, 255]), 2, 1).pixels), [60, 221]);
  assert.deepEqual(Array.from(resize(gray(1, 4, [0, 100, 200, 255]), 1, 2).pixels), [60, 221]);
  // RGB: each channel independently (channel 1 reversed, channel 2 constant)
  const rgb: Image = { width: 4, height: 1, channels: 3, pixels: new Uint8Array([0, 255, 9, 100, 200, 9, 200, 100, 9, 255, 0, 9]) };
  assert.deepEqual(Array.from(resize(rgb, 2, 1).pixels), [60, 221, 9, 221, 60, 9]);
});

/*
 * Bicubic upscale 2 → 4: scale 0.5, filter scale 1, support 2.
 *   out0: center 0.25, taps 0..1 at 0.25, 1.25 → (0.8671875, −0.0703125)/0.796875; value −0.0703125·255/0.796875 = −22.5 → 0
 *   out1: center 0.75, taps 0..1 at −0.25, 0.75 → (0.8671875, 0.2265625)/1.09375; value 0.2265625·255/1.09375 = 52.82 → 53
 *   out2, out3 by symmetry: 255 − 52.82 = 202.18 → 202, 255 + 22.5 → 255
 * Bilinear 4 → 2: scale 2, support 2. out0: center 1, taps 0..2 at −0.25, 0.25, 0.75 → (0.75, 0.75, 0.25)/1.75
 *   value (75 + 50)/1.75 with pixels [0,100,200,255]: (0.75·100 + 0.25·200)/1.75 = 125/1.75 = 71.43 → 71
 *   out1: center 3, taps 1..3 at −0.75, −0.25, 0.25 → (0.25, 0.75, 0.75)/1.75: (25 + 150 + 191.25)/1.75 = 209.29 → 209
 */
test('bicubic upscale and bilinear downscale: hand-computed values', () => {
  assert.deepEqual(Array.from(resize(gray(2, 1, [0, 255]), 4, 1, 'bicubic').pixels), [0, 53, 202, 255]);
  assert.deepEqual(Array.from(resize(gray(4, 1, [0, 100, 200, 255]), 2, 1, 'bilinear').pixels), [71, 209]);
  const co = resampleCoefficients(4, 2, 'bilinear');
  assert.deepEqual(Array.from(co.start), [0, 1]);
  assert.deepEqual(Array.from(co.count), [3, 3]);
});

test('identity when the size is unchanged; constant images stay constant', () => {
  const img = randomImage(9, 7, 3, 1);
  const same = resize(img, 9, 7);
  assert.deepEqual(same.pixels, img.pixels);
  assert.notEqual(same.pixels, img.pixels, 'returns a copy');
  for (const resample of ['bicubic', 'bilinear'] as const) {
    for (const [w, h] of [[3, 2], [17, 13], [40, 5], [1, 1]] as const) {
      for (const c of [0, 1, 77, 254, 255]) {
        const out = resize(gray(6, 5, new Array(30).fill(c)), w, h, resample);
        assert.ok(out.pixels.every((v) => v === c), `${resample} ${w}x${h} constant ${c}`);
      }
    }
  }
});

/**
 * An independent double-precision reference of the antialiased separable convolution (no intermediate rounding):
 * weights w_j ∝ f((j − center + 0.5)/fs) over the taps j with |j + 0.5 − center| < support, normalised; the
 * horizontal result is clamped to [0, 255] (an 8-bit intermediate) but not rounded.
 */
function referenceResize(img: Image, outW: number, outH: number): number[] {
  const cubic = (x: number): number => {
    const t = Math.abs(x);
    if (t < 1) return 1.5 * t ** 3 - 2.5 * t ** 2 + 1;
    if (t < 2) return -0.5 * t ** 3 + 2.5 * t ** 2 - 4 * t + 2;
    return 0;
  };
  const weights = (inSize: number, outSize: number): Array<Map<number, number>> => {
    const scale = inSize / outSize;
    const fs = Math.max(1, scale);
    return Array.from({ length: outSize }, (_, i) => {
      const center = (i + 0.5) * scale;
      const m = new Map<number, number>();
      let sum = 0;
      for (let j = 0; j < inSize; j++) {
        const w = cubic((j + 0.5 - center) / fs);
        if (w !== 0) {
          m.set(j, w);
          sum += w;
        }
      }
      for (const [j, w] of m) m.set(j, w / sum);
      return m;
    });
  };
  const wx = weights(img.width, outW);
  const wy = weights(img.height, outH);
  const C = img.channels;
  const clamp = (v: number): number => Math.min(255, Math.max(0, v));
  // horizontal pass (clamped to [0, 255] like any 8-bit intermediate image, but not rounded), then vertical
  const tmp: number[] = [];
  for (let y = 0; y < img.height; y++) {
    for (let x = 0; x < outW; x++) {
      for (let c = 0; c < C; c++) {
        let acc = 0;
        for (const [sx, b] of wx[x]!) acc += b * img.pixels[(y * img.width + sx) * C + c]!;
        tmp.push(clamp(acc));
      }
    }
  }
  const out: number[] = [];
  for (let y = 0; y < outH; y++) {
    for (let x = 0; x < outW; x++) {
      for (let c = 0; c < C; c++) {
        let acc = 0;
        for (const [sy, a] of wy[y]!) acc += a * tmp[(sy * outW + x) * C + c]!;
        out.push(clamp(acc));
      }
    }
  }
  return out;
}

test('2-D bicubic resize matches a double-precision reference up to 8-bit rounding', () => {
  const img = randomImage(23, 17, 3, 7);
  for (const [w, h] of [[10, 8], [31, 29], [23, 9], [5, 40]] as const) {
    const got = resize(img, w, h);
    const ref = referenceResize(img, w, h);
    let max = 0;
    let sum = 0;
    for (let i = 0; i < ref.length; i++) {
      const d = Math.abs(got.pixels[i]! - ref[i]!);
      max = Math.max(max, d);
      sum += d;
    }
    // rounding the intermediate (≤ 0.5, amplified by Σ|k| ≤ 1.27 of the vertical taps) and the result (≤ 0.5)
    assert.ok(max <= 0.5 * 1.27 + 0.5, `${w}x${h}: max deviation ${max}`);
    assert.ok(sum / ref.length <= 0.35, `${w}x${h}: mean deviation ${sum / ref.length}`);
  }
});

test('shortest-side sizes follow torchvision: the long side is trunc(size·long/short)', () => {
  assert.deepEqual(shortestSideSize(500, 375, 224), [298, 224]); // 224·500/375 = 298.67
  assert.deepEqual(shortestSideSize(375, 500, 224), [224, 298]);
  assert.deepEqual(shortestSideSize(32, 32, 224), [224, 224]);
  assert.deepEqual(shortestSideSize(64, 48, 224), [298, 224]);
  const r = resizeShortest(randomImage(50, 30, 3, 2), 12);
  assert.equal(r.width, 20);
  assert.equal(r.height, 12);
});

test('center crop offsets use round-half-to-even; smaller images are zero padded', () => {
  // coordinate-coded image: value = 10·y + x
  const coded = (w: number, h: number): Image => gray(w, h, Array.from({ length: w * h }, (_, i) => 10 * Math.floor(i / w) + (i % w)));
  // w=7,h=6,size 4: left = round(1.5) = 2, top = round(1) = 1
  assert.deepEqual(Array.from(centerCrop(coded(7, 6), 4).pixels), [12, 13, 14, 15, 22, 23, 24, 25, 32, 33, 34, 35, 42, 43, 44, 45]);
  // w=9,h=5,size 4: left = round(2.5) = 2 (even), top = round(0.5) = 0 (even)
  assert.deepEqual(Array.from(centerCrop(coded(9, 5), 4).pixels.subarray(0, 4)), [2, 3, 4, 5]);
  // w=3,h=2,size 4: pad left floor(1/2) = 0, top floor(2/2) = 1
  assert.deepEqual(Array.from(centerCrop(coded(3, 2), 4).pixels), [0, 0, 0, 0, 0, 1, 2, 0, 10, 11, 12, 0, 0, 0, 0, 0]);
  // RGB crop keeps channel interleaving
  const rgb: Image = { width: 3, height: 1, channels: 3, pixels: new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9]) };
  assert.deepEqual(Array.from(crop(rgb, 0, 1, 1, 1).pixels), [4, 5, 6]);
  assert.deepEqual(Array.from(crop(rgb, -1, 2, 2, 2).pixels), [0, 0, 0, 0, 0, 0, 7, 8, 9, 0, 0, 0]);
});

test('toCHW normalisation numbers and layout; grayscale is replicated', () => {
  // (v/255 − mean)/std computed by hand in double precision
  const expected = [
    [-1.79226253374815, 0.07633607351494368, 1.930336254158794],
    [-1.7520971281645974, 0.16889723903118556, 2.0748838377332515],
    [-1.4802197687835659, 0.33994864299551714, 2.1458969890575763],
  ];
  const img: Image = { width: 3, height: 1, channels: 3, pixels: new Uint8Array([0, 0, 0, 128, 128, 128, 255, 255, 255]) };
  const out = toCHW(img, CLIP_MEAN, CLIP_STD);
  assert.equal(out.length, 9);
  for (let c = 0; c < 3; c++) for (let x = 0; x < 3; x++) assert.ok(Math.abs(out[c * 3 + x]! - expected[c]![x]!) < 1e-6);
  const g = toCHW(gray(3, 1, [0, 128, 255]), CLIP_MEAN, CLIP_STD);
  assert.deepEqual(g, out);
  // distinct channels land in distinct planes: R plane from channel 0 only
  const rgb: Image = { width: 2, height: 1, channels: 3, pixels: new Uint8Array([255, 0, 0, 0, 0, 255]) };
  const o = toCHW(rgb, [0, 0, 0], [1, 1, 1]);
  assert.deepEqual(Array.from(o), [1, 0, 0, 0, 0, 1]);
  assert.throws(() => toCHW(rgb, [0, 0, 0], [1, 0, 1]), /std values must be positive/);
});

test('preprocessImage = resize shortest → center crop → normalise; batch stacks images', () => {
  const cfg: PreprocessConfig = { size: 8, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] };
  const img = randomImage(30, 20, 3, 3);
  const out = preprocessImage(img, cfg);
  assert.equal(out.length, 3 * 8 * 8);
  const resized = resize(img, 12, 8); // 8·30/20 = 12
  const cropped = crop(resized, 0, 2, 8, 8); // left = round(2) = 2
  assert.deepEqual(out, toCHW(cropped, cfg.mean, cfg.std));
  for (const v of out) assert.ok(v >= -1 && v <= 1);
  // cropPct: resize shortest side to floor(8 / 0.5) = 16 before the 8×8 crop
  const pct = preprocessImage(img, { ...cfg, cropPct: 0.5 });
  assert.deepEqual(pct, toCHW(centerCrop(resize(img, 24, 16), 8), cfg.mean, cfg.std));
  // batch
  const imgs = [img, randomImage(8, 8, 1, 4), randomImage(9, 40, 3, 5)];
  const batch = preprocessBatch(imgs, cfg);
  assert.deepEqual(batch.dims, [3, 3, 8, 8]);
  imgs.forEach((im, i) => assert.deepEqual(batch.data.subarray(i * 192, (i + 1) * 192), preprocessImage(im, cfg)));
  // an image already at the target size is only normalised
  const sq = randomImage(8, 8, 3, 6);
  assert.deepEqual(preprocessImage(sq, cfg), toCHW(sq, cfg.mean, cfg.std));
  // the CLIP defaults
  const clip = clipPreprocessConfig();
  assert.equal(clip.size, 224);
  assert.deepEqual(clip.mean, [0.48145466, 0.4578275, 0.40821073]);
  assert.deepEqual(clip.std, [0.26862954, 0.26130258, 0.27577711]);
});

test('preprocessConfigFromHF reads both config styles and names bad fields', () => {
  const mean = [0.48145466, 0.4578275, 0.40821073];
  const std = [0.26862954, 0.26130258, 0.27577711];
  const old = { crop_size: 224, do_center_crop: true, do_normalize: true, do_resize: true, image_mean: mean, image_std: std, resample: 3, size: 224 };
  assert.deepEqual(preprocessConfigFromHF(old, 'a/preprocessor_config.json'), { size: 224, mean, std, resample: 'bicubic', resizeSize: 224 });
  const newer = { crop_size: { height: 336, width: 336 }, size: { shortest_edge: 336 }, image_mean: [0.5, 0.5, 0.5], image_std: [0.5, 0.5, 0.5], resample: 2, rescale_factor: 1 / 255 };
  assert.deepEqual(preprocessConfigFromHF(newer, 'b'), { size: 336, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5], resample: 'bilinear', resizeSize: 336 });
  assert.deepEqual(preprocessConfigFromHF({ crop_size: 224, size: { shortest_edge: 256 } }, 'c').resizeSize, 256);
  assert.deepEqual(preprocessConfigFromHF({ do_normalize: false }, 'd').std, [1, 1, 1]);
  const bad: Array<[unknown, RegExp]> = [
    [[1], /x\.json: preprocessor config is not a JSON object/],
    [{ crop_size: 'big' }, /x\.json: crop_size must be a number or \{height, width\}/],
    [{ crop_size: { height: 224, width: 200 } }, /x\.json: crop_size must be square/],
    [{ size: { shortest_edge: 0 } }, /x\.json: size\.shortest_edge must be a positive integer/],
    [{ size: { height: 224, width: 224 } }, /x\.json: size must be a number or \{shortest_edge\}/],
    [{ image_mean: [0.5, 0.5] }, /x\.json: image_mean must be three numbers/],
    [{ image_std: [0.5, 0, 0.5] }, /x\.json: image_std must be positive/],
    [{ resample: 1 }, /x\.json: resample must be 2 \(bilinear\) or 3 \(bicubic\), got 1/],
    [{ rescale_factor: 1 }, /x\.json: rescale_factor must be 1\/255/],
    [{ do_center_crop: false }, /x\.json: do_center_crop false is not supported/],
  ];
  for (const [json, re] of bad) assert.throws(() => preprocessConfigFromHF(json, 'x.json'), re);
});
