/**
 * The shared trainer of every trainable CLIP method (adapter-clip, lora-clip, finetune, er, lwf, ewc,
 * moe-adapters, cm-moe). A method supplies a {@link Peft} (which tensors exist, which train, and the graph hooks
 * that use them); the trainer owns the rest:
 *
 *   train step (one graph, one session.run):
 *     f = imageEncoder(pixels; hooks)          g_c = textEncoder(prompt_c; hooks)   for the visible classes c
 *     logits = exp(logit_scale) · normalise(f) · normalise(g)ᵀ                        [B, C]
 *     loss = (1−ε)·CE(logits, y) + ε·mean_c(−log softmax(logits)_c)  (+ the method's extra terms)
 *     AdamW (or SGD) on the Peft's trainable tensors, per-parameter step counts
 *   evaluation: image embeddings through the adapted image tower (optionally a per-sample router index), class
 *     weights through the adapted text tower with the template ensemble (per router), argmax among candidates.
 *
 * Tensors live in the engine's worker: the frozen backbone in one store per model (shared by every session and
 * method, never copied into a session), the trainable and frozen adapter tensors with their optimiser moments in
 * a {@link ResidentTrainState}. A step sends the batch (pixels, prompt ids, labels, noise) and gets back the
 * loss and the requested counters only.
 *
 * Visible classes (LifeLong-CLIP's `visible_classes`): `batch` — the classes present in the step's batch
 * (incoming + replay); `all` — every exposed class; `task` — the classes of the current task exposed so far
 * (MoE-Adapters trains on its task's classes only; without task boundaries this falls back to `batch`).
 * Training prompts use each class's first template (the reference's training template); evaluation uses every
 * template of the label's dataset.
 */
import { z } from 'zod';
import {
  Graph,
  type Tensor,
  add,
  buildTrainStep,
  crossEntropy,
  logSoftmax,
  matmul,
  mul,
  neg,
  normalize,
  reduceMean,
  transpose,
} from '../graph/index.ts';
import type { ClipHooks } from '../clip/model.ts';
import { imageEncoder, textEncoder } from '../clip/model.ts';
import type { ClipModel } from '../clip/clip.ts';
import { fillTemplate } from '../clip/clip.ts';
import type { Engine, SessionHandle, StoreHandle } from '../runtime/engine.ts';
import { ResidentTrainState } from '../runtime/resident-state.ts';
import { sessionKey } from '../runtime/session-key.ts';
import type { TensorData } from '../runtime/types.ts';
import type { Image } from '../data/types.ts';
import type { DetailedPrediction, MethodState, StreamView } from './method.ts';
import { jsonObject, prefixed, unprefixed } from './state.ts';
import { argmaxDot, softmaxDots } from './zeroshot-clip.ts';

/** Options every trainable CLIP method shares (merged into each method's schema). */
export const TrainerOptionsShape = {
  /** AdamW learning rate (LifeLong-CLIP's adapter/lora scripts: 5e-4). */
  lr: z.number({ error: 'expected a positive number' }).positive({ error: 'expected a positive number' }).default(5e-4),
  /** Decoupled weight decay (MoE-Adapters: 0). */
  weightDecay: z.number({ error: 'expected a number ≥ 0' }).min(0, { error: 'expected a number ≥ 0' }).default(0),
  /** Label smoothing ε of the cross-entropy (MoE-Adapters MTIL: 0.2; CIL and LifeLong-CLIP: 0). */
  labelSmoothing: z.number({ error: 'expected a number in [0, 1)' }).min(0).lt(1, { error: 'expected a number in [0, 1)' }).default(0),
  /** Classes whose prompts the training loss sees (see the module doc). */
  visibleClasses: z.enum(['batch', 'all', 'task'], { error: "expected 'batch', 'all' or 'task'" }).default('batch'),
  /** Linear warmup steps at the start of each task (0 = constant lr, the LifeLong-CLIP default scheduler). */
  warmupSteps: z.int({ error: 'expected an integer ≥ 0' }).min(0, { error: 'expected an integer ≥ 0' }).default(0),
  /** Clip the global gradient norm (0 = off). */
  clipNorm: z.number({ error: 'expected a number ≥ 0' }).min(0, { error: 'expected a number ≥ 0' }).default(0),
  /** Images per evaluation run. */
  evalBatchSize: z.int({ error: 'expected a positive integer' }).positive({ error: 'expected a positive integer' }).default(64),
};
export const TrainerOptionsSchema = z.strictObject(TrainerOptionsShape);
export type TrainerOptions = z.output<typeof TrainerOptionsSchema>;

