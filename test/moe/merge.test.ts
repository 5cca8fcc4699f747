/**
 * CM-MoE merging: metrics against hand-computed values, subnet vectors, k-means on separable points, and
 * planMerge/applyMerge on a 4-subnet registry: keep-top by usage (hand case with ties), the survivor's router =
 * sum of the members' columns on exactly the surviving experts, deleted experts gone from layout and tensors,
 * kept rows/slots/counters unchanged, other subnets' MoE outputs bit-identical (stacked buildMoeHooks graphs run
 * before and after), usage-average = a hand-computed weighted mean, JSON round trips, and DDAS task merging.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { Graph } from '../../src/graph/index.ts';
import { Engine } from '../../src/runtime/engine.ts';
import type { TensorData } from '../../src/runtime/types.ts';
import { Rng } from '../../src/util/rng.ts';
import { Ddas, MoeLayout, ROUTER_INDEX_INPUT, STACK_PARTS, buildMoeHooks, moeWeightSource, routerTensorName, stackExpertData, stackedTensorName, type MoeMode } from '../../src/moe/index.ts';
import { SubnetRegistry } from '../../src/moe/subnets.ts';
import {
  accuracy,
  applyMerge,
  clusterGroups,
  clusterSubnets,
  layerMetric,
  meanCosine,
  meanDistance,
  meanEnergy,
  mergeDdasTasks,
  planMerge,
  subnetVectors,
  type MergePlan,
  type MetricRecord,
} from '../../src/moe/merge.ts';

const engine = await Engine.create({ worker: false, threads: 1 });
after(() => engine.close());

const fl = (t: TensorData): Float32Array => t.data as Float32Array;
const f32 = (dims: number[], data: ArrayLike<number>): TensorData => ({ dtype: 'float32', dims, data: Float32Array.from(data) });

test('metrics: distance, cosine, energy and accuracy by hand', () => {
  const a = Float32Array.of(0, 0, 3, 4, 1, 0);
  const b = Float32Array.of(0, 0, 0, 0, 0, 1);
  assert.equal(meanDistance(a, b, 2), (0 + 5 + Math.SQRT2) / 3);
  assert.equal(layerMetric('dist', a, b, 2), meanDistance(a, b, 2));
  // rows: zero row → 0, (3,4)·(0,0) → 0, (1,0)·(0,1) → 0; and a second case with known angles
  assert.equal(meanCosine(a, b, 2), 0);
  const c = Float64Array.of(1, 0, 1, 1);
  const e = Float64Array.of(1, 0, 0, 1);
  assert.ok(Math.abs(meanCosine(c, e, 2) - (1 + Math.SQRT1_2) / 2) < 1e-15);
  assert.equal(layerMetric('cos', c, e, 2), meanCosine(c, e, 2));
  // energy −log Σ exp: [0, 0] → −log 2; [1000, 1000] (stable) → −(1000 + log 2); [log 3, 0] → −log 4
  const logits = Float64Array.of(0, 0, 1000, 1000, Math.log(3), 0);
  const want = (-Math.log(2) - (1000 + Math.log(2)) - Math.log(4)) / 3;
  assert.ok(Math.abs(meanEnergy(logits, 2) - want) < 1e-12);
  assert.equal(accuracy(Float32Array.of(0.1, 0.9, 0.8, 0.2, 0.5, 0.5), [1, 1, 0], 2), 2 / 3);
  assert.throws(() => meanDistance(a, b.subarray(0, 4), 2), /hold 6 and 4 values/);
  assert.throws(() => meanEnergy(Float32Array.of(1, 2, 3), 2), /not n ≥ 1 rows of 2/);
  assert.throws(() => layerMetric('corr' as 'dist', a, b, 2), /kind must be 'dist' or 'cos'/);
});

test('subnetVectors: block means per task, image then text ("hybrid")', () => {
  const recs: MetricRecord[] = [];
  // value = 100·subnet + 10·task + block index (+ 0.5 for text)
  for (const subnet of [3, 1]) for (const task of [0, 2]) for (const [m, off] of [['text', 0.5], ['image', 0]] as const) for (const b of [0, 1, 2]) recs.push({ task, subnet, block: `${m}.${b}`, modality: m, value: 100 * subnet + 10 * task + b + off });
  const v = subnetVectors(recs);
  assert.deepEqual(v.subnets, [1, 3]);
  assert.deepEqual(v.tasks, [0, 2]);
  assert.deepEqual(v.modalities, ['image', 'text']);
  assert.deepEqual(v.vectors, [
    [101, 121, 101.5, 121.5],
    [301, 321, 301.5, 321.5],
  ]);
  const img = subnetVectors(recs, { modalities: ['image'], subnets: [3] });
  assert.deepEqual(img.vectors, [[301, 321]]);
  assert.throws(() => subnetVectors(recs.slice(1).filter((r) => !(r.task === 0 && r.subnet === 3 && r.modality === 'text'))), /no record for task 0, subnet 3, modality 'text'/);
  assert.throws(() => subnetVectors([...recs, recs[0]!]), /two records for task 0, subnet 3, text block 'text\.0'/);
  assert.throws(() => subnetVectors(recs.filter((r, i) => i !== 0)), /has blocks/);
});

test('clusterSubnets: separable clusters are found, deterministic per seed, k clamped', () => {
  const rng = new Rng(4);
  const centers = [
    [0, 0, 0, 0],
    [10, 0, 5, 0],
    [0, 10, 0, -5],
  ];
  const truth: number[] = [];
  const pts: number[][] = [];
  for (let i = 0; i < 15; i++) {
    const c = [2, 0, 1][i % 3]!;
    truth.push(c);
    pts.push(centers[c]!.map((x) => x + 0.3 * rng.normal()));
  }
  for (let seed = 0; seed < 6; seed++) {
    const labels = clusterSubnets(pts, 3, seed, { restarts: 1 + (seed % 3) });
    // same partition as the truth (labels numbered by first appearance)
    const rename = new Map<number, number>();
    const canon = truth.map((t) => (rename.has(t) ? rename.get(t)! : (rename.set(t, rename.size), rename.size - 1)));
    assert.deepEqual(labels, canon, `seed ${seed}`);
    assert.deepEqual(clusterSubnets(pts, 3, seed, { restarts: 1 + (seed % 3) }), labels, 'deterministic');
  }
  assert.deepEqual(clusterSubnets([[1], [5], [1]], 7, 0), [0, 1, 0], 'k clamped to the distinct vectors');
  assert.deepEqual(clusterSubnets([[2, 2], [2, 2]], 2, 0), [0, 0]);
  assert.deepEqual(clusterSubnets([], 2, 0), []);
  assert.deepEqual(clusterGroups([4, 0, 2, 3], [1, 0, 1, 2]), [[2, 4], [0], [3]]);
  assert.throws(() => clusterSubnets([[1, 2], [1]], 2, 0), /vectors\[1\] has length 1/);
  assert.throws(() => clusterSubnets([[1]], 0, 0), /k must be a positive integer/);
});

// -- the merge scenario --------------------------------------------------------------------------------------

const D = 8;
const BN = 4;

/**
 * Image-only layout with sites image.0 and image.1 (width 8), experts 0 and 1 free; subnets 0–3 own experts
 * {2,3}, {4,5}, {6,7}, {8,9} (frozen at close by giving their new experts the highest usage); subnet 4 is open with
 * new experts {10, 11} and may select {0, 1, 10, 11}.
 */
