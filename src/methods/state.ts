/**
 * Helpers for methods' `saveState` / `loadState` (see {@link MethodState}) and their files: tensors in one
 * safetensors file (bool tensors stored as U8 and named in its metadata), the JSON part beside it.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readSafetensors, writeSafetensors, type StTensor } from '../io/safetensors.ts';
import { writeJsonAtomic } from '../io/atomic.ts';
import type { TensorData } from '../runtime/types.ts';
import type { Method, MethodState } from './method.ts';

/** Whether a method can save and load its state (checkpoints, exports). */
export function canSaveState(m: Method): m is Method & Required<Pick<Method, 'saveState' | 'loadState'>> {
  return typeof m.saveState === 'function' && typeof m.loadState === 'function';
}

/** `tensors` with every name prefixed by `prefix`. */
export function prefixed(prefix: string, tensors: Record<string, TensorData>): Record<string, TensorData> {
  const out: Record<string, TensorData> = {};
  for (const [n, t] of Object.entries(tensors)) out[prefix + n] = t;
  return out;
}

/** The tensors whose name starts with `prefix`, the prefix removed. */
export function unprefixed(prefix: string, tensors: Record<string, TensorData>): Record<string, TensorData> {
  const out: Record<string, TensorData> = {};
  for (const [n, t] of Object.entries(tensors)) if (n.startsWith(prefix)) out[n.slice(prefix.length)] = t;
  return out;
}

/** A JSON object field of a saved state, or an error naming it. */
export function jsonObject(v: unknown, where: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error(`${where}: expected an object`);
  return v as Record<string, unknown>;
}

const BOOL_KEY = 'moeclip.bool';

/** Writes `state` as `<base>.safetensors` + `<base>.json` in `dir` (each atomically). */
export function writeMethodState(dir: string, base: string, state: MethodState): void {
  const st: Record<string, StTensor> = {};
  const bools: string[] = [];
  for (const [n, t] of Object.entries(state.tensors)) {
    if (t.dtype === 'bool') bools.push(n);
    st[n] = { dtype: t.dtype === 'bool' ? 'uint8' : t.dtype, shape: [...t.dims], data: t.data } as StTensor;
  }
  writeSafetensors(join(dir, `${base}.safetensors`), st, { [BOOL_KEY]: JSON.stringify(bools) });
  writeJsonAtomic(join(dir, `${base}.json`), state.json);
}

/** Reads what {@link writeMethodState} wrote; errors name the file. */
export function readMethodState(dir: string, base: string): MethodState {
  const file = join(dir, `${base}.safetensors`);
  const st = readSafetensors(file);
  let bools: string[] = [];
  try {
    bools = JSON.parse(st.metadata[BOOL_KEY] ?? '[]') as string[];
  } catch (e) {
    throw new Error(`${file}: metadata '${BOOL_KEY}' is not JSON: ${(e as Error).message}`);
  }
  const isBool = new Set(bools);
  const tensors: Record<string, TensorData> = {};
  for (const [n, t] of st.tensors) tensors[n] = { dtype: isBool.has(n) ? 'bool' : t.dtype, dims: [...t.shape], data: t.data };
  const jsonFile = join(dir, `${base}.json`);
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(jsonFile, 'utf8'));
  } catch (e) {
    throw new Error(`${jsonFile}: cannot read the method state: ${(e as Error).message}`);
  }
  return { tensors, json: jsonObject(json, jsonFile) };
}
