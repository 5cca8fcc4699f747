/** `cnn-finetune` — the CNN track's lower bound: one network, a head per identified task, no buffers, no masks. */
import type { MethodDefinition } from './registry.ts';
import { CnnOptionsSchema, createCnnLearner } from '../cnn/learner.ts';

export const cnnFinetuneMethod: MethodDefinition<typeof CnnOptionsSchema> = {
  summary: 'CNN track baseline: fine-tuning one network (a head per task, no replay)',
  schema: CnnOptionsSchema,
  create: (o, env) => createCnnLearner('cnn-finetune', o, { subnets: false, prune: false, merge: false, replayAll: false, buffers: false }, env),
};
