/**
 * `zeroshot-clip` — Continual-CLIP (Thengane et al. 2022): the frozen CLIP model classifies every image among
 * the candidate labels with its text-prompt classifier; nothing is trained, so nothing is forgotten.
 *
 *   w_c  = normalise( (1/K) Σ_k normalise(g(T_k(name_c))) )      per class c, templates T_1..T_K
 *   ŷ(x) = argmax_{c ∈ candidates} normalise(f(x)) · w_c          (ties: the candidate listed first)
 *
 * f / g are CLIP's image / text encoders. `w_c` is computed on first use of label c and kept. Templates:
 * `dataset` — every template of the label's dataset (the stream's `templatesFor`), `first` — only the first
 * (the training template), or an explicit list used for every class. Image embeddings of evaluation images come
 * from the shared content-keyed cache (see clip-features.ts).
 */
import { z } from 'zod';
import type { Image } from '../data/types.ts';
import type { CostInfo, DetailedPrediction, Method, MethodEnv, MethodState, PredictContext, StreamView } from './method.ts';
import type { MethodDefinition } from './registry.ts';
import { acquireClip, DEFAULT_CLIP_MODEL_DIR, type ClipLease } from './clip-resources.ts';

export const ZeroShotClipOptionsSchema = z.strictObject({
  /** CLIP model folder (HF or open_clip layout); relative to the config file. Default: the embedded model. */
  model: z.string().min(1, { error: 'expected a model folder' }).default(DEFAULT_CLIP_MODEL_DIR),
  /** `dataset`, `first`, or a list of templates with `{}` for the class name. */
  templates: z
    .union([
      z.enum(['dataset', 'first']),
      z.array(z.string().includes('{}', { error: 'a template needs a {} placeholder for the class name' })).min(1, { error: 'expected at least one template' }),
    ], { error: "expected 'dataset', 'first' or a list of templates with {}" })
    .default('dataset'),
  /** Images per encoder run. */
  batchSize: z.int({ error: 'expected a positive integer' }).positive({ error: 'expected a positive integer' }).default(64),
});
export type ZeroShotClipOptions = z.output<typeof ZeroShotClipOptionsSchema>;

/** The templates of `label` under the `templates` option. */
export function templatesOf(option: ZeroShotClipOptions['templates'], label: number, stream: Pick<StreamView, 'templatesFor'>): readonly string[] {
  if (Array.isArray(option)) return option;
  const ts = stream.templatesFor(label);
  if (ts.length === 0) throw new Error(`zeroshot-clip: the stream has no prompt templates for label ${label}`);
  return option === 'first' ? ts.slice(0, 1) : ts;
}

/** Index of the largest dot product `f · rows[j]` (first one on ties), or -1 for no rows. */
export function argmaxDot(f: Float32Array, rows: readonly Float32Array[]): number {
  let best = -1;
  let bestScore = -Infinity;
  for (let j = 0; j < rows.length; j++) {
    const w = rows[j]!;
    let s = 0;
    for (let d = 0; d < f.length; d++) s += f[d]! * w[d]!;
    if (s > bestScore) {
      bestScore = s;
      best = j;
    }
  }
  return best;
}

/**
 * CLIP's class probabilities: per image i the softmax over j of `scale · f_i · rows_j` (the same dot products as
 * {@link argmaxDot}), as [B, C] row-major float64; C = 0 gives an empty array.
 */
export function softmaxDots(features: readonly Float32Array[], rowsFor: (i: number) => readonly Float32Array[], scale: number): Float64Array {
  const rows0 = features.length > 0 ? rowsFor(0).length : 0;
  const out = new Float64Array(features.length * rows0);
  features.forEach((f, i) => {
    const rows = rowsFor(i);
    const C = rows.length;
    if (C !== rows0) throw new Error(`softmaxDots: image ${i} has ${C} class rows, image 0 has ${rows0}`);
    let max = -Infinity;
    for (let j = 0; j < C; j++) {
      const w = rows[j]!;
      let s = 0;
      for (let d = 0; d < f.length; d++) s += f[d]! * w[d]!;
      out[i * C + j] = scale * s;
      if (scale * s > max) max = scale * s;
    }
    let z = 0;
    for (let j = 0; j < C; j++) z += out[i * C + j] = Math.exp(out[i * C + j]! - max);
    for (let j = 0; j < C; j++) out[i * C + j]! /= z;
  });
  return out;
}

export class ZeroShotClipMethod implements Method {
  readonly name = 'zeroshot-clip';
  private readonly classifier = new Map<number, Float32Array>();

  constructor(
    readonly options: ZeroShotClipOptions,
    private readonly lease: ClipLease,
  ) {}

  /** Classifier rows for `labels`, computing (and keeping) the missing ones in one text-encoder batch. */
  async classWeights(labels: readonly number[], stream: StreamView): Promise<Float32Array[]> {
    const missing = [...new Set(labels.filter((c) => !this.classifier.has(c)))];
    if (missing.length > 0) {
      const names = missing.map((c) => {
        const n = stream.classNames[c];
        if (n === undefined) throw new Error(`zeroshot-clip: label ${c} has no class name (the stream has ${stream.classNames.length})`);
        return n;
      });
      const rows = await this.lease.features.classEmbeddings(
        names,
        missing.map((c) => templatesOf(this.options.templates, c, stream)),
      );
      missing.forEach((c, i) => this.classifier.set(c, rows[i]!));
    }
    return labels.map((c) => this.classifier.get(c)!);
  }

  async observe(): Promise<void> {
    // Continual-CLIP does not train.
  }

  async predict(images: Image[], candidates: readonly number[], ctx: PredictContext): Promise<Int32Array> {
    return (await this.predictDetailed(images, candidates, ctx)).labels;
  }

  /** {@link predict} with softmax(exp(logit_scale) · cosine) over the candidates (no routes). */
  async predictDetailed(images: Image[], candidates: readonly number[], ctx: PredictContext): Promise<DetailedPrediction> {
    const out = new Int32Array(images.length).fill(-1);
    if (images.length === 0 || candidates.length === 0) return { labels: out, probs: new Float64Array(images.length * candidates.length) };
    const before = this.classifier.size;
    const t0 = performance.now();
    const W = await this.classWeights(candidates, ctx);
    if (this.classifier.size > before) ctx.reportPhase('text_encode', performance.now() - t0);
    const fs = await this.lease.features.images(images, 'cache', this.options.batchSize);
    fs.forEach((f, i) => (out[i] = candidates[argmaxDot(f, W)]!));
    return { labels: out, probs: softmaxDots(fs, () => W, this.lease.features.model.logitScale) };
  }

  /** Nothing trains: the classifier rows are recomputed from the frozen model as needed. */
  async saveState(): Promise<MethodState> {
    return { tensors: {}, json: {} };
  }

  async loadState(): Promise<void> {}

  describeCost(): CostInfo {
    const E = this.lease.features.dim;
    return {
      trainableParams: 0,
      totalParams: this.lease.features.backboneParams + this.classifier.size * E,
      extra: { classifierRows: this.classifier.size, embedDim: E },
    };
  }

  async dispose(): Promise<void> {
    await this.lease.release();
  }
}

export const zeroShotClipMethod: MethodDefinition<typeof ZeroShotClipOptionsSchema> = {
  summary: 'Continual-CLIP: frozen CLIP, zero-shot prompt-ensemble classifier over the candidate labels (no training)',
  schema: ZeroShotClipOptionsSchema,
  async create(options, env: MethodEnv) {
    return new ZeroShotClipMethod(options, await acquireClip(env, options.model, 'zeroshot-clip'));
  },
};
