/**
 * Progress output on stderr for the long-running commands: a one-line bar on a terminal (redrawn in place, with
 * lines printed above it while it runs) and a smoothed time-remaining estimate.
 *
 * ETA: the rate (units per second) is an exponentially weighted average over time, weight 1 − e^(−Δt/τ) for an
 * update Δt seconds after the previous one (τ = 20 s by default), started from the mean rate of a warm-up. The
 * warm-up leaves out the first interval (it carries building sessions, decoding, the first compile) and lasts
 * `minUpdates` more updates and at least `minSeconds`; no estimate is shown before. One slow step (an evaluation,
 * a merge) then moves the rate by the weight of its duration, not all the way to its own rate.
 *
 * {@link runProgressReporter} turns runner events into this output (the `moeclip run` progress).
 */
import type { CliIO } from './command.ts';
import { pct, taskLabel } from './format.ts';
import type { RunControlEvent, RunEvent } from '../run/events.ts';

/** Options of {@link EtaEstimator}. */
export interface EtaOptions {
  /** Time constant of the rate average, seconds (default 20). */
  tauSeconds?: number;
  /** Updates in the warm-up, after the first interval (default 3). */
  minUpdates?: number;
  /** Least duration of the warm-up, seconds (default 2). */
  minSeconds?: number;
}

/** Smoothed remaining time of a count going from its first value to `total` (see the module comment). */
export class EtaEstimator {
  private readonly tau: number;
  private readonly minUpdates: number;
  private readonly minSeconds: number;
  /** Start of the warm-up: the second update (the first interval is left out). */
  private base: { v: number; t: number } | null = null;
  private last: { v: number; t: number } | null = null;
  private updates = 0;
  private rateEma: number | null = null;

  constructor(
    readonly total: number,
    opts: EtaOptions = {},
  ) {
    this.tau = opts.tauSeconds ?? 20;
    this.minUpdates = opts.minUpdates ?? 3;
    this.minSeconds = opts.minSeconds ?? 2;
  }

  /** Records that the count is `value` at time `nowMs` (milliseconds, any monotonic origin). */
  update(value: number, nowMs: number): void {
    const t = nowMs / 1000;
    if (this.last === null) {
      this.last = { v: value, t };
      return;
    }
    const dt = t - this.last.t;
    if (dt <= 0) return; // same instant: the next update covers both
    if (this.base === null) {
      this.base = this.last = { v: value, t };
      return;
    }
    this.updates++;
    if (this.rateEma === null) {
      const span = t - this.base.t;
      if (this.updates >= this.minUpdates && span >= this.minSeconds) this.rateEma = (value - this.base.v) / span;
    } else {
      const inst = (value - this.last.v) / dt;
      this.rateEma += (1 - Math.exp(-dt / this.tau)) * (inst - this.rateEma);
    }
    this.last = { v: value, t };
  }

  /** Units per second, or null during the warm-up. */
  rate(): number | null {
    return this.rateEma;
  }

  /** Seconds left at the current rate, or null during the warm-up (or at a zero rate). */
  seconds(): number | null {
    if (this.rateEma === null || this.last === null || !(this.rateEma > 0)) return null;
    return Math.max(0, (this.total - this.last.v) / this.rateEma);
  }
}

/** `42s`, `3m05s`, `2h07m`; `—` for null. */
export function formatDuration(sec: number | null): string {
  if (sec === null || !Number.isFinite(sec)) return '—';
  const s = Math.round(sec);
  if (s < 60) return `${s}s`;
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return h > 0 ? `${h}h${String(m).padStart(2, '0')}m` : `${m}m${String(s % 60).padStart(2, '0')}s`;
}

/** What a bar's `render` receives. */
export interface BarState {
  value: number;
  total: number;
  /** The bar itself, `width` characters. */
  bar: string;
  /** Smoothed remaining time, formatted (`—` during the warm-up). */
  eta: string;
}

export interface ProgressBarOptions extends EtaOptions {
  total: number;
  /** The line to draw; `fields` are the caller's last values. */
  render: (s: BarState, fields: Readonly<Record<string, string>>) => string;
  /** Bar width in characters (default 30). */
  width?: number;
  /** Clock in milliseconds (default `performance.now`). */
  now?: () => number;
  /** Redraw at most this often on updates, milliseconds (default 100; `log` and the last value always redraw). */
  minRedrawMs?: number;
}

const CLEAR_LINE = '\r\x1b[2K';

/**
 * A progress line redrawn in place through `write` (a terminal). {@link log} prints a line above it and redraws
 * it, so messages appear when they happen; {@link stop} erases it.
 */
export class ProgressBar {
  private readonly eta: EtaEstimator;
  private readonly now: () => number;
  private value = 0;
  private fields: Record<string, string> = {};
  private drawnAt = -Infinity;
  private visible = false;
  private stopped = false;

  constructor(
    private readonly write: (text: string) => void,
    private readonly opts: ProgressBarOptions,
  ) {
    this.eta = new EtaEstimator(opts.total, opts);
    this.now = opts.now ?? (() => performance.now());
  }

  /** The line as it would be drawn now. */
  line(): string {
    const width = this.opts.width ?? 30;
    const total = this.opts.total;
    const filled = total > 0 ? Math.min(width, Math.round((this.value / total) * width)) : 0;
    const bar = '█'.repeat(filled) + '░'.repeat(width - filled);
    return this.opts.render({ value: this.value, total, bar, eta: formatDuration(this.eta.seconds()) }, this.fields);
  }

