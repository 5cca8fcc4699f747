/**
 * Argument handling shared by the sub-commands: `node:util` `parseArgs` with this CLI's error conventions
 * (bad arguments become a one-line {@link UsageError} — exit code 2 — naming the flag and listing the command's
 * flags), the `CONFIG` positional of the config-driven commands, number flags, and user-input errors of library
 * calls (a config whose method block has keys the method does not take gets the valid keys listed).
 */
import { resolve } from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import type { LoadedConfig } from '../config/load.ts';
import { UsageError } from './command.ts';

/** The `options` table of `parseArgs`. */
type Options = NonNullable<ParseArgsConfig['options']>;

/** What `parseArgs` returns for `options`, with or without positionals. */
type Parsed<O extends Options, P extends boolean> = ReturnType<typeof parseArgs<{ args: string[]; options: O; allowPositionals: P }>>;

/** Levenshtein distance (for "did you mean"). */
function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur.push(Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1)));
    prev = cur;
  }
  return prev[b.length]!;
}

/** `--name` for every flag of `options` (and `-x` short forms), plus `--help`. */
function flagList(options: Options): string {
  const flags = Object.entries(options).map(([name, o]) => (o.short ? `--${name} (-${o.short})` : `--${name}`));
  return [...flags, '--help'].join(', ');
}

/**
 * A `parseArgs` error as one line naming the flag: unknown flags get the command's flags (and the closest one),
 * a missing value says so. (Node's own texts are multi-line and quote oddly, e.g. `'-- "--bogus-flag"`.)
 */
export function argError(e: unknown, options: Options): UsageError {
  const err = e as Error & { code?: string };
  const msg = err.message ?? String(e);
  const flags = flagList(options);
  if (err.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
    const flag = /Unknown option '([^']*)'/.exec(msg)?.[1] ?? '?';
    const bare = flag.replace(/^-+/, '').split('=')[0]!;
    let best: string | null = null;
    let bestD = Infinity;
    for (const name of Object.keys(options)) {
      const d = editDistance(bare, name);
      if (d < bestD) [best, bestD] = [name, d];
    }
    const hint = best !== null && bestD < bare.length && bestD <= Math.max(1, Math.floor(bare.length / 2)) ? ` (did you mean --${best}?)` : '';
    return new UsageError(`Unknown option '${flag}'${hint}; options: ${flags}`);
  }
  if (err.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
    const flag = /Option '(-[^' ]*)/.exec(msg)?.[1] ?? '?';
    if (/does not take an argument/.test(msg)) return new UsageError(`option '${flag}' takes no value`);
    if (/ambiguous/.test(msg)) return new UsageError(`option '${flag}' needs a value (a value starting with '-' is written ${flag}=-VALUE)`);
    return new UsageError(`option '${flag}' needs a value`);
  }
  if (err.code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL') {
    const arg = /Unexpected argument '([^']*)'/.exec(msg)?.[1] ?? '?';
    return new UsageError(`unexpected argument '${arg}' (this command takes no positional arguments); options: ${flags}`);
  }
  return new UsageError(msg.split('\n')[0]!);
}

function parse<O extends Options, P extends boolean>(argv: string[], options: O, allowPositionals: P): Parsed<O, P> {
  try {
    return parseArgs({ args: argv, options, allowPositionals });
  } catch (e) {
    throw argError(e, options);
  }
}

/**
 * Parses flags-only arguments (a positional is an error). An unknown flag, a missing value or a stray
 * positional throws a one-line UsageError (see {@link argError}; the usage text is not repeated after it, so
 * `_usage` is unused and stays for the callers).
 */
export function parseCli<const O extends Options>(argv: string[], options: O, _usage: string): Parsed<O, false>['values'] {
  return parse(argv, options, false).values;
}

/** Like {@link parseCli}, but positionals are allowed and returned. */
export function parseCliWithPositionals<const O extends Options>(argv: string[], options: O): { values: Parsed<O, true>['values']; positionals: string[] } {
  const { values, positionals } = parse(argv, options, true);
  return { values, positionals };
}

/**
 * Parses the arguments of a config-driven command, `CONFIG [flags]`: like {@link parseCli}, plus exactly one
 * positional, the config file (else a UsageError "expected exactly one CONFIG file, got N" with `usage`).
 */
export function parseConfigCli<const O extends Options>(argv: string[], options: O, usage: string): { values: Parsed<O, true>['values']; config: string } {
  const { values, positionals } = parse(argv, options, true);
  if (positionals.length !== 1) throw new UsageError(`expected exactly one CONFIG file, got ${positionals.length}\n\n${usage}`);
  return { values, config: positionals[0]! };
}

