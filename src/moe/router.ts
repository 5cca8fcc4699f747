/**
 * MoE routers as graph code: the router token of a block, noisy top-k gating (Shazeer et al. 2017, as in
 * MoE-Adapters4CL `noisy_top_k_gating`), per-sample router selection, usage counts and the optional
 * load-balancing loss.
 *
 * Gating of router input t [B, d] with W_g, W_n [d, E] (no bias):
 *   clean = t·W_g;  training with noise: logits = clean + ε ⊙ (softplus(t·W_n) + 0.01), ε [B, E] fed by the caller;
 *   otherwise logits = clean. Top-k of the logits (TopK indices carry no gradient); gates = softmax over the k
 *   selected logits (0 elsewhere), so W_g and W_n get their gradient through that softmax.
 * Experts a router may not select are either left out (`columns`) or get the logit −1e9 (per-sample form).
 */
import {
  type Tensor,
  abs,
  add,
  argMax,
  cast,
  describe,
  dimEq,
  div,
  erf,
  exp,
  expand,
  gather,
  gatherElements,
  greater,
  greaterOrEqual,
  matmul,
  mul,
  neg,
  oneHot,
  reduceMean,
  reduceSum,
  reshape,
  scatterElements,
  slice,
  softmax,
  softplus,
  sub,
  topk,
  unsqueeze,
  where,
  zerosLike,
  concat,
} from '../graph/index.ts';
import type { Tower } from '../clip/model.ts';

/** Which text token feeds the text routers: EOT (highest id of the row; default) or token 0 (SOT, the reference). */
export type RouterToken = 'eot' | 'sot';

/** Logit given to experts a router may not select. */
export const MASKED_LOGIT = -1e9;
/** Added to the noise standard deviation (as the reference). */
export const NOISE_EPSILON = 0.01;
/** Weight of the load-balancing loss per site. */
export const BALANCE_WEIGHT = 1e-2;

/**
 * The router input of a block: one token per sample of x [B, T, w] → [B, w]. Image tower: token 0 (CLS). Text
 * tower: the EOT token (position of each row's highest id in `textIds` [B, T]) or token 0 with `token: 'sot'`
 * (under the causal mask its state is the same for every prompt, so routing becomes input-independent).
 */
export function routerToken(x: Tensor, tower: Tower, opts: { textIds?: Tensor; token?: RouterToken } = {}): Tensor {
  const g = x.graph;
  if (x.shape.length !== 3) throw new Error(`routerToken: x must be [B,T,w], got ${describe(x)}`);
  const token = opts.token ?? 'eot';
  if (token !== 'eot' && token !== 'sot') throw new Error(`routerToken: textRouterToken must be 'eot' or 'sot', got ${JSON.stringify(token)}`);
  if (tower === 'image' || token === 'sot') return gather(x, g.constant(0, 'int64'), 1);
  const ids = opts.textIds;
  if (!ids) throw new Error("routerToken: textIds are needed for the text tower's 'eot' router token");
  if (ids.dtype !== 'int64' || ids.shape.length !== 2 || !dimEq(ids.shape[0]!, x.shape[0]!) || !dimEq(ids.shape[1]!, x.shape[1]!)) {
    throw new Error(`routerToken: textIds must be int64 [B,T] matching ${describe(x)}, got ${describe(ids)}`);
  }
  const w = x.shape[2]!;
  const eot = argMax(cast(ids, 'int32'), -1, true); // [B, 1]
  const idx = expand(unsqueeze(eot, 2), [x.shape[0]!, 1, w]); // [B, 1, w]
  return reshape(gatherElements(x, idx, 1), [x.shape[0]!, w]);
}

