/**
 * How much the DDAS error moves at each task boundary (src/eval/run-events.ts `ddasTraceReport`), from a
 * boundary-aware cm-moe run made with `--set method.traceDdas=true`. Prints one JSON line.
 *   npx tsx scripts/ddas-trace.ts RUN_DIR [k=3]
 */
import { ddasTraceReport } from '../src/eval/run-events.ts';
import { readRunEvents } from '../src/report/run-folder.ts';

const dir = process.argv[2];
if (!dir) throw new Error('usage: ddas-trace.ts RUN_DIR [k]');
const k = Number(process.argv[3] ?? 3);
const boundaries = ddasTraceReport(readRunEvents(dir), k);
if (boundaries.every((b) => b.ratio === null)) throw new Error(`${dir}: no ddasErr:<subnet> in the batch events (run it with --set method.traceDdas=true)`);
process.stdout.write(`${JSON.stringify({ run: dir, k, boundaries })}\n`);
