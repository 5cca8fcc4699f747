/**
 * WordNet-grounded text of pretraining on the fixture WordNet (test/fixtures/wordnet): caption kinds and their
 * probabilities, held-out classes never named in captions, the text-pair synsets and descriptions, the pair
 * stream (permutations, targets, exact restore) and the compact vocabulary covering every text.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { TableDataset } from '../../src/data/dataset.ts';
import { WordNet } from '../../src/data/wordnet.ts';
import { CaptionSampler, fillCaption, vocabularyOf, type ClassText } from '../../src/pretrain/captions.ts';
import { classSubsetOf } from '../../src/pretrain/classes.ts';
import { classRelatives, runTextPairItems, synsetForName } from '../../src/pretrain/grounding.ts';
import { allPairTexts, describeSynset, TextPairSampler, textPairItems } from '../../src/pretrain/text-pairs.ts';
import { Rng } from '../../src/util/rng.ts';
import { tinyConfig, tokenizer } from './fixtures.ts';

const wn = WordNet.load(fileURLToPath(new URL('../fixtures/wordnet', import.meta.url)));

/** Four classes with fixture wnids: sorted goldfish(0) dog(1) Chihuahua(2) fish(3) → even = goldfish, Chihuahua. */
function wnidDataset(): TableDataset {
  const ids = ['n01443537', 'n02084071', 'n02085620', 'n02512053'];
  const names = [['goldfish'], ['dog', 'domestic dog'], ['Chihuahua'], ['fish']];
  return new TableDataset(
    { name: 'wn-shapes', split: 'train', classNames: names.map((n) => n[0]!), templates: ['a photo of a {}.', 'art of the {}.'] },
    { count: 4, height: 2, width: 2, channels: 3, labels: Int32Array.from([0, 1, 2, 3]), pixels: new Uint8Array(48) },
    { classIds: ids, classSynonyms: names },
  );
}

test('caption kinds: thresholds, fallbacks, every draw among allCaptions, frequencies near the mix', () => {
  const rel: (ClassText | null)[] = [{ hypernyms: [['cyprinid'], ['fish', 'fishes']], definition: 'small orange fish' }, null];
  const mix = { hypernym: 0.3, hypernymOnly: 0.2, gloss: 0.1 };
  const cs = new CaptionSampler([['goldfish'], ['dog']], ['a photo of a {}.'], { relatives: rel, mix });
  assert.equal(cs.kindOf(0, 0.29), 'hypernym');
  assert.equal(cs.kindOf(0, 0.3), 'hypernymOnly');
  assert.equal(cs.kindOf(0, 0.55), 'gloss');
  assert.equal(cs.kindOf(0, 0.6), 'name');
  assert.equal(cs.kindOf(1, 0.1), 'name', 'a class without WordNet text gets name captions');
  const all = new Set(cs.allCaptions([0, 1]));
  assert.deepEqual(
    [...all].sort(),
    [
      'a photo of a cyprinid.',
      'a photo of a dog.',
      'a photo of a fish.',
      'a photo of a fishes.',
      'a photo of a goldfish, a kind of cyprinid.',
      'a photo of a goldfish, a kind of fish.',
      'a photo of a goldfish, a kind of fishes.',
      'a photo of a goldfish, small orange fish.',
      'a photo of a goldfish.',
    ],
  );
  const rng = new Rng(3);
  const counts = new Map<string, number>();
  const n = 4000;
  for (let i = 0; i < n; i++) {
    const c = cs.sample(0, rng);
    assert.ok(all.has(c), c);
    counts.set(c, (counts.get(c) ?? 0) + 1);
  }
  const frac = (pred: (c: string) => boolean) => [...counts].filter(([c]) => pred(c)).reduce((s, [, k]) => s + k, 0) / n;
  assert.ok(Math.abs(frac((c) => c.includes('a kind of')) - 0.3) < 0.03);
  assert.ok(Math.abs(frac((c) => c === 'a photo of a goldfish.') - 0.4) < 0.03);
  assert.ok(Math.abs(frac((c) => c.includes('small orange')) - 0.1) < 0.02);
  // hypernymOnly: level uniform (½ cyprinid), then a name of the level (¼ each of fish / fishes)
  assert.ok(Math.abs(frac((c) => c === 'a photo of a cyprinid.') - 0.1) < 0.02);
  assert.ok(Math.abs(frac((c) => c === 'a photo of a fishes.') - 0.05) < 0.015);
  // without a mix: the two draws of name captions only (the sampler of runs without WordNet)
  const plain = new CaptionSampler([['a', 'b']], ['{}!', '{}?']);
  const r1 = new Rng(5);
  const r2 = new Rng(5);
  for (let i = 0; i < 20; i++) {
    const name = ['a', 'b'][r2.int(2)]!;
    const template = ['{}!', '{}?'][r2.int(2)]!;
    assert.equal(plain.sample(0, r1), fillCaption(template, name));
  }
  assert.deepEqual(r1.getState(), r2.getState(), 'two draws per name caption');
  assert.throws(() => new CaptionSampler([['x']], ['{}'], { mix: { hypernym: 0.6, hypernymOnly: 0.5, gloss: 0 } }), /must be ≤ 1/);
});

