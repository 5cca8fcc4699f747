/**
 * Every shipped preset validates: run configs parse (method options included); every benchmark preset composes
 * with every method by name (`--set method.name=X` with the method's defaults) and with every method preset
 * (`--method presets/methods/X.yaml`).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../../src/config/load.ts';

const PRESETS = fileURLToPath(new URL('../../presets/', import.meta.url));
const yamls = (dir: string) => readdirSync(join(PRESETS, dir)).filter((f) => f.endsWith('.yaml')).map((f) => join(PRESETS, dir, f));
const TRAINABLE = ['adapter-clip', 'lora-clip', 'finetune', 'er', 'lwf', 'ewc', 'moe-adapters', 'zeroshot-clip', 'ncm-clip'];

test('run presets and paper-scale presets parse', async () => {
  for (const f of [...yamls('.'), ...yamls('paper'), ...yamls('bench')]) await loadConfig(f);
});

test('every benchmark preset runs every method by name, and every method preset', async () => {
  const methods = yamls('methods');
  assert.ok(methods.length >= 8);
  for (const b of yamls('bench')) {
    for (const name of TRAINABLE) {
      const c = await loadConfig(b, { sets: [`method.name=${name}`] });
      assert.equal(c.config.method.name, name);
    }
    for (const m of methods) {
      const c = await loadConfig(b, { methodFile: m });
      assert.ok(typeof c.config.method.name === 'string');
    }
  }
});

test('a method file with an unknown option names the field and the file', async () => {
  const b = yamls('bench')[0]!;
  await assert.rejects(loadConfig(b, { sets: ['method.name=moe-adapters', 'method.experts=2', 'method.topK=3'] }), /method\.topK/);
  await assert.rejects(loadConfig(b, { sets: ['method.name=lwf', 'method.lamda=2'] }), /lamda/);
});

test('the CNN presets parse, run every CNN method by name, and their streams are valid sets specs', async () => {
  const { parseStreamSpec } = await import('../../src/data/streams/spec.ts');
  const cnn = yamls('cnn');
  assert.deepEqual(cnn.map((f) => f.split('/').pop()).sort(), ['omtp-reduced.yaml', 'omtp.yaml', 'rotmnist-reduced.yaml']);
  for (const f of cnn) {
    for (const name of ['cnn-subnets', 'cnn-prune', 'cnn-replay', 'cnn-finetune']) {
      const c = await loadConfig(f, { sets: [`method.name=${name}`] });
      assert.equal(c.config.method.name, name);
    }
    const c = await loadConfig(f);
    const s = parseStreamSpec(c.config.stream) as { kind: string; sequence: string[]; sources: { name: string }[] };
    assert.equal(s.kind, 'sets');
    assert.ok(s.sequence.every((n) => s.sources.some((src) => src.name === n)));
  }
});
