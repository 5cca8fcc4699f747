/**
 * `moe-adapters` — MoE-Adapters4CL (Yu et al., CVPR 2024), online: bottleneck experts parallel to the MLP of
 * every chosen block of both towers, noisy top-k routers, incremental activate-freeze, and DDAS.
 *
 * Configurations (the paper's two, as presets/methods/moe-adapters-{mtil,cil}.yaml):
 * - MTIL (the defaults): 22 experts, top-2, a router per task, at each task end the 2 most used experts of that
 *   task's router are frozen per block (they stay routable by every router and never change again), DDAS picks
 *   the router per test sample or sends it to plain zero-shot CLIP;
 * - CIL: 2 experts, top-2, one router, no freezing, no DDAS.
 *
 * `routers: auto` and `ddas: auto` resolve per stream (rule documented in docs/moe.md): on a multi-dataset
 * stream (MTIL: each task its own image distribution) a router per task and DDAS; on a single-dataset stream
 * (class-incremental, Si-Blurry, domain) ONE shared router and no DDAS — there every task draws from the same
 * image distribution, so an autoencoder cannot tell tasks apart and would send the tasks' own test data to
 * zero-shot or to the wrong router; activate-freeze stays on (it protects each task's most used experts).
 * Without task boundaries there is one router and no freezing.
 *
 * Training follows the reference: cross-entropy with the frozen logit scale over the current task's classes
 * (`visibleClasses: task`), label smoothing 0.2 (MTIL), AdamW with weight decay 0; the text prompts run through
 * the adapted text tower every step. DDAS autoencoders train online on the frozen model's image embeddings of
 * the incoming samples, one Adam step per incoming batch.
 */
import { z } from 'zod';
import type { Image } from '../data/types.ts';
import type { TensorData } from '../runtime/types.ts';
import { Ddas } from '../moe/ddas.ts';
import { MoeLayout, type MoeSite } from '../moe/layout.ts';
import { buildMoeHooks, DROPOUT_SEED_INPUT, noiseInputName, ROUTER_INDEX_INPUT, STACK_PARTS, stackedTensorName, stackExpertData } from '../moe/hooks.ts';
import type { Rng, RngSnapshot } from '../util/rng.ts';
import { jsonObject } from './state.ts';
import { ClipTrainer, templatesForPurpose, TrainerOptionsShape, type Peft, type PeftGraphContext, type PeftMode } from './clip-trainer.ts';
import { defineClipMethod, ModelOptionShape, SitesOptionShape, TrainableClipMethod } from './clip-method.ts';
import { softmaxDots } from './zeroshot-clip.ts';
import type { CostInfo, DetailedPrediction, MethodState, MethodStateContext, ObserveContext, ObserveResult, PredictContext, TaskContext, TaskInfo, TrainBatch } from './method.ts';