function scenario(): { L: MoeLayout; reg: SubnetRegistry } {
  const L = MoeLayout.forClip({ vision: { layers: 2, width: D }, text: { layers: 1, width: 4 } }, { towers: ['image'], experts: 2, bottleneck: BN });
  const reg = new SubnetRegistry(L, { expertsPerSubnet: 2 });
  for (let i = 0; i < 5; i++) {
    const o = reg.open(i);
    if (i === 4) break;
    for (const s of L.sites) {
      const counts = L.experts(s).map((id) => (o.newExperts[s.key]!.includes(id) ? 10 : 1));
      L.addUsage(o.router, s, counts);
    }
    reg.close(i);
  }
  for (let i = 0; i < 4; i++) for (const s of L.sites) assert.deepEqual(reg.subnet(i).experts[s.key], [2 + 2 * i, 3 + 2 * i]);
  return { L, reg };
}

/** Random stacked experts (non-zero everywhere), gates, noise, slots and counters for the layout. */
function randomState(L: MoeLayout, seed: number): Record<string, TensorData> {
  const rng = new Rng(seed);
  const flat = L.initTensors(rng);
  for (const [n, t] of Object.entries(flat)) flat[n] = { ...t, data: Float32Array.from(fl(t), (v) => v + 0.5 * rng.normal()) };
  const out: Record<string, TensorData> = {};
  for (const s of L.sites) Object.assign(out, stackExpertData(L, s, flat));
  for (const [n, t] of Object.entries(flat)) if (/\.r\d+\.(gate|noise)$/.test(n)) out[n] = t;
  for (const [n, t] of Object.entries({ ...out })) {
    out[`${n}.m`] = { ...t, data: Float32Array.from(fl(t), () => rng.normal()) };
    out[`${n}.v`] = { ...t, data: Float32Array.from(fl(t), () => rng.float()) };
    out[`${n}.t`] = n.includes('.stack.') ? f32([t.dims[0]!, 1, 1], Array.from({ length: t.dims[0]! }, () => rng.int(40))) : f32([], [rng.int(40)]);
  }
  return out;
}

