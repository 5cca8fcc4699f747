/**
 * The WordNet reader on a small fixture in the real data.noun / index.noun format (test/fixtures/wordnet): line
 * parsing (hexadecimal word counts, pointers of other parts of speech, glosses with examples, the license
 * header), hypernym chains and ancestor levels of known synsets, instance hypernyms, the lemma index.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  definitionOf,
  lemmaKey,
  offsetOfWnid,
  parseDataLine,
  parseIndexLine,
  wnidOfOffset,
  WordNet,
} from '../../src/data/wordnet.ts';

const DIR = fileURLToPath(new URL('../fixtures/wordnet', import.meta.url));
const wn = WordNet.load(DIR);
const first = (w: string) => wn.names(w)[0];

test('data.noun lines: offset, lemmas (hex count), noun hypernym pointers only, gloss and definition', () => {
  const s = parseDataLine(
    '02084071 05 n 03 dog 0 domestic_dog 0 Canis_familiaris 0 004 @ 02083346 n 0000 @ 01317541 n 0000 ~ 02085620 n 0000 + 01047745 v 0101 | a domesticated canine; "the dog barked"  ',
  )!;
  assert.equal(s.wnid, 'n02084071');
  assert.equal(s.lexFile, 5);
  assert.deepEqual(s.lemmas, ['dog', 'domestic_dog', 'Canis_familiaris']);
  assert.deepEqual(s.names, ['dog', 'domestic dog', 'Canis familiaris']);
  assert.deepEqual(s.hypernyms, ['n02083346', 'n01317541']);
  assert.deepEqual(s.instanceOf, []);
  assert.equal(s.gloss, 'a domesticated canine; "the dog barked"');
  assert.equal(s.definition, 'a domesticated canine');
  // the license header and blank lines are not synsets
  assert.equal(parseDataLine('  1 This software and database is being provided to you, the LICENSEE, by  '), null);
  assert.equal(parseDataLine(''), null);
  // 0b = 11 words
  assert.equal(wn.synset('n13740168').lemmas.length, 11);
  assert.equal(wn.synset('n13740168').lemmas[10], 'zero');
  // errors name the place and the field
  assert.throws(() => parseDataLine('0208407 05 n 01 dog 0 000 | x', 'f:3'), /f:3: synset offset "0208407" is not 8 digits/);
  assert.throws(() => parseDataLine('02084071 05 v 01 run 0 000 | x', 'f:4'), /f:4: ss_type "v": expected 'n'/);
  assert.throws(() => parseDataLine('02084071 05 n 02 dog 0 000 | x', 'f:5'), /f:5: .*lex_id of word 2|f:5: line ends before/);
});

test('definitions drop the quoted examples', () => {
  assert.equal(definitionOf('a cold-blooded vertebrate living in water; "they caught a fish"; "fish swim"'), 'a cold-blooded vertebrate living in water');
  assert.equal(definitionOf('a fish of the carp family'), 'a fish of the carp family');
  assert.equal(definitionOf('"only an example"'), '');
  assert.equal(wn.definition('n00004475'), 'a living thing');
});

test('the fixture reads whole: every synset line, the header skipped', () => {
  const lines = readFileSync(`${DIR}/data.noun`, 'utf8').split('\n').filter((l) => /^\d{8} /.test(l));
  assert.equal(wn.size, lines.length);
  assert.equal(wn.size, 14);
  assert.deepEqual(wn.wnids().slice(0, 3), ['n00001740', 'n00004475', 'n00015388']);
  assert.equal(wn.has('n01443537'), true);
  assert.equal(wn.has('n09999999'), false);
  assert.throws(() => wn.synset('n09999999'), /no noun synset n09999999/);
});

test('hypernym chain of goldfish: first parents up to the root', () => {
  const chain = wn.hypernymChain('n01443537');
  assert.deepEqual(chain, ['n01439121', 'n02512053', 'n01471682', 'n00015388', 'n00004475', 'n00001740']);
  assert.deepEqual(chain.map(first), ['cyprinid', 'fish', 'vertebrate', 'animal', 'organism', 'entity']);
  assert.deepEqual(wn.names('n01443537'), ['goldfish', 'Carassius auratus']);
  // dog has two hypernyms: the chain follows the first, the levels hold both
  assert.deepEqual(wn.hypernymChain('n02084071').map(first), ['canine', 'animal', 'organism', 'entity']);
  assert.deepEqual(wn.ancestorLevels('n02084071'), [['n02083346', 'n01317541'], ['n00015388'], ['n00004475'], ['n00001740']]);
  assert.deepEqual(wn.ancestorLevels('n02085620', 2), [['n02084071'], ['n02083346', 'n01317541']]);
  // an instance reaches its class through @i
  assert.deepEqual(wn.parents('n10000001'), ['n01443537']);
  assert.equal(wn.hypernymChain('n10000001')[0], 'n01443537');
  assert.equal(wn.hypernymChain('n10000001').length, 7);
  // the root has none; a pointer outside the file ends the chain
  assert.deepEqual(wn.hypernymChain('n00001740'), []);
  assert.deepEqual(wn.hypernymChain('n13742358'), []);
});

test('index.noun: lemma lookup in sense order, tagged senses', () => {
  const e = parseIndexLine('dog n 2 3 @ ~ %p 2 1 02084071 10114209  ')!;
  assert.deepEqual(e, { lemma: 'dog', senses: ['n02084071', 'n10114209'], taggedSenses: 1 });
  assert.equal(parseIndexLine('  1 header line'), null);
  assert.throws(() => parseIndexLine('dog n 2 0 2 1 02084071', 'i:7'), /i:7: 1 synset offsets, synset_cnt says 2/);
  assert.deepEqual(wn.lookup('Domestic Animal')?.senses, ['n01317541']);
  assert.deepEqual(wn.lookup('zero')?.senses, ['n13740168', 'n13742358']);
  assert.deepEqual(wn.lookup('0')?.senses, ['n13742358']);
  assert.equal(wn.lookup('cat'), null);
  assert.equal(lemmaKey(' Carassius  auratus '), 'carassius_auratus');
  // tagged: the first tagsense_cnt senses of each lemma that are in the data file
  assert.deepEqual(new Set(wn.taggedSynsets()), new Set(['n13742358', 'n00015388', 'n02084071', 'n02512053', 'n13740168']));
});

test('wnids and offsets', () => {
  assert.equal(wnidOfOffset(1443537), 'n01443537');
  assert.equal(wnidOfOffset('01443537'), 'n01443537');
  assert.equal(offsetOfWnid('n01443537'), 1443537);
  assert.throws(() => offsetOfWnid('01443537'), /not a noun wnid/);
  assert.throws(() => wnidOfOffset(-1), /invalid synset offset/);
});