export const MoeAdaptersSchema = z
  .strictObject({
    ...ModelOptionShape,
    ...TrainerOptionsShape,
    labelSmoothing: TrainerOptionsShape.labelSmoothing.default(0.2),
    visibleClasses: TrainerOptionsShape.visibleClasses.default('task'),
    lr: TrainerOptionsShape.lr.default(1e-3),
    ...SitesOptionShape,
    /** Experts per adapted block (MTIL 22, CIL 2). */
    experts: z.int({ error: 'expected a positive integer' }).positive({ error: 'expected a positive integer' }).default(22),
    /** Experts per sample (k of the noisy top-k). */
    topK: z.int({ error: 'expected a positive integer' }).positive({ error: 'expected a positive integer' }).default(2),
    bottleneck: z.int().positive().default(64),
    /** `per-task` (MTIL), `shared` (CIL), `auto` (see the module doc). */
    routers: z.enum(['auto', 'per-task', 'shared']).default('auto'),
    /** Activate-freeze: experts frozen per block and task end (0 = off; the reference freezes 2). */
    freezePerTask: z.int().min(0).default(2),
    /** Noisy gating in training (the reference: on). */
    noisyGating: z.boolean().default(true),
    /** Router input token of the text tower: `eot` (default) or the reference's `sot` (identical for every prompt under the causal mask). */
    textRouterToken: z.enum(['eot', 'sot']).default('eot'),
    /** Add the (cv²(importance) + cv²(load))·1e-2 balancing loss (the reference computes and discards it). */
    balanceLoss: z.boolean().default(false),
    ddas: z
      .strictObject({
        enabled: z.union([z.boolean(), z.literal('auto')]).default('auto'),
        hidden: z.int().positive().default(100),
        lr: z.number().positive().default(0.01),
        /** `calibrated` (from each AE's own prequential errors) or a constant (the paper: 0.065). */
        threshold: z.union([z.literal('calibrated'), z.number().positive()]).default('calibrated'),
        quantile: z.number().gt(0).lt(1).default(0.99),
        scale: z.number().positive().default(1.1),
        /** `error`: least reconstruction error wins (the reference); `relative`: least error ÷ own threshold (src/moe/ddas.ts). */
        routing: z.enum(['error', 'relative']).default('error'),
      })
      .prefault({}),
  })
  .superRefine((o, ctx) => {
    if (o.topK > o.experts) ctx.addIssue({ code: 'custom', path: ['topK'], message: `topK ${o.topK} exceeds the ${o.experts} experts per block` });
  });
export type MoeAdaptersOptions = z.output<typeof MoeAdaptersSchema>;

/**
 * The MoE adaptation as a {@link Peft}: layout, current router, per-step noise. Each site's experts live in four
 * stacked tensors (`moe.<site>.stack.*`, rows in the layout's column order); frozen (or not allowed) experts are
 * rows the optimiser leaves untouched bit for bit (`<p>.rows` masks), so freezing changes feeds, not the graph.
 */
export class MoePeft implements Peft {
  router = 0;

  /** Initial stacked expert tensors and router tensors of a layout. */
  static initTensors(layout: MoeLayout, rng: Rng): Record<string, TensorData> {
    const flat = layout.initTensors(rng);
    const out: Record<string, TensorData> = {};
    for (const s of layout.sites) Object.assign(out, stackExpertData(layout, s, flat));
    for (const [n, t] of Object.entries(flat)) if (/\.r\d+\.(gate|noise)$/.test(n)) out[n] = t;
    return out;
  }

  /** Per-row step counters [E,1,1] of the stacked tensors (the state starts them as scalars). */
  static rowCounters(layout: MoeLayout): Record<string, TensorData> {
    const out: Record<string, TensorData> = {};
    for (const s of layout.sites) {
      const E = layout.experts(s).length;
      for (const part of STACK_PARTS) out[`${stackedTensorName(s, part)}.t`] = { dtype: 'float32', dims: [E, 1, 1], data: new Float32Array(E) };
    }
    return out;
  }

  constructor(
    readonly layout: MoeLayout,
    readonly opts: { topK: number; noisy: boolean; textRouterToken: 'eot' | 'sot'; balanceLoss: boolean },
    readonly rng: Rng,
  ) {}

  structureKey(mode: PeftMode): string {
    // sites, experts, frozen sets, routers and their allowed experts; not the usage counts
    const j = this.layout.toJSON();
    const base = JSON.stringify([j.sites.map((s) => [s.tower, s.layer, s.experts, s.frozen.map((f) => f[0])]), j.routers.map((r) => [r.id, r.allowed])]);
    const m = mode.kind === 'train' ? `train:r${this.router}:mask=${this.rowMasked().filter((n) => n.endsWith('.stack.down')).join(',')}` : mode.kind === 'eval-text' ? `text:r${mode.router}` : `image:${mode.perSample ? 'ps' : `r${this.evalRouter()}`}`;
    return `moe|${base}|k${this.opts.topK}|${this.opts.textRouterToken}|n${this.opts.noisy}|b${this.opts.balanceLoss}|${m}`;
  }

