/**
 * The only module that touches onnxruntime: it owns ONNX Runtime sessions by numeric id and runs them on
 * {@link TensorData}. The {@link Engine} uses one host either in-process or inside its worker thread
 * (`worker.ts`), so both modes execute exactly the same code. A browser build would swap this file for one that
 * loads onnxruntime-web.
 *
 * It also holds resident tensor stores (by numeric id): named tensors that runs read as inputs and that a run
 * may replace with its `<x>.next` outputs, so trainable state and frozen weights stay in the host between runs.
 *
 * All operations are serialized through one FIFO queue: `session.run` in onnxruntime-node is synchronous
 * (it blocks the thread for the whole run), so nothing is lost, a `release` can never free a session
 * while a run that was queued before it still uses it, and store changes apply in the order they were made.
 */
import type * as Ort from 'onnxruntime-node';
import { allocTyped, checkTensor, isDType, type TensorData, type TypedArray } from './types.ts';

/** Graph optimisation levels of ONNX Runtime. */
export type OptimizationLevel = 'disabled' | 'basic' | 'extended' | 'all';

/** ORT log severities: 0 verbose, 1 info, 2 warning, 3 error, 4 fatal. */
export type OrtLogSeverity = 0 | 1 | 2 | 3 | 4;

/** Fully resolved options for one session (what the host needs; the engine fills in defaults). */
export interface HostSessionOptions {
  /** Intra-op thread count (the size of ORT's thread pool for this session). */
  threads: number;
  optimizationLevel: OptimizationLevel;
  /** Skip MLAS weight prepacking: less memory (≈1.4× instead of ≈3.3× the fp32 weights), ≈20 % slower. */
  disablePrepacking: boolean;
  logSeverity: OrtLogSeverity;
}

/** Type and shape of a graph input or output as ORT reports them (symbolic dims are strings). */
export interface ValueInfo {
  name: string;
  isTensor: boolean;
  /** ORT element type, e.g. `float32`, `int64` (absent for non-tensors). */
  type?: string;
  /** Dims: numbers for fixed sizes, strings for symbolic ones; `[]` for scalars or unknown shapes. */
  shape?: (number | string)[];
}

/** What a created session looks like from outside. */
export interface SessionInfo {
  inputNames: string[];
  outputNames: string[];
  inputMetadata: ValueInfo[];
  outputMetadata: ValueInfo[];
}

/**
 * How a run uses stores (resolved by the engine from its mirror of the stores, so the host only executes it).
 */
export interface StorePlan {
  /** Graph inputs read from stores: input name → store id. */
  inputs: Record<string, number>;
  /** The store whose tensors are replaced by `<x>.next` outputs, or null. */
  update: number | null;
  /** Tensors `x` of `update` replaced by the output `<x>.next`. */
  replace: string[];
  /** The outputs returned to the caller (ORT's other outputs are dropped). */
  returned: string[];
}

interface Store {
  name: string;
  tensors: Map<string, TensorData>;
}

