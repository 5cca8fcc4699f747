/**
 * DDAS (Distribution Discriminative Auto-Selector, MoE-Adapters4CL): one small autoencoder (AE) per task over
 * frozen image features (a vector per image, given by the caller). Per test sample the task whose AE
 * reconstructs it best wins; the sample goes to plain zero-shot CLIP (−1) instead when that error is above the
 * winner's threshold or the winner is a reference task.
 *
 * AE: x̃ = T(x); out = act(W₂·relu(W₁·x̃ + b₁) + b₂), W₁ [H, D], W₂ [D, H] (PyTorch Linear layout and init);
 * error = mean over the D components of (out − x̃)² (MSELoss, mean). A step is Adam with L2 weight decay added to
 * the gradient (torch.optim.Adam `weight_decay`, as the reference), in one graph built by `buildTrainStep` and
 * shared by every AE (weights fed per call, state per AE in a {@link TrainState}).
 *
 * Input transform T (`inputTransform`):
 * - 'standardize' (default): per sample x̃ = (x − mean(x)) / std(x) over its D components, linear output. For
 *   L2-normalised embeddings this is ≈ √D·x: components of unit mean square (the scale Linear init and Adam
 *   suit), a scale-free error (predicting zeros scores exactly 1), and no fitted statistics, so every AE lives in
 *   one fixed input space and errors stay comparable across AEs and over time.
 * - 'sigmoid': the reference's σ(x) target and sigmoid output. On unit vectors (components ~1/√D) σ(x) ≈ 0.5 + x/4,
 *   so targets are nearly constant and errors tiny; kept for the reference's conv features.
 * - 'none': x as given, linear output.
 *
 * Threshold (`threshold`):
 * - 'calibrated' (default q 0.99, scale 1.1, window 256): each AE keeps its `window` most recent prequential
 *   errors: the per-sample errors of each training batch from the step's own forward pass, i.e. before the update
 *   on that batch, on data the AE had not trained on. threshold = quantile_q(errors) × scale (linear interpolation
 *   between order statistics, numpy's default). Prequential errors overstate the held-out errors of a learning AE,
 *   which already gives a margin: on synthetic clusters like those of test/moe/ddas.test.ts (dim 32, H 8, noise
 *   σ 0.05–0.15 per component, batches of 16, 60–120 steps) q 0.99 × 1.1 kept ≥ 99 % of held-out own samples and
 *   rejected ≥ 97 % of unseen ones, while × 1.5 let up to 69 % of unseen samples through for broad clusters (errors
 *   of in- and out-of-distribution samples differ only ~3× there). The window is bounded because the AE keeps
 *   learning: old errors describe an older AE.
 * - 'constant': one value for every task; the reference's code uses {@link DDAS_REFERENCE_THRESHOLD} (on its
 *   sigmoid AlexNet features, so the number means little for other transforms).
 *
 * Routing (per sample, unlike the reference's per-batch mean, and only among trained tasks, never an AE at random
 * init), by `routing`:
 * - 'error' (default, the reference's argmin): the trained task of least error wins (ties: the earlier added); −1
 *   if its error exceeds its threshold or it is a reference task.
 * - 'relative': the trained task of least error ÷ own threshold wins, −1 if that ratio exceeds 1 or it is a
 *   reference task. An AE trained on a broad distribution reconstructs most inputs well and wins the raw argmin
 *   for samples of narrower tasks; measured against its own in-distribution error level it does not. The
 *   zero-shot decision is the same as with 'error' whenever the winner is the same; with a constant threshold
 *   'relative' is 'error'.
 *
 * Merging ({@link Ddas.mergeTasks}): the merged task keeps every member AE, because weights of AEs trained on
 * different distributions do not align (hidden units are unordered) and keeping one would forget the others'
 * distributions, for which no data is kept. Its error is the minimum over its trained members, its threshold
 * the calibrated rule on the pooled windows of its members, and a later training batch trains the member of
 * least mean error on it.
 */
import * as G from '../graph/index.ts';
import type { Engine, SessionHandle } from '../runtime/engine.ts';
import { TrainState, type TrainStateJSON } from '../runtime/train-state.ts';
import { sessionKey } from '../runtime/session-key.ts';
import type { TensorData } from '../runtime/types.ts';
import { Rng, type RngState } from '../util/rng.ts';

