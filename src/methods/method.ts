/**
 * The contract between the online runner and a continual-learning method (Mammoth-style: one small file per
 * method, each with a zod option schema, registered by name in `registry.ts`).
 *
 * Life cycle, driven by `src/run/runner.ts` for one pass over a stream:
 *
 *   create(options, env)
 *   for each task t:
 *     beginTask(t)                       -- only when the run exposes task boundaries
 *     for each incoming batch:
 *       predict(batch)                   -- prequential accuracy, before any training on it
 *       observe(batch ⊕ replay) × steps  -- `onlineIter` steps, each re-materialised / re-augmented
 *       (runner updates the replay memory)
 *       predict(test chunks)             -- anytime evaluation every `evalPeriod` samples
 *     endTask(t)                         -- only when the run exposes task boundaries
 *     predict(test chunks)               -- end-of-task evaluation (always)
 *   dispose()
 *
 * All hooks are async so that methods may run ONNX sessions, hold an engine and a model, or train.
 */
import type { Image, StreamItem } from '../data/types.ts';
import type { ReplayItemRef, ReplayMemory } from '../data/replay.ts';
import type { TensorData } from '../runtime/types.ts';
import type { Rng } from '../util/rng.ts';

/** What a method is told about a task when boundaries are visible. */
export interface TaskInfo {
  /** Task index in stream order (0-based). */
  id: number;
  /** Human-readable name from the stream, e.g. `mnist rot=45`. */
  name: string;
  /** Global labels occurring in this task's training samples. */
  classes: readonly number[];
  /** Number of training samples in the task. */
  size: number;
  /** Number of tasks in the stream. */
  numTasks: number;
}

/**
 * One training step's input. The first `numIncoming` entries are the incoming stream samples; the rest come
 * from the replay memory. `images[i]` is the (augmented) image of `items[i]`, `labels[i] === items[i].label`.
 */
export interface TrainBatch {
  images: Image[];
  labels: Int32Array;
  items: StreamItem[];
  numIncoming: number;
}

/** Facts about the stream that every hook may use. */
export interface StreamView {
  /** Global class names (index = label). */
  readonly classNames: readonly string[];
  /** Prompt templates (with `{}`) for a global label. */
  templatesFor(label: number): readonly string[];
  /** Stream kind (`class-incremental`, `si-blurry`, `domain`, `multi-dataset`). */
  readonly kind: string;
  /**
   * The images of stream items (e.g. replay samples) through their task's train transform (`train`, drawing from
   * `rng`) or deterministic test transform. Present when the runner drives the method.
   */
  materialize?(items: readonly StreamItem[], train: boolean, rng: Rng): Image[];
}

/** Context of one `observe` call. */
export interface ObserveContext extends StreamView {
  /** The method's own random stream (forked from the run seed). */
  rng: Rng;
  /** The run's replay memory (`null` when the run has none). Read it; the runner updates it after the steps. */
  memory: ReplayMemory | null;
  /** Index of this step among the steps on the current incoming batch (0-based; `online_iter` index). */
  step: number;
  /** Number of steps on the current incoming batch. */
  stepsThisBatch: number;
  /** Labels exposed so far (in order of first appearance), including this batch's classes. */
  exposedClasses: readonly number[];
  /** Stream samples seen before this batch. */
  samplesSeen: number;
  /** Index of the incoming batch in the stream (0-based, across tasks). */
  batchIndex: number;
  /** The current task, or `null` when the run hides task boundaries. */
  task: TaskInfo | null;
  /** Reports time spent in a method-specific phase (e.g. `merge`, `finetune`); shows up in cost.json. */
  reportPhase(name: string, ms: number): void;
}

/** Context of a `predict` call. */
export interface PredictContext extends StreamView {
  /** Labels exposed so far. */
  exposedClasses: readonly number[];
  /** Why the runner predicts: prequential (`online`), `anytime`, `task_end` or `baseline` (before training). */
  purpose: 'online' | 'anytime' | 'task_end' | 'baseline';
  /** Reports time spent in a method-specific phase. */
  reportPhase(name: string, ms: number): void;
}

/** Context of `beginTask`/`endTask`. */
export interface TaskContext extends StreamView {
  rng: Rng;
  memory: ReplayMemory | null;
  exposedClasses: readonly number[];
  samplesSeen: number;
  reportPhase(name: string, ms: number): void;
}

