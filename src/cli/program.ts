/**
 * @module cli/program
 * Builds the `dirigent` commander program and runs it to an exit code, never calling
 * process.exit, so tests and src/cli/main.ts share one entry:
 *
 *   const code = await runCli(process.argv.slice(2), processCliIo(), [registerUp, ...]);
 *   process.exitCode = code;
 *
 * Exit codes (cli/context): 0 ok, 1 the cluster said no or is unreachable, 2 bad command line.
 * Commander's own usage errors are re-coded from its 1 to 2; `--help` is 0.
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { bindCliContext, CliError, ExitCode, type CliIo } from './context.js';
import { registerFnCommands } from './fn.js';
import { registerClusterCommands } from './cluster.js';
import { registerFrontendCommand } from '../frontend/command.js';
import { registerStoreCommands } from './store.js';
import { registerTokenCommands } from './tokens.js';
import { registerCertsCommand } from './certs.js';
import { registerInvocationCommands } from './invocations.js';

export { CliError, ExitCode, processCliIo, type CliIo } from './context.js';

/** Adds commands to the program (e.g. `up`, `worker`); called after the built-in ones. */
export type CommandInstaller = (program: Command) => void;

/** Commander codes that mean "printed what was asked", not a usage error. */
const successCodes: ReadonlySet<string> = new Set([
  'commander.helpDisplayed', 'commander.version',
]);

/** From package.json (dist/cli/ and src/cli/ both sit two levels below it). */
function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as
    { version?: unknown };
  return typeof pkg.version === 'string' ? pkg.version : 'unknown';
}

function buildProgram(extraCommands: CommandInstaller[] = []): Command {
  const program = new Command('dirigent')
    .version(packageVersion(), '-V, --version', 'print the version')
    .description('Dirigent in TypeScript: a lightweight serverless (FaaS) cluster manager')
    .showHelpAfterError('(add --help for usage)')
    .addHelpText('after', `
Examples:
  $ dirigent up                                   # a whole local cluster on this machine
  $ dirigent fn deploy hello --command "node examples/hello/server.js"
  $ dirigent fn invoke hello --data 'world'
  $ dirigent fn list
  $ dirigent cluster status

Environment: DIRIGENT_API (control-plane URL), DIRIGENT_PROXY (data-plane URL).`);
  registerFnCommands(program);
  registerClusterCommands(program);
  registerFrontendCommand(program);
  registerStoreCommands(program);
  registerTokenCommands(program);
  registerCertsCommand(program);
  registerInvocationCommands(program);
  for (const install of extraCommands) install(program);
  return program;
}

export async function runCli(
  argv: string[],
  io: CliIo,
  extraCommands: CommandInstaller[] = [],
): Promise<number> {
  const program = buildProgram(extraCommands);
  bindCliContext(program, io);
  configureTree(program, io);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return ExitCode.ok;
  } catch (err) {
    if (err instanceof CliError) {
      io.stderr.write(`error: ${err.message}\n`);
      return err.exitCode;
    }
    if (err instanceof CommanderError) {
      return successCodes.has(err.code) ? ExitCode.ok : ExitCode.usage;
    }
    throw err; // a bug: let it crash with its stack
  }
}

/**
 * Output and exit behaviour are set on every command after all are added, because commander
 * copies settings only into subcommands created after the setting, and installers may have
 * built theirs with `new Command()`.
 */
function configureTree(command: Command, io: CliIo): void {
  command
    .exitOverride()
    .configureOutput({
      writeOut: (text) => io.stdout.write(text),
      writeErr: (text) => io.stderr.write(text),
    });
  for (const sub of command.commands) configureTree(sub, io);
}
