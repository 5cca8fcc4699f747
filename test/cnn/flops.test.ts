/** FLOP counting of the CNN track, by hand on the tiny layout. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { convLayerFlops, convNetFlops, FlopCounter, forwardFlops, linearFlops, trainingFlops } from '../../src/cnn/flops.ts';
import { resnetLayout } from '../../src/cnn/resnet.ts';
import { allocate, freeOwners } from '../../src/cnn/masks.ts';

test('forward FLOPs are 2·MACs over active channels; training counts 3×', () => {
  const L = resnetLayout({ width: 0.0625, imageSize: 8 });
  const stem = L.convs[0]!;
  // stem alone by hand: 8·8 positions × 9 taps × 3 in × 4 out
  assert.equal(2 * stem.outSize ** 2 * 9 * 3 * stem.outChannels, 2 * 64 * 9 * 3 * 4);
  const macs = L.convs.reduce((s, c) => s + c.outSize ** 2 * c.kernel ** 2 * c.inChannels * c.outChannels, 0) + L.features * 10;
  assert.equal(forwardFlops(L, null, null, 10), 2 * macs);
  const o = freeOwners(L);
  assert.equal(forwardFlops(L, o, new Set([0]), 10), 2 * stem.outSize ** 2 * 9 * 3 * 0, 'no channel owned: only the stem input side, times 0 outputs');
  allocate(o, 0);
  assert.equal(forwardFlops(L, o, new Set([0]), 10), 2 * macs);
  const f = new FlopCounter();
  f.infer(100, 3);
  f.train(100, 2);
  f.train(100, 1, true);
  assert.deepEqual([f.inference, f.training, f.retraining], [300, 600, 300]);
});

test('one conv layer by hand, masked channels cost nothing; the head; training = 3 × forward', () => {
  // 3×3 conv, 4 → 6 channels on 5×7 output maps: 5·7 positions × 9 taps × 4 in × 6 out = 7560 MACs
  const l = { kernel: 3, inChannels: 4, outChannels: 6, outH: 5, outW: 7 };
  assert.equal(convLayerFlops(l), 2 * 7560);
  // 2 of 4 inputs and 3 of 6 outputs active: a quarter
  assert.equal(convLayerFlops({ ...l, activeIn: 2, activeOut: 3 }), 2 * 5 * 7 * 9 * 2 * 3);
  assert.equal(convLayerFlops({ ...l, activeOut: 0 }), 0);
  // 1×1 conv 6 → 8 on 5×7 plus a 8 → 10 head with 5 active features
  const net = convNetFlops([l, { kernel: 1, inChannels: 6, outChannels: 8, outH: 5, outW: 7 }], { inFeatures: 8, outFeatures: 10, activeIn: 5 });
  assert.equal(net, 2 * 7560 + 2 * 35 * 48 + 2 * 50);
  assert.equal(linearFlops({ inFeatures: 8, outFeatures: 10 }), 160);
  assert.equal(trainingFlops(net), 3 * net);
  assert.throws(() => convLayerFlops({ ...l, activeIn: 5 }), /conv\.activeIn: 5 exceeds 4/);
  assert.throws(() => convNetFlops([l, { ...l, kernel: 1.5 }]), /layers\[1\]\.kernel/);
});

test('FlopCounter: totals, JSON round trip, bad input named', () => {
  const f = new FlopCounter();
  f.infer(10, 4);
  f.train(10, 2);
  f.train(5, 2, true);
  assert.equal(f.total, 40 + 60 + 30);
  const g = FlopCounter.fromJSON(JSON.parse(JSON.stringify(f)));
  assert.deepEqual(g.toJSON(), { inference: 40, training: 60, retraining: 30 });
  assert.throws(() => f.infer(-1, 2), /infer\.perImage/);
  assert.throws(() => f.train(1, 0.5), /train\.images/);
  assert.throws(() => FlopCounter.fromJSON({ inference: 1, training: -2, retraining: 0 }), /flops\.training/);
});
