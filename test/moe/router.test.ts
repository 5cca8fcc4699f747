/**
 * Routers against hand-computed gates, JS top-k selections, a series evaluation of Φ and the balancing-loss
 * formula; per-sample router selection against single-router runs, bit for bit.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Graph, type Tensor } from '../../src/graph/index.ts';
import { Engine, type OptimizationLevel } from '../../src/runtime/engine.ts';
import type { TensorData } from '../../src/runtime/types.ts';
import { Rng } from '../../src/util/rng.ts';
import {
  MoeLayout,
  balanceLoss,
  buildMoeHooks,
  expertTensorName,
  moeWeightSource,
  noisyTopKGating,
  normalCdf,
  routerTensorName,
  routerToken,
  type MoeMode,
} from '../../src/moe/index.ts';

const engine = await Engine.create({ worker: false, threads: 1 });
after(() => engine.close());

type Float = 'float32' | 'float64';
const ft = (dtype: Float, dims: number[], data: ArrayLike<number>): TensorData => ({ dtype, dims, data: dtype === 'float32' ? Float32Array.from(data) : Float64Array.from(data) });
const randn = (rng: Rng, n: number, std = 1): number[] => Array.from({ length: n }, () => std * rng.normal());
const ids64 = (v: number[], dims = [v.length]): TensorData => ({ dtype: 'int64', dims, data: BigInt64Array.from(v, (x) => BigInt(x)) });

/** Graph with inputs t [B, E] (logits = t·I) and a gating on them; returns gates densified by the caller. */
async function gateRun(key: string, logits: number[][], k: number, noise?: { eps: number[][] }) {
  const B = logits.length;
  const E = logits[0]!.length;
  const g = new Graph({ name: key });
  const t = g.input('t', 'float64', ['batch', E]);
  const eye = Float64Array.from({ length: E * E }, (_, i) => (i % (E + 1) === 0 ? 1 : 0));
  const gate = g.param('gate', eye, [E, E]);
  const nz = noise ? { weight: g.param('wn', new Float64Array(E * E), [E, E]), eps: g.input('eps', 'float64', ['batch', E]) } : null;
  const r = noisyTopKGating(t, gate, { k, noise: nz });
  g.output(r.gates, 'gates');
  g.output(r.indices, 'idx');
  const s = await engine.session(key, () => g.toBytes(), { optimizationLevel: 'basic' });
  const feeds: Record<string, TensorData> = { t: ft('float64', [B, E], logits.flat()) };
  if (noise) feeds['eps'] = ft('float64', [B, E], noise.eps.flat());
  const out = await engine.run(s, feeds);
  const gates = out['gates']!.data as Float64Array;
  const idx = Array.from(out['idx']!.data as BigInt64Array, Number);
  return Array.from({ length: B }, (_, b) => {
    const dense = new Array<number>(E).fill(0);
    for (let j = 0; j < k; j++) dense[idx[b * k + j]!] = gates[b * k + j]!;
    return { idx: idx.slice(b * k, b * k + k), gates: Array.from(gates.slice(b * k, b * k + k)), dense };
  });
}

test('top-k gates on hand-checkable logits: exactly k non-zero, softmax over the selected ones, summing to 1', async () => {
  const logits = [
    [1, 2, 3, 0],
    [0.5, -1, 0.25, 2],
    [-3, -2, -1, -4],
  ];
  const k2 = await gateRun('gate2', logits, 2);
  assert.deepEqual(k2.map((r) => r.idx), [[2, 1], [3, 0], [2, 1]]);
  const sig = (z: number) => 1 / (1 + Math.exp(-z));
  const want2 = [[sig(1), sig(-1)], [sig(1.5), sig(-1.5)], [sig(1), sig(-1)]];
  k2.forEach((r, b) => r.gates.forEach((v, j) => assert.ok(Math.abs(v - want2[b]![j]!) < 1e-15, `row ${b} gate ${j}: ${v} vs ${want2[b]![j]}`)));
  const k3 = await gateRun('gate3', logits, 3);
  for (const [k, rows] of [[2, k2], [3, k3]] as const) {
    for (const r of rows) {
      assert.equal(r.dense.filter((v) => v !== 0).length, k);
      assert.ok(Math.abs(r.dense.reduce((a, b) => a + b, 0) - 1) < 1e-15);
    }
  }
  // row 0 with k = 3: e^3, e^2, e^1 normalised
  const z = Math.exp(3) + Math.exp(2) + Math.exp(1);
  assert.deepEqual(k3[0]!.idx, [2, 1, 0]);
  k3[0]!.gates.forEach((v, j) => assert.ok(Math.abs(v - Math.exp(3 - j) / z) < 1e-15));
  // noisy: W_n = 0 gives std softplus(0) + 0.01 = ln 2 + 0.01, so logits + ε·(ln 2 + 0.01) decide
  const eps = [
    [0, 0, -3, 2],
    [4, 0, 0, 0],
    [0, 0, 0, 5],
  ];
  const noisy = await gateRun('gate-noisy', logits, 2, { eps });
  const sd = Math.LN2 + 0.01;
  noisy.forEach((r, b) => {
    const l = logits[b]!.map((v, e) => v + eps[b]![e]! * sd);
    const order = [...l.keys()].sort((p, q) => l[q]! - l[p]!);
    assert.deepEqual(r.idx, order.slice(0, 2), `row ${b}`);
    assert.ok(Math.abs(r.gates[0]! - sig(l[order[0]!]! - l[order[1]!]!)) < 1e-14);
  });
});

