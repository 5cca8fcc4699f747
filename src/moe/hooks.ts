/**
 * The MoE-adapter branch of every adapted block as {@link ClipHooks} for `imageEncoder` / `textEncoder`, built
 * from a {@link MoeLayout} and a source of the canonical tensors (graph inputs for what trains, initializers for
 * what is frozen).
 *
 * Modes:
 * - `train` (router r): r's gate (and noise when `noise`) and the experts r may select; noisy gating with ε fed
 *   per site, hidden dropout from a fed seed when `dropout`. Other routers are not in the graph.
 * - `eval` (router r): clean gating of router r; r = −1 builds no branch (plain CLIP).
 * - `eval-per-sample`: every router's gate stacked [R, d, E] and a per-sample router id (−1: no adapters, the
 *   branch output is exactly 0); all experts of each site. For one router it matches `eval` bit for bit.
 *
 * Graph inputs declared here (per site or tower when it is built; the seed at once):
 * - `noise.<tower>.<layer>`: ε ~ N(0, 1), float [B, E_site] (train with noise; columns follow the site's experts);
 * - `dropout_seed`: int64 scalar (train with dropout; draw a new one per step);
 * - `router_index` int64 [B_image] and `router_index_text` int64 [B_text]: router ids (eval-per-sample). Ids are
 *   looked up among `layout.routers`: −1 and removed ids below the largest router id mean no adapters; larger ids
 *   make the run fail (Gather out of range).
 * Per built site the result has a usage tensor: float32 [E_site], the samples that selected each expert (declare it
 * as the output `usage.<tower>.<layer>`, see {@link usageOutputName}, and feed it to `MoeLayout.addUsageFromOutputs`).
 * With `balanceLoss` (train only) the result's `balanceLoss` is the sum over built sites of router.ts `balanceLoss`,
 * taken over the experts the router may select (the reference computes it over all experts and discards it).
 */
import { type Graph, type Tensor, add, describe, dimEq, gather, unsqueeze, where } from '../graph/index.ts';
import type { TensorData } from '../runtime/types.ts';
import type { BlockHook, ClipHooks, Tower, WeightSource } from '../clip/model.ts';
import { type ExpertTensors, type StackedExperts, expertForward, selectedExpertsForward, stackExperts } from './experts.ts';
import { type ExpertPart, type MoeLayout, type MoeSite, expertTensorName, routerTensorName } from './layout.ts';
import { type RouterToken, balanceLoss as gatingBalanceLoss, noisyTopKGating, routerToken, stackedRouterGating, usageCounts } from './router.ts';

/** Which routers the branch uses (see the module doc). */
export type MoeMode =
  | { kind: 'train'; router: number; noise: boolean; dropout: boolean }
  | { kind: 'eval-per-sample' }
  | { kind: 'eval'; router: number };

/** Options of {@link buildMoeHooks}. */
export interface MoeHookOptions {
  /** Graph tensors by canonical name (inputs or initializers), e.g. from {@link moeWeightSource}. */
  source: WeightSource;
  mode: MoeMode;
  /** Experts per sample. */
  topK: number;
  /** Text ids [B, T] int64, needed for the text tower with `textRouterToken: 'eot'`. */
  textIds?: Tensor;
  /** Default 'eot'. */
  textRouterToken?: RouterToken;
  /** Build the load-balancing loss (train mode only; off by default as in the reference). */
  balanceLoss?: boolean;
  /**
   * Read each site's experts from four stacked tensors ({@link stackedTensorName}) instead of four tensors per
   * expert: far fewer graph nodes and optimiser updates (frozen experts are then masked rows, see
   * `buildTrainStep`'s `rowMasks`). Default false.
   */
  stacked?: boolean;
}

/** Parts of a site's stacked experts, in {@link StackedExperts} layout: [E,d,bn], [E,1,bn], [E,bn,d], [E,1,d]. */
export const STACK_PARTS = ['down', 'downBias', 'up', 'upBias'] as const;
export type StackPart = (typeof STACK_PARTS)[number];

