/**
 * The probabilities behind a learner's predictions, on hand-computed cases: CLIP's softmax of scaled dot
 * products, and NCM's softmax over the candidates with a class mean (cosine and euclidean), labels unchanged.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Image } from '../../src/data/types.ts';
import { NcmMethod, NcmOptionsSchema } from '../../src/methods/ncm.ts';
import { softmaxDots } from '../../src/methods/zeroshot-clip.ts';

const close = (a: number, b: number, what: string) => assert.ok(Math.abs(a - b) < 1e-12, `${what}: ${a} vs ${b}`);

test('softmaxDots: softmax over j of scale · f_i · w_j, per image', () => {
  const f = [Float32Array.of(1, 0), Float32Array.of(0.5, 0.5)];
  const W = [Float32Array.of(1, 0), Float32Array.of(0, 1), Float32Array.of(-1, 0)];
  const p = softmaxDots(f, () => W, 2);
  // image 0: logits 2, 0, -2; image 1: logits 1, 1, -1
  const z0 = Math.exp(2) + 1 + Math.exp(-2);
  [Math.exp(2) / z0, 1 / z0, Math.exp(-2) / z0].forEach((v, j) => close(p[j]!, v, `image 0, class ${j}`));
  const z1 = 2 * Math.E + Math.exp(-1);
  [Math.E / z1, Math.E / z1, Math.exp(-1) / z1].forEach((v, j) => close(p[3 + j]!, v, `image 1, class ${j}`));
  assert.equal(softmaxDots([], () => W, 1).length, 0);
});

/** An NCM on 1×1 RGB "pixels" (features = the RGB values / 255, not normalised) with two class means. */
async function ncmWith(metric: 'cosine' | 'euclidean'): Promise<NcmMethod> {
  const m = new NcmMethod(NcmOptionsSchema.parse({ size: 1, normalize: false, metric }));
  m.update(0, Float32Array.of(1, 0, 0));
  m.update(2, Float32Array.of(0, 1, 0));
  m.probScale = 3;
  return m;
}

const px = (r: number, g: number, b: number): Image => ({ width: 1, height: 1, channels: 3, pixels: Uint8Array.of(r, g, b) });

test('NcmMethod.predictDetailed: softmax of probScale · cosine over the candidates with a mean, 0 elsewhere', async () => {
  const m = await ncmWith('cosine');
  const img = px(255, 51, 0); // f = (1, 0.2, 0)
  const d = await m.predictDetailed([img], [2, 1, 0]);
  assert.deepEqual([...d.labels], [0]);
  assert.deepEqual([...(await m.predict([img], [2, 1, 0]))], [0]);
  // the score NCM ranks by, f·μ/‖μ‖ (features are taken as unit vectors), with f's float32 green value
  const l0 = 3 * 1;
  const l2 = 3 * Math.fround(51 / 255);
  const z = Math.exp(l0) + Math.exp(l2);
  close(d.probs[0]!, Math.exp(l2) / z, 'class 2');
  assert.equal(d.probs[1], 0, 'class 1 has no mean');
  close(d.probs[2]!, Math.exp(l0) / z, 'class 0');
});

test('NcmMethod.predictDetailed: softmax of −probScale/2 · squared distance (euclidean); abstention gives zeros', async () => {
  const m = await ncmWith('euclidean');
  const img = px(0, 255, 255); // f = (0, 1, 1)
  const d = await m.predictDetailed([img], [0, 2]);
  assert.deepEqual([...d.labels], [2]);
  const d0 = 1 + 1 + 1; // ‖(0,1,1) − (1,0,0)‖²
  const d2 = 0 + 0 + 1;
  const z = Math.exp(-1.5 * d0) + Math.exp(-1.5 * d2);
  close(d.probs[0]!, Math.exp(-1.5 * d0) / z, 'class 0');
  close(d.probs[1]!, Math.exp(-1.5 * d2) / z, 'class 2');
  const none = await m.predictDetailed([img], [1]);
  assert.deepEqual([...none.labels], [-1]);
  assert.deepEqual([...none.probs], [0]);
});
