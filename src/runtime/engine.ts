/**
 * The execution engine: a cache of ONNX Runtime sessions keyed by caller-chosen strings, and `run` on
 * {@link TensorData}. By default every session lives in ONE worker thread, because onnxruntime-node's
 * `session.run` blocks its thread for the whole run (engine-notes pitfall 7); with `worker: false` the same host
 * code runs in-process (for debugging and tests). Either way the API and the numbers are identical.
 *
 * Typical use:
 * ```ts
 * const engine = await Engine.create();              // threads = os.availableParallelism()
 * const h = await engine.session('vit-b16/adapters/train', () => buildTrainGraph(cfg));
 * const { loss } = await engine.run(h, { x, y }, ['loss']);
 * await engine.close();
 * ```
 * Sessions are stateless (pitfall 8): a different architecture, trainable set or mode is a different graph and so
 * a different key (see {@link sessionKey}). `build` is only called when the key is not cached. The cache holds at
 * most `maxSessions` sessions: beyond that the least recently used idle one is evicted and its memory freed.
 *
 * Resident tensor stores keep tensors in the host between runs, so frozen weights and training state do not
 * cross the thread boundary on every step:
 * ```ts
 * const train = engine.createStore('train');
 * await engine.putTensors(train, { w, 'w.m': zeros, 'w.v': zeros });
 * const { loss } = await engine.run(h, { x, y, lr }, ['loss'], { stores: [train], update: train });
 * ```
 * Missing inputs are read from the stores and the run's `<x>.next` outputs replace `x` in the update store.
 * Store operations and runs are executed in the order they were called.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import {
  OrtHost,
  type HostSessionOptions,
  type OptimizationLevel,
  type OrtLogSeverity,
  type SessionInfo,
  type ValueInfo,
  type StorePlan,
} from './ort-host.ts';
import {
  adoptTensors,
  packModel,
  packTensors,
  type SerializedError,
  type WorkerHello,
  type WorkerReply,
  type WorkerRequest,
} from './protocol.ts';
import { sessionKey } from './session-key.ts';
import { checkTensor, type DType, type TensorData } from './types.ts';

export type { OptimizationLevel, OrtLogSeverity, ValueInfo } from './ort-host.ts';

/** Options of {@link Engine.create}. */
export interface EngineOptions {
  /** Intra-op threads per session; default `os.availableParallelism()`. */
  threads?: number;
  /** Run sessions in a worker thread (default true) or in-process (false). */
  worker?: boolean;
  /**
   * ORT log severity (0 verbose … 4 fatal). Default 4: ORT would otherwise print every run error to stderr,
   * although the same message already reaches the caller as an {@link EngineError}.
   */
  logSeverity?: OrtLogSeverity;
  /**
   * Most sessions kept in the cache (default 24; `Infinity` for no bound). Creating one more evicts the least
   * recently used session that is not being created or run.
   */
  maxSessions?: number;
}

/** Options of {@link Engine.session}; part of what a cache key must distinguish. */
export interface SessionOptions {
  /** ORT graph optimisation level; default `all`. Use `basic` for float64 gradient checks (pitfall 5). */
  optimizationLevel?: OptimizationLevel;
  /** Disable weight prepacking to save memory (pitfall 6); default false. */
  disablePrepacking?: boolean;
}

/** A created session. Plain data; valid until released through its engine. */
export interface SessionHandle {
  readonly key: string;
  /** Engine-internal id. */
  readonly id: number;
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  /** Input types and shapes as ORT reports them (symbolic dims are strings). */
  readonly inputMetadata: readonly ValueInfo[];
  readonly outputMetadata: readonly ValueInfo[];
  readonly options: Readonly<Required<SessionOptions>>;
}

/** Options of {@link Engine.run}. */
export interface RunOptions {
  /**
   * Transfer the feed arrays to the worker instead of copying them: faster for large batches, but the caller's
   * arrays become detached (length 0). Ignored in-process, where feeds are never copied.
   */
  transfer?: boolean;
  /** Stores that graph inputs missing from `feeds` are read from: the first store holding the name wins. */
  stores?: readonly StoreHandle[];
  /**
   * After a successful run, every output `<x>.next` where `x` is a tensor of this store replaces `x` (same dtype
   * and dims). Without `fetch`, these outputs are not returned.
   */
  update?: StoreHandle | null;
}

