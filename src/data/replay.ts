/**
 * Replay memories that store references to stream items (not pixels), optionally with a cached feature
 * vector per item (latent replay). All policies insert in O(1) (amortised) and are saveable as JSON.
 *
 * - `reservoir` (LifeLong-CLIP's ER rule): `seen += 1`; while below capacity append; otherwise draw
 *   j ~ U[0, seen) and replace slot j when j < capacity. Every item seen so far is kept with probability
 *   capacity / seen.
 * - `per-class-reservoir` (CM-MoE's memory): each class keeps at most m items, m = `perClass`, or
 *   ⌊capacity / #classes seen⌋ (when both are given, the smaller). Within a class the same reservoir rule runs
 *   on that class's counter: `seen_c += 1`; append while `count_c < m`; else j ~ U[0, seen_c), replace the
 *   class's j-th item when j < count_c. When a new class lowers m, random excess items of the older classes
 *   are removed.
 * - `class-balanced` (CBRS, Chrysakis & Moens 2020): while below capacity append; when full, an item of a class
 *   that is not among the largest replaces a random item of a (random) largest class; an item of a largest
 *   class goes through its class reservoir (j ~ U[0, seen_c), replace when j < count_c).
 *
 * `groupBy: 'task-label'` makes the class key (task, label) instead of label (CM-MoE keys its memory by the
 * per-task label; useful for domain streams whose tasks share labels).
 */
import type { Rng } from '../util/rng.ts';
import type { StreamItem, StreamTask } from './types.ts';

export type ReplayKind = 'reservoir' | 'per-class-reservoir' | 'class-balanced';

export interface ReplaySpec {
  kind: ReplayKind;
  /** Total number of items (for `per-class-reservoir` with `perClass` it may be 0 = unbounded total). */
  capacity: number;
  /** `per-class-reservoir`: items kept per class. */
  perClass?: number;
  /** What counts as a class for the per-class policies (default `label`). */
  groupBy?: 'label' | 'task-label';
}

/** A JSON reference to a stream item, resolved against the stream when a memory is restored. */
export interface ReplayItemRef {
  task: number;
  dataset: string;
  split: string;
  index: number;
  label: number;
}

export interface ReplayMemory {
  readonly kind: ReplayKind;
  /** Current total capacity (per-class memories with only `perClass` grow with the classes seen). */
  readonly capacity: number;
  readonly size: number;
  /** Number of items offered to `add` so far. */
  readonly seen: number;
  /** Offers an item to the memory (it may be stored, replace another, or be skipped). */
  add(item: StreamItem, rng: Rng): void;
  /** Up to n distinct stored items drawn uniformly without replacement (optionally among those passing `filter`). */
  sample(n: number, rng: Rng, filter?: (item: StreamItem) => boolean): StreamItem[];
  /** The stored items (slot order). */
  items(): readonly StreamItem[];
  /** Whether this item object is stored. */
  has(item: StreamItem): boolean;
  /** Caches a feature vector for a stored item (latent replay); ignored for items not stored. */
  setFeature(item: StreamItem, feature: Float32Array): void;
  getFeature(item: StreamItem): Float32Array | undefined;
  /** Stored items per class key (label, or task·2²⁰ + label with `groupBy: 'task-label'`). */
  classCounts(): Map<number, number>;
  /** JSON-able snapshot: spec, counters, item references and features. */
  state(): unknown;
  /** Restores a snapshot taken by `state()` of a memory with the same spec. */
  restore(state: unknown, resolve: (ref: ReplayItemRef) => StreamItem): void;
}

interface Entry {
  item: StreamItem;
  key: number;
  /** Position in the flat slot array. */
  pos: number;
  /** Position in its class list. */
  cpos: number;
  feature?: Float32Array;
}

/**
 * Class keys grouped by their stored count, so that "a random largest class" costs O(1): counts change by
 * one at a time, so the maximum moves by at most one per update.
 */
class CountBuckets {
  /** count → class keys with that count (count ≥ 1). */
  buckets = new Map<number, number[]>();
  private where = new Map<number, number>();
  max = 0;