/** Modes a Peft builds hooks for. */
export type PeftMode =
  | { kind: 'train' }
  /** Image tower for evaluation; `perSample` adds a per-sample router input (MoE with DDAS). */
  | { kind: 'eval-image'; perSample: boolean }
  /** Text tower for evaluation; `router` picks one router (MoE) or is ignored. */
  | { kind: 'eval-text'; router: number };

/** What a Peft sees while a graph is built. */
export interface PeftGraphContext {
  g: Graph;
  /** Graph tensors by name: backbone weights and the Peft's own tensors (declared as inputs on first use). */
  source: (name: string) => Tensor;
  mode: PeftMode;
  /** Prompt ids [C, T] in text graphs. */
  textIds?: Tensor;
}

/** What a Peft's hooks produce besides the towers' outputs. */
export interface PeftGraph {
  hooks: ClipHooks;
  /**
   * Called once both towers are built (hooks fill in their tensors while the towers are built): an extra scalar
   * loss (e.g. load balancing) and extra outputs to fetch (e.g. usage counters) by output name.
   */
  finish?: () => { extraLoss?: Tensor | null; outputs?: Record<string, Tensor> };
}

/** A parameter-efficient (or full) adaptation of CLIP: structure, tensors and graph hooks. */
export interface Peft {
  /** Structure of the graph for a mode (tensor sets, counts, routing): part of the session key. */
  structureKey(mode: PeftMode): string;
  /** Builds the hooks into a graph (declaring its own batch inputs such as noise). */
  build(ctx: PeftGraphContext): PeftGraph;
  /** Names of the tensors the current train graph updates (a subset of the state's tensors or backbone names). */
  trainableNames(): string[];
  /** Trainable tensors updated row by row (`<p>.rows` masks fed by `feeds`, `<p>.t` per row): stacked experts. */
  rowMasked?(): string[];
  /** Trainable tensors with per-row step counters `<p>.t` (a superset of `rowMasked`). */
  rowCounted?(): string[];
  /** Feeds for the inputs `build` declared, for one run of `mode`. */
  feeds(mode: PeftMode, sizes: { images: number; texts: number }, extra?: { routerIndex?: Int32Array }): Record<string, TensorData>;
  /** Receives the fetched `outputs` of a training step (e.g. to accumulate usage). */
  afterStep?(outputs: Record<string, TensorData>): void;
  /** Total parameters the Peft holds (for cost.json). */
  paramCount(): number;
  /** JSON-able state beyond its tensors (layout, current router, generators), for checkpoints. */
  saveState?(): unknown;
  loadState?(state: unknown, where: string): void;
}

/** A method's extra loss terms in the train graph (LwF distillation, EWC penalty). */
export interface LossExtension {
  key: string;
  /**
   * Classes whose prompts the step must also encode (e.g. LwF's old classes for distillation) although the CE
   * does not see them: they are appended to the visible classes and masked out of the CE (input `ce_bias`).
   */
  extraClasses?(visible: readonly number[]): number[];
  /** Adds terms; may declare inputs (fed by `feeds`) and outputs (e.g. Fisher updates named `<x>.next`). */
  build(args: { g: Graph; logits: Tensor; ce: Tensor; source: (name: string) => Tensor; params: Tensor[] }): { loss: Tensor; outputs?: Record<string, Tensor> };
  feeds(batch: { images: Image[]; labels: Int32Array; visible: readonly number[]; stream: StreamView }): Record<string, TensorData> | Promise<Record<string, TensorData>>;
}

const backboneStores = new WeakMap<ClipModel, Promise<StoreHandle>>();

/** The resident store of a model's frozen weights (one per model and engine, created on first use). */
export function backboneStore(model: ClipModel): Promise<StoreHandle> {
  let p = backboneStores.get(model);
  if (!p) {
    p = (async () => {
      const store = model.engine.createStore(`backbone:${model.sessionKey('image')}`);
      const tensors: Record<string, TensorData> = {};
      for (const [name, w] of model.weights) tensors[name] = { dtype: 'float32', dims: [...w.shape], data: w.data };
      await model.engine.putTensors(store, tensors);
      return store;
    })();
    backboneStores.set(model, p);
  }
  return p;
}

