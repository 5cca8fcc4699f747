/**
 * CLIP image preprocessing, matching the reference evaluation transform
 * `Resize(size, BICUBIC) → CenterCrop(size) → ToTensor → Normalize(mean, std)` on PIL images.
 *
 * Resizing reproduces PIL's `Image.resize` convolution resampler for 8-bit images:
 *   - separable: a horizontal pass, then a vertical pass, each rounded and clamped to 8 bits in between;
 *     a pass is skipped when that dimension does not change;
 *   - for output index i, with scale = inSize / outSize and filterScale = max(scale, 1) (antialiasing when
 *     downscaling), center = (i + 0.5)·scale, support = filterSupport·filterScale, the taps are the input indices
 *     j ∈ [trunc(center − support + 0.5), trunc(center + support + 0.5)) clipped to the image, with weights
 *     w_j = filter((j − center + 0.5) / filterScale), normalised to sum 1;
 *   - weights in fixed point with 22 fractional bits (rounded half away from zero), accumulation started at 2^21
 *     (rounding), result = clamp(floor(acc / 2^22), 0, 255).
 * Filters: bicubic (Keys, a = −0.5, support 2)
 *     f(x) = (a+2)|x|³ − (a+3)|x|² + 1          for |x| < 1
 *     f(x) = a|x|³ − 5a|x|² + 8a|x| − 4a         for 1 ≤ |x| < 2
 * and bilinear (triangle, support 1): f(x) = 1 − |x| for |x| < 1.
 *
 * The shortest side becomes `size`, the other trunc(size · long / short) (torchvision's rule). Center crop offsets
 * are round((h − size)/2) with Python's round-half-to-even (torchvision); a crop larger than the image pads with 0.
 * Normalisation is computed in float32 like torch: ((v / 255) − mean) / std, each operation rounded to float32.
 */
import type { Image } from '../data/types.ts';

export type Resample = 'bicubic' | 'bilinear';

export interface PreprocessConfig {
  /** Output side (the crop size). */
  size: number;
  mean: [number, number, number];
  std: [number, number, number];
  /** Interpolation of the resize (default bicubic). */
  resample?: Resample;
  /** timm-style crop fraction: resize the shortest side to floor(size / cropPct) before cropping. */
  cropPct?: number;
  /** Shortest side after the resize, before the crop (overrides cropPct; default `size`). */
  resizeSize?: number;
}

/** OpenAI CLIP normalisation constants. */
export const CLIP_MEAN: [number, number, number] = [0.48145466, 0.4578275, 0.40821073];
export const CLIP_STD: [number, number, number] = [0.26862954, 0.26130258, 0.27577711];

/** The OpenAI CLIP evaluation transform at a given resolution (224 for ViT-B/32, ViT-B/16, ViT-L/14). */
export function clipPreprocessConfig(size = 224): PreprocessConfig {
  return { size, mean: [...CLIP_MEAN], std: [...CLIP_STD], resample: 'bicubic' };
}

// ---------------------------------------------------------------------------------------------------------------
// filters and coefficients

interface Filter {
  support: number;
  fn: (x: number) => number;
}

const BICUBIC_A = -0.5;

const FILTERS: Record<Resample, Filter> = {
  bicubic: {
    support: 2,
    fn: (x) => {
      const a = BICUBIC_A;
      const t = Math.abs(x);
      if (t < 1) return ((a + 2) * t - (a + 3)) * t * t + 1;
      if (t < 2) return (((t - 5) * t + 8) * t - 4) * a;
      return 0;
    },
  },
  bilinear: {
    support: 1,
    fn: (x) => {
      const t = Math.abs(x);
      return t < 1 ? 1 - t : 0;
    },
  },
};

const PRECISION_BITS = 32 - 8 - 2; // 22, as in PIL's 8-bit resampler
const ONE = 2 ** PRECISION_BITS;
const HALF = 2 ** (PRECISION_BITS - 1);

/** Taps of a 1-D resampling: for output i, inputs start[i] .. start[i]+count[i]-1 with weights k[i·ksize + t]. */
export interface Coefficients {
  ksize: number;
  start: Int32Array;
  count: Int32Array;
  /** fixed-point weights (22 fractional bits) */
  k: Int32Array;
  /** the same weights in double precision (normalised), for inspection and tests */
  kf: Float64Array;
}

