/**
 * Pretraining with WordNet-grounded text on the fixture WordNet and coloured shapes named by fixture wnids:
 * the text–text term falls, held-out images never enter a batch, a stopped and resumed run equals an
 * uninterrupted one bit for bit (pair stream included), `eval.datasets` are evaluated, and the vocabulary covers
 * the pair texts.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { WordNet } from '../../src/data/wordnet.ts';
import { Engine } from '../../src/runtime/engine.ts';
import { loadCheckpoint } from '../../src/pretrain/checkpoint.ts';
import { allPairTexts } from '../../src/pretrain/text-pairs.ts';
import { pretrain, type PretrainEvent } from '../../src/pretrain/train.ts';
import { shapesDataset, tempDir, tinyConfig, tokenizer, WORDNET_FIXTURE, WORDNET_SHAPES } from './fixtures.ts';

const engine = await Engine.create({ worker: false, threads: 1 });
after(() => engine.close());
const wn = WordNet.load(WORDNET_FIXTURE);
const train = shapesDataset(12, 16, 1, 'train', WORDNET_SHAPES);
const GROUNDED = [
  'data.classes=even',
  'captions.hypernym=0.3',
  'captions.hypernymOnly=0.2',
  'captions.gloss=0.2',
  'textText={batchSize: 4, weight: 1.0, trainClasses: all, ancestors: true, others: 5, depth: 2, synonym: 0.3}',
];

test('grounded pretraining: the text–text loss falls; only training-class images are used; the vocabulary covers the pairs', async () => {
  const tt: number[] = [];
  const starts: PretrainEvent[] = [];
  const r = await pretrain(tinyConfig([...GROUNDED, 'optim.steps=60', 'optim.lr=0.01', 'optim.batchSize=8']), {
    tokenizer: tokenizer(),
    engine,
    trainData: train,
    evalData: null,
    wordnet: wn,
    onEvent: (e) => {
      if (e.type === 'step') {
        assert.ok(e.lossTT !== null && e.pairAccuracy !== null);
        tt.push(e.lossTT!);
      }
      if (e.type === 'start') starts.push(e);
    },
  });
  assert.equal(r.step, 60);
  const mean = (a: number[]) => a.reduce((s, x) => s + x, 0) / a.length;
  assert.ok(mean(tt.slice(-10)) < 0.8 * mean(tt.slice(0, 10)), `text-text ${mean(tt.slice(0, 10)).toFixed(3)} → ${mean(tt.slice(-10)).toFixed(3)}`);
  // every synset of the fixture with a description: the 4 classes, their ancestors and the tagged others
  assert.equal(r.pairItems.length, 14 - 1, 'Goldie (no tagged sense, not an ancestor) is the one synset left out');
  const start = starts[0] as Extract<PretrainEvent, { type: 'start' }>;
  assert.equal(start.pairSynsets, r.pairItems.length);
  assert.equal(start.samples, 24, 'the 12 + 12 images of the two even classes');
  // every pair text tokenises inside the compact table
  const tok = tokenizer();
  for (const text of allPairTexts(r.pairItems)) {
    const { ids, lengths } = tok.tokenize([text], 12);
    for (let t = 0; t < lengths[0]!; t++) assert.doesNotThrow(() => r.vocab.compact(ids[t]!), text);
  }
});

test('grounded pretraining: stop + resume equals the uninterrupted run bit for bit; eval.datasets are evaluated', async () => {
  const { dir, cleanup } = tempDir('pretrain-grounded');
  try {
    const cfg = tinyConfig([...GROUNDED, 'optim.steps=8', 'checkpointEvery=3']);
    const opts = { tokenizer: tokenizer(), engine, trainData: train, evalData: null, wordnet: wn };
    const full = await pretrain(cfg, { ...opts, checkpointDir: join(dir, 'a') });
    const part = await pretrain(cfg, { ...opts, checkpointDir: join(dir, 'b'), maxSteps: 5 });
    assert.equal(part.step, 5);
    const ck = loadCheckpoint(join(dir, 'b'));
    assert.ok(ck.meta.sampler.textPairs, 'the checkpoint holds the pair stream');
    assert.equal(ck.meta.sampler.textPairs!.position, (5 * 4) % full.pairItems.length, '5 steps of 4 pairs over 13 synsets');
    const resumed = await pretrain(cfg, { ...opts, checkpointDir: join(dir, 'b'), resume: true });
    assert.equal(resumed.step, 8);
    for (const name of full.state.stateNames) {
      const a = full.state.get(name).data as Float32Array;
      const b = resumed.state.get(name).data as Float32Array;
      for (let i = 0; i < a.length; i++) assert.ok(Object.is(a[i], b[i]), `${name}[${i}]`);
    }
    // other text-pair settings are refused on resume, naming the field
    await assert.rejects(
      pretrain(tinyConfig([...GROUNDED.slice(0, -1), 'textText={batchSize: 4, weight: 0.5, others: 5, depth: 2, synonym: 0.3}', 'optim.steps=8']), {
        ...opts,
        checkpointDir: join(dir, 'b'),
        resume: true,
      }),
      /field 'textText\.weight' differs/,
    );
    // extra zero-shot evaluations: the shapes as a second dataset, all four classes
    const evals: PretrainEvent[] = [];
    const evalSet = shapesDataset(3, 16, 7, 'val', WORDNET_SHAPES);
    const r = await pretrain(
      tinyConfig([...GROUNDED, 'optim.steps=2', 'optim.warmupSteps=1', 'eval.enabled=true', 'eval.datasets=[{dataset: mnist, split: test}]']),
      { ...opts, evalData: evalSet, extraEvalData: [evalSet], onEvent: (e) => e.type === 'eval' && evals.push(e) },
    );
    assert.equal(evals.length, 1);
    const e = evals[0] as Extract<PretrainEvent, { type: 'eval' }>;
    assert.equal(e.extra.length, 1);
    assert.equal(e.extra[0]!.dataset, 'mnist');
    assert.equal(e.extra[0]!.n, 12);
    assert.equal(e.extra[0]!.classes, 4);
    assert.equal(e.seen.classes, 2);
    assert.equal(e.unseen!.classes, 2);
    assert.deepEqual(r.eval!.extra, e.extra);
    assert.ok(r.history.some((h) => h.type === 'eval' && Array.isArray(h['extra'])));
  } finally {
    cleanup();
  }
});

