/**
 * The `permute` transform step (permuted MNIST): a fixed bijection of the H×W pixel positions drawn from the
 * seed, the same for every image and every channel.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Image } from '../../src/data/types.ts';
import { permutePixels, pixelPermutation, transformFromSpec, TransformSpecSchema } from '../../src/data/transforms.ts';
import { Rng } from '../../src/util/rng.ts';

const sorted = (p: ArrayLike<number>) => Array.from(p).sort((a, b) => a - b);

test('permute: a bijection of the H×W positions, fixed by the seed, different for another seed', () => {
  const p = pixelPermutation(0, 5, 7);
  assert.equal(p.length, 35);
  assert.deepEqual(sorted(p), Array.from({ length: 35 }, (_, i) => i));
  // the project's Rng draws it: the permutation of 35 positions from seed 0
  assert.deepEqual([...p], new Rng(0).permutation(35));
  assert.deepEqual([...pixelPermutation(0, 5, 7)], [...p]);
  assert.notDeepEqual([...pixelPermutation(1, 5, 7)], [...p]);
  assert.deepEqual(sorted(pixelPermutation(0, 7, 5)), Array.from({ length: 35 }, (_, i) => i));
  assert.equal(pixelPermutation(3, 4, 4).length, 16);
});

test('permute: hand check on a 2×2 RGB image; every channel moves with its pixel', () => {
  // out position i takes input position perm[i]: perm [2, 0, 3, 1] on pixels A B / C D gives C A / D B
  const img: Image = { width: 2, height: 2, channels: 3, pixels: Uint8Array.from([10, 11, 12, 20, 21, 22, 30, 31, 32, 40, 41, 42]) };
  const out = permutePixels(img, Uint32Array.from([2, 0, 3, 1]));
  assert.deepEqual([...out.pixels], [30, 31, 32, 10, 11, 12, 40, 41, 42, 20, 21, 22]);
  assert.deepEqual([out.width, out.height, out.channels], [2, 2, 3]);
  assert.deepEqual([...img.pixels], [10, 11, 12, 20, 21, 22, 30, 31, 32, 40, 41, 42], 'the input is not modified');
  assert.throws(() => permutePixels(img, Uint32Array.from([0, 1, 2])), /permute: permutation of 3 positions for a 2×2 image/);
});

test('permute step: the seed\'s permutation for every image, independent of the rng; both spellings', () => {
  const seed = 4;
  const perm = pixelPermutation(seed, 3, 3);
  const gray = (px: number[]): Image => ({ width: 3, height: 3, channels: 1, pixels: Uint8Array.from(px) });
  const a = gray([1, 2, 3, 4, 5, 6, 7, 8, 9]);
  const b = gray([90, 80, 70, 60, 50, 40, 30, 20, 10]);
  const t = transformFromSpec([{ permute: seed }]);
  const t2 = transformFromSpec(TransformSpecSchema.parse([{ permute: { seed } }]));
  for (const img of [a, b]) {
    const want = Array.from(perm, (src) => img.pixels[src]!);
    assert.deepEqual([...t(img, new Rng(1)).pixels], want);
    assert.deepEqual([...t(img, new Rng(99)).pixels], want, 'deterministic: the rng plays no part');
    assert.deepEqual([...t2(img, new Rng(2)).pixels], want);
  }
  // an RGB image made of three copies of `a` in different channels: each channel is permuted like the gray image
  const rgb: Image = { width: 3, height: 3, channels: 3, pixels: Uint8Array.from([...a.pixels].flatMap((v) => [v, 100 + v, 200 + v])) };
  const o = t(rgb, new Rng(0)).pixels;
  const ga = [...t(a, new Rng(0)).pixels];
  for (let c = 0; c < 3; c++) assert.deepEqual(Array.from({ length: 9 }, (_, i) => o[i * 3 + c]! - 100 * c), ga);
  // after toRgb, at the final resolution (the usual placement)
  const chain = transformFromSpec([{ toRgb: true }, { permute: seed }])(a, new Rng(0)).pixels;
  assert.deepEqual(Array.from({ length: 9 }, (_, i) => chain[i * 3 + 1]!), ga);
});

test('permute: bad specs name the step', () => {
  assert.throws(() => TransformSpecSchema.parse([{ permute: -1 }]), /permute/);
  assert.throws(() => TransformSpecSchema.parse([{ permute: 1.5 }]), /permute/);
  assert.throws(() => TransformSpecSchema.parse([{ permute: { seed: 1, x: 2 } }]), /permute/);
  assert.throws(() => transformFromSpec([{ permute: 'a' } as never]), /permute/);
});