/** Collection-pass usage (after a reset): the hand case of the keep-top test. */
function collectionUsage(L: MoeLayout): void {
  L.resetUsage();
  const set = (router: number, site: string, byId: Record<number, number>) => L.addUsage(router, site, L.experts(site).map((id) => byId[id] ?? 0));
  // image.0: 2:5 3:1 | 6:3 7:7 → keep 2, 7
  set(0, 'image.0', { 2: 5, 3: 1 });
  set(2, 'image.0', { 6: 3, 7: 7 });
  // image.1: 2:1 3:4 | 6:4 7:2, plus 7:2 more from router 0 (summed) → 3:4 6:4 7:4: ties keep the lower columns 3, 6
  set(0, 'image.1', { 2: 1, 3: 4, 7: 2 });
  set(2, 'image.1', { 6: 4, 7: 2 });
  set(1, 'image.0', { 4: 9, 5: 9, 7: 100 });
}

const B = 5;
const T = 3;
const X = (() => {
  const r = new Rng(17);
  return Float32Array.from({ length: B * T * D }, () => r.normal());
})();

/** The MoE branch output of every site on the fixed x, for one mode (stacked experts as initializers). */
async function branch(key: string, L: MoeLayout, tensors: Record<string, TensorData>, mode: MoeMode, routerIndex?: number[]): Promise<Record<string, Float32Array>> {
  const g = new Graph({ name: key });
  const x = g.input('x', 'float32', [B, T, D]);
  const res = buildMoeHooks(g, L, { source: moeWeightSource(g, tensors), mode, topK: 2, stacked: true });
  for (const s of L.sites) {
    const y = res.hooks.block!({ g, tower: s.tower, layer: s.layer, x, scope: `${s.key}/` });
    g.output(y!, `y.${s.key}`);
  }
  const h = await engine.session(key, () => g.toBytes());
  const feeds: Record<string, TensorData> = { x: f32([B, T, D], X) };
  if (routerIndex) feeds[ROUTER_INDEX_INPUT.image] = { dtype: 'int64', dims: [B], data: BigInt64Array.from(routerIndex, (v) => BigInt(v)) };
  const out = await engine.run(h, feeds);
  return Object.fromEntries(L.sites.map((s) => [s.key, fl(out[`y.${s.key}`]!)]));
}

