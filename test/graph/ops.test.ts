/** Forward values of ops vs plain JS, shape tracking, and shape/dtype errors thrown in TypeScript. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as G from '../../src/graph/index.ts';
import type { DType, Tensor } from '../../src/graph/index.ts';
import { type Feed, evalGraph, relErr, typed } from './helpers.ts';

/** Builds a graph from inputs, evaluates the named outputs. */
async function evalOps(
  inputs: Record<string, { dtype: DType; shape: number[]; values: number[]; decl?: G.Dim[] }>,
  build: (x: Record<string, Tensor>, g: G.Graph) => Record<string, Tensor>,
): Promise<Record<string, { data: number[]; dims: number[] }>> {
  const g = new G.Graph();
  const xs: Record<string, Tensor> = {};
  const feeds: Record<string, Feed> = {};
  for (const [k, v] of Object.entries(inputs)) {
    xs[k] = g.input(k, v.dtype, v.decl ?? v.shape);
    feeds[k] = { dtype: v.dtype, data: typed(v.dtype, v.values), shape: v.shape };
  }
  for (const [k, t] of Object.entries(build(xs, g))) g.output(t, k);
  return evalGraph(g, feeds);
}

const iota = (n: number, scale = 1, off = 0) => Array.from({ length: n }, (_, i) => i * scale + off);

/** Series erf (converges for the |x| ≤ 3 used here; float64 accuracy ~1e-13). */
function erfSeries(x: number): number {
  let term = x;
  let sum = x;
  for (let n = 1; n < 80; n++) {
    term *= (-x * x) / n;
    sum += term / (2 * n + 1);
  }
  return (2 / Math.sqrt(Math.PI)) * sum;
}

test('reshape merges and splits symbolic dims; slice/pad/concat/split move the right values', async () => {
  const out = await evalOps({ x: { dtype: 'float64', shape: [2, 3, 4], decl: ['b', 't', 4], values: iota(24) } }, ({ x }) => {
    const flat = G.reshape(x!, [-1, 4]);
    assert.deepEqual(flat.shape, ['b*t', 4]);
    const back = G.reshape(flat, ['b', 't', 2, 2]);
    assert.deepEqual(back.shape, ['b', 't', 2, 2]);
    const sw = G.reshape(x!, ['t', 'b', 4]); // symbolic dims at other positions (run-time shape)
    const tail = G.slice(x!, [1], [Infinity], [1]);
    const head = G.slice(x!, [0], [1], [1]);
    assert.deepEqual(head.shape, ['b', 1, 4]);
    const [p, q] = G.split(G.reshape(x!, [6, 4]), [1, 3], 1);
    return { back, sw, tail, head, cat: G.concat([q!, p!], 1), pad: G.pad(G.reshape(x!, [6, 4]), [1, 0, 0, 1], -1) };
  });
  assert.deepEqual(out['back']!.data, iota(24));
  assert.deepEqual(out['back']!.dims, [2, 3, 2, 2]);
  assert.deepEqual(out['sw']!.dims, [3, 2, 4]);
  assert.deepEqual(out['tail']!.dims, [2, 2, 4]);
  assert.deepEqual(out['tail']!.data, [...iota(8, 1, 4), ...iota(8, 1, 16)]);
  assert.deepEqual(out['head']!.data, [...iota(4), ...iota(4, 1, 12)]);
  assert.deepEqual(out['cat']!.data.slice(0, 8), [1, 2, 3, 0, 5, 6, 7, 4]);
  assert.deepEqual(out['pad']!.dims, [7, 5]);
  assert.deepEqual(out['pad']!.data.slice(0, 10), [-1, -1, -1, -1, -1, 0, 1, 2, 3, -1]);
});