/** Templates an evaluation uses: the training prompt for prequential predictions, else the dataset's ensemble. */
export function templatesForPurpose(purpose: string | undefined): 'dataset' | 'first' {
  return purpose === 'online' ? 'first' : 'dataset';
}

/** Pads token rows with zeros to their longest row: int64 [N, T]. */
export function padIds(rows: readonly number[][]): TensorData {
  const T = Math.max(1, ...rows.map((r) => r.length));
  const ids = new BigInt64Array(rows.length * T);
  rows.forEach((r, i) => r.forEach((id, j) => (ids[i * T + j] = BigInt(id))));
  return { dtype: 'int64', dims: [rows.length, T], data: ids };
}

/** The classes a training step's loss sees. */
export function visibleClassesFor(mode: TrainerOptions['visibleClasses'], batchLabels: ArrayLike<number>, exposed: readonly number[], taskClasses: readonly number[] | null): number[] {
  if (mode === 'all') return [...exposed];
  const inBatch = new Set(Array.from(batchLabels));
  if (mode === 'task' && taskClasses) {
    const exp = new Set(exposed);
    const own = taskClasses.filter((c) => exp.has(c));
    // replay samples of earlier tasks keep their own classes visible
    for (const c of inBatch) if (!own.includes(c)) own.push(c);
    return own;
  }
  return exposed.filter((c) => inBatch.has(c));
}

/** One training step's input in model terms. */
export interface TrainStepInput {
  images: Image[];
  labels: Int32Array;
  visible: readonly number[];
  stream: StreamView;
}

/** Owns the sessions, state and evaluation caches of one trainable CLIP method. */
export class ClipTrainer {
  readonly state: ResidentTrainState;
  private backbone: StoreHandle | null = null;
  /** Bumped whenever trainable values change: invalidates cached class weights. */
  private version = 0;
  private readonly classCache = new Map<string, Float32Array>();
  private taskSteps = 0;
  /** Steps taken (all tasks). */
  steps = 0;

  constructor(
    readonly model: ClipModel,
    readonly options: TrainerOptions,
    readonly peft: Peft,
    readonly methodKey: string,
    public extension: LossExtension | null = null,
  ) {
    this.state = new ResidentTrainState(model.engine, { optimizer: 'adamw', name: `${methodKey}:state` });
  }

  get engine(): Engine {
    return this.model.engine;
  }

  /** Loads the backbone into its store (once per model). */
  async init(): Promise<void> {
    this.backbone ??= await backboneStore(this.model);
  }

  private stores(): StoreHandle[] {
    if (!this.backbone) throw new Error('ClipTrainer: init() was not called');
    return [this.backbone];
  }

  private teacher: StoreHandle | null = null;

  /** Copies the current trainable values into a frozen teacher (LwF); replaces an earlier teacher. */
  async setTeacher(): Promise<void> {
    const values = await this.state.get();
    if (!this.teacher) this.teacher = this.engine.createStore(`${this.methodKey}:teacher`);
    await this.engine.putTensors(this.teacher, values);
    this.classCache.forEach((_, k) => k.startsWith('t:') && this.classCache.delete(k));
  }

  get hasTeacher(): boolean {
    return this.teacher !== null;
  }

  /** Stores an evaluation reads: the teacher's or the current values, then the backbone. */
  private evalStores(teacher: boolean): StoreHandle[] {
    if (teacher && !this.teacher) throw new Error(`${this.methodKey}: no teacher set`);
    return [teacher ? this.teacher! : this.state.store, ...this.stores()];
  }

  /** Marks the trainable values as changed (class-weight caches are dropped). */
  touch(): void {
    this.version++;
    for (const k of [...this.classCache.keys()]) if (!k.startsWith('t:')) this.classCache.delete(k);
  }

  /** Restarts the warmup schedule (at a task boundary). */
  resetSchedule(): void {
    this.taskSteps = 0;
  }

  /** Shapes of a tensor by name, from the trainable state first, then the backbone. */
  private shapeOf(name: string): number[] {
    const own = this.engine.storeInfo(this.state.store).get(name);
    if (own) return own.dims;
    const w = this.model.weights.get(name);
    if (!w) throw new Error(`${this.methodKey}: no tensor named '${name}' in the trainable state or the backbone`);
    return w.shape;
  }

