import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../src/cli/main.ts';
import type { CliIO } from '../../src/cli/command.ts';

function captureIO(): CliIO & { out: string; err: string } {
  const io = { out: '', err: '', isTTY: false, env: {}, stdout: (t: string) => void (io.out += t), stderr: (t: string) => void (io.err += t) };
  return io;
}

const close = (a: unknown, b: number) => assert.ok(typeof a === 'number' && Math.abs(a - b) < 1e-12, `${String(a)} ≠ ${b}`);

test('moeclip metrics --matrix prints the hand-computed metrics as JSON', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'moeclip-metrics-'));
  try {
    /*
     *        j=0   j=1   j=2
     *  t=0  0.90  0.30  0.20      transfer   = (0.30 + (0.20+0.40)/2)/2 = 0.30
     *  t=1  0.95  0.80  0.40      average    = 5.50/9
     *  t=2  0.60  0.50  0.85      last       = 1.95/3 = 0.65
     *                             bwt        = (−0.30 − 0.30)/2 = −0.30
     *                             forgetting = ((0.95−0.60) + (0.80−0.50))/2 = 0.325
     */
    const f = join(dir, 'acc.csv');
    writeFileSync(f, '0.9,0.3,0.2\n0.95,0.8,0.4\n0.6,0.5,0.85\n');
    const io = captureIO();
    assert.equal(await main(['metrics', '--matrix', f, '--json'], io), 0);
    const m = JSON.parse(io.out);
    assert.deepEqual(Object.keys(m), ['transfer', 'average', 'last', 'bwt', 'forgetting']);
    close(m.transfer, 0.3);
    close(m.average, 5.5 / 9);
    close(m.last, 0.65);
    close(m.bwt, -0.3);
    close(m.forgetting, 0.325);

    // lower-triangular (not evaluated cells empty): transfer and average are null
    writeFileSync(f, '0.8,\n0.6,0.9\n');
    const io2 = captureIO();
    assert.equal(await main(['metrics', '--matrix', f, '--json'], io2), 0);
    assert.deepEqual(JSON.parse(io2.out), { transfer: null, average: null, last: 0.75, bwt: 0.6 - 0.8, forgetting: 0.8 - 0.6 });

    // human-readable output
    const io3 = captureIO();
    assert.equal(await main(['metrics', '--matrix', f], io3), 0);
    assert.match(io3.out, /^transfer\s+—$/m);
    assert.match(io3.out, /^last\s+0\.750$/m);

    // malformed CSV: exit 2, the error names the file and the line
    writeFileSync(f, '0.9,0.3\n0.95\n');
    const bad = captureIO();
    assert.equal(await main(['metrics', '--matrix', f, '--json'], bad), 2);
    assert.equal(bad.out, '');
    assert.ok(bad.err.includes(`${f}: line 2 has 1 cells, expected 2`), bad.err);
    writeFileSync(f, '0.9,abc\n0.95,1\n');
    const bad2 = captureIO();
    assert.equal(await main(['metrics', '--matrix', f], bad2), 2);
    assert.ok(bad2.err.includes(`${f}: line 1, column 2: 'abc' is not a number`), bad2.err);
    const missing = captureIO();
    assert.equal(await main(['metrics', '--matrix', join(dir, 'nope.csv')], missing), 2);
    assert.match(missing.err, /nope\.csv: cannot read/);
    const usage = captureIO();
    assert.equal(await main(['metrics'], usage), 2);
    assert.match(usage.err, /give exactly one of --matrix FILE\.csv or --run DIR/);
    const help = captureIO();
    assert.equal(await main(['metrics', '--help'], help), 0);
    assert.match(help.out, /usage: moeclip metrics --matrix FILE\.csv/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
