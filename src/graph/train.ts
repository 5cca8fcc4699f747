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
 */
import type { Graph } from './builder.ts';
import { type Tensor, type DType, describe, isFloat, isStatic } from './tensor.ts';
import { grad } from './autodiff.ts';
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
}

/** Names of a built training-step graph (see the naming convention above). */
export interface TrainStepSpec {
  optimizer: 'adamw' | 'sgd';
  dtype: DType;
  /** Trainable tensor names (`<p>`). */
  paramNames: string[];
  /** Per parameter: its optimiser state input names (`<p>.m`, `<p>.v` / `<p>.buf` / none). */
  stateNames: Record<string, string[]>;
  /** Every graph input in declaration order (batch, params, state, `lr`, `step`). */
  inputNames: string[];
  /** Every graph output in declaration order. */
  outputNames: string[];
  lrName: 'lr';
  stepName: 'step';
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
  const state = new Map<string, Tensor[]>();
  for (const p of params) state.set(p.name, slots.map((s) => g.input(`${p.name}.${s}`, p.dtype, [...p.shape])));
  const lr = scalarInput(g, 'lr', dtype);
  const step = scalarInput(g, 'step', dtype);

  let grads = grad(loss, params);
  let gradNorm: Tensor | null = null;
  if (opts.clipNorm !== undefined) {
    const c = clipGradNorm(grads, opts.clipNorm);
    grads = c.grads;
    gradNorm = c.totalNorm;
  }

  g.output(loss, 'loss');
  const stateNames: Record<string, string[]> = {};
  g.scope('optimizer', () => {
    params.forEach((p, i) => {
      const st = state.get(p.name)!;
      stateNames[p.name] = st.map((t) => t.name);
      g.scope(p.name.replace(/\//g, '.'), () => {
        if (optimizer.kind === 'adamw') {
          const r = adamw(
            { param: p, grad: grads[i]!, m: st[0]!, v: st[1]!, lr, step },
            { beta1: optimizer.beta1, beta2: optimizer.beta2, eps: optimizer.eps, weightDecay: weightDecayFor(optimizer.weightDecay, p.name, 0.01) },
          );
          g.output(r.param, `${p.name}.next`);
          g.output(r.m, `${p.name}.m.next`);
          g.output(r.v, `${p.name}.v.next`);
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
          g.output(r.param, `${p.name}.next`);
          if (r.buf) g.output(r.buf, `${p.name}.buf.next`);
        }
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
    stepName: 'step',
    gradNormName: gradNorm ? 'grad_norm' : null,
  };
}