test('gather (embedding lookup), gatherElements, scatterElements, topk, oneHot, argMax, cumsum, where, comparisons', async () => {
  const out = await evalOps(
    {
      e: { dtype: 'float32', shape: [4, 2], values: iota(8) },
      ids: { dtype: 'int64', shape: [2, 2], values: [3, 0, 1, 3] },
      x: { dtype: 'float32', shape: [2, 4], values: [0.5, -1, 2, 1.5, 3, 0, -2, 1] },
    },
    ({ e, ids, x }, g) => {
      const emb = G.gather(e!, ids!, 0);
      assert.deepEqual(emb.shape, [2, 2, 2]);
      const tk = G.topk(x!, 2);
      return {
        emb,
        ge: G.gatherElements(x!, tk.indices, 1),
        se: G.scatterElements(G.zerosLike(x!), tk.indices, tk.values, 1),
        tv: tk.values,
        ti: tk.indices,
        oh: G.oneHot(G.argMax(x!, 1), 4),
        cs: G.cumsum(x!, 1),
        wh: G.where(G.greater(x!, 1), x!, G.neg(x!)),
        le: G.cast(G.lessOrEqual(x!, 0.5), 'float32'),
        rg: G.range(g, 2, 11, 3),
      };
    },
  );
  assert.deepEqual(out['emb']!.data, [6, 7, 0, 1, 2, 3, 6, 7]);
  assert.deepEqual(out['tv']!.data, [2, 1.5, 3, 1]);
  assert.deepEqual(out['ti']!.data, [2, 3, 0, 3]);
  assert.deepEqual(out['ge']!.data, [2, 1.5, 3, 1]);
  assert.deepEqual(out['se']!.data, [0, 0, 2, 1.5, 3, 0, 0, 1]);
  assert.deepEqual(out['oh']!.data, [0, 0, 1, 0, 1, 0, 0, 0]);
  assert.deepEqual(out['cs']!.data, [0.5, -0.5, 1.5, 3, 3, 3, 1, 2]);
  assert.deepEqual(out['wh']!.data, [-0.5, 1, 2, 1.5, 3, -0, 2, -1]);
  assert.deepEqual(out['le']!.data, [1, 1, 0, 0, 0, 1, 1, 0]);
  assert.deepEqual(out['rg']!.data, [2, 5, 8]);
});

test('matmul with batch broadcasting and 1-D operands, gemm with transposes, linear', async () => {
  const a = iota(2 * 1 * 2 * 3, 0.5, -2);
  const b = iota(3 * 3 * 2, 0.25, -1);
  const out = await evalOps(
    { a: { dtype: 'float64', shape: [2, 1, 2, 3], values: a }, b: { dtype: 'float64', shape: [3, 3, 2], values: b } },
    ({ a: ta, b: tb }) => {
      const mm = G.matmul(ta!, tb!);
      assert.deepEqual(mm.shape, [2, 3, 2, 2]);
      const a2 = G.reshape(ta!, [4, 3]);
      const b0 = G.reshape(G.slice(tb!, [0], [1], [0]), [3, 2]);
      return {
        mm,
        vec: G.matmul(G.reshape(G.slice(a2, [0], [1], [0]), [3]), b0),
        gemm: G.gemm(b0, a2, null, { transA: true, transB: true, alpha: 2 }),
        lin: G.linear(ta!, G.transpose(b0), null),
      };
    },
  );
  const A = (i: number, j: number, k: number) => a[(i * 2 + j) * 3 + k]!;
  const Bm = (s: number, k: number, n: number) => b[(s * 3 + k) * 2 + n]!;
  const want: number[] = [];
  for (let i = 0; i < 2; i++)
    for (let s = 0; s < 3; s++)
      for (let j = 0; j < 2; j++)
        for (let n = 0; n < 2; n++) want.push([0, 1, 2].reduce((acc, k) => acc + A(i, j, k) * Bm(s, k, n), 0));
  assert.ok(relErr(out['mm']!.data, want) < 1e-15);
  assert.ok(relErr(out['vec']!.data, [0, 1].map((n) => [0, 1, 2].reduce((acc, k) => acc + A(0, 0, k) * Bm(0, k, n), 0))) < 1e-15);
  // gemm: 2·b0ᵀ·a2ᵀ = 2·(a2·b0)ᵀ  [2,4]
  const rows = [0, 1, 2, 3].map((r) => [0, 1].map((n) => [0, 1, 2].reduce((acc, k) => acc + a[r * 3 + k]! * Bm(0, k, n), 0)));
  assert.ok(relErr(out['gemm']!.data, [0, 1].flatMap((n) => rows.map((r) => 2 * r[n]!))) < 1e-15);
  assert.deepEqual(out['lin']!.dims, [2, 1, 2, 2]);
  assert.ok(relErr(out['lin']!.data, rows.flat()) < 1e-15);
});