// --- per-sample router selection -----------------------------------------------------------------------------

const D = 6;
const T = 3;
const BN = 4;
const E = 5;

/** A 1-site layout with 3 routers; router 2 may only select experts 0, 2, 4. Random non-zero tensors. */
function routedModel(seed: number) {
  const layout = MoeLayout.forClip({ vision: { layers: 2, width: D }, text: { layers: 1, width: D } }, { towers: ['image'], blocks: [1], experts: E, routers: 3, bottleneck: BN });
  const site = layout.sites[0]!;
  layout.setAllowed(2, site, [0, 2, 4]);
  const rng = new Rng(seed);
  const values = new Map<string, TensorData>();
  for (const id of layout.experts(site)) {
    values.set(expertTensorName(site, id, 'down.weight'), ft('float64', [BN, D], randn(rng, BN * D, 0.5)));
    values.set(expertTensorName(site, id, 'down.bias'), ft('float64', [BN], randn(rng, BN, 0.2)));
    values.set(expertTensorName(site, id, 'up.weight'), ft('float64', [D, BN], randn(rng, D * BN, 0.5)));
    values.set(expertTensorName(site, id, 'up.bias'), ft('float64', [D], randn(rng, D, 0.2)));
  }
  for (const r of layout.routers) {
    const w = randn(rng, D * E, 1);
    // router 2: expert 1 (not allowed) would win for every sample with positive first feature
    if (r === 2) w[0 * E + 1] = 50;
    values.set(routerTensorName(site, r, 'gate'), ft('float64', [D, E], w));
    values.set(routerTensorName(site, r, 'noise'), ft('float64', [D, E], randn(rng, D * E, 1)));
  }
  return { layout, site, values };
}

async function runBranch(key: string, m: ReturnType<typeof routedModel>, mode: MoeMode, x: number[], B: number, dtype: Float, level: OptimizationLevel, router?: number[]) {
  const g = new Graph({ name: key });
  const xt = g.input('x', dtype, ['batch', T, D]);
  const src = moeWeightSource(g, m.values, { dtype });
  const res = buildMoeHooks(g, m.layout, { source: src, mode, topK: 2 });
  const y = res.hooks.block!({ g, tower: 'image', layer: 1, x: xt, scope: '' });
  assert.ok(y, 'site image.1 builds a branch');
  g.output(y, 'y');
  g.output(res.usage[m.site.key]!, 'usage');
  const s = await engine.session(key, () => g.toBytes(), { optimizationLevel: level });
  const feeds: Record<string, TensorData> = { x: ft(dtype, [B, T, D], x) };
  if (router) feeds[res.inputs.router!.name] = ids64(router);
  const out = await engine.run(s, feeds);
  return { y: out['y']!.data as Float32Array | Float64Array, usage: Array.from(out['usage']!.data as Float32Array), inputs: res.inputs };
}

/** JS top-2 of the clean logits of router r for the router token (token 0) of sample b. */
function jsTop2(m: ReturnType<typeof routedModel>, r: number, x: number[], b: number): number[] {
  const W = m.values.get(routerTensorName(m.site, r, 'gate'))!.data as Float64Array;
  const tok = x.slice(b * T * D, b * T * D + D);
  const allowed = new Set(m.layout.allowedColumns(r, m.site));
  const l = Array.from({ length: E }, (_, e) => (allowed.has(e) ? tok.reduce((s, v, i) => s + v * W[i * E + e]!, 0) : -Infinity));
  return [...l.keys()].sort((p, q) => l[q]! - l[p]!).slice(0, 2);
}

