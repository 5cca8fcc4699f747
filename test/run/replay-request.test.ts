/**
 * A method's `replayRequest` (the `er` method asks for one) gives the runner a reservoir memory when the config
 * has none: later steps carry replay samples after the incoming ones, and the resolved config says so.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { z } from 'zod';
import { parseConfig } from '../../src/config/load.ts';
import { registerMethod } from '../../src/methods/registry.ts';
import type { Method, TrainBatch } from '../../src/methods/method.ts';
import { runExperiment } from '../../src/run/experiment.ts';
import { makeDataset, makeStream } from './fixtures.ts';

const seen: Array<{ incoming: number; total: number }> = [];
registerMethod('replay-probe', {
  summary: 'test method asking for replay',
  schema: z.strictObject({}),
  async create(): Promise<Method> {
    return {
      name: 'replay-probe',
      replayRequest: { capacity: 8, batchSize: 3 },
      async observe(b: TrainBatch) {
        seen.push({ incoming: b.numIncoming, total: b.images.length });
      },
      async predict(images) {
        return new Int32Array(images.length).fill(0);
      },
      describeCost: () => ({ trainableParams: 0, totalParams: 0 }),
    };
  },
});

test('replayRequest: a reservoir is created and replay samples follow the incoming ones', async () => {
  const train = makeDataset('toy', 'train', 4, 6);
  const testDs = makeDataset('toy', 'test', 4, 2);
  const stream = makeStream(train, testDs, [[0, 1], [2, 3]]);
  const loaded = await parseConfig(
    { stream: { kind: 'class-incremental', dataset: 'toy', tasks: 2 }, method: { name: 'replay-probe' }, run: { batchSize: 4, evalPeriod: 0 } },
    { baseDir: process.cwd() },
  );
  const res = await runExperiment(loaded, { stream });
  assert.equal(seen[0]!.total, seen[0]!.incoming, 'no replay before anything is stored');
  assert.ok(seen.slice(2).every((s) => s.total === s.incoming + 3), JSON.stringify(seen));
  assert.deepEqual((res.resolved['run'] as { memory: unknown }).memory, { kind: 'reservoir', capacity: 8, batchSize: 3, requestedBy: 'replay-probe' });
});