  /** A source that declares each used tensor as a graph input once. */
  private sourceFor(g: Graph): (name: string) => Tensor {
    const made = new Map<string, Tensor>();
    return (name: string) => {
      let t = made.get(name);
      if (!t) {
        t = g.input(name, 'float32', this.shapeOf(name));
        made.set(name, t);
      }
      return t;
    };
  }

  private logitScale(g: Graph): Tensor {
    return g.constant(this.model.logitScale, 'float32');
  }

  private trainKey(): string {
    return sessionKey({
      kind: 'clip-train',
      model: this.model.sessionKey('image'),
      method: this.methodKey,
      peft: this.peft.structureKey({ kind: 'train' }),
      trainable: [...this.peft.trainableNames()].sort(),
      ls: this.options.labelSmoothing,
      wd: this.options.weightDecay,
      clip: this.options.clipNorm,
      ext: this.extension?.key ?? null,
    });
  }

  private trainSession(): Promise<SessionHandle> {
    return this.engine.session(this.trainKey(), () => {
      const cfg = this.model.config;
      const g = new Graph({ name: `${this.methodKey}_train` });
      const S = cfg.vision.imageSize;
      const pixels = g.input('pixels', 'float32', ['batch', 3, S, S]);
      const ids = g.input('ids', 'int64', ['classes', 'tokens']);
      const labels = g.input('labels', 'int64', ['batch']);
      const source = this.sourceFor(g);
      const trainable = new Set(this.peft.trainableNames());
      const built = this.peft.build({ g, source, mode: { kind: 'train' }, textIds: ids });
      const img = imageEncoder(g, source, cfg, pixels, built.hooks);
      const txt = textEncoder(g, source, cfg, ids, built.hooks);
      const fin = built.finish?.() ?? {};
      const logits = mul(matmul(normalize(img, -1), transpose(normalize(txt, -1), [1, 0])), this.logitScale(g));
      // classes only an extension needs are masked out of the CE by a bias of −1e9 (0 elsewhere)
      const ceLogits = this.extension?.extraClasses ? add(logits, g.input('ce_bias', 'float32', ['classes'])) : logits;
      const ce = crossEntropy(ceLogits, labels);
      const eps = this.options.labelSmoothing;
      // label smoothing spreads over the CE's classes only
      const smooth = () => {
        if (!this.extension?.extraClasses) return neg(reduceMean(logSoftmax(logits, 1)));
        throw new Error(`${this.methodKey}: label smoothing with extension classes is not supported`);
      };
      let loss = eps > 0 ? add(mul(ce, 1 - eps), mul(smooth(), eps)) : ce;
      if (fin.extraLoss) loss = add(loss, fin.extraLoss);
      const params = [...trainable].sort().map((n) => source(n));
      const extOutputs: Record<string, Tensor> = {};
      if (this.extension) {
        const r = this.extension.build({ g, logits, ce, source, params });
        loss = r.loss;
        Object.assign(extOutputs, r.outputs ?? {});
      }
      buildTrainStep(g, {
        loss,
        params,
        optimizer: { kind: 'adamw', weightDecay: this.options.weightDecay },
        stepPerParam: true,
        rowMasks: (this.peft.rowMasked?.() ?? []).filter((n) => trainable.has(n)),
        rowCounters: (this.peft.rowCounted?.() ?? []).filter((n) => trainable.has(n)),
        ...(this.options.clipNorm > 0 ? { clipNorm: this.options.clipNorm } : {}),
        extraOutputs: { ...(fin.outputs ?? {}), ...extOutputs },
      });
      return g.toBytes();
    });
  }

  /** Token ids of each class's first template (the training prompt). */
  private trainPrompts(visible: readonly number[], stream: StreamView): TensorData {
    const texts = visible.map((c) => {
      const name = stream.classNames[c];
      if (name === undefined) throw new Error(`${this.methodKey}: label ${c} has no class name`);
      const t = stream.templatesFor(c)[0] ?? 'a photo of a {}.';
      return fillTemplate(t, name);
    });
    return padIds(this.model.tokenize(texts));
  }

