/**
 * MoE-Adapters experts as graph code (MoE-Adapters4CL `Adapter`, the "lora" init):
 *   expert(x) = 0.1 · (dropout(relu(x·downᵀ + b_down)) · upᵀ + b_up)      down [bn, d], up [d, bn]
 * applied to every token; no inner residual, no LayerNorm; dropout p = 0.1 in training only.
 *
 * Two forms share the same expert arithmetic ({@link expertMlp}):
 * - dense ({@link expertForward}): one expert on x [..., d] (the adapter baseline, gate 1);
 * - selected ({@link selectedExpertsForward}): per sample only the k routed experts. The experts' tensors are
 *   stacked ([E, d, bn], [E, 1, bn], [E, bn, d], [E, 1, d]), gathered by the routing indices [B, k] and applied with
 *   batched MatMul (x [B, 1, T, d] @ W [B, k, d, bn] …); gradients return to each expert's own tensors through the
 *   Gather (ScatterElements-add) and Concat rules. The output is Σ_k gate_k · expert_k(x), with the 0.1 folded
 *   into the gates. Memory: the gathered weights take 2·B·k·d·bn values per site. Dropout element indices run
 *   over the hidden activations [B, k, T, bn] (so a mask belongs to a sample's k-th choice, not to an expert id).
 */
import { type Tensor, add, cast, concat, describe, dimEq, matmul, mul, oneHot, reduceSum, relu, reshape, transpose, unsqueeze } from '../graph/index.ts';
import { hashDropout } from './dropout.ts';

/** Output scale of every expert. */
export const EXPERT_SCALE = 0.1;
/** Drop probability of the expert's hidden activations in training. */
export const EXPERT_DROPOUT = 0.1;

/** One expert's four tensors (PyTorch Linear layout). */
export interface ExpertTensors {
  /** [bn, d] */
  downWeight: Tensor;
  /** [bn] */
  downBias: Tensor;
  /** [d, bn] */
  upWeight: Tensor;
  /** [d] */
  upBias: Tensor;
}

/** Dropout of the hidden activations: an int64 scalar seed input and a per-site salt (see dropout.ts). */
export interface ExpertDropout {
  seed: Tensor;
  salt: number;
  /** Default {@link EXPERT_DROPOUT}. */
  p?: number;
}

/** Checks one expert's shapes and dtypes against width `d`; returns the bottleneck. */
export function checkExpert(e: ExpertTensors, d: number, dtype: string, what: string): number {
  const bn = e.downWeight.shape[0];
  if (typeof bn !== 'number') throw new Error(`${what}: downWeight needs a static shape, got ${describe(e.downWeight)}`);
  const want: [keyof ExpertTensors, number[]][] = [
    ['downWeight', [bn, d]],
    ['downBias', [bn]],
    ['upWeight', [d, bn]],
    ['upBias', [d]],
  ];
  for (const [k, shape] of want) {
    const t = e[k];
    if (t.dtype !== dtype || t.shape.length !== shape.length || !t.shape.every((v, i) => dimEq(v, shape[i]!))) {
      throw new Error(`${what}: ${k} must be ${dtype}[${shape.join(',')}], got ${describe(t)}`);
    }
  }
  return bn;
}

/**
 * The expert arithmetic on pre-arranged operands: 0.1-less `relu(x·A + a)·U + u` with optional dropout on the
 * hidden activations. A [..., d, bn] and U [..., bn, d] broadcast against x's batch axes (matmul semantics).
 */
export function expertMlp(x: Tensor, a: Tensor, aBias: Tensor, u: Tensor, uBias: Tensor, dropout?: ExpertDropout | null): Tensor {
  let h = relu(add(matmul(x, a), aBias));
  if (dropout) h = hashDropout(h, dropout.seed, { p: dropout.p ?? EXPERT_DROPOUT, salt: dropout.salt });
  return add(matmul(h, u), uBias);
}

/** Dense single expert: x [..., d] → 0.1 · expert(x) [..., d]. */
export function expertForward(x: Tensor, e: ExpertTensors, dropout?: ExpertDropout | null): Tensor {
  const d = x.shape[x.shape.length - 1];
  if (typeof d !== 'number') throw new Error(`expertForward: the feature dim of ${describe(x)} must be static`);
  checkExpert(e, d, x.dtype, 'expertForward');
  return x.graph.scope('expert', () => {
    const y = expertMlp(x, transpose(e.downWeight, [1, 0]), e.downBias, transpose(e.upWeight, [1, 0]), e.upBias, dropout);
    return mul(y, EXPERT_SCALE);
  });
}

