/**
 * Connectivity (src/cnn/connectivity.ts) against an independent float64 computation (Pearson from sums of
 * products, per class, averaged) on a small hand case; ownership picks the pairs; clustering finds two groups.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { clusterByConnectivity, connectivityClusters, connectivityScores, pairConnectivity, pearson, subnetConnectivity } from '../../src/cnn/connectivity.ts';

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

test('pairConnectivity: constant non-zero filters give 0 (not NaN) even when their float mean misses them; classes with < 2 samples are skipped', () => {
  // parent filter 0 is 0.1 in every sample of class 0 (its float mean misses 0.1 by an ulp), class 2 has one sample
  const lab = [0, 0, 0, 1, 1, 1, 2];
  const par = Float64Array.from([0.1, 1, 0.1, 2, 0.1, 4, 1, 3, 2, 1, 3, 2, 9, 9]);
  assert.notEqual((0.1 + 0.1 + 0.1) / 3, 0.1, 'the case needs a mean that misses the value');
  const chi = Float32Array.from([5, 1, 2, 7, 8, 9, 0]);
  const conn = pairConnectivity(par, chi, 2, 1, lab);
  const p = [0, 1, 2, 3, 4, 5].map((k) => par[k * 2]!);
  const q = [0, 1, 2, 3, 4, 5].map((k) => par[k * 2 + 1]!);
  const c = [...chi].slice(0, 6);
  const want0 = (0 + Math.abs(pearsonDirect(p.slice(3), c.slice(3)))) / 2;
  const want1 = (Math.abs(pearsonDirect(q.slice(0, 3), c.slice(0, 3))) + Math.abs(pearsonDirect(q.slice(3), c.slice(3)))) / 2;
  assert.ok(Number.isFinite(conn[0]!) && Math.abs(conn[0]! - want0) < 1e-12, `conn[0] ${conn[0]} vs ${want0}`);
  assert.equal(pairConnectivity(par.slice(0, 6), chi.slice(0, 3), 2, 1, [0, 0, 0])[0], 0, 'exactly 0 for the constant filter');
  assert.ok(Math.abs(conn[1]! - want1) < 1e-12);
  assert.deepEqual([...pairConnectivity(Float32Array.of(1, 2, 3), Float32Array.of(4, 5, 6), 1, 1, [0, 1, 2])], [0], 'no class with 2 samples');
  assert.throws(() => pairConnectivity(par, chi, 2, 2, lab), /pairConnectivity\.child/);
  assert.throws(() => pairConnectivity(par, chi, 2, 1, [0, 0, 0, 1, 1, 1, 0.5]), /pairConnectivity\.labels\[6\]/);
  assert.equal(pearson([0.1, 0.1, 0.1], [1, 2, 3]), 0);
});

test('subnetConnectivity over two layer pairs: per pair the mean conn² of owned pairs, then the mean over the pairs where the subnet owns some', () => {
  // groups: 0 (2 filters) → 1 (3 filters) → 2 (2 filters); subnet 1 owns nothing in group 2
  const g2 = [
    [1, 0], [3, 1], [2, 2], [5, 0],
    [2, 2], [1, 1], [0, 3], [4, 1],
  ];
  const owners = [Int32Array.of(0, 1), Int32Array.of(0, 1, 0), Int32Array.of(0, -1)];
  const acts = [Float64Array.from(parent.flat()), Float64Array.from(child.flat()), Float64Array.from(g2.flat())];
  const r = subnetConnectivity(acts, labels, owners, [[0, 1], [1, 2]], [0, 1]);
  // independent: conn between group 1 and group 2 by the direct per-class Pearson
  const conn12 = (i: number, j: number): number => {
    let s = 0;
    for (const c of [0, 1]) {
      const rows = labels.map((l, k) => (l === c ? k : -1)).filter((k) => k >= 0);
      s += Math.abs(pearsonDirect(rows.map((k) => child[k]![i]!), rows.map((k) => g2[k]![j]!)));
    }
    return s / 2;
  };
  const pair01 = (connDirect(0, 0) ** 2 + connDirect(0, 2) ** 2) / 2;
  const pair12 = (conn12(0, 0) ** 2 + conn12(2, 0) ** 2) / 2;
  assert.ok(Math.abs(r.get(0)! - (pair01 + pair12) / 2) < 1e-12);
  assert.ok(Math.abs(r.get(1)! - connDirect(1, 1) ** 2) < 1e-12, 'subnet 1 owns pairs only in the first layer pair');
  const scores = connectivityScores([{ acts, labels }, { acts: [acts[0]!, acts[1]!, acts[2]!], labels }], owners, [[0, 1], [1, 2]], [1, 0]);
  assert.deepEqual(scores, [[r.get(1), r.get(1)], [r.get(0), r.get(0)]]);
  assert.throws(() => subnetConnectivity(acts, labels, owners, [[0, 3]], [0]), /pairs\[0\]: child group 3/);
});

test('connectivityClusters: labels aligned with the subnets, two well-separated groups, k capped at the subnet count', () => {
  const rng = (i: number): number => ((Math.sin(i * 12.9898) * 43758.5453) % 1 + 1) % 1;
  const a = [0.9, 0.1, 0.8, 0.2, 0.7, 0.1];
  const b = [0.1, 0.8, 0.2, 0.9, 0.1, 0.7];
  const scores = [a, b, a, b, a, b].map((v, s) => v.map((x, t) => x + 0.02 * rng(s * 10 + t)));
  const subnets = [0, 1, 2, 3, 4, 5];
  const { corr, labels: lab, groups } = connectivityClusters(subnets, scores, 2, 0);
  assert.equal(corr.length, 6);
  assert.ok(Math.abs(corr[0]![2]! - pearsonDirect(scores[0]!, scores[2]!)) < 1e-12);
  assert.deepEqual(lab, [0, 1, 0, 1, 0, 1]);
  assert.deepEqual(groups, [[0, 2, 4], [1, 3, 5]]);
  assert.deepEqual(connectivityClusters([3, 8], scores.slice(0, 2), 5, 0).groups.sort((x, y) => x[0]! - y[0]!), [[3], [8]], 'k = min(numClusters, subnets)');
  assert.throws(() => connectivityClusters([1], scores, 2, 0), /connectivityClusters\.scores: 6 rows for 1 subnets/);
});
