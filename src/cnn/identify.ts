/**
 * Task identification of the CNN track (the reference's `check_if_existing_dist` and `store_ID_ACCS` rules).
 *
 * - A task's threshold comes from its online batch accuracies: the minimum of the last `window` (6) values;
 *   with only 3..window values, the minimum without the first (the first batch of a new subnet is near chance);
 *   with 2 or fewer, 0.95 × their mean; never below `floor` (0.15). After (re)training offline the threshold is
 *   set from held-out buffer accuracy instead ({@link Thresholds.setHeldOut}: 0.95 × that accuracy, floored).
 * - At the start of a set the learner measures every known task's head accuracy on the first batch (labels are
 *   given with the batch, as in the reference); the best task claims the set when its accuracy reaches its
 *   threshold, otherwise a new task opens.
 * - Recency: a task unused for more than `unusedThreshold` sets is dropped.
 */

/** The reference's threshold rule over online batch accuracies (fractions). */
export function thresholdFrom(accs: readonly number[], window = 6, floor = 0.15): number {
  let t: number;
  if (accs.length === 0) t = floor;
  else if (accs.length <= 2) t = (0.95 * accs.reduce((a, b) => a + b, 0)) / accs.length;
  else if (accs.length <= window) t = Math.min(...accs.slice(1));
  else t = Math.min(...accs.slice(-window));
  return Math.max(floor, t);
}

export interface Decision {
  /** The task that claims the set, or null: open a new task. */
  task: number | null;
  /** The best-scoring task and its accuracy (null when no task exists). */
  best: { task: number; acc: number; threshold: number } | null;
  /** Accuracy of every candidate task on the first batch. */
  accs: Record<number, number>;
}

/** Picks the best task by accuracy; it claims the set when it reaches its threshold. Ties: lower id. */
export function identify(accs: ReadonlyMap<number, number>, threshold: (task: number) => number): Decision {
  let best: Decision['best'] = null;
  for (const [task, acc] of [...accs].sort((a, b) => a[0] - b[0])) {
    if (!best || acc > best.acc) best = { task, acc, threshold: threshold(task) };
  }
  return { task: best && best.acc >= best.threshold ? best.task : null, best, accs: Object.fromEntries(accs) };
}

/** Per task: its online accuracies (current window), a held-out threshold when set, the set it was last used in. */
export interface TaskRecord {
  online: number[];
  heldOut: number | null;
  lastUsed: number;
}

/** Thresholds and recency of the known tasks. */
export class Thresholds {
  readonly tasks = new Map<number, TaskRecord>();
  constructor(readonly opts: { window: number; floor: number; unusedThreshold: number }) {}

  add(task: number, set: number): void {
    this.tasks.set(task, { online: [], heldOut: null, lastUsed: set });
  }

  /** The task takes set `set` (its online accuracies keep accumulating across its sets). */
  use(task: number, set: number): void {
    this.rec(task).lastUsed = set;
  }

  recordOnline(task: number, acc: number): void {
    const r = this.rec(task);
    r.online.push(acc);
  }

  setHeldOut(task: number, acc: number): void {
    const r = this.rec(task);
    r.heldOut = Math.max(this.opts.floor, 0.95 * acc);
    r.online = [];
  }

  threshold(task: number): number {
    const r = this.rec(task);
    // after an offline (re)training: the held-out threshold until new online accuracies come in
    if (r.heldOut !== null && r.online.length === 0) return r.heldOut;
    return thresholdFrom(r.online, this.opts.window, this.opts.floor);
  }

  /** Tasks unused for more than `unusedThreshold` sets as of set `now` (ascending). */
  stale(now: number): number[] {
    return [...this.tasks].filter(([, r]) => now - r.lastUsed > this.opts.unusedThreshold).map(([t]) => t).sort((a, b) => a - b);
  }

  drop(task: number): void {
    this.tasks.delete(task);
  }

  /** JSON-able records, ascending by task. */
  toJSON(): Array<[number, TaskRecord]> {
    return [...this.tasks].sort((a, b) => a[0] - b[0]).map(([t, r]) => [t, { online: [...r.online], heldOut: r.heldOut, lastUsed: r.lastUsed }]);
  }

  /** Replaces the records with {@link toJSON}'s; errors name the field (prefixed by `where`). */
  restore(j: unknown, where = 'thresholds'): void {
    if (!Array.isArray(j)) throw new Error(`${where}: expected a list of [task, record]`);
    const fin = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
    const next = new Map<number, TaskRecord>();
    j.forEach((e, i) => {
      const [task, r] = (Array.isArray(e) ? e : []) as [unknown, Partial<TaskRecord> | undefined];
      if (!Number.isInteger(task) || (task as number) < 0) throw new Error(`${where}[${i}]: expected [task id, record]`);
      if (typeof r !== 'object' || r === null || !Array.isArray(r.online) || !r.online.every(fin) || !(r.heldOut === null || fin(r.heldOut)) || !Number.isInteger(r.lastUsed)) {
        throw new Error(`${where}[${i}]: expected { online: number[], heldOut: number | null, lastUsed: integer }`);
      }
      next.set(task as number, { online: [...r.online], heldOut: r.heldOut, lastUsed: r.lastUsed! });
    });
    this.tasks.clear();
    for (const [t, r] of next) this.tasks.set(t, r);
  }

  private rec(task: number): TaskRecord {
    const r = this.tasks.get(task);
    if (!r) throw new Error(`thresholds: unknown task ${task}`);
    return r;
  }
}
