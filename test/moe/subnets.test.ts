/**
 * SubnetRegistry: open/close/reuse against hand-worked layouts (allowed lists, top-used freezing with masking and
 * ties, the maxExpertsPerBlock cap), the JSON round trip, and the tensor helpers (growRows/keepRows by hand,
 * growMoeTensors against stackExpertData of freshly initialised experts, shrinkMoeTensors against the layout's
 * router helpers).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MoeLayout, shrinkRouterTensor, stackExpertData, stackedTensorName, STACK_PARTS, routerTensorName } from '../../src/moe/index.ts';
import { SubnetRegistry, growMoeTensors, growRows, keepRows, moeTensorRole, shrinkMoeTensors } from '../../src/moe/subnets.ts';
import type { TensorData } from '../../src/runtime/types.ts';
import { Rng } from '../../src/util/rng.ts';

/** Two sites: image.1 (width 4) and text.1 (width 3), bottleneck 2. */
function tinyLayout(experts = 2): MoeLayout {
  return MoeLayout.forClip({ vision: { layers: 2, width: 4 }, text: { layers: 2, width: 3 } }, { blocks: { last: 1 }, experts, bottleneck: 2 });
}

const fl = (t: TensorData): Float32Array => t.data as Float32Array;
const f32 = (dims: number[], data: ArrayLike<number>): TensorData => ({ dtype: 'float32', dims, data: Float32Array.from(data) });

test('open: a router that may select every unfrozen expert; close: top-used own experts, frozen, router restricted', () => {
  const L = tinyLayout(2);
  const reg = new SubnetRegistry(L, { expertsPerSubnet: 2 });
  const a = reg.open(10);
  assert.deepEqual(a, { subnet: 0, router: 0, newExperts: { 'image.1': [2, 3], 'text.1': [2, 3] } });
  for (const s of L.sites) assert.deepEqual(L.allowedExperts(0, s), [0, 1, 2, 3]);
  assert.throws(() => reg.open(11), /subnet 0 is still open/);
  // usage: image picks columns 3 and 0, text ties 1/2 (lower column first) after 0
  L.addUsage(0, 'image.1', [5, 1, 0, 9]);
  L.addUsage(0, 'text.1', [7, 4, 4, 0]);
  assert.deepEqual(reg.close(0), { 'image.1': [0, 3], 'text.1': [0, 1] });
  assert.deepEqual(L.frozen('image.1'), [0, 3]);
  assert.deepEqual(L.allowedExperts(0, 'text.1'), [0, 1]);
  assert.equal(L.frozenBy('image.1', 3), 0);
  assert.throws(() => reg.close(0), /already closed/);

  const b = reg.open(11);
  assert.deepEqual(b, { subnet: 1, router: 1, newExperts: { 'image.1': [4, 5], 'text.1': [4, 5] } });
  // the old router keeps its list; the new one sees the free old experts and the new ones, no frozen expert
  assert.deepEqual(L.allowedExperts(0, 'image.1'), [0, 3]);
  assert.deepEqual(L.allowedExperts(1, 'image.1'), [1, 2, 4, 5]);
  assert.deepEqual(L.allowedExperts(1, 'text.1'), [2, 3, 4, 5]);
  // counts on a frozen (not allowed) column never make it a candidate
  L.addUsage(1, 'image.1', [100, 0, 3, 100, 3, 2]);
  L.addUsage(1, 'text.1', [0, 100, 1, 0, 0, 2]);
  assert.deepEqual(reg.close(1), { 'image.1': [2, 4], 'text.1': [2, 5] });
  assert.deepEqual(L.frozen('image.1'), [0, 2, 3, 4]);

  reg.reuse(0, 12);
  reg.reuse(0, 12);
  assert.throws(() => reg.reuse(1, 12), /already belongs to subnet 0/);
  assert.throws(() => reg.open(10), /task 10 already belongs to subnet 0/);
  assert.equal(reg.subnetOfTask(12), 0);
  assert.equal(reg.subnetOfTask(11), 1);
  assert.equal(reg.subnetOfTask(99), undefined);
  assert.deepEqual(reg.subnets(), [
    { id: 0, router: 0, tasks: [10, 12], open: false, experts: { 'image.1': [0, 3], 'text.1': [0, 1] } },
    { id: 1, router: 1, tasks: [11], open: false, experts: { 'image.1': [2, 4], 'text.1': [2, 5] } },
  ]);
});

