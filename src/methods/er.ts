/**
 * `er` — experience replay (LifeLong-CLIP's ER): the adapter (or fine-tuning) learner, with every training step
 * concatenating samples drawn uniformly from a reservoir memory over the stream. The run's `run.memory` is used
 * when the config sets one; otherwise the method asks the runner for a reservoir of `memorySize` samples and
 * `memoryBatchSize` replay samples per step.
 */
import { z } from 'zod';
import { TrainerOptionsShape } from './clip-trainer.ts';
import { defineClipMethod, ModelOptionShape } from './clip-method.ts';
import { AdapterShape } from './adapter-clip.ts';
import { FinetuneShape, lastLayers } from './finetune.ts';
import { adapterPeft, finetunePeft } from './peft.ts';

export const ErSchema = z.strictObject({
  ...ModelOptionShape,
  ...TrainerOptionsShape,
  ...AdapterShape,
  /** What trains: adapters (default) or the backbone's last blocks. */
  base: z.enum(['adapter', 'finetune']).default('adapter'),
  lastBlocks: FinetuneShape.lastBlocks,
  memorySize: z.int().min(1, { error: 'expected a positive integer' }).default(500),
  memoryBatchSize: z.int().min(1, { error: 'expected a positive integer' }).default(16),
});

export const erMethod = defineClipMethod({
  name: 'er',
  summary: 'Experience replay: adapters (or fine-tuning) trained on each batch plus reservoir-memory samples',
  schema: ErSchema,
  peft: (o, lease, rng) => {
    const model = lease.features.model;
    if (o.base === 'adapter') return adapterPeft(model.config, o, rng);
    const cfg = model.config;
    return finetunePeft(cfg, model.weights, o.towers, (t) => lastLayers(o.lastBlocks, t === 'image' ? cfg.vision.layers : cfg.text.layers));
  },
  replay: (o) => ({ capacity: o.memorySize, batchSize: o.memoryBatchSize }),
});
