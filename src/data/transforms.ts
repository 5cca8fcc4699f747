/**
 * Seeded image transforms and their JSON/YAML spec format.
 *
 * A spec is a list of one-key steps, applied in order:
 * ```yaml
 * - rotate: { deg: 45, jitter: 10 }        # angle = deg + U(−jitter, jitter), CCW, bilinear, fill 0
 * - rotate: { deg: 90, crop: true }        # then centre crop ⌊min(h,w)/√2⌋ and resize back (FCP-Rot)
 * - flip: 0.5                              # horizontal flip with probability 0.5
 * - randomCrop: { padding: 4 }             # zero-pad 4, crop back to the size (or `size`) at a random offset
 * - centerCrop: 24                         # or [h, w], or { fraction: 0.875 }
 * - resize: 32                             # shorter side → 32 (torchvision Resize(int)); [h, w] exact; { size, mode }
 * - blur: 2                                # Gaussian, kernel [0,5,9,13,17][level], σ ~ U(0.1, 2.0)
 * - blur: { kernel: 7, sigma: 1.5 }        # or sigma: [lo, hi]
 * - toRgb: true                            # grayscale → RGB
 * - permute: 3                             # fixed pixel permutation of the H×W positions drawn from seed 3
 * - permute: { seed: 3 }                   # the same
 * ```
 * `permute` (permuted MNIST) is deterministic: the same seed permutes every image and channel alike (place it
 * after `resize` / `toRgb`, at the final resolution), so it belongs to train and test alike.
 * Every random choice draws from the `Rng` passed to the transform, so the same rng state gives the same
 * output; save `rng.getState()` to resume. Transforms never modify their input image.
 */
import { z } from 'zod';
import { Rng } from '../util/rng.ts';
import {
  centerCrop,
  crop,
  flipHorizontal,
  gaussianBlur,
  resize,
  rotate,
  shorterSideSize,
  toRgb,
  type ResizeMode,
} from './image-ops.ts';
import type { Image, Transform } from './types.ts';

/** Kernel sizes of the blur levels 0–4 (level 0 = no blur), as in CM-MoE's blur streams. */
export const BLUR_KERNELS = [0, 5, 9, 13, 17] as const;
/** torchvision GaussianBlur's default σ range. */
export const BLUR_SIGMA_RANGE: readonly [number, number] = [0.1, 2.0];

type Size = number | [number, number];

export type TransformStep =
  | { resize: Size | { size: Size; mode?: ResizeMode } }
  | { centerCrop: Size | { fraction: number } }
  | { randomCrop: Size | { size?: Size; padding?: number } }
  | { flip: number }
  | { rotate: number | { deg: number; jitter?: number; crop?: boolean } }
  | { blur: number | { level: number } | { kernel: number; sigma: number | [number, number] } }
  | { toRgb: true }
  | { permute: number | { seed: number } };

export type TransformSpec = TransformStep[];

const posInt = z.number().int().positive();
const sizeSchema = z.union([posInt, z.tuple([posInt, posInt])]);
const level = z.number().int().min(0).max(BLUR_KERNELS.length - 1);

const stepSchemas: Record<string, z.ZodType> = {
  resize: z.union([sizeSchema, z.strictObject({ size: sizeSchema, mode: z.enum(['bilinear', 'bicubic']).optional() })]),
  centerCrop: z.union([sizeSchema, z.strictObject({ fraction: z.number().gt(0).lte(1) })]),
  randomCrop: z.union([
    sizeSchema,
    z.strictObject({ size: sizeSchema.optional(), padding: z.number().int().min(0).optional() }),
  ]),
  flip: z.number().min(0).max(1),
  rotate: z.union([
    z.number(),
    z.strictObject({ deg: z.number(), jitter: z.number().min(0).optional(), crop: z.boolean().optional() }),
  ]),
  blur: z.union([
    level,
    z.strictObject({ level }),
    z.strictObject({
      kernel: z.number().int().positive().refine((k) => k % 2 === 1, 'kernel size must be odd'),
      sigma: z.union([z.number().positive(), z.tuple([z.number().positive(), z.number().positive()])]),
    }),
  ]),
  toRgb: z.literal(true),
  permute: z.union([z.number().int().min(0), z.strictObject({ seed: z.number().int().min(0) })]),
};

/** Names of the transform steps a spec may use. */
export const TRANSFORM_STEPS = Object.keys(stepSchemas);

