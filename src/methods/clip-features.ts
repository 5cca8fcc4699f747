/**
 * CLIP features for methods: L2-normalised image embeddings with a content-keyed cache, and prompt / class
 * text embeddings with CLIP's template-ensemble recipe.
 *
 * Image cache. Evaluation images are produced by deterministic test transforms, so the same stream item gives
 * the same bytes in every evaluation round (and, with an identity train transform, in training too). The cache
 * key is a SHA-1 of the image's size, channel count and pixel bytes — the identity of what the encoder sees —
 * so a hit is exact by construction (the encoder is a pure function of those bytes) and no stream-item
 * bookkeeping is needed. Modes:
 *   - `cache`:  hits are reused, misses encoded and stored (test / prequential images);
 *   - `lookup`: hits are reused, misses encoded but NOT stored (augmented training images, which almost never
 *               repeat and would only fill the cache);
 *   - `none`:   always encode.
 * The cache keeps at most `maxCachedImages` vectors (oldest first out).
 *
 * Text. A prompt's embedding is `normalise(textEncoder(prompt))`; a class's embedding over templates
 * T_1..T_K is `normalise((1/K) Σ_k normalise(textEncoder(T_k(name))))` (CLIP's zero-shot ensemble). Prompt
 * embeddings are cached by their text.
 */
import { createHash } from 'node:crypto';
import type { ClipModel } from '../clip/clip.ts';
import { fillTemplate } from '../clip/clip.ts';
import type { Image } from '../data/types.ts';
import { l2NormalizeInPlace } from '../util/vector.ts';
import type { FeatureFn } from './method.ts';

/** How {@link ClipFeatures.images} uses the image cache. */
export type CacheMode = 'cache' | 'lookup' | 'none';

/** Counters of the image cache. */
export interface FeatureStats {
  /** Images answered from the cache. */
  hits: number;
  /** Images that went through the encoder. */
  encoded: number;
  /** Vectors currently cached. */
  cached: number;
}

/** The cache key of an image: SHA-1 over `width, height, channels` and the pixel bytes. */
export function imageKey(img: Image): string {
  const h = createHash('sha1');
  h.update(`${img.width}x${img.height}x${img.channels}:`);
  h.update(img.pixels);
  return h.digest('base64');
}

/** A loaded CLIP model plus its feature caches; shared by every method that uses the model. */
export class ClipFeatures {
  /** Width of the embedding space. */
  readonly dim: number;
  private readonly imageCache = new Map<string, Float32Array>();
  private readonly promptCache = new Map<string, Float32Array>();
  private readonly maxCached: number;
  private hits = 0;
  private encoded = 0;

  constructor(
    readonly model: ClipModel,
    opts: { maxCachedImages?: number } = {},
  ) {
    this.dim = model.config.embedDim;
    this.maxCached = opts.maxCachedImages ?? 200_000;
  }

  /** Number of parameters of the (frozen) model: the sum of its weight tensor sizes. */
  get backboneParams(): number {
    let n = 0;
    for (const t of this.model.weights.values()) n += t.data.length;
    return n;
  }

  /** Cache counters (a snapshot). */
  get stats(): FeatureStats {
    return { hits: this.hits, encoded: this.encoded, cached: this.imageCache.size };
  }

  /** Encodes `images` in chunks of `batchSize`: unit-norm embeddings, one per image. */
  private async encode(images: Image[], batchSize: number): Promise<Float32Array[]> {
    const out: Float32Array[] = [];
    const E = this.dim;
    for (let a = 0; a < images.length; a += batchSize) {
      const m = await this.model.encodeImages(images.slice(a, a + batchSize));
      for (let i = 0; i < m.dims[0]; i++) out.push(m.data.slice(i * E, (i + 1) * E));
    }
    this.encoded += images.length;
    return out;
  }

