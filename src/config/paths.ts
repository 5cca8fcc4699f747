/**
 * Path rule for run configs: a string value whose key is `root`, `out`, `dir`, `path` or `file`, or ends in
 * `Dir`, `Path` or `File` (e.g. `modelDir`, `weightsPath`), is a filesystem path. Relative paths written in a
 * config file are resolved against the folder of that file; relative paths given with `--set` against the
 * current working directory. Absolute paths are kept.
 */
import { isAbsolute, resolve } from 'node:path';

const EXACT = new Set(['root', 'out', 'dir', 'path', 'file']);

/** Whether a config key names a filesystem path. */
export function isPathKey(key: string): boolean {
  return EXACT.has(key) || /[a-z0-9](Dir|Path|File)$/.test(key);
}

/**
 * A deep copy of `value` with every path-keyed relative string resolved against `base`. `key` is the key that
 * holds `value` itself (array elements inherit their array's key); `isPath` says which keys name paths
 * (default: the run-config rule {@link isPathKey}).
 */
export function resolvePaths(value: unknown, base: string, key = '', isPath: (key: string) => boolean = isPathKey): unknown {
  if (typeof value === 'string') {
    return isPath(key) && value !== '' && !isAbsolute(value) ? resolve(base, value) : value;
  }
  if (Array.isArray(value)) return value.map((v) => resolvePaths(v, base, key, isPath));
  if (typeof value === 'object' && value !== null) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = resolvePaths(v, base, k, isPath);
    return out;
  }
  return value;
}
