/** The shared argument helpers of the sub-commands (src/cli/args.ts). */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { asUsageError, loadRunConfigForCli, parseCli, parseCliWithPositionals, parseConfigCli, parsePositiveInt, parseThreads } from '../../src/cli/args.ts';
import { main } from '../../src/cli/main.ts';
import { UsageError } from '../../src/cli/command.ts';

const USAGE = 'usage: moeclip thing [--n N] [--flag]';
const REPO = fileURLToPath(new URL('../../', import.meta.url));
const root = mkdtempSync(join(tmpdir(), 'moeclip-cli-args-'));
after(() => rmSync(root, { recursive: true, force: true }));

const isUsage = (re: RegExp) => (e: unknown) => e instanceof UsageError && re.test(e.message);

test('parseCli: typed values with defaults; unknown flags, missing values and positionals are one-line usage errors', () => {
  const parse = (argv: string[]) =>
    parseCli(argv, { n: { type: 'string' }, flag: { type: 'boolean', default: false }, many: { type: 'string', multiple: true, default: [] } }, USAGE);
  const v = parse(['--n', '3', '--many', 'a', '--many', 'b']);
  const many: string[] = v.many; // typed as a list thanks to `multiple` + `default`
  assert.deepEqual({ n: v.n, flag: v.flag, many }, { n: '3', flag: false, many: ['a', 'b'] });
  const message = (argv: string[]) => {
    try {
      parse(argv);
    } catch (e) {
      assert.ok(e instanceof UsageError);
      return e.message;
    }
    throw new Error(`no error for ${argv.join(' ')}`);
  };
  // exactly one line, balanced quotes, the command's flags listed
  assert.equal(message(['--bogus-flag']), "Unknown option '--bogus-flag'; options: --n, --flag, --many, --help");
  assert.equal(message(['--flga']), "Unknown option '--flga' (did you mean --flag?); options: --n, --flag, --many, --help");
  assert.equal(message(['-x']), "Unknown option '-x'; options: --n, --flag, --many, --help");
  assert.equal(message(['--n']), "option '--n' needs a value");
  assert.equal(message(['--n', '--flag']), "option '--n' needs a value (a value starting with '-' is written --n=-VALUE)");
  assert.equal(message(['--flag=yes']), "option '--flag' takes no value");
  assert.equal(message(['stray']), "unexpected argument 'stray' (this command takes no positional arguments); options: --n, --flag, --many, --help");
  // a command with positionals (CONFIG): Node's text would end in an unbalanced quote, '-- "--bogus-flag"
  const withPos = () => parseConfigCli(['c.yaml', '--bogus-flag'], { set: { type: 'string', multiple: true, default: [] } }, USAGE);
  assert.throws(withPos, (e: unknown) => e instanceof UsageError && e.message === "Unknown option '--bogus-flag'; options: --set, --help");
  const p = parseCliWithPositionals(['a', '--json', 'b'], { json: { type: 'boolean', default: false } });
  assert.deepEqual({ json: p.values.json, positionals: p.positionals }, { json: true, positionals: ['a', 'b'] });
});

test('a CONFIG command with an unknown flag prints one clean line (through the CLI entry)', async () => {
  let err = '';
  const io = { stdout: () => {}, stderr: (t: string) => void (err += t), isTTY: false, env: {} };
  assert.equal(await main(['stream', 'presets/ncm-split-mnist.yaml', '--bogus-flag'], io), 2);
  assert.equal(err, "moeclip stream: Unknown option '--bogus-flag'; options: --set, --describe, --json, --help\n");
  assert.equal((err.match(/'/g) ?? []).length % 2, 0);
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

test('switching method with --set method.name on a preset lists the keys the new method takes and how to switch', async () => {
  // presets/ncm-split-mnist.yaml has method: {name: ncm, features, size, color, normalize, metric}; ncm-clip takes
  // model, metric, batchSize (its schema), so four keys are left over
  const preset = join(REPO, 'presets', 'ncm-split-mnist.yaml');
  let msg = '';
  await assert.rejects(loadRunConfigForCli(preset, ['method.name=ncm-clip']), (e: unknown) => {
    msg = (e as Error).message;
    return e instanceof UsageError;
  });
  const lines = msg.split('\n');
  assert.equal(lines[0], `${preset}: invalid config:`);
  assert.equal(lines[1], 'method: Unrecognized keys: "features", "size", "color", "normalize"');
  assert.equal(lines[2], "  method 'ncm-clip' takes: model, metric, batchSize — see `moeclip methods ncm-clip`");
  assert.match(lines[3]!, /^ {2}the other keys belong to the config's previous method; to switch methods replace the whole block: --method METHOD\.yaml, or --set 'method=\{name: ncm-clip\}'/);
  assert.equal(lines.length, 4);
  // the suggestion works: replacing the block loads
  const ok = await loadRunConfigForCli(preset, ['method={name: ncm-clip}', 'method.metric=euclidean']);
  assert.equal(ok.config.method.name, 'ncm-clip');
  assert.equal(ok.methodOptions['metric'], 'euclidean');
  // a method with a tuned preset is suggested by file; a nested block lists its own keys
  await assert.rejects(loadRunConfigForCli(preset, ['method.name=moe-adapters', 'method.ddas.bogus=1']), (e: unknown) => {
    const m = (e as Error).message;
    assert.match(m, /^method\.ddas: Unrecognized key: "bogus"$/m);
    assert.match(m, /^ {2}method 'moe-adapters', block ddas, takes: enabled, hidden, lr, threshold, quantile, scale, routing — see `moeclip methods moe-adapters`$/m);
    assert.match(m, new RegExp(`--method ${join(REPO, 'presets', 'methods', 'moe-adapters.yaml').replace(/[.\\/]/g, (c) => `\\${c}`)}, or`));
    return true;
  });
  // other config errors are unchanged
  await assert.rejects(loadRunConfigForCli(preset, ['run.batchSize=0']), (e: unknown) => e instanceof UsageError && !/takes:/.test((e as Error).message));
});