/** How features are mapped to the AE's input and target (see the file header). */
export type DdasInputTransform = 'sigmoid' | 'standardize' | 'none';

/** Routing rule (see the file header). */
export type DdasRouting = 'error' | 'relative';
const ROUTINGS: readonly DdasRouting[] = ['error', 'relative'];

/** Per-task threshold rule (see the file header). */
export type DdasThreshold =
  | { kind: 'calibrated'; quantile: number; scale: number; window: number }
  | { kind: 'constant'; value: number };

/** Options of {@link Ddas}. */
export interface DdasOptions {
  /** AE bottleneck width; default 100 (the reference). */
  hidden: number;
  /** Adam learning rate; default 0.01. */
  lr: number;
  /** L2 weight decay added to the gradient (torch Adam), every tensor; default 1e-4. */
  weightDecay: number;
  /** Default 'standardize'. */
  inputTransform: DdasInputTransform;
  /** Default calibrated, q 0.99, scale 1.1, window 256 samples. */
  threshold: DdasThreshold;
  /** How the winning task is picked (see the file header); default 'error'. */
  routing: DdasRouting;
  /** Float type of weights and graphs; default float32 (float64 for checks). */
  dtype: 'float32' | 'float64';
}

/** Options as {@link Ddas.create} takes them: any field may be left out, also inside `threshold`. */
export type DdasOptionsInput = Partial<Omit<DdasOptions, 'threshold'>> & {
  threshold?:
    | { kind: 'calibrated'; quantile?: number; scale?: number; window?: number }
    | { kind: 'constant'; value?: number };
};

/** The reference's full-shot threshold (`655e-4` in its scripts; 0.065 in the paper). */
export const DDAS_REFERENCE_THRESHOLD = 0.0655;

/** Defaults of {@link DdasOptions}. */
export const DDAS_DEFAULTS: Readonly<DdasOptions> = Object.freeze({
  hidden: 100,
  lr: 0.01,
  weightDecay: 1e-4,
  inputTransform: 'standardize',
  threshold: Object.freeze({ kind: 'calibrated', quantile: 0.99, scale: 1.1, window: 256 }),
  routing: 'error',
  dtype: 'float32',
});

/** The trainable tensors of one AE (PyTorch Linear layout). */
export interface DdasWeights {
  'enc/w': TensorData;
  'enc/b': TensorData;
  'dec/w': TensorData;
  'dec/b': TensorData;
}

/** JSON form of a {@link Ddas} (tensors base64, exact). */
export interface DdasJSON {
  format: 'moeclip.ddas';
  version: 1;
  dim: number;
  options: DdasOptions;
  rng: number[];
  tasks: Array<{ id: number; reference: boolean; members: Array<{ state: TrainStateJSON; window: number[] }> }>;
}

const PARAMS = ['enc/w', 'enc/b', 'dec/w', 'dec/b'] as const;
const TRANSFORMS: readonly DdasInputTransform[] = ['sigmoid', 'standardize', 'none'];

interface Member {
  state: TrainState;
  /** Most recent prequential errors, oldest first. */
  window: number[];
}

interface Task {
  id: number;
  reference: boolean;
  members: Member[];
}

function positiveInt(v: unknown, where: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw new Error(`${where}: must be a positive integer, got ${JSON.stringify(v)}`);
  return v;
}

function finite(v: unknown, where: string, ok: (x: number) => boolean, what: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || !ok(v)) throw new Error(`${where}: must be ${what}, got ${JSON.stringify(v)}`);
  return v;
}

