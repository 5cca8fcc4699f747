/**
 * Experts against independent truth: a plain-JS dense mixture (every expert computed, gates 0 where not
 * selected), the dropout mask against a BigInt re-implementation of the hash, and the gradients of a whole noisy
 * top-k MoE branch against float64 central finite differences.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Graph, add, grad, mul, reduceSum, type Tensor } from '../../src/graph/index.ts';
import { Engine } from '../../src/runtime/engine.ts';
import type { TensorData } from '../../src/runtime/types.ts';
import { Rng } from '../../src/util/rng.ts';
import {
  EXPERT_PARTS,
  MoeLayout,
  buildMoeHooks,
  expertForward,
  expertTensorName,
  hashDropout,
  moeWeightSource,
  routerTensorName,
  selectedExpertsForward,
  stackExperts,
  type ExpertTensors,
} from '../../src/moe/index.ts';

const engine = await Engine.create({ worker: false, threads: 1 });
after(() => engine.close());

const f64 = (dims: number[], data: ArrayLike<number>): TensorData => ({ dtype: 'float64', dims, data: Float64Array.from(data) });
const randn = (rng: Rng, n: number, std = 1): number[] => Array.from({ length: n }, () => std * rng.normal());

interface JsExpert {
  down: number[]; // [bn, d]
  downB: number[];
  up: number[]; // [d, bn]
  upB: number[];
}

/** 0.1 · (U·relu(D·x + b) + c) for one token. */
function jsExpert(e: JsExpert, x: number[], bn: number): number[] {
  const d = x.length;
  const h = Array.from({ length: bn }, (_, j) => Math.max(0, e.downB[j]! + x.reduce((s, v, i) => s + e.down[j * d + i]! * v, 0)));
  return Array.from({ length: d }, (_, i) => 0.1 * (e.upB[i]! + h.reduce((s, v, j) => s + e.up[i * bn + j]! * v, 0)));
}

function randomExperts(rng: Rng, E: number, d: number, bn: number): JsExpert[] {
  return Array.from({ length: E }, () => ({
    down: randn(rng, bn * d, 0.6),
    downB: randn(rng, bn, 0.2),
    up: randn(rng, d * bn, 0.6),
    upB: randn(rng, d, 0.2),
  }));
}

function declareExpert(g: Graph, e: JsExpert, i: number, d: number, bn: number): ExpertTensors {
  return {
    downWeight: g.param(`e${i}.dw`, Float64Array.from(e.down), [bn, d]),
    downBias: g.param(`e${i}.db`, Float64Array.from(e.downB), [bn]),
    upWeight: g.param(`e${i}.uw`, Float64Array.from(e.up), [d, bn]),
    upBias: g.param(`e${i}.ub`, Float64Array.from(e.upB), [d]),
  };
}

test('top-k gathered experts equal the dense JS mixture (all experts, gates 0 where not selected)', async () => {
  const [B, T, d, bn, E, k] = [4, 3, 5, 4, 5, 2];
  const rng = new Rng(1);
  const experts = randomExperts(rng, E, d, bn);
  const x = randn(rng, B * T * d);
  // per sample two distinct experts and arbitrary (not normalised) gates
  const idx = [
    [3, 0],
    [1, 4],
    [4, 3],
    [2, 1],
  ];
  const gates = [
    [0.7, 0.3],
    [0.55, 0.45],
    [0.9, 0.1],
    [0.6, -0.2],
  ];
  const g = new Graph({ name: 'gathered' });
  const xt = g.input('x', 'float64', ['batch', T, d]);
  const it = g.input('idx', 'int64', ['batch', k]);
  const gt = g.input('gates', 'float64', ['batch', k]);
  const stack = stackExperts(experts.map((e, i) => declareExpert(g, e, i, d, bn)), d);
  g.output(selectedExpertsForward(xt, stack, it, gt), 'y');
  g.output(expertForward(xt, declareExpert(g, experts[2]!, 99, d, bn)), 'dense2');
  const s = await engine.session('gathered', () => g.toBytes(), { optimizationLevel: 'basic' });
  const out = await engine.run(s, {
    x: f64([B, T, d], x),
    idx: { dtype: 'int64', dims: [B, k], data: BigInt64Array.from(idx.flat(), BigInt) },
    gates: f64([B, k], gates.flat()),
  });
  const y = out['y']!.data as Float64Array;
  const dense2 = out['dense2']!.data as Float64Array;
  let worst = 0;
  for (let b = 0; b < B; b++) {
    const G = new Array<number>(E).fill(0);
    idx[b]!.forEach((e, j) => (G[e] = gates[b]![j]!));
    for (let t = 0; t < T; t++) {
      const tok = x.slice((b * T + t) * d, (b * T + t + 1) * d);
      const ref = new Array<number>(d).fill(0);
      experts.forEach((e, ei) => jsExpert(e, tok, bn).forEach((v, i) => (ref[i]! += G[ei]! * v)));
      ref.forEach((v, i) => (worst = Math.max(worst, Math.abs(v - y[(b * T + t) * d + i]!))));
      jsExpert(experts[2]!, tok, bn).forEach((v, i) => (worst = Math.max(worst, Math.abs(v - dense2[(b * T + t) * d + i]!))));
    }
  }
  assert.ok(worst < 1e-13, `max error ${worst}`);
});