/** Optional result of a training step (logged with the batch event). */
export interface ObserveResult {
  /** Training loss of the step. */
  loss?: number;
  /** Any scalar diagnostics (e.g. number of experts). */
  info?: Record<string, number | string | boolean>;
}

/** Parameter counts a method reports for cost.json. */
export interface CostInfo {
  /** Parameters updated by training. */
  trainableParams: number;
  /** All parameters the method holds (frozen backbone included). */
  totalParams: number;
  /** Anything else worth reporting (experts, subnets, adapter params, state floats...). */
  extra?: Record<string, number>;
}

/** An online continual learner. */
export interface Method {
  readonly name: string;
  /**
   * Replay the method needs (e.g. `er`): when the run config sets no memory (`run.memory.capacity: 0`), the
   * experiment gives the runner a reservoir memory of this capacity and draws `batchSize` samples per step.
   */
  readonly replayRequest?: { capacity: number; batchSize: number } | undefined;
  /** Called at the start of each task, only when the run exposes task boundaries. */
  beginTask?(task: TaskInfo, ctx: TaskContext): Promise<void>;
  /** One online training step on `batch` (incoming samples first, replay samples after). */
  observe(batch: TrainBatch, ctx: ObserveContext): Promise<ObserveResult | void>;
  /** Called at the end of each task, only when the run exposes task boundaries. */
  endTask?(task: TaskInfo, ctx: TaskContext): Promise<void>;
  /**
   * Predicts one global label per image, chosen among `candidates` (global labels). A method that cannot
   * decide (e.g. no class mean yet) returns -1, which counts as wrong.
   */
  predict(images: Image[], candidates: readonly number[], ctx: PredictContext): Promise<Int32Array>;
  /** {@link predict} with probabilities and, for methods that route, the route of each image (learner exports). */
  predictDetailed?(images: Image[], candidates: readonly number[], ctx: PredictContext): Promise<DetailedPrediction>;
  /** Parameter counts for cost.json. */
  describeCost(): CostInfo;
  /**
   * Everything the method needs to continue exactly where it is (weights, optimiser moments, counters, frozen
   * sets, autoencoders, detector state, its own generators), for checkpoints and exports. A method without it
   * cannot be checkpointed.
   */
  saveState?(ctx: MethodStateContext): Promise<MethodState>;
  /** Makes a freshly created method (same options, same stream) equal to the one that saved `state`. */
  loadState?(state: MethodState, ctx: MethodStateContext): Promise<void>;
  /** Releases sessions, engines, buffers. */
  dispose?(): Promise<void>;
}

/** What {@link Method.predictDetailed} returns for B images among C candidates. */
export interface DetailedPrediction {
  /** The labels {@link Method.predict} returns (-1 = abstain). */
  labels: Int32Array;
  /** [B, C] row-major, candidates in the order given; each row sums to 1 (all 0 for an abstention). */
  probs: Float64Array;
  /** The router (subnet) that answered each image, -1 = plain zero-shot CLIP; absent for methods without routing. */
  routes?: Int32Array;
}

/** Maps images to feature vectors (e.g. a CLIP image encoder); one Float32Array per image, same length. */
export type FeatureFn = (images: Image[]) => Promise<Float32Array[]>;

/**
 * What the caller provides when creating a method: the stream's facts, a seeded rng, and named resources
 * (feature extractors, engines, models) that CLIP-based methods look up by name.
 */
export interface MethodEnv {
  stream: StreamView;
  rng: Rng;
  /** Named feature extractors, e.g. `{ 'clip-image': fn }`; NCM's `features: 'clip-image'` looks one up. */
  featureFns?: Readonly<Record<string, FeatureFn>>;
  /** Any other named resources (an ONNX engine, a loaded model, a folder with weights...). */
  resources?: Readonly<Record<string, unknown>>;
  /** Folder against which a method resolves relative paths in its options (the config file's folder). */
  baseDir?: string;
}

/** A method's saved state: tensors (stored as safetensors) and JSON-able data (stored as JSON). */
export interface MethodState {
  tensors: Record<string, TensorData>;
  json: Record<string, unknown>;
}

/** What `saveState` / `loadState` may use besides the method itself. */
export interface MethodStateContext {
  /** The run's replay memory (restored before `loadState` runs), `null` when the run has none or for exports. */
  memory: ReplayMemory | null;
  /** The stream item a reference names (state that refers to samples, e.g. of the replay memory). */
  resolveItem(ref: ReplayItemRef): StreamItem;
}
