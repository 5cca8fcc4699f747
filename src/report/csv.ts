/**
 * Small CSV helpers for the run folder: the accuracy matrix (T×T, no header, empty cell = not evaluated) and
 * headed tables of numbers. Only numbers and empty cells are written, so no quoting is needed.
 */
import type { AccMatrix } from '../eval/metrics.ts';

function cell(v: number | null | undefined): string {
  return v === null || v === undefined ? '' : String(v);
}

/** `A` as CSV: one line per row t, T comma-separated cells, empty for `null`. */
export function formatMatrixCsv(A: AccMatrix): string {
  return A.map((row) => row.map(cell).join(',')).join('\n') + '\n';
}

/**
 * Parses an accuracy-matrix CSV (T lines of T cells; a cell is a number or empty; blank lines at the end and
 * spaces around cells are ignored). Errors name `file`, the 1-based line and the column.
 */
export function parseMatrixCsv(text: string, file: string): Array<Array<number | null>> {
  const lines = text.replace(/\r\n?/g, '\n').split('\n');
  while (lines.length > 0 && lines[lines.length - 1]!.trim() === '') lines.pop();
  if (lines.length === 0) throw new Error(`${file}: empty accuracy matrix`);
  const rows = lines.map((line, r) => {
    if (line.trim() === '') throw new Error(`${file}: line ${r + 1} is blank inside the matrix`);
    return line.split(',').map((raw, c) => {
      const s = raw.trim();
      if (s === '') return null;
      const v = Number(s);
      if (!Number.isFinite(v) || !/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(s)) {
        throw new Error(`${file}: line ${r + 1}, column ${c + 1}: '${s}' is not a number`);
      }
      return v;
    });
  });
  const T = rows.length;
  rows.forEach((row, r) => {
    if (row.length !== T) {
      throw new Error(`${file}: line ${r + 1} has ${row.length} cells, expected ${T} (the matrix must be ${T}×${T})`);
    }
  });
  return rows;
}

/** A headed CSV table: `header` line then one line per row. */
export function formatTableCsv(header: readonly string[], rows: ReadonlyArray<ReadonlyArray<number | string | null>>): string {
  const lines = [header.join(',')];
  for (const r of rows) lines.push(r.map((v) => (typeof v === 'string' ? v : cell(v))).join(','));
  return lines.join('\n') + '\n';
}

/** Parses a headed numeric CSV written by {@link formatTableCsv}; empty cells become `null`. */
export function parseTableCsv(text: string, file: string): { header: string[]; rows: Array<Array<number | null>> } {
  const lines = text.replace(/\r\n?/g, '\n').split('\n').filter((l) => l.trim() !== '');
  if (lines.length === 0) throw new Error(`${file}: empty CSV (no header)`);
  const header = lines[0]!.split(',').map((s) => s.trim());
  const rows = lines.slice(1).map((line, r) => {
    const cells = line.split(',');
    if (cells.length !== header.length) {
      throw new Error(`${file}: line ${r + 2} has ${cells.length} cells, expected ${header.length}`);
    }
    return cells.map((raw, c) => {
      const s = raw.trim();
      if (s === '') return null;
      const v = Number(s);
      if (!Number.isFinite(v)) throw new Error(`${file}: line ${r + 2}, column '${header[c]}': '${s}' is not a number`);
      return v;
    });
  });
  return { header, rows };
}
