/**
 * Training augmentations of pretraining, fused with CLIP normalisation: 8-bit HWC image → float32 CHW pixels of
 * the model's size. Every random choice draws from the `Rng` given, in a fixed order, so a saved rng state
 * reproduces the same pixels.
 *
 * Per image, in this order:
 * 1. crop box (in source pixels):
 *    - `random-resized` (torchvision RandomResizedCrop): up to 10 tries of area fraction s ~ U(scale) and aspect
 *      r = exp(U(ln ratio)), w = round(√(s·A·r)), h = round(√(s·A/r)); the first box that fits is placed at a
 *      uniform offset; otherwise the centred box of the whole image with the aspect clamped into `ratio`;
 *    - `pad`: the image zero-padded by `padding` on every side, a window of the image's size at a uniform
 *      offset (parts outside the image are black);
 *    - `none`: the whole image;
 * 2. horizontal flip with probability `flip`;
 * 3. colour jitter (values in [0, 1], each result clamped to [0, 1]), factors f ~ U(1 − x, 1 + x) drawn for
 *    brightness, contrast, saturation (a factor whose x is 0 is not drawn), applied in that fixed order:
 *    brightness v·f; contrast (v − m)·f + m with m the image's mean gray level; saturation (v − g)·f + g with
 *    g = 0.299 R + 0.587 G + 0.114 B of the pixel;
 * 4. grayscale with probability `grayscale` (every channel = g);
 * 5. the crop box is resampled bilinearly to S × S (sample centres (i + ½)·h/S − ½, edges clamped; no
 *    antialiasing, so very large sources should be resized first) and normalised: (v − mean_c) / std_c.
 * Steps 3–4 are applied per output pixel after resampling (the operations are pointwise except the contrast
 * mean, which is taken over the resampled crop), so the cost is O(S²) per image whatever the source size.
 */
import type { Image } from '../data/types.ts';
import type { Rng } from '../util/rng.ts';
import type { AugmentConfig } from './config.ts';

/** A crop window in source pixel coordinates (may extend outside the image for `pad`). */
export interface CropBox {
  top: number;
  left: number;
  height: number;
  width: number;
}

/** torchvision's RandomResizedCrop box (see the module doc). */
export function randomResizedCropBox(h: number, w: number, scale: readonly [number, number], ratio: readonly [number, number], rng: Rng): CropBox {
  const area = h * w;
  const logLo = Math.log(ratio[0]);
  const logHi = Math.log(ratio[1]);
  for (let attempt = 0; attempt < 10; attempt++) {
    const target = area * rng.uniform(scale[0], scale[1]);
    const aspect = Math.exp(rng.uniform(logLo, logHi));
    const cw = Math.round(Math.sqrt(target * aspect));
    const ch = Math.round(Math.sqrt(target / aspect));
    if (cw > 0 && cw <= w && ch > 0 && ch <= h) {
      const top = rng.int(h - ch + 1);
      const left = rng.int(w - cw + 1);
      return { top, left, height: ch, width: cw };
    }
  }
  // fallback: the whole image, aspect clamped into the ratio range, centred
  const inRatio = w / h;
  let cw = w;
  let ch = h;
  if (inRatio < ratio[0]) ch = Math.round(w / ratio[0]);
  else if (inRatio > ratio[1]) cw = Math.round(h * ratio[1]);
  return { top: Math.floor((h - ch) / 2), left: Math.floor((w - cw) / 2), height: ch, width: cw };
}

/** The per-image random decisions of {@link augmentInto}. */
export interface AugmentDraw {
  box: CropBox;
  flip: boolean;
  brightness: number;
  contrast: number;
  saturation: number;
  gray: boolean;
}

/** Draws the random decisions for one image of size h × w (the rng order is documented in the module doc). */
export function drawAugment(cfg: AugmentConfig, h: number, w: number, rng: Rng): AugmentDraw {
  let box: CropBox;
  const crop = cfg.crop;
  if (crop.kind === 'random-resized') box = randomResizedCropBox(h, w, crop.scale as [number, number], crop.ratio as [number, number], rng);
  else if (crop.kind === 'pad') {
    const p = crop.padding;
    box = { top: rng.int(2 * p + 1) - p, left: rng.int(2 * p + 1) - p, height: h, width: w };
  } else box = { top: 0, left: 0, height: h, width: w };
  const flip = cfg.flip > 0 && rng.float() < cfg.flip;
  const j = cfg.colorJitter;
  const factor = (x: number) => (x > 0 ? rng.uniform(1 - x, 1 + x) : 1);
  const brightness = factor(j.brightness);
  const contrast = factor(j.contrast);
  const saturation = factor(j.saturation);
  const gray = cfg.grayscale > 0 && rng.float() < cfg.grayscale;
  return { box, flip, brightness, contrast, saturation, gray };
}

