/**
 * Where the MoE adapters are and what state they are in: sites, experts, routers, routing masks, frozen experts
 * and usage counters (pure TypeScript; the graphs are built by hooks.ts from this).
 *
 * - A site is one residual block of one tower: (tower, layer, width). Sites come from a config: `towers` and
 *   `blocks` ('all' | { last: n } | layer indices), the same selection in each tower.
 * - Each site has an ordered list of experts with stable integer ids (never reused at that site); router columns
 *   follow that order. Routers are shared by all sites and have stable ids too.
 * - Canonical tensor names: `moe.<tower>.<layer>.e<id>.down.weight` [bn, d], `.down.bias` [bn], `.up.weight`
 *   [d, bn], `.up.bias` [d]; `moe.<tower>.<layer>.r<id>.gate` and `.noise` [d, E_site].
 * - Per router and site an allowed list (default: every expert, including ones added later) says which experts it
 *   may select (CM-MoE restricts a subnet to its own experts). Frozen experts stay routable but are not trained;
 *   each records the router that froze it.
 * - Usage counters count, per (router, site, expert), the samples that selected the expert (from the graphs'
 *   `usage.<tower>.<layer>` outputs); {@link MoeLayout.freezeTopUsed} implements activate-freeze from them.
 */
import type { TensorData } from '../runtime/types.ts';
import type { Rng } from '../util/rng.ts';
import type { Tower } from '../clip/model.ts';

/** A tower with adapters (the CLIP tower names). */
export type MoeTower = Tower;

/** One adapted block. `key` is `<tower>.<layer>`. */
export interface MoeSite {
  readonly tower: MoeTower;
  readonly layer: number;
  readonly width: number;
  readonly key: string;
}

/** Which blocks of each tower get adapters. */
export type BlockSelection = 'all' | { last: number } | readonly number[];

/** Depth and width of a tower. */
export interface TowerShape {
  layers: number;
  width: number;
}

/** Options of {@link MoeLayout.forClip}. */
export interface MoeLayoutOptions {
  /** Default both. */
  towers?: readonly MoeTower[];
  /** Default 'all'. */
  blocks?: BlockSelection;
  /** Experts per site at creation (default 0). */
  experts?: number;
  /** Routers at creation (default 0). */
  routers?: number;
  /** Hidden size of every expert (default 64). */
  bottleneck?: number;
}

/** The four tensors of an expert, by name suffix. */
export const EXPERT_PARTS = ['down.weight', 'down.bias', 'up.weight', 'up.bias'] as const;
export type ExpertPart = (typeof EXPERT_PARTS)[number];

/** `<tower>.<layer>` */
export function siteKey(tower: MoeTower, layer: number): string {
  return `${tower}.${layer}`;
}

function keyOf(site: MoeSite | string): string {
  return typeof site === 'string' ? site : site.key;
}

/** `moe.<tower>.<layer>.e<id>.<part>` */
export function expertTensorName(site: MoeSite | string, id: number, part: ExpertPart): string {
  return `moe.${keyOf(site)}.e${id}.${part}`;
}

/** `moe.<tower>.<layer>.r<id>.<gate|noise>` */
export function routerTensorName(site: MoeSite | string, router: number, kind: 'gate' | 'noise'): string {
  return `moe.${keyOf(site)}.r${router}.${kind}`;
}

/** Name of a graph output holding a site's usage counts [E]: `usage.<tower>.<layer>`. */
export function usageOutputName(site: MoeSite | string): string {
  return `usage.${keyOf(site)}`;
}

/** Serialised {@link MoeLayout}. */
export interface MoeLayoutJSON {
  format: 'moeclip.moe-layout';
  version: 1;
  bottleneck: number;
  sites: { tower: MoeTower; layer: number; width: number; experts: number[]; nextExpert: number; frozen: [number, number | null][] }[];
  routers: { id: number; allowed: Record<string, number[]>; usage: Record<string, [number, number][]> }[];
  nextRouter: number;
}

