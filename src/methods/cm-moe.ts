/**
 * `cm-moe` — MoE-CLIP with clustered and merged subnets (CM-MoE): bounded growth of MoE-Adapters.
 *
 * - Each task (or, without task boundaries, each detected new distribution) opens a SUBNET: its own router and
 *   `expertsPerSubnet` new experts per adapted block; the new router may route to every expert no closed subnet
 *   owns. At the subnet's end its most used experts (among those not yet frozen) are frozen as its own and its
 *   router is restricted to exactly them (src/moe/subnets.ts).
 * - When more than `maxSubnets` subnets exist, replay memory of every task goes through every subnet; per
 *   (task, subnet) a metric (`metric`: `dist` / `cos` between the final image embedding through the subnet and
 *   through the task's own subnet, `energy` = −log Σ exp(logits), `acc` = accuracy on the memory) makes each
 *   subnet a vector over tasks; seeded k-means++ clusters them into `numClusters`; each cluster merges into its
 *   lowest-id subnet (`mergeRule`: `keep-top` experts by usage — the reference — or `usage-average`, MC-SMoE
 *   style), routers are summed, deleted experts leave the layout, the train state and the sessions, the members'
 *   DDAS autoencoders merge, and the merged subnet is fine-tuned on its pooled memory (src/moe/merge.ts).
 * - Test samples are routed per sample by DDAS to a subnet's router; on multi-dataset streams an unclaimed sample
 *   goes to plain zero-shot CLIP, on single-dataset streams to its best autoencoder (no fallback).
 * - Without task boundaries (`run.taskBoundaries: false`) two signals open a subnet at a detected change or
 *   re-enter a known one: label novelty (`labelShift`: most of a batch's labels are new to the current subnet;
 *   re-entry to the subnet that trained on them) and a {@link ShiftDetector} over the current subnet's DDAS error
 *   (re-entry to the subnet whose autoencoder explains the new data); docs/cm-moe.md says why both.
 * - `merge: false` with `maxSubnets` ≥ the number of tasks is the unbounded learner (a subnet per task).
 *
 * The metric is computed on the final image embeddings, not on per-block activations of the last `numBlocks`
 * blocks as the reference does (documented difference; `numBlocks` is accepted and recorded).
 */
import { z } from 'zod';
import type { Image } from '../data/types.ts';
import type { StreamItem } from '../data/types.ts';
import type { TensorData } from '../runtime/types.ts';
import { MoeLayout } from '../moe/layout.ts';
import { growMoeTensors } from '../moe/subnets.ts';
import { SubnetRegistry } from '../moe/subnets.ts';
import { applyMerge, clusterGroups, clusterSubnets, meanCosine, meanDistance, mergeDdasTasks, planMerge, subnetVectors, type MetricRecord } from '../moe/merge.ts';
import { labelShift, novelShare, ShiftDetector, type ShiftDecision } from '../moe/shift.ts';
import { STACK_PARTS, stackedTensorName } from '../moe/hooks.ts';
import { TrainerOptionsShape } from './clip-trainer.ts';
import { defineClipMethod, ModelOptionShape, SitesOptionShape } from './clip-method.ts';
import { MoeAdaptersMethod, MoeAdaptersSchema, MoePeft } from './moe-adapters.ts';
import type { CostInfo, MethodState, MethodStateContext, ObserveContext, ObserveResult, PredictContext, TaskContext, TaskInfo, TrainBatch } from './method.ts';
import { itemRef, type ReplayItemRef } from '../data/replay.ts';

