/**
 * `moeclip methods [NAME...] [--json]` — the registered methods with their options: key, type, default (from each
 * method's zod schema through `z.toJSONSchema`).
 *
 * JSON shape: `{"methods":[{"name":N,"summary":S,"options":<JSON Schema of the method block, input side>},...]}`.
 * The option rows (dotted keys for nested blocks, as `--set method.KEY=VALUE` takes them) are also what the
 * config error for unknown method keys lists (see args.ts).
 */
import { z } from 'zod';
import { parseCliWithPositionals } from '../args.ts';
import type { Command } from '../command.ts';
import { UsageError } from '../command.ts';
import { getMethod, listMethods } from '../../methods/registry.ts';

const USAGE = `usage: moeclip methods [NAME...] [--json]

Lists the methods (all, or the NAMEs given) with their options: the key (nested blocks as dotted keys, as
--set method.KEY=VALUE takes them), the type and the default. Options go in a config's method block beside
'name'; presets/methods/*.yaml hold tuned ones.
--json prints {"methods":[{"name":N,"summary":S,"options":<JSON Schema>},...]}, the JSON Schema (draft 2020-12)
of the method block's input (defaults included).`;

/** A JSON Schema node, as far as this listing reads it. */
export interface JsonSchema {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  items?: JsonSchema;
  enum?: unknown[];
  const?: unknown;
  anyOf?: JsonSchema[];
  default?: unknown;
  description?: string;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  [k: string]: unknown;
}

/** One option of a method: dotted key, readable type, default (absent when there is none). */
export interface OptionRow {
  key: string;
  type: string;
  default?: unknown;
  description?: string;
}

/** The JSON Schema of a method's options (the input side: what a config may write, defaults included). */
export async function methodJsonSchema(name: string): Promise<JsonSchema> {
  const def = await getMethod(name);
  return z.toJSONSchema(def.schema, { io: 'input', unrepresentable: 'any' }) as JsonSchema;
}

const SAFE_MAX = Number.MAX_SAFE_INTEGER;

/** A short type text: `integer > 0`, `number ≥ 0, < 1`, `batch|all|task`, `list of string`, `boolean or "auto"`. */
export function typeText(s: JsonSchema): string {
  if (s.anyOf) return s.anyOf.map(typeText).join(' or ');
  if (s.const !== undefined) return JSON.stringify(s.const);
  if (s.enum) return s.enum.map((v) => (typeof v === 'string' ? v : JSON.stringify(v))).join('|');
  const t = Array.isArray(s.type) ? s.type.join('|') : s.type;
  if (t === 'array') return `list of ${s.items ? typeText(s.items) : 'values'}`;
  if (t === 'object') {
    const keys = Object.keys(s.properties ?? {});
    return keys.length > 0 ? `{${keys.join(', ')}}` : 'mapping';
  }
  if (t === 'number' || t === 'integer') {
    const bounds: string[] = [];
    if (s.exclusiveMinimum !== undefined) bounds.push(`> ${s.exclusiveMinimum}`);
    else if (s.minimum !== undefined) bounds.push(`≥ ${s.minimum}`);
    if (s.exclusiveMaximum !== undefined) bounds.push(`< ${s.exclusiveMaximum}`);
    else if (s.maximum !== undefined && s.maximum < SAFE_MAX) bounds.push(`≤ ${s.maximum}`);
    return bounds.length > 0 ? `${t} ${bounds.join(', ')}` : t;
  }
  return t ?? 'any';
}

/** The option rows of an object schema; a nested object block (not a choice between forms) becomes dotted keys. */
export function optionRows(schema: JsonSchema, prefix = ''): OptionRow[] {
  const rows: OptionRow[] = [];
  for (const [k, s] of Object.entries(schema.properties ?? {})) {
    const key = prefix + k;
    if (s.type === 'object' && s.properties && Object.keys(s.properties).length > 0 && !s.anyOf) {
      rows.push(...optionRows(s, `${key}.`));
      continue;
    }
    rows.push({
      key,
      type: typeText(s),
      ...(s.default !== undefined ? { default: s.default } : {}),
      ...(s.description !== undefined ? { description: s.description } : {}),
    });
  }
  return rows;
}

/** The sub-schema at a dotted path of object properties (`''` = the schema itself), or null. */
export function schemaAt(schema: JsonSchema, path: string): JsonSchema | null {
  let cur: JsonSchema | undefined = schema;
  for (const seg of path === '' ? [] : path.split('.')) {
    cur = cur?.properties?.[seg];
    if (cur === undefined) return null;
  }
  return cur ?? null;
}

function defaultText(v: unknown): string {
  if (v === undefined) return '—';
  return typeof v === 'string' ? v : JSON.stringify(v);
}

/** The text listing of one method. */
export function formatMethod(name: string, summary: string, schema: JsonSchema): string {
  const rows = optionRows(schema);
  const lines = [`${name} — ${summary}`];
  if (rows.length === 0) {
    lines.push('  (no options)');
    return lines.join('\n');
  }
  const wk = Math.max('option'.length, ...rows.map((r) => r.key.length));
  const wt = Math.max('type'.length, ...rows.map((r) => r.type.length));
  lines.push(`  ${'option'.padEnd(wk)}  ${'type'.padEnd(wt)}  default`);
  for (const r of rows) {
    const line = `  ${r.key.padEnd(wk)}  ${r.type.padEnd(wt)}  ${defaultText(r.default)}`;
    lines.push(r.description !== undefined ? `${line}  (${r.description})` : line);
  }
  return lines.join('\n');
}

const methods: Command = {
  summary: 'List the methods with their options, types and defaults',
  usage: USAGE,
  async run(argv, io) {
    const { values, positionals } = parseCliWithPositionals(argv, { json: { type: 'boolean', default: false } });
    const known = listMethods();
    const unknown = positionals.filter((n) => !known.includes(n));
    if (unknown.length > 0) throw new UsageError(`unknown method${unknown.length > 1 ? 's' : ''} ${unknown.map((n) => `'${n}'`).join(', ')}; known methods: ${known.join(', ')}`);
    const names = positionals.length > 0 ? positionals : known;
    const list = [];
    for (const name of names) list.push({ name, summary: (await getMethod(name)).summary, options: await methodJsonSchema(name) });
    if (values.json) {
      io.stdout(JSON.stringify({ methods: list }) + '\n');
      return 0;
    }
    io.stdout(list.map((m) => formatMethod(m.name, m.summary, m.options)).join('\n\n') + '\n');
    if (positionals.length === 0) io.stdout(`\nSet options in the config's method block, or with --set method.KEY=VALUE; tuned sets: presets/methods/*.yaml.\n`);
    return 0;
  },
};
export default methods;
