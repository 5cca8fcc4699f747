/**
 * CM-MoE clustering and merging of subnets (pure TypeScript on TensorData; see subnets.ts for the subnets).
 *
 * Metrics (the caller collects the activations on replay memory, eval mode, per task τ, subnet s, block b and
 * modality; one row per sample, row-major [n, width] Float32Array or Float64Array):
 * - `dist` {@link meanDistance}: mean over rows of ‖a_i − b_i‖₂;
 * - `cos` {@link meanCosine}: mean over rows of cos(a_i, b_i) (0 for a zero row);
 * - `energy` {@link meanEnergy}: mean over rows of −log Σ_c exp(logit_ic) of logits [n, C] (every sample; the
 *   reference adds only each batch's last sample);
 * - `acc` {@link accuracy}: top-1 accuracy of logits [n, C] against labels.
 * First order: `dist`/`cos` between two layers of one subnet (the reference script: block input vs the MoE
 * output). Second order: the same layer in the subnet that owns τ vs in subnet s.
 * {@link subnetVectors} turns per-(τ, s, b, modality) values into one vector per subnet: for each modality (image,
 * then text, then others sorted), for each task ascending, the mean over blocks ("hybrid" when both modalities
 * are given), length #modalities × #tasks.
 *
 * {@link clusterSubnets}: k-means (ml-kmeans, k-means++ init, seeded) on those vectors.
 *
 * Merging ({@link planMerge}, {@link applyMerge}): every cluster of more than one subnet merges into its
 * lowest-id subnet (the survivor). Per site, of the union of the members' own experts, the `expertsPerSubnet`
 * with the highest usage summed over the members' routers are kept (ties: lower column first), the rest deleted.
 * - `keep-top` (the reference): kept experts are unchanged.
 * - `usage-average` (MC-SMoE style): each deleted expert is assigned to the kept expert of highest cosine
 *   similarity of the flattened weights (down, down bias, up, up bias; ties: lower column first), and each kept
 *   expert becomes the usage-weighted mean of itself and its assigned experts (plain mean when their usage sums
 *   to 0).
 * The survivor's gate (and noise) becomes the sum of the members' (as the reference) and may select exactly the
 * kept experts; the other members' routers are removed; every router loses the deleted columns; the survivor
 * takes over the other members' usage counts (so kept experts keep theirs) and tasks. Adam slots and per-row
 * counters of kept rows are kept; the survivor's router slots and counter restart at 0 (its values changed).
 * Other subnets see exactly the same tensors on the columns they may select, so their outputs do not change.
 */
import { kmeans } from 'ml-kmeans';
import type { TensorData } from '../runtime/types.ts';
import { allocTyped, numel } from '../runtime/types.ts';
import type { Ddas } from './ddas.ts';
import { STACK_PARTS, stackedTensorName } from './hooks.ts';
import { routerTensorName, type MoeLayout, type MoeSite } from './layout.ts';
import { moeTensorRole, shrinkMoeTensors, type SubnetRegistry } from './subnets.ts';

type Floats = Float32Array | Float64Array;

// -- metrics --------------------------------------------------------------------------------------------------

function rowCount(a: Floats, width: number, what: string): number {
  if (!Number.isInteger(width) || width < 1) throw new Error(`${what}: width must be a positive integer, got ${width}`);
  if (a.length === 0 || a.length % width !== 0) throw new Error(`${what}: ${a.length} values are not n ≥ 1 rows of ${width}`);
  return a.length / width;
}

function pairRows(a: Floats, b: Floats, width: number, what: string): number {
  const n = rowCount(a, width, what);
  if (b.length !== a.length) throw new Error(`${what}: the two activations hold ${a.length} and ${b.length} values`);
  return n;
}

/** Mean over rows of the Euclidean distance ‖a_i − b_i‖₂; a, b [n, width]. */
export function meanDistance(a: Floats, b: Floats, width: number): number {
  const n = pairRows(a, b, width, 'meanDistance');
  let total = 0;
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let j = i * width; j < (i + 1) * width; j++) s += (a[j]! - b[j]!) ** 2;
    total += Math.sqrt(s);
  }
  return total / n;
}