/** A resident tensor store of an engine. Plain data; valid until released through its engine. */
export interface StoreHandle {
  /** Engine-internal id. */
  readonly id: number;
  /** The name used in error messages (not necessarily unique). */
  readonly name: string;
}

/** Type and shape of a store tensor (frozen objects: read them, do not modify them). */
export interface StoreTensorInfo {
  readonly dtype: DType;
  readonly dims: number[];
}

/** Options of {@link Engine.putTensors}. */
export interface PutOptions {
  /**
   * Move the caller's arrays into the store instead of copying them: they become detached (length 0), in both
   * engine modes. Views that do not own their whole buffer are copied anyway.
   */
  transfer?: boolean;
}

/** Counters for logging and tests. */
export interface EngineStats {
  /** Sessions currently cached (created or being created). */
  sessions: number;
  /** Sessions created since the engine started (cache misses that succeeded). */
  built: number;
  /** Completed runs. */
  runs: number;
  /** Sessions evicted from the cache as least recently used. */
  evicted: number;
  /** Live stores. */
  stores: number;
  /** Typed-array bytes sent to the host: explicit feeds, put tensors and model bytes. */
  bytesToHost: number;
  /** Typed-array bytes received from the host: returned outputs and got tensors. */
  bytesFromHost: number;
}

/** An error about one session: building its model, creating it in ORT, or running it. Names the session key. */
export class EngineError extends Error {
  override name = 'EngineError';
  constructor(
    /** The session's cache key. */
    readonly key: string,
    readonly phase: 'build' | 'create' | 'run',
    /** The underlying message (ORT's text for create/run failures). */
    readonly detail: string,
    options?: { cause?: unknown },
  ) {
    super(`session '${key}': ${phase} failed: ${detail}`, options);
  }
}

/** What the engine needs from a session host, wherever it lives. */
interface Host {
  readonly inWorker: boolean;
  readonly version: string;
  create(id: number, model: Uint8Array, opts: HostSessionOptions): Promise<SessionInfo>;
  run(id: number, feeds: Record<string, TensorData>, fetch: string[] | undefined, transfer: boolean, plan?: StorePlan): Promise<Record<string, TensorData>>;
  release(id: number): Promise<void>;
  createStore(id: number, name: string): Promise<void>;
  putTensors(id: number, tensors: Record<string, TensorData>, transfer: boolean): Promise<void>;
  deleteTensors(id: number, names: string[]): Promise<void>;
  getTensors(id: number, names: string[]): Promise<Record<string, TensorData>>;
  releaseStore(id: number): Promise<void>;
  close(): Promise<void>;
}

/** Sessions in this thread. */
class LocalHost implements Host {
  readonly inWorker = false;
  private constructor(private readonly host: OrtHost) {}
  static async start(): Promise<LocalHost> {
    return new LocalHost(await OrtHost.load());
  }
  get version(): string {
    return this.host.version;
  }
  create(id: number, model: Uint8Array, opts: HostSessionOptions): Promise<SessionInfo> {
    return this.host.create(id, model, opts);
  }
  run(id: number, feeds: Record<string, TensorData>, fetch: string[] | undefined, _transfer: boolean, plan?: StorePlan): Promise<Record<string, TensorData>> {
    return this.host.run(id, feeds, fetch, plan);
  }
  release(id: number): Promise<void> {
    return this.host.release(id);
  }
  createStore(id: number, name: string): Promise<void> {
    return this.host.createStore(id, name);
  }
  putTensors(id: number, tensors: Record<string, TensorData>, transfer: boolean): Promise<void> {
    return this.host.putTensors(id, adoptTensors(tensors, transfer));
  }
  deleteTensors(id: number, names: string[]): Promise<void> {
    return this.host.deleteTensors(id, names);
  }
  getTensors(id: number, names: string[]): Promise<Record<string, TensorData>> {
    return this.host.getTensors(id, names);
  }
  releaseStore(id: number): Promise<void> {
    return this.host.releaseStore(id);
  }
  close(): Promise<void> {
    return this.host.releaseAll();
  }
}

/**
 * Starts `worker.ts` in a worker thread. Under tsx (this file is `.ts`) the worker must register tsx itself:
 * hooks registered with `module.register` in the main thread do not reach workers in Node 20. Compiled builds
 * load `worker.js` directly.
 */