interface SiteState {
  site: MoeSite;
  experts: number[];
  nextExpert: number;
  /** frozen expert id → router that froze it (null: frozen directly). */
  frozen: Map<number, number | null>;
}

interface RouterState {
  id: number;
  /** site key → allowed expert ids; absent: every expert. */
  allowed: Map<string, number[]>;
  /** site key → expert id → samples. */
  usage: Map<string, Map<number, number>>;
}

function checkCount(v: unknown, field: string, min = 0): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min) throw new Error(`MoeLayout: ${field} must be an integer >= ${min}, got ${JSON.stringify(v)}`);
  return v;
}

/** The layers of a tower with `layers` blocks chosen by `blocks` (errors name the field). */
export function selectBlocks(blocks: BlockSelection, layers: number, tower: MoeTower): number[] {
  if (blocks === 'all') return Array.from({ length: layers }, (_, i) => i);
  if (Array.isArray(blocks)) {
    const list = blocks as readonly number[];
    const seen = new Set<number>();
    list.forEach((l, i) => {
      if (!Number.isInteger(l) || l < 0 || l >= layers) throw new Error(`MoeLayout: blocks[${i}]: layer ${l} is out of range for the ${tower} tower (${layers} layers)`);
      if (seen.has(l)) throw new Error(`MoeLayout: blocks[${i}]: layer ${l} is listed twice`);
      seen.add(l);
    });
    return [...list].sort((a, b) => a - b);
  }
  if (typeof blocks === 'object' && blocks !== null && 'last' in blocks) {
    const n = blocks.last;
    if (!Number.isInteger(n) || n < 1 || n > layers) throw new Error(`MoeLayout: blocks.last must be an integer in 1..${layers} for the ${tower} tower, got ${n}`);
    return Array.from({ length: n }, (_, i) => layers - n + i);
  }
  throw new Error(`MoeLayout: blocks must be 'all', { last: n } or a list of layer indices, got ${JSON.stringify(blocks)}`);
}

/** Sites, experts, routers, masks, frozen experts and usage of an MoE-adapter model (see the module doc). */
export class MoeLayout {
  readonly bottleneck: number;
  private readonly siteStates: SiteState[];
  private readonly byKey: Map<string, SiteState>;
  private routerStates: RouterState[] = [];
  private nextRouter = 0;

  private constructor(sites: MoeSite[], bottleneck: number) {
    this.bottleneck = bottleneck;
    this.siteStates = sites.map((site) => ({ site, experts: [], nextExpert: 0, frozen: new Map() }));
    this.byKey = new Map(this.siteStates.map((s) => [s.site.key, s]));
  }

  /** A layout for a CLIP config (anything with `vision` and `text` layers/width). */
  static forClip(cfg: { vision: TowerShape; text: TowerShape }, opts: MoeLayoutOptions = {}): MoeLayout {
    const towers = opts.towers ?? ['image', 'text'];
    if (!Array.isArray(towers) || towers.length === 0) throw new Error('MoeLayout: towers must list image and/or text');
    const sites: MoeSite[] = [];
    towers.forEach((tower, i) => {
      if (tower !== 'image' && tower !== 'text') throw new Error(`MoeLayout: towers[${i}] must be 'image' or 'text', got ${JSON.stringify(tower)}`);
      if (towers.indexOf(tower) !== i) throw new Error(`MoeLayout: towers[${i}]: '${tower}' is listed twice`);
      const shape = tower === 'image' ? cfg.vision : cfg.text;
      for (const layer of selectBlocks(opts.blocks ?? 'all', shape.layers, tower)) {
        sites.push({ tower, layer, width: shape.width, key: siteKey(tower, layer) });
      }
    });
    const layout = new MoeLayout(sites, checkCount(opts.bottleneck ?? 64, 'bottleneck', 1));
    const experts = checkCount(opts.experts ?? 0, 'experts');
    const routers = checkCount(opts.routers ?? 0, 'routers');
    for (const s of layout.sites) layout.addExperts(s, experts);
    for (let r = 0; r < routers; r++) layout.addRouter();
    return layout;
  }

