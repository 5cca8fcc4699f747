/**
 * buildTrainStep with `stepPerParam`: per-parameter step counters `<p>.t` replace the shared `step`. Checked in
 * float64 against plain-JS AdamW / SGD where each parameter has its own t.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as G from '../../src/graph/index.ts';
import { relErr, run, session, type Feed, LSQ_X, LSQ_Y, lsqLossGrad } from './helpers.ts';

const X = LSQ_X;
const Y = LSQ_Y;

const jsLossGrad = lsqLossGrad;

function buildModel(g: G.Graph, dtype: 'float32' | 'float64' = 'float64') {
  const x = g.input('x', dtype, ['batch', 3]);
  const y = g.input('y', dtype, ['batch']);
  const w = g.input('w', dtype, [3]);
  const b = g.input('b', dtype, [1]);
  const r = G.sub(G.add(G.matmul(x, w), b), y);
  return { loss: G.reduceMean(G.mul(r, r)), w, b };
}

const f64 = (data: readonly number[], shape: number[]): Feed => ({ dtype: 'float64', data: Float64Array.from(data), shape });
const f32 = (data: readonly number[], shape: number[]): Feed => ({ dtype: 'float32', data: Float32Array.from(data), shape });

test('stepPerParam declares <p>.t (float32 scalar) and <p>.t.next, and no step', () => {
  const g = new G.Graph();
  const { loss, w, b } = buildModel(g);
  const spec = G.buildTrainStep(g, { loss, params: [w, b], optimizer: { kind: 'adamw' }, stepPerParam: true });
  assert.deepEqual(spec.inputNames, ['x', 'y', 'w', 'b', 'w.m', 'w.v', 'w.t', 'b.m', 'b.v', 'b.t', 'lr']);
  assert.deepEqual(spec.outputNames, ['loss', 'w.next', 'w.m.next', 'w.v.next', 'w.t.next', 'b.next', 'b.m.next', 'b.v.next', 'b.t.next']);
  assert.equal(spec.stepName, null);
  assert.equal(spec.stepPerParam, true);
  assert.deepEqual(spec.stepNames, { w: 'w.t', b: 'b.t' });
  assert.deepEqual(spec.stateNames, { w: ['w.m', 'w.v'], b: ['b.m', 'b.v'] });
  const t = g.inputs.find((i) => i.name === 'w.t')!;
  assert.deepEqual([t.dtype, t.shape], ['float32', []]);

  // default: unchanged naming
  const h = new G.Graph();
  const m = buildModel(h);
  const plain = G.buildTrainStep(h, { loss: m.loss, params: [m.w, m.b], optimizer: { kind: 'adamw' } });
  assert.equal(plain.stepName, 'step');
  assert.equal(plain.stepPerParam, false);
  assert.deepEqual(plain.stepNames, {});
  assert.ok(!plain.inputNames.some((n) => n.endsWith('.t')));
});

test('AdamW with per-parameter t (w from t = 5, b from t = 0) matches plain JS over 3 steps (float64)', async () => {
  const g = new G.Graph();
  const { loss, w, b } = buildModel(g);
  const cfg = { kind: 'adamw' as const, beta1: 0.8, beta2: 0.95, eps: 1e-8, weightDecay: (n: string) => (n === 'b' ? 0 : 0.05) };
  G.buildTrainStep(g, { loss, params: [w, b], optimizer: cfg, stepPerParam: true });
  const s = await session(g);
  // w has history (moments and 5 earlier updates), b is new
  const js = { w: [0.1, -0.2, 0.3], b: [0.05], mw: [0.01, -0.02, 0.03], vw: [1e-3, 2e-3, 5e-4], mb: [0], vb: [0], tw: 5, tb: 0 };
  let state = { w: [...js.w], b: [...js.b], 'w.m': [...js.mw], 'w.v': [...js.vw], 'b.m': [0], 'b.v': [0] } as Record<string, number[]>;
  let tw = 5;
  let tb = 0;
  const lrs = [0.1, 0.05, 0.02];
  const upd = (p: number[], m: number[], v: number[], gr: number[], wd: number, t: number, lr: number) => {
    for (let i = 0; i < p.length; i++) {
      p[i]! -= lr * wd * p[i]!;
      m[i] = 0.8 * m[i]! + 0.2 * gr[i]!;
      v[i] = 0.95 * v[i]! + 0.05 * gr[i]! * gr[i]!;
      p[i]! -= (lr * (m[i]! / (1 - 0.8 ** t))) / (Math.sqrt(v[i]! / (1 - 0.95 ** t)) + 1e-8);
    }
  };
  for (let k = 0; k < 3; k++) {
    const lr = lrs[k]!;
    const feeds: Record<string, Feed> = { x: f64(X.flat(), [4, 3]), y: f64(Y, [4]), lr: f64([lr], []), 'w.t': f32([tw], []), 'b.t': f32([tb], []) };
    for (const [n, v] of Object.entries(state)) feeds[n] = f64(v, [v.length]);
    const out = await run(s, feeds);
    const { loss: jl, gw, gb } = jsLossGrad(js.w, js.b[0]!);
    upd(js.w, js.mw, js.vw, gw, 0.05, tw + 1, lr);
    upd(js.b, js.mb, js.vb, [gb], 0, tb + 1, lr);
    assert.ok(Math.abs(out['loss']!.data[0]! - jl) < 1e-12 * Math.max(1, jl), `step ${k + 1} loss`);
    assert.ok(relErr(out['w.next']!.data, js.w) < 1e-12, `step ${k + 1} w: ${out['w.next']!.data} vs ${js.w}`);
    assert.ok(relErr(out['b.next']!.data, js.b) < 1e-12, `step ${k + 1} b: ${out['b.next']!.data} vs ${js.b}`);
    assert.ok(relErr(out['w.m.next']!.data, js.mw) < 1e-12, `step ${k + 1} w.m`);
    assert.ok(relErr(out['b.v.next']!.data, js.vb) < 1e-12, `step ${k + 1} b.v`);
    assert.deepEqual(out['w.t.next'], { data: [tw + 1], dims: [] });
    assert.deepEqual(out['b.t.next'], { data: [tb + 1], dims: [] });
    tw = out['w.t.next']!.data[0]!;
    tb = out['b.t.next']!.data[0]!;
    state = Object.fromEntries(Object.keys(state).map((n) => [n, out[`${n}.next`]!.data]));
  }
  assert.deepEqual([tw, tb], [8, 3]);
});

test('SGD with dampening uses each parameter\'s own first step (float64)', async () => {
  const g = new G.Graph();
  const { loss, w, b } = buildModel(g);
  G.buildTrainStep(g, { loss, params: [w, b], optimizer: { kind: 'sgd', momentum: 0.9, dampening: 0.5 }, stepPerParam: true });
  const s = await session(g);
  const W = [0.1, -0.2, 0.3];
  const B = [0.05];
  const bufW = [0.4, 0.4, 0.4]; // w is past its first step: the running formula applies
  const bufB = [7]; // b is at its first step: its buffer is replaced by the gradient
  const lr = 0.1;
  const out = await run(s, {
    x: f64(X.flat(), [4, 3]),
    y: f64(Y, [4]),
    lr: f64([lr], []),
    w: f64(W, [3]),
    b: f64(B, [1]),
    'w.buf': f64(bufW, [3]),
    'b.buf': f64(bufB, [1]),
    'w.t': f32([3], []),
    'b.t': f32([0], []),
  });
  const { gw, gb } = jsLossGrad(W, B[0]!);
  const nbw = bufW.map((v, i) => 0.9 * v + 0.5 * gw[i]!);
  const nbb = [gb];
  assert.ok(relErr(out['w.buf.next']!.data, nbw) < 1e-12, 'w.buf: running average');
  assert.ok(relErr(out['b.buf.next']!.data, nbb) < 1e-12, 'b.buf: first step');
  assert.ok(relErr(out['w.next']!.data, W.map((v, i) => v - lr * nbw[i]!)) < 1e-12, 'w');
  assert.ok(relErr(out['b.next']!.data, [B[0]! - lr * gb]) < 1e-12, 'b');
  assert.deepEqual([out['w.t.next']!.data[0], out['b.t.next']!.data[0]], [4, 1]);
});

test('stepPerParam in float32: <p>.t stays float32 and feeds the step directly', async () => {
  const g = new G.Graph();
  const { loss, w, b } = buildModel(g, 'float32');
  G.buildTrainStep(g, { loss, params: [w, b], optimizer: { kind: 'adamw', weightDecay: 0 }, stepPerParam: true });
  const castsOfT = g.nodes.filter((n) => n.opType === 'Cast' && n.name.startsWith('optimizer/'));
  assert.deepEqual(castsOfT, [], 'no Cast of the counters when the params are float32');
  const s = await session(g);
  const W = [0.1, -0.2, 0.3];
  const out = await run(s, {
    x: f32(X.flat(), [4, 3]),
    y: f32(Y, [4]),
    lr: f32([0.01], []),
    w: f32(W, [3]),
    b: f32([0.05], [1]),
    'w.m': f32([0, 0, 0], [3]),
    'w.v': f32([0, 0, 0], [3]),
    'b.m': f32([0], [1]),
    'b.v': f32([0], [1]),
    'w.t': f32([0], []),
    'b.t': f32([0], []),
  });
  // at t = 1 from zero moments, AdamW moves each element by lr·sign(g) (up to ε)
  const { gw } = jsLossGrad(W, 0.05);
  const want = W.map((v, i) => v - 0.01 * Math.sign(gw[i]!));
  assert.ok(relErr(out['w.next']!.data, want) < 1e-5, `${out['w.next']!.data} vs ${want}`);
  assert.deepEqual(out['w.t.next'], { data: [1], dims: [] });
});

/** w [3, 1] rows; loss = mean((X·w − y)²) with w as a column; one row-masked training step with `optimizer`. */
function rowMaskedStep(optimizer: Parameters<typeof G.buildTrainStep>[1]['optimizer']) {
  const g = new G.Graph();
  const x = g.input('x', 'float64', ['batch', 3]);
  const y = g.input('y', 'float64', ['batch']);
  const w = g.input('w', 'float64', [3, 1]);
  const r = G.sub(G.reshape(G.matmul(x, w), [-1]), y);
  const loss = G.reduceMean(G.mul(r, r));
  const spec = G.buildTrainStep(g, { loss, params: [w], optimizer, stepPerParam: true, rowMasks: ['w'] });
  return { g, spec };
}

