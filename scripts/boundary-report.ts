/**
 * Detection delay and false boundaries of a task-free run (cm-moe with `run.taskBoundaries: false`), from its
 * run folder's events.jsonl: true boundaries are the first batch of each task after the first; detections are
 * the batches whose `info.boundary` is set (`new` or `reenter`). A detection matches the first true boundary at or
 * before it that is not matched yet and no later than the next true boundary; the delay is counted in stream
 * samples. Prints one JSON line.
 *   npx tsx scripts/boundary-report.ts RUN_DIR
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const dir = process.argv[2];
if (!dir) throw new Error('usage: boundary-report.ts RUN_DIR');
const events = readFileSync(join(dir, 'events.jsonl'), 'utf8')
  .split('\n')
  .filter((l) => l.trim() !== '')
  .map((l) => JSON.parse(l) as { type: string; task?: number; samplesSeen?: number; n?: number; info?: Record<string, unknown> });
const batches = events.filter((e) => e.type === 'batch');
const truth: number[] = [];
const detected: { at: number; kind: string }[] = [];
let prevTask = batches[0]?.task ?? 0;
for (const b of batches) {
  const start = (b.samplesSeen ?? 0) - (b.n ?? 0);
  if (b.task !== prevTask) truth.push(start);
  prevTask = b.task ?? prevTask;
  if (b.info && typeof b.info['boundary'] === 'string') detected.push({ at: b.samplesSeen ?? 0, kind: b.info['boundary'] as string });
}
const delays: number[] = [];
let falseBoundaries = 0;
let k = 0;
const matched = new Set<number>();
for (const d of detected) {
  while (k + 1 < truth.length && truth[k + 1]! <= d.at) k++;
  if (truth.length > 0 && truth[k]! <= d.at && !matched.has(k)) {
    matched.add(k);
    delays.push(d.at - truth[k]!);
  } else falseBoundaries++;
}
const missed = truth.length - matched.size;
const mean = delays.length ? delays.reduce((a, b) => a + b, 0) / delays.length : null;
process.stdout.write(`${JSON.stringify({ trueBoundaries: truth.length, detected: detected.length, matched: matched.size, missed, falseBoundaries, meanDelaySamples: mean, maxDelaySamples: delays.length ? Math.max(...delays) : null, kinds: detected.map((d) => d.kind) })}\n`);
