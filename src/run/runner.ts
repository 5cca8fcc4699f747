/**
 * The online continual-learning runner: one pass over a {@link Stream}, LifeLong-CLIP style.
 *
 * For each task, its training samples arrive in batches of `batchSize` (in stream order, never crossing a task
 * boundary). For each incoming batch:
 *   1. newly seen labels join `exposedClasses` (order of first appearance);
 *   2. prequential prediction on the batch (test transform) among the exposed classes — including this batch's
 *      labels, whose names arrive with the batch — BEFORE any training: the online accuracy;
 *   3. `steps` training steps (`onlineIter`; a fractional value accumulates by default, CLIB's credit rule,
 *      e.g. 0.5 → a step every second batch; `onlineIterRule: truncate` is Si-Blurry's ⌊onlineIter⌋); each step re-materialises the batch with the train transform (fresh
 *      augmentation) and concatenates `memoryBatchSize` replay samples drawn from the memory;
 *   4. the incoming samples are offered to the replay memory (reservoir by default);
 *   5. anytime evaluation when due (`anytimeCadence`: by default the reference's, once `samplesSeen` exceeds a
 *      threshold that then rises by `evalPeriod`; src/eval/protocol.ts), on the test samples of
 *      all exposed classes (domain streams: of the tasks seen so far), among the exposed classes.
 * At the end of each task (whether or not the method sees boundaries — these are the metrics' sampling
 * points): the pooled accuracy and per-class accuracies on the exposed classes' test samples (classified among
 * all exposed classes: the CIL / LifeLong-CLIP number), and the accuracy-matrix row A[t][j] for j ≤ t (all j
 * with `evalFutureTasks`). With `baseline`, every task is evaluated once before any training (b_i for FWT).
 *
 * Candidate classes for the matrix row (`evalCandidates`): `exposed` — the exposed classes plus task j's own
 * (class-incremental protocol); `task` — task j's classes only (task-incremental, the MTIL protocol).
 *
 * Checkpoints ({@link runStreamResumable}): after every batch (every `checkpoint.every` samples) and on a stop
 * request (after a batch or a task end) the runner hands a {@link RunnerSnapshot} — the next batch's position,
 * counters, step credit, metric log, timings and its four generators — to `checkpoint.save`; resuming from it
 * with the method and memory restored continues the run exactly.
 */
import { detectionsFromExtra, scoreBoundaries } from '../eval/boundaries.ts';
import type { Stream, StreamItem, StreamTask } from '../data/types.ts';
import type { ReplayMemory } from '../data/replay.ts';
import { materialize } from '../data/batch.ts';
import type { CostInfo, Method, ObserveContext, PredictContext, StreamView, TaskContext, TaskInfo } from '../methods/method.ts';
import type { AnytimePoint, ClassAccRow, MetricLog, OnlineTally, RunMetrics } from '../eval/metrics.ts';
import { computeMetrics } from '../eval/metrics.ts';
import { countCorrect, classTally } from '../eval/accuracy.ts';
import { Rng, type RngSnapshot } from '../util/rng.ts';
import type { RunEvent } from './events.ts';
import { EvalRound, dedupe, testsPerTask } from './evaluator.ts';
import { AnytimeSchedule, StepCredit, type AnytimeCadence, type OnlineIterRule } from '../eval/protocol.ts';

export interface RunnerOptions {
  /** Incoming stream samples per batch. */
  batchSize: number;
  /** Training steps per incoming batch (`online_iter`); see `onlineIterRule` for fractional values. */
  onlineIter: number;
  /** How a fractional `onlineIter` becomes steps (src/eval/protocol.ts): `accumulate` (CLIB) or `truncate` (Si-Blurry). */
  onlineIterRule: OnlineIterRule;
  /** Anytime evaluation every this many stream samples; 0 disables it. */
  evalPeriod: number;
  /** When an anytime point is due (src/eval/protocol.ts): `reference` (LifeLong-CLIP) or `multiples`. */
  anytimeCadence: AnytimeCadence;
  /** Test images per `predict` call. */
  evalBatchSize: number;
  /** Whether the method is told about task boundaries (`beginTask`/`endTask`). */
  taskBoundaries: boolean;
  /** Replay samples concatenated to each training step (0 = no replay in the steps). */
  memoryBatchSize: number;
  /** Fill the whole accuracy matrix (j > t too) for Transfer/FWT. */
  evalFutureTasks: boolean;
  /** Candidate classes for matrix entries: see the module comment. */
  evalCandidates: 'exposed' | 'task';
  /** Evaluate every task before any training (b_i for FWT). */
  baseline: boolean;
}