function spawnWorker(): Worker {
  const here = import.meta.url;
  if (!here.endsWith('.ts')) return new Worker(new URL('./worker.js', here));
  const target = new URL('./worker.ts', here).href;
  const tsxApi = import.meta.resolve('tsx/esm/api');
  const bootstrap =
    `import(${JSON.stringify(tsxApi)})` +
    `.then((m) => { m.register(); return import(${JSON.stringify(target)}); })` +
    `.catch((e) => { process.nextTick(() => { throw e; }); });`;
  return new Worker(bootstrap, { eval: true });
}

function reviveError(e: SerializedError): Error {
  const err = new Error(e.message);
  err.name = e.name;
  return err;
}

type Pending = { resolve: (v: unknown) => void; reject: (e: Error) => void };

/** Sessions in one worker thread, reached by messages. The worker is ref'ed only while requests are pending, so a
 * forgotten `close()` never keeps the process alive. */
class WorkerHost implements Host {
  readonly inWorker = true;
  private readonly pending = new Map<number, Pending>();
  private nextRequest = 1;
  private dead: Error | null = null;

  private constructor(
    private readonly worker: Worker,
    readonly version: string,
  ) {
    worker.on('message', (reply: WorkerReply) => this.onReply(reply));
    worker.on('error', (e: Error) => this.fail(new Error(`runtime worker crashed: ${e.message}`, { cause: e })));
    worker.on('exit', (code: number) => this.fail(new Error(`runtime worker exited (code ${code})`)));
    worker.unref();
  }

  static async start(): Promise<WorkerHost> {
    const worker = spawnWorker();
    try {
      const version = await new Promise<string>((resolve, reject) => {
        const done = (): void => {
          worker.off('message', onMessage);
          worker.off('error', onError);
          worker.off('exit', onExit);
        };
        const onMessage = (m: WorkerHello): void => {
          done();
          if (m.type === 'ready') resolve(m.version);
          else reject(new Error(`runtime worker failed to load onnxruntime: ${m.error.message}`));
        };
        const onError = (e: Error): void => {
          done();
          reject(new Error(`runtime worker failed to start: ${e.message}`, { cause: e }));
        };
        const onExit = (code: number): void => {
          done();
          reject(new Error(`runtime worker exited (code ${code}) before it was ready`));
        };
        worker.on('message', onMessage);
        worker.on('error', onError);
        worker.on('exit', onExit);
      });
      return new WorkerHost(worker, version);
    } catch (e) {
      await worker.terminate();
      throw e;
    }
  }

  private onReply(reply: WorkerReply): void {
    const p = this.pending.get(reply.id);
    if (!p) return;
    this.pending.delete(reply.id);
    if (this.pending.size === 0) this.worker.unref();
    if (reply.ok) p.resolve(reply.value);
    else p.reject(reviveError(reply.error));
  }

  private fail(e: Error): void {
    this.dead ??= e;
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
  }

