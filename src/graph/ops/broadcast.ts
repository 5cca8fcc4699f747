/**
 * `sumToShape`: the adjoint of numpy broadcasting. Sums a gradient over the axes that broadcasting added or
 * stretched, so it gets the shape of the operand (used by every elementwise VJP).
 */
import { type Dim, type Tensor, dimCompatible, formatShape, shapeEq } from '../tensor.ts';
import { reduceSum } from './reduce.ts';
import { squeeze } from './shape.ts';
import { node1 } from './core.ts';

/**
 * Reduces `x` (a broadcast result) to `shape`: ReduceSum over leading extra axes and over axes where `shape`
 * has 1 and `x` has not, then drops the leading axes. A symbolic dim against a number is taken as equal (the
 * broadcasting assumption of `broadcastShapes`). Throws if `shape` does not broadcast to `x.shape`.
 */
export function sumToShape(x: Tensor, shape: readonly Dim[]): Tensor {
  if (shapeEq(x.shape, shape)) return x;
  const lead = x.shape.length - shape.length;
  if (lead < 0) throw new Error(`sumToShape: ${formatShape(x.shape)} has lower rank than ${formatShape(shape)}`);
  const axes: number[] = [];
  for (let i = 0; i < x.shape.length; i++) {
    if (i < lead) {
      axes.push(i);
      continue;
    }
    const want = shape[i - lead]!;
    const have = x.shape[i]!;
    if (want === 1 && have !== 1) axes.push(i);
    else if (dimCompatible(want, have)) continue;
    else throw new Error(`sumToShape: ${formatShape(x.shape)} is not a broadcast of ${formatShape(shape)}`);
  }
  const r = reduceSum(x, axes, true);
  const out = lead > 0 ? squeeze(r, Array.from({ length: lead }, (_, i) => i)) : r;
  // relabel symbolic dims that broadcasting matched to numbers
  return shapeEq(out.shape, shape) ? out : node1(x.graph, 'Identity', [out], { dtype: x.dtype, shape });
}