/** Fills defaults and validates; `where` prefixes errors. */
export function resolveDdasOptions(o: DdasOptionsInput = {}, where = 'Ddas options'): DdasOptions {
  if (typeof o !== 'object' || o === null) throw new Error(`${where}: expected an object`);
  const d = DDAS_DEFAULTS;
  const hidden = positiveInt(o.hidden ?? d.hidden, `${where}.hidden`);
  const lr = finite(o.lr ?? d.lr, `${where}.lr`, (x) => x > 0, 'a positive number');
  const weightDecay = finite(o.weightDecay ?? d.weightDecay, `${where}.weightDecay`, (x) => x >= 0, 'a non-negative number');
  const inputTransform = o.inputTransform ?? d.inputTransform;
  if (!TRANSFORMS.includes(inputTransform)) {
    throw new Error(`${where}.inputTransform: must be one of ${TRANSFORMS.join(', ')}, got ${JSON.stringify(inputTransform)}`);
  }
  const routing = o.routing ?? d.routing;
  if (!ROUTINGS.includes(routing)) throw new Error(`${where}.routing: must be one of ${ROUTINGS.join(', ')}, got ${JSON.stringify(routing)}`);
  const dtype = o.dtype ?? d.dtype;
  if (dtype !== 'float32' && dtype !== 'float64') throw new Error(`${where}.dtype: must be 'float32' or 'float64', got ${JSON.stringify(dtype)}`);
  const t = o.threshold ?? d.threshold;
  let threshold: DdasThreshold;
  if (typeof t !== 'object' || t === null) throw new Error(`${where}.threshold: expected {kind: 'calibrated' | 'constant', ...}`);
  if (t.kind === 'calibrated') {
    const def = d.threshold as Extract<DdasThreshold, { kind: 'calibrated' }>;
    threshold = {
      kind: 'calibrated',
      quantile: finite(t.quantile ?? def.quantile, `${where}.threshold.quantile`, (x) => x >= 0 && x <= 1, 'in [0, 1]'),
      scale: finite(t.scale ?? def.scale, `${where}.threshold.scale`, (x) => x > 0, 'a positive number'),
      window: positiveInt(t.window ?? def.window, `${where}.threshold.window`),
    };
  } else if (t.kind === 'constant') {
    threshold = { kind: 'constant', value: finite(t.value ?? DDAS_REFERENCE_THRESHOLD, `${where}.threshold.value`, () => true, 'a finite number') };
  } else {
    throw new Error(`${where}.threshold.kind: must be 'calibrated' or 'constant', got ${JSON.stringify((t as { kind?: unknown }).kind)}`);
  }
  return { hidden, lr, weightDecay, inputTransform, threshold: Object.freeze(threshold), routing, dtype };
}

/** The q-quantile of `values` with linear interpolation between order statistics (numpy's default); NaN if empty. */
function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const pos = q * (s.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(lo + 1, s.length - 1);
  return s[lo]! + (pos - lo) * (s[hi]! - s[lo]!);
}

/** The AE forward on x̃ [n, D]: one AE (2-D weights) or a stack of A (weights [A, …], output [A, n, D]). */
function aeForward(x: G.Tensor, w: Record<(typeof PARAMS)[number], G.Tensor>, sigmoidOut: boolean): G.Tensor {
  let h: G.Tensor;
  let y: G.Tensor;
  if (w['enc/w'].shape.length === 2) {
    h = G.relu(G.linear(x, w['enc/w'], w['enc/b']));
    y = G.linear(h, w['dec/w'], w['dec/b']);
  } else {
    // stacked [A, out, in]: x [n, D] @ [A, D, H] -> [A, n, H]
    h = G.relu(G.add(G.matmul(x, G.transpose(w['enc/w'], [0, 2, 1])), G.unsqueeze(w['enc/b'], 1)));
    y = G.add(G.matmul(h, G.transpose(w['dec/w'], [0, 2, 1])), G.unsqueeze(w['dec/b'], 1));
  }
  return sigmoidOut ? G.sigmoid(y) : y;
}

/** Ddas: per-task AEs, calibration windows and routing. Operations run one at a time in call order. */
export class Ddas {
  private tasks: Task[] = [];
  private queue: Promise<unknown> = Promise.resolve();
  private stack: { members: Member[]; feeds: Record<string, TensorData> } | null = null;
  private disposed = false;

  private constructor(
    private readonly engine: Engine,
    /** Feature length D. */
    readonly dim: number,
    /** Resolved options. */
    readonly options: Readonly<DdasOptions>,
    private readonly rng: Rng,
  ) {}

  /** A DDAS without tasks over `dim`-long features; draws AE inits from a fork of `rng`. Builds both sessions. */
  static async create(engine: Engine, dim: number, options: DdasOptionsInput, rng: Rng): Promise<Ddas> {
    positiveInt(dim, 'Ddas.create: dim');
    if (!(rng instanceof Rng)) throw new Error('Ddas.create: rng must be an Rng');
    const d = new Ddas(engine, dim, Object.freeze(resolveDdasOptions(options, 'Ddas.create: options')), rng.fork());
    await d.trainSession();
    await d.errorsSession();
    return d;
  }

