/**
 * CLIP features for methods (clip-features.ts, clip-resources.ts) and `ncm-clip` on a toy stream, checked against
 * embeddings computed independently with a separately loaded ClipModel on a tiny random model.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tinyClipConfig } from '../../src/clip/config.ts';
import { writeRandomClip } from '../../src/clip/random.ts';
import { ClipModel } from '../../src/clip/clip.ts';
import type { Image } from '../../src/data/types.ts';
import { clipFeatureFn, imageKey } from '../../src/methods/clip-features.ts';
import { acquireClip, CLIP_RESOURCES, ClipResources, checkModelDir } from '../../src/methods/clip-resources.ts';
import { NcmClipMethod } from '../../src/methods/ncm-clip.ts';
import { createMethod } from '../../src/methods/registry.ts';
import type { MethodEnv } from '../../src/methods/method.ts';
import { runStream } from '../../src/run/runner.ts';
import { Rng } from '../../src/util/rng.ts';
import { makeDataset, makeStream } from '../run/fixtures.ts';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const BPE = join(REPO, '../shared/clip/bpe_simple_vocab_16e6.txt.gz');
const root = mkdtempSync(join(tmpdir(), 'moeclip-clip-features-'));
const modelDir = join(root, 'model');
writeRandomClip(modelDir, tinyClipConfig(), { layout: 'hf', seed: 5, bpePath: BPE, perturbStd: 0.1 });

// the reference: an independently loaded model on its own engine, in-process
const ref = await ClipModel.load(modelDir, { threads: 1 });
const shared = new ClipResources({ threads: 1 });
after(async () => {
  await ref.close();
  await shared.dispose();
  rmSync(root, { recursive: true, force: true });
});

function randomImage(r: Rng, w: number, h: number, c: 1 | 3): Image {
  return { width: w, height: h, channels: c, pixels: Uint8Array.from({ length: w * h * c }, () => r.int(256)) };
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

function env(extra: Partial<MethodEnv> = {}): MethodEnv {
  return {
    stream: { classNames: ['a', 'b'], templatesFor: () => ['a photo of a {}.'], kind: 'class-incremental' },
    rng: new Rng(1),
    ...extra,
  };
}

test('ClipFeatures.images: unit-norm embeddings equal to ClipModel.encodeImages; cache modes count as documented', async () => {
  const r = new Rng(3);
  const imgs = [randomImage(r, 20, 16, 3), randomImage(r, 12, 12, 1), randomImage(r, 32, 32, 3)];
  const expected = await ref.encodeImages(imgs);
  const f = await shared.features(modelDir);
  const E = f.dim;
  assert.equal(E, 16);
  const before = f.stats;

  // `lookup` on a cold cache: encoded, not stored
  const a = await f.images(imgs, 'lookup', 2);
  a.forEach((v, i) => {
    assert.ok(maxAbsDiff(v, expected.data.subarray(i * E, (i + 1) * E)) < 1e-5, `image ${i}`);
    assert.ok(Math.abs(Math.hypot(...v) - 1) < 1e-5);
  });
  assert.equal(f.stats.encoded - before.encoded, 3);
  assert.equal(f.stats.cached, before.cached);

  // `cache`: an image repeated inside one call is encoded once, and everything is stored
  const b = await f.images([imgs[0]!, imgs[1]!, imgs[0]!], 'cache');
  assert.equal(f.stats.encoded - before.encoded, 5);
  assert.equal(f.stats.cached - before.cached, 2);
  assert.deepEqual(b[2], b[0]);
  // now hits: nothing new is encoded, the vectors are the cached ones
  const c = await f.images([imgs[1]!, imgs[0]!, imgs[2]!], 'lookup');
  assert.equal(f.stats.encoded - before.encoded, 6); // only imgs[2]
  assert.equal(f.stats.hits - before.hits, 2);
  assert.equal(f.stats.cached - before.cached, 2); // lookup stored nothing
  assert.ok(maxAbsDiff(c[2]!, expected.data.subarray(2 * E, 3 * E)) < 1e-5);
  // `none` always encodes
  await f.images([imgs[0]!], 'none');
  assert.equal(f.stats.encoded - before.encoded, 7);
});

test('imageKey: equal for equal bytes and size, different when a pixel, the size or the channels differ', () => {
  const r = new Rng(4);
  const a = randomImage(r, 6, 4, 1);
  const same: Image = { ...a, pixels: Uint8Array.from(a.pixels) };
  assert.equal(imageKey(a), imageKey(same));
  const px = Uint8Array.from(a.pixels);
  px[5] = (px[5]! + 1) % 256;
  assert.notEqual(imageKey(a), imageKey({ ...a, pixels: px }));
  assert.notEqual(imageKey(a), imageKey({ ...a, width: 4, height: 6 }));
  const rgb: Image = { width: 2, height: 4, channels: 3, pixels: a.pixels };
  const gray: Image = { width: 6, height: 4, channels: 1, pixels: a.pixels };
  assert.notEqual(imageKey(rgb), imageKey(gray));
});

test('ClipFeatures.classEmbeddings equals ClipModel.zeroShotClassifier (template ensemble, renormalised)', async () => {
  const f = await shared.features(modelDir);
  const names = ['cat', 'red car', 'tree'];
  const templates = ['a photo of a {}.', 'a drawing of the {}.', '{}'];
  const expected = await ref.zeroShotClassifier(names, templates);
  const got = await f.classEmbeddings(names, names.map(() => templates));
  got.forEach((v, i) => assert.ok(maxAbsDiff(v, expected.data.subarray(i * 16, (i + 1) * 16)) < 1e-5, names[i]));
  // per-class template lists: class 1 with a single template equals the single-template classifier
  const single = await ref.zeroShotClassifier(['red car'], ['a drawing of the {}.']);
  const mixed = await f.classEmbeddings(['cat', 'red car'], [templates, ['a drawing of the {}.']]);
  assert.ok(maxAbsDiff(mixed[1]!, single.data) < 1e-5);
  await assert.rejects(f.classEmbeddings(['x'], [['no placeholder']]), /no \{\} placeholder/);
});

test('ClipResources: one model per folder (relative path, symlink), a missing folder is named', async () => {
  const a = await shared.features(modelDir);
  const b = await shared.features(relative(process.cwd(), modelDir));
  const link = join(root, 'link');
  symlinkSync(modelDir, link);
  const c = await shared.features(link);
  assert.equal(a, b);
  assert.equal(a, c);
  assert.equal(shared.modelDirs.length, 1);
  const missing = join(root, 'nope');
  assert.throws(() => checkModelDir(missing), new RegExp(`model folder ${missing}: not found`));
  // a method resolves a relative model against env.baseDir and shares the caller's resources
  const lease = await acquireClip(env({ baseDir: root, resources: { [CLIP_RESOURCES]: shared } }), 'model', 'test');
  assert.equal(lease.features, a);
  await lease.release(); // shared: still usable afterwards
  assert.equal((await a.images([randomImage(new Rng(9), 4, 4, 1)], 'none')).length, 1);
  await assert.rejects(createMethod('ncm-clip', { model: 'nope' }, env({ baseDir: root })), /ncm-clip: method\.model: model folder .*nope: not found/);
  await assert.rejects(createMethod('ncm-clip', { model: modelDir, metric: 'manhattan' }, env()), /method\.metric/);
});

test('ncm-clip on a toy stream: class means and predictions equal NCM computed on independent CLIP embeddings', async () => {
  const C = 4;
  const train = makeDataset('toy', 'train', C, 6, { pattern: true, seed: 2 });
  const testDs = makeDataset('toy', 'test', C, 3, { pattern: true, seed: 3, offset: 1000 });
  const stream = makeStream(train, testDs, [[0, 1], [2, 3]], { seed: 7 });
  const resources = new ClipResources({ threads: 1, worker: false });
  try {
    const method = (await createMethod('ncm-clip', { model: modelDir }, {
      ...env(),
      stream: { classNames: stream.classNames, templatesFor: (l) => stream.templatesFor(l), kind: stream.kind },
      resources: { [CLIP_RESOURCES]: resources },
    })) as NcmClipMethod;
    assert.ok(method instanceof NcmClipMethod);
    const res = await runStream({ stream, method, memory: null, options: { batchSize: 5, evalPeriod: 0, evalBatchSize: 4, onlineIter: 2 }, rng: 1 });

    // independent truth: embeddings of every training / test image, plain means, argmax of cosine to the means
    const emb = async (ims: Image[]) => {
      const m = await ref.encodeImages(ims);
      return ims.map((_, i) => m.data.subarray(i * 16, (i + 1) * 16));
    };
    const trainItems = stream.tasks.flatMap((t) => t.train);
    const trainEmb = await emb(trainItems.map((it) => it.dataset.image(it.index)));
    const means = Array.from({ length: C }, () => new Float64Array(16));
    const counts = new Array<number>(C).fill(0);
    trainItems.forEach((it, i) => {
      counts[it.label]! += 1;
      for (let d = 0; d < 16; d++) means[it.label]![d]! += trainEmb[i]![d]!;
    });
    means.forEach((m, c) => m.forEach((_, d) => (m[d] = m[d]! / counts[c]!)));
    for (let c = 0; c < C; c++) assert.ok(maxAbsDiff(method.ncm.classMean(c)!, means[c]!) < 1e-5, `mean of class ${c}`);

    const testItems = stream.tasks.flatMap((t) => t.test);
    const testEmb = await emb(testItems.map((it) => it.dataset.image(it.index)));
    const expectPred = testEmb.map((f) => {
      let best = -1;
      let bestS = -Infinity;
      means.forEach((m, c) => {
        let dot = 0;
        let q = 0;
        for (let d = 0; d < 16; d++) {
          dot += f[d]! * m[d]!;
          q += m[d]! * m[d]!;
        }
        const s = dot / Math.sqrt(q);
        if (s > bestS) {
          bestS = s;
          best = c;
        }
      });
      return best;
    });
    assert.ok(new Set(expectPred).size >= 3, 'the toy problem should not collapse to one class');
    const got = await method.predict(testItems.map((it) => it.dataset.image(it.index)), [0, 1, 2, 3]);
    assert.deepEqual([...got], expectPred);
    // the runner's last end-of-task accuracy is the same fraction
    const acc = expectPred.filter((p, i) => p === testItems[i]!.label).length / testItems.length;
    assert.equal(res.metrics.A_last, acc);

    // caching: the identity train transform gives training images the bytes their prequential prediction
    // cached, so every image was encoded exactly once (24 training + 12 test images)
    const f = await resources.features(modelDir);
    assert.equal(f.stats.encoded, 24 + 12);
    const cost = method.describeCost();
    assert.equal(cost.trainableParams, 0);
    assert.equal(cost.extra?.['classMeans'], C);
    assert.equal(cost.totalParams, f.backboneParams + C * 16);

    // the plain `ncm` method on `features: clip` (a FeatureFn) with cosine finds the same means and predictions
    const plain = await createMethod('ncm', { features: 'clip', metric: 'cosine' }, { ...env(), featureFns: { clip: clipFeatureFn(f) } });
    await runStream({ stream, method: plain, memory: null, options: { batchSize: 5, evalPeriod: 0 }, rng: 1 });
    const got2 = await plain.predict(testItems.map((it) => it.dataset.image(it.index)), [0, 1, 2, 3], {
      classNames: stream.classNames,
      templatesFor: () => [],
      kind: stream.kind,
      exposedClasses: [0, 1, 2, 3],
      purpose: 'task_end',
      reportPhase: () => {},
    });
    assert.deepEqual([...got2], expectPred);
    await method.dispose?.();
  } finally {
    await resources.dispose();
  }
});
