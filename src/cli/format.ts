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
