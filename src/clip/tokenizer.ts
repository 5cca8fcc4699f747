/**
 * The CLIP byte-level BPE tokenizer, following OpenAI's reference `SimpleTokenizer`:
 *
 *  1. clean: HTML-unescape twice, strip; collapse whitespace runs to one space, strip; lower-case;
 *  2. split into words with
 *       <\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
 *     (case-insensitive, Unicode), so every digit is its own word;
 *  3. map each word's UTF-8 bytes to printable characters with the GPT-2 `bytes_to_unicode` table and append
 *     `</w>` to its last symbol;
 *  4. repeatedly merge the adjacent pair with the lowest merge rank (all its non-overlapping occurrences, left to
 *     right) until no pair has a rank; look the symbols up in the vocabulary.
 *
 * Whitespace follows the reference exactly: runs of Unicode White_Space (the `regex` module's `\s`) collapse, and
 * `strip()` also removes U+001C–U+001F (Python's `str.isspace`). Words are BPE-encoded once and cached.
 *
 * The reference also runs `ftfy.fix_text` first; that step is not reproduced (text is used as given: no NFC
 * normalisation, curly quotes stay curly). Named HTML entities are decoded for the legacy HTML 4 Latin-1 set,
 * the markup entities and common punctuation (see NAMED_ENTITIES); numeric references follow Python's
 * `html.unescape` exactly. Characters whose Unicode properties changed after Node's ICU version (new letters,
 * case mappings) may split differently from a newer Python.
 *
 * Vocabularies: OpenAI's `bpe_simple_vocab_16e6.txt.gz` (ids: 256 byte symbols, the same with `</w>`, the first
 * 48,894 merges joined, `<|startoftext|>` = 49406, `<|endoftext|>` = 49407) or Hugging Face `vocab.json` +
 * `merges.txt`. The package ships the former in `assets/` ({@link bundledBpePath}), as open_clip does.
 */
import { existsSync, readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const SOT_TOKEN = '<|startoftext|>';
export const EOT_TOKEN = '<|endoftext|>';
/** Number of merges used by CLIP from the 16e6 merge list: 49152 − 256 − 2. */
export const CLIP_NUM_MERGES = 49152 - 256 - 2;

/** File name of CLIP's default BPE vocabulary. */
export const BPE_FILE = 'bpe_simple_vocab_16e6.txt.gz';

/**
 * Path of the BPE vocabulary shipped in the package (`<package>/assets/bpe_simple_vocab_16e6.txt.gz`), found from
 * this file under `src/clip/` (tsx) or `dist/src/clip/` (compiled). Throws naming the places it looked.
 */
export function bundledBpePath(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [join(here, '..', '..', 'assets', BPE_FILE), join(here, '..', '..', '..', 'assets', BPE_FILE)];
  const found = candidates.find((p) => existsSync(p));
  if (found === undefined) throw new Error(`the bundled CLIP vocabulary is missing (looked for ${candidates.join(', ')})`);
  return found;
}

let bundled: ClipTokenizer | undefined;

// ---------------------------------------------------------------------------------------------------------------
// bytes ↔ unicode

/**
 * The byte → character table of GPT-2/CLIP: printable Latin-1 bytes ('!'..'~', '¡'..'¬', '®'..'ÿ') map to
 * themselves, the remaining 68 bytes, in increasing order, to U+0100, U+0101, ... Returned in vocabulary order:
 * `order` lists the bytes as they appear in the vocabulary (the printable ones first), `chars[b]` is the character
 * of byte b.
 */
export function bytesToUnicode(): { order: number[]; chars: string[] } {
  const order: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) order.push(b);
  for (let b = 0xa1; b <= 0xac; b++) order.push(b);
  for (let b = 0xae; b <= 0xff; b++) order.push(b);
  const chars = new Array<string>(256);
  for (const b of order) chars[b] = String.fromCharCode(b);
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (chars[b] === undefined) {
      order.push(b);
      chars[b] = String.fromCharCode(256 + n);
      n++;
    }
  }
  return { order, chars };
}

// ---------------------------------------------------------------------------------------------------------------
// text clean-up

/**
 * `\s` of the reference's `regex` module: the Unicode White_Space characters (unlike JS `\s`, no U+FEFF).
 * Used to collapse whitespace runs and in the word pattern.
 */
