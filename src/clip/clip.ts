/**
 * `ClipModel`: a loaded CLIP (config, weights, tokenizer, preprocessing) plus an {@link Engine} that runs its two
 * frozen towers. Sessions are built on first use and cached by the engine; batches are chunked.
 *
 * Zero-shot recipe (CLIP's reference): for each class, encode every template filled with the class name,
 * L2-normalise each embedding, average them, and L2-normalise the mean. Logits are
 * `exp(logit_scale) · normalise(image) · classifierᵀ`.
 */
import { Graph } from '../graph/index.ts';
import { Engine, type SessionHandle } from '../runtime/engine.ts';
import type { Image } from '../data/types.ts';
import type { ClipConfig } from './config.ts';
import { loadClip, type LoadedClip } from './load.ts';
import { clipWeightSource, imageEncoder, textEncoder } from './model.ts';
import { preprocessBatch, type PreprocessConfig } from './preprocess.ts';
import type { ClipTokenizer } from './tokenizer.ts';
import type { ClipWeights } from './weights.ts';

/** A row-major matrix of embeddings or logits: `dims = [rows, cols]`. */
export interface Matrix {
  data: Float32Array;
  dims: [number, number];
}

/** Preprocessed pixels [B, 3, S, S] (normalised, CHW). */
export interface PixelBatch {
  data: Float32Array;
  dims: readonly number[];
}

export interface ClipModelOptions {
  /** Engine to run on (shared; not closed by {@link ClipModel.close}). Default: a new engine owned by the model. */
  engine?: Engine;
  /** Threads of an engine the model creates itself. */
  threads?: number;
  /** Images per run (default 32). */
  imageBatch?: number;
  /** Texts per run (default 256). */
  textBatch?: number;
}

/** Rows of a matrix as plain arrays (for JSON output). */
export function matrixRows(m: Matrix): number[][] {
  const [n, d] = m.dims;
  return Array.from({ length: n }, (_, i) => Array.from(m.data.subarray(i * d, (i + 1) * d)));
}

/** L2-normalises every row of `m` in place (rows of zeros stay zero) and returns it. */
export function normalizeRows(m: Matrix): Matrix {
  const [n, d] = m.dims;
  for (let i = 0; i < n; i++) {
    const row = m.data.subarray(i * d, (i + 1) * d);
    let s = 0;
    for (const x of row) s += x * x;
    const inv = s > 0 ? 1 / Math.sqrt(s) : 0;
    for (let j = 0; j < d; j++) row[j]! *= inv;
  }
  return m;
}

/** a · bᵀ for a [n, d] and b [m, d], times `scale`: [n, m] (float64 accumulation). */
export function scaledDots(a: Matrix, b: Matrix, scale = 1): Matrix {
  const [n, d] = a.dims;
  const [m, d2] = b.dims;
  if (d !== d2) throw new Error(`scaledDots: widths differ (${d} vs ${d2})`);
  const out = new Float32Array(n * m);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < m; j++) {
      let s = 0;
      for (let k = 0; k < d; k++) s += a.data[i * d + k]! * b.data[j * d + k]!;
      out[i * m + j] = scale * s;
    }
  }
  return { data: out, dims: [n, m] };
}

/** Row-wise softmax of a logits matrix (float64 arithmetic). */
export function softmaxRows(m: Matrix): Matrix {
  const [n, c] = m.dims;
  const out = new Float32Array(n * c);
  for (let i = 0; i < n; i++) {
    const row = m.data.subarray(i * c, (i + 1) * c);
    let mx = -Infinity;
    for (const x of row) mx = Math.max(mx, x);
    let s = 0;
    for (const x of row) s += Math.exp(x - mx);
    for (let j = 0; j < c; j++) out[i * c + j] = Math.exp(row[j]! - mx) / s;
  }
  return { data: out, dims: [n, c] };
}

let modelCounter = 0;