  // -- sites and experts --------------------------------------------------------------------------------------

  /** Every site, towers in config order, layers ascending. */
  get sites(): readonly MoeSite[] {
    return this.siteStates.map((s) => s.site);
  }

  /** The site of (tower, layer), or undefined if that block has no adapters. */
  site(tower: MoeTower, layer: number): MoeSite | undefined {
    return this.byKey.get(siteKey(tower, layer))?.site;
  }

  private state(site: MoeSite | string): SiteState {
    const s = this.byKey.get(keyOf(site));
    if (!s) throw new Error(`MoeLayout: no site '${keyOf(site)}' (have: ${[...this.byKey.keys()].join(', ')})`);
    return s;
  }

  /** Expert ids of a site in router-column order. */
  experts(site: MoeSite | string): number[] {
    return [...this.state(site).experts];
  }

  /** Router column of expert `id` at `site`. */
  column(site: MoeSite | string, id: number): number {
    const c = this.state(site).experts.indexOf(id);
    if (c < 0) throw new Error(`MoeLayout: site ${keyOf(site)} has no expert ${id}`);
    return c;
  }

  /** Appends `n` new experts to a site; returns their ids. Routers with an explicit allowed list do not get them. */
  addExperts(site: MoeSite | string, n: number): number[] {
    const s = this.state(site);
    checkCount(n, 'addExperts n');
    const ids = Array.from({ length: n }, () => s.nextExpert++);
    s.experts.push(...ids);
    return ids;
  }

  /**
   * Removes experts from a site (and from every allowed list, the frozen set and the usage counters). Returns the
   * router columns to keep, ascending: pass them to {@link shrinkRouterTensor} for each router tensor of the site.
   */
  removeExperts(site: MoeSite | string, ids: readonly number[]): number[] {
    const s = this.state(site);
    for (const id of ids) if (!s.experts.includes(id)) throw new Error(`MoeLayout.removeExperts: site ${s.site.key} has no expert ${id}`);
    const drop = new Set(ids);
    const keep = s.experts.flatMap((id, c) => (drop.has(id) ? [] : [c]));
    s.experts = s.experts.filter((id) => !drop.has(id));
    for (const id of drop) s.frozen.delete(id);
    for (const r of this.routerStates) {
      const a = r.allowed.get(s.site.key);
      if (a) r.allowed.set(s.site.key, a.filter((id) => !drop.has(id)));
      const u = r.usage.get(s.site.key);
      if (u) for (const id of drop) u.delete(id);
    }
    return keep;
  }

  // -- routers -----------------------------------------------------------------------------------------------

  /** Router ids in creation order. */
  get routers(): number[] {
    return this.routerStates.map((r) => r.id);
  }

  private router(id: number): RouterState {
    const r = this.routerStates.find((x) => x.id === id);
    if (!r) throw new Error(`MoeLayout: no router ${id} (have: ${this.routers.join(', ') || 'none'})`);
    return r;
  }

  /** Adds a router (allowed everywhere to every expert); returns its id. */
  addRouter(): number {
    const id = this.nextRouter++;
    this.routerStates.push({ id, allowed: new Map(), usage: new Map() });
    return id;
  }

  /** Removes a router (its tensors are the caller's to drop). Experts it froze stay frozen. */
  removeRouter(id: number): void {
    this.router(id);
    this.routerStates = this.routerStates.filter((r) => r.id !== id);
  }

  /** Restricts what `router` may select at `site` to `ids` (null: every expert, also future ones). */
  setAllowed(router: number, site: MoeSite | string, ids: readonly number[] | null): void {
    const r = this.router(router);
    const s = this.state(site);
    if (ids === null) {
      r.allowed.delete(s.site.key);
      return;
    }
    for (const id of ids) if (!s.experts.includes(id)) throw new Error(`MoeLayout.setAllowed: site ${s.site.key} has no expert ${id}`);
    const set = new Set(ids);
    r.allowed.set(s.site.key, s.experts.filter((id) => set.has(id)));
  }

