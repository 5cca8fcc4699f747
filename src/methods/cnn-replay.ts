/** `cnn-replay` — the replay baseline of the CNN track: one full network, every batch trained with buffered samples of every task (the reference's replay manager). */
import { z } from 'zod';
import type { MethodDefinition } from './registry.ts';
import { CnnOptionsShape, createCnnLearner } from '../cnn/learner.ts';

const Schema = z.strictObject({ ...CnnOptionsShape, unusedThreshold: CnnOptionsShape.unusedThreshold.default(10) });

export const cnnReplayMethod: MethodDefinition<typeof Schema> = {
  summary: 'CNN track baseline: one network trained on each batch jointly with all tasks’ buffers',
  schema: Schema,
  create: (o, env) => createCnnLearner('cnn-replay', o, { subnets: false, prune: false, merge: false, replayAll: true, buffers: true }, env),
};