test('keep-top: plan by usage (hand case), router sum, deletions, kept state and other subnets unchanged bit for bit', async () => {
  const { L, reg } = scenario();
  const st = randomState(L, 1);
  collectionUsage(L);
  const old = { L: L.clone(), cols: Object.fromEntries(L.sites.map((s) => [s.key, L.experts(s)])) };
  const before: Record<string, Record<string, Float32Array>> = {};
  for (const r of [1, 3, 4]) before[r] = await branch(`pre-r${r}`, L, st, { kind: 'eval', router: r });
  const perSample = [1, 3, 4, 3, 1];
  before['ps'] = await branch('pre-ps', L, st, { kind: 'eval-per-sample' }, perSample);
  for (const y of Object.values(before)) for (const v of Object.values(y)) assert.ok(v.some((x) => x !== 0), 'the branches are not trivially zero');

  const groups = clusterGroups([0, 1, 2, 3], [0, 1, 0, 2]);
  assert.deepEqual(groups, [[0, 2], [1], [3]]);
  const plan = planMerge(L, reg, groups, { rule: 'keep-top' });
  assert.equal(plan.groups.length, 1);
  const gp = plan.groups[0]!;
  assert.deepEqual([gp.survivor, gp.members, gp.routers, gp.tasks], [0, [0, 2], { survivor: 0, removed: [2] }, [0, 2]]);
  assert.deepEqual(gp.sites['image.0'], { pooled: [2, 3, 6, 7], usage: [5, 1, 3, 7], kept: [2, 7], deleted: [3, 6], assign: [] });
  assert.deepEqual(gp.sites['image.1'], { pooled: [2, 3, 6, 7], usage: [1, 4, 4, 4], kept: [3, 6], deleted: [2, 7], assign: [] });
  assert.deepEqual(JSON.parse(JSON.stringify(plan)), plan, 'the plan is plain JSON');
  assert.equal(JSON.stringify(L.toJSON()), JSON.stringify(old.L.toJSON()), 'planning changes nothing');

  const res = applyMerge(plan, L, reg, st);
  // layout: deleted experts gone, router 2 removed, survivor restricted to the kept experts
  assert.deepEqual(L.experts('image.0'), [0, 1, 2, 4, 5, 7, 8, 9, 10, 11]);
  assert.deepEqual(L.experts('image.1'), [0, 1, 3, 4, 5, 6, 8, 9, 10, 11]);
  assert.deepEqual(L.routers, [0, 1, 3, 4]);
  assert.deepEqual(L.allowedExperts(0, 'image.0'), [2, 7]);
  assert.deepEqual(L.allowedExperts(0, 'image.1'), [3, 6]);
  for (const r of [1, 3, 4]) for (const s of L.sites) assert.deepEqual(L.allowedExperts(r, s), old.L.allowedExperts(r, s), `router ${r} keeps its experts`);
  assert.deepEqual(L.frozen('image.0'), [2, 4, 5, 7, 8, 9]);
  // usage carried over: router 0 now holds router 2's counts of the kept experts
  assert.deepEqual(L.usage(0, 'image.0'), [0, 0, 5, 0, 0, 7, 0, 0, 0, 0]);
  assert.deepEqual(L.usage(0, 'image.1'), [0, 0, 4, 0, 0, 4, 0, 0, 0, 0]);
  assert.deepEqual(L.usage(1, 'image.0'), [0, 0, 0, 9, 9, 100, 0, 0, 0, 0]);
  // registry
  assert.deepEqual(
    reg.subnets().map((s) => [s.id, s.tasks, s.experts]),
    [
      [0, [0, 2], { 'image.0': [2, 7], 'image.1': [3, 6] }],
      [1, [1], { 'image.0': [4, 5], 'image.1': [4, 5] }],
      [3, [3], { 'image.0': [8, 9], 'image.1': [8, 9] }],
      [4, [4], { 'image.0': [10, 11], 'image.1': [10, 11] }],
    ],
  );
  assert.equal(reg.subnetOfTask(2), 0);
  // deleted tensors: router 2's, with slots and counters
  const r2 = L.sites.flatMap((s) => (['gate', 'noise'] as const).map((k) => routerTensorName(s, 2, k)));
  assert.deepEqual(res.deletedParams.sort(), [...r2].sort());
  assert.deepEqual(res.deleted.sort(), r2.flatMap((n) => [n, `${n}.m`, `${n}.v`, `${n}.t`]).sort());
  for (const n of res.deleted) assert.ok(!(n in res.tensors));

  const next: Record<string, TensorData> = { ...st, ...res.tensors };
  for (const n of res.deleted) delete next[n];
  for (const s of L.sites) {
    const oldIds = old.cols[s.key]!;
    const ids = L.experts(s);
    const oc = ids.map((id) => oldIds.indexOf(id));
    const E0 = oldIds.length;
    const E = ids.length;
    // stacked params, slots and counters: exactly the old rows of the surviving experts
    for (const p of STACK_PARTS) {
      for (const sfx of ['', '.m', '.v', '.t']) {
        const n = stackedTensorName(s, p) + sfx;
        const size = st[n]!.data.length / E0;
        assert.deepEqual(next[n]!.dims, [E, ...st[n]!.dims.slice(1)]);
        assert.deepEqual(Array.from(fl(next[n]!)), oc.flatMap((c) => Array.from(fl(st[n]!).subarray(c * size, (c + 1) * size))), n);
      }
    }
    for (const kind of ['gate', 'noise'] as const) {
      // survivor: sum of router 0 and router 2 on the surviving columns; slots and counter restart
      const n0 = routerTensorName(s, 0, kind);
      const n2 = routerTensorName(s, 2, kind);
      const got = fl(next[n0]!);
      assert.deepEqual(next[n0]!.dims, [D, E]);
      for (let i = 0; i < D; i++) oc.forEach((c, j) => assert.equal(got[i * E + j], Math.fround(fl(st[n0]!)[i * E0 + c]! + fl(st[n2]!)[i * E0 + c]!), `${n0}[${i},${j}]`));
      for (const sfx of ['.m', '.v']) assert.ok(fl(next[n0 + sfx]!).every((v) => v === 0) && next[n0 + sfx]!.data.length === D * E);
      assert.deepEqual(next[`${n0}.t`], f32([], [0]));
      // other routers: their old columns, slots too; counter unchanged
      for (const r of [1, 3, 4]) {
        const n = routerTensorName(s, r, kind);
        for (const sfx of ['', '.m', '.v']) {
          const v = fl(next[n + sfx]!);
          for (let i = 0; i < D; i++) oc.forEach((c, j) => assert.equal(v[i * E + j], fl(st[n + sfx]!)[i * E0 + c]));
        }
        assert.deepEqual(next[`${n}.t`], st[`${n}.t`]);
      }
    }
  }
  // the other subnets' MoE outputs, bit for bit
  for (const r of [1, 3, 4]) {
    const y = await branch(`post-r${r}`, L, next, { kind: 'eval', router: r });
    for (const s of L.sites) assert.deepEqual(y[s.key], before[r]![s.key], `router ${r} at ${s.key}`);
  }
  const ps = await branch('post-ps', L, next, { kind: 'eval-per-sample' }, perSample);
  for (const s of L.sites) assert.deepEqual(ps[s.key], before['ps']![s.key], `per-sample routing at ${s.key}`);
  // the survivor routes among its kept experts only
  const y0 = await branch('post-r0', L, next, { kind: 'eval', router: 0 });
  assert.ok(Object.values(y0).every((v) => v.some((x) => x !== 0)));

  // a stale plan is refused; so is merging an open subnet
  assert.throws(() => applyMerge(plan, L, reg, next), /no subnet 2/);
  assert.throws(() => planMerge(L, reg, [[1, 4]], { rule: 'keep-top' }), /subnet 4 is open/);
  assert.throws(() => planMerge(L, reg, [[1, 3], [3]], { rule: 'keep-top' }), /subnet 3 is listed twice/);
  assert.throws(() => planMerge(L, reg, [[1, 3]], { rule: 'usage-average' }), /needs opts\.tensors/);
  // registry and layout round trip after the merge
  assert.deepEqual(SubnetRegistry.fromJSON(MoeLayout.fromJSON(L.toJSON()), JSON.parse(JSON.stringify(reg.toJSON()))).toJSON(), reg.toJSON());
});