/** One step: an object with exactly one known key, validated by that key's schema (errors name the step). */
export const TransformStepSchema: z.ZodType<TransformStep> = z.unknown().transform((value, ctx) => {
  const keys = value !== null && typeof value === 'object' && !Array.isArray(value) ? Object.keys(value) : [];
  const key = keys[0];
  if (keys.length !== 1 || key === undefined || !(key in stepSchemas)) {
    ctx.addIssue({
      code: 'custom',
      message: `a transform step is an object with one key out of ${TRANSFORM_STEPS.join(', ')}; got ${JSON.stringify(value)}`,
    });
    return z.NEVER;
  }
  const parsed = stepSchemas[key]!.safeParse((value as Record<string, unknown>)[key]);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      ctx.addIssue({ code: 'custom', message: `${key}: ${issue.message}`, path: [key, ...issue.path] });
    }
    return z.NEVER;
  }
  return { [key]: parsed.data } as TransformStep;
}) as unknown as z.ZodType<TransformStep>;

export const TransformSpecSchema: z.ZodType<TransformSpec> = z.array(TransformStepSchema);

const identity: Transform = (img) => img;

function sizeOf(s: Size): [number, number] {
  return typeof s === 'number' ? [s, s] : s;
}

/** Builds the function of one (validated) step. */
function stepTransform(step: TransformStep): Transform {
  if ('resize' in step) {
    const r = step.resize;
    const size = typeof r === 'object' && !Array.isArray(r) ? r.size : r;
    const mode = typeof r === 'object' && !Array.isArray(r) ? (r.mode ?? 'bilinear') : 'bilinear';
    if (typeof size === 'number') {
      return (img) => {
        const [h, w] = shorterSideSize(img.height, img.width, size);
        return resize(img, h, w, mode);
      };
    }
    return (img) => resize(img, size[0], size[1], mode);
  }
  if ('centerCrop' in step) {
    const c = step.centerCrop;
    if (typeof c === 'object' && !Array.isArray(c)) {
      const f = c.fraction;
      return (img) => centerCrop(img, Math.max(1, Math.floor(img.height * f)), Math.max(1, Math.floor(img.width * f)));
    }
    const [h, w] = sizeOf(c);
    return (img) => centerCrop(img, h, w);
  }
  if ('randomCrop' in step) {
    const rc = step.randomCrop;
    const opts = typeof rc === 'object' && !Array.isArray(rc) ? rc : { size: rc };
    const pad = opts.padding ?? 0;
    return (img, rng) => {
      const [h, w] = opts.size === undefined ? [img.height, img.width] : sizeOf(opts.size);
      const ph = img.height + 2 * pad;
      const pw = img.width + 2 * pad;
      if (h > ph || w > pw) throw new Error(`randomCrop: ${h}×${w} is larger than the padded image ${ph}×${pw}`);
      const top = rng.int(ph - h + 1) - pad;
      const left = rng.int(pw - w + 1) - pad;
      return crop(img, top, left, h, w);
    };
  }
  if ('flip' in step) {
    const p = step.flip;
    return (img, rng) => (rng.float() < p ? flipHorizontal(img) : img);
  }
  if ('rotate' in step) {
    const r = typeof step.rotate === 'number' ? { deg: step.rotate } : step.rotate;
    const jitter = r.jitter ?? 0;
    return (img, rng) => {
      const angle = jitter > 0 ? r.deg + rng.uniform(-jitter, jitter) : r.deg;
      const out = rotate(img, angle);
      if (!r.crop) return out;
      // crop the largest centred square free of the fill corners (side/√2), then back to the input size
      const side = Math.max(1, Math.floor(Math.min(img.height, img.width) / Math.SQRT2));
      return resize(centerCrop(out, side, side), img.height, img.width, 'bilinear');
    };
  }
  if ('blur' in step) {
    const b = step.blur;
    let kernel: number;
    let sigma: [number, number];
    if (typeof b === 'number' || 'level' in b) {
      kernel = BLUR_KERNELS[typeof b === 'number' ? b : b.level]!;
      sigma = [BLUR_SIGMA_RANGE[0], BLUR_SIGMA_RANGE[1]];
    } else {
      kernel = b.kernel;
      sigma = typeof b.sigma === 'number' ? [b.sigma, b.sigma] : b.sigma;
    }
    if (kernel <= 1) return identity;
    return (img, rng) => gaussianBlur(img, kernel, sigma[0] === sigma[1] ? sigma[0] : rng.uniform(sigma[0], sigma[1]));
  }
  if ('toRgb' in step) return (img) => toRgb(img);
  if ('permute' in step) {
    const seed = typeof step.permute === 'number' ? step.permute : step.permute.seed;
    return (img) => permutePixels(img, pixelPermutation(seed, img.height, img.width));
  }
  throw new Error(`unknown transform step ${JSON.stringify(step)}`);
}

