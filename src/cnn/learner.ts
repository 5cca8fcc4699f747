/**
 * The CNN track's shared online learner (the reference's `manager.online_train`), behind the methods
 * `cnn-subnets`, `cnn-prune`, `cnn-replay` and `cnn-finetune` (src/methods/cnn-*.ts).
 *
 * The stream is a sequence of sets (runner tasks; a set's boundary is given, its task identity is not):
 * - Task identification at the first batch of a set: every known task's head is applied to the union network's
 *   features and scored by accuracy on that batch (its labels are given with the batch, as in the reference); the
 *   best task claims the set when it reaches its threshold (src/cnn/identify.ts), otherwise a new task opens, with
 *   a new head over the set's classes and — with subnets — a new subnet owning every free filter (free filters
 *   re-initialised, weights from channels of other subnets zeroed: src/cnn/masks.ts).
 * - Each incoming batch: prequential prediction with the current task's head (before identification: the head
 *   most confident on the batch), then `onlineEpochs` SGD steps (momentum 0.9, Nesterov; lr MultiStep ×0.1 at
 *   1/2 and 2/3 of the steps, restarted every batch). Only the current subnet's filters change. A subnet shared
 *   by several tasks (after a merge), and with `replayAll` every task, trains on the batch plus up to a batch of
 *   buffered samples of each other task, through the stacked heads (labels offset per task).
 * - Per task a buffer of `bufferPerClass` images per class from its first batches, split 70/30 into a training
 *   and a held-out part (the held-out part sets thresholds after offline retraining).
 * - Pruning (with subnets): after `pruneBatch` batches of a new subnet, the lowest `prunePercPerLayer` of its
 *   filters by mean |w| are released, then it is fine-tuned `finetuneEpochs` epochs on its tasks' buffers.
 * - At a set's end: recency (tasks unused for more than `unusedThreshold` sets are dropped with head, buffer and
 *   threshold; a subnet left without tasks is freed) and, with merging, when there are more than `maxSubnets`
 *   subnets: connectivity clustering (src/cnn/connectivity.ts) into `numClusters` groups, each merged as the union
 *   of its filters into its last subnet, retrained `trainEpochs` epochs on the pooled buffers, pruned by
 *   `mergedPrunePercPerLayer`, fine-tuned, and given held-out thresholds.
 * Evaluation: a test chunk whose candidates are exactly one or more tasks' class sets (the task protocol) is
 * answered by the head among those tasks with the highest mean max-softmax on the chunk (unsupervised task
 * identification at test time); otherwise every sample takes the most confident head among the tasks whose
 * classes meet the candidates.
 */
import { z } from 'zod';
import { toCHW } from '../clip/preprocess.ts';
import { resize, toRgb } from '../data/image-ops.ts';
import type { Image } from '../data/types.ts';
import { Engine } from '../runtime/engine.ts';
import { CLIP_RESOURCES, type ClipResources } from '../methods/clip-resources.ts';
import type { Rng } from '../util/rng.ts';
import type { CostInfo, Method, MethodEnv, MethodState, ObserveContext, ObserveResult, PredictContext, TaskContext, TaskInfo, TrainBatch } from '../methods/method.ts';
import { jsonObject } from '../methods/state.ts';
import type { TensorData } from '../runtime/types.ts';
import { CnnNet, headLogits, type Head, type NetStep } from './net.ts';
import { groupPairs, resnetLayout, type ResNetLayout } from './resnet.ts';
import { allocate, freeCapacity, freeOwners, groupMasks, prune, reinitFree, subnetIds, trainableRows, union, zeroForeignIncoming, type Owners } from './masks.ts';
import { identify, Thresholds } from './identify.ts';
import { clusterByConnectivity, connectivityScores } from './connectivity.ts';
import { FlopCounter, forwardFlops } from './flops.ts';

export const CnnOptionsShape = {
  /** Channel multiplier of the ResNet-18 ([64, 128, 256, 512]·width). */
  width: z.number().positive().max(4).default(0.25),
  /** Images are resized to this square side (RGB). */
  imageSize: z.int().min(8).default(32),
  /** Keep BN running statistics for evaluation (default: batch statistics, as the reference). */
  runningStats: z.boolean().default(false),
  lr: z.number().positive().default(0.1),
  /** SGD steps per incoming batch (default: the run's onlineIter, one step per observe call). */
  onlineEpochs: z.int().positive().optional(),
  bufferPerClass: z.int().positive().default(100),
  pruneBatch: z.int().positive().default(3),
  prunePercPerLayer: z.number().min(0).lt(1).default(0.65),
  mergedPrunePercPerLayer: z.number().min(0).lt(1).default(0.3),
  finetuneEpochs: z.int().min(0).default(20),
  trainEpochs: z.int().min(0).default(10),
  /** Batch size of offline (re)training and fine-tuning on buffers. */
  offlineBatch: z.int().positive().default(128),
  maxSubnets: z.int().positive().default(5),
  numClusters: z.int().positive().default(3),
  unusedThreshold: z.int().positive().default(8),
  thresholdWindow: z.int().positive().default(6),
  thresholdFloor: z.number().min(0).max(1).default(0.15),
  evalBatch: z.int().positive().default(256),
};
export const CnnOptionsSchema = z.strictObject(CnnOptionsShape);
export type CnnOptions = z.output<typeof CnnOptionsSchema>;