for (const [dtype, level] of [['float64', 'basic'], ['float32', 'all']] as const) {
  test(`per-sample routers (${dtype}, optimisation ${level}): router −1 gives exactly 0, other rows equal single-router runs bit for bit`, async () => {
    const m = routedModel(8);
    const B = 7;
    const rng = new Rng(9);
    const x = randn(rng, B * T * D);
    x[0] = Math.abs(x[0]!); // sample 0 routed by router 2: its best logit is the disallowed expert 1
    const router = [2, -1, 0, 1, 2, -1, 0];
    const per = await runBranch(`per-${dtype}`, m, { kind: 'eval-per-sample' }, x, B, dtype, level, router);
    assert.equal(per.inputs.router!.name, 'router_index');
    const single = new Map<number, Awaited<ReturnType<typeof runBranch>>>();
    for (const r of m.layout.routers) single.set(r, await runBranch(`eval${r}-${dtype}`, m, { kind: 'eval', router: r }, x, B, dtype, level));
    const n = T * D;
    router.forEach((r, b) => {
      const row = Array.from(per.y.slice(b * n, (b + 1) * n));
      if (r === -1) {
        assert.ok(row.every((v) => Object.is(v, 0)), `sample ${b} (router −1) must be exactly +0`);
        return;
      }
      const ref = Array.from(single.get(r)!.y.slice(b * n, (b + 1) * n));
      assert.deepEqual(row, ref, `sample ${b} with router ${r}`);
      assert.ok(row.some((v) => v !== 0));
    });
    // usage: only routed samples count; router 2 never selects its disallowed expert 1
    const want = new Array<number>(E).fill(0);
    router.forEach((r, b) => {
      if (r >= 0) for (const e of jsTop2(m, r, x, b)) want[e]!++;
    });
    assert.deepEqual(per.usage, want);
    const W2 = m.values.get(routerTensorName(m.site, 2, 'gate'))!.data as Float64Array;
    const tok0 = x.slice(0, D);
    const l2 = Array.from({ length: E }, (_, e) => tok0.reduce((s, v, i) => s + v * W2[i * E + e]!, 0));
    assert.equal(l2.indexOf(Math.max(...l2)), 1, 'without the mask router 2 would pick expert 1 for sample 0');
    assert.equal(single.get(2)!.usage[1], 0);
  });
}

test('clean gating is deterministic: two runs and a rebuilt session give identical bits', async () => {
  const m = routedModel(3);
  const B = 5;
  const x = randn(new Rng(4), B * T * D);
  const a = await runBranch('det-a', m, { kind: 'eval', router: 1 }, x, B, 'float32', 'all');
  const b = await runBranch('det-a', m, { kind: 'eval', router: 1 }, x, B, 'float32', 'all');
  const c = await runBranch('det-c', m, { kind: 'eval', router: 1 }, x, B, 'float32', 'all');
  assert.deepEqual(Array.from(a.y), Array.from(b.y));
  assert.deepEqual(Array.from(a.y), Array.from(c.y));
  assert.deepEqual(a.usage, c.usage);
  const want = new Array<number>(E).fill(0);
  for (let s = 0; s < B; s++) for (const e of jsTop2(m, 1, x, s)) want[e]!++;
  assert.deepEqual(a.usage, want);
});

