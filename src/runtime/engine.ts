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
 * a different key. `build` is only called when the key is not cached.
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
} from './ort-host.ts';
import { packModel, packTensors, type SerializedError, type WorkerHello, type WorkerReply, type WorkerRequest } from './protocol.ts';
import { checkTensor, type TensorData } from './types.ts';

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
}

/** Counters for logging and tests. */
export interface EngineStats {
  /** Sessions currently cached (created or being created). */
  sessions: number;
  /** Sessions created since the engine started (cache misses that succeeded). */
  built: number;
  /** Completed runs. */
  runs: number;
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
  run(id: number, feeds: Record<string, TensorData>, fetch: string[] | undefined, transfer: boolean): Promise<Record<string, TensorData>>;
  release(id: number): Promise<void>;
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
  run(id: number, feeds: Record<string, TensorData>, fetch: string[] | undefined): Promise<Record<string, TensorData>> {
    return this.host.run(id, feeds, fetch);
  }
  release(id: number): Promise<void> {
    return this.host.release(id);
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

  run(id: number, feeds: Record<string, TensorData>, fetch: string[] | undefined, transfer: boolean): Promise<Record<string, TensorData>> {
    const packed = packTensors(feeds, transfer);
    return this.request(
      (rid) => (fetch ? { id: rid, op: 'run', session: id, feeds: packed.tensors, fetch } : { id: rid, op: 'run', session: id, feeds: packed.tensors }),
      packed.transfer,
    );
  }

  release(id: number): Promise<void> {
    return this.request((rid) => ({ id: rid, op: 'release', session: id }), []);
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
}

interface LiveSession {
  handle: SessionHandle;
  inputs: Map<string, ValueInfo>;
  outputs: Set<string>;
}

function resolveSessionOptions(opts: SessionOptions): Required<SessionOptions> {
  const levels: OptimizationLevel[] = ['disabled', 'basic', 'extended', 'all'];
  const optimizationLevel = opts.optimizationLevel ?? 'all';
  if (!levels.includes(optimizationLevel)) {
    throw new Error(`session options: optimizationLevel must be one of ${levels.join(', ')}, got ${JSON.stringify(optimizationLevel)}`);
  }
  return { optimizationLevel, disablePrepacking: opts.disablePrepacking ?? false };
}

/** Owns a session host (worker or in-process) and the session cache. */
export class Engine {
  private readonly cache = new Map<string, CacheEntry>();
  private readonly live = new Map<number, LiveSession>();
  private nextSession = 1;
  private built = 0;
  private runs = 0;
  private isClosed = false;

  private constructor(
    private readonly host: Host,
    /** Intra-op threads of every session. */
    readonly threads: number,
    private readonly logSeverity: OrtLogSeverity,
  ) {}

  /** Starts an engine: loads onnxruntime (in the worker when `worker` is true, the default). */
  static async create(opts: EngineOptions = {}): Promise<Engine> {
    const threads = opts.threads ?? availableParallelism();
    if (!Number.isInteger(threads) || threads < 1) throw new Error(`Engine.create: threads must be a positive integer, got ${threads}`);
    const logSeverity = opts.logSeverity ?? 4;
    if (![0, 1, 2, 3, 4].includes(logSeverity)) throw new Error(`Engine.create: logSeverity must be 0..4, got ${logSeverity}`);
    const host = opts.worker === false ? await LocalHost.start() : await WorkerHost.start();
    return new Engine(host, threads, logSeverity);
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
   * The session for `key`, creating it from `build()` on a cache miss. Concurrent calls with one key share one
   * creation. A failed creation is not cached (the next call retries). Asking for a cached key with different
   * options is an error: the key must describe everything that makes a session different.
   */
  session(key: string, build: () => Uint8Array | Promise<Uint8Array>, opts: SessionOptions = {}): Promise<SessionHandle> {
    try {
      this.assertOpen();
      if (typeof key !== 'string' || key === '') throw new Error('Engine.session: key must be a non-empty string');
      const options = resolveSessionOptions(opts);
      const optionsKey = JSON.stringify(options);
      const cached = this.cache.get(key);
      if (cached) {
        if (cached.optionsKey !== optionsKey) {
          throw new Error(`Engine.session: '${key}' is cached with options ${cached.optionsKey}, requested ${optionsKey}; use a different key`);
        }
        return cached.promise;
      }
      const id = this.nextSession++;
      const entry: CacheEntry = { id, optionsKey, promise: this.createSession(key, id, build, options) };
      this.cache.set(key, entry);
      entry.promise.catch(() => {
        if (this.cache.get(key) === entry) this.cache.delete(key);
      });
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
    return handle;
  }

  /** Whether a session for `key` is cached (created or being created). */
  has(key: string): boolean {
    return this.cache.has(key);
  }

  /** Keys of the cached sessions. */
  get keys(): string[] {
    return [...this.cache.keys()];
  }

  /** Counters: cached sessions, sessions built, runs completed. */
  stats(): EngineStats {
    return { sessions: this.cache.size, built: this.built, runs: this.runs };
  }

  /** Releases the session for `key` and frees its memory; its handle becomes invalid. No-op for unknown keys. */
  async release(key: string): Promise<void> {
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

  /**
   * Runs a session. `feeds` must name every graph input (and nothing else); each is checked against the input's
   * dtype and fixed dims before it reaches ORT. `fetch` limits the outputs (default: all). Returns fresh arrays.
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
      checkAgainstMetadata(key, name, t, info);
    }
    const missing = handle.inputNames.filter((n) => !Object.hasOwn(feeds, n));
    if (missing.length > 0) throw new EngineError(key, 'run', `missing feeds: ${missing.join(', ')}`);
    let fetchList: string[] | undefined;
    if (fetch !== undefined) {
      fetchList = [...new Set(fetch)];
      const unknown = fetchList.filter((n) => !live.outputs.has(n));
      if (unknown.length > 0) {
        throw new EngineError(key, 'run', `unknown outputs to fetch: ${unknown.join(', ')} (outputs: ${handle.outputNames.join(', ')})`);
      }
    }
    let out: Record<string, TensorData>;
    try {
      out = await this.host.run(handle.id, feeds, fetchList, opts.transfer === true);
    } catch (e) {
      throw new EngineError(key, 'run', e instanceof Error ? e.message : String(e), { cause: e });
    }
    this.runs++;
    return out;
  }

  /** Releases every session and stops the worker. Idempotent; the engine cannot be used afterwards. */
  async close(): Promise<void> {
    if (this.isClosed) return;
    this.isClosed = true;
    await Promise.allSettled([...this.cache.values()].map((e) => e.promise));
    this.cache.clear();
    this.live.clear();
    await this.host.close();
  }
}

/** Checks a feed's dtype, rank and fixed dims against ORT's metadata for that input. */
function checkAgainstMetadata(key: string, name: string, t: TensorData, info: ValueInfo): void {
  if (!info.isTensor) return;
  if (info.type !== undefined && info.type !== t.dtype) {
    throw new EngineError(key, 'run', `feed '${name}' is ${t.dtype} but the graph expects ${info.type}`);
  }
  const shape = info.shape;
  // ORT reports [] both for scalars and for inputs without shape information, so only a non-empty shape is checked.
  if (!shape || shape.length === 0) return;
  const bad =
    shape.length !== t.dims.length || shape.some((d, i) => typeof d === 'number' && d >= 0 && d !== t.dims[i]);
  if (bad) {
    throw new EngineError(key, 'run', `feed '${name}' has dims [${t.dims.join(', ')}] but the graph expects [${shape.join(', ')}]`);
  }
}