test('caption relatives: ancestors by level, and held-out classes are never named', () => {
  const ds = wnidDataset();
  const even = classSubsetOf(ds, 'even');
  assert.deepEqual(even, [0, 2]);
  const rel = classRelatives(wn, ds, even, 2);
  assert.equal(rel[1], null);
  assert.equal(rel[3], null);
  // goldfish: cyprinid, then fish — but fish is a held-out class here, so level 2 is empty, and the definition
  // ("small orange fish kept …") names it, so it is not used
  assert.deepEqual(rel[0], { hypernyms: [['cyprinid'], []], definition: null });
  // Chihuahua: dog is held out; level 2 names canine and domestic animal; "a very small dog …" is dropped
  assert.deepEqual(rel[2], { hypernyms: [[], ['canine', 'domestic animal', 'domesticated animal']], definition: null });
  // with every class in training, nothing is held out
  const all = classRelatives(wn, ds, [0, 1, 2, 3], 2);
  assert.deepEqual(all[0], { hypernyms: [['cyprinid'], ['fish']], definition: 'small orange fish kept in ponds and bowls' });
  assert.deepEqual(all[2]!.hypernyms, [['dog', 'domestic dog', 'Canis familiaris'], ['canine', 'domestic animal', 'domesticated animal']]);
  const cs = new CaptionSampler([['goldfish'], ['dog'], ['Chihuahua'], ['fish']], ['a photo of a {}.'], { relatives: rel, mix: { hypernym: 0.4, hypernymOnly: 0.4, gloss: 0.2 } });
  const caps = cs.allCaptions(even);
  for (const c of caps) {
    assert.ok(!/\bdog\b|\bdomestic dog\b/.test(c), c);
    assert.ok(!/ fish\.|kind of fish\b/.test(c), c);
  }
  assert.ok(caps.includes('a photo of a Chihuahua, a kind of canine.'));
  assert.ok(caps.includes('a photo of a cyprinid.'));
  const rng = new Rng(1);
  for (let i = 0; i < 300; i++) assert.ok(caps.includes(cs.sample(i % 2 === 0 ? 0 : 2, rng)));
});

test('class names to synsets, descriptions, and the synsets of a run', () => {
  assert.equal(synsetForName(wn, '0 - zero'), 'n13742358', 'MNIST style: the digit');
  assert.equal(synsetForName(wn, 'zero'), 'n13740168', 'most frequent sense first');
  assert.equal(synsetForName(wn, 'Domestic animal'), 'n01317541');
  assert.equal(synsetForName(wn, 'golden goldfish'), 'n01443537', 'last word');
  assert.equal(synsetForName(wn, 'cat'), null);
  assert.deepEqual(describeSynset(wn, 'n01443537', 2), [
    'a kind of cyprinid, small orange fish kept in ponds and bowls',
    'a kind of fish, small orange fish kept in ponds and bowls',
  ]);
  assert.deepEqual(describeSynset(wn, 'n00001740', 2), ['whatever exists (fixture)'], 'a root: its definition');
  const items = textPairItems(wn, {
    seeds: [{ wnid: 'n01443537', names: ['gold fish'], templates: ['{}!'] }, { wnid: 'n02085620' }],
    ancestors: true,
    others: 1,
    seed: 0,
    depth: 1,
    templates: ['a {}.'],
  });
  const ids = items.map((i) => i.wnid);
  assert.deepEqual(ids, [...ids].sort());
  // seeds + every ancestor of both + one other tagged synset (from zero, 0, …)
  for (const w of ['n01443537', 'n01439121', 'n02512053', 'n01471682', 'n00015388', 'n00004475', 'n00001740', 'n02085620', 'n02084071', 'n02083346', 'n01317541']) {
    assert.ok(ids.includes(w), w);
  }
  assert.equal(items.length, 12);
  const gold = items.find((i) => i.wnid === 'n01443537')!;
  assert.deepEqual(gold.names, ['goldfish', 'Carassius auratus', 'gold fish']);
  assert.deepEqual(gold.templates, ['a {}.', '{}!']);
  assert.deepEqual(gold.descriptions, ['a kind of cyprinid, small orange fish kept in ponds and bowls']);
  // only below a given synset
  const under = textPairItems(wn, { seeds: [], ancestors: false, others: 10, othersUnder: ['n00015388'], seed: 0, depth: 1, templates: ['{}'] });
  assert.deepEqual(under.map((i) => i.wnid), ['n02084071', 'n02512053']);
  // a run: trainClasses even (goldfish, Chihuahua) + ancestors, with a registry dataset's class names
  const cfg = tinyConfig(['textText={batchSize: 2, trainClasses: even, datasets: [], others: 0, depth: 1}']);
  const run = runTextPairItems(wn, cfg, wnidDataset(), ['a photo of a {}.']);
  assert.ok(run.some((i) => i.wnid === 'n02085620') && !run.some((i) => i.wnid === 'n02512053' && false));
  assert.throws(
    () => runTextPairItems(wn, tinyConfig(['textText={datasets: [cifar10]}']), wnidDataset(), ['{}']),
    /textText\.datasets: cifar10: class "airplane" is not a WordNet noun/,
  );
});

