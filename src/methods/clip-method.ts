/**
 * The method shell shared by trainable CLIP methods: `observe` → one {@link ClipTrainer} step on the batch (with
 * the runner's replay samples concatenated), `predict` → the adapted model's
 * prompt classifier. Method files only choose a {@link Peft}, options, and task-boundary behaviour.
 */
import { z } from 'zod';
import type { Image } from '../data/types.ts';
import type { TensorData } from '../runtime/types.ts';
import type { Rng } from '../util/rng.ts';
import type { MethodDefinition } from './registry.ts';
import type { CostInfo, DetailedPrediction, Method, MethodEnv, MethodState, MethodStateContext, ObserveContext, ObserveResult, PredictContext, TaskContext, TaskInfo, TrainBatch } from './method.ts';
import { jsonObject, prefixed, unprefixed } from './state.ts';
import { acquireClip, DEFAULT_CLIP_MODEL_DIR, type ClipLease } from './clip-resources.ts';
import { ClipTrainer, visibleClassesFor, type Peft, type TrainerOptions } from './clip-trainer.ts';

export interface TrainableClipParts {
  name: string;
  options: TrainerOptions & { model: string };
  peft: (lease: ClipLease) => Peft | Promise<Peft>;
  /** Reservoir replay the method asks for when the run config sets no memory (`er`). */
  replay?: { capacity: number; batchSize: number } | null;
}

/** A trainable CLIP method; subclasses add task-boundary behaviour. */
export class TrainableClipMethod implements Method {
  readonly name: string;
  task: TaskInfo | null = null;
  /** Replay the method asks for when the run config has none (`er`). */
  readonly replayRequest: { capacity: number; batchSize: number } | undefined;

  constructor(
    readonly lease: ClipLease,
    readonly trainer: ClipTrainer,
    readonly parts: TrainableClipParts,
  ) {
    this.name = parts.name;
    this.replayRequest = parts.replay && parts.replay.capacity > 0 ? { ...parts.replay } : undefined;
  }

  get peft(): Peft {
    return this.trainer.peft;
  }

  async beginTask(task: TaskInfo, _ctx: TaskContext): Promise<void> {
    this.task = task;
    this.trainer.resetSchedule();
  }

  async endTask(_task: TaskInfo, _ctx: TaskContext): Promise<void> {}

  async observe(batch: TrainBatch, ctx: ObserveContext): Promise<ObserveResult> {
    const { images, labels } = batch;
    const taskClasses = ctx.task ? ctx.task.classes : null;
    const visible = visibleClassesFor(this.parts.options.visibleClasses, labels, ctx.exposedClasses, taskClasses);
    const loss = await this.trainer.step({ images, labels, visible, stream: ctx });
    return { loss };
  }

  async predict(images: Image[], candidates: readonly number[], ctx: PredictContext): Promise<Int32Array> {
    return this.trainer.predict(images, candidates, ctx, 0, ctx.purpose);
  }

  /** {@link predict} with probabilities (no routes). */
  predictDetailed(images: Image[], candidates: readonly number[], ctx: PredictContext): Promise<DetailedPrediction> {
    return this.trainer.predictDetailed(images, candidates, ctx, 0, ctx.purpose);
  }

  describeCost(): CostInfo {
    const backbone = this.lease.features.backboneParams;
    const own = this.peft.paramCount();
    const trainable = this.trainer.state.paramCount;
    return { trainableParams: trainable, totalParams: backbone + own, extra: { adaptationParams: own, steps: this.trainer.steps } };
  }

  /** The trainer's state (`trainer`), the current task, and a subclass's own state (`own/` tensors, `own` JSON). */
  async saveState(ctx: MethodStateContext): Promise<MethodState> {
    const tr = await this.trainer.saveState();
    const own = await this.saveOwnState(ctx);
    return { tensors: { ...tr.tensors, ...prefixed('own/', own.tensors) }, json: { method: this.name, task: this.task, trainer: tr.json, own: own.json } };
  }

  async loadState(state: MethodState, ctx: MethodStateContext): Promise<void> {
    const j = jsonObject(state.json, `${this.name} state`);
    if (j['method'] !== this.name) throw new Error(`${this.name} state: saved by method ${JSON.stringify(j['method'])}`);
    const own = new Set(Object.keys(state.tensors).filter((n) => n.startsWith('own/')));
    const trainerTensors = Object.fromEntries(Object.entries(state.tensors).filter(([n]) => !own.has(n)));
    await this.trainer.loadState({ tensors: trainerTensors, json: jsonObject(j['trainer'], `${this.name} state.trainer`) }, `${this.name} state.trainer`);
    this.task = (j['task'] ?? null) as TaskInfo | null;
    await this.loadOwnState({ tensors: unprefixed('own/', state.tensors), json: jsonObject(j['own'] ?? {}, `${this.name} state.own`) }, ctx);
  }

