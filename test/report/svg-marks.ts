/** Reads the mark items out of a Vega SVG string (for the report tests). */

export interface MarkItem {
  /** The element: path, line or text. */
  tag: string;
  attrs: Record<string, string>;
  /** Text content (text marks). */
  text: string;
}

/**
 * The items of every `<g class="mark-<type> role-mark …">` group of `svg`, in document order. Vega draws one
 * element per datum in a leaf mark group (rect, symbol, text, rule; one path per series for line marks).
 */
export function markItems(svg: string, type: string): MarkItem[] {
  const out: MarkItem[] = [];
  const group = new RegExp(`<g class="mark-${type} role-mark[^"]*"[^>]*>([\\s\\S]*?)</g>`, 'g');
  for (const g of svg.matchAll(group)) {
    for (const m of g[1]!.matchAll(/<(path|line|text)\b([^>]*?)(\/>|>([\s\S]*?)<\/\1>)/g)) {
      const attrs: Record<string, string> = {};
      for (const a of m[2]!.matchAll(/([\w:-]+)="([^"]*)"/g)) attrs[a[1]!] = a[2]!;
      if (attrs['role'] === 'graphics-symbol') out.push({ tag: m[1]!, attrs, text: m[4] ?? '' });
    }
  }
  return out;
}

/** `rgb(r, g, b)` or `#rrggbb` as [r, g, b]. */
export function parseColor(c: string): [number, number, number] {
  const m = /^rgb\((\d+),\s*(\d+),\s*(\d+)\)$/.exec(c);
  if (m) return [Number(m[1]), Number(m[2]), Number(m[3])];
  const h = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(c);
  if (h) return [parseInt(h[1]!, 16), parseInt(h[2]!, 16), parseInt(h[3]!, 16)];
  throw new Error(`not a colour: ${c}`);
}

/** The rectangle of a Vega rect path `M x,y h w v h h -w Z`. */
export function rectOf(d: string): { x: number; y: number; w: number; h: number } {
  const m = /^M(-?[\d.e-]+),(-?[\d.e-]+)h(-?[\d.e-]+)v(-?[\d.e-]+)h/.exec(d);
  if (!m) throw new Error(`not a rect path: ${d}`);
  return { x: Number(m[1]), y: Number(m[2]), w: Number(m[3]), h: Number(m[4]) };
}
