/**
 * Elementwise ops (numpy broadcasting for binary ops). Numbers are accepted as operands and become scalar
 * constants of the other operand's dtype.
 */
import { attr } from '../builder.ts';
import { type DType, type Tensor, ONNX_DTYPE, broadcastAll, broadcastShapes, describe, isFloat } from '../tensor.ts';
import { type Operand, asTensor, graphOf, node1, requireFloat, sameDType } from './core.ts';

function binary(op: string, a: Operand, b: Operand, outDtype?: DType): Tensor {
  const g = graphOf(op, a, b);
  const dtype = typeof a === 'number' ? (b as Tensor).dtype : a.dtype;
  const ta = asTensor(g, a, dtype);
  const tb = asTensor(g, b, dtype);
  sameDType(op, ta, tb);
  const shape = broadcastShapes(op, ta.shape, tb.shape);
  return node1(g, op, [ta, tb], { dtype: outDtype ?? dtype, shape });
}

function unary(op: string, x: Tensor, floatOnly = true): Tensor {
  if (floatOnly) requireFloat(op, x);
  return node1(x.graph, op, [x], { dtype: x.dtype, shape: x.shape });
}

/** a + b */
export function add(a: Operand, b: Operand): Tensor {
  return binary('Add', a, b);
}
/** a - b */
export function sub(a: Operand, b: Operand): Tensor {
  return binary('Sub', a, b);
}
/** a * b */
export function mul(a: Operand, b: Operand): Tensor {
  return binary('Mul', a, b);
}
/** a / b */
export function div(a: Operand, b: Operand): Tensor {
  return binary('Div', a, b);
}
/** a ^ b (elementwise power; the exponent may be a number or tensor). */
export function pow(a: Tensor, b: Operand): Tensor {
  requireFloat('Pow', a);
  return binary('Pow', a, b);
}
/** Elementwise maximum of two tensors. */
export function maximum(a: Operand, b: Operand): Tensor {
  return binary('Max', a, b);
}
/** Elementwise minimum of two tensors. */
export function minimum(a: Operand, b: Operand): Tensor {
  return binary('Min', a, b);
}

/** -x */
export function neg(x: Tensor): Tensor {
  return unary('Neg', x, false);
}
/** √x */
export function sqrt(x: Tensor): Tensor {
  return unary('Sqrt', x);
}
/** eˣ */
export function exp(x: Tensor): Tensor {
  return unary('Exp', x);
}
/** ln x */
export function log(x: Tensor): Tensor {
  return unary('Log', x);
}
/** tanh x */
export function tanh(x: Tensor): Tensor {
  return unary('Tanh', x);
}
/** erf x. float32 only: the CPU provider of ONNX Runtime has no float64 Erf kernel (use gelu 'tanh' there). */
export function erf(x: Tensor): Tensor {
  if (x.dtype === 'float64') {
    throw new Error(`Erf: onnxruntime's CPU provider has no float64 Erf kernel (${describe(x)}); use float32 or gelu(x, 'tanh')`);
  }
  return unary('Erf', x);
}
/** 1 / (1 + e⁻ˣ) */
export function sigmoid(x: Tensor): Tensor {
  return unary('Sigmoid', x);
}
/** max(x, 0) */
export function relu(x: Tensor): Tensor {
  return unary('Relu', x);
}
/** 1 / x */
export function reciprocal(x: Tensor): Tensor {
  return unary('Reciprocal', x);
}
/** |x| */
export function abs(x: Tensor): Tensor {
  return unary('Abs', x, false);
}
/** sign(x) ∈ {−1, 0, 1} (zero gradient). */
export function sign(x: Tensor): Tensor {
  return unary('Sign', x, false);
}
/** x (a new name for the same value). */
export function identity(x: Tensor): Tensor {
  return unary('Identity', x, false);
}

/**
 * softplus(x) = ln(1 + eˣ). float32 uses the Softplus op; float64 (no double kernel on the CPU provider) uses the
 * stable composition relu(x) + ln(1 + e^{-|x|}).
 */
export function softplus(x: Tensor): Tensor {
  requireFloat('Softplus', x);
  if (x.dtype === 'float32') return unary('Softplus', x);
  return x.graph.scope('softplus', () => add(relu(x), log(add(exp(neg(abs(x))), 1))));
}

/** Clamps x to [min, max] (either bound may be omitted). */
export function clip(x: Tensor, min?: number, max?: number): Tensor {
  const g = x.graph;
  const lo = min === undefined ? null : g.constant(min, x.dtype);
  const hi = max === undefined ? null : g.constant(max, x.dtype);
  if (min !== undefined && max !== undefined && min > max) throw new Error(`Clip: min ${min} > max ${max}`);
  return node1(g, 'Clip', [x, lo, hi], { dtype: x.dtype, shape: x.shape });
}

/** cond ? a : b (broadcasting over all three). */
export function where(cond: Tensor, a: Operand, b: Operand): Tensor {
  const g = graphOf('Where', cond, a, b);
  if (cond.dtype !== 'bool') throw new Error(`Where: condition must be bool, got ${describe(cond)}`);
  const dtype = typeof a === 'number' ? (typeof b === 'number' ? 'float32' : b.dtype) : a.dtype;
  const ta = asTensor(g, a, dtype);
  const tb = asTensor(g, b, dtype);
  sameDType('Where', ta, tb);
  const shape = broadcastAll('Where', [cond.shape, ta.shape, tb.shape]);
  return node1(g, 'Where', [cond, ta, tb], { dtype, shape });
}

/** a > b (bool) */
export function greater(a: Operand, b: Operand): Tensor {
  return binary('Greater', a, b, 'bool');
}
/** a < b (bool) */
export function less(a: Operand, b: Operand): Tensor {
  return binary('Less', a, b, 'bool');
}
/** a == b (bool) */
export function equal(a: Operand, b: Operand): Tensor {
  return binary('Equal', a, b, 'bool');
}
/** a >= b (bool) */
export function greaterOrEqual(a: Operand, b: Operand): Tensor {
  return binary('GreaterOrEqual', a, b, 'bool');
}
/** a <= b (bool) */
export function lessOrEqual(a: Operand, b: Operand): Tensor {
  return binary('LessOrEqual', a, b, 'bool');
}
/** Logical and of two bool tensors. */
export function and(a: Tensor, b: Tensor): Tensor {
  return binary('And', a, b, 'bool');
}
/** Logical or of two bool tensors. */
export function or(a: Tensor, b: Tensor): Tensor {
  return binary('Or', a, b, 'bool');
}
/** Logical not of a bool tensor. */
export function not(x: Tensor): Tensor {
  if (x.dtype !== 'bool') throw new Error(`Not: needs a bool tensor, got ${describe(x)}`);
  return node1(x.graph, 'Not', [x], { dtype: 'bool', shape: x.shape });
}

/** Converts the element type (returns `x` itself if it already has `dtype`). */
export function cast(x: Tensor, dtype: DType): Tensor {
  if (x.dtype === dtype) return x;
  return node1(x.graph, 'Cast', [x], { dtype, shape: x.shape }, { to: attr.int(ONNX_DTYPE[dtype]) });
}

/** True if gradients can flow through a tensor of this dtype. */
export function differentiableDType(dtype: DType): boolean {
  return isFloat(dtype);
}
