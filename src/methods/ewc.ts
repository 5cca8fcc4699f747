/**
 * `ewc` — EWC++ (Chaudhry et al. 2018, the online EWC of Si-Blurry / LifeLong-CLIP) on the adapter learner:
 *
 *   F ← α·F + (1−α)·(∂CE/∂θ)²         every step, in the training graph (empirical Fisher, running average)
 *   L = CE + (λ/2)·Σ F·(θ − θ*)²       θ* = the parameters at the last task boundary (off before the first)
 *
 * F and θ* live beside the parameters in the resident train state (`ewc.fisher:<p>`, `ewc.anchor:<p>`) and never
 * cross the thread boundary during training. Without task boundaries θ* is refreshed every `anchorEvery`
 * stream samples.
 */
import { z } from 'zod';
import { add, grad, mul, reduceSum, sub, type Tensor } from '../graph/index.ts';
import type { TensorData } from '../runtime/types.ts';
import { TrainerOptionsShape, type ClipTrainer, type LossExtension } from './clip-trainer.ts';
import { defineClipMethod, ModelOptionShape, TrainableClipMethod, type TrainableClipParts } from './clip-method.ts';
import type { ClipLease } from './clip-resources.ts';
import type { MethodState, MethodStateContext, ObserveContext, ObserveResult, TaskContext, TaskInfo, TrainBatch } from './method.ts';
import { AdapterShape } from './adapter-clip.ts';
import { adapterPeft } from './peft.ts';

export const EwcSchema = z.strictObject({
  ...ModelOptionShape,
  ...TrainerOptionsShape,
  ...AdapterShape,
  /** Penalty weight λ (LifeLong-CLIP's `reg_coef`: 100). */
  lambda: z.number().min(0).default(100),
  /** Running-average factor α of the Fisher. */
  alpha: z.number().min(0).lt(1).default(0.9),
  anchorEvery: z.int().positive().default(1000),
});
type EwcOptions = z.output<typeof EwcSchema>;

export const fisherName = (p: string) => `ewc.fisher:${p}`;
export const anchorName = (p: string) => `ewc.anchor:${p}`;

function ewcExtension(o: EwcOptions, m: EwcMethod): LossExtension {
  return {
    key: `ewc|l${o.lambda}|a${o.alpha}`,
    build({ g, ce, source, params }) {
      const on = g.input('ewc_on', 'float32', []);
      const grads = grad(ce, params);
      const outputs: Record<string, Tensor> = {};
      let penalty: Tensor | null = null;
      params.forEach((p, i) => {
        const F = source(fisherName(p.name));
        const A = source(anchorName(p.name));
        outputs[`${fisherName(p.name)}.next`] = add(mul(F, o.alpha), mul(mul(grads[i]!, grads[i]!), 1 - o.alpha));
        const d = sub(p, A);
        const term = reduceSum(mul(F, mul(d, d)));
        penalty = penalty ? add(penalty, term) : term;
      });
      return { loss: add(ce, mul(mul(penalty!, on), o.lambda / 2)), outputs };
    },
    feeds: () => ({ ewc_on: { dtype: 'float32', dims: [], data: Float32Array.of(m.anchored ? 1 : 0) } }),
  };
}

class EwcMethod extends TrainableClipMethod {
  anchored = false;
  private lastAnchorAt = 0;
  private ready = false;

  constructor(lease: ClipLease, trainer: ClipTrainer, parts: TrainableClipParts) {
    super(lease, trainer, parts);
    trainer.extension = ewcExtension(parts.options as EwcOptions, this);
  }

  /** Zero Fisher and anchors beside every parameter (once, after the parameters exist). */
  private async ensure(): Promise<void> {
    if (this.ready) return;
    const params = await this.trainer.state.get(this.trainer.peft.trainableNames());
    const extra: Record<string, TensorData> = {};
    for (const [n, t] of Object.entries(params)) {
      extra[fisherName(n)] = { dtype: 'float32', dims: [...t.dims], data: new Float32Array(t.data.length) };
      extra[anchorName(n)] = { dtype: 'float32', dims: [...t.dims], data: new Float32Array(t.data as Float32Array) };
    }
    await this.trainer.engine.putTensors(this.trainer.state.store, extra);
    this.ready = true;
  }

  /** θ* ← θ. */
  private async anchor(): Promise<void> {
    await this.ensure();
    const params = await this.trainer.state.get(this.trainer.peft.trainableNames());
    const extra: Record<string, TensorData> = {};
    for (const [n, t] of Object.entries(params)) extra[anchorName(n)] = t;
    await this.trainer.engine.putTensors(this.trainer.state.store, extra);
    this.anchored = true;
  }

  override async observe(batch: TrainBatch, ctx: ObserveContext): Promise<ObserveResult> {
    await this.ensure();
    const o = this.parts.options as EwcOptions;
    if (!ctx.task && ctx.samplesSeen - this.lastAnchorAt >= o.anchorEvery && this.trainer.steps > 0) {
      this.lastAnchorAt = ctx.samplesSeen;
      await this.anchor();
    }
    return super.observe(batch, ctx);
  }

  override async endTask(task: TaskInfo, ctx: TaskContext): Promise<void> {
    await super.endTask(task, ctx);
    await this.anchor();
  }

  /** Flags and the last anchor time (Fisher and anchors are tensors of the trainer's store). */
  protected override async saveOwnState(): Promise<MethodState> {
    return { tensors: {}, json: { anchored: this.anchored, lastAnchorAt: this.lastAnchorAt, ready: this.ready } };
  }

  protected override async loadOwnState(state: MethodState, _ctx: MethodStateContext): Promise<void> {
    this.anchored = state.json['anchored'] === true;
    this.lastAnchorAt = state.json['lastAnchorAt'] as number;
    this.ready = state.json['ready'] === true;
  }
}

export const ewcMethod = defineClipMethod({
  name: 'ewc',
  summary: 'EWC++: adapters trained online with a running-Fisher quadratic penalty towards the last task\'s values',
  schema: EwcSchema,
  peft: (o, lease, rng) => adapterPeft(lease.features.model.config, o, rng),
  Ctor: EwcMethod,
});
