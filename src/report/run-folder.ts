/**
 * The run folder: everything needed to inspect a run and recompute its metrics.
 *
 *   config.resolved.json  the validated config with defaults filled in and paths made absolute
 *   events.jsonl          every runner event, one JSON object per line
 *   acc_matrix.csv        A[t][j], T lines × T cells, empty = not evaluated (no header)
 *   anytime.csv           samples_seen,accuracy
 *   task_acc.csv          task,samples_seen,accuracy   (end-of-task accuracy on exposed classes)
 *   class_acc.csv         task,<label>,...              (end-of-task per-class accuracy, empty = not exposed)
 *   online.csv            batch,task,n,correct,samples_seen   (prequential tallies)
 *   baseline.csv          task,accuracy                 (b_i, only when the baseline was evaluated)
 *   metrics.json          every metric of RunMetrics (null = undefined / not computable)
 *   cost.json             parameter counts, peak RSS, time per phase, time per sample
 *   plots/*.svg           the run's charts (src/report/plots.ts), written after the run
 *   final/                the trained learner of a method that can save its state (src/run/final.ts):
 *                         method.safetensors + method.json, learner.json, predictions.csv
 *   checkpoint/           while a run with --checkpoint-every is unfinished (src/run/checkpoint.ts)
 *
 * Accuracies are fractions in [0, 1]. Every file is written atomically (temp file + rename); events go to a
 * hidden `.events.jsonl.part` while the run is going and are renamed to `events.jsonl` when it finishes.
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic, writeJsonAtomic } from '../io/atomic.ts';
import type { ClassAccRow, MetricLog, RunMetrics } from '../eval/metrics.ts';
import { computeMetrics } from '../eval/metrics.ts';
import type { RunEvent } from '../run/events.ts';
import type { RunResult } from '../run/runner.ts';
import { formatMatrixCsv, formatTableCsv, parseMatrixCsv, parseTableCsv } from './csv.ts';

/** The files a finished run folder contains (baseline.csv only when evaluated). */
export const RUN_FILES = [
  'config.resolved.json',
  'events.jsonl',
  'acc_matrix.csv',
  'anytime.csv',
  'task_acc.csv',
  'class_acc.csv',
  'online.csv',
  'metrics.json',
  'cost.json',
] as const;

/** Contents of cost.json. */
export interface CostReport {
  method: string;
  trainableParams: number;
  totalParams: number;
  extra: Record<string, number>;
  /** Peak resident set size of the process (bytes), from `process.resourceUsage().maxRSS`. */
  peakRssBytes: number | null;
  samplesSeen: number;
  batches: number;
  steps: number;
  /** Milliseconds per phase (see RunResult.timings). */
  timingsMs: Record<string, number>;
  /** Whole stream loop (training + all evaluations) per stream sample. */
  msPerSample: number | null;
  /** Training-side time (data + memory + train + task hooks) per stream sample. */
  trainMsPerSample: number | null;
  /** Training-side time per incoming batch (stream step). */
  msPerBatch: number | null;
}

function peakRss(): number | null {
  try {
    return typeof process !== 'undefined' && typeof process.resourceUsage === 'function' ? process.resourceUsage().maxRSS * 1024 : null;
  } catch {
    return null;
  }
}

/** Builds cost.json from a run result. */
export function costReport(method: string, r: RunResult): CostReport {
  const tm = r.timings;
  const trainSide = ['data', 'memory', 'train', 'begin_task', 'end_task'].reduce((s, k) => s + (tm[k] ?? 0), 0);
  return {
    method,
    trainableParams: r.cost.trainableParams,
    totalParams: r.cost.totalParams,
    extra: { ...(r.cost.extra ?? {}) },
    peakRssBytes: peakRss(),
    samplesSeen: r.samplesSeen,
    batches: r.batches,
    steps: r.steps,
    timingsMs: { ...tm },
    msPerSample: r.samplesSeen > 0 ? (tm['total'] ?? 0) / r.samplesSeen : null,
    trainMsPerSample: r.samplesSeen > 0 ? trainSide / r.samplesSeen : null,
    msPerBatch: r.batches > 0 ? trainSide / r.batches : null,
  };
}

/** A run folder being written. */
export class RunFolder {
  private readonly partPath: string;

  private constructor(readonly dir: string) {
    this.partPath = join(dir, '.events.jsonl.part');
  }

  /**
   * Creates `dir` (and parents) and writes config.resolved.json. Refuses a folder that already holds a run
   * (metrics.json or events.jsonl present) unless `overwrite`.
   */
  static create(dir: string, resolvedConfig: unknown, opts: { overwrite?: boolean } = {}): RunFolder {
    if (!opts.overwrite && (existsSync(join(dir, 'metrics.json')) || existsSync(join(dir, 'events.jsonl')))) {
      throw new Error(`run folder ${dir} already holds a run; choose another output folder`);
    }
    mkdirSync(dir, { recursive: true });
    const f = new RunFolder(dir);
    writeJsonAtomic(join(dir, 'config.resolved.json'), resolvedConfig);
    writeFileAtomic(f.partPath, '');
    return f;
  }

