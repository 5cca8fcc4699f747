/**
 * The batch stream of pretraining.
 *
 * Data order: the training samples are visited epoch by epoch, each epoch a fresh uniform permutation drawn
 * from the order generator; batches are consecutive runs of `batchSize` samples of that endless sequence (a batch
 * may span two epochs). Per batch:
 * - images: augmented and normalised (augment.ts) into pixels [B, 3, S, S];
 * - texts: one caption per DISTINCT class of the batch, in order of first appearance; classes whose captions
 *   came out identical (e.g. two dog breeds captioned "a photo of a dog.") share one text, so K ≤ B texts,
 *   tokenised with compact ids [K, T] (T = the longest caption of the batch);
 * - targets [B, K]: 1 where text k is the caption of image b's class, else 0 (one 1 per row);
 * - with text pairs (text-pairs.ts): N WordNet text pairs.
 *
 * Generators (data order, captions, augmentation, and the pair order and draws) are derived from the run seed.
 * {@link BatchSampler.state} captures them with the data positions, so a restored sampler produces exactly the
 * same batches.
 */
import type { ClipTokenizer } from '../clip/tokenizer.ts';
import type { Dataset } from '../data/types.ts';
import { Rng, type RngState } from '../util/rng.ts';
import { augmentInto, drawAugment } from './augment.ts';
import { tokenizeCaptions, type CaptionSampler } from './captions.ts';
import type { AugmentConfig } from './config.ts';
import { TextPairSampler, type TextPairBatch, type TextPairItem, type TextPairState } from './text-pairs.ts';
import type { CompactVocab } from './vocab.ts';

/** One training batch (inputs of the training graph plus what produced them). */
export interface PretrainBatch {
  /** Normalised pixels [B, 3, S, S]. */
  pixels: Float32Array;
  /** Compact token ids [K, T]. */
  ids: BigInt64Array;
  idsDims: [number, number];
  /** [B, K] one-hot: targets[b·K + k] = 1 iff image b has the class of text k. */
  targets: Float32Array;
  /** Dataset labels of the images. */
  labels: Int32Array;
  /** Dataset label of each text (the first class whose caption it is). */
  textClasses: number[];
  /** Index of the text of each image. */
  textOfImage: Int32Array;
  captions: string[];
  /** Dataset indices of the images. */
  indices: Int32Array;
  /** The text pairs of the step (null without text pairs). */
  pairs: TextPairBatch | null;
}

/** Everything needed to continue the batch stream exactly. */
export interface SamplerState {
  /** Order generator state before the current epoch's permutation was drawn. */
  orderRng: RngState;
  epoch: number;
  /** Samples of the current epoch already used. */
  position: number;
  captionRng: RngState;
  augmentRng: RngState;
  /** Number of training samples and a hash of their indices (a resumed run must use the same set). */
  samples: number;
  samplesHash: number;
  /** The text-pair stream (absent without text pairs). */
  textPairs?: TextPairState;
}

export interface SamplerOptions {
  dataset: Dataset;
  /** Dataset indices of the training samples. */
  indices: Int32Array;
  batchSize: number;
  imageSize: number;
  mean: readonly number[];
  std: readonly number[];
  augment: AugmentConfig;
  captions: CaptionSampler;
  tokenizer: ClipTokenizer;
  vocab: CompactVocab;
  contextLength: number;
  seed: number;
  /** WordNet text pairs drawn with every batch (none when absent). */
  textPairs?: { items: readonly TextPairItem[]; pairs: number; synonym: number } | null;
}

/** FNV-1a over the int32 values (for detecting a different training set on resume). */
export function hashIndices(a: Int32Array): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < a.length; i++) {
    let v = a[i]!;
    for (let k = 0; k < 4; k++) {
      h ^= v & 0xff;
      h = Math.imul(h, 0x01000193) >>> 0;
      v >>>= 8;
    }
  }
  return h >>> 0;
}

/**
 * The generators of a run seed: data order, captions, augmentation, pair order, pair draws (independent of the
 * weight init; the first three are those of runs without text pairs).
 */
export function samplerRngs(seed: number): { order: Rng; caption: Rng; augment: Rng; pairOrder: Rng; pairDraw: Rng } {
  const root = new Rng((Math.imul(seed ^ 0x5bd1e995, 0x9e3779b1) ^ 0x0da7a5ee) >>> 0);
  return { order: root.fork(), caption: root.fork(), augment: root.fork(), pairOrder: root.fork(), pairDraw: root.fork() };
}

export class BatchSampler {
  readonly batchSize: number;
  private readonly opts: SamplerOptions;
  private readonly order: Rng;
  private readonly captionRng: Rng;
  private readonly augmentRng: Rng;
  private readonly hash: number;
  /** The text-pair stream, when the run has one. */
  readonly textPairs: TextPairSampler | null;
  private epochStart: RngState;
  private perm: number[];
  private epoch = 0;
  private position = 0;

