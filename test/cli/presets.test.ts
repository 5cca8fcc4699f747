/**
 * `moeclip presets`: one line per shipped preset, from its `description` field or its leading comment.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { main } from '../../src/cli/main.ts';
import type { CliIO } from '../../src/cli/command.ts';
import { firstSentence, leadingComment, packagePresetsDir, shorten, type PresetInfo } from '../../src/cli/commands/presets.ts';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const root = mkdtempSync(join(tmpdir(), 'moeclip-presets-'));
after(() => rmSync(root, { recursive: true, force: true }));

async function cli(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const io: CliIO = { stdout: (t) => void (out += t), stderr: (t) => void (err += t), isTTY: false, env: {} };
  return { code: await main(argv, io), out, err };
}

function yamlFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.yaml'))
    .map((e) => relative(dir, join(e.parentPath, e.name)).split('\\').join('/'))
    .sort();
}

test('moeclip presets --dir: kinds from the top-level keys, lines from description or the leading comment', async () => {
  const dir = join(root, 'p');
  mkdirSync(join(dir, 'methods'), { recursive: true });
  writeFileSync(join(dir, 'a.yaml'), '# Split digits, e.g. 0-1 first. Second sentence.\n# still the same paragraph.\nstream: {kind: class-incremental}\nmethod: {name: ncm}\n');
  writeFileSync(join(dir, 'b.yaml'), 'description: NCM on pixels (fast)\nstream: {}\n');
  writeFileSync(join(dir, 'methods', 'm.yaml'), '# LwF: distillation (weight 1. temperature 2).\nname: lwf\n');
  writeFileSync(join(dir, 'p.yaml'), '#\n# Pretraining of a tiny CLIP\n#   moeclip pretrain p.yaml\nmodel: {}\noptim: {}\ndata: {}\n');
  writeFileSync(join(dir, 'x.json'), '{"other": 1}');
  const r = await cli(['presets', '--dir', dir, '--json']);
  assert.equal(r.code, 0, r.err);
  const j = JSON.parse(r.out) as { dir: string; presets: PresetInfo[] };
  assert.equal(j.dir, dir);
  assert.deepEqual(j.presets, [
    { path: 'a.yaml', kind: 'run', name: null, description: 'Split digits, e.g. 0-1 first.' },
    { path: 'b.yaml', kind: 'run', name: null, description: 'NCM on pixels (fast)' },
    { path: 'p.yaml', kind: 'pretrain', name: null, description: 'Pretraining of a tiny CLIP' },
    { path: 'x.json', kind: 'other', name: null, description: '' },
    { path: 'methods/m.yaml', kind: 'method', name: 'lwf', description: 'LwF: distillation (weight 1. temperature 2).' },
  ]);
  const text = await cli(['presets', '--dir', dir]);
  assert.equal(
    text.out,
    [
      `presets in ${dir}:`,
      '',
      'run configs (moeclip run FILE)',
      '  a.yaml          Split digits, e.g. 0-1 first.',
      '  b.yaml          NCM on pixels (fast)',
      '',
      'method presets (moeclip run CONFIG --method FILE)',
      '  methods/m.yaml  LwF: distillation (weight 1. temperature 2).',
      '',
      'pretraining configs (moeclip pretrain FILE)',
      '  p.yaml          Pretraining of a tiny CLIP',
      '',
      'other files',
      '  x.json          (no description)',
      '',
    ].join('\n'),
  );
  const bad = await cli(['presets', '--dir', join(root, 'none')]);
  assert.equal(bad.code, 2);
  assert.match(bad.err, /--dir .*none: not a folder/);
});

test('moeclip presets: every shipped preset, one non-empty line each, kinds matching their folder', async () => {
  assert.equal(packagePresetsDir(), join(REPO, 'presets'));
  const r = await cli(['presets', '--json']);
  assert.equal(r.code, 0, r.err);
  const list = (JSON.parse(r.out) as { presets: PresetInfo[] }).presets;
  assert.deepEqual(list.map((p) => p.path).sort(), yamlFiles(join(REPO, 'presets')));
  for (const p of list) {
    assert.ok(p.description.length > 10 && p.description.length <= 110 && !p.description.includes('\n'), `${p.path}: '${p.description}'`);
    const want = p.path.startsWith('methods/') ? 'method' : p.path.startsWith('pretrain/') ? 'pretrain' : 'run';
    assert.equal(p.kind, want, p.path);
  }
  // the first comment line of presets/methods/er.yaml, whole
  assert.equal(list.find((p) => p.path === 'methods/er.yaml')!.description, 'Experience replay: adapters + a 500-sample reservoir, 16 replay samples per step.');
});

test('firstSentence, shorten and leadingComment on hand-written text', () => {
  assert.equal(firstSentence('Ends here. Not this.'), 'Ends here.');
  assert.equal(firstSentence('A (b. c) d. e.'), 'A (b. c) d.');
  assert.equal(firstSentence('Use `a. b` then stop. x'), 'Use `a. b` then stop.');
  assert.equal(firstSentence('lr 1e-5 vs. 2e-5 here.'), 'lr 1e-5 vs. 2e-5 here.');
  assert.equal(firstSentence('0.5 of it, no end'), '0.5 of it, no end');
  const long = 'Benchmark: four datasets in sequence, MNIST then Fashion-MNIST then CIFAR-10, then the held-out Tiny ImageNet classes at the end';
  assert.equal(shorten(long, 80), 'Benchmark: four datasets in sequence, MNIST then Fashion-MNIST then CIFAR-10…');
  assert.equal(shorten('short', 80), 'short');
  assert.equal(shorten('aaaa, ' + 'b'.repeat(20) + ' ' + 'c'.repeat(20), 30), 'aaaa, bbbbbbbbbbbbbbbbbbbb…');
  assert.equal(leadingComment('# one\n# two\n#\n# three\nx: 1'), 'one two');
  assert.equal(leadingComment('#\n#   cmd line\n# text\n#   cmd\n# more'), 'text');
  assert.equal(leadingComment('x: 1\n# late'), '');
});
