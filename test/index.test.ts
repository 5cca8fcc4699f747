import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as moeclip from '../src/index.ts';

test('the package entry exposes every layer and the main entry points', () => {
  for (const ns of ['graph', 'runtime', 'clip', 'data', 'pretrain', 'evaluation', 'io', 'methods', 'run', 'report', 'config'] as const) {
    assert.equal(typeof moeclip[ns], 'object', ns);
  }
  assert.equal(typeof moeclip.graph.grad, 'function');
  assert.equal(typeof moeclip.runtime.Engine.create, 'function');
  assert.equal(typeof moeclip.methods.createMethod, 'function');
  assert.equal(typeof moeclip.evaluation.mtilTransfer, 'function');
  assert.equal(typeof moeclip.ClipModel.load, 'function');
  // a library-level computation through the entry: MTIL transfer of a 2-task matrix is A[0][1]
  assert.equal(moeclip.evaluation.mtilTransfer([[0.9, 0.3], [0.8, 0.7]]), 0.3);
});