// --- dropout -------------------------------------------------------------------------------------------------

const M31 = 1n << 31n;
const C = 0x2545f491n;
function jsMix(h0: bigint): bigint {
  let h = (h0 * C) % M31;
  for (let r = 0; r < 2; r++) {
    h = (h * (2n * h + 1n)) % M31;
    h = (h + h / 65536n) % M31;
  }
  h = (h * C) % M31;
  return (h + h / 65536n) % M31;
}
/** The documented table: 2²¹ entries, true with probability 1 − p, from Rng(0x5eed). */
function jsTable(p: number): boolean[] {
  const rng = new Rng(0x5eed);
  return Array.from({ length: 2 ** 21 }, () => rng.float() >= p);
}
const TABLE = jsTable(0.1);
/** The keep decision of element i of an n-element tensor, re-implemented (BigInt start hash) from the module doc. */
function jsKeep(i: number, n: number, seed: bigint, salt: number): boolean {
  const sm = ((seed % M31) + M31) % M31;
  const s = Number(jsMix((sm + BigInt(salt) * 0x1e3779b9n) % M31) % (1n << 20n));
  return TABLE[s + (i % Math.min(n, 2 ** 20))]!;
}

test('dropout: the mask equals the documented table shift bit for bit; keep rate 0.9, scaling 1/0.9, fresh masks per seed and salt', async () => {
  const shape = [5, 40, 100];
  const n = shape.reduce((a, b) => a * b, 1);
  const rng = new Rng(2);
  const x = Float64Array.from({ length: n }, () => rng.uniform(0.5, 2));
  const g = new Graph({ name: 'dropout' });
  const xt = g.input('x', 'float64', ['b', 40, 'h']);
  const seed = g.input('seed', 'int64', []);
  g.output(hashDropout(xt, seed, { salt: 0 }), 'y0');
  g.output(hashDropout(xt, seed, { salt: 7 }), 'y7');
  const s = await engine.session('dropout', () => g.toBytes());
  const runWith = async (sd: bigint) => engine.run(s, { x: f64(shape, x), seed: { dtype: 'int64', dims: [], data: BigInt64Array.of(sd) } });
  const masks: boolean[][] = [];
  for (const sd of [12345n, 12346n, -987654321n]) {
    const out = await runWith(sd);
    for (const [name, salt] of [['y0', 0], ['y7', 7]] as const) {
      const y = out[name]!.data as Float64Array;
      const mask: boolean[] = [];
      for (let i = 0; i < n; i++) {
        const keep = jsKeep(i, n, sd, salt);
        assert.equal(y[i], keep ? x[i]! * (1 / 0.9) : 0, `seed ${sd} salt ${salt} element ${i}`);
        mask.push(keep);
      }
      masks.push(mask);
    }
  }
  // statistics of the masks (n = 20000): keep rate, independence of neighbours, of seeds and of salts
  const rate = masks[0]!.filter(Boolean).length / n;
  assert.ok(Math.abs(rate - 0.9) < 0.01, `keep rate ${rate}`);
  const both = masks[0]!.filter((v, i) => i + 1 < n && v && masks[0]![i + 1]).length / (n - 1);
  assert.ok(Math.abs(both - 0.81) < 0.015, `P(keep_i and keep_i+1) = ${both}`);
  for (const [a, b] of [[0, 2], [0, 1], [2, 4]] as const) {
    const agree = masks[a]!.filter((v, i) => v && masks[b]![i]).length / n;
    assert.ok(Math.abs(agree - 0.81) < 0.015, `masks ${a} and ${b} overlap ${agree}, want ≈ independent 0.81`);
  }
  // same seed again: identical output
  const again = await runWith(12345n);
  assert.deepEqual(again['y0']!.data, (await runWith(12345n))['y0']!.data);
});