/** What distinguishes the methods. */
export interface CnnMode {
  /** A subnet per task (PackNet masks) or one network for everything. */
  subnets: boolean;
  prune: boolean;
  merge: boolean;
  /** Train every batch with buffered samples of every other task (the replay baseline). */
  replayAll: boolean;
  /** Keep buffers (needed by pruning's fine-tuning, merges and replay). */
  buffers: boolean;
}

interface CnnTask {
  id: number;
  subnet: number;
  /** Global labels; head index = position. */
  classes: number[];
  head: Head;
  /** Buffered images per global label. */
  buffer: Map<number, Image[]>;
}

interface MergeLog {
  set: number;
  members: number[][];
  ms: number;
}

const MEAN = [0.5, 0.5, 0.5];
const STD = [0.5, 0.5, 0.5];

/** MultiStep schedule: lr × 0.1 from step ⌊E/2⌋ and × 0.01 from ⌊2E/3⌋ (E = steps of the batch or epochs). */
export function multiStepLr(lr: number, k: number, E: number): number {
  const m1 = Math.floor(E / 2);
  const m2 = Math.floor((2 * E) / 3);
  let f = 1;
  if (E >= 2 && k >= m1) f *= 0.1;
  if (E >= 3 && k >= m2) f *= 0.1;
  return lr * f;
}

export class CnnLearner implements Method {
  readonly layout: ResNetLayout;
  private net!: CnnNet;
  private owners: Owners;
  private readonly tasks = new Map<number, CnnTask>();
  private readonly thresholds: Thresholds;
  private current: CnnTask | null = null;
  private nextTask = 0;
  private nextSubnet = 0;
  private setIndex = -1;
  private setClasses: number[] = [];
  private setStart = 0;
  private readonly subnetBatches = new Map<number, number>();
  private readonly pruned = new Set<number>();
  /** Milliseconds of the current set before a restore (its seconds in `perSet` span the interruption's both sides). */
  private setBefore = 0;
  private lastOnline: { preds: Int32Array } | null = null;
  private readonly chw = new WeakMap<Image, Float32Array>();
  readonly flops = new FlopCounter();
  readonly merges: MergeLog[] = [];
  readonly perSet: Array<{ seconds: number; task: number; freeCapacity: number; newTask: boolean }> = [];
  private pendingNew = false;

  constructor(
    readonly name: string,
    readonly o: CnnOptions,
    readonly mode: CnnMode,
    private readonly engine: Engine,
    private readonly rng: Rng,
    private readonly ownEngine: boolean,
  ) {
    this.layout = resnetLayout({ width: o.width, imageSize: o.imageSize, runningStats: o.runningStats });
    this.owners = freeOwners(this.layout);
    this.thresholds = new Thresholds({ window: o.thresholdWindow, floor: o.thresholdFloor, unusedThreshold: o.unusedThreshold });
  }

  async init(): Promise<void> {
    this.net = await CnnNet.create(this.engine, this.layout, this.rng.fork(), { evalBatch: this.o.evalBatch });
    if (!this.mode.subnets) allocate(this.owners, this.nextSubnet++);
  }

  // -- images --------------------------------------------------------------------------------------------------

  private pixels(images: readonly Image[]): Float32Array {
    const S = this.o.imageSize;
    const per = 3 * S * S;
    const out = new Float32Array(images.length * per);
    images.forEach((img, i) => {
      let t = this.chw.get(img);
      if (!t) {
        let im = img.channels === 3 ? img : toRgb(img);
        if (im.width !== S || im.height !== S) im = resize(im, S, S, 'bilinear');
        t = toCHW(im, MEAN, STD);
        this.chw.set(img, t);
      }
      out.set(t, i * per);
    });
    return out;
  }

  // -- heads and features --------------------------------------------------------------------------------------

  private featureMask(subnet: number): Float32Array {
    return groupMasks(this.owners, [subnet])[this.layout.featureGroup]!;
  }

  /** Union-network features of `x` (every subnet's channels; each subnet's exactly as its own forward). */
  private async unionFeatures(x: Float32Array, n: number): Promise<Float32Array> {
    const ids = subnetIds(this.owners);
    const f = await this.net.features(x, groupMasks(this.owners, ids));
    this.flops.infer(forwardFlops(this.layout, this.owners, new Set(ids), 0), n);
    return f;
  }