/** The identity draw (whole image, no flip, no jitter): plain resize + normalise, for evaluation-like inputs. */
export function identityDraw(h: number, w: number): AugmentDraw {
  return { box: { top: 0, left: 0, height: h, width: w }, flip: false, brightness: 1, contrast: 1, saturation: 1, gray: false };
}

const clamp01 = (v: number) => (v < 0 ? 0 : v > 1 ? 1 : v);

/**
 * Writes the augmented, normalised image into `out` at `offset` as CHW float32 of size 3·S·S (grayscale sources
 * are repeated over the three channels). `draw` comes from {@link drawAugment}.
 */
export function augmentInto(
  img: Image,
  draw: AugmentDraw,
  S: number,
  mean: readonly number[],
  std: readonly number[],
  out: Float32Array,
  offset: number,
): void {
  const { width: W, height: H, channels: C, pixels } = img;
  const { box } = draw;
  const plane = S * S;
  // 1. bilinear resampling of the crop box (black outside the image), with the flip folded in; values in [0, 1]
  const buf = new Float32Array(3 * plane);
  const sy = box.height / S;
  const sx = box.width / S;
  const at = (y: number, x: number, c: number): number => {
    if (y < 0 || y >= H || x < 0 || x >= W) return 0;
    return pixels[(y * W + x) * C + (C === 1 ? 0 : c)]!;
  };
  const padded = box.top < 0 || box.left < 0 || box.top + box.height > H || box.left + box.width > W;
  for (let i = 0; i < S; i++) {
    // source row coordinate inside the box, clamped to the box edges
    let fy = (i + 0.5) * sy - 0.5;
    fy = fy < 0 ? 0 : fy > box.height - 1 ? box.height - 1 : fy;
    const y0 = Math.floor(fy);
    const y1 = Math.min(y0 + 1, box.height - 1);
    const wy = fy - y0;
    for (let j = 0; j < S; j++) {
      const jj = draw.flip ? S - 1 - j : j;
      let fx = (jj + 0.5) * sx - 0.5;
      fx = fx < 0 ? 0 : fx > box.width - 1 ? box.width - 1 : fx;
      const x0 = Math.floor(fx);
      const x1 = Math.min(x0 + 1, box.width - 1);
      const wx = fx - x0;
      const Y0 = box.top + y0;
      const Y1 = box.top + y1;
      const X0 = box.left + x0;
      const X1 = box.left + x1;
      for (let c = 0; c < 3; c++) {
        let v: number;
        if (padded) {
          v = (1 - wy) * ((1 - wx) * at(Y0, X0, c) + wx * at(Y0, X1, c)) + wy * ((1 - wx) * at(Y1, X0, c) + wx * at(Y1, X1, c));
        } else {
          const cc = C === 1 ? 0 : c;
          const p00 = pixels[(Y0 * W + X0) * C + cc]!;
          const p01 = pixels[(Y0 * W + X1) * C + cc]!;
          const p10 = pixels[(Y1 * W + X0) * C + cc]!;
          const p11 = pixels[(Y1 * W + X1) * C + cc]!;
          v = (1 - wy) * ((1 - wx) * p00 + wx * p01) + wy * ((1 - wx) * p10 + wx * p11);
        }
        buf[c * plane + i * S + j] = v / 255;
      }
    }
  }
  // 2. colour jitter and grayscale (pointwise, except the contrast mean)
  if (draw.brightness !== 1) for (let k = 0; k < buf.length; k++) buf[k] = clamp01(buf[k]! * draw.brightness);
  if (draw.contrast !== 1) {
    let m = 0;
    for (let k = 0; k < plane; k++) m += 0.299 * buf[k]! + 0.587 * buf[plane + k]! + 0.114 * buf[2 * plane + k]!;
    m /= plane;
    for (let k = 0; k < buf.length; k++) buf[k] = clamp01((buf[k]! - m) * draw.contrast + m);
  }
  if (draw.saturation !== 1 || draw.gray) {
    const f = draw.saturation;
    for (let k = 0; k < plane; k++) {
      let r = buf[k]!;
      let g = buf[plane + k]!;
      let b = buf[2 * plane + k]!;
      if (f !== 1) {
        const gray = 0.299 * r + 0.587 * g + 0.114 * b;
        r = clamp01((r - gray) * f + gray);
        g = clamp01((g - gray) * f + gray);
        b = clamp01((b - gray) * f + gray);
      }
      if (draw.gray) r = g = b = 0.299 * r + 0.587 * g + 0.114 * b;
      buf[k] = r;
      buf[plane + k] = g;
      buf[2 * plane + k] = b;
    }
  }
  // 3. normalisation
  for (let c = 0; c < 3; c++) {
    const mu = mean[c]!;
    const inv = 1 / std[c]!;
    const base = offset + c * plane;
    for (let k = 0; k < plane; k++) out[base + k] = (buf[c * plane + k]! - mu) * inv;
  }
}
