import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  checkTensor,
  cloneTensor,
  numel,
  ownsWholeBuffer,
  scalar,
  tensorBytes,
  tensorData,
  tensorFromBytes,
  tensorFromJSON,
  tensorToJSON,
  zeros,
} from '../../src/runtime/types.ts';

test('tensorData validates dtype/array class and element count', () => {
  const t = tensorData('float32', [2, 3], new Float32Array(6));
  assert.deepEqual(t.dims, [2, 3]);
  assert.throws(() => tensorData('float32', [2, 3], new Float32Array(5)), /dims \[2, 3\] hold 6 elements but data has 5/);
  assert.throws(() => tensorData('float32', [2], new Float64Array(2)), /float32 needs a Float32Array, got Float64Array/);
  assert.throws(() => tensorData('int64', [2], new Int32Array(2)), /int64 needs a BigInt64Array/);
  assert.throws(() => tensorData('float32', [2, -1], new Float32Array(2)), /non-negative integers/);
  assert.throws(() => tensorData('float16' as never, [1], new Float32Array(1)), /unknown dtype "float16"/);
  // bool and uint8 are both backed by Uint8Array; a Node Buffer is a Uint8Array
  assert.equal(tensorData('bool', [3], Uint8Array.of(0, 1, 1)).dtype, 'bool');
  assert.equal(tensorData('uint8', [2], Buffer.from([7, 8])).data[1], 8);
  // scalars have dims [] and one element
  assert.equal(numel([]), 1);
  assert.equal(numel([2, 0, 5]), 0);
  assert.throws(() => tensorData('float64', [], new Float64Array(0)), /hold 1 elements but data has 0/);
});

test('checkTensor names the tensor in errors', () => {
  assert.throws(() => checkTensor(null, "feed 'x'"), /feed 'x': expected a tensor/);
  assert.throws(() => checkTensor({ dtype: 'float32', dims: 'a', data: new Float32Array(1) }, 'T'), /T: dims must be an array/);
});

test('scalar, zeros and cloneTensor', () => {
  assert.deepEqual(scalar('float64', 0.1), { dtype: 'float64', dims: [], data: Float64Array.of(0.1) });
  assert.equal(scalar('float32', 0.1).data[0], Math.fround(0.1));
  assert.equal(scalar('int64', 5).data[0], 5n);
  assert.throws(() => scalar('int64', 0.5), /safe integer/);
  const z = zeros('int32', [2, 2]);
  assert.deepEqual([...z.data], [0, 0, 0, 0]);
  const big = new Float32Array([9, 1, 2, 9]);
  const view = { dtype: 'float32' as const, dims: [2], data: big.subarray(1, 3) };
  assert.equal(ownsWholeBuffer(view.data), false);
  const c = cloneTensor(view);
  assert.equal(ownsWholeBuffer(c.data), true);
  assert.deepEqual([...c.data], [1, 2]);
  big[1] = 100;
  assert.equal(c.data[0], 1, 'clone does not alias the source');
});

test('bytes round trip respects byteOffset (pooled Buffer views)', () => {
  // a small Buffer.from() lives at an offset inside Node's shared pool
  const f = Float64Array.from([1.5, -2.25, Math.PI]);
  const pooled = Buffer.from(new Uint8Array(f.buffer));
  const t = tensorFromBytes('float64', [3], pooled);
  assert.deepEqual([...t.data], [1.5, -2.25, Math.PI]);
  assert.deepEqual([...tensorBytes(t)], [...new Uint8Array(f.buffer)]);
  assert.throws(() => tensorFromBytes('float64', [4], pooled, 'ckpt.bin'), /ckpt.bin: float64 \[4\] needs 32 bytes, got 24/);
});

test('JSON round trip is exact for every dtype', () => {
  const cases = [
    tensorData('float32', [2], Float32Array.from([0.1, -3e-38])),
    tensorData('float64', [1, 2], Float64Array.from([Math.E, 1e-300])),
    tensorData('int64', [2], BigInt64Array.from([-(2n ** 62n), 123n])),
    tensorData('int32', [], Int32Array.from([-7])),
    tensorData('bool', [3], Uint8Array.from([1, 0, 1])),
    tensorData('uint8', [2], Uint8Array.from([0, 255])),
  ];
  for (const t of cases) {
    const j = JSON.parse(JSON.stringify(tensorToJSON(t)));
    const back = tensorFromJSON(j, 'state.json tensors.x');
    assert.equal(back.dtype, t.dtype);
    assert.deepEqual(back.dims, t.dims);
    assert.deepEqual([...back.data], [...t.data]);
  }
  assert.throws(() => tensorFromJSON({ dtype: 'float32', dims: [2], base64: 'AAAA' }, 'ck.json tensors.w'), /ck.json tensors.w: float32 \[2\] needs 8 bytes, got 3/);
  assert.throws(() => tensorFromJSON({ dtype: 'half', dims: [2], base64: '' }, 'ck.json'), /ck.json.dtype: unknown dtype/);
});
