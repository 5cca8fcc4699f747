/**
 * Checkpoint and resume through the CLI, as a user's run dies: `moeclip run` in a child process (1 thread, a tiny
 * random CLIP, MNIST-layout files) is SIGKILLed after a checkpoint, then `moeclip run --resume` finishes it.
 * The resumed run folder must equal an uninterrupted run's: metrics.json byte for byte, every CSV byte for
 * byte, and events.jsonl once the timing and memory fields (`ms`, `timings`, `rssMB`) are removed.
 * - moe-adapters with a router per task, activate-freeze and DDAS, killed mid-task;
 * - cm-moe across a merge: the checkpoint falls at the end of task 3, before its end-of-task merge, the kill after
 *   the merge has run (so the resumed run merges again from the checkpointed state).
 * - cnn-subnets on a `sets` stream of permuted digits, checkpointed mid-set before its first merge and killed after it.
 * And Ctrl-C (SIGINT) without --checkpoint-every: the run writes a checkpoint, says what it kept and how to
 * resume, exits 130, and resumes to the same folder.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tinyClipConfig } from '../../src/clip/config.ts';
import { writeRandomClip } from '../../src/clip/random.ts';
import { digitStreamYaml, tempMnistRoot } from './fixtures.ts';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const MAIN = join(REPO, 'src/cli/main.ts');
const BPE = join(REPO, '../shared/clip/bpe_simple_vocab_16e6.txt.gz');
const root = tempMnistRoot('moeclip-resume-', 8);
writeRandomClip(join(root, 'model'), tinyClipConfig(), { layout: 'hf', seed: 3, bpePath: BPE, perturbStd: 0.1 });

const common = (tasks: number) => digitStreamYaml(tasks, 16);

writeFileSync(
  join(root, 'moe.yaml'),
  [
    'seed: 2',
    ...common(3),
    '  memory: { capacity: 8, batchSize: 2 }',
    'method:',
    '  name: moe-adapters',
    '  model: model',
    '  experts: 4',
    '  topK: 2',
    '  bottleneck: 4',
    '  routers: per-task',
    '  freezePerTask: 1',
    '  lr: 0.01',
    '  evalBatchSize: 16',
    '  ddas: { enabled: true, hidden: 8 }',
    '',
  ].join('\n'),
);
writeFileSync(
  join(root, 'cm.yaml'),
  [
    'seed: 4',
    ...common(4),
    'method:',
    '  name: cm-moe',
    '  model: model',
    '  expertsPerSubnet: 2',
    '  topK: 2',
    '  bottleneck: 4',
    '  maxSubnets: 2',
    '  numClusters: 2',
    '  memorySize: 16',
    '  finetuneSteps: 2',
    '  lr: 0.01',
    '  evalBatchSize: 16',
    '  ddas: { hidden: 8 }',
    '',
  ].join('\n'),
);

const perm = (k: number) => `    - { name: pm${k}, dataset: { name: mnist, root: data }, transform: [{ resize: 8 }, { toRgb: true }, { permute: ${k} }] }`;
writeFileSync(
  join(root, 'cnn.yaml'),
  [
    'seed: 3',
    'stream:',
    '  kind: sets',
    '  sources:',
    perm(0),
    perm(1),
    perm(2),
    '  sequence: [pm0, pm1, pm2, pm0]',
    '  setSize: 16',
    'method:',
    '  name: cnn-subnets',
    '  width: 0.0625',
    '  imageSize: 8',
    '  onlineEpochs: 2',
    '  bufferPerClass: 2',
    '  pruneBatch: 2',
    '  finetuneEpochs: 1',
    '  trainEpochs: 1',
    '  offlineBatch: 16',
    '  maxSubnets: 2',
    '  numClusters: 2',
    // every set opens a subnet, so merges happen at the ends of sets 3 and 4
    '  thresholdFloor: 0.99',
    'run:',
    '  batchSize: 4',
    '  evalPeriod: 0',
    '  evalBatchSize: 16',
    '  evalCandidates: task',
    '',
  ].join('\n'),
);

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  err: string;
}

/**
 * Runs the CLI in a child process; `killWhen` is polled on the partial event log and sends `signal` (default
 * SIGKILL) to the child when true.
 */