  build(ctx: PeftGraphContext) {
    const mode =
      ctx.mode.kind === 'train'
        ? { kind: 'train' as const, router: this.router, noise: this.opts.noisy, dropout: true }
        : ctx.mode.kind === 'eval-text'
          ? { kind: 'eval' as const, router: ctx.mode.router }
          : ctx.mode.perSample
            ? { kind: 'eval-per-sample' as const }
            : { kind: 'eval' as const, router: this.evalRouter() };
    const r = buildMoeHooks(ctx.g, this.layout, {
      stacked: true,
      source: ctx.source,
      mode,
      topK: this.opts.topK,
      ...(ctx.textIds ? { textIds: ctx.textIds } : {}),
      textRouterToken: this.opts.textRouterToken,
      balanceLoss: this.opts.balanceLoss && ctx.mode.kind === 'train',
    });
    const train = ctx.mode.kind === 'train';
    return {
      hooks: r.hooks,
      finish: () => ({ extraLoss: r.balanceLoss, outputs: train ? Object.fromEntries(Object.entries(r.usage).map(([k, t]) => [`usage.${k}`, t])) : {} }),
    };
  }

  /** The router a whole-batch image evaluation uses: the current one, or none (−1, plain CLIP) before any exists. */
  evalRouter(): number {
    return this.layout.routers.includes(this.router) ? this.router : -1;
  }

  trainableNames(): string[] {
    const routerNames = this.layout.trainableTensorNames(this.router, { noise: this.opts.noisy }).filter((n) => /\.r\d+\.(gate|noise)$/.test(n));
    return [...this.rowCounted(), ...routerNames];
  }

  rowCounted(): string[] {
    return this.layout.sites.flatMap((s) => STACK_PARTS.map((p) => stackedTensorName(s, p)));
  }

  /** Stacked tensors of the sites where some expert does not train for the current router (masks needed). */
  rowMasked(): string[] {
    const trainable = this.layout.trainableExperts(this.router);
    return this.layout.sites
      .filter((s) => (trainable[s.key] ?? []).length < this.layout.experts(s).length)
      .flatMap((s) => STACK_PARTS.map((p) => stackedTensorName(s, p)));
  }

  /** `<p>.rows` masks: the experts the current router trains (not frozen, allowed), at the masked sites. */
  private rowFeeds(): Record<string, TensorData> {
    const out: Record<string, TensorData> = {};
    const trainable = this.layout.trainableExperts(this.router);
    const masked = new Set(this.rowMasked());
    for (const s of this.layout.sites) {
      if (!masked.has(stackedTensorName(s, 'down'))) continue;
      const ids = this.layout.experts(s);
      const on = new Set(trainable[s.key] ?? []);
      const data = Uint8Array.from(ids, (id) => (on.has(id) ? 1 : 0));
      for (const part of STACK_PARTS) out[`${stackedTensorName(s, part)}.rows`] = { dtype: 'bool', dims: [ids.length, 1, 1], data };
    }
    return out;
  }

  feeds(mode: PeftMode, sizes: { images: number; texts: number }, extra?: { routerIndex?: Int32Array }): Record<string, TensorData> {
    const out: Record<string, TensorData> = {};
    if (mode.kind === 'train') {
      for (const s of this.layout.sites) {
        const E = this.layout.experts(s).length;
        const B = s.tower === 'image' ? sizes.images : sizes.texts;
        if (this.opts.noisy) {
          out[noiseInputName(s)] = { dtype: 'float32', dims: [B, E], data: Float32Array.from({ length: B * E }, () => this.rng.normal()) };
        }
      }
      out[DROPOUT_SEED_INPUT] = { dtype: 'int64', dims: [], data: BigInt64Array.of(BigInt(this.rng.int(2 ** 31))) };
      Object.assign(out, this.rowFeeds());
    } else if (mode.kind === 'eval-image' && mode.perSample) {
      const idx = extra?.routerIndex;
      if (!idx) throw new Error('moe-adapters: per-sample evaluation needs router indices');
      out[ROUTER_INDEX_INPUT.image] = { dtype: 'int64', dims: [idx.length], data: BigInt64Array.from(idx, (v) => BigInt(v)) };
    }
    return out;
  }