export class ClipModel {
  readonly config: ClipConfig;
  readonly weights: ClipWeights;
  readonly tokenizer: ClipTokenizer;
  readonly preprocess: PreprocessConfig;
  readonly engine: Engine;
  /** Where the model was loaded from (if it was). */
  readonly dir: string | undefined;
  private readonly ownsEngine: boolean;
  private readonly keyPrefix: string;
  private readonly imageBatch: number;
  private readonly textBatch: number;

  private constructor(loaded: Omit<LoadedClip, 'dir' | 'layout' | 'warnings'> & { dir?: string }, engine: Engine, ownsEngine: boolean, opts: ClipModelOptions) {
    this.config = loaded.config;
    this.weights = loaded.weights;
    this.tokenizer = loaded.tokenizer;
    this.preprocess = loaded.preprocess;
    this.dir = loaded.dir;
    this.engine = engine;
    this.ownsEngine = ownsEngine;
    this.keyPrefix = `clip#${++modelCounter}`;
    this.imageBatch = opts.imageBatch ?? 32;
    this.textBatch = opts.textBatch ?? 256;
  }

  /** Builds a model from parts already in memory (see {@link loadClip}). */
  static async fromParts(parts: Omit<LoadedClip, 'dir' | 'layout' | 'warnings'> & { dir?: string }, opts: ClipModelOptions = {}): Promise<ClipModel> {
    const engine = opts.engine ?? (await Engine.create(opts.threads !== undefined ? { threads: opts.threads } : {}));
    return new ClipModel(parts, engine, opts.engine === undefined, opts);
  }

  /** Loads a model folder (HF or open_clip layout) and prepares an engine. */
  static async load(dir: string, opts: ClipModelOptions = {}): Promise<ClipModel> {
    return ClipModel.fromParts(loadClip(dir), opts);
  }

  /** exp(logit_scale), the learned inverse temperature. */
  get logitScale(): number {
    return Math.exp(this.weights.get('logit_scale')!.data[0]!);
  }

  /** The session key of a tower's frozen float32 encoder (unique per model instance). */
  sessionKey(tower: 'image' | 'text'): string {
    return `${this.keyPrefix}/${tower}/f32`;
  }

  private imageSession(): Promise<SessionHandle> {
    return this.engine.session(this.sessionKey('image'), () => {
      const g = new Graph({ name: 'clip_image' });
      const W = clipWeightSource(g, this.weights);
      const s = this.config.vision.imageSize;
      g.output(imageEncoder(g, W, this.config, g.input('pixels', 'float32', ['batch', 3, s, s])), 'embeds');
      return g.toBytes();
    });
  }

  private textSession(): Promise<SessionHandle> {
    return this.engine.session(this.sessionKey('text'), () => {
      const g = new Graph({ name: 'clip_text' });
      const W = clipWeightSource(g, this.weights);
      g.output(textEncoder(g, W, this.config, g.input('ids', 'int64', ['batch', 'tokens'])), 'embeds');
      return g.toBytes();
    });
  }

  /** Resize, crop and normalise images with the model's preprocessing: [B, 3, S, S]. */
  preprocessImages(images: Image[]): PixelBatch {
    return preprocessBatch(images, this.preprocess);
  }

  /**
   * Image embeddings [B, embed], L2-normalised unless `normalize: false`. Accepts decoded images (preprocessed
   * here) or an already preprocessed pixel batch [B, 3, S, S].
   */
  async encodeImages(input: Image[] | PixelBatch, opts: { normalize?: boolean } = {}): Promise<Matrix> {
    const s = this.config.vision.imageSize;
    const per = 3 * s * s;
    let n: number;
    let pixelsOf: (start: number, end: number) => Float32Array;
    if (Array.isArray(input)) {
      n = input.length;
      pixelsOf = (a, b) => this.preprocessImages(input.slice(a, b)).data;
    } else {
      const d = input.dims;
      if (d.length !== 4 || d[1] !== 3 || d[2] !== s || d[3] !== s || input.data.length !== d[0]! * per) {
        throw new Error(`encodeImages: pixels must be [B,3,${s},${s}], got [${d.join(',')}] with ${input.data.length} values`);
      }
      n = d[0]!;
      pixelsOf = (a, b) => input.data.subarray(a * per, b * per);
    }
    const E = this.config.embedDim;
    const out = new Float32Array(n * E);
    if (n > 0) {
      const h = await this.imageSession();
      for (let a = 0; a < n; a += this.imageBatch) {
        const b = Math.min(n, a + this.imageBatch);
        const r = await this.engine.run(h, { pixels: { dtype: 'float32', dims: [b - a, 3, s, s], data: pixelsOf(a, b) } });
        out.set(r['embeds']!.data as Float32Array, a * E);
      }
    }
    const m: Matrix = { data: out, dims: [n, E] };
    return opts.normalize === false ? m : normalizeRows(m);
  }