const UNICODE_WS = '\\t\\n\\v\\f\\r\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
/** Python's `str.strip()` set (`str.isspace()`): White_Space plus the separators U+001C–U+001F. */
const PY_STRIP_WS = UNICODE_WS + '\\x1c-\\x1f';
const WS_RUN = new RegExp(`[${UNICODE_WS}]+`, 'gu');
const WS_EDGES = new RegExp(`^[${PY_STRIP_WS}]+|[${PY_STRIP_WS}]+$`, 'gu');
const SPLIT_PATTERN = new RegExp(
  `<\\|startoftext\\|>|<\\|endoftext\\|>|'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^${UNICODE_WS}\\p{L}\\p{N}]+`,
  'giu',
);

function pyStrip(s: string): string {
  return s.replace(WS_EDGES, '');
}

/** Latin-1 entity names for U+00A0 .. U+00FF, in code point order (HTML 4). */
const LATIN1_NAMES =
  'nbsp iexcl cent pound curren yen brvbar sect uml copy ordf laquo not shy reg macr deg plusmn sup2 sup3 acute ' +
  'micro para middot cedil sup1 ordm raquo frac14 frac12 frac34 iquest Agrave Aacute Acirc Atilde Auml Aring AElig ' +
  'Ccedil Egrave Eacute Ecirc Euml Igrave Iacute Icirc Iuml ETH Ntilde Ograve Oacute Ocirc Otilde Ouml times Oslash ' +
  'Ugrave Uacute Ucirc Uuml Yacute THORN szlig agrave aacute acirc atilde auml aring aelig ccedil egrave eacute ecirc ' +
  'euml igrave iacute icirc iuml eth ntilde ograve oacute ocirc otilde ouml divide oslash ugrave uacute ucirc uuml ' +
  'yacute thorn yuml';

/** Entities valid only with a trailing ';' (a selection of HTML 4 special and symbol entities). */
const SEMICOLON_ENTITIES: Record<string, number> = {
  apos: 0x27, OElig: 0x152, oelig: 0x153, Scaron: 0x160, scaron: 0x161, Yuml: 0x178, fnof: 0x192, circ: 0x2c6,
  tilde: 0x2dc, ensp: 0x2002, emsp: 0x2003, thinsp: 0x2009, zwnj: 0x200c, zwj: 0x200d, lrm: 0x200e, rlm: 0x200f,
  ndash: 0x2013, mdash: 0x2014, lsquo: 0x2018, rsquo: 0x2019, sbquo: 0x201a, ldquo: 0x201c, rdquo: 0x201d,
  bdquo: 0x201e, dagger: 0x2020, Dagger: 0x2021, bull: 0x2022, hellip: 0x2026, permil: 0x2030, prime: 0x2032,
  Prime: 0x2033, lsaquo: 0x2039, rsaquo: 0x203a, oline: 0x203e, frasl: 0x2044, euro: 0x20ac, trade: 0x2122,
  larr: 0x2190, uarr: 0x2191, rarr: 0x2192, darr: 0x2193, harr: 0x2194, minus: 0x2212, infin: 0x221e, ne: 0x2260,
  le: 0x2264, ge: 0x2265, asymp: 0x2248,
};

/**
 * Named entities as Python's `html.entities.html5` keys: legacy names (which also match without ';') appear both
 * with and without the semicolon.
 */
const NAMED_ENTITIES: Map<string, string> = (() => {
  const m = new Map<string, string>();
  const legacy: Array<[string, number]> = [
    ['amp', 0x26], ['lt', 0x3c], ['gt', 0x3e], ['quot', 0x22],
    ['AMP', 0x26], ['LT', 0x3c], ['GT', 0x3e], ['QUOT', 0x22], ['COPY', 0xa9], ['REG', 0xae],
  ];
  LATIN1_NAMES.split(' ').forEach((name, i) => legacy.push([name, 0xa0 + i]));
  for (const [name, cp] of legacy) {
    m.set(name, String.fromCodePoint(cp));
    m.set(name + ';', String.fromCodePoint(cp));
  }
  for (const [name, cp] of Object.entries(SEMICOLON_ENTITIES)) m.set(name + ';', String.fromCodePoint(cp));
  return m;
})();

/** Numeric references that HTML maps to other characters (Windows-1252 for 0x80–0x9F), as Python does. */
const INVALID_CHARREFS: Record<number, string> = {
  0x00: '\ufffd', 0x0d: '\r', 0x80: '\u20ac', 0x81: '\x81', 0x82: '\u201a', 0x83: '\u0192', 0x84: '\u201e',
  0x85: '\u2026', 0x86: '\u2020', 0x87: '\u2021', 0x88: '\u02c6', 0x89: '\u2030', 0x8a: '\u0160', 0x8b: '\u2039',
  0x8c: '\u0152', 0x8d: '\x8d', 0x8e: '\u017d', 0x8f: '\x8f', 0x90: '\x90', 0x91: '\u2018', 0x92: '\u2019',
  0x93: '\u201c', 0x94: '\u201d', 0x95: '\u2022', 0x96: '\u2013', 0x97: '\u2014', 0x98: '\u02dc', 0x99: '\u2122',
  0x9a: '\u0161', 0x9b: '\u203a', 0x9c: '\u0153', 0x9d: '\x9d', 0x9e: '\u017e', 0x9f: '\u0178',
};

