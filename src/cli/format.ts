/** Small formatting helpers shared by the sub-commands' progress output. */

/** A local-time stamp for default output folder names: `YYYYMMDD-HHMMSS`. */
export function timestamp(d = new Date()): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}${p(d.getMonth() + 1)}${p(d.getDate())}-${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}`;
}

/** A fraction as a percentage with two decimals (`0.1234` → `12.34%`); `—` for a missing value. */
export function pct(v: number | null | undefined): string {
  return v === null || v === undefined ? '—' : `${(v * 100).toFixed(2)}%`;
}

/**
 * How human-readable output names task `index` (0-based) of `count`: `task 1/5`. Files (CSV, JSON, events) keep
 * the 0-based index; only text meant for people counts from 1, always with the total so it reads as an ordinal.
 */
export function taskLabel(index: number, count: number): string {
  return `task ${index + 1}/${count}`;
}
