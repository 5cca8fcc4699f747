/**
 * `ncm-clip` — nearest class mean on frozen CLIP image embeddings: the {@link NcmMethod} rule (exact running
 * class means of the incoming stream samples, first step of each batch only, no replay) on
 * `f(x) = normalise(CLIP image embedding)`, with
 *
 *   ŷ(x) = argmax_{c ∈ candidates, n_c > 0} f(x)·μ_c / ‖μ_c‖     (metric `cosine`, the default)
 *   ŷ(x) = argmin_{c ∈ candidates, n_c > 0} ‖f(x) − μ_c‖²         (metric `euclidean`)
 *
 * It wraps `NcmMethod` rather than extending `ncm`'s options because it needs a model folder and must tell
 * evaluation images (deterministic test transform: cached, shared with other CLIP methods) from training
 * images (possibly augmented: looked up in the cache, never stored) — see clip-features.ts. The plain `ncm`
 * method can also use CLIP features through `featureFns: { clip: clipFeatureFn(...) }` and `features: clip`.
 */
import { z } from 'zod';
import type { Image } from '../data/types.ts';
import type { CostInfo, DetailedPrediction, Method, MethodEnv, MethodState, ObserveContext, TrainBatch } from './method.ts';
import type { MethodDefinition } from './registry.ts';
import { NcmMethod, NcmOptionsSchema } from './ncm.ts';
import { acquireClip, DEFAULT_CLIP_MODEL_DIR, type ClipLease } from './clip-resources.ts';

export const NcmClipOptionsSchema = z.strictObject({
  /** CLIP model folder (HF or open_clip layout); relative to the config file. Default: the embedded model. */
  model: z.string().min(1, { error: 'expected a model folder' }).default(DEFAULT_CLIP_MODEL_DIR),
  metric: z.enum(['cosine', 'euclidean']).default('cosine'),
  /** Images per encoder run. */
  batchSize: z.int({ error: 'expected a positive integer' }).positive({ error: 'expected a positive integer' }).default(64),
});
export type NcmClipOptions = z.output<typeof NcmClipOptionsSchema>;

export class NcmClipMethod implements Method {
  readonly name = 'ncm-clip';
  /** The class means (features already unit-norm, so no further normalisation). */
  readonly ncm: NcmMethod;

  constructor(
    readonly options: NcmClipOptions,
    private readonly lease: ClipLease,
  ) {
    const { features } = lease;
    const batch = options.batchSize;
    this.ncm = new NcmMethod(
      NcmOptionsSchema.parse({ features: 'clip', normalize: false, metric: options.metric }),
      // NcmMethod only calls this from predict (observe is done here): evaluation images → cached
      (images) => features.images(images, 'cache', batch),
    );
    this.ncm.probScale = features.model.logitScale;
  }

  async observe(batch: TrainBatch, ctx: ObserveContext): Promise<void> {
    // the running mean counts every incoming stream sample once: first step only, no replay samples
    if (ctx.step !== 0 || batch.numIncoming === 0) return;
    const fs = await this.lease.features.images(batch.images.slice(0, batch.numIncoming), 'lookup', this.options.batchSize);
    fs.forEach((f, i) => this.ncm.update(batch.labels[i]!, f));
  }

  predict(images: Image[], candidates: readonly number[]): Promise<Int32Array> {
    return this.ncm.predict(images, candidates);
  }

  /** {@link predict} with probabilities (NcmMethod's, at CLIP's logit scale; no routes). */
  predictDetailed(images: Image[], candidates: readonly number[]): Promise<DetailedPrediction> {
    return this.ncm.predictDetailed(images, candidates);
  }

  /** The class means (see {@link NcmMethod.saveState}). */
  saveState(): Promise<MethodState> {
    return this.ncm.saveState();
  }

  loadState(state: MethodState): Promise<void> {
    return this.ncm.loadState(state);
  }

  describeCost(): CostInfo {
    const E = this.lease.features.dim;
    const means = this.ncm.describeCost().extra?.['classMeans'] ?? 0;
    return {
      trainableParams: 0,
      totalParams: this.lease.features.backboneParams + means * E,
      extra: { classMeans: means, featureDim: E },
    };
  }

  async dispose(): Promise<void> {
    await this.lease.release();
  }
}

export const ncmClipMethod: MethodDefinition<typeof NcmClipOptionsSchema> = {
  summary: 'nearest class mean on frozen CLIP image embeddings (running means, no gradients)',
  schema: NcmClipOptionsSchema,
  async create(options, env: MethodEnv) {
    return new NcmClipMethod(options, await acquireClip(env, options.model, 'ncm-clip'));
  },
};