  /** Appends one event to the in-progress event log. */
  event(e: RunEvent): void {
    appendFileSync(this.partPath, JSON.stringify(e) + '\n');
  }

  /** Writes every result file and publishes events.jsonl. */
  finish(method: string, r: RunResult): void {
    const { log } = r;
    const d = this.dir;
    writeFileAtomic(join(d, 'acc_matrix.csv'), formatMatrixCsv(log.matrix));
    writeFileAtomic(
      join(d, 'anytime.csv'),
      formatTableCsv(['samples_seen', 'accuracy'], log.anytime.map((p) => [p.samplesSeen, p.accuracy])),
    );
    // samples seen at each task end, from the task sizes
    const ends: number[] = [];
    const onlineRows: Array<Array<number>> = [];
    {
      let seen = 0;
      let b = 0;
      for (const e of readEvents(this.partPath)) {
        if (e.type === 'task_end') ends.push(e.samplesSeen);
        if (e.type === 'batch') {
          seen = e.samplesSeen;
          onlineRows.push([b++, e.task, e.n, e.correct, seen]);
        }
      }
    }
    writeFileAtomic(
      join(d, 'task_acc.csv'),
      formatTableCsv(['task', 'samples_seen', 'accuracy'], log.taskAcc.map((a, t) => [t, ends[t] ?? null, a])),
    );
    const labels = [...new Set(log.classAcc.flatMap((row) => Object.keys(row).map(Number)))].sort((a, b) => a - b);
    writeFileAtomic(
      join(d, 'class_acc.csv'),
      formatTableCsv(
        ['task', ...labels.map(String)],
        log.classAcc.map((row, t) => [t, ...labels.map((c) => row[c] ?? null)]),
      ),
    );
    writeFileAtomic(join(d, 'online.csv'), formatTableCsv(['batch', 'task', 'n', 'correct', 'samples_seen'], onlineRows));
    if (log.baseline) {
      writeFileAtomic(join(d, 'baseline.csv'), formatTableCsv(['task', 'accuracy'], log.baseline.map((a, t) => [t, a])));
    }
    writeJsonAtomic(join(d, 'metrics.json'), r.metrics);
    writeJsonAtomic(join(d, 'cost.json'), costReport(method, r));
    renameSync(this.partPath, join(d, 'events.jsonl'));
  }
}

function readEvents(path: string): RunEvent[] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as RunEvent);
}

/** Reads the events of a finished run folder. */
export function readRunEvents(dir: string): RunEvent[] {
  return readEvents(join(dir, 'events.jsonl'));
}

/**
 * Rebuilds the metric log of a finished run folder from its CSV files (acc_matrix, anytime, task_acc,
 * class_acc, online, baseline), so metrics can be recomputed independently of metrics.json.
 */
export function readMetricLog(dir: string): MetricLog {
  const read = (f: string) => readFileSync(join(dir, f), 'utf8');
  const matrix = parseMatrixCsv(read('acc_matrix.csv'), join(dir, 'acc_matrix.csv'));
  const anytime = parseTableCsv(read('anytime.csv'), 'anytime.csv').rows.map((r) => ({
    samplesSeen: r[0] ?? 0,
    accuracy: r[1] ?? 0,
  }));
  const taskAcc = parseTableCsv(read('task_acc.csv'), 'task_acc.csv').rows.map((r) => r[2] ?? null);
  const cls = parseTableCsv(read('class_acc.csv'), 'class_acc.csv');
  const classAcc: ClassAccRow[] = cls.rows.map((r) => {
    const row: Record<number, number> = {};
    cls.header.slice(1).forEach((h, k) => {
      const v = r[k + 1];
      if (v !== null && v !== undefined) row[Number(h)] = v;
    });
    return row;
  });
  const online = parseTableCsv(read('online.csv'), 'online.csv').rows.map((r) => ({ total: r[2] ?? 0, correct: r[3] ?? 0 }));
  const baseline = existsSync(join(dir, 'baseline.csv'))
    ? parseTableCsv(read('baseline.csv'), 'baseline.csv').rows.map((r) => r[1] ?? null)
    : null;
  return {
    matrix,
    anytime,
    taskAcc,
    classAcc,
    online,
    baseline,
  };
}

/** Recomputes the metrics of a finished run folder from its raw CSV logs. */
export function recomputeMetrics(dir: string): RunMetrics {
  return computeMetrics(readMetricLog(dir));
}
