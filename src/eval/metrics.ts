/**
 * Continual-learning metrics as pure functions of logged raw data (accuracy matrix, anytime curve, end-of-task
 * accuracies, per-class accuracies, prequential tallies), so that every number in a report can be recomputed
 * from a run folder.
 *
 * Notation: tasks 0..T−1 in training order; `A[t][j]` = top-1 accuracy (a fraction in [0, 1]) on the test data
 * of task j after training through task t; `null` marks an entry that was not evaluated (by default the runner
 * evaluates only j ≤ t; with `evalFutureTasks` it fills the whole matrix).
 *
 * Undefined values are `null`, never NaN or 0: a metric is `null` when the data it needs is absent (e.g.
 * Transfer without the upper triangle) or when it is undefined for the stream (a 1-task stream has no
 * forgetting, BWT, FWT or Transfer).
 */
export { accuracy, countCorrect, perClassAccuracy, classTally, confusionCounts } from './accuracy.ts';

/** A T×T accuracy matrix; `A[t][j]` or `null` when not evaluated. */
export type AccMatrix = ReadonlyArray<ReadonlyArray<number | null>>;

/** One point of the anytime-accuracy curve. */
export interface AnytimePoint {
  samplesSeen: number;
  accuracy: number;
}

/** Per-class accuracies at the end of one task: global label → accuracy (only exposed classes present). */
export type ClassAccRow = Readonly<Record<number, number>>;

function mean(xs: readonly number[]): number | null {
  if (xs.length === 0) return null;
  let s = 0;
  for (const x of xs) s += x;
  return s / xs.length;
}

/** Throws unless `A` is a non-empty square matrix of finite numbers or `null`s; returns T. */
export function checkMatrix(A: AccMatrix): number {
  const T = A.length;
  if (T === 0) throw new Error('accuracy matrix is empty');
  A.forEach((row, t) => {
    if (row.length !== T) throw new Error(`accuracy matrix row ${t} has ${row.length} entries, expected ${T}`);
    row.forEach((v, j) => {
      if (v !== null && !Number.isFinite(v)) throw new Error(`accuracy matrix entry [${t}][${j}] is not a number`);
    });
  });
  return T;
}

function entry(A: AccMatrix, t: number, j: number): number | null {
  return A[t]?.[j] ?? null;
}

// ---------------------------------------------------------------------------------------------------------
// Online (LifeLong-CLIP / Si-Blurry conventions)
// ---------------------------------------------------------------------------------------------------------

/**
 * A_auc (Koh et al., ICLR 2022) = (1/K) Σ_k acc_k over the K anytime evaluations (every `evalPeriod` samples,
 * on the test samples of all classes exposed so far). With equally spaced points this is the area under the
 * anytime-accuracy curve divided by its length. `null` when the curve is empty.
 */
export function aAuc(curve: ReadonlyArray<AnytimePoint | number>): number | null {
  return mean(curve.map((p) => (typeof p === 'number' ? p : p.accuracy)));
}

/**
 * A_avg = (1/|E|) Σ_{t∈E} acc_t, where `acc_t` is the end-of-task-t accuracy on the test samples of all classes
 * exposed so far (sample-pooled) and E the tasks after which some class was exposed (`acc_t` not `null`): a
 * stochastic Si-Blurry stream can start with empty tasks, which expose nothing and are left out (LifeLong-CLIP
 * has no value for them: its evaluation divides by zero). With every task in E this is (1/T) Σ_t acc_t, the
 * CIL "Avg". `null` when E is empty.
 */
export function aAvg(taskAcc: ReadonlyArray<number | null>): number | null {
  return mean(taskAcc.filter((a): a is number => a !== null));
}

/** The tasks A_avg averages over ({@link aAvg}'s E): those with an end-of-task accuracy. */
export function aAvgTasks(taskAcc: ReadonlyArray<number | null>): number[] {
  const out: number[] = [];
  taskAcc.forEach((a, t) => {
    if (a !== null) out.push(t);
  });
  return out;
}

/** A_last = acc_{T−1}, the end-of-stream accuracy on all exposed classes. `null` for an empty list. */
export function aLast(taskAcc: readonly number[]): number | null {
  return taskAcc.length === 0 ? null : taskAcc[taskAcc.length - 1]!;
}

/**
 * F_last (per-class forgetting, LifeLong-CLIP): with `cls[t][c]` the accuracy on class c at the end of task t,
 *
 *   F_last = mean over classes c with m_c = max_{t<T−1} cls[t][c] > 0 of ( m_c − cls[T−1][c] ).
 *
 * Classes never evaluated before the last task, or with accuracy 0 at every earlier end of task (never learned),
 * are excluded; classes missing from the last row are excluded too. `null` for T < 2 or when no class qualifies.
 */