test('a router that existed before (allowing everything) does not see the new experts', () => {
  const L = MoeLayout.forClip({ vision: { layers: 1, width: 4 }, text: { layers: 1, width: 3 } }, { towers: ['image'], experts: 3, routers: 1, bottleneck: 2 });
  assert.ok(L.allowsAll(0, 'image.0'));
  const reg = new SubnetRegistry(L, { expertsPerSubnet: 1 });
  const o = reg.open(0);
  assert.equal(o.router, 1);
  assert.deepEqual(L.allowedExperts(0, 'image.0'), [0, 1, 2]);
  assert.deepEqual(L.allowedExperts(1, 'image.0'), [0, 1, 2, 3]);
});

test('maxExpertsPerBlock: opening past the cap fails naming it; options are checked', () => {
  const L = tinyLayout(2);
  const reg = new SubnetRegistry(L, { expertsPerSubnet: 2, maxExpertsPerBlock: 6 });
  reg.open(0);
  reg.close(0);
  reg.open(1);
  reg.close(1);
  const before = JSON.stringify(L.toJSON());
  assert.throws(() => reg.open(2), /site image\.1 has 6 experts; 2 more would exceed maxExpertsPerBlock 6/);
  assert.equal(JSON.stringify(L.toJSON()), before, 'a refused open changes nothing');
  assert.throws(() => new SubnetRegistry(L, { expertsPerSubnet: 0 }), /expertsPerSubnet must be a positive integer/);
  assert.throws(() => new SubnetRegistry(L, { expertsPerSubnet: 3, maxExpertsPerBlock: 2 }), /maxExpertsPerBlock 2 is below expertsPerSubnet 3/);
});

test('JSON round trip: same registry, and both copies evolve identically', () => {
  const L = tinyLayout(2);
  const reg = new SubnetRegistry(L, { expertsPerSubnet: 2, maxExpertsPerBlock: 12 });
  reg.open(0);
  L.addUsage(0, 'image.1', [1, 2, 3, 4]);
  reg.close(0);
  reg.open(1);
  const j = JSON.parse(JSON.stringify(reg.toJSON()));
  const L2 = MoeLayout.fromJSON(JSON.parse(JSON.stringify(L.toJSON())));
  const reg2 = SubnetRegistry.fromJSON(L2, j);
  assert.deepEqual(reg2.toJSON(), reg.toJSON());
  assert.equal(reg2.openSubnet, 1);
  for (const [l, r] of [[L, reg], [L2, reg2]] as const) {
    l.addUsage(1, 'text.1', [0, 0, 5, 1, 2, 9]);
    r.close(1);
    r.open(2);
  }
  assert.deepEqual(reg2.toJSON(), reg.toJSON());
  assert.deepEqual(L2.toJSON(), L.toJSON());
  // errors name the field
  assert.throws(() => SubnetRegistry.fromJSON(L, { ...j, format: 'x' }), /subnets\.format/);
  assert.throws(() => SubnetRegistry.fromJSON(L, { ...j, subnets: [{ ...j.subnets[0], router: 42 }] }), /subnets\.subnets\[0\]\.router/);
  assert.throws(() => SubnetRegistry.fromJSON(L, { ...j, subnets: [j.subnets[0], { ...j.subnets[1], tasks: [0] }] }), /subnets\[1\]\.tasks: task 0 belongs to two subnets/);
  assert.throws(() => SubnetRegistry.fromJSON(L, { ...j, subnets: [{ ...j.subnets[0], experts: { ...j.subnets[0].experts, 'image.1': [77] } }] }), /experts\['image\.1'\]/);
});