  afterStep(outputs: Record<string, TensorData>): void {
    this.layout.addUsageFromOutputs(this.router, outputs);
  }

  paramCount(): number {
    let n = 0;
    for (const dims of this.layout.tensorShapes().values()) n += dims.reduce((a, b) => a * b, 1);
    return n;
  }

  /** Layout (experts, frozen sets, routers, usage), current router, noise generator. */
  saveState(): unknown {
    return { router: this.router, layout: this.layout.toJSON(), rng: this.rng.snapshot() };
  }

  loadState(state: unknown, where: string): void {
    const j = jsonObject(state, where);
    if (!Number.isInteger(j['router'])) throw new Error(`${where}.router: expected a router id`);
    this.layout.assign(j['layout'], `${where}.layout`);
    this.rng.restore(j['rng'] as RngSnapshot, `${where}.rng`);
    this.router = j['router'] as number;
  }
}

export class MoeAdaptersMethod extends TrainableClipMethod {
  ddas: Ddas | null = null;
  perTask = false;
  /** Router of each DDAS id (MoE-Adapters: a task; CM-MoE: a subnet). */
  readonly routerOf = new Map<number, number>();
  readonly tasksSeen: TaskInfo[] = [];
  private routed = { correct: 0, total: 0 };
  private confusion = new Map<string, number>();

  get moe(): MoePeft {
    return this.trainer.peft as MoePeft;
  }

  get o(): MoeAdaptersOptions {
    return this.parts.options as MoeAdaptersOptions;
  }

  /** Resolves `routers` / `ddas.enabled` for the stream (see the module doc). */
  configureFor(kind: string): void {
    const multi = kind === 'multi-dataset';
    this.perTask = this.o.routers === 'per-task' || (this.o.routers === 'auto' && multi);
  }

  protected async ensureDdas(opts: { force?: boolean; noFallback?: boolean } = {}): Promise<Ddas | null> {
    const d = this.o.ddas;
    const on = opts.force === true || d.enabled === true || (d.enabled === 'auto' && this.perTask);
    if (!on || (!this.perTask && !opts.force)) return null;
    // without a zero-shot fallback every sample goes to its best AE (a threshold no error reaches)
    const threshold = opts.noFallback
      ? { kind: 'constant' as const, value: Number.MAX_VALUE }
      : d.threshold === 'calibrated'
        ? { kind: 'calibrated' as const, quantile: d.quantile, scale: d.scale }
        : { kind: 'constant' as const, value: d.threshold };
    this.ddas ??= await Ddas.create(this.trainer.engine, this.lease.features.dim, { hidden: d.hidden, lr: d.lr, threshold, routing: d.routing }, this.moe.rng.fork());
    return this.ddas;
  }

  /** The DDAS id whose router should answer test samples of `task` (MoE-Adapters: the task itself). */
  protected ddasIdOfTask(task: number): number | undefined {
    return this.routerOf.has(task) ? task : undefined;
  }

  /** The DDAS id an incoming training batch trains (MoE-Adapters: the current task's). */
  protected ddasTrainId(ctx: ObserveContext): number | null {
    return ctx.task ? ctx.task.id : null;
  }

  override async beginTask(task: TaskInfo, ctx: TaskContext): Promise<void> {
    await super.beginTask(task, ctx);
    this.configureFor(ctx.kind);
    if (this.perTask && this.tasksSeen.length > 0) {
      const r = this.moe.layout.addRouter();
      await this.trainer.state.add(this.moe.layout.initRouter(r));
      this.moe.router = r;
    }
    this.routerOf.set(task.id, this.moe.router);
    this.tasksSeen.push(task);
    const ddas = await this.ensureDdas();
    ddas?.addTask(task.id);
  }

