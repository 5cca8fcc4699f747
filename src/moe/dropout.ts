/**
 * Inverted dropout with the mask computed in the graph from a hash of (element index, fed seed, site salt), so a
 * run is reproducible from its seeds and no mask crosses the thread boundary.
 *
 * Hash (all values in [0, 2³¹) with int64 arithmetic, no XOR before opset 18: the nonlinearity is the permutation
 * h·(2h+1) mod 2³¹; `>>` is integer division by a power of two, M = 2³¹, C = 0x2545f491):
 *   mix(h) = h ← h·C mod M; twice { h ← h·(2h+1) mod M; h ← (h + (h >> 16)) mod M }; h ← h·C mod M;
 *            h ← (h + (h >> 16)) mod M
 *   s = mix((seed mod M + salt·0x1e3779b9) mod M)             (a scalar)
 *   u = mix((i + s) mod M)                                     (i: row-major element index)
 *   keep = u < round((1 − p)·M);  out = keep ? x · (1/(1 − p)) : 0
 * About 23 elementwise int64 ops per element of x.
 * `seed` is an int64 scalar graph input (the caller draws a new one per step); `salt` separates the sites.
 */
import { type Tensor, describe, less, mul, reshape, shapeOf, size, where } from '../graph/index.ts';
import type { Graph } from '../graph/index.ts';

/** 2³¹: the hash state stays below it so that h·(2h+1) fits in int64. */
const M = 2147483648;
const MULT = 0x2545f491;
const GOLDEN = 0x1e3779b9;

function i64op(g: Graph, op: 'Add' | 'Mul' | 'Div' | 'Mod', a: Tensor, b: Tensor | number): Tensor {
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

/**
 * Inverted dropout of `x` (float, any shape, symbolic dims allowed): each element is kept when its hash is below
 * (1 − p)·2³¹ and then scaled by 1/(1 − p). `seed` must be an int64 scalar.
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
    const s = mix(g, i64op(g, 'Mod', i64op(g, 'Add', i64op(g, 'Mod', seed, M), salt * GOLDEN), M));
    const n = size(x);
    const idx = g.addNode('Range', [g.constant(0, 'int64'), n, g.constant(1, 'int64')], [{ dtype: 'int64', shape: [g.uniqueName('dropout') + ':n'] }])[0]!;
    const idxShaped = reshape(idx, shapeOf(x), x.shape);
    const u = mix(g, i64op(g, 'Mod', i64op(g, 'Add', idxShaped, s), M));
    const keep = less(u, g.constant(Math.round((1 - p) * M), 'int64'));
    const scale = where(keep, g.constant(1 / (1 - p), x.dtype), g.constant(0, x.dtype));
    return mul(x, scale);
  });
}
