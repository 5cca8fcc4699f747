/**
 * Learning-rate schedules as pure functions of the 0-based optimizer step index `t` (the step about to run; the
 * scheduler is applied before each step, as in MoE-Adapters). The value is the `lr` fed to the training graph.
 */

/** lr as a function of the 0-based step index. */
export type LrSchedule = (t: number) => number;

/** A schedule as plain data (for configs and run records). */
export type ScheduleSpec =
  | { kind: 'constant'; lr: number }
  | { kind: 'warmup-cosine'; lr: number; warmupSteps: number; totalSteps: number; floor?: number }
  | { kind: 'step'; lr: number; stepSize: number; gamma: number }
  | { kind: 'multistep'; lr: number; milestones: number[]; gamma: number };

function checkFinite(x: unknown, what: string): number {
  if (typeof x !== 'number' || !Number.isFinite(x)) throw new Error(`schedule: ${what} must be a finite number, got ${JSON.stringify(x)}`);
  return x;
}

function checkCount(x: unknown, what: string, min: number): number {
  if (typeof x !== 'number' || !Number.isInteger(x) || x < min) {
    throw new Error(`schedule: ${what} must be an integer >= ${min}, got ${JSON.stringify(x)}`);
  }
  return x;
}

function checkStep(t: number): void {
  if (!Number.isInteger(t) || t < 0) throw new Error(`schedule: step index must be a non-negative integer, got ${t}`);
}

/** `lr` at every step. */
export function constantLr(lr: number): LrSchedule {
  checkFinite(lr, 'lr');
  return (t) => {
    checkStep(t);
    return lr;
  };
}

/**
 * Linear warmup then cosine decay to `floor` (default 0), the MoE-Adapters / open_clip `cosine_lr` form:
 * - `t < W`:  `lr · (t + 1) / W`
 * - `t ≥ W`:  with `e = t − W`, `es = T − W`: `floor + ½ (1 + cos(π e / es)) (lr − floor)`; `floor` once `e ≥ es`.
 * With `floor = 0` this is exactly `0.5 · (1 + cos(π e / es)) · lr`; the reference runs `T + 1` steps, the last
 * one (`e = es`) at lr 0. `W = 0` starts the cosine at step 0.
 */
export function warmupCosineLr(opts: { lr: number; warmupSteps: number; totalSteps: number; floor?: number }): LrSchedule {
  const lr = checkFinite(opts.lr, 'lr');
  const W = checkCount(opts.warmupSteps, 'warmupSteps', 0);
  const T = checkCount(opts.totalSteps, 'totalSteps', W);
  const floor = checkFinite(opts.floor ?? 0, 'floor');
  const es = T - W;
  return (t) => {
    checkStep(t);
    if (t < W) return (lr * (t + 1)) / W;
    const e = t - W;
    if (e >= es) return floor;
    return floor + 0.5 * (1 + Math.cos((Math.PI * e) / es)) * (lr - floor);
  };
}

/** Step decay: `lr · gamma^⌊t / stepSize⌋`. */
export function stepDecayLr(opts: { lr: number; stepSize: number; gamma: number }): LrSchedule {
  const lr = checkFinite(opts.lr, 'lr');
  const stepSize = checkCount(opts.stepSize, 'stepSize', 1);
  const gamma = checkFinite(opts.gamma, 'gamma');
  return (t) => {
    checkStep(t);
    return lr * gamma ** Math.floor(t / stepSize);
  };
}

/** Multi-step decay: `lr · gamma^k` where k is the number of milestones `≤ t`. Milestones must increase. */
export function multiStepLr(opts: { lr: number; milestones: readonly number[]; gamma: number }): LrSchedule {
  const lr = checkFinite(opts.lr, 'lr');
  const gamma = checkFinite(opts.gamma, 'gamma');
  const ms = [...opts.milestones];
  ms.forEach((m, i) => {
    checkCount(m, `milestones[${i}]`, 0);
    if (i > 0 && m <= ms[i - 1]!) throw new Error(`schedule: milestones must be strictly increasing, got [${ms.join(', ')}]`);
  });
  return (t) => {
    checkStep(t);
    let k = 0;
    while (k < ms.length && ms[k]! <= t) k++;
    return lr * gamma ** k;
  };
}

/** Builds a schedule from its plain-data description, validating every field. */
export function makeSchedule(spec: ScheduleSpec): LrSchedule {
  switch (spec.kind) {
    case 'constant':
      return constantLr(spec.lr);
    case 'warmup-cosine':
      return warmupCosineLr(spec);
    case 'step':
      return stepDecayLr(spec);
    case 'multistep':
      return multiStepLr(spec);
    default:
      throw new Error(`schedule: unknown kind ${JSON.stringify((spec as { kind?: unknown }).kind)} (expected constant, warmup-cosine, step, multistep)`);
  }
}
