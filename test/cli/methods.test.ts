/**
 * `moeclip methods [--json]`: every registered method with its options; the listed defaults are what the
 * method's own schema fills in for an empty block, and the types agree with those values.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { main } from '../../src/cli/main.ts';
import type { CliIO } from '../../src/cli/command.ts';
import { optionRows, typeText, type JsonSchema } from '../../src/cli/commands/methods.ts';
import { listMethods, parseMethodOptions } from '../../src/methods/registry.ts';

async function cli(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const io: CliIO = { stdout: (t) => void (out += t), stderr: (t) => void (err += t), isTTY: false, env: {} };
  return { code: await main(argv, io), out, err };
}

/** Whether `v` is an instance of JSON Schema type `t`. */
function isType(v: unknown, s: JsonSchema): boolean {
  if (s.anyOf) return s.anyOf.some((a) => isType(v, a));
  if (s.const !== undefined) return v === s.const;
  if (s.enum) return s.enum.includes(v);
  switch (s.type) {
    case 'string':
      return typeof v === 'string';
    case 'boolean':
      return typeof v === 'boolean';
    case 'number':
      return typeof v === 'number';
    case 'integer':
      return Number.isInteger(v);
    case 'array':
      return Array.isArray(v) && (s.items === undefined || v.every((x) => isType(x, s.items!)));
    case 'object':
      return typeof v === 'object' && v !== null && !Array.isArray(v);
    default:
      return true;
  }
}

test('moeclip methods --json: every method, and each default is what its schema fills in for an empty block', async () => {
  const r = await cli(['methods', '--json']);
  assert.equal(r.code, 0, r.err);
  const j = JSON.parse(r.out) as { methods: Array<{ name: string; summary: string; options: JsonSchema }> };
  assert.deepEqual(j.methods.map((m) => m.name), listMethods());
  for (const m of j.methods) {
    assert.ok(m.summary.length > 0, m.name);
    assert.equal(m.options.type, 'object', m.name);
    assert.equal(m.options['additionalProperties'], false, `${m.name}: the method block is strict`);
    checkDefaults(m.options, (await parseMethodOptions(m.name, {})) as Record<string, unknown>, m.name);
  }
});

/**
 * Each listed default equals the parsed value of an empty block and has the listed type; a nested block listed
 * with default `{}` is filled in from its own options' defaults, so those are checked one level down.
 */
function checkDefaults(schema: JsonSchema, parsed: Record<string, unknown>, where: string): void {
  for (const [key, s] of Object.entries(schema.properties ?? {})) {
    const v = parsed[key];
    const at = `${where}.${key}`;
    if (s.default === undefined) {
      assert.equal(v, undefined, `${at}: no default listed but the schema fills one in`);
      continue;
    }
    assert.ok(isType(v, s), `${at}: ${JSON.stringify(v)} is not ${typeText(s)}`);
    if (s.type === 'object' && s.properties && JSON.stringify(s.default) === '{}') checkDefaults(s, v as Record<string, unknown>, at);
    else assert.deepEqual(v, s.default, at);
  }
}

test('moeclip methods ncm: the option table, hand-checked against src/methods/ncm.ts', async () => {
  const r = await cli(['methods', 'ncm']);
  assert.equal(r.code, 0, r.err);
  const lines = r.out.trimEnd().split('\n');
  assert.match(lines[0]!, /^ncm — nearest class mean/);
  assert.deepEqual(
    lines.slice(1).map((l) => l.trim().split(/\s{2,}/)),
    [
      ['option', 'type', 'default'],
      ['features', 'string', 'pixels'],
      ['size', 'integer > 0, ≤ 256', '16'],
      ['color', 'gray|rgb', 'rgb'],
      ['normalize', 'boolean', 'true'],
      ['metric', 'euclidean|cosine', 'euclidean'],
    ],
  );
});

test('nested option blocks become dotted keys (as --set method.KEY takes them); unknown names are usage errors', async () => {
  const r = await cli(['methods', 'moe-adapters', '--json']);
  const schema = (JSON.parse(r.out) as { methods: Array<{ options: JsonSchema }> }).methods[0]!.options;
  const rows = optionRows(schema);
  const keys = rows.map((x) => x.key);
  assert.ok(keys.includes('ddas.enabled') && keys.includes('ddas.quantile') && !keys.includes('ddas'), keys.join(','));
  const q = rows.find((x) => x.key === 'ddas.quantile')!;
  assert.deepEqual(q, { key: 'ddas.quantile', type: 'number > 0, < 1', default: 0.99 });
  assert.equal(rows.find((x) => x.key === 'ddas.enabled')!.type, 'boolean or "auto"');
  // the dotted key really is a --set path of the method block
  const parsed = (await parseMethodOptions('moe-adapters', { ddas: { quantile: 0.9 } })) as { ddas: { quantile: number } };
  assert.equal(parsed.ddas.quantile, 0.9);
  const bad = await cli(['methods', 'nope']);
  assert.equal(bad.code, 2);
  assert.match(bad.err, /^moeclip methods: unknown method 'nope'; known methods: .*ncm/);
  const flag = await cli(['methods', '--bogus']);
  assert.equal(flag.code, 2);
  assert.equal(flag.err, "moeclip methods: Unknown option '--bogus'; options: --json, --help\n");
});

test('typeText on hand-written JSON Schema nodes', () => {
  assert.equal(typeText({ type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER }), 'integer ≥ 0');
  assert.equal(typeText({ type: 'number', exclusiveMinimum: 0, maximum: 5 }), 'number > 0, ≤ 5');
  assert.equal(typeText({ type: 'array', items: { type: 'string' } }), 'list of string');
  assert.equal(typeText({ anyOf: [{ const: 'all' }, { type: 'object', properties: { last: { type: 'integer' } } }] }), '"all" or {last}');
  assert.equal(typeText({ type: 'object' }), 'mapping');
  assert.equal(typeText({ enum: ['a', 1] }), 'a|1');
});
