#!/usr/bin/env node
import type { CliIO, Command } from './command.ts';
import { UsageError } from './command.ts';

/**
 * The sub-command table. Modules load lazily so that `moeclip metrics` does not pay for ONNX Runtime.
 * Each module lives in `src/cli/commands/<name>.ts` and exports a default {@link Command}.
 */
const COMMANDS: Record<string, () => Promise<{ default: Command }>> = {
  demo: () => import('./commands/demo.ts'),
  run: () => import('./commands/run.ts'),
  stream: () => import('./commands/stream.ts'),
  metrics: () => import('./commands/metrics.ts'),
  report: () => import('./commands/report.ts'),
  encode: () => import('./commands/encode.ts'),
  zeroshot: () => import('./commands/zeroshot.ts'),
  pretrain: () => import('./commands/pretrain.ts'),
  methods: () => import('./commands/methods.ts'),
  presets: () => import('./commands/presets.ts'),
  export: () => import('./commands/export.ts'),
  predict: () => import('./commands/predict.ts'),
};

export async function main(argv: string[], io: CliIO): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    const lines = ['usage: moeclip <command> [options]', '', 'commands:'];
    for (const [cmd, load] of Object.entries(COMMANDS)) {
      try {
        lines.push(`  ${cmd.padEnd(10)} ${(await load()).default.summary}`);
      } catch {
        // a command whose module is not present in this build is not listed
      }
    }
    lines.push('', 'Run `moeclip <command> --help` for its options.');
    io.stdout(lines.join('\n') + '\n');
    return name === undefined ? 2 : 0;
  }
  const load = COMMANDS[name];
  if (!load) {
    io.stderr(`moeclip: unknown command '${name}'. Commands: ${Object.keys(COMMANDS).join(', ')}\n`);
    return 2;
  }
  const cmd = (await load()).default;
  if (rest.includes('--help') || rest.includes('-h')) {
    io.stdout(cmd.usage.endsWith('\n') ? cmd.usage : cmd.usage + '\n');
    return 0;
  }
  try {
    return await cmd.run(rest, io);
  } catch (e) {
    if (e instanceof UsageError) {
      io.stderr(`moeclip ${name}: ${e.message}\n`);
      return 2;
    }
    const err = e as Error;
    io.stderr(`moeclip ${name}: ${err.message ?? String(e)}\n`);
    if (io.env['MOECLIP_DEBUG']) io.stderr(`${err.stack ?? ''}\n`);
    return 1;
  }
}

const isEntry = process.argv[1] !== undefined && import.meta.url.endsWith(process.argv[1].replace(/\\/g, '/'));
if (isEntry || process.env['MOECLIP_CLI_ENTRY'] === '1') {
  const io: CliIO = {
    stdout: (t) => process.stdout.write(t),
    stderr: (t) => process.stderr.write(t),
    isTTY: Boolean(process.stderr.isTTY),
    env: process.env,
  };
  main(process.argv.slice(2), io).then(
    (code) => {
      process.exitCode = code;
    },
    (e: unknown) => {
      process.stderr.write(`moeclip: ${(e as Error).stack ?? String(e)}\n`);
      process.exitCode = 1;
    },
  );
}
