/**
 * batchNorm (batch statistics, no affine): forward against a direct float64 JS computation, its gradient
 * against central finite differences in float64, and the running-statistics branch.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as G from '../../src/graph/index.ts';
import { evalGraph, gradCheck, randValues, relErr, Rng } from './helpers.ts';

const N = 3;
const C = 2;
const H = 2;
const W = 3;

function direct(x: number[], eps = 1e-5): { y: number[]; mean: number[]; variance: number[] } {
  const y = new Array<number>(x.length);
  const mean: number[] = [];
  const variance: number[] = [];
  const idx = (n: number, c: number, i: number) => (n * C + c) * H * W + i;
  for (let c = 0; c < C; c++) {
    let s = 0;
    for (let n = 0; n < N; n++) for (let i = 0; i < H * W; i++) s += x[idx(n, c, i)]!;
    const m = s / (N * H * W);
    let v = 0;
    for (let n = 0; n < N; n++) for (let i = 0; i < H * W; i++) v += (x[idx(n, c, i)]! - m) ** 2;
    v /= N * H * W;
    mean.push(m);
    variance.push(v);
    for (let n = 0; n < N; n++) for (let i = 0; i < H * W; i++) y[idx(n, c, i)] = (x[idx(n, c, i)]! - m) / Math.sqrt(v + eps);
  }
  return { y, mean, variance };
}

test('batchNorm forward equals the direct per-channel formula (float64), with its batch mean and biased variance', async () => {
  const x = randValues(new Rng(4), N * C * H * W).map((v, i) => v * (1 + (i % 2)) + (i % 5));
  const g = new G.Graph();
  const xi = g.input('x', 'float64', [N, C, H, W]);
  const r = G.batchNorm(xi);
  g.output(r.y, 'y');
  g.output(r.mean, 'mean');
  g.output(r.variance, 'variance');
  const out = await evalGraph(g, { x: { dtype: 'float64', data: Float64Array.from(x), shape: [N, C, H, W] } });
  const d = direct(x);
  assert.ok(relErr(out['y']!.data, d.y) < 1e-12);
  assert.ok(relErr(out['mean']!.data, d.mean) < 1e-12);
  assert.ok(relErr(out['variance']!.data, d.variance) < 1e-12);
  assert.deepEqual(out['mean']!.dims, [C]);
});

test('batchNorm gradient matches float64 finite differences (batch statistics flow into the gradient)', async () => {
  const r = await gradCheck({
    ops: ['ReduceMean', 'Sub', 'Div', 'Sqrt'],
    name: 'batchnorm',
    inputs: [{ name: 'x', shape: [N, C, H, W] }],
    build: ([x]) => G.batchNorm(x!).y,
  });
  assert.ok(r.relErr['x']! < 1e-6, `relErr ${r.relErr['x']}`);
});

test('batchNorm with running statistics normalises by them, and their gradient is checked too', async () => {
  const x = randValues(new Rng(5), N * C * H * W);
  const mean = [0.5, -1];
  const variance = [2, 0.25];
  const g = new G.Graph();
  const xi = g.input('x', 'float64', [N, C, H, W]);
  const m = g.input('m', 'float64', [C]);
  const v = g.input('v', 'float64', [C]);
  g.output(G.batchNorm(xi, { stats: { mean: m, variance: v } }).y, 'y');
  const f = (d: number[], s: number[]) => ({ dtype: 'float64' as const, data: Float64Array.from(d), shape: s });
  const out = await evalGraph(g, { x: f(x, [N, C, H, W]), m: f(mean, [C]), v: f(variance, [C]) });
  const want = x.map((val, i) => {
    const c = Math.floor(i / (H * W)) % C;
    return (val - mean[c]!) / Math.sqrt(variance[c]! + 1e-5);
  });
  assert.ok(relErr(out['y']!.data, want) < 1e-12);
  const r = await gradCheck({
    ops: ['Sub', 'Div'],
    name: 'batchnorm-running',
    inputs: [{ name: 'x', shape: [N, C, H, W] }, { name: 'm', shape: [C] }, { name: 'v', shape: [C], gen: 'positive' }],
    build: ([x, mm, vv]) => G.batchNorm(x!, { stats: { mean: mm!, variance: vv! } }).y,
  });
  for (const [k, e] of Object.entries(r.relErr)) assert.ok(e < 1e-6, `${k}: ${e}`);
});

test('batchNorm rejects inputs without spatial axes and mismatched running stats', () => {
  const g = new G.Graph();
  assert.throws(() => G.batchNorm(g.input('a', 'float32', [2, 3])), /batchNorm: needs \[N, C, \*spatial\]/);
  const x = g.input('b', 'float32', [2, 3, 4, 4]);
  assert.throws(() => G.batchNorm(x, { stats: { mean: g.input('m', 'float32', [2]), variance: g.input('v', 'float32', [3]) } }), /running stats must be \[3\]/);
});
