/**
 * The only module that touches onnxruntime: it owns ONNX Runtime sessions by numeric id and runs them on
 * {@link TensorData}. The {@link Engine} uses one host either in-process or inside its worker thread
 * (`worker.ts`), so both modes execute exactly the same code. A browser build would swap this file for one that
 * loads onnxruntime-web.
 *
 * All operations are serialized through one FIFO queue: `session.run` in onnxruntime-node is synchronous
 * (it blocks the thread for the whole run), so nothing is lost, and a `release` can never free a session
 * while a run that was queued before it still uses it.
 */
import type * as Ort from 'onnxruntime-node';
import { checkTensor, isDType, type TensorData, type TypedArray } from './types.ts';

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
   * (onnxruntime-node copies each output into its own ArrayBuffer).
   */
  run(id: number, feeds: Record<string, TensorData>, fetch?: readonly string[]): Promise<Record<string, TensorData>> {
    return this.enqueue(async () => {
      const session = this.sessions.get(id);
      if (!session) throw new Error(`session id ${id} does not exist (released?)`);
      const ortFeeds: Record<string, Ort.Tensor> = {};
      for (const [name, t] of Object.entries(feeds)) {
        ortFeeds[name] = new this.ort.Tensor(t.dtype, t.data, t.dims);
      }
      const results = fetch ? await session.run(ortFeeds, [...fetch]) : await session.run(ortFeeds);
      const out: Record<string, TensorData> = {};
      for (const [name, value] of Object.entries(results)) {
        const t = value as Ort.Tensor;
        if (!isDType(t.type)) throw new Error(`output '${name}' has type ${t.type}, which the runtime does not support`);
        out[name] = checkTensor({ dtype: t.type, dims: [...t.dims], data: t.data as TypedArray }, `output '${name}'`);
      }
      return out;
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

  /** Releases every session. */
  releaseAll(): Promise<void> {
    return this.enqueue(async () => {
      const all = [...this.sessions.values()];
      this.sessions.clear();
      for (const s of all) await s.release();
    });
  }

  /** Number of live sessions. */
  get size(): number {
    return this.sessions.size;
  }
}
