/**
 * `moeclip predict --learner DIR --image PATH...`: on PNG files of the final evaluation's test images it prints
 * the run's final predictions — label, probability (predictions.csv) and which subnet or zero-shot CLIP answered —
 * as JSON and as a table; `--class` restricts the candidates; bad input gets a one-line error.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { main } from '../../src/cli/main.ts';
import type { CliIO } from '../../src/cli/command.ts';
import { encodePng } from '../../src/io/image.ts';
import { finalImages, makeRoot, readPredictions, writeConfig, type FinalRow } from '../learner/fixtures.ts';

async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const io = { out: '', err: '', isTTY: false, env: {}, stdout: (t: string) => void (io.out += t), stderr: (t: string) => void (io.err += t) } as CliIO & { out: string; err: string };
  const code = await main(args, io);
  return { code, out: io.out, err: io.err };
}

const root = makeRoot('predict-cli');
after(() => rmSync(root, { recursive: true, force: true }));

/** Runs a config through the CLI and exports its learner; PNG files of the final images; predictions.csv. */
async function learnerOf(name: string, tasks: number, method: string[]): Promise<{ dir: string; pngs: string[]; rows: FinalRow[] }> {
  const cfg = writeConfig(root, name, tasks, method);
  const run = join(root, `${name}-run`);
  const r = await cli(['run', cfg, '--out', run, '--threads', '1']);
  assert.equal(r.code, 0, r.err);
  const dir = join(root, `${name}-learner`);
  const e = await cli(['export', run, '--out', dir]);
  assert.equal(e.code, 0, e.err);
  const { images } = await finalImages(cfg);
  const pngs = images.map((im, i) => {
    const p = join(root, `${name}-${i}.png`);
    writeFileSync(p, encodePng(im));
    return p;
  });
  return { dir, pngs, rows: readPredictions(join(run, 'final')) };
}

interface JsonResult {
  image: string;
  label: number;
  name: string | null;
  prob: number | null;
  route: number | 'zero-shot' | null;
}

function assertMatches(results: JsonResult[], pngs: string[], rows: FinalRow[]): void {
  assert.equal(results.length, rows.length);
  results.forEach((r, i) => {
    assert.equal(r.image, pngs[i]);
    assert.equal(r.label, rows[i]!.pred, `${pngs[i]}: label`);
    assert.equal(r.route, rows[i]!.route === null ? null : rows[i]!.route! < 0 ? 'zero-shot' : rows[i]!.route, `${pngs[i]}: route`);
    assert.ok(Math.abs(r.prob! - rows[i]!.prob!) <= 1e-6, `${pngs[i]}: prob ${r.prob} vs ${rows[i]!.prob}`);
  });
}

test('predict with a moe-adapters learner (DDAS): the final predictions and the subnet that answered', async () => {
  const { dir, pngs, rows } = await learnerOf('moe', 3, [
    'name: moe-adapters', 'model: model', 'experts: 4', 'topK: 2', 'bottleneck: 4', 'routers: per-task', 'freezePerTask: 1', 'lr: 0.01', 'ddas: { enabled: true, hidden: 8 }',
  ]);
  const j = await cli(['predict', '--learner', dir, ...pngs.flatMap((p) => ['--image', p]), '--json', '--threads', '1']);
  assert.equal(j.code, 0, j.err);
  const parsed = JSON.parse(j.out) as { learner: string; results: JsonResult[] };
  assert.equal(parsed.learner, dir);
  assertMatches(parsed.results, pngs, rows);
  assert.ok(parsed.results.every((r) => typeof r.route === 'number'));

  const t = await cli(['predict', '--learner', dir, '--image', pngs[0]!, '--image', pngs[7]!, '--threads', '1']);
  assert.equal(t.code, 0, t.err);
  const lines = t.out.trimEnd().split('\n');
  assert.deepEqual(lines[0]!.split(/\s{2,}/), ['image', 'label', 'prob', 'answered by']);
  for (const [k, i] of [[1, 0], [2, 7]] as const) {
    const r = parsed.results[i]!;
    assert.deepEqual(lines[k]!.split(/\s{2,}/), [pngs[i], `${r.label} ${r.name}`, r.prob!.toFixed(4), `subnet ${r.route}`]);
  }
});