/** The result of a gating: what the experts and the counters need. */
export interface Gating {
  /** softmax over the selected logits [B, k]. */
  gates: Tensor;
  /** int64 [B, k]: selected columns of `logits`, by decreasing logit. */
  indices: Tensor;
  /** The logits the selection was made on [B, C] (noisy in training, masked or column-restricted). */
  logits: Tensor;
  /** The clean logits on the same columns [B, C]. */
  clean: Tensor;
  /** softplus(t·W_n) + 0.01 on the same columns [B, C], or null without noise. */
  noiseStd: Tensor | null;
  k: number;
}

/** Options of {@link noisyTopKGating}. */
export interface GatingOptions {
  k: number;
  /** Noisy gating: W_n [d, E] and the standard normal draws ε [B, E]. */
  noise?: { weight: Tensor; eps: Tensor } | null;
  /** Only these columns of W_g (ascending) may be selected; indices then count within them. Default all. */
  columns?: readonly number[] | null;
  /**
   * Compute t·W per sample as a batched [1, d]·[d, E] product: the arithmetic of {@link stackedRouterGating}, so
   * a single-router evaluation matches the per-sample form bit for bit. Default false (one [B, d]·[d, E] product).
   */
  batched?: boolean;
  /** Names the site in errors. */
  what?: string;
}

function checkRouter(t: Tensor, w: Tensor, what: string, name: string): void {
  if (t.shape.length !== 2) throw new Error(`${what}: router input must be [B,d], got ${describe(t)}`);
  if (w.dtype !== t.dtype || w.shape.length !== 2 || !dimEq(w.shape[0]!, t.shape[1]!) || typeof w.shape[1] !== 'number') {
    throw new Error(`${what}: ${name} must be ${t.dtype} [${t.shape[1]},E], got ${describe(w)}`);
  }
}

/** t [B, d] · W [d, E] as B products [1, d]·[d, E] (W broadcast over the batch) → [B, E]. */
function batchedProduct(t: Tensor, w: Tensor): Tensor {
  const B = t.shape[0]!;
  const wb = expand(unsqueeze(w, 0), [B, w.shape[0]!, w.shape[1]!]);
  return reshape(matmul(unsqueeze(t, 1), wb), [B, w.shape[1]!]);
}

/** Noisy (or clean) top-k gating of t [B, d] with W_g [d, E] (see the module doc). */
export function noisyTopKGating(t: Tensor, gate: Tensor, opts: GatingOptions): Gating {
  const what = opts.what ?? 'noisyTopKGating';
  checkRouter(t, gate, what, 'gate');
  const g = t.graph;
  const E = gate.shape[1] as number;
  const cols = opts.columns ?? null;
  if (cols) {
    if (cols.length === 0 || cols.some((c, i) => !Number.isInteger(c) || c < 0 || c >= E || (i > 0 && c <= cols[i - 1]!))) {
      throw new Error(`${what}: columns must be ascending indices below ${E}, got [${cols.join(',')}]`);
    }
  }
  const C = cols ? cols.length : E;
  const k = opts.k;
  if (!Number.isInteger(k) || k < 1 || k > C) throw new Error(`${what}: topK=${k} must be an integer in 1..${C} (the experts it may select)`);
  const restrict = (z: Tensor): Tensor => (cols && cols.length < E ? gather(z, g.constant(cols, 'int64', [cols.length]), 1) : z);
  const product = (w: Tensor): Tensor => (opts.batched ? batchedProduct(t, w) : matmul(t, w));
  const clean = restrict(product(gate));
  let logits = clean;
  let noiseStd: Tensor | null = null;
  if (opts.noise) {
    const { weight, eps } = opts.noise;
    checkRouter(t, weight, what, 'noise');
    if (!dimEq(weight.shape[1]!, E)) throw new Error(`${what}: noise ${describe(weight)} must have the ${E} columns of the gate`);
    if (eps.dtype !== t.dtype || eps.shape.length !== 2 || !dimEq(eps.shape[1]!, E)) throw new Error(`${what}: noise draws must be ${t.dtype} [B,${E}], got ${describe(eps)}`);
    noiseStd = add(softplus(restrict(product(weight))), NOISE_EPSILON);
    logits = add(clean, mul(restrict(eps), noiseStd));
  }
  const top = topk(logits, k, -1);
  return { gates: softmax(top.values, -1), indices: top.indices, logits, clean, noiseStd, k };
}