export function fLast(classAcc: readonly ClassAccRow[]): number | null {
  const T = classAcc.length;
  if (T < 2) return null;
  const last = classAcc[T - 1]!;
  const best = new Map<number, number>();
  for (let t = 0; t < T - 1; t++) {
    for (const [k, v] of Object.entries(classAcc[t]!)) {
      const c = Number(k);
      best.set(c, Math.max(best.get(c) ?? -Infinity, v));
    }
  }
  const drops: number[] = [];
  for (const [c, m] of best) {
    const end = last[c];
    if (m > 0 && end !== undefined) drops.push(m - end);
  }
  return mean(drops);
}

/** Prequential tally of one incoming batch: predicted before training on it. */
export interface OnlineTally {
  correct: number;
  total: number;
}

/**
 * Online (prequential) accuracy = Σ_b correct_b / Σ_b n_b over all incoming batches, each predicted before the
 * learner trains on it (sample-weighted, so a short last batch weighs less). `null` when nothing was seen.
 */
export function onlineAccuracy(batches: readonly OnlineTally[]): number | null {
  let c = 0;
  let n = 0;
  for (const b of batches) {
    c += b.correct;
    n += b.total;
  }
  return n === 0 ? null : c / n;
}

// ---------------------------------------------------------------------------------------------------------
// Multi-domain task-incremental (MTIL; ZSCL / MoE-Adapters conventions)
// ---------------------------------------------------------------------------------------------------------

/**
 * MTIL Transfer = (1/(T−1)) Σ_{j=1}^{T−1} [ (1/j) Σ_{t<j} A[t][j] ]: strictly the upper triangle, each column
 * averaged first (column 0 has no entry). Needs every upper-triangle entry (`evalFutureTasks`), else `null`;
 * `null` for T = 1.
 */
export function mtilTransfer(A: AccMatrix): number | null {
  const T = checkMatrix(A);
  if (T < 2) return null;
  const cols: number[] = [];
  for (let j = 1; j < T; j++) {
    const col: number[] = [];
    for (let t = 0; t < j; t++) {
      const v = entry(A, t, j);
      if (v === null) return null;
      col.push(v);
    }
    cols.push(mean(col)!);
  }
  return mean(cols);
}

/**
 * MTIL Average = (1/T) Σ_j [ (1/T) Σ_t A[t][j] ] = the mean of all T² entries. Needs the full matrix, else
 * `null`.
 */
export function mtilAverage(A: AccMatrix): number | null {
  const T = checkMatrix(A);
  const cols: number[] = [];
  for (let j = 0; j < T; j++) {
    const col: number[] = [];
    for (let t = 0; t < T; t++) {
      const v = entry(A, t, j);
      if (v === null) return null;
      col.push(v);
    }
    cols.push(mean(col)!);
  }
  return mean(cols);
}

/** MTIL Last = (1/T) Σ_j A[T−1][j]. `null` when a last-row entry is missing. */
export function mtilLast(A: AccMatrix): number | null {
  const T = checkMatrix(A);
  const row: number[] = [];
  for (let j = 0; j < T; j++) {
    const v = entry(A, T - 1, j);
    if (v === null) return null;
    row.push(v);
  }
  return mean(row);
}

// ---------------------------------------------------------------------------------------------------------
// Class-incremental (CIL; Continual-CLIP / MoE-Adapters conventions)
// ---------------------------------------------------------------------------------------------------------

/**
 * CIL Avg = (1/T) Σ_t acc_t, with `acc_t` the sample-pooled accuracy after task t on every test image of all
 * classes seen so far, classified among all seen classes. (Same formula as {@link aAvg}.)
 */
export function cilAverage(accAfterTask: readonly number[]): number | null {
  return mean(accAfterTask);
}

/** CIL Last = acc_{T−1}. (Same formula as {@link aLast}.) */
export function cilLast(accAfterTask: readonly number[]): number | null {
  return aLast(accAfterTask);
}

// ---------------------------------------------------------------------------------------------------------
// Classic
// ---------------------------------------------------------------------------------------------------------

/**
 * Average forgetting (Chaudhry et al., 2018):
 *
 *   f_j = max_{j ≤ l < T−1} A[l][j] − A[T−1][j]   for j < T−1,     F = (1/(T−1)) Σ_{j<T−1} f_j.
 *
 * The max runs over the evaluations after task j was learned (l ≥ j), as in the paper where `a_{l,j}` only
 * exists for l ≥ j; entries above the diagonal (zero-shot accuracy before training on j, present with
 * `evalFutureTasks`) are knowledge not yet acquired and are ignored, so the value does not depend on that flag.
 * Missing (null) entries are skipped in the max; `null` when T < 2 or a needed entry is missing.
 */
