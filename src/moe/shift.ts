/**
 * Distribution-shift detection for task-free CM-MoE, from the per-batch DDAS reconstruction errors of the current
 * subnet's autoencoder (batch means) and of the other subnets' autoencoders.
 *
 * Statistic (one-sided: a new distribution raises the current AE's error):
 * - warm-up: the first `warmup` batches after {@link ShiftDetector.reset} give the mean μ and sample standard
 *   deviation σ (Welford); nothing is flagged meanwhile;
 * - then each batch enters a window of the last `window` batches; with m their mean and n their count,
 *   z = (m − μ) / (σ' / √n), σ' = max(σ, `minRelStd`·μ). A batch is suspicious when z > `z` and m > `minRatio`·μ;
 * - a batch leaving the window while nothing is suspicious updates μ and σ² by an exponential moving average
 *   (α = 2 / (`span` + 1)), so the statistics follow an AE that keeps learning but never absorb a change;
 * - `patience` suspicious batches in a row report a change. With an abrupt rise by a factor r the delay (batches
 *   from the first new batch to the report, both counted) is `patience` when one new batch already makes the
 *   window suspicious ((r − 1)·μ / n exceeds both margins), and at most `window` + `patience` − 1 when a full
 *   window of new batches does.
 * Re-entry: another subnet s explains the change when the mean of its errors over the `patience` reporting
 * batches is within its threshold: the value given in `observe`'s `thresholds`, else its calibration (μ_s, σ_s,
 * kept from when s was current) under the same rule, max(μ_s + z·σ'_s/√patience, minRatio·μ_s). The subnet of
 * lowest error / threshold is reported as `reenter`, else `new`. After a report the caller must call
 * {@link ShiftDetector.reset} with the subnet now current (also to ignore the change); it starts a new warm-up
 * (a re-entered subnet is recalibrated too: its AE goes on learning), so changes closer than `warmup` batches
 * after a reset are not seen until the warm-up ends.
 */

/** Options of {@link ShiftDetector} (all optional in the constructor). */
export interface ShiftDetectorOptions {
  /** Batches after a reset that calibrate μ and σ (≥ 2); default 20. */
  warmup: number;
  /** Batches in the window whose mean is tested; default 5. */
  window: number;
  /** z-score threshold z*; default 4. */
  z: number;
  /** Suspicious batches in a row that report a change; default 3. */
  patience: number;
  /** Window mean must also exceed minRatio·μ (≥ 1); default 1.2. */
  minRatio: number;
  /** Floor of σ relative to μ; default 0.02. */
  minRelStd: number;
  /** Span of the moving average that updates μ and σ² after the warm-up; default 50 batches. */
  span: number;
}

const DEFAULTS: ShiftDetectorOptions = { warmup: 20, window: 5, z: 4, patience: 3, minRatio: 1.2, minRelStd: 0.02, span: 50 };

/** One batch: the current subnet's AE error and the other subnets' (subnet → error). */
export interface ShiftObservation {
  current: number;
  others: ReadonlyMap<number, number>;
  /** Per other subnet a threshold on its mean error that overrides its calibration (e.g. `Ddas.threshold`). */
  thresholds?: ReadonlyMap<number, number>;
}

/** What {@link ShiftDetector.observe} reports. */
export type ShiftDecision = { kind: 'none' } | { kind: 'new' } | { kind: 'reenter'; subnet: number };

/** Calibrated statistics of a subnet's AE error. */
export interface ShiftCalibration {
  mean: number;
  std: number;
}

/** Serialised {@link ShiftDetector}. */
export interface ShiftDetectorJSON {
  format: 'moeclip.shift-detector';
  version: 1;
  options: ShiftDetectorOptions;
  current: number | null;
  phase: 'warmup' | 'detect' | 'changed';
  warm: { n: number; mean: number; m2: number };
  mean: number;
  variance: number;
  window: number[];
  others: [number, number][][];
  streak: number;
  batches: number;
  calibrations: [number, number, number][];
}