/** `moe.<tower>.<layer>.stack.<part>`. */
export function stackedTensorName(site: MoeSite | string, part: StackPart): string {
  return `moe.${typeof site === 'string' ? site : site.key}.stack.${part}`;
}

/** Shape of a stacked part for E experts of width d and bottleneck bn. */
export function stackedShape(part: StackPart, E: number, d: number, bn: number): number[] {
  return part === 'down' ? [E, d, bn] : part === 'downBias' ? [E, 1, bn] : part === 'up' ? [E, bn, d] : [E, 1, d];
}

/**
 * One expert's rows in the stacked layout (down/up weights transposed), from its per-expert tensors
 * (`expertTensorName` layout) in `tensors`; the arrays keep the tensors' float type.
 */
export function expertStackRows(site: MoeSite, id: number, bn: number, tensors: Readonly<Record<string, TensorData>>): Record<StackPart, Float32Array | Float64Array> {
  const get = (part: ExpertPart) => {
    const t = tensors[expertTensorName(site, id, part)];
    if (!t) throw new Error(`expertStackRows: missing ${expertTensorName(site, id, part)}`);
    return t.data as Float32Array | Float64Array;
  };
  const d = site.width;
  const dw = get('down.weight'); // [bn, d]
  const uw = get('up.weight'); // [d, bn]
  const A = dw instanceof Float64Array ? Float64Array : Float32Array;
  const down = new A(d * bn);
  const up = new A(bn * d);
  for (let i = 0; i < bn; i++) for (let j = 0; j < d; j++) down[j * bn + i] = dw[i * d + j]!;
  for (let i = 0; i < d; i++) for (let j = 0; j < bn; j++) up[j * d + i] = uw[i * bn + j]!;
  return { down, downBias: A.from(get('down.bias')), up, upBias: A.from(get('up.bias')) };
}

/** The stacked float32 tensors of a site from per-expert tensors, experts in column order (row e = expert e). */
export function stackExpertData(layout: MoeLayout, site: MoeSite, tensors: Readonly<Record<string, TensorData>>): Record<string, TensorData> {
  const ids = layout.experts(site);
  const bn = layout.bottleneck;
  const rows = ids.map((id) => expertStackRows(site, id, bn, tensors));
  const out: Record<string, TensorData> = {};
  for (const part of STACK_PARTS) {
    const dims = stackedShape(part, ids.length, site.width, bn);
    const data = new Float32Array(dims.reduce((a, b) => a * b, 1));
    const per = data.length / Math.max(1, ids.length);
    rows.forEach((r, e) => data.set(r[part], e * per));
    out[stackedTensorName(site, part)] = { dtype: 'float32', dims, data };
  }
  return out;
}

/** Graph inputs declared by the hooks (filled as the towers are built). */
export interface MoeHookInputs {
  /** Site key → `noise.<key>`. */
  noise: Record<string, Tensor>;
  /** `dropout_seed`. */
  seed?: Tensor;
  /** `router_index` (image tower). */
  router?: Tensor;
  /** `router_index_text` (text tower). */
  routerText?: Tensor;
}

/** What {@link buildMoeHooks} returns. `inputs`, `usage`, `balanceLoss` and `sites` fill in as the towers are built. */
export interface MoeHookResult {
  hooks: ClipHooks;
  inputs: MoeHookInputs;
  /** Site key → usage counts float32 [E_site]. */
  usage: Record<string, Tensor>;
  /** Σ over built sites of the load-balancing loss (scalar), or null when off or nothing was built. */
  readonly balanceLoss: Tensor | null;
  /** Keys of the sites built so far. */
  readonly sites: readonly string[];
}

export const DROPOUT_SEED_INPUT = 'dropout_seed';
export const ROUTER_INDEX_INPUT: Readonly<Record<Tower, string>> = { image: 'router_index', text: 'router_index_text' };

/** `noise.<tower>.<layer>` */
export function noiseInputName(site: MoeSite | string): string {
  return `noise.${typeof site === 'string' ? site : site.key}`;
}

/** Dropout salt of a site (distinct masks per site for one seed). */
export function siteSalt(site: MoeSite): number {
  return (site.tower === 'image' ? 0 : 1) * 4096 + site.layer;
}

