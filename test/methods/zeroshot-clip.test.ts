/**
 * `zeroshot-clip` (Continual-CLIP) on a tiny random model: it must predict the candidate whose template-ensemble
 * prompt embedding is nearest (largest cosine) to the image embedding, with embeddings computed independently
 * here through a separately loaded ClipModel.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tinyClipConfig } from '../../src/clip/config.ts';
import { writeRandomClip } from '../../src/clip/random.ts';
import { ClipModel } from '../../src/clip/clip.ts';
import type { Image } from '../../src/data/types.ts';
import { CLIP_RESOURCES, ClipResources, DEFAULT_CLIP_MODEL_DIR } from '../../src/methods/clip-resources.ts';
import type { MethodEnv, PredictContext, StreamView } from '../../src/methods/method.ts';
import { createMethod, listMethods, parseMethodOptions } from '../../src/methods/registry.ts';
import { argmaxDot, templatesOf } from '../../src/methods/zeroshot-clip.ts';
import { Rng } from '../../src/util/rng.ts';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const BPE = join(REPO, '../shared/clip/bpe_simple_vocab_16e6.txt.gz');
const root = mkdtempSync(join(tmpdir(), 'moeclip-zeroshot-clip-'));
const modelDir = join(root, 'model');
writeRandomClip(modelDir, tinyClipConfig(), { layout: 'open_clip', seed: 11, bpePath: BPE, perturbStd: 0.1 });

const ref = await ClipModel.load(modelDir, { threads: 1 });
const resources = new ClipResources({ threads: 1 });
after(async () => {
  await ref.close();
  await resources.dispose();
  rmSync(root, { recursive: true, force: true });
});

const CLASSES = ['cat', 'dog', 'red car', 'tree', 'number seven'];
// two "datasets": labels 0-2 use two templates, labels 3-4 a single different one
const TEMPLATES: Record<number, string[]> = { 0: ['a photo of a {}.', 'a sketch of the {}.'], 3: ['itap of a {}'] };
const view: StreamView = {
  classNames: CLASSES,
  templatesFor: (l) => (l < 3 ? TEMPLATES[0]! : TEMPLATES[3]!),
  kind: 'multi-dataset',
};
const ctx: PredictContext = { ...view, exposedClasses: [0, 1, 2, 3, 4], purpose: 'task_end', reportPhase: () => {} };
const env = (): MethodEnv => ({ stream: view, rng: new Rng(1), resources: { [CLIP_RESOURCES]: resources } });

const rng = new Rng(21);
const images: Image[] = Array.from({ length: 12 }, (_, i) => {
  const w = 16 + (i % 3) * 8;
  const c = i % 2 === 0 ? 3 : 1;
  return { width: w, height: 20, channels: c, pixels: Uint8Array.from({ length: w * 20 * c }, () => rng.int(256)) };
});

/** Independent classifier rows: encode each prompt, normalise, average, normalise (float64 here). */
async function referenceClassifier(templatesFor: (label: number) => readonly string[]): Promise<Float64Array[]> {
  const out: Float64Array[] = [];
  for (let c = 0; c < CLASSES.length; c++) {
    const prompts = templatesFor(c).map((t) => t.replaceAll('{}', CLASSES[c]!));
    const m = await ref.encodeTexts(prompts, { normalize: false });
    const acc = new Float64Array(16);
    prompts.forEach((_, k) => {
      const row = m.data.subarray(k * 16, (k + 1) * 16);
      const n = Math.hypot(...row);
      for (let d = 0; d < 16; d++) acc[d]! += row[d]! / n / prompts.length;
    });
    const n = Math.hypot(...acc);
    out.push(acc.map((v) => v / n));
  }
  return out;
}

/** Independent image embeddings (unnormalised encoder output, normalised here). */
async function referenceImages(): Promise<Float64Array[]> {
  const m = await ref.encodeImages(images, { normalize: false });
  return images.map((_, i) => {
    const row = Float64Array.from(m.data.subarray(i * 16, (i + 1) * 16));
    const n = Math.hypot(...row);
    return row.map((v) => v / n);
  });
}

function expected(imgs: Float64Array[], W: Float64Array[], candidates: number[]): { pred: number[]; margin: number } {
  let margin = Infinity;
  const pred = imgs.map((f) => {
    const s = candidates.map((c) => W[c]!.reduce((a, w, d) => a + w * f[d]!, 0));
    const order = s.map((_, j) => j).sort((a, b) => s[b]! - s[a]!);
    if (order.length > 1) margin = Math.min(margin, s[order[0]!]! - s[order[1]!]!);
    return candidates[order[0]!]!;
  });
  return { pred, margin };
}

