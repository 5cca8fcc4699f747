/**
 * `moeclip stream CONFIG [--set key.path=value]... [--describe] [--json]` — builds the training stream a config
 * describes and prints its per-task class histogram (and, for Si-Blurry, the disjoint, blurry and dropped
 * classes).
 *
 * JSON shape: `{"kind":K,"tasks":[{"task":0,"classes":{"<label>":count,...},"n":N},...],"total":N}`, plus for
 * Si-Blurry streams `"disjointClasses":[[label,...],...]`, `"blurryClasses":[[label,...],...]` (global labels per
 * task) and `"droppedClasses":[{"datasetLabel":c,"name":"..."},...]`. Task indices are 0-based, as in run
 * folders; the text form numbers tasks "task 1/T".
 */
import { loadRunConfigForCli, parseConfigCli } from '../args.ts';
import type { Command } from '../command.ts';
import { taskLabel } from '../format.ts';
import { buildStream } from '../../data/streams.ts';
import { describeStream } from '../../report/describe-stream.ts';

const USAGE = `usage: moeclip stream CONFIG [--set key.path=value]... [--describe] [--json]

Builds the training stream of CONFIG and describes it: per task, the number of training samples of each
(global) label; for Si-Blurry streams also each task's disjoint and blurry classes and the classes the
stream drops (those beyond the multiples of the task count).
--json prints {"kind":K,"tasks":[{"task":0,"classes":{"<label>":count,...},"n":N},...],"total":N}, plus
"disjointClasses" and "blurryClasses" (global labels per task) and "droppedClasses" ([{"datasetLabel":c,
"name":"..."}]) for Si-Blurry. Task indices in JSON are 0-based (as in run folders); the text form says
"task 1/T". --describe is the default (and only) action.`;

/** The Si-Blurry facts of a stream description, when present. */
function siBlurryFacts(d: Record<string, unknown>): { disjoint: number[][]; blurry: number[][]; dropped: Array<{ datasetLabel: number; name: string }> } | null {
  const { disjointClasses, blurryClasses, droppedClasses, droppedClassNames } = d as {
    disjointClasses?: number[][];
    blurryClasses?: number[][];
    droppedClasses?: number[];
    droppedClassNames?: string[];
  };
  if (!Array.isArray(disjointClasses) || !Array.isArray(blurryClasses) || !Array.isArray(droppedClasses)) return null;
  return {
    disjoint: disjointClasses,
    blurry: blurryClasses,
    dropped: droppedClasses.map((c, i) => ({ datasetLabel: c, name: droppedClassNames?.[i] ?? String(c) })),
  };
}

const stream: Command = {
  summary: "Describe a config's training stream (samples per task and class)",
  usage: USAGE,
  async run(argv, io) {
    const { values, config } = parseConfigCli(
      argv,
      {
        set: { type: 'string', multiple: true, default: [] },
        describe: { type: 'boolean', default: true },
        json: { type: 'boolean', default: false },
      },
      USAGE,
    );
    const loaded = await loadRunConfigForCli(config, values.set);
    const s = await buildStream(loaded.config.stream);
    const d = describeStream(s);
    const blurry = s.kind === 'si-blurry' ? siBlurryFacts(s.describe()) : null;
    if (values.json) {
      const out = {
        kind: s.kind,
        tasks: d.tasks.map((t, i) => ({ task: i, ...t })),
        total: d.total,
        ...(blurry ? { disjointClasses: blurry.disjoint, blurryClasses: blurry.blurry, droppedClasses: blurry.dropped } : {}),
      };
      io.stdout(JSON.stringify(out) + '\n');
      return 0;
    }
    const T = s.tasks.length;
    io.stdout(`${s.kind} stream: ${T} tasks, ${d.total} training samples, ${s.classNames.length} classes\n`);
    const named = (c: number) => `${s.classNames[c] ?? c}(${c})`;
    d.tasks.forEach((t, i) => {
      const task = s.tasks[i]!;
      const hist = Object.entries(t.classes)
        .map(([c, n]) => `${named(Number(c))}:${n}`)
        .join(' ');
      io.stdout(`${taskLabel(i, T)} ${task.name}: n=${t.n} test=${task.test.length}  ${hist}\n`);
      if (blurry) {
        const list = (xs: number[] | undefined) => (xs && xs.length > 0 ? xs.map(named).join(' ') : 'none');
        io.stdout(`  disjoint: ${list(blurry.disjoint[i])}; blurry: ${list(blurry.blurry[i])}\n`);
      }
    });
    if (blurry) {
      const dropped = blurry.dropped.map((c) => `${c.name}(dataset label ${c.datasetLabel})`).join(' ');
      io.stdout(`dropped classes: ${dropped || 'none'}\n`);
    }
    return 0;
  },
};
export default stream;
