/**
 * Trainable tensors and optimizer state kept in typed arrays between training steps.
 *
 * A training-step graph (forward + backward + optimizer update in one ONNX graph, built by src/graph) follows
 * this naming convention:
 * - inputs: the batch; each trainable tensor `<p>`; its optimizer slots — AdamW `<p>.m`, `<p>.v`, SGD with momentum
 *   `<p>.buf` — and the scalars `lr` and `step` (same float type as the parameters; `step` is the 1-based count
 *   of the update being made, used for Adam's bias correction `1 − β^step`);
 * - outputs: `loss` and anything else (logits, metrics), `<p>.next` and each slot's `<slot>.next`.
 *
 * {@link TrainState.trainStep} feeds the state, runs the graph, swaps in the `.next` tensors and returns the
 * other outputs. The state never lends its arrays to the engine for transfer, so a failed run leaves it intact.
 */
import type { Engine, SessionHandle, ValueInfo } from './engine.ts';
import {
  cloneTensor,
  numel,
  scalar,
  tensorFromJSON,
  tensorToJSON,
  checkTensor,
  zeros,
  type TensorData,
  type TensorJSON,
} from './types.ts';

/** Optimizers whose update rule the training graph implements. */
export type OptimizerKind = 'adamw' | 'sgd';

/** Options of {@link TrainState}. */
export interface TrainStateOptions {
  optimizer: OptimizerKind;
  /** SGD only: keep a momentum buffer `<p>.buf`. Default false. */
  momentum?: boolean;
}

/** An in-memory copy of a train state (for checkpoints). */
export interface TrainStateSnapshot {
  optimizer: OptimizerKind;
  momentum: boolean;
  /** Completed updates. */
  step: number;
  /** Params and slots by name (`w`, `w.m`, `w.v`, …). */
  tensors: Record<string, TensorData>;
}

/** JSON form of a snapshot: tensors base64-encoded (exact). */
export interface TrainStateJSON {
  format: 'moeclip.train-state';
  version: 1;
  optimizer: OptimizerKind;
  momentum: boolean;
  step: number;
  tensors: Record<string, TensorJSON>;
}

/** Graph input names reserved for the scalars. */
const SCALAR_INPUTS = ['lr', 'step'] as const;

/** Slot suffixes per optimizer. */
function slotSuffixes(optimizer: OptimizerKind, momentum: boolean): string[] {
  if (optimizer === 'adamw') return ['m', 'v'];
  return momentum ? ['buf'] : [];
}