test('zeroshot-clip is registered with its options (defaults: embedded model, dataset templates)', async () => {
  assert.ok(listMethods().includes('zeroshot-clip'));
  assert.ok(listMethods().includes('ncm-clip'));
  const o = (await parseMethodOptions('zeroshot-clip', {})) as Record<string, unknown>;
  assert.deepEqual(o, { model: DEFAULT_CLIP_MODEL_DIR, templates: 'dataset', batchSize: 64 });
  await assert.rejects(parseMethodOptions('zeroshot-clip', { templates: ['a photo'] }), /method\.templates\.0: a template needs a \{\} placeholder/);
  await assert.rejects(parseMethodOptions('zeroshot-clip', { templates: 'all' }), /method\.templates/);
  await assert.rejects(parseMethodOptions('zeroshot-clip', { batchSize: 0 }), /method\.batchSize: expected a positive integer/);
  await assert.rejects(parseMethodOptions('zeroshot-clip', { modle: 'x' }), /method/);
  assert.deepEqual(templatesOf('first', 1, view), ['a photo of a {}.']);
  assert.deepEqual(templatesOf('dataset', 1, view), TEMPLATES[0]);
  assert.deepEqual(templatesOf(['{} here'], 4, view), ['{} here']);
});

test('argmaxDot: largest dot product, the first candidate on ties, -1 without candidates', () => {
  const f = Float32Array.from([1, 0]);
  assert.equal(argmaxDot(f, [Float32Array.from([0, 1]), Float32Array.from([0.5, 0]), Float32Array.from([0.7, 9])]), 2);
  assert.equal(argmaxDot(f, [Float32Array.from([0.5, 1]), Float32Array.from([0.5, 0])]), 0);
  assert.equal(argmaxDot(f, []), -1);
});

test('zeroshot-clip predicts the candidate with the nearest template-ensemble prompt embedding', async () => {
  const method = await createMethod('zeroshot-clip', { model: modelDir }, env());
  try {
    const W = await referenceClassifier(view.templatesFor);
    const F = await referenceImages();
    // every candidate set: all classes, every pair (so the ranking of every two classes is checked), subsets in
    // another order, a singleton
    const sets: number[][] = [[0, 1, 2, 3, 4], [4, 2, 0], [3]];
    for (let a = 0; a < 5; a++) for (let b = a + 1; b < 5; b++) sets.push([b, a]);
    const seen = new Set<number>();
    for (const cands of sets) {
      const { pred, margin } = expected(F, W, cands);
      const got = await method.predict(images, cands, ctx);
      assert.ok(margin > 1e-5, `reference scores too close to call for ${cands}`);
      assert.deepEqual([...got], pred, `candidates ${cands}`);
      pred.forEach((p) => seen.add(p));
    }
    assert.ok(seen.size >= 4, 'predictions should cover several classes');
    assert.deepEqual([...(await method.predict(images, [], ctx))], new Array(12).fill(-1));
    assert.deepEqual([...(await method.predict([], [1, 2], ctx))], []);

    // the classifier and every image were encoded once: the second round is all cache hits
    const f = await resources.features(modelDir);
    const s0 = f.stats;
    await method.predict(images, [0, 1, 2, 3, 4], ctx);
    assert.equal(f.stats.encoded, s0.encoded);
    assert.equal(f.stats.hits - s0.hits, 12);
    const cost = method.describeCost();
    assert.equal(cost.trainableParams, 0);
    assert.equal(cost.extra?.['classifierRows'], 5);
  } finally {
    await method.dispose?.();
  }
});

test("zeroshot-clip with templates 'first' and an explicit list matches ClipModel.zeroShotClassifier's argmax", async () => {
  const F = await referenceImages();
  const cases: Array<{ templates: 'first' | string[]; per: (l: number) => string[] }> = [
    { templates: 'first', per: (l) => [view.templatesFor(l)[0]!] },
    { templates: ['a blurry photo of {}.', 'art of the {}', '{}!'], per: () => ['a blurry photo of {}.', 'art of the {}', '{}!'] },
  ];
  for (const c of cases) {
    // a model loaded by the method itself (no shared resources): released by dispose
    const method = await createMethod('zeroshot-clip', { model: 'model', templates: c.templates }, { stream: view, rng: new Rng(1), baseDir: root });
    try {
      // independent route per class group: ClipModel.zeroShotClassifier on one template list
      const rows: Float64Array[] = [];
      for (let l = 0; l < CLASSES.length; l++) {
        const m = await ref.zeroShotClassifier([CLASSES[l]!], c.per(l));
        rows.push(Float64Array.from(m.data));
      }
      const cands = [0, 1, 2, 3, 4];
      const { pred, margin } = expected(F, rows, cands);
      assert.ok(margin > 1e-5);
      assert.deepEqual([...(await method.predict(images, cands, ctx))], pred, JSON.stringify(c.templates));
    } finally {
      await method.dispose?.();
    }
  }
});

test('zeroshot-clip: a missing model folder and a label without a name are reported', async () => {
  await assert.rejects(
    createMethod('zeroshot-clip', { model: join(root, 'missing') }, env()),
    /zeroshot-clip: method\.model: model folder .*missing: not found/,
  );
  const method = await createMethod('zeroshot-clip', { model: modelDir }, env());
  try {
    await assert.rejects(method.predict(images.slice(0, 1), [7], ctx), /label 7 has no class name/);
  } finally {
    await method.dispose?.();
  }
});
