/**
 * NCM — nearest class mean. Keeps a running mean μ_c of the feature vectors of every class seen and predicts
 *
 *   ŷ(x) = argmin_{c ∈ candidates, n_c > 0} ‖f(x) − μ_c‖²       (metric `euclidean`)
 *   ŷ(x) = argmax_{c ∈ candidates, n_c > 0} f(x)·μ_c / ‖μ_c‖     (metric `cosine`)
 *
 * Online update (exact running mean): n_c ← n_c + 1, μ_c ← μ_c + (f(x) − μ_c) / n_c, once per incoming stream
 * sample (only on the first of the `onlineIter` steps, and never on replay samples, so the mean is the plain
 * mean of the stream samples seen). Ties go to the candidate listed first; no class mean among the candidates →
 * -1 (abstain, counted wrong).
 *
 * Features: `features: pixels` uses {@link pixelFeatures} (area resize to `size × size`, `color` layout,
 * optional L2 normalisation); any other value names a feature extractor supplied by the environment
 * (`env.featureFns[name]`, e.g. CLIP image embeddings), optionally L2-normalised too.
 */
import { z } from 'zod';
import type { Image } from '../data/types.ts';
import type { CostInfo, DetailedPrediction, FeatureFn, Method, MethodEnv, MethodState, ObserveContext, TrainBatch } from './method.ts';
import type { MethodDefinition } from './registry.ts';
import { l2NormalizeInPlace } from '../util/vector.ts';
import { pixelFeatures } from './pixel-features.ts';

export const NcmOptionsSchema = z.strictObject({
  /** `pixels` or the name of a feature extractor in `env.featureFns`. */
  features: z.string().min(1).default('pixels'),
  /** Side of the resized image for `pixels`. */
  size: z.int().positive({ error: 'expected a positive integer' }).max(256).default(16),
  /** Colour layout for `pixels`. */
  color: z.enum(['gray', 'rgb']).default('rgb'),
  /** L2-normalise each feature vector before averaging and comparing. */
  normalize: z.boolean().default(true),
  metric: z.enum(['euclidean', 'cosine']).default('euclidean'),
});
export type NcmOptions = z.output<typeof NcmOptionsSchema>;

interface ClassStat {
  n: number;
  mean: Float64Array;
}

export class NcmMethod implements Method {
  readonly name = 'ncm';
  private readonly stats = new Map<number, ClassStat>();
  private dim = -1;
  private readonly extract: FeatureFn;

  constructor(
    readonly options: NcmOptions,
    featureFn?: FeatureFn,
  ) {
    if (options.features === 'pixels') {
      const { size, color, normalize } = options;
      this.extract = async (images) => images.map((im) => pixelFeatures(im, size, color, normalize));
    } else {
      if (!featureFn) throw new Error(`ncm: no feature extractor named '${options.features}'`);
      const normalize = options.normalize;
      this.extract = async (images) => {
        const fs = await featureFn(images);
        if (fs.length !== images.length) {
          throw new Error(`ncm: feature extractor '${options.features}' returned ${fs.length} vectors for ${images.length} images`);
        }
        return normalize ? fs.map((f) => l2NormalizeInPlace(Float32Array.from(f))) : fs;
      };
    }
  }

  private async features(images: Image[]): Promise<Float32Array[]> {
    const fs = await this.extract(images);
    for (const f of fs) {
      if (this.dim < 0) this.dim = f.length;
      else if (f.length !== this.dim) throw new Error(`ncm: feature length ${f.length} differs from ${this.dim}`);
    }
    return fs;
  }

  async observe(batch: TrainBatch, ctx: ObserveContext): Promise<void> {
    if (ctx.step !== 0 || batch.numIncoming === 0) return;
    const fs = await this.features(batch.images.slice(0, batch.numIncoming));
    fs.forEach((f, i) => this.update(batch.labels[i]!, f));
  }

  /** Adds one sample of class `label` to its running mean. */
  update(label: number, f: Float32Array): void {
    let s = this.stats.get(label);
    if (!s) {
      s = { n: 0, mean: new Float64Array(f.length) };
      this.stats.set(label, s);
    }
    s.n += 1;
    const inv = 1 / s.n;
    for (let k = 0; k < f.length; k++) s.mean[k]! += (f[k]! - s.mean[k]!) * inv;
  }

  /** The current mean of class `label` (a copy), or `null` before its first sample. */
  classMean(label: number): Float64Array | null {
    const s = this.stats.get(label);
    return s ? Float64Array.from(s.mean) : null;
  }