test('dropout on a tensor longer than the table window repeats the window (period 2^20) and still matches the reference', async () => {
  const n = 2 ** 20 + 1000;
  const g = new Graph({ name: 'dropout-long' });
  const xt = g.input('x', 'float32', ['n']);
  const seed = g.input('seed', 'int64', []);
  g.output(hashDropout(xt, seed, { salt: 3 }), 'y');
  const s = await engine.session('dropout-long', () => g.toBytes());
  const out = await engine.run(s, { x: { dtype: 'float32', dims: [n], data: new Float32Array(n).fill(1) }, seed: { dtype: 'int64', dims: [], data: BigInt64Array.of(77n) } });
  const y = out['y']!.data as Float32Array;
  const scale = Math.fround(1 / 0.9);
  let mismatches = 0;
  for (let i = 0; i < n; i++) if (y[i] !== (jsKeep(i, n, 77n, 3) ? scale : 0)) mismatches++;
  assert.equal(mismatches, 0);
  for (let i = 0; i < 1000; i++) assert.equal(y[2 ** 20 + i], y[i]);
});

// --- gradients of the MoE branch ----------------------------------------------------------------------------

test('noisy top-k MoE branch (E=4, k=2, d=6, bn=3, B=3, T=2): gradients of every expert tensor, W_g, W_n and x match float64 central differences', async (t) => {
  const [B, T, d, bn, E, k] = [3, 2, 6, 3, 4, 2];
  const layout = MoeLayout.forClip({ vision: { layers: 1, width: d }, text: { layers: 1, width: d } }, { towers: ['image'], experts: E, routers: 1, bottleneck: bn });
  const site = layout.sites[0]!;
  const rng = new Rng(31);
  const values = new Map<string, TensorData>();
  for (const id of layout.experts(site)) {
    values.set(expertTensorName(site, id, 'down.weight'), f64([bn, d], randn(rng, bn * d, 0.6)));
    values.set(expertTensorName(site, id, 'down.bias'), f64([bn], randn(rng, bn, 0.3)));
    values.set(expertTensorName(site, id, 'up.weight'), f64([d, bn], randn(rng, d * bn, 0.6)));
    values.set(expertTensorName(site, id, 'up.bias'), f64([d], randn(rng, d, 0.3)));
  }
  values.set(routerTensorName(site, 0, 'gate'), f64([d, E], randn(rng, d * E, 0.8)));
  values.set(routerTensorName(site, 0, 'noise'), f64([d, E], randn(rng, d * E, 0.5)));
  const x = randn(rng, B * T * d);
  const eps = randn(rng, B * E);
  const R = randn(rng, B * T * d);

  for (const withBalance of [false, true]) {
    const g = new Graph({ name: `fd${withBalance}` });
    const xt = g.input('x', 'float64', [B, T, d]);
    const src = moeWeightSource(g, values, { trainable: () => true });
    const res = buildMoeHooks(g, layout, { source: src, mode: { kind: 'train', router: 0, noise: true, dropout: false }, topK: k, balanceLoss: withBalance });
    const y = res.hooks.block!({ g, tower: 'image', layer: 0, x: xt, scope: '' })!;
    const Rt = g.input('R', 'float64', [B, T, d]);
    let loss: Tensor = reduceSum(mul(y, Rt));
    if (withBalance) loss = add(loss, mul(res.balanceLoss!, 10));
    const wrt = [...src.trainable.values(), xt];
    assert.equal(src.trainable.size, 4 * E + 2, 'every expert tensor plus gate and noise are inputs');
    g.output(loss, 'loss');
    grad(loss, wrt).forEach((gr, i) => g.output(gr, `grad:${wrt[i]!.name}`));
    const s = await engine.session(`fd${withBalance}`, () => g.toBytes(), { optimizationLevel: 'basic' });
    const feeds = (over?: { name: string; i: number; delta: number }): Record<string, TensorData> => {
      const f: Record<string, TensorData> = { x: f64([B, T, d], x), R: f64([B, T, d], R), [res.inputs.noise[site.key]!.name]: f64([B, E], eps) };
      for (const [name, v] of values) f[name] = v;
      if (over) {
        const base = f[over.name]!;
        const data = Float64Array.from(base.data as Float64Array);
        data[over.i]! += over.delta;
        f[over.name] = { ...base, data };
      }
      return f;
    };
    const base = await engine.run(s, feeds());

    if (!withBalance) {
      // away from ties: noisy logits have a margin between the k-th and (k+1)-th, selected hidden units are not at 0
      const Wg = values.get(routerTensorName(site, 0, 'gate'))!.data as Float64Array;
      const Wn = values.get(routerTensorName(site, 0, 'noise'))!.data as Float64Array;
      let minMargin = Infinity;
      let minPre = Infinity;
      const chosen = new Set<number>();
      for (let b = 0; b < B; b++) {
        const tok = x.slice(b * T * d, b * T * d + d);
        const logit = Array.from({ length: E }, (_, e) => {
          const c = tok.reduce((s2, v, i) => s2 + v * Wg[i * E + e]!, 0);
          const raw = tok.reduce((s2, v, i) => s2 + v * Wn[i * E + e]!, 0);
          return c + eps[b * E + e]! * (Math.log1p(Math.exp(raw)) + 0.01);
        });
        const order = [...logit.keys()].sort((p, q) => logit[q]! - logit[p]!);
        minMargin = Math.min(minMargin, logit[order[k - 1]!]! - logit[order[k]!]!);
        for (const e of order.slice(0, k)) {
          chosen.add(e);
          const D = values.get(expertTensorName(site, e, 'down.weight'))!.data as Float64Array;
          const Db = values.get(expertTensorName(site, e, 'down.bias'))!.data as Float64Array;
          for (let tt = 0; tt < T; tt++) {
            const xv = x.slice((b * T + tt) * d, (b * T + tt + 1) * d);
            for (let j = 0; j < bn; j++) minPre = Math.min(minPre, Math.abs(Db[j]! + xv.reduce((s2, v, i) => s2 + D[j * d + i]! * v, 0)));
          }
        }
      }
      assert.ok(minMargin > 1e-3, `top-k margin ${minMargin}`);
      assert.ok(minPre > 1e-4, `ReLU pre-activation ${minPre}`);
      assert.ok(chosen.size >= 3, `only experts ${[...chosen]} selected`);
      t.diagnostic(`selected experts ${[...chosen].sort()}, margin ${minMargin.toExponential(2)}, min |pre-ReLU| ${minPre.toExponential(2)}`);
    }

    const h = 1e-6;
    let worst = 0;
    let nonzero = 0;
    for (const w of wrt) {
      const an = base[`grad:${w.name}`]!.data as Float64Array;
      const n = an.length;
      let maxDiff = 0;
      let maxFd = 0;
      for (let i = 0; i < n; i++) {
        const lp = (await engine.run(s, feeds({ name: w.name, i, delta: h }), ['loss']))['loss']!.data[0] as number;
        const lm = (await engine.run(s, feeds({ name: w.name, i, delta: -h }), ['loss']))['loss']!.data[0] as number;
        const fd = (lp - lm) / (2 * h);
        maxDiff = Math.max(maxDiff, Math.abs(fd - an[i]!));
        maxFd = Math.max(maxFd, Math.abs(fd));
      }
      if (maxFd > 1e-6) nonzero++;
      const rel = maxDiff / Math.max(maxFd, 1e-3);
      worst = Math.max(worst, rel);
      assert.ok(rel < 1e-6, `${withBalance ? 'with balance loss: ' : ''}${w.name}: relative error ${rel}`);
    }
    // the gate, the noise, x and most experts' tensors carry gradient
    assert.ok(nonzero >= 3 * 4 + 3, `only ${nonzero} tensors with a non-zero gradient`);
    t.diagnostic(`${withBalance ? 'with' : 'without'} balance loss: ${wrt.length} tensors, worst relative error ${worst.toExponential(2)}`);
  }
});

