/**
 * Structured session-cache keys. A key must describe everything that makes a session's graph different
 * (engine-notes pitfall 8: architecture, trainable set, mode), so callers describe it as plain data:
 * ```ts
 * sessionKey({ kind: 'moe-train', tower: 'image', experts: 4, trainable: ['router', 'e0'] })
 * // 'experts=4|kind=moe-train|tower=image|trainable=["router","e0"]'
 * ```
 * Keys are sorted, arrays keep their order, nested objects are sorted too; `undefined` values are left out (as
 * in JSON). Values compare by their text: `1` and `'1'` give the same key. `|`, `=` and `%` inside keys and
 * values are percent-encoded, so different parts never give the same key. A key longer than
 * {@link SESSION_KEY_MAX} characters is cut to a readable prefix followed by `…#` and 16 hex digits of the
 * SHA-256 of the whole key.
 */
import { createHash } from 'node:crypto';

/** Longest key returned unshortened. */
export const SESSION_KEY_MAX = 160;

/** Readable characters kept before the hash of a long key. */
const PREFIX_LENGTH = 120;

function escapePart(s: string): string {
  return s.replace(/[%|=]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`);
}

/** Canonical JSON-like text of a nested value: object keys sorted, arrays in order. */
function canonical(v: unknown, path: string): string {
  if (v === null) return 'null';
  switch (typeof v) {
    case 'string':
      return JSON.stringify(v);
    case 'number':
      if (!Number.isFinite(v)) return String(v);
      return JSON.stringify(v);
    case 'boolean':
      return String(v);
    case 'bigint':
      return `${v}n`;
    case 'object': {
      if (ArrayBuffer.isView(v)) throw new Error(`sessionKey: '${path}' is a typed array; describe the data by a name or a hash instead`);
      if (Array.isArray(v)) return `[${v.map((x, i) => (x === undefined ? 'null' : canonical(x, `${path}[${i}]`))).join(',')}]`;
      const proto = Object.getPrototypeOf(v) as unknown;
      if (proto !== Object.prototype && proto !== null) {
        throw new Error(`sessionKey: '${path}' is a ${(v as object).constructor?.name ?? 'non-plain object'}; use plain objects, arrays and scalars`);
      }
      const entries = Object.keys(v)
        .sort()
        .filter((k) => (v as Record<string, unknown>)[k] !== undefined)
        .map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k], `${path}.${k}`)}`);
      return `{${entries.join(',')}}`;
    }
    default:
      throw new Error(`sessionKey: '${path}' is a ${typeof v}; use plain objects, arrays and scalars`);
  }
}

/** Text of a top-level value: strings as they are, everything else canonical. */
function partText(v: unknown, path: string): string {
  return typeof v === 'string' ? v : canonical(v, path);
}

/**
 * A stable cache key from named parts: `k1=v1|k2=v2|…` with keys sorted (see the module doc), shortened with
 * a hash when long. Throws for an empty or non-object `parts`, and for functions, symbols, typed arrays and
 * class instances (naming the part).
 */
export function sessionKey(parts: Record<string, unknown>): string {
  if (typeof parts !== 'object' || parts === null || Array.isArray(parts)) throw new Error('sessionKey: parts must be a plain object');
  const keys = Object.keys(parts)
    .filter((k) => parts[k] !== undefined)
    .sort();
  if (keys.length === 0) throw new Error('sessionKey: parts must have at least one defined value');
  const full = keys.map((k) => `${escapePart(k)}=${escapePart(partText(parts[k], k))}`).join('|');
  if (full.length <= SESSION_KEY_MAX) return full;
  const hash = createHash('sha256').update(full).digest('hex').slice(0, 16);
  return `${full.slice(0, PREFIX_LENGTH)}…#${hash}`;
}