function cli(args: string[], killWhen?: (events: Array<Record<string, unknown>>) => boolean, partDir?: string, signal: NodeJS.Signals = 'SIGKILL'): Promise<Exit> {
  return new Promise((resolveExit, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    child.stdout.on('data', () => {});
    let timer: NodeJS.Timeout | null = null;
    if (killWhen && partDir) {
      timer = setInterval(() => {
        const part = join(partDir, '.events.jsonl.part');
        if (!existsSync(part)) return;
        const lines = readFileSync(part, 'utf8').split('\n').filter((l) => l.endsWith('}'));
        let events: Array<Record<string, unknown>>;
        try {
          events = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
        } catch {
          return;
        }
        if (killWhen(events)) {
          clearInterval(timer!);
          child.kill(signal);
        }
      }, 20);
    }
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      if (timer) clearInterval(timer);
      resolveExit({ code, signal, err });
    });
  });
}

const withoutTimes = (file: string) =>
  readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .map((l) => {
      const { ms: _ms, timings: _t, rssMB: _r, ...rest } = JSON.parse(l) as Record<string, unknown>;
      // cost events: the method's own timings (cm-moe's mergeMs and its split mergeMs:<phase>, the CNN learner's seconds per set) are wall time too
      if (rest['type'] === 'cost') rest['extra'] = Object.fromEntries(Object.entries(rest['extra'] as Record<string, number>).filter(([k]) => !k.endsWith('Ms') && !k.startsWith('mergeMs:') && !k.startsWith('setSeconds:')));
      return rest;
    });

function assertSameRun(resumed: string, full: string): void {
  assert.equal(readFileSync(join(resumed, 'metrics.json'), 'utf8'), readFileSync(join(full, 'metrics.json'), 'utf8'), 'metrics.json byte for byte');
  for (const f of ['acc_matrix.csv', 'anytime.csv', 'task_acc.csv', 'class_acc.csv', 'online.csv', 'config.resolved.json']) {
    assert.equal(readFileSync(join(resumed, f), 'utf8'), readFileSync(join(full, f), 'utf8'), f);
  }
  // the batch events carry each step's loss: equal losses mean equal training, step by step
  assert.deepEqual(withoutTimes(join(resumed, 'events.jsonl')), withoutTimes(join(full, 'events.jsonl')));
  assert.ok(!existsSync(join(resumed, 'checkpoint')), 'the checkpoint is removed once the run has finished');
}

const checkpointMeta = (dir: string) => JSON.parse(readFileSync(join(dir, 'checkpoint', 'checkpoint.json'), 'utf8')) as {
  samplesSeen: number;
  threads: number;
  runner: { task: number; offset: number; started: boolean };
};
const lastSeen = (events: Array<Record<string, unknown>>) => Math.max(0, ...events.filter((e) => e['type'] === 'batch').map((e) => e['samplesSeen'] as number));

test('moe-adapters with DDAS: SIGKILL mid-task, --resume gives the uninterrupted run folder', async () => {
  const cfg = join(root, 'moe.yaml');
  const full = join(root, 'moe-full');
  const ok = await cli(['run', cfg, '--out', full, '--threads', '1']);
  assert.equal(ok.code, 0, ok.err);

  const killed = join(root, 'moe-killed');
  // tasks of 16 samples; checkpoints at 20 and 40 samples (task 2 and task 3, mid-task); kill once 28 are seen
  const k = await cli(['run', cfg, '--out', killed, '--threads', '1', '--checkpoint-every', '20'], (ev) => lastSeen(ev) >= 28, killed);
  assert.equal(k.signal, 'SIGKILL', `the child was killed (exit ${k.code}): ${k.err}`);
  assert.ok(!existsSync(join(killed, 'metrics.json')));
  const meta = checkpointMeta(killed);
  assert.ok([20, 40].includes(meta.samplesSeen), `checkpoint after ${meta.samplesSeen} samples`);
  assert.ok(meta.runner.offset > 0 && meta.runner.offset < 16, `mid-task: offset ${meta.runner.offset}`);
  assert.equal(meta.threads, 1);

  // reading the killed folder says it is incomplete and how to continue
  const m = await cli(['metrics', '--run', killed]);
  assert.equal(m.code, 2);
  assert.match(m.err, /the run is incomplete \(no metrics\.json\): it was interrupted after \d+\/48 stream samples .*moeclip run --resume/);

  const r = await cli(['run', '--resume', killed]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.err, new RegExp(`resuming after ${meta.samplesSeen}/48 samples`));
  assertSameRun(killed, full);
});