test('expert tensors are named and shaped canonically and the init outputs exactly 0', () => {
  const layout = MoeLayout.forClip({ vision: { layers: 2, width: 8 }, text: { layers: 2, width: 6 } }, { experts: 2, bottleneck: 5 });
  const site = layout.site('text', 1)!;
  const init = layout.initExpert(site, 1, new Rng(4));
  assert.deepEqual(Object.keys(init), EXPERT_PARTS.map((p) => `moe.text.1.e1.${p}`));
  assert.deepEqual(init['moe.text.1.e1.down.weight']!.dims, [5, 6]);
  assert.deepEqual(init['moe.text.1.e1.up.weight']!.dims, [6, 5]);
  const down = init['moe.text.1.e1.down.weight']!.data as Float32Array;
  const bound = 1 / Math.sqrt(6);
  assert.ok(down.every((v) => Math.abs(v) <= bound) && down.some((v) => v !== 0));
  for (const p of ['down.bias', 'up.weight', 'up.bias']) assert.ok((init[`moe.text.1.e1.${p}`]!.data as Float32Array).every((v) => v === 0), p);
  // the same stream gives the same draws: U(−1/√d, 1/√d) row-major
  const r = new Rng(4);
  assert.deepEqual(Array.from(down), Array.from(Float32Array.from({ length: 30 }, () => r.uniform(-bound, bound))));
});
