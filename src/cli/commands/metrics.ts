/**
 * `moeclip metrics --matrix FILE.csv [--json]` — MTIL/classic metrics of an accuracy matrix (T lines × T cells,
 * empty cell = not evaluated), and `moeclip metrics --run DIR [--json]` — every metric recomputed from a run
 * folder's raw logs.
 */
import { readFileSync } from 'node:fs';
import { asUsageError, parseCli } from '../args.ts';
import type { Command } from '../command.ts';
import { UsageError } from '../command.ts';
import { matrixMetrics } from '../../eval/metrics.ts';
import { parseMatrixCsv } from '../../report/csv.ts';
import { recomputeMetrics } from '../../report/run-folder.ts';
import { assertFinishedRun } from '../../run/checkpoint.ts';
import { formatValue } from '../../report/table.ts';

const USAGE = `usage: moeclip metrics --matrix FILE.csv [--json]
       moeclip metrics --run RUN_DIR [--json]

--matrix: reads an accuracy matrix A[t][j] (accuracy on task j after training through task t): T lines of T
comma-separated numbers, an empty cell for an entry that was not evaluated (the acc_matrix.csv of a run folder).
Prints MTIL transfer/average/last, BWT and Chaudhry forgetting (null when not computable from the matrix).
--run: recomputes every metric of a run folder from its CSV logs.
Values are in the matrix's own scale (fractions for run folders); --json prints one JSON object.`;

const metrics: Command = {
  summary: 'Compute continual-learning metrics from an accuracy-matrix CSV or a run folder',
  usage: USAGE,
  async run(argv, io) {
    const values = parseCli(argv, { matrix: { type: 'string' }, run: { type: 'string' }, json: { type: 'boolean', default: false } }, USAGE);
    if ((values.matrix === undefined) === (values.run === undefined)) {
      throw new UsageError(`give exactly one of --matrix FILE.csv or --run DIR\n\n${USAGE}`);
    }
    let result: Record<string, number | null>;
    if (values.matrix !== undefined) {
      const file = values.matrix;
      const text = await asUsageError(() => readFileSync(file, 'utf8'), { prefix: `${file}: cannot read: ` });
      const A = await asUsageError(() => parseMatrixCsv(text, file));
      result = { ...matrixMetrics(A) };
    } else {
      const run = values.run!;
      await asUsageError(() => assertFinishedRun(run));
      result = { ...(await asUsageError(() => recomputeMetrics(run), { prefix: `${run}: ` })) };
    }
    if (values.json) {
      io.stdout(JSON.stringify(result) + '\n');
    } else {
      const w = Math.max(...Object.keys(result).map((k) => k.length));
      for (const [k, v] of Object.entries(result)) io.stdout(`${k.padEnd(w)}  ${formatValue(v, 'num')}\n`);
    }
    return 0;
  },
};
export default metrics;
