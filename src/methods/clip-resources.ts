/**
 * Shared CLIP resources for CLIP-based methods: ONE engine and one loaded {@link ClipModel} per model folder,
 * with per-model caches of image features and prompt embeddings (see clip-features.ts), so that several
 * methods of one demo or experiment run do not load the same weights, build the same ONNX sessions, or encode
 * the same test image twice.
 *
 * Ownership: whoever creates a {@link ClipResources} disposes it (the demo, at the end of all its runs). It
 * reaches the methods as `env.resources[CLIP_RESOURCES]`. A method created without it (e.g. `moeclip run` on a
 * single config) makes a private instance and disposes that in its own `dispose()` — see {@link acquireClip}.
 */
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ClipModel } from '../clip/clip.ts';
import { loadClip } from '../clip/load.ts';
import { Engine } from '../runtime/engine.ts';
import { ClipFeatures } from './clip-features.ts';
import type { MethodEnv } from './method.ts';

/** The key under which a {@link ClipResources} travels in `MethodEnv.resources`. */
export const CLIP_RESOURCES = 'clip';

/**
 * The package's root folder (the nearest ancestor of this file holding the `moeclip` package.json), so that
 * shipped files resolve the same from `src/` under tsx and from a compiled `dist/src/`. Falls back to two
 * levels above this file (its place in the source tree).
 */
export function packageRoot(): string {
  const here = fileURLToPath(import.meta.url);
  let dir = dirname(here);
  for (;;) {
    const pj = join(dir, 'package.json');
    if (existsSync(pj)) {
      try {
        if ((JSON.parse(readFileSync(pj, 'utf8')) as { name?: unknown }).name === 'moeclip') return dir;
      } catch {
        // not ours (or unreadable): keep looking upwards
      }
    }
    const up = dirname(dir);
    if (up === dir) return resolve(dirname(here), '..', '..');
    dir = up;
  }
}

/** The embedded default model folder, `<package>/models/moeclip-tiny`. */
export const DEFAULT_CLIP_MODEL_DIR = join(packageRoot(), 'models', 'moeclip-tiny');

/** The shell command that creates the embedded model. */
export const PRETRAIN_COMMAND = 'moeclip pretrain presets/pretrain/moeclip-tiny.yaml';

/** Whether `dir` holds a loadable model folder (a config file of either layout). */
export function isModelDir(dir: string): boolean {
  return existsSync(join(dir, 'config.json')) || existsSync(join(dir, 'open_clip_config.json'));
}

/**
 * Checks that a model folder exists; for the embedded default the error says how to create it.
 * Returns the folder.
 */
export function checkModelDir(dir: string): string {
  if (isModelDir(dir)) return dir;
  if (resolve(dir) === resolve(DEFAULT_CLIP_MODEL_DIR)) {
    throw new Error(
      `the embedded model ${DEFAULT_CLIP_MODEL_DIR} does not exist yet; create it with \`${PRETRAIN_COMMAND}\` ` +
        `(or give another model folder)`,
    );
  }
  throw new Error(`model folder ${dir}: not found or not a CLIP model folder (no config.json or open_clip_config.json)`);
}

export interface ClipResourcesOptions {
  /** ONNX Runtime intra-op threads of the shared engine (default: all cores). */
  threads?: number;
  /** Run the engine in a worker thread (default true; see runtime/engine.ts). */
  worker?: boolean;
  /** Most image feature vectors kept per model (oldest dropped first); default 200 000. */
  maxCachedImages?: number;
}

/** A cache of loaded CLIP models keyed by their (real) folder, sharing one lazily created engine. */
export class ClipResources {
  private engine: Promise<Engine> | null = null;
  private readonly entries = new Map<string, Promise<ClipFeatures>>();
  private disposed = false;
  /** Non-fatal loader findings, per model folder (for logs). */
  readonly warnings = new Map<string, string[]>();

  constructor(readonly options: ClipResourcesOptions = {}) {}

  /**
   * The shared engine (created on first use with these options); methods that run their own graphs (the CNN
   * track) use it so that `--threads` and the worker setting apply to them too. Closed by {@link dispose}.
   */
  sharedEngine(): Promise<Engine> {
    if (this.disposed) throw new Error('ClipResources: already disposed');
    return this.getEngine();
  }

  private getEngine(): Promise<Engine> {
    if (!this.engine) {
      this.engine = Engine.create({
        ...(this.options.threads !== undefined ? { threads: this.options.threads } : {}),
        ...(this.options.worker !== undefined ? { worker: this.options.worker } : {}),
      });
    }
    return this.engine;
  }

  /**
   * The features object of the model in `dir` (loaded on first request; concurrent requests share the load).
   * Keyed by the folder's real path, so `./m` and `/abs/m` are one model.
   */
  async features(dir: string): Promise<ClipFeatures> {
    if (this.disposed) throw new Error('ClipResources: already disposed');
    checkModelDir(dir);
    const key = realpathSync(dir);
    let p = this.entries.get(key);
    if (!p) {
      p = (async () => {
        const loaded = loadClip(key);
        this.warnings.set(key, loaded.warnings);
        const model = await ClipModel.fromParts(loaded, { engine: await this.getEngine(), imageBatch: 1 << 16, textBatch: 1 << 16 });
        return new ClipFeatures(model, this.options.maxCachedImages !== undefined ? { maxCachedImages: this.options.maxCachedImages } : {});
      })();
      // a failed load is not cached: the next request retries (and reports the error again)
      p.catch(() => this.entries.delete(key));
      this.entries.set(key, p);
    }
    return p;
  }

  /** Model folders loaded (or loading), as real paths. */
  get modelDirs(): string[] {
    return [...this.entries.keys()];
  }

  /** Releases every model's sessions and closes the engine. Idempotent. */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    const all = await Promise.allSettled(this.entries.values());
    for (const r of all) if (r.status === 'fulfilled') await r.value.model.close();
    this.entries.clear();
    if (this.engine) {
      const e = await this.engine.catch(() => null);
      if (e && !e.closed) await e.close();
      this.engine = null;
    }
  }
}

/** A model a method uses, and how to let go of it when the method is disposed. */
export interface ClipLease {
  features: ClipFeatures;
  /** Disposes the resources when the method created them itself; a no-op for shared ones. */
  release(): Promise<void>;
}

/**
 * The CLIP model a method's `model` option names: relative folders resolve against `env.baseDir` (the config
 * file's folder). Uses the shared `env.resources.clip` when the caller supplied one, else a private
 * {@link ClipResources} released with the lease.
 */
export async function acquireClip(env: MethodEnv, model: string, methodName: string): Promise<ClipLease> {
  const dir = isAbsolute(model) ? model : resolve(env.baseDir ?? process.cwd(), model);
  const shared = env.resources?.[CLIP_RESOURCES];
  if (shared !== undefined && !(shared instanceof ClipResources)) {
    throw new Error(`${methodName}: env.resources.${CLIP_RESOURCES} is not a ClipResources instance`);
  }
  try {
    checkModelDir(dir);
  } catch (e) {
    throw new Error(`${methodName}: method.model: ${(e as Error).message}`);
  }
  if (shared) return { features: await shared.features(dir), release: async () => {} };
  const own = new ClipResources();
  try {
    return { features: await own.features(dir), release: () => own.dispose() };
  } catch (e) {
    await own.dispose();
    throw e;
  }
}