/** Computes PIL-style antialiased resampling coefficients for resizing `inSize` samples to `outSize`. */
export function resampleCoefficients(inSize: number, outSize: number, resample: Resample): Coefficients {
  const filter = FILTERS[resample];
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = filter.support * filterScale;
  const ksize = Math.ceil(support) * 2 + 1;
  const start = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const kf = new Float64Array(outSize * ksize);
  const k = new Int32Array(outSize * ksize);
  const inv = 1 / filterScale;
  for (let i = 0; i < outSize; i++) {
    const center = (i + 0.5) * scale;
    let lo = Math.trunc(center - support + 0.5);
    if (lo < 0) lo = 0;
    let hi = Math.trunc(center + support + 0.5);
    if (hi > inSize) hi = inSize;
    const n = hi - lo;
    let sum = 0;
    for (let t = 0; t < n; t++) {
      const w = filter.fn((t + lo - center + 0.5) * inv);
      kf[i * ksize + t] = w;
      sum += w;
    }
    for (let t = 0; t < n; t++) {
      if (sum !== 0) kf[i * ksize + t]! /= sum;
      const w = kf[i * ksize + t]!;
      k[i * ksize + t] = w < 0 ? Math.trunc(-0.5 + w * ONE) : Math.trunc(0.5 + w * ONE);
    }
    start[i] = lo;
    count[i] = n;
  }
  return { ksize, start, count, k, kf };
}

/** acc / 2^22 rounded down, clamped to [0, 255] (acc is a 32-bit integer, so `>>` is an exact floor). */
function clip8(acc: number): number {
  const v = acc >> PRECISION_BITS;
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

function resampleHorizontal(img: Image, outW: number, resample: Resample): Image {
  const { width: inW, height: h, channels: C, pixels: src } = img;
  const co = resampleCoefficients(inW, outW, resample);
  const out = new Uint8Array(outW * h * C);
  for (let y = 0; y < h; y++) {
    const rowIn = y * inW * C;
    const rowOut = y * outW * C;
    for (let x = 0; x < outW; x++) {
      const s = co.start[x]!;
      const n = co.count[x]!;
      const kOff = x * co.ksize;
      for (let c = 0; c < C; c++) {
        let acc = HALF;
        for (let t = 0; t < n; t++) acc += src[rowIn + (s + t) * C + c]! * co.k[kOff + t]!;
        out[rowOut + x * C + c] = clip8(acc);
      }
    }
  }
  return { width: outW, height: h, channels: C, pixels: out };
}

function resampleVertical(img: Image, outH: number, resample: Resample): Image {
  const { width: w, height: inH, channels: C, pixels: src } = img;
  const co = resampleCoefficients(inH, outH, resample);
  const stride = w * C;
  const out = new Uint8Array(outH * stride);
  const acc = new Int32Array(stride); // |acc| ≤ 255 · Σ|k| · 2^22 + 2^21 < 2^31 while Σ|k| < 2 (≤ 1.27 for these filters)
  for (let y = 0; y < outH; y++) {
    const s = co.start[y]!;
    const n = co.count[y]!;
    const kOff = y * co.ksize;
    const rowOut = y * stride;
    acc.fill(HALF);
    // accumulate whole input rows (contiguous memory) tap by tap
    for (let t = 0; t < n; t++) {
      const k = co.k[kOff + t]!;
      const rowIn = (s + t) * stride;
      for (let i = 0; i < stride; i++) acc[i]! += src[rowIn + i]! * k;
    }
    for (let i = 0; i < stride; i++) out[rowOut + i] = clip8(acc[i]!);
  }
  return { width: w, height: outH, channels: C, pixels: out };
}

function checkImage(img: Image, fn: string): void {
  const { width, height, channels, pixels } = img;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0) {
    throw new Error(`${fn}: image size ${width}×${height} must be positive integers`);
  }
  if (channels !== 1 && channels !== 3) throw new Error(`${fn}: channels must be 1 or 3, got ${channels}`);
  if (pixels.length !== width * height * channels) {
    throw new Error(`${fn}: ${pixels.length} bytes do not match ${width}×${height}×${channels}`);
  }
}

/**
 * Resizes to exactly `width × height` like PIL's `Image.resize(size, BICUBIC|BILINEAR)` (see the module comment):
 * horizontal pass first, then vertical, each skipped when its size is unchanged.
 */
export function resize(img: Image, width: number, height: number, resample: Resample = 'bicubic'): Image {
  checkImage(img, 'resize');
  if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0) {
    throw new Error(`resize: target size ${width}×${height} must be positive integers`);
  }
  if (!(resample in FILTERS)) throw new Error(`resize: unknown resample '${resample}'`);
  let out = img;
  if (width !== img.width) out = resampleHorizontal(out, width, resample);
  if (height !== img.height) out = resampleVertical(out, height, resample);
  return out === img ? { ...img, pixels: img.pixels.slice() } : out;
}

/** Output size when the shortest side becomes `size`: the other side is trunc(size · long / short) (torchvision). */
export function shortestSideSize(width: number, height: number, size: number): [number, number] {
  if (width <= height) return [size, Math.trunc((size * height) / width)];
  return [Math.trunc((size * width) / height), size];
}

