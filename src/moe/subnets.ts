/**
 * CM-MoE subnets on a {@link MoeLayout}, and the tensor bookkeeping that follows a change of a site's experts.
 *
 * A subnet is one router plus the experts it owns, serving a list of tasks:
 * - {@link SubnetRegistry.open} adds a router and `expertsPerSubnet` new experts per site. The new router may
 *   select every expert not frozen (free experts left by earlier subnets and the new ones); routers that existed
 *   before keep their allowed lists, so they never see the new experts (a router that allowed every expert gets
 *   that list written out first). At most one subnet is open at a time.
 * - {@link SubnetRegistry.close} freezes, per site, the `expertsPerSubnet` most used experts among the ones the
 *   subnet's router may select and that are not frozen yet (usage of its router; ties: lower column first), as
 *   `MoeLayout.freezeTopUsed` with `maskFrozen`. They become the subnet's own experts and its router is
 *   restricted to exactly them.
 * - {@link SubnetRegistry.reuse} adds a task to a subnet (a known distribution re-entered).
 * Subnet ids are stable and never reused (the reference takes max id + 1, which reuses the id of a merged-away
 * maximum).
 *
 * Tensor helpers: {@link growRows} / {@link keepRows} on row-major tensors, and {@link growMoeTensors} /
 * {@link shrinkMoeTensors}, which take a site's state tensors (stacked experts `moe.<site>.stack.<part>`, router
 * `moe.<site>.r<id>.gate|noise`, each with optional slots `.m`, `.v`, `.buf` and counter `.t`) and return them
 * resized after `MoeLayout.addExperts` / `removeExperts`: new stacked parameter rows from
 * `MoeLayout.initExpert` (stacked as `stackExpertData`), zero rows for slots and per-row counters, zero router
 * columns (also in router slots); a router's scalar `.t` is unchanged.
 */
import type { TensorData, TypedArray } from '../runtime/types.ts';
import { allocTyped, numel } from '../runtime/types.ts';
import type { Rng } from '../util/rng.ts';
import { growRouterTensor, shrinkRouterTensor, type MoeLayout, type MoeSite } from './layout.ts';
import { expertStackRows, type StackPart } from './hooks.ts';

/** Options of {@link SubnetRegistry}. */
export interface SubnetRegistryOptions {
  /** Experts added per site when a subnet opens, and frozen as its own when it closes (the reference: 4). */
  expertsPerSubnet: number;
  /** Cap on the experts of any site; {@link SubnetRegistry.open} fails rather than exceed it. Default none. */
  maxExpertsPerBlock?: number;
}

/** One subnet as {@link SubnetRegistry.subnets} reports it (copies). */
export interface SubnetInfo {
  id: number;
  router: number;
  /** Tasks served, in the order they joined. */
  tasks: number[];
  open: boolean;
  /** Per site key: the experts added when it opened (open) or its frozen own experts (closed), column order. */
  experts: Record<string, number[]>;
}

/** What {@link SubnetRegistry.open} created. */
export interface OpenedSubnet {
  subnet: number;
  router: number;
  /** Per site key: the new expert ids (the last columns of the site). */
  newExperts: Record<string, number[]>;
}

/** Serialised {@link SubnetRegistry} (the layout is serialised separately). */
export interface SubnetRegistryJSON {
  format: 'moeclip.subnets';
  version: 1;
  expertsPerSubnet: number;
  maxExpertsPerBlock: number | null;
  nextSubnet: number;
  subnets: SubnetInfo[];
}

interface SubnetState {
  id: number;
  router: number;
  tasks: number[];
  open: boolean;
  experts: Map<string, number[]>;
}

function positiveInt(v: unknown, field: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw new Error(`SubnetRegistry: ${field} must be a positive integer, got ${JSON.stringify(v)}`);
  return v;
}

function taskId(v: unknown, where: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw new Error(`${where}: task must be a non-negative integer, got ${JSON.stringify(v)}`);
  return v;
}

/** CM-MoE subnets (router + own experts + tasks) over a layout (see the module doc). */
export class SubnetRegistry {
  readonly expertsPerSubnet: number;
  readonly maxExpertsPerBlock: number | null;
  private states: SubnetState[] = [];
  private nextSubnet = 0;

