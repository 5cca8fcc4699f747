/**
 * `finetune` — plain online fine-tuning: the backbone's own weights of the last N blocks (or every weight of the
 * tower, `lastBlocks: all`) train with cross-entropy over the visible prompts; no protection against forgetting.
 */
import { z } from 'zod';
import { TrainerOptionsShape } from './clip-trainer.ts';
import { defineClipMethod, ModelOptionShape } from './clip-method.ts';
import { finetunePeft } from './peft.ts';

export const FinetuneShape = {
  towers: z.array(z.enum(['image', 'text'])).min(1).default(['image']),
  /** Train the last N blocks of each tower, or `all` of its weights. */
  lastBlocks: z.union([z.int().positive(), z.literal('all')], { error: "expected a positive integer or 'all'" }).default(2),
};

export const FinetuneSchema = z.strictObject({ ...ModelOptionShape, ...TrainerOptionsShape, lr: TrainerOptionsShape.lr.default(1e-5), ...FinetuneShape });

/** `layers(tower)` for a `lastBlocks` option, checked against the tower's depth (error names the field). */
export function lastLayers(n: number | 'all', depth: number): readonly number[] | 'all' {
  if (n === 'all') return 'all';
  if (n > depth) throw new Error(`method.lastBlocks: ${n} blocks asked but the tower has ${depth}`);
  return Array.from({ length: n }, (_, i) => depth - n + i);
}

export const finetuneMethod = defineClipMethod({
  name: 'finetune',
  summary: 'Fine-tuning: the last N blocks (or all weights) of the chosen towers train online, no anti-forgetting term',
  schema: FinetuneSchema,
  peft: (o, lease) => {
    const cfg = lease.features.model.config;
    return finetunePeft(cfg, lease.features.model.weights, o.towers, (t) => lastLayers(o.lastBlocks, t === 'image' ? cfg.vision.layers : cfg.text.layers));
  },
});