export const CmMoeSchema = z
  .strictObject({
    ...ModelOptionShape,
    ...TrainerOptionsShape,
    ...SitesOptionShape,
    lr: TrainerOptionsShape.lr.default(5e-4),
    visibleClasses: TrainerOptionsShape.visibleClasses.default('task'),
    topK: z.int().positive().default(2),
    bottleneck: z.int().positive().default(64),
    expertsPerSubnet: z.int({ error: 'expected a positive integer' }).positive({ error: 'expected a positive integer' }).default(4),
    maxSubnets: z.int({ error: 'expected a positive integer' }).positive({ error: 'expected a positive integer' }).default(5),
    numClusters: z.int({ error: 'expected a positive integer' }).positive({ error: 'expected a positive integer' }).default(3),
    numBlocks: z.int().positive().default(4),
    metric: z.enum(['dist', 'cos', 'energy', 'acc']).default('dist'),
    mergeRule: z.enum(['keep-top', 'usage-average']).default('keep-top'),
    /** Hard cap on experts per block (default (maxSubnets + 1) · expertsPerSubnet). */
    maxExpertsPerBlock: z.int().positive().optional(),
    /** Merge at all (false: the unbounded learner, a subnet per task). */
    merge: z.boolean().default(true),
    /** Replay samples kept for merging and fine-tuning (reservoir, asked from the runner when the config has none). */
    memorySize: z.int().positive().default(500),
    /**
     * Fine-tuning of a merged subnet on its pooled memory, in batches of 16: `'epoch'` (default) one pass over the
     * pool, as the reference's one epoch; a number, that many steps (0: none).
     */
    finetuneSteps: z.union([z.int().min(0), z.literal('epoch')], { error: "expected a non-negative integer or 'epoch'" }).default('epoch'),
    /**
     * Fine-tune the merged subnet's kept experts too, not only its router (default false: the reference's merged
     * subnet keeps its experts frozen). The experts are frozen again afterwards; other subnets' never change.
     */
    finetuneExperts: z.boolean().default(false),
    /**
     * Memory samples per task in the merge's metric pass (evenly spaced over the task's memory; all of them when
     * the task has fewer). The pass costs samples × subnets image forwards, the larger part of a merge's time.
     */
    metricSamples: z.int({ error: 'expected a positive integer' }).positive({ error: 'expected a positive integer' }).default(32),
    noisyGating: z.boolean().default(true),
    textRouterToken: z.enum(['eot', 'sot']).default('eot'),
    ddas: MoeAdaptersSchema.shape.ddas,
    /**
     * Record, in every batch event, each trained autoencoder's mean DDAS error on the incoming samples before the
     * batch trains (`info['ddasErr:<subnet>']`) — the signal of task-free detection, for tuning it on a stream.
     */
    traceDdas: z.boolean().default(false),
    /** Task-free change detection (src/moe/shift.ts): warm-up batches after a change, window, z*, patience. */
    shift: z
      .strictObject({
        warmup: z.int().min(2).default(10),
        window: z.int().positive().default(5),
        z: z.number().positive().default(4),
        patience: z.int().positive().default(3),
        /** Label novelty as a second change signal (src/moe/shift.ts `labelShift`). */
        labels: z.boolean().default(true),
        novelShare: z.number().gt(0).max(1).default(0.75),
        armShare: z.number().min(0).lt(1).default(0.25),
      })
      .prefault({}),
  })
  .superRefine((o, ctx) => {
    if (o.topK > o.expertsPerSubnet) ctx.addIssue({ code: 'custom', path: ['topK'], message: `topK ${o.topK} exceeds expertsPerSubnet ${o.expertsPerSubnet}` });
    if (o.numClusters >= o.maxSubnets + 1) ctx.addIssue({ code: 'custom', path: ['numClusters'], message: `numClusters ${o.numClusters} must be below maxSubnets + 1 (${o.maxSubnets + 1}) for a merge to shrink anything` });
  });
export type CmMoeOptions = z.output<typeof CmMoeSchema>;

/** A merge, as logged in the run events and cost.json. */
export interface MergeLog {
  samplesSeen: number;
  members: number[][];
  keptExperts: number;
  deletedExperts: number;
  ms: number;
  /** Where the merge's time went: metric pass over memory, clustering + planning, applying it, fine-tuning. */
  phasesMs?: { metrics: number; cluster: number; apply: number; finetune: number };
  /** Fine-tuning of the merged subnets: steps taken and samples shown (repeats counted), summed over groups. */
  finetune?: { steps: number; samples: number };
  /** Memory samples the metric pass ran through the subnets (`metricSamples` per task at most). */
  metricSamples?: number;
}

