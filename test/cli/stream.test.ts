import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../src/cli/main.ts';
import type { CliIO } from '../../src/cli/command.ts';
import { writeMnistIdx } from '../run/fixtures.ts';

function captureIO(): CliIO & { out: string; err: string } {
  const io = { out: '', err: '', isTTY: false, env: {}, stdout: (t: string) => void (io.out += t), stderr: (t: string) => void (io.err += t) };
  return io;
}

test('moeclip stream --describe --json: per-task label histogram of the training stream', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'moeclip-stream-'));
  try {
    mkdirSync(join(dir, 'mnist'));
    writeMnistIdx(join(dir, 'mnist'), 'train', 7); // 7 per class
    writeMnistIdx(join(dir, 'mnist'), 'test', 3);
    const cfg = join(dir, 'tiny.yaml');
    writeFileSync(
      cfg,
      [
        'stream:',
        '  kind: class-incremental',
        '  dataset: { name: mnist, root: ./mnist }',
        '  classOrder: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]',
        '  tasks: 5',
        '  limitPerClass: 5',
        'method: { name: ncm }',
        '',
      ].join('\n'),
    );
    const io = captureIO();
    assert.equal(await main(['stream', cfg, '--describe', '--json'], io), 0, io.err);
    const d = JSON.parse(io.out);
    // identity class order, 2 classes per task, 5 samples each (limitPerClass)
    assert.deepEqual(d, {
      kind: 'class-incremental',
      tasks: [0, 2, 4, 6, 8].map((c, t) => ({ task: t, classes: { [c]: 5, [c + 1]: 5 }, n: 10 })),
      total: 50,
    });
    // --set reaches the stream spec: 2 tasks of 5 classes, all 7 samples
    const io2 = captureIO();
    assert.equal(await main(['stream', cfg, '--json', '--set', 'stream.tasks=2', '--set', 'stream.limitPerClass=7'], io2), 0, io2.err);
    const d2 = JSON.parse(io2.out);
    assert.equal(d2.total, 70);
    assert.deepEqual(d2.tasks.map((t: { n: number }) => t.n), [35, 35]);
    assert.deepEqual(Object.keys(d2.tasks[1].classes), ['5', '6', '7', '8', '9']);
    // text form
    const io3 = captureIO();
    assert.equal(await main(['stream', cfg], io3), 0);
    assert.match(io3.out, /^class-incremental stream: 5 tasks, 50 training samples, 10 classes$/m);
    // people read "task 1/5" … "task 5/5"; the JSON above keeps 0-based indices
    assert.deepEqual(io3.out.match(/^task \d+\/\d+/gm), ['task 1/5', 'task 2/5', 'task 3/5', 'task 4/5', 'task 5/5']);
    assert.match(io3.out, /^task 1\/5 mnist classes 0–1: n=10 test=6  0 - zero\(0\):5 1 - one\(1\):5$/m);
    // bad config field → exit 2 naming the field
    const bad = captureIO();
    assert.equal(await main(['stream', cfg, '--set', 'stream.tasks=-1'], bad), 2);
    assert.match(bad.err, /stream\.tasks: /);
    const none = captureIO();
    assert.equal(await main(['stream'], none), 2);
    assert.match(none.err, /expected exactly one CONFIG file/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('moeclip stream --describe --json on Si-Blurry: disjoint, blurry and dropped classes', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'moeclip-stream-blurry-'));
  try {
    mkdirSync(join(dir, 'mnist'));
    writeMnistIdx(join(dir, 'mnist'), 'train', 4);
    writeMnistIdx(join(dir, 'mnist'), 'test', 2);
    const cfg = join(dir, 'blurry.yaml');
    // C = 10, T = 4, N = 50, fixed N/M: disjoint ⌊10·0.5⌋ = 5 → 4 (a multiple of T), blurry 10 − 4 = 6 → 4,
    // so 2 classes are dropped; each task gets 1 disjoint and 1 blurry class
    writeFileSync(
      cfg,
      ['stream:', '  kind: si-blurry', '  dataset: { name: mnist, root: ./mnist }', '  tasks: 4', '  n: 50', '  m: 0', '  randomNM: false', '  seed: 3', 'method: { name: ncm }', ''].join('\n'),
    );
    const io = captureIO();
    assert.equal(await main(['stream', cfg, '--json'], io), 0, io.err);
    const d = JSON.parse(io.out) as {
      kind: string;
      tasks: Array<{ task: number; classes: Record<string, number>; n: number }>;
      total: number;
      disjointClasses: number[][];
      blurryClasses: number[][];
      droppedClasses: Array<{ datasetLabel: number; name: string }>;
    };
    assert.equal(d.kind, 'si-blurry');
    // global labels: disjoint classes are 0..3 (in task order), blurry 4..7
    assert.deepEqual(d.disjointClasses, [[0], [1], [2], [3]]);
    assert.deepEqual(d.blurryClasses, [[4], [5], [6], [7]]);
    assert.equal(d.droppedClasses.length, 2);
    for (const c of d.droppedClasses) assert.ok(c.name.startsWith(`${c.datasetLabel} - `), c.name); // MNIST names: '7 - seven'
    // M = 0: every task holds exactly its two classes, 4 samples each; 8 used classes × 4 = 32 samples
    assert.deepEqual(
      d.tasks.map((t) => t.classes),
      [0, 1, 2, 3].map((t) => ({ [t]: 4, [t + 4]: 4 })),
    );
    assert.deepEqual(d.tasks.map((t) => t.task), [0, 1, 2, 3]);
    assert.equal(d.total, 32);
    const text = captureIO();
    assert.equal(await main(['stream', cfg], text), 0, text.err);
    assert.match(text.out, /^task 1\/4 mnist si-blurry \(1 disjoint, 1 blurry classes\): n=8 /m);
    assert.match(text.out, /^ {2}disjoint: \d - \w+\(0\); blurry: \d - \w+\(4\)$/m);
    assert.match(text.out, /^dropped classes: \d - \w+\(dataset label \d\) \d - \w+\(dataset label \d\)$/m);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
