/**
 * Every VJP rule against independent truth: float64 central finite differences (vjp-cases.ts) or, for ops
 * whose CPU kernels are float32-only, plain-JS reference gradients (vjp-float32-cases.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { registeredVjps } from '../../src/graph/index.ts';
import { gradCheck } from './helpers.ts';
import { CASES } from './vjp-cases.ts';
import { F32_CASES, checkF32 } from './vjp-float32-cases.ts';

for (const c of CASES) {
  test(`VJP ${c.name} matches central differences`, async () => {
    const r = await gradCheck(c);
    const tol = c.tol ?? 1e-6;
    assert.ok(Object.keys(r.relErr).length > 0, 'no differentiated inputs');
    for (const [name, err] of Object.entries(r.relErr)) {
      assert.ok(err < tol, `${c.name}: d/d${name} relative error ${err.toExponential(2)} >= ${tol}`);
    }
    for (const op of c.ops) assert.ok(r.nodes.includes(op), `${c.name}: graph has no ${op} node`);
  });
}

// Opset 18 moved ReduceMean/Max/Min axes to inputs; check those lowerings (and 21) against differences too.
const OPSET_SENSITIVE = new Set(['ReduceMean', 'ReduceMax', 'ReduceMin', 'Split', 'Pad', 'Slice', 'ScatterElements']);
for (const opset of [18, 21]) {
  test(`VJP cases of opset-sensitive ops pass at opset ${opset}`, async () => {
    for (const c of CASES.filter((x) => x.opset === undefined && x.ops.some((op) => OPSET_SENSITIVE.has(op)))) {
      const r = await gradCheck({ ...c, opset });
      for (const [name, err] of Object.entries(r.relErr)) assert.ok(err < 1e-6, `${c.name} @${opset}: d/d${name} ${err.toExponential(2)}`);
    }
  });
}

test('frozen constant weight gets no gradient nodes (only dA is computed)', async () => {
  const c = CASES.find((x) => x.name === 'matmul frozen weight (no dW)')!;
  const r = await gradCheck(c);
  // forward MatMul + one backward Gemm (dA); a dW would add a second Gemm
  assert.equal(r.nodes.filter((n) => n === 'Gemm').length, 1);
});

for (const c of F32_CASES) {
  test(`VJP ${c.name} (float32) matches the JS float64 reference`, async () => {
    const r = await checkF32(c);
    const tol = c.tol ?? 1e-5;
    for (const [name, err] of Object.entries(r.relErr)) {
      assert.ok(err < tol, `${c.name}: d/d${name} relative error ${err.toExponential(2)} >= ${tol}`);
    }
    for (const op of c.ops) assert.ok(r.nodes.includes(op), `${c.name}: graph has no ${op} node`);
  });
}

test('every registered VJP rule has a gradient-check case', () => {
  const covered = new Set([...CASES, ...F32_CASES].flatMap((c) => c.ops));
  const missing = registeredVjps().filter((op) => !covered.has(op));
  assert.deepEqual(missing, [], `VJP rules without a test case: ${missing.join(', ')}`);
});