  constructor(
    readonly layout: MoeLayout,
    opts: SubnetRegistryOptions,
  ) {
    if (typeof opts !== 'object' || opts === null) throw new Error('SubnetRegistry: options must be an object');
    this.expertsPerSubnet = positiveInt(opts.expertsPerSubnet, 'expertsPerSubnet');
    this.maxExpertsPerBlock = opts.maxExpertsPerBlock === undefined ? null : positiveInt(opts.maxExpertsPerBlock, 'maxExpertsPerBlock');
    if (this.maxExpertsPerBlock !== null && this.maxExpertsPerBlock < this.expertsPerSubnet) {
      throw new Error(`SubnetRegistry: maxExpertsPerBlock ${this.maxExpertsPerBlock} is below expertsPerSubnet ${this.expertsPerSubnet}`);
    }
  }

  private state(id: number, where: string): SubnetState {
    const s = this.states.find((x) => x.id === id);
    if (!s) throw new Error(`${where}: no subnet ${id} (have: ${this.states.map((x) => x.id).join(', ') || 'none'})`);
    return s;
  }

  /** Opens a subnet for `task` (see the module doc). */
  open(task: number): OpenedSubnet {
    const where = 'SubnetRegistry.open';
    taskId(task, where);
    const owner = this.subnetOfTask(task);
    if (owner !== undefined) throw new Error(`${where}: task ${task} already belongs to subnet ${owner} (use reuse)`);
    const busy = this.states.find((s) => s.open);
    if (busy) throw new Error(`${where}: subnet ${busy.id} is still open; close it first`);
    const L = this.layout;
    const n = this.expertsPerSubnet;
    if (this.maxExpertsPerBlock !== null) {
      for (const site of L.sites) {
        const E = L.experts(site).length;
        if (E + n > this.maxExpertsPerBlock) {
          throw new Error(`${where}: site ${site.key} has ${E} experts; ${n} more would exceed maxExpertsPerBlock ${this.maxExpertsPerBlock} (merge subnets first)`);
        }
      }
    }
    // existing routers must not see the new experts: write out "every expert" as an explicit list
    for (const r of L.routers) for (const site of L.sites) if (L.allowsAll(r, site)) L.setAllowed(r, site, L.experts(site));
    const router = L.addRouter();
    const newExperts: Record<string, number[]> = {};
    const experts = new Map<string, number[]>();
    for (const site of L.sites) {
      const ids = L.addExperts(site, n);
      newExperts[site.key] = [...ids];
      experts.set(site.key, [...ids]);
      const frozen = new Set(L.frozen(site));
      L.setAllowed(router, site, L.experts(site).filter((id) => !frozen.has(id)));
    }
    const id = this.nextSubnet++;
    this.states.push({ id, router, tasks: [task], open: true, experts });
    return { subnet: id, router, newExperts };
  }

  /**
   * Closes an open subnet: freezes its top-used experts per site as its own and restricts its router to them;
   * returns them per site key (column order).
   */
  close(subnet: number): Record<string, number[]> {
    const where = `SubnetRegistry.close(${subnet})`;
    const s = this.state(subnet, where);
    if (!s.open) throw new Error(`${where}: the subnet is already closed`);
    const L = this.layout;
    const k = this.expertsPerSubnet;
    const picks = new Map<string, number[]>();
    for (const site of L.sites) {
      const usage = L.usage(s.router, site);
      const allowed = new Set(L.allowedExperts(s.router, site));
      const cand = L.experts(site)
        .map((id, c) => ({ id, c, n: usage[c]! }))
        .filter((e) => allowed.has(e.id) && !L.isFrozen(site, e.id));
      if (cand.length < k) throw new Error(`${where}: site ${site.key} has ${cand.length} unfrozen experts the subnet may select, fewer than expertsPerSubnet ${k}`);
      cand.sort((a, b) => b.n - a.n || a.c - b.c);
      const set = new Set(cand.slice(0, k).map((e) => e.id));
      picks.set(site.key, L.experts(site).filter((id) => set.has(id)));
    }
    const out: Record<string, number[]> = {};
    for (const site of L.sites) {
      const pick = picks.get(site.key)!;
      L.freeze(site, pick, s.router);
      L.setAllowed(s.router, site, pick);
      out[site.key] = [...pick];
    }
    s.experts = new Map([...picks].map(([key, ids]) => [key, [...ids]]));
    s.open = false;
    return out;
  }

