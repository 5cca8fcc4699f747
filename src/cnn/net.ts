/**
 * The CNN track's network at run time: the ResNet of src/cnn/resnet.ts on an {@link Engine}, with its weights,
 * SGD momentum and (optionally) BN running statistics resident in one engine store. A step sends the batch, the
 * group masks, the row masks and the head; it returns the loss and the updated head. No per-step weight copies.
 *
 * - Init: kaiming-normal with **fan_out** (PyTorch's ResNet init: std = √(2 / (outC·k·k))), from a seeded Rng; the
 *   initial weights are kept host-side ({@link CnnNet.initial}) to re-initialise free filters.
 * - Heads: one linear layer per task, W [K, F] and b [K], kept **host-side** by the caller as Float32Arrays (so a
 *   merged "stacked" classifier is a concatenation; K is symbolic in the graphs). The forward's logits are
 *   computed host-side from the features ({@link headLogits}); a training step puts the head into the store as
 *   `head.w` / `head.b`, trains it with the backbone and writes the updated values back into the caller's arrays.
 * - Training: cross-entropy of the head on the masked pooled features (the features are the last group's
 *   masked activations, so the head reads features × the feature-group mask); SGD lr per step, momentum 0.9,
 *   Nesterov, no weight decay (src/graph/optim.ts via buildTrainStep). Momentum persists across
 *   {@link CnnNet.trainStep} calls until {@link CnnNet.resetMomentum}; the head's momentum restarts whenever a
 *   different head object is passed. {@link CnnNet.train} is the reference's per-batch loop: momentum from zero,
 *   then one step per batch. Conv filters outside the trainable rows get no update at all (buildTrainStep
 *   `rowMasks`: value and momentum pass through bit for bit).
 * - BN: batch statistics always, unless the layout has `runningStats`: then the train step also updates every
 *   BN's running mean and unbiased running variance (momentum 0.1, as PyTorch) as `.next` outputs, only for the
 *   filters that train, and the forward normalises with them (`mode: 'eval'`, the default then) or with the
 *   batch's statistics (`mode: 'batch'`).
 * - Sessions are cached by the engine, keyed by the layout, the mode and (train) the head size K.
 */
import * as G from '../graph/index.ts';
import type { Engine, SessionHandle } from '../runtime/engine.ts';
import { ResidentTrainState } from '../runtime/resident-state.ts';
import type { TensorData } from '../runtime/types.ts';
import type { Rng } from '../util/rng.ts';
import { buildResNet, layoutKey, type ResNetLayout } from './resnet.ts';
import type { Weights } from './masks.ts';

export interface Head {
  /** [K, F] row-major. */
  w: Float32Array;
  /** [K]. */
  b: Float32Array;
}

/** One training step's batch: NCHW pixels, local labels of the head, learning rate. */
export interface NetStep {
  x: Float32Array;
  labels: Int32Array;
  lr: number;
}

/** `eval`: running BN statistics (layouts with `runningStats`); `batch`: the statistics of each evaluated chunk. */
export type ForwardMode = 'eval' | 'batch';

const MOMENTUM = 0.9;
const BN_MOMENTUM = 0.1;

export class CnnNet {
  /** Initial (He) conv weights, host-side; never changed. */
  readonly initial: Weights;
  private readonly state: ResidentTrainState;
  private headK = -1;
  /** The head object the store's `head.w` / `head.b` and their momentum belong to. */
  private headRef: Head | null = null;
  /** Images through the forward (eval) and training graphs. */
  readonly counts = { evalImages: 0, trainImages: 0 };

  private constructor(
    readonly engine: Engine,
    readonly layout: ResNetLayout,
    initial: Weights,
    readonly evalBatch: number,
  ) {
    this.initial = initial;
    this.state = new ResidentTrainState(engine, { optimizer: 'sgd', momentum: true, name: 'cnn' });
  }