export const DEFAULT_RUNNER_OPTIONS: RunnerOptions = {
  batchSize: 16,
  onlineIter: 1,
  onlineIterRule: 'accumulate',
  evalPeriod: 1000,
  anytimeCadence: 'reference',
  evalBatchSize: 64,
  taskBoundaries: true,
  memoryBatchSize: 0,
  evalFutureTasks: false,
  evalCandidates: 'exposed',
  baseline: false,
};

export interface RunInput {
  stream: Stream;
  method: Method;
  /** The replay memory the runner fills (and the method may read); `null` for none. */
  memory: ReplayMemory | null;
  options?: Partial<RunnerOptions>;
  /** Seed or generator for replay sampling, augmentation and the method's context rng. */
  rng: Rng | number;
  onEvent?: (e: RunEvent) => void;
  /** Continue from a snapshot taken by this runner (same stream, options and rng; method and memory restored). */
  resume?: RunnerSnapshot;
  /**
   * Checkpoints: `save` receives the runner's snapshot every `every` stream samples (0 = only when stopping), at
   * the end of a batch; it must finish with the method's and the memory's state before it resolves.
   */
  checkpoint?: { every: number; save(snapshot: RunnerSnapshot): Promise<void> };
  /** Asked after every batch and task end; `true` stops the run there (after a checkpoint, when configured). */
  shouldStop?: () => boolean;
}

/**
 * Where a run stands between two batches, JSON-able: the next batch (task index, offset into its training
 * samples, whether the task has begun), the counters, the metric log so far, the runner's generators.
 */
export interface RunnerSnapshot {
  format: 'moeclip.runner-state';
  version: 1;
  task: number;
  offset: number;
  started: boolean;
  samplesSeen: number;
  batchIndex: number;
  exposed: number[];
  iterCredit: number;
  totalSteps: number;
  nextEval: number;
  nextCheckpoint: number;
  log: RunLog;
  timings: Record<string, number>;
  rngs: { data: RngSnapshot; memory: RngSnapshot; method: RngSnapshot; eval: RngSnapshot };
}

/** How a run ended: through the whole stream, or stopped at a checkpoint point. */
export type RunOutcome =
  | { kind: 'finished'; result: RunResult }
  | { kind: 'stopped'; samplesSeen: number; task: number; batches: number; checkpointed: boolean };

/** The raw data logged by a run (a mutable {@link MetricLog}). */
export interface RunLog extends MetricLog {
  anytime: AnytimePoint[];
  taskAcc: Array<number | null>;
  classAcc: ClassAccRow[];
  matrix: Array<Array<number | null>>;
  online: OnlineTally[];
  baseline: Array<number | null> | null;
}

export interface RunResult {
  log: RunLog;
  metrics: RunMetrics;
  /** Milliseconds per phase: `data`, `online_eval`, `train`, `memory`, `eval`, `begin_task`, `end_task`,
   *  `method:<name>` (reported by the method; contained in the phase that was running), `total`. */
  timings: Record<string, number>;
  samplesSeen: number;
  /** Incoming batches processed and training steps taken. */
  batches: number;
  steps: number;
  cost: CostInfo;
  options: RunnerOptions;
}

/** Validates runner options; throws naming the option. */
export function checkRunnerOptions(o: RunnerOptions): void {
  const posInt = (k: keyof RunnerOptions) => {
    const v = o[k];
    if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) throw new Error(`run.${k}: expected a positive integer, got ${String(v)}`);
  };
  posInt('batchSize');
  posInt('evalBatchSize');
  // the protocol classes validate onlineIter, onlineIterRule, evalPeriod and anytimeCadence (errors name them)
  new StepCredit(o.onlineIter, o.onlineIterRule);
  new AnytimeSchedule(o.evalPeriod, o.anytimeCadence);
  if (!Number.isInteger(o.memoryBatchSize) || o.memoryBatchSize < 0) {
    throw new Error(`run.memory.batchSize: expected an integer ≥ 0, got ${o.memoryBatchSize}`);
  }
}