/** Mean over rows of the cosine similarity of a_i and b_i (0 when either row is 0); a, b [n, width]. */
export function meanCosine(a: Floats, b: Floats, width: number): number {
  const n = pairRows(a, b, width, 'meanCosine');
  let total = 0;
  for (let i = 0; i < n; i++) {
    let ab = 0;
    let aa = 0;
    let bb = 0;
    for (let j = i * width; j < (i + 1) * width; j++) {
      ab += a[j]! * b[j]!;
      aa += a[j]! ** 2;
      bb += b[j]! ** 2;
    }
    total += aa > 0 && bb > 0 ? ab / Math.sqrt(aa * bb) : 0;
  }
  return total / n;
}

/** Mean over rows of the energy −log Σ_c exp(logit_ic) of logits [n, classes] (log-sum-exp shifted by the row max). */
export function meanEnergy(logits: Floats, classes: number): number {
  const n = rowCount(logits, classes, 'meanEnergy');
  let total = 0;
  for (let i = 0; i < n; i++) {
    let m = -Infinity;
    for (let c = 0; c < classes; c++) m = Math.max(m, logits[i * classes + c]!);
    let s = 0;
    for (let c = 0; c < classes; c++) s += Math.exp(logits[i * classes + c]! - m);
    total += -(m + Math.log(s));
  }
  return total / n;
}

/** Top-1 accuracy (ties: the lower class) of logits [n, classes] against `labels` (n class indices). */
export function accuracy(logits: Floats, labels: ArrayLike<number>, classes: number): number {
  const n = rowCount(logits, classes, 'accuracy');
  if (labels.length !== n) throw new Error(`accuracy: ${labels.length} labels for ${n} rows`);
  let hit = 0;
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let c = 1; c < classes; c++) if (logits[i * classes + c]! > logits[i * classes + best]!) best = c;
    if (best === labels[i]) hit++;
  }
  return hit / n;
}

/** A layer-pair metric (first or second order). */
export type LayerMetric = 'dist' | 'cos';

/** {@link meanDistance} or {@link meanCosine} of two activations [n, width]. */
export function layerMetric(kind: LayerMetric, a: Floats, b: Floats, width: number): number {
  if (kind === 'dist') return meanDistance(a, b, width);
  if (kind === 'cos') return meanCosine(a, b, width);
  throw new Error(`layerMetric: kind must be 'dist' or 'cos', got ${JSON.stringify(kind)}`);
}

/** One metric value of task τ's memory through subnet s at one block of one modality. */
export interface MetricRecord {
  task: number;
  subnet: number;
  /** Block name (e.g. a site key); the blocks of a modality must be the same for every (task, subnet). */
  block: string;
  /** e.g. 'image', 'text'. */
  modality: string;
  value: number;
}

/** What {@link subnetVectors} returns: `vectors[i]` belongs to `subnets[i]`; entry m·#tasks + t is (modalities[m], tasks[t]). */
export interface SubnetVectors {
  subnets: number[];
  tasks: number[];
  modalities: string[];
  vectors: number[][];
}

function modalityOrder(a: string, b: string): number {
  const rank = (m: string) => (m === 'image' ? 0 : m === 'text' ? 1 : 2);
  return rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0);
}

/**
 * Per subnet the vector of block-averaged metrics (see the module doc). `opts` fixes (and restricts to) the
 * subnets, tasks and modalities; by default every one present, ids ascending. Missing or duplicate records throw.
 */