  /** One optimiser step; returns the loss. */
  async step(input: TrainStepInput): Promise<number> {
    await this.init();
    const { images, labels, stream } = input;
    const own = new Set(input.visible);
    const extra = (this.extension?.extraClasses?.(input.visible) ?? []).filter((c) => !own.has(c));
    const visible = [...input.visible, ...extra];
    const col = new Map(visible.map((c, i) => [c, i]));
    const y = new BigInt64Array(labels.length);
    labels.forEach((l, i) => {
      const j = col.get(l);
      if (j === undefined) throw new Error(`${this.methodKey}: label ${l} is not among the visible classes`);
      y[i] = BigInt(j);
    });
    const px = this.model.preprocessImages(images);
    const ids = this.trainPrompts(visible, stream);
    const feeds: Record<string, TensorData> = {
      pixels: { dtype: 'float32', dims: [...px.dims], data: px.data },
      ids,
      labels: { dtype: 'int64', dims: [labels.length], data: y },
      ...this.peft.feeds({ kind: 'train' }, { images: images.length, texts: visible.length }),
      ...(this.extension ? await this.extension.feeds({ images, labels, visible, stream }) : {}),
      ...(this.extension?.extraClasses ? { ce_bias: { dtype: 'float32', dims: [visible.length], data: Float32Array.from(visible, (_, i) => (i < input.visible.length ? 0 : -1e9)) } } : {}),
    };
    const h = await this.trainSession();
    const warm = this.options.warmupSteps;
    const lr = warm > 0 ? this.options.lr * Math.min(1, (this.taskSteps + 1) / warm) : this.options.lr;
    const fetch = h.outputNames.filter((n) => !n.endsWith('.next'));
    const out = await this.state.trainStep(h, feeds, { lr, fetch, stores: this.stores() });
    this.peft.afterStep?.(out);
    this.taskSteps++;
    this.steps++;
    this.touch();
    return (out['loss']!.data as Float32Array)[0]!;
  }

  private evalImageSession(perSample: boolean): Promise<SessionHandle> {
    const mode: PeftMode = { kind: 'eval-image', perSample };
    return this.engine.session(
      sessionKey({ kind: 'clip-eval-image', model: this.model.sessionKey('image'), method: this.methodKey, peft: this.peft.structureKey(mode) }),
      () => {
        const cfg = this.model.config;
        const g = new Graph({ name: `${this.methodKey}_eval_image` });
        const S = cfg.vision.imageSize;
        const pixels = g.input('pixels', 'float32', ['batch', 3, S, S]);
        const source = this.sourceFor(g);
        const built = this.peft.build({ g, source, mode });
        g.output(normalize(imageEncoder(g, source, cfg, pixels, built.hooks), -1), 'embeds');
        return g.toBytes();
      },
    );
  }

  private evalTextSession(router: number): Promise<SessionHandle> {
    const mode: PeftMode = { kind: 'eval-text', router };
    return this.engine.session(
      sessionKey({ kind: 'clip-eval-text', model: this.model.sessionKey('image'), method: this.methodKey, peft: this.peft.structureKey(mode) }),
      () => {
        const cfg = this.model.config;
        const g = new Graph({ name: `${this.methodKey}_eval_text` });
        const ids = g.input('ids', 'int64', ['batch', 'tokens']);
        const source = this.sourceFor(g);
        const built = this.peft.build({ g, source, mode, textIds: ids });
        g.output(normalize(textEncoder(g, source, cfg, ids, built.hooks), -1), 'embeds');
        return g.toBytes();
      },
    );
  }

  /** Unit-norm image embeddings through the adapted image tower (`routerIndex`: per-sample router, −1 = none). */
  async imageEmbeddings(images: Image[], routerIndex?: Int32Array, teacher = false): Promise<Float32Array[]> {
    await this.init();
    const out: Float32Array[] = [];
    if (images.length === 0) return out;
    const perSample = routerIndex !== undefined;
    const h = await this.evalImageSession(perSample);
    const E = this.model.config.embedDim;
    const bs = this.options.evalBatchSize;
    for (let a = 0; a < images.length; a += bs) {
      const chunk = images.slice(a, a + bs);
      const px = this.model.preprocessImages(chunk);
      const feeds: Record<string, TensorData> = {
        pixels: { dtype: 'float32', dims: [...px.dims], data: px.data },
        ...this.peft.feeds({ kind: 'eval-image', perSample }, { images: chunk.length, texts: 0 }, perSample ? { routerIndex: routerIndex.subarray(a, a + chunk.length) } : {}),
      };
      const r = await this.engine.run(h, feeds, ['embeds'], { stores: this.evalStores(teacher) });
      const d = r['embeds']!.data as Float32Array;
      for (let i = 0; i < chunk.length; i++) out.push(d.slice(i * E, (i + 1) * E));
    }
    return out;
  }