  private get sigmoidOut(): boolean {
    return this.options.inputTransform === 'sigmoid';
  }

  /** Cache keys of the training and error sessions (they depend on dtype, D, H, output and weight decay). */
  get sessionKeys(): { train: string; errors: string } {
    const { dtype, hidden, weightDecay } = this.options;
    const arch = { dtype, dim: this.dim, hidden, output: this.sigmoidOut ? 'sigmoid' : 'linear' };
    return { train: sessionKey({ kind: 'ddas-train', ...arch, weightDecay }), errors: sessionKey({ kind: 'ddas-errors', ...arch }) };
  }

  private sessionOptions(): { optimizationLevel: 'basic' | 'all' } {
    // float64 at `basic`: higher levels fuse scalar Muls into FusedMatMul with a float32 alpha (engine notes).
    return { optimizationLevel: this.options.dtype === 'float64' ? 'basic' : 'all' };
  }

  private trainSession(): Promise<SessionHandle> {
    const { dtype, hidden: H, weightDecay } = this.options;
    const D = this.dim;
    return this.engine.session(
      this.sessionKeys.train,
      () => {
        const g = new G.Graph({ name: 'ddas_train' });
        const x = g.input('x', dtype, ['batch', D]);
        const w = {
          'enc/w': g.input('enc/w', dtype, [H, D]),
          'enc/b': g.input('enc/b', dtype, [H]),
          'dec/w': g.input('dec/w', dtype, [D, H]),
          'dec/b': g.input('dec/b', dtype, [D]),
        };
        const r = G.sub(aeForward(x, w, this.sigmoidOut), x);
        const errors = G.reduceMean(G.mul(r, r), 1);
        const mse = G.reduceMean(errors);
        let loss = mse;
        if (weightDecay > 0) {
          // d/dp (wd/2)·‖p‖² = wd·p: torch Adam's L2 term, added to the gradient before the moments.
          let sq: G.Tensor | null = null;
          for (const p of PARAMS) {
            const s = G.reduceSum(G.mul(w[p], w[p]));
            sq = sq ? G.add(sq, s) : s;
          }
          loss = G.add(mse, G.mul(sq!, weightDecay / 2));
        }
        G.buildTrainStep(g, {
          loss,
          params: PARAMS.map((p) => w[p]),
          optimizer: { kind: 'adamw', weightDecay: 0 },
          extraOutputs: { mse, errors },
        });
        return g.toBytes();
      },
      this.sessionOptions(),
    );
  }

  private errorsSession(): Promise<SessionHandle> {
    const { dtype, hidden: H } = this.options;
    const D = this.dim;
    return this.engine.session(
      this.sessionKeys.errors,
      () => {
        const g = new G.Graph({ name: 'ddas_errors' });
        const x = g.input('x', dtype, ['n', D]);
        const w = {
          'enc/w': g.input('enc/w', dtype, ['aes', H, D]),
          'enc/b': g.input('enc/b', dtype, ['aes', H]),
          'dec/w': g.input('dec/w', dtype, ['aes', D, H]),
          'dec/b': g.input('dec/b', dtype, ['aes', D]),
        };
        const r = G.sub(aeForward(x, w, this.sigmoidOut), x);
        g.output(G.transpose(G.reduceMean(G.mul(r, r), 2), [1, 0]), 'errors');
        return g.toBytes();
      },
      this.sessionOptions(),
    );
  }

