/** Graph builder: naming, serialisation (decoded back), pruning, outputs, symbolic dims at run time, opsets. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import onnxProto from 'onnx-proto';
import * as G from '../../src/graph/index.ts';
import { evalGraph, relErr, run, session } from './helpers.ts';

const { onnx } = onnxProto;

/** The decoded fields these tests read (protobufjs types them all as optional). */
interface Decoded {
  irVersion: number;
  opsetImport: { version: number }[];
  graph: {
    name: string;
    node: { name: string; opType: string }[];
    initializer: { name: string; dims: number[]; rawData: Uint8Array }[];
    input: { name: string; type: { tensorType: { elemType: number; shape: { dim: { dimValue?: number; dimParam?: string }[] } } } }[];
    output: { name: string }[];
  };
}
const decode = (bytes: Uint8Array): Decoded => onnx.ModelProto.decode(bytes) as unknown as Decoded;

test('scopes give meaningful, unique node names', () => {
  const g = new G.Graph();
  const x = g.input('x', 'float32', ['batch', 4]);
  const w = g.param('w', new Float32Array(8), [4, 2]);
  const y = g.scope('visual', () => g.scope('block3/attn', () => G.matmul(x, w)));
  const z = g.scope('visual', () => G.relu(y));
  assert.match(y.name, /^visual\/block3\/attn\/MatMul_\d+$/);
  assert.match(z.name, /^visual\/Relu_\d+$/);
  assert.equal(g.producerOf(y)!.node.name, y.name);
  assert.equal(g.scopePath, '');
  assert.throws(() => g.input('x', 'float32', [1]), /name 'x' is already used/);
});

test('toBytes produces a decodable ModelProto (irVersion 8, opset, dims, raw initializers)', () => {
  const g = new G.Graph({ name: 'm', opset: 17 });
  const x = g.input('x', 'float32', ['batch', 3]);
  const wData = Float32Array.from([1, 2, 3, 4, 5, 6]);
  const w = g.param('w', wData, [3, 2]);
  g.output(G.matmul(x, w), 'y');
  const m = decode(g.toBytes());
  assert.equal(Number(m.irVersion), 8);
  assert.equal(Number(m.opsetImport[0]!.version), 17);
  assert.equal(m.graph.name, 'm');
  const xin = m.graph.input[0]!;
  assert.equal(xin.name, 'x');
  assert.equal(xin.type.tensorType.elemType, 1);
  assert.equal(xin.type.tensorType.shape.dim[0]!.dimParam, 'batch');
  assert.equal(Number(xin.type.tensorType.shape.dim[1]!.dimValue), 3);
  const init = m.graph.initializer.find((t) => t.name === 'w')!;
  assert.deepEqual(init.dims.map(Number), [3, 2]);
  assert.deepEqual(Array.from(new Float32Array(Uint8Array.from(init.rawData).buffer)), Array.from(wData));
  assert.deepEqual(m.graph.node.map((n) => n.opType), ['MatMul', 'Identity']);
  assert.deepEqual(m.graph.output.map((o) => o.name), ['y']);
});

test('serialisation prunes nodes and constants no output needs', () => {
  const g = new G.Graph();
  const x = g.input('x', 'float64', [2]);
  const unused = G.exp(G.mul(x, 7.5));
  g.output(G.add(x, 1), 'y');
  const m = decode(g.toBytes());
  assert.ok(!m.graph.node.some((n) => n.name === unused.name));
  assert.equal(m.graph.initializer.length, 1);
  const full = decode(g.toBytes({ prune: false }));
  assert.ok(full.graph.node.some((n) => n.name === unused.name));
});