  /** Class weights (template ensemble, unit norm) through the adapted text tower with `router`; cached until the next step. */
  async classWeights(labels: readonly number[], stream: StreamView, router = 0, teacher = false, templates: 'dataset' | 'first' = 'dataset'): Promise<Float32Array[]> {
    await this.init();
    const tag = `${teacher ? 't:' : ''}${templates === 'first' ? 'f:' : ''}${router}`;
    const missing = [...new Set(labels.filter((c) => !this.classCache.has(`${tag}:${c}`)))];
    if (missing.length > 0) {
      const texts: string[] = [];
      const counts: number[] = [];
      for (const c of missing) {
        const name = stream.classNames[c];
        if (name === undefined) throw new Error(`${this.methodKey}: label ${c} has no class name`);
        const ts = stream.templatesFor(c);
        const all = ts.length > 0 ? ts : ['a photo of a {}.'];
        const use = templates === 'first' ? all.slice(0, 1) : all;
        for (const t of use) texts.push(fillTemplate(t, name));
        counts.push(use.length);
      }
      const h = await this.evalTextSession(router);
      const E = this.model.config.embedDim;
      const rows = this.model.tokenize(texts);
      const emb = new Float32Array(texts.length * E);
      const bs = 256;
      for (let a = 0; a < rows.length; a += bs) {
        const ids = padIds(rows.slice(a, a + bs));
        const r = await this.engine.run(h, { ids, ...this.peft.feeds({ kind: 'eval-text', router }, { images: 0, texts: ids.dims[0]! }) }, ['embeds'], {
          stores: this.evalStores(teacher),
        });
        emb.set(r['embeds']!.data as Float32Array, a * E);
      }
      let k = 0;
      missing.forEach((c, i) => {
        const w = new Float64Array(E);
        for (let j = 0; j < counts[i]!; j++, k++) for (let d = 0; d < E; d++) w[d]! += emb[k * E + d]!;
        let s = 0;
        for (const x of w) s += x * x;
        const inv = s > 0 ? 1 / Math.sqrt(s) : 0;
        this.classCache.set(`${tag}:${c}`, Float32Array.from(w, (x) => x * inv));
      });
    }
    return labels.map((c) => this.classCache.get(`${tag}:${c}`)!);
  }

  /** Argmax among `candidates` of each image's dot product with the class weights of its router. */
  static classify(features: readonly Float32Array[], candidates: readonly number[], weightsFor: (i: number) => readonly Float32Array[]): Int32Array {
    const out = new Int32Array(features.length).fill(-1);
    features.forEach((f, i) => {
      const best = argmaxDot(f, weightsFor(i));
      if (best >= 0) out[i] = candidates[best]!;
    });
    return out;
  }

  /**
   * Predicts with one router (or none) for every image. Prequential (`online`) predictions, made before every
   * training step, use each class's first template only (the training prompt, as LifeLong-CLIP's online
   * evaluation): the ensemble would re-encode every exposed class × template after every step.
   */
  async predict(images: Image[], candidates: readonly number[], stream: StreamView, router = 0, purpose?: string): Promise<Int32Array> {
    if (images.length === 0 || candidates.length === 0) return new Int32Array(images.length).fill(-1);
    const W = await this.classWeights(candidates, stream, router, false, templatesForPurpose(purpose));
    const fs = await this.imageEmbeddings(images);
    return ClipTrainer.classify(fs, candidates, () => W);
  }

  /** {@link predict} with the probabilities softmax(exp(logit_scale) · cosine) over the candidates. */
  async predictDetailed(images: Image[], candidates: readonly number[], stream: StreamView, router = 0, purpose?: string): Promise<DetailedPrediction> {
    if (images.length === 0 || candidates.length === 0) return { labels: new Int32Array(images.length).fill(-1), probs: new Float64Array(images.length * candidates.length) };
    const W = await this.classWeights(candidates, stream, router, false, templatesForPurpose(purpose));
    const fs = await this.imageEmbeddings(images);
    return { labels: ClipTrainer.classify(fs, candidates, () => W), probs: softmaxDots(fs, () => W, this.model.logitScale) };
  }

