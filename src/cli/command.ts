/** The shape every CLI sub-command module exports as its default. */
export interface CliIO {
  /** Machine-readable results (JSON, tables). */
  stdout: (text: string) => void;
  /** Human-readable progress and logs. */
  stderr: (text: string) => void;
  /** Whether stderr is an interactive terminal (progress bars) or not (plain lines). */
  isTTY: boolean;
  /** Environment variables (the CLI is the only place that reads them). */
  env: Record<string, string | undefined>;
}

export interface Command {
  /** One line for `moeclip --help`. */
  summary: string;
  /** Full usage text for `moeclip CMD --help`. */
  usage: string;
  /** Runs the command with the arguments after its name; resolves to the process exit code. */
  run(argv: string[], io: CliIO): Promise<number>;
}

/** An error whose message is shown to the user as is (no stack), with exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}
