/**
 * Pretraining from an existing model (`init`): the config takes or checks the init model's architecture, a run at
 * lr 0 exports the init model bit for bit, a run continues from the init weights (its first loss is the init
 * model's loss on that batch), token rows no caption uses are exported unchanged, and resuming checks the init.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ClipModel } from '../../src/clip/clip.ts';
import type { ClipConfig } from '../../src/clip/config.ts';
import { loadClip } from '../../src/clip/load.ts';
import { randomClipWeights, writeRandomClip } from '../../src/clip/random.ts';
import { ClipTokenizer } from '../../src/clip/tokenizer.ts';
import type { ClipWeights } from '../../src/clip/weights.ts';
import { Engine } from '../../src/runtime/engine.ts';
import { CaptionSampler } from '../../src/pretrain/captions.ts';
import { classNameChoices, classSubsetOf, samplesOfClasses } from '../../src/pretrain/classes.ts';
import { clipConfigOf, parsePretrainConfig, PretrainConfigError, trainingSignature } from '../../src/pretrain/config.ts';
import { architectureDifferences, checkInitTokenizer, modelBlockOf, weightsFingerprint } from '../../src/pretrain/init.ts';
import { contrastiveLossReference, TOKEN_EMBEDDING } from '../../src/pretrain/loss.ts';
import { BatchSampler } from '../../src/pretrain/sampler.ts';
import { pretrain } from '../../src/pretrain/train.ts';
import { BPE_PATH, shapesDataset, tempDir, tinyConfig, tokenizer } from './fixtures.ts';

const engine = await Engine.create({ worker: false, threads: 1 });
after(() => engine.close());
const train = shapesDataset(16, 16, 1);
const TINY: ClipConfig = clipConfigOf(tinyConfig());

/** Asserts that two weight maps hold the same tensors with bitwise equal values. */
function assertSameWeights(got: ClipWeights, want: ClipWeights, what: string): void {
  assert.deepEqual([...got.keys()].sort(), [...want.keys()].sort(), `${what}: tensor names`);
  for (const [name, w] of want) {
    const g = got.get(name)!;
    assert.deepEqual(g.shape, w.shape, `${what}: ${name} shape`);
    for (let i = 0; i < w.data.length; i++) {
      if (!Object.is(g.data[i], w.data[i])) assert.fail(`${what}: ${name}[${i}] is ${g.data[i]}, the init model has ${w.data[i]}`);
    }
  }
}

/** A random tiny model folder (every tensor perturbed, so that each one matters) with a given logit_scale. */
function writeInit(dir: string, opts: { layout: 'hf' | 'open_clip'; float?: 'F32' | 'F16'; cfg?: ClipConfig; seed?: number; logitScale?: number; mean?: [number, number, number] }): ClipWeights {
  const cfg = opts.cfg ?? TINY;
  const weights = randomClipWeights(cfg, opts.seed ?? 11, { perturbStd: 0.05 });
  if (opts.logitScale !== undefined) weights.set('logit_scale', { shape: [], data: Float32Array.of(opts.logitScale) });
  writeRandomClip(dir, cfg, {
    layout: opts.layout,
    seed: 0,
    weights,
    float: opts.float ?? 'F32',
    bpePath: BPE_PATH,
    ...(opts.mean ? { preprocess: { mean: opts.mean, std: [0.2, 0.25, 0.3] } } : {}),
  });
  return weights;
}

function configError(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof PretrainConfigError, `expected a PretrainConfigError, got ${(e as Error).name}: ${(e as Error).message}`);
    return (e as Error).message;
  }
  assert.fail('expected the config to be rejected');
}

