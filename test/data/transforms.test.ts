import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  centerCrop,
  crop,
  flipHorizontal,
  gaussianBlur,
  gaussianKernel,
  reflectIndex,
  resize,
  rotate,
  roundHalfEven,
  toRgb,
} from '../../src/data/image-ops.ts';
import { BLUR_KERNELS, TransformSpecSchema, testSpecOf, transformFromSpec } from '../../src/data/transforms.ts';
import type { Image } from '../../src/data/types.ts';
import { Rng } from '../../src/util/rng.ts';

/** An n×n (or h×w) image with distinct values per pixel/channel. */
function img(h: number, w: number, c: 1 | 3 = 1): Image {
  const pixels = new Uint8Array(h * w * c);
  for (let k = 0; k < pixels.length; k++) pixels[k] = (k * 7 + 3) % 251;
  return { width: w, height: h, channels: c, pixels };
}

function at(im: Image, y: number, x: number, ch = 0): number {
  return im.pixels[(y * im.width + x) * im.channels + ch]!;
}

describe('image ops', () => {
  it('rotation by 90° CCW is the exact index permutation out[y][x] = in[x][n−1−y]', () => {
    for (const c of [1, 3] as const) {
      for (const n of [3, 4, 5]) {
        const a = img(n, n, c);
        const r = rotate(a, 90);
        for (let y = 0; y < n; y++) for (let x = 0; x < n; x++) for (let ch = 0; ch < c; ch++) {
          assert.equal(at(r, y, x, ch), at(a, x, n - 1 - y, ch));
        }
        const r180 = rotate(a, 180);
        const rm90 = rotate(a, -90);
        const r270 = rotate(a, 270);
        for (let y = 0; y < n; y++) for (let x = 0; x < n; x++) {
          assert.equal(at(r180, y, x), at(a, n - 1 - y, n - 1 - x));
          assert.equal(at(rm90, y, x), at(a, n - 1 - x, y));
          assert.equal(at(r270, y, x), at(rm90, y, x));
        }
      }
    }
  });

  it('rotation by 45° keeps the centre pixel and fills the corners with 0', () => {
    const a: Image = { width: 7, height: 7, channels: 1, pixels: new Uint8Array(49).fill(200) };
    const r = rotate(a, 45);
    assert.equal(at(r, 3, 3), 200);
    // corner (0, 0) samples the source at (3, 3 − 3√2) ≈ (3, −1.24): more than one pixel outside
    assert.equal(at(r, 0, 0), 0);
    assert.equal(at(r, 6, 6), 0);
    // (y 3, x 0) samples the source at (0.88, 0.88): inside, full value
    assert.equal(at(r, 3, 0), 200);
  });

  it('horizontal flip mirrors columns', () => {
    const a = img(2, 3, 3);
    const f = flipHorizontal(a);
    for (let y = 0; y < 2; y++) for (let x = 0; x < 3; x++) for (let c = 0; c < 3; c++) assert.equal(at(f, y, x, c), at(a, y, 2 - x, c));
  });

  it('crop copies a window and pads outside with zeros', () => {
    const a = img(4, 4);
    const c = crop(a, -1, 2, 3, 3);
    for (let y = 0; y < 3; y++) for (let x = 0; x < 3; x++) {
      const sy = y - 1;
      const sx = x + 2;
      assert.equal(at(c, y, x), sy >= 0 && sx < 4 ? at(a, sy, sx) : 0);
    }
  });

  it('centre crop uses torchvision offsets (round half to even)', () => {
    assert.equal(roundHalfEven(4.5), 4);
    assert.equal(roundHalfEven(5.5), 6);
    assert.equal(roundHalfEven(0.5), 0);
    const a = img(28, 28);
    const c = centerCrop(a, 19, 19); // (28−19)/2 = 4.5 → 4
    assert.equal(at(c, 0, 0), at(a, 4, 4));
    const b = centerCrop(img(5, 5), 3, 3);
    assert.equal(at(b, 0, 0), at(img(5, 5), 1, 1));
    const big = centerCrop(img(2, 2), 4, 4); // pads 1 before
    assert.equal(at(big, 0, 0), 0);
    assert.equal(at(big, 1, 1), at(img(2, 2), 0, 0));
  });

  it('bilinear resize matches the half-pixel formula when enlarging; constant stays constant', () => {
    const a: Image = { width: 2, height: 1, channels: 1, pixels: Uint8Array.from([0, 255]) };
    const r = resize(a, 1, 4, 'bilinear');
    // src = (i + 0.5)·2/4 − 0.5, clamped to [0, 1], then linear interpolation
    const want = [0, 1, 2, 3].map((i) => {
      const s = Math.min(1, Math.max(0, (i + 0.5) / 2 - 0.5));
      return Math.round(255 * s);
    });
    assert.deepEqual([...r.pixels], want);
    for (const mode of ['bilinear', 'bicubic'] as const) {
      const k: Image = { width: 7, height: 5, channels: 3, pixels: new Uint8Array(105).fill(77) };
      for (const [h, w] of [[3, 2], [11, 13], [5, 7]]) assert.ok(resize(k, h!, w!, mode).pixels.every((v) => v === 77), `${mode} ${h}×${w}`);
    }
  });

  it('shrinking by 2 with the triangle filter averages pixel pairs', () => {
    const a: Image = { width: 4, height: 1, channels: 1, pixels: Uint8Array.from([10, 30, 100, 200]) };
    // scale 2 → filter support 2, centres 1 and 3: weights (x − c + 0.5)/2 → 0.25, 0.75, 0.75, 0.25 (normalised)
    const r = resize(a, 1, 2, 'bilinear');
    assert.deepEqual([...r.pixels], [Math.round((0.75 * 10 + 0.75 * 30 + 0.25 * 100) / 1.75), Math.round((0.25 * 30 + 0.75 * 100 + 0.75 * 200) / 1.75)]);
  });

  it('Gaussian blur: kernel formula, constant image stays constant, reflect padding', () => {
    const k = gaussianKernel(5, 1.3);
    const raw = [-2, -1, 0, 1, 2].map((x) => Math.exp(-(x * x) / (2 * 1.3 * 1.3)));
    const s = raw.reduce((a, b) => a + b, 0);
    raw.forEach((v, i) => assert.ok(Math.abs(k[i]! - v / s) < 1e-12));
    assert.deepEqual([-3, -2, -1, 0, 3, 4, 5, 6].map((i) => reflectIndex(i, 4)), [3, 2, 1, 0, 3, 2, 1, 0]);
    const flat: Image = { width: 6, height: 4, channels: 3, pixels: new Uint8Array(72).fill(123) };
    for (const ks of BLUR_KERNELS.slice(1)) assert.ok(gaussianBlur(flat, ks, 1.7).pixels.every((v) => v === 123), `kernel ${ks}`);
    // an impulse spreads as the outer product of the 1-D kernel
    const imp: Image = { width: 9, height: 9, channels: 1, pixels: new Uint8Array(81) };
    imp.pixels[4 * 9 + 4] = 255;
    const b = gaussianBlur(imp, 5, 1);
    const g = gaussianKernel(5, 1);
    assert.equal(at(b, 4, 4), Math.round(255 * g[2]! * g[2]!));
    assert.equal(at(b, 3, 5), Math.round(255 * g[1]! * g[3]!));
  });

  it('toRgb replicates the gray channel', () => {
    const g = img(2, 2, 1);
    const c = toRgb(g);
    assert.equal(c.channels, 3);
    for (let k = 0; k < 4; k++) for (let ch = 0; ch < 3; ch++) assert.equal(c.pixels[3 * k + ch], g.pixels[k]);
    assert.equal(toRgb(c), c);
  });
});