  /** He-initialised weights for `layout` (kaiming-normal, fan_out: std = √(2 / (outC·k·k))). */
  static initWeights(layout: ResNetLayout, rng: Rng): Weights {
    const out: Weights = {};
    for (const c of layout.convs) {
      const n = c.outChannels * c.inChannels * c.kernel * c.kernel;
      const std = Math.sqrt(2 / (c.outChannels * c.kernel * c.kernel));
      out[c.weight] = Float32Array.from({ length: n }, () => rng.normal() * std);
    }
    return out;
  }

  /** A network with fresh He weights from `rng`, resident in a new store of `engine`. */
  static async create(engine: Engine, layout: ResNetLayout, rng: Rng, opts: { evalBatch?: number } = {}): Promise<CnnNet> {
    const evalBatch = opts.evalBatch ?? 256;
    if (!Number.isInteger(evalBatch) || evalBatch < 1) throw new Error(`CnnNet.create: evalBatch must be a positive integer, got ${evalBatch}`);
    const w = CnnNet.initWeights(layout, rng);
    const initial: Weights = {};
    for (const [k, v] of Object.entries(w)) initial[k] = v.slice();
    const net = new CnnNet(engine, layout, initial, evalBatch);
    await net.state.add(net.toTensors(w), { transfer: true });
    // row-masked params count their updates per row
    const t: Record<string, TensorData> = {};
    for (const c of layout.convs) t[`${c.weight}.t`] = { dtype: 'float32', dims: [c.outChannels, 1, 1, 1], data: new Float32Array(c.outChannels) };
    if (layout.config.runningStats) {
      for (const c of layout.convs) {
        t[`bn.${c.name}.mean`] = { dtype: 'float32', dims: [c.outChannels], data: new Float32Array(c.outChannels) };
        t[`bn.${c.name}.var`] = { dtype: 'float32', dims: [c.outChannels], data: new Float32Array(c.outChannels).fill(1) };
      }
    }
    await engine.putTensors(net.state.store, t, { transfer: true });
    return net;
  }

  private toTensors(w: Partial<Weights>): Record<string, TensorData> {
    const out: Record<string, TensorData> = {};
    const known = new Set(this.layout.convs.map((c) => c.weight));
    for (const k of Object.keys(w)) if (!known.has(k)) throw new Error(`CnnNet.setWeights: '${k}' is not a conv weight of the network`);
    for (const c of this.layout.convs) {
      const d = w[c.weight];
      if (!d) continue;
      const n = c.outChannels * c.inChannels * c.kernel * c.kernel;
      if (!(d instanceof Float32Array) || d.length !== n) throw new Error(`CnnNet.setWeights: '${c.weight}' must be a Float32Array of ${n} values`);
      out[c.weight] = { dtype: 'float32', dims: [c.outChannels, c.inChannels, c.kernel, c.kernel], data: d.slice() };
    }
    return out;
  }

  /** Host copies of the conv weights ([outC, inC, k, k] row-major, by weight name). */
  async getWeights(): Promise<Weights> {
    const t = await this.state.get(this.layout.convs.map((c) => c.weight));
    const out: Weights = {};
    for (const [k, v] of Object.entries(t)) out[k] = v.data as Float32Array;
    return out;
  }

  /** Host copies of the conv weights' SGD momentum buffers (by weight name). */
  async getMomentum(): Promise<Weights> {
    const t = await this.state.get(this.layout.convs.map((c) => `${c.weight}.buf`));
    return Object.fromEntries(this.layout.convs.map((c) => [c.weight, t[`${c.weight}.buf`]!.data as Float32Array]));
  }

  /** Same as {@link getWeights}. */
  weights(): Promise<Weights> {
    return this.getWeights();
  }

  /** Replaces conv weights (any subset; momentum untouched). */
  async setWeights(w: Partial<Weights>): Promise<void> {
    for (const [k, v] of Object.entries(this.toTensors(w))) await this.state.set(k, v);
  }

  /** Zeroes the SGD momentum of every conv weight and of the resident head. */
  async resetMomentum(): Promise<void> {
    const zero: Record<string, TensorData> = {};
    for (const c of this.layout.convs) {
      zero[`${c.weight}.buf`] = { dtype: 'float32', dims: [c.outChannels, c.inChannels, c.kernel, c.kernel], data: new Float32Array(c.outChannels * c.inChannels * c.kernel * c.kernel) };
    }
    await this.engine.putTensors(this.state.store, zero, { transfer: true });
    this.headRef = null;
  }