test('outputs: renaming through Identity, inputs as outputs, duplicates rejected', async () => {
  const g = new G.Graph();
  const x = g.input('x', 'float64', [2]);
  const y = G.mul(x, 2);
  g.output(y, 'double');
  g.output(y, 'double_again');
  g.output(x, 'x_copy');
  assert.throws(() => g.output(y, 'double'), /output 'double' declared twice/);
  assert.throws(() => g.output(y, 'x'), /name 'x' is already used/);
  const out = await evalGraph(g, { x: { dtype: 'float64', data: Float64Array.from([1, 2]), shape: [2] } });
  assert.deepEqual(out['double']!.data, [2, 4]);
  assert.deepEqual(out['double_again']!.data, [2, 4]);
  assert.deepEqual(out['x_copy']!.data, [1, 2]);
});

test('one session serves several batch sizes through symbolic dims', async () => {
  const g = new G.Graph();
  const x = g.input('x', 'float64', ['batch', 'tokens', 3]);
  const w = g.param('w', Float64Array.from([1, 0, -1, 2, 0.5, 0.25]), [2, 3]);
  const b = g.param('b', Float64Array.from([0.1, -0.1]), [2]);
  const y = G.linear(x, w, b);
  assert.deepEqual(y.shape, ['batch', 'tokens', 2]);
  const flat = G.reshape(y, [-1, 2]);
  assert.deepEqual(flat.shape, ['batch*tokens', 2]);
  g.output(y, 'y');
  const s = await session(g);
  for (const [bs, ts] of [
    [1, 1],
    [3, 2],
  ]) {
    const n = bs! * ts!;
    const xs = Array.from({ length: n * 3 }, (_, i) => i / 7 - 1);
    const out = await run(s, { x: { dtype: 'float64', data: Float64Array.from(xs), shape: [bs!, ts!, 3] } });
    assert.deepEqual(out['y']!.dims, [bs, ts, 2]);
    const want: number[] = [];
    for (let r = 0; r < n; r++) {
      const row = xs.slice(r * 3, r * 3 + 3);
      want.push(row[0]! - row[2]! + 0.1, 2 * row[0]! + 0.5 * row[1]! + 0.25 * row[2]! - 0.1);
    }
    assert.ok(relErr(out['y']!.data, want) < 1e-15);
  }
});

test('opset 17 and 18 lower ReduceMean differently and agree', async () => {
  const results: number[][] = [];
  for (const opset of [17, 18]) {
    const g = new G.Graph({ opset });
    const x = g.input('x', 'float32', [2, 3]);
    const m = G.reduceMean(x, 1);
    const node = g.producerOf(m)!.node;
    if (opset === 17) assert.ok(node.inputs.length === 1 && node.attrs['axes'] !== undefined);
    else assert.ok(node.inputs.length === 2 && node.attrs['axes'] === undefined);
    g.output(m, 'm');
    const out = await evalGraph(g, { x: { dtype: 'float32', data: Float32Array.from([1, 2, 3, 4, 5, 9]), shape: [2, 3] } });
    results.push(out['m']!.data);
  }
  assert.deepEqual(results[0], [2, 6]);
  assert.deepEqual(results[1], [2, 6]);
  assert.throws(() => new G.Graph({ opset: 12 }), /opset 12 not supported/);
});

test('constants: small values shared, data/shape checked; params take the dtype of their array', () => {
  const g = new G.Graph();
  assert.equal(g.constant(2, 'float32'), g.constant(2, 'float32'));
  assert.notEqual(g.constant(2, 'float32'), g.constant(2, 'float64'));
  assert.deepEqual(g.constant([1, 2, 3, 4], 'int64', [2, 2]).shape, [2, 2]);
  assert.deepEqual(g.constant(0, 'float32', [3]).shape, [3]);
  assert.throws(() => g.constant([1, 2, 3], 'float32', [2, 2]), /3 values do not fill shape \[2,2\]/);
  assert.equal(g.param('e', new Int32Array(4), [4]).dtype, 'int32');
  assert.throws(() => g.param('p', new Float32Array(5), [2, 2]), /param 'p': data has 5 elements but shape \[2,2\] needs 4/);
  const other = new G.Graph();
  const x = other.input('x', 'float32', [1]);
  assert.throws(() => G.add(g.constant(1, 'float32'), x), /Add: operands belong to different graphs/);
});