  /** Records that `key` went from `from` to `to` stored items. */
  move(key: number, from: number, to: number): void {
    if (from > 0) {
      const b = this.buckets.get(from)!;
      const i = this.where.get(key)!;
      const last = b.pop()!;
      if (last !== key) {
        b[i] = last;
        this.where.set(last, i);
      }
    }
    if (to > 0) {
      let b = this.buckets.get(to);
      if (!b) this.buckets.set(to, (b = []));
      this.where.set(key, b.length);
      b.push(key);
      if (to > this.max) this.max = to;
    } else {
      this.where.delete(key);
    }
    while (this.max > 0 && !this.buckets.get(this.max)?.length) this.max--;
  }

  /** A uniformly random class among those with the most stored items. */
  randomLargest(rng: Rng): number {
    const b = this.buckets.get(this.max)!;
    return b[rng.int(b.length)]!;
  }

  /** Rebuilds from saved bucket lists (keeps the exact order, so a restored memory draws the same classes). */
  static fromLists(lists: [number, number[]][]): CountBuckets {
    const cb = new CountBuckets();
    for (const [count, keys] of lists) {
      cb.buckets.set(count, [...keys]);
      keys.forEach((k, i) => cb.where.set(k, i));
      if (keys.length && count > cb.max) cb.max = count;
    }
    return cb;
  }
}

/** Slots with per-class lists and an item → entry index; every operation is O(1). */
class Slots {
  readonly flat: Entry[] = [];
  readonly byClass = new Map<number, Entry[]>();
  readonly index = new Map<StreamItem, Entry>();
  counts = new CountBuckets();

  classList(key: number): Entry[] {
    let l = this.byClass.get(key);
    if (!l) this.byClass.set(key, (l = []));
    return l;
  }

  /** Appends `e` to its class list (updating the count buckets). */
  linkClass(e: Entry): void {
    const list = this.classList(e.key);
    e.cpos = list.length;
    list.push(e);
    this.counts.move(e.key, list.length - 1, list.length);
  }

  push(item: StreamItem, key: number): void {
    const e: Entry = { item, key, pos: this.flat.length, cpos: -1 };
    this.flat.push(e);
    this.linkClass(e);
    this.index.set(item, e);
  }

  private unlinkClass(e: Entry): void {
    const list = this.byClass.get(e.key)!;
    const last = list.pop()!;
    if (last !== e) {
      list[e.cpos] = last;
      last.cpos = e.cpos;
    }
    this.counts.move(e.key, list.length + 1, list.length);
  }

  /** Puts `item` into the slot of `e` (keeping its flat position). */
  replace(e: Entry, item: StreamItem, key: number): void {
    this.index.delete(e.item);
    this.unlinkClass(e);
    e.item = item;
    e.key = key;
    delete e.feature;
    this.linkClass(e);
    this.index.set(item, e);
  }

  /** Removes `e` (the last slot moves into its place). */
  remove(e: Entry): void {
    this.index.delete(e.item);
    this.unlinkClass(e);
    const last = this.flat.pop()!;
    if (last !== e) {
      this.flat[e.pos] = last;
      last.pos = e.pos;
    }
  }

  count(key: number): number {
    return this.byClass.get(key)?.length ?? 0;
  }
}

function encodeFeature(f: Float32Array): string {
  return Buffer.from(f.buffer, f.byteOffset, f.byteLength).toString('base64');
}

function decodeFeature(s: string): Float32Array {
  const b = Buffer.from(s, 'base64');
  const out = new Float32Array(b.length / 4);
  new Uint8Array(out.buffer).set(b);
  return out;
}

/** The JSON reference of an item. */
export function itemRef(item: StreamItem): ReplayItemRef {
  return { task: item.task, dataset: item.dataset.name, split: item.dataset.split, index: item.index, label: item.label };
}

function refKey(r: ReplayItemRef): string {
  return `${r.task}|${r.dataset}|${r.split}|${r.index}`;
}

/** Resolves item references against the training items of a stream's tasks (for `restore`). */
export function streamItemResolver(tasks: readonly StreamTask[]): (ref: ReplayItemRef) => StreamItem {
  const map = new Map<string, StreamItem>();
  for (const t of tasks) for (const it of t.train) map.set(refKey(itemRef(it)), it);
  return (ref) => {
    const it = map.get(refKey(ref));
    if (!it) throw new Error(`replay state: item ${JSON.stringify(ref)} is not a training item of this stream`);
    return it;
  };
}

