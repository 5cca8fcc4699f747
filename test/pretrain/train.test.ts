/**
 * The pretraining loop on a tiny generated dataset: the loss falls, a stopped and resumed run equals an
 * uninterrupted one bit for bit, the exported folder loads with `loadClip` and encodes, and zero-shot accuracy
 * agrees with a direct computation.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ClipModel } from '../../src/clip/clip.ts';
import { loadClip } from '../../src/clip/load.ts';
import { Engine } from '../../src/runtime/engine.ts';
import { loadCheckpoint } from '../../src/pretrain/checkpoint.ts';
import { firstDifference, pretrain, totalSteps, type PretrainEvent } from '../../src/pretrain/train.ts';
import { zeroShotAccuracy } from '../../src/pretrain/zeroshot-eval.ts';
import { shapesDataset, tempDir, tinyConfig, tokenizer } from './fixtures.ts';

const engine = await Engine.create({ worker: false, threads: 1 });
after(() => engine.close());
const train = shapesDataset(16, 16, 1);
const evalSet = shapesDataset(6, 16, 99, 'val');

test('the contrastive loss falls over 40 steps on coloured shapes', async () => {
  const losses: number[] = [];
  const accs: number[] = [];
  const r = await pretrain(tinyConfig(['optim.steps=40', 'optim.batchSize=16']), {
    tokenizer: tokenizer(),
    engine,
    trainData: train,
    evalData: null,
    onEvent: (e: PretrainEvent) => {
      if (e.type === 'step') {
        losses.push(e.loss);
        accs.push(e.batchAccuracy);
        assert.ok(e.logitScale <= 100 + 1e-9);
      }
    },
  });
  assert.equal(r.step, 40);
  assert.equal(r.finished, true);
  const mean = (a: number[]) => a.reduce((s, x) => s + x, 0) / a.length;
  const first = mean(losses.slice(0, 5));
  const last = mean(losses.slice(-5));
  assert.ok(last < 0.75 * first, `loss ${first.toFixed(3)} → ${last.toFixed(3)}`);
  assert.ok(mean(accs.slice(-10)) > mean(accs.slice(0, 10)), 'batch accuracy improves');
});

test('a run stopped after K steps and resumed equals the uninterrupted run bit for bit', async () => {
  const { dir, cleanup } = tempDir('pretrain-resume');
  try {
    const cfg = tinyConfig(['optim.steps=10', 'checkpointEvery=3']);
    const full = await pretrain(cfg, { tokenizer: tokenizer(), engine, trainData: train, evalData: null, checkpointDir: join(dir, 'a') });
    const part = await pretrain(cfg, { tokenizer: tokenizer(), engine, trainData: train, evalData: null, checkpointDir: join(dir, 'b'), maxSteps: 5 });
    assert.equal(part.step, 5);
    assert.equal(part.finished, false);
    assert.equal(part.outDir, null);
    const ck = loadCheckpoint(join(dir, 'b'));
    assert.equal(ck.meta.step, 5);
    assert.equal(ck.meta.sampler.position, 5 * 8 - 0 * 64);
    // only the newest state file is kept
    assert.deepEqual(
      (await import('node:fs')).readdirSync(join(dir, 'b')).filter((f) => f.startsWith('state-')),
      ['state-00000005.safetensors'],
    );
    const resumed = await pretrain(cfg, { tokenizer: tokenizer(), engine, trainData: train, evalData: null, checkpointDir: join(dir, 'b'), resume: true });
    assert.equal(resumed.step, 10);
    assert.equal(resumed.finished, true);
    for (const name of full.state.stateNames) {
      const a = full.state.get(name).data as Float32Array;
      const b = resumed.state.get(name).data as Float32Array;
      assert.equal(a.length, b.length);
      for (let i = 0; i < a.length; i++) assert.ok(Object.is(a[i], b[i]), `${name}[${i}]: ${a[i]} vs ${b[i]}`);
    }
    // and it differs from the initial weights (training happened)
    assert.ok(full.history.some((h) => h.type === 'train'));
    const again = loadCheckpoint(join(dir, 'b'));
    assert.equal(again.meta.step, 10);
    // resuming with other training settings is refused, naming the field
    await assert.rejects(
      pretrain(tinyConfig(['optim.steps=10', 'optim.lr=0.01']), { tokenizer: tokenizer(), engine, trainData: train, evalData: null, checkpointDir: join(dir, 'b'), resume: true }),
      /field 'optim\.lr' differs/,
    );
    await assert.rejects(
      pretrain(cfg, { tokenizer: tokenizer(), engine, trainData: train, evalData: null, checkpointDir: join(dir, 'none'), resume: true }),
      /--resume: no checkpoint/,
    );
  } finally {
    cleanup();
  }
});

test('the exported folder loads with loadClip, encodes, and its zero-shot accuracy matches a direct computation', async () => {
  const { dir, cleanup } = tempDir('pretrain-export');
  try {
    const out = join(dir, 'model');
    const cfg = tinyConfig(['optim.steps=40', 'optim.batchSize=16', 'float=F32', 'eval.enabled=true', 'eval.every=20', 'eval.batchSize=7']);
    const evals: PretrainEvent[] = [];
    const r = await pretrain(cfg, { tokenizer: tokenizer(), engine, trainData: train, evalData: evalSet, outDir: out, onEvent: (e) => e.type === 'eval' && evals.push(e) });
    assert.equal(r.outDir, out);
    for (const f of ['config.json', 'model.safetensors', 'vocab.json', 'merges.txt', 'preprocessor_config.json', 'pretrain.json']) assert.ok(existsSync(join(out, f)), f);
    assert.equal(evals.length, 2, 'evaluations at step 20 and at the end');
    const loaded = loadClip(out);
    assert.deepEqual(loaded.warnings, []);
    assert.deepEqual(loaded.config, r.config);
    for (const [name, w] of r.weights) {
      const got = loaded.weights.get(name)!;
      assert.deepEqual(got.shape, w.shape, name);
      assert.ok(got.data.every((v, i) => v === w.data[i]), `${name} round-trips exactly in F32`);
    }
    const info = JSON.parse(readFileSync(join(out, 'pretrain.json'), 'utf8'));
    assert.equal(info.steps, 40);
    const model = await ClipModel.fromParts(loaded, { engine });
    try {
      const img = await model.encodeImages([evalSet.image(0), evalSet.image(1)]);
      for (let i = 0; i < 2; i++) {
        const n = Math.hypot(...img.data.subarray(i * 8, (i + 1) * 8));
        assert.ok(Math.abs(n - 1) < 1e-5);
      }
      const acc = await zeroShotAccuracy(model, evalSet, { templates: evalSet.templates, batchSize: 5 });
      assert.equal(acc.n, evalSet.length);
      assert.equal(acc.classes, 4);
      // direct computation: per class the renormalised mean of normalised template embeddings; argmax of cosines
      const names = evalSet.classNames;
      const T = evalSet.templates.length;
      const txt = await model.encodeTexts(names.flatMap((n) => evalSet.templates.map((t) => t.replace('{}', n))));
      const E = 8;
      const cls = names.map((_, c) => {
        const v = new Float64Array(E);
        for (let k = 0; k < T; k++) for (let j = 0; j < E; j++) v[j]! += txt.data[(c * T + k) * E + j]!;
        const n = Math.hypot(...v);
        return v.map((x) => x / n);
      });
      const all = await model.encodeImages(Array.from({ length: evalSet.length }, (_, i) => evalSet.image(i)));
      let correct = 0;
      for (let i = 0; i < evalSet.length; i++) {
        const e = all.data.subarray(i * E, (i + 1) * E);
        const scores = cls.map((c) => c.reduce((s, x, j) => s + x * e[j]!, 0));
        if (scores.indexOf(Math.max(...scores)) === evalSet.labels[i]) correct++;
      }
      assert.ok(Math.abs(acc.accuracy - correct / evalSet.length) < 1e-12, `${acc.accuracy} vs ${correct / evalSet.length}`);
      assert.ok(acc.accuracy > 0.5, `a trained tiny CLIP separates the shapes (accuracy ${acc.accuracy})`);
      // class subsets: odd = labels 1 and 3, a 2-way problem on their samples only
      const odd = await zeroShotAccuracy(model, evalSet, { classes: 'odd', templates: evalSet.templates });
      assert.equal(odd.n, 12);
      assert.equal(odd.classes, 2);
    } finally {
      await model.close();
    }
    // the F16 default halves the weights file
    const out16 = join(dir, 'model16');
    await pretrain(tinyConfig(['optim.steps=2', 'optim.warmupSteps=1']), { tokenizer: tokenizer(), engine, trainData: train, evalData: null, outDir: out16 });
    const ratio = statSync(join(out16, 'model.safetensors')).size / statSync(join(out, 'model.safetensors')).size;
    assert.ok(ratio > 0.45 && ratio < 0.55, `F16/F32 size ratio ${ratio}`);
    assert.ok(loadClip(out16).weights.size > 0);
  } finally {
    cleanup();
  }
});

test('steps from epochs, and the config difference finder', () => {
  assert.equal(totalSteps(tinyConfig(['optim.steps=null', 'optim.epochs=2.5']), 50), Math.ceil((2.5 * 50) / 8));
  assert.equal(totalSteps(tinyConfig(), 50), 30);
  assert.equal(firstDifference({ a: { b: 1, c: [1, 2] } }, { a: { b: 1, c: [1, 3] } }), 'a.c.1');
  assert.equal(firstDifference({ a: 1, x: undefined }, { a: 1 }), null);
});
