/**
 * In-graph optimisers vs the PyTorch formulas computed in plain JS on known numbers over 3 steps, and
 * clipGradNorm by hand.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as G from '../../src/graph/index.ts';
import type { DType } from '../../src/graph/index.ts';
import { relErr, run, session, typed } from './helpers.ts';

const P0 = [0.5, -1.25, 2.0, 0.0];
const GRADS = [
  [0.1, -0.2, 0.3, -0.4],
  [-0.05, 0.5, 0.25, 1.0],
  [0.3, 0.3, -0.6, 0.02],
];
const LRS = [0.1, 0.05, 0.02];

/** AdamW as written in the brief: p −= lr·wd·p; m, v moments; p −= lr·m̂/(√v̂ + ε). */
function jsAdamW(b1: number, b2: number, eps: number, wd: number): number[][] {
  const p = [...P0];
  const m = [0, 0, 0, 0];
  const v = [0, 0, 0, 0];
  const history: number[][] = [];
  GRADS.forEach((g, s) => {
    const t = s + 1;
    const lr = LRS[s]!;
    for (let i = 0; i < p.length; i++) {
      p[i]! -= lr * wd * p[i]!;
      m[i] = b1 * m[i]! + (1 - b1) * g[i]!;
      v[i] = b2 * v[i]! + (1 - b2) * g[i]! * g[i]!;
      const mhat = m[i]! / (1 - b1 ** t);
      const vhat = v[i]! / (1 - b2 ** t);
      p[i]! -= (lr * mhat) / (Math.sqrt(vhat) + eps);
    }
    history.push([...p, ...m, ...v]);
  });
  return history;
}

/** PyTorch SGD: d = g + wd·p; buf = d (step 1) else μ·buf + (1−τ)·d; d = d + μ·buf (Nesterov) or buf; p −= lr·d. */
function jsSgd(mu: number, damp: number, nesterov: boolean, wd: number): number[][] {
  const p = [...P0];
  const buf = [0, 0, 0, 0];
  const history: number[][] = [];
  GRADS.forEach((g, s) => {
    for (let i = 0; i < p.length; i++) {
      let d = g[i]! + wd * p[i]!;
      if (mu !== 0) {
        buf[i] = s === 0 ? d : mu * buf[i]! + (1 - damp) * d;
        d = nesterov ? d + mu * buf[i]! : buf[i]!;
      }
      p[i]! -= LRS[s]! * d;
    }
    history.push(mu !== 0 ? [...p, ...buf] : [...p]);
  });
  return history;
}

async function graphSteps(dtype: DType, kind: 'adamw' | 'sgd', cfg: Record<string, number | boolean>): Promise<number[][]> {
  const g = new G.Graph();
  const p = g.input('p', dtype, [4]);
  const gr = g.input('g', dtype, [4]);
  const lr = g.input('lr', dtype, []);
  const step = g.input('step', dtype, []);
  const slots = kind === 'adamw' ? ['m', 'v'] : cfg['momentum'] ? ['buf'] : [];
  const st = slots.map((s) => g.input(s, dtype, [4]));
  if (kind === 'adamw') {
    const r = G.adamw({ param: p, grad: gr, m: st[0]!, v: st[1]!, lr, step }, cfg as { beta1: number });
    g.output(r.param, 'p.next');
    g.output(r.m, 'm.next');
    g.output(r.v, 'v.next');
  } else {
    const r = G.sgd({ param: p, grad: gr, buf: st[0] ?? null, lr, step }, cfg as { momentum: number });
    g.output(r.param, 'p.next');
    if (r.buf) g.output(r.buf, 'buf.next');
  }
  const s = await session(g);
  let state: Record<string, number[]> = { p: P0, ...Object.fromEntries(slots.map((k) => [k, [0, 0, 0, 0]])) };
  const history: number[][] = [];
  for (let k = 0; k < GRADS.length; k++) {
    const feeds = {
      p: { dtype, data: typed(dtype, state['p']!), shape: [4] },
      g: { dtype, data: typed(dtype, GRADS[k]!), shape: [4] },
      lr: { dtype, data: typed(dtype, [LRS[k]!]), shape: [] },
      step: { dtype, data: typed(dtype, [k + 1]), shape: [] },
      ...Object.fromEntries(slots.map((n) => [n, { dtype, data: typed(dtype, state[n]!), shape: [4] }])),
    };
    const out = await run(s, feeds);
    state = { p: out['p.next']!.data, ...Object.fromEntries(slots.map((n) => [n, out[`${n}.next`]!.data])) };
    history.push([...state['p']!, ...slots.flatMap((n) => state[n]!)]);
  }
  return history;
}

