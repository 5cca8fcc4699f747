/**
 * moe-adapters with a router per task, activate-freeze and DDAS (per-sample routing, zero-shot fallback): the run's
 * final/ holds its final evaluation; the exported learner (by reference and with a copied backbone), loaded
 * through the registry, predicts exactly that evaluation — labels and the router (or zero-shot) per image.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { exportLearner } from '../../src/learner/export.ts';
import { loadLearner } from '../../src/learner/load.ts';
import { sha256File } from '../../src/learner/format.ts';
import { ClipModel, softmaxRows } from '../../src/clip/clip.ts';
import { assertFinalIsRunsLastEvaluation, assertLearnerReproduces, finalImages, makeRoot, readPredictions, runConfig, writeConfig } from './fixtures.ts';

const root = makeRoot('moe');
after(() => rmSync(root, { recursive: true, force: true }));

test('moe-adapters + DDAS: run → final/ → export → loadLearner predicts the final evaluation (labels and routes)', async () => {
  const cfg = writeConfig(root, 'moe', 3, [
    'name: moe-adapters',
    'model: model',
    'experts: 4',
    'topK: 2',
    'bottleneck: 4',
    'routers: per-task',
    'freezePerTask: 1',
    'lr: 0.01',
    'evalBatchSize: 3',
    'ddas: { enabled: true, hidden: 8 }',
  ]);
  const runDir = join(root, 'run');
  const run = await runConfig(cfg, runDir);
  const final = join(runDir, 'final');
  for (const f of ['learner.json', 'method.safetensors', 'method.json', 'predictions.csv']) assert.ok(existsSync(join(final, f)), `final/${f}`);
  const info = JSON.parse(readFileSync(join(final, 'learner.json'), 'utf8'));
  assert.equal(info.method.name, 'moe-adapters');
  assert.equal(info.method.options.model, join(root, 'model'));
  assert.equal(info.method.options.experts, 4);
  assert.deepEqual(info.model, { path: join(root, 'model'), weights: 'model.safetensors', sha256: sha256File(join(root, 'model', 'model.safetensors')), bytes: info.model.bytes });
  // the runner's exposure order: the new classes of every batch event
  const events = readFileSync(join(runDir, 'events.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.deepEqual(info.candidates, events.filter((e) => e.type === 'batch').flatMap((e) => e.newClasses));
  assert.deepEqual([...info.candidates].sort(), [0, 1, 2, 3, 4, 5]);
  assert.equal(info.streamKind, 'class-incremental');
  assert.equal(info.evalBatchSize, 5);
  assert.deepEqual(info.templates.ofClass.map((k: number) => info.templates.sets[k]), info.classNames.map(() => info.templates.sets[0]));

  const rows = readPredictions(final);
  const { images, rows: expected } = await finalImages(cfg);
  assertFinalIsRunsLastEvaluation(run, rows, expected);
  assert.equal(rows.length, 18);
  // DDAS routed per sample: a router per task, and each route is one of them or zero-shot (-1)
  assert.ok(rows.every((r) => r.route !== null && [-1, 0, 1, 2].includes(r.route)), JSON.stringify(rows.map((r) => r.route)));
  assert.ok(new Set(rows.map((r) => r.route)).size >= 2, `several routes: ${JSON.stringify(rows.map((r) => r.route))}`);

  const ref = join(root, 'learner-ref');
  const r1 = exportLearner(runDir, ref);
  assert.equal(r1.backbone, null);
  assert.ok(!existsSync(join(ref, 'backbone')));
  const a = await loadLearner(ref, { threads: 1 });
  try {
    assert.equal(a.modelDir, join(root, 'model'));
    await assertLearnerReproduces(a, images, rows);
  } finally {
    await a.dispose();
  }

  const copy = join(root, 'learner-copy');
  const r2 = exportLearner(runDir, copy, { copyBackbone: true });
  assert.equal(r2.backbone, join(copy, 'backbone'));
  assert.equal(readFileSync(join(copy, 'backbone', 'model.safetensors')).equals(readFileSync(join(root, 'model', 'model.safetensors'))), true);
  const b = await loadLearner(copy, { threads: 1 });
  try {
    assert.equal(b.modelDir, join(copy, 'backbone'));
    await assertLearnerReproduces(b, images, rows);
    // a candidate subset: probabilities over it only
    const sub = await b.predict(images.slice(0, 4), { candidates: [4, 5] });
    for (const p of sub) {
      assert.ok([4, 5].includes(p.label));
      assert.equal(p.probs!.length, 2);
    }
  } finally {
    await b.dispose();
  }
});

test('moe-adapters + DDAS that claims nothing: every image goes to zero-shot CLIP, in predictions.csv and in the learner', async () => {
  const cfg = writeConfig(root, 'moe-zs', 2, [
    'name: moe-adapters',
    'model: model',
    'experts: 4',
    'topK: 2',
    'bottleneck: 4',
    'routers: per-task',
    'lr: 0.01',
    'ddas: { enabled: true, hidden: 8, threshold: 1.0e-12 }',
  ]);
  const runDir = join(root, 'run-zs');
  const run = await runConfig(cfg, runDir);
  const rows = readPredictions(join(runDir, 'final'));
  const { images, rows: expected } = await finalImages(cfg);
  assertFinalIsRunsLastEvaluation(run, rows, expected);
  assert.ok(rows.every((r) => r.route === -1), 'route -1 (zero-shot) in predictions.csv');
  const out = join(root, 'learner-zs');
  exportLearner(runDir, out);
  const a = await loadLearner(out, { threads: 1 });
  try {
    await assertLearnerReproduces(a, images, rows);
    // the zero-shot probabilities are plain CLIP's, computed here from the model folder directly
    const got = await a.predict(images);
    const clip = await ClipModel.load(join(root, 'model'), { threads: 1 });
    try {
      const names = a.candidates.map((c) => a.classNames[c]!);
      const W = await clip.zeroShotClassifier(names, a.info.templates.sets[0]);
      const P = softmaxRows(clip.logits(await clip.encodeImages(images), W));
      got.forEach((p, i) => p.probs!.forEach((q, j) => assert.ok(Math.abs(q - P.data[i * names.length + j]!) < 1e-5, `image ${i}, class ${j}: ${q} vs ${P.data[i * names.length + j]}`)));
    } finally {
      await clip.close();
    }
  } finally {
    await a.dispose();
  }
});