class CmMoeMethod extends MoeAdaptersMethod {
  registry!: SubnetRegistry;
  /** The subnet receiving the stream now (open while it learns its own experts; closed when re-entered). */
  current: number | null = null;
  readonly merges: MergeLog[] = [];
  readonly expertsOverTime: Array<[number, number]> = [];
  private detector: ShiftDetector | null = null;
  private pseudoTask = 0;
  /** Task-free runs: the (pseudo-)task each incoming sample was learned under; replay memory keeps the objects. */
  private readonly learnedUnder = new WeakMap<StreamItem, number>();
  detections: number[] = [];
  /** Which signal reported each detection: 'labels' or 'ddas'. */
  detectedBy: string[] = [];
  /** Task-free runs: the labels each pseudo-task trained on (a subnet's labels are those of its tasks). */
  private readonly labelsOf = new Map<number, Set<number>>();
  /** The previous batch's share of samples with labels new to the current subnet (null before the first batch). */
  private lastNovelShare: number | null = null;

  get c(): CmMoeOptions {
    return this.parts.options as CmMoeOptions;
  }

  private ensureRegistry(): SubnetRegistry {
    this.registry ??= new SubnetRegistry(this.moe.layout, {
      expertsPerSubnet: this.c.expertsPerSubnet,
      maxExpertsPerBlock: this.c.maxExpertsPerBlock ?? (this.c.merge ? (this.c.maxSubnets + 1) * this.c.expertsPerSubnet : Number.MAX_SAFE_INTEGER),
    });
    return this.registry;
  }

  /** Every MoE tensor of the state (params, slots, counters). */
  private async moeTensors(): Promise<Record<string, TensorData>> {
    const names = [...this.trainer.engine.storeInfo(this.trainer.state.store).keys()].filter((n) => n.startsWith('moe.'));
    return this.trainer.engine.getTensors(this.trainer.state.store, names);
  }

  /** Replaces resized MoE tensors in the state: params re-added (new shapes), then their slots and counters. */
  private async replaceTensors(next: Record<string, TensorData>, deletedParams: readonly string[] = []): Promise<void> {
    const st = this.trainer.state;
    const params = Object.keys(next).filter((n) => !/\.(m|v|buf|t)$/.test(n));
    const present = params.filter((n) => st.has(n));
    const doomed = [...new Set([...present, ...deletedParams.filter((n) => st.has(n))])];
    if (doomed.length) await st.remove(doomed);
    const add: Record<string, TensorData> = {};
    for (const n of params) add[n] = next[n]!;
    if (Object.keys(add).length) await st.add(add);
    const rest: Record<string, TensorData> = {};
    for (const [n, t] of Object.entries(next)) if (!(n in add)) rest[n] = t;
    if (Object.keys(rest).length) await this.trainer.engine.putTensors(st.store, rest);
    this.trainer.touch();
  }

  /** Opens a subnet for `task` (new router + experts), growing the state's tensors. */
  private async openSubnet(task: number, samplesSeen = 0): Promise<void> {
    const reg = this.ensureRegistry();
    const before = await this.moeTensors();
    const opened = reg.open(task);
    const L = this.moe.layout;
    // stacked tensors and slots start empty (0 rows) the first time
    for (const s of L.sites) {
      for (const part of STACK_PARTS) {
        const name = stackedTensorName(s, part);
        if (before[name]) continue;
        const d = s.width;
        const bn = L.bottleneck;
        const dims = part === 'down' ? [0, d, bn] : part === 'downBias' ? [0, 1, bn] : part === 'up' ? [0, bn, d] : [0, 1, d];
        for (const suffix of ['', '.m', '.v']) before[name + suffix] = { dtype: 'float32', dims, data: new Float32Array(0) };
        before[`${name}.t`] = { dtype: 'float32', dims: [0, 1, 1], data: new Float32Array(0) };
      }
    }
    const grown = growMoeTensors(L, before, opened.newExperts, this.moe.rng);
    Object.assign(grown, L.initRouter(opened.router));
    await this.replaceTensors(grown);
    this.moe.router = opened.router;
    this.current = opened.subnet;
    this.routerOf.set(opened.subnet, opened.router);
    const ddas = await this.ddasOn();
    ddas?.addTask(opened.subnet);
    this.detector?.reset(opened.subnet);
    this.noteExperts(samplesSeen);
  }

  private async ddasOn() {
    return this.ensureDdas({ force: true, noFallback: !this.multi });
  }

