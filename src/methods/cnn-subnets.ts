/** `cnn-subnets` — the CNN track's method: pruned subnetworks per task, replay buffers, connectivity clustering and merging (src/cnn/learner.ts). */
import type { MethodDefinition } from './registry.ts';
import { CnnOptionsSchema, createCnnLearner } from '../cnn/learner.ts';

export const cnnSubnetsMethod: MethodDefinition<typeof CnnOptionsSchema> = {
  summary: 'CNN track: a pruned ResNet subnetwork per identified task, per-task buffers, connectivity clustering and merging beyond maxSubnets',
  schema: CnnOptionsSchema,
  create: (o, env) => createCnnLearner('cnn-subnets', o, { subnets: true, prune: true, merge: true, replayAll: false, buffers: true }, env),
};