  /** Expert ids `router` may select at `site`, in column order. */
  allowedExperts(router: number, site: MoeSite | string): number[] {
    const s = this.state(site);
    return [...(this.router(router).allowed.get(s.site.key) ?? s.experts)];
  }

  /** True if `router` has no restriction at `site` (it may select every expert). */
  allowsAll(router: number, site: MoeSite | string): boolean {
    return !this.router(router).allowed.has(this.state(site).site.key);
  }

  /** The router columns `router` may select at `site`, ascending. */
  allowedColumns(router: number, site: MoeSite | string): number[] {
    const s = this.state(site);
    const a = new Set(this.allowedExperts(router, site));
    return s.experts.flatMap((id, c) => (a.has(id) ? [c] : []));
  }

  // -- freezing ----------------------------------------------------------------------------------------------

  /** Frozen expert ids of a site, in column order. */
  frozen(site: MoeSite | string): number[] {
    const s = this.state(site);
    return s.experts.filter((id) => s.frozen.has(id));
  }

  isFrozen(site: MoeSite | string, id: number): boolean {
    return this.state(site).frozen.has(id);
  }

  /** The router whose activate-freeze froze expert `id` (null if frozen directly, undefined if not frozen). */
  frozenBy(site: MoeSite | string, id: number): number | null | undefined {
    return this.state(site).frozen.get(id);
  }

  /** Freezes experts (already frozen ones keep their record). */
  freeze(site: MoeSite | string, ids: readonly number[], by: number | null = null): void {
    const s = this.state(site);
    for (const id of ids) if (!s.experts.includes(id)) throw new Error(`MoeLayout.freeze: site ${s.site.key} has no expert ${id}`);
    for (const id of ids) if (!s.frozen.has(id)) s.frozen.set(id, by);
  }

  /**
   * Unfreezes `ids` at `site` (each must be frozen) and returns their freeze records (id → the router that froze
   * it, or null), so that `freeze(site, [id], by)` restores each exactly. CM-MoE thaws a merged subnet's kept
   * experts for its fine-tuning (`finetuneExperts`).
   */
  unfreeze(site: MoeSite | string, ids: readonly number[]): Map<number, number | null> {
    const s = this.state(site);
    for (const id of ids) if (!s.frozen.has(id)) throw new Error(`MoeLayout.unfreeze: expert ${id} of site ${s.site.key} is not frozen`);
    const out = new Map<number, number | null>();
    for (const id of ids) {
      out.set(id, s.frozen.get(id)!);
      s.frozen.delete(id);
    }
    return out;
  }

  /**
   * Activate-freeze: per site, the `k` experts with the highest usage counts of `router` (ties: lower column first)
   * are frozen. As the reference, already frozen experts compete too (so fewer than k may be newly frozen); with
   * `maskFrozen` (CM-MoE) only unfrozen experts are candidates (fewer than k are taken when fewer remain).
   * Returns the selected ids per site key.
   */
  freezeTopUsed(router: number, k: number, opts: { maskFrozen?: boolean } = {}): Record<string, number[]> {
    this.router(router);
    if (!Number.isInteger(k) || k < 1) throw new Error(`MoeLayout.freezeTopUsed: k must be a positive integer, got ${k}`);
    for (const s of this.siteStates) {
      if (k > s.experts.length) throw new Error(`MoeLayout.freezeTopUsed: k=${k} exceeds the ${s.experts.length} experts of site ${s.site.key}`);
    }
    const out: Record<string, number[]> = {};
    for (const s of this.siteStates) {
      const counts = this.usage(router, s.site);
      const cand = s.experts.map((id, c) => ({ id, c, n: counts[c]! })).filter((e) => !opts.maskFrozen || !s.frozen.has(e.id));
      cand.sort((a, b) => b.n - a.n || a.c - b.c);
      const pick = cand.slice(0, k).map((e) => e.id);
      this.freeze(s.site, pick, router);
      out[s.site.key] = pick;
    }
    return out;
  }