/** Chains transforms left to right. */
export function compose(...fns: Transform[]): Transform {
  const list = fns.filter((f) => f !== identity);
  if (list.length === 0) return identity;
  if (list.length === 1) return list[0]!;
  return (img: Image, rng: Rng) => list.reduce((acc, f) => f(acc, rng), img);
}

/** The identity transform (returns its input). */
export function identityTransform(): Transform {
  return identity;
}

/** Validates a spec (zod) and builds its transform; errors name the offending step. */
export function transformFromSpec(spec: TransformSpec | unknown): Transform {
  const parsed = TransformSpecSchema.safeParse(spec ?? []);
  if (!parsed.success) {
    const msg = parsed.error.issues.map((i) => `[${i.path.join('.')}] ${i.message}`).join('; ');
    throw new Error(`invalid transform spec: ${msg}`);
  }
  return compose(...parsed.data.map(stepTransform));
}

/**
 * The deterministic evaluation counterpart of a training spec: flips and random crops are dropped,
 * rotation jitter is removed (the fixed angle stays); blur keeps its σ range (materialize() gives every test
 * item its own seeded generator, so test images are still reproducible).
 */
export function testSpecOf(spec: TransformSpec): TransformSpec {
  const out: TransformSpec = [];
  for (const step of spec) {
    if ('flip' in step || 'randomCrop' in step) continue;
    if ('rotate' in step && typeof step.rotate === 'object') {
      out.push({ rotate: { deg: step.rotate.deg, ...(step.rotate.crop ? { crop: true } : {}) } });
      continue;
    }
    out.push(step);
  }
  return out;
}

/**
 * The FCP-Rot-Seq task transforms (CM-MoE) at the image's own resolution: train = rotate(deg ± jitter)
 * with the √2 centre crop resized back, random crop with padding, horizontal flip; test = the fixed rotation
 * and crop only.
 */
export function rotationTaskSpecs(
  deg: number,
  opts: { jitter?: number; padding?: number; flip?: number } = {},
): { train: TransformSpec; test: TransformSpec } {
  const train: TransformSpec = [
    { rotate: { deg, jitter: opts.jitter ?? 10, crop: true } },
    { randomCrop: { padding: opts.padding ?? 4 } },
    { flip: opts.flip ?? 0.5 },
  ];
  return { train, test: [{ rotate: { deg, crop: true } }] };
}

/** The FCP-Blur-Seq task transforms: Gaussian blur of the given level on train and test, plus crop/flip on train. */
export function blurTaskSpecs(
  levelNo: number,
  opts: { padding?: number; flip?: number } = {},
): { train: TransformSpec; test: TransformSpec } {
  const blur: TransformSpec = levelNo > 0 ? [{ blur: levelNo }] : [];
  return {
    train: [...blur, { randomCrop: { padding: opts.padding ?? 4 } }, { flip: opts.flip ?? 0.5 }],
    test: blur,
  };
}

const permutations = new Map<string, Uint32Array>();

/** The pixel permutation of `permute: seed` for an H×W image: out position i takes input position perm[i]. */
export function pixelPermutation(seed: number, height: number, width: number): Uint32Array {
  const key = `${seed}:${height}x${width}`;
  let p = permutations.get(key);
  if (!p) {
    p = Uint32Array.from(new Rng(seed).permutation(height * width));
    permutations.set(key, p);
  }
  return p;
}

/** Moves every pixel (all channels together) by `perm`. */
export function permutePixels(img: Image, perm: Uint32Array): Image {
  const n = img.width * img.height;
  if (perm.length !== n) throw new Error(`permute: permutation of ${perm.length} positions for a ${img.height}×${img.width} image`);
  const C = img.channels;
  const out = new Uint8Array(img.pixels.length);
  for (let i = 0; i < n; i++) {
    const src = perm[i]! * C;
    for (let c = 0; c < C; c++) out[i * C + c] = img.pixels[src + c]!;
  }
  return { width: img.width, height: img.height, channels: C, pixels: out };
}
