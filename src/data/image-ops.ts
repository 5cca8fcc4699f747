/**
 * Pure pixel operations on 8-bit HWC images (`Image` from ./types.ts). None of them mutates its input.
 * These are the building blocks of the transforms (./transforms.ts) and of the loaders' optional resizing.
 */
import type { Image } from './types.ts';

export type ResizeMode = 'bilinear' | 'bicubic';

function clampByte(v: number): number {
  return v <= 0 ? 0 : v >= 255 ? 255 : Math.round(v);
}

/** Python's round(): halves go to the even neighbour (torchvision's CenterCrop offsets use it). */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** Triangle filter (bilinear), support 1. */
function triangle(x: number): number {
  const a = Math.abs(x);
  return a < 1 ? 1 - a : 0;
}

/** Keys cubic convolution kernel with a = −0.5 (PIL's bicubic), support 2. */
function cubic(x: number): number {
  const a = -0.5;
  const t = Math.abs(x);
  if (t < 1) return ((a + 2) * t - (a + 3)) * t * t + 1;
  if (t < 2) return ((a * t - 5 * a) * t + 8 * a) * t - 4 * a;
  return 0;
}

/**
 * Resampling weights for one axis, PIL style: output sample i has centre `(i + 0.5)·s` in input coordinates
 * (s = in/out); when shrinking, the filter is widened by s (antialiasing). Returns, per output index, the
 * first input index and the normalised weights.
 */
function axisWeights(inSize: number, outSize: number, mode: ResizeMode): { start: Int32Array; weights: Float64Array[] } {
  const scale = inSize / outSize;
  const fscale = Math.max(scale, 1);
  const filter = mode === 'bicubic' ? cubic : triangle;
  const support = (mode === 'bicubic' ? 2 : 1) * fscale;
  const start = new Int32Array(outSize);
  const weights: Float64Array[] = [];
  for (let i = 0; i < outSize; i++) {
    const center = (i + 0.5) * scale;
    const lo = Math.max(Math.floor(center - support + 0.5), 0);
    const hi = Math.min(Math.floor(center + support + 0.5), inSize);
    const w = new Float64Array(Math.max(hi - lo, 1));
    let sum = 0;
    for (let x = lo; x < hi; x++) {
      const v = filter((x - center + 0.5) / fscale);
      w[x - lo] = v;
      sum += v;
    }
    if (sum === 0) {
      w.fill(0);
      w[0] = 1;
    } else for (let k = 0; k < w.length; k++) w[k]! /= sum;
    start[i] = Math.min(lo, inSize - 1);
    weights.push(w);
  }
  return { start, weights };
}

/**
 * Resizes to `outH × outW` by separable convolution (bilinear = triangle filter, bicubic = Keys a = −0.5),
 * antialiased when shrinking, as PIL does. Same size returns the input unchanged.
 */
export function resize(img: Image, outH: number, outW: number, mode: ResizeMode = 'bilinear'): Image {
  if (!Number.isInteger(outH) || !Number.isInteger(outW) || outH < 1 || outW < 1) {
    throw new Error(`resize: invalid size ${outH}×${outW}`);
  }
  if (outH === img.height && outW === img.width) return img;
  const { width: w, height: h, channels: c, pixels } = img;
  const hx = axisWeights(w, outW, mode);
  const tmp = new Float64Array(h * outW * c);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < outW; x++) {
      const s = hx.start[x]!;
      const wt = hx.weights[x]!;
      for (let ch = 0; ch < c; ch++) {
        let acc = 0;
        for (let k = 0; k < wt.length; k++) acc += wt[k]! * pixels[(y * w + s + k) * c + ch]!;
        tmp[(y * outW + x) * c + ch] = acc;
      }
    }
  }
  const vy = axisWeights(h, outH, mode);
  const out = new Uint8Array(outH * outW * c);
  for (let y = 0; y < outH; y++) {
    const s = vy.start[y]!;
    const wt = vy.weights[y]!;
    for (let x = 0; x < outW; x++) {
      for (let ch = 0; ch < c; ch++) {
        let acc = 0;
        for (let k = 0; k < wt.length; k++) acc += wt[k]! * tmp[((s + k) * outW + x) * c + ch]!;
        out[(y * outW + x) * c + ch] = clampByte(acc);
      }
    }
  }
  return { width: outW, height: outH, channels: c, pixels: out };
}

