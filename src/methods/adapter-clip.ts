/**
 * `adapter-clip` — LifeLong-CLIP's Adapter-CLIP baseline: a bottleneck adapter parallel to the MLP of every
 * chosen block of both towers (the MoE-Adapters expert, one expert, gate 1), trained online with cross-entropy
 * over the prompts of the visible classes (`visibleClasses: batch` — SIT's batch-visible classes — or `all`).
 */
import { z } from 'zod';
import { TrainerOptionsShape } from './clip-trainer.ts';
import { defineClipMethod, ModelOptionShape, SitesOptionShape } from './clip-method.ts';
import { adapterPeft } from './peft.ts';

export const AdapterShape = {
  ...SitesOptionShape,
  /** Bottleneck width (MoE-Adapters: 64). */
  bottleneck: z.int({ error: 'expected a positive integer' }).positive({ error: 'expected a positive integer' }).default(64),
  /** Dropout inside the adapter in training (MoE-Adapters: 0.1). */
  dropout: z.number().min(0).lt(1).default(0.1),
};

export const AdapterClipSchema = z.strictObject({ ...ModelOptionShape, ...TrainerOptionsShape, ...AdapterShape });

export const adapterClipMethod = defineClipMethod({
  name: 'adapter-clip',
  summary: 'Adapter-CLIP: one bottleneck adapter parallel to each block MLP of both towers, trained online (LifeLong-CLIP baseline)',
  schema: AdapterClipSchema,
  peft: (o, lease, rng) => adapterPeft(lease.features.model.config, o, rng),
});