  /** Sets the count (and any fields) and redraws, at most every `minRedrawMs`. */
  update(value: number, fields: Record<string, string> = {}): void {
    if (this.stopped) return;
    const t = this.now();
    this.value = value;
    this.fields = { ...this.fields, ...fields };
    this.eta.update(value, t);
    if (t - this.drawnAt >= (this.opts.minRedrawMs ?? 100) || value >= this.opts.total) this.draw(t);
  }

  /** Prints `text` (one or more lines) above the bar and redraws the bar under it. */
  log(text: string): void {
    const body = text.endsWith('\n') ? text : text + '\n';
    if (this.stopped) {
      this.write(body);
      return;
    }
    this.write((this.visible ? CLEAR_LINE : '') + body);
    this.visible = false;
    this.draw(this.now());
  }

  /** Erases the bar; later `log` calls print plain lines. */
  stop(): void {
    if (this.stopped) return;
    if (this.visible) this.write(CLEAR_LINE);
    this.visible = false;
    this.stopped = true;
  }

  private draw(t: number): void {
    this.write(CLEAR_LINE + this.line());
    this.visible = true;
    this.drawnAt = t;
  }
}

/**
 * Runner events as progress on stderr (the `moeclip run` output): on a terminal a bar with the task, online
 * accuracy, last end-of-task accuracy and ETA, with the task-start, end-of-task, checkpoint and slow-phase lines
 * printed above it as they happen; otherwise plain lines (about 20 progress lines per run). Tasks read
 * "task 1/T". `prefix` starts every line (e.g. `[seed 2] `).
 */
export function runProgressReporter(
  io: CliIO,
  opts: { prefix?: string; now?: () => number } = {},
): { onEvent: (e: RunEvent | RunControlEvent) => void; stop: () => void } {
  const now = opts.now ?? (() => performance.now());
  const prefix = opts.prefix ?? '';
  let total = 0;
  let tasks = 0;
  let correct = 0;
  let predicted = 0; // incoming samples predicted in this process (the online accuracy's denominator)
  let seen = 0; // stream position
  let lastPrinted = 0;
  let bar: ProgressBar | null = null;
  let eta: EtaEstimator | null = null;
  const t0 = now();
  const say = (line: string) => (bar ? bar.log(prefix + line) : io.stderr(prefix + line + '\n'));
  const stop = () => {
    bar?.stop();
    bar = null;
  };
  const start = (at: number, task: number) => {
    seen = at;
    if (!io.isTTY) {
      eta = new EtaEstimator(total);
      eta.update(at, now());
      return;
    }
    bar = new ProgressBar(io.stderr, {
      total,
      now,
      render: (s, f) =>
        `${prefix}${f['task'] ?? ''} |${s.bar}| ${s.value}/${s.total} samples | online ${f['online'] ?? '—'} | ` +
        `task-end acc ${f['acc'] ?? '—'} | ETA ${s.eta}`,
    });
    bar.update(at, { task: taskLabel(task, tasks) });
  };
  const onEvent = (e: RunEvent | RunControlEvent) => {
    switch (e.type) {
      case 'run_start':
        total = e.trainSamples;
        tasks = e.tasks;
        io.stderr(`${prefix}stream: ${e.kind}, ${e.tasks} tasks, ${e.trainSamples} training samples, ${e.classes} classes\n`);
        start(0, 0);
        break;
      case 'resume':
        total = e.trainSamples;
        tasks = e.tasks;
        lastPrinted = e.samplesSeen;
        io.stderr(`${prefix}resuming after ${e.samplesSeen}/${e.trainSamples} samples (${taskLabel(e.task, e.tasks)})\n`);
        start(e.samplesSeen, e.task);
        break;
      case 'checkpoint':
        say(`  checkpoint after ${e.samplesSeen} samples: ${e.path}`);
        break;
      case 'task_start':
        say(`${taskLabel(e.task, tasks)} (${e.name}): ${e.size} samples, ${e.classes.length} classes`);
        bar?.update(seen, { task: taskLabel(e.task, tasks) });
        break;
      case 'batch':
        correct += e.correct;
        predicted += e.n;
        seen = e.samplesSeen;
        if (bar) bar.update(e.samplesSeen, { task: taskLabel(e.task, tasks), online: pct(correct / predicted) });
        else {
          eta?.update(e.samplesSeen, now());
          if (e.samplesSeen - lastPrinted >= Math.max(1, Math.floor(total / 20))) {
            lastPrinted = e.samplesSeen;
            const s = ((now() - t0) / 1000).toFixed(1);
            const left = eta?.seconds() ?? null;
            io.stderr(
              `${prefix}  ${e.samplesSeen}/${total} samples, online acc ${pct(correct / predicted)}, ${s}s` +
                `${left !== null ? `, ETA ${formatDuration(left)}` : ''}\n`,
            );
          }
        }
        break;
      case 'task_end':
        say(`end of ${taskLabel(e.task, tasks)}: accuracy on exposed classes ${pct(e.accuracy)} (${e.n} test samples)`);
        bar?.update(e.samplesSeen, { acc: pct(e.accuracy) });
        break;
      case 'phase':
        if (e.ms > 1000) say(`  phase ${e.name}: ${(e.ms / 1000).toFixed(1)}s`);
        break;
      case 'run_end':
        stop();
        io.stderr(`${prefix}done: ${e.samplesSeen} samples in ${((now() - t0) / 1000).toFixed(1)}s\n`);
        break;
      default:
        break;
    }
  };
  return { onEvent, stop };
}