  /** Per task: softmax probabilities [n, K] of its head on the union features (masked to its subnet). */
  private probsOf(task: CnnTask, feats: Float32Array, n: number): Float32Array {
    const F = this.layout.features;
    const m = this.featureMask(task.subnet);
    const f = new Float32Array(feats.length);
    for (let i = 0; i < n; i++) for (let d = 0; d < F; d++) f[i * F + d] = feats[i * F + d]! * m[d]!;
    const logits = headLogits(f, task.head, F);
    const K = task.classes.length;
    for (let i = 0; i < n; i++) {
      let mx = -Infinity;
      for (let k = 0; k < K; k++) mx = Math.max(mx, logits[i * K + k]!);
      let s = 0;
      for (let k = 0; k < K; k++) s += logits[i * K + k] = Math.exp(logits[i * K + k]! - mx);
      for (let k = 0; k < K; k++) logits[i * K + k]! /= s;
    }
    return logits;
  }

  /** Best label of `task` for sample i among `allowed` (global labels), with its probability. */
  private static pick(task: CnnTask, probs: Float32Array, i: number, allowed: ReadonlySet<number> | null): { label: number; p: number } {
    const K = task.classes.length;
    let best = -1;
    let bp = -1;
    for (let k = 0; k < K; k++) {
      const l = task.classes[k]!;
      if (allowed && !allowed.has(l)) continue;
      const p = probs[i * K + k]!;
      if (p > bp) (bp = p), (best = l);
    }
    return { label: best, p: bp };
  }

  async predict(images: Image[], candidates: readonly number[], ctx: PredictContext): Promise<Int32Array> {
    const n = images.length;
    const out = new Int32Array(n).fill(-1);
    if (n === 0 || this.tasks.size === 0) return out;
    const allowed = new Set(candidates);
    const x = this.pixels(images);
    const feats = await this.unionFeatures(x, n);
    const all = [...this.tasks.values()].filter((t) => t.classes.some((c) => allowed.has(c)));
    if (all.length === 0) return out;
    const probs = new Map(all.map((t) => [t.id, this.probsOf(t, feats, n)]));
    const chunkHead = (pool: CnnTask[]): CnnTask => {
      let best = pool[0]!;
      let bs = -1;
      for (const t of pool) {
        const pr = probs.get(t.id)!;
        let s = 0;
        for (let i = 0; i < n; i++) s += CnnLearner.pick(t, pr, i, allowed).p;
        if (s > bs) (bs = s), (best = t);
      }
      return best;
    };
    let head: CnnTask | null = null;
    if (ctx.purpose === 'online') {
      head = this.current && probs.has(this.current.id) ? this.current : chunkHead(all);
    } else {
      const exact = all.filter((t) => t.classes.length === allowed.size && t.classes.every((c) => allowed.has(c)));
      if (exact.length > 0) head = chunkHead(exact);
    }
    for (let i = 0; i < n; i++) {
      if (head) {
        out[i] = CnnLearner.pick(head, probs.get(head.id)!, i, allowed).label;
        continue;
      }
      let bp = -1;
      for (const t of all) {
        const r = CnnLearner.pick(t, probs.get(t.id)!, i, allowed);
        if (r.p > bp) (bp = r.p), (out[i] = r.label);
      }
    }
    if (ctx.purpose === 'online') this.lastOnline = { preds: out.slice() };
    return out;
  }

  // -- tasks, subnets ------------------------------------------------------------------------------------------

  private newHead(K: number): Head {
    const F = this.layout.features;
    const bound = 1 / Math.sqrt(F);
    return { w: Float32Array.from({ length: K * F }, () => this.rng.uniform(-bound, bound)), b: Float32Array.from({ length: K }, () => this.rng.uniform(-bound, bound)) };
  }

  private async openTask(classes: number[]): Promise<CnnTask> {
    let subnet = 0;
    if (this.mode.subnets) {
      subnet = this.nextSubnet++;
      const w = await this.net.weights();
      reinitFree(this.layout, this.owners, w, this.net.initial);
      allocate(this.owners, subnet);
      zeroForeignIncoming(this.layout, this.owners, w);
      await this.net.setWeights(w);
      this.subnetBatches.set(subnet, 0);
    }
    const t: CnnTask = { id: this.nextTask++, subnet, classes: [...classes].sort((a, b) => a - b), head: this.newHead(classes.length), buffer: new Map() };
    this.tasks.set(t.id, t);
    this.thresholds.add(t.id, this.setIndex);
    return t;
  }

  private tasksOfSubnet(subnet: number): CnnTask[] {
    return [...this.tasks.values()].filter((t) => t.subnet === subnet);
  }

  private headAccuracy(task: CnnTask, probs: Float32Array, labels: Int32Array): number {
    let c = 0;
    for (let i = 0; i < labels.length; i++) if (CnnLearner.pick(task, probs, i, null).label === labels[i]) c++;
    return c / labels.length;
  }

  async beginTask(task: TaskInfo, _ctx: TaskContext): Promise<void> {
    this.setIndex++;
    this.current = null;
    this.setClasses = [...task.classes];
    this.setStart = performance.now();
    this.setBefore = 0;
  }