test('router token: image token 0; text EOT (row argmax of the ids) or SOT (token 0)', async () => {
  const [B, Tt, w] = [3, 5, 4];
  const x = randn(new Rng(6), B * Tt * w);
  const ids = [
    [48, 7, 49, 0, 0],
    [48, 3, 9, 11, 49],
    [48, 49, 0, 0, 0],
  ];
  const g = new Graph({ name: 'token' });
  const xt = g.input('x', 'float64', ['batch', 'tokens', w]);
  const it = g.input('ids', 'int64', ['batch', 'tokens']);
  g.output(routerToken(xt, 'image'), 'img');
  g.output(routerToken(xt, 'text', { textIds: it }), 'eot');
  g.output(routerToken(xt, 'text', { textIds: it, token: 'sot' }), 'sot');
  const s = await engine.session('token', () => g.toBytes());
  const out = await engine.run(s, { x: ft('float64', [B, Tt, w], x), ids: ids64(ids.flat(), [B, Tt]) });
  const row = (b: number, t: number) => x.slice((b * Tt + t) * w, (b * Tt + t + 1) * w);
  for (let b = 0; b < B; b++) {
    const pos = ids[b]!.indexOf(49);
    assert.deepEqual(Array.from((out['eot']!.data as Float64Array).slice(b * w, (b + 1) * w)), row(b, pos));
    assert.deepEqual(Array.from((out['sot']!.data as Float64Array).slice(b * w, (b + 1) * w)), row(b, 0));
    assert.deepEqual(Array.from((out['img']!.data as Float64Array).slice(b * w, (b + 1) * w)), row(b, 0));
  }
  assert.throws(() => routerToken(xt, 'text'), /textIds/);
});

// --- Φ and the balancing loss --------------------------------------------------------------------------------

/**
 * Φ(x): for |x| < 3 the power series 1/2 + φ(x)·Σ x^(2n+1)/(1·3·…·(2n+1)); beyond, the tail φ(x)/(|x| + 1/(|x| +
 * 2/(|x| + …))) (Laplace's continued fraction, evaluated backwards), so that far tails keep their relative accuracy.
 */
function phi(x: number): number {
  const density = Math.exp((-x * x) / 2) / Math.sqrt(2 * Math.PI);
  if (Math.abs(x) < 3) {
    let term = x;
    let sum = x;
    for (let n = 1; n < 200; n++) {
      term *= (x * x) / (2 * n + 1);
      sum += term;
    }
    return 0.5 + density * sum;
  }
  const a = Math.abs(x);
  let f = a;
  for (let n = 300; n >= 1; n--) f = a + n / f;
  const tail = density / f;
  return x < 0 ? tail : 1 - tail;
}

test('normalCdf matches the series value of Φ (float64 composed erfc < 1.2e-7, float32 Erf op)', async () => {
  const xs = Array.from({ length: 121 }, (_, i) => -6 + i * 0.1);
  const g = new Graph({ name: 'phi' });
  g.output(normalCdf(g.input('x64', 'float64', [xs.length])), 'p64');
  g.output(normalCdf(g.input('x32', 'float32', [xs.length])), 'p32');
  const s = await engine.session('phi', () => g.toBytes());
  const out = await engine.run(s, { x64: ft('float64', [xs.length], xs), x32: ft('float32', [xs.length], xs) });
  // the JS Φ against tabulated values
  for (const [x, p] of [[1, 0.8413447460685429], [-2, 0.022750131948179195], [-5, 2.866515718791939e-7], [-10, 7.619853024160527e-24]] as const) {
    assert.ok(Math.abs(phi(x) - p) < 1e-14 * p, `phi(${x})`);
  }
  xs.forEach((x, i) => {
    const p = phi(x);
    // Φ(x) = erfc(−x/√2)/2: relative error of the fit on the smaller tail
    const err = Math.abs((out['p64']!.data as Float64Array)[i]! - p);
    assert.ok(err < 1.2e-7 * (x < 0 ? p : 1), `float64 Φ(${x}): error ${err}`);
    assert.ok(Math.abs((out['p32']!.data as Float32Array)[i]! - p) < 1e-6, `float32 Φ(${x})`);
  });
});

