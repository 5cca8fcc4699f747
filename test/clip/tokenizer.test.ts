import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ClipTokenizer, bytesToUnicode, cleanText, htmlUnescape } from '../../src/clip/tokenizer.ts';

/** The real CLIP merge list, shared read-only data next to the repository (../shared/clip/). */
const BPE_GZ = fileURLToPath(new URL('../../../shared/clip/bpe_simple_vocab_16e6.txt.gz', import.meta.url));

let cached: ClipTokenizer | null = null;
function realTokenizer(): ClipTokenizer {
  if (cached === null) {
    if (!existsSync(BPE_GZ)) {
      assert.fail(`CLIP vocabulary missing: expected ${BPE_GZ} (shared data at ../shared/clip/ relative to the repo root)`);
    }
    cached = ClipTokenizer.fromBpeGz(BPE_GZ);
  }
  return cached;
}

/** Id of a single printable ASCII character c followed by </w>: 256 + (code − 33) (byte symbols start at '!'). */
const wordId = (c: string): number => 256 + c.charCodeAt(0) - 33;

test('known ids: "a photo of a cat." and the special tokens', () => {
  const tok = realTokenizer();
  assert.equal(tok.vocabSize, 49408);
  assert.equal(tok.sot, 49406);
  assert.equal(tok.eot, 49407);
  const { ids, lengths } = tok.tokenize(['a photo of a cat.']);
  assert.deepEqual(Array.from(ids.subarray(0, 8)), [49406, 320, 1125, 539, 320, 2368, 269, 49407]);
  assert.ok(ids.subarray(8).every((v) => v === 0));
  assert.equal(ids.length, 77);
  assert.deepEqual(lengths, [8]);
  // special tokens written in the text are recognised (after lower-casing)
  assert.deepEqual(tok.encode('<|endoftext|>'), [49407]);
  assert.deepEqual(tok.encode('<|StartOfText|>'), [49406]);
});

test('edge cases with ids derived by hand from the merge list', () => {
  const tok = realTokenizer();
  // digits are split one per word: '2' → '2</w>' = 256 + (0x32 − 33) = 273, '0' → 271, '4' → 275
  assert.deepEqual(tok.encode('2024'), [273, 271, 273, 275]);
  assert.equal(wordId('2'), 273);
  // "!!!" is one word: symbols [!, !, !</w>]; ranks: "! !</w>" = 236 < "! !" = 931 → [!, !!</w>];
  // "! !!</w>" = 483 → [!!!</w>] whose id is 512 + 483 = 995
  assert.deepEqual(tok.encode('!!!'), [995]);
  // "café" → bytes c a f C3 A9 → symbols [c, a, f, Ã, ©</w>]; ranks "a f" 190, "c af" 2959, "Ã ©</w>" 3654,
  // "caf Ã©</w>" 14792 (no merges for "f Ã", "af Ã", "caf Ã") → [café</w>] = 512 + 14792
  assert.deepEqual(tok.encode('café'), [512 + 14792]);
  // HTML entities are unescaped twice: "&amp;amp;" → "&amp;" → "&" → '&</w>' = 256 + (0x26 − 33) = 261
  assert.deepEqual(tok.encode('&amp;'), [261]);
  assert.deepEqual(tok.encode('&amp;amp;'), [261]);
  assert.deepEqual(tok.encode('&lt;'), [wordId('<')]);
  // whitespace runs collapse; case is folded; leading/trailing space stripped
  assert.deepEqual(tok.encode('  A \t PHOTO\n\nof  '), [320, 1125, 539]);
  assert.deepEqual(tok.encode(''), []);
  // single letters between spaces: 'a</w>' … 'e</w>' = 320 … 324
  assert.deepEqual(tok.encode('a b c d e'), [320, 321, 322, 323, 324]);
  // contractions are split off: "'s" is its own word
  assert.deepEqual(tok.encode("cat's"), [...tok.encode('cat'), ...tok.encode("'s")]);
  // a long word is split into several sub-word tokens that decode back to it
  const long = 'pneumonoultramicroscopicsilicovolcanoconiosis';
  const ids = tok.encode(long);
  assert.ok(ids.length > 3 && ids.every((i) => i < 49406));
  assert.equal(tok.decode(ids), long + ' ');
});