test('a plan through JSON applies identically; two clusters merge at once', () => {
  const a = scenario();
  const b = { L: a.L.clone(), reg: null as SubnetRegistry | null };
  b.reg = SubnetRegistry.fromJSON(b.L, a.reg.toJSON());
  const st = randomState(a.L, 2);
  collectionUsage(a.L);
  collectionUsage(b.L);
  const plan = planMerge(a.L, a.reg, [[3, 1], [2, 0]], { rule: 'usage-average', tensors: st });
  assert.deepEqual(plan.groups.map((g) => g.survivor), [1, 0]);
  const copy = JSON.parse(JSON.stringify(plan)) as MergePlan;
  const ra = applyMerge(plan, a.L, a.reg, st);
  const rb = applyMerge(copy, b.L, b.reg, st);
  assert.deepEqual(rb, ra);
  assert.deepEqual(b.L.toJSON(), a.L.toJSON());
  assert.deepEqual(b.reg.toJSON(), a.reg.toJSON());
  assert.deepEqual(a.L.routers, [0, 1, 4]);
  assert.deepEqual(a.reg.subnets().map((s) => [s.id, s.tasks]), [
    [0, [0, 2]],
    [1, [1, 3]],
    [4, [4]],
  ]);
  for (const s of a.L.sites) assert.equal(a.L.experts(s).length, 8);
});

