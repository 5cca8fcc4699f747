/**
 * Checkpoints of a continual run, in `RUN_DIR/checkpoint/`, written as a whole folder atomically (a temporary
 * sibling folder renamed into place, see `writeDirAtomic`), so a crash leaves the previous checkpoint or the new
 * one, never a mix:
 *
 *   checkpoint.json     format, the config as run, the runner's snapshot (position, counters, metric log so
 *                       far, generator states), the replay memory (item references), the method's generator,
 *                       the thread count and a fingerprint of the stream
 *   method.safetensors  the method's tensors (weights, optimiser moments, counters, Fisher, teacher…)
 *   method.json         the method's other state (layout, frozen sets, DDAS, subnets, detector…)
 *   events.jsonl        the run's events up to the checkpoint
 *
 * {@link runFolderStatus} tells a finished run folder from an interrupted one (with or without a checkpoint).
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeDirAtomic, writeJsonAtomic } from '../io/atomic.ts';
import type { RunConfig } from '../config/schema.ts';
import type { Stream } from '../data/types.ts';
import type { MethodState } from '../methods/method.ts';
import { readMethodState, writeMethodState } from '../methods/state.ts';
import type { RngSnapshot } from '../util/rng.ts';
import type { RunEvent } from './events.ts';
import type { RunnerSnapshot } from './runner.ts';

/** The checkpoint folder inside a run folder. */
export const CHECKPOINT_DIR = 'checkpoint';
/** The multi-seed manifest of a `--seeds` output folder. */
export const SEEDS_FILE = 'seeds.json';

/** checkpoint.json. */
export interface RunCheckpointMeta {
  format: 'moeclip.run-checkpoint';
  version: 1;
  createdAt: string;
  samplesSeen: number;
  trainSamples: number;
  /** Task of the next batch (0-based) and the number of tasks. */
  task: number;
  tasks: number;
  /** ONNX Runtime intra-op threads of the run (bit-exact resumption needs the same count). */
  threads: number;
  /** The run's checkpoint period in stream samples (0: only when stopped); a resumed run keeps it. */
  checkpointEvery: number;
  /** The validated config as run, the folder its relative paths were resolved against, the run name. */
  config: RunConfig;
  baseDir: string;
  runName: string;
  stream: string;
  runner: RunnerSnapshot;
  memory: unknown;
  methodName: string;
  methodRng: RngSnapshot;
}

/** A checkpoint read back. */
export interface RunCheckpoint {
  meta: RunCheckpointMeta;
  method: MethodState;
  events: RunEvent[];
}

/** A short fingerprint of a stream's training order (task sizes, dataset, index and label of every sample). */
export function streamFingerprint(stream: Stream): string {
  let h = 0x811c9dc5;
  const mix = (v: number) => {
    h ^= v & 0xffff;
    h = Math.imul(h, 0x01000193) >>> 0;
    h ^= v >>> 16;
    h = Math.imul(h, 0x01000193) >>> 0;
  };
  for (const t of stream.tasks) {
    mix(t.train.length);
    mix(t.test.length);
    for (const it of t.train) {
      mix(it.index);
      mix(it.label);
    }
  }
  const n = stream.tasks.reduce((s, t) => s + t.train.length, 0);
  return `${stream.tasks.length}t-${n}-${h.toString(16).padStart(8, '0')}`;
}

/** Writes (or replaces) the checkpoint of run folder `runDir`; returns the checkpoint folder. */
export function writeRunCheckpoint(runDir: string, cp: RunCheckpoint): string {
  const dir = join(runDir, CHECKPOINT_DIR);
  writeDirAtomic(dir, (tmp) => {
    writeMethodState(tmp, 'method', cp.method);
    writeFileSync(join(tmp, 'events.jsonl'), cp.events.map((e) => JSON.stringify(e) + '\n').join(''));
    writeJsonAtomic(join(tmp, 'checkpoint.json'), cp.meta);
  });
  return dir;
}

