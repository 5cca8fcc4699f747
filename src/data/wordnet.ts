/**
 * WordNet 3.0 nouns from the database files `data.noun` and `index.noun` (Princeton's format, as shipped by
 * Debian's `wordnet-base`; `npx tsx scripts/prepare-data.ts wordnet` puts them in `.data/wordnet`).
 *
 * data.noun, one synset per line (after the license header, whose lines start with two spaces):
 * ```
 * offset lex_filenum n w_cnt(2 hex) [word lex_id(1 hex)]×w_cnt p_cnt(3 dec) [symbol offset pos source/target]×p_cnt | gloss
 * ```
 * index.noun, one lemma per line: `lemma n synset_cnt p_cnt [symbol]×p_cnt sense_cnt tagsense_cnt [offset]×synset_cnt`,
 * the offsets in order of sense frequency (the first `tagsense_cnt` senses occur in the tagged corpus).
 *
 * A synset is named by its wnid, `n` + the 8-digit offset (ImageNet's and Tiny ImageNet's class ids). Kept per
 * synset: the lemmas, the gloss, and the noun hypernym pointers `@` (hypernym) and `@i` (instance hypernym).
 * The reader does not use the offsets as byte positions (every line is parsed), so any file in the format reads.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** Where `prepare-data.ts wordnet` puts the files (relative to the working directory, like dataset roots). */
export const WORDNET_DEFAULT_DIR = '.data/wordnet';

/** A noun synset of data.noun. */
export interface Synset {
  /** `n` + the 8-digit offset. */
  wnid: string;
  /** Lexicographer file number (03 = noun.Tops, 05 = noun.animal, 06 = noun.artifact, …). */
  lexFile: number;
  /** Lemmas as written in the file (underscores for spaces, original case). */
  lemmas: string[];
  /** Lemmas with underscores replaced by spaces. */
  names: string[];
  /** wnids of the `@` pointers (hypernyms), in file order. */
  hypernyms: string[];
  /** wnids of the `@i` pointers (the synset is an instance of these), in file order. */
  instanceOf: string[];
  /** The whole gloss (definition and examples). */
  gloss: string;
  /** The definition: the gloss up to its first quoted example (`; "…"`), trimmed. */
  definition: string;
}

/** A line of index.noun. */
export interface IndexEntry {
  /** The lemma (lower case, underscores). */
  lemma: string;
  /** Its synsets as wnids, most frequent sense first. */
  senses: string[];
  /** How many of the first senses are tagged in the semantic concordance. */
  taggedSenses: number;
}

/** The wnid of a synset offset. */
export function wnidOfOffset(offset: number | string): string {
  const s = typeof offset === 'number' ? String(offset) : offset;
  if (!/^\d{1,8}$/.test(s)) throw new Error(`wordnet: invalid synset offset ${JSON.stringify(offset)}`);
  return 'n' + s.padStart(8, '0');
}

/** The offset of a noun wnid (`n01443537` → 1443537). */
export function offsetOfWnid(wnid: string): number {
  if (!/^n\d{8}$/.test(wnid)) throw new Error(`wordnet: ${JSON.stringify(wnid)} is not a noun wnid (n + 8 digits)`);
  return Number(wnid.slice(1));
}

/** The definition part of a gloss: the text before the first `; "` example (or before a leading quote). */
export function definitionOf(gloss: string): string {
  const g = gloss.trim();
  const q = g.indexOf('"');
  const cut = q < 0 ? g : g.slice(0, q);
  return cut.replace(/[;\s]+$/, '').trim();
}

/**
 * Parses one data.noun line; null for license header lines (two leading spaces) and blank lines. `where` names
 * the file and line in errors.
 */
