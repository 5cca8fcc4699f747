/**
 * Pretraining configs: defaults, overrides, path resolution, and errors that name the field.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { clipConfigOf, loadPretrainConfig, parsePretrainConfig, PretrainConfigError, trainingSignature } from '../../src/pretrain/config.ts';
import { clipParamCount } from '../../src/clip/weights.ts';
import { REPO, tempDir } from './fixtures.ts';

const BASE = {
  model: { vision: { imageSize: 32, patchSize: 8, width: 16, layers: 1, heads: 2 }, text: { contextLength: 12, width: 16, layers: 1, heads: 2 }, embedDim: 8 },
  data: { dataset: 'tiny-imagenet', classes: 'even' },
  optim: { batchSize: 8, epochs: 2, lr: 0.001 },
};

function errorOf(raw: unknown, sets: string[] = []): string {
  try {
    parsePretrainConfig(raw, { baseDir: '/base', sets, cwd: '/cwd' });
  } catch (e) {
    assert.ok(e instanceof PretrainConfigError, `expected a PretrainConfigError, got ${(e as Error).name}`);
    return (e as Error).message;
  }
  assert.fail('expected the config to be rejected');
}

test('defaults are filled and the CLIP config is derived (MLP 4×width, QuickGELU, real vocabulary)', () => {
  const cfg = parsePretrainConfig(structuredClone(BASE), { baseDir: '/base' });
  assert.equal(cfg.seed, 0);
  assert.equal(cfg.data.split, 'train');
  assert.deepEqual(cfg.optim.betas, [0.9, 0.98]);
  assert.equal(cfg.optim.weightDecay, 0.1);
  assert.equal(cfg.float, 'F16');
  assert.equal(cfg.augment.crop.kind, 'random-resized');
  assert.equal(cfg.captions.synonyms, true);
  const c = clipConfigOf(cfg);
  assert.equal(c.vision.mlpDim, 64);
  assert.equal(c.text.mlpDim, 64);
  assert.equal(c.vision.act, 'quick_gelu');
  assert.equal(c.text.vocabSize, 49408);
  assert.equal(c.embedDim, 8);
  assert.ok(Math.abs(c.logitScaleInit - Math.log(1 / 0.07)) < 1e-12);
});

test('errors name the field', () => {
  const bad = (patch: (c: typeof BASE & Record<string, unknown>) => void) => {
    const c = structuredClone(BASE) as typeof BASE & Record<string, unknown>;
    patch(c);
    return errorOf(c);
  };
  assert.match(bad((c) => ((c.optim as Record<string, unknown>).lr = -1)), /optim\.lr: expected a number ≥ 0/);
  assert.match(bad((c) => ((c.optim as Record<string, unknown>).lr = 'fast')), /optim\.lr/);
  assert.match(bad((c) => ((c.data as Record<string, unknown>).classes = 'some')), /data\.classes/);
  assert.match(bad((c) => ((c.model.vision as Record<string, unknown>).width = 0)), /model\.vision\.width/);
  assert.match(bad((c) => ((c.model.text as Record<string, unknown>).heads = 3)), /model\.text\.width: 16 is not divisible by heads 3/);
  assert.match(bad((c) => ((c.model.vision as Record<string, unknown>).patchSize = 5)), /model\.vision\.imageSize: 32 is not a multiple of patchSize 5/);
  assert.match(bad((c) => ((c.optim as Record<string, unknown>).steps = 10)), /optim\.steps: give exactly one of steps and epochs/);
  assert.match(bad((c) => delete (c.optim as Record<string, unknown>).epochs), /optim\.steps: give exactly one/);
  assert.match(bad((c) => ((c.optim as Record<string, unknown>).lrFloor = 0.1)), /optim\.lrFloor: lrFloor 0\.1 is above lr/);
  assert.match(bad((c) => ((c as Record<string, unknown>).typo = 1)), /\(root\): .*typo/i);
  assert.match(bad((c) => ((c as Record<string, unknown>).augment = { crop: { kind: 'zoom' } })), /augment\.crop/);
  assert.match(bad((c) => ((c as Record<string, unknown>).augment = { flip: 2 })), /augment\.flip/);
  assert.match(bad((c) => ((c as Record<string, unknown>).captions = { templates: ['no placeholder'] })), /captions\.templates\.0: a template needs a \{\} placeholder/);
  assert.match(bad((c) => delete (c as Record<string, unknown>).data), /data: /);
  assert.match(errorOf([1, 2]), /must be a mapping/);
});

test('--set overrides are parsed as YAML and applied after the file; paths resolve against file and cwd', () => {
  const raw = { ...structuredClone(BASE), out: 'models/x', data: { ...BASE.data, root: 'data/tiny' } };
  const cfg = parsePretrainConfig(raw, { baseDir: '/base', sets: ['optim.lr=3e-4', 'optim.betas=[0.8, 0.9]', 'checkpointDir=ck'], cwd: '/cwd' });
  assert.equal(cfg.optim.lr, 3e-4);
  assert.deepEqual(cfg.optim.betas, [0.8, 0.9]);
  assert.equal(cfg.out, '/base/models/x');
  assert.equal(cfg.data.root, '/base/data/tiny');
  assert.equal(cfg.checkpointDir, '/cwd/ck');
  assert.match(errorOf(structuredClone(BASE), ['optim.lr']), /expected key\.path=value/);
  assert.match(errorOf(structuredClone(BASE), ['optim.batchSize=1']), /optim\.batchSize: expected an integer ≥ 2/);
});

test('YAML files load with the file name as default name; bad YAML names the file', () => {
  const { dir, cleanup } = tempDir('pretrain-config');
  try {
    const file = join(dir, 'my-run.yaml');
    writeFileSync(file, 'model:\n  vision: {imageSize: 32, patchSize: 8, width: 16, layers: 1, heads: 2}\n  text: {contextLength: 12, width: 16, layers: 1, heads: 2}\n  embedDim: 8\ndata: {dataset: cifar10, root: ./c10}\noptim: {batchSize: 4, steps: 3, lr: 0.01}\n');
    const cfg = loadPretrainConfig(file);
    assert.equal(cfg.name, 'my-run');
    assert.equal(cfg.data.root, join(dir, 'c10'));
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'model: [\n');
    assert.throws(() => loadPretrainConfig(bad), (e: Error) => e.message.includes(bad) && /not valid YAML/.test(e.message));
    assert.throws(() => loadPretrainConfig(join(dir, 'missing.yaml')), /cannot read config/);
  } finally {
    cleanup();
  }
});

test('the training signature ignores bookkeeping but not training settings', () => {
  const a = parsePretrainConfig(structuredClone(BASE), { baseDir: '/b' });
  const b = parsePretrainConfig(structuredClone(BASE), { baseDir: '/b', sets: ['checkpointEvery=5', 'out=/x', 'threads=1', 'eval.every=3'] });
  const c = parsePretrainConfig(structuredClone(BASE), { baseDir: '/b', sets: ['optim.lr=0.002'] });
  assert.deepEqual(trainingSignature(a), trainingSignature(b));
  assert.notDeepEqual(trainingSignature(a), trainingSignature(c));
});

test('the shipped preset parses: Tiny ImageNet base classes, 64-px model within the 25 MB budget in F16', () => {
  const cfg = loadPretrainConfig(join(REPO, 'presets', 'pretrain', 'moeclip-tiny.yaml'));
  assert.equal(cfg.name, 'moeclip-tiny');
  assert.equal(cfg.data.dataset, 'tiny-imagenet');
  assert.equal(cfg.data.classes, 'even');
  assert.equal(cfg.float, 'F16');
  assert.equal(cfg.out, join(REPO, 'runs', 'pretrain', 'moeclip-tiny', 'model'), 'never the shipped model folder');
  assert.equal(cfg.wordnet, join(REPO, '.data', 'wordnet'));
  assert.ok(cfg.textText !== undefined && cfg.textText.datasets.includes('cifar10'));
  assert.ok(cfg.checkpointEvery > 0 && cfg.checkpointEvery <= 250);
  const c = clipConfigOf(cfg);
  assert.equal(c.vision.imageSize, 64);
  assert.equal(c.text.vocabSize, 49408);
  // F16 weights + vocab.json (≈0.86 MB) + merges.txt (≈0.52 MB) + small JSON files
  const bytes = 2 * clipParamCount(c) + 1.5e6;
  assert.ok(bytes <= 25e6, `${(bytes / 1e6).toFixed(1)} MB`);
});

test('WordNet caption and textText options: defaults, errors naming the field, path resolution, signature', () => {
  const a = parsePretrainConfig(structuredClone(BASE), { baseDir: '/b' });
  assert.deepEqual(a.captions, { synonyms: true, hypernym: 0, hypernymOnly: 0, gloss: 0, hypernymDepth: 3 });
  assert.equal(a.textText, undefined);
  assert.deepEqual(a.eval.datasets, []);
  // without WordNet options the signature's captions are those of earlier versions
  assert.deepEqual(trainingSignature(a)['captions'], { synonyms: true });
  assert.equal('textText' in trainingSignature(a), false);
  const g = parsePretrainConfig({ ...structuredClone(BASE), wordnet: 'wn', captions: { hypernym: 0.2, gloss: 0.1 }, textText: { datasets: ['cifar10'] } }, { baseDir: '/b' });
  assert.equal(g.wordnet, '/b/wn');
  assert.deepEqual(g.textText, {
    weight: 0.5,
    batchSize: 128,
    synonym: 0.2,
    depth: 2,
    trainClasses: 'all',
    datasets: ['cifar10'],
    ancestors: true,
    others: 3000,
    othersUnder: [],
  });
  assert.deepEqual(trainingSignature(g)['captions'], g.captions);
  assert.deepEqual(trainingSignature(g)['textText'], g.textText);
  // the WordNet folder is not part of the signature (its texts are checked through the vocabulary and pair hash)
  const moved = parsePretrainConfig({ ...structuredClone(BASE), wordnet: 'elsewhere', captions: { hypernym: 0.2, gloss: 0.1 }, textText: { datasets: ['cifar10'] } }, { baseDir: '/b' });
  assert.deepEqual(trainingSignature(moved), trainingSignature(g));
  const bad = (patch: Record<string, unknown>) => errorOf({ ...structuredClone(BASE), ...patch });
  assert.match(bad({ captions: { hypernym: 1.5 } }), /captions\.hypernym/);
  assert.match(bad({ captions: { hypernym: 0.6, hypernymOnly: 0.3, gloss: 0.2 } }), /captions\.hypernym: hypernym \+ hypernymOnly \+ gloss must be ≤ 1/);
  assert.match(bad({ captions: { hypernymDepth: 0 } }), /captions\.hypernymDepth: expected a positive integer/);
  assert.match(bad({ textText: { batchSize: 1 } }), /textText\.batchSize: expected an integer ≥ 2/);
  assert.match(bad({ textText: { weight: -1 } }), /textText\.weight: expected a number ≥ 0/);
  assert.match(bad({ textText: { trainClasses: 'some' } }), /textText\.trainClasses/);
  assert.match(bad({ textText: { othersUnder: ['00001930'] } }), /textText\.othersUnder\.0: expected a noun wnid/);
  assert.match(bad({ textText: { typo: 1 } }), /textText: .*typo/i);
  assert.match(bad({ eval: { datasets: [{ split: 'test' }] } }), /eval\.datasets\.0\.dataset/);
});