  override async endTask(task: TaskInfo, ctx: TaskContext): Promise<void> {
    await super.endTask(task, ctx);
    if (this.o.freezePerTask > 0) this.moe.layout.freezeTopUsed(this.moe.router, this.o.freezePerTask);
    this.trainer.touch();
  }

  override async observe(batch: TrainBatch, ctx: ObserveContext): Promise<ObserveResult> {
    const r = await super.observe(batch, ctx);
    const id = this.ddasTrainId(ctx);
    if (this.ddas && id !== null && ctx.step === 0) {
      const t0 = performance.now();
      const feats = await this.lease.features.images(batch.images.slice(0, batch.numIncoming), 'none');
      await this.ddas.train(id, feats);
      ctx.reportPhase('ddas_train', performance.now() - t0);
    }
    return r;
  }

  /**
   * The DDAS id a test batch should reach, known only under the task protocol (candidates = one task's classes,
   * multi-dataset streams): its task's (if that task was trained), zero-shot (−1) for a task not seen yet, null
   * otherwise (an evaluation over the classes of several tasks does not say which task a sample came from).
   */
  protected expectedRoute(candidates: readonly number[], kind: string): number | null {
    if (kind !== 'multi-dataset') return null;
    const set = new Set(candidates);
    for (const t of this.tasksSeen) {
      if (t.classes.length > 0 && t.classes.length === set.size && t.classes.every((c) => set.has(c))) return this.ddasIdOfTask(t.id) ?? -1;
    }
    // candidates of several tasks (the pooled end-of-task evaluation over every exposed class) say nothing about
    // where a sample should go; candidates of no seen task are a future task's: zero-shot
    for (const t of this.tasksSeen) if (t.classes.some((c) => set.has(c))) return null;
    return -1;
  }

  override async predict(images: Image[], candidates: readonly number[], ctx: PredictContext): Promise<Int32Array> {
    return (await this.predictDetailed(images, candidates, ctx)).labels;
  }

  /** {@link predict} with probabilities and the router that answered each image (-1: DDAS sent it to zero-shot CLIP). */
  override async predictDetailed(images: Image[], candidates: readonly number[], ctx: PredictContext): Promise<DetailedPrediction> {
    const noRouter = this.moe.layout.routers.length === 0;
    if (images.length > 0 && candidates.length > 0 && noRouter) {
      // no router at all (cm-moe before its first subnet, e.g. the baseline evaluation of a task-free run):
      // plain zero-shot CLIP answers (route −1)
      return this.answer(images, candidates, ctx, new Int32Array(images.length).fill(-1), false);
    }
    if (!this.ddas || this.ddas.describe().tasks.length === 0 || images.length === 0 || candidates.length === 0) {
      const r = await this.trainer.predictDetailed(images, candidates, ctx, this.moe.router, ctx.purpose);
      return { ...r, routes: new Int32Array(images.length).fill(this.moe.router) };
    }
    const t0 = performance.now();
    const plain = await this.lease.features.images(images, 'cache', this.o.evalBatchSize);
    const task = await this.ddas.route(plain);
    ctx.reportPhase('ddas_route', performance.now() - t0);
    const router = Int32Array.from(task, (t) => (t < 0 ? -1 : (this.routerOf.get(t) ?? -1)));
    const want = ctx.purpose === 'task_end' ? this.expectedRoute(candidates, ctx.kind) : null;
    if (want !== null) {
      for (const t of task) {
        const ok = t === want;
        this.routed.total++;
        if (ok) this.routed.correct++;
        const key = `${want}->${t}`;
        this.confusion.set(key, (this.confusion.get(key) ?? 0) + 1);
      }
    }
    return this.answer(images, candidates, ctx, router, true);
  }