test('usage-average: each deleted expert joins its most similar kept expert; kept = usage-weighted mean (hand case)', () => {
  // one site of width 2, bottleneck 1; flattened expert = down (2) + downBias (1) + up (2) + upBias (2)
  const L = MoeLayout.forClip({ vision: { layers: 1, width: 2 }, text: { layers: 1, width: 2 } }, { towers: ['image'], bottleneck: 1 });
  const reg = new SubnetRegistry(L, { expertsPerSubnet: 2 });
  for (const t of [0, 1]) {
    reg.open(t);
    reg.close(t);
  }
  assert.deepEqual([reg.subnet(0).experts['image.0'], reg.subnet(1).experts['image.0']], [[0, 1], [2, 3]]);
  const rows = [
    [4, 0, 0, 0, 0, 2, 0], // e0
    [0, 1, 1, 0, 0, 0, 0], // e1 ≈ e3
    [2, 0, 0, 0, 0, 2, 0], // e2 ≈ e0
    [0, 2, 0, 0, 0, 0, 0], // e3
  ];
  const st: Record<string, TensorData> = {
    [stackedTensorName('image.0', 'down')]: f32([4, 2, 1], rows.flatMap((r) => r.slice(0, 2))),
    [stackedTensorName('image.0', 'downBias')]: f32([4, 1, 1], rows.map((r) => r[2]!)),
    [stackedTensorName('image.0', 'up')]: f32([4, 1, 2], rows.flatMap((r) => r.slice(3, 5))),
    [stackedTensorName('image.0', 'upBias')]: f32([4, 1, 2], rows.flatMap((r) => r.slice(5, 7))),
  };
  for (const r of [0, 1]) for (const k of ['gate', 'noise'] as const) st[routerTensorName('image.0', r, k)] = f32([2, 4], [r, 1, 2, 3, 4, 5, 6, 7]);
  L.resetUsage();
  L.addUsage(0, 'image.0', [6, 1, 0, 0]);
  L.addUsage(1, 'image.0', [0, 0, 2, 3]);
  const top = planMerge(L, reg, [[0, 1]], { rule: 'keep-top' });
  assert.deepEqual(top.groups[0]!.sites['image.0'], { pooled: [0, 1, 2, 3], usage: [6, 1, 2, 3], kept: [0, 3], deleted: [1, 2], assign: [] });
  const plan = planMerge(L, reg, [[0, 1]], { rule: 'usage-average', tensors: st });
  assert.deepEqual(plan.groups[0]!.sites['image.0']!.assign, [
    [1, 3],
    [2, 0],
  ]);
  const res = applyMerge(plan, L, reg, st);
  // e0' = (6·e0 + 2·e2) / 8, e3' = (3·e3 + 1·e1) / 4
  const e0 = rows[0]!.map((v, i) => (6 * v + 2 * rows[2]![i]!) / 8);
  const e3 = rows[3]!.map((v, i) => (3 * v + 1 * rows[1]![i]!) / 4);
  const got = (part: 'down' | 'downBias' | 'up' | 'upBias') => Array.from(fl(res.tensors[stackedTensorName('image.0', part)]!));
  assert.deepEqual(got('down'), [...e0.slice(0, 2), ...e3.slice(0, 2)]);
  assert.deepEqual(got('downBias'), [e0[2], e3[2]]);
  assert.deepEqual(got('up'), [...e0.slice(3, 5), ...e3.slice(3, 5)]);
  assert.deepEqual(got('upBias'), [...e0.slice(5, 7), ...e3.slice(5, 7)]);
  // router 0 = router 0 + router 1 on the kept columns 0 and 3
  assert.deepEqual(Array.from(fl(res.tensors[routerTensorName('image.0', 0, 'gate')]!)), [0 + 1, 3 + 3, 4 + 4, 7 + 7]);
  assert.deepEqual(L.experts('image.0'), [0, 3]);
  assert.deepEqual(L.routers, [0]);
  const none = planMerge(L, reg, [[0]], { rule: 'keep-top' });
  assert.deepEqual(none.groups, [], 'a single-member cluster merges nothing');
  assert.deepEqual(applyMerge(none, L, reg, st), { tensors: {}, deleted: [], deletedParams: [] });
});

test('mergeDdasTasks: the pooled tasks known to DDAS merge into the survivor’s first task', async () => {
  const ddas = await Ddas.create(engine, 6, { hidden: 3 }, new Rng(1));
  for (const t of [0, 1, 2, 3]) ddas.addTask(t);
  const plan: MergePlan = {
    rule: 'keep-top',
    expertsPerSubnet: 2,
    groups: [
      { survivor: 1, members: [1, 3], routers: { survivor: 1, removed: [3] }, tasks: [1, 3, 9], sites: {} },
      { survivor: 5, members: [5, 6], routers: { survivor: 5, removed: [6] }, tasks: [7, 8], sites: {} },
    ],
  };
  const into = await mergeDdasTasks(ddas, plan);
  assert.deepEqual([...into], [[1, 1]]);
  const d = ddas.describe();
  assert.deepEqual(d.tasks, [0, 1, 2]);
  assert.equal(d.aes, 4, 'the merged task keeps both autoencoders');
  await ddas.dispose();
});