test('cm-moe across a merge: checkpoint before the merge, SIGKILL after it, --resume gives the uninterrupted run folder', async () => {
  const cfg = join(root, 'cm.yaml');
  const full = join(root, 'cm-full');
  const ok = await cli(['run', cfg, '--out', full, '--threads', '1']);
  assert.equal(ok.code, 0, ok.err);
  const merges = withoutTimes(join(full, 'events.jsonl')).filter((e) => e['type'] === 'phase' && e['name'] === 'merge');
  assert.deepEqual(merges.map((e) => e['samplesSeen']), [48, 64], 'merges at the ends of tasks 3 and 4');

  const killed = join(root, 'cm-killed');
  // 16 samples per task: the only checkpoint is after the last batch of task 3 (48), before its end-of-task merge
  const mergedAt48 = (ev: Array<Record<string, unknown>>) => ev.some((e) => e['type'] === 'phase' && e['name'] === 'merge' && e['samplesSeen'] === 48);
  const k = await cli(['run', cfg, '--out', killed, '--threads', '1', '--checkpoint-every', '48'], mergedAt48, killed);
  assert.equal(k.signal, 'SIGKILL', `the child was killed (exit ${k.code}): ${k.err}`);
  assert.ok(!existsSync(join(killed, 'metrics.json')));
  const meta = checkpointMeta(killed);
  assert.equal(meta.samplesSeen, 48);
  assert.deepEqual(meta.runner, { ...meta.runner, task: 2, offset: 16, started: true }, 'the checkpoint precedes task 3’s end (and its merge)');
  const cpEvents = readFileSync(join(killed, 'checkpoint', 'events.jsonl'), 'utf8');
  assert.ok(!cpEvents.includes('"name":"merge"'), 'no merge before the checkpoint');

  const r = await cli(['run', '--resume', killed]);
  assert.equal(r.code, 0, r.err);
  assertSameRun(killed, full);
  const cost = JSON.parse(readFileSync(join(killed, 'cost.json'), 'utf8'));
  assert.equal(cost.extra.merges, 2);
});

test('cnn-subnets across a merge: checkpoint mid-set, SIGKILL after the merge, --resume gives the uninterrupted run folder', async () => {
  const cfg = join(root, 'cnn.yaml');
  const full = join(root, 'cnn-full');
  const ok = await cli(['run', cfg, '--out', full, '--threads', '1']);
  assert.equal(ok.code, 0, ok.err);
  const merges = withoutTimes(join(full, 'events.jsonl')).filter((e) => e['type'] === 'phase' && e['name'] === 'merge');
  assert.deepEqual(merges.map((e) => e['samplesSeen']), [48, 64], 'merges at the ends of sets 3 and 4');

  const killed = join(root, 'cnn-killed');
  const mergedAt48 = (ev: Array<Record<string, unknown>>) => ev.some((e) => e['type'] === 'phase' && e['name'] === 'merge' && e['samplesSeen'] === 48);
  const k = await cli(['run', cfg, '--out', killed, '--threads', '1', '--checkpoint-every', '20'], mergedAt48, killed);
  assert.equal(k.signal, 'SIGKILL', `the child was killed (exit ${k.code}): ${k.err}`);
  const meta = checkpointMeta(killed);
  assert.equal(meta.samplesSeen, 40, 'the last checkpoint is mid-set 3, before its merge');
  const r = await cli(['run', '--resume', killed]);
  assert.equal(r.code, 0, r.err);
  assertSameRun(killed, full);
});

test('Ctrl-C: a checkpoint, what was kept, how to resume, exit 130; the resumed run is the uninterrupted one', async () => {
  const cfg = join(root, 'moe.yaml');
  // the uninterrupted run of the first test, made here when that test did not run
  const full = join(root, 'moe-full');
  if (!existsSync(join(full, 'metrics.json'))) {
    const ok = await cli(['run', cfg, '--out', full, '--threads', '1', '--overwrite']);
    assert.equal(ok.code, 0, ok.err);
  }
  const dir = join(root, 'moe-int');
  const k = await cli(['run', cfg, '--out', dir, '--threads', '1'], (ev) => lastSeen(ev) >= 8, dir, 'SIGINT');
  assert.equal(k.code, 130, k.err);
  assert.match(k.err, /SIGINT: finishing the current batch and writing a checkpoint/);
  assert.match(k.err, /interrupted after \d+\/48 stream samples \(task \d\/3\)\.\nkept: .*moe-int\/checkpoint \(method state, replay memory, generator states, stream position, metric log and events so far\)/);
  assert.match(k.err, new RegExp(`continue with: moeclip run --resume ${dir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
  const meta = checkpointMeta(dir);
  assert.ok(meta.samplesSeen >= 8 && meta.samplesSeen < 48, `checkpoint after ${meta.samplesSeen} samples`);
  const r = await cli(['run', '--resume', dir]);
  assert.equal(r.code, 0, r.err);
  assertSameRun(dir, full);
});
