/** Tiny synthetic images for the CNN learner tests. */
import type { Image } from '../../src/data/types.ts';
import { pixelPermutation, permutePixels } from '../../src/data/transforms.ts';
import type { Rng } from '../../src/util/rng.ts';

/** An S×S RGB image of class c: quadrant c lit (plus noise); distribution `perm` ≥ 0 permutes the pixels. */
export function quadrantSample(c: number, perm: number, rng: Rng, S = 8): Image {
  const px = new Uint8Array(S * S * 3);
  for (let y = 0; y < S; y++) {
    for (let x = 0; x < S; x++) {
      const q = (y < S / 2 ? 0 : 2) + (x < S / 2 ? 0 : 1);
      for (let ch = 0; ch < 3; ch++) px[(y * S + x) * 3 + ch] = (q === c ? 200 : 30) + rng.int(40);
    }
  }
  const img: Image = { width: S, height: S, channels: 3, pixels: px };
  return perm < 0 ? img : permutePixels(img, pixelPermutation(perm, S, S));
}