/** Resizes so that the shortest side is `size`, keeping the aspect ratio (torchvision `Resize(int)` on PIL). */
export function resizeShortest(img: Image, size: number, resample: Resample = 'bicubic'): Image {
  if (!Number.isInteger(size) || size <= 0) throw new Error(`resizeShortest: size must be a positive integer, got ${size}`);
  const [w, h] = shortestSideSize(img.width, img.height, size);
  return resize(img, w, h, resample);
}

/** Python's round(): to the nearest integer, halves to the even neighbour. */
function roundHalfEven(v: number): number {
  const f = Math.floor(v);
  const d = v - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/**
 * Crops the `height × width` window whose top-left corner is (`top`, `left`); pixels outside the image are 0
 * (`top`/`left` may be negative).
 */
export function crop(img: Image, top: number, left: number, height: number, width: number): Image {
  checkImage(img, 'crop');
  if (![top, left, height, width].every(Number.isInteger) || height <= 0 || width <= 0) {
    throw new Error(`crop: window (${top}, ${left}, ${height}, ${width}) must be integers with a positive size`);
  }
  const C = img.channels;
  const out = new Uint8Array(width * height * C);
  const x0 = Math.max(0, -left);
  const x1 = Math.min(width, img.width - left);
  if (x1 > x0) {
    for (let y = 0; y < height; y++) {
      const sy = y + top;
      if (sy < 0 || sy >= img.height) continue;
      const from = (sy * img.width + left + x0) * C;
      out.set(img.pixels.subarray(from, from + (x1 - x0) * C), (y * width + x0) * C);
    }
  }
  return { width, height, channels: C, pixels: out };
}

/**
 * torchvision `CenterCrop(size)`: top = round((h − size)/2), left = round((w − size)/2) (half to even); when the
 * image is smaller than `size` it is padded with zeros, floor((size − h)/2) rows above (and likewise left).
 */
export function centerCrop(img: Image, size: number): Image {
  if (!Number.isInteger(size) || size <= 0) throw new Error(`centerCrop: size must be a positive integer, got ${size}`);
  const offset = (n: number): number => (n >= size ? roundHalfEven((n - size) / 2) : -Math.floor((size - n) / 2));
  return crop(img, offset(img.height), offset(img.width), size, size);
}

/**
 * HWC uint8 → CHW float32 normalised: out[c, y, x] = (p / 255 − mean[c]) / std[c] in float32 arithmetic.
 * Grayscale images are replicated to three channels.
 */
export function toCHW(img: Image, mean: readonly number[], std: readonly number[]): Float32Array {
  checkImage(img, 'toCHW');
  const out = new Float32Array(3 * img.width * img.height);
  toCHWInto(img, mean, std, out, 0);
  return out;
}

function normalisationTable(mean: readonly number[], std: readonly number[]): Float32Array[] {
  if (mean.length !== 3 || std.length !== 3) throw new Error('toCHW: mean and std need three values');
  if (std.some((s) => !(s > 0))) throw new Error(`toCHW: std values must be positive, got [${std.join(', ')}]`);
  const f = Math.fround;
  return [0, 1, 2].map((c) => {
    const m = f(mean[c]!);
    const s = f(std[c]!);
    const t = new Float32Array(256);
    for (let v = 0; v < 256; v++) t[v] = f(f(f(v / 255) - m) / s);
    return t;
  });
}

function toCHWInto(img: Image, mean: readonly number[], std: readonly number[], out: Float32Array, offset: number): void {
  const tables = normalisationTable(mean, std);
  const plane = img.width * img.height;
  const C = img.channels;
  for (let c = 0; c < 3; c++) {
    const t = tables[c]!;
    const sc = C === 1 ? 0 : c;
    const o = offset + c * plane;
    for (let i = 0; i < plane; i++) out[o + i] = t[img.pixels[i * C + sc]!]!;
  }
}

/** Shortest side used before the crop. */
function resizeSizeOf(cfg: PreprocessConfig): number {
  if (cfg.resizeSize !== undefined) return cfg.resizeSize;
  if (cfg.cropPct !== undefined) {
    if (!(cfg.cropPct > 0 && cfg.cropPct <= 1)) throw new Error(`preprocess: cropPct must be in (0, 1], got ${cfg.cropPct}`);
    return Math.floor(cfg.size / cfg.cropPct);
  }
  return cfg.size;
}

/** Resize (shortest side) → center crop → normalised CHW float32 of length 3·size·size. */
export function preprocessImage(img: Image, cfg: PreprocessConfig): Float32Array {
  const out = new Float32Array(3 * cfg.size * cfg.size);
  preprocessInto(img, cfg, out, 0);
  return out;
}

function preprocessInto(img: Image, cfg: PreprocessConfig, out: Float32Array, offset: number): void {
  const resized = resizeShortest(img, resizeSizeOf(cfg), cfg.resample ?? 'bicubic');
  const cropped = centerCrop(resized, cfg.size);
  toCHWInto(cropped, cfg.mean, cfg.std, out, offset);
}

/** Preprocesses a batch into one NCHW float32 tensor. */
export function preprocessBatch(
  imgs: Image[],
  cfg: PreprocessConfig,
): { data: Float32Array; dims: [number, 3, number, number] } {
  const per = 3 * cfg.size * cfg.size;
  const data = new Float32Array(imgs.length * per);
  imgs.forEach((img, i) => preprocessInto(img, cfg, data, i * per));
  return { data, dims: [imgs.length, 3, cfg.size, cfg.size] };
}

// ---------------------------------------------------------------------------------------------------------------
// Hugging Face preprocessor_config.json

/** PIL resample codes used in preprocessor_config.json. */
const PIL_RESAMPLE: Record<number, Resample | undefined> = { 2: 'bilinear', 3: 'bicubic' };

/**
 * Reads a Hugging Face `preprocessor_config.json` (CLIPImageProcessor): `crop_size` (number or {height, width}),
 * `size` (number or {shortest_edge}), `image_mean`, `image_std`, `resample` (2 = bilinear, 3 = bicubic),
 * `do_normalize` (false → mean 0, std 1), `rescale_factor` (must be 1/255). Errors name `source` and the field.
 */
export function preprocessConfigFromHF(json: unknown, source: string): PreprocessConfig {
  const bad = (field: string, what: string): never => {
    throw new Error(`${source}: ${field} ${what}`);
  };
  if (json === null || typeof json !== 'object' || Array.isArray(json)) bad('preprocessor config', 'is not a JSON object');
  const o = json as Record<string, unknown>;
  const posInt = (v: unknown): v is number => Number.isInteger(v) && (v as number) > 0;

  let size: number;
  const crop = o.crop_size;
  if (crop === undefined) size = 224;
  else if (posInt(crop)) size = crop;
  else if (crop !== null && typeof crop === 'object') {
    const c = crop as Record<string, unknown>;
    if (!posInt(c.height) || !posInt(c.width)) bad('crop_size', `must have positive integer height and width, got ${JSON.stringify(crop)}`);
    if (c.height !== c.width) bad('crop_size', `must be square, got ${c.height}×${c.width}`);
    size = c.height as number;
  } else bad('crop_size', `must be a number or {height, width}, got ${JSON.stringify(crop)}`);

  let resizeSize = size!;
  const s = o.size;
  if (s === undefined) resizeSize = size!;
  else if (posInt(s)) resizeSize = s;
  else if (s !== null && typeof s === 'object' && 'shortest_edge' in s) {
    const e = (s as Record<string, unknown>).shortest_edge;
    if (!posInt(e)) bad('size.shortest_edge', `must be a positive integer, got ${JSON.stringify(e)}`);
    resizeSize = e as number;
  } else bad('size', `must be a number or {shortest_edge}, got ${JSON.stringify(s)}`);

  const triple = (field: string, def: [number, number, number]): [number, number, number] => {
    const v = o[field];
    if (v === undefined) return [...def];
    if (!Array.isArray(v) || v.length !== 3 || !v.every((x) => typeof x === 'number' && Number.isFinite(x))) {
      bad(field, `must be three numbers, got ${JSON.stringify(v)}`);
    }
    return [...(v as [number, number, number])];
  };
  let mean = triple('image_mean', CLIP_MEAN);
  let std = triple('image_std', CLIP_STD);
  if (std.some((x) => x <= 0)) bad('image_std', `must be positive, got ${JSON.stringify(std)}`);
  if (o.do_normalize === false) {
    mean = [0, 0, 0];
    std = [1, 1, 1];
  }

  let resample: Resample = 'bicubic';
  if (o.resample !== undefined) {
    const r = typeof o.resample === 'number' ? PIL_RESAMPLE[o.resample] : undefined;
    if (r === undefined) bad('resample', `must be 2 (bilinear) or 3 (bicubic), got ${JSON.stringify(o.resample)}`);
    resample = r!;
  }
  if (o.rescale_factor !== undefined && (typeof o.rescale_factor !== 'number' || Math.abs(o.rescale_factor - 1 / 255) > 1e-12)) {
    bad('rescale_factor', `must be 1/255, got ${JSON.stringify(o.rescale_factor)}`);
  }
  if (o.do_resize === false) bad('do_resize', 'false is not supported');
  if (o.do_center_crop === false) bad('do_center_crop', 'false is not supported');
  if (o.do_rescale === false) bad('do_rescale', 'false is not supported');
  return { size: size!, mean, std, resample, resizeSize };
}
