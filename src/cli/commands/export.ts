/**
 * `moeclip export RUN_DIR --out DIR [--copy-backbone] [--overwrite] [--json]` — the trained learner of a finished
 * run (its `final/`) as a folder of its own (src/learner/export.ts, docs/learner.md).
 */
import { asUsageError, parseCliWithPositionals } from '../args.ts';
import type { Command } from '../command.ts';
import { UsageError } from '../command.ts';

const USAGE = `usage: moeclip export RUN_DIR --out DIR [--copy-backbone] [--overwrite] [--json]

Writes the trained learner of a finished run folder into DIR: the method state (safetensors + JSON: adapters,
routers, DDAS, class means...), learner.json (method and options, class names, prompt templates, the final
candidate classes, the model reference) and the run's final predictions (predictions.csv). The folder is
written whole or not at all. Use it with \`moeclip predict --learner DIR\` or loadLearner(DIR).

  --out DIR          the learner folder to write (must not exist or be empty)
  --copy-backbone    copy the CLIP model folder into DIR/backbone/ (self-contained); default: keep a reference
                     (its path and the sha256 of its weights, checked when the learner is loaded)
  --overwrite        replace a non-empty DIR
  --json             print {"out", "method", "classes", "backbone", "model"} as JSON`;

const exportCmd: Command = {
  summary: 'Export the trained learner of a finished run (state, classes, prompts, model reference or copy)',
  usage: USAGE,
  async run(argv, io) {
    const { values, positionals } = parseCliWithPositionals(argv, {
      out: { type: 'string' },
      'copy-backbone': { type: 'boolean', default: false },
      overwrite: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
    });
    if (positionals.length !== 1) throw new UsageError(`expected exactly one RUN_DIR, got ${positionals.length}\n\n${USAGE}`);
    if (values.out === undefined) throw new UsageError(`--out DIR is required\n\n${USAGE}`);
    const { exportLearner } = await import('../../learner/export.ts');
    const out = values.out;
    const r = await asUsageError(() => exportLearner(positionals[0]!, out, { copyBackbone: values['copy-backbone'], overwrite: values.overwrite }));
    const model = r.info.model;
    if (values.json) {
      io.stdout(JSON.stringify({ out: r.dir, method: r.info.method.name, classes: r.info.candidates.length, backbone: r.backbone, model: model?.path ?? null }) + '\n');
    } else {
      const where = r.backbone ? `backbone copied to ${r.backbone}` : model ? `backbone by reference: ${model.path} (sha256 ${model.sha256.slice(0, 12)}…)` : 'no CLIP backbone';
      io.stdout(`${r.dir}: learner of method ${r.info.method.name}, ${r.info.candidates.length} classes; ${where}\n`);
    }
    return 0;
  },
};
export default exportCmd;
