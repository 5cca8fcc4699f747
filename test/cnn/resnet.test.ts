/**
 * The CIFAR ResNet-18 variant's layout (channels, strides, spatial sizes, group wiring, every residual a 1×1
 * conv) and the gradient of the whole masked network + head against float32 central finite differences of a
 * few weights (Conv has no float64 CPU kernel in ORT, see engine-notes).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as G from '../../src/graph/index.ts';
import { Engine } from '../../src/runtime/engine.ts';
import type { TensorData } from '../../src/runtime/types.ts';
import { Rng } from '../../src/util/rng.ts';
import { buildResNet, groupPairs, layoutKey, resnetLayout } from '../../src/cnn/resnet.ts';
import { gradFeeds, gradSession } from './grad-graph.ts';
import { CnnNet } from '../../src/cnn/net.ts';

test('layout: width 0.125 at 16 px — channels, strides, sizes, groups and their wiring', () => {
  const L = resnetLayout({ width: 0.125, imageSize: 16 });
  assert.equal(L.groups.length, 17);
  assert.equal(L.convs.length, 1 + 8 * 3);
  assert.equal(L.features, 64);
  assert.equal(L.featureGroup, 16);
  assert.deepEqual(L.groups.map((g) => g.channels), [8, 8, 8, 8, 8, 16, 16, 16, 16, 32, 32, 32, 32, 64, 64, 64, 64]);
  assert.deepEqual(L.groups.map((g) => g.size), [16, 16, 16, 16, 16, 8, 8, 8, 8, 4, 4, 4, 4, 2, 2, 2, 2]);
  const stem = L.convs[0]!;
  assert.deepEqual([stem.inGroup, stem.outGroup, stem.inChannels, stem.kernel, stem.stride], [-1, 0, 3, 3, 1]);
  for (let b = 0; b < 8; b++) {
    const [c1, c2, sk] = L.convs.slice(1 + 3 * b, 4 + 3 * b);
    const stride = b > 0 && b % 2 === 0 ? 2 : 1;
    const inG = b === 0 ? 0 : 2 * b;
    assert.deepEqual([c1!.name, c1!.inGroup, c1!.outGroup, c1!.kernel, c1!.stride, c1!.role], [`b${b}.conv1`, inG, 2 * b + 1, 3, stride, 'main']);
    assert.deepEqual([c2!.name, c2!.inGroup, c2!.outGroup, c2!.kernel, c2!.stride, c2!.role], [`b${b}.conv2`, 2 * b + 1, 2 * b + 2, 3, 1, 'main']);
    // every block has a 1×1 skip conv with the block's stride, writing conv2's group
    assert.deepEqual([sk!.name, sk!.inGroup, sk!.outGroup, sk!.kernel, sk!.stride, sk!.role], [`b${b}.skip`, inG, 2 * b + 2, 1, stride, 'skip']);
    for (const c of [c1!, c2!, sk!]) {
      assert.equal(c.inChannels, L.groups[c.inGroup]!.channels);
      assert.equal(c.outChannels, L.groups[c.outGroup]!.channels);
      assert.equal(c.outSize, L.groups[c.outGroup]!.size);
    }
  }
  assert.deepEqual(groupPairs(L), Array.from({ length: 16 }, (_, i) => [i, i + 1]));
  assert.equal(resnetLayout({ width: 1 }).features, 512);
  assert.equal(resnetLayout({ width: 0.001 }).groups[0]!.channels, 1, 'min 1 channel');
  assert.notEqual(layoutKey(L), layoutKey(resnetLayout({ width: 0.125, imageSize: 16, runningStats: true })));
  assert.throws(() => resnetLayout({ width: -1 }), /resnet: width must be in/);
  assert.throws(() => resnetLayout({ imageSize: 7.5 }), /resnet: imageSize/);
  assert.throws(() => resnetLayout({ inChannels: 0 }), /resnet: inChannels/);
});

const engine = await Engine.create({ threads: 1 });
after(() => engine.close());

test('gradient of the masked network + head matches float32 finite differences; masked-out filters get exactly zero', async () => {
  const S = 8;
  const L = resnetLayout({ width: 0.125, imageSize: S });
  const B = 8;
  const K = 4;
  const F = L.features;
  const rng = new Rng(21);
  const x = Float32Array.from({ length: B * 3 * S * S }, () => rng.normal());
  const labels = BigInt64Array.from({ length: B }, (_, i) => BigInt(i % K));
  // three quarters of every group's channels take part
  const masks = L.groups.map((gr) => Float32Array.from({ length: gr.channels }, (_, i) => (i % 4 === 3 ? 0 : 1)));
  const w = CnnNet.initWeights(L, new Rng(22));
  const hw = Float32Array.from({ length: K * F }, () => rng.normal() * 0.3);
  const hb = Float32Array.from({ length: K }, () => rng.normal() * 0.1);

  const h = await gradSession(engine, L, K);
  const feeds = (ww: Record<string, Float32Array>, hww: Float32Array): Record<string, TensorData> => gradFeeds(L, x, Array.from(labels, Number), ww, { w: hww, b: hb }, masks);
  const names = ['loss', ...L.convs.map((c) => `grad.${c.weight}`), 'grad.head.w'];
  const base = await engine.run(h, feeds(w, hw), names);
  const lossAt = async (ww: Record<string, Float32Array>, hww: Float32Array) => (await engine.run(h, feeds(ww, hww), ['loss']))['loss']!.data[0] as number;

  // filters writing masked-out channels: exactly zero gradient
  for (const c of L.convs) {
    const gr = base[`grad.${c.weight}`]!.data as Float32Array;
    const n = c.inChannels * c.kernel * c.kernel;
    const m = masks[c.outGroup]!;
    for (let o = 0; o < c.outChannels; o++) if (m[o] === 0) assert.ok(gr.subarray(o * n, (o + 1) * n).every((v) => v === 0), `${c.name} filter ${o}`);
  }

  // the loss is strongly curved in single conv weights (BN over 8 images and few channels): the central
  // difference converges only for small steps, where float32 rounding of the loss (~1e-7) is still negligible
  const eps = 3e-4;
  let checked = 0;
  for (const name of ['stem', 'b0.conv1', 'b2.skip', 'b5.conv2', 'b7.skip', 'b7.conv2']) {
    const c = L.convs.find((cc) => cc.name === name)!;
    const gr = base[`grad.${c.weight}`]!.data as Float32Array;
    // the weight with the largest |gradient|, and the largest of another filter
    const n = c.inChannels * c.kernel * c.kernel;
    const argmax = (skip: number) => {
      let best = -1;
      for (let i = 0; i < gr.length; i++) if (Math.floor(i / n) !== skip && (best < 0 || Math.abs(gr[i]!) > Math.abs(gr[best]!))) best = i;
      return best;
    };
    const first = argmax(-1);
    for (const i of [first, argmax(Math.floor(first / n))]) {
      const plus = { ...w, [c.weight]: w[c.weight]!.slice() };
      plus[c.weight]![i]! += eps;
      const minus = { ...w, [c.weight]: w[c.weight]!.slice() };
      minus[c.weight]![i]! -= eps;
      const fd = ((await lossAt(plus, hw)) - (await lossAt(minus, hw))) / (2 * eps);
      const an = gr[i]!;
      assert.ok(Math.abs(fd - an) <= 0.03 * Math.abs(an) + 2e-3, `${name}[${i}]: autodiff ${an} vs finite difference ${fd}`);
      checked++;
    }
  }
  const ghw = base['grad.head.w']!.data as Float32Array;
  for (const i of [0, 5, 2 * F + 1, K * F - 1]) {
    const p = hw.slice();
    p[i]! += 1e-2;
    const m = hw.slice();
    m[i]! -= 1e-2;
    const fd = ((await lossAt(w, p)) - (await lossAt(w, m))) / 2e-2;
    assert.ok(Math.abs(fd - ghw[i]!) <= 0.01 * Math.abs(ghw[i]!) + 1e-4, `head.w[${i}]: autodiff ${ghw[i]} vs finite difference ${fd}`);
    checked++;
  }
  assert.ok(checked >= 10);
});