  /** Classifies `images` with each sample's router (−1: zero-shot CLIP's class embeddings). */
  private async answer(images: Image[], candidates: readonly number[], ctx: PredictContext, router: Int32Array, perSample: boolean): Promise<DetailedPrediction> {
    const feats = await this.trainer.imageEmbeddings(images, perSample ? router : undefined);
    const byRouter = new Map<number, readonly Float32Array[]>();
    for (const r of new Set(router)) {
      const mode = templatesForPurpose(ctx.purpose);
      const zs = () => this.lease.features.classEmbeddings(candidates.map((c) => ctx.classNames[c]!), candidates.map((c) => (mode === 'first' ? ctx.templatesFor(c).slice(0, 1) : ctx.templatesFor(c))));
      byRouter.set(r, r < 0 ? await zs() : await this.trainer.classWeights(candidates, ctx, r, false, mode));
    }
    const weightsFor = (i: number) => byRouter.get(router[i]!)!;
    return { labels: ClipTrainer.classify(feats, candidates, weightsFor), probs: softmaxDots(feats, weightsFor, this.trainer.model.logitScale), routes: router };
  }

  override describeCost(): CostInfo {
    const base = super.describeCost();
    const L = this.moe.layout;
    const extra: Record<string, number> = {
      ...base.extra,
      expertsPerBlock: Math.max(...L.sites.map((s: MoeSite) => L.experts(s).length)),
      frozenExpertsPerBlock: Math.max(...L.sites.map((s: MoeSite) => L.frozen(s).length)),
      subnets: L.routers.length,
      routers: L.routers.length,
    };
    if (this.ddas) {
      extra['ddasParams'] = this.ddas.describe().params;
      if (this.routed.total > 0) extra['ddasRoutingAcc'] = this.routed.correct / this.routed.total;
      for (const [k, v] of this.confusion) extra[`ddasRoute:${k}`] = v;
    }
    return { ...base, totalParams: base.totalParams + (this.ddas?.describe().params ?? 0), extra };
  }

  /** Routers per task, tasks seen, routing tallies and the DDAS autoencoders (weights, Adam state, windows). */
  protected override async saveOwnState(_ctx: MethodStateContext): Promise<MethodState> {
    return {
      tensors: {},
      json: {
        perTask: this.perTask,
        routerOf: [...this.routerOf],
        tasksSeen: this.tasksSeen,
        routed: this.routed,
        confusion: [...this.confusion],
        ddas: this.ddas ? this.ddas.toJSON() : null,
      },
    };
  }

  protected override async loadOwnState(state: MethodState, _ctx: MethodStateContext): Promise<void> {
    const j = state.json;
    this.perTask = j['perTask'] === true;
    this.routerOf.clear();
    for (const [k, v] of j['routerOf'] as Array<[number, number]>) this.routerOf.set(k, v);
    this.tasksSeen.splice(0, this.tasksSeen.length, ...(j['tasksSeen'] as TaskInfo[]));
    this.routed = { ...(j['routed'] as { correct: number; total: number }) };
    this.confusion = new Map(j['confusion'] as Array<[string, number]>);
    await this.ddas?.dispose();
    this.ddas = j['ddas'] ? await Ddas.fromJSON(this.trainer.engine, j['ddas'], `${this.name} state.ddas`) : null;
  }

  override async dispose(): Promise<void> {
    await this.ddas?.dispose();
    await super.dispose();
  }
}

export const moeAdaptersMethod = defineClipMethod({
  name: 'moe-adapters',
  summary: 'MoE-Adapters4CL: noisy top-k experts beside every block MLP, routers per task, activate-freeze, DDAS zero-shot fallback',
  schema: MoeAdaptersSchema,
  peft: (o, lease, rng) => {
    const cfg = lease.features.model.config;
    const layout = MoeLayout.forClip({ vision: cfg.vision, text: cfg.text }, { towers: o.towers, blocks: o.blocks, experts: o.experts, routers: 1, bottleneck: o.bottleneck });
    const peft = new MoePeft(layout, { topK: o.topK, noisy: o.noisyGating, textRouterToken: o.textRouterToken, balanceLoss: o.balanceLoss }, rng.fork());
    return { peft, init: MoePeft.initTensors(layout, rng), after: MoePeft.rowCounters(layout) };
  },
  Ctor: MoeAdaptersMethod,
});