  constructor(opts: SamplerOptions) {
    if (opts.indices.length === 0) throw new Error('pretrain: no training samples');
    if (!Number.isInteger(opts.batchSize) || opts.batchSize < 1) throw new Error(`pretrain: batchSize must be a positive integer, got ${opts.batchSize}`);
    this.opts = opts;
    this.batchSize = opts.batchSize;
    const r = samplerRngs(opts.seed);
    this.order = r.order;
    this.captionRng = r.caption;
    this.augmentRng = r.augment;
    const tp = opts.textPairs;
    this.textPairs = tp ? new TextPairSampler(tp.items, tp.pairs, tp.synonym, { order: r.pairOrder, draw: r.pairDraw }) : null;
    this.hash = hashIndices(opts.indices);
    this.epochStart = this.order.getState();
    this.perm = this.order.permutation(opts.indices.length);
  }

  /** Number of training samples (one epoch). */
  get samples(): number {
    return this.opts.indices.length;
  }

  /** The current epoch (0-based) and position within it. */
  get progress(): { epoch: number; position: number } {
    return { epoch: this.epoch, position: this.position };
  }

  state(): SamplerState {
    return {
      orderRng: this.epochStart,
      epoch: this.epoch,
      position: this.position,
      captionRng: this.captionRng.getState(),
      augmentRng: this.augmentRng.getState(),
      samples: this.samples,
      samplesHash: this.hash,
      ...(this.textPairs ? { textPairs: this.textPairs.state() } : {}),
    };
  }

  /** Continues from a saved state (checked against this sampler's training set; `where` names the source). */
  restore(s: SamplerState, where = 'sampler state'): void {
    if (s.samples !== this.samples || s.samplesHash !== this.hash) {
      throw new Error(`${where}: the checkpoint was made with a different training set (${s.samples} samples, hash ${s.samplesHash}; now ${this.samples}, hash ${this.hash})`);
    }
    if (!Number.isInteger(s.position) || s.position < 0 || s.position > this.samples) throw new Error(`${where}.position: out of range`);
    if (!Number.isInteger(s.epoch) || s.epoch < 0) throw new Error(`${where}.epoch: expected an integer ≥ 0`);
    this.order.setState(s.orderRng);
    this.epochStart = this.order.getState();
    this.perm = this.order.permutation(this.samples);
    this.epoch = s.epoch;
    this.position = s.position;
    this.captionRng.setState(s.captionRng);
    this.augmentRng.setState(s.augmentRng);
    if (this.textPairs) {
      if (!s.textPairs) throw new Error(`${where}.textPairs: the checkpoint was made without text pairs`);
      this.textPairs.restore(s.textPairs, `${where}.textPairs`);
    } else if (s.textPairs) throw new Error(`${where}.textPairs: the checkpoint was made with text pairs, the config has none`);
  }

  private nextIndex(): number {
    if (this.position >= this.samples) {
      this.epoch++;
      this.position = 0;
      this.epochStart = this.order.getState();
      this.perm = this.order.permutation(this.samples);
    }
    return this.opts.indices[this.perm[this.position++]!]!;
  }

  /** The next batch. */
  next(): PretrainBatch {
    const o = this.opts;
    const B = this.batchSize;
    const S = o.imageSize;
    const indices = new Int32Array(B);
    const labels = new Int32Array(B);
    for (let b = 0; b < B; b++) {
      indices[b] = this.nextIndex();
      labels[b] = o.dataset.labels[indices[b]!]!;
    }
    // texts: the distinct classes in order of first appearance, one random caption each
    const textClasses: number[] = [];
    const textOf = new Map<number, number>();
    for (const y of labels) {
      if (!textOf.has(y)) {
        textOf.set(y, textClasses.length);
        textClasses.push(y);
      }
    }
    const drawn = textClasses.map((y) => o.captions.sample(y, this.captionRng));
    // identical captions of different classes become one text
    const captions: string[] = [];
    const firstClass: number[] = [];
    const column = new Map<string, number>();
    const textOfClass = drawn.map((c, k) => {
      let col = column.get(c);
      if (col === undefined) {
        col = captions.length;
        column.set(c, col);
        captions.push(c);
        firstClass.push(textClasses[k]!);
      }
      return col;
    });
    const tok = tokenizeCaptions(o.tokenizer, o.vocab, captions, o.contextLength);
    const K = captions.length;
    const targets = new Float32Array(B * K);
    const textOfImage = new Int32Array(B);
    for (let b = 0; b < B; b++) {
      textOfImage[b] = textOfClass[textOf.get(labels[b]!)!]!;
      targets[b * K + textOfImage[b]!] = 1;
    }
    // images
    const pixels = new Float32Array(B * 3 * S * S);
    for (let b = 0; b < B; b++) {
      const img = o.dataset.image(indices[b]!);
      const draw = drawAugment(o.augment, img.height, img.width, this.augmentRng);
      augmentInto(img, draw, S, o.mean, o.std, pixels, b * 3 * S * S);
    }
    const pairs = this.textPairs ? this.textPairs.next(o.tokenizer, o.vocab, o.contextLength) : null;
    return { pixels, ids: tok.ids, idsDims: tok.dims, targets, labels, textClasses: firstClass, textOfImage, captions, indices, pairs };
  }
}