function resolve(o: Partial<ShiftDetectorOptions>, where: string): ShiftDetectorOptions {
  if (typeof o !== 'object' || o === null) throw new Error(`${where}: options must be an object`);
  const r = { ...DEFAULTS };
  for (const [k, v] of Object.entries(o)) {
    if (!(k in DEFAULTS)) throw new Error(`${where}: unknown option '${k}'`);
    if (v !== undefined) r[k as keyof ShiftDetectorOptions] = v as number;
  }
  const int = (k: keyof ShiftDetectorOptions, min: number) => {
    if (!Number.isInteger(r[k]) || r[k] < min) throw new Error(`${where}: ${k} must be an integer >= ${min}, got ${r[k]}`);
  };
  const num = (k: keyof ShiftDetectorOptions, ok: (v: number) => boolean, what: string) => {
    if (typeof r[k] !== 'number' || !Number.isFinite(r[k]) || !ok(r[k])) throw new Error(`${where}: ${k} must be ${what}, got ${r[k]}`);
  };
  int('warmup', 2);
  int('window', 1);
  int('patience', 1);
  num('z', (v) => v > 0, 'a positive number');
  num('minRatio', (v) => v >= 1, 'a number >= 1');
  num('minRelStd', (v) => v >= 0, 'a non-negative number');
  num('span', (v) => v >= 1, 'a number >= 1');
  return r;
}

/** Detects a new (or re-entered) distribution from per-batch AE errors (see the module doc). */
export class ShiftDetector {
  readonly options: Readonly<ShiftDetectorOptions>;
  private current: number | null = null;
  private phase: 'warmup' | 'detect' | 'changed' = 'warmup';
  private warm = { n: 0, mean: 0, m2: 0 };
  private mu = 0;
  private variance = 0;
  private window: number[] = [];
  private others: Map<number, number>[] = [];
  private streak = 0;
  private batches = 0;
  private calibrations = new Map<number, { mean: number; variance: number }>();

  constructor(opts: Partial<ShiftDetectorOptions> = {}) {
    this.options = Object.freeze(resolve(opts, 'ShiftDetector'));
  }

  /** The subnet whose AE errors are `current` (null before the first reset). */
  get currentSubnet(): number | null {
    return this.current;
  }

  /** Batches observed since the last reset. */
  get observed(): number {
    return this.batches;
  }

  /** Calibrated statistics of a subnet (the current one once warmed up), or undefined. */
  calibration(subnet: number): ShiftCalibration | undefined {
    if (subnet === this.current && this.phase !== 'warmup') return { mean: this.mu, std: Math.sqrt(this.variance) };
    const c = this.calibrations.get(subnet);
    return c ? { mean: c.mean, std: Math.sqrt(c.variance) } : undefined;
  }

  /** Drops a subnet's calibration (e.g. merged away). */
  forget(subnet: number): void {
    this.calibrations.delete(subnet);
  }

  /**
   * `subnet` is now current (the first subnet, or the one chosen after a report): keeps the previous current
   * subnet's calibration (if warmed up) and starts a warm-up.
   */
  reset(subnet: number): void {
    if (!Number.isInteger(subnet) || subnet < 0) throw new Error(`ShiftDetector.reset: subnet must be a non-negative integer, got ${subnet}`);
    if (this.current !== null && this.phase !== 'warmup') this.calibrations.set(this.current, { mean: this.mu, variance: this.variance });
    this.current = subnet;
    this.phase = 'warmup';
    this.warm = { n: 0, mean: 0, m2: 0 };
    this.mu = 0;
    this.variance = 0;
    this.window = [];
    this.others = [];
    this.streak = 0;
    this.batches = 0;
  }

  private std(mean: number, variance: number): number {
    return Math.max(Math.sqrt(variance), this.options.minRelStd * Math.abs(mean));
  }

