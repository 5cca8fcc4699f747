/**
 * buildTrainStep: naming convention, and 3 training steps of a linear least-squares model run in ORT vs the
 * same steps in plain JS (analytic gradient + PyTorch AdamW/SGD formulas, optional clipping).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as G from '../../src/graph/index.ts';
import { relErr, run, session, LSQ_X, LSQ_Y, lsqLossGrad } from './helpers.ts';

const X = LSQ_X;
const Y = LSQ_Y;
const W0 = [0.1, -0.2, 0.3];
const B0 = [0.05];

const jsLossGrad = lsqLossGrad;

function buildModel(g: G.Graph): { loss: G.Tensor; w: G.Tensor; b: G.Tensor; pred: G.Tensor } {
  const x = g.input('x', 'float64', ['batch', 3]);
  const y = g.input('y', 'float64', ['batch']);
  const w = g.input('model/w', 'float64', [3]);
  const b = g.input('model/b', 'float64', [1]);
  const pred = G.add(G.matmul(x, w), b);
  const r = G.sub(pred, y);
  return { loss: G.reduceMean(G.mul(r, r)), w, b, pred };
}

function feedsFor(state: Record<string, number[]>, step: number, lr: number) {
  const f = (data: number[], shape: number[]) => ({ dtype: 'float64' as const, data: Float64Array.from(data), shape });
  const feeds: Record<string, ReturnType<typeof f>> = {
    x: f(X.flat(), [4, 3]),
    y: f(Y, [4]),
    lr: f([lr], []),
    step: f([step], []),
  };
  for (const [k, v] of Object.entries(state)) feeds[k] = f(v, [v.length]);
  return feeds;
}

test('buildTrainStep declares the documented inputs and outputs (AdamW, clipping, extras)', () => {
  const g = new G.Graph();
  const { loss, w, b, pred } = buildModel(g);
  const spec = G.buildTrainStep(g, { loss, params: [w, b], optimizer: { kind: 'adamw' }, clipNorm: 1, extraOutputs: { pred } });
  assert.deepEqual(spec.paramNames, ['model/w', 'model/b']);
  assert.deepEqual(spec.stateNames, { 'model/w': ['model/w.m', 'model/w.v'], 'model/b': ['model/b.m', 'model/b.v'] });
  assert.deepEqual(spec.inputNames, ['x', 'y', 'model/w', 'model/b', 'model/w.m', 'model/w.v', 'model/b.m', 'model/b.v', 'lr', 'step']);
  assert.deepEqual(spec.outputNames, [
    'loss',
    'model/w.next',
    'model/w.m.next',
    'model/w.v.next',
    'model/b.next',
    'model/b.m.next',
    'model/b.v.next',
    'pred',
    'grad_norm',
  ]);
  assert.equal(spec.gradNormName, 'grad_norm');
  assert.equal(spec.dtype, 'float64');
  const lr = g.inputs.find((t) => t.name === 'lr')!;
  assert.deepEqual([lr.dtype, lr.shape], ['float64', []]);
});

test('buildTrainStep SGD with momentum uses <p>.buf; plain SGD has no state', () => {
  for (const [momentum, slots] of [
    [0.9, ['model/w.buf']],
    [0, []],
  ] as const) {
    const g = new G.Graph();
    const { loss, w } = buildModel(g);
    const spec = G.buildTrainStep(g, { loss, params: [w], optimizer: { kind: 'sgd', momentum } });
    assert.deepEqual(spec.stateNames['model/w'], slots);
    assert.deepEqual(spec.outputNames, ['loss', 'model/w.next', ...slots.map((s) => `${s}.next`)]);
  }
});

test('buildTrainStep rejects bad params with clear messages', () => {
  const g = new G.Graph();
  const { loss, w } = buildModel(g);
  const frozen = g.param('frozen', new Float64Array(3), [3]);
  assert.throws(() => G.buildTrainStep(g, { loss, params: [frozen], optimizer: { kind: 'adamw' } }), /'frozen'.*must be a graph input/);
  assert.throws(() => G.buildTrainStep(g, { loss: G.mul(w, 2), params: [w], optimizer: { kind: 'adamw' } }), /loss must be a float scalar/);
  const h = new G.Graph();
  const sym = h.input('p', 'float32', ['n']);
  assert.throws(() => G.buildTrainStep(h, { loss: G.reduceSum(sym), params: [sym], optimizer: { kind: 'adamw' } }), /static shape/);
});

test('3 AdamW train steps with clipping match plain JS', async () => {
  const g = new G.Graph();
  const { loss, w, b } = buildModel(g);
  const maxNorm = 0.5;
  const cfg = { kind: 'adamw' as const, beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: (name: string) => (name.endsWith('/b') ? 0 : 0.1) };
  G.buildTrainStep(g, { loss, params: [w, b], optimizer: cfg, clipNorm: maxNorm });
  const s = await session(g);
  let state: Record<string, number[]> = { 'model/w': W0, 'model/b': B0, 'model/w.m': [0, 0, 0], 'model/w.v': [0, 0, 0], 'model/b.m': [0], 'model/b.v': [0] };
  // JS mirror
  const js = { w: [...W0], b: [...B0], mw: [0, 0, 0], vw: [0, 0, 0], mb: [0], vb: [0] };
  const lrs = [0.1, 0.05, 0.01];
  for (let t = 1; t <= 3; t++) {
    const lr = lrs[t - 1]!;
    const out = await run(s, feedsFor(state, t, lr));
    const { loss: jl, gw, gb } = jsLossGrad(js.w, js.b[0]!);
    const norm = Math.sqrt(gw.reduce((a, v) => a + v * v, gb * gb));
    const coef = Math.min(1, maxNorm / (norm + 1e-6));
    const upd = (p: number[], m: number[], v: number[], gr: number[], wd: number) => {
      for (let i = 0; i < p.length; i++) {
        const gi = gr[i]! * coef;
        p[i]! -= lr * wd * p[i]!;
        m[i] = 0.9 * m[i]! + 0.1 * gi;
        v[i] = 0.99 * v[i]! + 0.01 * gi * gi;
        p[i]! -= (lr * (m[i]! / (1 - 0.9 ** t))) / (Math.sqrt(v[i]! / (1 - 0.99 ** t)) + 1e-8);
      }
    };
    upd(js.w, js.mw, js.vw, gw, 0.1);
    upd(js.b, js.mb, js.vb, [gb], 0);
    assert.ok(Math.abs(out['loss']!.data[0]! - jl) < 1e-12 * Math.max(1, jl), `step ${t} loss`);
    assert.ok(Math.abs(out['grad_norm']!.data[0]! - norm) < 1e-12 * norm, `step ${t} grad norm`);
    assert.ok(relErr(out['model/w.next']!.data, js.w) < 1e-12, `step ${t} w: ${out['model/w.next']!.data} vs ${js.w}`);
    assert.ok(relErr(out['model/b.next']!.data, js.b) < 1e-12, `step ${t} b`);
    assert.ok(relErr(out['model/w.v.next']!.data, js.vw) < 1e-12, `step ${t} v`);
    state = Object.fromEntries(Object.keys(state).map((k) => [k, out[`${k}.next`]!.data]));
  }
});

test('3 Nesterov SGD train steps match plain JS; a param the loss ignores gets zero gradient', async () => {
  const g = new G.Graph();
  const { loss, w } = buildModel(g);
  const unused = g.input('unused', 'float64', [2]);
  G.buildTrainStep(g, { loss, params: [w, unused], optimizer: { kind: 'sgd', momentum: 0.9, nesterov: true, weightDecay: 0.01 } });
  const s = await session(g);
  let state: Record<string, number[]> = { 'model/w': W0, 'model/w.buf': [0, 0, 0], unused: [1, -1], 'unused.buf': [0, 0] };
  const jsW = [...W0];
  const jsU = [1, -1];
  const bufW = [0, 0, 0];
  const bufU = [0, 0];
  for (let t = 1; t <= 3; t++) {
    const lr = 0.05;
    const feeds = feedsFor(state, t, lr);
    feeds['model/b'] = { dtype: 'float64', data: Float64Array.from(B0), shape: [1] };
    const out = await run(s, feeds);
    const { gw } = jsLossGrad(jsW, B0[0]!);
    const step = (p: number[], buf: number[], gr: number[]) => {
      for (let i = 0; i < p.length; i++) {
        const d = gr[i]! + 0.01 * p[i]!;
        buf[i] = t === 1 ? d : 0.9 * buf[i]! + d;
        p[i]! -= lr * (d + 0.9 * buf[i]!);
      }
    };
    step(jsW, bufW, gw);
    step(jsU, bufU, [0, 0]);
    assert.ok(relErr(out['model/w.next']!.data, jsW) < 1e-12, `step ${t} w`);
    assert.ok(relErr(out['unused.next']!.data, jsU) < 1e-12, `step ${t} unused`);
    state = Object.fromEntries(Object.keys(state).map((k) => [k, out[`${k}.next`]!.data]));
  }
});
