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

/** Owner per channel of every group (−1 free); `masks.ts`'s `Owners` fits. */
export type ChannelOwners = readonly ArrayLike<number>[];
type Acts = Float32Array | Float64Array;

function checkLabels(labels: ArrayLike<number>, where: string): void {
  for (let i = 0; i < labels.length; i++) {
    if (!Number.isInteger(labels[i])) throw new Error(`${where}[${i}]: expected an integer class label, got ${labels[i]}`);
  }
}

function checkFinite(a: Acts, where: string): void {
  for (let i = 0; i < a.length; i++) if (!Number.isFinite(a[i]!)) throw new Error(`${where}[${i}]: expected a finite activation, got ${a[i]}`);
}

/** conn[i][j] (row-major [P, C]) between the P parent and C child filters of one pair. */
export function pairConnectivity(parent: Acts, child: Acts, P: number, C: number, labels: ArrayLike<number>): Float64Array {
  const N = labels.length;
  if (!Number.isInteger(P) || P < 1) throw new Error(`pairConnectivity.P: expected a positive integer, got ${P}`);
  if (!Number.isInteger(C) || C < 1) throw new Error(`pairConnectivity.C: expected a positive integer, got ${C}`);
  if (parent.length !== N * P) throw new Error(`pairConnectivity.parent: ${parent.length} values do not fit ${N} samples × ${P} filters`);
  if (child.length !== N * C) throw new Error(`pairConnectivity.child: ${child.length} values do not fit ${N} samples × ${C} filters`);
  checkLabels(labels, 'pairConnectivity.labels');
  checkFinite(parent, 'pairConnectivity.parent');
  checkFinite(child, 'pairConnectivity.child');
  const byClass = new Map<number, number[]>();
  for (let i = 0; i < N; i++) {
    const l = labels[i]!;
    const list = byClass.get(l) ?? [];
    list.push(i);
    byClass.set(l, list);
  }
  const conn = new Float64Array(P * C);
  let classes = 0;
  // a filter whose values in a class are all equal standardises to 0 (correlates exactly 0), checked on the
  // values: the rounded mean of equal values can miss them by an ulp, leaving a tiny non-zero variance
  const z = (a: Acts, F: number, rows: number[]): Float64Array => {
    const n = rows.length;
    const out = new Float64Array(n * F);
    for (let f = 0; f < F; f++) {
      const first = a[rows[0]! * F + f]!;
      if (rows.every((r) => a[r * F + f] === first)) continue;
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
export function subnetConnectivity(acts: readonly Acts[], labels: ArrayLike<number>, owners: ChannelOwners, pairs: ReadonlyArray<readonly [number, number]>, subnets: readonly number[]): Map<number, number> {
  pairs.forEach(([p, c], i) => {
    for (const [g, name] of [[p, 'parent'], [c, 'child']] as const) {
      if (!owners[g] || !acts[g]) throw new Error(`subnetConnectivity.pairs[${i}]: ${name} group ${g} has no ${owners[g] ? 'activations' : 'owners'}`);
    }
  });
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
  if (a.length !== b.length) throw new Error(`pearson: lengths ${a.length} and ${b.length} differ`);
  const n = a.length;
  // constant vectors correlate exactly 0 (checked on the values: their rounded mean may miss them by an ulp)
  if (n === 0 || a.every((v) => v === a[0]) || b.every((v) => v === b[0])) return 0;
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
  return connectivityClusters(subnets, scores, numClusters, seed).groups;
}

/**
 * {@link clusterByConnectivity} with its parts: the subnet × subnet correlation matrix, the cluster label of each
 * subnet (aligned with `subnets`, labels numbered in order of first appearance) and the groups of subnet ids.
 */
export function connectivityClusters(subnets: readonly number[], scores: readonly (readonly number[])[], numClusters: number, seed: number): { corr: number[][]; labels: number[]; groups: number[][] } {
  if (scores.length !== subnets.length) throw new Error(`connectivityClusters.scores: ${scores.length} rows for ${subnets.length} subnets`);
  if (!Number.isInteger(numClusters) || numClusters < 1) throw new Error(`connectivityClusters.numClusters: expected a positive integer, got ${numClusters}`);
  const T = scores[0]?.length ?? 0;
  scores.forEach((r, i) => {
    if (r.length !== T) throw new Error(`connectivityClusters.scores[${i}]: ${r.length} tasks, row 0 has ${T}`);
    r.forEach((v, j) => {
      if (!Number.isFinite(v)) throw new Error(`connectivityClusters.scores[${i}][${j}]: expected a finite number, got ${v}`);
    });
  });
  if (subnets.length === 0) return { corr: [], labels: [], groups: [] };
  const corr = scores.map((a) => scores.map((b) => pearson(a, b)));
  const labels = clusterSubnets(corr, Math.min(numClusters, subnets.length), seed);
  return { corr, labels, groups: clusterGroups(subnets, labels) };
}

/**
 * The score matrix `scores[s][t]` (subnets in `subnets` order, tasks in `tasks` order) from each task's buffer
 * activations through the union network: `tasks[t].acts[g]` is [N_t, C_g], `tasks[t].labels` its N_t labels.
 */
export function connectivityScores(tasks: ReadonlyArray<{ acts: readonly Acts[]; labels: ArrayLike<number> }>, owners: ChannelOwners, pairs: ReadonlyArray<readonly [number, number]>, subnets: readonly number[]): number[][] {
  const perTask = tasks.map((t) => subnetConnectivity(t.acts, t.labels, owners, pairs, subnets));
  return subnets.map((s) => perTask.map((m) => m.get(s)!));
}
