/**
 * Typed events the runner emits through its callback (it never prints). The CLI turns them into progress
 * lines; the run folder stores them, one JSON object per line, in `events.jsonl`.
 */
import type { RunMetrics } from '../eval/metrics.ts';

export interface RunStartEvent {
  type: 'run_start';
  kind: string;
  tasks: number;
  /** Training samples in the whole stream. */
  trainSamples: number;
  classes: number;
  taskBoundaries: boolean;
}

export interface TaskStartEvent {
  type: 'task_start';
  task: number;
  name: string;
  size: number;
  classes: number[];
}

/** One incoming batch: prequential result (predicted before training) and the training steps done on it. */
export interface BatchEvent {
  type: 'batch';
  task: number;
  /** Batch index across the stream. */
  batch: number;
  n: number;
  /** Incoming samples predicted correctly before training on them. */
  correct: number;
  /** Stream samples seen after this batch. */
  samplesSeen: number;
  /** Number of training steps on this batch (`onlineIter`). */
  steps: number;
  /** Replay samples concatenated at each step. */
  replay: number[];
  /** Classes exposed for the first time by this batch. */
  newClasses: number[];
  /** Mean loss over the steps, when the method reports one. */
  loss?: number;
  /** Wall time of the batch: prequential prediction, training steps, memory update (ms). */
  ms: number;
  info?: Record<string, number | string | boolean>;
}

/** Anytime evaluation on the test samples of all exposed classes. */
export interface EvalEvent {
  type: 'eval';
  samplesSeen: number;
  accuracy: number;
  /** Test samples evaluated. */
  n: number;
  exposed: number;
}

/** Accuracy of the untrained model on every task (b_i, for FWT). */
export interface BaselineEvent {
  type: 'baseline';
  accuracies: Array<number | null>;
}

/** End-of-task evaluation: the accuracy-matrix row and the per-class accuracies on exposed classes. */
export interface TaskEndEvent {
  type: 'task_end';
  task: number;
  samplesSeen: number;
  /** Sample-pooled accuracy on the test samples of all exposed classes (null if there are none). */
  accuracy: number | null;
  n: number;
  /** A[task][j] for every task j (null = not evaluated). */
  row: Array<number | null>;
  /** Global label → accuracy, for every exposed class with test samples. */
  classAcc: Record<string, number>;
}

/** Time spent in a notable phase: task hooks, and phases a method reports (merges, fine-tunes: the spikes). */
export interface PhaseEvent {
  type: 'phase';
  name: string;
  ms: number;
  task: number;
  samplesSeen: number;
}

/**
 * The method's parameter counts (cost.json's fields) at the start, after every anytime point and every task end,
 * with the process's resident set size: parameters, experts per block and memory over the stream.
 */
export interface CostEvent {
  type: 'cost';
  task: number;
  samplesSeen: number;
  trainableParams: number;
  totalParams: number;
  extra: Record<string, number>;
  /** Resident set size of the process, MiB (not reproducible: differs between runs). */
  rssMB: number;
}

export interface RunEndEvent {
  type: 'run_end';
  samplesSeen: number;
  metrics: RunMetrics;
  /** Milliseconds per phase. */
  timings: Record<string, number>;
}

export type RunEvent =
  | RunStartEvent
  | TaskStartEvent
  | BatchEvent
  | EvalEvent
  | BaselineEvent
  | TaskEndEvent
  | PhaseEvent
  | CostEvent
  | RunEndEvent;

/** A run continues from a checkpoint (told to `onEvent` only; not written to events.jsonl). */
export interface ResumeEvent {
  type: 'resume';
  samplesSeen: number;
  /** Training samples in the whole stream. */
  trainSamples: number;
  task: number;
  tasks: number;
}

/** A checkpoint was written (told to `onEvent` only; not written to events.jsonl). */
export interface CheckpointEvent {
  type: 'checkpoint';
  samplesSeen: number;
  path: string;
}

/** Events about the run's bookkeeping rather than the stream. */
export type RunControlEvent = ResumeEvent | CheckpointEvent;