export function parseDataLine(line: string, where = 'data.noun'): Synset | null {
  if (line.startsWith('  ') || line.trim() === '') return null;
  const bar = line.indexOf(' | ');
  const head = (bar < 0 ? line : line.slice(0, bar)).trim().split(/\s+/);
  const gloss = bar < 0 ? '' : line.slice(bar + 3).trim();
  const fail = (what: string): never => {
    throw new Error(`${where}: ${what}`);
  };
  let i = 0;
  const next = (what: string): string => head[i++] ?? fail(`line ends before ${what}`);
  const offset = next('the synset offset');
  if (!/^\d{8}$/.test(offset)) fail(`synset offset ${JSON.stringify(offset)} is not 8 digits`);
  const lexFile = Number(next('lex_filenum'));
  if (!Number.isInteger(lexFile)) fail('lex_filenum is not a number');
  const pos = next('ss_type');
  if (pos !== 'n') fail(`ss_type ${JSON.stringify(pos)}: expected 'n' (a noun file)`);
  const wCnt = parseInt(next('w_cnt'), 16);
  if (!Number.isInteger(wCnt) || wCnt < 1) fail('w_cnt is not a positive hexadecimal count');
  const lemmas: string[] = [];
  for (let k = 0; k < wCnt; k++) {
    lemmas.push(next(`word ${k + 1}`));
    next(`lex_id of word ${k + 1}`);
  }
  const pCnt = Number(next('p_cnt'));
  if (!Number.isInteger(pCnt) || pCnt < 0) fail('p_cnt is not a count');
  const hypernyms: string[] = [];
  const instanceOf: string[] = [];
  for (let k = 0; k < pCnt; k++) {
    const symbol = next(`pointer ${k + 1}`);
    const target = next(`the offset of pointer ${k + 1}`);
    const tpos = next(`the pos of pointer ${k + 1}`);
    next(`source/target of pointer ${k + 1}`);
    if (tpos !== 'n') continue;
    if (!/^\d{8}$/.test(target)) fail(`pointer ${k + 1}: offset ${JSON.stringify(target)} is not 8 digits`);
    if (symbol === '@') hypernyms.push('n' + target);
    else if (symbol === '@i') instanceOf.push('n' + target);
  }
  return {
    wnid: 'n' + offset,
    lexFile,
    lemmas,
    names: lemmas.map((l) => l.replace(/_/g, ' ')),
    hypernyms,
    instanceOf,
    gloss,
    definition: definitionOf(gloss),
  };
}

/** Parses one index.noun line; null for header and blank lines. */
export function parseIndexLine(line: string, where = 'index.noun'): IndexEntry | null {
  if (line.startsWith('  ') || line.trim() === '') return null;
  const f = line.trim().split(/\s+/);
  const fail = (what: string): never => {
    throw new Error(`${where}: ${what}`);
  };
  if (f.length < 6) fail('expected lemma, pos, synset_cnt, p_cnt, …, sense_cnt, tagsense_cnt and offsets');
  const [lemma, pos] = f as [string, string];
  if (pos !== 'n') fail(`pos ${JSON.stringify(pos)}: expected 'n' (a noun index)`);
  const synsetCnt = Number(f[2]);
  const pCnt = Number(f[3]);
  if (!Number.isInteger(synsetCnt) || synsetCnt < 1 || !Number.isInteger(pCnt) || pCnt < 0) fail('synset_cnt / p_cnt are not counts');
  const at = 4 + pCnt;
  const tagged = Number(f[at + 1]);
  const offsets = f.slice(at + 2);
  if (offsets.length !== synsetCnt) fail(`${offsets.length} synset offsets, synset_cnt says ${synsetCnt}`);
  if (!Number.isInteger(tagged) || tagged < 0) fail('tagsense_cnt is not a count');
  for (const o of offsets) if (!/^\d{8}$/.test(o)) fail(`synset offset ${JSON.stringify(o)} is not 8 digits`);
  return { lemma, senses: offsets.map((o) => 'n' + o), taggedSenses: Math.min(tagged, synsetCnt) };
}

/** The key of a lemma in index.noun: lower case, spaces → underscores. */
export function lemmaKey(name: string): string {
  return name.trim().toLowerCase().replace(/\s+/g, '_');
}

/** WordNet's noun synsets and lemma index (see the module doc). */
export class WordNet {
  private readonly synsets: Map<string, Synset>;
  private readonly index: Map<string, IndexEntry>;

  constructor(synsets: Iterable<Synset>, index: Iterable<IndexEntry>) {
    this.synsets = new Map();
    for (const s of synsets) this.synsets.set(s.wnid, s);
    this.index = new Map();
    for (const e of index) this.index.set(e.lemma, e);
  }

