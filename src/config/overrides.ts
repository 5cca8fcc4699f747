/**
 * `--set key.path=value` overrides for run configs. The value is parsed as YAML (so `3` is a number, `true` a
 * boolean, `[1, 2]` a list, `null` null, `'3'` a string) and stored at the dotted path, creating objects on the
 * way; a numeric segment indexes into an existing array.
 */
import { parse as parseYaml } from 'yaml';

/** A parsed override. */
export interface Override {
  path: string[];
  value: unknown;
}

/** Parses `a.b.c=value`; throws a clear error for a missing `=` or an empty path segment. */
export function parseOverride(text: string): Override {
  const eq = text.indexOf('=');
  if (eq <= 0) throw new Error(`--set '${text}': expected key.path=value`);
  const key = text.slice(0, eq).trim();
  const path = key.split('.');
  if (path.some((p) => p === '')) throw new Error(`--set '${text}': empty segment in key path '${key}'`);
  for (const p of path) {
    if (p === '__proto__' || p === 'constructor' || p === 'prototype') throw new Error(`--set '${text}': invalid key '${p}'`);
  }
  const raw = text.slice(eq + 1);
  let value: unknown;
  try {
    value = raw.trim() === '' ? '' : parseYaml(raw);
  } catch (e) {
    throw new Error(`--set '${text}': cannot parse the value: ${(e as Error).message}`);
  }
  return { path, value };
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Returns a deep copy of `config` with `value` stored at `path`. Throws naming the path when a segment runs
 * into a scalar (e.g. `seed.x=1` when `seed` is a number).
 */
export function applyOverride(config: unknown, { path, value }: Override): unknown {
  const root: unknown = structuredClone(config ?? {});
  if (!isRecord(root)) throw new Error('config root must be a mapping');
  let cur: Record<string, unknown> | unknown[] = root;
  for (let k = 0; k < path.length; k++) {
    const seg = path[k]!;
    const last = k === path.length - 1;
    const where = path.slice(0, k + 1).join('.');
    if (Array.isArray(cur)) {
      const i = Number(seg);
      if (!Number.isInteger(i) || i < 0 || i >= cur.length) {
        throw new Error(`--set ${path.join('.')}: '${path.slice(0, k).join('.')}' is a list; '${seg}' is not an index in [0, ${cur.length})`);
      }
      if (last) cur[i] = value;
      else {
        const next: unknown = cur[i];
        if (!isRecord(next) && !Array.isArray(next)) throw new Error(`--set ${path.join('.')}: '${where}' is not a mapping`);
        cur = next;
      }
    } else {
      if (last) cur[seg] = value;
      else {
        const next: unknown = cur[seg];
        if (next === undefined || next === null) {
          const fresh: Record<string, unknown> = {};
          cur[seg] = fresh;
          cur = fresh;
        } else if (isRecord(next) || Array.isArray(next)) {
          cur = next;
        } else {
          throw new Error(`--set ${path.join('.')}: '${where}' is a ${typeof next}, not a mapping`);
        }
      }
    }
  }
  return root;
}

/** Applies every `key=value` string in order. */
export function applyOverrides(config: unknown, sets: readonly string[]): unknown {
  return sets.reduce((c, s) => applyOverride(c, parseOverride(s)), config);
}