test('nn ops: layerNorm (fused f32 and decomposed f64), gelu, quickGelu, softmax, crossEntropy, normalize, pooling', async () => {
  const xv = [0.3, -1.2, 2.5, 0.7, -0.4, 1.1, 0.0, -2.2];
  for (const dtype of ['float32', 'float64'] as const) {
    const out = await evalOps(
      {
        x: { dtype, shape: [2, 4], values: xv },
        y: { dtype: 'int64', shape: [2], values: [2, 0] },
      },
      ({ x, y }, g) => {
        const s = g.constant([1, 2, 0.5, -1], dtype, [4]);
        const b = g.constant([0, 0.1, 0.2, 0.3], dtype, [4]);
        const res: Record<string, Tensor> = {
          ln: G.layerNorm(x!, s, b, 1e-5),
          gt: G.gelu(x!, 'tanh'),
          qg: G.quickGelu(x!),
          sm: G.softmax(x!, 1),
          ce: G.crossEntropy(x!, y!, 'none'),
          nz: G.normalize(x!, 1),
          mp: G.maxPool(G.reshape(x!, [1, 1, 2, 4]), { kernel: [2, 2], strides: [1, 2] }),
        };
        if (dtype === 'float32') {
          res['ge'] = G.gelu(x!, 'erf');
          res['ap'] = G.averagePool(G.reshape(x!, [1, 1, 2, 4]), { kernel: [2, 2], strides: [2, 2] });
        }
        return res;
      },
    );
    const tol = dtype === 'float32' ? 1e-6 : 1e-14;
    const rows = [xv.slice(0, 4), xv.slice(4)];
    const ln = rows.flatMap((r) => {
      const mu = r.reduce((a, v) => a + v, 0) / 4;
      const va = r.reduce((a, v) => a + (v - mu) ** 2, 0) / 4;
      return r.map((v, j) => ((v - mu) / Math.sqrt(va + 1e-5)) * [1, 2, 0.5, -1][j]! + [0, 0.1, 0.2, 0.3][j]!);
    });
    assert.ok(relErr(out['ln']!.data, ln) < tol * 4, `${dtype} layerNorm`);
    const gt = xv.map((v) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3))));
    assert.ok(relErr(out['gt']!.data, gt) < tol, `${dtype} gelu tanh`);
    assert.ok(relErr(out['qg']!.data, xv.map((v) => v / (1 + Math.exp(-1.702 * v)))) < tol, `${dtype} quickGelu`);
    const sm = rows.flatMap((r) => {
      const z = r.reduce((a, v) => a + Math.exp(v), 0);
      return r.map((v) => Math.exp(v) / z);
    });
    assert.ok(relErr(out['sm']!.data, sm) < tol, `${dtype} softmax`);
    const ce = [2, 0].map((t, i) => -Math.log(sm[i * 4 + t]!));
    assert.ok(relErr(out['ce']!.data, ce) < tol, `${dtype} crossEntropy`);
    const nz = rows.flatMap((r) => {
      const n = Math.sqrt(r.reduce((a, v) => a + v * v, 0));
      return r.map((v) => v / n);
    });
    assert.ok(relErr(out['nz']!.data, nz) < tol, `${dtype} normalize`);
    assert.deepEqual(out['mp']!.data.map((v) => Math.fround(v)), [Math.fround(1.1), Math.fround(2.5)]);
    if (dtype === 'float32') {
      assert.ok(relErr(out['ge']!.data, xv.map((v) => 0.5 * v * (1 + erfSeries(v / Math.SQRT2)))) < 1e-6, 'gelu erf');
      assert.ok(relErr(out['ap']!.data, [(0.3 - 1.2 - 0.4 + 1.1) / 4, (2.5 + 0.7 + 0 - 2.2) / 4]) < 1e-6, 'averagePool');
    }
  }
});

test('conv output shape follows the ONNX formula', () => {
  const g = new G.Graph();
  const x = g.input('x', 'float32', ['batch', 3, 224, 224]);
  const w = g.param('w', new Float32Array(768 * 3 * 16 * 16), [768, 3, 16, 16]);
  assert.deepEqual(G.conv(x, w, null, { strides: [16, 16] }).shape, ['batch', 768, 14, 14]);
  const w3 = g.param('w3', new Float32Array(8 * 3 * 9), [8, 3, 3, 3]);
  assert.deepEqual(G.conv(x, w3, null, { strides: [2, 2], pads: [1, 0, 0, 0] }).shape, ['batch', 8, 112, 111]);
  assert.deepEqual(G.maxPool(x, { kernel: [3, 3], strides: [2, 2], ceilMode: true }).shape, ['batch', 3, 112, 112]);
});