export function subnetVectors(records: readonly MetricRecord[], opts: { subnets?: readonly number[]; tasks?: readonly number[]; modalities?: readonly string[] } = {}): SubnetVectors {
  const where = 'subnetVectors';
  if (!Array.isArray(records)) throw new Error(`${where}: records must be an array`);
  records.forEach((r, i) => {
    if (typeof r !== 'object' || r === null) throw new Error(`${where}: records[${i}] must be {task, subnet, block, modality, value}`);
    if (!Number.isInteger(r.task) || !Number.isInteger(r.subnet)) throw new Error(`${where}: records[${i}]: task and subnet must be integers`);
    if (typeof r.block !== 'string' || typeof r.modality !== 'string') throw new Error(`${where}: records[${i}]: block and modality must be strings`);
    if (typeof r.value !== 'number' || !Number.isFinite(r.value)) throw new Error(`${where}: records[${i}].value is ${r.value}, expected a finite number`);
  });
  const subnets = opts.subnets ? [...opts.subnets] : [...new Set(records.map((r) => r.subnet))].sort((a, b) => a - b);
  const tasks = opts.tasks ? [...opts.tasks] : [...new Set(records.map((r) => r.task))].sort((a, b) => a - b);
  const modalities = opts.modalities ? [...opts.modalities] : [...new Set(records.map((r) => r.modality))].sort(modalityOrder);
  const cell = new Map<string, Map<string, number>>();
  const key = (t: number, s: number, m: string) => JSON.stringify([t, s, m]);
  for (const r of records) {
    if (!subnets.includes(r.subnet) || !tasks.includes(r.task) || !modalities.includes(r.modality)) continue;
    const k = key(r.task, r.subnet, r.modality);
    let blocks = cell.get(k);
    if (!blocks) cell.set(k, (blocks = new Map()));
    if (blocks.has(r.block)) throw new Error(`${where}: two records for task ${r.task}, subnet ${r.subnet}, ${r.modality} block '${r.block}'`);
    blocks.set(r.block, r.value);
  }
  const blockSets = new Map<string, string>();
  const vectors = subnets.map((s) =>
    modalities.flatMap((m) =>
      tasks.map((t) => {
        const blocks = cell.get(key(t, s, m));
        if (!blocks) throw new Error(`${where}: no record for task ${t}, subnet ${s}, modality '${m}'`);
        const names = JSON.stringify([...blocks.keys()].sort());
        const seen = blockSets.get(m);
        if (seen === undefined) blockSets.set(m, names);
        else if (seen !== names) throw new Error(`${where}: task ${t}, subnet ${s}, modality '${m}' has blocks ${names}, others ${seen}`);
        let sum = 0;
        for (const v of blocks.values()) sum += v;
        return sum / blocks.size;
      }),
    ),
  );
  return { subnets, tasks, modalities, vectors };
}

// -- clustering -----------------------------------------------------------------------------------------------

/**
 * k-means labels of `vectors` (ml-kmeans, k-means++ init seeded by `seed`; `restarts` runs with seeds seed,
 * seed + 1, … keep the lowest within-cluster sum of squares, default 1 as scikit-learn's `n_init='auto'`).
 * k is clamped to the number of distinct vectors. Labels are numbered in order of first appearance.
 */
export function clusterSubnets(vectors: readonly (readonly number[])[], k: number, seed: number, opts: { restarts?: number; maxIterations?: number } = {}): number[] {
  const where = 'clusterSubnets';
  if (!Array.isArray(vectors)) throw new Error(`${where}: vectors must be an array of number arrays`);
  if (!Number.isInteger(k) || k < 1) throw new Error(`${where}: k must be a positive integer, got ${k}`);
  if (!Number.isInteger(seed)) throw new Error(`${where}: seed must be an integer, got ${seed}`);
  const restarts = opts.restarts ?? 1;
  if (!Number.isInteger(restarts) || restarts < 1) throw new Error(`${where}: restarts must be a positive integer, got ${restarts}`);
  const maxIterations = opts.maxIterations ?? 300;
  if (!Number.isInteger(maxIterations) || maxIterations < 1) throw new Error(`${where}: maxIterations must be a positive integer, got ${maxIterations}`);
  const n = vectors.length;
  if (n === 0) return [];
  const D = vectors[0]!.length;
  vectors.forEach((v, i) => {
    if (!Array.isArray(v) || v.length !== D) throw new Error(`${where}: vectors[${i}] has length ${Array.isArray(v) ? v.length : 'n/a'}, vectors[0] ${D}`);
    v.forEach((x, j) => {
      if (typeof x !== 'number' || !Number.isFinite(x)) throw new Error(`${where}: vectors[${i}][${j}] is ${x}, expected a finite number`);
    });
  });
  const distinct = new Set(vectors.map((v) => JSON.stringify(v))).size;
  const K = Math.min(k, distinct);
  let labels: number[];
  if (K === 1) labels = new Array<number>(n).fill(0);
  else {
    const data = vectors.map((v) => [...v]);
    let best: { sse: number; clusters: number[] } | null = null;
    for (let r = 0; r < restarts; r++) {
      const res = kmeans(data, K, { initialization: 'kmeans++', seed: seed + r, maxIterations });
      let sse = 0;
      data.forEach((v, i) => {
        const c = res.centroids[res.clusters[i]!]!;
        for (let j = 0; j < D; j++) sse += (v[j]! - c[j]!) ** 2;
      });
      if (!best || sse < best.sse) best = { sse, clusters: [...res.clusters] };
    }
    labels = best!.clusters;
  }
  const rename = new Map<number, number>();
  return labels.map((l) => {
    if (!rename.has(l)) rename.set(l, rename.size);
    return rename.get(l)!;
  });
}