  /** Running BN statistics (mean, unbiased variance) per conv name, with `runningStats`. */
  async runningStats(): Promise<Record<string, { mean: Float32Array; variance: Float32Array }>> {
    if (!this.layout.config.runningStats) throw new Error('CnnNet.runningStats: the layout keeps no running statistics (runningStats: false)');
    const names = this.layout.convs.flatMap((c) => [`bn.${c.name}.mean`, `bn.${c.name}.var`]);
    const t = await this.engine.getTensors(this.state.store, names);
    return Object.fromEntries(this.layout.convs.map((c) => [c.name, { mean: t[`bn.${c.name}.mean`]!.data as Float32Array, variance: t[`bn.${c.name}.var`]!.data as Float32Array }]));
  }

  /** Replaces the running BN statistics (as {@link runningStats} returns them), for a restored state. */
  async setRunningStats(stats: Record<string, { mean: Float32Array; variance: Float32Array }>): Promise<void> {
    if (!this.layout.config.runningStats) throw new Error('CnnNet.setRunningStats: the layout keeps no running statistics (runningStats: false)');
    const t: Record<string, TensorData> = {};
    for (const c of this.layout.convs) {
      const s = stats[c.name];
      if (!s || s.mean.length !== c.outChannels || s.variance.length !== c.outChannels) throw new Error(`CnnNet.setRunningStats: '${c.name}' needs mean and variance of ${c.outChannels} values`);
      t[`bn.${c.name}.mean`] = { dtype: 'float32', dims: [c.outChannels], data: Float32Array.from(s.mean) };
      t[`bn.${c.name}.var`] = { dtype: 'float32', dims: [c.outChannels], data: Float32Array.from(s.variance) };
    }
    await this.engine.putTensors(this.state.store, t, { transfer: true });
  }

  /** Overwrites the kept initial weights (a restored state's), checking every conv's size. */
  restoreInitial(w: Weights): void {
    for (const c of this.layout.convs) {
      const d = w[c.weight];
      const n = c.outChannels * c.inChannels * c.kernel * c.kernel;
      if (!(d instanceof Float32Array) || d.length !== n) throw new Error(`CnnNet.restoreInitial: '${c.weight}' must be a Float32Array of ${n} values`);
      this.initial[c.weight]!.set(d);
    }
  }

  /** Parameters of the backbone. */
  get paramCount(): number {
    return this.layout.convs.reduce((n, c) => n + c.outChannels * c.inChannels * c.kernel * c.kernel, 0);
  }

  private maskFeeds(masks: readonly Float32Array[], where: string): Record<string, TensorData> {
    if (!Array.isArray(masks) || masks.length !== this.layout.groups.length) throw new Error(`${where}: groupMasks must hold ${this.layout.groups.length} masks, got ${masks?.length}`);
    const out: Record<string, TensorData> = {};
    masks.forEach((m, g) => {
      const gr = this.layout.groups[g]!;
      if (!(m instanceof Float32Array) || m.length !== gr.channels) throw new Error(`${where}: groupMasks[${g}] (${gr.name}) must be a Float32Array of ${gr.channels} values`);
      out[`mask.${g}`] = { dtype: 'float32', dims: [m.length], data: m };
    });
    return out;
  }

  private batchOf(x: Float32Array, where: string): number {
    const { inChannels: C, imageSize: S } = this.layout.config;
    const per = C * S * S;
    if (!(x instanceof Float32Array) || x.length === 0 || x.length % per !== 0) throw new Error(`${where}: x must be a non-empty Float32Array of B·${C}·${S}·${S} values, got ${x?.length}`);
    return x.length / per;
  }

