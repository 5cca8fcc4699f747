/**
 * The trained learner a finished run leaves in `RUN_DIR/final/` (layout: src/learner/format.ts, docs/learner.md),
 * when its method can save its state: the method state, `learner.json` and `predictions.csv`.
 *
 * predictions.csv is the run's final pooled evaluation — the test samples of every exposed class, each once,
 * classified among the exposed classes, in the runner's order and chunks of `run.evalBatchSize` — predicted
 * again, with probabilities and routes, by the run's own method right after the run (its state is the one of the
 * last end-of-task evaluation: nothing changes it after that), with the same `task_end` context.
 */
import { realpathSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { writeDirAtomic, writeFileAtomic, writeJsonAtomic } from '../io/atomic.ts';
import type { LoadedConfig } from '../config/load.ts';
import { materialize } from '../data/batch.ts';
import type { Stream, StreamItem } from '../data/types.ts';
import type { Method, PredictContext } from '../methods/method.ts';
import { canSaveState, writeMethodState } from '../methods/state.ts';
import { formatTableCsv } from '../report/csv.ts';
import { Rng } from '../util/rng.ts';
import { LEARNER_FILE, modelRef, PREDICTIONS_FILE, PREDICTIONS_HEADER, STATE_BASE, templateTable, type LearnerInfo } from '../learner/format.ts';
import { predictDetailed, probOfLabel } from '../learner/predict.ts';
import { dedupe, testsPerTask } from './evaluator.ts';

/** The folder of the final learner inside a run folder. */
export const FINAL_DIR = 'final';

export interface FinalInput {
  /** The finished run's folder. */
  outDir: string;
  method: Method;
  stream: Stream;
  /** The run's config (method name and options, base folder of relative paths, run name, seed). */
  loaded: LoadedConfig;
  /** Test images per predict call of the run (`run.evalBatchSize`). */
  evalBatchSize: number;
}

/**
 * The final evaluation of a finished run over `stream`: the classes exposed (order of first appearance in the
 * training stream, as the runner exposes them) and the test items of the pooled end-of-task evaluation.
 */
export function finalEvaluation(stream: Stream): { exposed: number[]; items: StreamItem[] } {
  const exposed: number[] = [];
  const seen = new Set<number>();
  for (const t of stream.tasks) {
    for (const it of t.train) {
      if (!seen.has(it.label)) {
        seen.add(it.label);
        exposed.push(it.label);
      }
    }
  }
  const items = dedupe(stream.tasks.flatMap((t) => t.test.filter((it) => seen.has(it.label))), testsPerTask(stream));
  return { exposed, items };
}

/** The absolute model folder of a method's `model` option (relative to the config's folder), or null. */
export function methodModelDir(options: Record<string, unknown>, baseDir: string): string | null {
  const m = options['model'];
  if (typeof m !== 'string') return null;
  return realpathSync(isAbsolute(m) ? m : resolve(baseDir, m));
}

/**
 * Writes `outDir/final/` (atomically) when the method can save its state; returns the folder, or null for a
 * method without state.
 */
export async function writeFinal(input: FinalInput): Promise<string | null> {
  const { outDir, method, stream, loaded, evalBatchSize } = input;
  if (!canSaveState(method)) return null;
  const state = await method.saveState({
    memory: null,
    resolveItem: () => {
      throw new Error(`${method.name}: the final state may not refer to stream samples`);
    },
  });
  const { exposed, items } = finalEvaluation(stream);
  const ctx: PredictContext = {
    classNames: stream.classNames,
    templatesFor: (l) => stream.templatesFor(l),
    kind: stream.kind,
    materialize: (its, train, rng) => materialize(its, stream.tasks, train, rng),
    exposedClasses: [...exposed],
    purpose: 'task_end',
    reportPhase: () => {},
  };
  const rows: Array<Array<number | null>> = [];
  const rng = new Rng(0); // test transforms are deterministic (they draw from per-item generators)
  for (let a = 0; a < items.length; a += evalBatchSize) {
    const chunk = items.slice(a, a + evalBatchSize);
    const d = await predictDetailed(method, materialize(chunk, stream.tasks, false, rng), [...exposed], ctx);
    chunk.forEach((it, i) => rows.push([a + i, it.task, it.index, it.label, d.labels[i]!, probOfLabel(d, i, exposed), d.routes ? d.routes[i]! : null]));
  }
  const options = { ...loaded.methodOptions };
  const modelDir = methodModelDir(options, loaded.baseDir);
  if (modelDir !== null) options['model'] = modelDir;
  const info: LearnerInfo = {
    format: 'moeclip.learner',
    version: 1,
    createdAt: new Date().toISOString(),
    method: { name: loaded.config.method.name, options },
    model: modelDir !== null ? modelRef(modelDir) : null,
    backbone: null,
    classNames: [...stream.classNames],
    templates: templateTable(stream.classNames.length, (l) => stream.templatesFor(l)),
    candidates: exposed,
    streamKind: stream.kind,
    evalBatchSize,
    run: { dir: resolve(outDir), name: loaded.runName, seed: loaded.config.seed, samplesSeen: stream.tasks.reduce((n, t) => n + t.train.length, 0), tasks: stream.tasks.length },
  };
  const dir = join(outDir, FINAL_DIR);
  writeDirAtomic(dir, (tmp) => {
    writeMethodState(tmp, STATE_BASE, state);
    writeFileAtomic(join(tmp, PREDICTIONS_FILE), formatTableCsv(PREDICTIONS_HEADER, rows));
    writeJsonAtomic(join(tmp, LEARNER_FILE), info);
  });
  return dir;
}
