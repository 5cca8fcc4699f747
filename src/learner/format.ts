/**
 * The learner folder (docs/learner.md): what a finished run keeps in `RUN_DIR/final/` and `moeclip export` copies
 * out, read back by `loadLearner`.
 *
 *   learner.json        {@link LearnerInfo}: method name and resolved options, the model folder reference (path
 *                       and sha256 of its weights file), class names, prompt templates per class, the final
 *                       candidate classes, the stream kind, the run it came from
 *   method.safetensors  the method's tensors (writeMethodState)
 *   method.json         the method's other state (layout, routers, DDAS, subnets...)
 *   predictions.csv     the run's final evaluation: i,task,index,label,pred,prob,route
 *   backbone/           a copy of the model folder (export --copy-backbone only)
 */
import { closeSync, existsSync, openSync, readdirSync, readFileSync, readSync, statSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';

export const LEARNER_FILE = 'learner.json';
/** Base name of the method state files (`method.safetensors`, `method.json`). */
export const STATE_BASE = 'method';
export const PREDICTIONS_FILE = 'predictions.csv';
export const BACKBONE_DIR = 'backbone';
export const PREDICTIONS_HEADER = ['i', 'task', 'index', 'label', 'pred', 'prob', 'route'] as const;

/** The model folder a learner was trained on. */
export interface ModelRef {
  /** Absolute (real) path of the folder when the learner was saved. */
  path: string;
  /** The weights file inside it (`model.safetensors`, or the open_clip weights file). */
  weights: string;
  /** sha256 (hex) of the weights file. */
  sha256: string;
  bytes: number;
}

/** learner.json. */
export interface LearnerInfo {
  format: 'moeclip.learner';
  version: 1;
  createdAt: string;
  /** The method as the run created it: name and options after validation (defaults filled, `model` absolute). */
  method: { name: string; options: Record<string, unknown> };
  /** The CLIP model of the method's `model` option; null for a method without one (e.g. `ncm` on pixels). */
  model: ModelRef | null;
  /** `backbone` when the folder holds a copy of the model (export --copy-backbone), else null. */
  backbone: string | null;
  /** Global class names (index = label). */
  classNames: string[];
  /** Prompt templates: distinct template lists, and the list of each class (index into `sets`). */
  templates: { sets: string[][]; ofClass: number[] };
  /** The classes exposed by the end of the run, in order of first appearance: the default candidates. */
  candidates: number[];
  streamKind: string;
  /** Images per predict call of the run's evaluation (run.evalBatchSize); predictions go in chunks of it. */
  evalBatchSize: number;
  /** Where the learner comes from. */
  run: { dir: string; name: string; seed: number; samplesSeen: number; tasks: number };
  /** The run folder an export was made from (absent in the run's own final/). */
  exportedFrom?: string;
}

/** The weights file of a model folder: `model.safetensors` (HF), else `open_clip_model.safetensors` or the only `*.safetensors`. */
export function modelWeightsFile(dir: string): string {
  for (const f of ['model.safetensors', 'open_clip_model.safetensors']) if (existsSync(join(dir, f))) return f;
  const all = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.safetensors')) : [];
  if (all.length === 1) return all[0]!;
  throw new Error(`model folder ${dir}: ${all.length === 0 ? 'no' : 'several'} *.safetensors weights files`);
}

/** sha256 (hex) of a file, read in chunks. */
export function sha256File(path: string): string {
  const h = createHash('sha256');
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.allocUnsafe(1 << 24);
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      h.update(buf.subarray(0, n));
    }
  } finally {
    closeSync(fd);
  }
  return h.digest('hex');
}

/** The reference of model folder `dir` (a real path). */
export function modelRef(dir: string): ModelRef {
  const weights = modelWeightsFile(dir);
  const file = join(dir, weights);
  return { path: dir, weights, sha256: sha256File(file), bytes: statSync(file).size };
}

/**
 * Checks that `dir` holds the model `ref` names (its weights file, same sha256); `what` names the folder in
 * errors (e.g. `the learner's model folder`).
 */