  /** Per site key: the experts `router` may select that are not frozen (the ones its training updates). */
  trainableExperts(router: number): Record<string, number[]> {
    const out: Record<string, number[]> = {};
    for (const s of this.siteStates) out[s.site.key] = this.allowedExperts(router, s.site).filter((id) => !s.frozen.has(id));
    return out;
  }

  /**
   * Canonical names of what training `router` updates: its trainable experts' tensors and its gate (and noise,
   * unless `noise: false`) at every site.
   */
  trainableTensorNames(router: number, opts: { noise?: boolean } = {}): string[] {
    const names: string[] = [];
    const tr = this.trainableExperts(router);
    for (const s of this.siteStates) {
      for (const id of tr[s.site.key]!) for (const p of EXPERT_PARTS) names.push(expertTensorName(s.site, id, p));
      names.push(routerTensorName(s.site, router, 'gate'));
      if (opts.noise !== false) names.push(routerTensorName(s.site, router, 'noise'));
    }
    return names;
  }

  // -- usage -------------------------------------------------------------------------------------------------

  /** Usage counts of `router` at `site` in column order. */
  usage(router: number, site: MoeSite | string): number[] {
    const s = this.state(site);
    const u = this.router(router).usage.get(s.site.key);
    return s.experts.map((id) => u?.get(id) ?? 0);
  }

  /** Adds counts (one per column, as a graph's usage output) to `router`'s counters at `site`. */
  addUsage(router: number, site: MoeSite | string, counts: ArrayLike<number | bigint>): void {
    const s = this.state(site);
    const r = this.router(router);
    if (counts.length !== s.experts.length) throw new Error(`MoeLayout.addUsage: site ${s.site.key} has ${s.experts.length} experts, got ${counts.length} counts`);
    let u = r.usage.get(s.site.key);
    if (!u) r.usage.set(s.site.key, (u = new Map()));
    s.experts.forEach((id, c) => {
      const v = Number(counts[c]);
      if (!Number.isFinite(v) || v < 0) throw new Error(`MoeLayout.addUsage: count ${c} of site ${s.site.key} is ${v}`);
      u.set(id, (u.get(id) ?? 0) + v);
    });
  }

  /** Adds every `usage.<tower>.<layer>` output present in `outputs` to `router`'s counters; returns the sites read. */
  addUsageFromOutputs(router: number, outputs: Readonly<Record<string, TensorData>>): string[] {
    const read: string[] = [];
    for (const s of this.siteStates) {
      const t = outputs[usageOutputName(s.site)];
      if (!t) continue;
      this.addUsage(router, s.site, t.data as ArrayLike<number | bigint>);
      read.push(s.site.key);
    }
    return read;
  }

  /** Clears the usage counters of one router (or of all). */
  resetUsage(router?: number): void {
    for (const r of router === undefined ? this.routerStates : [this.router(router)]) r.usage.clear();
  }

  // -- tensors -----------------------------------------------------------------------------------------------

  /** Shape of every canonical tensor (experts, then routers' gate and noise), by name. */
  tensorShapes(): Map<string, number[]> {
    const out = new Map<string, number[]>();
    const bn = this.bottleneck;
    for (const s of this.siteStates) {
      const d = s.site.width;
      for (const id of s.experts) {
        out.set(expertTensorName(s.site, id, 'down.weight'), [bn, d]);
        out.set(expertTensorName(s.site, id, 'down.bias'), [bn]);
        out.set(expertTensorName(s.site, id, 'up.weight'), [d, bn]);
        out.set(expertTensorName(s.site, id, 'up.bias'), [d]);
      }
    }
    for (const r of this.routerStates) {
      for (const s of this.siteStates) {
        out.set(routerTensorName(s.site, r.id, 'gate'), [s.site.width, s.experts.length]);
        out.set(routerTensorName(s.site, r.id, 'noise'), [s.site.width, s.experts.length]);
      }
    }
    return out;
  }

