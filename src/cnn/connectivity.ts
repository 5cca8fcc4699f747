/**
 * Connectivity clustering of the CNN track (the reference's `calc_conn`, `get_task_conns_buffers`,
 * `cluster_subnetworks_by_conns`), in float64.
 *
 * For one task's buffer passed through the union network: per consecutive (parent → child) channel-group pair,
 * each filter's activations (post-ReLU, averaged over H and W) are standardised within each class, and the
 * connectivity of a parent/child filter pair is |Pearson correlation| averaged over the classes with at least two
 * samples (a filter with zero variance in a class correlates 0 there). A subnet's score for the task is the mean
 * of conn² over the (parent, child) pairs it owns both ends of, averaged over the layer pairs where it owns some.
 * Each subnet is then a vector over tasks; the subnet × subnet Pearson correlations of these vectors are
 * clustered with seeded k-means++ (the rows of the correlation matrix, as the reference), through the one k-means
 * of the project (src/moe/merge.ts `clusterSubnets`, ml-kmeans).
 */
import { clusterGroups, clusterSubnets } from '../moe/merge.ts';
import type { Owners } from './masks.ts';

/** conn[i][j] (row-major [P, C]) between the P parent and C child filters of one pair. */
export function pairConnectivity(parent: Float32Array | Float64Array, child: Float32Array | Float64Array, P: number, C: number, labels: ArrayLike<number>): Float64Array {
  const N = labels.length;
  if (parent.length !== N * P || child.length !== N * C) throw new Error(`connectivity: activations ${parent.length}/${child.length} do not fit ${N} samples × ${P}/${C} filters`);
  const byClass = new Map<number, number[]>();
  for (let i = 0; i < N; i++) {
    const l = labels[i]!;
    const list = byClass.get(l) ?? [];
    list.push(i);
    byClass.set(l, list);
  }
  const conn = new Float64Array(P * C);
  let classes = 0;
  const z = (a: Float32Array | Float64Array, F: number, rows: number[]): Float64Array => {
    const n = rows.length;
    const out = new Float64Array(n * F);
    for (let f = 0; f < F; f++) {
      let m = 0;
      for (const r of rows) m += a[r * F + f]!;
      m /= n;
      let v = 0;
      for (const r of rows) v += (a[r * F + f]! - m) ** 2;
      const sd = Math.sqrt(v / n);
      rows.forEach((r, k) => (out[k * F + f] = sd > 0 ? (a[r * F + f]! - m) / sd : 0));
    }
    return out;
  };
  for (const rows of byClass.values()) {
    if (rows.length < 2) continue;
    classes++;
    const zp = z(parent, P, rows);
    const zc = z(child, C, rows);
    const n = rows.length;
    for (let i = 0; i < P; i++) {
      for (let j = 0; j < C; j++) {
        let s = 0;
        for (let k = 0; k < n; k++) s += zp[k * P + i]! * zc[k * C + j]!;
        conn[i * C + j]! += Math.abs(s / n);
      }
    }
  }
  if (classes > 0) for (let i = 0; i < conn.length; i++) conn[i]! /= classes;
  return conn;
}

/**
 * The scalar per subnet for one task: mean over layer pairs (where the subnet owns both ends of some filter
 * pair) of the mean conn² over those pairs. `acts[g]` is [N, C_g]; `pairs` are (parent, child) group indices.
 */
export function subnetConnectivity(acts: readonly (Float32Array | Float64Array)[], labels: ArrayLike<number>, owners: Owners, pairs: ReadonlyArray<readonly [number, number]>, subnets: readonly number[]): Map<number, number> {
  const sums = new Map<number, { s: number; n: number }>(subnets.map((s) => [s, { s: 0, n: 0 }]));
  for (const [p, c] of pairs) {
    const P = owners[p]!.length;
    const C = owners[c]!.length;
    const conn = pairConnectivity(acts[p]!, acts[c]!, P, C, labels);
    for (const s of subnets) {
      let sum = 0;
      let n = 0;
      for (let i = 0; i < P; i++) {
        if (owners[p]![i] !== s) continue;
        for (let j = 0; j < C; j++) {
          if (owners[c]![j] !== s) continue;
          sum += conn[i * C + j]! ** 2;
          n++;
        }
      }
      if (n > 0) {
        const r = sums.get(s)!;
        r.s += sum / n;
        r.n++;
      }
    }
  }
  return new Map([...sums].map(([s, r]) => [s, r.n > 0 ? r.s / r.n : 0]));
}

/** Pearson correlation of two equal-length vectors (0 when either is constant). */
export function pearson(a: readonly number[], b: readonly number[]): number {
  const n = a.length;
  const ma = a.reduce((x, y) => x + y, 0) / n;
  const mb = b.reduce((x, y) => x + y, 0) / n;
  let sab = 0;
  let saa = 0;
  let sbb = 0;
  for (let i = 0; i < n; i++) {
    sab += (a[i]! - ma) * (b[i]! - mb);
    saa += (a[i]! - ma) ** 2;
    sbb += (b[i]! - mb) ** 2;
  }
  return saa > 0 && sbb > 0 ? sab / Math.sqrt(saa * sbb) : 0;
}

/**
 * Clusters subnets from their per-task scores (`scores[s][t]`, one row per subnet in `subnets` order): the
 * subnet × subnet correlation rows go to k-means (k = min(numClusters, subnets)). Returns the groups of subnet ids.
 */
export function clusterByConnectivity(subnets: readonly number[], scores: readonly (readonly number[])[], numClusters: number, seed: number): number[][] {
  const corr = scores.map((a) => scores.map((b) => pearson(a, b)));
  const labels = clusterSubnets(corr, Math.min(numClusters, subnets.length), seed);
  return clusterGroups(subnets, labels);
}