class Memory implements ReplayMemory {
  private slots = new Slots();
  private seenTotal = 0;
  private seenByClass = new Map<number, number>();
  private perClassLimit = 0;

  constructor(private readonly spec: Required<Pick<ReplaySpec, 'kind' | 'capacity' | 'groupBy'>> & { perClass?: number }) {}

  get kind(): ReplayKind {
    return this.spec.kind;
  }

  get capacity(): number {
    if (this.spec.kind === 'per-class-reservoir' && this.spec.perClass !== undefined && this.spec.capacity === 0) {
      return this.spec.perClass * this.seenByClass.size;
    }
    return this.spec.capacity;
  }

  get size(): number {
    return this.slots.flat.length;
  }

  get seen(): number {
    return this.seenTotal;
  }

  private keyOf(item: StreamItem): number {
    return this.spec.groupBy === 'task-label' ? item.task * 1048576 + item.label : item.label;
  }

  add(item: StreamItem, rng: Rng): void {
    this.seenTotal++;
    const key = this.keyOf(item);
    const isNewClass = !this.seenByClass.has(key);
    const seenC = (this.seenByClass.get(key) ?? 0) + 1;
    this.seenByClass.set(key, seenC);
    if (this.slots.index.has(item)) return; // the same object is already stored
    const s = this.slots;
    switch (this.spec.kind) {
      case 'reservoir': {
        if (this.spec.capacity <= 0) return;
        if (s.flat.length < this.spec.capacity) return s.push(item, key);
        const j = rng.int(this.seenTotal);
        if (j < this.spec.capacity) s.replace(s.flat[j]!, item, key);
        return;
      }
      case 'per-class-reservoir': {
        if (isNewClass) this.updatePerClassLimit(rng);
        const m = this.perClassLimit;
        const count = s.count(key);
        if (count < m) return s.push(item, key);
        const j = rng.int(seenC);
        if (j < count) s.replace(s.classList(key)[j]!, item, key);
        return;
      }
      case 'class-balanced': {
        if (this.spec.capacity <= 0) return;
        if (s.flat.length < this.spec.capacity) return s.push(item, key);
        const count = s.count(key);
        if (count < s.counts.max) {
          const victimClass = s.classList(s.counts.randomLargest(rng));
          s.replace(victimClass[rng.int(victimClass.length)]!, item, key);
          return;
        }
        const j = rng.int(seenC);
        if (j < count) s.replace(s.classList(key)[j]!, item, key);
        return;
      }
    }
  }

  /** m = perClass, or ⌊capacity / #classes⌋, or the smaller of both; shrinks classes above the new m. */
  private updatePerClassLimit(rng: Rng): void {
    const classes = this.seenByClass.size;
    let m = Infinity;
    if (this.spec.perClass !== undefined) m = this.spec.perClass;
    if (this.spec.capacity > 0) m = Math.min(m, Math.floor(this.spec.capacity / classes));
    if (m === Infinity) m = 0;
    this.perClassLimit = m;
    for (const list of this.slots.byClass.values()) {
      while (list.length > m) this.slots.remove(list[rng.int(list.length)]!);
    }
  }

  sample(n: number, rng: Rng, filter?: (item: StreamItem) => boolean): StreamItem[] {
    const pool = filter ? this.slots.flat.filter((e) => filter(e.item)) : this.slots.flat.slice();
    const k = Math.min(Math.max(0, Math.floor(n)), pool.length);
    // partial Fisher–Yates: the first k positions become a uniform sample without replacement
    for (let i = 0; i < k; i++) {
      const j = i + rng.int(pool.length - i);
      const t = pool[i]!;
      pool[i] = pool[j]!;
      pool[j] = t;
    }
    return pool.slice(0, k).map((e) => e.item);
  }

  items(): readonly StreamItem[] {
    return this.slots.flat.map((e) => e.item);
  }

  has(item: StreamItem): boolean {
    return this.slots.index.has(item);
  }

  setFeature(item: StreamItem, feature: Float32Array): void {
    const e = this.slots.index.get(item);
    if (e) e.feature = feature;
  }

  getFeature(item: StreamItem): Float32Array | undefined {
    return this.slots.index.get(item)?.feature;
  }