  /** A known distribution re-entered: `task` joins `subnet` (no-op if it is already there). */
  reuse(subnet: number, task: number): void {
    const where = `SubnetRegistry.reuse(${subnet})`;
    taskId(task, where);
    const s = this.state(subnet, where);
    const owner = this.subnetOfTask(task);
    if (owner === subnet) return;
    if (owner !== undefined) throw new Error(`${where}: task ${task} already belongs to subnet ${owner}`);
    s.tasks.push(task);
  }

  /** The subnet serving `task`, if any. */
  subnetOfTask(task: number): number | undefined {
    return this.states.find((s) => s.tasks.includes(task))?.id;
  }

  /** The subnet using `router`, if any. */
  subnetOfRouter(router: number): number | undefined {
    return this.states.find((s) => s.router === router)?.id;
  }

  /** One subnet (a copy). */
  subnet(id: number): SubnetInfo {
    return SubnetRegistry.info(this.state(id, 'SubnetRegistry.subnet'));
  }

  /** Every subnet, ascending id (copies). */
  subnets(): SubnetInfo[] {
    return [...this.states].sort((a, b) => a.id - b.id).map((s) => SubnetRegistry.info(s));
  }

  /** The open subnet, if any. */
  get openSubnet(): number | undefined {
    return this.states.find((s) => s.open)?.id;
  }

  private static info(s: SubnetState): SubnetInfo {
    return { id: s.id, router: s.router, tasks: [...s.tasks], open: s.open, experts: Object.fromEntries([...s.experts].map(([k, v]) => [k, [...v]])) };
  }

  /**
   * Registry side of a merge (merge.ts `applyMerge` calls it after updating the layout): the `others` are removed,
   * their tasks join `survivor` (after its own, in the order given), whose own experts become `experts`.
   */
  absorb(survivor: number, others: readonly number[], experts: Readonly<Record<string, readonly number[]>>): void {
    const where = `SubnetRegistry.absorb(${survivor})`;
    const s = this.state(survivor, where);
    const gone = others.map((id) => {
      if (id === survivor) throw new Error(`${where}: the survivor is listed among the others`);
      return this.state(id, where);
    });
    for (const site of this.layout.sites) {
      const ids = experts[site.key];
      if (!ids) throw new Error(`${where}: experts has no entry for site ${site.key}`);
      for (const id of ids) this.layout.column(site, id);
    }
    for (const g of gone) s.tasks.push(...g.tasks.filter((t) => !s.tasks.includes(t)));
    s.experts = new Map(this.layout.sites.map((site) => [site.key, this.layout.experts(site).filter((id) => experts[site.key]!.includes(id))]));
    this.states = this.states.filter((x) => !gone.includes(x));
  }

  toJSON(): SubnetRegistryJSON {
    return {
      format: 'moeclip.subnets',
      version: 1,
      expertsPerSubnet: this.expertsPerSubnet,
      maxExpertsPerBlock: this.maxExpertsPerBlock,
      nextSubnet: this.nextSubnet,
      subnets: this.subnets(),
    };
  }