test('growRows / keepRows by hand', () => {
  const t = f32([2, 1, 2], [1, 2, 3, 4]);
  assert.deepEqual(growRows(t, Float32Array.of(5, 6, 7, 8)), f32([4, 1, 2], [1, 2, 3, 4, 5, 6, 7, 8]));
  assert.deepEqual(growRows(t, null, 1), f32([3, 1, 2], [1, 2, 3, 4, 0, 0]));
  assert.deepEqual(keepRows(f32([3, 2], [1, 2, 3, 4, 5, 6]), [2, 0]), f32([2, 2], [5, 6, 1, 2]));
  assert.deepEqual(keepRows(f32([3, 2], [1, 2, 3, 4, 5, 6]), []), f32([0, 2], []));
  const i64: TensorData = { dtype: 'int64', dims: [1, 2], data: BigInt64Array.of(1n, 2n) };
  assert.deepEqual(growRows(i64, BigInt64Array.of(3n, 4n)).data, BigInt64Array.of(1n, 2n, 3n, 4n));
  assert.throws(() => growRows(t, Float32Array.of(1, 2, 3)), /not a whole number of rows of 2/);
  assert.throws(() => growRows(t, null), /n must be a non-negative integer/);
  assert.throws(() => growRows(f32([], [1]), null, 1), /scalar/);
  assert.throws(() => keepRows(t, [2]), /row 2 out of range for 2 rows/);
});

test('moeTensorRole parses stacked and router names with slots', () => {
  assert.deepEqual(moeTensorRole('moe.image.3.stack.downBias.m'), { kind: 'stack', site: 'image.3', part: 'downBias', slot: 'm' });
  assert.deepEqual(moeTensorRole('moe.text.0.r12.noise'), { kind: 'router', site: 'text.0', router: 12, which: 'noise', slot: null });
  assert.equal(moeTensorRole('moe.image.3.e1.down.weight'), null);
  assert.equal(moeTensorRole('visual.proj'), null);
});

/** Stacked params (perturbed so rows differ), random slots, per-row counters and router tensors of a layout. */
function stateOf(L: MoeLayout, seed: number): { state: Record<string, TensorData>; flat: Record<string, TensorData> } {
  const rng = new Rng(seed);
  const flat = L.initTensors(rng);
  for (const [n, t] of Object.entries(flat)) flat[n] = { ...t, data: Float32Array.from(t.data as Float32Array, (v) => v + rng.normal()) };
  const out: Record<string, TensorData> = {};
  for (const s of L.sites) {
    Object.assign(out, stackExpertData(L, s, flat));
    const E = L.experts(s).length;
    for (const p of STACK_PARTS) {
      const t = out[stackedTensorName(s, p)]!;
      for (const slot of ['m', 'v']) out[`${stackedTensorName(s, p)}.${slot}`] = { ...t, data: Float32Array.from(t.data as Float32Array, () => rng.normal()) };
      out[`${stackedTensorName(s, p)}.t`] = f32([E, 1, 1], Array.from({ length: E }, () => rng.int(50)));
    }
  }
  for (const [n, t] of Object.entries(flat)) {
    if (!/\.r\d+\.(gate|noise)$/.test(n)) continue;
    out[n] = t;
    out[`${n}.m`] = { ...t, data: Float32Array.from(t.data as Float32Array, () => rng.normal()) };
    out[`${n}.v`] = { ...t, data: Float32Array.from(t.data as Float32Array, () => rng.float()) };
    out[`${n}.t`] = { dtype: 'float32', dims: [], data: Float32Array.of(7) };
  }
  return { state: out, flat };
}