  private multi = false;

  private noteExperts(samples = 0): void {
    const L = this.moe.layout;
    this.expertsOverTime.push([samples, Math.max(...L.sites.map((s) => L.experts(s).length))]);
  }

  /** End of a subnet: freeze its own experts; merge when over budget. */
  private async closeSubnet(ctx: { memory: TaskContext['memory']; samplesSeen: number; reportPhase: (n: string, ms: number) => void; stream: PredictContext }): Promise<void> {
    if (this.current === null) return;
    if (this.registry.subnet(this.current).open) this.registry.close(this.current);
    this.current = null;
    this.trainer.touch();
    const open = this.registry.subnets();
    if (this.c.merge && open.length > this.c.maxSubnets) await this.mergeSubnets(ctx);
  }

  override async beginTask(task: TaskInfo, ctx: TaskContext): Promise<void> {
    this.task = task;
    this.trainer.resetSchedule();
    this.multi = ctx.kind === 'multi-dataset';
    this.tasksSeen.push(task);
    await this.openSubnet(task.id, ctx.samplesSeen);
  }

  override async endTask(_task: TaskInfo, ctx: TaskContext): Promise<void> {
    await this.closeSubnet({ memory: ctx.memory, samplesSeen: ctx.samplesSeen, reportPhase: ctx.reportPhase, stream: { ...ctx, exposedClasses: ctx.exposedClasses, purpose: 'task_end' } });
  }

  protected override ddasIdOfTask(task: number): number | undefined {
    return this.registry?.subnetOfTask(task);
  }

  protected override ddasTrainId(): number | null {
    return this.current;
  }

  override async observe(batch: TrainBatch, ctx: ObserveContext): Promise<ObserveResult> {
    const info: Record<string, number | string | boolean> = {};
    if (!ctx.task) {
      // task-free: subnets follow detected distribution changes
      this.multi = ctx.kind === 'multi-dataset';
      const { labels: useLabels, novelShare, armShare, ...aeOptions } = this.c.shift;
      this.detector ??= new ShiftDetector(aeOptions);
      if (this.current === null && this.registry === undefined) await this.openSubnet(this.pseudoTask++, ctx.samplesSeen);
      else if (ctx.step === 0) {
        let decision: ShiftDecision = { kind: 'none' };
        if (useLabels && this.current !== null) {
          const others = new Map<number, Set<number>>();
          for (const sn of this.registry.subnets()) if (sn.id !== this.current) others.set(sn.id, this.subnetLabels(sn.id));
          decision = labelShift(batch.labels.subarray(0, batch.numIncoming), this.subnetLabels(this.current), others, this.lastNovelShare, { novelShare, armShare }).decision;
          if (decision.kind !== 'none') info['boundarySignal'] = 'labels';
        }
        if (this.ddas) {
          const { ids, mean } = await this.batchErrors(batch, info);
          const others = new Map<number, number>();
          const thresholds = new Map<number, number>();
          ids.forEach((id, j) => {
            if (id !== this.current) {
              others.set(id, mean(j));
              thresholds.set(id, this.ddas!.threshold(id));
            }
          });
          const cur = ids.indexOf(this.current ?? -1);
          if (decision.kind === 'none' && cur >= 0) {
            decision = this.detector.observe({ current: mean(cur), others, thresholds });
            if (decision.kind !== 'none') info['boundarySignal'] = 'ddas';
          }
        }
        if (decision.kind !== 'none') {
          this.detections.push(ctx.samplesSeen);
          this.detectedBy.push(info['boundarySignal'] as string);
          info['boundary'] = decision.kind;
          await this.closeSubnet({ memory: ctx.memory, samplesSeen: ctx.samplesSeen, reportPhase: ctx.reportPhase, stream: { ...ctx, purpose: 'task_end' } });
          const known = decision.kind === 'reenter' ? this.registry.subnets().find((s) => s.id === decision.subnet) : undefined;
          if (known) {
            // a known distribution again: its subnet takes the stream back (its experts stay frozen, its router
            // and autoencoder keep learning)
            const task = this.pseudoTask++;
            this.registry.reuse(known.id, task);
            this.current = known.id;
            this.moe.router = known.router;
            this.detector.reset(known.id);
            this.trainer.touch();
            info['reentered'] = known.id;
          } else {
            await this.openSubnet(this.pseudoTask++, ctx.samplesSeen);
          }
        }
      }
    }
    else if (ctx.step === 0 && this.ddas && this.c.traceDdas) await this.batchErrors(batch, info);
    if (!ctx.task && ctx.step === 0) {
      for (const it of batch.items.slice(0, batch.numIncoming)) this.learnedUnder.set(it, this.pseudoTask - 1);
      // label novelty against the subnet that now learns the batch, then its labels join the pseudo-task's
      const labels = batch.labels.subarray(0, batch.numIncoming);
      if (labels.length > 0) this.lastNovelShare = novelShare(labels, this.current === null ? new Set() : this.subnetLabels(this.current));
      const own = this.labelsOf.get(this.pseudoTask - 1) ?? new Set<number>();
      for (const l of labels) own.add(l);
      this.labelsOf.set(this.pseudoTask - 1, own);
    }
    const r = await super.observe(batch, ctx);
    return { ...r, ...(Object.keys(info).length ? { info } : {}) };
  }