  // -- training -------------------------------------------------------------------------------------------------

  /** The tasks whose heads train together with `task` (its subnet's tasks; every task with `replayAll`). */
  private partners(task: CnnTask): CnnTask[] {
    const pool = this.mode.replayAll ? [...this.tasks.values()] : this.tasksOfSubnet(task.subnet);
    return [task, ...pool.filter((t) => t.id !== task.id).sort((a, b) => a.id - b.id)];
  }

  /** Stacked head of `tasks` and each task's label offset. */
  private static stack(tasks: readonly CnnTask[], F: number): { head: Head; offsets: Map<number, number> } {
    const K = tasks.reduce((s, t) => s + t.classes.length, 0);
    const head: Head = { w: new Float32Array(K * F), b: new Float32Array(K) };
    const offsets = new Map<number, number>();
    let o = 0;
    for (const t of tasks) {
      offsets.set(t.id, o);
      head.w.set(t.head.w, o * F);
      head.b.set(t.head.b, o);
      o += t.classes.length;
    }
    return { head, offsets };
  }

  private static unstack(tasks: readonly CnnTask[], head: Head, F: number): void {
    let o = 0;
    for (const t of tasks) {
      const K = t.classes.length;
      t.head = { w: head.w.slice(o * F, (o + K) * F), b: head.b.slice(o, o + K) };
      o += K;
    }
  }

  private bufferSamples(t: CnnTask, part: 'train' | 'heldOut' | 'all'): Array<{ img: Image; label: number }> {
    const out: Array<{ img: Image; label: number }> = [];
    for (const [label, list] of [...t.buffer].sort((a, b) => a[0] - b[0])) {
      list.forEach((img, k) => {
        const held = k % 10 >= 7;
        if (part === 'all' || (part === 'heldOut') === held) out.push({ img, label });
      });
    }
    return out;
  }

  /** SGD steps on `samples` for `task`'s subnet with the stacked heads of `tasks`; the heads are written back. */
  private async trainOn(tasks: CnnTask[], steps: Array<{ samples: Array<{ img: Image; label: number; task: CnnTask }>; lr: number }>, offline: boolean): Promise<number[]> {
    const F = this.layout.features;
    const subnet = tasks[0]!.subnet;
    const { head, offsets } = CnnLearner.stack(tasks, F);
    const netSteps: NetStep[] = steps.map((s) => ({
      x: this.pixels(s.samples.map((v) => v.img)),
      labels: Int32Array.from(s.samples, (v) => offsets.get(v.task.id)! + v.task.classes.indexOf(v.label)),
      lr: s.lr,
    }));
    for (const s of netSteps) for (const l of s.labels) if (l < 0) throw new Error(`${this.name}: a training label is outside its task's classes`);
    const r = await this.net.train(netSteps, groupMasks(this.owners, [subnet]), trainableRows(this.layout, this.owners, subnet), head);
    CnnLearner.unstack(tasks, r.head, F);
    const per = forwardFlops(this.layout, this.owners, new Set([subnet]), head.b.length);
    for (const s of netSteps) this.flops.train(per, s.labels.length, offline);
    return r.losses;
  }

  /** `epochs` epochs over the tasks' buffers (training part), shuffled, batches of `offlineBatch`. */
  private async trainOffline(tasks: CnnTask[], epochs: number): Promise<void> {
    const pool = tasks.flatMap((t) => this.bufferSamples(t, 'train').map((s) => ({ ...s, task: t })));
    if (pool.length === 0 || epochs === 0) return;
    for (let e = 0; e < epochs; e++) {
      const order = this.rng.permutation(pool.length);
      const steps: Array<{ samples: typeof pool; lr: number }> = [];
      const lr = multiStepLr(this.o.lr, e, epochs);
      for (let a = 0; a < order.length; a += this.o.offlineBatch) steps.push({ samples: order.slice(a, a + this.o.offlineBatch).map((i) => pool[i]!), lr });
      await this.trainOn(tasks, steps, true);
    }
  }

  private async pruneSubnet(subnet: number, frac: number): Promise<void> {
    const w = await this.net.weights();
    prune(this.layout, this.owners, w, subnet, frac);
    zeroForeignIncoming(this.layout, this.owners, w);
    await this.net.setWeights(w);
  }