test('growMoeTensors after open: old rows/columns kept, new params = initExpert stacked, new slots/counters zero', () => {
  const L = tinyLayout(2);
  const reg = new SubnetRegistry(L, { expertsPerSubnet: 2 });
  const o0 = reg.open(0);
  const { state: st, flat: flat0 } = stateOf(L, 1);
  assert.ok(o0.router === 0);
  L.addUsage(0, 'image.1', [1, 2, 3, 4]);
  reg.close(0);
  // scalar counter on one part: it becomes per-row
  st[`${stackedTensorName('text.1', 'up')}.t`] = { dtype: 'float32', dims: [], data: Float32Array.of(3) };
  const o1 = reg.open(1);
  const grown = growMoeTensors(L, st, o1.newExperts, new Rng(99));
  // truth: the same draws through initExpert, stacked by stackExpertData
  const rng = new Rng(99);
  const flat = { ...flat0 };
  for (const s of L.sites) for (const id of o1.newExperts[s.key]!) Object.assign(flat, L.initExpert(s, id, rng));
  for (const s of L.sites) {
    const truth = stackExpertData(L, s, flat);
    for (const p of STACK_PARTS) {
      const n = stackedTensorName(s, p);
      assert.deepEqual(grown[n], truth[n], n);
      for (const slot of ['m', 'v']) {
        const g = grown[`${n}.${slot}`]!;
        const old = st[`${n}.${slot}`]!;
        assert.deepEqual(g.dims, truth[n]!.dims);
        assert.deepEqual(Array.from(fl(g).subarray(0, old.data.length)), Array.from(fl(old)));
        assert.ok(Array.from(fl(g).subarray(old.data.length)).every((v) => v === 0), `${n}.${slot} new rows are 0`);
      }
      const t = grown[`${n}.t`]!;
      assert.deepEqual(t.dims, [6, 1, 1]);
      const oldT = st[`${n}.t`]!;
      const expect = oldT.dims.length === 0 ? [3, 3, 3, 3, 0, 0] : [...Array.from(fl(oldT)), 0, 0];
      assert.deepEqual(Array.from(fl(t)), expect, `${n}.t`);
    }
    // router 0 (existing): zero columns appended to params and slots; scalar counter unchanged
    for (const kind of ['gate', 'noise'] as const) {
      const n = routerTensorName(s, 0, kind);
      for (const sfx of ['', '.m', '.v']) {
        const g = grown[n + sfx]!;
        const old = st[n + sfx]!;
        assert.deepEqual(g.dims, [s.width, 6]);
        for (let i = 0; i < s.width; i++) {
          for (let c = 0; c < 6; c++) assert.equal(g.data[i * 6 + c], c < 4 ? old.data[i * 4 + c] : 0);
        }
      }
      assert.equal(grown[`${n}.t`], st[`${n}.t`]);
    }
  }
  // the new router's tensors are already wide: passing them is an error
  assert.throws(() => growMoeTensors(L, { ...st, ...L.initRouter(1) }, o1.newExperts, new Rng(1)), /r1\.gate' is \[4, 6\], expected \[4, 4\]/);
  assert.throws(() => growMoeTensors(L, st, { 'image.1': [2, 3] }, new Rng(1)), /are not the last experts/);
  assert.throws(() => growMoeTensors(L, st, { 'image.7': [] }, new Rng(1)), /no site 'image\.7'/);
});

test('shrinkMoeTensors after removeExperts: kept rows and columns exactly, scalar counters unchanged', () => {
  const L = tinyLayout(5);
  L.addRouter();
  L.addRouter();
  const { state: st } = stateOf(L, 3);
  const keep = { 'image.1': L.removeExperts('image.1', [1, 3]), 'text.1': L.removeExperts('text.1', [0]) };
  assert.deepEqual(keep, { 'image.1': [0, 2, 4], 'text.1': [1, 2, 3, 4] });
  const out = shrinkMoeTensors({ ...st, 'other.weight': f32([1], [1]) }, keep);
  assert.equal(out['other.weight'], undefined);
  for (const s of L.sites) {
    const k = keep[s.key as keyof typeof keep];
    for (const p of STACK_PARTS) {
      for (const sfx of ['', '.m', '.v', '.t']) {
        const n = stackedTensorName(s, p) + sfx;
        const t = st[n]!;
        const size = t.data.length / t.dims[0]!;
        assert.deepEqual(out[n]!.dims, [k.length, ...t.dims.slice(1)]);
        assert.deepEqual(Array.from(fl(out[n]!)), k.flatMap((r) => Array.from(fl(t).subarray(r * size, (r + 1) * size))), n);
      }
    }
    for (const r of [0, 1]) {
      for (const kind of ['gate', 'noise'] as const) {
        const n = routerTensorName(s, r, kind);
        for (const sfx of ['', '.m', '.v']) assert.deepEqual(out[n + sfx], shrinkRouterTensor(st[n + sfx]!, k), n + sfx);
        assert.equal(out[`${n}.t`], st[`${n}.t`]);
      }
    }
  }
});
