/**
 * End-to-end gradient check of a small pre-LN transformer block with multi-head attention, GELU MLP, a
 * classifier on token 0 and cross-entropy: float64 vs central finite differences (all weights and the input),
 * and the float32 build (fused LayerNormalization) vs the float64 gradients.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as G from '../../src/graph/index.ts';
import type { DType, Tensor } from '../../src/graph/index.ts';
import { type CaseInput, type GradCase, gradCheck, randValues, relErr, run, session, Rng } from './helpers.ts';

const B = 2;
const T = 3;
const D = 8;
const H = 2;
const DH = D / H;
const M = 16;
const C = 3;

const WEIGHTS: [string, number[]][] = [
  ['ln1.s', [D]],
  ['ln1.b', [D]],
  ['wq', [D, D]],
  ['bq', [D]],
  ['wk', [D, D]],
  ['bk', [D]],
  ['wv', [D, D]],
  ['bv', [D]],
  ['wo', [D, D]],
  ['bo', [D]],
  ['ln2.s', [D]],
  ['ln2.b', [D]],
  ['w1', [D, M]],
  ['b1', [M]],
  ['w2', [M, D]],
  ['b2', [D]],
  ['wc', [C, D]],
  ['bc', [C]],
];

/** x: [batch, tokens, D]; mask: additive [tokens, tokens]; labels: int64 [batch]. Returns the mean CE loss. */
function block(g: G.Graph, x: Tensor, mask: Tensor, labels: Tensor, w: Record<string, Tensor>): Tensor {
  const heads = (t: Tensor) => G.transpose(G.reshape(t, ['batch', 'tokens', H, DH]), [0, 2, 1, 3]);
  const x1 = g.scope('attn', () => {
    const h = G.layerNorm(x, w['ln1.s']!, w['ln1.b']!);
    const q = heads(G.add(G.matmul(h, w['wq']!), w['bq']!));
    const k = heads(G.add(G.matmul(h, w['wk']!), w['bk']!));
    const v = heads(G.add(G.matmul(h, w['wv']!), w['bv']!));
    const scores = G.add(G.mul(G.matmul(q, G.transpose(k, [0, 1, 3, 2])), 1 / Math.sqrt(DH)), mask);
    const o = G.matmul(G.softmax(scores, -1), v);
    const merged = G.reshape(G.transpose(o, [0, 2, 1, 3]), ['batch', 'tokens', D]);
    return G.add(x, G.add(G.matmul(merged, w['wo']!), w['bo']!));
  });
  const x2 = g.scope('mlp', () => {
    const h = G.layerNorm(x1, w['ln2.s']!, w['ln2.b']!);
    const m = G.gelu(G.add(G.matmul(h, w['w1']!), w['b1']!), 'tanh');
    return G.add(x1, G.add(G.matmul(m, w['w2']!), w['b2']!));
  });
  return g.scope('head', () => {
    const cls = G.gather(x2, g.constant(0, 'int64'), 1); // token 0: [batch, D]
    const logits = G.linear(cls, w['wc']!, w['bc']!);
    return G.crossEntropy(logits, labels);
  });
}

const causal = Array.from({ length: T * T }, (_, i) => (i % T > Math.floor(i / T) ? -1e3 : 0));
const labels = [2, 0];

test('pre-LN transformer block + cross-entropy: float64 gradients match central differences', async () => {
  const inputs: CaseInput[] = [
    { name: 'x', shape: [B, T, D], decl: ['batch', 'tokens', D] },
    { name: 'mask', shape: [T, T], decl: ['tokens', 'tokens'], values: causal, diff: false },
    { name: 'labels', shape: [B], decl: ['batch'], dtype: 'int64', values: labels },
    ...WEIGHTS.map(([name, shape]): CaseInput => ({ name, shape, gen: name.endsWith('.s') ? 'positive' : 'normal' })),
  ];
  const c: GradCase = {
    ops: [],
    name: 'transformer block',
    dims: { batch: B, tokens: T },
    inputs,
    build: (xs, g) => {
      const w: Record<string, Tensor> = {};
      WEIGHTS.forEach(([name], i) => (w[name] = xs[i + 3]!));
      return block(g, xs[0]!, xs[1]!, xs[2]!, w);
    },
  };
  const r = await gradCheck(c, 3);
  assert.equal(Object.keys(r.relErr).length, WEIGHTS.length + 1);
  for (const [name, err] of Object.entries(r.relErr)) assert.ok(err < 1e-6, `d/d${name}: relative error ${err.toExponential(2)}`);
});

test('float32 block (fused LayerNormalization) gives the float64 gradients to float32 precision', async () => {
  const rng = new Rng(5);
  const values: Record<string, number[]> = { x: randValues(rng, B * T * D) };
  for (const [name, shape] of WEIGHTS) values[name] = randValues(rng, shape.reduce((a, b) => a * b, 1), name.endsWith('.s') ? 'positive' : 'normal');
  const results: Record<DType, Record<string, number[]>> = {} as Record<DType, Record<string, number[]>>;
  for (const dtype of ['float32', 'float64'] as const) {
    const g = new G.Graph({ name: `block-${dtype}` });
    const x = g.input('x', dtype, ['batch', 'tokens', D]);
    const mask = g.input('mask', dtype, ['tokens', 'tokens']);
    const lab = g.input('labels', 'int64', ['batch']);
    const w: Record<string, Tensor> = {};
    for (const [name, shape] of WEIGHTS) w[name] = g.input(name, dtype, shape);
    const loss = block(g, x, mask, lab, w);
    g.output(loss, 'loss');
    const wrt = [x, ...WEIGHTS.map(([n]) => w[n]!)];
    G.grad(loss, wrt).forEach((t, i) => g.output(t, `grad_${wrt[i]!.name}`));
    if (dtype === 'float32') assert.ok(g.nodes.some((n) => n.opType === 'LayerNormalization'));
    else assert.ok(!g.nodes.some((n) => n.opType === 'LayerNormalization'));
    const arr = (v: number[]) => (dtype === 'float32' ? Float32Array.from(v) : Float64Array.from(Float32Array.from(v)));
    const feeds: Record<string, { dtype: DType; data: Float32Array | Float64Array | BigInt64Array; shape: number[] }> = {
      x: { dtype, data: arr(values['x']!), shape: [B, T, D] },
      mask: { dtype, data: arr(causal), shape: [T, T] },
      labels: { dtype: 'int64', data: BigInt64Array.from(labels.map(BigInt)), shape: [B] },
    };
    for (const [name, shape] of WEIGHTS) feeds[name] = { dtype, data: arr(values[name]!), shape };
    const out = await run(await session(g), feeds);
    results[dtype] = Object.fromEntries(Object.entries(out).map(([k, v]) => [k, v.data]));
  }
  for (const name of Object.keys(results.float64)) {
    const err = relErr(results.float32[name]!, results.float64[name]!);
    assert.ok(err < 1e-4, `${name}: float32 vs float64 relative error ${err.toExponential(2)}`);
  }
});