/** Output size of torchvision's `Resize(int)`: the shorter side becomes `size`, the longer keeps the aspect ratio (truncated). */
export function shorterSideSize(h: number, w: number, size: number): [number, number] {
  if (h <= w) return [size, Math.max(1, Math.trunc((size * w) / h))];
  return [Math.max(1, Math.trunc((size * h) / w)), size];
}

/**
 * The window `[top, top + outH) × [left, left + outW)` of the image; parts outside the image are 0
 * (so negative offsets pad, as torchvision's padded crops do).
 */
export function crop(img: Image, top: number, left: number, outH: number, outW: number): Image {
  const { width: w, height: h, channels: c, pixels } = img;
  if (top === 0 && left === 0 && outH === h && outW === w) return img;
  const out = new Uint8Array(outH * outW * c);
  for (let y = 0; y < outH; y++) {
    const sy = top + y;
    if (sy < 0 || sy >= h) continue;
    const x0 = Math.max(0, -left);
    const x1 = Math.min(outW, w - left);
    if (x1 <= x0) continue;
    out.set(pixels.subarray((sy * w + left + x0) * c, (sy * w + left + x1) * c), (y * outW + x0) * c);
  }
  return { width: outW, height: outH, channels: c, pixels: out };
}

/**
 * Centre crop to `outH × outW` with torchvision's offsets: top = round((h − outH)/2) (half to even);
 * a crop larger than the image pads with zeros, ⌊extra/2⌋ before.
 */
export function centerCrop(img: Image, outH: number, outW: number): Image {
  const off = (size: number, out: number) => (out > size ? -Math.floor((out - size) / 2) : roundHalfEven((size - out) / 2));
  return crop(img, off(img.height, outH), off(img.width, outW), outH, outW);
}

/** Mirror left ↔ right. */
export function flipHorizontal(img: Image): Image {
  const { width: w, height: h, channels: c, pixels } = img;
  const out = new Uint8Array(pixels.length);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const src = (y * w + x) * c;
      const dst = (y * w + (w - 1 - x)) * c;
      for (let ch = 0; ch < c; ch++) out[dst + ch] = pixels[src + ch]!;
    }
  }
  return { width: w, height: h, channels: c, pixels: out };
}

function snap(v: number): number {
  const r = Math.round(v);
  return Math.abs(v - r) < 1e-9 ? r : v;
}

/**
 * Rotates counter-clockwise by `deg` degrees about the image centre ((w−1)/2, (h−1)/2 in pixel-centre
 * coordinates), keeping the canvas size; bilinear sampling, 0 outside the source.
 * Output pixel (x, y) samples the source at
 *   sx = cx + (x − cx)·cos θ − (y − cy)·sin θ,   sy = cy + (x − cx)·sin θ + (y − cy)·cos θ.
 * Multiples of 90° on a square image are exact permutations of the pixels.
 */