  async observe(batch: TrainBatch, ctx: ObserveContext): Promise<ObserveResult> {
    const E = this.o.onlineEpochs ?? ctx.stepsThisBatch;
    if (this.o.onlineEpochs !== undefined && ctx.step > 0) return {};
    const info: Record<string, number | string | boolean> = {};
    const n = batch.numIncoming;
    const images = batch.images.slice(0, n);
    const labels = batch.labels.slice(0, n);
    if (ctx.step === 0) {
      if (this.current === null) {
        // task identification at the first batch of a set
        const known = [...this.tasks.values()];
        let claimed: CnnTask | null = null;
        if (known.length > 0) {
          const feats = await this.unionFeatures(this.pixels(images), n);
          const accs = new Map(known.map((t) => [t.id, this.headAccuracy(t, this.probsOf(t, feats, n), labels)]));
          const d = identify(accs, (t) => this.thresholds.threshold(t));
          if (d.best) {
            info['bestTask'] = d.best.task;
            info['bestAcc'] = d.best.acc;
            info['threshold'] = d.best.threshold;
          }
          claimed = d.task === null ? null : this.tasks.get(d.task)!;
        }
        this.pendingNew = claimed === null;
        this.current = claimed ?? (await this.openTask(this.setClasses.length > 0 ? this.setClasses : [...new Set(labels)]));
        this.thresholds.use(this.current.id, this.setIndex);
        info['task'] = this.current.id;
        info['newTask'] = this.pendingNew;
      }
      const cur = this.current;
      // the prequential accuracy of this batch (the runner's prediction just before) feeds the threshold
      if (this.lastOnline && this.lastOnline.preds.length === n) {
        let c = 0;
        for (let i = 0; i < n; i++) if (this.lastOnline.preds[i] === labels[i]) c++;
        this.thresholds.recordOnline(cur.id, c / n);
      }
      this.lastOnline = null;
      if (this.mode.buffers) {
        for (let i = 0; i < n; i++) {
          const list = cur.buffer.get(labels[i]!) ?? [];
          if (list.length < this.o.bufferPerClass && cur.classes.includes(labels[i]!)) list.push(images[i]!);
          cur.buffer.set(labels[i]!, list);
        }
      }
    }
    const cur = this.current!;
    // the steps of this call: all E with onlineEpochs, else this call's one step of the run's onlineIter
    const ks = this.o.onlineEpochs !== undefined ? Array.from({ length: E }, (_, k) => k) : [ctx.step];
    const partners = this.partners(cur);
    const incoming = images.map((img, i) => ({ img, label: labels[i]!, task: cur })).filter((s) => cur.classes.includes(s.label));
    const steps = ks.map((k) => {
      const samples = [...incoming];
      for (const t of partners.slice(1)) {
        const buf = this.bufferSamples(t, 'train');
        for (let j = 0; j < Math.min(n, buf.length); j++) samples.push({ ...buf[this.rng.int(buf.length)]!, task: t });
      }
      return { samples, lr: multiStepLr(this.o.lr, k, E) };
    });
    const losses = steps[0]!.samples.length > 0 ? await this.trainOn(partners, steps, false) : [];
    const last = ks[ks.length - 1]! === E - 1;
    if (last && this.mode.prune && !this.pruned.has(cur.subnet)) {
      const b = (this.subnetBatches.get(cur.subnet) ?? 0) + 1;
      this.subnetBatches.set(cur.subnet, b);
      if (b >= this.o.pruneBatch) {
        const t0 = performance.now();
        await this.pruneSubnet(cur.subnet, this.o.prunePercPerLayer);
        this.pruned.add(cur.subnet);
        await this.trainOffline(this.tasksOfSubnet(cur.subnet), this.o.finetuneEpochs);
        ctx.reportPhase('finetune', performance.now() - t0);
        info['pruned'] = cur.subnet;
      }
    }
    return { ...(losses.length ? { loss: losses.reduce((a, b) => a + b, 0) / losses.length } : {}), ...(Object.keys(info).length ? { info } : {}) };
  }

  async endTask(_task: TaskInfo, ctx: TaskContext): Promise<void> {
    const cur = this.current;
    // recency: drop tasks unused for too long (never the current one)
    for (const id of this.thresholds.stale(this.setIndex)) {
      if (cur && id === cur.id) continue;
      const t = this.tasks.get(id)!;
      this.tasks.delete(id);
      this.thresholds.drop(id);
      if (this.mode.subnets && this.tasksOfSubnet(t.subnet).length === 0) {
        for (const a of this.owners) for (let i = 0; i < a.length; i++) if (a[i] === t.subnet) a[i] = -1;
      }
    }
    if (this.mode.merge && subnetIds(this.owners).length > this.o.maxSubnets) await this.mergeSubnets(ctx);
    this.perSet.push({ seconds: (this.setBefore + performance.now() - this.setStart) / 1000, task: cur?.id ?? -1, freeCapacity: freeCapacity(this.layout, this.owners).channels, newTask: this.pendingNew });
    this.current = null;
  }

