/**
 * Seeded pseudo-random numbers with a saveable state (xoshiro128**, seeded by splitmix32).
 * Every random choice in moeclip (streams, augmentations, weight init, router noise) draws from one of these,
 * so a run can be reproduced from its seed and resumed from a saved state.
 */
export type RngState = readonly [number, number, number, number];

/** The full state of an {@link Rng}: the generator words and the cached second normal of Box–Muller. */
export interface RngSnapshot {
  state: number[];
  spare: number | null;
}

function splitmix32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
}

export class Rng {
  private s: Uint32Array;
  private spareNormal: number | null = null;

  constructor(seed: number | RngState = 0) {
    this.s = new Uint32Array(4);
    if (typeof seed === 'number') {
      const sm = splitmix32(seed);
      for (let i = 0; i < 4; i++) this.s[i] = sm();
      if ((this.s[0]! | this.s[1]! | this.s[2]! | this.s[3]!) === 0) this.s[0] = 1;
    } else {
      this.setState(seed);
    }
  }

  /** A copy of the generator state; `new Rng(state)` or `setState(state)` continues the same sequence. */
  getState(): RngState {
    return [this.s[0]!, this.s[1]!, this.s[2]!, this.s[3]!];
  }

  setState(state: RngState): void {
    if (state.length !== 4 || state.some((v) => !Number.isInteger(v) || v < 0 || v > 0xffffffff)) {
      throw new Error('Rng state must be four unsigned 32-bit integers');
    }
    this.s.set(state);
    this.spareNormal = null;
  }

  /** The full state (generator words and the cached normal), JSON-able; {@link restore} continues from it exactly. */
  snapshot(): RngSnapshot {
    return { state: [...this.getState()], spare: this.spareNormal };
  }

  /** Continues from a {@link snapshot}; `where` names the snapshot in errors. */
  restore(snap: RngSnapshot, where = 'rng'): void {
    if (typeof snap !== 'object' || snap === null || !Array.isArray(snap.state)) throw new Error(`${where}: expected { state, spare }`);
    if (!(snap.spare === null || (typeof snap.spare === 'number' && Number.isFinite(snap.spare)))) throw new Error(`${where}.spare: expected a finite number or null`);
    try {
      this.setState(snap.state as unknown as RngState);
    } catch (e) {
      throw new Error(`${where}.state: ${(e as Error).message}`);
    }
    this.spareNormal = snap.spare;
  }

  /** Next raw unsigned 32-bit integer. */
  nextU32(): number {
    const s = this.s;
    const r = Math.imul(rotl(Math.imul(s[1]!, 5) >>> 0, 7), 9) >>> 0;
    const t = (s[1]! << 9) >>> 0;
    s[2]! ^= s[0]!;
    s[3]! ^= s[1]!;
    s[1]! ^= s[2]!;
    s[0]! ^= s[3]!;
    s[2]! ^= t;
    s[3] = rotl(s[3]!, 11);
    return r;
  }

  /** Uniform float in [0, 1) with 32 bits of randomness. */
  float(): number {
    return this.nextU32() / 4294967296;
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    if (!Number.isInteger(n) || n <= 0) throw new Error(`Rng.int needs a positive integer, got ${n}`);
    // rejection sampling for an unbiased result
    const limit = 4294967296 - (4294967296 % n);
    let x = this.nextU32();
    while (x >= limit) x = this.nextU32();
    return x % n;
  }

  /** Uniform float in [lo, hi). */
  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.float();
  }

  /** Standard normal sample (Box–Muller, the second value cached). */
  normal(): number {
    if (this.spareNormal !== null) {
      const v = this.spareNormal;
      this.spareNormal = null;
      return v;
    }
    let u = 0;
    while (u === 0) u = this.float();
    const v = this.float();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spareNormal = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }

  /** In-place Fisher–Yates shuffle; returns the same array. */
  shuffle<T>(a: T[]): T[] {
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = a[i]!;
      a[i] = a[j]!;
      a[j] = t;
    }
    return a;
  }

  /** A random permutation of 0..n-1. */
  permutation(n: number): number[] {
    return this.shuffle(Array.from({ length: n }, (_, i) => i));
  }

  /** An independent child generator (for giving a component its own stream). */
  fork(): Rng {
    return new Rng(this.nextU32() ^ Math.imul(this.nextU32(), 0x9e3779b1));
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}