/** Per-sample gating with stacked routers; `valid` [B] is false for samples without adapters. */
export interface StackedGating extends Gating {
  valid: Tensor;
}

/**
 * Clean top-k gating where sample b uses router `routerPos[b]` of `routers` (each W_g [d, E]; int64 [B], −1: no
 * router — its gates are 0 and `valid[b]` is false). `allowed[r]` (null: every expert) masks what router r may
 * select with {@link MASKED_LOGIT}. Indices are expert columns 0..E−1.
 */
export function stackedRouterGating(
  t: Tensor,
  routers: readonly Tensor[],
  routerPos: Tensor,
  opts: { k: number; allowed?: readonly (readonly boolean[] | null)[]; what?: string },
): StackedGating {
  const what = opts.what ?? 'stackedRouterGating';
  if (routers.length === 0) throw new Error(`${what}: no routers`);
  routers.forEach((r, i) => checkRouter(t, r, what, `router ${i}`));
  const E = routers[0]!.shape[1] as number;
  routers.forEach((r, i) => {
    if (r.shape[1] !== E) throw new Error(`${what}: router ${i} ${describe(r)} has not the ${E} columns of router 0`);
  });
  if (routerPos.dtype !== 'int64' || routerPos.shape.length !== 1 || !dimEq(routerPos.shape[0]!, t.shape[0]!)) {
    throw new Error(`${what}: router index must be int64 [B] like ${describe(t)}, got ${describe(routerPos)}`);
  }
  const allowed = opts.allowed ?? [];
  const k = opts.k;
  routers.forEach((_, r) => {
    const a = allowed[r] ?? null;
    if (a && a.length !== E) throw new Error(`${what}: allowed mask of router ${r} has ${a.length} entries, want ${E}`);
    const n = a ? a.filter(Boolean).length : E;
    if (!Number.isInteger(k) || k < 1 || k > n) throw new Error(`${what}: topK=${k} must be an integer in 1..${n} (the experts router ${r} may select)`);
  });
  const g = t.graph;
  const valid = greaterOrEqual(routerPos, 0);
  const pos = where(valid, routerPos, g.constant(0, 'int64'));
  const stack = concat(routers.map((r) => unsqueeze(r, 0)), 0); // [R, d, E]
  const wsel = gather(stack, pos, 0); // [B, d, E]
  let logits = reshape(matmul(unsqueeze(t, 1), wsel), [t.shape[0]!, E]);
  const clean = logits;
  if (routers.some((_, r) => allowed[r] && allowed[r]!.some((v) => !v))) {
    const mask = routers.flatMap((_, r) => (allowed[r] ? allowed[r]!.map((v) => (v ? 1 : 0)) : new Array<number>(E).fill(1)));
    const rows = gather(g.constant(mask, 'bool', [routers.length, E]), pos, 0); // [B, E]
    logits = where(rows, logits, g.constant(MASKED_LOGIT, t.dtype));
  }
  const top = topk(logits, k, -1);
  const gates = mul(softmax(top.values, -1), cast(unsqueeze(valid, 1), t.dtype));
  return { gates, indices: top.indices, logits, clean, noiseStd: null, k, valid };
}

/**
 * Samples per expert: Σ_b [e ∈ indices[b]] as float32 [E] (`valid` [B] bool excludes samples). `columns` maps
 * indices that count within a column subset back to the E expert columns.
 */
export function usageCounts(indices: Tensor, E: number, opts: { columns?: readonly number[] | null; valid?: Tensor | null } = {}): Tensor {
  const g = indices.graph;
  const cols = opts.columns ?? null;
  const idx = cols && cols.length < E ? gather(g.constant(cols, 'int64', [cols.length]), indices, 0) : indices;
  let hot = oneHot(idx, E, 'float32'); // [B, k, E]
  if (opts.valid) hot = mul(hot, cast(unsqueeze(opts.valid, [1, 2]), 'float32'));
  return reduceSum(hot, [0, 1]);
}

