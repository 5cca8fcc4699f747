/**
 * Argument handling shared by the sub-commands: `node:util` `parseArgs` with this CLI's error conventions
 * (bad arguments become a {@link UsageError} — exit code 2 — followed by the command's usage text), the
 * `CONFIG` positional of the config-driven commands, number flags, and user-input errors of library calls.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import type { LoadedConfig } from '../config/load.ts';
import { UsageError } from './command.ts';

/** The `options` table of `parseArgs`. */
type Options = NonNullable<ParseArgsConfig['options']>;

/** What `parseArgs` returns for `options`, with or without positionals. */
type Parsed<O extends Options, P extends boolean> = ReturnType<typeof parseArgs<{ args: string[]; options: O; allowPositionals: P }>>;

function parse<O extends Options, P extends boolean>(argv: string[], options: O, allowPositionals: P, usage: string): Parsed<O, P> {
  try {
    return parseArgs({ args: argv, options, allowPositionals });
  } catch (e) {
    throw new UsageError(`${(e as Error).message}\n\n${usage}`);
  }
}

/**
 * Parses flags-only arguments (a positional is an error). An unknown flag, a missing value or a stray
 * positional throws a UsageError with `parseArgs`'s message followed by `usage`.
 */
export function parseCli<const O extends Options>(argv: string[], options: O, usage: string): Parsed<O, false>['values'] {
  return parse(argv, options, false, usage).values;
}

/**
 * Parses the arguments of a config-driven command, `CONFIG [flags]`: like {@link parseCli}, plus exactly one
 * positional, the config file (else a UsageError "expected exactly one CONFIG file, got N" with `usage`).
 */
export function parseConfigCli<const O extends Options>(argv: string[], options: O, usage: string): { values: Parsed<O, true>['values']; config: string } {
  const { values, positionals } = parse(argv, options, true, usage);
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
  return asUsageError(() => loadConfig(path, { sets, ...(methodFile !== undefined ? { methodFile } : {}) }), { when: (e) => e instanceof ConfigError });
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