describe('transform specs', () => {
  it('flip 1 always mirrors, flip 0 never', () => {
    const a = img(3, 4);
    const rng = new Rng(1);
    assert.deepEqual(transformFromSpec([{ flip: 1 }])(a, rng).pixels, flipHorizontal(a).pixels);
    assert.equal(transformFromSpec([{ flip: 0 }])(a, rng), a);
  });

  it('random crop with padding draws top and left from the rng', () => {
    const a = img(6, 6);
    const state = new Rng(42).getState();
    const out = transformFromSpec([{ randomCrop: { size: 4, padding: 2 } }])(a, new Rng(state));
    const r = new Rng(state);
    const top = r.int(6 + 4 - 4 + 1) - 2;
    const left = r.int(6 + 4 - 4 + 1) - 2;
    assert.deepEqual(out.pixels, crop(a, top, left, 4, 4).pixels);
    // padding 0 and the image's own size is the identity
    assert.deepEqual(transformFromSpec([{ randomCrop: { padding: 0 } }])(a, new Rng(3)).pixels, a.pixels);
  });

  it('rotate step with jitter: angle = deg + U(−j, j) from the rng', () => {
    const a = img(7, 7);
    const state = new Rng(9).getState();
    const out = transformFromSpec([{ rotate: { deg: 30, jitter: 10 } }])(a, new Rng(state));
    const angle = 30 + new Rng(state).uniform(-10, 10);
    assert.deepEqual(out.pixels, rotate(a, angle).pixels);
    assert.deepEqual(transformFromSpec([{ rotate: 90 }])(a, new Rng(0)).pixels, rotate(a, 90).pixels);
  });

  it('rotate with crop keeps the size (centre ⌊side/√2⌋ resized back)', () => {
    const a = img(28, 28);
    const out = transformFromSpec([{ rotate: { deg: 90, crop: true } }])(a, new Rng(0));
    assert.deepEqual([out.height, out.width], [28, 28]);
    assert.deepEqual(out.pixels, resize(centerCrop(rotate(a, 90), 19, 19), 28, 28).pixels);
  });

  it('same rng state → same output; the state resumes the sequence', () => {
    const spec = [{ rotate: { deg: 0, jitter: 20 } }, { blur: 2 }, { randomCrop: { padding: 3 } }, { flip: 0.5 }];
    const t = transformFromSpec(spec);
    const a = img(12, 12, 3);
    const r1 = new Rng(5);
    const first = t(a, r1);
    const saved = r1.getState();
    const second = t(a, r1);
    assert.deepEqual(t(a, new Rng(5)).pixels, first.pixels);
    assert.deepEqual(t(a, new Rng(saved)).pixels, second.pixels);
    // different draws give (almost surely) different images
    assert.notDeepEqual(first.pixels, second.pixels);
  });

  it('blur levels use kernels 0/5/9/13/17 and σ ~ U(0.1, 2.0)', () => {
    const a = img(20, 20);
    const state = new Rng(11).getState();
    const out = transformFromSpec([{ blur: 3 }])(a, new Rng(state));
    const sigma = new Rng(state).uniform(0.1, 2.0);
    assert.deepEqual(out.pixels, gaussianBlur(a, 13, sigma).pixels);
    assert.equal(transformFromSpec([{ blur: 0 }])(a, new Rng(0)), a);
  });

  it('resize steps: shorter side, exact size', () => {
    const a = img(10, 20);
    const s = transformFromSpec([{ resize: 5 }])(a, new Rng(0));
    assert.deepEqual([s.height, s.width], [5, 10]);
    const e = transformFromSpec([{ resize: { size: [3, 4], mode: 'bicubic' } }])(a, new Rng(0));
    assert.deepEqual([e.height, e.width], [3, 4]);
    const f = transformFromSpec([{ centerCrop: { fraction: 0.5 } }])(a, new Rng(0));
    assert.deepEqual([f.height, f.width], [5, 10]);
  });

  it('invalid specs are rejected with the step named', () => {
    assert.throws(() => transformFromSpec([{ rotat: 5 }]), /one key out of resize, centerCrop/);
    assert.throws(() => transformFromSpec([{ blur: 7 }]), /invalid transform spec: \[0\.blur\] blur:/);
    assert.throws(() => transformFromSpec([{ flip: 0.5, rotate: 3 }]), /one key/);
    assert.throws(() => transformFromSpec({ flip: 0.5 }), /invalid transform spec/);
    assert.ok(TransformSpecSchema.safeParse([{ toRgb: true }, { centerCrop: [2, 3] }]).success);
  });

  it('testSpecOf drops random crops and flips and the rotation jitter', () => {
    assert.deepEqual(
      testSpecOf([{ rotate: { deg: 45, jitter: 10, crop: true } }, { randomCrop: { padding: 4 } }, { flip: 0.5 }, { blur: 2 }]),
      [{ rotate: { deg: 45, crop: true } }, { blur: 2 }],
    );
  });
});