/** Groups of subnet ids from labels aligned with `subnets` (groups in order of first label, ids ascending). */
export function clusterGroups(subnets: readonly number[], labels: readonly number[]): number[][] {
  if (subnets.length !== labels.length) throw new Error(`clusterGroups: ${subnets.length} subnets but ${labels.length} labels`);
  const groups = new Map<number, number[]>();
  labels.forEach((l, i) => {
    let g = groups.get(l);
    if (!g) groups.set(l, (g = []));
    g.push(subnets[i]!);
  });
  return [...groups.values()].map((g) => [...g].sort((a, b) => a - b));
}

// -- merge plan -------------------------------------------------------------------------------------------------

export type MergeRule = 'keep-top' | 'usage-average';

/** One site of one merged cluster. Ids are expert ids; `usage` is aligned with `pooled`. */
export interface MergeSitePlan {
  /** The members' own experts, column order. */
  pooled: number[];
  /** Usage of each pooled expert summed over the members' routers. */
  usage: number[];
  kept: number[];
  deleted: number[];
  /** usage-average: [deleted id, kept id it merges into] for every deleted expert; keep-top: empty. */
  assign: [number, number][];
}

/** One cluster of more than one subnet. */
export interface MergeGroupPlan {
  survivor: number;
  /** Subnet ids, ascending (the survivor first). */
  members: number[];
  routers: { survivor: number; removed: number[] };
  /** The pooled tasks: the survivor's, then each other member's, in member order. */
  tasks: number[];
  /** Per site key. */
  sites: Record<string, MergeSitePlan>;
}

/** What {@link planMerge} returns (plain JSON). */
export interface MergePlan {
  rule: MergeRule;
  expertsPerSubnet: number;
  groups: MergeGroupPlan[];
}

/** Options of {@link planMerge}. */
export interface MergeOptions {
  rule: MergeRule;
  /** Experts kept per site and merged cluster; default the registry's. */
  expertsPerSubnet?: number;
  /** The stacked expert parameters (`moe.<site>.stack.<part>`); needed by `usage-average` (similarities). */
  tensors?: Readonly<Record<string, TensorData>>;
}

function stackRow(tensors: Readonly<Record<string, TensorData>>, site: MoeSite, E: number, where: string): (col: number) => Float64Array {
  const parts = STACK_PARTS.map((p) => {
    const name = stackedTensorName(site, p);
    const t = tensors[name];
    if (!t) throw new Error(`${where}: tensors has no '${name}'`);
    if ((t.dtype !== 'float32' && t.dtype !== 'float64') || t.dims[0] !== E) throw new Error(`${where}: '${name}' is ${t.dtype} [${t.dims.join(', ')}], expected float rows for the ${E} experts of the site`);
    return { data: t.data as Floats, size: numel(t.dims.slice(1)) };
  });
  const size = parts.reduce((a, p) => a + p.size, 0);
  return (col) => {
    const out = new Float64Array(size);
    let o = 0;
    for (const p of parts) {
      out.set(p.data.subarray(col * p.size, (col + 1) * p.size), o);
      o += p.size;
    }
    return out;
  };
}

function cosine(a: Float64Array, b: Float64Array): number {
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += a[i]! * b[i]!;
    aa += a[i]! ** 2;
    bb += b[i]! ** 2;
  }
  return aa > 0 && bb > 0 ? ab / Math.sqrt(aa * bb) : 0;
}

/**
 * The merge of every cluster (lists of subnet ids, e.g. {@link clusterGroups}) with more than one member (see the
 * module doc). Members must be closed subnets; a subnet may be in one cluster only. Nothing is changed.
 */