test('shape and dtype mistakes throw in TypeScript naming the op and shapes', () => {
  const g = new G.Graph();
  const a = g.input('a', 'float32', [2, 3]);
  const b = g.input('b', 'float32', [4, 5]);
  const d = g.input('d', 'float64', [2, 3]);
  const i = g.input('i', 'int64', [2]);
  const img = g.input('img', 'float32', [1, 3, 8, 8]);
  const cases: [() => unknown, RegExp][] = [
    [() => G.matmul(a, b), /MatMul: inner dim mismatch \(3 vs 4\) for shapes \[2,3\] and \[4,5\]/],
    [() => G.add(a, b), /Add: shapes \[2,3\] and \[4,5\] do not broadcast/],
    [() => G.add(a, d), /Add: dtype mismatch: 'a' float32\[2,3\] vs 'd' float64\[2,3\]/],
    [() => G.reshape(a, [4, 2]), /Reshape: cannot reshape 'a' float32\[2,3\] \(6 elements\) to \[4,2\] \(8\)/],
    [() => G.reshape(a, [-1, -1]), /Reshape: more than one -1/],
    [() => G.concat([a, b], 0), /Concat: dim 1 mismatch/],
    [() => G.gemm(a, a), /Gemm: inner dim mismatch/],
    [() => G.split(a, [1, 1], 1), /Split: sizes \[1,1\] do not split axis 1/],
    [() => G.squeeze(a, 0), /Squeeze: axis 0 of 'a' float32\[2,3\] is not 1/],
    [() => G.gather(a, a, 0), /Gather: indices must be int64\/int32/],
    [() => G.where(a, a, a), /Where: condition must be bool/],
    [() => G.transpose(a, [0, 0]), /Transpose: perm \[0,0\] invalid/],
    [() => G.softmax(i), /Softmax: needs a float tensor/],
    [() => G.reduceSum(a, 2), /ReduceSum: axis 2 out of range for rank 2/],
    [() => G.topk(a, 4), /TopK: k=4 invalid/],
    [() => G.erf(d), /Erf: onnxruntime's CPU provider has no float64 Erf kernel/],
    [() => G.conv(img, g.param('w1', new Float32Array(2 * 4 * 9), [2, 4, 3, 3])), /Conv: channels do not fit/],
    [() => G.conv(img, g.param('w2', new Float32Array(2 * 3 * 81), [2, 3, 9, 9])), /Conv: kernel larger than padded input/],
    [() => G.layerNorm(a, g.constant(1, 'float32', [2]), null), /LayerNormalization: scale\/bias must be \[3\]/],
    [() => G.linear(a, g.constant(1, 'float32', [4, 2]), null), /linear: input features mismatch \(3 vs 2\)/],
    [() => G.crossEntropy(a, a), /crossEntropy: needs logits \[N,C\] and targets \[N\]/],
  ];
  for (const [fn, re] of cases) assert.throws(fn, re);
});

test('grad: no rule on the path fails clearly; non-differentiable paths and unrelated inputs give zeros', async () => {
  const g = new G.Graph();
  const x = g.input('x', 'float32', [1, 2, 3, 3]);
  const w = g.param('w', new Float32Array(2 * 2 * 4).fill(1), [2, 2, 2, 2]);
  const up = G.convTranspose(x, w);
  assert.throws(() => G.grad(G.reduceSum(up), [x]), /grad: no VJP rule for ConvTranspose/);
  assert.throws(() => G.grad(G.reduceSum(x), [g.input('k', 'int64', [2])]), /cannot differentiate with respect to 'k' int64\[2\]/);

  const h = new G.Graph();
  const a = h.input('a', 'float64', [3]);
  const c = h.input('c', 'float64', [2]);
  // loss depends on a only through a comparison and argmax: gradient must be zero (no VJP needed for them)
  const sel = G.cast(G.greater(a, 0), 'float64');
  const am = G.cast(G.argMax(a, 0), 'float64');
  const loss = G.add(G.reduceSum(G.mul(sel, 2)), am);
  const [ga, gc] = G.grad(loss, [a, c]);
  h.output(ga!, 'ga');
  h.output(gc!, 'gc');
  const out = await evalGraph(h, {
    a: { dtype: 'float64', data: Float64Array.from([1, -2, 3]), shape: [3] },
    c: { dtype: 'float64', data: Float64Array.from([1, 1]), shape: [2] },
  });
  assert.deepEqual(out['ga']!.data, [0, 0, 0]);
  assert.deepEqual(out['gc']!.data, [0, 0]);
});