  /** Logits [B, C] of the teacher (exp(logit_scale)·f·wᵀ) for `images` over `classes` (template ensemble). */
  async teacherLogits(images: Image[], classes: readonly number[], stream: StreamView): Promise<Float32Array> {
    const W = await this.classWeights(classes, stream, 0, true);
    const fs = await this.imageEmbeddings(images, undefined, true);
    const C = classes.length;
    const out = new Float32Array(images.length * C);
    const scale = this.model.logitScale;
    fs.forEach((f, i) => W.forEach((w, j) => {
      let s = 0;
      for (let d = 0; d < f.length; d++) s += f[d]! * w[d]!;
      out[i * C + j] = scale * s;
    }));
    return out;
  }

  /**
   * The trainer's state: the resident state (params, moments, per-parameter and per-row counters) as `state/`,
   * `counter/`, every other tensor of its store (e.g. EWC's Fisher) as `extra/`, the teacher as `teacher/`, the
   * step counts and the Peft's own state.
   */
  async saveState(): Promise<MethodState> {
    const snap = await this.state.snapshot();
    const known = new Set(this.state.stateNames);
    const extraNames = [...this.engine.storeInfo(this.state.store).keys()].filter((n) => !known.has(n));
    const extra = extraNames.length > 0 ? await this.engine.getTensors(this.state.store, extraNames) : {};
    const teacherNames = this.teacher ? [...this.engine.storeInfo(this.teacher).keys()] : [];
    const teacher = this.teacher && teacherNames.length > 0 ? await this.engine.getTensors(this.teacher, teacherNames) : {};
    return {
      tensors: { ...prefixed('state/', snap.tensors), ...prefixed('counter/', snap.counters ?? {}), ...prefixed('extra/', extra), ...prefixed('teacher/', teacher) },
      json: { optimizer: snap.optimizer, momentum: snap.momentum, t: snap.t, steps: this.steps, taskSteps: this.taskSteps, teacher: this.teacher !== null, peft: this.peft.saveState?.() ?? null },
    };
  }

  /** Makes this trainer (same model, options and Peft kind) equal to one that saved `s`. */
  async loadState(s: MethodState, where = 'trainer'): Promise<void> {
    const j = jsonObject(s.json, where);
    const int = (k: string) => {
      const v = j[k];
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw new Error(`${where}.${k}: expected an integer ≥ 0, got ${JSON.stringify(v)}`);
      return v;
    };
    await this.init();
    await this.state.restore(
      {
        optimizer: j['optimizer'] as 'adamw',
        momentum: j['momentum'] === true,
        t: jsonObject(j['t'], `${where}.t`) as Record<string, number>,
        tensors: unprefixed('state/', s.tensors),
        counters: unprefixed('counter/', s.tensors),
      },
      where,
    );
    const known = new Set(this.state.stateNames);
    const stale = [...this.engine.storeInfo(this.state.store).keys()].filter((n) => !known.has(n));
    if (stale.length > 0) await this.engine.deleteTensors(this.state.store, stale);
    const extra = unprefixed('extra/', s.tensors);
    if (Object.keys(extra).length > 0) await this.engine.putTensors(this.state.store, extra);
    if (j['teacher'] === true) {
      this.teacher ??= this.engine.createStore(`${this.methodKey}:teacher`);
      const old = [...this.engine.storeInfo(this.teacher).keys()];
      if (old.length > 0) await this.engine.deleteTensors(this.teacher, old);
      await this.engine.putTensors(this.teacher, unprefixed('teacher/', s.tensors));
    }
    this.steps = int('steps');
    this.taskSteps = int('taskSteps');
    if (j['peft'] !== null && j['peft'] !== undefined) {
      if (!this.peft.loadState) throw new Error(`${where}.peft: this method's adaptation keeps no state`);
      this.peft.loadState(j['peft'], `${where}.peft`);
    }
    this.classCache.clear();
    this.touch();
  }

  async dispose(): Promise<void> {
    if (this.teacher) await this.engine.releaseStore(this.teacher);
    await this.state.dispose();
  }
}