function tensorFrom(source: WeightSource, name: string, dtype: string, shape: readonly number[]): Tensor {
  const t = source(name);
  if (t.dtype !== dtype || t.shape.length !== shape.length || !t.shape.every((d, i) => dimEq(d, shape[i]!))) {
    throw new Error(`buildMoeHooks: tensor '${name}' must be ${dtype}[${shape.join(',')}], got ${describe(t)}`);
  }
  return t;
}

function expertFrom(source: WeightSource, site: MoeSite, id: number, bn: number, dtype: string): ExpertTensors {
  const d = site.width;
  return {
    downWeight: tensorFrom(source, expertTensorName(site, id, 'down.weight'), dtype, [bn, d]),
    downBias: tensorFrom(source, expertTensorName(site, id, 'down.bias'), dtype, [bn]),
    upWeight: tensorFrom(source, expertTensorName(site, id, 'up.weight'), dtype, [d, bn]),
    upBias: tensorFrom(source, expertTensorName(site, id, 'up.bias'), dtype, [d]),
  };
}

function stackedFrom(source: WeightSource, site: MoeSite, E: number, bn: number, dtype: string, rows: readonly number[] | null): StackedExperts {
  const t = (part: StackPart) => tensorFrom(source, stackedTensorName(site, part), dtype, stackedShape(part, E, site.width, bn));
  const pick = (x: Tensor) => (rows && rows.length < E ? gather(x, x.graph.constant([...rows], 'int64', [rows.length]), 0) : x);
  const n = rows ? rows.length : E;
  return { down: pick(t('down')), downBias: pick(t('downBias')), up: pick(t('up')), upBias: pick(t('upBias')), count: n, width: site.width, bottleneck: bn };
}

function checkBlockInput(x: Tensor, site: MoeSite): void {
  if (x.shape.length !== 3 || !dimEq(x.shape[2]!, site.width)) throw new Error(`buildMoeHooks: site ${site.key} has width ${site.width}, block input is ${describe(x)}`);
}