test('pair stream: permutations of the synsets, interchangeable-pair targets, vocabulary coverage, exact restore', () => {
  const tok = tokenizer();
  const items = textPairItems(wn, { seeds: [], ancestors: false, others: 100, seed: 1, depth: 2, templates: ['a photo of a {}.', 'the {}.'] });
  assert.equal(items.length, 5);
  const vocab = vocabularyOf(tok, [allPairTexts(items)], 16);
  const make = () => new TextPairSampler(items, 2, 0.5, { order: new Rng(4), draw: new Rng(5) });
  const s = make();
  const seen: string[] = [];
  let synonyms = 0;
  for (let k = 0; k < 10; k++) {
    const b = s.next(tok, vocab, 16);
    assert.deepEqual(b.idsDims[0], 4);
    seen.push(...b.wnids);
    for (let i = 0; i < 2; i++) {
      const it = items.find((x) => x.wnid === b.wnids[i])!;
      assert.ok(it.names.some((n) => it.templates.some((t) => fillCaption(t, n) === b.a[i])), b.a[i]);
      const isDesc = it.descriptions.includes(b.b[i]!);
      const isSyn = it.names.some((n) => it.templates.some((t) => fillCaption(t, n) === b.b[i]));
      assert.ok(isDesc !== isSyn, b.b[i]);
      if (isSyn) {
        synonyms++;
        assert.notEqual(b.a[i], b.b[i]);
      }
      for (let j = 0; j < 2; j++) {
        const want = i === j || b.a[i] === b.a[j] || b.b[i] === b.b[j] || b.wnids[i] === b.wnids[j] ? 1 : 0;
        assert.equal(b.targets[i * 2 + j], want);
      }
    }
  }
  assert.ok(synonyms > 0);
  // 20 draws = 4 epochs of 5 synsets, each a permutation
  for (let e = 0; e < 4; e++) assert.deepEqual(seen.slice(e * 5, e * 5 + 5).sort(), items.map((i) => i.wnid).sort());
  // restore mid-epoch continues identically
  const a = make();
  a.next(tok, vocab, 16);
  const st = JSON.parse(JSON.stringify(a.state()));
  const want = Array.from({ length: 4 }, () => a.next(tok, vocab, 16));
  const b = make();
  b.restore(st);
  for (const w of want) {
    const got = b.next(tok, vocab, 16);
    assert.deepEqual(got.a, w.a);
    assert.deepEqual(got.b, w.b);
    assert.deepEqual(Array.from(got.ids), Array.from(w.ids));
  }
  assert.throws(() => new TextPairSampler(items.slice(1), 2, 0.5, { order: new Rng(4), draw: new Rng(5) }).restore(st, 'ck'), /ck: the checkpoint was made with other text pairs/);
  assert.throws(() => new TextPairSampler(items, 6, 0, { order: new Rng(1), draw: new Rng(1) }), /5 synsets, fewer than the 6 pairs/);
});
