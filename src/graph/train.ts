/**
 * Assembles a whole training step (forward + backward + optimiser update) in one graph.
 *
 * Naming convention (the runtime relies on it):
 * - inputs: the batch (whatever the caller declared); each trainable tensor `<p>` (a graph input the caller
 *   declared); optimiser state `<p>.m`, `<p>.v` (AdamW) or `<p>.buf` (SGD with momentum), same dtype/shape as
 *   `<p>`; scalars `lr` and `step` of the parameters' float type (`step` is the 1-based index of the update
 *   being made, used for bias correction);
 * - outputs, in this order: `loss`; per parameter `<p>.next` then its state `<p>.m.next`, `<p>.v.next`
 *   (`<p>.buf.next`); the `extraOutputs` by their keys; `grad_norm` (the norm before clipping) when
 *   `clipNorm` is set.
 *
 * With `stepPerParam`, there is no `step` input: each parameter has a float32 scalar input `<p>.t` (updates
 * already made to `<p>`), the optimiser uses `<p>.t + 1` as its step, and `<p>.t.next = <p>.t + 1` is output
 * after the parameter's state outputs. Parameters added to a model later thus get their own bias correction.
 */
import type { Graph } from './builder.ts';
import { type Tensor, type DType, describe, isFloat, isStatic } from './tensor.ts';
import { grad } from './autodiff.ts';
import { add, cast, where } from './ops/elementwise.ts';
import { type AdamWConfig, type SgdConfig, adamw, clipGradNorm, sgd, weightDecayFor } from './optim.ts';

/** What `buildTrainStep` needs. */
export interface TrainStepOptions {
  /** Scalar float loss. */
  loss: Tensor;
  /** Trainable tensors: graph inputs with static shapes, all of the loss's dtype. */
  params: Tensor[];
  optimizer: AdamWConfig | SgdConfig;
  /** Clip gradients to this global L2 norm before the update. */
  clipNorm?: number;
  /** More outputs (logits, metrics, ...) by output name. */
  extraOutputs?: Record<string, Tensor>;
  /** A step counter per parameter (`<p>.t`, float32) instead of the shared `step` input. Default false. */
  stepPerParam?: boolean;
  /**
   * Params updated row by row (AdamW or SGD, needs `stepPerParam`): for each listed `<p>` of shape [E, …] a bool input
   * `<p>.rows` [E, 1, …, 1] says which rows train; `<p>.t` is then [E, 1, …, 1] (updates per row). A row whose
   * mask is false gets no update at all: value, moments and count are passed through bit for bit (Where), e.g.
   * the frozen experts of a stacked expert tensor.
   */
  rowMasks?: readonly string[];
  /** Params with per-row step counters `<p>.t` [E, 1, …, 1] but no mask (every row trains); implied by `rowMasks`. */
  rowCounters?: readonly string[];
}

/** Names of a built training-step graph (see the naming convention above). */
export interface TrainStepSpec {
  optimizer: 'adamw' | 'sgd';
  dtype: DType;
  /** Trainable tensor names (`<p>`). */
  paramNames: string[];
  /** Per parameter: its optimiser state input names (`<p>.m`, `<p>.v` / `<p>.buf` / none; not `<p>.t`). */
  stateNames: Record<string, string[]>;
  /** Every graph input in declaration order (batch, params, state, `lr`, `step`). */
  inputNames: string[];
  /** Every graph output in declaration order. */
  outputNames: string[];
  lrName: 'lr';
  /** `step`, or null with `stepPerParam`. */
  stepName: 'step' | null;
  /** Whether each parameter has its own step counter. */
  stepPerParam: boolean;
  /** Per parameter its step-counter input `<p>.t` (empty without `stepPerParam`). */
  stepNames: Record<string, string>;
  /** `grad_norm` when clipping, else null. */
  gradNormName: string | null;
}

/** Returns graph input `name` if declared (checking it is a scalar of `dtype`), else declares it. */
function scalarInput(g: Graph, name: string, dtype: DType): Tensor {
  const existing = g.inputs.find((t) => t.name === name);
  if (!existing) return g.input(name, dtype, []);
  if (existing.dtype !== dtype || existing.shape.length !== 0) {
    throw new Error(`buildTrainStep: input '${name}' must be a ${dtype} scalar, got ${describe(existing)}`);
  }
  return existing;
}

/**
 * Adds gradient, optional clipping and the optimiser update for `params` to `g`, declares the state inputs and
 * all outputs, and returns the names. The graph must not have declared outputs yet.
 */