/** Whether `runDir` holds a checkpoint. */
export function hasRunCheckpoint(runDir: string): boolean {
  return existsSync(join(runDir, CHECKPOINT_DIR, 'checkpoint.json'));
}

/** Reads the checkpoint of `runDir`; errors name the file. */
export function readRunCheckpoint(runDir: string): RunCheckpoint {
  const dir = join(runDir, CHECKPOINT_DIR);
  const file = join(dir, 'checkpoint.json');
  if (!existsSync(file)) throw new Error(`${runDir}: no checkpoint (${file} is missing)`);
  let meta: RunCheckpointMeta;
  try {
    meta = JSON.parse(readFileSync(file, 'utf8')) as RunCheckpointMeta;
  } catch (e) {
    throw new Error(`${file}: cannot read the checkpoint: ${(e as Error).message}`);
  }
  if (meta?.format !== 'moeclip.run-checkpoint') throw new Error(`${file}: format: expected 'moeclip.run-checkpoint', got ${JSON.stringify(meta?.format)}`);
  if (meta.version !== 1) throw new Error(`${file}: version: unsupported version ${JSON.stringify(meta.version)}`);
  const events = readFileSync(join(dir, 'events.jsonl'), 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as RunEvent);
  return { meta, method: readMethodState(dir, 'method'), events };
}

/** What a folder holds, as `moeclip run --resume` and `moeclip metrics --run` need to know. */
export type RunFolderStatus =
  | { kind: 'finished' }
  | { kind: 'seeds'; seeds: number[] }
  | { kind: 'checkpointed'; samplesSeen: number; trainSamples: number; task: number; tasks: number }
  | { kind: 'interrupted' }
  | { kind: 'none' };

/** The state of a run folder (see {@link RunFolderStatus}). */
export function runFolderStatus(dir: string): RunFolderStatus {
  if (existsSync(join(dir, 'metrics.json'))) return { kind: 'finished' };
  if (existsSync(join(dir, SEEDS_FILE))) {
    try {
      const j = JSON.parse(readFileSync(join(dir, SEEDS_FILE), 'utf8')) as { seeds?: number[] };
      return { kind: 'seeds', seeds: Array.isArray(j.seeds) ? j.seeds : [] };
    } catch {
      return { kind: 'seeds', seeds: [] };
    }
  }
  if (hasRunCheckpoint(dir)) {
    try {
      const m = JSON.parse(readFileSync(join(dir, CHECKPOINT_DIR, 'checkpoint.json'), 'utf8')) as RunCheckpointMeta;
      return { kind: 'checkpointed', samplesSeen: m.samplesSeen, trainSamples: m.trainSamples, task: m.task, tasks: m.tasks };
    } catch {
      return { kind: 'checkpointed', samplesSeen: NaN, trainSamples: NaN, task: NaN, tasks: NaN };
    }
  }
  if (existsSync(join(dir, 'config.resolved.json'))) return { kind: 'interrupted' };
  return { kind: 'none' };
}

/**
 * Throws unless `dir` holds a finished run, saying what it holds instead: an interrupted run (and how to
 * continue it), a multi-seed folder (its seed folders and summary), or no run at all.
 */
export function assertFinishedRun(dir: string): void {
  const s = runFolderStatus(dir);
  switch (s.kind) {
    case 'finished':
      return;
    case 'seeds':
      throw new Error(`${dir} holds a multi-seed run (seeds ${s.seeds.join(', ')}): read ${join(dir, 'summary.json')} or give one of its seed-<s> folders`);
    case 'checkpointed':
      throw new Error(
        `${dir}: the run is incomplete (no metrics.json): it was interrupted after ${s.samplesSeen}/${s.trainSamples} stream samples ` +
          `(task ${s.task + 1}/${s.tasks}); continue it with \`moeclip run --resume ${dir}\``,
      );
    case 'interrupted':
      throw new Error(`${dir}: the run is incomplete (no metrics.json) and has no checkpoint to continue from; run it again (with --overwrite)`);
    case 'none':
      throw new Error(`${dir}: not a run folder (no metrics.json or config.resolved.json)`);
  }
}