  private request<T>(make: (id: number) => WorkerRequest, transfer: ArrayBuffer[]): Promise<T> {
    if (this.dead) return Promise.reject(this.dead);
    const id = this.nextRequest++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      if (this.pending.size === 1) this.worker.ref();
      try {
        this.worker.postMessage(make(id), transfer);
      } catch (e) {
        this.pending.delete(id);
        if (this.pending.size === 0) this.worker.unref();
        reject(e instanceof Error ? e : new Error(String(e)));
      }
    });
  }

  create(id: number, model: Uint8Array, options: HostSessionOptions): Promise<SessionInfo> {
    const packed = packModel(model);
    return this.request((rid) => ({ id: rid, op: 'create', session: id, model: packed.model, options }), packed.transfer);
  }

  run(id: number, feeds: Record<string, TensorData>, fetch: string[] | undefined, transfer: boolean, plan?: StorePlan): Promise<Record<string, TensorData>> {
    const packed = packTensors(feeds, transfer);
    return this.request((rid) => {
      const req: WorkerRequest = { id: rid, op: 'run', session: id, feeds: packed.tensors };
      if (fetch) req.fetch = fetch;
      if (plan) req.plan = plan;
      return req;
    }, packed.transfer);
  }

  release(id: number): Promise<void> {
    return this.request((rid) => ({ id: rid, op: 'release', session: id }), []);
  }

  createStore(id: number, name: string): Promise<void> {
    return this.request((rid) => ({ id: rid, op: 'store-create', store: id, name }), []);
  }

  putTensors(id: number, tensors: Record<string, TensorData>, transfer: boolean): Promise<void> {
    const packed = packTensors(tensors, transfer);
    return this.request((rid) => ({ id: rid, op: 'store-put', store: id, tensors: packed.tensors }), packed.transfer);
  }

  deleteTensors(id: number, names: string[]): Promise<void> {
    return this.request((rid) => ({ id: rid, op: 'store-delete', store: id, names }), []);
  }

  getTensors(id: number, names: string[]): Promise<Record<string, TensorData>> {
    return this.request((rid) => ({ id: rid, op: 'store-get', store: id, names }), []);
  }

  releaseStore(id: number): Promise<void> {
    return this.request((rid) => ({ id: rid, op: 'store-release', store: id }), []);
  }

  async close(): Promise<void> {
    try {
      if (!this.dead) await this.request((rid) => ({ id: rid, op: 'close' }), []);
    } finally {
      this.dead ??= new Error('engine is closed');
      await this.worker.terminate();
    }
  }
}

interface CacheEntry {
  promise: Promise<SessionHandle>;
  optionsKey: string;
  id: number;
  /** Created and usable (only ready sessions can be evicted). */
  ready: boolean;
  /** Runs dispatched and not yet settled (busy sessions are never evicted). */
  busy: number;
}

interface LiveSession {
  handle: SessionHandle;
  inputs: Map<string, ValueInfo>;
  outputs: Set<string>;
}

interface StoreState {
  handle: StoreHandle;
  /** Mirror of the host's tensors (names, dtypes, dims), updated when an operation is issued. */
  tensors: Map<string, StoreTensorInfo>;
  released: boolean;
}

function resolveSessionOptions(opts: SessionOptions): Required<SessionOptions> {
  const levels: OptimizationLevel[] = ['disabled', 'basic', 'extended', 'all'];
  const optimizationLevel = opts.optimizationLevel ?? 'all';
  if (!levels.includes(optimizationLevel)) {
    throw new Error(`session options: optimizationLevel must be one of ${levels.join(', ')}, got ${JSON.stringify(optimizationLevel)}`);
  }
  return { optimizationLevel, disablePrepacking: opts.disablePrepacking ?? false };
}

/** Typed-array bytes of a set of tensors. */
function bytesOf(tensors: Record<string, TensorData>): number {
  let n = 0;
  for (const t of Object.values(tensors)) n += t.data.byteLength;
  return n;
}

const NEXT = '.next';

/** Owns a session host (worker or in-process), the session cache and the resident stores. */
export class Engine {
  /** Sessions by key, least recently used first. */
  private readonly cache = new Map<string, CacheEntry>();
  private readonly live = new Map<number, LiveSession>();
  /** Ids of sessions evicted from the cache (their handles fail with a clear message). */
  private readonly evictedIds = new Set<number>();
  private readonly stores = new Map<number, StoreState>();
  private nextSession = 1;
  private nextStore = 1;
  private built = 0;
  private runs = 0;
  private evicted = 0;
  private bytesToHost = 0;
  private bytesFromHost = 0;
  private isClosed = false;

  private constructor(
    private readonly host: Host,
    /** Intra-op threads of every session. */
    readonly threads: number,
    private readonly logSeverity: OrtLogSeverity,
    /** Most sessions kept in the cache. */
    readonly maxSessions: number,
  ) {}

  /** Starts an engine: loads onnxruntime (in the worker when `worker` is true, the default). */
  static async create(opts: EngineOptions = {}): Promise<Engine> {
    const threads = opts.threads ?? availableParallelism();
    if (!Number.isInteger(threads) || threads < 1) throw new Error(`Engine.create: threads must be a positive integer, got ${threads}`);
    const logSeverity = opts.logSeverity ?? 4;
    if (![0, 1, 2, 3, 4].includes(logSeverity)) throw new Error(`Engine.create: logSeverity must be 0..4, got ${logSeverity}`);
    const maxSessions = opts.maxSessions ?? 24;
    if (!(maxSessions === Infinity || (Number.isInteger(maxSessions) && maxSessions >= 1))) {
      throw new Error(`Engine.create: maxSessions must be a positive integer or Infinity, got ${maxSessions}`);
    }
    const host = opts.worker === false ? await LocalHost.start() : await WorkerHost.start();
    return new Engine(host, threads, logSeverity, maxSessions);
  }

