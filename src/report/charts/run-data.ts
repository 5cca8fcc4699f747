/**
 * Reads what the charts of a run folder need (see run-folder.ts for the layout). Only metrics.json is required;
 * every other file is optional and a chart whose data is missing is skipped. A folder without metrics.json is
 * reported as an incomplete run, a folder with neither metrics.json nor config.resolved.json as not a run folder.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import type { RunEvent } from '../../run/events.ts';
import { parseMatrixCsv, parseTableCsv } from '../csv.ts';
import type { CostReport } from '../run-folder.ts';

/** A run folder that cannot be reported; the message names the folder and what is wrong. */
export class RunFolderError extends Error {
  override name = 'RunFolderError';
}

/** One row of class_acc.csv: end-of-task accuracy per global label (exposed classes only). */
export interface ClassAccTaskRow {
  task: number;
  acc: Array<{ label: number; accuracy: number }>;
}

/** One row of online.csv. */
export interface OnlineRow {
  batch: number;
  task: number;
  n: number;
  correct: number;
  samplesSeen: number;
}

/** A parameter-count snapshot at a point of the stream (a `cost` event; see {@link RunData.costSeries}). */
export interface CostPoint {
  samplesSeen: number;
  trainableParams: number;
  totalParams: number;
  expertsPerBlock: number | null;
}

/** One `phase` event (task hooks and method phases such as merges). */
export interface PhasePoint {
  name: string;
  ms: number;
  task: number;
  samplesSeen: number;
}

/** Everything the charts and tables of one run folder use. */
export interface RunData {
  /** Absolute path of the run folder. */
  dir: string;
  /** The config's `name` (benchmark), when config.resolved.json has one. */
  name: string | null;
  /** Method name (cost.json, else config.resolved.json's method.name). */
  method: string | null;
  seed: number | null;
  metrics: Record<string, number | null>;
  cost: CostReport | null;
  /** acc_matrix.csv (null when absent). */
  matrix: Array<Array<number | null>> | null;
  anytime: Array<{ samplesSeen: number; accuracy: number }>;
  taskAcc: Array<{ task: number; samplesSeen: number | null; accuracy: number | null }>;
  classAcc: ClassAccTaskRow[];
  online: OnlineRow[];
  /** Task names from task_start events, by task index. */
  taskNames: string[];
  phases: PhasePoint[];
  /** Per-batch wall time, from the `ms` field of batch events (empty when the runner does not record it). */
  batchMs: Array<{ batch: number; samplesSeen: number; ms: number }>;
  /** Parameter counts over the stream from `cost` events (empty when the runner does not record them). */
  costSeries: CostPoint[];
  /** Experts per block over the stream: `cost` events, else cost.json's `expertsOverTime:<i>:<samples>` extras. */
  expertsOverTime: Array<{ samplesSeen: number; experts: number }>;
  /** DDAS routing counts from cost.json's `ddasRoute:<expected>-><routed>` extras (-1 = zero-shot). */
  routing: Array<{ expected: number; routed: number; count: number }>;
}

function readJson(path: string): unknown {
  const text = readFileSync(path, 'utf8');
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new RunFolderError(`${path}: not valid JSON (${(e as Error).message})`);
  }
}

function optionalText(dir: string, file: string): string | null {
  const p = join(dir, file);
  return existsSync(p) ? readFileSync(p, 'utf8') : null;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Whether `dir` looks like a run folder (finished or not). */
export function isRunFolder(dir: string): boolean {
  return existsSync(join(dir, 'metrics.json')) || existsSync(join(dir, 'config.resolved.json'));
}

/**
 * The run folders named by `dirs`, in order: a run folder stands for itself; a folder of a multi-seed run
 * (sub-folders `seed-<s>` that are run folders) stands for its seed folders, in seed order. Throws a
 * RunFolderError naming the folder for a path that is neither.
 */
export function expandRunDirs(dirs: readonly string[]): string[] {
  const out: string[] = [];
  for (const d of dirs) {
    const dir = resolve(d);
    if (!existsSync(dir)) throw new RunFolderError(`${d}: no such folder`);
    if (!statSync(dir).isDirectory()) throw new RunFolderError(`${d}: not a folder (give a run folder)`);
    if (isRunFolder(dir)) {
      out.push(dir);
      continue;
    }
    const seeds = readdirSync(dir)
      .map((f) => /^seed-(\d+)$/.exec(f))
      .filter((m): m is RegExpExecArray => m !== null && isRunFolder(join(dir, m[0])))
      .sort((a, b) => Number(a[1]) - Number(b[1]))
      .map((m) => join(dir, m[0]));
    if (seeds.length === 0) {
      throw new RunFolderError(`${d}: not a run folder (no metrics.json or config.resolved.json, and no seed-<s> run folders)`);
    }
    out.push(...seeds);
  }
  return out;
}

/** The events of events.jsonl (or, for a run in progress, none). Lines are parsed loosely: unknown types are kept. */
function readEvents(dir: string): Array<Record<string, unknown>> {
  const text = optionalText(dir, 'events.jsonl');
  if (text === null) return [];
  const out: Array<Record<string, unknown>> = [];
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    let e: unknown;
    try {
      e = JSON.parse(line);
    } catch (err) {
      throw new RunFolderError(`${join(dir, 'events.jsonl')}: line ${i + 1} is not valid JSON (${(err as Error).message})`);
    }
    if (isObject(e)) out.push(e);
  });
  return out;
}

