/**
 * Detection delay and false boundaries of a task-free run (cm-moe with `run.taskBoundaries: false`) and the
 * memory over the stream, from its run folder's events.jsonl (src/eval/run-events.ts). Prints one JSON line.
 *   npx tsx scripts/boundary-report.ts RUN_DIR
 */
import { join } from 'node:path';
import { boundaryReport, memoryReport } from '../src/eval/run-events.ts';
import { readRunEvents } from '../src/report/run-folder.ts';

const dir = process.argv[2];
if (!dir) throw new Error('usage: boundary-report.ts RUN_DIR');
const events = readRunEvents(join(dir));
process.stdout.write(`${JSON.stringify({ ...boundaryReport(events), memory: memoryReport(events) })}\n`);