/** Code points a numeric reference may not produce (they decode to nothing). */
function isInvalidCodepoint(cp: number): boolean {
  return (
    (cp >= 0x1 && cp <= 0x8) ||
    cp === 0xb ||
    (cp >= 0xe && cp <= 0x1f) ||
    (cp >= 0x7f && cp <= 0x9f) ||
    (cp >= 0xfdd0 && cp <= 0xfdef) ||
    (cp & 0xfffe) === 0xfffe
  );
}

const ENTITY_RE = /&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)/g;

/** HTML character-reference decoding with the rules of Python's `html.unescape` (named entities: see above). */
export function htmlUnescape(s: string): string {
  if (!s.includes('&')) return s;
  return s.replace(ENTITY_RE, (whole, ref: string) => {
    if (ref[0] === '#') {
      const hex = ref[1] === 'x' || ref[1] === 'X';
      const digits = ref.slice(hex ? 2 : 1).replace(/;$/, '');
      const big = BigInt(hex ? '0x' + digits : digits);
      if (big <= 0x9fn && INVALID_CHARREFS[Number(big)] !== undefined) return INVALID_CHARREFS[Number(big)]!;
      if (big > 0x10ffffn) return '\ufffd';
      const cp = Number(big);
      if (cp >= 0xd800 && cp <= 0xdfff) return '\ufffd';
      if (isInvalidCodepoint(cp)) return '';
      return String.fromCodePoint(cp);
    }
    const exact = NAMED_ENTITIES.get(ref);
    if (exact !== undefined) return exact;
    // longest legacy prefix, e.g. "&ampx" → "&x"
    for (let x = ref.length - 1; x > 1; x--) {
      const v = NAMED_ENTITIES.get(ref.slice(0, x));
      if (v !== undefined) return v + ref.slice(x);
    }
    return whole;
  });
}

/** The reference's `basic_clean` (without ftfy) followed by `whitespace_clean` and lower-casing. */
export function cleanText(text: string): string {
  const basic = pyStrip(htmlUnescape(htmlUnescape(text)));
  return pyStrip(basic.replace(WS_RUN, ' ')).toLowerCase();
}

// ---------------------------------------------------------------------------------------------------------------
// the tokenizer

const CACHE_LIMIT = 100_000;

export interface TokenizeResult {
  /** [n, contextLength] token ids, zero padded. */
  ids: Int32Array;
  /** Number of tokens of each row including SOT and EOT. */
  lengths: number[];
}

export class ClipTokenizer {
  readonly sot: number;
  readonly eot: number;
  readonly vocabSize: number;

  private readonly encoder: Map<string, number>;
  private readonly decoder: Map<number, string>;
  private readonly ranks: Map<string, number>;
  private readonly merges: Array<[string, string]>;
  private readonly byteChars: string[];
  private readonly byteOf: Map<string, number>;
  private readonly cache = new Map<string, number[]>();
  private readonly utf8 = new TextEncoder();

  /**
   * @param vocab token → id
   * @param merges merge pairs in rank order (rank = index)
   * @param source names the vocabulary in error messages
   */
  constructor(vocab: Map<string, number>, merges: Array<[string, string]>, source = '<vocab>') {
    this.encoder = vocab;
    this.decoder = new Map();
    for (const [tok, id] of vocab) this.decoder.set(id, tok);
    this.ranks = new Map();
    // as in the reference (a dict built from the list), a repeated pair keeps its last rank
    merges.forEach(([a, b], i) => this.ranks.set(a + ' ' + b, i));
    this.merges = merges;
    const { chars } = bytesToUnicode();
    this.byteChars = chars;
    this.byteOf = new Map(chars.map((c, b) => [c, b]));
    const sot = vocab.get(SOT_TOKEN);
    const eot = vocab.get(EOT_TOKEN);
    if (sot === undefined || eot === undefined) {
      throw new Error(`${source}: vocabulary lacks ${sot === undefined ? SOT_TOKEN : EOT_TOKEN}`);
    }
    this.sot = sot;
    this.eot = eot;
    this.vocabSize = vocab.size;
  }