export function rotate(img: Image, deg: number): Image {
  const { width: w, height: h, channels: c, pixels } = img;
  if (deg % 360 === 0) return img;
  const t = (deg * Math.PI) / 180;
  const cos = snap(Math.cos(t));
  const sin = snap(Math.sin(t));
  const cx = (w - 1) / 2;
  const cy = (h - 1) / 2;
  const out = new Uint8Array(pixels.length);
  const at = (yy: number, xx: number, ch: number) =>
    yy < 0 || yy >= h || xx < 0 || xx >= w ? 0 : pixels[(yy * w + xx) * c + ch]!;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const dx = x - cx;
      const dy = y - cy;
      const sx = snap(cx + dx * cos - dy * sin);
      const sy = snap(cy + dx * sin + dy * cos);
      const x0 = Math.floor(sx);
      const y0 = Math.floor(sy);
      const fx = sx - x0;
      const fy = sy - y0;
      if (x0 < -1 || y0 < -1 || x0 >= w || y0 >= h) continue;
      for (let ch = 0; ch < c; ch++) {
        const v =
          (1 - fy) * ((1 - fx) * at(y0, x0, ch) + (fx ? fx * at(y0, x0 + 1, ch) : 0)) +
          (fy ? fy * ((1 - fx) * at(y0 + 1, x0, ch) + (fx ? fx * at(y0 + 1, x0 + 1, ch) : 0)) : 0);
        out[(y * w + x) * c + ch] = clampByte(v);
      }
    }
  }
  return { width: w, height: h, channels: c, pixels: out };
}

/** Index into [0, n) reflected at the borders without repeating the edge (…2 1 | 0 1 2 … n−1 | n−2 …). */
export function reflectIndex(i: number, n: number): number {
  if (n === 1) return 0;
  const period = 2 * (n - 1);
  let k = Math.abs(i) % period;
  if (k >= n) k = period - k;
  return k;
}

/** Normalised 1-D Gaussian weights exp(−x²/(2σ²)) for x = −(k−1)/2 … (k−1)/2. */
export function gaussianKernel(size: number, sigma: number): Float64Array {
  const k = new Float64Array(size);
  const half = (size - 1) / 2;
  let sum = 0;
  for (let i = 0; i < size; i++) {
    const x = i - half;
    k[i] = Math.exp(-(x * x) / (2 * sigma * sigma));
    sum += k[i]!;
  }
  for (let i = 0; i < size; i++) k[i]! /= sum;
  return k;
}

/** Separable Gaussian blur with an odd kernel size and reflect padding (torchvision's gaussian_blur). */
export function gaussianBlur(img: Image, kernelSize: number, sigma: number): Image {
  if (kernelSize <= 1) return img;
  if (kernelSize % 2 !== 1) throw new Error(`gaussianBlur: kernel size must be odd, got ${kernelSize}`);
  if (!(sigma > 0)) throw new Error(`gaussianBlur: sigma must be positive, got ${sigma}`);
  const { width: w, height: h, channels: c, pixels } = img;
  const k = gaussianKernel(kernelSize, sigma);
  const r = (kernelSize - 1) / 2;
  const tmp = new Float64Array(pixels.length);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      for (let ch = 0; ch < c; ch++) {
        let acc = 0;
        for (let j = -r; j <= r; j++) acc += k[j + r]! * pixels[(y * w + reflectIndex(x + j, w)) * c + ch]!;
        tmp[(y * w + x) * c + ch] = acc;
      }
    }
  }
  const out = new Uint8Array(pixels.length);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      for (let ch = 0; ch < c; ch++) {
        let acc = 0;
        for (let j = -r; j <= r; j++) acc += k[j + r]! * tmp[(reflectIndex(y + j, h) * w + x) * c + ch]!;
        out[(y * w + x) * c + ch] = clampByte(acc);
      }
    }
  }
  return { width: w, height: h, channels: c, pixels: out };
}

/** Grayscale → RGB by replicating the channel; RGB images are returned as they are. */
export function toRgb(img: Image): Image {
  if (img.channels === 3) return img;
  const n = img.width * img.height;
  const out = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) {
    const v = img.pixels[i]!;
    out[3 * i] = v;
    out[3 * i + 1] = v;
    out[3 * i + 2] = v;
  }
  return { width: img.width, height: img.height, channels: 3, pixels: out };
}

/** Shorter side to `size`, then a centred `size × size` crop (the usual square preprocessing of photos). */
export function resizeCenterSquare(img: Image, size: number, mode: ResizeMode = 'bicubic'): Image {
  const [h, w] = shorterSideSize(img.height, img.width, size);
  return centerCrop(resize(img, h, w, mode), size, size);
}
