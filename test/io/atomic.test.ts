/** Atomic writes: files and whole folders appear complete or not at all, and no temporary files stay behind. */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeDirAtomic, writeFileAtomic, writeJsonAtomic } from '../../src/io/atomic.ts';

const root = mkdtempSync(join(tmpdir(), 'moeclip-atomic-'));
after(() => rmSync(root, { recursive: true, force: true }));

test('writeFileAtomic / writeJsonAtomic create folders, replace files and leave no temporary files', () => {
  const p = join(root, 'a', 'b', 'f.json');
  writeJsonAtomic(p, { x: 1 });
  assert.equal(readFileSync(p, 'utf8'), '{\n  "x": 1\n}\n');
  writeFileAtomic(p, 'new');
  assert.equal(readFileSync(p, 'utf8'), 'new');
  assert.deepEqual(readdirSync(join(root, 'a', 'b')), ['f.json']);
});

test('writeDirAtomic writes a new folder, replaces an existing one whole, and keeps it when filling fails', () => {
  const base = join(root, 'dirs');
  const dir = join(base, 'model');
  writeDirAtomic(dir, (tmp) => {
    assert.ok(!existsSync(dir), 'the target does not exist while being filled');
    writeFileSync(join(tmp, 'one.txt'), '1');
    writeFileSync(join(tmp, 'old-only.txt'), 'x');
  });
  assert.deepEqual(readdirSync(dir).sort(), ['old-only.txt', 'one.txt']);
  writeDirAtomic(dir, (tmp) => {
    assert.equal(readFileSync(join(dir, 'one.txt'), 'utf8'), '1', 'the old folder stays readable while the new one is filled');
    writeFileSync(join(tmp, 'one.txt'), '2');
  });
  assert.deepEqual(readdirSync(dir), ['one.txt']);
  assert.equal(readFileSync(join(dir, 'one.txt'), 'utf8'), '2');
  assert.throws(
    () =>
      writeDirAtomic(dir, (tmp) => {
        writeFileSync(join(tmp, 'one.txt'), '3');
        throw new Error('disk full');
      }),
    /disk full/,
  );
  assert.equal(readFileSync(join(dir, 'one.txt'), 'utf8'), '2');
  assert.deepEqual(readdirSync(base), ['model'], 'no temporary siblings are left');
});
