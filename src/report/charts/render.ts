/**
 * Renders Vega-Lite specs to SVG headless: vega-lite compiles the spec to Vega, and a Vega view without a
 * renderer (`renderer: 'none'`) writes the scenegraph as an SVG string. No browser, canvas or network is used.
 */
import { parse, View, type LoggerInterface } from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';

/** A logger that keeps Vega's and Vega-Lite's warnings in `warnings` instead of printing them. */
function collectingLogger(warnings: string[]): LoggerInterface {
  let level = 2;
  const logger: LoggerInterface = {
    level(l?: number) {
      if (l === undefined) return level;
      level = l;
      return logger;
    },
    error(...args: unknown[]) {
      throw new Error(args.map(String).join(' '));
    },
    warn(...args: unknown[]) {
      warnings.push(args.map(String).join(' '));
      return logger;
    },
    info() {
      return logger;
    },
    debug() {
      return logger;
    },
  };
  return logger;
}

/**
 * The SVG text of a Vega-Lite spec. Warnings of the compiler and the view go to `warnings` (when given; never
 * printed). Errors name the chart (`what`) and carry Vega's message.
 */
export async function renderSvg(spec: TopLevelSpec, what = 'chart', warnings: string[] = []): Promise<string> {
  let view: View | null = null;
  try {
    const logger = collectingLogger(warnings);
    const vg = compile(spec, { logger }).spec;
    view = new View(parse(vg), { renderer: 'none', logger });
    return await view.toSVG();
  } catch (e) {
    throw new Error(`rendering ${what}: ${(e as Error).message}`);
  } finally {
    view?.finalize();
  }
}

/**
 * Makes the ids of an SVG unique within a page that holds several: every `id="x"` becomes `id="<prefix>-x"`, and
 * its references (`url(#x)`, `href="#x"`) follow. SVGs inlined in one HTML document otherwise share one id
 * namespace, and a second chart's gradient or clip path would resolve to the first's.
 */
export function prefixSvgIds(svg: string, prefix: string): string {
  const ids = new Set<string>();
  for (const m of svg.matchAll(/\bid="([^"]+)"/g)) ids.add(m[1]!);
  if (ids.size === 0) return svg;
  const rename = (id: string) => (ids.has(id) ? `${prefix}-${id}` : id);
  return svg
    .replace(/\bid="([^"]+)"/g, (_, id: string) => `id="${rename(id)}"`)
    .replace(/url\(#([^)]+)\)/g, (_, id: string) => `url(#${rename(id)})`)
    .replace(/\b(xlink:href|href)="#([^"]+)"/g, (_, attr: string, id: string) => `${attr}="#${rename(id)}"`);
}
