/**
 * Raw-pixel feature vectors for simple baselines (NCM on pixels): area-resample to a fixed `size × size`, bring
 * every image to the same colour layout, scale to [0, 1], optionally L2-normalise.
 */
import type { Image } from '../data/types.ts';
import { l2NormalizeInPlace } from '../util/vector.ts';

/** `gray`: one luma channel (RGB → 0.299 R + 0.587 G + 0.114 B); `rgb`: three channels (gray replicated). */
export type ColorMode = 'gray' | 'rgb';

/**
 * Area weights for resampling an axis of length `n` to length `m`: output cell k covers the input interval
 * [k·n/m, (k+1)·n/m); each input pixel i contributes its overlap with that interval, normalised to sum 1.
 * Returns, per output cell, the list of (input index, weight).
 */
function areaWeights(n: number, m: number): Array<Array<[number, number]>> {
  const scale = n / m;
  const out: Array<Array<[number, number]>> = [];
  for (let k = 0; k < m; k++) {
    const lo = k * scale;
    const hi = (k + 1) * scale;
    const ws: Array<[number, number]> = [];
    for (let i = Math.floor(lo); i < Math.min(n, Math.ceil(hi)); i++) {
      const w = Math.min(hi, i + 1) - Math.max(lo, i);
      if (w > 1e-12) ws.push([i, w / scale]);
    }
    out.push(ws);
  }
  return out;
}

const weightCache = new Map<string, Array<Array<[number, number]>>>();
function cachedWeights(n: number, m: number): Array<Array<[number, number]>> {
  const key = `${n}>${m}`;
  let w = weightCache.get(key);
  if (!w) {
    w = areaWeights(n, m);
    weightCache.set(key, w);
  }
  return w;
}

/**
 * The feature vector of one image: length `size·size·C` (C = 1 for `gray`, 3 for `rgb`), HWC order, values in
 * [0, 1] (area average of the covered input pixels / 255), divided by its L2 norm when `normalize` is set (an
 * all-zero vector stays zero).
 */
export function pixelFeatures(img: Image, size: number, color: ColorMode, normalize: boolean): Float32Array {
  const { width: w, height: h, channels: c, pixels } = img;
  if (pixels.length !== w * h * c) {
    throw new Error(`pixelFeatures: image has ${pixels.length} bytes, expected ${w}×${h}×${c}`);
  }
  // 1. colour conversion to the target layout, as floats in [0, 1]
  const oc = color === 'gray' ? 1 : 3;
  const src = new Float32Array(w * h * oc);
  for (let p = 0; p < w * h; p++) {
    if (c === 1) {
      const v = pixels[p]! / 255;
      for (let k = 0; k < oc; k++) src[p * oc + k] = v;
    } else if (oc === 1) {
      src[p] = (0.299 * pixels[p * 3]! + 0.587 * pixels[p * 3 + 1]! + 0.114 * pixels[p * 3 + 2]!) / 255;
    } else {
      for (let k = 0; k < 3; k++) src[p * 3 + k] = pixels[p * 3 + k]! / 255;
    }
  }
  // 2. separable area resampling (rows, then columns)
  const wy = cachedWeights(h, size);
  const wx = cachedWeights(w, size);
  const tmp = new Float32Array(size * w * oc); // size rows × w columns
  for (let y = 0; y < size; y++) {
    for (const [iy, a] of wy[y]!) {
      const rowIn = iy * w * oc;
      const rowOut = y * w * oc;
      for (let q = 0; q < w * oc; q++) tmp[rowOut + q]! += a * src[rowIn + q]!;
    }
  }
  const out = new Float32Array(size * size * oc);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const o = (y * size + x) * oc;
      for (const [ix, a] of wx[x]!) {
        const i = (y * w + ix) * oc;
        for (let k = 0; k < oc; k++) out[o + k]! += a * tmp[i + k]!;
      }
    }
  }
  if (normalize) l2NormalizeInPlace(out);
  return out;
}
