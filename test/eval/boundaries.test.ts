/** Boundary scoring: hand-computed hits, delays, misses and false detections; bad input names the field. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { detectionsFromExtra, scoreBoundaries } from '../../src/eval/boundaries.ts';

test('each true boundary takes the first detection in its segment; the rest are false', () => {
  // tasks of 100 samples: boundaries at 100, 200, 300; batches of 10
  const s = scoreBoundaries([100, 200, 300], [50, 100, 130, 250, 260]);
  // 50: before the first boundary (false); 100 hits b0 (delay 0); 130 false; 250 hits b1 (delay 50); 260 false; b2 missed
  assert.deepEqual(s, { boundaries: 3, found: 2, missed: 1, falseDetections: 3, delays: [0, 50] });
  assert.deepEqual(scoreBoundaries([100], []), { boundaries: 1, found: 0, missed: 1, falseDetections: 0, delays: [] });
  assert.deepEqual(scoreBoundaries([], [40]).falseDetections, 1);
});

test('bad input names the argument; detections are read from cost extras in order', () => {
  assert.throws(() => scoreBoundaries([200, 100], []), /trueStarts must be ascending/);
  assert.throws(() => scoreBoundaries([100], [-1]), /detected\[0\] is -1/);
  assert.deepEqual(detectionsFromExtra({ 'detectedAt:1': 300, 'detectedAt:0': 100, 'detectedAt:10': 900, detectedBoundaries: 3 }), [100, 300, 900]);
  assert.deepEqual(detectionsFromExtra({ detectedBoundaries: 0 }), []);
  assert.equal(detectionsFromExtra({ merges: 2 }), null, 'a method that detects nothing reports no score');
});
