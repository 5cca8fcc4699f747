/**
 * ncm-clip (class means of frozen CLIP embeddings, no routing): final/ → export → loadLearner predicts the final
 * evaluation; the model reference is checked (a changed or missing model folder is refused, a copied backbone
 * keeps working); a damaged learner.json names its field.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, copyFileSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { exportLearner } from '../../src/learner/export.ts';
import { loadLearner } from '../../src/learner/load.ts';
import { readLearnerInfo } from '../../src/learner/format.ts';
import { assertFinalIsRunsLastEvaluation, assertLearnerReproduces, finalImages, makeRoot, readPredictions, runConfig, writeConfig } from './fixtures.ts';

const root = makeRoot('ncm');
after(() => rmSync(root, { recursive: true, force: true }));
const cfg = writeConfig(root, 'ncm', 3, ['name: ncm-clip', 'model: model']);
const runDir = join(root, 'run');

test('ncm-clip: run → final/ → export → loadLearner predicts the final evaluation; no routes', async () => {
  const run = await runConfig(cfg, runDir);
  const rows = readPredictions(join(runDir, 'final'));
  const { images, rows: expected } = await finalImages(cfg);
  assertFinalIsRunsLastEvaluation(run, rows, expected);
  assert.ok(rows.every((r) => r.route === null), 'no route column values for a method without routing');
  // the separable bars: the class means get every test image right
  assert.ok(rows.every((r) => r.pred === r.label));
  const out = join(root, 'learner');
  exportLearner(runDir, out);
  const a = await loadLearner(out, { threads: 1 });
  try {
    await assertLearnerReproduces(a, images, rows);
    assert.ok((await a.predict(images.slice(0, 2))).every((p) => p.route === null));
    await assert.rejects(a.predict(images.slice(0, 1), { candidates: [0, 99] }), /candidates: 99 is not a label \(0\.\.5\)/);
    await assert.rejects(a.predict(images.slice(0, 1), { candidates: [1, 1] }), /candidates: label 1 is listed twice/);
  } finally {
    await a.dispose();
  }
});

test('the model reference: a changed or missing model folder is refused; a copied backbone still loads', async () => {
  const ref = join(root, 'learner');
  const copy = join(root, 'learner-copy');
  exportLearner(runDir, copy, { copyBackbone: true });
  const weights = join(root, 'model', 'model.safetensors');
  copyFileSync(weights, join(root, 'weights.bak'));
  appendFileSync(weights, Buffer.from([0]));
  try {
    await assert.rejects(loadLearner(ref, { threads: 1 }), /the learner's model folder .*model changed since the learner was saved: sha256 of model\.safetensors is [0-9a-f]{64}, expected [0-9a-f]{64}/);
    assert.throws(() => exportLearner(runDir, join(root, 'again')), /the run's model folder .* changed since the learner was saved/);
  } finally {
    copyFileSync(join(root, 'weights.bak'), weights);
  }
  renameSync(join(root, 'model'), join(root, 'model-moved'));
  try {
    await assert.rejects(loadLearner(ref, { threads: 1 }), /the learner's model folder .*model is missing \(a folder exported with --copy-backbone keeps its own copy\)/);
    const b = await loadLearner(copy, { threads: 1 });
    try {
      const { images } = await finalImages(cfg);
      await assertLearnerReproduces(b, images, readPredictions(join(runDir, 'final')));
    } finally {
      await b.dispose();
    }
  } finally {
    renameSync(join(root, 'model-moved'), join(root, 'model'));
  }
  // a damaged copy of the backbone is refused too
  appendFileSync(join(copy, 'backbone', 'model.safetensors'), Buffer.from([0]));
  await assert.rejects(loadLearner(copy, { threads: 1 }), /the learner's backbone copy .*backbone changed since the learner was saved/);
});

test('learner.json: a damaged field is named', () => {
  const dir = join(root, 'learner');
  const file = join(dir, 'learner.json');
  const good = readFileSync(file, 'utf8');
  try {
    const j = JSON.parse(good);
    j.candidates = [0, 42];
    writeFileSync(file, JSON.stringify(j));
    assert.throws(() => readLearnerInfo(dir), /learner\.json: candidates: expected labels below 6/);
    writeFileSync(file, JSON.stringify({ ...JSON.parse(good), format: 'other' }));
    assert.throws(() => readLearnerInfo(dir), /learner\.json: format: expected 'moeclip\.learner', got "other"/);
    rmSync(file);
    assert.throws(() => readLearnerInfo(dir), /not a learner folder \(no learner\.json\)/);
  } finally {
    writeFileSync(file, good);
  }
});

test('ncm on raw pixels: a learner without a CLIP model (model null, nothing to copy) predicts the final evaluation', async () => {
  const cfgPx = writeConfig(root, 'ncm-px', 2, ['name: ncm', 'size: 10', 'color: gray']);
  const dir = join(root, 'run-px');
  const run = await runConfig(cfgPx, dir);
  const rows = readPredictions(join(dir, 'final'));
  const { images, rows: expected } = await finalImages(cfgPx);
  assertFinalIsRunsLastEvaluation(run, rows, expected);
  const out = join(root, 'learner-px');
  const r = exportLearner(dir, out, { copyBackbone: true });
  assert.equal(r.info.model, null);
  assert.equal(r.backbone, null);
  const a = await loadLearner(out);
  try {
    assert.equal(a.modelDir, null);
    await assertLearnerReproduces(a, images, rows);
  } finally {
    await a.dispose();
  }
});