  /**
   * Unit-norm image embeddings, one per image, using the cache as `mode` says (see the module doc). Identical
   * images within one call are encoded once. Returned vectors may be shared with the cache: do not modify them.
   */
  async images(images: Image[], mode: CacheMode = 'cache', batchSize = 64): Promise<Float32Array[]> {
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new Error(`ClipFeatures.images: batchSize must be a positive integer, got ${batchSize}`);
    if (mode === 'none') return this.encode(images, batchSize);
    const keys = images.map(imageKey);
    const out: Array<Float32Array | undefined> = keys.map((k) => this.imageCache.get(k));
    const todo: Image[] = [];
    const todoKeys: string[] = [];
    const pending = new Set<string>();
    keys.forEach((k, i) => {
      if (out[i] !== undefined) this.hits++;
      else if (!pending.has(k)) {
        pending.add(k);
        todo.push(images[i]!);
        todoKeys.push(k);
      }
    });
    if (todo.length > 0) {
      const fresh = await this.encode(todo, batchSize);
      const byKey = new Map(todoKeys.map((k, j) => [k, fresh[j]!]));
      keys.forEach((k, i) => {
        if (out[i] === undefined) out[i] = byKey.get(k)!;
      });
      if (mode === 'cache') for (const [k, v] of byKey) this.store(k, v);
    }
    return out as Float32Array[];
  }

  private store(key: string, v: Float32Array): void {
    if (this.maxCached <= 0) return;
    this.imageCache.set(key, v);
    while (this.imageCache.size > this.maxCached) {
      const oldest = this.imageCache.keys().next().value as string;
      this.imageCache.delete(oldest);
    }
  }

  /** Unit-norm text embeddings of `prompts` (cached by text; the uncached ones are encoded in one batch). */
  async prompts(prompts: readonly string[]): Promise<Float32Array[]> {
    const missing = [...new Set(prompts.filter((p) => !this.promptCache.has(p)))];
    if (missing.length > 0) {
      const m = await this.model.encodeTexts(missing);
      const E = this.dim;
      missing.forEach((p, i) => this.promptCache.set(p, m.data.slice(i * E, (i + 1) * E)));
    }
    return prompts.map((p) => this.promptCache.get(p)!);
  }

  /**
   * Template-ensemble class embeddings: for class i, `normalise(mean_k prompt(templates[i][k] with {} = names[i]))`.
   * All prompts of all classes are encoded together (minus cached ones).
   */
  async classEmbeddings(names: readonly string[], templates: ReadonlyArray<readonly string[]>): Promise<Float32Array[]> {
    if (templates.length !== names.length) throw new Error(`classEmbeddings: ${names.length} names but ${templates.length} template lists`);
    const prompts = names.map((n, i) => {
      const ts = templates[i]!;
      if (ts.length === 0) throw new Error(`classEmbeddings: no templates for class '${n}'`);
      return ts.map((t) => fillTemplate(t, n));
    });
    const emb = await this.prompts(prompts.flat());
    let k = 0;
    return prompts.map((ps) => {
      const acc = new Float64Array(this.dim);
      for (let j = 0; j < ps.length; j++) {
        const e = emb[k++]!;
        for (let d = 0; d < acc.length; d++) acc[d]! += e[d]!;
      }
      const v = new Float32Array(this.dim);
      for (let d = 0; d < v.length; d++) v[d] = acc[d]! / ps.length;
      return l2NormalizeInPlace(v);
    });
  }
}

/**
 * A {@link FeatureFn} over CLIP image embeddings (unit norm), e.g. `featureFns: { clip: clipFeatureFn(f) }` for
 * the `ncm` method's `features: clip`. NCM calls the same function for training and test images, so it uses the
 * cache in one `mode` for both (default `cache`: augmented training images then take cache room too, bounded by
 * `maxCachedImages`; the `ncm-clip` method avoids that by telling the two apart). Returned vectors are copies.
 */
export function clipFeatureFn(features: ClipFeatures, opts: { mode?: CacheMode; batchSize?: number } = {}): FeatureFn {
  const mode = opts.mode ?? 'cache';
  const batch = opts.batchSize ?? 64;
  return async (images) => (await features.images(images, mode, batch)).map((v) => Float32Array.from(v));
}
