/**
 * `moeclip stream CONFIG [--set key.path=value]... [--describe] [--json]` — builds the training stream a config
 * describes and prints its per-task class histogram.
 *
 * JSON shape: `{"tasks":[{"classes":{"<label>":count,...},"n":N},...],"total":N}` (labels are global labels).
 */
import { loadRunConfigForCli, parseConfigCli } from '../args.ts';
import type { Command } from '../command.ts';
import { buildStream } from '../../data/streams.ts';
import { describeStream } from '../../report/describe-stream.ts';

const USAGE = `usage: moeclip stream CONFIG [--set key.path=value]... [--describe] [--json]

Builds the training stream of CONFIG and describes it: per task, the number of training samples of each
(global) label. --json prints {"tasks":[{"classes":{"<label>":count,...},"n":N},...],"total":N}.
--describe is the default (and only) action.`;

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
    if (values.json) {
      io.stdout(JSON.stringify(d) + '\n');
      return 0;
    }
    io.stdout(`${s.kind} stream: ${s.tasks.length} tasks, ${d.total} training samples, ${s.classNames.length} classes\n`);
    d.tasks.forEach((t, i) => {
      const task = s.tasks[i]!;
      const hist = Object.entries(t.classes)
        .map(([c, n]) => `${s.classNames[Number(c)] ?? c}(${c}):${n}`)
        .join(' ');
      io.stdout(`task ${i} ${task.name}: n=${t.n} test=${task.test.length}  ${hist}\n`);
    });
    return 0;
  },
};
export default stream;