export function planMerge(layout: MoeLayout, registry: SubnetRegistry, clusters: readonly (readonly number[])[], opts: MergeOptions): MergePlan {
  const where = 'planMerge';
  if (opts.rule !== 'keep-top' && opts.rule !== 'usage-average') throw new Error(`${where}: rule must be 'keep-top' or 'usage-average', got ${JSON.stringify(opts.rule)}`);
  const keep = opts.expertsPerSubnet ?? registry.expertsPerSubnet;
  if (!Number.isInteger(keep) || keep < 1) throw new Error(`${where}: expertsPerSubnet must be a positive integer, got ${keep}`);
  if (opts.rule === 'usage-average' && !opts.tensors) throw new Error(`${where}: rule 'usage-average' needs opts.tensors (the stacked expert parameters)`);
  if (!Array.isArray(clusters)) throw new Error(`${where}: clusters must be an array of subnet id lists`);
  const seen = new Set<number>();
  const groups: MergeGroupPlan[] = [];
  clusters.forEach((c, i) => {
    if (!Array.isArray(c)) throw new Error(`${where}: clusters[${i}] must be an array of subnet ids`);
    for (const id of c) {
      if (seen.has(id)) throw new Error(`${where}: clusters[${i}]: subnet ${id} is listed twice`);
      seen.add(id);
    }
    if (c.length < 2) return;
    const members = [...c].sort((a, b) => a - b);
    const infos = members.map((id) => {
      const info = registry.subnet(id);
      if (info.open) throw new Error(`${where}: clusters[${i}]: subnet ${id} is open; close it before merging`);
      return info;
    });
    const routers = infos.map((s) => s.router);
    const sites: Record<string, MergeSitePlan> = {};
    for (const site of layout.sites) {
      const own = new Set(infos.flatMap((s) => s.experts[site.key] ?? []));
      const ids = layout.experts(site);
      const pooledCols = ids.flatMap((id, col) => (own.has(id) ? [col] : []));
      const counts = routers.map((r) => layout.usage(r, site));
      const usage = pooledCols.map((col) => counts.reduce((a, u) => a + u[col]!, 0));
      const order = pooledCols.map((col, j) => ({ col, n: usage[j]! })).sort((a, b) => b.n - a.n || a.col - b.col);
      const keptCols = new Set(order.slice(0, keep).map((e) => e.col));
      const kept = pooledCols.filter((col) => keptCols.has(col));
      const deleted = pooledCols.filter((col) => !keptCols.has(col));
      let assign: [number, number][] = [];
      if (opts.rule === 'usage-average' && deleted.length > 0) {
        const row = stackRow(opts.tensors!, site, ids.length, `${where}: site ${site.key}`);
        const keptRows = kept.map((col) => row(col));
        assign = deleted.map((col) => {
          const w = row(col);
          let best = 0;
          let bestSim = -Infinity;
          keptRows.forEach((k, j) => {
            const sim = cosine(w, k);
            if (sim > bestSim) [best, bestSim] = [j, sim];
          });
          return [ids[col]!, ids[kept[best]!]!];
        });
      }
      sites[site.key] = { pooled: pooledCols.map((c) => ids[c]!), usage, kept: kept.map((c) => ids[c]!), deleted: deleted.map((c) => ids[c]!), assign };
    }
    const tasks: number[] = [];
    for (const s of infos) for (const t of s.tasks) if (!tasks.includes(t)) tasks.push(t);
    groups.push({ survivor: members[0]!, members, routers: { survivor: routers[0]!, removed: routers.slice(1) }, tasks, sites });
  });
  return { rule: opts.rule, expertsPerSubnet: keep, groups };
}

/** What {@link applyMerge} returns. */
export interface MergeResult {
  /** New values of every given tensor the merge changes (stacked parts and routers, with slots and counters). */
  tensors: Record<string, TensorData>;
  /** Given tensors to delete: the removed routers' gate/noise and their slots/counters. */
  deleted: string[];
  /** The removed routers' gate and noise names at every site (what `ResidentTrainState.remove` takes). */
  deletedParams: string[];
}

function checkPlan(plan: MergePlan, layout: MoeLayout, registry: SubnetRegistry, where: string): void {
  if (typeof plan !== 'object' || plan === null || !Array.isArray(plan.groups)) throw new Error(`${where}: plan must be a MergePlan`);
  if (plan.rule !== 'keep-top' && plan.rule !== 'usage-average') throw new Error(`${where}: plan.rule must be 'keep-top' or 'usage-average', got ${JSON.stringify(plan.rule)}`);
  plan.groups.forEach((g, i) => {
    const f = `${where}: plan.groups[${i}]`;
    const infos = g.members.map((id) => registry.subnet(id));
    if (infos.some((s) => s.open)) throw new Error(`${f}: a member is open`);
    const routers = infos.map((s) => s.router);
    if (g.survivor !== g.members[0] || g.routers.survivor !== routers[0] || JSON.stringify(g.routers.removed) !== JSON.stringify(routers.slice(1))) {
      throw new Error(`${f}: survivor and routers do not match the registry (plan made for another state?)`);
    }
    for (const site of layout.sites) {
      const sp = g.sites[site.key];
      if (!sp) throw new Error(`${f}.sites: no entry for site ${site.key}`);
      const ids = new Set(layout.experts(site));
      for (const id of [...sp.kept, ...sp.deleted]) if (!ids.has(id)) throw new Error(`${f}.sites['${site.key}']: expert ${id} is not in the layout`);
      if (plan.rule === 'usage-average') {
        const kept = new Set(sp.kept);
        if (sp.assign.length !== sp.deleted.length || sp.assign.some(([d, k], j) => d !== sp.deleted[j] || !kept.has(k))) {
          throw new Error(`${f}.sites['${site.key}'].assign: must map each deleted expert, in order, to a kept one`);
        }
      }
    }
  });
}