  /** Parses {@link SubnetRegistryJSON} against `layout`; errors name the field (prefixed by `where`). */
  static fromJSON(layout: MoeLayout, j: unknown, where = 'subnets'): SubnetRegistry {
    const fail = (field: string, msg: string): never => {
      throw new Error(`${where}.${field}: ${msg}`);
    };
    const isInt = (v: unknown, min: number): v is number => typeof v === 'number' && Number.isInteger(v) && v >= min;
    if (typeof j !== 'object' || j === null) throw new Error(`${where}: expected an object`);
    const o = j as Partial<SubnetRegistryJSON>;
    if (o.format !== 'moeclip.subnets') fail('format', `expected 'moeclip.subnets', got ${JSON.stringify(o.format)}`);
    if (o.version !== 1) fail('version', `unsupported version ${JSON.stringify(o.version)}`);
    if (!isInt(o.expertsPerSubnet, 1)) fail('expertsPerSubnet', 'expected a positive integer');
    if (!(o.maxExpertsPerBlock === null || isInt(o.maxExpertsPerBlock, 1))) fail('maxExpertsPerBlock', 'expected a positive integer or null');
    if (!isInt(o.nextSubnet, 0)) fail('nextSubnet', 'expected a non-negative integer');
    if (!Array.isArray(o.subnets)) fail('subnets', 'expected an array');
    const reg = new SubnetRegistry(layout, { expertsPerSubnet: o.expertsPerSubnet!, ...(o.maxExpertsPerBlock === null ? {} : { maxExpertsPerBlock: o.maxExpertsPerBlock! }) });
    const routers = new Set(layout.routers);
    const tasks = new Set<number>();
    o.subnets!.forEach((s, i) => {
      const f = `subnets[${i}]`;
      if (typeof s !== 'object' || s === null) fail(f, 'expected {id, router, tasks, open, experts}');
      if (!isInt(s.id, 0) || s.id >= o.nextSubnet!) fail(`${f}.id`, `expected an integer below nextSubnet ${o.nextSubnet}`);
      if (reg.states.some((x) => x.id === s.id)) fail(`${f}.id`, `subnet ${s.id} is listed twice`);
      if (!isInt(s.router, 0) || !routers.has(s.router)) fail(`${f}.router`, `expected a router of the layout (have: ${[...routers].join(', ') || 'none'})`);
      if (reg.states.some((x) => x.router === s.router)) fail(`${f}.router`, `router ${s.router} serves two subnets`);
      if (!Array.isArray(s.tasks) || !s.tasks.every((t) => isInt(t, 0))) fail(`${f}.tasks`, 'expected an array of non-negative integers');
      for (const t of s.tasks) {
        if (tasks.has(t)) fail(`${f}.tasks`, `task ${t} belongs to two subnets`);
        tasks.add(t);
      }
      if (typeof s.open !== 'boolean') fail(`${f}.open`, 'expected a boolean');
      if (s.open && reg.states.some((x) => x.open)) fail(`${f}.open`, 'two subnets are open');
      if (typeof s.experts !== 'object' || s.experts === null) fail(`${f}.experts`, 'expected an object of site key → expert ids');
      const experts = new Map<string, number[]>();
      for (const site of layout.sites) {
        const ids = (s.experts as Record<string, unknown>)[site.key];
        const have = layout.experts(site);
        if (!Array.isArray(ids) || !ids.every((id) => have.includes(id))) fail(`${f}.experts['${site.key}']`, 'expected expert ids of that site');
        experts.set(site.key, have.filter((id) => (ids as number[]).includes(id)));
      }
      for (const k of Object.keys(s.experts)) if (!layout.sites.some((site) => site.key === k)) fail(`${f}.experts`, `unknown site '${k}'`);
      reg.states.push({ id: s.id, router: s.router, tasks: [...s.tasks], open: s.open, experts });
    });
    reg.nextSubnet = o.nextSubnet!;
    return reg;
  }
}

// -- tensor helpers -------------------------------------------------------------------------------------------

function rowsOf(t: TensorData, what: string): { E: number; size: number } {
  if (t.dims.length === 0) throw new Error(`${what}: expected a tensor with a row axis, got a scalar`);
  const E = t.dims[0]!;
  return { E, size: numel(t.dims.slice(1)) };
}

/** Appends rows to a row-major tensor [E, …]: the values `rows` (a whole number of rows), or `n` zero rows when null. */
export function growRows(t: TensorData, rows: TypedArray | null, n?: number): TensorData {
  const { E, size } = rowsOf(t, 'growRows');
  let add: number;
  if (rows === null) {
    if (n === undefined || !Number.isInteger(n) || n < 0) throw new Error(`growRows: n must be a non-negative integer when rows is null, got ${n}`);
    add = n;
  } else {
    if (size === 0 || rows.length % size !== 0) throw new Error(`growRows: rows holds ${rows.length} values, not a whole number of rows of ${size}`);
    add = rows.length / size;
    if (n !== undefined && n !== add) throw new Error(`growRows: n = ${n} but rows holds ${add} rows`);
  }
  const out = allocTyped(t.dtype, (E + add) * size);
  (out as Float64Array).set(t.data as Float64Array);
  if (rows) (out as Float64Array).set(rows as Float64Array, E * size);
  return { dtype: t.dtype, dims: [E + add, ...t.dims.slice(1)], data: out };
}

