/**
 * PackNet-style filter ownership for the CNN track: per channel group (src/cnn/resnet.ts) an `Int32Array` owner
 * per channel, −1 = free, otherwise a subnet id. Subnets own disjoint channel sets and share no weights: a
 * subnet's filters read only channels it owns (weights from any other channel are exactly +0), so the forward
 * of the union of several subnets computes every subnet's channels exactly as its own-mask forward does.
 * Pure functions over the layout and host copies of the conv weights ([outC, inC, k, k] row-major).
 */
import type { ConvSpec, ResNetLayout } from './resnet.ts';

export type Owners = Int32Array[];
export type Weights = Record<string, Float32Array>;

/** Every channel free. */
export function freeOwners(layout: ResNetLayout): Owners {
  return layout.groups.map((g) => new Int32Array(g.channels).fill(-1));
}

export function cloneOwners(o: Owners): Owners {
  return o.map((a) => a.slice());
}

/** A new subnet owns every free channel; returns how many it got per group. */
export function allocate(owners: Owners, subnet: number): number[] {
  checkId('allocate', subnet);
  return owners.map((a) => {
    let n = 0;
    for (let i = 0; i < a.length; i++) if (a[i] === -1) (a[i] = subnet), n++;
    return n;
  });
}

/** Subnet ids owning some channel, ascending. */
export function subnetIds(owners: Owners): number[] {
  const s = new Set<number>();
  for (const a of owners) for (const v of a) if (v >= 0) s.add(v);
  return [...s].sort((a, b) => a - b);
}

/** Float masks [C] per group: 1 where the channel belongs to one of `subnets`. */
export function groupMasks(owners: Owners, subnets: Iterable<number>): Float32Array[] {
  const set = new Set(subnets);
  return owners.map((a) => Float32Array.from(a, (v) => (set.has(v) ? 1 : 0)));
}

/** Per conv: 1 for each output filter `subnet` trains (its channels of the group the conv writes). */
export function trainableRows(layout: ResNetLayout, owners: Owners, subnet: number): Uint8Array[] {
  return layout.convs.map((c) => Uint8Array.from(owners[c.outGroup]!, (v) => (v === subnet ? 1 : 0)));
}

function checkId(where: string, id: number): void {
  if (!Number.isInteger(id) || id < 0) throw new Error(`${where}: subnet id must be an integer ≥ 0, got ${id}`);
}

function kk(c: ConvSpec): number {
  return c.kernel * c.kernel;
}

/**
 * Sets to +0 every weight of an owned filter that reads a channel its owner does not own (the reference's
 * `zero_outgoing_omitted`), for all subnets. Free filters are left alone (they are masked out and re-initialised
 * when a subnet takes them). Returns the number of weights changed from non-zero.
 */
export function zeroForeignIncoming(layout: ResNetLayout, owners: Owners, weights: Weights): number {
  let changed = 0;
  for (const c of layout.convs) {
    if (c.inGroup < 0) continue;
    const w = weights[c.weight]!;
    const out = owners[c.outGroup]!;
    const inn = owners[c.inGroup]!;
    const K = kk(c);
    for (let o = 0; o < c.outChannels; o++) {
      const s = out[o]!;
      if (s < 0) continue;
      for (let i = 0; i < c.inChannels; i++) {
        if (inn[i] === s) continue;
        const base = (o * c.inChannels + i) * K;
        for (let k = 0; k < K; k++) {
          if (w[base + k] !== 0) changed++;
          w[base + k] = 0;
        }
      }
    }
  }
  return changed;
}

/** Free filters (output channel free) get their initial weights back (the reference's `reinit_statedict`). */
export function reinitFree(layout: ResNetLayout, owners: Owners, weights: Weights, initial: Weights): void {
  for (const c of layout.convs) {
    const w = weights[c.weight]!;
    const w0 = initial[c.weight]!;
    const n = c.inChannels * kk(c);
    const out = owners[c.outGroup]!;
    for (let o = 0; o < c.outChannels; o++) if (out[o] === -1) w.set(w0.subarray(o * n, (o + 1) * n), o * n);
  }
}

