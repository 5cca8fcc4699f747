/**
 * In-graph optimisers (PyTorch semantics). The learning rate and the step index are graph inputs (scalars of
 * the parameters' float type), so schedules live in TypeScript and one session serves every step.
 */
import type { Tensor } from './tensor.ts';
import { describe, shapeEq } from './tensor.ts';
import { add, div, less, minimum, mul, pow, sqrt, sub, where } from './ops/elementwise.ts';
import { reduceSum } from './ops/reduce.ts';

/** AdamW hyper-parameters (PyTorch defaults). `weightDecay` may depend on the parameter name. */
export interface AdamWConfig {
  kind: 'adamw';
  beta1?: number; // 0.9
  beta2?: number; // 0.999
  eps?: number; // 1e-8
  weightDecay?: number | ((paramName: string) => number); // 0.01
}

/** SGD hyper-parameters (PyTorch defaults: all 0 / false). */
export interface SgdConfig {
  kind: 'sgd';
  momentum?: number;
  dampening?: number;
  nesterov?: boolean;
  weightDecay?: number | ((paramName: string) => number);
}

/** Resolves a (possibly per-parameter) weight decay. */
export function weightDecayFor(wd: number | ((name: string) => number) | undefined, name: string, def: number): number {
  return wd === undefined ? def : typeof wd === 'number' ? wd : wd(name);
}

function checkLike(op: string, p: Tensor, ...xs: Tensor[]): void {
  for (const x of xs) {
    if (x.dtype !== p.dtype || !shapeEq(x.shape, p.shape)) throw new Error(`${op}: ${describe(x)} does not match param ${describe(p)}`);
  }
}

/** `step` is a scalar, or per row [E, 1, …, 1] for row-masked params (see buildTrainStep's `rowMasks`). */
function checkStep(op: string, p: Tensor, step: Tensor): void {
  if (step.shape.length !== 0 && !(step.shape.length === p.shape.length && step.shape[0] === p.shape[0] && step.shape.slice(1).every((d) => d === 1))) {
    throw new Error(`${op}: ${describe(step)} must be a scalar or [${p.shape[0]}${',1'.repeat(p.shape.length - 1)}] for ${describe(p)}`);
  }
  if (step.dtype !== p.dtype) throw new Error(`${op}: ${describe(step)} must be ${p.dtype}`);
}

function checkScalar(op: string, p: Tensor, ...xs: Tensor[]): void {
  for (const x of xs) {
    if (x.dtype !== p.dtype || x.shape.length !== 0) throw new Error(`${op}: ${describe(x)} must be a ${p.dtype} scalar`);
  }
}

/**
 * One AdamW update (PyTorch `torch.optim.AdamW`):
 *   p ← p − lr·wd·p
 *   m ← β₁m + (1−β₁)g,  v ← β₂v + (1−β₂)g²
 *   p ← p − (lr / (1−β₁ᵗ)) · m / (√v / √(1−β₂ᵗ) + ε)      (t = `step`, 1-based; per parameter with `stepPerParam` in train.ts)
 * which equals p − lr·m̂/(√v̂ + ε) with m̂ = m/(1−β₁ᵗ), v̂ = v/(1−β₂ᵗ).
 */
export function adamw(
  t: { param: Tensor; grad: Tensor; m: Tensor; v: Tensor; lr: Tensor; step: Tensor },
  cfg: { beta1?: number; beta2?: number; eps?: number; weightDecay?: number } = {},
): { param: Tensor; m: Tensor; v: Tensor } {
  const { param: p, grad: g, m, v, lr, step } = t;
  checkLike('adamw', p, g, m, v);
  checkScalar('adamw', p, lr);
  checkStep('adamw', p, step);
  const b1 = cfg.beta1 ?? 0.9;
  const b2 = cfg.beta2 ?? 0.999;
  const eps = cfg.eps ?? 1e-8;
  const wd = cfg.weightDecay ?? 0.01;
  const gr = p.graph;
  const decayed = wd !== 0 ? mul(p, sub(1, mul(lr, wd))) : p;
  const m1 = add(mul(m, b1), mul(g, 1 - b1));
  const v1 = add(mul(v, b2), mul(mul(g, g), 1 - b2));
  const bc1 = sub(1, pow(gr.constant(b1, p.dtype), step));
  const bc2sqrt = sqrt(sub(1, pow(gr.constant(b2, p.dtype), step)));
  const denom = add(div(sqrt(v1), bc2sqrt), eps);
  const next = sub(decayed, mul(div(lr, bc1), div(m1, denom)));
  return { param: next, m: m1, v: v1 };
}

/**
 * One SGD update (PyTorch `torch.optim.SGD`):
 *   d = g + wd·p
 *   buf ← d at step 1, else μ·buf + (1−τ)·d        (momentum μ > 0, dampening τ)
 *   d ← d + μ·buf (Nesterov) or buf
 *   p ← p − lr·d
 * `buf` must be given iff momentum > 0 (zeros before the first step).
 */
export function sgd(
  t: { param: Tensor; grad: Tensor; buf?: Tensor | null; lr: Tensor; step: Tensor },
  cfg: { momentum?: number; dampening?: number; nesterov?: boolean; weightDecay?: number } = {},
): { param: Tensor; buf: Tensor | null } {
  const { param: p, grad: g, lr, step } = t;
  const mu = cfg.momentum ?? 0;
  const damp = cfg.dampening ?? 0;
  const wd = cfg.weightDecay ?? 0;
  checkLike('sgd', p, g);
  checkScalar('sgd', p, lr);
  checkStep('sgd', p, step);
  if (cfg.nesterov && (mu <= 0 || damp !== 0)) throw new Error('sgd: Nesterov momentum requires momentum > 0 and zero dampening');
  let d = wd !== 0 ? add(g, mul(p, wd)) : g;
  let buf: Tensor | null = null;
  if (mu !== 0) {
    if (!t.buf) throw new Error('sgd: momentum needs a buf tensor');
    checkLike('sgd', p, t.buf);
    const running = add(mul(t.buf, mu), damp !== 0 ? mul(d, 1 - damp) : d);
    // With a zero buffer and no dampening the running formula already gives d at step 1.
    buf = damp !== 0 ? where(less(step, 1.5), d, running) : running;
    d = cfg.nesterov ? add(d, mul(buf, mu)) : buf;
  }
  return { param: sub(p, mul(lr, d)), buf };
}

/**
 * Clips gradients by their global L2 norm (PyTorch `clip_grad_norm_`): n = √(Σ‖gᵢ‖²),
 * gᵢ ← gᵢ·min(1, maxNorm/(n + 1e-6)). Returns the scaled gradients and the norm before clipping.
 */
export function clipGradNorm(grads: readonly Tensor[], maxNorm: number): { grads: Tensor[]; totalNorm: Tensor } {
  if (grads.length === 0) throw new Error('clipGradNorm: no gradients');
  if (!(maxNorm > 0)) throw new Error(`clipGradNorm: maxNorm must be > 0, got ${maxNorm}`);
  const g0 = grads[0]!;
  return g0.graph.scope('clip_grad_norm', () => {
    let sq: Tensor | null = null;
    for (const g of grads) {
      const s = reduceSum(mul(g, g));
      sq = sq ? add(sq, s) : s;
    }
    const totalNorm = sqrt(sq!);
    const coef = minimum(div(maxNorm, add(totalNorm, 1e-6)), 1);
    return { grads: grads.map((g) => mul(g, coef)), totalNorm };
  });
}
