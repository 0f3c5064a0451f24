/**
 * @module loadgen/testing/run-cli
 * Runs `dirigent bench|loadgen ...` in-process with captured output, for tests.
 */
import { Command } from 'commander';
import { registerBenchCommands, registerLoadgenCommands } from '../commands.js';
import type { CommandIo } from '../shell/output.js';

export interface CliRun {
  out: string[];
  err: string[];
  exitCode: number;
}

export async function runCli(args: string[]): Promise<CliRun> {
  const out: string[] = [];
  const err: string[] = [];
  const io: CommandIo = {
    out: (t) => out.push(t),
    err: (t) => err.push(t),
    progressStream: { isTTY: false } as NodeJS.WriteStream,
  };
  const program = new Command('dirigent').exitOverride();
  registerBenchCommands(program, io);
  registerLoadgenCommands(program, io);
  const previous = process.exitCode;
  process.exitCode = 0;
  try {
    await program.parseAsync(['node', 'dirigent', ...args]);
    return { out, err, exitCode: Number(process.exitCode ?? 0) };
  } finally {
    process.exitCode = previous;
  }
}
