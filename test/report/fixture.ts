/**
 * Hand-made run folders for the report tests: small files with known values, written into a temp dir in the
 * run-folder layout (see src/report/run-folder.ts).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface FixtureOptions {
  /** Method name in cost.json and config.resolved.json. */
  method?: string;
  /** acc_matrix.csv text. */
  matrix?: string;
  /** Add `ms` to batch events. */
  batchMs?: boolean;
  /** Add `cost` events (parameter counts over the stream). */
  costEvents?: boolean;
  /** Leave these files out. */
  omit?: string[];
  seed?: number;
}

/** The values the default fixture holds, for the tests to compare against. */
export const FIXTURE = {
  matrix: [
    [0.9, 0.1],
    [0.6, 0.8],
  ],
  anytime: [
    { samplesSeen: 4, accuracy: 0.5 },
    { samplesSeen: 8, accuracy: 0.75 },
  ],
  taskAcc: [
    { task: 0, samplesSeen: 4, accuracy: 0.9 },
    { task: 1, samplesSeen: 8, accuracy: 0.7 },
  ],
  /** class_acc.csv: task 0 saw classes 0 and 1, task 1 all four. */
  classAcc: [
    { 0: 0.8, 1: 1 },
    { 0: 0.5, 1: 0.75, 2: 0.6, 3: 1 },
  ] as Array<Record<number, number>>,
  /** online.csv rows: batch, task, n, correct, samples_seen. */
  online: [
    [0, 0, 2, 1, 2],
    [1, 0, 2, 2, 4],
    [2, 1, 2, 0, 6],
    [3, 1, 2, 1, 8],
  ],
  routing: { '0->0': 3, '0->1': 1, '1->1': 4, '-1->0': 2 } as Record<string, number>,
  expertsOverTime: [
    [0, 2],
    [4, 4],
    [4, 2],
  ],
  expertsPerBlock: 3,
  trainableParams: 100,
  totalParams: 1000,
  phases: [
    { name: 'begin_task', ms: 5, task: 0, samplesSeen: 0 },
    { name: 'merge', ms: 1500, task: 0, samplesSeen: 4 },
    { name: 'begin_task', ms: 7, task: 1, samplesSeen: 4 },
  ],
  batchMs: [20, 30, 25, 40],
  costEvents: [
    { samplesSeen: 0, trainableParams: 50, totalParams: 950, expertsPerBlock: 2 },
    { samplesSeen: 4, trainableParams: 80, totalParams: 980, expertsPerBlock: 2 },
    { samplesSeen: 8, trainableParams: 100, totalParams: 1000, expertsPerBlock: 3 },
  ],
};

/** Writes a complete fixture run folder at `dir` and returns `dir`. */
export function writeFixtureRun(dir: string, o: FixtureOptions = {}): string {
  const method = o.method ?? 'cm-moe';
  const omit = new Set(o.omit ?? []);
  mkdirSync(dir, { recursive: true });
  const put = (f: string, text: string) => {
    if (!omit.has(f)) writeFileSync(join(dir, f), text);
  };
  put('config.resolved.json', JSON.stringify({ name: 'fixture-bench', seed: o.seed ?? 7, method: { name: method } }));
  put(
    'metrics.json',
    JSON.stringify({ A_auc: 0.625, A_avg: 0.8, A_last: 0.7, F_last: 0.3, online: 0.5, transfer: null, average: null, last: 0.7, bwt: -0.3, forgetting: 0.3, fwt: null }),
  );
  put('acc_matrix.csv', o.matrix ?? '0.9,0.1\n0.6,0.8\n');
  put('anytime.csv', 'samples_seen,accuracy\n' + FIXTURE.anytime.map((p) => `${p.samplesSeen},${p.accuracy}`).join('\n') + '\n');
  put('task_acc.csv', 'task,samples_seen,accuracy\n' + FIXTURE.taskAcc.map((p) => `${p.task},${p.samplesSeen},${p.accuracy}`).join('\n') + '\n');
  put('class_acc.csv', 'task,0,1,2,3\n0,0.8,1,,\n1,0.5,0.75,0.6,1\n');
  put('online.csv', 'batch,task,n,correct,samples_seen\n' + FIXTURE.online.map((r) => r.join(',')).join('\n') + '\n');
  const extra: Record<string, number> = { expertsPerBlock: FIXTURE.expertsPerBlock, merges: 1, ddasRoutingAcc: 0.7 };
  for (const [k, v] of Object.entries(FIXTURE.routing)) extra[`ddasRoute:${k}`] = v;
  FIXTURE.expertsOverTime.forEach(([s, e], i) => (extra[`expertsOverTime:${i}:${s}`] = e!));
  put(
    'cost.json',
    JSON.stringify({
      method,
      trainableParams: FIXTURE.trainableParams,
      totalParams: FIXTURE.totalParams,
      extra,
      peakRssBytes: 2e9,
      samplesSeen: 8,
      batches: 4,
      steps: 4,
      timingsMs: { total: 4200 },
      msPerSample: 525,
      trainMsPerSample: 100,
      msPerBatch: 200,
    }),
  );
  const events: object[] = [{ type: 'run_start', kind: 'class-incremental', tasks: 2, trainSamples: 8, classes: 4, taskBoundaries: true }];
  let b = 0;
  for (const t of [0, 1]) {
    events.push({ type: 'task_start', task: t, name: `task-${t}`, size: 4, classes: t === 0 ? [0, 1] : [2, 3] });
    events.push({ type: 'phase', ...FIXTURE.phases[t === 0 ? 0 : 2] });
    for (let k = 0; k < 2; k++, b++) {
      const r = FIXTURE.online[b]!;
      events.push({ type: 'batch', task: t, batch: b, n: r[2], correct: r[3], samplesSeen: r[4], steps: 1, replay: [0], newClasses: [], ...(o.batchMs ? { ms: FIXTURE.batchMs[b] } : {}) });
    }
    if (t === 0) events.push({ type: 'phase', ...FIXTURE.phases[1] });
    events.push({ type: 'task_end', task: t, samplesSeen: 4 * (t + 1), accuracy: FIXTURE.taskAcc[t]!.accuracy, n: 10, row: FIXTURE.matrix[t], classAcc: {} });
  }
  if (o.costEvents) {
    // a cost snapshot at the start and after each task, recorded in stream order
    const [c0, c1, c2] = FIXTURE.costEvents.map((c) => ({ type: 'cost', samplesSeen: c.samplesSeen, trainableParams: c.trainableParams, totalParams: c.totalParams, extra: { expertsPerBlock: c.expertsPerBlock } }));
    events.splice(1, 0, c0!);
    events.splice(events.findIndex((e) => (e as { type: string }).type === 'task_start' && (e as { task: number }).task === 1), 0, c1!);
    events.push(c2!);
  }
  events.push({ type: 'run_end', samplesSeen: 8, metrics: {}, timings: { total: 4200 } });
  put('events.jsonl', events.map((e) => JSON.stringify(e)).join('\n') + '\n');
  return dir;
}