test('decode and round trips', () => {
  const tok = realTokenizer();
  assert.equal(tok.decode([49406, 320, 1125, 539, 320, 2368, 269, 49407]), '<|startoftext|>a photo of a cat . <|endoftext|>');
  for (const text of ['hello world', 'naïve café résumé', '東京タワー', 'emoji 😀 ok', 'x-ray 3.5mm', "don't stop"]) {
    const ids = tok.encode(text);
    assert.deepEqual(tok.encode(tok.decode(ids)), ids, text);
  }
  assert.equal(tok.decode(tok.encode('hello world')), 'hello world ');
  assert.equal(tok.decode(tok.encode('東京タワー')), '東京タワー ');
  // a lone UTF-8 continuation byte decodes to U+FFFD: byte 0xA9 is the symbol '©' (id 102 = its index among the
  // printable bytes: 94 ASCII + 8 of 0xA1..0xA8)
  assert.equal(tok.decode([94 + 8]), '\ufffd');
  assert.throws(() => tok.decode([60000]), /unknown token id 60000/);
});

test('tokenize: padding, truncation keeps EOT last, truncate=false throws', () => {
  const tok = realTokenizer();
  const text = 'a b c d e f g h i j k';
  const { ids, lengths } = tok.tokenize([text, 'a'], 10);
  const letters = 'abcdefgh'.split('').map(wordId);
  assert.deepEqual(Array.from(ids.subarray(0, 10)), [49406, ...letters, 49407]);
  assert.deepEqual(Array.from(ids.subarray(10)), [49406, 320, 49407, 0, 0, 0, 0, 0, 0, 0]);
  assert.deepEqual(lengths, [10, 3]);
  // exactly fitting text is not truncated
  assert.deepEqual(Array.from(tok.tokenize(['a b c d e f g h'], 10).ids), [49406, ...letters, 49407]);
  assert.throws(() => tok.tokenize([text], 10, { truncate: false }), /text "a b c d e f g h i j k" has 13 tokens, more than the context length 10/);
  assert.throws(() => tok.tokenize(['a'], 1), /contextLength must be an integer ≥ 2/);
});