function sameDims(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** An exact copy of a tensor in a fresh buffer (never `slice()`: on a Node Buffer that is a view). */
function copyTensor(t: TensorData): TensorData {
  const data = allocTyped(t.dtype, t.data.length);
  data.set(t.data as never);
  return { dtype: t.dtype, dims: [...t.dims], data };
}

type OrtModule = typeof Ort;

let ortPromise: Promise<OrtModule> | null = null;

/** Loads onnxruntime-node once per thread (it is a CommonJS module: its exports arrive as the default export). */
function loadOrt(): Promise<OrtModule> {
  ortPromise ??= import('onnxruntime-node').then((m) => (m as unknown as { default?: OrtModule }).default ?? m);
  return ortPromise;
}

function toValueInfo(m: Ort.InferenceSession.ValueMetadata): ValueInfo {
  if (!m.isTensor) return { name: m.name, isTensor: false };
  return { name: m.name, isTensor: true, type: m.type, shape: [...m.shape] };
}

/** Holds ORT sessions for one thread. */
export class OrtHost {
  private readonly sessions = new Map<number, Ort.InferenceSession>();
  private readonly stores = new Map<number, Store>();
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(private readonly ort: OrtModule) {}

  /** Loads onnxruntime-node and returns a host. */
  static async load(): Promise<OrtHost> {
    return new OrtHost(await loadOrt());
  }

  /** The onnxruntime version string. */
  get version(): string {
    return this.ort.env.versions.common ?? 'unknown';
  }

  /** Runs `fn` after every previously queued operation has settled. */
  private enqueue<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.queue.then(fn, fn);
    this.queue = next.catch(() => undefined);
    return next;
  }

  /** Creates session `id` from serialized ONNX bytes. Rejects with ORT's error if the model does not load. */
  create(id: number, model: Uint8Array, opts: HostSessionOptions): Promise<SessionInfo> {
    return this.enqueue(async () => {
      if (this.sessions.has(id)) throw new Error(`session id ${id} already exists`);
      const options: Ort.InferenceSession.SessionOptions = {
        executionProviders: ['cpu'],
        intraOpNumThreads: opts.threads,
        interOpNumThreads: 1,
        executionMode: 'sequential',
        graphOptimizationLevel: opts.optimizationLevel,
        enableCpuMemArena: true,
        enableMemPattern: true,
        logSeverityLevel: opts.logSeverity,
      };
      if (opts.disablePrepacking) options.extra = { session: { disable_prepacking: '1' } };
      // onnxruntime-node reads `buffer`, `byteOffset` and `byteLength`, so a view into a larger buffer is fine.
      const session = await this.ort.InferenceSession.create(model, options);
      this.sessions.set(id, session);
      return {
        inputNames: [...session.inputNames],
        outputNames: [...session.outputNames],
        inputMetadata: session.inputMetadata.map(toValueInfo),
        outputMetadata: session.outputMetadata.map(toValueInfo),
      };
    });
  }

  /**
   * Runs session `id`. Feed arrays are wrapped without copying; outputs are returned as fresh typed arrays
   * (onnxruntime-node copies each output into its own ArrayBuffer). With a {@link StorePlan}, the planned inputs
   * are read from stores, and the `.next` replacements are checked (dtype and dims of the tensor they replace)
   * and applied only after the run succeeded, all or none; outputs that are both stored and returned are copied.
   */
  run(id: number, feeds: Record<string, TensorData>, fetch?: readonly string[], plan?: StorePlan): Promise<Record<string, TensorData>> {
    return this.enqueue(async () => {
      const session = this.sessions.get(id);
      if (!session) throw new Error(`session id ${id} does not exist (released?)`);
      const ortFeeds: Record<string, Ort.Tensor> = {};
      for (const [name, t] of Object.entries(feeds)) {
        ortFeeds[name] = new this.ort.Tensor(t.dtype, t.data, t.dims);
      }
      if (plan) {
        for (const [name, storeId] of Object.entries(plan.inputs)) {
          const t = this.storeTensor(storeId, name);
          ortFeeds[name] = new this.ort.Tensor(t.dtype, t.data, t.dims);
        }
      }
      const results = fetch ? await session.run(ortFeeds, [...fetch]) : await session.run(ortFeeds);
      const out: Record<string, TensorData> = {};
      for (const [name, value] of Object.entries(results)) {
        const t = value as Ort.Tensor;
        if (!isDType(t.type)) throw new Error(`output '${name}' has type ${t.type}, which the runtime does not support`);
        out[name] = checkTensor({ dtype: t.type, dims: [...t.dims], data: t.data as TypedArray }, `output '${name}'`);
      }
      if (!plan) return out;
      const stored = new Set<string>();
      if (plan.update !== null && plan.replace.length > 0) {
        const store = this.store(plan.update);
        const next = new Map<string, TensorData>();
        for (const x of plan.replace) {
          const o = out[`${x}.next`];
          if (!o) throw new Error(`output '${x}.next' was not computed`);
          const cur = store.tensors.get(x);
          if (!cur) throw new Error(`store '${store.name}' has no tensor '${x}'`);
          if (o.dtype !== cur.dtype || !sameDims(o.dims, cur.dims)) {
            throw new Error(
              `output '${x}.next' is ${o.dtype} [${o.dims.join(', ')}] but store '${store.name}' holds '${x}' as ${cur.dtype} [${cur.dims.join(', ')}]`,
            );
          }
          next.set(x, o);
        }
        for (const [x, o] of next) {
          store.tensors.set(x, o);
          stored.add(`${x}.next`);
        }
      }
      const returned: Record<string, TensorData> = {};
      for (const name of plan.returned) {
        const o = out[name];
        if (!o) throw new Error(`output '${name}' was not computed`);
        returned[name] = stored.has(name) ? copyTensor(o) : o;
      }
      return returned;
    });
  }

  private store(id: number): Store {
    const s = this.stores.get(id);
    if (!s) throw new Error(`store id ${id} does not exist (released?)`);
    return s;
  }

  private storeTensor(id: number, name: string): TensorData {
    const s = this.store(id);
    const t = s.tensors.get(name);
    if (!t) throw new Error(`store '${s.name}' has no tensor '${name}'`);
    return t;
  }

  /** Creates an empty store `id`; `name` is used in error messages. */
  createStore(id: number, name: string): Promise<void> {
    return this.enqueue(async () => {
      if (this.stores.has(id)) throw new Error(`store id ${id} already exists`);
      this.stores.set(id, { name, tensors: new Map() });
    });
  }

  /**
   * Adds or replaces tensors of store `id`. The host keeps the given arrays: callers pass arrays nobody else
   * holds (copies, or arrays received through `postMessage`).
   */
  putTensors(id: number, tensors: Record<string, TensorData>): Promise<void> {
    return this.enqueue(async () => {
      const s = this.store(id);
      const checked = Object.entries(tensors).map(([name, t]) => [name, checkTensor(t, `store '${s.name}' tensor '${name}'`)] as const);
      for (const [name, t] of checked) s.tensors.set(name, { dtype: t.dtype, dims: [...t.dims], data: t.data });
    });
  }

  /** Deletes tensors of store `id`; every name must exist (checked before anything is deleted). */
  deleteTensors(id: number, names: readonly string[]): Promise<void> {
    return this.enqueue(async () => {
      const s = this.store(id);
      const unknown = names.filter((n) => !s.tensors.has(n));
      if (unknown.length > 0) throw new Error(`store '${s.name}' has no tensors ${unknown.join(', ')}`);
      for (const n of names) s.tensors.delete(n);
    });
  }

  /** Fresh copies of tensors of store `id` (all of them when `names` is omitted). */
  getTensors(id: number, names?: readonly string[]): Promise<Record<string, TensorData>> {
    return this.enqueue(async () => {
      const s = this.store(id);
      const want = names ?? [...s.tensors.keys()];
      const unknown = want.filter((n) => !s.tensors.has(n));
      if (unknown.length > 0) throw new Error(`store '${s.name}' has no tensors ${unknown.join(', ')}`);
      const out: Record<string, TensorData> = {};
      for (const n of want) out[n] = copyTensor(s.tensors.get(n)!);
      return out;
    });
  }

  /** Frees store `id` (no-op if it does not exist). */
  releaseStore(id: number): Promise<void> {
    return this.enqueue(async () => {
      this.stores.delete(id);
    });
  }

  /** Releases session `id` (no-op if it does not exist). */
  release(id: number): Promise<void> {
    return this.enqueue(async () => {
      const session = this.sessions.get(id);
      if (!session) return;
      this.sessions.delete(id);
      await session.release();
    });
  }

  /** Releases every session and store. */
  releaseAll(): Promise<void> {
    return this.enqueue(async () => {
      const all = [...this.sessions.values()];
      this.sessions.clear();
      this.stores.clear();
      for (const s of all) await s.release();
    });
  }

  /** Number of live sessions. */
  get size(): number {
    return this.sessions.size;
  }
}