  /** Softmax scale of {@link predictDetailed}'s probabilities (ncm-clip: CLIP's exp(logit_scale)). */
  probScale = 1;

  async predict(images: Image[], candidates: readonly number[]): Promise<Int32Array> {
    return (await this.predictDetailed(images, candidates)).labels;
  }

  /**
   * {@link predict} with probabilities: the softmax over the candidates with a class mean of
   * `probScale · cos(f, μ_c)` (cosine) or `−probScale/2 · ‖f − μ_c‖²` (euclidean); 0 for the others.
   */
  async predictDetailed(images: Image[], candidates: readonly number[]): Promise<DetailedPrediction> {
    const out = new Int32Array(images.length).fill(-1);
    const C = candidates.length;
    const probs = new Float64Array(images.length * C);
    const cands = candidates.map((c, col) => ({ c, col, s: this.stats.get(c) })).filter((x) => x.s !== undefined) as Array<{
      c: number;
      col: number;
      s: ClassStat;
    }>;
    if (cands.length === 0 || images.length === 0) return { labels: out, probs };
    const norms = cands.map(({ s }) => {
      let q = 0;
      for (let k = 0; k < s.mean.length; k++) q += s.mean[k]! * s.mean[k]!;
      return Math.sqrt(q);
    });
    const fs = await this.features(images);
    const cosine = this.options.metric === 'cosine';
    const logits = new Float64Array(cands.length);
    fs.forEach((f, i) => {
      let best = -1;
      let bestScore = -Infinity;
      cands.forEach(({ c, s }, j) => {
        const m = s.mean;
        let score: number;
        if (cosine) {
          let dot = 0;
          for (let k = 0; k < f.length; k++) dot += f[k]! * m[k]!;
          score = norms[j]! > 0 ? dot / norms[j]! : 0;
        } else {
          let d = 0;
          for (let k = 0; k < f.length; k++) {
            const e = f[k]! - m[k]!;
            d += e * e;
          }
          score = -d;
        }
        logits[j] = (cosine ? 1 : 0.5) * this.probScale * score;
        if (score > bestScore) {
          bestScore = score;
          best = c;
        }
      });
      out[i] = best;
      const mx = Math.max(...logits);
      let z = 0;
      cands.forEach(({ col }, j) => (z += probs[i * C + col] = Math.exp(logits[j]! - mx)));
      for (const { col } of cands) probs[i * C + col]! /= z;
    });
    return { labels: out, probs };
  }

  /** Class means as float64 tensors `mean/<label>`, counts and the feature length as JSON. */
  async saveState(): Promise<MethodState> {
    const tensors: MethodState['tensors'] = {};
    for (const [c, s] of this.stats) tensors[`mean/${c}`] = { dtype: 'float64', dims: [s.mean.length], data: Float64Array.from(s.mean) };
    return { tensors, json: { dim: this.dim, counts: [...this.stats].map(([c, s]) => [c, s.n]) } };
  }

  async loadState(state: MethodState): Promise<void> {
    const counts = state.json['counts'] as Array<[number, number]>;
    if (!Array.isArray(counts)) throw new Error(`${this.name} state.counts: expected [label, count] pairs`);
    this.stats.clear();
    for (const [c, n] of counts) {
      const t = state.tensors[`mean/${c}`];
      if (!t || t.dtype !== 'float64') throw new Error(`${this.name} state: tensor 'mean/${c}' is missing or not float64`);
      this.stats.set(c, { n, mean: Float64Array.from(t.data as Float64Array) });
    }
    this.dim = state.json['dim'] as number;
  }

  describeCost(): CostInfo {
    const d = Math.max(this.dim, 0);
    return {
      trainableParams: 0,
      totalParams: this.stats.size * d,
      extra: { classMeans: this.stats.size, featureDim: d },
    };
  }
}

export const ncmMethod: MethodDefinition<typeof NcmOptionsSchema> = {
  summary: 'nearest class mean on raw pixels or on supplied feature vectors (running means, no gradients)',
  schema: NcmOptionsSchema,
  async create(options, env: MethodEnv) {
    const fn = options.features === 'pixels' ? undefined : env.featureFns?.[options.features];
    if (options.features !== 'pixels' && !fn) {
      const known = Object.keys(env.featureFns ?? {});
      throw new Error(
        `ncm: method.features '${options.features}' names no feature extractor; available: ${['pixels', ...known].join(', ')}`,
      );
    }
    return new NcmMethod(options, fn);
  },
};
