/**
 * One experiment from a validated config: build the stream, the replay memory and the method, run the stream,
 * and (optionally) write the run folder, with checkpoints (checkpoint.ts) and resumption from one. This is the
 * glue the `run` command and the demo call.
 */
import { rmSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { buildStream } from '../data/streams.ts';
import { createReplay, streamItemResolver, type ReplayMemory } from '../data/replay.ts';
import type { Stream } from '../data/types.ts';
import { parseConfig, type LoadedConfig } from '../config/load.ts';
import type { RunConfig } from '../config/schema.ts';
import type { Method, MethodEnv, MethodStateContext } from '../methods/method.ts';
import { createMethod } from '../methods/registry.ts';
import { canSaveState } from '../methods/state.ts';
import { RunFolder } from '../report/run-folder.ts';
import { Rng } from '../util/rng.ts';
import { CHECKPOINT_DIR, hasRunCheckpoint, readRunCheckpoint, runFolderStatus, streamFingerprint, writeRunCheckpoint, type RunCheckpoint } from './checkpoint.ts';
import type { RunControlEvent, RunEvent } from './events.ts';
import { runStreamResumable, type RunnerOptions, type RunnerSnapshot, type RunResult } from './runner.ts';

/** The runner options a config implies (defaults that depend on the stream resolved). */
export function runnerOptionsFor(config: RunConfig, stream: Pick<Stream, 'kind'>): RunnerOptions {
  const r = config.run;
  return {
    batchSize: r.batchSize,
    onlineIter: r.onlineIter,
    onlineIterRule: r.onlineIterRule,
    evalPeriod: r.evalPeriod,
    anytimeCadence: r.anytimeCadence,
    evalBatchSize: r.evalBatchSize,
    taskBoundaries: r.taskBoundaries,
    memoryBatchSize: r.memory.capacity > 0 ? r.memory.batchSize : 0,
    evalFutureTasks: r.evalFutureTasks,
    evalCandidates: r.evalCandidates ?? (stream.kind === 'multi-dataset' ? 'task' : 'exposed'),
    baseline: r.baseline ?? r.evalFutureTasks,
  };
}

/** The replay memory a config asks for (`null` when capacity is 0). */
export function memoryFor(config: RunConfig): ReplayMemory | null {
  const m = config.run.memory;
  if (m.capacity === 0) return null;
  return createReplay({ kind: m.kind, capacity: m.capacity, ...(m.perClass !== undefined ? { perClass: m.perClass } : {}) });
}

export interface ExperimentOptions {
  /** Write a run folder here (created; must not hold a previous run unless `overwrite`). */
  outDir?: string;
  overwrite?: boolean;
  /** Write `plots/*.svg` into the run folder at the end (default true). */
  plots?: boolean;
  /** Receives every runner event (after it is logged to the run folder). */
  onEvent?: (e: RunEvent) => void;
  /** Receives the control events: a resumption, each checkpoint written. */
  onControl?: (e: RunControlEvent) => void;
  /** Extra environment for the method (feature extractors, engines). */
  env?: Partial<Pick<MethodEnv, 'featureFns' | 'resources'>>;
  /** An already built stream (skips `buildStream`, e.g. to reuse it across methods). */
  stream?: Stream;
  /** ONNX Runtime intra-op threads of the CLIP engine, when `env.resources` brings none (default: all cores). */
  threads?: number;
  /** Checkpoint into `outDir/checkpoint/` every this many stream samples (0 or absent: only when stopped). */
  checkpointEvery?: number;
  /** Asked after every batch and task end: `true` stops the run there with a checkpoint ({@link RunStoppedError}). */
  shouldStop?: () => boolean;
}

export interface ExperimentResult {
  result: RunResult;
  stream: Stream;
  /** The config as run: validated, defaults filled, runner options resolved. */
  resolved: Record<string, unknown>;
  outDir?: string;
}

/** Thrown when a run stops on request; says where, and where the checkpoint is (null: the method keeps no state). */
export class RunStoppedError extends Error {
  override name = 'RunStoppedError';
  constructor(
    readonly samplesSeen: number,
    readonly trainSamples: number,
    readonly task: number,
    readonly tasks: number,
    readonly checkpoint: string | null,
  ) {
    super(`the run stopped after ${samplesSeen}/${trainSamples} stream samples${checkpoint ? ` (checkpoint ${checkpoint})` : ' without a checkpoint'}`);
  }
}

/** Runs the experiment a loaded config describes. */
export async function runExperiment(loaded: LoadedConfig, opts: ExperimentOptions = {}): Promise<ExperimentResult> {
  return execute(loaded, opts, null);
}

/**
 * Continues the interrupted run in `runDir` from its checkpoint (same config, stream, thread count unless
 * `opts.threads` says otherwise); the run folder then ends as the uninterrupted run's would.
 */
export async function resumeExperiment(runDir: string, opts: Omit<ExperimentOptions, 'outDir' | 'overwrite' | 'stream'> = {}): Promise<ExperimentResult> {
  const status = runFolderStatus(runDir);
  if (status.kind === 'finished') throw new Error(`${runDir}: the run has finished (metrics.json exists); nothing to resume`);
  const cp = readRunCheckpoint(runDir);
  let loaded: LoadedConfig;
  try {
    loaded = await parseConfig(cp.meta.config, { baseDir: cp.meta.baseDir, source: join(runDir, CHECKPOINT_DIR, 'checkpoint.json') });
  } catch (e) {
    throw new Error(`${runDir}: the checkpoint's config no longer validates: ${(e as Error).message}`);
  }
  loaded.runName = cp.meta.runName;
  return execute(loaded, { ...opts, outDir: runDir, threads: opts.threads ?? cp.meta.threads, checkpointEvery: opts.checkpointEvery ?? cp.meta.checkpointEvery ?? 0 }, cp);
}

async function execute(loaded: LoadedConfig, opts: ExperimentOptions, cp: RunCheckpoint | null): Promise<ExperimentResult> {
  const { config, methodOptions } = loaded;
  const every = opts.checkpointEvery ?? 0;
  if (!Number.isInteger(every) || every < 0) throw new Error(`checkpointEvery: expected an integer ≥ 0, got ${every}`);
  if (every > 0 && !opts.outDir) throw new Error('checkpointEvery: checkpoints need a run folder (outDir)');
  const stream = opts.stream ?? (await buildStream(config.stream));
  const fingerprint = streamFingerprint(stream);
  if (cp && cp.meta.stream !== fingerprint) {
    throw new Error(`${opts.outDir}: the stream built from the checkpoint's config (${fingerprint}) differs from the checkpointed one (${cp.meta.stream}): the data changed`);
  }
  const runner = runnerOptionsFor(config, stream);
  const resolved: Record<string, unknown> = {
    ...config,
    run: { ...config.run, evalCandidates: runner.evalCandidates, baseline: runner.baseline },
    streamDescription: stream.describe(),
  };
  const rng = new Rng(config.seed);
  const methodRng = rng.fork();
  const runRng = rng.fork();
  const env = { ...opts.env };
  let ownResources: { dispose(): Promise<void> } | null = null;
  if (opts.threads !== undefined && env.resources?.[CLIP_RESOURCES_KEY] === undefined) {
    const { ClipResources, CLIP_RESOURCES } = await import('../methods/clip-resources.ts');
    const res = new ClipResources({ threads: opts.threads });
    ownResources = res;
    env.resources = { ...env.resources, [CLIP_RESOURCES]: res };
  }
  let method: Method | null = null;
  try {
    method = await createMethod(config.method.name, methodOptions, {
      stream: { classNames: stream.classNames, templatesFor: (l) => stream.templatesFor(l), kind: stream.kind },
      rng: methodRng,
      baseDir: loaded.baseDir,
      ...(env.featureFns ? { featureFns: env.featureFns } : {}),
      ...(env.resources ? { resources: env.resources } : {}),
    });
    const savable = canSaveState(method);
    if (every > 0 && !savable) {
      throw new Error(`method '${config.method.name}' cannot save its state (no saveState/loadState), so it cannot be checkpointed: drop --checkpoint-every`);
    }
    if (cp && !savable) throw new Error(`method '${config.method.name}' cannot load its state, so the run cannot be resumed`);
    let memory = memoryFor(config);
    if (!memory && method.replayRequest) {
      memory = createReplay({ kind: 'reservoir', capacity: method.replayRequest.capacity });
      runner.memoryBatchSize = method.replayRequest.batchSize;
      (resolved['run'] as Record<string, unknown>)['memory'] = { kind: 'reservoir', capacity: method.replayRequest.capacity, batchSize: method.replayRequest.batchSize, requestedBy: config.method.name };
    }
    const resolveItem = streamItemResolver(stream.tasks);
    const stateCtx: MethodStateContext = { memory, resolveItem };
    if (cp) {
      if (memory) memory.restore(cp.meta.memory, resolveItem);
      else if (cp.meta.memory !== null) throw new Error(`${opts.outDir}: the checkpoint has a replay memory, the config none`);
      await method.loadState!(cp.method, stateCtx);
      methodRng.restore(cp.meta.methodRng, 'checkpoint methodRng');
    }
    const outDir = opts.outDir;
    if (outDir && !cp && hasRunCheckpoint(outDir)) {
      if (!opts.overwrite) throw new Error(`run folder ${outDir} holds an interrupted run with a checkpoint; resume it or overwrite it`);
      rmSync(join(outDir, CHECKPOINT_DIR), { recursive: true, force: true });
    }
    const folder = outDir ? RunFolder.create(outDir, resolved, { overwrite: cp !== null || (opts.overwrite ?? false) }) : null;
    const events: RunEvent[] = [];
    const log = (e: RunEvent) => {
      folder?.event(e);
      events.push(e);
    };
    const trainSamples = stream.tasks.reduce((n, t) => n + t.train.length, 0);
    if (cp) {
      for (const e of cp.events) log(e);
      opts.onControl?.({ type: 'resume', samplesSeen: cp.meta.samplesSeen, trainSamples, task: cp.meta.task, tasks: stream.tasks.length });
    }
    const threads = opts.threads ?? availableParallelism();
    const m = method;
    const save = async (snap: RunnerSnapshot): Promise<void> => {
      const state = await m.saveState!(stateCtx);
      const path = writeRunCheckpoint(outDir!, {
        meta: {
          format: 'moeclip.run-checkpoint',
          version: 1,
          createdAt: new Date().toISOString(),
          samplesSeen: snap.samplesSeen,
          trainSamples,
          task: snap.task,
          tasks: stream.tasks.length,
          threads,
          checkpointEvery: every,
          config,
          baseDir: loaded.baseDir,
          runName: loaded.runName,
          stream: fingerprint,
          runner: snap,
          memory: memory ? memory.state() : null,
          methodName: config.method.name,
          methodRng: methodRng.snapshot(),
        },
        method: state,
        events,
      });
      opts.onControl?.({ type: 'checkpoint', samplesSeen: snap.samplesSeen, path });
    };
    const outcome = await runStreamResumable({
      stream,
      method,
      memory,
      options: runner,
      rng: runRng,
      onEvent: (e) => {
        log(e);
        opts.onEvent?.(e);
      },
      ...(cp ? { resume: cp.meta.runner } : {}),
      ...(outDir && savable ? { checkpoint: { every, save } } : {}),
      ...(opts.shouldStop ? { shouldStop: opts.shouldStop } : {}),
    });
    if (outcome.kind === 'stopped') {
      const checkpoint = outcome.checkpointed && outDir ? join(outDir, CHECKPOINT_DIR) : null;
      throw new RunStoppedError(outcome.samplesSeen, trainSamples, outcome.task, stream.tasks.length, checkpoint);
    }
    const { result } = outcome;
    folder?.finish(config.method.name, result);
    // the trained learner (final/: state, learner.json, predictions.csv) when the method can save its state
    if (outDir) await (await import('./final.ts')).writeFinal({ outDir, method: m, stream, loaded, evalBatchSize: runner.evalBatchSize });
    // the run's charts (src/report/plots.ts; vega is loaded only when a folder is written)
    if (outDir && opts.plots !== false) await (await import('../report/plots.ts')).writeRunPlots(outDir);
    if (outDir) rmSync(join(outDir, CHECKPOINT_DIR), { recursive: true, force: true });
    return { result, stream, resolved, ...(outDir ? { outDir } : {}) };
  } finally {
    await method?.dispose?.();
    await ownResources?.dispose();
  }
}

/** The key of the shared CLIP resources in `MethodEnv.resources` (clip-resources.ts, not imported eagerly). */
const CLIP_RESOURCES_KEY = 'clip';