  /** Whether sessions run in a worker thread. */
  get inWorker(): boolean {
    return this.host.inWorker;
  }

  /** The onnxruntime version in use. */
  get ortVersion(): string {
    return this.host.version;
  }

  /** Whether {@link close} has been called. */
  get closed(): boolean {
    return this.isClosed;
  }

  private assertOpen(): void {
    if (this.isClosed) throw new Error('Engine is closed');
  }

  /**
   * The session for `key` (a string, or parts turned into one by {@link sessionKey}), creating it from `build()`
   * on a cache miss. Concurrent calls with one key share one creation. A failed creation is not cached (the next
   * call retries). Asking for a cached key with different options is an error: the key must describe everything
   * that makes a session different. Every call marks the session as most recently used.
   */
  session(
    key: string | Record<string, unknown>,
    build: () => Uint8Array | Promise<Uint8Array>,
    opts: SessionOptions = {},
  ): Promise<SessionHandle> {
    try {
      this.assertOpen();
      if (typeof key === 'object' && key !== null) key = sessionKey(key);
      if (typeof key !== 'string' || key === '') throw new Error('Engine.session: key must be a non-empty string or an object of key parts');
      const options = resolveSessionOptions(opts);
      const optionsKey = JSON.stringify(options);
      const cached = this.cache.get(key);
      if (cached) {
        if (cached.optionsKey !== optionsKey) {
          throw new Error(`Engine.session: '${key}' is cached with options ${cached.optionsKey}, requested ${optionsKey}; use a different key`);
        }
        this.touch(key, cached);
        return cached.promise;
      }
      const id = this.nextSession++;
      const promise = this.createSession(key, id, build, options, () => {
        entry.ready = true;
      });
      const entry: CacheEntry = { id, optionsKey, ready: false, busy: 0, promise };
      this.cache.set(key, entry);
      const k = key;
      entry.promise.catch(() => {
        if (this.cache.get(k) === entry) this.cache.delete(k);
      });
      this.evictIdle();
      return entry.promise;
    } catch (e) {
      return Promise.reject(e);
    }
  }

  private async createSession(
    key: string,
    id: number,
    build: () => Uint8Array | Promise<Uint8Array>,
    options: Required<SessionOptions>,
    onReady: () => void,
  ): Promise<SessionHandle> {
    let model: Uint8Array;
    try {
      model = await build();
    } catch (e) {
      throw new EngineError(key, 'build', e instanceof Error ? e.message : String(e), { cause: e });
    }
    if (!(model instanceof Uint8Array) || model.byteLength === 0) {
      throw new EngineError(key, 'build', 'build() must return the serialized model as a non-empty Uint8Array');
    }
    let info: SessionInfo;
    try {
      this.bytesToHost += model.byteLength;
      info = await this.host.create(id, model, { ...options, threads: this.threads, logSeverity: this.logSeverity });
    } catch (e) {
      throw new EngineError(key, 'create', e instanceof Error ? e.message : String(e), { cause: e });
    }
    if (this.isClosed) throw new EngineError(key, 'create', 'engine was closed while the session was being created');
    const handle: SessionHandle = Object.freeze({
      key,
      id,
      inputNames: Object.freeze(info.inputNames),
      outputNames: Object.freeze(info.outputNames),
      inputMetadata: Object.freeze(info.inputMetadata),
      outputMetadata: Object.freeze(info.outputMetadata),
      options: Object.freeze(options),
    });
    this.live.set(id, {
      handle,
      inputs: new Map(info.inputMetadata.map((m) => [m.name, m])),
      outputs: new Set(info.outputNames),
    });
    this.built++;
    onReady();
    return handle;
  }

  /** Marks a cached session as most recently used. */
  private touch(key: string, entry: CacheEntry): void {
    this.cache.delete(key);
    this.cache.set(key, entry);
  }

