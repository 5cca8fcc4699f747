/**
 * `lora-clip` — LifeLong-CLIP's LoRA-CLIP baseline: low-rank updates of the attention projections (q and v by
 * default) in every chosen block of both towers, trained online with cross-entropy over the visible prompts.
 */
import { z } from 'zod';
import { TrainerOptionsShape } from './clip-trainer.ts';
import { defineClipMethod, ModelOptionShape, SitesOptionShape } from './clip-method.ts';
import { loraPeft } from './peft.ts';

export const LoraClipSchema = z.strictObject({
  ...ModelOptionShape,
  ...TrainerOptionsShape,
  ...SitesOptionShape,
  rank: z.int({ error: 'expected a positive integer' }).positive({ error: 'expected a positive integer' }).default(4),
  /** LoRA α; the update is scaled by α / rank. */
  alpha: z.number().positive().default(4),
  projections: z.array(z.enum(['q', 'k', 'v', 'out'])).min(1).default(['q', 'v']),
});

export const loraClipMethod = defineClipMethod({
  name: 'lora-clip',
  summary: 'LoRA-CLIP: low-rank updates of the attention q/v projections of both towers, trained online (LifeLong-CLIP baseline)',
  schema: LoraClipSchema,
  peft: (o, lease, rng) => loraPeft(lease.features.model.config, o, rng),
});