for (const dtype of ['float64', 'float32'] as const) {
  const tol = dtype === 'float64' ? 1e-12 : 2e-6;
  test(`AdamW (${dtype}) matches the PyTorch formula over 3 steps`, async () => {
    for (const cfg of [
      { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01 },
      { beta1: 0.8, beta2: 0.95, eps: 1e-6, weightDecay: 0 },
    ]) {
      const got = await graphSteps(dtype, 'adamw', cfg);
      const want = jsAdamW(cfg.beta1, cfg.beta2, cfg.eps, cfg.weightDecay);
      got.forEach((row, k) => assert.ok(relErr(row, want[k]!) < tol, `step ${k + 1} ${JSON.stringify(cfg)}: ${row} vs ${want[k]}`));
    }
  });

  test(`SGD (${dtype}) plain / momentum+dampening / Nesterov with weight decay over 3 steps`, async () => {
    for (const cfg of [
      { momentum: 0, dampening: 0, nesterov: false, weightDecay: 0 },
      { momentum: 0.9, dampening: 0.1, nesterov: false, weightDecay: 0.01 },
      { momentum: 0.9, dampening: 0, nesterov: true, weightDecay: 0.05 },
      { momentum: 0.5, dampening: 0, nesterov: false, weightDecay: 0 },
    ]) {
      const got = await graphSteps(dtype, 'sgd', cfg);
      const want = jsSgd(cfg.momentum, cfg.dampening, cfg.nesterov, cfg.weightDecay);
      got.forEach((row, k) => assert.ok(relErr(row, want[k]!) < tol, `step ${k + 1} ${JSON.stringify(cfg)}: ${row} vs ${want[k]}`));
    }
  });
}

test('AdamW defaults are PyTorch’s (β 0.9/0.999, ε 1e-8, weight decay 0.01)', async () => {
  const got = await graphSteps('float64', 'adamw', {});
  const want = jsAdamW(0.9, 0.999, 1e-8, 0.01);
  got.forEach((row, k) => assert.ok(relErr(row, want[k]!) < 1e-12));
});

test('clipGradNorm by hand: norm of ([3,4], [12]) is 13', async () => {
  for (const [maxNorm, scale] of [
    [6.5, 6.5 / (13 + 1e-6)],
    [20, 1],
  ] as const) {
    const g = new G.Graph();
    const a = g.input('a', 'float64', [2]);
    const b = g.input('b', 'float64', [1]);
    const r = G.clipGradNorm([a, b], maxNorm);
    g.output(r.grads[0]!, 'a2');
    g.output(r.grads[1]!, 'b2');
    g.output(r.totalNorm, 'norm');
    const out = await run(await session(g), {
      a: { dtype: 'float64', data: Float64Array.from([3, 4]), shape: [2] },
      b: { dtype: 'float64', data: Float64Array.from([12]), shape: [1] },
    });
    assert.equal(out['norm']!.data[0], 13);
    assert.ok(relErr(out['a2']!.data, [3 * scale, 4 * scale]) < 1e-15);
    assert.ok(relErr(out['b2']!.data, [12 * scale]) < 1e-15);
  }
});

test('optimisers reject mismatched tensors with a message naming the op', () => {
  const g = new G.Graph();
  const p = g.input('p', 'float32', [4]);
  const bad = g.input('g', 'float32', [3]);
  const lr = g.input('lr', 'float32', []);
  const step = g.input('step', 'float32', []);
  assert.throws(() => G.adamw({ param: p, grad: bad, m: p, v: p, lr, step }), /adamw: .*'g' float32\[3\]/);
  assert.throws(() => G.sgd({ param: p, grad: p, lr: p, step }), /sgd: .*must be a float32 scalar/);
  assert.throws(() => G.sgd({ param: p, grad: p, lr, step }, { momentum: 0.9 }), /sgd: momentum needs a buf/);
  assert.throws(() => G.clipGradNorm([p], 0), /clipGradNorm/);
});
