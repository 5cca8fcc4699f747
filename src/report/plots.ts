/**
 * `plots/*.svg` of a run folder: the per-run charts (accuracy matrix, accuracy over the stream, final per-class
 * accuracy, parameters, experts per block, time per batch / phase, DDAS routing), rendered headless with Vega.
 * Charts whose data the run lacks are not written.
 */
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { basename, join } from 'node:path';
import { writeFileAtomic } from '../io/atomic.ts';
import { labelRuns, runCharts } from './charts/charts.ts';
import { renderSvg } from './charts/render.ts';
import { readRunData } from './charts/run-data.ts';

/** Every file name writeRunPlots may write (`<chart id>.svg`). */
export const PLOT_FILES = ['acc-matrix.svg', 'accuracy.svg', 'class-acc.svg', 'params.svg', 'experts.svg', 'time.svg', 'ddas-routing.svg'] as const;

/**
 * Renders the charts of a finished run folder into `runDir/plots/<id>.svg` (each written atomically: temp file +
 * rename) and returns their paths in display order. A plot of {@link PLOT_FILES} left from an earlier call whose
 * data is now missing is removed. Throws (naming the folder) when `runDir` is not a finished run folder.
 */
export async function writeRunPlots(runDir: string): Promise<string[]> {
  const data = readRunData(runDir);
  const [run] = labelRuns([data], [basename(data.dir)]);
  const dir = join(data.dir, 'plots');
  const written: string[] = [];
  for (const chart of runCharts(run!)) {
    const svg = await renderSvg(chart.spec, `${chart.id} of ${runDir}`);
    const path = join(dir, `${chart.id}.svg`);
    writeFileAtomic(path, svg);
    written.push(path);
  }
  if (existsSync(dir)) {
    const keep = new Set(written.map((p) => basename(p)));
    for (const f of readdirSync(dir)) {
      if ((PLOT_FILES as readonly string[]).includes(f) && !keep.has(f)) rmSync(join(dir, f), { force: true });
    }
  }
  return written;
}