export function buildTrainStep(g: Graph, opts: TrainStepOptions): TrainStepSpec {
  const { loss, params, optimizer } = opts;
  if (loss.graph !== g) throw new Error('buildTrainStep: loss belongs to another graph');
  if (loss.shape.length !== 0 || !isFloat(loss.dtype)) throw new Error(`buildTrainStep: loss must be a float scalar, got ${describe(loss)}`);
  if (g.outputs.length) throw new Error(`buildTrainStep: graph already has outputs (${g.outputs.map((o) => o.name).join(', ')})`);
  if (params.length === 0) throw new Error('buildTrainStep: no params');
  const dtype = loss.dtype;
  const names = new Set<string>();
  for (const p of params) {
    if (!g.isInput(p)) throw new Error(`buildTrainStep: param ${describe(p)} must be a graph input`);
    if (p.dtype !== dtype) throw new Error(`buildTrainStep: param ${describe(p)} must be ${dtype} like the loss`);
    if (!isStatic(p.shape)) throw new Error(`buildTrainStep: param ${describe(p)} needs a static shape`);
    if (names.has(p.name)) throw new Error(`buildTrainStep: param '${p.name}' listed twice`);
    names.add(p.name);
  }
  const slots = optimizer.kind === 'adamw' ? ['m', 'v'] : (optimizer.momentum ?? 0) !== 0 ? ['buf'] : [];
  const perParam = opts.stepPerParam === true;
  const rowMasked = new Set(opts.rowMasks ?? []);
  const rowCounted = new Set([...(opts.rowCounters ?? []), ...rowMasked]);
  if (rowCounted.size > 0 && !perParam) throw new Error('buildTrainStep: rowMasks / rowCounters need stepPerParam');
  for (const n of rowCounted) if (!names.has(n)) throw new Error(`buildTrainStep: rowMasks / rowCounters name '${n}', which is not a param`);
  const state = new Map<string, Tensor[]>();
  const counters = new Map<string, Tensor>();
  const rows = new Map<string, Tensor>();
  for (const p of params) {
    state.set(p.name, slots.map((s) => g.input(`${p.name}.${s}`, p.dtype, [...p.shape])));
    const rowShape = rowCounted.has(p.name) ? [p.shape[0]!, ...p.shape.slice(1).map(() => 1)] : [];
    if (perParam) counters.set(p.name, g.input(`${p.name}.t`, 'float32', rowShape));
    if (rowMasked.has(p.name)) rows.set(p.name, g.input(`${p.name}.rows`, 'bool', rowShape));
  }
  const lr = scalarInput(g, 'lr', dtype);
  const sharedStep = perParam ? null : scalarInput(g, 'step', dtype);

  let grads = grad(loss, params);
  let gradNorm: Tensor | null = null;
  if (opts.clipNorm !== undefined) {
    const c = clipGradNorm(grads, opts.clipNorm);
    grads = c.grads;
    gradNorm = c.totalNorm;
  }

  g.output(loss, 'loss');
  const stateNames: Record<string, string[]> = {};
  const stepNames: Record<string, string> = {};
  g.scope('optimizer', () => {
    params.forEach((p, i) => {
      const st = state.get(p.name)!;
      stateNames[p.name] = st.map((t) => t.name);
      g.scope(p.name.replace(/\//g, '.'), () => {
        const counter = counters.get(p.name);
        const mask = rows.get(p.name) ?? null;
        let tNext: Tensor | null = null;
        let step: Tensor;
        if (counter) {
          stepNames[p.name] = counter.name;
          tNext = add(counter, 1);
          step = dtype === 'float32' ? tNext : cast(tNext, dtype);
          if (mask) tNext = where(mask, tNext, counter);
        } else {
          step = sharedStep!;
        }
        const keep = (next: Tensor, prev: Tensor): Tensor => (mask ? where(mask, next, prev) : next);
        if (optimizer.kind === 'adamw') {
          const r = adamw(
            { param: p, grad: grads[i]!, m: st[0]!, v: st[1]!, lr, step },
            { beta1: optimizer.beta1, beta2: optimizer.beta2, eps: optimizer.eps, weightDecay: weightDecayFor(optimizer.weightDecay, p.name, 0.01) },
          );
          g.output(keep(r.param, p), `${p.name}.next`);
          g.output(keep(r.m, st[0]!), `${p.name}.m.next`);
          g.output(keep(r.v, st[1]!), `${p.name}.v.next`);
        } else {
          const r = sgd(
            { param: p, grad: grads[i]!, buf: st[0] ?? null, lr, step },
            {
              momentum: optimizer.momentum,
              dampening: optimizer.dampening,
              nesterov: optimizer.nesterov,
              weightDecay: weightDecayFor(optimizer.weightDecay, p.name, 0),
            },
          );
          g.output(keep(r.param, p), `${p.name}.next`);
          if (r.buf) g.output(keep(r.buf, st[0]!), `${p.name}.buf.next`);
        }
        if (tNext) g.output(tNext, `${p.name}.t.next`);
      });
    });
  });
  for (const [name, t] of Object.entries(opts.extraOutputs ?? {})) g.output(t, name);
  if (gradNorm) g.output(gradNorm, 'grad_norm');

  return {
    optimizer: optimizer.kind,
    dtype,
    paramNames: params.map((p) => p.name),
    stateNames,
    inputNames: g.inputs.map((t) => t.name),
    outputNames: g.outputs.map((o) => o.name),
    lrName: 'lr',
    stepName: perParam ? null : 'step',
    stepPerParam: perParam,
    stepNames,
    gradNormName: gradNorm ? 'grad_norm' : null,
  };
}