  /**
   * Evicts least recently used sessions while the cache holds more than `maxSessions`. Sessions being created or
   * run, and the most recently used one, are kept (the cache may exceed the bound until they are idle).
   */
  private evictIdle(): void {
    if (this.cache.size <= this.maxSessions) return;
    const entries = [...this.cache.entries()];
    const mru = entries[entries.length - 1]?.[1];
    for (const [key, e] of entries) {
      if (this.cache.size <= this.maxSessions) break;
      if (e === mru || !e.ready || e.busy > 0) continue;
      this.cache.delete(key);
      this.live.delete(e.id);
      this.evictedIds.add(e.id);
      this.evicted++;
      this.host.release(e.id).catch(() => undefined);
    }
  }

  /** Whether a session for `key` is cached (created or being created). Does not change the LRU order. */
  has(key: string | Record<string, unknown>): boolean {
    return this.cache.has(typeof key === 'string' ? key : sessionKey(key));
  }

  /** Keys of the cached sessions, least recently used first. */
  get keys(): string[] {
    return [...this.cache.keys()];
  }

  /** Counters: cached sessions, sessions built and evicted, runs completed, stores, bytes to and from the host. */
  stats(): EngineStats {
    let stores = 0;
    for (const s of this.stores.values()) if (!s.released) stores++;
    return {
      sessions: this.cache.size,
      built: this.built,
      runs: this.runs,
      evicted: this.evicted,
      stores,
      bytesToHost: this.bytesToHost,
      bytesFromHost: this.bytesFromHost,
    };
  }

  /** Releases the session for `key` and frees its memory; its handle becomes invalid. No-op for unknown keys. */
  async release(key: string | Record<string, unknown>): Promise<void> {
    if (typeof key !== 'string') key = sessionKey(key);
    const entry = this.cache.get(key);
    if (!entry) return;
    this.cache.delete(key);
    try {
      await entry.promise;
    } catch {
      return; // creation failed: nothing to free
    }
    this.live.delete(entry.id);
    await this.host.release(entry.id);
  }

  // ---------------------------------------------------------------------------------------------- stores

  /**
   * A new, empty resident store in the host. The handle is returned at once; operations on it are executed in
   * the order they are called (also relative to runs).
   */
  createStore(name: string): StoreHandle {
    this.assertOpen();
    if (typeof name !== 'string' || name === '') throw new Error('Engine.createStore: name must be a non-empty string');
    const handle: StoreHandle = Object.freeze({ id: this.nextStore++, name });
    this.stores.set(handle.id, { handle, tensors: new Map(), released: false });
    // a failure here (the host died) also fails every later operation on the store, which reports it
    this.host.createStore(handle.id, name).catch(() => undefined);
    return handle;
  }

  private storeState(store: StoreHandle, where: string): StoreState {
    const s = typeof store === 'object' && store !== null ? this.stores.get(store.id) : undefined;
    if (!s || s.handle !== store) {
      throw new Error(`${where}: store ${JSON.stringify((store as StoreHandle | null)?.name)} does not belong to this engine`);
    }
    if (s.released) throw new Error(`${where}: store '${s.handle.name}' was released`);
    return s;
  }