  /** A subclass's state beyond the trainer's (default: none). */
  protected async saveOwnState(_ctx: MethodStateContext): Promise<MethodState> {
    return { tensors: {}, json: {} };
  }

  /** Restores {@link saveOwnState}'s output; runs after the trainer (and its Peft) are restored. */
  protected async loadOwnState(_state: MethodState, _ctx: MethodStateContext): Promise<void> {}

  async dispose(): Promise<void> {
    await this.trainer.dispose();
    await this.lease.release();
  }
}

/** Acquires the model, builds the Peft and trainer, and wraps them in `Ctor`. */
export async function createTrainableClip<M extends TrainableClipMethod>(
  env: MethodEnv,
  parts: TrainableClipParts,
  Ctor: new (lease: ClipLease, trainer: ClipTrainer, parts: TrainableClipParts) => M = TrainableClipMethod as never,
): Promise<M> {
  const lease = await acquireClip(env, parts.options.model, parts.name);
  try {
    const peft = await parts.peft(lease);
    const trainer = new ClipTrainer(lease.features.model, parts.options, peft, parts.name);
    await trainer.init();
    const m = new Ctor(lease, trainer, parts);
    return m;
  } catch (e) {
    await lease.release();
    throw e;
  }
}

/** What a method's Peft factory returns. */
export interface PeftParts {
  peft: Peft;
  init: Record<string, TensorData>;
  after?: Record<string, TensorData>;
}

/** Options every trainable CLIP method has besides the trainer's: the model folder. */
export const ModelOptionShape = {
  /** CLIP model folder (HF or open_clip layout); relative to the config file. Default: the embedded model. */
  model: z.string().min(1, { error: 'expected a model folder' }).default(DEFAULT_CLIP_MODEL_DIR),
};

/** Which towers and blocks an adaptation touches (error messages name `method.towers` / `method.blocks`). */
export const SitesOptionShape = {
  towers: z.array(z.enum(['image', 'text'], { error: "expected 'image' or 'text'" })).min(1, { error: 'expected at least one tower' }).default(['image', 'text']),
  /** `all`, `{ last: N }` or a list of block indices (0-based), per tower. */
  blocks: z
    .union([z.literal('all'), z.strictObject({ last: z.int().positive() }), z.array(z.int().min(0)).min(1)], {
      error: "expected 'all', { last: N } or a list of block indices",
    })
    .default('all'),
};

/**
 * Defines a trainable CLIP method from its option schema, its Peft factory (which also returns the initial
 * trainable tensors), and optionally a method class with task-boundary behaviour (which may set the trainer's
 * loss extension, as LwF and EWC do).
 */
export function defineClipMethod<S extends z.ZodType<TrainerOptions & { model: string }>>(def: {
  name: string;
  summary: string;
  schema: S;
  /** `init`: trainable tensors added to the state; `after`: store tensors written after them (e.g. per-row step counters). */
  peft: (options: z.output<S>, lease: ClipLease, rng: Rng) => PeftParts | Promise<PeftParts>;
  replay?: (options: z.output<S>) => { capacity: number; batchSize: number } | null;
  Ctor?: new (lease: ClipLease, trainer: ClipTrainer, parts: TrainableClipParts) => TrainableClipMethod;
}): MethodDefinition<S> {
  return {
    summary: def.summary,
    schema: def.schema,
    async create(options, env: MethodEnv) {
      const o = options as z.output<S>;
      let init: Record<string, TensorData> = {};
      let after: Record<string, TensorData> = {};
      const parts: TrainableClipParts = {
        name: def.name,
        options: o,
        peft: async (lease) => {
          let r: PeftParts;
          try {
            r = await def.peft(o, lease, env.rng.fork());
          } catch (e) {
            // site selection errors name the config field (the layout only knows its own option names)
            const m = /^MoeLayout: ((?:blocks|towers)\S*:? .*)$/.exec((e as Error).message);
            if (m) throw new Error(`method.${m[1]} (model ${lease.features.model.dir ?? parts.options.model})`);
            throw e;
          }
          init = r.init;
          after = r.after ?? {};
          return r.peft;
        },
        replay: def.replay?.(o) ?? null,
      };
      const m = await createTrainableClip(env, parts, def.Ctor ?? TrainableClipMethod);
      try {
        if (Object.keys(init).length > 0) await m.trainer.state.add(init);
        if (Object.keys(after).length > 0) await m.trainer.engine.putTensors(m.trainer.state.store, after);
      } catch (e) {
        await m.dispose();
        throw e;
      }
      return m;
    },
  };
}
