/**
 * Where `moeclip pretrain` writes its model: the shipped preset points into runs/pretrain (never over
 * models/moeclip-tiny), a config without `out` writes runs/pretrain/<name>/model under the working directory,
 * and `--out DIR` selects the folder.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { main } from '../../src/cli/main.ts';
import type { CliIO } from '../../src/cli/command.ts';
import { pretrainDirs } from '../../src/cli/commands/pretrain.ts';
import { loadPretrainConfig } from '../../src/pretrain/config.ts';
import { writePng } from '../data/fixtures.ts';
import { BPE_PATH, REPO, shapesDataset, tempDir } from './fixtures.ts';

function captureIO(): CliIO & { out: string; err: string } {
  const io = { out: '', err: '', isTTY: false, env: {}, stdout: (t: string) => void (io.out += t), stderr: (t: string) => void (io.err += t) };
  return io;
}

test('the moeclip-tiny preset writes into runs/pretrain, not over the shipped model', () => {
  const cfg = loadPretrainConfig(join(REPO, 'presets', 'pretrain', 'moeclip-tiny.yaml'), { cwd: REPO });
  assert.equal(cfg.out, resolve(REPO, 'runs', 'pretrain', 'moeclip-tiny', 'model'));
  assert.equal(cfg.checkpointDir, resolve(REPO, 'runs', 'pretrain', 'moeclip-tiny', 'checkpoints'));
  const shipped = resolve(REPO, 'models', 'moeclip-tiny');
  const dirs = pretrainDirs(cfg, {}, '/elsewhere');
  assert.notEqual(dirs.outDir, shipped);
  assert.ok(!dirs.outDir.startsWith(shipped));
  // --out names the target (relative to the working directory)
  assert.equal(pretrainDirs(cfg, { out: 'models/moeclip-tiny' }, REPO).outDir, shipped);
  assert.equal(pretrainDirs(cfg, { checkpointDir: 'ck' }, '/w').checkpointDir, '/w/ck');
  // without out/checkpointDir in the config: runs/pretrain/<name>/… under the working directory
  const { out: _o, checkpointDir: _c, ...bare } = cfg;
  assert.deepEqual(pretrainDirs({ ...bare, name: 'x' }, {}, '/w'), { outDir: '/w/runs/pretrain/x/model', checkpointDir: '/w/runs/pretrain/x/checkpoints' });
});

test('moeclip pretrain end to end: the default model folder and --out', async () => {
  const { dir, cleanup } = tempDir('cli-out');
  const cwd = process.cwd();
  try {
    const ds = shapesDataset(4, 16, 1, 'train');
    for (let i = 0; i < ds.length; i++) {
      writePng(join(dir, 'data', 'train', ds.classNames[ds.labels[i]!]!.replace(/ /g, '_'), `${i}.png`), ds.image(i).pixels, 16, 16);
    }
    const cfg = join(dir, 'tiny.yaml');
    writeFileSync(
      cfg,
      [
        'name: out-test',
        'model:',
        '  vision: { imageSize: 16, patchSize: 8, width: 16, layers: 1, heads: 2 }',
        '  text: { contextLength: 12, width: 16, layers: 1, heads: 2 }',
        '  embedDim: 8',
        'data: { dataset: imagefolder, root: data, split: train }',
        "captions: { templates: ['a photo of a {}.'] }",
        'optim: { batchSize: 4, steps: 2, lr: 0.001 }',
        'eval: { enabled: false }',
        'threads: 1',
        `tokenizer: ${JSON.stringify(BPE_PATH)}`,
        '',
      ].join('\n'),
    );
    const shipped = join(REPO, 'models', 'moeclip-tiny', 'model.safetensors');
    const before = readFileSync(shipped);
    process.chdir(dir);
    let io = captureIO();
    assert.equal(await main(['pretrain', cfg], io), 0, io.err);
    assert.equal(JSON.parse(io.out).out, join(dir, 'runs', 'pretrain', 'out-test', 'model'));
    assert.ok(existsSync(join(dir, 'runs', 'pretrain', 'out-test', 'model', 'model.safetensors')));
    assert.ok(existsSync(join(dir, 'runs', 'pretrain', 'out-test', 'checkpoints', 'checkpoint.json')));
    io = captureIO();
    assert.equal(await main(['pretrain', cfg, '--out', 'mine', '--checkpoint-dir', 'ck'], io), 0, io.err);
    assert.equal(JSON.parse(io.out).out, join(dir, 'mine'));
    assert.ok(existsSync(join(dir, 'mine', 'config.json')));
    assert.ok(readFileSync(shipped).equals(before), 'the shipped model is untouched');
  } finally {
    process.chdir(cwd);
    cleanup();
  }
});