/**
 * The value of `fn()`, with bad user input reported as such: an error it throws (or rejects with) that `opts.when`
 * accepts (default: every error) is re-thrown as a UsageError with the same message, preceded by `opts.prefix`.
 * Other errors pass through unchanged.
 */
export async function asUsageError<T>(fn: () => T | Promise<T>, opts: { when?: (e: unknown) => boolean; prefix?: string } = {}): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (opts.when === undefined || opts.when(e)) throw new UsageError((opts.prefix ?? '') + (e as Error).message);
    throw e;
  }
}

/**
 * Loads a run config (`loadConfig`) for the CLI: a `ConfigError` (bad file, field or `--set`) becomes a UsageError.
 * (The config layer is imported here on first use, so that commands without configs do not load the methods.)
 */
export async function loadRunConfigForCli(path: string, sets: readonly string[] = [], methodFile?: string): Promise<LoadedConfig> {
  const { ConfigError, loadConfig } = await import('../config/load.ts');
  try {
    return await loadConfig(path, { sets, ...(methodFile !== undefined ? { methodFile } : {}) });
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    throw new UsageError(await explainMethodKeys(e.message, path, sets, methodFile));
  }
}

/**
 * The name of the method a config ends up with after the method file and `--set`s (as `loadConfig` applies
 * them), or null when it cannot be read.
 */
async function effectiveMethodName(path: string, sets: readonly string[], methodFile: string | undefined): Promise<string | null> {
  const { readConfigFile } = await import('../config/load.ts');
  const { applyOverride, parseOverride } = await import('../config/overrides.ts');
  try {
    let raw = readConfigFile(resolve(path));
    if (methodFile !== undefined) {
      const m = readConfigFile(resolve(methodFile)) as Record<string, unknown>;
      raw = { ...(raw as Record<string, unknown>), method: 'method' in m ? m['method'] : m };
    }
    for (const s of sets) raw = applyOverride(raw, parseOverride(s));
    const name = (raw as { method?: { name?: unknown } }).method?.name;
    return typeof name === 'string' ? name : null;
  } catch {
    return null;
  }
}

/**
 * Adds to a config error's "method…: Unrecognized keys" lines the keys that method block takes, and how to
 * switch methods without carrying the old method's options along.
 */
async function explainMethodKeys(message: string, path: string, sets: readonly string[], methodFile: string | undefined): Promise<string> {
  const lines = message.split('\n');
  const bad = lines.map((l) => /^method((?:\.[^:\s]+)*): Unrecognized keys?: /.exec(l));
  if (!bad.some((m) => m !== null)) return message;
  const name = await effectiveMethodName(path, sets, methodFile);
  if (name === null) return message;
  const { methodJsonSchema, optionRows, schemaAt } = await import('./commands/methods.ts');
  let schema;
  try {
    schema = await methodJsonSchema(name);
  } catch {
    return message;
  }
  const out: string[] = [];
  lines.forEach((l, i) => {
    out.push(l);
    const m = bad[i];
    if (!m) return;
    const sub = m[1]!.replace(/^\./, '');
    const node = schemaAt(schema, sub);
    if (!node) return;
    const keys = optionRows({ properties: node.properties ?? {} }).map((r) => r.key);
    const where = sub === '' ? `method '${name}'` : `method '${name}', block ${sub},`;
    out.push(`  ${where} takes: ${keys.join(', ') || '(no options)'} — see \`moeclip methods ${name}\``);
  });
  const switched = sets.some((s) => /^\s*method\.name\s*=/.test(s));
  if (switched && bad.some((m) => m?.[1] === '')) {
    const { packageRoot } = await import('../methods/clip-resources.ts');
    const preset = resolve(packageRoot(), 'presets', 'methods', `${name}.yaml`);
    const { existsSync } = await import('node:fs');
    const viaFile = existsSync(preset) ? `--method ${preset}` : '--method METHOD.yaml';
    out.push(
      `  the other keys belong to the config's previous method; to switch methods replace the whole block: ${viaFile}, ` +
        `or --set 'method={name: ${name}}' (then --set method.KEY=VALUE for its options)`,
    );
  }
  return out.join('\n');
}

/** Parses a flag that must be a positive integer (`undefined` when the flag is absent). */
export function parsePositiveInt(flag: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`${flag} must be a positive integer, got '${v}'`);
  return n;
}

/** Parses `--threads`, which must be a positive integer. */
export function parseThreads(v: string | undefined): number | undefined {
  return parsePositiveInt('--threads', v);
}
