/**
 * @module cli/context
 * What a CLI command needs from its surroundings (output streams, environment, working
 * directory) and how it reports failure. Commands read these through `cliContext(command)`
 * rather than `process`, so tests run them in-process with captured output, and so the CLI
 * touches process globals in one place only: `processCliIo()`.
 *
 * Exit codes: 0 success, 1 the cluster said no or could not be reached, 2 the command line is
 * wrong. Commands signal 1 and 2 by throwing CliError; `runCli` turns it into one
 * "error: ..." line and the code.
 */
import type { Command } from 'commander';

export const ExitCode = { ok: 0, failed: 1, usage: 2 } as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

export interface CliStream {
  write(chunk: string | Uint8Array): unknown;
  isTTY?: boolean;
}

export interface CliIo {
  stdout: CliStream;
  stderr: CliStream;
  /** Defaults to the process environment. */
  env?: Readonly<Record<string, string | undefined>>;
  /** Absolute; defaults to the process's working directory. */
  cwd?: string;
}

export interface CliContext {
  stdout: CliStream;
  stderr: CliStream;
  env: Readonly<Record<string, string | undefined>>;
  cwd: string;
}

/** A failure the user should see as one line; never a bug (bugs throw other errors). */
export class CliError extends Error {
  override name = 'CliError';
  constructor(
    message: string,
    readonly exitCode: ExitCode = ExitCode.failed,
  ) {
    super(message);
  }
}

export function usageError(message: string): CliError {
  return new CliError(message, ExitCode.usage);
}

const contexts = new WeakMap<Command, CliContext>();

/** Attaches `io` to a program; every subcommand finds it through its root. */
export function bindCliContext(program: Command, io: CliIo): CliContext {
  const defaults = processCliIo();
  const context: CliContext = {
    stdout: io.stdout,
    stderr: io.stderr,
    env: io.env ?? defaults.env,
    cwd: io.cwd ?? defaults.cwd,
  };
  contexts.set(program, context);
  return context;
}

/** The context of `command`'s program, or the real process when none was bound. */
export function cliContext(command: Command): CliContext {
  let root = command;
  while (root.parent !== null) root = root.parent;
  const bound = contexts.get(root);
  if (bound !== undefined) return bound;
  const io = processCliIo();
  return { stdout: io.stdout, stderr: io.stderr, env: io.env, cwd: io.cwd };
}

/** The real process's streams, environment and directory: the CLI's only use of them. */
export function processCliIo(): Required<CliIo> {
  return { stdout: process.stdout, stderr: process.stderr, env: process.env, cwd: process.cwd() };
}