  private evalSession(mode: ForwardMode): Promise<SessionHandle> {
    const L = this.layout;
    const running = mode === 'eval' && L.config.runningStats;
    return this.engine.session({ kind: 'cnn-eval', net: layoutKey(L), bn: running ? 'running' : 'batch' }, () => {
      const g = new G.Graph({ name: 'cnn_eval' });
      const S = L.config.imageSize;
      const x = g.input('x', 'float32', ['batch', L.config.inChannels, S, S]);
      const masks = L.groups.map((gr, i) => g.input(`mask.${i}`, 'float32', [gr.channels]));
      const out = buildResNet(L, x, {
        weight: (c) => g.input(c.weight, 'float32', [c.outChannels, c.inChannels, c.kernel, c.kernel]),
        mask: (i) => masks[i]!,
        ...(running ? { stats: (c) => ({ mean: g.input(`bn.${c.name}.mean`, 'float32', [c.outChannels]), variance: g.input(`bn.${c.name}.var`, 'float32', [c.outChannels]) }) } : {}),
      });
      g.output(out.features, 'features');
      out.acts.forEach((a, i) => g.output(G.reduceMean(a, [2, 3]), `act.${i}`));
      return g.toBytes();
    });
  }

  private trainSession(K: number): Promise<SessionHandle> {
    const L = this.layout;
    return this.engine.session({ kind: 'cnn-train', net: layoutKey(L), K }, () => {
      const g = new G.Graph({ name: 'cnn_train' });
      const S = L.config.imageSize;
      const x = g.input('x', 'float32', ['batch', L.config.inChannels, S, S]);
      const y = g.input('labels', 'int64', ['batch']);
      const masks = L.groups.map((gr, i) => g.input(`mask.${i}`, 'float32', [gr.channels]));
      const weights = L.convs.map((c) => g.input(c.weight, 'float32', [c.outChannels, c.inChannels, c.kernel, c.kernel]));
      const byName = new Map(L.convs.map((c, i) => [c.name, weights[i]!]));
      const out = buildResNet(L, x, { weight: (c) => byName.get(c.name)!, mask: (i) => masks[i]! });
      const hw = g.input('head.w', 'float32', [K, L.features]);
      const hb = g.input('head.b', 'float32', [K]);
      const logits = G.add(G.matmul(out.features, G.transpose(hw, [1, 0])), hb);
      const loss = G.crossEntropy(logits, y);
      G.buildTrainStep(g, {
        loss,
        params: [...weights, hw, hb],
        optimizer: { kind: 'sgd', momentum: MOMENTUM, nesterov: true, weightDecay: 0 },
        stepPerParam: true,
        rowMasks: L.convs.map((c) => c.weight),
      });
      if (L.config.runningStats) {
        // running ← (1−m)·running + m·batch (unbiased variance), for the filters that train
        const count = g.input('bn.count', 'float32', []);
        for (const c of L.convs) {
          const rows = g.inputs.find((t) => t.name === `${c.weight}.rows`)!;
          const on = G.reshape(rows, [c.outChannels]);
          const n = G.mul(count, c.outSize * c.outSize);
          const unbias = G.div(n, G.maximum(G.sub(n, 1), 1));
          const st = out.stats[c.name]!;
          for (const [key, batch] of [['mean', st.mean], ['var', G.mul(st.variance, unbias)]] as const) {
            const r = g.input(`bn.${c.name}.${key}`, 'float32', [c.outChannels]);
            g.output(G.where(on, G.add(G.mul(r, 1 - BN_MOMENTUM), G.mul(batch, BN_MOMENTUM)), r), `bn.${c.name}.${key}.next`);
          }
        }
      }
      return g.toBytes();
    });
  }