/**
 * Applies a {@link planMerge} plan: updates `layout` and `registry` and returns the new tensors (from `tensors`,
 * the current state tensors by name; unrelated names are ignored) and the names to delete. Router gates of every
 * member must be given (noise too if any member's is); `usage-average` needs the stacked parameters of the sites
 * where experts are deleted. Everything is checked before anything changes.
 */
export function applyMerge(plan: MergePlan, layout: MoeLayout, registry: SubnetRegistry, tensors: Readonly<Record<string, TensorData>>): MergeResult {
  const where = 'applyMerge';
  checkPlan(plan, layout, registry, where);
  const out: Record<string, TensorData> = {};
  const removedRouters = new Set(plan.groups.flatMap((g) => g.routers.removed));
  const keepCols: Record<string, number[]> = {};
  for (const site of layout.sites) {
    const ids = layout.experts(site);
    const E = ids.length;
    const col = (id: number) => ids.indexOf(id);
    const drop = new Set(plan.groups.flatMap((g) => g.sites[site.key]!.deleted));
    keepCols[site.key] = ids.flatMap((id, c) => (drop.has(id) ? [] : [c]));
    const siteTensors: Record<string, TensorData> = {};
    for (const [name, t] of Object.entries(tensors)) if (moeTensorRole(name)?.site === site.key) siteTensors[name] = t;
    // usage-average: kept rows of the stacked parameters become usage-weighted means
    if (plan.rule === 'usage-average' && drop.size > 0) {
      for (const part of STACK_PARTS) {
        const name = stackedTensorName(site, part);
        const t = siteTensors[name];
        if (!t) throw new Error(`${where}: usage-average needs '${name}'`);
        if ((t.dtype !== 'float32' && t.dtype !== 'float64') || t.dims[0] !== E) throw new Error(`${where}: '${name}' is ${t.dtype} [${t.dims.join(', ')}], expected float rows for the ${E} experts of the site`);
        siteTensors[name] = averageRows(t, plan, site, col);
      }
    }
    // routers: survivors sum their members' gate/noise at full width, then every router loses the deleted columns
    for (const g of plan.groups) {
      for (const which of ['gate', 'noise'] as const) {
        const names = [g.routers.survivor, ...g.routers.removed].map((r) => routerTensorName(site, r, which));
        const have = names.filter((n) => siteTensors[n]);
        if (which === 'gate' && have.length !== names.length) throw new Error(`${where}: missing router tensors ${names.filter((n) => !siteTensors[n]).join(', ')}`);
        if (have.length === 0) continue;
        if (have.length !== names.length) throw new Error(`${where}: ${which} is given for some members only (missing ${names.filter((n) => !siteTensors[n]).join(', ')})`);
        const ts = names.map((n) => siteTensors[n]!);
        for (const [j, t] of ts.entries()) {
          if ((t.dtype !== 'float32' && t.dtype !== 'float64') || t.dims.length !== 2 || t.dims[1] !== E || t.dtype !== ts[0]!.dtype || t.dims[0] !== ts[0]!.dims[0]) {
            throw new Error(`${where}: '${names[j]}' is ${t.dtype} [${t.dims.join(', ')}], expected ${ts[0]!.dtype} [${site.width}, ${E}]`);
          }
        }
        const sum = new Float64Array(ts[0]!.data.length);
        for (const t of ts) (t.data as Floats).forEach((v, i) => (sum[i] = sum[i]! + v));
        const data = allocTyped(ts[0]!.dtype, sum.length) as Floats;
        data.set(sum);
        siteTensors[names[0]!] = { dtype: ts[0]!.dtype, dims: [...ts[0]!.dims], data };
        for (const slot of ['m', 'v', 'buf', 't']) {
          const s = siteTensors[`${names[0]}.${slot}`];
          if (s) siteTensors[`${names[0]}.${slot}`] = { dtype: s.dtype, dims: [...s.dims], data: allocTyped(s.dtype, s.data.length) };
        }
      }
    }
    const live: Record<string, TensorData> = {};
    for (const [name, t] of Object.entries(siteTensors)) {
      const role = moeTensorRole(name)!;
      if (role.kind === 'router' && removedRouters.has(role.router)) continue;
      live[name] = t;
    }
    const shrunk = drop.size > 0 ? shrinkMoeTensors(live, { [site.key]: keepCols[site.key]! }) : live;
    for (const [name, t] of Object.entries(shrunk)) if (drop.size > 0 || t !== tensors[name]) out[name] = t;
  }
  const deleted = Object.keys(tensors).filter((n) => {
    const role = moeTensorRole(n);
    return role?.kind === 'router' && removedRouters.has(role.router) && layout.sites.some((s) => s.key === role.site);
  });
  const deletedParams = [...removedRouters].flatMap((r) => layout.sites.flatMap((s) => [routerTensorName(s, r, 'gate'), routerTensorName(s, r, 'noise')]));

  // layout and registry
  for (const g of plan.groups) {
    for (const site of layout.sites) {
      const sp = g.sites[site.key]!;
      const E = layout.experts(site).length;
      const carried = new Array<number>(E).fill(0);
      for (const r of g.routers.removed) layout.usage(r, site).forEach((n, c) => (carried[c] = carried[c]! + n));
      layout.addUsage(g.routers.survivor, site, carried);
      layout.setAllowed(g.routers.survivor, site, sp.kept);
    }
  }
  for (const site of layout.sites) {
    const drop = plan.groups.flatMap((g) => g.sites[site.key]!.deleted);
    if (drop.length > 0) layout.removeExperts(site, drop);
  }
  for (const g of plan.groups) {
    for (const r of g.routers.removed) layout.removeRouter(r);
    registry.absorb(
      g.survivor,
      g.members.slice(1),
      Object.fromEntries(layout.sites.map((s) => [s.key, g.sites[s.key]!.kept])),
    );
  }
  return { tensors: out, deleted, deletedParams };
}