  private async mergeSubnets(ctx: TaskContext): Promise<void> {
    const t0 = performance.now();
    const subnets = subnetIds(this.owners);
    const tasks = [...this.tasks.values()].filter((t) => t.buffer.size > 0);
    if (tasks.length === 0) return;
    const masks = groupMasks(this.owners, subnets);
    const probes: Array<{ acts: Float32Array[]; labels: number[] }> = [];
    for (const t of tasks) {
      const samples = this.bufferSamples(t, 'all');
      probes.push({ acts: await this.net.activations(this.pixels(samples.map((s) => s.img)), masks), labels: samples.map((s) => s.label) });
      this.flops.infer(forwardFlops(this.layout, this.owners, new Set(subnets), 0), samples.length);
    }
    const scores = connectivityScores(probes, this.owners, groupPairs(this.layout), subnets);
    const groups = clusterByConnectivity(subnets, scores, this.o.numClusters, 0).filter((g) => g.length > 1);
    for (const g of groups) {
      const into = g[g.length - 1]!;
      union(this.owners, g, into);
      for (const t of this.tasks.values()) if (g.includes(t.subnet)) t.subnet = into;
      const members = this.tasksOfSubnet(into);
      await this.trainOffline(members, this.o.trainEpochs);
      await this.pruneSubnet(into, this.o.mergedPrunePercPerLayer);
      this.pruned.add(into);
      await this.trainOffline(members, this.o.finetuneEpochs);
      // new thresholds from held-out buffer accuracy
      for (const t of members) {
        const held = this.bufferSamples(t, 'heldOut');
        if (held.length === 0) continue;
        const f = await this.net.features(this.pixels(held.map((s) => s.img)), groupMasks(this.owners, [into]));
        this.thresholds.setHeldOut(t.id, this.headAccuracy(t, this.probsOf(t, f, held.length), Int32Array.from(held, (s) => s.label)));
      }
    }
    const ms = performance.now() - t0;
    ctx.reportPhase('merge', ms);
    this.merges.push({ set: this.setIndex, members: groups, ms });
  }

  // -- checkpoint ------------------------------------------------------------------------------------------------

  /**
   * Everything the learner continues from: conv weights, the kept initial weights, BN running statistics, filter
   * owners, per task its head, classes and buffered images (pixels with their shapes), thresholds, counters, the
   * merge and per-set logs, the FLOP counts and its generator. The SGD momentum is not kept: every `train` call
   * starts it from zero (the reference's per-batch schedule), so it carries nothing across calls.
   */
  async saveState(): Promise<MethodState> {
    const tensors: Record<string, TensorData> = {};
    const f32 = (a: Float32Array, dims: number[]): TensorData => ({ dtype: 'float32', dims, data: a.slice() });
    const w = await this.net.weights();
    for (const c of this.layout.convs) {
      const dims = [c.outChannels, c.inChannels, c.kernel, c.kernel];
      tensors[`net/${c.weight}`] = f32(w[c.weight]!, dims);
      tensors[`initial/${c.weight}`] = f32(this.net.initial[c.weight]!, dims);
    }
    if (this.layout.config.runningStats) {
      for (const [name, st] of Object.entries(await this.net.runningStats())) {
        tensors[`bn/${name}/mean`] = f32(st.mean, [st.mean.length]);
        tensors[`bn/${name}/var`] = f32(st.variance, [st.variance.length]);
      }
    }
    this.owners.forEach((a, g) => (tensors[`owners/${g}`] = { dtype: 'int32', dims: [a.length], data: a.slice() }));
    const F = this.layout.features;
    const tasks = [...this.tasks.values()].sort((a, b) => a.id - b.id).map((t) => {
      tensors[`task/${t.id}/head.w`] = f32(t.head.w, [t.classes.length, F]);
      tensors[`task/${t.id}/head.b`] = f32(t.head.b, [t.classes.length]);
      const buffer = [...t.buffer].sort((a, b) => a[0] - b[0]).map(([label, list]) => {
        const bytes = new Uint8Array(list.reduce((n, im) => n + im.pixels.length, 0));
        let o = 0;
        for (const im of list) {
          bytes.set(im.pixels, o);
          o += im.pixels.length;
        }
        tensors[`task/${t.id}/buffer/${label}`] = { dtype: 'uint8', dims: [bytes.length], data: bytes };
        return { label, shapes: list.map((im) => [im.width, im.height, im.channels]) };
      });
      return { id: t.id, subnet: t.subnet, classes: t.classes, buffer };
    });
    if (this.lastOnline) tensors['lastOnline'] = { dtype: 'int32', dims: [this.lastOnline.preds.length], data: this.lastOnline.preds.slice() };
    return {
      tensors,
      json: {
        format: 'moeclip.cnn-learner',
        version: 1,
        tasks,
        current: this.current?.id ?? null,
        nextTask: this.nextTask,
        nextSubnet: this.nextSubnet,
        setIndex: this.setIndex,
        setClasses: [...this.setClasses],
        setMs: this.setBefore + (performance.now() - this.setStart),
        subnetBatches: [...this.subnetBatches],
        pruned: [...this.pruned].sort((a, b) => a - b),
        pendingNew: this.pendingNew,
        thresholds: this.thresholds.toJSON(),
        flops: this.flops.toJSON(),
        merges: this.merges.map((m) => ({ ...m, members: m.members.map((g) => [...g]) })),
        perSet: this.perSet.map((p) => ({ ...p })),
        rng: this.rng.snapshot(),
      },
    };
  }

