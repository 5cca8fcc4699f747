/**
 * Trainable tensors and optimizer state kept in an engine store (in the host) between training steps, so a
 * step sends only the batch and `lr` and receives only the fetched outputs.
 *
 * Store tensors per parameter `<p>`: `<p>` itself, its slots as in {@link TrainState} (AdamW `<p>.m`, `<p>.v`;
 * SGD with momentum `<p>.buf`) and `<p>.t`, a float32 scalar counting the updates made to `<p>`. Graphs built
 * with `buildTrainStep(..., { stepPerParam: true })` read `<p>.t` and output `<p>.t.next`; graphs with a shared
 * `step` input work too as long as the parameters they train have the same count.
 *
 * Parameters can be added (zero slots, t = 0) and removed at any time without touching the others. A session
 * may train a subset of the parameters: the ones it has no `<p>.next` output for receive no update at all.
 * Calls are issued to the engine in call order; one `trainStep` runs at a time, and `add`, `remove`, `set`,
 * `restore` and `dispose` are refused while it runs (`get` and `snapshot` wait for it).
 */
import type { Engine, SessionHandle, StoreHandle } from './engine.ts';
import { conformScalar, type OptimizerKind } from './train-state.ts';
import { checkTensor, numel, scalar, zeros, type TensorData } from './types.ts';

/** Options of {@link ResidentTrainState}. */
export interface ResidentTrainStateOptions {
  optimizer: OptimizerKind;
  /** SGD only: keep a momentum buffer `<p>.buf`. Default false. */
  momentum?: boolean;
  /** Name of the store (for error messages); default `train`. */
  name?: string;
}

/** Options of {@link ResidentTrainState.trainStep}. */
export interface ResidentStepOptions {
  lr: number;
  /** Outputs to return; default `['loss']` if the graph has a `loss` output, else none. */
  fetch?: readonly string[];
  /** More stores the graph's other inputs are read from (after this state's store), e.g. frozen weights. */
  stores?: readonly StoreHandle[];
  /** Transfer the batch arrays to the worker (see {@link RunOptions.transfer}). */
  transfer?: boolean;
}

/** An in-memory copy of a resident train state. */
export interface ResidentTrainStateSnapshot {
  optimizer: OptimizerKind;
  momentum: boolean;
  /** Updates made to each parameter; its keys are the parameters, in order. */
  t: Record<string, number>;
  /** Params and slots by name (`w`, `w.m`, `w.v`, …; not `w.t`). */
  tensors: Record<string, TensorData>;
  /**
   * Per-row step counters `<p>.t` [E, 1, …] (stacked experts, see `buildTrainStep`'s `rowCounters`), by counter
   * name; parameters not listed have the scalar counter of `t`. Absent in snapshots without per-row counters.
   */
  counters?: Record<string, TensorData>;
}

interface ParamInfo {
  dtype: 'float32' | 'float64';
  dims: number[];
  slots: string[];
  /** Updates made (mirror of the host's `<p>.t`). */
  t: number;
}

const RESERVED = new Set(['lr', 'step', 'loss']);
const NEXT = '.next';

function slotSuffixes(optimizer: OptimizerKind, momentum: boolean): string[] {
  if (optimizer === 'adamw') return ['m', 'v'];
  return momentum ? ['buf'] : [];
}