test('predict with a learner whose DDAS claims nothing: zero-shot answers', async () => {
  const { dir, pngs, rows } = await learnerOf('zs', 2, ['name: moe-adapters', 'model: model', 'experts: 4', 'topK: 2', 'bottleneck: 4', 'routers: per-task', 'lr: 0.01', 'ddas: { enabled: true, hidden: 8, threshold: 1.0e-12 }']);
  const j = await cli(['predict', '--learner', dir, ...pngs.flatMap((p) => ['--image', p]), '--json', '--threads', '1']);
  assert.equal(j.code, 0, j.err);
  const { results } = JSON.parse(j.out) as { results: JsonResult[] };
  assertMatches(results, pngs, rows);
  assert.ok(results.every((r) => r.route === 'zero-shot'));
  const t = await cli(['predict', '--learner', dir, '--image', pngs[0]!, '--threads', '1']);
  assert.match(t.out.split('\n')[1]!, /  zero-shot$/);
});

test('predict with an ncm-clip learner: no routes; --class restricts the candidates; bad input in one line', async () => {
  const { dir, pngs, rows } = await learnerOf('ncm', 2, ['name: ncm-clip', 'model: model']);
  const j = await cli(['predict', '--learner', dir, ...pngs.flatMap((p) => ['--image', p]), '--json', '--threads', '1']);
  assert.equal(j.code, 0, j.err);
  const { results } = JSON.parse(j.out) as { results: JsonResult[] };
  assertMatches(results, pngs, rows);
  assert.ok(results.every((r) => r.route === null));
  const t = await cli(['predict', '--learner', dir, '--image', pngs[0]!, '--threads', '1']);
  assert.match(t.out.split('\n')[1]!, /  -$/);

  // the first image is of class rows[0].label; among two other classes it gets one of those two, with probabilities over them
  const names = JSON.parse(readFileSync(join(dir, 'learner.json'), 'utf8')).classNames as string[];
  const others = [0, 1, 2, 3].filter((c) => c !== rows[0]!.label).slice(0, 2);
  const c = await cli(['predict', '--learner', dir, '--image', pngs[0]!, '--class', names[others[0]!]!, '--class', names[others[1]!]!, '--json', '--threads', '1']);
  assert.equal(c.code, 0, c.err);
  const only = (JSON.parse(c.out) as { results: JsonResult[] }).results[0]!;
  assert.ok(others.includes(only.label), JSON.stringify(only));

  const bad = await cli(['predict', '--learner', dir, '--image', pngs[0]!, '--class', 'no such class']);
  assert.equal(bad.code, 2);
  assert.match(bad.err, /^moeclip predict: --class "no such class": not a class of the learner \(4 classes, e\.g\. /);
  const noLearner = await cli(['predict', '--image', pngs[0]!]);
  assert.equal(noLearner.code, 2);
  assert.match(noLearner.err, /^moeclip predict: --learner DIR is required/);
  const notLearner = await cli(['predict', '--learner', root, '--image', pngs[0]!]);
  assert.equal(notLearner.code, 2);
  assert.match(notLearner.err, /^moeclip predict: .*: not a learner folder \(no learner\.json\)\n$/);
  const noImage = await cli(['predict', '--learner', dir]);
  assert.equal(noImage.code, 2);
  assert.match(noImage.err, /^moeclip predict: give at least one --image/);
  const missing = await cli(['predict', '--learner', dir, '--image', join(root, 'nope.png')]);
  assert.notEqual(missing.code, 0);
  assert.match(missing.err, /^moeclip predict: .*nope\.png/);
  assert.equal(missing.err.trimEnd().split('\n').length, 1);
});