  /** Token ids of each text, without padding, including SOT and EOT (truncated to the context length). */
  tokenize(texts: string[]): number[][] {
    const ctx = this.config.text.contextLength;
    const { ids, lengths } = this.tokenizer.tokenize(texts, ctx);
    return lengths.map((len, i) => Array.from(ids.subarray(i * ctx, i * ctx + len)));
  }

  /**
   * Text embeddings [N, embed], L2-normalised unless `normalize: false`. Each chunk is padded only to its longest
   * text (the causal mask makes the result independent of the padding length).
   */
  async encodeTexts(texts: string[], opts: { normalize?: boolean } = {}): Promise<Matrix> {
    const E = this.config.embedDim;
    const n = texts.length;
    const out = new Float32Array(n * E);
    if (n > 0) {
      const rows = this.tokenize(texts);
      const h = await this.textSession();
      for (let a = 0; a < n; a += this.textBatch) {
        const chunk = rows.slice(a, a + this.textBatch);
        const T = Math.max(...chunk.map((r) => r.length));
        const ids = new BigInt64Array(chunk.length * T);
        chunk.forEach((r, i) => r.forEach((id, j) => (ids[i * T + j] = BigInt(id))));
        const r = await this.engine.run(h, { ids: { dtype: 'int64', dims: [chunk.length, T], data: ids } });
        out.set(r['embeds']!.data as Float32Array, a * E);
      }
    }
    const m: Matrix = { data: out, dims: [n, E] };
    return opts.normalize === false ? m : normalizeRows(m);
  }

  /**
   * Zero-shot classifier weights [C, embed]: per class, every template (`{}` replaced by the class name) is
   * encoded and L2-normalised; the mean is L2-normalised again.
   */
  async zeroShotClassifier(classNames: readonly string[], templates: readonly string[] = ['a photo of a {}.']): Promise<Matrix> {
    if (templates.length === 0) throw new Error('zeroShotClassifier: no templates');
    const texts = classNames.flatMap((c) => templates.map((t) => fillTemplate(t, c)));
    const emb = await this.encodeTexts(texts);
    const E = this.config.embedDim;
    const K = templates.length;
    const out = new Float32Array(classNames.length * E);
    for (let c = 0; c < classNames.length; c++) {
      for (let k = 0; k < K; k++) {
        const row = emb.data.subarray((c * K + k) * E, (c * K + k + 1) * E);
        for (let j = 0; j < E; j++) out[c * E + j]! += row[j]! / K;
      }
    }
    return normalizeRows({ data: out, dims: [classNames.length, E] });
  }

  /** logit_scale.exp() · images · classifierᵀ for normalised image embeddings [N, e] and text weights [C, e]. */
  logits(images: Matrix, textWeights: Matrix): Matrix {
    return scaledDots(images, textWeights, this.logitScale);
  }

  /** Releases this model's sessions, and closes the engine when the model created it. */
  async close(): Promise<void> {
    if (this.ownsEngine) {
      await this.engine.close();
      return;
    }
    if (this.engine.closed) return;
    await this.engine.release(this.sessionKey('image'));
    await this.engine.release(this.sessionKey('text'));
  }
}

/** Replaces every `{}` in a prompt template with the class name; a template without `{}` is an error. */
export function fillTemplate(template: string, className: string): string {
  if (!template.includes('{}')) throw new Error(`prompt template ${JSON.stringify(template)} has no {} placeholder for the class name`);
  return template.replaceAll('{}', className);
}