function sameDims(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** Trainable tensors + optimizer slots + per-parameter step counters, resident in an engine store. */
export class ResidentTrainState {
  readonly optimizer: OptimizerKind;
  readonly momentum: boolean;
  /** The store holding every tensor of the state. */
  readonly store: StoreHandle;
  private readonly params = new Map<string, ParamInfo>();
  private running: Promise<unknown> | null = null;
  private disposed = false;

  /** Creates an empty state and its store; add parameters with {@link add}. */
  constructor(
    private readonly engine: Engine,
    opts: ResidentTrainStateOptions,
  ) {
    if (opts.optimizer !== 'adamw' && opts.optimizer !== 'sgd') {
      throw new Error(`ResidentTrainState: optimizer must be 'adamw' or 'sgd', got ${JSON.stringify(opts.optimizer)}`);
    }
    this.optimizer = opts.optimizer;
    this.momentum = opts.optimizer === 'sgd' && opts.momentum === true;
    this.store = engine.createStore(opts.name ?? 'train');
  }

  /** Trainable parameter names, in the order they were added. */
  get names(): string[] {
    return [...this.params.keys()];
  }

  /** Whether `name` is a trainable parameter (not a slot). */
  has(name: string): boolean {
    return this.params.has(name);
  }

  /** Total number of trainable scalars. */
  get paramCount(): number {
    let n = 0;
    for (const p of this.params.values()) n += numel(p.dims);
    return n;
  }

  /** Every store tensor name: each parameter followed by its slots and `<p>.t`. */
  get stateNames(): string[] {
    return [...this.params].flatMap(([p, info]) => [p, ...info.slots, `${p}.t`]);
  }

  /** The optimizer slot names of parameter `p` (e.g. `['w.m', 'w.v']`). */
  slotNames(p: string): string[] {
    return [...this.info(p, 'slotNames').slots];
  }

  /** Updates made to parameter `p` so far. */
  updates(p: string): number {
    return this.info(p, 'updates').t;
  }

  private info(p: string, where: string): ParamInfo {
    const info = this.params.get(p);
    if (!info) throw new Error(`ResidentTrainState.${where}: no trainable tensor '${p}' (have: ${this.names.join(', ')})`);
    return info;
  }

  private assertUsable(where: string, mutates: boolean): void {
    if (this.disposed) throw new Error(`ResidentTrainState.${where}: the state was disposed`);
    if (mutates && this.running) throw new Error(`ResidentTrainState.${where}: a trainStep is running; await it first`);
  }

  /** Settles after the running step (if any), ignoring its outcome. */
  private async idle(): Promise<void> {
    if (this.running) await this.running.catch(() => undefined);
  }

  /**
   * Adds trainable tensors with zero slots and t = 0 (copied, or moved with `transfer`). Names must be new and
   * must not clash with `lr`, `step`, `loss` or any state tensor; all tensors are checked before anything changes.
   */
  add(params: Record<string, TensorData>, opts: { transfer?: boolean } = {}): Promise<void> {
    try {
      this.assertUsable('add', true);
      if (typeof params !== 'object' || params === null) throw new Error('ResidentTrainState.add: params must be an object of name → tensor');
      const names = Object.keys(params);
      if (names.length === 0) throw new Error('ResidentTrainState.add: no tensors given');
      const taken = new Set(this.stateNames);
      const suffixes = slotSuffixes(this.optimizer, this.momentum);
      const added = new Map<string, ParamInfo>();
      for (const name of names) {
        if (name === '') throw new Error('ResidentTrainState.add: tensor names must be non-empty');
        const t = checkTensor(params[name], `ResidentTrainState.add: param '${name}'`);
        if (t.dtype !== 'float32' && t.dtype !== 'float64') {
          throw new Error(`ResidentTrainState.add: param '${name}' must be float32 or float64, got ${t.dtype}`);
        }
        if (this.params.has(name)) throw new Error(`ResidentTrainState.add: '${name}' is already a trainable tensor`);
        const slots = suffixes.map((s) => `${name}.${s}`);
        for (const n of [name, ...slots, `${name}.t`]) {
          if (RESERVED.has(n)) throw new Error(`ResidentTrainState.add: '${n}' is reserved and cannot name a trainable tensor or slot`);
          if (taken.has(n)) throw new Error(`ResidentTrainState.add: name '${n}' (of param '${name}') is already used by the state`);
          taken.add(n);
        }
        added.set(name, { dtype: t.dtype, dims: [...t.dims], slots, t: 0 });
      }
      const fresh: Record<string, TensorData> = {};
      for (const [name, info] of added) {
        for (const s of info.slots) fresh[s] = zeros(info.dtype, info.dims);
        fresh[`${name}.t`] = scalar('float32', 0);
      }
      for (const [name, info] of added) this.params.set(name, info);
      return Promise.all([
        this.engine.putTensors(this.store, params, { transfer: opts.transfer === true }),
        this.engine.putTensors(this.store, fresh, { transfer: true }),
      ]).then(() => undefined);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** Deletes trainable tensors with their slots and counters; the other parameters are untouched. */
  remove(names: readonly string[]): Promise<void> {
    try {
      this.assertUsable('remove', true);
      const list = [...new Set(names)];
      const unknown = list.filter((n) => !this.params.has(n));
      if (unknown.length > 0) throw new Error(`ResidentTrainState.remove: no trainable tensors ${unknown.map((n) => `'${n}'`).join(', ')}`);
      const doomed = list.flatMap((p) => [p, ...this.params.get(p)!.slots, `${p}.t`]);
      for (const p of list) this.params.delete(p);
      return this.engine.deleteTensors(this.store, doomed);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * One training step: feeds `lr` (and `step` if the graph declares it) fitted to the graph's declared type and
   * shape, reads every other input from this state's store, then `opts.stores`, and applies the session's
   * `.next` outputs of this state's tensors. The parameters the session trains (those with a `<p>.next`
   * output) must have all their slots as inputs and `.next` outputs. Returns only `opts.fetch`.
   */
  trainStep(handle: SessionHandle, batchFeeds: Record<string, TensorData>, opts: ResidentStepOptions): Promise<Record<string, TensorData>> {
    try {
      this.assertUsable('trainStep', true);
      const where = `ResidentTrainState.trainStep (session '${handle.key}')`;
      const lr = opts.lr;
      if (typeof lr !== 'number' || !Number.isFinite(lr)) throw new Error(`${where}: lr must be a finite number, got ${lr}`);
      const inputs = new Set(handle.inputNames);
      const outputs = new Set(handle.outputNames);
      const trained = this.names.filter((p) => outputs.has(p + NEXT));
      if (trained.length === 0) {
        throw new Error(`${where}: the session trains none of the state's tensors (no '<p>.next' output for ${this.names.join(', ') || 'an empty state'})`);
      }
      for (const p of trained) {
        for (const n of [p, ...this.params.get(p)!.slots]) {
          if (!inputs.has(n)) throw new Error(`${where}: trains '${p}' but has no input '${n}' (optimizer mismatch?)`);
          if (!outputs.has(n + NEXT)) throw new Error(`${where}: trains '${p}' but has no output '${n}${NEXT}' (optimizer mismatch?)`);
        }
      }
      const stateNames = new Set(this.stateNames);
      for (const name of Object.keys(batchFeeds)) {
        if (stateNames.has(name)) throw new Error(`${where}: batch feed '${name}' collides with a state tensor`);
        if (name === 'lr' || name === 'step') throw new Error(`${where}: batch feed '${name}' is reserved (the state feeds it)`);
      }
      const declared = new Map(handle.inputMetadata.map((m) => [m.name, m]));
      const dtype = this.params.get(trained[0]!)!.dtype;
      const feeds: Record<string, TensorData> = { ...batchFeeds };
      if (inputs.has('lr')) feeds['lr'] = conformScalar('lr', lr, scalar(dtype, lr), declared.get('lr'));
      if (inputs.has('step')) {
        const counts = trained.map((p) => this.params.get(p)!.t);
        if (counts.some((c) => c !== counts[0])) {
          const list = trained.map((p, i) => `${p}: ${counts[i]}`).join(', ');
          throw new Error(`${where}: the graph has one shared 'step' but its params have made different numbers of updates (${list}); build it with stepPerParam`);
        }
        feeds['step'] = conformScalar('step', counts[0]! + 1, scalar(dtype, counts[0]! + 1), declared.get('step'));
      }
      const fetch = opts.fetch ?? (outputs.has('loss') ? ['loss'] : []);
      const run = this.engine.run(handle, feeds, fetch, {
        stores: [this.store, ...(opts.stores ?? [])],
        update: this.store,
        transfer: opts.transfer === true,
      });
      const step = run.then(async (out) => {
        const counters: Record<string, TensorData> = {};
        for (const p of trained) {
          const info = this.params.get(p)!;
          info.t++;
          // a graph with a shared step does not update `<p>.t` itself
          if (!outputs.has(`${p}.t${NEXT}`)) counters[`${p}.t`] = scalar('float32', info.t);
        }
        if (Object.keys(counters).length > 0) await this.engine.putTensors(this.store, counters, { transfer: true });
        return out;
      });
      this.running = step;
      const clear = (): void => {
        if (this.running === step) this.running = null;
      };
      step.then(clear, clear);
      return step;
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** Copies of state tensors from the host (default: every parameter; slots and `<p>.t` may be named). */
  async get(names?: readonly string[]): Promise<Record<string, TensorData>> {
    this.assertUsable('get', false);
    await this.idle();
    const list = names === undefined ? this.names : [...names];
    const known = new Set(this.stateNames);
    const unknown = list.filter((n) => !known.has(n));
    if (unknown.length > 0) throw new Error(`ResidentTrainState.get: no state tensors ${unknown.map((n) => `'${n}'`).join(', ')}`);
    return this.engine.getTensors(this.store, list);
  }

  /** Replaces a parameter's value (its slots and count are kept) or a slot, with a copy of `data` of the same dtype and dims. */
  set(name: string, data: TensorData): Promise<void> {
    try {
      this.assertUsable('set', true);
      const owner = this.params.has(name) ? name : this.names.find((p) => this.params.get(p)!.slots.includes(name));
      if (owner === undefined) throw new Error(`ResidentTrainState.set: '${name}' is not a trainable tensor or slot`);
      const info = this.params.get(owner)!;
      checkTensor(data, `ResidentTrainState.set('${name}')`);
      if (data.dtype !== info.dtype || !sameDims(data.dims, info.dims)) {
        throw new Error(`ResidentTrainState.set('${name}'): expected ${info.dtype} [${info.dims.join(', ')}], got ${data.dtype} [${data.dims.join(', ')}]`);
      }
      return this.engine.putTensors(this.store, { [name]: data });
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** A copy of every parameter, slot and count. */
  async snapshot(): Promise<ResidentTrainStateSnapshot> {
    this.assertUsable('snapshot', false);
    await this.idle();
    const t: Record<string, number> = {};
    const names: string[] = [];
    for (const [p, info] of this.params) {
      t[p] = info.t;
      names.push(p, ...info.slots);
    }
    const tensors = names.length > 0 ? await this.engine.getTensors(this.store, names) : {};
    const info = this.engine.storeInfo(this.store);
    const rowCounters = [...this.params.keys()].map((p) => `${p}.t`).filter((n) => (info.get(n)?.dims.length ?? 0) > 0);
    if (rowCounters.length === 0) return { optimizer: this.optimizer, momentum: this.momentum, t, tensors };
    const counters = await this.engine.getTensors(this.store, rowCounters);
    return { optimizer: this.optimizer, momentum: this.momentum, t, tensors, counters };
  }

  /**
   * Makes the state equal to a snapshot of a state with the same optimizer: its parameters (the keys of `s.t`,
   * possibly a different set than now), slots and counts. Everything is checked before anything changes.
   */
  restore(s: ResidentTrainStateSnapshot, where = 'snapshot'): Promise<void> {
    try {
      this.assertUsable('restore', true);
      if (typeof s !== 'object' || s === null || typeof s.t !== 'object' || s.t === null || typeof s.tensors !== 'object' || s.tensors === null) {
        throw new Error(`${where}: expected {optimizer, momentum, t, tensors}`);
      }
      if (s.optimizer !== this.optimizer || s.momentum !== this.momentum) {
        throw new Error(`${where}: optimizer ${s.optimizer}${s.momentum ? '+momentum' : ''} does not match ${this.optimizer}${this.momentum ? '+momentum' : ''}`);
      }
      const suffixes = slotSuffixes(this.optimizer, this.momentum);
      const next = new Map<string, ParamInfo>();
      const put: Record<string, TensorData> = {};
      const taken = new Set<string>();
      for (const [p, count] of Object.entries(s.t)) {
        if (!Number.isInteger(count) || count < 0) throw new Error(`${where}.t['${p}']: must be a non-negative integer, got ${count}`);
        const pt = s.tensors[p];
        if (!pt) throw new Error(`${where}.tensors: '${p}' is missing`);
        checkTensor(pt, `${where}.tensors['${p}']`);
        if (pt.dtype !== 'float32' && pt.dtype !== 'float64') throw new Error(`${where}.tensors['${p}']: must be float32 or float64, got ${pt.dtype}`);
        const slots = suffixes.map((x) => `${p}.${x}`);
        for (const n of [p, ...slots, `${p}.t`]) {
          if (RESERVED.has(n) || taken.has(n)) throw new Error(`${where}: name '${n}' is reserved or used twice`);
          taken.add(n);
        }
        for (const n of slots) {
          const st = s.tensors[n];
          if (!st) throw new Error(`${where}.tensors: '${n}' is missing`);
          checkTensor(st, `${where}.tensors['${n}']`);
          if (st.dtype !== pt.dtype || !sameDims(st.dims, pt.dims)) {
            throw new Error(`${where}.tensors['${n}']: is ${st.dtype} [${st.dims.join(', ')}], expected ${pt.dtype} [${pt.dims.join(', ')}] like '${p}'`);
          }
          put[n] = st;
        }
        put[p] = pt;
        next.set(p, { dtype: pt.dtype, dims: [...pt.dims], slots, t: count });
      }
      const extra = Object.keys(s.tensors).filter((n) => !Object.hasOwn(put, n));
      if (extra.length > 0) throw new Error(`${where}.tensors: unexpected tensors ${extra.join(', ')}`);
      const counters: Record<string, TensorData> = {};
      for (const [p, info] of next) counters[`${p}.t`] = scalar('float32', info.t);
      for (const [n, c] of Object.entries(s.counters ?? {})) {
        const p = n.endsWith('.t') ? n.slice(0, -2) : '';
        const info = next.get(p);
        if (!info) throw new Error(`${where}.counters: '${n}' is not the counter of a parameter of the snapshot`);
        checkTensor(c, `${where}.counters['${n}']`);
        const rowDims = [info.dims[0], ...info.dims.slice(1).map(() => 1)];
        if (c.dtype !== 'float32' || !sameDims(c.dims, rowDims as number[])) {
          throw new Error(`${where}.counters['${n}']: is ${c.dtype} [${c.dims.join(', ')}], expected float32 [${rowDims.join(', ')}] (one count per row of '${p}')`);
        }
        counters[n] = c;
      }
      const old = this.stateNames;
      this.params.clear();
      for (const [p, info] of next) this.params.set(p, info);
      const ops: Promise<void>[] = [];
      if (old.length > 0) ops.push(this.engine.deleteTensors(this.store, old));
      if (next.size > 0) {
        ops.push(this.engine.putTensors(this.store, put));
        ops.push(this.engine.putTensors(this.store, counters));
      }
      return Promise.all(ops).then(() => undefined);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** Releases the store; the state cannot be used afterwards. Idempotent. */
  dispose(): Promise<void> {
    if (this.disposed) return Promise.resolve();
    try {
      this.assertUsable('dispose', true);
    } catch (e) {
      return Promise.reject(e);
    }
    this.disposed = true;
    this.params.clear();
    return this.engine.releaseStore(this.store);
  }
}