  /**
   * Adds or replaces tensors of a store. Each tensor is validated here (the names in errors); later runs read
   * it without further checks. The arrays are copied, or moved with `transfer`.
   */
  putTensors(store: StoreHandle, tensors: Record<string, TensorData>, opts: PutOptions = {}): Promise<void> {
    try {
      this.assertOpen();
      const s = this.storeState(store, 'putTensors');
      if (typeof tensors !== 'object' || tensors === null) throw new Error(`putTensors: store '${s.handle.name}': tensors must be an object of name → tensor`);
      const names = Object.keys(tensors);
      for (const n of names) {
        if (n === '') throw new Error(`putTensors: store '${s.handle.name}': tensor names must be non-empty`);
        checkTensor(tensors[n], `putTensors: store '${s.handle.name}' tensor '${n}'`);
      }
      for (const n of names) {
        const t = tensors[n]!;
        s.tensors.set(n, Object.freeze({ dtype: t.dtype, dims: Object.freeze([...t.dims]) as number[] }));
      }
      this.bytesToHost += bytesOf(tensors);
      return this.host.putTensors(store.id, tensors, opts.transfer === true);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** Deletes tensors of a store. Unknown names are an error naming them (and nothing is deleted). */
  deleteTensors(store: StoreHandle, names: readonly string[]): Promise<void> {
    try {
      this.assertOpen();
      const s = this.storeState(store, 'deleteTensors');
      const list = [...new Set(names)];
      const unknown = list.filter((n) => !s.tensors.has(n));
      if (unknown.length > 0) throw new Error(`deleteTensors: store '${s.handle.name}' has no tensors ${unknown.map((n) => `'${n}'`).join(', ')}`);
      for (const n of list) s.tensors.delete(n);
      return this.host.deleteTensors(store.id, list);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** Fresh copies of tensors of a store (default: all). Unknown names are an error naming them. */
  getTensors(store: StoreHandle, names?: readonly string[]): Promise<Record<string, TensorData>> {
    try {
      this.assertOpen();
      const s = this.storeState(store, 'getTensors');
      const list = names === undefined ? [...s.tensors.keys()] : [...new Set(names)];
      const unknown = list.filter((n) => !s.tensors.has(n));
      if (unknown.length > 0) throw new Error(`getTensors: store '${s.handle.name}' has no tensors ${unknown.map((n) => `'${n}'`).join(', ')}`);
      return this.host.getTensors(store.id, list).then((out) => {
        this.bytesFromHost += bytesOf(out);
        return out;
      });
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** Names, dtypes and dims of a store's tensors, as of the operations issued so far (a live view; no round trip). */
  storeInfo(store: StoreHandle): ReadonlyMap<string, StoreTensorInfo> {
    return this.storeState(store, 'storeInfo').tensors;
  }

  /** Frees a store and its tensors in the host; its handle becomes invalid. Idempotent. */
  releaseStore(store: StoreHandle): Promise<void> {
    try {
      if (this.isClosed) return Promise.resolve();
      const s = this.stores.get(store?.id);
      if (s && s.handle === store && s.released) return Promise.resolve();
      this.storeState(store, 'releaseStore');
      s!.released = true;
      s!.tensors = new Map();
      return this.host.releaseStore(store.id);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  // ------------------------------------------------------------------------------------------------ runs

  /**
   * Runs a session. Every graph input must be in `feeds` or, with `opts.stores`, in one of the stores (the first
   * that holds it); `feeds` must name graph inputs only. Feeds are checked against the input's dtype and fixed
   * dims before they reach ORT, store tensors likewise from the store's mirror. `fetch` limits the outputs
   * (default: all, minus the `.next` replacements when `opts.update` is set). With `opts.update`, the outputs
   * `<x>.next` of the store's tensors `x` replace them once the run succeeded (all or none). Returns fresh arrays.
   */
  async run(
    handle: SessionHandle,
    feeds: Record<string, TensorData>,
    fetch?: readonly string[],
    opts: RunOptions = {},
  ): Promise<Record<string, TensorData>> {
    this.assertOpen();
    const live = this.live.get(handle.id);
    if (!live || live.handle !== handle) {
      if (this.evictedIds.has(handle.id)) {
        throw new EngineError(
          handle.key,
          'run',
          `the session was evicted from the cache; ask engine.session again (maxSessions is ${this.maxSessions}, least recently used first)`,
        );
      }
      throw new EngineError(handle.key, 'run', 'this session handle was released or belongs to another engine');
    }
    const { key } = handle;
    for (const [name, t] of Object.entries(feeds)) {
      const info = live.inputs.get(name);
      if (!info) {
        throw new EngineError(key, 'run', `'${name}' is not an input of the graph (inputs: ${handle.inputNames.join(', ')})`);
      }
      try {
        checkTensor(t, `feed '${name}'`);
      } catch (e) {
        throw new EngineError(key, 'run', (e as Error).message);
      }
      checkAgainstMetadata(key, `feed '${name}'`, t, info);
    }
    let stores: StoreState[] = [];
    let update: StoreState | null = null;
    try {
      stores = (opts.stores ?? []).map((st) => this.storeState(st, 'run: stores'));
      if (opts.update) update = this.storeState(opts.update, 'run: update');
    } catch (e) {
      throw new EngineError(key, 'run', (e as Error).message);
    }
    const fromStore: Record<string, number> = {};
    const missing: string[] = [];
    for (const n of handle.inputNames) {
      if (Object.hasOwn(feeds, n)) continue;
      const s = stores.find((st) => st.tensors.has(n));
      if (!s) {
        missing.push(n);
        continue;
      }
      checkAgainstMetadata(key, `tensor '${n}' of store '${s.handle.name}'`, s.tensors.get(n)!, live.inputs.get(n)!);
      fromStore[n] = s.handle.id;
    }
    if (missing.length > 0) {
      const searched = stores.length > 0 ? ` (not in feeds nor in stores ${stores.map((s) => `'${s.handle.name}'`).join(', ')})` : '';
      throw new EngineError(key, 'run', `missing feeds: ${missing.join(', ')}${searched}`);
    }
    let fetchList: string[] | undefined;
    if (fetch !== undefined) {
      fetchList = [...new Set(fetch)];
      const unknown = fetchList.filter((n) => !live.outputs.has(n));
      if (unknown.length > 0) {
        throw new EngineError(key, 'run', `unknown outputs to fetch: ${unknown.join(', ')} (outputs: ${handle.outputNames.join(', ')})`);
      }
    }
    let plan: StorePlan | undefined;
    let ortFetch = fetchList;
    if (stores.length > 0 || update) {
      const replace: string[] = [];
      if (update) {
        const outMeta = new Map(handle.outputMetadata.map((m) => [m.name, m]));
        for (const o of handle.outputNames) {
          if (!o.endsWith(NEXT)) continue;
          const x = o.slice(0, -NEXT.length);
          const cur = update.tensors.get(x);
          if (!cur) continue;
          const m = outMeta.get(o);
          if (m) checkAgainstMetadata(key, `tensor '${x}' of store '${update.handle.name}' (updated by output '${o}')`, cur, m);
          replace.push(x);
        }
      }
      const replaced = new Set(replace.map((x) => x + NEXT));
      const returned = fetchList ?? handle.outputNames.filter((o) => !replaced.has(o));
      if (fetchList) ortFetch = [...new Set([...fetchList, ...replaced])];
      plan = { inputs: fromStore, update: update ? update.handle.id : null, replace, returned };
    }
    const entry = this.cache.get(key);
    const mine = entry && entry.id === handle.id ? entry : undefined;
    if (mine) {
      this.touch(key, mine);
      mine.busy++;
    }
    this.bytesToHost += bytesOf(feeds);
    let out: Record<string, TensorData>;
    try {
      out = await this.host.run(handle.id, feeds, ortFetch, opts.transfer === true, plan);
    } catch (e) {
      throw new EngineError(key, 'run', e instanceof Error ? e.message : String(e), { cause: e });
    } finally {
      if (mine) {
        mine.busy--;
        this.evictIdle();
      }
    }
    this.bytesFromHost += bytesOf(out);
    this.runs++;
    return out;
  }

  /** Releases every session and store and stops the worker. Idempotent; the engine cannot be used afterwards. */
  async close(): Promise<void> {
    if (this.isClosed) return;
    this.isClosed = true;
    await Promise.allSettled([...this.cache.values()].map((e) => e.promise));
    this.cache.clear();
    this.live.clear();
    for (const s of this.stores.values()) {
      s.released = true;
      s.tensors = new Map();
    }
    await this.host.close();
  }
}

/**
 * Checks a tensor's dtype, rank and fixed dims against ORT's metadata for a graph input or output; `what`
 * names the tensor (`feed 'x'`, `tensor 'w' of store 'train'`).
 */
function checkAgainstMetadata(key: string, what: string, t: { dtype: DType; dims: readonly number[] }, info: ValueInfo): void {
  if (!info.isTensor) return;
  if (info.type !== undefined && info.type !== t.dtype) {
    throw new EngineError(key, 'run', `${what} is ${t.dtype} but the graph expects ${info.type}`);
  }
  const shape = info.shape;
  // ORT reports [] both for scalars and for inputs without shape information, so only a non-empty shape is checked.
  if (!shape || shape.length === 0) return;
  const bad =
    shape.length !== t.dims.length || shape.some((d, i) => typeof d === 'number' && d >= 0 && d !== t.dims[i]);
  if (bad) {
    throw new EngineError(key, 'run', `${what} has dims [${t.dims.join(', ')}] but the graph expects [${shape.join(', ')}]`);
  }
}