  /** Restores {@link saveState}'s state into a learner created with the same options; errors name the field. */
  async loadState(state: MethodState): Promise<void> {
    const where = `${this.name} state`;
    const j = state.json;
    const fail = (field: string, msg: string): never => {
      throw new Error(`${where}.${field}: ${msg}`);
    };
    if (j['format'] !== 'moeclip.cnn-learner' || j['version'] !== 1) fail('format', `expected moeclip.cnn-learner version 1, got ${JSON.stringify(j['format'])} ${JSON.stringify(j['version'])}`);
    const tensor = (name: string, dtype: TensorData['dtype'], n: number): TensorData['data'] => {
      const t = state.tensors[name];
      if (!t) return fail(`tensors['${name}']`, 'missing');
      if (t.dtype !== dtype || t.data.length !== n) fail(`tensors['${name}']`, `expected ${dtype} with ${n} values, got ${t.dtype} with ${t.data.length}`);
      return t.data;
    };
    const isInt = (v: unknown, min = 0): v is number => typeof v === 'number' && Number.isInteger(v) && v >= min;
    const w: Record<string, Float32Array> = {};
    const init: Record<string, Float32Array> = {};
    for (const c of this.layout.convs) {
      const n = c.outChannels * c.inChannels * c.kernel * c.kernel;
      w[c.weight] = Float32Array.from(tensor(`net/${c.weight}`, 'float32', n) as Float32Array);
      init[c.weight] = tensor(`initial/${c.weight}`, 'float32', n) as Float32Array;
    }
    const owners = this.layout.groups.map((g, i) => Int32Array.from(tensor(`owners/${i}`, 'int32', g.channels) as Int32Array));
    const F = this.layout.features;
    const list = j['tasks'];
    if (!Array.isArray(list)) fail('tasks', 'expected a list');
    const tasks = (list as unknown[]).map((raw, i): CnnTask => {
      const t = jsonObject(raw, `${where}.tasks[${i}]`);
      const id = t['id'];
      const subnet = t['subnet'];
      const classes = t['classes'];
      if (!isInt(id) || !isInt(subnet) || !Array.isArray(classes) || classes.length === 0 || !classes.every((c) => isInt(c))) fail(`tasks[${i}]`, 'expected { id, subnet, classes: label[] }');
      const K = (classes as number[]).length;
      const head = { w: Float32Array.from(tensor(`task/${id}/head.w`, 'float32', K * F) as Float32Array), b: Float32Array.from(tensor(`task/${id}/head.b`, 'float32', K) as Float32Array) };
      const buffer = new Map<number, Image[]>();
      const bl = t['buffer'];
      if (!Array.isArray(bl)) fail(`tasks[${i}].buffer`, 'expected a list');
      (bl as unknown[]).forEach((rawB, k) => {
        const b = jsonObject(rawB, `${where}.tasks[${i}].buffer[${k}]`);
        const label = b['label'];
        const shapes = b['shapes'];
        const ok = (s: unknown): s is [number, number, 1 | 3] => Array.isArray(s) && s.length === 3 && isInt(s[0], 1) && isInt(s[1], 1) && (s[2] === 1 || s[2] === 3);
        if (!isInt(label) || !Array.isArray(shapes) || !shapes.every(ok)) fail(`tasks[${i}].buffer[${k}]`, 'expected { label, shapes: [width, height, channels][] }');
        const sizes = (shapes as Array<[number, number, 1 | 3]>).map(([wd, h, c]) => wd * h * c);
        const bytes = tensor(`task/${id}/buffer/${label}`, 'uint8', sizes.reduce((a, v) => a + v, 0)) as Uint8Array;
        let o = 0;
        buffer.set(
          label as number,
          (shapes as Array<[number, number, 1 | 3]>).map(([width, height, channels], m) => {
            const pixels = bytes.slice(o, o + sizes[m]!);
            o += sizes[m]!;
            return { width, height, channels, pixels };
          }),
        );
      });
      return { id: id as number, subnet: subnet as number, classes: [...(classes as number[])], head, buffer };
    });
    const ints = (field: string, min = 0): number => (isInt(j[field], min) ? (j[field] as number) : fail(field, `expected an integer >= ${min}`));
    const nextTask = ints('nextTask');
    const nextSubnet = ints('nextSubnet');
    const setIndex = ints('setIndex', -1);
    const current = j['current'];
    if (!(current === null || (isInt(current) && tasks.some((t) => t.id === current)))) fail('current', 'expected null or a saved task id');
    const setClasses = j['setClasses'];
    if (!Array.isArray(setClasses) || !setClasses.every((c) => isInt(c))) fail('setClasses', 'expected a list of labels');
    const setMs = j['setMs'];
    if (typeof setMs !== 'number' || !Number.isFinite(setMs) || setMs < 0) fail('setMs', 'expected a non-negative number');
    const pairs = j['subnetBatches'];
    if (!Array.isArray(pairs) || !pairs.every((p) => Array.isArray(p) && isInt(p[0]) && isInt(p[1]))) fail('subnetBatches', 'expected [subnet, batches] pairs');
    const pruned = j['pruned'];
    if (!Array.isArray(pruned) || !pruned.every((v) => isInt(v))) fail('pruned', 'expected a list of subnet ids');
    if (typeof j['pendingNew'] !== 'boolean') fail('pendingNew', 'expected a boolean');
    const merges = j['merges'];
    if (!Array.isArray(merges) || !merges.every((m) => typeof m === 'object' && m !== null && isInt(m.set) && Array.isArray(m.members) && typeof m.ms === 'number')) fail('merges', 'expected { set, members, ms } entries');
    const perSet = j['perSet'];
    if (!Array.isArray(perSet) || !perSet.every((p) => typeof p === 'object' && p !== null && typeof p.seconds === 'number' && isInt(p.task, -1) && typeof p.freeCapacity === 'number' && typeof p.newTask === 'boolean')) {
      fail('perSet', 'expected { seconds, task, freeCapacity, newTask } entries');
    }
    const flops = FlopCounter.fromJSON(j['flops'] as never, `${where}.flops`);
    this.thresholds.restore(j['thresholds'], `${where}.thresholds`);
    this.rng.restore(j['rng'] as never, `${where}.rng`);

    await this.net.setWeights(w);
    this.net.restoreInitial(init);
    if (this.layout.config.runningStats) {
      const stats: Record<string, { mean: Float32Array; variance: Float32Array }> = {};
      for (const c of this.layout.convs) stats[c.name] = { mean: tensor(`bn/${c.name}/mean`, 'float32', c.outChannels) as Float32Array, variance: tensor(`bn/${c.name}/var`, 'float32', c.outChannels) as Float32Array };
      await this.net.setRunningStats(stats);
    }
    this.owners = owners;
    this.tasks.clear();
    for (const t of tasks) this.tasks.set(t.id, t);
    this.current = current === null ? null : this.tasks.get(current as number)!;
    this.nextTask = nextTask;
    this.nextSubnet = nextSubnet;
    this.setIndex = setIndex;
    this.setClasses = [...(setClasses as number[])];
    this.setBefore = setMs as number;
    this.setStart = performance.now();
    this.subnetBatches.clear();
    for (const [a, b] of pairs as Array<[number, number]>) this.subnetBatches.set(a, b);
    this.pruned.clear();
    for (const v of pruned as number[]) this.pruned.add(v);
    this.pendingNew = j['pendingNew'] as boolean;
    this.flops.inference = flops.inference;
    this.flops.training = flops.training;
    this.flops.retraining = flops.retraining;
    this.merges.splice(0, this.merges.length, ...(merges as MergeLog[]).map((m) => ({ set: m.set, members: m.members.map((g) => [...g]), ms: m.ms })));
    this.perSet.splice(0, this.perSet.length, ...(perSet as CnnLearner['perSet']).map((p) => ({ ...p })));
    const lo = state.tensors['lastOnline'];
    this.lastOnline = lo ? { preds: Int32Array.from(lo.data as Int32Array) } : null;
  }