  /**
   * Initial tensors of one expert: down weight U(−1/√d, 1/√d) (PyTorch's Linear default, kaiming-uniform a = √5)
   * drawn row-major from `rng`, down bias, up weight and up bias 0 (the expert outputs exactly 0).
   */
  initExpert(site: MoeSite | string, id: number, rng: Rng, dtype: 'float32' | 'float64' = 'float32'): Record<string, TensorData> {
    const s = this.state(site);
    this.column(site, id);
    const d = s.site.width;
    const bn = this.bottleneck;
    const A = dtype === 'float32' ? Float32Array : Float64Array;
    const bound = 1 / Math.sqrt(d);
    const down = new A(bn * d);
    for (let i = 0; i < down.length; i++) down[i] = rng.uniform(-bound, bound);
    return {
      [expertTensorName(s.site, id, 'down.weight')]: { dtype, dims: [bn, d], data: down },
      [expertTensorName(s.site, id, 'down.bias')]: { dtype, dims: [bn], data: new A(bn) },
      [expertTensorName(s.site, id, 'up.weight')]: { dtype, dims: [d, bn], data: new A(d * bn) },
      [expertTensorName(s.site, id, 'up.bias')]: { dtype, dims: [d], data: new A(d) },
    };
  }

  /** Initial (zero) gate and noise tensors [d, E_site] of `router` at every site. */
  initRouter(router: number, dtype: 'float32' | 'float64' = 'float32'): Record<string, TensorData> {
    this.router(router);
    const out: Record<string, TensorData> = {};
    const A = dtype === 'float32' ? Float32Array : Float64Array;
    for (const s of this.siteStates) {
      const dims = [s.site.width, s.experts.length];
      for (const kind of ['gate', 'noise'] as const) out[routerTensorName(s.site, router, kind)] = { dtype, dims, data: new A(dims[0]! * dims[1]!) };
    }
    return out;
  }

  /** Initial tensors of every expert (sites in order, experts in column order, one `rng` stream) and router. */
  initTensors(rng: Rng, dtype: 'float32' | 'float64' = 'float32'): Record<string, TensorData> {
    const out: Record<string, TensorData> = {};
    for (const s of this.siteStates) for (const id of s.experts) Object.assign(out, this.initExpert(s.site, id, rng, dtype));
    for (const r of this.routerStates) Object.assign(out, this.initRouter(r.id, dtype));
    return out;
  }

  // -- serialisation -----------------------------------------------------------------------------------------

  toJSON(): MoeLayoutJSON {
    return {
      format: 'moeclip.moe-layout',
      version: 1,
      bottleneck: this.bottleneck,
      sites: this.siteStates.map((s) => ({
        tower: s.site.tower,
        layer: s.site.layer,
        width: s.site.width,
        experts: [...s.experts],
        nextExpert: s.nextExpert,
        frozen: s.experts.filter((id) => s.frozen.has(id)).map((id) => [id, s.frozen.get(id)!] as [number, number | null]),
      })),
      routers: this.routerStates.map((r) => ({
        id: r.id,
        allowed: Object.fromEntries([...r.allowed].map(([k, v]) => [k, [...v]])),
        usage: Object.fromEntries([...r.usage].map(([k, m]) => [k, [...m].map(([id, n]) => [id, n] as [number, number])])),
      })),
      nextRouter: this.nextRouter,
    };
  }

