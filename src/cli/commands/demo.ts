import type { Command } from '../command.ts';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const MODEL_DIR = fileURLToPath(new URL('../../../models/moeclip-tiny/', import.meta.url));

const demo: Command = {
  summary: 'Run the online continual-learning demo on the embedded model and data',
  usage: 'usage: moeclip demo\n\nRuns an online continual-learning stream on data shipped with the package, using models/moeclip-tiny.',
  async run(_argv, io) {
    if (!existsSync(MODEL_DIR + 'model.safetensors')) {
      io.stdout('no embedded model yet: models/moeclip-tiny/ is produced by `moeclip pretrain` (issue C).\n');
      return 0;
    }
    io.stdout('the embedded model exists but the demo is not wired yet.\n');
    return 0;
  },
};
export default demo;
