/** Dim algebra and broadcasting rules. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  broadcastShapes,
  canonicalDim,
  dimEq,
  divDims,
  dtypeOfArray,
  mulDims,
  normAxes,
  staticSize,
  toData,
} from '../../src/graph/index.ts';

test('symbolic products are canonical and divide exactly', () => {
  assert.equal(canonicalDim('tokens*batch'), 'batch*tokens');
  assert.ok(dimEq('tokens*batch', 'batch*tokens'));
  assert.equal(mulDims(['batch', 'tokens']), 'batch*tokens');
  assert.equal(mulDims([2, 'b', 3]), '6*b');
  assert.equal(mulDims([2, 3, 4]), 24);
  assert.equal(mulDims([0, 'b']), 0);
  assert.equal(divDims('6*b', 3), '2*b');
  assert.equal(divDims('6*b', '6*b'), 1);
  assert.equal(divDims('batch*tokens', 'tokens'), 'batch');
  assert.equal(divDims(24, 5), null);
  assert.equal(divDims('b', 'c'), null);
  assert.equal(staticSize([2, 3]), 6);
  assert.equal(staticSize([2, 'b']), null);
});

test('numpy broadcasting with symbolic dims', () => {
  assert.deepEqual(broadcastShapes('Add', [2, 1, 3], [4, 1]), [2, 4, 3]);
  assert.deepEqual(broadcastShapes('Add', ['b', 3], [3]), ['b', 3]);
  assert.deepEqual(broadcastShapes('Add', ['b', 1], [1, 'c']), ['b', 'c']);
  assert.deepEqual(broadcastShapes('Mul', ['b', 3], [5, 3]), [5, 3]);
  assert.deepEqual(broadcastShapes('Add', [], [2]), [2]);
  assert.throws(() => broadcastShapes('Add', [2, 3], [4, 3]), /Add: shapes \[2,3\] and \[4,3\] do not broadcast/);
  assert.throws(() => broadcastShapes('Mul', ['b'], ['c']), /Mul: shapes \[b\] and \[c\]/);
});

test('axes normalisation, dtypes and data conversion', () => {
  assert.deepEqual(normAxes('ReduceSum', [-1, 0], 3), [2, 0]);
  assert.throws(() => normAxes('ReduceSum', [3], 3), /ReduceSum: axis 3 out of range for rank 3/);
  assert.throws(() => normAxes('ReduceSum', [1, -2], 3), /duplicate axes/);
  assert.equal(dtypeOfArray(new Float64Array(1)), 'float64');
  assert.equal(dtypeOfArray(new BigInt64Array(1)), 'int64');
  assert.equal(dtypeOfArray(new Uint8Array(1)), 'uint8');
  assert.deepEqual(Array.from(toData([1, 0, 3], 'bool') as Uint8Array), [1, 0, 1]);
  assert.deepEqual(Array.from(toData([1, -2], 'int64') as BigInt64Array), [1n, -2n]);
  assert.throws(() => toData([1.5], 'int64'), /int64 constant needs integers/);
});
