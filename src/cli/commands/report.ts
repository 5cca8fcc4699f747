/**
 * `moeclip report RUN_DIR... [--out report.html] [--title T] [--plots]` — one self-contained HTML page comparing
 * run folders (inline SVG charts, works offline from file://); `--plots` also writes each run's `plots/*.svg`.
 */
import { parseArgs } from 'node:util';
import type { Command } from '../command.ts';
import { UsageError } from '../command.ts';

const USAGE = `usage: moeclip report RUN_DIR... [--out report.html] [--title TEXT] [--plots] [--json]

Writes one self-contained HTML page (inline SVG, no script, no network: opens from file://) comparing the runs:
tables of final metrics and costs; anytime, end-of-task and online accuracy overlaid (one colour per run), final
per-class accuracy, trainable/total parameters, experts per block over the stream, seconds per batch with merges;
per run the accuracy-matrix heatmap, accuracy over the stream, time per phase and the DDAS routing confusion.
Charts whose data a run does not have are left out. A RUN_DIR that holds seed-<s> run folders (a multi-seed
run) stands for all its seeds.

  --out FILE   where to write the page (default: report.html)
  --title T    page title
  --plots      also write plots/*.svg into every run folder
  --json       print {"out", "runs", "charts", "plots"} as JSON instead of a summary line`;

const report: Command = {
  summary: 'Write an HTML report (charts and tables) comparing run folders',
  usage: USAGE,
  async run(argv, io) {
    let parsed;
    try {
      parsed = parseArgs({
        args: argv,
        options: { out: { type: 'string', default: 'report.html' }, title: { type: 'string' }, plots: { type: 'boolean', default: false }, json: { type: 'boolean', default: false } },
        allowPositionals: true,
      });
    } catch (e) {
      throw new UsageError(`${(e as Error).message}\n\n${USAGE}`);
    }
    const { values, positionals } = parsed;
    if (positionals.length === 0) throw new UsageError(`give at least one RUN_DIR\n\n${USAGE}`);
    const { writeReport } = await import('../../report/html.ts');
    const { RunFolderError } = await import('../../report/charts/run-data.ts');
    let result;
    try {
      result = await writeReport(positionals, values.out, values.title !== undefined ? { title: values.title } : {});
    } catch (e) {
      if (e instanceof RunFolderError) throw new UsageError(e.message);
      throw e;
    }
    const plots: string[] = [];
    if (values.plots) {
      const { writeRunPlots } = await import('../../report/plots.ts');
      for (const d of result.runs) plots.push(...(await writeRunPlots(d)));
    }
    if (values.json) {
      io.stdout(JSON.stringify({ out: result.out, runs: result.runs, charts: result.charts, plots }) + '\n');
    } else {
      const extra = values.plots ? `; ${plots.length} plots written into the run folders` : '';
      io.stdout(`${result.out}: ${result.runs.length} run(s), ${result.charts.length} charts${extra}\n`);
    }
    return 0;
  },
};
export default report;
