/**
 * PackNet-style filter ownership over the ResNet layout: disjoint subnets, exact prune counts on the lowest
 * mean |w| (own inputs only, the skip following conv2), zeroing of foreign incoming weights, re-initialisation
 * of free filters, merges, id compaction and free capacity — against hand-built weights and direct counts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../src/util/rng.ts';
import { resnetLayout } from '../../src/cnn/resnet.ts';
import { CnnNet } from '../../src/cnn/net.ts';
import {
  allocate,
  cloneOwners,
  compact,
  freeCapacity,
  freeOwners,
  groupMasks,
  prune,
  pruneScores,
  reinitFree,
  remap,
  subnetIds,
  trainableRows,
  union,
  zeroForeignIncoming,
  type Owners,
  type Weights,
} from '../../src/cnn/masks.ts';

const L = resnetLayout({ width: 0.0625, imageSize: 8 });
const copy = (w: Weights): Weights => Object.fromEntries(Object.entries(w).map(([k, v]) => [k, v.slice()]));

function assertDisjoint(o: Owners, ids: number[]): void {
  const ms = ids.map((id) => groupMasks(o, [id]));
  L.groups.forEach((g, gi) => {
    for (let c = 0; c < g.channels; c++) {
      const n = ms.reduce((s, m) => s + m[gi]![c]!, 0);
      assert.equal(n, o[gi]![c]! >= 0 ? 1 : 0, `${g.name} channel ${c}`);
    }
  });
  const rows = ids.map((id) => trainableRows(L, o, id));
  L.convs.forEach((c, ci) => {
    for (let r = 0; r < c.outChannels; r++) assert.ok(rows.reduce((s, rr) => s + rr[ci]![r]!, 0) <= 1);
  });
}

test('allocate takes every free channel; subnets stay disjoint through prune and a second allocate', () => {
  const o = freeOwners(L);
  assert.deepEqual(allocate(o, 0), L.groups.map((g) => g.channels));
  assert.ok(o.every((a) => a.every((v) => v === 0)));
  const w = CnnNet.initWeights(L, new Rng(1));
  const released = prune(L, o, w, 0, 0.5);
  assert.deepEqual(released, L.groups.map((g) => Math.round(0.5 * g.channels)));
  const got = allocate(o, 3);
  assert.deepEqual(got, released);
  assertDisjoint(o, [0, 3]);
  prune(L, o, w, 3, 0.25);
  assert.deepEqual(allocate(o, 5), L.groups.map((g) => Math.round(0.25 * Math.round(0.5 * g.channels))));
  assertDisjoint(o, [0, 3, 5]);
  assert.deepEqual(subnetIds(o), [0, 3, 5]);
  assert.throws(() => allocate(o, -2), /allocate: subnet id must be an integer ≥ 0/);
});

test('prune releases exactly round(frac·n) per group: the lowest mean |w| over own inputs; the skip conv follows conv2', () => {
  const o = freeOwners(L);
  allocate(o, 0);
  // subnet 0 keeps the even channels of every group, subnet 1 gets the odd ones
  for (const a of o) for (let i = 1; i < a.length; i += 2) a[i] = 1;
  const w: Weights = {};
  for (const c of L.convs) {
    const K = c.kernel * c.kernel;
    const arr = new Float32Array(c.outChannels * c.inChannels * K);
    for (let f = 0; f < c.outChannels; f++) {
      for (let i = 0; i < c.inChannels; i++) {
        const own = c.inGroup < 0 || o[c.inGroup]![i] === o[c.outGroup]![f];
        // own inputs: |w| = score that DEcreases with the filter index; foreign inputs: large and increasing
        // (they must not count); the skip conv's values are the reverse (they must not count either)
        const mag = c.role === 'skip' ? (f + 1) * 0.01 : own ? (c.outChannels - f) * 0.01 : (f + 1) * 10;
        for (let k = 0; k < K; k++) arr[(f * c.inChannels + i) * K + k] = (k % 2 ? -1 : 1) * mag;
      }
    }
    w[c.weight] = arr;
  }
  const s = pruneScores(L, o, w, 0);
  for (const c of L.convs.filter((cc) => cc.role === 'main')) {
    for (let f = 0; f < c.outChannels; f++) {
      const want = o[c.outGroup]![f] === 0 ? (c.outChannels - f) * 0.01 : NaN;
      assert.ok(Number.isNaN(want) ? Number.isNaN(s[c.outGroup]![f]!) : Math.abs(s[c.outGroup]![f]! - want) < 1e-7, `${c.name} ${f}: ${s[c.outGroup]![f]} vs ${want}`);
    }
  }
  const before = cloneOwners(o);
  const frac = 0.3;
  const released = prune(L, o, w, 0, frac);
  L.groups.forEach((g, gi) => {
    const mine = [...before[gi]!.keys()].filter((i) => before[gi]![i] === 0);
    const k = Math.round(frac * mine.length);
    assert.equal(released[gi], k, g.name);
    // the highest-index channels have the lowest scores
    const gone = mine.slice(mine.length - k);
    for (let i = 0; i < g.channels; i++) {
      const want = before[gi]![i] === 1 ? 1 : gone.includes(i) ? -1 : 0;
      assert.equal(o[gi]![i], want, `${g.name} channel ${i}`);
    }
  });
  // the skip conv trains exactly the filters of the conv2 it adds to
  const rows = trainableRows(L, o, 0);
  for (let b = 0; b < 8; b++) {
    const c2 = L.convs.findIndex((c) => c.name === `b${b}.conv2`);
    const sk = L.convs.findIndex((c) => c.name === `b${b}.skip`);
    assert.deepEqual(rows[sk], rows[c2]);
  }
  // ties: lower channel index first
  const t = freeOwners(L);
  allocate(t, 2);
  const flat: Weights = Object.fromEntries(L.convs.map((c) => [c.weight, new Float32Array(c.outChannels * c.inChannels * c.kernel * c.kernel).fill(0.5)]));
  prune(L, t, flat, 2, 0.5);
  L.groups.forEach((g, gi) => {
    const k = Math.round(0.5 * g.channels);
    for (let i = 0; i < g.channels; i++) assert.equal(t[gi]![i], i < k ? -1 : 2);
  });
  assert.throws(() => prune(L, t, flat, 2, 1), /prune: fraction must be in \[0, 1\)/);
});

test('zeroForeignIncoming zeroes exactly the owned filters’ weights from other owners’ channels; reinitFree restores free filters', () => {
  const o = freeOwners(L);
  const rng = new Rng(9);
  for (const a of o) for (let i = 0; i < a.length; i++) a[i] = rng.int(3) - 1; // −1, 0 or 1
  const w0 = CnnNet.initWeights(L, new Rng(2));
  const init = CnnNet.initWeights(L, new Rng(3));
  const w = copy(w0);
  const changed = zeroForeignIncoming(L, o, w);
  let want = 0;
  for (const c of L.convs) {
    const K = c.kernel * c.kernel;
    for (let f = 0; f < c.outChannels; f++) {
      for (let i = 0; i < c.inChannels; i++) {
        const owner = o[c.outGroup]![f]!;
        const zero = c.inGroup >= 0 && owner >= 0 && o[c.inGroup]![i] !== owner;
        for (let k = 0; k < K; k++) {
          const j = (f * c.inChannels + i) * K + k;
          if (zero) {
            assert.ok(Object.is(w[c.weight]![j], 0), `${c.name}[${j}] is +0`);
            if (w0[c.weight]![j] !== 0) want++;
          } else assert.ok(Object.is(w[c.weight]![j], w0[c.weight]![j]), `${c.name}[${j}] untouched`);
        }
      }
    }
  }
  assert.equal(changed, want);
  assert.ok(changed > 0);
  reinitFree(L, o, w, init);
  for (const c of L.convs) {
    const n = c.inChannels * c.kernel * c.kernel;
    for (let f = 0; f < c.outChannels; f++) {
      const src = o[c.outGroup]![f] === -1 ? init : copy(w0);
      const got = w[c.weight]!.subarray(f * n, (f + 1) * n);
      if (o[c.outGroup]![f] === -1) assert.deepEqual(got, src[c.weight]!.subarray(f * n, (f + 1) * n));
      else assert.ok(got.every((v, j) => v === 0 || v === w0[c.weight]![f * n + j]));
    }
  }
});

test('union, remap, compact and subnet masks', () => {
  const o = freeOwners(L);
  for (const a of o) for (let i = 0; i < a.length; i++) a[i] = [4, 7, 9, -1][i % 4]!;
  union(o, [7, 9], 4);
  assert.deepEqual(subnetIds(o), [4]);
  for (const a of o) for (let i = 0; i < a.length; i++) assert.equal(a[i], i % 4 === 3 ? -1 : 4);
  for (const a of o) for (let i = 0; i < a.length; i++) a[i] = [4, 7, 9, -1][i % 4]!;
  remap(o, new Map([[7, 1]]));
  assert.deepEqual(subnetIds(o), [1]);
  for (const a of o) for (let i = 0; i < a.length; i++) a[i] = [12, 3, 8, -1][i % 4]!;
  const map = compact(o);
  assert.deepEqual([...map.entries()], [[3, 0], [8, 1], [12, 2]]);
  for (const a of o) for (let i = 0; i < a.length; i++) assert.equal(a[i], [2, 0, 1, -1][i % 4]);
  const m = groupMasks(o, [0, 2]);
  m.forEach((mm, gi) => mm.forEach((v, i) => assert.equal(v, [1, 1, 0, 0][i % 4], `${L.groups[gi]!.name} ${i}`)));
  assert.throws(() => union(o, [0], 1.5), /union: subnet id must be an integer/);
});

test('freeCapacity: fractions of free channels and of weights no subnet uses, against a direct count per subnet', () => {
  const o = freeOwners(L);
  assert.deepEqual(freeCapacity(L, o), { channels: 1, weights: 1 });
  allocate(o, 0);
  assert.deepEqual(freeCapacity(L, o), { channels: 0, weights: 0 });
  const rng = new Rng(5);
  for (const a of o) for (let i = 0; i < a.length; i++) a[i] = rng.int(4) - 1;
  let free = 0;
  let total = 0;
  for (const a of o) for (const v of a) (total++, v === -1 && free++);
  let used = 0;
  let all = 0;
  for (const c of L.convs) {
    const K = c.kernel * c.kernel;
    all += c.outChannels * c.inChannels * K;
    for (const s of [0, 1, 2]) {
      const outN = o[c.outGroup]!.filter((v) => v === s).length;
      const inN = c.inGroup < 0 ? c.inChannels : o[c.inGroup]!.filter((v) => v === s).length;
      used += outN * inN * K;
    }
  }
  const fc = freeCapacity(L, o);
  assert.equal(fc.channels, free / total);
  assert.ok(Math.abs(fc.weights - (1 - used / all)) < 1e-12);
});