test('rowMasks: masked-out rows keep value, moments and count bit for bit; trained rows follow AdamW with their own t', async () => {
  const { g, spec } = rowMaskedStep({ kind: 'adamw', weightDecay: 0.1 });
  assert.ok(spec.inputNames.includes('w.rows'));
  const s = await session(g);
  const w0 = [0.3, -0.2, 0.5];
  const m0 = [0.01, 0.02, -0.03];
  const v0 = [0.001, 0.002, 0.003];
  const t0 = [4, 0, 7];
  const out = await run(s, {
    x: f64(X.flat(), [4, 3]),
    y: f64(Y, [4]),
    w: f64(w0, [3, 1]),
    'w.m': f64(m0, [3, 1]),
    'w.v': f64(v0, [3, 1]),
    'w.t': f32(t0, [3, 1]),
    'w.rows': { dtype: 'bool', data: Uint8Array.of(1, 0, 1), shape: [3, 1] },
    lr: f64([0.01], []),
  });
  // row 1 frozen: exactly unchanged
  assert.equal(out['w.next']!.data[1], w0[1]);
  assert.equal(out['w.m.next']!.data[1], m0[1]);
  assert.equal(out['w.v.next']!.data[1], v0[1]);
  assert.equal(out['w.t.next']!.data[1], t0[1]);
  // rows 0 and 2: AdamW (decoupled decay) with their own step t + 1
  const { gw } = jsLossGrad(w0, 0);
  for (const i of [0, 2]) {
    const m = 0.9 * m0[i]! + 0.1 * gw[i]!;
    const v = 0.999 * v0[i]! + 0.001 * gw[i]! * gw[i]!;
    const t = t0[i]! + 1;
    const p = w0[i]! * (1 - 0.01 * 0.1) - (0.01 / (1 - 0.9 ** t)) * (m / (Math.sqrt(v) / Math.sqrt(1 - 0.999 ** t) + 1e-8));
    assert.ok(relErr([out['w.next']!.data[i]!], [p]) < 1e-12, `row ${i}: ${out['w.next']!.data[i]} vs ${p}`);
    assert.equal(out['w.t.next']!.data[i], t);
  }
});