/** Rows `keep` (in that order) of a row-major tensor [E, …]. */
export function keepRows(t: TensorData, keep: readonly number[]): TensorData {
  const { E, size } = rowsOf(t, 'keepRows');
  for (const r of keep) if (!Number.isInteger(r) || r < 0 || r >= E) throw new Error(`keepRows: row ${r} out of range for ${E} rows`);
  const out = allocTyped(t.dtype, keep.length * size);
  keep.forEach((r, i) => (out as Float64Array).set((t.data as Float64Array).subarray(r * size, (r + 1) * size), i * size));
  return { dtype: t.dtype, dims: [keep.length, ...t.dims.slice(1)], data: out };
}

/** What a state tensor name is, for the MoE tensors these helpers resize. */
export type MoeTensorRole =
  | { kind: 'stack'; site: string; part: StackPart; slot: string | null }
  | { kind: 'router'; site: string; router: number; which: 'gate' | 'noise'; slot: string | null };

const STACK_RE = /^moe\.((?:image|text)\.\d+)\.stack\.(down|downBias|up|upBias)(?:\.(m|v|buf|t))?$/;
const ROUTER_RE = /^moe\.((?:image|text)\.\d+)\.r(\d+)\.(gate|noise)(?:\.(m|v|buf|t))?$/;

/** Parses a stacked-expert or router state tensor name (with an optional slot `m`, `v`, `buf` or counter `t`); null otherwise. */
export function moeTensorRole(name: string): MoeTensorRole | null {
  let m = STACK_RE.exec(name);
  if (m) return { kind: 'stack', site: m[1]!, part: m[2] as StackPart, slot: m[3] ?? null };
  m = ROUTER_RE.exec(name);
  if (m) return { kind: 'router', site: m[1]!, router: Number(m[2]), which: m[3] as 'gate' | 'noise', slot: m[4] ?? null };
  return null;
}

/** One expert's initial values as stacked rows, from `MoeLayout.initExpert`. */
function initRows(layout: MoeLayout, site: MoeSite, id: number, rng: Rng, dtype: 'float32' | 'float64'): Record<StackPart, Float32Array | Float64Array> {
  return expertStackRows(site, id, layout.bottleneck, layout.initExpert(site, id, rng, dtype));
}

function siteOf(layout: MoeLayout, key: string, where: string): MoeSite {
  const s = layout.sites.find((x) => x.key === key);
  if (!s) throw new Error(`${where}: no site '${key}' in the layout`);
  return s;
}

/** A stacked part's counter `.t` as per-row counts [E, 1, 1]: a scalar counter becomes E rows of its value. */
function counterRows(t: TensorData, E: number, name: string, where: string): TensorData {
  if (t.dims.length === 3) {
    if (t.dims[0] !== E || t.dims[1] !== 1 || t.dims[2] !== 1) throw new Error(`${where}: counter '${name}' is [${t.dims.join(', ')}], expected [${E}, 1, 1] or a scalar`);
    return t;
  }
  if (numel(t.dims) !== 1) throw new Error(`${where}: counter '${name}' is [${t.dims.join(', ')}], expected [${E}, 1, 1] or a scalar`);
  const data = allocTyped(t.dtype, E);
  (data as Float64Array).fill(Number(t.data[0]));
  return { dtype: t.dtype, dims: [E, 1, 1], data };
}

/**
 * The tensors of `tensors` that belong to the sites in `added` (stacked parts, routers; with slots and counters),
 * resized after `layout.addExperts(site, n)` returned `added[site]` (so the layout already lists them, last).
 * Parameter rows of the new experts come from `layout.initExpert` drawn from `rng` (sites in layout order,
 * experts in column order), in each tensor's float type; everything else new is zero. Other names are ignored.
 */
