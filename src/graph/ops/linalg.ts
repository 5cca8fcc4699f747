/**
 * Matrix products: MatMul (numpy semantics, batched with broadcasting), Gemm, and `linear` (x·Wᵀ + b with a
 * PyTorch-layout weight, lowered to Gemm(transB=1) so a frozen W is used as stored, without a transposed copy).
 */
import { attr } from '../builder.ts';
import { type Dim, type Tensor, broadcastShapes, describe, dimEq, formatShape, isStatic } from '../tensor.ts';
import { graphOf, i64, node1, requireDimEq, sameDType, shapeOf } from './core.ts';
import { reshape } from './shape.ts';

/** Output shape of numpy matmul (throws naming MatMul on a mismatch). */
export function matmulShape(a: readonly Dim[], b: readonly Dim[]): Dim[] {
  if (a.length === 0 || b.length === 0) throw new Error(`MatMul: scalar operand ${formatShape(a)} x ${formatShape(b)}`);
  const aa = a.length === 1 ? [1, a[0]!] : a;
  const bb = b.length === 1 ? [b[0]!, 1] : b;
  const k1 = aa[aa.length - 1]!;
  const k2 = bb[bb.length - 2]!;
  requireDimEq('MatMul', 'inner dim', k1, k2, a, b);
  const batch = broadcastShapes('MatMul', aa.slice(0, -2), bb.slice(0, -2));
  const out: Dim[] = [...batch];
  if (a.length > 1) out.push(aa[aa.length - 2]!);
  if (b.length > 1) out.push(bb[bb.length - 1]!);
  return out;
}

/** a @ b with numpy semantics (1-D operands are promoted and the added axis removed; batch dims broadcast). */
export function matmul(a: Tensor, b: Tensor): Tensor {
  const g = graphOf('MatMul', a, b);
  sameDType('MatMul', a, b);
  return node1(g, 'MatMul', [a, b], { dtype: a.dtype, shape: matmulShape(a.shape, b.shape) });
}

/** Options of `gemm`: Y = alpha·op(A)·op(B) + beta·C. */
export interface GemmOptions {
  transA?: boolean;
  transB?: boolean;
  alpha?: number;
  beta?: number;
}

/** Y = alpha·op(A)·op(B) + beta·C for 2-D A and B; C broadcasts (unidirectionally) to [M, N]. */
export function gemm(a: Tensor, b: Tensor, c?: Tensor | null, opts: GemmOptions = {}): Tensor {
  const g = graphOf('Gemm', a, b, c);
  sameDType('Gemm', a, b, ...(c ? [c] : []));
  if (a.shape.length !== 2 || b.shape.length !== 2) throw new Error(`Gemm: needs 2-D operands, got ${describe(a)} and ${describe(b)}`);
  const [m, ka] = opts.transA ? [a.shape[1]!, a.shape[0]!] : [a.shape[0]!, a.shape[1]!];
  const [kb, n] = opts.transB ? [b.shape[1]!, b.shape[0]!] : [b.shape[0]!, b.shape[1]!];
  requireDimEq('Gemm', 'inner dim', ka, kb, a.shape, b.shape);
  if (c) {
    const bc = broadcastShapes('Gemm', c.shape, [m, n]);
    if (bc.length !== 2 || !dimEq(bc[0]!, m) || !dimEq(bc[1]!, n)) {
      throw new Error(`Gemm: C ${describe(c)} does not broadcast to [${m},${n}]`);
    }
  }
  const attrs = {
    ...(opts.transA ? { transA: attr.int(1) } : {}),
    ...(opts.transB ? { transB: attr.int(1) } : {}),
    ...(opts.alpha !== undefined && opts.alpha !== 1 ? { alpha: attr.float(opts.alpha) } : {}),
    ...(opts.beta !== undefined && opts.beta !== 1 ? { beta: attr.float(opts.beta) } : {}),
  };
  return node1(g, 'Gemm', c ? [a, b, c] : [a, b], { dtype: a.dtype, shape: [m, n] }, attrs);
}

/**
 * y = x·Wᵀ + b with `w` of shape [out, in] (PyTorch Linear layout) and `x` of shape [..., in]. Lowered to
 * Gemm(transB=1) on a 2-D view of x, so a frozen weight is used as stored.
 */
export function linear(x: Tensor, w: Tensor, b?: Tensor | null): Tensor {
  const g = graphOf('linear', x, w, b);
  if (w.shape.length !== 2) throw new Error(`linear: weight must be [out, in], got ${describe(w)}`);
  if (x.shape.length < 1) throw new Error(`linear: input must have rank >= 1, got ${describe(x)}`);
  const [n, k] = [w.shape[0]!, w.shape[1]!];
  requireDimEq('linear', 'input features', x.shape[x.shape.length - 1]!, k, x.shape, w.shape);
  if (b && (b.shape.length !== 1 || !dimEq(b.shape[0]!, n))) throw new Error(`linear: bias must be [${n}], got ${describe(b)}`);
  if (x.shape.length === 2) return gemm(x, w, b, { transB: true });
  if (x.shape.length === 1) return reshape(gemm(reshape(x, [1, k]), w, b, { transB: true }), [n]);
  const lead = x.shape.slice(0, -1);
  const x2 = reshape(x, [-1, k]);
  const y2 = gemm(x2, w, b, { transB: true });
  const outShape = [...lead, n];
  if (isStatic(lead)) return reshape(y2, outShape);
  const st = node1(g, 'Concat', [shapeOf(x, 0, -1), i64(g, [typeof n === 'number' ? n : -1])], { dtype: 'int64', shape: [outShape.length] }, { axis: attr.int(0) });
  return reshape(y2, st, outShape);
}