  /** Runs `fn` after every earlier operation has settled. */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(() => {
      if (this.disposed) throw new Error('Ddas: used after dispose()');
      return fn();
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  private assertOpen(where: string): void {
    if (this.disposed) throw new Error(`${where}: Ddas used after dispose()`);
  }

  private task(id: number, where: string): Task {
    const t = this.tasks.find((x) => x.id === id);
    if (!t) throw new Error(`${where}: no task ${JSON.stringify(id)} (tasks: ${this.tasks.map((x) => x.id).join(', ') || 'none'})`);
    return t;
  }

  /** Fresh AE weights, PyTorch Linear init: U(−1/√fan_in, 1/√fan_in) for weights and biases. */
  private initWeights(): DdasWeights {
    const { dtype, hidden: H } = this.options;
    const D = this.dim;
    const A = dtype === 'float32' ? Float32Array : Float64Array;
    const draw = (dims: number[], fanIn: number): TensorData => {
      const b = 1 / Math.sqrt(fanIn);
      const n = dims.reduce((a, c) => a * c, 1);
      const data = new A(n);
      for (let i = 0; i < n; i++) data[i] = this.rng.uniform(-b, b);
      return { dtype, dims, data };
    };
    return { 'enc/w': draw([H, D], D), 'enc/b': draw([H], D), 'dec/w': draw([D, H], H), 'dec/b': draw([D], H) };
  }

  /**
   * Adds task `id` (a non-negative integer, not in use) with a fresh AE. A reference task (e.g. the pretraining
   * distribution) sends the samples it wins to zero-shot.
   */
  addTask(id: number, opts: { reference?: boolean } = {}): void {
    this.assertOpen('Ddas.addTask');
    if (!Number.isInteger(id) || id < 0) throw new Error(`Ddas.addTask: id must be a non-negative integer, got ${JSON.stringify(id)}`);
    if (this.tasks.some((t) => t.id === id)) throw new Error(`Ddas.addTask: task ${id} already exists`);
    const reference = opts.reference ?? false;
    if (typeof reference !== 'boolean') throw new Error('Ddas.addTask: opts.reference must be a boolean');
    const w = this.initWeights();
    const state = new TrainState({ ...w }, { optimizer: 'adamw' });
    this.tasks.push({ id, reference, members: [{ state, window: [] }] });
    this.stack = null;
  }

  /** Transformed features as a [n, D] tensor of the AE dtype; `where` names the argument in errors. */
  private batch(features: ReadonlyArray<Float32Array | Float64Array>, where: string): TensorData {
    if (!Array.isArray(features)) throw new Error(`${where}: expected an array of feature vectors`);
    const D = this.dim;
    const n = features.length;
    const out = this.options.dtype === 'float32' ? new Float32Array(n * D) : new Float64Array(n * D);
    const tr = this.options.inputTransform;
    features.forEach((f, i) => {
      if (!(f instanceof Float32Array || f instanceof Float64Array)) throw new Error(`${where}[${i}]: expected a Float32Array`);
      if (f.length !== D) throw new Error(`${where}[${i}]: has length ${f.length}, expected ${D}`);
      let mean = 0;
      for (let j = 0; j < D; j++) {
        const v = f[j]!;
        if (!Number.isFinite(v)) throw new Error(`${where}[${i}][${j}]: is ${v}, features must be finite`);
        mean += v;
      }
      mean /= D;
      const o = i * D;
      if (tr === 'standardize') {
        let ss = 0;
        for (let j = 0; j < D; j++) ss += (f[j]! - mean) ** 2;
        const std = Math.sqrt(ss / D);
        for (let j = 0; j < D; j++) out[o + j] = std > 0 ? (f[j]! - mean) / std : 0;
      } else if (tr === 'sigmoid') {
        for (let j = 0; j < D; j++) out[o + j] = 1 / (1 + Math.exp(-f[j]!));
      } else {
        for (let j = 0; j < D; j++) out[o + j] = f[j]!;
      }
    });
    return { dtype: this.options.dtype, dims: [n, D], data: out };
  }

  /** Stacked weight feeds [A, …] of `members`. */
  private stackFeeds(members: readonly Member[]): Record<string, TensorData> {
    const { dtype } = this.options;
    const feeds: Record<string, TensorData> = {};
    for (const p of PARAMS) {
      const dims = members[0]!.state.get(p).dims;
      const size = dims.reduce((a, c) => a * c, 1);
      const data = dtype === 'float32' ? new Float32Array(members.length * size) : new Float64Array(members.length * size);
      members.forEach((m, a) => data.set(m.state.get(p).data as Float32Array | Float64Array, a * size));
      feeds[p] = { dtype, dims: [members.length, ...dims], data };
    }
    return feeds;
  }

  /** Per-sample errors of every AE in `members` ([n × members], one run). */
  private async memberErrors(x: TensorData, members: readonly Member[], cache: boolean): Promise<Float64Array> {
    const n = x.dims[0]!;
    if (n === 0 || members.length === 0) return new Float64Array(0);
    let feeds: Record<string, TensorData>;
    if (cache) {
      if (!this.stack || this.stack.members.length !== members.length || this.stack.members.some((m, i) => m !== members[i])) {
        this.stack = { members: [...members], feeds: this.stackFeeds(members) };
      }
      feeds = this.stack.feeds;
    } else {
      feeds = this.stackFeeds(members);
    }
    const h = await this.errorsSession();
    const out = await this.engine.run(h, { x, ...feeds }, ['errors']);
    return Float64Array.from(out.errors!.data as Float32Array | Float64Array);
  }

  /** Per-sample task errors [n × tasks] for the given task list (min over trained members, else over all). */
  private async taskErrors(x: TensorData, tasks: readonly Task[]): Promise<Float64Array> {
    const members = tasks.flatMap((t) => t.members);
    const n = x.dims[0]!;
    const A = members.length;
    const E = await this.memberErrors(x, members, true);
    const T = tasks.length;
    const out = new Float64Array(n * T);
    let col = 0;
    tasks.forEach((t, k) => {
      const trained = t.members.some((m) => m.state.step > 0);
      for (let i = 0; i < n; i++) {
        let best = Infinity;
        t.members.forEach((m, j) => {
          if (trained && m.state.step === 0) return;
          best = Math.min(best, E[i * A + col + j]!);
        });
        out[i * T + k] = best;
      }
      col += t.members.length;
    });
    return out;
  }

  /**
   * One Adam step of task `id`'s AE on this batch (`lr` overrides the option for this step); returns the batch's
   * MSE before the step. The batch's per-sample errors (also before the step) enter the calibration window. A
   * merged task trains its member of least mean error on the batch.
   */
  train(id: number, features: ReadonlyArray<Float32Array | Float64Array>, opts: { lr?: number } = {}): Promise<number> {
    return this.exclusive(async () => {
      const where = `Ddas.train(${id})`;
      const task = this.task(id, where);
      const lr = finite(opts.lr ?? this.options.lr, `${where}: opts.lr`, (v) => v > 0, 'a positive number');
      const x = this.batch(features, `${where}: features`);
      if (x.dims[0] === 0) throw new Error(`${where}: features is empty`);
      let member = task.members[0]!;
      if (task.members.length > 1) {
        const trained = task.members.filter((m) => m.state.step > 0);
        const cands = trained.length > 0 ? trained : task.members;
        const E = await this.memberErrors(x, cands, false);
        const n = x.dims[0]!;
        let best = Infinity;
        cands.forEach((m, j) => {
          let s = 0;
          for (let i = 0; i < n; i++) s += E[i * cands.length + j]!;
          if (s < best) [best, member] = [s, m];
        });
      }
      const out = await member.state.trainStep(this.engine, await this.trainSession(), { x }, lr);
      this.stack = null;
      if (this.options.threshold.kind === 'calibrated') {
        for (const e of out.errors!.data as Float32Array | Float64Array) if (Number.isFinite(e)) member.window.push(e);
        const extra = member.window.length - this.options.threshold.window;
        if (extra > 0) member.window.splice(0, extra);
      }
      return Number(out.mse!.data[0]);
    });
  }

  /** Per-sample errors [N × tasks] (row-major, columns in {@link describe}`().tasks` order), one graph run. */
  errors(features: ReadonlyArray<Float32Array | Float64Array>): Promise<Float32Array> {
    return this.exclusive(async () => {
      const x = this.batch(features, 'Ddas.errors: features');
      return Float32Array.from(await this.taskErrors(x, [...this.tasks]));
    });
  }

  /** Task id per sample, or −1 for zero-shot (see the routing rule in the file header). */
  route(features: ReadonlyArray<Float32Array | Float64Array>): Promise<Int32Array> {
    return this.exclusive(async () => {
      const x = this.batch(features, 'Ddas.route: features');
      const tasks = [...this.tasks];
      const n = x.dims[0]!;
      const out = new Int32Array(n).fill(-1);
      const trained = tasks.map((t) => t.members.some((m) => m.state.step > 0));
      if (!trained.some(Boolean)) return out;
      const E = await this.taskErrors(x, tasks);
      const thr = tasks.map((t) => this.thresholdOf(t));
      const T = tasks.length;
      // 'relative' compares error ÷ calibrated threshold (a task without a positive one cannot win there); with
      // a constant threshold it is the raw argmin
      const rel = this.options.routing === 'relative' && this.options.threshold.kind === 'calibrated';
      const score = (i: number, j: number) => (rel ? (thr[j]! > 0 && Number.isFinite(thr[j]!) ? E[i * T + j]! / thr[j]! : Infinity) : E[i * T + j]!);
      for (let i = 0; i < n; i++) {
        let k = -1;
        for (let j = 0; j < T; j++) if (trained[j] && (k < 0 || score(i, j) < score(i, k))) k = j;
        if (k >= 0 && !tasks[k]!.reference && E[i * T + k]! <= thr[k]!) out[i] = tasks[k]!.id;
      }
      return out;
    });
  }

  private thresholdOf(t: Task): number {
    const th = this.options.threshold;
    if (th.kind === 'constant') return th.value;
    return quantile(t.members.flatMap((m) => m.window), th.quantile) * th.scale;
  }

  /** Task `id`'s current threshold; NaN for a calibrated task without errors yet (untrained). */
  threshold(id: number): number {
    this.assertOpen('Ddas.threshold');
    return this.thresholdOf(this.task(id, 'Ddas.threshold'));
  }

  /** Task `id`'s pooled calibration window (its members' windows, each oldest first), a copy. */
  calibration(id: number): Float64Array {
    this.assertOpen('Ddas.calibration');
    return Float64Array.from(this.task(id, 'Ddas.calibration').members.flatMap((m) => m.window));
  }

  /** Copies of the weights of task `id`'s member AEs (one entry unless merged). */
  weights(id: number): DdasWeights[] {
    this.assertOpen('Ddas.weights');
    return this.task(id, 'Ddas.weights').members.map((m) => {
      const w = {} as DdasWeights;
      for (const p of PARAMS) {
        const t = m.state.get(p);
        w[p] = { dtype: t.dtype, dims: [...t.dims], data: t.data.slice() };
      }
      return w;
    });
  }

  /** Completed training steps of task `id` (summed over its members). */
  steps(id: number): number {
    this.assertOpen('Ddas.steps');
    return this.task(id, 'Ddas.steps').members.reduce((s, m) => s + m.state.step, 0);
  }

  /**
   * Merges tasks `ids` into task `into` (which may be listed or not; all must exist and share the reference
   * flag): `into` keeps the member AEs of all of them, the others are removed (see the rule in the file header).
   */
  mergeTasks(ids: readonly number[], into: number): Promise<void> {
    return this.exclusive(async () => {
      const where = `Ddas.mergeTasks(into ${into})`;
      if (!Array.isArray(ids)) throw new Error(`${where}: ids must be an array of task ids`);
      const target = this.task(into, where);
      const others = [...new Set(ids)].filter((id) => id !== into).map((id) => this.task(id, `${where}: ids`));
      for (const t of others) {
        if (t.reference !== target.reference) {
          throw new Error(`${where}: task ${t.id} is ${t.reference ? '' : 'not '}a reference task but task ${into} is${target.reference ? '' : ' not'}`);
        }
      }
      target.members = [...target.members, ...others.flatMap((t) => t.members)];
      this.tasks = this.tasks.filter((t) => !others.includes(t));
      this.stack = null;
    });
  }

  /** Task ids (in the order added; the column order of {@link errors}), trained task ids, AE count and scalars. */
  describe(): { tasks: number[]; trained: number[]; aes: number; params: number } {
    this.assertOpen('Ddas.describe');
    const aes = this.tasks.reduce((s, t) => s + t.members.length, 0);
    return {
      tasks: this.tasks.map((t) => t.id),
      trained: this.tasks.filter((t) => t.members.some((m) => m.state.step > 0)).map((t) => t.id),
      aes,
      params: this.tasks.reduce((s, t) => s + t.members.reduce((a, m) => a + m.state.size, 0), 0),
    };
  }

  /** JSON-able form (weights, Adam state, windows, the init generator's state), exact. */
  toJSON(): DdasJSON {
    this.assertOpen('Ddas.toJSON');
    const o = this.options;
    return {
      format: 'moeclip.ddas',
      version: 1,
      dim: this.dim,
      options: { hidden: o.hidden, lr: o.lr, weightDecay: o.weightDecay, inputTransform: o.inputTransform, threshold: { ...o.threshold }, routing: o.routing, dtype: o.dtype },
      rng: [...this.rng.getState()],
      tasks: this.tasks.map((t) => ({
        id: t.id,
        reference: t.reference,
        members: t.members.map((m) => ({ state: m.state.toJSON(), window: [...m.window] })),
      })),
    };
  }

  /** Rebuilds a {@link Ddas} from {@link toJSON}'s output; `where` prefixes every error. */
  static async fromJSON(engine: Engine, json: unknown, where = 'ddas'): Promise<Ddas> {
    if (typeof json !== 'object' || json === null) throw new Error(`${where}: expected an object`);
    const j = json as Partial<DdasJSON>;
    if (j.format !== 'moeclip.ddas') throw new Error(`${where}.format: expected 'moeclip.ddas', got ${JSON.stringify(j.format)}`);
    if (j.version !== 1) throw new Error(`${where}.version: unsupported version ${JSON.stringify(j.version)}`);
    const dim = positiveInt(j.dim, `${where}.dim`);
    const options = resolveDdasOptions(j.options as DdasOptionsInput, `${where}.options`);
    if (!Array.isArray(j.rng)) throw new Error(`${where}.rng: expected four unsigned 32-bit integers`);
    let rng: Rng;
    try {
      rng = new Rng(j.rng as unknown as RngState);
    } catch (e) {
      throw new Error(`${where}.rng: ${(e as Error).message}`);
    }
    if (!Array.isArray(j.tasks)) throw new Error(`${where}.tasks: expected an array`);
    const d = new Ddas(engine, dim, Object.freeze(options), rng);
    const H = options.hidden;
    const want: Record<string, number[]> = { 'enc/w': [H, dim], 'enc/b': [H], 'dec/w': [dim, H], 'dec/b': [dim] };
    const ids = new Set<number>();
    d.tasks = j.tasks.map((t, k) => {
      const tw = `${where}.tasks[${k}]`;
      if (typeof t !== 'object' || t === null) throw new Error(`${tw}: expected {id, reference, members}`);
      if (!Number.isInteger(t.id) || t.id < 0) throw new Error(`${tw}.id: must be a non-negative integer, got ${JSON.stringify(t.id)}`);
      if (ids.has(t.id)) throw new Error(`${tw}.id: task ${t.id} appears twice`);
      ids.add(t.id);
      if (typeof t.reference !== 'boolean') throw new Error(`${tw}.reference: expected a boolean`);
      if (!Array.isArray(t.members) || t.members.length === 0) throw new Error(`${tw}.members: expected a non-empty array`);
      const members = t.members.map((m, i) => {
        const mw = `${tw}.members[${i}]`;
        if (typeof m !== 'object' || m === null) throw new Error(`${mw}: expected {state, window}`);
        const state = TrainState.fromJSON(m.state, `${mw}.state`);
        if (state.optimizer !== 'adamw') throw new Error(`${mw}.state.optimizer: expected 'adamw', got '${state.optimizer}'`);
        const names = state.names;
        if (names.length !== PARAMS.length || PARAMS.some((p) => !names.includes(p))) {
          throw new Error(`${mw}.state: expected tensors ${PARAMS.join(', ')}, got ${names.join(', ')}`);
        }
        for (const p of PARAMS) {
          const got = state.get(p);
          if (got.dtype !== options.dtype || got.dims.length !== want[p]!.length || got.dims.some((v, q) => v !== want[p]![q])) {
            throw new Error(`${mw}.state.tensors['${p}']: is ${got.dtype} [${got.dims.join(', ')}], expected ${options.dtype} [${want[p]!.join(', ')}]`);
          }
        }
        if (!Array.isArray(m.window) || m.window.some((e) => typeof e !== 'number' || !Number.isFinite(e))) {
          throw new Error(`${mw}.window: expected an array of finite numbers`);
        }
        const cap = options.threshold.kind === 'calibrated' ? options.threshold.window : 0;
        if (m.window.length > cap) throw new Error(`${mw}.window: holds ${m.window.length} errors, more than the window of ${cap}`);
        return { state, window: [...m.window] };
      });
      return { id: t.id, reference: t.reference, members };
    });
    await d.trainSession();
    await d.errorsSession();
    return d;
  }

  /**
   * Drops every AE; later calls throw. The sessions stay in the engine's cache, shared by key with other
   * instances (they hold no weights); `engine.release(key)` frees them.
   */
  dispose(): Promise<void> {
    return this.exclusive(async () => {
      this.disposed = true;
      this.tasks = [];
      this.stack = null;
    });
  }
}