export function growMoeTensors(layout: MoeLayout, tensors: Readonly<Record<string, TensorData>>, added: Readonly<Record<string, readonly number[]>>, rng: Rng): Record<string, TensorData> {
  const where = 'growMoeTensors';
  const out: Record<string, TensorData> = {};
  for (const key of Object.keys(added)) siteOf(layout, key, where);
  for (const site of layout.sites) {
    const ids = added[site.key];
    if (!ids) continue;
    const all = layout.experts(site);
    const E1 = all.length;
    const E0 = E1 - ids.length;
    if (ids.some((id, i) => all[E0 + i] !== id)) throw new Error(`${where}: added['${site.key}'] = [${ids.join(', ')}] are not the last experts of the site ([${all.join(', ')}])`);
    const names = Object.keys(tensors).filter((n) => moeTensorRole(n)?.site === site.key);
    // parameter rows, drawn only when a stacked parameter is present (one draw per expert, float type of the tensors)
    const params = names.filter((n) => {
      const r = moeTensorRole(n)!;
      return r.kind === 'stack' && r.slot === null;
    });
    let init: Record<StackPart, Float32Array | Float64Array>[] | null = null;
    if (params.length > 0) {
      const dt = tensors[params[0]!]!.dtype;
      if (dt !== 'float32' && dt !== 'float64') throw new Error(`${where}: '${params[0]}' must be float32 or float64, got ${dt}`);
      init = ids.map((id) => initRows(layout, site, id, rng, dt));
    }
    for (const name of names) {
      const role = moeTensorRole(name)!;
      const t = tensors[name]!;
      if (role.kind === 'router') {
        if (role.slot === 't') {
          out[name] = t;
          continue;
        }
        if (t.dims.length !== 2 || t.dims[1] !== E0) throw new Error(`${where}: '${name}' is [${t.dims.join(', ')}], expected [${site.width}, ${E0}] (the experts before adding)`);
        out[name] = growRouterTensor(t, ids.length);
        continue;
      }
      if (role.slot === 't') {
        out[name] = growRows(counterRows(t, E0, name, where), null, ids.length);
        continue;
      }
      if (t.dims[0] !== E0) throw new Error(`${where}: '${name}' has ${t.dims[0]} rows, expected ${E0} (the experts before adding)`);
      if (role.slot !== null) {
        out[name] = growRows(t, null, ids.length);
        continue;
      }
      if (t.dtype !== tensors[params[0]!]!.dtype) throw new Error(`${where}: '${name}' is ${t.dtype} but '${params[0]}' is ${tensors[params[0]!]!.dtype}`);
      const size = numel(t.dims.slice(1));
      const rows = allocTyped(t.dtype, ids.length * size) as Float32Array | Float64Array;
      init!.forEach((r, i) => {
        if (r[role.part].length !== size) throw new Error(`${where}: '${name}' rows hold ${size} values, the layout's experts ${r[role.part].length}`);
        rows.set(r[role.part], i * size);
      });
      out[name] = growRows(t, rows);
    }
  }
  return out;
}

/**
 * The tensors of `tensors` that belong to the sites in `keep` (stacked parts, routers; with slots and counters)
 * reduced to the columns `keep[site]` (ascending, as `MoeLayout.removeExperts` returns them): stacked rows and
 * router columns. Scalar counters stay as they are; other names are ignored.
 */
export function shrinkMoeTensors(tensors: Readonly<Record<string, TensorData>>, keep: Readonly<Record<string, readonly number[]>>): Record<string, TensorData> {
  const out: Record<string, TensorData> = {};
  for (const [name, t] of Object.entries(tensors)) {
    const role = moeTensorRole(name);
    if (!role) continue;
    const cols = keep[role.site];
    if (!cols) continue;
    try {
      if (role.kind === 'router') out[name] = role.slot === 't' ? t : shrinkRouterTensor(t, cols);
      else out[name] = role.slot === 't' && t.dims.length !== 3 ? t : keepRows(t, cols);
    } catch (e) {
      throw new Error(`shrinkMoeTensors: '${name}': ${(e as Error).message}`);
    }
  }
  return out;
}
