import { test } from 'node:test';
import assert from 'node:assert/strict';
import { z } from 'zod';
import type { Image, StreamItem } from '../../src/data/types.ts';
import type { Method, MethodEnv, ObserveContext, PredictContext } from '../../src/methods/method.ts';
import { createMethod, getMethod, listMethods, registerMethod } from '../../src/methods/registry.ts';
import { pixelFeatures } from '../../src/methods/pixel-features.ts';
import { NcmMethod } from '../../src/methods/ncm.ts';
import { Rng } from '../../src/util/rng.ts';

const gray = (w: number, h: number, px: number[]): Image => ({ width: w, height: h, channels: 1, pixels: Uint8Array.from(px) });

const env = (extra: Partial<MethodEnv> = {}): MethodEnv => ({
  stream: { classNames: ['a', 'b', 'c'], templatesFor: () => ['{}'], kind: 'class-incremental' },
  rng: new Rng(1),
  ...extra,
});

function observeCtx(step = 0): ObserveContext {
  return {
    classNames: ['a', 'b', 'c'],
    templatesFor: () => ['{}'],
    kind: 'class-incremental',
    rng: new Rng(2),
    memory: null,
    step,
    stepsThisBatch: 1,
    exposedClasses: [0, 1],
    samplesSeen: 0,
    batchIndex: 0,
    task: null,
    reportPhase: () => {},
  };
}
const predictCtx: PredictContext = {
  classNames: ['a', 'b', 'c'],
  templatesFor: () => ['{}'],
  kind: 'class-incremental',
  exposedClasses: [0, 1],
  purpose: 'anytime',
  reportPhase: () => {},
};

async function train(m: Method, images: Image[], labels: number[], numIncoming = images.length, step = 0) {
  const items = labels.map((label, index) => ({ label, index, task: 0 }) as unknown as StreamItem);
  await m.observe({ images, labels: Int32Array.from(labels), items, numIncoming }, observeCtx(step));
}

test('pixelFeatures: area resize, colour layouts, normalisation', () => {
  // 4×4 → 2×2 averages 2×2 blocks
  const img = gray(4, 4, [0, 0, 255, 255, 0, 0, 255, 255, 51, 51, 102, 102, 51, 51, 102, 102]);
  const f = pixelFeatures(img, 2, 'gray', false);
  assert.deepEqual([...f].map((v) => Math.round(v * 255)), [0, 255, 51, 102]);
  // 3 → 2 columns: out0 = (0·1 + 90·0.5)/1.5 = 30, out1 = (90·0.5 + 180·1)/1.5 = 150; the single row is upsampled to 2
  const g = pixelFeatures(gray(3, 1, [0, 90, 180]), 2, 'gray', false);
  assert.deepEqual([...g].map((v) => Math.round(v * 255 * 1000) / 1000), [30, 150, 30, 150]);
  // RGB → gray luma; gray → RGB replication
  const rgb: Image = { width: 1, height: 1, channels: 3, pixels: Uint8Array.from([255, 0, 0]) };
  assert.ok(Math.abs(pixelFeatures(rgb, 1, 'gray', false)[0]! - 0.299) < 1e-6);
  assert.deepEqual([...pixelFeatures(gray(1, 1, [255]), 1, 'rgb', false)], [1, 1, 1]);
  // L2 normalisation
  const n = pixelFeatures(gray(2, 1, [255, 255]), 1, 'gray', true);
  assert.ok(Math.abs(n[0]! - 1) < 1e-6);
  const v = pixelFeatures(gray(2, 2, [255, 0, 0, 255]), 2, 'gray', true);
  assert.ok(Math.abs([...v].reduce((s, x) => s + x * x, 0) - 1) < 1e-6);
  assert.throws(() => pixelFeatures({ width: 2, height: 2, channels: 1, pixels: new Uint8Array(3) }, 2, 'gray', false), /3 bytes/);
});

/*
 * Toy NCM, 2×2 gray images, raw features in [0,1], no normalisation:
 *   class 0: [0,0,0,0], [1,1,0,0]  → μ0 = [.5,.5,0,0]
 *   class 1: [0,0,1,1]             → μ1 = [0,0,1,1]
 *   q1 = [1,1,1,0]: ‖q1−μ0‖² = .25+.25+1+0 = 1.5, ‖q1−μ1‖² = 1+1+0+1 = 3 → 0
 *   q2 = [0,0,1,0]: ‖q2−μ0‖² = .25+.25+1 = 1.5, ‖q2−μ1‖² = 1 → 1
 */