/** The MoE branch hooks (see the module doc). */
export function buildMoeHooks(g: Graph, layout: MoeLayout, opts: MoeHookOptions): MoeHookResult {
  const { mode, source } = opts;
  const k = opts.topK;
  if (!Number.isInteger(k) || k < 1) throw new Error(`buildMoeHooks: topK must be a positive integer, got ${k}`);
  const token = opts.textRouterToken ?? 'eot';
  if (token !== 'eot' && token !== 'sot') throw new Error(`buildMoeHooks: textRouterToken must be 'eot' or 'sot', got ${JSON.stringify(token)}`);
  if (opts.balanceLoss && mode.kind !== 'train') throw new Error(`buildMoeHooks: balanceLoss needs mode 'train', got '${mode.kind}'`);
  const routers = layout.routers;
  if (mode.kind === 'train' && !routers.includes(mode.router)) throw new Error(`buildMoeHooks: mode.router ${mode.router} is not a router of the layout (have: ${routers.join(', ') || 'none'})`);
  if (mode.kind === 'eval' && mode.router !== -1 && !routers.includes(mode.router)) {
    throw new Error(`buildMoeHooks: mode.router ${mode.router} is not a router of the layout (have: ${routers.join(', ') || 'none'}; −1: no adapters)`);
  }
  if (mode.kind === 'eval-per-sample' && routers.length === 0) throw new Error("buildMoeHooks: mode 'eval-per-sample' needs at least one router");
  // every site is checked up front, so a bad topK fails before any tower is built
  const plain = mode.kind === 'eval' && mode.router === -1;
  for (const site of plain ? [] : layout.sites) {
    const E = layout.experts(site).length;
    if (E === 0) throw new Error(`buildMoeHooks: site ${site.key} has no experts`);
    const check = (r: number) => {
      const n = layout.allowedExperts(r, site).length;
      if (k > n) throw new Error(`buildMoeHooks: topK=${k} exceeds the ${n} experts router ${r} may select at site ${site.key}`);
    };
    if (mode.kind === 'eval-per-sample') routers.forEach(check);
    else check(mode.router);
  }

  const inputs: MoeHookInputs = { noise: {} };
  const usage: Record<string, Tensor> = {};
  const losses: Tensor[] = [];
  const built: string[] = [];
  const train = mode.kind === 'train' ? mode : null;
  if (train?.dropout) inputs.seed = g.input(DROPOUT_SEED_INPUT, 'int64', []);
  const positions: Partial<Record<Tower, Tensor>> = {};

  /** Router ids → positions in `layout.routers` (−1: none) for one tower, from its index input. */
  const routerPositions = (tower: Tower, batch: Tensor): Tensor => {
    const hit = positions[tower];
    if (hit) return hit;
    const ids = g.input(ROUTER_INDEX_INPUT[tower], 'int64', [batch.shape[0]!]);
    if (tower === 'image') inputs.router = ids;
    else inputs.routerText = ids;
    const table = new Array<number>(Math.max(...routers) + 2).fill(-1);
    routers.forEach((r, p) => (table[r + 1] = p));
    const pos = gather(g.constant(table, 'int64', [table.length]), add(ids, g.constant(1, 'int64')), 0);
    positions[tower] = pos;
    return pos;
  };

  const block: BlockHook = ({ g: gg, tower, layer, x }) => {
    if (gg !== g) throw new Error('buildMoeHooks: the hooks belong to another graph');
    const site = layout.site(tower, layer);
    if (!site) return null;
    if (plain) return null;
    if (built.includes(site.key)) throw new Error(`buildMoeHooks: site ${site.key} is built twice (one buildMoeHooks per tower call)`);
    checkBlockInput(x, site);
    built.push(site.key);
    const dtype = x.dtype;
    const E = layout.experts(site).length;
    const bn = layout.bottleneck;
    const what = `moe site ${site.key}`;
    const t = g.scope('router_token', () => routerToken(x, tower, { textIds: opts.textIds, token }));
    if (mode.kind === 'eval-per-sample') {
      const gatesW = routers.map((r) => tensorFrom(source, routerTensorName(site, r, 'gate'), dtype, [site.width, E]));
      const allowed = routers.map((r) => {
        if (layout.allowsAll(r, site)) return null;
        const cols = new Set(layout.allowedColumns(r, site));
        return Array.from({ length: E }, (_, c) => cols.has(c));
      });
      const pos = routerPositions(tower, x);
      const gating = g.scope('router', () => stackedRouterGating(t, gatesW, pos, { k, allowed, what }));
      const stack = opts.stacked
        ? stackedFrom(source, site, E, bn, dtype, null)
        : stackExperts(
            layout.experts(site).map((id) => expertFrom(source, site, id, bn, dtype)),
            site.width,
          );
      const y = selectedExpertsForward(x, stack, gating.indices, gating.gates, null);
      usage[site.key] = usageCounts(gating.indices, E, { valid: gating.valid });
      return where(unsqueeze(gating.valid, [1, 2]), y, 0);
    }
    const r = mode.router;
    const ids = layout.allowedExperts(r, site);
    const cols = layout.allowedColumns(r, site);
    const gate = tensorFrom(source, routerTensorName(site, r, 'gate'), dtype, [site.width, E]);
    let noise: { weight: Tensor; eps: Tensor } | null = null;
    if (train?.noise) {
      const weight = tensorFrom(source, routerTensorName(site, r, 'noise'), dtype, [site.width, E]);
      const eps = g.input(noiseInputName(site), dtype, [x.shape[0]!, E]);
      inputs.noise[site.key] = eps;
      noise = { weight, eps };
    }
    const columns = cols.length < E ? cols : null;
    const gating = g.scope('router', () => noisyTopKGating(t, gate, { k, noise, columns, batched: !train, what }));
    const stack = opts.stacked
      ? stackedFrom(source, site, E, bn, dtype, columns)
      : stackExperts(
          ids.map((id) => expertFrom(source, site, id, bn, dtype)),
          site.width,
        );
    const dropout = inputs.seed ? { seed: inputs.seed, salt: siteSalt(site) } : null;
    const y = selectedExpertsForward(x, stack, gating.indices, gating.gates, dropout);
    usage[site.key] = usageCounts(gating.indices, E, { columns });
    if (opts.balanceLoss) losses.push(gatingBalanceLoss(gating));
    return y;
  };

  let lossCache: { n: number; t: Tensor | null } = { n: 0, t: null };
  return {
    hooks: { block },
    inputs,
    usage,
    get balanceLoss(): Tensor | null {
      if (!opts.balanceLoss || losses.length === 0) return null;
      if (lossCache.n !== losses.length) lossCache = { n: losses.length, t: losses.reduce((a, b) => add(a, b)) };
      return lossCache.t;
    },
    get sites(): readonly string[] {
      return [...built];
    },
  };
}

