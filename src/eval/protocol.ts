/**
 * Two rules of the online protocol that decide which numbers a run logs, kept apart from the runner so they can
 * be checked by hand: when the anytime-accuracy curve gets a point ({@link AnytimeSchedule}) and how many
 * training steps an incoming batch gets for a fractional `onlineIter` ({@link StepCredit}). Both are small state
 * machines with plain-number state, for checkpoints.
 */

/**
 * `reference`: LifeLong-CLIP / Si-Blurry (`methods/_trainer.py`): after a batch, evaluate when the samples seen
 * exceed the threshold strictly (`samples_cnt > num_eval`), then raise the threshold by one period
 * (`num_eval += eval_period`), so a batch gives at most one point and a threshold that falls behind (batches
 * larger than the period) stays behind.
 * `multiples`: this project's former rule: evaluate when the samples seen reach the threshold (`>=`), then move it
 * to the first multiple of the period above the samples seen. It adds a point at every exact multiple, e.g. a
 * final point at the end of a stream whose length is a multiple of the period.
 */
export type AnytimeCadence = 'reference' | 'multiples';

export const ANYTIME_CADENCES: readonly AnytimeCadence[] = ['reference', 'multiples'];

/** When the anytime curve gets a point; ask {@link due} after every incoming batch. */
export class AnytimeSchedule {
  private nextAt: number;

  /**
   * @param period evaluate every this many stream samples (0: never)
   * @param cadence see {@link AnytimeCadence}
   * @param threshold the current threshold, to continue a schedule (default: `period`)
   */
  constructor(
    readonly period: number,
    readonly cadence: AnytimeCadence = 'reference',
    threshold?: number,
  ) {
    if (!Number.isInteger(period) || period < 0) throw new Error(`run.evalPeriod: expected an integer ≥ 0, got ${period}`);
    if (!ANYTIME_CADENCES.includes(cadence)) {
      throw new Error(`run.anytimeCadence: expected one of ${ANYTIME_CADENCES.join(', ')}, got '${String(cadence)}'`);
    }
    this.nextAt = threshold ?? period;
  }

  /** The samples-seen threshold of the next point. */
  get threshold(): number {
    return this.nextAt;
  }

  /**
   * Whether a point is due after a batch that brought the stream to `samplesSeen` samples; when it is, the
   * threshold moves on (the caller evaluates).
   */
  due(samplesSeen: number): boolean {
    if (this.period === 0) return false;
    if (this.cadence === 'reference') {
      if (!(samplesSeen > this.nextAt)) return false;
      this.nextAt += this.period;
      return true;
    }
    if (samplesSeen < this.nextAt) return false;
    this.nextAt = (Math.floor(samplesSeen / this.period) + 1) * this.period;
    return true;
  }
}

/**
 * `accumulate`: the fractional part of `onlineIter` carries over between batches: credit += onlineIter,
 * steps = ⌊credit⌋, credit −= steps (0.5 → a step every second batch; 1.5 → 1, 2, 1, 2, …). This is CLIB's
 * `num_updates` rule (Koh et al., ICLR 2022: `num_updates += online_iter`, train `int(num_updates)` steps,
 * `num_updates -= int(num_updates)`), with the credit added once per incoming batch where CLIB adds it once per
 * incoming sample.
 * `truncate`: ⌊onlineIter⌋ steps for every batch, LifeLong-CLIP / Si-Blurry's exact behaviour
 * (`for _ in range(int(online_iter))`); an `onlineIter` below 1 then never trains.
 */
export type OnlineIterRule = 'accumulate' | 'truncate';

export const ONLINE_ITER_RULES: readonly OnlineIterRule[] = ['accumulate', 'truncate'];

/** Training steps per incoming batch for a possibly fractional `onlineIter`. */
export class StepCredit {
  private carried: number;

  /**
   * @param onlineIter training steps per incoming batch (> 0)
   * @param rule see {@link OnlineIterRule}
   * @param credit the fraction carried over so far, to continue a run (default 0)
   */
  constructor(
    readonly onlineIter: number,
    readonly rule: OnlineIterRule = 'accumulate',
    credit = 0,
  ) {
    if (!(onlineIter > 0) || !Number.isFinite(onlineIter)) throw new Error(`run.onlineIter: expected a positive number, got ${onlineIter}`);
    if (!ONLINE_ITER_RULES.includes(rule)) {
      throw new Error(`run.onlineIterRule: expected one of ${ONLINE_ITER_RULES.join(', ')}, got '${String(rule)}'`);
    }
    this.carried = credit;
  }

  /** The fraction carried over to the next batch (always 0 with `truncate`). */
  get credit(): number {
    return this.carried;
  }

  /** The number of training steps for the next incoming batch. */
  next(): number {
    if (this.rule === 'truncate') return Math.floor(this.onlineIter);
    this.carried += this.onlineIter;
    // the tolerance keeps sums like 0.1 + 0.1 + … (ten times) from falling just short of a whole step
    const steps = Math.floor(this.carried + 1e-9);
    this.carried -= steps;
    return steps;
  }
}
