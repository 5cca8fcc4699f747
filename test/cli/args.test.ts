/** The shared argument helpers of the sub-commands (src/cli/args.ts). */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { asUsageError, loadRunConfigForCli, parseCli, parseConfigCli, parsePositiveInt, parseThreads } from '../../src/cli/args.ts';
import { UsageError } from '../../src/cli/command.ts';

const USAGE = 'usage: moeclip thing [--n N] [--flag]';
const root = mkdtempSync(join(tmpdir(), 'moeclip-cli-args-'));
after(() => rmSync(root, { recursive: true, force: true }));

const isUsage = (re: RegExp) => (e: unknown) => e instanceof UsageError && re.test(e.message);

test('parseCli: typed values with defaults; unknown flags and positionals are usage errors followed by the usage text', () => {
  const parse = (argv: string[]) =>
    parseCli(argv, { n: { type: 'string' }, flag: { type: 'boolean', default: false }, many: { type: 'string', multiple: true, default: [] } }, USAGE);
  const v = parse(['--n', '3', '--many', 'a', '--many', 'b']);
  const many: string[] = v.many; // typed as a list thanks to `multiple` + `default`
  assert.deepEqual({ n: v.n, flag: v.flag, many }, { n: '3', flag: false, many: ['a', 'b'] });
  assert.throws(() => parse(['--bogus']), isUsage(/'--bogus'[\s\S]*\n\nusage: moeclip thing/));
  assert.throws(() => parse(['stray']), isUsage(/stray[\s\S]*\n\nusage: moeclip thing/));
});

test('parseConfigCli: exactly one CONFIG positional', () => {
  const parse = (argv: string[]) => parseConfigCli(argv, { set: { type: 'string', multiple: true, default: [] } }, USAGE);
  const r = parse(['c.yaml', '--set', 'a=1']);
  assert.equal(r.config, 'c.yaml');
  assert.deepEqual(r.values.set, ['a=1']);
  assert.throws(() => parse([]), isUsage(/^expected exactly one CONFIG file, got 0\n\nusage: moeclip thing/));
  assert.throws(() => parse(['a', 'b']), isUsage(/^expected exactly one CONFIG file, got 2\n/));
});

test('asUsageError converts the chosen errors (sync or async) and passes the others through', async () => {
  assert.equal(await asUsageError(() => 5), 5);
  await assert.rejects(asUsageError(() => { throw new Error('bad'); }, { prefix: 'f.csv: ' }), isUsage(/^f\.csv: bad$/));
  await assert.rejects(asUsageError(async () => { throw new RangeError('r'); }, { when: (e) => e instanceof RangeError }), isUsage(/^r$/));
  await assert.rejects(asUsageError(() => { throw new TypeError('t'); }, { when: (e) => e instanceof RangeError }), (e: unknown) => e instanceof TypeError);
});

test('parsePositiveInt / parseThreads', () => {
  assert.equal(parsePositiveInt('--batch', undefined), undefined);
  assert.equal(parsePositiveInt('--batch', '12'), 12);
  for (const bad of ['0', '-1', '1.5', 'x', '']) assert.throws(() => parsePositiveInt('--batch', bad), isUsage(new RegExp(`^--batch must be a positive integer, got '${bad.replace('.', '\\.')}'$`)));
  assert.equal(parseThreads('2'), 2);
  assert.throws(() => parseThreads('0'), isUsage(/^--threads must be a positive integer, got '0'$/));
});

test('loadRunConfigForCli: config errors become usage errors naming the file', async () => {
  const missing = join(root, 'nope.yaml');
  await assert.rejects(loadRunConfigForCli(missing), (e: unknown) => e instanceof UsageError && e.message.includes(missing) && e.message.includes('cannot read config'));
  const bad = join(root, 'bad.yaml');
  writeFileSync(bad, 'stream: [unclosed\n');
  await assert.rejects(loadRunConfigForCli(bad), (e: unknown) => e instanceof UsageError && e.message.includes(bad) && e.message.includes('not valid YAML'));
});
