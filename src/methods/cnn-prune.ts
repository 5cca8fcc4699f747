/** `cnn-prune` — the pruning-only baseline of the CNN track: subnetworks per task, never merged (the reference's maxSubnets = unusedThreshold = 100). */
import { z } from 'zod';
import type { MethodDefinition } from './registry.ts';
import { CnnOptionsShape, createCnnLearner } from '../cnn/learner.ts';

const Schema = z.strictObject({ ...CnnOptionsShape, unusedThreshold: CnnOptionsShape.unusedThreshold.default(100) });

export const cnnPruneMethod: MethodDefinition<typeof Schema> = {
  summary: 'CNN track baseline: pruned subnetworks per task without merging',
  schema: Schema,
  create: (o, env) => createCnnLearner('cnn-prune', o, { subnets: true, prune: true, merge: false, replayAll: false, buffers: true }, env),
};
