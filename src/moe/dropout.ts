/**
 * Inverted dropout whose mask comes from a fixed random table shifted by a hash of (fed seed, site salt), so a run
 * is reproducible from its seeds, no mask crosses the thread boundary and the per-element cost is a byte copy.
 *
 * Table: MASK_TABLE_LENGTH = W + C booleans (W = 2²⁰ start positions, C = 2²⁰ the largest contiguous window),
 * each true with probability 1 − p, drawn once from `Rng(MASK_TABLE_SEED)` (the same in every run and process).
 * Start (a scalar hash; all values in [0, 2³¹) with int64 arithmetic, no XOR before opset 18: the nonlinearity is
 * the permutation h·(2h+1) mod 2³¹; `>>` is integer division by a power of two, M = 2³¹, K = 0x2545f491):
 *   mix(h) = h ← h·K mod M; twice { h ← h·(2h+1) mod M; h ← (h + (h >> 16)) mod M }; h ← h·K mod M;
 *            h ← (h + (h >> 16)) mod M
 *   s = mix((seed mod M + salt·0x1e3779b9) mod M) mod W
 * Mask of the n elements of x (row-major): c = min(n, C); keep[i] = table[s + (i mod c)];
 * out = keep ? x · (1/(1 − p)) : 0.
 * (Within one tensor the mask repeats with period C = 1,048,576 elements; different steps and sites get
 * different shifts of the table, so their masks are independent element by element.)
 * The element hash this replaces (the same mixer per element, ≈ 23 int64 ops) cost ≈ 90 ms per MoE training step of
 * moeclip-tiny (800 k hidden activations); the table costs ≈ 3 ms.
 * `seed` is an int64 scalar graph input (the caller draws a new one per step); `salt` separates the sites.
 */
import { type Tensor, describe, mul, reshape, shapeOf, size, where } from '../graph/index.ts';
import type { Graph } from '../graph/index.ts';
import { Rng } from '../util/rng.ts';

/** 2³¹: the hash state stays below it so that h·(2h+1) fits in int64. */
const M = 2147483648;
const MULT = 0x2545f491;
const GOLDEN = 0x1e3779b9;
/** Start positions of a mask window in the table. */
export const MASK_TABLE_STARTS = 2 ** 20;
/** Longest contiguous window; longer tensors repeat it. */
export const MASK_TABLE_WINDOW = 2 ** 20;
export const MASK_TABLE_LENGTH = MASK_TABLE_STARTS + MASK_TABLE_WINDOW;
/** Seed of the table's generator (fixed: the table is part of the method's definition, not of a run). */
export const MASK_TABLE_SEED = 0x5eed;

const tables = new Map<number, Uint8Array>();

/** The keep table for drop probability `p` (1 = keep), computed once per process. */
export function maskTable(p: number): Uint8Array {
  let t = tables.get(p);
  if (!t) {
    const rng = new Rng(MASK_TABLE_SEED);
    t = new Uint8Array(MASK_TABLE_LENGTH);
    for (let i = 0; i < t.length; i++) t[i] = rng.float() >= p ? 1 : 0;
    tables.set(p, t);
  }
  return t;
}

function i64op(g: Graph, op: 'Add' | 'Mul' | 'Div' | 'Mod' | 'Min', a: Tensor, b: Tensor | number): Tensor {
  const bt = typeof b === 'number' ? g.constant(b, 'int64') : b;
  const shape = a.shape.length >= bt.shape.length ? a.shape : bt.shape;
  return g.addNode(op, [a, bt], [{ dtype: 'int64', shape }])[0]!;
}

/** The mixer of the module doc on an int64 tensor with values in [0, 2³¹). */
function mix(g: Graph, h0: Tensor): Tensor {
  let h = i64op(g, 'Mod', i64op(g, 'Mul', h0, MULT), M);
  for (let r = 0; r < 2; r++) {
    h = i64op(g, 'Mod', i64op(g, 'Mul', h, i64op(g, 'Add', i64op(g, 'Mul', h, 2), 1)), M);
    h = i64op(g, 'Mod', i64op(g, 'Add', h, i64op(g, 'Div', h, 65536)), M);
  }
  h = i64op(g, 'Mod', i64op(g, 'Mul', h, MULT), M);
  return i64op(g, 'Mod', i64op(g, 'Add', h, i64op(g, 'Div', h, 65536)), M);
}

/** Options of {@link hashDropout}. */
export interface HashDropoutOptions {
  /** Drop probability (default 0.1, MoE-Adapters' expert dropout). */
  p?: number;
  /** Non-negative integer separating the masks of different sites fed the same seed (default 0). */
  salt?: number;
}

/** One table constant per graph and p (shared by the graph's sites). */
const graphTables = new WeakMap<Graph, Map<number, Tensor>>();

function tableConstant(g: Graph, p: number): Tensor {
  let m = graphTables.get(g);
  if (!m) graphTables.set(g, (m = new Map()));
  let t = m.get(p);
  if (!t) m.set(p, (t = g.constant(maskTable(p), 'bool', [MASK_TABLE_LENGTH])));
  return t;
}

/**
 * Inverted dropout of `x` (float, any shape, symbolic dims allowed): each element is kept when its table entry
 * (module doc) is true and then scaled by 1/(1 − p). `seed` must be an int64 scalar.
 */
export function hashDropout(x: Tensor, seed: Tensor, opts: HashDropoutOptions = {}): Tensor {
  const g = x.graph;
  const p = opts.p ?? 0.1;
  const salt = opts.salt ?? 0;
  if (!(p >= 0 && p < 1)) throw new Error(`hashDropout: p must be in [0, 1), got ${p}`);
  if (!Number.isInteger(salt) || salt < 0 || salt >= 2 ** 20) throw new Error(`hashDropout: salt must be an integer in [0, 2^20), got ${salt}`);
  if (seed.dtype !== 'int64' || seed.shape.length !== 0) throw new Error(`hashDropout: seed must be an int64 scalar, got ${describe(seed)}`);
  if (x.dtype !== 'float32' && x.dtype !== 'float64') throw new Error(`hashDropout: needs a float tensor, got ${describe(x)}`);
  if (p === 0) return x;
  return g.scope('dropout', () => {
    const table = tableConstant(g, p);
    const s = i64op(g, 'Mod', mix(g, i64op(g, 'Mod', i64op(g, 'Add', i64op(g, 'Mod', seed, M), salt * GOLDEN), M)), MASK_TABLE_STARTS);
    const n = reshape(size(x), [1]);
    const c = i64op(g, 'Min', n, g.constant([MASK_TABLE_WINDOW], 'int64', [1]));
    const start = reshape(s, [1]);
    const window = g.addNode('Slice', [table, start, i64op(g, 'Add', start, c)], [{ dtype: 'bool', shape: [g.uniqueName('dropout') + ':c'] }])[0]!;
    // ceil(n / c) copies of the window, cut to n
    const reps = i64op(g, 'Div', i64op(g, 'Add', n, i64op(g, 'Add', c, -1)), c);
    const tiled = g.addNode('Tile', [window, reps], [{ dtype: 'bool', shape: [g.uniqueName('dropout') + ':t'] }])[0]!;
    const flat = g.addNode('Slice', [tiled, g.constant([0], 'int64', [1]), n], [{ dtype: 'bool', shape: [g.uniqueName('dropout') + ':n'] }])[0]!;
    const keep = reshape(flat, shapeOf(x), x.shape);
    const scale = where(keep, g.constant(1 / (1 - p), x.dtype), g.constant(0, x.dtype));
    return mul(x, scale);
  });
}