  /**
   * Mean DDAS error of every autoencoder on the batch's incoming samples (before it trains on them); with
   * `traceDdas` also written to `info` as `ddasErr:<subnet>` for the trained ones.
   */
  private async batchErrors(batch: TrainBatch, info: Record<string, number | string | boolean>): Promise<{ ids: number[]; mean: (j: number) => number }> {
    const feats = await this.lease.features.images(batch.images.slice(0, batch.numIncoming), 'none');
    const errs = await this.ddas!.errors(feats);
    const d = this.ddas!.describe();
    const ids = d.tasks;
    const n = feats.length;
    const mean = (j: number) => {
      let s = 0;
      for (let i = 0; i < n; i++) s += errs[i * ids.length + j]!;
      return s / n;
    };
    if (this.c.traceDdas) {
      const trained = new Set(d.trained);
      ids.forEach((id, j) => {
        if (trained.has(id)) info[`ddasErr:${id}`] = mean(j);
      });
    }
    return { ids, mean };
  }

  /**
   * Task-free runs know no task → subnet map, so the DDAS route a task-protocol test batch should reach is the
   * subnet whose trained labels cover the candidates; zero-shot (−1) when no subnet trained on any of them; null
   * (not counted) when the candidates are split over subnets.
   */
  protected override expectedRoute(candidates: readonly number[], kind: string): number | null {
    if (this.detector === null) return super.expectedRoute(candidates, kind);
    if (kind !== 'multi-dataset' || candidates.length === 0) return null;
    let touched = false;
    for (const sn of this.registry?.subnets() ?? []) {
      const labels = this.subnetLabels(sn.id);
      if (candidates.every((c) => labels.has(c))) return sn.id;
      if (candidates.some((c) => labels.has(c))) touched = true;
    }
    return touched ? null : -1;
  }

  /** The labels the subnet's (pseudo-)tasks trained on (task-free runs). */
  private subnetLabels(subnet: number): Set<number> {
    const out = new Set<number>();
    for (const [task, labels] of this.labelsOf) if (this.registry.subnetOfTask(task) === subnet) for (const l of labels) out.add(l);
    return out;
  }

