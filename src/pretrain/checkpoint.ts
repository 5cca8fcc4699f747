/**
 * Pretraining checkpoints: everything needed to continue a run exactly.
 *
 * A checkpoint folder holds
 * - `state-<step>.safetensors`: every trainable tensor and its AdamW moments (`<p>`, `<p>.m`, `<p>.v`, float32,
 *   exact), metadata `step`;
 * - `checkpoint.json`: the step, the file above, the batch sampler's state (generator states and the data
 *   position), the compact vocabulary, the training signature of the config, and the run's history.
 * Both are written atomically (temp file + rename), the JSON last, so a crash leaves the previous checkpoint
 * valid; older state files are removed afterwards.
 */
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { writeJsonAtomic } from '../io/atomic.ts';
import { readSafetensors, writeSafetensors, type StTensor } from '../io/safetensors.ts';
import { TrainState } from '../runtime/train-state.ts';
import type { TensorData } from '../runtime/types.ts';
import type { SamplerState } from './sampler.ts';

export const CHECKPOINT_FILE = 'checkpoint.json';

/** A point of the run's history (training log lines and evaluations). */
export interface HistoryEntry {
  step: number;
  [key: string]: unknown;
}

/** The JSON part of a checkpoint. */
export interface CheckpointMeta {
  format: 'moeclip.pretrain-checkpoint';
  version: 1;
  step: number;
  stateFile: string;
  sampler: SamplerState;
  /** Original token ids of the compact table rows. */
  vocab: number[];
  /** `trainingSignature(config)`: a resumed run must match it. */
  signature: Record<string, unknown>;
  /** `weightsFingerprint` of the `init` model's weights (absent for a run from scratch). */
  initFingerprint?: string;
  /** ONNX Runtime threads of the run (results are bitwise reproducible only with the same count). */
  threads: number;
  /** Wall time spent training so far (ms). */
  elapsedMs: number;
  history: HistoryEntry[];
}

/** Writes a checkpoint of `state` (at `state.step`) into `dir`. */
export function saveCheckpoint(dir: string, state: TrainState, meta: Omit<CheckpointMeta, 'format' | 'version' | 'step' | 'stateFile'>): string {
  const step = state.step;
  const stateFile = `state-${String(step).padStart(8, '0')}.safetensors`;
  const tensors = new Map<string, StTensor>();
  for (const name of state.stateNames) {
    const t = state.get(name);
    if (t.dtype !== 'float32') throw new Error(`saveCheckpoint: '${name}' is ${t.dtype}, expected float32`);
    tensors.set(name, { dtype: 'float32', shape: [...t.dims], data: t.data as Float32Array });
  }
  writeSafetensors(join(dir, stateFile), tensors, { format: 'moeclip.pretrain-state', step: String(step) });
  const full: CheckpointMeta = { format: 'moeclip.pretrain-checkpoint', version: 1, step, stateFile, ...meta };
  writeJsonAtomic(join(dir, CHECKPOINT_FILE), full);
  for (const f of readdirSync(dir)) {
    if (f !== stateFile && /^state-\d+\.safetensors$/.test(f)) rmSync(join(dir, f), { force: true });
  }
  return join(dir, CHECKPOINT_FILE);
}

/** Whether `dir` holds a checkpoint. */
export function hasCheckpoint(dir: string): boolean {
  return existsSync(join(dir, CHECKPOINT_FILE));
}

/** Reads a checkpoint: its metadata and the train state (params + AdamW moments + step). Errors name the file. */
export function loadCheckpoint(dir: string): { meta: CheckpointMeta; state: TrainState } {
  const path = join(dir, CHECKPOINT_FILE);
  let meta: CheckpointMeta;
  try {
    meta = JSON.parse(readFileSync(path, 'utf8')) as CheckpointMeta;
  } catch (e) {
    throw new Error(`${path}: cannot read the checkpoint: ${(e as Error).message}`);
  }
  if (meta.format !== 'moeclip.pretrain-checkpoint') throw new Error(`${path}: format: expected 'moeclip.pretrain-checkpoint', got ${JSON.stringify(meta.format)}`);
  if (meta.version !== 1) throw new Error(`${path}: version: unsupported ${JSON.stringify(meta.version)}`);
  if (!Number.isInteger(meta.step) || meta.step < 0) throw new Error(`${path}: step: expected an integer ≥ 0`);
  if (typeof meta.stateFile !== 'string' || !/^state-\d+\.safetensors$/.test(meta.stateFile)) throw new Error(`${path}: stateFile: invalid`);
  if (!Array.isArray(meta.vocab)) throw new Error(`${path}: vocab: expected a list of token ids`);
  const statePath = join(dir, meta.stateFile);
  const st = readSafetensors(statePath);
  if (st.metadata['step'] !== String(meta.step)) {
    throw new Error(`${statePath}: holds step ${st.metadata['step']}, but ${CHECKPOINT_FILE} says ${meta.step}`);
  }
  const tensors: Record<string, TensorData> = {};
  for (const [name, t] of st.tensors) {
    if (!(t.data instanceof Float32Array)) throw new Error(`${statePath}: tensor '${name}' is not float32`);
    tensors[name] = { dtype: 'float32', dims: [...t.shape], data: t.data };
  }
  const state = TrainState.fromSnapshot({ optimizer: 'adamw', momentum: false, step: meta.step, tensors }, statePath);
  return { meta, state };
}