  /** Runs the eval graph over `x` in chunks of `evalBatch`; returns the requested outputs concatenated. */
  private async evaluate(x: Float32Array, masks: readonly Float32Array[], fetch: string[], mode: ForwardMode | undefined, where: string): Promise<Record<string, Float32Array>> {
    const B = this.batchOf(x, where);
    const mf = this.maskFeeds(masks, where);
    if (mode !== undefined && mode !== 'eval' && mode !== 'batch') throw new Error(`${where}: mode must be 'eval' or 'batch', got ${JSON.stringify(mode)}`);
    const h = await this.evalSession(mode ?? 'eval');
    const { inChannels: C, imageSize: S } = this.layout.config;
    const per = C * S * S;
    const parts: Record<string, Float32Array[]> = Object.fromEntries(fetch.map((f) => [f, []]));
    for (let a = 0; a < B; a += this.evalBatch) {
      const n = Math.min(this.evalBatch, B - a);
      const r = await this.engine.run(h, { x: { dtype: 'float32', dims: [n, C, S, S], data: x.subarray(a * per, (a + n) * per) }, ...mf }, fetch, { stores: [this.state.store] });
      for (const f of fetch) parts[f]!.push(r[f]!.data as Float32Array);
    }
    this.counts.evalImages += B;
    const out: Record<string, Float32Array> = {};
    for (const f of fetch) {
      const list = parts[f]!;
      if (list.length === 1) {
        out[f] = list[0]!;
        continue;
      }
      const all = new Float32Array(list.reduce((s, p) => s + p.length, 0));
      let o = 0;
      for (const p of list) all.set(p, o), (o += p.length);
      out[f] = all;
    }
    return out;
  }

  /**
   * Pooled masked features [B, F] of `x` (NCHW). With batch statistics, each chunk of `evalBatch` images is
   * normalised by its own statistics (as the reference evaluates a batch at a time).
   */
  async features(x: Float32Array, groupMasks: readonly Float32Array[], opts: { mode?: ForwardMode } = {}): Promise<Float32Array> {
    return (await this.evaluate(x, groupMasks, ['features'], opts.mode, 'CnnNet.features'))['features']!;
  }

  /** Logits [B, K] of `head` on the masked features, and the features [B, F]. */
  async forward(x: Float32Array, groupMasks: readonly Float32Array[], head: Head, opts: { mode?: ForwardMode } = {}): Promise<{ logits: Float32Array; features: Float32Array }> {
    this.checkHead(head, 'CnnNet.forward');
    const features = (await this.evaluate(x, groupMasks, ['features'], opts.mode, 'CnnNet.forward'))['features']!;
    return { logits: headLogits(features, head, this.layout.features), features };
  }

  /** Probe: per group, the post-ReLU masked activations averaged over H and W, [B, C] each. */
  async activations(x: Float32Array, groupMasks: readonly Float32Array[], opts: { mode?: ForwardMode } = {}): Promise<Float32Array[]> {
    const names = this.layout.groups.map((_, i) => `act.${i}`);
    const r = await this.evaluate(x, groupMasks, names, opts.mode, 'CnnNet.activations');
    return names.map((n) => r[n]!);
  }

  private checkHead(head: Head, where: string): number {
    const F = this.layout.features;
    if (!head || !(head.b instanceof Float32Array) || head.b.length < 1) throw new Error(`${where}: head.b must be a non-empty Float32Array`);
    const K = head.b.length;
    if (!(head.w instanceof Float32Array) || head.w.length !== K * F) throw new Error(`${where}: head.w must be a Float32Array of K·F = ${K}·${F} values, got ${head.w?.length}`);
    return K;
  }