  /** Cluster-and-merge (see the module doc). */
  private async mergeSubnets(ctx: { memory: TaskContext['memory']; samplesSeen: number; reportPhase: (n: string, ms: number) => void; stream: PredictContext }): Promise<void> {
    const t0 = performance.now();
    const mem = ctx.memory;
    const subnets = this.registry.subnets().filter((s) => !s.open);
    if (!mem || mem.size === 0 || subnets.length < 2) return;
    const items = [...mem.items()];
    const byTask = new Map<number, StreamItem[]>();
    for (const it of items) {
      const task = this.taskOf(it);
      if (this.registry.subnetOfTask(task) === undefined) continue;
      const list = byTask.get(task) ?? [];
      list.push(it);
      byTask.set(task, list);
    }
    const tasks = [...byTask.keys()].sort((a, b) => a - b);
    const show = (list: readonly StreamItem[], train: boolean): Image[] =>
      ctx.stream.materialize ? ctx.stream.materialize(list, train, this.moe.rng) : list.map((it) => it.dataset.image(it.index));
    const records: MetricRecord[] = [];
    const E = this.lease.features.dim;
    let metricSamples = 0;
    for (const task of tasks) {
      const list = evenlySpaced(byTask.get(task)!, this.c.metricSamples);
      metricSamples += list.length;
      const images = show(list, false);
      const labels = list.map((it) => it.label);
      const classes = [...new Set(labels)].sort((a, b) => a - b);
      const own = this.routerOf.get(this.registry.subnetOfTask(task)!)!;
      const ownEmb = await this.trainer.imageEmbeddings(images, new Int32Array(images.length).fill(own));
      const ownFlat = flat(ownEmb, E);
      for (const s of subnets) {
        const r = this.routerOf.get(s.id)!;
        const emb = r === own ? ownEmb : await this.trainer.imageEmbeddings(images, new Int32Array(images.length).fill(r));
        let value: number;
        if (this.c.metric === 'dist') value = meanDistance(flat(emb, E), ownFlat, E);
        else if (this.c.metric === 'cos') value = meanCosine(flat(emb, E), ownFlat, E);
        else {
          const W = await this.trainer.classWeights(classes, ctx.stream, r);
          const scale = this.trainer.model.logitScale;
          let correct = 0;
          let energy = 0;
          emb.forEach((f, i) => {
            const logits = W.map((w) => scale * w.reduce((a, x, d) => a + x * f[d]!, 0));
            const mx = Math.max(...logits);
            energy += -(mx + Math.log(logits.reduce((a, l) => a + Math.exp(l - mx), 0)));
            if (classes[logits.indexOf(mx)] === labels[i]) correct++;
          });
          value = this.c.metric === 'acc' ? correct / emb.length : energy / emb.length;
        }
        records.push({ task, subnet: s.id, block: 'embed', modality: 'image', value });
      }
    }
    if (records.length === 0) return;
    const tMetrics = performance.now();
    const vecs = subnetVectors(records, { subnets: subnets.map((s) => s.id) });
    const labels = clusterSubnets(vecs.vectors, Math.min(this.c.numClusters, vecs.subnets.length), 1);
    const groups = clusterGroups(vecs.subnets, labels);
    const tensors = await this.moeTensors();
    const plan = planMerge(this.moe.layout, this.registry, groups, { rule: this.c.mergeRule, tensors });
    if (plan.groups.length === 0) return;
    const tCluster = performance.now();
    const before = this.moe.layout.sites.reduce((n, s) => n + this.moe.layout.experts(s).length, 0);
    const res = applyMerge(plan, this.moe.layout, this.registry, tensors);
    // removed routers leave the state; resized tensors replace theirs
    for (const g of plan.groups) for (const r of g.routers.removed) for (const [sub, rr] of this.routerOf) if (rr === r) this.routerOf.delete(sub);
    await this.replaceTensors(res.tensors, res.deletedParams);
    const leftovers = res.deleted.filter((n) => !res.deletedParams.includes(n) && this.trainer.engine.storeInfo(this.trainer.state.store).has(n));
    if (leftovers.length) await this.trainer.engine.deleteTensors(this.trainer.state.store, leftovers);
    if (this.ddas) await mergeDdasTasks(this.ddas, plan);
    for (const g of plan.groups) for (const id of g.members.slice(1)) this.detector?.forget(id);
    const after = this.moe.layout.sites.reduce((n, s) => n + this.moe.layout.experts(s).length, 0);
    const tApply = performance.now();
    // fine-tune each merged subnet's router on its pooled memory (its experts stay frozen, as the reference's
    // merged subnet keeps its frozen experts; only routing adapts), with `finetuneExperts` its kept experts too
    const tuned = { steps: 0, samples: 0 };
    for (const g of plan.groups) {
      const pool = items.filter((it) => this.registry.subnetOfTask(this.taskOf(it)) === g.survivor);
      const steps = this.c.finetuneSteps === 'epoch' ? Math.ceil(pool.length / FINETUNE_BATCH) : this.c.finetuneSteps;
      if (pool.length === 0 || steps === 0) continue;
      const saved = this.moe.router;
      this.moe.router = this.routerOf.get(g.survivor) ?? g.routers.survivor;
      // finetuneExperts: the survivor's own (kept) experts train with its router, then freeze again as they were
      const L = this.moe.layout;
      const own = this.registry.subnet(g.survivor).experts;
      const thawed = this.c.finetuneExperts ? L.sites.map((s) => [s, L.unfreeze(s, (own[s.key] ?? []).filter((id) => L.isFrozen(s, id)))] as const) : [];
      try {
        // an epoch visits every pooled sample once in a seeded order; a step count draws batches with replacement
        const order = this.c.finetuneSteps === 'epoch' ? this.moe.rng.permutation(pool.length) : null;
        for (let k = 0; k < steps; k++) {
          const pick = order
            ? order.slice(k * FINETUNE_BATCH, (k + 1) * FINETUNE_BATCH).map((i) => pool[i]!)
            : Array.from({ length: Math.min(FINETUNE_BATCH, pool.length) }, () => pool[this.moe.rng.int(pool.length)]!);
          tuned.steps++;
          tuned.samples += pick.length;
          const imgs = show(pick, true);
          const lab = Int32Array.from(pick, (it) => it.label);
          const visible = [...new Set(lab)].sort((a, b) => a - b);
          await this.trainer.step({ images: imgs, labels: lab, visible, stream: ctx.stream });
        }
      } finally {
        for (const [s, records] of thawed) for (const [id, by] of records) L.freeze(s, [id], by);
      }
      this.moe.router = saved;
    }
    const t1 = performance.now();
    const ms = t1 - t0;
    ctx.reportPhase('merge', ms);
    const phasesMs = { metrics: tMetrics - t0, cluster: tCluster - tMetrics, apply: tApply - tCluster, finetune: t1 - tApply };
    this.merges.push({ samplesSeen: ctx.samplesSeen, members: plan.groups.map((g) => g.members), keptExperts: after, deletedExperts: before - after, ms, phasesMs, finetune: tuned, metricSamples });
    this.noteExperts(ctx.samplesSeen);
  }