  /** Loads OpenAI's `bpe_simple_vocab_16e6.txt.gz`. */
  static fromBpeGz(path: string): ClipTokenizer {
    let text: string;
    try {
      text = gunzipSync(readFileSync(path)).toString('utf8');
    } catch (e) {
      throw new Error(`CLIP vocabulary ${path}: cannot read gzip file (${(e as Error).message})`);
    }
    const lines = text.split('\n');
    if (lines.length < CLIP_NUM_MERGES + 1) {
      throw new Error(`CLIP vocabulary ${path}: has ${lines.length - 1} merge lines, needs ${CLIP_NUM_MERGES}`);
    }
    const merges = parseMergeLines(lines.slice(1, CLIP_NUM_MERGES + 1), path, 2);
    return new ClipTokenizer(vocabFromMerges(merges), merges, path);
  }

  /** Loads Hugging Face `vocab.json` (token → id) and `merges.txt` (`#version` header, then `a b` per line). */
  static fromVocabMerges(vocabJsonPath: string, mergesPath: string): ClipTokenizer {
    let json: unknown;
    try {
      json = JSON.parse(readFileSync(vocabJsonPath, 'utf8'));
    } catch (e) {
      throw new Error(`CLIP vocabulary ${vocabJsonPath}: cannot read JSON (${(e as Error).message})`);
    }
    if (json === null || typeof json !== 'object' || Array.isArray(json)) {
      throw new Error(`CLIP vocabulary ${vocabJsonPath}: not a JSON object of token → id`);
    }
    const vocab = new Map<string, number>();
    for (const [tok, id] of Object.entries(json as Record<string, unknown>)) {
      if (!Number.isSafeInteger(id) || (id as number) < 0) {
        throw new Error(`CLIP vocabulary ${vocabJsonPath}: id of token ${JSON.stringify(tok)} is ${JSON.stringify(id)}, not a non-negative integer`);
      }
      vocab.set(tok, id as number);
    }
    let lines: string[];
    try {
      lines = readFileSync(mergesPath, 'utf8').split('\n');
    } catch (e) {
      throw new Error(`CLIP merges ${mergesPath}: cannot read file (${(e as Error).message})`);
    }
    let first = 0;
    if (lines[0]?.startsWith('#version')) first = 1;
    const body = lines.slice(first);
    while (body.length > 0 && body[body.length - 1]!.trim() === '') body.pop();
    const merges = parseMergeLines(body, mergesPath, first + 1);
    return new ClipTokenizer(vocab, merges, vocabJsonPath);
  }

  /** The tokenizer of the bundled vocabulary ({@link bundledBpePath}), loaded once per process. */
  static bundled(): ClipTokenizer {
    bundled ??= ClipTokenizer.fromBpeGz(bundledBpePath());
    return bundled;
  }

  /**
   * Loads from a model folder: `vocab.json` + `merges.txt` when both exist, else `bpe_simple_vocab_16e6.txt.gz`,
   * else (with `bundledFallback`, open_clip's rule for folders without tokenizer files) the bundled vocabulary.
   */
  static fromModelDir(dir: string, opts: { bundledFallback?: boolean } = {}): ClipTokenizer {
    const vocab = join(dir, 'vocab.json');
    const merges = join(dir, 'merges.txt');
    if (existsSync(vocab) && existsSync(merges)) return ClipTokenizer.fromVocabMerges(vocab, merges);
    const gz = join(dir, BPE_FILE);
    if (existsSync(gz)) return ClipTokenizer.fromBpeGz(gz);
    if (opts.bundledFallback === true) return ClipTokenizer.bundled();
    throw new Error(`no CLIP tokenizer files in ${dir}: looked for vocab.json + merges.txt, or ${BPE_FILE}`);
  }

  /** The vocabulary (token → id) and merges in rank order, e.g. to write `vocab.json` + `merges.txt`. */
  exportVocabMerges(): { vocab: Record<string, number>; merges: string[] } {
    const vocab: Record<string, number> = Object.create(null) as Record<string, number>; // tokens may be any string
    for (const [tok, id] of [...this.encoder].sort((a, b) => a[1] - b[1])) vocab[tok] = id;
    return { vocab, merges: this.merges.map(([a, b]) => `${a} ${b}`) };
  }

