/**
 * `moeclip predict --learner DIR --image PATH... [--class NAME]... [--json] [--threads N]` — classifies images with
 * an exported learner (or a run's `final/`): label, probability and the subnet (router) or zero-shot CLIP that
 * answered (src/learner/load.ts).
 */
import { asUsageError, parseCli, parseThreads } from '../args.ts';
import type { CliIO, Command } from '../command.ts';
import { UsageError } from '../command.ts';
import type { LearnerPrediction } from '../../learner/load.ts';

const USAGE = `usage: moeclip predict --learner DIR --image PATH... [--class NAME]... [--json] [--threads N]

Classifies images with a learner folder (\`moeclip export\`, or a run folder's final/) among the classes the run
had seen by its end, as the run's final evaluation did. Prints per image the label, its probability, and which
subnet (router) answered — or zero-shot CLIP, when DDAS found no subnet for the image.

  --learner DIR   the learner folder
  --image PATH    a PNG or JPEG file (repeatable)
  --class NAME    restrict the candidates to these class names (repeatable; default: every class the run saw)
  --json          print {"learner", "results": [{"image", "label", "name", "prob", "route"}]}; route is a router
                  index, "zero-shot" or null (a method without routing)
  --threads N     ONNX Runtime threads (default: all cores)`;

function routeText(r: LearnerPrediction['route']): string {
  return r === null ? '-' : r === 'zero-shot' ? 'zero-shot' : `subnet ${r}`;
}

function printTable(io: CliIO, paths: readonly string[], results: readonly LearnerPrediction[]): void {
  const rows = results.map((r, i) => [paths[i]!, r.label < 0 ? '(none)' : `${r.label} ${r.name}`, r.prob === null ? '-' : r.prob.toFixed(4), routeText(r.route)]);
  const head = ['image', 'label', 'prob', 'answered by'];
  const w = head.map((h, k) => Math.max(h.length, ...rows.map((r) => r[k]!.length)));
  for (const r of [head, ...rows]) io.stdout(r.map((c, k) => (k === r.length - 1 ? c : c.padEnd(w[k]!))).join('  ') + '\n');
}

const predict: Command = {
  summary: 'Classify images with an exported learner (label, probability, subnet or zero-shot)',
  usage: USAGE,
  async run(argv, io) {
    const values = parseCli(
      argv,
      {
        learner: { type: 'string' },
        image: { type: 'string', multiple: true, default: [] },
        class: { type: 'string', multiple: true, default: [] },
        json: { type: 'boolean', default: false },
        threads: { type: 'string' },
      },
      USAGE,
    );
    if (values.learner === undefined) throw new UsageError(`--learner DIR is required\n\n${USAGE}`);
    if (values.image.length === 0) throw new UsageError(`give at least one --image\n\n${USAGE}`);
    const threads = parseThreads(values.threads);
    const { readLearnerInfo } = await import('../../learner/format.ts');
    const dir = values.learner;
    const info = await asUsageError(() => readLearnerInfo(dir));
    let candidates: number[] | undefined;
    if (values.class.length > 0) {
      candidates = values.class.map((n) => {
        const l = info.classNames.indexOf(n);
        if (l < 0) throw new UsageError(`--class ${JSON.stringify(n)}: not a class of the learner (${info.classNames.length} classes, e.g. ${info.classNames.slice(0, 5).map((c) => JSON.stringify(c)).join(', ')})`);
        return l;
      });
    }
    const { readImage } = await import('../../io/image.ts');
    const images = await Promise.all(values.image.map((p) => readImage(p)));
    const { loadLearner } = await import('../../learner/load.ts');
    const learner = await asUsageError(() => loadLearner(dir, threads !== undefined ? { threads } : {}));
    let results: LearnerPrediction[];
    try {
      results = await asUsageError(() => learner.predict(images, candidates ? { candidates } : {}), { when: (e) => /^candidates: /.test((e as Error).message), prefix: '--class: ' });
    } finally {
      await learner.dispose();
    }
    if (values.json) {
      const out = results.map((r, i) => ({ image: values.image[i]!, label: r.label, name: r.name, prob: r.prob, route: r.route }));
      io.stdout(JSON.stringify({ learner: learner.dir, results: out }) + '\n');
    } else {
      printTable(io, values.image, results);
    }
    return 0;
  },
};
export default predict;