test('rowMasks with SGD (Nesterov momentum): masked-out rows keep value and buffer bit for bit; trained rows follow SGD', async () => {
  const { g, spec } = rowMaskedStep({ kind: 'sgd', momentum: 0.9, nesterov: true });
  assert.ok(spec.inputNames.includes('w.rows'));
  const s = await session(g);
  const w0 = [0.3, -0.2, 0.5];
  const b0 = [0.01, 0.02, -0.03];
  const out = await run(s, {
    x: f64(X.flat(), [4, 3]),
    y: f64(Y, [4]),
    w: f64(w0, [3, 1]),
    'w.buf': f64(b0, [3, 1]),
    'w.t': f32([2, 5, 0], [3, 1]),
    'w.rows': { dtype: 'bool', data: Uint8Array.of(0, 1, 1), shape: [3, 1] },
    lr: f64([0.1], []),
  });
  assert.equal(out['w.next']!.data[0], w0[0]);
  assert.equal(out['w.buf.next']!.data[0], b0[0]);
  assert.equal(out['w.t.next']!.data[0], 2);
  const { gw } = jsLossGrad(w0, 0);
  for (const i of [1, 2]) {
    const buf = 0.9 * b0[i]! + gw[i]!;
    const p = w0[i]! - 0.1 * (gw[i]! + 0.9 * buf);
    assert.ok(relErr([out['w.buf.next']!.data[i]!], [buf]) < 1e-12, `buf ${i}`);
    assert.ok(relErr([out['w.next']!.data[i]!], [p]) < 1e-12, `row ${i}: ${out['w.next']!.data[i]} vs ${p}`);
  }
});