  classCounts(): Map<number, number> {
    const out = new Map<number, number>();
    for (const [k, l] of this.slots.byClass) if (l.length > 0) out.set(k, l.length);
    return out;
  }

  state(): unknown {
    return {
      version: 1,
      spec: { ...this.spec },
      seen: this.seenTotal,
      seenByClass: [...this.seenByClass.entries()],
      perClassLimit: this.perClassLimit,
      items: this.slots.flat.map((e) => itemRef(e.item)),
      // per-class slot order (it decides which item a class reservoir replaces), in class-map order
      classes: [...this.slots.byClass.entries()].map(([k, l]) => [k, l.map((e) => e.pos)]),
      countBuckets: [...this.slots.counts.buckets.entries()],
      features: Object.fromEntries(
        this.slots.flat.flatMap((e, i) => (e.feature ? [[String(i), encodeFeature(e.feature)]] : [])),
      ),
    };
  }

  restore(state: unknown, resolve: (ref: ReplayItemRef) => StreamItem): void {
    const st = state as {
      version?: number;
      spec?: Partial<ReplaySpec>;
      seen?: number;
      seenByClass?: [number, number][];
      perClassLimit?: number;
      items?: ReplayItemRef[];
      classes?: [number, number[]][];
      countBuckets?: [number, number[]][];
      features?: Record<string, string>;
    };
    if (!st || st.version !== 1 || !Array.isArray(st.items) || !Array.isArray(st.seenByClass)) {
      throw new Error('replay state: not a version-1 replay snapshot');
    }
    if (st.spec?.kind !== this.spec.kind || st.spec.capacity !== this.spec.capacity || st.spec.perClass !== this.spec.perClass) {
      throw new Error(`replay state: saved for ${JSON.stringify(st.spec)}, this memory is ${JSON.stringify(this.spec)}`);
    }
    const slots = new Slots();
    st.items.forEach((ref, i) => {
      const item = resolve(ref);
      const e: Entry = { item, key: this.keyOf(item), pos: i, cpos: -1 };
      const f = st.features?.[String(i)];
      if (f !== undefined) e.feature = decodeFeature(f);
      slots.flat.push(e);
      slots.index.set(item, e);
    });
    for (const [key, positions] of st.classes ?? []) {
      slots.classList(key);
      for (const p of positions) {
        const e = slots.flat[p];
        if (!e || e.key !== key || e.cpos !== -1) throw new Error('replay state: inconsistent class lists');
        slots.linkClass(e);
      }
    }
    // entries not listed (older snapshots) join their class in slot order
    for (const e of slots.flat) if (e.cpos === -1) slots.linkClass(e);
    if (st.countBuckets) {
      for (const [count, keys] of st.countBuckets) {
        if (keys.some((k) => slots.count(k) !== count)) throw new Error('replay state: class counts do not match the items');
      }
      slots.counts = CountBuckets.fromLists(st.countBuckets);
    }
    this.slots = slots;
    this.seenTotal = st.seen ?? 0;
    this.seenByClass = new Map(st.seenByClass);
    this.perClassLimit = st.perClassLimit ?? 0;
  }
}

/** Creates an empty replay memory. */
export function createReplay(spec: ReplaySpec): ReplayMemory {
  if (!Number.isInteger(spec.capacity) || spec.capacity < 0) throw new Error(`replay capacity must be an integer ≥ 0, got ${spec.capacity}`);
  if (spec.perClass !== undefined && (!Number.isInteger(spec.perClass) || spec.perClass < 0)) {
    throw new Error(`replay perClass must be an integer ≥ 0, got ${spec.perClass}`);
  }
  if (spec.kind === 'per-class-reservoir' && spec.perClass === undefined && spec.capacity === 0) {
    throw new Error('per-class-reservoir needs perClass or a capacity > 0');
  }
  if (!['reservoir', 'per-class-reservoir', 'class-balanced'].includes(spec.kind)) {
    throw new Error(`unknown replay kind "${spec.kind}" (reservoir, per-class-reservoir, class-balanced)`);
  }
  return new Memory({
    kind: spec.kind,
    capacity: spec.capacity,
    groupBy: spec.groupBy ?? 'label',
    ...(spec.perClass !== undefined ? { perClass: spec.perClass } : {}),
  });
}