  /** One batch (see the module doc). */
  observe(obs: ShiftObservation): ShiftDecision {
    const where = 'ShiftDetector.observe';
    if (this.current === null) throw new Error(`${where}: call reset(subnet) with the current subnet first`);
    if (this.phase === 'changed') throw new Error(`${where}: a change was reported; call reset(subnet) with the subnet now current first`);
    if (typeof obs !== 'object' || obs === null) throw new Error(`${where}: expected { current, others }`);
    const e = obs.current;
    if (typeof e !== 'number' || !Number.isFinite(e)) throw new Error(`${where}: current is ${e}, expected a finite number`);
    if (!(obs.others instanceof Map)) throw new Error(`${where}: others must be a Map of subnet → error`);
    const others = new Map<number, number>();
    for (const [s, v] of obs.others) {
      if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error(`${where}: others.get(${s}) is ${v}, expected a finite number`);
      if (s !== this.current) others.set(s, v);
    }
    if (obs.thresholds !== undefined && !(obs.thresholds instanceof Map)) throw new Error(`${where}: thresholds must be a Map of subnet → threshold`);
    const o = this.options;
    this.batches++;
    if (this.phase === 'warmup') {
      const w = this.warm;
      w.n++;
      const d = e - w.mean;
      w.mean += d / w.n;
      w.m2 += d * (e - w.mean);
      if (w.n === o.warmup) {
        this.mu = w.mean;
        this.variance = w.m2 / (w.n - 1);
        this.phase = 'detect';
      }
      return { kind: 'none' };
    }
    this.window.push(e);
    this.others.push(others);
    if (this.others.length > o.patience) this.others.shift();
    if (this.window.length > o.window) {
      const old = this.window.shift()!;
      if (this.streak === 0) {
        const a = 2 / (o.span + 1);
        const d = old - this.mu;
        this.mu += a * d;
        this.variance = (1 - a) * (this.variance + a * d * d);
      }
    }
    const n = this.window.length;
    const m = this.window.reduce((s, v) => s + v, 0) / n;
    const z = (m - this.mu) / (this.std(this.mu, this.variance) / Math.sqrt(n));
    if (z > o.z && m > o.minRatio * this.mu) this.streak++;
    else this.streak = 0;
    if (this.streak < o.patience) return { kind: 'none' };
    this.phase = 'changed';
    // which other subnet, if any, explains the reporting batches
    let best: { subnet: number; score: number } | null = null;
    const recent = this.others.slice(-o.patience);
    const candidates = new Set(recent.flatMap((r) => [...r.keys()]));
    for (const s of candidates) {
      if (!recent.every((r) => r.has(s))) continue;
      const mean = recent.reduce((a, r) => a + r.get(s)!, 0) / recent.length;
      let thr = obs.thresholds?.get(s);
      if (thr === undefined) {
        const c = this.calibrations.get(s);
        if (!c) continue;
        thr = Math.max(c.mean + (o.z * this.std(c.mean, c.variance)) / Math.sqrt(recent.length), o.minRatio * c.mean);
      }
      if (!(mean <= thr)) continue;
      const score = thr > 0 ? mean / thr : 0;
      if (!best || score < best.score) best = { subnet: s, score };
    }
    return best ? { kind: 'reenter', subnet: best.subnet } : { kind: 'new' };
  }

  toJSON(): ShiftDetectorJSON {
    return {
      format: 'moeclip.shift-detector',
      version: 1,
      options: { ...this.options },
      current: this.current,
      phase: this.phase,
      warm: { ...this.warm },
      mean: this.mu,
      variance: this.variance,
      window: [...this.window],
      others: this.others.map((m) => [...m]),
      streak: this.streak,
      batches: this.batches,
      calibrations: [...this.calibrations].map(([s, c]) => [s, c.mean, c.variance]),
    };
  }

