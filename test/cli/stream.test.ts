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
      tasks: [0, 2, 4, 6, 8].map((c) => ({ classes: { [c]: 5, [c + 1]: 5 }, n: 10 })),
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