export function checkModel(dir: string, ref: ModelRef, what: string): void {
  const file = join(dir, ref.weights);
  if (!existsSync(file)) throw new Error(`${what} ${dir} is missing or has no ${ref.weights}`);
  const got = sha256File(file);
  if (got !== ref.sha256) {
    throw new Error(`${what} ${dir} changed since the learner was saved: sha256 of ${ref.weights} is ${got}, expected ${ref.sha256}`);
  }
}

/** Distinct template lists and each class's index into them. */
export function templateTable(numClasses: number, templatesFor: (label: number) => readonly string[]): LearnerInfo['templates'] {
  const sets: string[][] = [];
  const index = new Map<string, number>();
  const ofClass: number[] = [];
  for (let c = 0; c < numClasses; c++) {
    const ts = [...templatesFor(c)];
    const key = JSON.stringify(ts);
    let k = index.get(key);
    if (k === undefined) {
      k = sets.length;
      sets.push(ts);
      index.set(key, k);
    }
    ofClass.push(k);
  }
  return { sets, ofClass };
}

function fail(file: string, field: string, msg: string): never {
  throw new Error(`${file}: ${field}: ${msg}`);
}

const isInt = (v: unknown, min: number): v is number => typeof v === 'number' && Number.isInteger(v) && v >= min;
const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Reads and checks `dir/learner.json`; errors name the file and the field. */
export function readLearnerInfo(dir: string): LearnerInfo {
  const file = join(dir, LEARNER_FILE);
  if (!existsSync(file)) throw new Error(`${dir}: not a learner folder (no ${LEARNER_FILE})`);
  let j: unknown;
  try {
    j = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new Error(`${file}: cannot read: ${(e as Error).message}`);
  }
  if (!isObj(j)) fail(file, '(root)', 'expected an object');
  if (j['format'] !== 'moeclip.learner') fail(file, 'format', `expected 'moeclip.learner', got ${JSON.stringify(j['format'])}`);
  if (j['version'] !== 1) fail(file, 'version', `unsupported version ${JSON.stringify(j['version'])}`);
  const m = j['method'];
  if (!isObj(m) || typeof m['name'] !== 'string' || !isObj(m['options'])) fail(file, 'method', 'expected { name, options }');
  const names = j['classNames'];
  if (!Array.isArray(names) || !names.every((n) => typeof n === 'string')) fail(file, 'classNames', 'expected a list of strings');
  const C = names.length;
  const t = j['templates'];
  if (!isObj(t) || !Array.isArray(t['sets']) || !t['sets'].every((s) => Array.isArray(s) && s.every((x) => typeof x === 'string'))) {
    fail(file, 'templates.sets', 'expected lists of template strings');
  }
  const sets = t['sets'] as string[][];
  const of = t['ofClass'];
  if (!Array.isArray(of) || of.length !== C || !of.every((k) => isInt(k, 0) && k < sets.length)) {
    fail(file, 'templates.ofClass', `expected ${C} indices below ${sets.length}`);
  }
  const cands = j['candidates'];
  if (!Array.isArray(cands) || !cands.every((c) => isInt(c, 0) && c < C)) fail(file, 'candidates', `expected labels below ${C}`);
  if (typeof j['streamKind'] !== 'string') fail(file, 'streamKind', 'expected a string');
  if (!isInt(j['evalBatchSize'], 1)) fail(file, 'evalBatchSize', 'expected a positive integer');
  const model = j['model'];
  if (model !== null) {
    if (!isObj(model) || typeof model['path'] !== 'string' || typeof model['weights'] !== 'string' || typeof model['sha256'] !== 'string' || !/^[0-9a-f]{64}$/.test(model['sha256'])) {
      fail(file, 'model', 'expected null or { path, weights, sha256 (64 hex digits), bytes }');
    }
  }
  if (j['backbone'] !== null && typeof j['backbone'] !== 'string') fail(file, 'backbone', 'expected null or a folder name');
  if (!isObj(j['run'])) fail(file, 'run', 'expected an object');
  return j as unknown as LearnerInfo;
}