  describeCost(): CostInfo {
    const heads = [...this.tasks.values()].reduce((s, t) => s + t.head.w.length + t.head.b.length, 0);
    const fc = freeCapacity(this.layout, this.owners);
    const extra: Record<string, number> = {
      subnets: subnetIds(this.owners).length,
      tasks: this.tasks.size,
      merges: this.merges.length,
      mergeMs: this.merges.reduce((s, m) => s + m.ms, 0),
      freeCapacity: fc.channels,
      freeWeights: fc.weights,
      flopsInference: this.flops.inference,
      flopsTraining: this.flops.training,
      flopsRetraining: this.flops.retraining,
    };
    this.perSet.forEach((s, i) => {
      extra[`setSeconds:${i}`] = s.seconds;
      extra[`setTask:${i}`] = s.task;
      extra[`setFreeCapacity:${i}`] = s.freeCapacity;
      extra[`setNewTask:${i}`] = s.newTask ? 1 : 0;
    });
    return { trainableParams: this.net.paramCount + heads, totalParams: this.net.paramCount + heads, extra };
  }

  async dispose(): Promise<void> {
    await this.net?.dispose();
    if (this.ownEngine) await this.engine.close();
  }
}

/**
 * Creates a CNN learner for a method: on the run's shared engine when the caller provides one (`moeclip run
 * --threads N` does, through the CLIP resources), else on an engine of its own.
 */
export async function createCnnLearner(name: string, o: CnnOptions, mode: CnnMode, env: MethodEnv): Promise<CnnLearner> {
  const res = env.resources?.[CLIP_RESOURCES] as ClipResources | undefined;
  const engine = res ? await res.sharedEngine() : await Engine.create();
  const m = new CnnLearner(name, o, mode, engine, env.rng.fork(), !res);
  await m.init();
  return m;
}