  /**
   * One SGD step on cross-entropy of `head` over the features masked by `groupMasks`; `trainableFilters` per conv
   * (1 = the output filter trains; others keep value and momentum bit for bit). `head` trains too: its arrays
   * are overwritten with the updated values. Returns the loss (before the update).
   */
  async trainStep(x: Float32Array, labels: Int32Array, groupMasks: readonly Float32Array[], trainableFilters: readonly Uint8Array[], head: Head, lr: number): Promise<number> {
    const where = 'CnnNet.trainStep';
    const L = this.layout;
    const B = this.batchOf(x, where);
    const K = this.checkHead(head, where);
    if (!(labels instanceof Int32Array) || labels.length !== B) throw new Error(`${where}: labels must be an Int32Array of ${B} values (one per image), got ${labels?.length}`);
    for (const l of labels) if (!(l >= 0 && l < K)) throw new Error(`${where}: label ${l} outside the head's ${K} classes`);
    if (typeof lr !== 'number' || !Number.isFinite(lr) || lr < 0) throw new Error(`${where}: lr must be a finite number ≥ 0, got ${lr}`);
    if (!Array.isArray(trainableFilters) || trainableFilters.length !== L.convs.length) throw new Error(`${where}: trainableFilters must hold ${L.convs.length} row masks (one per conv), got ${trainableFilters?.length}`);
    const feeds: Record<string, TensorData> = { ...this.maskFeeds(groupMasks, where) };
    L.convs.forEach((c, i) => {
      const r = trainableFilters[i]!;
      if (!(r instanceof Uint8Array) || r.length !== c.outChannels) throw new Error(`${where}: trainableFilters[${i}] (${c.name}) must be a Uint8Array of ${c.outChannels} values`);
      feeds[`${c.weight}.rows`] = { dtype: 'bool', dims: [c.outChannels, 1, 1, 1], data: r };
    });
    await this.putHead(head, K);
    const h = await this.trainSession(K);
    const S = L.config.imageSize;
    feeds['x'] = { dtype: 'float32', dims: [B, L.config.inChannels, S, S], data: x };
    feeds['labels'] = { dtype: 'int64', dims: [B], data: BigInt64Array.from(labels, (v) => BigInt(v)) };
    if (L.config.runningStats) feeds['bn.count'] = { dtype: 'float32', dims: [], data: Float32Array.of(B) };
    const out = await this.state.trainStep(h, feeds, { lr, fetch: ['loss', 'head.w.next', 'head.b.next'] });
    head.w.set(out['head.w.next']!.data as Float32Array);
    head.b.set(out['head.b.next']!.data as Float32Array);
    this.counts.trainImages += B;
    return (out['loss']!.data as Float32Array)[0]!;
  }

  /** Puts `head` into the store; a head other than the resident one starts with zero momentum. */
  private async putHead(head: Head, K: number): Promise<void> {
    const F = this.layout.features;
    const hw: TensorData = { dtype: 'float32', dims: [K, F], data: head.w.slice() };
    const hb: TensorData = { dtype: 'float32', dims: [K], data: head.b.slice() };
    if (this.headK !== K) {
      if (this.headK >= 0) await this.state.remove(['head.w', 'head.b']);
      await this.state.add({ 'head.w': hw, 'head.b': hb }, { transfer: true });
      this.headK = K;
    } else if (this.headRef !== head) {
      await this.state.set('head.w', hw);
      await this.state.set('head.b', hb);
      await this.engine.putTensors(this.state.store, { 'head.w.buf': { dtype: 'float32', dims: [K, F], data: new Float32Array(K * F) }, 'head.b.buf': { dtype: 'float32', dims: [K], data: new Float32Array(K) } }, { transfer: true });
    } else {
      // same head: its values may have been edited host-side; the momentum carries on
      await this.state.set('head.w', hw);
      await this.state.set('head.b', hb);
    }
    this.headRef = head;
  }

  /**
   * The reference's per-batch training: momentum from zero, then one {@link trainStep} per entry of `steps`.
   * Returns the losses and the updated head (a copy; the argument is not changed).
   */
  async train(steps: readonly NetStep[], groupMasks: readonly Float32Array[], trainableFilters: readonly Uint8Array[], head: Head): Promise<{ losses: number[]; head: Head }> {
    this.checkHead(head, 'CnnNet.train');
    await this.resetMomentum();
    const h: Head = { w: head.w.slice(), b: head.b.slice() };
    const losses: number[] = [];
    for (const s of steps) losses.push(await this.trainStep(s.x, s.labels, groupMasks, trainableFilters, h, s.lr));
    return { losses, head: h };
  }

  async dispose(): Promise<void> {
    await this.state.dispose();
  }
}

/** Logits [B, K] = features [B, F] · Wᵀ + b, host-side (float64 accumulation). */
export function headLogits(features: Float32Array, head: Head, F: number): Float32Array {
  const B = features.length / F;
  const K = head.b.length;
  const out = new Float32Array(B * K);
  for (let i = 0; i < B; i++) {
    for (let k = 0; k < K; k++) {
      let s = head.b[k]!;
      for (let d = 0; d < F; d++) s += features[i * F + d]! * head.w[k * F + d]!;
      out[i * K + k] = s;
    }
  }
  return out;
}