const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

/**
 * Reads a finished run folder. Throws a RunFolderError naming the folder when it is not a run folder or the run
 * is incomplete (no metrics.json), and naming the file for a malformed file.
 */
export function readRunData(runDir: string): RunData {
  const dir = resolve(runDir);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new RunFolderError(`${runDir}: no such folder`);
  if (!isRunFolder(dir)) {
    throw new RunFolderError(`${runDir}: not a run folder (no metrics.json or config.resolved.json)`);
  }
  if (!existsSync(join(dir, 'metrics.json'))) {
    const resume = existsSync(join(dir, 'checkpoint')) ? `; resume it with \`moeclip run --resume ${runDir}\`` : '';
    throw new RunFolderError(`${runDir}: the run is incomplete (no metrics.json: it was interrupted or is still running)${resume}`);
  }
  const metricsRaw = readJson(join(dir, 'metrics.json'));
  if (!isObject(metricsRaw)) throw new RunFolderError(`${join(dir, 'metrics.json')}: expected a JSON object of metrics`);
  const metrics: Record<string, number | null> = {};
  for (const [k, v] of Object.entries(metricsRaw)) if (typeof v === 'number' || v === null) metrics[k] = v;

  const config = existsSync(join(dir, 'config.resolved.json')) ? readJson(join(dir, 'config.resolved.json')) : null;
  const costRaw = existsSync(join(dir, 'cost.json')) ? readJson(join(dir, 'cost.json')) : null;
  if (costRaw !== null && !isObject(costRaw)) throw new RunFolderError(`${join(dir, 'cost.json')}: expected a JSON object`);
  const cost = costRaw as CostReport | null;
  const extra: Record<string, number> = cost && isObject(cost.extra) ? cost.extra : {};

  const configMethod = isObject(config) && isObject(config['method']) && typeof config['method']['name'] === 'string' ? config['method']['name'] : null;
  const name = isObject(config) && typeof config['name'] === 'string' ? config['name'] : null;
  const seed = isObject(config) ? num(config['seed']) : null;

  const matrixText = optionalText(dir, 'acc_matrix.csv');
  const matrix = matrixText === null ? null : parseMatrixCsv(matrixText, join(dir, 'acc_matrix.csv'));

  const table = (file: string) => {
    const text = optionalText(dir, file);
    return text === null ? null : parseTableCsv(text, join(dir, file));
  };
  const column = (t: { header: string[] }, file: string, col: string) => {
    const k = t.header.indexOf(col);
    if (k < 0) throw new RunFolderError(`${join(dir, file)}: no '${col}' column (header: ${t.header.join(',')})`);
    return k;
  };

  const anytimeT = table('anytime.csv');
  const anytime: RunData['anytime'] = [];
  if (anytimeT) {
    const [s, a] = [column(anytimeT, 'anytime.csv', 'samples_seen'), column(anytimeT, 'anytime.csv', 'accuracy')];
    for (const r of anytimeT.rows) if (r[s] != null && r[a] != null) anytime.push({ samplesSeen: r[s]!, accuracy: r[a]! });
  }

  const taskT = table('task_acc.csv');
  const taskAcc: RunData['taskAcc'] = [];
  if (taskT) {
    const [t, s, a] = ['task', 'samples_seen', 'accuracy'].map((c) => column(taskT, 'task_acc.csv', c)) as [number, number, number];
    for (const r of taskT.rows) taskAcc.push({ task: r[t] ?? taskAcc.length, samplesSeen: r[s] ?? null, accuracy: r[a] ?? null });
  }

  const classT = table('class_acc.csv');
  const classAcc: ClassAccTaskRow[] = [];
  if (classT) {
    const t = column(classT, 'class_acc.csv', 'task');
    for (const r of classT.rows) {
      const acc: ClassAccTaskRow['acc'] = [];
      classT.header.forEach((h, k) => {
        if (k !== t && r[k] != null) acc.push({ label: Number(h), accuracy: r[k]! });
      });
      classAcc.push({ task: r[t] ?? classAcc.length, acc });
    }
  }

  const onlineT = table('online.csv');
  const online: OnlineRow[] = [];
  if (onlineT) {
    const ks = ['batch', 'task', 'n', 'correct', 'samples_seen'].map((c) => column(onlineT, 'online.csv', c));
    for (const r of onlineT.rows) {
      const [b, t, n, c, s] = ks.map((k) => r[k] ?? 0) as [number, number, number, number, number];
      online.push({ batch: b, task: t, n, correct: c, samplesSeen: s });
    }
  }

  const taskNames: string[] = [];
  const phases: PhasePoint[] = [];
  const batchMs: RunData['batchMs'] = [];
  const costSeries: CostPoint[] = [];
  for (const e of readEvents(dir)) {
    const type = e['type'] as RunEvent['type'] | 'cost';
    if (type === 'task_start' && typeof e['name'] === 'string' && num(e['task']) !== null) taskNames[num(e['task'])!] = e['name'];
    if (type === 'phase' && typeof e['name'] === 'string' && num(e['ms']) !== null) {
      phases.push({ name: e['name'], ms: num(e['ms'])!, task: num(e['task']) ?? 0, samplesSeen: num(e['samplesSeen']) ?? 0 });
    }
    if (type === 'batch' && num(e['ms']) !== null) {
      batchMs.push({ batch: num(e['batch']) ?? batchMs.length, samplesSeen: num(e['samplesSeen']) ?? 0, ms: num(e['ms'])! });
    }
    if (type === 'cost' && num(e['trainableParams']) !== null && num(e['totalParams']) !== null) {
      const ex = isObject(e['extra']) ? e['extra'] : {};
      costSeries.push({
        samplesSeen: num(e['samplesSeen']) ?? 0,
        trainableParams: num(e['trainableParams'])!,
        totalParams: num(e['totalParams'])!,
        expertsPerBlock: num(ex['expertsPerBlock']),
      });
    }
  }

  let expertsOverTime: RunData['expertsOverTime'];
  if (costSeries.some((c) => c.expertsPerBlock !== null)) {
    expertsOverTime = costSeries.filter((c) => c.expertsPerBlock !== null).map((c) => ({ samplesSeen: c.samplesSeen, experts: c.expertsPerBlock! }));
  } else {
    expertsOverTime = Object.entries(extra)
      .map(([k, v]) => [/^expertsOverTime:(\d+):(\d+)$/.exec(k), v] as const)
      .filter((x): x is readonly [RegExpExecArray, number] => x[0] !== null && typeof x[1] === 'number')
      .sort((a, b) => Number(a[0][1]) - Number(b[0][1]))
      .map(([m, v]) => ({ samplesSeen: Number(m[2]), experts: v }));
  }

  const routing: RunData['routing'] = [];
  for (const [k, v] of Object.entries(extra)) {
    const m = /^ddasRoute:(-?\d+)->(-?\d+)$/.exec(k);
    if (m && typeof v === 'number') routing.push({ expected: Number(m[1]), routed: Number(m[2]), count: v });
  }
  routing.sort((a, b) => a.expected - b.expected || a.routed - b.routed);

  return {
    dir,
    name,
    method: (cost && typeof cost.method === 'string' ? cost.method : null) ?? configMethod,
    seed,
    metrics,
    cost,
    matrix,
    anytime,
    taskAcc,
    classAcc,
    online,
    taskNames,
    phases,
    batchMs,
    costSeries,
    expertsOverTime,
    routing,
  };
}

/**
 * Short distinct labels for runs: the folder name, or as many trailing path segments as needed to tell the runs
 * apart (`split/seed-1`, `split/seed-2`).
 */
export function runLabels(dirs: readonly string[]): string[] {
  const parts = dirs.map((d) => resolve(d).split(/[\\/]/).filter((s) => s !== ''));
  const maxDepth = Math.max(1, ...parts.map((p) => p.length));
  for (let depth = 1; depth <= maxDepth; depth++) {
    const labels = parts.map((p) => p.slice(-depth).join('/'));
    if (new Set(labels).size === labels.length) return labels;
  }
  // the same folder given twice: number the repeats
  return dirs.map((d, i) => `${basename(resolve(d))} #${i + 1}`);
}