  /** BPE of one word given as byte-level characters; returns vocabulary ids. */
  private bpe(word: string): number[] {
    const cached = this.cache.get(word);
    if (cached !== undefined) return cached;
    let symbols: string[];
    if (word === SOT_TOKEN || word === EOT_TOKEN) symbols = [word];
    else {
      symbols = Array.from(word);
      symbols[symbols.length - 1] += '</w>';
    }
    while (symbols.length > 1) {
      // the adjacent pair with the lowest rank
      let best = Infinity;
      let first = '';
      let second = '';
      for (let i = 0; i + 1 < symbols.length; i++) {
        const r = this.ranks.get(symbols[i]! + ' ' + symbols[i + 1]!);
        if (r !== undefined && r < best) {
          best = r;
          first = symbols[i]!;
          second = symbols[i + 1]!;
        }
      }
      if (best === Infinity) break;
      // merge every non-overlapping occurrence, left to right
      const merged: string[] = [];
      for (let i = 0; i < symbols.length; ) {
        if (symbols[i] === first && symbols[i + 1] === second) {
          merged.push(first + second);
          i += 2;
        } else {
          merged.push(symbols[i]!);
          i += 1;
        }
      }
      symbols = merged;
    }
    const ids = symbols.map((s) => {
      const id = this.encoder.get(s);
      if (id === undefined) throw new Error(`CLIP tokenizer: BPE symbol ${JSON.stringify(s)} is not in the vocabulary`);
      return id;
    });
    if (this.cache.size >= CACHE_LIMIT) this.cache.clear();
    this.cache.set(word, ids);
    return ids;
  }

  /** Token ids of a text, without SOT/EOT. */
  encode(text: string): number[] {
    const out: number[] = [];
    for (const m of cleanText(text).matchAll(SPLIT_PATTERN)) {
      let word = '';
      for (const b of this.utf8.encode(m[0])) word += this.byteChars[b]!;
      for (const id of this.bpe(word)) out.push(id);
    }
    return out;
  }

  /** Text of token ids: byte-level characters back to UTF-8 (invalid sequences → U+FFFD), `</w>` → space. */
  decode(ids: number[]): string {
    let chars = '';
    for (const id of ids) {
      const tok = this.decoder.get(id);
      if (tok === undefined) throw new Error(`CLIP tokenizer: unknown token id ${id}`);
      chars += tok;
    }
    const bytes: number[] = [];
    for (const ch of chars) {
      const b = this.byteOf.get(ch);
      if (b === undefined) throw new Error(`CLIP tokenizer: character ${JSON.stringify(ch)} is not a byte symbol`);
      bytes.push(b);
    }
    return new TextDecoder('utf-8').decode(new Uint8Array(bytes)).replaceAll('</w>', ' ');
  }

  /**
   * Encodes texts as `[SOT, ...ids, EOT]` rows of `contextLength` (zero padded). A text too long is truncated to
   * its first contextLength − 1 tokens followed by EOT when `truncate` (default), else it is an error.
   */
  tokenize(texts: string[], contextLength = 77, opts: { truncate?: boolean } = {}): TokenizeResult {
    if (!Number.isInteger(contextLength) || contextLength < 2) {
      throw new Error(`tokenize: contextLength must be an integer ≥ 2, got ${contextLength}`);
    }
    const truncate = opts.truncate ?? true;
    const ids = new Int32Array(texts.length * contextLength);
    const lengths: number[] = [];
    texts.forEach((text, i) => {
      let toks = [this.sot, ...this.encode(text), this.eot];
      if (toks.length > contextLength) {
        if (!truncate) {
          throw new Error(`tokenize: text ${JSON.stringify(text)} has ${toks.length} tokens, more than the context length ${contextLength}`);
        }
        toks = toks.slice(0, contextLength);
        toks[contextLength - 1] = this.eot;
      }
      ids.set(toks, i * contextLength);
      lengths.push(toks.length);
    });
    return { ids, lengths };
  }
}

/** Parses `a b` merge lines; `firstLine` is the 1-based line number of lines[0] in the file (for messages). */
function parseMergeLines(lines: string[], source: string, firstLine: number): Array<[string, string]> {
  return lines.map((line, i) => {
    const parts = line.split(/[ \t\r]+/).filter((p) => p !== '');
    if (parts.length !== 2) {
      throw new Error(`CLIP merges ${source}: line ${firstLine + i} ${JSON.stringify(line)} is not two symbols`);
    }
    return [parts[0]!, parts[1]!];
  });
}

/** The reference vocabulary order: byte symbols, byte symbols + `</w>`, merged pairs, SOT, EOT. */
function vocabFromMerges(merges: Array<[string, string]>): Map<string, number> {
  const { order, chars } = bytesToUnicode();
  const tokens: string[] = order.map((b) => chars[b]!);
  for (const b of order) tokens.push(chars[b]! + '</w>');
  for (const [a, b] of merges) tokens.push(a + b);
  tokens.push(SOT_TOKEN, EOT_TOKEN);
  return new Map(tokens.map((t, i) => [t, i]));
}
