/**
 * Learner tests: a tiny random CLIP, MNIST-layout files of bar images (test/run/fixtures.ts) and a short
 * class-incremental stream, a run through `runExperiment` (1 thread) that leaves `final/`, and the check that a
 * learner folder predicts the run's final evaluation (final/predictions.csv) on the test images.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tinyClipConfig } from '../../src/clip/config.ts';
import { writeRandomClip } from '../../src/clip/random.ts';
import { loadConfig } from '../../src/config/load.ts';
import { materialize } from '../../src/data/batch.ts';
import { buildStream } from '../../src/data/streams.ts';
import type { Image, Stream } from '../../src/data/types.ts';
import type { Learner } from '../../src/learner/load.ts';
import { parseTableCsv } from '../../src/report/csv.ts';
import { runExperiment, type ExperimentResult } from '../../src/run/experiment.ts';
import { finalEvaluation } from '../../src/run/final.ts';
import { Rng } from '../../src/util/rng.ts';
import { digitStreamYaml, tempMnistRoot } from '../run/fixtures.ts';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
export const BPE = join(REPO, '../shared/clip/bpe_simple_vocab_16e6.txt.gz');

/** A temp folder with `model/` (tiny random CLIP) and `data/` (MNIST idx: 8 train and 3 test images per digit). */
export function makeRoot(tag: string): string {
  const root = tempMnistRoot(`moeclip-learner-${tag}-`, 8, { cleanup: false });
  writeRandomClip(join(root, 'model'), tinyClipConfig(), { layout: 'hf', seed: 3, bpePath: BPE, perturbStd: 0.1 });
  return root;
}

/** Writes `root/<name>.yaml`: a class-incremental stream of `tasks` tasks of 2 digits, and the method block lines. */
export function writeConfig(root: string, name: string, tasks: number, method: string[], seed = 2): string {
  const file = join(root, `${name}.yaml`);
  writeFileSync(
    file,
    [
      `seed: ${seed}`,
      ...digitStreamYaml(tasks, 5),
      'method:',
      ...method.map((l) => `  ${l}`),
      '',
    ].join('\n'),
  );
  return file;
}

/** Runs a config into `outDir` on one thread. */
export async function runConfig(file: string, outDir: string): Promise<ExperimentResult> {
  return runExperiment(await loadConfig(file), { outDir, threads: 1, plots: false });
}

export interface FinalRow {
  i: number;
  task: number;
  index: number;
  label: number;
  pred: number;
  prob: number | null;
  route: number | null;
}

/** The rows of a predictions.csv. */
export function readPredictions(dir: string): FinalRow[] {
  const file = join(dir, 'predictions.csv');
  const { header, rows } = parseTableCsv(readFileSync(file, 'utf8'), file);
  assert.deepEqual(header, ['i', 'task', 'index', 'label', 'pred', 'prob', 'route']);
  return rows.map((r) => ({ i: r[0]!, task: r[1]!, index: r[2]!, label: r[3]!, pred: r[4]!, prob: r[5] ?? null, route: r[6] ?? null }));
}

/** The test images of the final evaluation of the stream a config builds (deterministic test transforms). */
export async function finalImages(file: string): Promise<{ stream: Stream; images: Image[]; rows: Array<{ task: number; index: number; label: number }> }> {
  const loaded = await loadConfig(file);
  const stream = await buildStream(loaded.config.stream);
  const { items } = finalEvaluation(stream);
  return { stream, images: materialize(items, stream.tasks, false, new Rng(0)), rows: items.map((it) => ({ task: it.task, index: it.index, label: it.label })) };
}

/**
 * The run's final evaluation, checked against the run itself: predictions.csv lists the final evaluation's test
 * samples, and its accuracy and per-class accuracies are the run's last end-of-task numbers.
 */
export function assertFinalIsRunsLastEvaluation(run: ExperimentResult, rows: readonly FinalRow[], expected: ReadonlyArray<{ task: number; index: number; label: number }>): void {
  assert.deepEqual(rows.map((r) => ({ task: r.task, index: r.index, label: r.label })), expected, 'the final evaluation’s samples, in order');
  assert.deepEqual(rows.map((r) => r.i), rows.map((_, i) => i));
  const log = run.result.log;
  const correct = rows.filter((r) => r.pred === r.label).length;
  assert.equal(correct / rows.length, log.taskAcc[log.taskAcc.length - 1], 'accuracy of predictions.csv = the last end-of-task accuracy');
  const perClass: Record<string, number> = {};
  for (const c of [...new Set(rows.map((r) => r.label))].sort((a, b) => a - b)) {
    const of = rows.filter((r) => r.label === c);
    perClass[c] = of.filter((r) => r.pred === c).length / of.length;
  }
  assert.deepEqual(perClass, log.classAcc[log.classAcc.length - 1], 'per-class accuracy = the last class_acc row');
}

/** Predictions of `learner` on the final images equal predictions.csv (labels, routes), with proper probabilities. */
export async function assertLearnerReproduces(learner: Learner, images: Image[], rows: readonly FinalRow[]): Promise<void> {
  const got = await learner.predict(images);
  assert.equal(got.length, rows.length);
  const C = learner.candidates.length;
  got.forEach((p, i) => {
    const r = rows[i]!;
    assert.equal(p.label, r.pred, `image ${i}: label`);
    const route = r.route === null ? null : r.route < 0 ? 'zero-shot' : r.route;
    assert.equal(p.route, route, `image ${i}: route`);
    assert.ok(p.probs !== null && p.probs.length === C, `image ${i}: probabilities over the ${C} candidates`);
    const sum = p.probs.reduce((a, b) => a + b, 0);
    assert.ok(Math.abs(sum - 1) < 1e-12, `image ${i}: probabilities sum to ${sum}`);
    assert.ok(p.probs.every((x) => x >= 0));
    const arg = p.probs.indexOf(Math.max(...p.probs));
    assert.equal(learner.candidates[arg], p.label, `image ${i}: argmax of the probabilities is the label`);
    assert.equal(p.prob, p.probs[arg]);
    assert.equal(p.name, learner.classNames[p.label]);
    assert.ok(r.prob !== null && Math.abs(p.prob! - r.prob) <= 1e-6, `image ${i}: probability ${p.prob} vs ${r.prob} in predictions.csv`);
  });
}