export function forgetting(A: AccMatrix): number | null {
  const T = checkMatrix(A);
  if (T < 2) return null;
  const fs: number[] = [];
  for (let j = 0; j < T - 1; j++) {
    const end = entry(A, T - 1, j);
    if (end === null) return null;
    let best = -Infinity;
    for (let l = j; l < T - 1; l++) {
      const v = entry(A, l, j);
      if (v !== null) best = Math.max(best, v);
    }
    if (best === -Infinity) return null;
    fs.push(best - end);
  }
  return mean(fs);
}

/**
 * Backward transfer (Lopez-Paz & Ranzato, 2017): BWT = (1/(T−1)) Σ_{i<T−1} (A[T−1][i] − A[i][i]).
 * Negative values mean forgetting. `null` when T < 2 or a needed entry is missing.
 */
export function bwt(A: AccMatrix): number | null {
  const T = checkMatrix(A);
  if (T < 2) return null;
  const ds: number[] = [];
  for (let i = 0; i < T - 1; i++) {
    const end = entry(A, T - 1, i);
    const diag = entry(A, i, i);
    if (end === null || diag === null) return null;
    ds.push(end - diag);
  }
  return mean(ds);
}

/**
 * Forward transfer (Lopez-Paz & Ranzato, 2017): FWT = (1/(T−1)) Σ_{i≥1} (A[i−1][i] − b_i), where `b_i` is the
 * accuracy on task i of the model before any training (the runner's initial evaluation). Needs the
 * first superdiagonal (`evalFutureTasks`) and `b`; `null` otherwise and for T < 2.
 */
export function fwt(A: AccMatrix, b: ReadonlyArray<number | null> | null | undefined): number | null {
  const T = checkMatrix(A);
  if (T < 2 || !b) return null;
  if (b.length !== T) throw new Error(`fwt: baseline vector has ${b.length} entries, expected ${T}`);
  const ds: number[] = [];
  for (let i = 1; i < T; i++) {
    const v = entry(A, i - 1, i);
    const bi = b[i] ?? null;
    if (v === null || bi === null) return null;
    ds.push(v - bi);
  }
  return mean(ds);
}

// ---------------------------------------------------------------------------------------------------------
// Everything at once
// ---------------------------------------------------------------------------------------------------------

/** The raw data a run logs, from which {@link computeMetrics} derives every metric. */
export interface MetricLog {
  /** Anytime-accuracy curve. */
  anytime: readonly AnytimePoint[];
  /** End-of-task accuracy on all exposed classes, one per task (`null`: the task had no such test sample). */
  taskAcc: ReadonlyArray<number | null>;
  /** End-of-task per-class accuracies over exposed classes, one row per task. */
  classAcc: readonly ClassAccRow[];
  /** Accuracy matrix A[t][j] (null = not evaluated). */
  matrix: AccMatrix;
  /** Prequential tallies per incoming batch. */
  online: readonly OnlineTally[];
  /** Accuracy per task before any training (b_i), when evaluated. */
  baseline?: ReadonlyArray<number | null> | null;
}

/** All scalar metrics of a run; `null` = undefined or not computable from the logged data. */
export interface RunMetrics {
  A_auc: number | null;
  A_avg: number | null;
  A_last: number | null;
  F_last: number | null;
  online: number | null;
  transfer: number | null;
  average: number | null;
  last: number | null;
  bwt: number | null;
  forgetting: number | null;
  fwt: number | null;
}

/**
 * Computes every metric of {@link RunMetrics} from a {@link MetricLog}. A_avg averages the tasks that have an
 * end-of-task accuracy ({@link aAvg}: tasks that exposed no class yet are left out); a `null` last entry makes
 * A_last `null`.
 */
export function computeMetrics(log: MetricLog): RunMetrics {
  const hasMatrix = log.matrix.length > 0;
  return {
    A_auc: aAuc(log.anytime),
    A_avg: aAvg(log.taskAcc),
    A_last: log.taskAcc.length === 0 ? null : log.taskAcc[log.taskAcc.length - 1]!,
    F_last: fLast(log.classAcc),
    online: onlineAccuracy(log.online),
    transfer: hasMatrix ? mtilTransfer(log.matrix) : null,
    average: hasMatrix ? mtilAverage(log.matrix) : null,
    last: hasMatrix ? mtilLast(log.matrix) : null,
    bwt: hasMatrix ? bwt(log.matrix) : null,
    forgetting: hasMatrix ? forgetting(log.matrix) : null,
    fwt: hasMatrix ? fwt(log.matrix, log.baseline ?? null) : null,
  };
}

/** The matrix-only metrics printed by `moeclip metrics`. */
export function matrixMetrics(A: AccMatrix): {
  transfer: number | null;
  average: number | null;
  last: number | null;
  bwt: number | null;
  forgetting: number | null;
} {
  return {
    transfer: mtilTransfer(A),
    average: mtilAverage(A),
    last: mtilLast(A),
    bwt: bwt(A),
    forgetting: forgetting(A),
  };
}
