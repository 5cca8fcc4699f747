/**
 * VJP rules of MatMul, Gemm and FusedMatMul.
 *
 * MatMul Y = A·B (batched): dA = G·Bᵀ, dB = Aᵀ·G, each summed over broadcast batch axes. When B is a 2-D
 * matrix (the usual weight), both products are done as Gemm on 2-D views: dA = G₂·Bᵀ via Gemm(transB=1) on
 * the stored B (no transposed copy of a frozen weight), and dB = A₂ᵀ·G₂ via Gemm(transA=1), which also sums
 * over all batch rows. Batched float32 products use ORT's FusedMatMul (com.microsoft) with transA/transB on the
 * stored operands instead of materialising a transposed copy (float64, which FusedMatMul lacks, transposes).
 */
import type { Tensor } from '../tensor.ts';
import { isStatic } from '../tensor.ts';
import { attr } from '../builder.ts';
import { i64, node1, shapeOf } from '../ops/core.ts';
import { gemm, matmul, matmulShape } from '../ops/linalg.ts';
import { mul } from '../ops/elementwise.ts';
import { reshape, squeeze, transpose, unsqueeze } from '../ops/shape.ts';
import { sumToShape } from '../ops/broadcast.ts';
import { registerVjp } from './registry.ts';

/** ONNX Runtime's contrib-op domain, which has FusedMatMul (float32 CPU kernel). */
const MS_DOMAIN = 'com.microsoft';

/** Swaps the last two axes. */
function transposeLast2(x: Tensor): Tensor {
  const r = x.shape.length;
  const perm = Array.from({ length: r }, (_, i) => i);
  perm[r - 2] = r - 1;
  perm[r - 1] = r - 2;
  return transpose(x, perm);
}

/**
 * α·op(a)·op(b) with numpy batch broadcasting (op swaps the last two axes where `ta`/`tb` is set): one
 * FusedMatMul on the stored operands for float32, Transpose + MatMul (+ Mul) otherwise.
 */
function matmulT(a: Tensor, b: Tensor, ta: boolean, tb: boolean, alpha = 1): Tensor {
  if (a.dtype === 'float32') {
    const shape = matmulShape(ta ? swapLast2(a.shape) : a.shape, tb ? swapLast2(b.shape) : b.shape);
    const attrs = { transA: attr.int(ta ? 1 : 0), transB: attr.int(tb ? 1 : 0), alpha: attr.float(alpha) };
    return a.graph.addNode('FusedMatMul', [a, b], [{ dtype: a.dtype, shape }], attrs, { domain: MS_DOMAIN, domainVersion: 1 })[0]!;
  }
  const y = matmul(ta ? transposeLast2(a) : a, tb ? transposeLast2(b) : b);
  return alpha === 1 ? y : mul(y, alpha);
}

function swapLast2<T>(s: readonly T[]): T[] {
  const r = [...s];
  [r[r.length - 2], r[r.length - 1]] = [r[r.length - 1]!, r[r.length - 2]!];
  return r;
}

/** Reshapes a 2-D [rows, n] result back to `like`'s leading dims + [n]. */
function unflatten(y2: Tensor, like: Tensor): Tensor {
  const lead = like.shape.slice(0, -1);
  const n = y2.shape[1]!;
  const outShape = [...lead, n];
  if (isStatic(lead)) return reshape(y2, outShape);
  const g = y2.graph;
  const st = node1(g, 'Concat', [shapeOf(like, 0, -1), i64(g, [typeof n === 'number' ? n : -1])], { dtype: 'int64', shape: [outShape.length] }, {
    axis: attr.int(0),
  });
  return reshape(y2, st, outShape);
}