/**
 * Standard normal CDF Φ(x). float32: 0.5·(1 + erf(x/√2)); float64 (no Erf kernel on the CPU provider): the same
 * with erfc from the Chebyshev fit of Numerical Recipes (`erfcc`, fractional error < 1.2e-7), smooth and composed
 * of basic ops.
 */
export function normalCdf(x: Tensor): Tensor {
  if (x.dtype === 'float32') return mul(add(erf(mul(x, Math.SQRT1_2)), 1), 0.5);
  const g = x.graph;
  return g.scope('normal_cdf', () => {
    const z = mul(x, -Math.SQRT1_2); // Φ(x) = erfc(−x/√2) / 2
    const az = abs(z);
    const t = div(g.constant(1, x.dtype), add(mul(az, 0.5), 1));
    const c = [-1.26551223, 1.00002368, 0.37409196, 0.09678418, -0.18628806, 0.27886807, -1.13520398, 1.48851587, -0.82215223, 0.17087277];
    let poly: Tensor = mul(t, c[9]!);
    for (let i = 8; i >= 1; i--) poly = mul(t, add(poly, c[i]!));
    const ans = mul(t, exp(add(add(neg(mul(z, z)), c[0]!), poly)));
    const erfc = where(greaterOrEqual(z, 0), ans, sub(g.constant(2, x.dtype), ans));
    return mul(erfc, 0.5);
  });
}

/** cv²(v) = var(v) / (mean(v)² + 1e-10) with the unbiased variance over the last axis of v [E]; 0 when E = 1. */
function cv2(v: Tensor): Tensor {
  const n = v.shape[0] as number;
  if (n === 1) return v.graph.constant(0, v.dtype);
  const mean = reduceMean(v, 0, true);
  const d = sub(v, mean);
  const variance = div(reduceSum(mul(d, d), 0), n - 1);
  const m = reduceMean(v, 0);
  return div(variance, add(mul(m, m), 1e-10));
}

/**
 * Load-balancing loss of one gating: (cv²(importance) + cv²(load)) · 1e-2 over its C columns, importance = Σ_b
 * gates. load with noise and k < C: Σ_b P(expert in top-k) — Shazeer's smooth estimate Φ((clean − threshold) /
 * noiseStd), threshold the (k+1)-th largest noisy logit for experts in the top k and the k-th largest for the
 * others; otherwise the number of samples with a non-zero gate (no gradient). Returns a scalar.
 */
export function balanceLoss(gt: Gating): Tensor {
  const g = gt.gates.graph;
  return g.scope('balance', () => {
    const C = gt.logits.shape[1];
    if (typeof C !== 'number') throw new Error(`balanceLoss: logits need a static column count, got ${describe(gt.logits)}`);
    const full = scatterElements(zerosLike(gt.logits), gt.indices, gt.gates, 1); // [B, C]
    const importance = reduceSum(full, 0);
    let load: Tensor;
    if (gt.noiseStd && gt.k < C) {
      const top = topk(gt.logits, gt.k + 1, -1).values; // [B, k+1]
      const thrIn = slice(top, [gt.k], [gt.k + 1], [1]); // [B, 1]
      const thrOut = slice(top, [gt.k - 1], [gt.k], [1]);
      const isIn = greater(gt.logits, thrIn);
      const pIn = normalCdf(div(sub(gt.clean, thrIn), gt.noiseStd));
      const pOut = normalCdf(div(sub(gt.clean, thrOut), gt.noiseStd));
      load = reduceSum(where(isIn, pIn, pOut), 0);
    } else {
      load = reduceSum(cast(greater(full, 0), full.dtype), 0);
    }
    return mul(add(cv2(importance), cv2(load)), BALANCE_WEIGHT);
  });
}