/** A stacked parameter with each kept row replaced by the usage-weighted mean of itself and its assigned rows. */
function averageRows(t: TensorData, plan: MergePlan, site: MoeSite, col: (id: number) => number): TensorData {
  const size = numel(t.dims.slice(1));
  const src = t.data as Floats;
  const data = src.slice() as Floats;
  for (const g of plan.groups) {
    const sp = g.sites[site.key]!;
    const usageOf = (id: number) => sp.usage[sp.pooled.indexOf(id)] ?? 0;
    for (const k of sp.kept) {
      const members = [k, ...sp.assign.filter(([, into]) => into === k).map(([d]) => d)];
      if (members.length === 1) continue;
      const total = members.reduce((a, id) => a + usageOf(id), 0);
      const w = members.map((id) => (total > 0 ? usageOf(id) / total : 1 / members.length));
      const acc = new Float64Array(size);
      members.forEach((id, j) => {
        const o = col(id) * size;
        for (let i = 0; i < size; i++) acc[i] = acc[i]! + w[j]! * src[o + i]!;
      });
      data.set(acc, col(k) * size);
    }
  }
  return { dtype: t.dtype, dims: [...t.dims], data };
}

/**
 * Merges the DDAS tasks of each merged cluster (`ddas.mergeTasks`): the plan's pooled tasks that DDAS knows go
 * into the survivor's first known task (else the first known one). Returns survivor subnet → that DDAS task, for
 * the clusters with at least one known task.
 */
export async function mergeDdasTasks(ddas: Pick<Ddas, 'mergeTasks' | 'describe'>, plan: MergePlan): Promise<Map<number, number>> {
  const out = new Map<number, number>();
  for (const g of plan.groups) {
    const known = new Set(ddas.describe().tasks);
    const list = g.tasks.filter((t) => known.has(t));
    if (list.length === 0) continue;
    const into = list[0]!;
    if (list.length > 1) await ddas.mergeTasks(list, into);
    out.set(g.survivor, into);
  }
  return out;
}
