/**
 * cm-moe after two merges (subnets clustered and merged beyond maxSubnets, DDAS per subnet): the run's final/
 * holds its final evaluation, and the exported learner predicts exactly that — labels and the subnet per image.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { exportLearner } from '../../src/learner/export.ts';
import { loadLearner } from '../../src/learner/load.ts';
import { assertFinalIsRunsLastEvaluation, assertLearnerReproduces, finalImages, makeRoot, readPredictions, runConfig, writeConfig } from './fixtures.ts';

const root = makeRoot('cm');
after(() => rmSync(root, { recursive: true, force: true }));

test('cm-moe across merges: run → final/ → export → loadLearner predicts the final evaluation (labels and subnets)', async () => {
  const cfg = writeConfig(
    root,
    'cm',
    4,
    [
      'name: cm-moe',
      'model: model',
      'expertsPerSubnet: 2',
      'topK: 2',
      'bottleneck: 4',
      'maxSubnets: 2',
      'numClusters: 2',
      'memorySize: 16',
      'finetuneSteps: 2',
      'lr: 0.01',
      'evalBatchSize: 16',
      'ddas: { hidden: 8 }',
    ],
    4,
  );
  const runDir = join(root, 'run');
  const run = await runConfig(cfg, runDir);
  const cost = JSON.parse(readFileSync(join(runDir, 'cost.json'), 'utf8'));
  assert.equal(cost.extra.merges, 2, 'two merges happened');
  const rows = readPredictions(join(runDir, 'final'));
  const { images, rows: expected } = await finalImages(cfg);
  assertFinalIsRunsLastEvaluation(run, rows, expected);
  assert.equal(rows.length, 24);
  // the surviving subnets' routers (the saved registry) answer; a single-dataset stream has no zero-shot fallback
  const state = JSON.parse(readFileSync(join(runDir, 'final', 'method.json'), 'utf8'));
  const routers = (state.own.registry.subnets as Array<{ router: number }>).map((s) => s.router);
  assert.ok(routers.length <= 2, `at most maxSubnets = 2 subnets after the merges: ${JSON.stringify(routers)}`);
  assert.ok(rows.every((r) => r.route !== null && routers.includes(r.route)), JSON.stringify(rows.map((r) => r.route)));

  const out = join(root, 'learner');
  exportLearner(runDir, out, { copyBackbone: true });
  const a = await loadLearner(out, { threads: 1 });
  try {
    await assertLearnerReproduces(a, images, rows);
  } finally {
    await a.dispose();
  }
});
