/**
 * One experiment from a validated config: build the stream, the replay memory and the method, run the stream,
 * and (optionally) write the run folder. This is the glue the `run` command and the demo call.
 */
import { buildStream } from '../data/streams.ts';
import { createReplay, type ReplayMemory } from '../data/replay.ts';
import type { Stream } from '../data/types.ts';
import type { LoadedConfig } from '../config/load.ts';
import type { RunConfig } from '../config/schema.ts';
import type { MethodEnv } from '../methods/method.ts';
import { createMethod } from '../methods/registry.ts';
import { RunFolder } from '../report/run-folder.ts';
import { Rng } from '../util/rng.ts';
import type { RunEvent } from './events.ts';
import { runStream, type RunnerOptions, type RunResult } from './runner.ts';

/** The runner options a config implies (defaults that depend on the stream resolved). */
export function runnerOptionsFor(config: RunConfig, stream: Pick<Stream, 'kind'>): RunnerOptions {
  const r = config.run;
  return {
    batchSize: r.batchSize,
    onlineIter: r.onlineIter,
    evalPeriod: r.evalPeriod,
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
  /** Receives every runner event (after it is logged to the run folder). */
  onEvent?: (e: RunEvent) => void;
  /** Extra environment for the method (feature extractors, engines). */
  env?: Partial<Pick<MethodEnv, 'featureFns' | 'resources'>>;
  /** An already built stream (skips `buildStream`, e.g. to reuse it across methods). */
  stream?: Stream;
}

export interface ExperimentResult {
  result: RunResult;
  stream: Stream;
  /** The config as run: validated, defaults filled, runner options resolved. */
  resolved: Record<string, unknown>;
  outDir?: string;
}

/** Runs the experiment a loaded config describes. */
export async function runExperiment(loaded: LoadedConfig, opts: ExperimentOptions = {}): Promise<ExperimentResult> {
  const { config, methodOptions } = loaded;
  const stream = opts.stream ?? (await buildStream(config.stream));
  const runner = runnerOptionsFor(config, stream);
  const resolved: Record<string, unknown> = {
    ...config,
    run: { ...config.run, evalCandidates: runner.evalCandidates, baseline: runner.baseline },
    streamDescription: stream.describe(),
  };
  const rng = new Rng(config.seed);
  const methodRng = rng.fork();
  const runRng = rng.fork();
  const method = await createMethod(config.method.name, methodOptions, {
    stream: { classNames: stream.classNames, templatesFor: (l) => stream.templatesFor(l), kind: stream.kind },
    rng: methodRng,
    baseDir: loaded.baseDir,
    ...(opts.env?.featureFns ? { featureFns: opts.env.featureFns } : {}),
    ...(opts.env?.resources ? { resources: opts.env.resources } : {}),
  });
  let memory = memoryFor(config);
  if (!memory && method.replayRequest) {
    memory = createReplay({ kind: 'reservoir', capacity: method.replayRequest.capacity });
    runner.memoryBatchSize = method.replayRequest.batchSize;
    (resolved['run'] as Record<string, unknown>)['memory'] = { kind: 'reservoir', capacity: method.replayRequest.capacity, batchSize: method.replayRequest.batchSize, requestedBy: config.method.name };
  }
  const folder = opts.outDir ? RunFolder.create(opts.outDir, resolved, { overwrite: opts.overwrite ?? false }) : null;
  try {
    const result = await runStream({
      stream,
      method,
      memory,
      options: runner,
      rng: runRng,
      onEvent: (e) => {
        folder?.event(e);
        opts.onEvent?.(e);
      },
    });
    folder?.finish(config.method.name, result);
    return { result, stream, resolved, ...(opts.outDir ? { outDir: opts.outDir } : {}) };
  } finally {
    await method.dispose?.();
  }
}
