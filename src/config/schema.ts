/**
 * The run-config schema (zod 4). A config is a YAML or JSON file:
 *
 *   name: ncm-split-mnist          # optional; names the default run folder
 *   seed: 1                        # run seed (replay sampling, augmentation, method rng)
 *   seeds: [1, 2, 3]               # optional: one run per seed (run seed and stream seed), then a summary
 *   stream: { kind: ..., ... }     # a StreamSpec (src/data/streams.ts)
 *   method: { name: ncm, ... }     # method name + that method's options (its own schema)
 *   run:
 *     batchSize: 16                # incoming samples per stream batch
 *     onlineIter: 1                # training steps per incoming batch (fractional: see onlineIterRule)
 *     onlineIterRule: accumulate   # accumulate (CLIB's credit rule) | truncate (Si-Blurry: ⌊onlineIter⌋)
 *     evalPeriod: 1000             # anytime evaluation every N samples (0 = off)
 *     anytimeCadence: reference    # reference (LifeLong-CLIP: seen > threshold) | multiples (former rule)
 *     evalBatchSize: 64            # test images per predict call
 *     taskBoundaries: true         # call beginTask/endTask
 *     evalFutureTasks: false       # fill the whole accuracy matrix (Transfer, FWT)
 *     evalCandidates: exposed|task # matrix protocol; default `task` for multi-dataset streams, else `exposed`
 *     baseline: false              # evaluate every task before training (b_i; default = evalFutureTasks)
 *     memory: { kind: reservoir, capacity: 0, batchSize: 0, perClass: ... }
 *   out: runs/my-run               # optional run folder
 *
 * Unknown keys are errors (typos should not pass silently), except inside `method`, whose keys are checked by
 * the method's own schema.
 */
import { z } from 'zod';
import { StreamSpecSchema } from '../data/streams.ts';

const posInt = (what = 'a positive integer') => z.int({ error: `expected ${what}` }).positive({ error: `expected ${what}` });
const nonNegInt = () => z.int({ error: 'expected an integer ≥ 0' }).min(0, { error: 'expected an integer ≥ 0' });

export const MemorySchema = z.strictObject({
  kind: z.enum(['reservoir', 'per-class-reservoir', 'class-balanced']).default('reservoir'),
  /** Total number of stored samples; 0 = no memory. */
  capacity: nonNegInt().default(0),
  /** Replay samples concatenated to each training step. */
  batchSize: nonNegInt().default(0),
  /** Per-class capacity (per-class reservoir). */
  perClass: posInt().optional(),
});

export const RunSectionSchema = z.strictObject({
  batchSize: posInt().default(16),
  onlineIter: z.number({ error: 'expected a positive number' }).positive({ error: 'expected a positive number' }).default(1),
  evalPeriod: nonNegInt().default(1000),
  /** When an anytime point is due: `reference` (LifeLong-CLIP: samples seen > threshold, threshold += period) or `multiples` (the former rule: ≥, next multiple). */
  anytimeCadence: z.enum(['reference', 'multiples']).default('reference'),
  /** Fractional onlineIter: `accumulate` (CLIB's credit rule, per batch) or `truncate` (Si-Blurry: ⌊onlineIter⌋ steps). */
  onlineIterRule: z.enum(['accumulate', 'truncate']).default('accumulate'),
  evalBatchSize: posInt().default(64),
  taskBoundaries: z.boolean({ error: 'expected true or false' }).default(true),
  evalFutureTasks: z.boolean({ error: 'expected true or false' }).default(false),
  evalCandidates: z.enum(['exposed', 'task']).optional(),
  baseline: z.boolean({ error: 'expected true or false' }).optional(),
  memory: MemorySchema.prefault({}),
});

export const MethodSectionSchema = z.looseObject({
  name: z.string({ error: 'expected a method name' }).min(1, { error: 'expected a method name' }),
});

export const RunConfigSchema = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9._-]+$/, { error: 'expected letters, digits, ".", "_" or "-"' }).optional(),
  seed: z.int({ error: 'expected an integer' }).min(0, { error: 'expected an integer ≥ 0' }).default(0),
  seeds: z
    .array(z.int({ error: 'expected an integer ≥ 0' }).min(0, { error: 'expected an integer ≥ 0' }))
    .min(1, { error: 'expected at least one seed' })
    .refine((a) => new Set(a).size === a.length, { error: 'a seed is listed twice' })
    .optional(),
  stream: StreamSpecSchema,
  method: MethodSectionSchema,
  run: RunSectionSchema.prefault({}),
  out: z.string().optional(),
});

/** A validated config (method options still unparsed; see `loadConfig`, which parses them too). */
export type RunConfig = z.output<typeof RunConfigSchema>;
export type RunSection = z.output<typeof RunSectionSchema>;
export type MemoryConfig = z.output<typeof MemorySchema>;
