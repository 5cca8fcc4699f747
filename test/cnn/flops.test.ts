/** FLOP counting of the CNN track, by hand on the tiny layout. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FlopCounter, forwardFlops } from '../../src/cnn/flops.ts';
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