/**
 * The dense adapter baseline: per site its single expert with gate 1 (the same expert code as the MoE branch),
 * hidden dropout from the `dropout_seed` input when `dropout`. Every site must have exactly one expert.
 */
export function buildAdapterHooks(g: Graph, layout: MoeLayout, opts: { source: WeightSource; dropout?: boolean }): { hooks: ClipHooks; inputs: { seed?: Tensor } } {
  for (const site of layout.sites) {
    const n = layout.experts(site).length;
    if (n !== 1) throw new Error(`buildAdapterHooks: site ${site.key} has ${n} experts, the adapter baseline needs exactly 1`);
  }
  const seed = opts.dropout ? g.input(DROPOUT_SEED_INPUT, 'int64', []) : undefined;
  const built = new Set<string>();
  const block: BlockHook = ({ g: gg, tower, layer, x }) => {
    if (gg !== g) throw new Error('buildAdapterHooks: the hooks belong to another graph');
    const site = layout.site(tower, layer);
    if (!site) return null;
    if (built.has(site.key)) throw new Error(`buildAdapterHooks: site ${site.key} is built twice`);
    built.add(site.key);
    checkBlockInput(x, site);
    const e = expertFrom(opts.source, site, layout.experts(site)[0]!, layout.bottleneck, x.dtype);
    return expertForward(x, e, seed ? { seed, salt: siteSalt(site) } : null);
  };
  return { hooks: { block }, inputs: seed ? { seed } : {} };
}

/** A weight source that also reports the tensors it declared as graph inputs. */
export type MoeWeightSource = WeightSource & { readonly trainable: Map<string, Tensor> };

/**
 * A {@link WeightSource} over MoE tensors: each name becomes, on first use, a graph input (when `trainable(name)`)
 * or an initializer, named as the tensor, in `dtype` (default: the data's float type). Unknown names throw.
 */
export function moeWeightSource(
  g: Graph,
  tensors: ReadonlyMap<string, TensorData> | Readonly<Record<string, TensorData>>,
  opts: { dtype?: 'float32' | 'float64'; trainable?: (name: string) => boolean } = {},
): MoeWeightSource {
  const get = (name: string): TensorData | undefined => (tensors instanceof Map ? tensors.get(name) : (tensors as Record<string, TensorData>)[name]);
  const made = new Map<string, Tensor>();
  const trainable = new Map<string, Tensor>();
  const src = (name: string): Tensor => {
    const hit = made.get(name);
    if (hit) return hit;
    const w = get(name);
    if (!w) throw new Error(`moeWeightSource: no tensor named '${name}'`);
    if (w.dtype !== 'float32' && w.dtype !== 'float64') throw new Error(`moeWeightSource: tensor '${name}' must be float, got ${w.dtype}`);
    const dtype = opts.dtype ?? w.dtype;
    let t: Tensor;
    if (opts.trainable?.(name)) {
      t = g.input(name, dtype, [...w.dims]);
      trainable.set(name, t);
    } else {
      const data = w.dtype === dtype ? (w.data as Float32Array | Float64Array) : dtype === 'float32' ? Float32Array.from(w.data as Float64Array) : Float64Array.from(w.data as Float32Array);
      t = g.param(name, data, [...w.dims]);
    }
    made.set(name, t);
    return t;
  };
  return Object.assign(src, { trainable });
}
