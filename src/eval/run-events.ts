/**
 * Numbers read off a run's event log (events.jsonl) that the metrics do not cover: how well a task-free run found
 * the true task boundaries, and whether the process's memory stayed flat over the stream.
 */

import { scoreBoundaries } from './boundaries.ts';

/** The fields of run events these reports read (events.jsonl lines, see src/run/events.ts). */
export interface LoggedEvent {
  type: string;
  task?: number;
  samplesSeen?: number;
  n?: number;
  info?: Record<string, unknown>;
  rssMB?: number;
}

export interface BoundaryReport {
  /** True boundaries: the stream position (samples seen before it) of the first batch of every task after the first. */
  trueBoundaries: number;
  /** Batches flagged by the method (`info.boundary` = `new` | `reenter`). */
  detected: number;
  matched: number;
  missed: number;
  /** Detections that match no true boundary (a second detection of one boundary counts here too). */
  falseBoundaries: number;
  /**
   * Delay of matched detections, in stream samples: samples of the new task seen before the flagged batch
   * (0 = detected on the new task's first batch).
   */
  meanDelaySamples: number | null;
  maxDelaySamples: number | null;
  kinds: string[];
}

/**
 * Detections (`info.boundary` on batch events) against the true task starts, matched by {@link scoreBoundaries}:
 * a detection on the batch starting at stream position `d` (samples seen before it) matches the latest true
 * boundary `b ≤ d` if that boundary is not matched yet; anything else is a false boundary.
 */
export function boundaryReport(events: readonly LoggedEvent[]): BoundaryReport {
  const batches = events.filter((e) => e.type === 'batch');
  const truth: number[] = [];
  const detected: { at: number; kind: string }[] = [];
  let prevTask = batches[0]?.task ?? 0;
  for (const b of batches) {
    const start = (b.samplesSeen ?? 0) - (b.n ?? 0);
    if (b.task !== prevTask) truth.push(start);
    prevTask = b.task ?? prevTask;
    const kind = b.info?.['boundary'];
    if (typeof kind === 'string') detected.push({ at: start, kind });
  }
  const sc = scoreBoundaries(truth, detected.map((d) => d.at));
  const delays = sc.delays;
  return {
    trueBoundaries: truth.length,
    detected: detected.length,
    matched: sc.found,
    missed: sc.missed,
    falseBoundaries: sc.falseDetections,
    meanDelaySamples: delays.length > 0 ? delays.reduce((a, b) => a + b, 0) / delays.length : null,
    maxDelaySamples: delays.length > 0 ? Math.max(...delays) : null,
    kinds: detected.map((d) => d.kind),
  };
}

/** Per task boundary, how much the previous task's DDAS error moved ({@link ddasTraceReport}). */
export interface DdasTraceBoundary {
  /** The new task. */
  task: number;
  /** The previous task's autoencoder on its own last `k` batches (mean of their batch means). */
  ownTail: number | null;
  /** The same autoencoder on the new task's first `k` batches. */
  next: number | null;
  ratio: number | null;
}

/**
 * From a boundary-aware run with cm-moe's `traceDdas` (batch events carry `ddasErr:<subnet>`; subnet = task id
 * while nothing merges): per boundary, the previous task's autoencoder's mean error on the new task's first `k`
 * batches over its mean error on its own last `k` batches — 1 means the boundary is invisible to DDAS.
 */
export function ddasTraceReport(events: readonly LoggedEvent[], k = 3): DdasTraceBoundary[] {
  if (!Number.isInteger(k) || k < 1) throw new Error(`ddasTraceReport.k: expected a positive integer, got ${k}`);
  const byTask = new Map<number, Array<Record<string, unknown>>>();
  for (const e of events) {
    if (e.type !== 'batch' || e.task === undefined) continue;
    const list = byTask.get(e.task) ?? [];
    list.push(e.info ?? {});
    byTask.set(e.task, list);
  }
  const mean = (xs: unknown[]) => {
    const v = xs.filter((x): x is number => typeof x === 'number');
    return v.length ? v.reduce((a, b) => a + b, 0) / v.length : null;
  };
  const out: DdasTraceBoundary[] = [];
  for (const [t, infos] of [...byTask].sort((a, b) => a[0] - b[0])) {
    const prev = byTask.get(t - 1);
    if (!prev) continue;
    const key = `ddasErr:${t - 1}`;
    const ownTail = mean(prev.slice(-k).map((i) => i[key]));
    const next = mean(infos.slice(0, k).map((i) => i[key]));
    out.push({ task: t, ownTail, next, ratio: ownTail !== null && ownTail > 0 && next !== null ? next / ownTail : null });
  }
  return out;
}

export interface MemoryReport {
  /** Cost events with an RSS reading. */
  points: number;
  peakMB: number | null;
  /** Over the points in the last half of the stream (samples seen ≥ half of the last point's). */
  lastHalfMinMB: number | null;
  lastHalfMaxMB: number | null;
  /** (max − min) / min over the last half: issue E asks for ≤ 0.10 (flat within ±10 %). */
  lastHalfSpread: number | null;
}

/** The process RSS recorded by the runner's cost events (start, anytime points, task ends). */
export function memoryReport(events: readonly LoggedEvent[]): MemoryReport {
  const pts = events.filter((e) => e.type === 'cost' && typeof e.rssMB === 'number').map((e) => ({ at: e.samplesSeen ?? 0, mb: e.rssMB! }));
  if (pts.length === 0) return { points: 0, peakMB: null, lastHalfMinMB: null, lastHalfMaxMB: null, lastHalfSpread: null };
  const end = Math.max(...pts.map((p) => p.at));
  const last = pts.filter((p) => p.at >= end / 2).map((p) => p.mb);
  const lo = Math.min(...last);
  const hi = Math.max(...last);
  return { points: pts.length, peakMB: Math.max(...pts.map((p) => p.mb)), lastHalfMinMB: lo, lastHalfMaxMB: hi, lastHalfSpread: lo > 0 ? (hi - lo) / lo : null };
}