/** The experts of one site stacked along a new leading axis (row e = expert e of the list). */
export interface StackedExperts {
  /** [E, d, bn] (down weights transposed) */
  down: Tensor;
  /** [E, 1, bn] */
  downBias: Tensor;
  /** [E, bn, d] (up weights transposed) */
  up: Tensor;
  /** [E, 1, d] */
  upBias: Tensor;
  count: number;
  width: number;
  bottleneck: number;
}

/** Stacks experts (Concat of Unsqueeze'd, transposed tensors). All must share width, bottleneck and dtype. */
export function stackExperts(experts: readonly ExpertTensors[], width: number): StackedExperts {
  if (experts.length === 0) throw new Error('stackExperts: no experts');
  const dtype = experts[0]!.downWeight.dtype;
  const bn = checkExpert(experts[0]!, width, dtype, 'stackExperts: expert 0');
  experts.forEach((e, i) => {
    const b = checkExpert(e, width, dtype, `stackExperts: expert ${i}`);
    if (b !== bn) throw new Error(`stackExperts: expert ${i} has bottleneck ${b}, expert 0 has ${bn}`);
  });
  const g = experts[0]!.downWeight.graph;
  return g.scope('experts', () => ({
    down: concat(experts.map((e) => unsqueeze(transpose(e.downWeight, [1, 0]), 0)), 0),
    downBias: concat(experts.map((e) => reshape(e.downBias, [1, 1, bn])), 0),
    up: concat(experts.map((e) => unsqueeze(transpose(e.upWeight, [1, 0]), 0)), 0),
    upBias: concat(experts.map((e) => reshape(e.upBias, [1, 1, width])), 0),
    count: experts.length,
    width,
    bottleneck: bn,
  }));
}

/**
 * Σ_k gates[b, k] · 0.1 · expert_{indices[b, k]}(x[b]) for x [B, T, d], indices int64 [B, k] (rows of `stack`),
 * gates [B, k]; only the selected experts are computed. Returns [B, T, d].
 */
export function selectedExpertsForward(x: Tensor, stack: StackedExperts, indices: Tensor, gates: Tensor, dropout?: ExpertDropout | null): Tensor {
  if (x.shape.length !== 3 || !dimEq(x.shape[2]!, stack.width)) throw new Error(`selectedExpertsForward: x must be [B,T,${stack.width}], got ${describe(x)}`);
  if (indices.dtype !== 'int64' || indices.shape.length !== 2) throw new Error(`selectedExpertsForward: indices must be int64 [B,k], got ${describe(indices)}`);
  if (gates.dtype !== x.dtype || gates.shape.length !== 2 || !dimEq(gates.shape[1]!, indices.shape[1]!)) {
    throw new Error(`selectedExpertsForward: gates must be ${x.dtype} [B,k] like the indices ${describe(indices)}, got ${describe(gates)}`);
  }
  if (stack.down.dtype !== x.dtype) throw new Error(`selectedExpertsForward: experts are ${stack.down.dtype}, x is ${describe(x)}`);
  const g = x.graph;
  return g.scope('selected', () => {
    // rows picked by a one-hot product rather than Gather: the backward is then one GEMM per tensor
    // (onehotᵀ · dW) instead of a ScatterElements over an index tensor as large as the gathered weights
    const E = stack.count;
    const hot = oneHot(indices, E, 'float32'); // ORT's CPU OneHot has no float64 kernel
    const sel = reshape(x.dtype === 'float32' ? hot : cast(hot, x.dtype), [-1, E]); // [B·k, E]
    const pick = (w: Tensor, rest: readonly number[]): Tensor => {
      const n = rest.reduce((p, q) => p * q, 1);
      return reshape(matmul(sel, reshape(w, [E, n])), [indices.shape[0]!, indices.shape[1]!, ...rest]);
    };
    const d = stack.width;
    const bn = stack.bottleneck;
    const a = pick(stack.down, [d, bn]); // [B, k, d, bn]
    const ab = pick(stack.downBias, [1, bn]); // [B, k, 1, bn]
    const u = pick(stack.up, [bn, d]); // [B, k, bn, d]
    const ub = pick(stack.upBias, [1, d]); // [B, k, 1, d]
    const y = expertMlp(unsqueeze(x, 1), a, ab, u, ub, dropout); // [B, k, T, d]
    const w = unsqueeze(mul(gates, EXPERT_SCALE), [2, 3]); // [B, k, 1, 1]
    return reduceSum(mul(y, w), 1); // [B, T, d]
  });
}