  /** The task a replay sample was learned under: its stream task, or the pseudo-task of a task-free run. */
  private taskOf(it: StreamItem): number {
    return this.learnedUnder.get(it) ?? it.task;
  }

  /**
   * Subnets, the open subnet, merges, the shift detector, pseudo-tasks and, for the replay memory's samples of a
   * task-free run, the pseudo-task each was learned under.
   */
  protected override async saveOwnState(ctx: MethodStateContext): Promise<MethodState> {
    const base = await super.saveOwnState(ctx);
    const learned: Array<[ReplayItemRef, number]> = [];
    for (const it of ctx.memory?.items() ?? []) {
      const t = this.learnedUnder.get(it);
      if (t !== undefined) learned.push([itemRef(it), t]);
    }
    return {
      tensors: base.tensors,
      json: {
        ...base.json,
        registry: this.registry ? this.registry.toJSON() : null,
        current: this.current,
        merges: this.merges,
        expertsOverTime: this.expertsOverTime,
        detector: this.detector ? this.detector.toJSON() : null,
        pseudoTask: this.pseudoTask,
        detections: this.detections,
        detectedBy: this.detectedBy,
        labelsOf: [...this.labelsOf].map(([t, l]) => [t, [...l].sort((a, b) => a - b)]),
        lastNovelShare: this.lastNovelShare,
        multi: this.multi,
        learnedUnder: learned,
      },
    };
  }

