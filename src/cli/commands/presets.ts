/**
 * `moeclip presets [--json]` — the configs shipped in the package's `presets/` folder, one line each: run configs
 * (`moeclip run`), method presets (`--method`) and pretraining configs (`moeclip pretrain`).
 *
 * The line is the preset's `description` field when it has one, else the first sentence of its leading comment
 * block (shortened at a clause boundary when long). JSON shape:
 * `{"dir":D,"presets":[{"path":"bench/mtil-mini.yaml","kind":"run"|"method"|"pretrain"|"other","name":N|null,"description":S},...]}`.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { parseCli } from '../args.ts';
import type { Command } from '../command.ts';
import { UsageError } from '../command.ts';

const USAGE = `usage: moeclip presets [--dir DIR] [--json]

Lists the presets shipped with moeclip (or the YAML/JSON configs under --dir), one line each, grouped into run
configs (moeclip run FILE), method presets (moeclip run CONFIG --method FILE) and pretraining configs
(moeclip pretrain FILE). The line is the preset's 'description' field, else the first sentence of its leading
comment. --json prints {"dir":D,"presets":[{"path":P,"kind":K,"name":N,"description":S},...]} with paths
relative to D.`;

/** What a preset file is for. */
export type PresetKind = 'run' | 'method' | 'pretrain' | 'other';

export interface PresetInfo {
  /** Path relative to the presets folder, with `/` separators. */
  path: string;
  kind: PresetKind;
  name: string | null;
  description: string;
}

/** The package's `presets/` folder, found from this file under `src/cli/commands/` (tsx) or `dist/src/...`. */
export function packagePresetsDir(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [join(here, '..', '..', '..', 'presets'), join(here, '..', '..', '..', '..', 'presets')];
  const found = candidates.find((p) => existsSync(p) && statSync(p).isDirectory());
  if (found === undefined) throw new Error(`the presets folder is missing (looked for ${candidates.join(', ')})`);
  return found;
}

const MAX_LINE = 110;
const ABBREVIATIONS = /(?:^|[\s(])(?:e\.g|i\.e|cf|vs|etc|approx|resp|incl)$/i;

/** The first sentence of `text`: up to a '.' outside brackets and quotes, followed by a space or the end. */
export function firstSentence(text: string): string {
  let depth = 0;
  let tick = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === '`') tick = !tick;
    else if (!tick && (c === '(' || c === '[' || c === '{')) depth++;
    else if (!tick && (c === ')' || c === ']' || c === '}')) depth = Math.max(0, depth - 1);
    else if (c === '.' && depth === 0 && !tick && (i + 1 === text.length || text[i + 1] === ' ') && !ABBREVIATIONS.test(text.slice(0, i))) {
      return text.slice(0, i + 1);
    }
  }
  return text;
}

/**
 * `text` shortened to at most `max` characters, with '…': at the last clause boundary (`, ` `; ` ` — ` `: `) when
 * that keeps 60 % of the room, else at the last space.
 */
export function shorten(text: string, max = MAX_LINE): string {
  if (text.length <= max) return text;
  const head = text.slice(0, max - 1);
  let cut = -1;
  for (const sep of [', ', '; ', ' — ', ': ']) cut = Math.max(cut, head.lastIndexOf(sep));
  // a clause boundary unless it drops too much; else a word boundary
  if (cut < 0.6 * max) cut = head.lastIndexOf(' ');
  return `${text.slice(0, cut > 0 ? cut : max - 1).replace(/[\s,;:.—-]+$/, '')}…`;
}

/**
 * The leading comment block of a YAML file as one string: the `#` lines before the first blank comment line,
 * indented example line (`#   moeclip …`) or non-comment line.
 */
export function leadingComment(text: string): string {
  const parts: string[] = [];
  for (const line of text.split('\n')) {
    const m = /^\s*#(.*)$/.exec(line);
    if (!m) break;
    const body = m[1]!;
    if (body.trim() === '' || /^ {2,}\S/.test(body)) {
      if (parts.length > 0) break;
      continue;
    }
    parts.push(body.trim());
  }
  return parts.join(' ');
}

/** Reads one preset: its kind (from its top-level keys), name and one-line description. */
export function describePreset(file: string, dir: string): PresetInfo {
  const text = readFileSync(file, 'utf8');
  let value: unknown = null;
  try {
    value = file.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
  } catch {
    value = null;
  }
  const obj = typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
  let kind: PresetKind = 'other';
  if ('stream' in obj) kind = 'run';
  else if ('optim' in obj || 'data' in obj) kind = 'pretrain';
  else if (typeof obj['name'] === 'string' || (typeof obj['method'] === 'object' && obj['method'] !== null)) kind = 'method';
  const name = typeof obj['name'] === 'string' ? obj['name'] : null;
  const own = typeof obj['description'] === 'string' ? obj['description'].trim() : '';
  const description = shorten(firstSentence(own !== '' ? own.split('\n')[0]!.trim() : leadingComment(text)));
  return { path: relative(dir, file).split('\\').join('/'), kind, name, description };
}

/** Every `.yaml` / `.yml` / `.json` file under `dir`, described, sorted by path (top-level files first). */
export function listPresets(dir: string): PresetInfo[] {
  const files: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (/\.(ya?ml|json)$/i.test(e.name)) files.push(p);
    }
  };
  walk(dir);
  const depth = (p: string) => p.split('/').length;
  return files
    .map((f) => describePreset(f, dir))
    .sort((a, b) => depth(a.path) - depth(b.path) || a.path.localeCompare(b.path));
}

const GROUPS: ReadonlyArray<[PresetKind, string]> = [
  ['run', 'run configs (moeclip run FILE)'],
  ['method', 'method presets (moeclip run CONFIG --method FILE)'],
  ['pretrain', 'pretraining configs (moeclip pretrain FILE)'],
  ['other', 'other files'],
];

const presets: Command = {
  summary: 'List the shipped presets (run, method and pretraining configs), one line each',
  usage: USAGE,
  async run(argv, io) {
    const values = parseCli(argv, { dir: { type: 'string' }, json: { type: 'boolean', default: false } }, USAGE);
    const dir = values.dir ?? packagePresetsDir();
    if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new UsageError(`--dir ${dir}: not a folder`);
    const list = listPresets(dir);
    if (values.json) {
      io.stdout(JSON.stringify({ dir, presets: list }) + '\n');
      return 0;
    }
    const w = Math.max(0, ...list.map((p) => p.path.length));
    const lines = [`presets in ${dir}:`];
    for (const [kind, title] of GROUPS) {
      const group = list.filter((p) => p.kind === kind);
      if (group.length === 0) continue;
      lines.push('', title);
      for (const p of group) lines.push(`  ${p.path.padEnd(w)}  ${p.description || '(no description)'}`);
    }
    io.stdout(lines.join('\n') + '\n');
    return 0;
  },
};
export default presets;
