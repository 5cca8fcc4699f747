/**
 * Connectivity (src/cnn/connectivity.ts) against an independent float64 computation (Pearson from sums of
 * products, per class, averaged) on a small hand case; ownership picks the pairs; clustering finds two groups.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { clusterByConnectivity, pairConnectivity, subnetConnectivity } from '../../src/cnn/connectivity.ts';

// 2 classes × 4 samples, 2 parent and 3 child filters (child 2 constant in class 1)
const labels = [0, 0, 0, 0, 1, 1, 1, 1];
const parent = [
  [1, 2], [2, 1], [3, 5], [4, 3],
  [0, 1], [1, 1], [2, 4], [5, 2],
];
const child = [
  [2, 0, 1], [4, 1, 1], [5, 3, 2], [9, 2, 0],
  [1, 4, 3], [0, 2, 3], [3, 1, 3], [2, 2, 3],
];

function pearsonDirect(x: number[], y: number[]): number {
  const n = x.length;
  const sx = x.reduce((a, b) => a + b, 0);
  const sy = y.reduce((a, b) => a + b, 0);
  const sxy = x.reduce((a, v, i) => a + v * y[i]!, 0);
  const sxx = x.reduce((a, v) => a + v * v, 0);
  const syy = y.reduce((a, v) => a + v * v, 0);
  const den = Math.sqrt((n * sxx - sx * sx) * (n * syy - sy * sy));
  return den === 0 ? 0 : (n * sxy - sx * sy) / den;
}

function connDirect(i: number, j: number): number {
  let s = 0;
  for (const c of [0, 1]) {
    const rows = labels.map((l, k) => (l === c ? k : -1)).filter((k) => k >= 0);
    s += Math.abs(pearsonDirect(rows.map((k) => parent[k]![i]!), rows.map((k) => child[k]![j]!)));
  }
  return s / 2;
}

test('pairConnectivity equals |Pearson| per class averaged over classes (direct float64); a constant filter gives 0', () => {
  const conn = pairConnectivity(Float64Array.from(parent.flat()), Float64Array.from(child.flat()), 2, 3, labels);
  for (let i = 0; i < 2; i++) for (let j = 0; j < 3; j++) assert.ok(Math.abs(conn[i * 3 + j]! - connDirect(i, j)) < 1e-12, `conn[${i}][${j}]`);
  // child 2 is constant in class 1: only class 0 contributes, halved
  assert.ok(Math.abs(conn[2]! - Math.abs(pearsonDirect([1, 2, 3, 4], [1, 1, 2, 0])) / 2) < 1e-12);
});

test('subnetConnectivity: mean conn² over the pairs a subnet owns both ends of; subnets without pairs score 0', () => {
  const owners = [Int32Array.of(0, 1), Int32Array.of(0, 1, 0)];
  const acts = [Float32Array.from(parent.flat()), Float32Array.from(child.flat())];
  const r = subnetConnectivity(acts, labels, owners, [[0, 1]], [0, 1, 2]);
  const want0 = (connDirect(0, 0) ** 2 + connDirect(0, 2) ** 2) / 2;
  const want1 = connDirect(1, 1) ** 2;
  assert.ok(Math.abs(r.get(0)! - want0) < 1e-6);
  assert.ok(Math.abs(r.get(1)! - want1) < 1e-6);
  assert.equal(r.get(2), 0);
});

test('clusterByConnectivity groups subnets whose per-task profiles correlate', () => {
  const scores = [
    [0.9, 0.1, 0.8, 0.2],
    [0.85, 0.15, 0.75, 0.1],
    [0.1, 0.9, 0.2, 0.8],
    [0.2, 0.8, 0.1, 0.95],
  ];
  const groups = clusterByConnectivity([4, 7, 9, 12], scores, 2, 0).sort((a, b) => a[0]! - b[0]!);
  assert.deepEqual(groups, [[4, 7], [9, 12]]);
});