  protected override async loadOwnState(state: MethodState, ctx: MethodStateContext): Promise<void> {
    await super.loadOwnState(state, ctx);
    const j = state.json;
    const where = 'cm-moe state.own';
    if (j['registry']) this.registry = SubnetRegistry.fromJSON(this.moe.layout, j['registry'], `${where}.registry`);
    this.current = (j['current'] ?? null) as number | null;
    this.merges.splice(0, this.merges.length, ...(j['merges'] as MergeLog[]));
    this.expertsOverTime.splice(0, this.expertsOverTime.length, ...(j['expertsOverTime'] as Array<[number, number]>));
    this.detector = j['detector'] ? ShiftDetector.fromJSON(j['detector'], `${where}.detector`) : null;
    this.pseudoTask = j['pseudoTask'] as number;
    this.detections = [...(j['detections'] as number[])];
    // states saved before label novelty existed have no detectedBy / labelsOf / lastNovelShare: their detections
    // were all DDAS ones, and label novelty starts from the next batch
    const by = j['detectedBy'] ?? this.detections.map(() => 'ddas');
    if (!Array.isArray(by) || by.length !== this.detections.length || !by.every((v) => v === 'labels' || v === 'ddas')) throw new Error(`${where}.detectedBy: expected 'labels' | 'ddas' per detection`);
    this.detectedBy = [...(by as string[])];
    const lo = j['labelsOf'] ?? [];
    if (!Array.isArray(lo) || !lo.every((e) => Array.isArray(e) && Number.isInteger(e[0]) && Array.isArray(e[1]) && e[1].every((l: unknown) => Number.isInteger(l)))) {
      throw new Error(`${where}.labelsOf: expected [pseudo-task, labels[]] pairs`);
    }
    this.labelsOf.clear();
    for (const [t, l] of lo as Array<[number, number[]]>) this.labelsOf.set(t, new Set(l));
    const ls = j['lastNovelShare'] ?? null;
    if (!(ls === null || (typeof ls === 'number' && ls >= 0 && ls <= 1))) throw new Error(`${where}.lastNovelShare: expected null or a share in [0, 1]`);
    this.lastNovelShare = ls as number | null;
    this.multi = j['multi'] === true;
    for (const [ref, t] of j['learnedUnder'] as Array<[ReplayItemRef, number]>) this.learnedUnder.set(ctx.resolveItem(ref), t);
  }

  override describeCost(): CostInfo {
    const base = super.describeCost();
    const extra: Record<string, number> = {
      ...(base.extra ?? {}),
      subnets: this.registry ? this.registry.subnets().length : 0,
      merges: this.merges.length,
      mergeMs: this.merges.reduce((a, m) => a + m.ms, 0),
      ...Object.fromEntries((['metrics', 'cluster', 'apply', 'finetune'] as const).map((k) => [`mergeMs:${k}`, this.merges.reduce((a, m) => a + (m.phasesMs?.[k] ?? 0), 0)])),
      detectedBoundaries: this.detections.length,
      detectedByLabels: this.detectedBy.filter((b) => b === 'labels').length,
      detectedByDdas: this.detectedBy.filter((b) => b === 'ddas').length,
    };
    this.detections.forEach((s, i) => (extra[`detectedAt:${i}`] = s));
    this.expertsOverTime.forEach(([s, e], i) => (extra[`expertsOverTime:${i}:${s}`] = e));
    return { ...base, extra };
  }
}

/** Batch size of a merged subnet's fine-tuning. */
const FINETUNE_BATCH = 16;

/** `n` items spread evenly over `list` (first, last and between, in order); all of `list` when it has at most `n`. */
export function evenlySpaced<T>(list: readonly T[], n: number): T[] {
  if (list.length <= n) return [...list];
  if (n === 1) return [list[0]!];
  return Array.from({ length: n }, (_, i) => list[Math.round((i * (list.length - 1)) / (n - 1))]!);
}

function flat(rows: readonly Float32Array[], E: number): Float32Array {
  const out = new Float32Array(rows.length * E);
  rows.forEach((r, i) => out.set(r, i * E));
  return out;
}

export const cmMoeMethod = defineClipMethod({
  name: 'cm-moe',
  summary: 'CM-MoE: a subnet (router + experts) per task or detected distribution, clustered and merged to a budget',
  schema: CmMoeSchema,
  peft: (o, lease, rng) => {
    const cfg = lease.features.model.config;
    const layout = MoeLayout.forClip({ vision: cfg.vision, text: cfg.text }, { towers: o.towers, blocks: o.blocks, experts: 0, routers: 0, bottleneck: o.bottleneck });
    const peft = new MoePeft(layout, { topK: o.topK, noisy: o.noisyGating, textRouterToken: o.textRouterToken, balanceLoss: false }, rng.fork());
    return { peft, init: {} };
  },
  replay: (o) => ({ capacity: o.memorySize, batchSize: 0 }),
  Ctor: CmMoeMethod as never,
});