  /** Parses {@link MoeLayoutJSON}; errors name the field (prefixed by `where`). */
  static fromJSON(j: unknown, where = 'moe layout'): MoeLayout {
    const fail = (field: string, msg: string): never => {
      throw new Error(`${where}.${field}: ${msg}`);
    };
    const isInt = (v: unknown, min: number): v is number => typeof v === 'number' && Number.isInteger(v) && v >= min;
    if (typeof j !== 'object' || j === null) throw new Error(`${where}: expected an object`);
    const o = j as Partial<MoeLayoutJSON>;
    if (o.format !== 'moeclip.moe-layout') fail('format', `expected 'moeclip.moe-layout', got ${JSON.stringify(o.format)}`);
    if (o.version !== 1) fail('version', `unsupported version ${JSON.stringify(o.version)}`);
    if (!isInt(o.bottleneck, 1)) fail('bottleneck', 'expected a positive integer');
    if (!Array.isArray(o.sites)) fail('sites', 'expected an array');
    if (!Array.isArray(o.routers)) fail('routers', 'expected an array');
    if (!isInt(o.nextRouter, 0)) fail('nextRouter', 'expected a non-negative integer');
    const sites: MoeSite[] = o.sites!.map((s, i) => {
      if (s.tower !== 'image' && s.tower !== 'text') fail(`sites[${i}].tower`, `expected 'image' or 'text', got ${JSON.stringify(s.tower)}`);
      if (!isInt(s.layer, 0)) fail(`sites[${i}].layer`, 'expected a non-negative integer');
      if (!isInt(s.width, 1)) fail(`sites[${i}].width`, 'expected a positive integer');
      return { tower: s.tower, layer: s.layer, width: s.width, key: siteKey(s.tower, s.layer) };
    });
    const layout = new MoeLayout(sites, o.bottleneck!);
    if (layout.byKey.size !== sites.length) fail('sites', 'a site is listed twice');
    o.sites!.forEach((s, i) => {
      const st = layout.siteStates[i]!;
      if (!Array.isArray(s.experts) || !s.experts.every((id) => isInt(id, 0))) fail(`sites[${i}].experts`, 'expected an array of non-negative integers');
      if (new Set(s.experts).size !== s.experts.length) fail(`sites[${i}].experts`, 'an expert id is listed twice');
      if (!isInt(s.nextExpert, 0) || s.experts.some((id) => id >= s.nextExpert)) fail(`sites[${i}].nextExpert`, 'must exceed every expert id');
      st.experts = [...s.experts];
      st.nextExpert = s.nextExpert;
      if (!Array.isArray(s.frozen)) fail(`sites[${i}].frozen`, 'expected an array of [id, router|null]');
      s.frozen.forEach((f, n) => {
        if (!Array.isArray(f) || !s.experts.includes(f[0]) || !(f[1] === null || isInt(f[1], 0))) fail(`sites[${i}].frozen[${n}]`, 'expected [expert id, router id | null]');
        st.frozen.set(f[0], f[1]);
      });
    });
    o.routers!.forEach((r, i) => {
      if (!isInt(r.id, 0) || r.id >= o.nextRouter!) fail(`routers[${i}].id`, `expected an integer below nextRouter ${o.nextRouter}`);
      if (layout.routerStates.some((x) => x.id === r.id)) fail(`routers[${i}].id`, `router ${r.id} is listed twice`);
      const state: RouterState = { id: r.id, allowed: new Map(), usage: new Map() };
      for (const [k, ids] of Object.entries(r.allowed ?? {})) {
        const st = layout.byKey.get(k);
        if (!st) fail(`routers[${i}].allowed`, `unknown site '${k}'`);
        if (!Array.isArray(ids) || !ids.every((id) => st!.experts.includes(id))) fail(`routers[${i}].allowed['${k}']`, 'expected expert ids of that site');
        state.allowed.set(k, st!.experts.filter((id) => ids.includes(id)));
      }
      for (const [k, pairs] of Object.entries(r.usage ?? {})) {
        const st = layout.byKey.get(k);
        if (!st) fail(`routers[${i}].usage`, `unknown site '${k}'`);
        if (!Array.isArray(pairs)) fail(`routers[${i}].usage['${k}']`, 'expected [expert id, count] pairs');
        const m = new Map<number, number>();
        pairs.forEach((p, n) => {
          if (!Array.isArray(p) || !st!.experts.includes(p[0]) || typeof p[1] !== 'number' || !(p[1] >= 0)) fail(`routers[${i}].usage['${k}'][${n}]`, 'expected [expert id, count >= 0]');
          m.set(p[0], p[1]);
        });
        state.usage.set(k, m);
      }
      layout.routerStates.push(state);
    });
    layout.nextRouter = o.nextRouter!;
    return layout;
  }

