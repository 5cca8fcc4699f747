/**
 * MoeLayout bookkeeping against hand-worked cases: site selection, expert ids and router columns through add and
 * remove, router tensor shrinking, activate-freeze with and without masking, JSON round trips and errors.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Graph } from '../../src/graph/index.ts';
import type { TensorData } from '../../src/runtime/types.ts';
import { Rng } from '../../src/util/rng.ts';
import {
  MoeLayout,
  buildMoeHooks,
  growRouterTensor,
  moeWeightSource,
  routerTensorName,
  shrinkRouterTensor,
  usageOutputName,
  type MoeSite,
} from '../../src/moe/index.ts';

const CFG = { vision: { layers: 4, width: 8 }, text: { layers: 3, width: 6 } };

test('sites from towers and blocks: all, last n, explicit indices; errors name the field', () => {
  assert.deepEqual(MoeLayout.forClip(CFG).sites.map((s) => s.key), ['image.0', 'image.1', 'image.2', 'image.3', 'text.0', 'text.1', 'text.2']);
  const last = MoeLayout.forClip(CFG, { blocks: { last: 2 } });
  assert.deepEqual(last.sites.map((s) => `${s.key}:${s.width}`), ['image.2:8', 'image.3:8', 'text.1:6', 'text.2:6']);
  assert.deepEqual(MoeLayout.forClip(CFG, { towers: ['text'], blocks: [2, 0] }).sites.map((s) => s.key), ['text.0', 'text.2']);
  assert.equal(last.site('image', 1), undefined);
  assert.equal(last.site('text', 2)!.width, 6);
  assert.throws(() => MoeLayout.forClip(CFG, { blocks: [1, 3] }), /blocks\[1\]: layer 3 is out of range for the text tower \(3 layers\)/);
  assert.throws(() => MoeLayout.forClip(CFG, { towers: ['image'], blocks: [0, -1] }), /blocks\[1\]: layer -1 is out of range/);
  assert.throws(() => MoeLayout.forClip(CFG, { blocks: [1, 1] }), /blocks\[1\]: layer 1 is listed twice/);
  assert.throws(() => MoeLayout.forClip(CFG, { blocks: { last: 4 } }), /blocks\.last must be an integer in 1\.\.3 for the text tower/);
  assert.throws(() => MoeLayout.forClip(CFG, { towers: ['image', 'audio' as 'image'] }), /towers\[1\]/);
  assert.throws(() => MoeLayout.forClip(CFG, { bottleneck: 0 }), /bottleneck/);
});

test('experts: stable ids, router columns follow the order, removal returns the columns to keep; router tensors shrink and grow', () => {
  const L = MoeLayout.forClip(CFG, { towers: ['image'], blocks: [0], experts: 3, routers: 2 });
  const s = L.sites[0]!;
  assert.deepEqual(L.experts(s), [0, 1, 2]);
  assert.deepEqual(L.addExperts(s, 2), [3, 4]);
  L.setAllowed(1, s, [4, 1, 3]);
  assert.deepEqual(L.allowedExperts(1, s), [1, 3, 4]);
  assert.deepEqual(L.allowedColumns(1, s), [1, 3, 4]);
  L.freeze(s, [1, 2], 0);
  L.addUsage(0, s, [5, 6, 7, 8, 9]);
  const keep = L.removeExperts(s, [1, 3]);
  assert.deepEqual(keep, [0, 2, 4]);
  assert.deepEqual(L.experts(s), [0, 2, 4]);
  assert.deepEqual(L.allowedExperts(1, s), [4]);
  assert.deepEqual(L.frozen(s), [2]);
  assert.deepEqual(L.usage(0, s), [5, 7, 9]);
  assert.deepEqual(L.addExperts(s, 1), [5], 'ids are never reused');
  assert.equal(L.column(s, 5), 3);
  assert.throws(() => L.removeExperts(s, [1]), /site image\.0 has no expert 1/);
  assert.deepEqual(L.tensorShapes().get(routerTensorName(s, 1, 'gate')), [8, 4]);
  assert.deepEqual(L.tensorShapes().get('moe.image.0.e5.up.weight'), [8, 64]);

  // a [d=2, E=5] router: rows (0..4) and (10..14); keep columns 0, 2, 4
  const W: TensorData = { dtype: 'float32', dims: [2, 5], data: Float32Array.of(0, 1, 2, 3, 4, 10, 11, 12, 13, 14) };
  const shrunk = shrinkRouterTensor(W, keep);
  assert.deepEqual(shrunk.dims, [2, 3]);
  assert.deepEqual(Array.from(shrunk.data as Float32Array), [0, 2, 4, 10, 12, 14]);
  const grown = growRouterTensor(shrunk, 2);
  assert.deepEqual(grown.dims, [2, 5]);
  assert.deepEqual(Array.from(grown.data as Float32Array), [0, 2, 4, 0, 0, 10, 12, 14, 0, 0]);
  assert.throws(() => shrinkRouterTensor(W, [5]), /column 5 out of range/);
});

test('freezeTopUsed: top-k of the router counts; already frozen experts compete (reference) unless maskFrozen (CM-MoE)', () => {
  const make = () => {
    const L = MoeLayout.forClip(CFG, { towers: ['image'], blocks: [1, 2], experts: 4, routers: 2 });
    return L;
  };
  const L = make();
  const [a, b] = L.sites as [MoeSite, MoeSite];
  L.addUsage(0, a, [3, 10, 1, 7]);
  L.addUsage(0, b, [2, 2, 5, 0]); // tie between experts 0 and 1: lower column first
  assert.deepEqual(L.freezeTopUsed(0, 2), { 'image.1': [1, 3], 'image.2': [2, 0] });
  assert.equal(L.frozenBy(a, 1), 0);
  // router 1 prefers the same experts: without masking nothing new is frozen at site a
  L.addUsage(1, a, [1, 9, 0, 8]);
  L.addUsage(1, b, [0, 4, 6, 1]);
  const unmasked = L.clone();
  assert.deepEqual(unmasked.freezeTopUsed(1, 2), { 'image.1': [1, 3], 'image.2': [2, 1] });
  assert.deepEqual(unmasked.frozen(a), [1, 3]);
  assert.deepEqual(unmasked.frozen(b), [0, 1, 2]);
  assert.equal(unmasked.frozenBy(a, 1), 0, 'the first freezer is kept');
  assert.equal(unmasked.frozenBy(b, 1), 1);
  // masking: only unfrozen experts are candidates
  assert.deepEqual(L.freezeTopUsed(1, 2, { maskFrozen: true }), { 'image.1': [0, 2], 'image.2': [1, 3] });
  assert.deepEqual(L.frozen(a), [0, 1, 2, 3]);
  // no unfrozen expert left: nothing is taken
  assert.deepEqual(L.freezeTopUsed(1, 2, { maskFrozen: true }), { 'image.1': [], 'image.2': [] });
  assert.throws(() => make().freezeTopUsed(0, 5), /freezeTopUsed: k=5 exceeds the 4 experts of site image\.1/);
  assert.throws(() => make().freezeTopUsed(3, 1), /no router 3/);
});

test('trainable experts and tensor names of a router: allowed and not frozen, plus its gate and noise', () => {
  const L = MoeLayout.forClip(CFG, { towers: ['text'], blocks: [0, 2], experts: 3, routers: 2 });
  const [s0, s2] = L.sites as [MoeSite, MoeSite];
  L.freeze(s0, [0]);
  L.setAllowed(1, s2, [1, 2]);
  L.freeze(s2, [2]);
  assert.deepEqual(L.trainableExperts(0), { 'text.0': [1, 2], 'text.2': [0, 1] });
  assert.deepEqual(L.trainableExperts(1), { 'text.0': [1, 2], 'text.2': [1] });
  const names = L.trainableTensorNames(1, { noise: false });
  assert.deepEqual(names.filter((n) => n.startsWith('moe.text.2.')), [
    'moe.text.2.e1.down.weight',
    'moe.text.2.e1.down.bias',
    'moe.text.2.e1.up.weight',
    'moe.text.2.e1.up.bias',
    'moe.text.2.r1.gate',
  ]);
  assert.ok(L.trainableTensorNames(1).includes('moe.text.0.r1.noise'));
  assert.equal(names.filter((n) => n.includes('.r0.')).length, 0);
});

test('usage counters accumulate from graph outputs by name', () => {
  const L = MoeLayout.forClip(CFG, { towers: ['image'], blocks: { last: 2 }, experts: 3, routers: 1 });
  const out = (v: number[]): TensorData => ({ dtype: 'float32', dims: [3], data: Float32Array.from(v) });
  assert.deepEqual(L.addUsageFromOutputs(0, { [usageOutputName('image.3')]: out([1, 0, 3]), loss: out([9, 9, 9]) }), ['image.3']);
  L.addUsageFromOutputs(0, { 'usage.image.3': out([2, 2, 0]), 'usage.image.2': out([0, 4, 0]) });
  assert.deepEqual(L.usage(0, 'image.3'), [3, 2, 3]);
  assert.deepEqual(L.usage(0, 'image.2'), [0, 4, 0]);
  assert.throws(() => L.addUsage(0, 'image.2', [1, 2]), /site image\.2 has 3 experts, got 2 counts/);
  L.resetUsage();
  assert.deepEqual(L.usage(0, 'image.3'), [0, 0, 0]);
});

test('JSON round trip keeps sites, ids, masks, frozen records, usage and the id counters', () => {
  const L = MoeLayout.forClip(CFG, { blocks: { last: 1 }, experts: 2, routers: 3, bottleneck: 16 });
  L.addExperts('image.3', 3);
  L.removeExperts('image.3', [1]);
  L.removeRouter(1);
  L.setAllowed(2, 'text.2', [1]);
  L.addUsage(2, 'image.3', [1, 2, 3, 4]);
  L.freezeTopUsed(2, 1);
  const json = JSON.parse(JSON.stringify(L));
  const back = MoeLayout.fromJSON(json);
  assert.deepEqual(back.toJSON(), L.toJSON());
  assert.equal(back.bottleneck, 16);
  assert.deepEqual(back.routers, [0, 2]);
  assert.deepEqual(back.experts('image.3'), [0, 2, 3, 4]);
  assert.deepEqual(back.frozen('image.3'), [4]);
  assert.equal(back.frozenBy('image.3', 4), 2);
  assert.deepEqual(back.allowedExperts(2, 'text.2'), [1]);
  assert.deepEqual(back.usage(2, 'image.3'), [1, 2, 3, 4]);
  assert.deepEqual(back.addExperts('image.3', 1), [5]);
  assert.equal(back.addRouter(), 3);
  // errors name the field
  const bad = structuredClone(json);
  bad.sites[1].experts = [0, 0];
  assert.throws(() => MoeLayout.fromJSON(bad, 'ckpt'), /ckpt\.sites\[1\]\.experts: an expert id is listed twice/);
  const bad2 = structuredClone(json);
  bad2.routers[1].allowed = { 'text.9': [0] };
  assert.throws(() => MoeLayout.fromJSON(bad2), /moe layout\.routers\[1\]\.allowed: unknown site 'text\.9'/);
  assert.throws(() => MoeLayout.fromJSON({ ...json, format: 'x' }), /\.format/);
});

test('init: experts from the Rng, routers zero; topK above the experts of a site is an error naming the option', () => {
  const L = MoeLayout.forClip(CFG, { towers: ['image'], blocks: [0], experts: 2, routers: 1, bottleneck: 4 });
  const a = L.initTensors(new Rng(5), 'float64');
  const b = L.initTensors(new Rng(5), 'float64');
  assert.deepEqual(a, b);
  assert.deepEqual(Object.keys(a).sort(), [...L.tensorShapes().keys()].sort());
  for (const [name, dims] of L.tensorShapes()) assert.deepEqual(a[name]!.dims, dims, name);
  assert.ok((a['moe.image.0.r0.gate']!.data as Float64Array).every((v) => v === 0));
  assert.notDeepEqual(a['moe.image.0.e0.down.weight']!.data, a['moe.image.0.e1.down.weight']!.data);
  const g = new Graph({ name: 'k' });
  const source = moeWeightSource(g, a);
  assert.throws(() => buildMoeHooks(g, L, { source, mode: { kind: 'eval', router: 0 }, topK: 3 }), /topK=3 exceeds the 2 experts router 0 may select at site image\.0/);
  assert.throws(() => buildMoeHooks(g, L, { source, mode: { kind: 'eval', router: 0 }, topK: 0 }), /topK must be a positive integer/);
});