test('config: without a model block the init model gives the architecture; a different one is rejected naming the fields and the folder', () => {
  const { dir, cleanup } = tempDir('pretrain-init-cfg');
  try {
    // an open_clip folder with exact GELU and a non-default MLP ratio, and an HF folder
    const ocCfg: ClipConfig = {
      ...TINY,
      vision: { ...TINY.vision, act: 'gelu', mlpDim: 32 },
      text: { ...TINY.text, act: 'gelu', mlpDim: 32 },
    };
    writeInit(join(dir, 'oc'), { layout: 'open_clip', cfg: ocCfg });
    writeInit(join(dir, 'hf'), { layout: 'hf' });
    const noModel = (init: string, sets: string[] = []) => {
      const raw: Record<string, unknown> = { ...tinyConfigRaw(), init };
      delete raw['model'];
      return parsePretrainConfig(raw, { baseDir: dir, sets, cwd: dir });
    };
    const oc = noModel('oc');
    assert.equal(oc.init, join(dir, 'oc'), 'relative to the config folder');
    const ocLoaded = loadClip(join(dir, 'oc')).config;
    assert.deepEqual(clipConfigOf(oc), ocLoaded);
    assert.equal(oc.model.vision.mlpDim, 32);
    assert.equal(oc.model.act, 'gelu');
    const hf = noModel('hf');
    assert.deepEqual(clipConfigOf(hf), loadClip(join(dir, 'hf')).config);
    // the block a user would write: defaults left out
    assert.deepEqual(modelBlockOf(TINY), {
      act: 'quick_gelu',
      vision: { imageSize: 16, patchSize: 8, width: 16, layers: 1, heads: 2 },
      text: { contextLength: 12, width: 16, layers: 1, heads: 2, vocabSize: 49408 },
      embedDim: 8,
      logitScaleInit: TINY.logitScaleInit,
    });
    // a matching model block is accepted (logitScaleInit is not architecture)
    const withBlock = parsePretrainConfig({ ...tinyConfigRaw(), init: 'hf', model: { ...(tinyConfigRaw()['model'] as object), logitScaleInit: 1 } }, { baseDir: dir });
    assert.equal(withBlock.model.logitScaleInit, 1);
    // --set init=... resolves against the working directory
    assert.equal(parsePretrainConfig(tinyConfigRaw(), { baseDir: '/elsewhere', sets: ['init=hf'], cwd: dir }).init, join(dir, 'hf'));

    // mismatches: every differing field named, with both values and the folder
    const bad = configError(() => parsePretrainConfig(tinyConfigRaw(), { baseDir: dir, sets: ['init=oc'], cwd: dir }));
    assert.ok(bad.includes(join(dir, 'oc')), bad);
    for (const f of ['model.vision.mlpDim', 'model.vision.act', 'model.text.mlpDim', 'model.text.act']) assert.ok(bad.includes(f), `${f} in: ${bad}`);
    assert.match(bad, /model\.vision\.mlpDim: 64 in the config, 32 in the init model/);
    assert.doesNotMatch(bad, /model\.vision\.width/);
    const w = configError(() => parsePretrainConfig(tinyConfigRaw(), { baseDir: dir, sets: ['init=hf', 'model.vision.width=32', 'model.embedDim=16'], cwd: dir }));
    assert.match(w, /model\.vision\.width: 32 in the config, 16 in the init model/);
    assert.match(w, /model\.embedDim: 16 in the config, 8 in the init model/);
    assert.deepEqual(
      architectureDifferences(TINY, { ...TINY, text: { ...TINY.text, layers: 2, lnEps: 1e-6 }, logitScaleInit: 0 }).map((d) => d.field),
      ['model.text.layers', 'model.text.lnEps'],
    );

    // no model and no init; an init folder that does not exist
    const noBoth = tinyConfigRaw();
    delete noBoth['model'];
    assert.match(configError(() => parsePretrainConfig(noBoth, { baseDir: dir })), /model: required \(or give init/);
    assert.match(configError(() => noModel('missing')), new RegExp(`init: model folder ${join(dir, 'missing').replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} does not exist`));

    // the training signature records init only when set (runs from scratch keep their old signature)
    assert.equal(trainingSignature(hf)['init'], join(dir, 'hf'));
    assert.ok(!('init' in trainingSignature(tinyConfig())));
  } finally {
    cleanup();
  }
});

/** The tiny config of fixtures.ts as a raw (unparsed) value: its parsed form, which parses to itself. */
function tinyConfigRaw(): Record<string, unknown> {
  return JSON.parse(JSON.stringify(tinyConfig())) as Record<string, unknown>;
}

test('lr 0: the exported model equals the init model bit for bit (open_clip F32 and HF F16 init folders)', async () => {
  const { dir, cleanup } = tempDir('pretrain-init-lr0');
  try {
    // open_clip layout, F32, a distinctive logit_scale and image normalisation
    const initDir = join(dir, 'init-oc');
    const logitScale = Math.fround(1.25);
    writeInit(initDir, { layout: 'open_clip', logitScale, mean: [0.5, 0.4, 0.3] });
    const init = loadClip(initDir);
    const scales: number[] = [];
    const seen: { init?: string | null } = {};
    const cfg = tinyConfig([`init=${initDir}`, 'optim.lr=0', 'optim.lrFloor=0', 'optim.steps=4', 'float=F32', 'model=null']);
    const out = join(dir, 'out');
    const r = await pretrain(cfg, {
      tokenizer: tokenizer(),
      engine,
      trainData: train,
      evalData: null,
      outDir: out,
      onEvent: (e) => {
        if (e.type === 'step') scales.push(e.logitScale);
        if (e.type === 'start') seen.init = e.init;
      },
    });
    assert.equal(r.step, 4);
    assert.equal(seen.init, initDir);
    // logit_scale starts from (and at lr 0 stays at) the init model's value
    assert.deepEqual(scales, [Math.exp(logitScale), Math.exp(logitScale), Math.exp(logitScale), Math.exp(logitScale)]);
    assertSameWeights(r.weights, init.weights, 'result');
    const exported = loadClip(out);
    assertSameWeights(exported.weights, init.weights, 'exported');
    assert.deepEqual(exported.config, init.config);
    // the init model's image normalisation is kept
    assert.deepEqual(exported.preprocess.mean, [0.5, 0.4, 0.3]);
    assert.deepEqual(exported.preprocess.std, [0.2, 0.25, 0.3]);
    assert.equal(JSON.parse(readFileSync(join(out, 'pretrain.json'), 'utf8')).init, initDir);

    // HF layout stored in F16, exported in F16: the F16 values survive the float32 round trip exactly
    const init16Dir = join(dir, 'init-hf16');
    writeInit(init16Dir, { layout: 'hf', float: 'F16', seed: 12 });
    const out16 = join(dir, 'out16');
    await pretrain(tinyConfig([`init=${init16Dir}`, 'optim.lr=0', 'optim.lrFloor=0', 'optim.steps=3', 'float=F16']), {
      tokenizer: tokenizer(),
      engine,
      trainData: train,
      evalData: null,
      outDir: out16,
    });
    assertSameWeights(loadClip(out16).weights, loadClip(init16Dir).weights, 'exported F16');
    assert.equal(readFileSync(join(out16, 'model.safetensors')).equals(readFileSync(join(init16Dir, 'model.safetensors'))), true, 'the same safetensors bytes');
  } finally {
    cleanup();
  }
});

test('a run initialised from a trained model continues from its weights: its first loss is that model\'s loss on the batch', async () => {
  const { dir, cleanup } = tempDir('pretrain-init-continue');
  try {
    // model A: 6 steps from scratch
    const aDir = join(dir, 'a');
    const scratchLosses: number[] = [];
    await pretrain(tinyConfig(['optim.steps=6', 'float=F32']), {
      tokenizer: tokenizer(),
      engine,
      trainData: train,
      evalData: null,
      outDir: aDir,
      onEvent: (e) => e.type === 'step' && scratchLosses.push(e.loss),
    });
    // run B from A, same seed: the same first batch as A's first step
    const cfgB = tinyConfig([`init=${aDir}`, 'optim.steps=4']);
    const lossesB: number[] = [];
    await pretrain(cfgB, { tokenizer: tokenizer(), engine, trainData: train, evalData: null, onEvent: (e) => e.type === 'step' && lossesB.push(e.loss) });

    // independent truth: A loaded from disk, its inference encoders, and the float64 reference loss on B's first batch
    const a = loadClip(aDir);
    const labels = classSubsetOf(train, cfgB.data.classes);
    const captions = new CaptionSampler(classNameChoices(train, cfgB.captions.synonyms), cfgB.captions.templates ?? train.templates);
    const S = a.config.vision.imageSize;
    const sampler = new BatchSampler({
      dataset: train,
      indices: samplesOfClasses(train, labels),
      batchSize: cfgB.optim.batchSize,
      imageSize: S,
      mean: a.preprocess.mean,
      std: a.preprocess.std,
      augment: cfgB.augment,
      captions,
      tokenizer: tokenizer(),
      vocab: captions.vocabulary(tokenizer(), labels, a.config.text.contextLength),
      contextLength: a.config.text.contextLength,
      seed: cfgB.seed,
    });
    const batch = sampler.next();
    const B = cfgB.optim.batchSize;
    const K = batch.idsDims[0];
    const model = await ClipModel.fromParts(a, { engine });
    try {
      const img = await model.encodeImages({ data: batch.pixels, dims: [B, 3, S, S] }, { normalize: false });
      const txt = await model.encodeTexts(batch.captions, { normalize: false });
      const E = a.config.embedDim;
      const rows = (m: { data: Float32Array }, n: number) => Array.from({ length: n }, (_, i) => m.data.subarray(i * E, (i + 1) * E));
      const textOfImage = Array.from({ length: B }, (_, b) => batch.targets.subarray(b * K, (b + 1) * K).indexOf(1));
      assert.ok(textOfImage.every((k) => k >= 0));
      const ref = contrastiveLossReference(rows(img, B), rows(txt, K), textOfImage, a.weights.get('logit_scale')!.data[0]!);
      assert.ok(Math.abs(lossesB[0]! - ref.loss) < 1e-4, `first loss of the continued run ${lossesB[0]} vs model A's loss ${ref.loss}`);
      // ... and not the loss of the random init on that batch (A's own first step)
      assert.ok(Math.abs(scratchLosses[0]! - ref.loss) > 1e-2, `random init ${scratchLosses[0]} vs A ${ref.loss}`);
    } finally {
      await model.close();
    }
  } finally {
    cleanup();
  }
});

test('training from an init model changes the caption token rows only; every other row is exported unchanged', async () => {
  const { dir, cleanup } = tempDir('pretrain-init-rows');
  try {
    const initDir = join(dir, 'init');
    writeInit(initDir, { layout: 'hf', seed: 21 });
    const init = loadClip(initDir);
    const out = join(dir, 'out');
    const r = await pretrain(tinyConfig([`init=${initDir}`, 'optim.steps=5', 'float=F32', 'model=null']), { tokenizer: tokenizer(), engine, trainData: train, evalData: null, outDir: out });
    const got = loadClip(out).weights.get(TOKEN_EMBEDDING)!;
    const want = init.weights.get(TOKEN_EMBEDDING)!;
    const [V, w] = want.shape as [number, number];
    const trained = new Set(r.vocab.ids);
    let changedRows = 0;
    for (let id = 0; id < V; id++) {
      const a = got.data.subarray(id * w, (id + 1) * w);
      const b = want.data.subarray(id * w, (id + 1) * w);
      const same = a.every((x, j) => Object.is(x, b[j]));
      if (!trained.has(id)) assert.ok(same, `token row ${id} (no caption uses it) changed`);
      else if (!same) changedRows++;
    }
    // the caption rows did train (not necessarily all: padding row 0 gets no gradient, and a token of a caption
    // not drawn in these 5 steps none either)
    assert.ok(changedRows >= r.vocab.size / 2, `${changedRows} of ${r.vocab.size} caption rows changed`);
    // and so did every other tensor
    const exported = loadClip(out).weights;
    for (const [name, t] of init.weights) {
      if (name === TOKEN_EMBEDDING) continue;
      assert.ok(t.data.some((x, i) => !Object.is(x, exported.get(name)!.data[i])), `${name} did not change`);
    }
  } finally {
    cleanup();
  }
});

test('resume: an initialised run resumes exactly; another init folder, changed init weights or a different tokenizer are refused', async () => {
  const { dir, cleanup } = tempDir('pretrain-init-resume');
  try {
    const initDir = join(dir, 'init');
    const otherDir = join(dir, 'other');
    writeInit(initDir, { layout: 'hf', seed: 31 });
    writeInit(otherDir, { layout: 'hf', seed: 32 });
    const cfg = tinyConfig([`init=${initDir}`, 'optim.steps=6']);
    const run = (c = cfg, extra: Record<string, unknown> = {}) =>
      pretrain(c, { tokenizer: tokenizer(), engine, trainData: train, evalData: null, checkpointDir: join(dir, 'ck'), ...extra });
    const full = await pretrain(cfg, { tokenizer: tokenizer(), engine, trainData: train, evalData: null });
    const part = await run(cfg, { maxSteps: 3 });
    assert.equal(part.step, 3);
    await assert.rejects(run(tinyConfig([`init=${otherDir}`, 'optim.steps=6']), { resume: true }), /field 'init' differs/);
    await assert.rejects(run(tinyConfig(['optim.steps=6']), { resume: true }), /field 'init' differs/);
    const resumed = await run(cfg, { resume: true, maxSteps: 5 });
    assert.equal(resumed.step, 5);
    // the init folder's weights changed since the run started: refused, naming the folder
    const before = weightsFingerprint(loadClip(initDir).weights);
    writeInit(initDir, { layout: 'hf', seed: 33 });
    assert.notEqual(weightsFingerprint(loadClip(initDir).weights), before);
    await assert.rejects(run(cfg, { resume: true }), (e: Error) => e.message.includes(`init: the weights in ${initDir} are not those the run started from`));
    writeInit(initDir, { layout: 'hf', seed: 31 });
    const done = await run(cfg, { resume: true });
    assert.equal(done.step, 6);
    assertSameWeights(done.weights, full.weights, 'resumed vs uninterrupted');

    // a tokenizer whose ids differ from the init model's is refused
    const { vocab, merges } = tokenizer().exportVocabMerges();
    const swapped = new Map(Object.entries(vocab));
    const red = swapped.get('red</w>')!;
    swapped.set('red</w>', swapped.get('green</w>')!);
    swapped.set('green</w>', red);
    const other = new ClipTokenizer(swapped, merges.map((m) => m.split(' ') as [string, string]));
    await assert.rejects(
      pretrain(cfg, { tokenizer: other, engine, trainData: train, evalData: null }),
      /init: the tokenizer differs from the init model's .*caption "a photo of a red circle\." tokenises differently/,
    );
    checkInitTokenizer(tokenizer(), loadClip(initDir).tokenizer, ['a photo of a red circle.'], 12, initDir);
  } finally {
    cleanup();
  }
});