registerVjp('MatMul', (ctx) => {
  const a = ctx.input(0);
  const b = ctx.input(1);
  const g = ctx.gradOutputs[0]!;
  // Fast path: A is [..., M, K] (rank >= 2), B is a [K, N] matrix.
  if (a.shape.length >= 2 && b.shape.length === 2) {
    const k = a.shape[a.shape.length - 1]!;
    const n = b.shape[1]!;
    const g2 = a.shape.length === 2 ? g : reshape(g, [-1, n]);
    let da: Tensor | null = null;
    let db: Tensor | null = null;
    if (ctx.needsGrad[0]) {
      const da2 = gemm(g2, b, null, { transB: true });
      da = a.shape.length === 2 ? da2 : unflatten(da2, a);
    }
    if (ctx.needsGrad[1]) {
      const a2 = a.shape.length === 2 ? a : reshape(a, [-1, k]);
      db = gemm(a2, g2, null, { transA: true });
    }
    return [da, db];
  }
  // General path: promote 1-D operands, batched products, reduce broadcast axes, undo the promotion.
  const a1 = a.shape.length === 1;
  const b1 = b.shape.length === 1;
  const aa = a1 ? unsqueeze(a, 0) : a;
  const bb = b1 ? unsqueeze(b, 1) : b;
  const batchRank = Math.max(aa.shape.length, bb.shape.length) - 2;
  const insert: number[] = [];
  if (a1) insert.push(batchRank);
  if (b1) insert.push(batchRank + 1);
  const gg = insert.length ? unsqueeze(g, insert) : g;
  let da: Tensor | null = null;
  let db: Tensor | null = null;
  if (ctx.needsGrad[0]) {
    da = sumToShape(matmulT(gg, bb, false, true), aa.shape);
    if (a1) da = squeeze(da, 0);
  }
  if (ctx.needsGrad[1]) {
    db = sumToShape(matmulT(aa, gg, true, false), bb.shape);
    if (b1) db = squeeze(db, 1);
  }
  return [da, db];
});

// Gemm Y = α·op(A)·op(B) + β·C; see the case table in the comments.
registerVjp('Gemm', (ctx) => {
  const a = ctx.input(0);
  const b = ctx.input(1);
  const c = ctx.inputs[2] ?? null;
  const g = ctx.gradOutputs[0]!;
  const tA = ctx.attrInt('transA', 0) === 1;
  const tB = ctx.attrInt('transB', 0) === 1;
  const alpha = ctx.attrFloat('alpha', 1);
  const beta = ctx.attrFloat('beta', 1);
  let da: Tensor | null = null;
  let db: Tensor | null = null;
  let dc: Tensor | null = null;
  if (ctx.needsGrad[0]) {
    // op(A)=A:  dA = α·G·op(B)ᵀ  → tB ? G·B : G·Bᵀ
    // op(A)=Aᵀ: dA = α·op(B)·Gᵀ  → tB ? Bᵀ·Gᵀ : B·Gᵀ
    da = tA ? gemm(b, g, null, { transA: tB, transB: true, alpha }) : gemm(g, b, null, { transB: !tB, alpha });
  }
  if (ctx.needsGrad[1]) {
    // op(B)=B:  dB = α·op(A)ᵀ·G  → tA ? A·G : Aᵀ·G
    // op(B)=Bᵀ: dB = α·Gᵀ·op(A)  → tA ? Gᵀ·Aᵀ : Gᵀ·A
    db = tB ? gemm(g, a, null, { transA: true, transB: tA, alpha }) : gemm(a, g, null, { transA: !tA, alpha });
  }
  if (c && ctx.needsGrad[2]) {
    const s = sumToShape(g, c.shape);
    dc = beta === 1 ? s : mul(s, beta);
  }
  return [da, db, dc];
});

// FusedMatMul Y = α·op(A)·op(B) (com.microsoft, float32; op transposes the last two axes under transA/transB):
//   dA = α·G·op(B)ᵀ, or α·op(B)·Gᵀ under transA;  dB = α·op(A)ᵀ·G, or α·Gᵀ·op(A) under transB;
// each summed over broadcast batch axes.
registerVjp('FusedMatMul', (ctx) => {
  const a = ctx.input(0);
  const b = ctx.input(1);
  const g = ctx.gradOutputs[0]!;
  if (ctx.attrInt('transBatchA', 0) || ctx.attrInt('transBatchB', 0)) {
    throw new Error(`VJP of FusedMatMul '${ctx.node.name}': transBatchA/transBatchB are not supported`);
  }
  if (a.shape.length < 2 || b.shape.length < 2) {
    throw new Error(`VJP of FusedMatMul '${ctx.node.name}': operands must have rank >= 2, got ${a.shape.length} and ${b.shape.length}`);
  }
  const tA = ctx.attrInt('transA', 0) === 1;
  const tB = ctx.attrInt('transB', 0) === 1;
  const alpha = ctx.attrFloat('alpha', 1);
  const da = ctx.needsGrad[0] ? sumToShape(tA ? matmulT(b, g, tB, true, alpha) : matmulT(g, b, false, !tB, alpha), a.shape) : null;
  const db = ctx.needsGrad[1] ? sumToShape(tB ? matmulT(g, a, true, tA, alpha) : matmulT(a, g, !tA, false, alpha), b.shape) : null;
  return [da, db];
});