function now(): number {
  return performance.now();
}

/** Runs `method` over one pass of `stream`; see the module comment for the protocol. */
export async function runStream(input: RunInput): Promise<RunResult> {
  const out = await runStreamResumable(input);
  if (out.kind !== 'finished') throw new Error(`the run stopped at ${out.samplesSeen} stream samples`);
  return out.result;
}

/** {@link runStream} with checkpoints, stop requests and resumption from a {@link RunnerSnapshot}. */
export async function runStreamResumable(input: RunInput): Promise<RunOutcome> {
  const options: RunnerOptions = { ...DEFAULT_RUNNER_OPTIONS, ...input.options };
  checkRunnerOptions(options);
  const { stream, method, memory } = input;
  const emit = input.onEvent ?? (() => {});
  const root = typeof input.rng === 'number' ? new Rng(input.rng) : input.rng;
  const dataRng = root.fork(); // augmentation of training batches
  const memRng = root.fork(); // replay sampling and reservoir updates
  const methodRng = root.fork(); // handed to the method in its contexts
  const evalRng = root.fork(); // test materialisation (deterministic transforms normally ignore it)

  const T = stream.tasks.length;
  const timings: Record<string, number> = {};
  const addTime = (k: string, ms: number) => (timings[k] = (timings[k] ?? 0) + ms);

  const exposed: number[] = [];
  const exposedSet = new Set<number>();
  let samplesSeen = 0;
  let batchIndex = 0;
  let currentTask = 0;

  const view: StreamView = {
    classNames: stream.classNames,
    templatesFor: (l) => stream.templatesFor(l),
    kind: stream.kind,
    materialize: (items, train, rng) => materialize(items, stream.tasks, train, rng),
  };
  const reportPhase = (name: string, ms: number) => {
    addTime(`method:${name}`, ms);
    emit({ type: 'phase', name, ms, task: currentTask, samplesSeen });
  };
  const predictCtx = (purpose: PredictContext['purpose']): PredictContext => ({
    ...view,
    exposedClasses: [...exposed],
    purpose,
    reportPhase,
  });
  const taskCtx = (): TaskContext => ({ ...view, rng: methodRng, memory, exposedClasses: [...exposed], samplesSeen, reportPhase });
  const taskInfo = (t: StreamTask): TaskInfo => ({ id: t.id, name: t.name, classes: t.classes, size: t.train.length, numTasks: T });

  const perTaskTest = testsPerTask(stream);
  /** Test items of the exposed classes: all tasks (deduplicated), or in domain streams the tasks seen so far. */
  const exposedTestItems = (): StreamItem[] => {
    const tasks = perTaskTest ? stream.tasks.slice(0, currentTask + 1) : stream.tasks;
    const all = tasks.flatMap((t) => t.test.filter((it) => exposedSet.has(it.label)));
    return dedupe(all, perTaskTest);
  };
  const candidatesFor = (j: number): number[] => {
    const own = stream.tasks[j]!.classes;
    if (options.evalCandidates === 'task') return [...own];
    return [...exposed, ...own.filter((c) => !exposedSet.has(c))];
  };

  const log: RunLog = {
    anytime: [],
    taskAcc: [],
    classAcc: [],
    matrix: Array.from({ length: T }, () => Array<number | null>(T).fill(null)),
    online: [],
    baseline: null,
  };

  let credit = new StepCredit(options.onlineIter, options.onlineIterRule);
  let totalSteps = 0;
  let schedule = new AnytimeSchedule(options.evalPeriod, options.anytimeCadence);
  const every = input.checkpoint?.every ?? 0;
  if (!Number.isInteger(every) || every < 0) throw new Error(`checkpoint.every: expected an integer ≥ 0, got ${every}`);
  let nextCheckpoint = every;
  let elapsedBefore = 0;

  const start = input.resume;
  if (start) {
    checkSnapshot(start, stream);
    for (const y of start.exposed) {
      exposedSet.add(y);
      exposed.push(y);
    }
    samplesSeen = start.samplesSeen;
    batchIndex = start.batchIndex;
    credit = new StepCredit(options.onlineIter, options.onlineIterRule, start.iterCredit);
    totalSteps = start.totalSteps;
    schedule = new AnytimeSchedule(options.evalPeriod, options.anytimeCadence, start.nextEval);
    nextCheckpoint = start.nextCheckpoint;
    Object.assign(log, structuredClone(start.log));
    Object.assign(timings, start.timings);
    elapsedBefore = start.timings['total'] ?? 0;
    dataRng.restore(start.rngs.data, 'runner state.rngs.data');
    memRng.restore(start.rngs.memory, 'runner state.rngs.memory');
    methodRng.restore(start.rngs.method, 'runner state.rngs.method');
    evalRng.restore(start.rngs.eval, 'runner state.rngs.eval');
  } else {
    emit({
      type: 'run_start',
      kind: stream.kind,
      tasks: T,
      trainSamples: stream.tasks.reduce((s, t) => s + t.train.length, 0),
      classes: stream.classNames.length,
      taskBoundaries: options.taskBoundaries,
    });
  }
  const tStart = now();
  /** The method's parameter counts now (after a task end, a merge, an anytime point) and the process RSS. */
  const emitCost = (task: number) => {
    const c = method.describeCost();
    emit({ type: 'cost', task, samplesSeen, trainableParams: c.trainableParams, totalParams: c.totalParams, extra: { ...(c.extra ?? {}) }, rssMB: Math.round(process.memoryUsage.rss() / 2 ** 20) });
  };
  if (!start) emitCost(0);

  const snapshot = (pos: { task: number; offset: number; started: boolean }): RunnerSnapshot => ({
    format: 'moeclip.runner-state',
    version: 1,
    ...pos,
    samplesSeen,
    batchIndex,
    exposed: [...exposed],
    iterCredit: credit.credit,
    totalSteps,
    nextEval: schedule.threshold,
    nextCheckpoint,
    log: structuredClone(log),
    timings: { ...timings, total: elapsedBefore + (now() - tStart) },
    rngs: { data: dataRng.snapshot(), memory: memRng.snapshot(), method: methodRng.snapshot(), eval: evalRng.snapshot() },
  });
  /** A checkpoint when due, then a stop when asked for: the outcome to return, or null to go on. */
  const pause = async (pos: { task: number; offset: number; started: boolean }, due: boolean): Promise<RunOutcome | null> => {
    let saved = false;
    if (due && every > 0 && samplesSeen >= nextCheckpoint && input.checkpoint) {
      nextCheckpoint = (Math.floor(samplesSeen / every) + 1) * every;
      await input.checkpoint.save(snapshot(pos));
      saved = true;
    }
    if (!input.shouldStop?.()) return null;
    if (!saved && input.checkpoint) await input.checkpoint.save(snapshot(pos));
    return { kind: 'stopped', samplesSeen, task: pos.task, batches: batchIndex, checkpointed: input.checkpoint !== undefined };
  };

  if (options.baseline && !start) {
    const t0 = now();
    const round = new EvalRound(stream, method, options.evalBatchSize, evalRng, predictCtx('baseline'));
    const accs: Array<number | null> = [];
    for (let j = 0; j < T; j++) {
      const items = stream.tasks[j]!.test;
      if (items.length === 0) {
        accs.push(null);
        continue;
      }
      const preds = await round.predict(items, candidatesFor(j));
      accs.push(countCorrect(preds, items.map((i) => i.label)) / items.length);
    }
    log.baseline = accs;
    addTime('eval', now() - t0);
    emit({ type: 'baseline', accuracies: accs });
  }

  for (let t = start ? start.task : 0; t < T; t++) {
    currentTask = t;
    const task = stream.tasks[t]!;
    const info = taskInfo(task);
    const resumed = start !== undefined && t === start.task && start.started;
    if (!resumed) {
      emit({ type: 'task_start', task: t, name: task.name, size: task.train.length, classes: [...task.classes] });
      if (options.taskBoundaries && method.beginTask) {
        const t0 = now();
        await method.beginTask(info, taskCtx());
        const ms = now() - t0;
        addTime('begin_task', ms);
        emit({ type: 'phase', name: 'begin_task', ms, task: t, samplesSeen });
      }
    }

    for (let s = start !== undefined && t === start.task ? start.offset : 0; s < task.train.length; s += options.batchSize) {
      const items = task.train.slice(s, s + options.batchSize);
      const labels = Int32Array.from(items, (i) => i.label);
      const newClasses: number[] = [];
      for (const y of labels) {
        if (!exposedSet.has(y)) {
          exposedSet.add(y);
          exposed.push(y);
          newClasses.push(y);
        }
      }

      // prequential: predict before training
      const tBatch = now();
      let t0 = tBatch;
      const testImages = materialize(items, stream.tasks, false, evalRng);
      const preds = await method.predict(testImages, [...exposed], predictCtx('online'));
      if (preds.length !== items.length) {
        throw new Error(`method '${method.name}' returned ${preds.length} predictions for ${items.length} images`);
      }
      const correct = countCorrect(preds, labels);
      log.online.push({ correct, total: items.length });
      addTime('online_eval', now() - t0);

      // training steps
      const steps = credit.next();
      totalSteps += steps;
      const exposedNow: readonly number[] = [...exposed];
      const replayCounts: number[] = [];
      const losses: number[] = [];
      let lastInfo: Record<string, number | string | boolean> | undefined;
      for (let step = 0; step < steps; step++) {
        t0 = now();
        let replay: StreamItem[] = [];
        if (memory && options.memoryBatchSize > 0 && memory.size > 0) {
          replay = memory.sample(Math.min(options.memoryBatchSize, memory.size), memRng);
        }
        addTime('memory', now() - t0);
        replayCounts.push(replay.length);

        t0 = now();
        const all = replay.length > 0 ? items.concat(replay) : items;
        const images = materialize(all, stream.tasks, true, dataRng);
        addTime('data', now() - t0);

        t0 = now();
        const ctx: ObserveContext = {
          ...view,
          rng: methodRng,
          memory,
          step,
          stepsThisBatch: steps,
          exposedClasses: exposedNow,
          samplesSeen,
          batchIndex,
          task: options.taskBoundaries ? info : null,
          reportPhase,
        };
        const r = await method.observe({ images, labels: Int32Array.from(all, (i) => i.label), items: all, numIncoming: items.length }, ctx);
        addTime('train', now() - t0);
        if (r && typeof r.loss === 'number') losses.push(r.loss);
        if (r && r.info) lastInfo = r.info;
      }

      // memory update after the steps
      if (memory) {
        t0 = now();
        for (const it of items) memory.add(it, memRng);
        addTime('memory', now() - t0);
      }
      samplesSeen += items.length;
      emit({
        type: 'batch',
        ms: now() - tBatch,
        task: t,
        batch: batchIndex,
        n: items.length,
        correct,
        samplesSeen,
        steps,
        replay: replayCounts,
        newClasses,
        ...(losses.length > 0 ? { loss: losses.reduce((a, b) => a + b, 0) / losses.length } : {}),
        ...(lastInfo ? { info: lastInfo } : {}),
      });
      batchIndex++;

      // anytime evaluation
      if (schedule.due(samplesSeen)) {
        t0 = now();
        const test = exposedTestItems();
        if (test.length > 0) {
          const round = new EvalRound(stream, method, options.evalBatchSize, evalRng, predictCtx('anytime'));
          const p = await round.predict(test, [...exposed]);
          const acc = countCorrect(p, test.map((i) => i.label)) / test.length;
          log.anytime.push({ samplesSeen, accuracy: acc });
          emit({ type: 'eval', samplesSeen, accuracy: acc, n: test.length, exposed: exposed.length });
        }
        addTime('eval', now() - t0);
        emitCost(t);
      }

      const stop = await pause({ task: t, offset: s + options.batchSize, started: true }, true);
      if (stop) return stop;
    }

    if (options.taskBoundaries && method.endTask) {
      const t0 = now();
      await method.endTask(info, taskCtx());
      const ms = now() - t0;
      addTime('end_task', ms);
      emit({ type: 'phase', name: 'end_task', ms, task: t, samplesSeen });
    }

    // end-of-task evaluation
    const t0 = now();
    const round = new EvalRound(stream, method, options.evalBatchSize, evalRng, predictCtx('task_end'));
    const test = exposedTestItems();
    let pooled: number | null = null;
    const classAcc: Record<string, number> = {};
    if (test.length > 0) {
      const y = test.map((i) => i.label);
      const p = await round.predict(test, [...exposed]);
      pooled = countCorrect(p, y) / test.length;
      const tally = classTally(p, y);
      for (const c of [...tally.total.keys()].sort((a, b) => a - b)) classAcc[c] = (tally.correct.get(c) ?? 0) / tally.total.get(c)!;
    }
    const row = log.matrix[t]!;
    const lastJ = options.evalFutureTasks ? T - 1 : t;
    for (let j = 0; j <= lastJ; j++) {
      const items = stream.tasks[j]!.test;
      if (items.length === 0) continue;
      const p = await round.predict(items, candidatesFor(j));
      row[j] = countCorrect(p, items.map((i) => i.label)) / items.length;
    }
    log.taskAcc.push(pooled);
    log.classAcc.push(classAcc);
    addTime('eval', now() - t0);
    emit({ type: 'task_end', task: t, samplesSeen, accuracy: pooled, n: test.length, row: [...row], classAcc });
    emitCost(t);
    if (t + 1 < T) {
      const stop = await pause({ task: t + 1, offset: 0, started: false }, false);
      if (stop) return stop;
    }
  }

  timings['total'] = elapsedBefore + (now() - tStart);
  const metrics = computeMetrics(log);
  emit({ type: 'run_end', samplesSeen, metrics, timings: { ...timings } });
  return { kind: 'finished', result: { log, metrics, timings, samplesSeen, batches: batchIndex, steps: totalSteps, cost: withBoundaryScore(method.describeCost(), stream, options), options } };
}