/**
 * Pruning score of each channel `subnet` owns, per group: the mean |w| of the main conv's filter over the kernel
 * and over its incoming weights from channels the subnet owns (all input channels for the stem). NaN for
 * channels the subnet does not own.
 */
export function pruneScores(layout: ResNetLayout, owners: Owners, weights: Weights, subnet: number): Float64Array[] {
  const scores = owners.map((a) => new Float64Array(a.length).fill(NaN));
  for (const c of layout.convs) {
    if (c.role !== 'main') continue;
    const w = weights[c.weight]!;
    const out = owners[c.outGroup]!;
    const inn = c.inGroup >= 0 ? owners[c.inGroup]! : null;
    const K = kk(c);
    for (let o = 0; o < c.outChannels; o++) {
      if (out[o] !== subnet) continue;
      let s = 0;
      let n = 0;
      for (let i = 0; i < c.inChannels; i++) {
        if (inn && inn[i] !== subnet) continue;
        const base = (o * c.inChannels + i) * K;
        for (let k = 0; k < K; k++) s += Math.abs(w[base + k]!);
        n += K;
      }
      scores[c.outGroup]![o] = n > 0 ? s / n : 0;
    }
  }
  return scores;
}

/**
 * Releases the lowest-scoring `round(frac · n)` of the n channels `subnet` owns in every group (ties: lower
 * channel index first; at least one channel stays). Returns the released count per group. The skip conv of a
 * block follows automatically: ownership is per group, and conv2 and the skip write the same group.
 */
export function prune(layout: ResNetLayout, owners: Owners, weights: Weights, subnet: number, frac: number): number[] {
  if (!(frac >= 0 && frac < 1)) throw new Error(`prune: fraction must be in [0, 1), got ${frac}`);
  const scores = pruneScores(layout, owners, weights, subnet);
  return owners.map((a, gi) => {
    const mine: number[] = [];
    for (let i = 0; i < a.length; i++) if (a[i] === subnet) mine.push(i);
    const k = Math.min(Math.round(frac * mine.length), Math.max(0, mine.length - 1));
    const sc = scores[gi]!;
    mine.sort((x, y) => sc[x]! - sc[y]! || x - y);
    for (let j = 0; j < k; j++) a[mine[j]!] = -1;
    return k;
  });
}

/** Merge: the members' channels become `into`'s. */
export function union(owners: Owners, members: readonly number[], into: number): void {
  checkId('union', into);
  const set = new Set(members);
  for (const a of owners) for (let i = 0; i < a.length; i++) if (set.has(a[i]!)) a[i] = into;
}

/** Renumbers subnet ids by `map` (old → new); ids not in the map become free. */
export function remap(owners: Owners, map: ReadonlyMap<number, number>): void {
  for (const a of owners) for (let i = 0; i < a.length; i++) if (a[i]! >= 0) a[i] = map.get(a[i]!) ?? -1;
}

/** Renumbers the subnet ids in use to 0, 1, … in ascending order of their old ids; returns old → new. */
export function compact(owners: Owners): Map<number, number> {
  const map = new Map(subnetIds(owners).map((id, i) => [id, i]));
  remap(owners, map);
  return map;
}

/** Fraction of free channels, and of conv weights no subnet uses (a weight is used when its filter and its input channel have the same owner). */
export function freeCapacity(layout: ResNetLayout, owners: Owners): { channels: number; weights: number } {
  let free = 0;
  let total = 0;
  for (const a of owners) {
    total += a.length;
    for (const v of a) if (v === -1) free++;
  }
  let used = 0;
  let all = 0;
  for (const c of layout.convs) {
    const out = owners[c.outGroup]!;
    const inn = c.inGroup >= 0 ? owners[c.inGroup]! : null;
    const K = kk(c);
    all += c.outChannels * c.inChannels * K;
    for (let o = 0; o < c.outChannels; o++) {
      if (out[o]! < 0) continue;
      if (!inn) used += c.inChannels * K;
      else for (let i = 0; i < c.inChannels; i++) if (inn[i] === out[o]) used += K;
    }
  }
  return { channels: free / total, weights: 1 - used / all };
}