  /** Parses {@link ShiftDetectorJSON}; errors name the field (prefixed by `where`). */
  static fromJSON(j: unknown, where = 'shift detector'): ShiftDetector {
    const fail = (field: string, msg: string): never => {
      throw new Error(`${where}.${field}: ${msg}`);
    };
    const fin = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
    const isInt = (v: unknown, min: number): v is number => typeof v === 'number' && Number.isInteger(v) && v >= min;
    if (typeof j !== 'object' || j === null) throw new Error(`${where}: expected an object`);
    const o = j as Partial<ShiftDetectorJSON>;
    if (o.format !== 'moeclip.shift-detector') fail('format', `expected 'moeclip.shift-detector', got ${JSON.stringify(o.format)}`);
    if (o.version !== 1) fail('version', `unsupported version ${JSON.stringify(o.version)}`);
    let d: ShiftDetector;
    try {
      d = new ShiftDetector(o.options as Partial<ShiftDetectorOptions>);
    } catch (e) {
      return fail('options', (e as Error).message);
    }
    if (!(o.current === null || isInt(o.current, 0))) fail('current', 'expected a subnet id or null');
    if (o.phase !== 'warmup' && o.phase !== 'detect' && o.phase !== 'changed') fail('phase', `expected 'warmup', 'detect' or 'changed', got ${JSON.stringify(o.phase)}`);
    const w = o.warm;
    if (typeof w !== 'object' || w === null || !isInt(w.n, 0) || w.n > d.options.warmup || !fin(w.mean) || !fin(w.m2) || w.m2 < 0) fail('warm', 'expected { n, mean, m2 } (n <= warmup, m2 >= 0)');
    if (!fin(o.mean)) fail('mean', 'expected a finite number');
    if (!fin(o.variance) || o.variance! < 0) fail('variance', 'expected a non-negative number');
    if (!Array.isArray(o.window) || o.window.length > d.options.window || !o.window.every(fin)) fail('window', `expected at most ${d.options.window} finite numbers`);
    if (!Array.isArray(o.others) || o.others.length > d.options.patience) fail('others', `expected at most ${d.options.patience} lists of [subnet, error]`);
    const others = o.others!.map((list, i) => {
      if (!Array.isArray(list) || !list.every((p) => Array.isArray(p) && isInt(p[0], 0) && fin(p[1]))) fail(`others[${i}]`, 'expected [subnet, error] pairs');
      return new Map(list);
    });
    if (!isInt(o.streak, 0)) fail('streak', 'expected a non-negative integer');
    if (!isInt(o.batches, 0)) fail('batches', 'expected a non-negative integer');
    if (!Array.isArray(o.calibrations) || !o.calibrations.every((c) => Array.isArray(c) && isInt(c[0], 0) && fin(c[1]) && fin(c[2]) && c[2] >= 0)) {
      fail('calibrations', 'expected [subnet, mean, variance] triples');
    }
    d.current = o.current!;
    d.phase = o.phase!;
    d.warm = { n: w!.n, mean: w!.mean, m2: w!.m2 };
    d.mu = o.mean!;
    d.variance = o.variance!;
    d.window = [...o.window!];
    d.others = others;
    d.streak = o.streak!;
    d.batches = o.batches!;
    d.calibrations = new Map(o.calibrations!.map(([s, mean, variance]) => [s, { mean, variance }]));
    return d;
  }
}

/** Options of {@link labelShift}. */
export interface LabelShiftOptions {
  /** A batch signals a change when at least this share of its samples carry labels the current subnet never trained on. */
  novelShare: number;
  /** ... and only while armed: the previous batch's share of such samples was at most this (the subnet has seen its classes). */
  armShare: number;
}

/**
 * Label novelty, the second change signal of task-free CM-MoE (training batches come with labels in online
 * continual learning). With `current` the labels the current subnet trained on and `share` the fraction of the
 * batch's samples whose label is not in it:
 * - `share ≥ novelShare` while armed (the previous batch's share was ≤ `armShare`: early batches of a segment
 *   still meet its classes for the first time, so they never count) reports a change at this very batch;
 * - the change re-enters the other subnet that trained on the largest share of the batch's samples when that
 *   share is ≥ `novelShare` (ties: the lower id), else it is new.
 * It cannot see a change that keeps the labels (a new domain of the same classes): the autoencoder statistic of
 * {@link ShiftDetector} covers those.
 */
export function labelShift(
  labels: ArrayLike<number>,
  current: ReadonlySet<number>,
  others: ReadonlyMap<number, ReadonlySet<number>>,
  previousShare: number | null,
  o: LabelShiftOptions,
): { decision: ShiftDecision; share: number } {
  const n = labels.length;
  if (n === 0) return { decision: { kind: 'none' }, share: 0 };
  const share = novelShare(labels, current);
  const armed = previousShare !== null && previousShare <= o.armShare;
  if (!armed || share < o.novelShare) return { decision: { kind: 'none' }, share };
  let best: { subnet: number; share: number } | null = null;
  for (const [s, set] of [...others].sort((a, b) => a[0] - b[0])) {
    const k = labelsIn(labels, set) / n;
    if (k >= o.novelShare && (!best || k > best.share)) best = { subnet: s, share: k };
  }
  return { decision: best ? { kind: 'reenter', subnet: best.subnet } : { kind: 'new' }, share };
}

/** How many of `labels` are in `set`. */
function labelsIn(labels: ArrayLike<number>, set: ReadonlySet<number>): number {
  let k = 0;
  for (let i = 0; i < labels.length; i++) if (set.has(labels[i]!)) k++;
  return k;
}

/** The share of `labels` not in `known` (0 for no labels): {@link labelShift}'s statistic. */
export function novelShare(labels: ArrayLike<number>, known: ReadonlySet<number>): number {
  return labels.length === 0 ? 0 : (labels.length - labelsIn(labels, known)) / labels.length;
}
