/**
 * `moeclip export`: a finished `moeclip run` folder gets final/ and exports (by reference, with a copied backbone,
 * as JSON); refused with a one-line error: not a run folder, an unfinished run (how to resume it), a method that
 * keeps no state, an --out that is not empty or lies inside the run folder, missing arguments.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { main } from '../../src/cli/main.ts';
import type { CliIO } from '../../src/cli/command.ts';
import { loadConfig } from '../../src/config/load.ts';
import { registerMethod } from '../../src/methods/registry.ts';
import { runExperiment, RunStoppedError } from '../../src/run/experiment.ts';
import { makeRoot, writeConfig } from '../learner/fixtures.ts';

function captureIO(): CliIO & { out: string; err: string } {
  const io = { out: '', err: '', isTTY: false, env: {}, stdout: (t: string) => void (io.out += t), stderr: (t: string) => void (io.err += t) };
  return io;
}

async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const io = captureIO();
  const code = await main(args, io);
  return { code, out: io.out, err: io.err };
}

const root = makeRoot('export-cli');
after(() => rmSync(root, { recursive: true, force: true }));
const cfg = writeConfig(root, 'ncm', 2, ['name: ncm-clip', 'model: model']);
const runDir = join(root, 'run');

test('moeclip run leaves final/; moeclip export writes the learner folder (reference, copy, --json)', async () => {
  const r = await cli(['run', cfg, '--out', runDir, '--threads', '1']);
  assert.equal(r.code, 0, r.err);
  assert.deepEqual(readdirSync(join(runDir, 'final')).sort(), ['learner.json', 'method.json', 'method.safetensors', 'predictions.csv']);

  const out = join(root, 'learner');
  const e = await cli(['export', runDir, '--out', out]);
  assert.equal(e.code, 0, e.err);
  assert.match(e.out, new RegExp(`^${out}: learner of method ncm-clip, 4 classes; backbone by reference: ${join(root, 'model')} \\(sha256 [0-9a-f]{12}…\\)\\n$`));
  assert.deepEqual(readdirSync(out).sort(), ['learner.json', 'method.json', 'method.safetensors', 'predictions.csv']);
  for (const f of ['method.json', 'method.safetensors', 'predictions.csv']) {
    assert.ok(readFileSync(join(out, f)).equals(readFileSync(join(runDir, 'final', f))), `${f} copied as is`);
  }
  const info = JSON.parse(readFileSync(join(out, 'learner.json'), 'utf8'));
  assert.equal(info.exportedFrom, runDir);
  assert.equal(info.backbone, null);
  assert.ok(!readdirSync(root).some((f) => f.startsWith('.')), 'no temporary folder left');

  const copy = join(root, 'learner-copy');
  const c = await cli(['export', runDir, '--out', copy, '--copy-backbone', '--json']);
  assert.equal(c.code, 0, c.err);
  assert.deepEqual(JSON.parse(c.out), { out: copy, method: 'ncm-clip', classes: 4, backbone: join(copy, 'backbone'), model: join(root, 'model') });
  assert.deepEqual(readdirSync(join(copy, 'backbone')).sort(), readdirSync(join(root, 'model')).sort());
  assert.equal(JSON.parse(readFileSync(join(copy, 'learner.json'), 'utf8')).backbone, 'backbone');

  // an existing non-empty --out is refused unless --overwrite; the export then replaces it
  const again = await cli(['export', runDir, '--out', copy]);
  assert.equal(again.code, 2);
  assert.match(again.err, /^moeclip export: --out .*learner-copy already exists and is not empty; choose another folder or pass --overwrite\n$/);
  const over = await cli(['export', runDir, '--out', copy, '--overwrite']);
  assert.equal(over.code, 0, over.err);
  assert.ok(!existsSync(join(copy, 'backbone')), 'the reference export replaced the copy');
});

test('moeclip export refuses what is not a finished run with a learner, in one line', async () => {
  const empty = join(root, 'empty');
  mkdirSync(empty);
  const n = await cli(['export', empty, '--out', join(root, 'x1')]);
  assert.equal(n.code, 2);
  assert.match(n.err, /^moeclip export: .*empty: not a run folder \(no metrics\.json or config\.resolved\.json\)\n$/);

  // an interrupted run with a checkpoint: say so, and how to continue it
  const stopped = join(root, 'stopped');
  let batches = 0;
  await assert.rejects(
    runExperiment(await loadConfig(cfg), { outDir: stopped, threads: 1, plots: false, shouldStop: () => ++batches >= 2 }),
    RunStoppedError,
  );
  const s = await cli(['export', stopped, '--out', join(root, 'x2')]);
  assert.equal(s.code, 2);
  assert.match(s.err, /the run is incomplete \(no metrics\.json\): it was interrupted after 8\/32 stream samples \(task 1\/2\); continue it with `moeclip run --resume .*stopped`\n$/);
  assert.ok(!existsSync(join(root, 'x2')));

  // a method without saveState/loadState: the run finishes without final/, export says why
  registerMethod('stateless-test', {
    summary: 'predicts label 0, keeps no state',
    schema: z.strictObject({}),
    async create() {
      return { name: 'stateless-test', observe: async () => {}, predict: async (images) => new Int32Array(images.length), describeCost: () => ({ trainableParams: 0, totalParams: 0 }) };
    },
  });
  const cfg2 = writeConfig(root, 'stateless', 2, ['name: stateless-test']);
  const plain = join(root, 'stateless-run');
  const r = await cli(['run', cfg2, '--out', plain]);
  assert.equal(r.code, 0, r.err);
  assert.ok(!existsSync(join(plain, 'final')));
  const m = await cli(['export', plain, '--out', join(root, 'x3')]);
  assert.equal(m.code, 2);
  assert.match(m.err, /no learner to export \(no final\/learner\.json\): the run's method 'stateless-test' cannot save its state \(no saveState\/loadState\)/);

  // --out inside the run folder; missing arguments
  const inside = await cli(['export', runDir, '--out', join(runDir, 'exported')]);
  assert.equal(inside.code, 2);
  assert.match(inside.err, /--out .*exported: the export must go outside the run folder/);
  const noOut = await cli(['export', runDir]);
  assert.equal(noOut.code, 2);
  assert.match(noOut.err, /^moeclip export: --out DIR is required/);
  const two = await cli(['export', runDir, empty, '--out', join(root, 'x4')]);
  assert.equal(two.code, 2);
  assert.match(two.err, /^moeclip export: expected exactly one RUN_DIR, got 2/);
  writeFileSync(join(root, 'not-a-dir'), 'x');
  const file = await cli(['export', runDir, '--out', join(root, 'not-a-dir')]);
  assert.equal(file.code, 2);
  assert.match(file.err, /not-a-dir already exists and is not empty/);
});
