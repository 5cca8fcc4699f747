/**
 * Loading run configs: read YAML or JSON, apply `--set` overrides, resolve paths (see `paths.ts`), validate
 * with zod (errors name the field path, e.g. `stream.tasks: expected a positive integer`), and validate the
 * method's options with that method's own schema (errors like `method.size: ...`).
 */
import { readFileSync } from 'node:fs';
import { basename, dirname, extname, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { parseMethodOptions } from '../methods/registry.ts';
import { parseOverride, applyOverride } from './overrides.ts';
import { isPathKey, resolvePaths } from './paths.ts';
import { RunConfigSchema, type RunConfig } from './schema.ts';

/** A loaded config: the typed value (method options parsed, defaults filled) and where it came from. */
export interface LoadedConfig {
  config: RunConfig;
  /** The parsed method options (everything in `method:` but `name`, with defaults). */
  methodOptions: Record<string, unknown>;
  /** The config file's folder (or the cwd for in-memory configs). */
  baseDir: string;
  /** The config file, when loaded from one. */
  file?: string;
  /** A default name for the run: `name`, else the file's base name, else `run`. */
  runName: string;
}

/** Thrown for invalid configs; the message lists one `field.path: problem` per line. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

function formatZodIssues(error: z.ZodError): string {
  return error.issues
    .map((i) => {
      const path = i.path.map(String).join('.');
      return `${path || '(root)'}: ${i.message}`;
    })
    .join('\n');
}

/** Reads a YAML (`.yaml`, `.yml`) or JSON (`.json`) file into a plain value; errors name the file. */
export function readConfigFile(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError(`${file}: cannot read config: ${(e as Error).message}`);
  }
  try {
    return extname(file).toLowerCase() === '.json' ? JSON.parse(text) : parseYaml(text);
  } catch (e) {
    throw new ConfigError(`${file}: not valid ${extname(file) === '.json' ? 'JSON' : 'YAML'}: ${(e as Error).message}`);
  }
}

/**
 * Validates an in-memory config. Relative paths in `raw` are resolved against `baseDir`; `sets` overrides are
 * applied afterwards, their relative paths resolved against `cwd`.
 */
export async function parseConfig(
  raw: unknown,
  opts: { baseDir: string; sets?: readonly string[]; cwd?: string; source?: string; method?: { value: unknown; baseDir: string; source: string } },
): Promise<LoadedConfig> {
  const where = opts.source ?? 'config';
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new ConfigError(`${where}: the config must be a mapping with stream, method and run sections`);
  }
  let value = resolvePaths(raw, opts.baseDir);
  if (opts.method) {
    // a method file (presets/methods/*.yaml) replaces the config's method section; --set still applies after it
    const m = opts.method.value;
    const section = typeof m === 'object' && m !== null && !Array.isArray(m) && 'method' in m ? (m as { method: unknown }).method : m;
    if (typeof section !== 'object' || section === null || Array.isArray(section)) {
      throw new ConfigError(`${opts.method.source}: a method file must be a mapping with a name and the method's options`);
    }
    value = { ...(value as Record<string, unknown>), method: resolvePaths(section, opts.method.baseDir) };
  }
  for (const s of opts.sets ?? []) {
    let ov;
    try {
      ov = parseOverride(s);
    } catch (e) {
      throw new ConfigError((e as Error).message);
    }
    const last = ov.path[ov.path.length - 1]!;
    if (typeof ov.value === 'string' || Array.isArray(ov.value)) ov.value = resolvePaths(ov.value, opts.cwd ?? process.cwd(), last);
    try {
      value = applyOverride(value, ov);
    } catch (e) {
      throw new ConfigError((e as Error).message);
    }
  }
  const r = RunConfigSchema.safeParse(value);
  if (!r.success) throw new ConfigError(`${where}: invalid config:\n${formatZodIssues(r.error)}`);
  const config = r.data;
  const { name: methodName, ...rest } = config.method;
  let methodOptions: Record<string, unknown>;
  try {
    methodOptions = (await parseMethodOptions(methodName, rest, 'method')) as Record<string, unknown>;
  } catch (e) {
    throw new ConfigError(`${where}: invalid config:\n${(e as Error).message}`);
  }
  config.method = { name: methodName, ...methodOptions };
  return {
    config,
    methodOptions,
    baseDir: opts.baseDir,
    runName: config.name ?? (opts.source ? basename(opts.source).replace(/\.(ya?ml|json)$/i, '') : 'run'),
    ...(opts.source ? { file: opts.source } : {}),
  };
}

/** Loads, overrides, resolves and validates a config file. */
export async function loadConfig(file: string, opts: { sets?: readonly string[]; cwd?: string; methodFile?: string } = {}): Promise<LoadedConfig> {
  const cwd = opts.cwd ?? process.cwd();
  const abs = resolve(cwd, file);
  const raw = readConfigFile(abs);
  let method: { value: unknown; baseDir: string; source: string } | undefined;
  if (opts.methodFile !== undefined) {
    const mAbs = resolve(cwd, opts.methodFile);
    method = { value: readConfigFile(mAbs), baseDir: dirname(mAbs), source: mAbs };
  }
  return parseConfig(raw, { baseDir: dirname(abs), sets: opts.sets ?? [], cwd, source: abs, ...(method ? { method } : {}) });
}

export { isPathKey };