test('the BPE merge procedure on a tiny hand-made vocab.json + merges.txt', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tok-'));
  try {
    const tokens = ['a', 'b', 'c', 'a</w>', 'b</w>', 'c</w>', 'aa', 'aaa</w>', 'bc', 'abc', 'ab</w>', '<|startoftext|>', '<|endoftext|>'];
    writeFileSync(join(dir, 'vocab.json'), JSON.stringify(Object.fromEntries(tokens.map((t, i) => [t, i]))));
    // ranks: "a a" 0, "aa a</w>" 1, "b c" 2, "a bc" 3, "a b</w>" 4, "c a" 5
    writeFileSync(join(dir, 'merges.txt'), '#version: 0.2\na a\naa a</w>\nb c\na bc\na b</w>\nc a\n');
    const tok = ClipTokenizer.fromModelDir(dir);
    assert.equal(tok.sot, 11);
    assert.equal(tok.eot, 12);
    // "aaa": [a, a, a</w>] → "a a" (0) merges the first pair → [aa, a</w>] → "aa a</w>" (1) → [aaa</w>]
    assert.deepEqual(tok.encode('aaa'), [7]);
    // "aaaa": [a, a, a, a</w>] → "a a" merges non-overlapping pairs left to right → [aa, a, a</w>]; no more ranks
    assert.deepEqual(tok.encode('aaaa'), [6, 0, 3]);
    // "abcbc": [a, b, c, b, c</w>] → "b c" (2) → [a, bc, b, c</w>] → "a bc" (3) → [abc, b, c</w>]
    assert.deepEqual(tok.encode('abcbc'), [9, 1, 5]);
    // "cab": [c, a, b</w>]: "a b</w>" (4) beats "c a" (5) although it is further right → [c, ab</w>]
    assert.deepEqual(tok.encode('cab'), [2, 10]);
    // "ca": [c, a</w>]: no rank for "c a</w>"
    assert.deepEqual(tok.encode('ca'), [2, 3]);
    assert.deepEqual(tok.encode('a'), [3]);
    assert.deepEqual(tok.encode('aaa aaa'), [7, 7]);
    assert.deepEqual(Array.from(tok.tokenize(['cab'], 5).ids), [11, 2, 10, 12, 0]);
    assert.throws(() => tok.encode('d'), /BPE symbol "d<\/w>" is not in the vocabulary/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('vocab.json + merges.txt written from the gz vocabulary give the same ids', () => {
  const tok = realTokenizer();
  const { vocab, merges } = tok.exportVocabMerges();
  // independent spot checks of the vocabulary layout
  assert.equal(Object.keys(vocab).length, 49408);
  assert.equal(vocab['!'], 0);
  assert.equal(vocab['~'], 93);
  assert.equal(vocab['¡'], 94);
  assert.equal(vocab['Ā'], 188); // byte 0x00 → U+0100, first of the non-printable bytes after 188 printable ones
  assert.equal(vocab['!</w>'], 256);
  assert.equal(vocab['in'], 512); // first merge "i n"
  assert.equal(vocab['!!!</w>'], 995);
  assert.equal(vocab['<|startoftext|>'], 49406);
  assert.equal(vocab['<|endoftext|>'], 49407);
  assert.equal(merges.length, 48894);
  assert.equal(merges[0], 'i n');
  const dir = mkdtempSync(join(tmpdir(), 'tok-'));
  try {
    writeFileSync(join(dir, 'vocab.json'), JSON.stringify(vocab));
    writeFileSync(join(dir, 'merges.txt'), '#version: 0.2\n' + merges.join('\n') + '\n');
    const hf = ClipTokenizer.fromVocabMerges(join(dir, 'vocab.json'), join(dir, 'merges.txt'));
    assert.equal(hf.sot, tok.sot);
    assert.equal(hf.eot, tok.eot);
    assert.equal(hf.vocabSize, tok.vocabSize);
    const texts = ['a photo of a cat.', 'a bad photo of the tench, Tinca tinca.', 'naïve café 2024!!!', 'pneumonoultramicroscopicsilicovolcanoconiosis', "it's a   DOG &amp; a cat"];
    assert.deepEqual(hf.tokenize(texts).ids, tok.tokenize(texts).ids);
    // fromModelDir prefers vocab.json + merges.txt; with only the gz file present it uses that
    const gzDir = join(dir, 'gz');
    rmSync(join(dir, 'vocab.json'));
    assert.throws(() => ClipTokenizer.fromModelDir(dir), /looked for vocab\.json \+ merges\.txt, or bpe_simple_vocab_16e6\.txt\.gz/);
    // a copy of the gz file alone in a folder
    mkdirSync(gzDir);
    copyFileSync(BPE_GZ, join(gzDir, 'bpe_simple_vocab_16e6.txt.gz'));
    assert.deepEqual(ClipTokenizer.fromModelDir(gzDir).encode('a photo of a cat.'), [320, 1125, 539, 320, 2368, 269]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('loading errors name the file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tok-'));
  try {
    assert.throws(() => ClipTokenizer.fromBpeGz(join(dir, 'missing.txt.gz')), /missing\.txt\.gz: cannot read gzip file/);
    writeFileSync(join(dir, 'bad.gz'), 'not gzip');
    assert.throws(() => ClipTokenizer.fromBpeGz(join(dir, 'bad.gz')), /bad\.gz: cannot read gzip file/);
    writeFileSync(join(dir, 'vocab.json'), '{"a": 0, "<|startoftext|>": 1}');
    writeFileSync(join(dir, 'merges.txt'), '#version: 0.2\n');
    assert.throws(() => ClipTokenizer.fromVocabMerges(join(dir, 'vocab.json'), join(dir, 'merges.txt')), /vocab\.json: vocabulary lacks <\|endoftext\|>/);
    writeFileSync(join(dir, 'vocab.json'), '{"a": -1}');
    assert.throws(() => ClipTokenizer.fromVocabMerges(join(dir, 'vocab.json'), join(dir, 'merges.txt')), /vocab\.json: id of token "a" is -1/);
    writeFileSync(join(dir, 'vocab.json'), '{"a": 0, "<|startoftext|>": 1, "<|endoftext|>": 2}');
    writeFileSync(join(dir, 'merges.txt'), '#version: 0.2\na b\nabc\n');
    assert.throws(() => ClipTokenizer.fromVocabMerges(join(dir, 'vocab.json'), join(dir, 'merges.txt')), /merges\.txt: line 3 "abc" is not two symbols/);
    writeFileSync(join(dir, 'vocab.json'), '{oops');
    assert.throws(() => ClipTokenizer.fromVocabMerges(join(dir, 'vocab.json'), join(dir, 'merges.txt')), /vocab\.json: cannot read JSON/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('text clean-up follows Python html.unescape and whitespace rules', () => {
  // values as given by Python's html.unescape
  assert.equal(htmlUnescape('&lt;b&gt; &eacute &#233; &#x41; &#128; &#0; &#xD800; &#1; &ampx &notit; &hellip; &foo;'), '<b> é é A € \ufffd \ufffd  &x ¬it; … &foo;');
  assert.equal(htmlUnescape('&#x110000; &#65534; &#13; &AMP &copy2 &aacute;x'), '\ufffd  \r & ©2 áx');
  // collapse Unicode whitespace (incl. no-break and ideographic space); U+001C is only stripped at the ends
  assert.equal(cleanText('\x1c A\u00a0B\u3000\u2003c\n '), 'a b c');
  assert.equal(cleanText('a\x1cb'), 'a\x1cb');
  const { order, chars } = bytesToUnicode();
  assert.equal(order.length, 256);
  assert.equal(new Set(chars).size, 256);
  assert.equal(chars[0x20], 'Ġ'); // space → U+0120: the 33rd non-printable byte
  assert.equal(chars[0x41], 'A');
});
