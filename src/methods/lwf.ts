/**
 * `lwf` — Learning without Forgetting (Li & Hoiem 2016) on the adapter learner: at each task boundary the
 * current adapters become a frozen teacher; every later step adds a distillation term on the classes exposed
 * before the task (among the visible ones):
 *
 *   L = CE + λ · T² · mean_b( −Σ_{c old} p_c log q_c ),   p = softmax_old(teacher/T), q = softmax_old(student/T)
 *
 * Teacher logits come from a forward pass of the teacher (same graph, teacher store) before the step. Without
 * task boundaries the teacher is refreshed every `teacherEvery` stream samples.
 */
import { z } from 'zod';
import { add, logSoftmax, mul, reduceMean, reduceSum, neg } from '../graph/index.ts';
import type { TensorData } from '../runtime/types.ts';
import { TrainerOptionsShape, type LossExtension } from './clip-trainer.ts';
import { defineClipMethod, ModelOptionShape, TrainableClipMethod, type TrainableClipParts } from './clip-method.ts';
import type { ClipLease } from './clip-resources.ts';
import type { ClipTrainer } from './clip-trainer.ts';
import type { MethodState, MethodStateContext, ObserveContext, ObserveResult, TaskContext, TaskInfo, TrainBatch } from './method.ts';
import { AdapterShape } from './adapter-clip.ts';
import { adapterPeft } from './peft.ts';

export const LwfSchema = z.strictObject({
  ...ModelOptionShape,
  ...TrainerOptionsShape,
  ...AdapterShape,
  /** Weight λ of the distillation term. */
  lambda: z.number().min(0).default(1),
  /** Distillation temperature T. */
  temperature: z.number().positive().default(2),
  /** Task-free runs: refresh the teacher every N stream samples. */
  teacherEvery: z.int().positive().default(1000),
});
type LwfOptions = z.output<typeof LwfSchema>;

/** Masked softmax of each row over the columns with mask 1 (others 0), at temperature T. */
export function maskedSoftmax(logits: Float32Array, rows: number, mask: Uint8Array, T: number): Float32Array {
  const C = mask.length;
  const out = new Float32Array(rows * C);
  for (let i = 0; i < rows; i++) {
    let mx = -Infinity;
    for (let c = 0; c < C; c++) if (mask[c]) mx = Math.max(mx, logits[i * C + c]! / T);
    if (mx === -Infinity) continue;
    let s = 0;
    for (let c = 0; c < C; c++) if (mask[c]) s += Math.exp(logits[i * C + c]! / T - mx);
    for (let c = 0; c < C; c++) if (mask[c]) out[i * C + c] = Math.exp(logits[i * C + c]! / T - mx) / s;
  }
  return out;
}

class LwfMethod extends TrainableClipMethod {
  /** Classes exposed when the teacher was taken. */
  oldClasses = new Set<number>();
  private lastTeacherAt = 0;

  constructor(lease: ClipLease, trainer: ClipTrainer, parts: TrainableClipParts) {
    super(lease, trainer, parts);
    trainer.extension = lwfExtension(parts.options as LwfOptions, this);
  }

  private async refreshTeacher(exposed: readonly number[]): Promise<void> {
    await this.trainer.setTeacher();
    this.oldClasses = new Set(exposed);
  }

  override async beginTask(task: TaskInfo, ctx: TaskContext): Promise<void> {
    await super.beginTask(task, ctx);
    if (this.trainer.steps > 0) await this.refreshTeacher(ctx.exposedClasses.filter((c) => !task.classes.includes(c)));
  }

  override async observe(batch: TrainBatch, ctx: ObserveContext): Promise<ObserveResult> {
    const o = this.parts.options as LwfOptions;
    if (!ctx.task && ctx.samplesSeen - this.lastTeacherAt >= o.teacherEvery && this.trainer.steps > 0) {
      this.lastTeacherAt = ctx.samplesSeen;
      await this.refreshTeacher(ctx.exposedClasses);
    }
    return super.observe(batch, ctx);
  }

  /** The old classes and the last teacher refresh (the teacher's tensors are the trainer's). */
  protected override async saveOwnState(): Promise<MethodState> {
    return { tensors: {}, json: { oldClasses: [...this.oldClasses], lastTeacherAt: this.lastTeacherAt } };
  }

  protected override async loadOwnState(state: MethodState, _ctx: MethodStateContext): Promise<void> {
    this.oldClasses = new Set(state.json['oldClasses'] as number[]);
    this.lastTeacherAt = state.json['lastTeacherAt'] as number;
  }
}

function lwfExtension(o: LwfOptions, m: LwfMethod): LossExtension {
  return {
    key: `lwf|l${o.lambda}|T${o.temperature}`,
    // the old classes' logits are distilled even when the batch has none of their samples
    extraClasses: () => (m.trainer.hasTeacher ? [...m.oldClasses] : []),
    build({ g, logits, ce }) {
      const probs = g.input('kd_probs', 'float32', ['batch', 'classes']);
      const neglect = g.input('kd_neglect', 'float32', ['classes']); // 0 for old classes, −1e9 for the others
      const logq = logSoftmax(add(mul(logits, 1 / o.temperature), neglect), 1);
      const kd = mul(reduceMean(neg(reduceSum(mul(probs, logq), 1))), o.lambda * o.temperature * o.temperature);
      return { loss: add(ce, kd) };
    },
    async feeds({ images, visible, stream }) {
      const C = visible.length;
      const mask = Uint8Array.from(visible, (c) => (m.oldClasses.has(c) ? 1 : 0));
      const any = m.trainer.hasTeacher && mask.some((x) => x === 1);
      let probs: Float32Array = new Float32Array(images.length * C);
      if (any) probs = maskedSoftmax(await m.trainer.teacherLogits(images, visible, stream), images.length, mask, o.temperature);
      const neglect = Float32Array.from(mask, (x) => (x ? 0 : -1e9));
      const out: Record<string, TensorData> = {
        kd_probs: { dtype: 'float32', dims: [images.length, C], data: probs },
        kd_neglect: { dtype: 'float32', dims: [C], data: neglect },
      };
      return out;
    },
  };
}

export const lwfMethod = defineClipMethod({
  name: 'lwf',
  summary: "LwF: adapters trained online with distillation from the previous task's adapters on the old classes",
  schema: LwfSchema,
  peft: (o, lease, rng) => adapterPeft(lease.features.model.config, o, rng),
  Ctor: LwfMethod,
});