/** Checks that a snapshot fits the stream (format, task index, offset); errors name the field. */
function checkSnapshot(s: RunnerSnapshot, stream: Stream): void {
  const where = 'runner state';
  if (typeof s !== 'object' || s === null || s.format !== 'moeclip.runner-state') throw new Error(`${where}.format: expected 'moeclip.runner-state'`);
  if (s.version !== 1) throw new Error(`${where}.version: unsupported version ${JSON.stringify(s.version)}`);
  const T = stream.tasks.length;
  if (!Number.isInteger(s.task) || s.task < 0 || s.task >= T) throw new Error(`${where}.task: ${s.task} is not a task of this stream (${T} tasks)`);
  if (!Number.isInteger(s.offset) || s.offset < 0 || (!s.started && s.offset !== 0)) throw new Error(`${where}.offset: ${s.offset} does not start a batch of task ${s.task}`);
  if (!Array.isArray(s.log?.matrix) || s.log.matrix.length !== T) throw new Error(`${where}.log.matrix: expected ${T} rows (the stream has ${T} tasks)`);
}

/**
 * Task-free runs of a method that reports its detections (`detectedAt:<k>` in its cost extras): the score against
 * the true task boundaries (src/eval/boundaries.ts) joins the extras as `boundaries`, `boundariesFound`,
 * `boundariesMissed`, `falseBoundaries`, `boundaryDelayBatches` (mean over the found ones) and
 * `boundaryDelay:<k>` (samples, per found boundary).
 */
function withBoundaryScore(cost: CostInfo, stream: Stream, options: RunnerOptions): CostInfo {
  if (options.taskBoundaries) return cost;
  const detected = detectionsFromExtra(cost.extra);
  if (detected === null) return cost;
  const starts: number[] = [];
  let at = 0;
  stream.tasks.forEach((t, i) => {
    if (i > 0) starts.push(at);
    at += t.train.length;
  });
  const sc = scoreBoundaries(starts, detected);
  const extra: Record<string, number> = { ...(cost.extra ?? {}), boundaries: sc.boundaries, boundariesFound: sc.found, boundariesMissed: sc.missed, falseBoundaries: sc.falseDetections };
  if (sc.found > 0) extra['boundaryDelayBatches'] = sc.delays.reduce((a, b) => a + b, 0) / sc.found / options.batchSize;
  sc.delays.forEach((d, k) => (extra[`boundaryDelay:${k}`] = d));
  return { ...cost, extra };
}