function sameDims(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/**
 * Fits a scalar feed (`lr`, `step`) to how the graph declares it: shape `[1]` (or `[1, 1]`…) instead of `[]`,
 * and a different float type (or an integer type for `step`, whose value is an integer). Values are unchanged
 * up to the declared type's rounding; anything else is left for the engine's feed check to report.
 */
export function conformScalar(name: string, value: number, t: TensorData, info: ValueInfo | undefined): TensorData {
  let out = t;
  const type = info?.type;
  if (type !== undefined && type !== t.dtype) {
    if (type === 'float32' || type === 'float64' || (name === 'step' && (type === 'int32' || type === 'int64'))) {
      out = scalar(type, value);
    }
  }
  const shape = info?.shape;
  if (shape && shape.length > 0 && shape.every((d) => d === 1)) out = { ...out, dims: shape.map(() => 1) };
  return out;
}

/** Trainable tensors + optimizer slots + step counter. */
export class TrainState {
  readonly optimizer: OptimizerKind;
  readonly momentum: boolean;
  /** Float type of every parameter (and of the `lr`/`step` feeds). */
  readonly dtype: 'float32' | 'float64';
  private readonly params: string[];
  private readonly slots: Map<string, string[]>;
  private readonly tensors = new Map<string, TensorData>();
  private steps = 0;

  /**
   * Copies `params` (so the caller's arrays stay theirs) and zero-initialises the optimizer slots.
   * All parameters must share one float dtype; names must not clash with `lr`, `step` or each other's slots.
   */
  constructor(params: Record<string, TensorData>, opts: TrainStateOptions) {
    if (opts.optimizer !== 'adamw' && opts.optimizer !== 'sgd') {
      throw new Error(`TrainState: optimizer must be 'adamw' or 'sgd', got ${JSON.stringify(opts.optimizer)}`);
    }
    this.optimizer = opts.optimizer;
    this.momentum = opts.optimizer === 'sgd' && opts.momentum === true;
    const names = Object.keys(params);
    if (names.length === 0) throw new Error('TrainState: no trainable tensors');
    let dtype: 'float32' | 'float64' | undefined;
    for (const name of names) {
      const t = checkTensor(params[name], `TrainState param '${name}'`);
      if (t.dtype !== 'float32' && t.dtype !== 'float64') {
        throw new Error(`TrainState param '${name}': trainable tensors must be float32 or float64, got ${t.dtype}`);
      }
      dtype ??= t.dtype;
      if (t.dtype !== dtype) throw new Error(`TrainState param '${name}': is ${t.dtype} but other params are ${dtype}`);
    }
    this.dtype = dtype!;
    this.params = names;
    this.slots = new Map();
    const suffixes = slotSuffixes(this.optimizer, this.momentum);
    for (const name of names) {
      const p = params[name]!;
      this.tensors.set(name, cloneTensor(p));
      const slotNames = suffixes.map((s) => `${name}.${s}`);
      this.slots.set(name, slotNames);
      for (const s of slotNames) this.tensors.set(s, zeros(p.dtype, p.dims));
    }
    const all = this.stateNames;
    const seen = new Set<string>();
    for (const n of all) {
      if ((SCALAR_INPUTS as readonly string[]).includes(n) || n === 'loss') {
        throw new Error(`TrainState: '${n}' is reserved and cannot name a trainable tensor or slot`);
      }
      if (seen.has(n)) throw new Error(`TrainState: name '${n}' is both a parameter and an optimizer slot`);
      seen.add(n);
    }
  }

  /** Trainable parameter names, in construction order. */
  get names(): string[] {
    return [...this.params];
  }

  /** Every state tensor name: each parameter followed by its slots. */
  get stateNames(): string[] {
    return this.params.flatMap((p) => [p, ...this.slots.get(p)!]);
  }

  /** The optimizer slot names of parameter `p` (e.g. `['w.m', 'w.v']`). */
  slotNames(p: string): string[] {
    const s = this.slots.get(p);
    if (!s) throw new Error(`TrainState: no trainable tensor '${p}'`);
    return [...s];
  }

  /** Completed updates (0 before the first step). The next update feeds `step = this.step + 1`. */
  get step(): number {
    return this.steps;
  }

  /** Total number of trainable scalars. */
  get size(): number {
    return this.params.reduce((n, p) => n + numel(this.tensors.get(p)!.dims), 0);
  }

  /**
   * The current tensor `name` (a parameter or a slot). Returned without copying: treat it as read-only (updates
   * replace tensors rather than writing into them, so a reference keeps the value it had).
   */
  get(name: string): TensorData {
    const t = this.tensors.get(name);
    if (!t) throw new Error(`TrainState: no tensor '${name}' (have: ${this.stateNames.join(', ')})`);
    return t;
  }

  /** Replaces tensor `name` with a copy of `data`, which must have the same dtype and dims. */
  set(name: string, data: TensorData): void {
    const cur = this.get(name);
    checkTensor(data, `TrainState.set('${name}')`);
    if (data.dtype !== cur.dtype || !sameDims(data.dims, cur.dims)) {
      throw new Error(`TrainState.set('${name}'): expected ${cur.dtype} [${cur.dims.join(', ')}], got ${data.dtype} [${data.dims.join(', ')}]`);
    }
    this.tensors.set(name, cloneTensor(data));
  }

  /** The state feeds for the next update: every parameter and slot, `lr`, and `step = this.step + 1`. */
  feeds(lr: number): Record<string, TensorData> {
    if (!Number.isFinite(lr)) throw new Error(`TrainState.feeds: lr must be a finite number, got ${lr}`);
    const out: Record<string, TensorData> = {};
    for (const n of this.stateNames) out[n] = this.tensors.get(n)!;
    out.lr = scalar(this.dtype, lr);
    out.step = scalar(this.dtype, this.steps + 1);
    return out;
  }

  /**
   * Takes `<name>.next` for every state tensor from a step's outputs and counts the step. All outputs are
   * checked (present, same dtype and dims) before anything changes.
   */
  update(outputs: Record<string, TensorData>): void {
    const next = new Map<string, TensorData>();
    for (const n of this.stateNames) {
      const o = outputs[`${n}.next`];
      if (!o) throw new Error(`TrainState.update: output '${n}.next' is missing`);
      const cur = this.tensors.get(n)!;
      if (o.dtype !== cur.dtype || !sameDims(o.dims, cur.dims)) {
        throw new Error(`TrainState.update: '${n}.next' is ${o.dtype} [${o.dims.join(', ')}], expected ${cur.dtype} [${cur.dims.join(', ')}]`);
      }
      next.set(n, o);
    }
    for (const [n, t] of next) this.tensors.set(n, t);
    this.steps++;
  }

  /**
   * One training step: runs `handle` on `batchFeeds` + the state feeds, applies the update and returns the
   * outputs that are not state updates (loss, logits, …). `lr`/`step` are fed only if the graph declares them
   * (a plain-SGD graph needs no `step`); every parameter and slot must be a graph input.
   */
  async trainStep(engine: Engine, handle: SessionHandle, batchFeeds: Record<string, TensorData>, lr: number): Promise<Record<string, TensorData>> {
    const declared = new Map(handle.inputMetadata.map((m) => [m.name, m]));
    const inputs = new Set(handle.inputNames);
    const feeds: Record<string, TensorData> = { ...batchFeeds };
    const state = this.feeds(lr);
    for (const [name, t] of Object.entries(state)) {
      if (Object.hasOwn(batchFeeds, name)) {
        throw new Error(`TrainState.trainStep: batch feed '${name}' collides with a state input`);
      }
      const isScalar = (SCALAR_INPUTS as readonly string[]).includes(name);
      if (!inputs.has(name)) {
        if (isScalar) continue;
        throw new Error(`TrainState.trainStep: session '${handle.key}' has no input '${name}' (trainable set or optimizer mismatch)`);
      }
      feeds[name] = isScalar ? conformScalar(name, name === 'lr' ? lr : this.steps + 1, t, declared.get(name)) : t;
    }
    const outputs = await engine.run(handle, feeds);
    this.update(outputs);
    const nextNames = new Set(this.stateNames.map((n) => `${n}.next`));
    const rest: Record<string, TensorData> = {};
    for (const [name, t] of Object.entries(outputs)) if (!nextNames.has(name)) rest[name] = t;
    return rest;
  }

  /** A deep copy of params, slots and step. */
  snapshot(): TrainStateSnapshot {
    const tensors: Record<string, TensorData> = {};
    for (const n of this.stateNames) tensors[n] = cloneTensor(this.tensors.get(n)!);
    return { optimizer: this.optimizer, momentum: this.momentum, step: this.steps, tensors };
  }

  /**
   * Restores a snapshot taken from a state with the same optimizer, names, dtypes and dims (all checked before
   * anything changes). Tensors are copied.
   */
  restore(s: TrainStateSnapshot, where = 'snapshot'): void {
    if (s.optimizer !== this.optimizer || s.momentum !== this.momentum) {
      throw new Error(`${where}: optimizer ${s.optimizer}${s.momentum ? '+momentum' : ''} does not match ${this.optimizer}${this.momentum ? '+momentum' : ''}`);
    }
    if (!Number.isInteger(s.step) || s.step < 0) throw new Error(`${where}.step: must be a non-negative integer, got ${s.step}`);
    const want = this.stateNames;
    const extra = Object.keys(s.tensors).filter((n) => !this.tensors.has(n));
    if (extra.length > 0) throw new Error(`${where}.tensors: unexpected tensors ${extra.join(', ')}`);
    const next = new Map<string, TensorData>();
    for (const n of want) {
      const t = s.tensors[n];
      if (!t) throw new Error(`${where}.tensors: '${n}' is missing`);
      checkTensor(t, `${where}.tensors['${n}']`);
      const cur = this.tensors.get(n)!;
      if (t.dtype !== cur.dtype || !sameDims(t.dims, cur.dims)) {
        throw new Error(`${where}.tensors['${n}']: is ${t.dtype} [${t.dims.join(', ')}], expected ${cur.dtype} [${cur.dims.join(', ')}]`);
      }
      next.set(n, cloneTensor(t));
    }
    for (const [n, t] of next) this.tensors.set(n, t);
    this.steps = s.step;
  }

  /** A new state equal to a snapshot (params taken from it, slots and step restored). */
  static fromSnapshot(s: TrainStateSnapshot, where = 'snapshot'): TrainState {
    if (typeof s !== 'object' || s === null || typeof s.tensors !== 'object' || s.tensors === null) {
      throw new Error(`${where}: expected {optimizer, momentum, step, tensors}`);
    }
    const slotSet = new Set(slotSuffixes(s.optimizer, s.momentum === true));
    const params: Record<string, TensorData> = {};
    for (const [n, t] of Object.entries(s.tensors)) {
      const dot = n.lastIndexOf('.');
      const isSlot = dot > 0 && slotSet.has(n.slice(dot + 1)) && Object.hasOwn(s.tensors, n.slice(0, dot));
      if (!isSlot) params[n] = checkTensor(t, `${where}.tensors['${n}']`);
    }
    const state = new TrainState(params, { optimizer: s.optimizer, momentum: s.momentum });
    state.restore(s, where);
    return state;
  }

  /** JSON-able form (tensors base64, exact); `JSON.stringify(state)` uses it. */
  toJSON(): TrainStateJSON {
    const tensors: Record<string, TensorJSON> = {};
    for (const n of this.stateNames) tensors[n] = tensorToJSON(this.tensors.get(n)!);
    return { format: 'moeclip.train-state', version: 1, optimizer: this.optimizer, momentum: this.momentum, step: this.steps, tensors };
  }

  /** Parses {@link TrainStateJSON}; `where` (e.g. the checkpoint file name) prefixes every error. */
  static fromJSON(j: unknown, where = 'train state'): TrainState {
    if (typeof j !== 'object' || j === null) throw new Error(`${where}: expected an object`);
    const o = j as Partial<TrainStateJSON>;
    if (o.format !== 'moeclip.train-state') throw new Error(`${where}.format: expected 'moeclip.train-state', got ${JSON.stringify(o.format)}`);
    if (o.version !== 1) throw new Error(`${where}.version: unsupported version ${JSON.stringify(o.version)}`);
    if (o.optimizer !== 'adamw' && o.optimizer !== 'sgd') throw new Error(`${where}.optimizer: expected 'adamw' or 'sgd', got ${JSON.stringify(o.optimizer)}`);
    if (typeof o.momentum !== 'boolean') throw new Error(`${where}.momentum: expected a boolean`);
    if (typeof o.step !== 'number') throw new Error(`${where}.step: expected a number`);
    if (typeof o.tensors !== 'object' || o.tensors === null) throw new Error(`${where}.tensors: expected an object`);
    const tensors: Record<string, TensorData> = {};
    for (const [n, t] of Object.entries(o.tensors)) tensors[n] = tensorFromJSON(t, `${where}.tensors['${n}']`);
    return TrainState.fromSnapshot({ optimizer: o.optimizer, momentum: o.momentum, step: o.step, tensors }, where);
  }
}