  /** From the texts of data.noun and index.noun (`source` names them in errors). */
  static fromText(dataNoun: string, indexNoun: string, source = 'wordnet'): WordNet {
    const synsets: Synset[] = [];
    dataNoun.split('\n').forEach((line, n) => {
      const s = parseDataLine(line, `${source}/data.noun:${n + 1}`);
      if (s) synsets.push(s);
    });
    const index: IndexEntry[] = [];
    indexNoun.split('\n').forEach((line, n) => {
      const e = parseIndexLine(line, `${source}/index.noun:${n + 1}`);
      if (e) index.push(e);
    });
    if (synsets.length === 0) throw new Error(`${source}/data.noun: no synsets`);
    return new WordNet(synsets, index);
  }

  /** Reads `dir/data.noun` and `dir/index.noun`. */
  static load(dir: string): WordNet {
    const read = (f: string): string => {
      try {
        return readFileSync(join(dir, f), 'utf8');
      } catch (e) {
        throw new Error(`wordnet: cannot read ${join(dir, f)} (run: npx tsx scripts/prepare-data.ts wordnet): ${(e as Error).message}`);
      }
    };
    return WordNet.fromText(read('data.noun'), read('index.noun'), dir);
  }

  /** Number of noun synsets. */
  get size(): number {
    return this.synsets.size;
  }

  /** Every wnid, in file order. */
  wnids(): string[] {
    return [...this.synsets.keys()];
  }

  has(wnid: string): boolean {
    return this.synsets.has(wnid);
  }

  /** The synset of a wnid; throws naming the wnid when it is not a noun synset of this WordNet. */
  synset(wnid: string): Synset {
    const s = this.synsets.get(wnid);
    if (!s) throw new Error(`wordnet: no noun synset ${wnid}`);
    return s;
  }

  /** Lemma names (underscores → spaces). */
  names(wnid: string): string[] {
    return this.synset(wnid).names;
  }

  /** The definition part of the gloss. */
  definition(wnid: string): string {
    return this.synset(wnid).definition;
  }

  /** Direct generalisations: the `@` hypernyms, then the `@i` classes of an instance. */
  parents(wnid: string): string[] {
    const s = this.synset(wnid);
    return [...s.hypernyms, ...s.instanceOf];
  }

  /**
   * The hypernym chain: the first parent, its first parent, … up to a root (the synset itself excluded).
   * Stops at a cycle or a pointer to a synset not in this WordNet.
   */
  hypernymChain(wnid: string): string[] {
    const out: string[] = [];
    const seen = new Set([wnid]);
    let cur = wnid;
    for (;;) {
      const p = this.parents(cur)[0];
      if (p === undefined || seen.has(p) || !this.synsets.has(p)) return out;
      out.push(p);
      seen.add(p);
      cur = p;
    }
  }

  /**
   * Ancestors by distance: level 1 = the parents, level 2 = their parents, … (each synset at its smallest
   * distance, at most `depth` levels, empty levels dropped at the top).
   */
  ancestorLevels(wnid: string, depth = Infinity): string[][] {
    const levels: string[][] = [];
    const seen = new Set([wnid]);
    let frontier = [wnid];
    while (levels.length < depth) {
      const next: string[] = [];
      for (const w of frontier) {
        for (const p of this.parents(w)) {
          if (seen.has(p) || !this.synsets.has(p)) continue;
          seen.add(p);
          next.push(p);
        }
      }
      if (next.length === 0) break;
      levels.push(next);
      frontier = next;
    }
    return levels;
  }

  /** The index entry of a lemma (`name` in any case, spaces or underscores), or null. */
  lookup(name: string): IndexEntry | null {
    return this.index.get(lemmaKey(name)) ?? null;
  }

  /** The wnids that are a tagged sense of some lemma (senses used in the semantic concordance), in index order. */
  taggedSynsets(): string[] {
    const out = new Set<string>();
    for (const e of this.index.values()) for (const w of e.senses.slice(0, e.taggedSenses)) if (this.synsets.has(w)) out.add(w);
    return [...out];
  }
}