test('NCM on a hand-checkable toy case', async () => {
  const m = await createMethod('ncm', { size: 2, color: 'gray', normalize: false }, env());
  assert.equal(m.name, 'ncm');
  const q = [gray(2, 2, [255, 255, 255, 0]), gray(2, 2, [0, 0, 255, 0])];
  // before any training: no class mean → abstain (-1)
  assert.deepEqual([...(await m.predict(q, [0, 1], predictCtx))], [-1, -1]);
  await train(m, [gray(2, 2, [0, 0, 0, 0]), gray(2, 2, [255, 255, 0, 0]), gray(2, 2, [0, 0, 255, 255])], [0, 0, 1]);
  const ncm = m as NcmMethod;
  assert.deepEqual([...ncm.classMean(0)!], [0.5, 0.5, 0, 0]);
  assert.deepEqual([...ncm.classMean(1)!], [0, 0, 1, 1]);
  assert.deepEqual([...(await m.predict(q, [0, 1], predictCtx))], [0, 1]);
  // candidates restrict the choice; a candidate without a mean is skipped
  assert.deepEqual([...(await m.predict(q, [1], predictCtx))], [1, 1]);
  assert.deepEqual([...(await m.predict(q, [2, 0], predictCtx))], [0, 0]);
  assert.deepEqual([...(await m.predict(q, [2], predictCtx))], [-1, -1]);
  // later steps on the same batch, and replay samples, do not move the means
  await train(m, [gray(2, 2, [255, 255, 255, 255])], [1], 1, 1);
  await train(m, [gray(2, 2, [0, 0, 0, 0]), gray(2, 2, [255, 255, 255, 255])], [0, 1], 1, 0);
  // step 0, one incoming sample of class 0 (all zeros): μ0 = mean of 3 samples = [1/3,1/3,0,0]; the replay one is ignored
  const mu0 = ncm.classMean(0)!;
  assert.ok(Math.abs(mu0[0]! - 1 / 3) < 1e-12 && mu0[2] === 0);
  assert.deepEqual([...ncm.classMean(1)!], [0, 0, 1, 1]);
  const cost = m.describeCost();
  assert.equal(cost.trainableParams, 0);
  assert.equal(cost.totalParams, 2 * 4);
  assert.deepEqual(cost.extra, { classMeans: 2, featureDim: 4 });
});

test('NCM on supplied feature vectors, euclidean vs cosine', async () => {
  // feature = first two pixel bytes / 10
  const featureFns = { vec: async (imgs: Image[]) => imgs.map((im) => Float32Array.from([im.pixels[0]! / 10, im.pixels[1]! / 10])) };
  const data = [gray(2, 1, [10, 0]), gray(2, 1, [30, 0]), gray(2, 1, [0, 10])]; // μ0 = [2,0], μ1 = [0,1]
  const q = [gray(2, 1, [10, 9])]; // [1, .9]: euclid → 1 (1.01 < 1.81), cosine → 0 (1/1·… : 2/2=1 > .9)
  const eu = await createMethod('ncm', { features: 'vec', normalize: false }, env({ featureFns }));
  await train(eu, data, [0, 0, 1]);
  assert.deepEqual([...(await eu.predict(q, [0, 1], predictCtx))], [1]);
  const co = await createMethod('ncm', { features: 'vec', normalize: false, metric: 'cosine' }, env({ featureFns }));
  await train(co, data, [0, 0, 1]);
  assert.deepEqual([...(await co.predict(q, [0, 1], predictCtx))], [0]);
  await assert.rejects(createMethod('ncm', { features: 'clip' }, env({ featureFns })), /'clip' names no feature extractor; available: pixels, vec/);
});

test('registry: unknown names list the known methods; options are validated with field paths', async () => {
  assert.ok(listMethods().includes('ncm'));
  await assert.rejects(getMethod('nope'), /unknown method 'nope'; known methods: .*ncm/);
  await assert.rejects(createMethod('ncm', { size: 0 }, env()), /method\.size: expected a positive integer/);
  await assert.rejects(createMethod('ncm', { sise: 3 }, env()), /method: Unrecognized key.*sise/);
  registerMethod('const-test', {
    summary: 'always predicts its option',
    schema: z.strictObject({ label: z.int().default(7) }),
    async create(o) {
      return {
        name: 'const-test',
        async observe() {},
        async predict(images) {
          return new Int32Array(images.length).fill(o.label);
        },
        describeCost: () => ({ trainableParams: 0, totalParams: 0 }),
      };
    },
  });
  const m = await createMethod('const-test', {}, env());
  assert.deepEqual([...(await m.predict([gray(1, 1, [0])], [0], predictCtx))], [7]);
  assert.ok(listMethods().includes('const-test'));
  const ncmDef = await getMethod('ncm');
  assert.throws(() => registerMethod('Bad Name', ncmDef), /must be lower-case/);
});