  /**
   * Makes this layout equal to a serialised one over the same sites and bottleneck, in place (the Peft, the
   * subnet registry and the trainer keep their reference): for checkpoints. Errors name the field.
   */
  assign(j: unknown, where = 'moe layout'): void {
    const o = MoeLayout.fromJSON(j, where);
    const sameSites = o.siteStates.length === this.siteStates.length && o.siteStates.every((s, i) => s.site.key === this.siteStates[i]!.site.key && s.site.width === this.siteStates[i]!.site.width);
    if (!sameSites) throw new Error(`${where}.sites: saved for sites ${o.siteStates.map((s) => s.site.key).join(', ')}, this layout has ${this.siteStates.map((s) => s.site.key).join(', ')}`);
    if (o.bottleneck !== this.bottleneck) throw new Error(`${where}.bottleneck: saved ${o.bottleneck}, this layout has ${this.bottleneck}`);
    o.siteStates.forEach((s, i) => {
      const mine = this.siteStates[i]!;
      mine.experts = s.experts;
      mine.nextExpert = s.nextExpert;
      mine.frozen = s.frozen;
    });
    this.routerStates = o.routerStates;
    this.nextRouter = o.nextRouter;
  }

  /** A deep copy. */
  clone(): MoeLayout {
    return MoeLayout.fromJSON(this.toJSON());
  }
}

// -- router tensor helpers ------------------------------------------------------------------------------------

function checkRouterTensor(t: TensorData, what: string): [number, number] {
  if (t.dims.length !== 2 || (t.dtype !== 'float32' && t.dtype !== 'float64')) throw new Error(`${what}: expected a float [d, E] router tensor, got ${t.dtype} [${t.dims.join(', ')}]`);
  return [t.dims[0]!, t.dims[1]!];
}

/** Keeps the columns `keep` (as returned by {@link MoeLayout.removeExperts}) of a router tensor [d, E]. */
export function shrinkRouterTensor(t: TensorData, keep: readonly number[]): TensorData {
  const [d, E] = checkRouterTensor(t, 'shrinkRouterTensor');
  for (const c of keep) if (!Number.isInteger(c) || c < 0 || c >= E) throw new Error(`shrinkRouterTensor: column ${c} out of range for ${E} columns`);
  const src = t.data as Float32Array | Float64Array;
  const out = t.dtype === 'float32' ? new Float32Array(d * keep.length) : new Float64Array(d * keep.length);
  for (let i = 0; i < d; i++) keep.forEach((c, j) => (out[i * keep.length + j] = src[i * E + c]!));
  return { dtype: t.dtype, dims: [d, keep.length], data: out };
}

/** Appends `n` zero columns to a router tensor [d, E] (for experts added with {@link MoeLayout.addExperts}). */
export function growRouterTensor(t: TensorData, n: number): TensorData {
  const [d, E] = checkRouterTensor(t, 'growRouterTensor');
  if (!Number.isInteger(n) || n < 0) throw new Error(`growRouterTensor: n must be a non-negative integer, got ${n}`);
  const src = t.data as Float32Array | Float64Array;
  const W = E + n;
  const out = t.dtype === 'float32' ? new Float32Array(d * W) : new Float64Array(d * W);
  for (let i = 0; i < d; i++) for (let c = 0; c < E; c++) out[i * W + c] = src[i * E + c]!;
  return { dtype: t.dtype, dims: [d, W], data: out };
}