test('balancing loss equals (cv²(importance) + cv²(load))·1e-2 computed in JS (smooth load with noise, counts without)', async () => {
  const [B, d, En, k] = [6, 4, 5, 2];
  const rng = new Rng(12);
  const t = randn(rng, B * d);
  const Wg = randn(rng, d * En);
  const Wn = randn(rng, d * En, 0.5);
  const eps = randn(rng, B * En);
  const g = new Graph({ name: 'balance' });
  const tt = g.input('t', 'float64', ['batch', d]);
  const gate = g.param('wg', Float64Array.from(Wg), [d, En]);
  const noisy = noisyTopKGating(tt, gate, { k, noise: { weight: g.param('wn', Float64Array.from(Wn), [d, En]), eps: g.input('eps', 'float64', ['batch', En]) } });
  const clean = noisyTopKGating(tt, gate, { k });
  g.output(balanceLoss(noisy), 'noisy');
  g.output(balanceLoss(clean), 'clean');
  const s = await engine.session('balance', () => g.toBytes(), { optimizationLevel: 'basic' });
  const out = await engine.run(s, { t: ft('float64', [B, d], t), eps: ft('float64', [B, En], eps) });

  const cv2 = (v: number[]) => {
    const mean = v.reduce((a, b) => a + b, 0) / v.length;
    const variance = v.reduce((a, b) => a + (b - mean) ** 2, 0) / (v.length - 1);
    return variance / (mean * mean + 1e-10);
  };
  const dot = (b: number, W: number[], e: number) => Array.from({ length: d }, (_, i) => t[b * d + i]! * W[i * En + e]!).reduce((a, c) => a + c, 0);
  const ref = (withNoise: boolean) => {
    const importance = new Array<number>(En).fill(0);
    const load = new Array<number>(En).fill(0);
    for (let b = 0; b < B; b++) {
      const c = Array.from({ length: En }, (_, e) => dot(b, Wg, e));
      const sd = Array.from({ length: En }, (_, e) => Math.log1p(Math.exp(dot(b, Wn, e))) + 0.01);
      const l = withNoise ? c.map((v, e) => v + eps[b * En + e]! * sd[e]!) : c;
      const order = [...l.keys()].sort((p, q) => l[q]! - l[p]!);
      const z = order.slice(0, k).reduce((a, e) => a + Math.exp(l[e]! - l[order[0]!]!), 0);
      for (const e of order.slice(0, k)) importance[e]! += Math.exp(l[e]! - l[order[0]!]!) / z;
      if (withNoise) {
        const thrIn = l[order[k]!]!;
        const thrOut = l[order[k - 1]!]!;
        for (let e = 0; e < En; e++) load[e]! += l[e]! > thrIn ? phi((c[e]! - thrIn) / sd[e]!) : phi((c[e]! - thrOut) / sd[e]!);
      } else for (const e of order.slice(0, k)) load[e]!++;
    }
    return (cv2(importance) + cv2(load)) * 1e-2;
  };
  const gotNoisy = out['noisy']!.data[0] as number;
  const gotClean = out['clean']!.data[0] as number;
  // the graph Φ has relative error < 1.2e-7 (float64 fit), hence 5e-7 relative on the smooth-load loss
  assert.ok(Math.abs(gotNoisy - ref(true)) < 5e-7 * Math.abs(ref(true)), `noisy ${gotNoisy} vs ${ref(true)}`);
  assert.ok(Math.abs(gotClean - ref(false)) < 1e-12, `clean ${gotClean} vs ${ref(false)}`);
  assert.ok(gotNoisy > 0 && gotClean > 0);
});

test('errors name the option and the site: topK above the allowed experts, unknown router, balanceLoss outside training', () => {
  const m = routedModel(1);
  const g = new Graph({ name: 'errors' });
  const source = moeWeightSource(g, m.values);
  assert.throws(() => buildMoeHooks(g, m.layout, { source, mode: { kind: 'eval', router: 2 }, topK: 4 }), /topK=4 exceeds the 3 experts router 2 may select at site image\.1/);
  assert.throws(() => buildMoeHooks(g, m.layout, { source, mode: { kind: 'eval-per-sample' }, topK: 4 }), /topK=4 exceeds the 3 experts router 2/);
  assert.throws(() => buildMoeHooks(g, m.layout, { source, mode: { kind: 'train', router: 0, noise: true, dropout: false }, topK: 6 }), /topK=6 exceeds the 5 experts router 0/);
  assert.throws(() => buildMoeHooks(g, m.layout, { source, mode: { kind: 'train', router: 7, noise: true, dropout: false }, topK: 2 }), /mode\.router 7/);
  assert.throws(() => buildMoeHooks(g, m.layout, { source, mode: { kind: 'eval', router: 0 }, topK: 2, balanceLoss: true }), /balanceLoss/);
  const x: Tensor = g.input('x', 'float64', ['batch', T, D + 1]);
  const res = buildMoeHooks(g, m.layout, { source, mode: { kind: 'eval', router: 0 }, topK: 2 });
  assert.throws(() => res.hooks.block!({ g, tower: 'image', layer: 1, x, scope: '' }), /site image\.1 has width 6/);
  assert.equal(res.hooks.block!({ g, tower: 'image', layer: 0, x, scope: '' }), null, 'blocks without a site get no branch');
});
