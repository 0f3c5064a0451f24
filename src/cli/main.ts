/**
 * @module cli/main
 * The `dirigent` entry point: user commands (fn, cluster), component commands (control-plane,
 * data-plane, worker), the local cluster (up), and the load tools (bench, loadgen).
 */
import { registerBenchCommands, registerLoadgenCommands } from '../loadgen/commands.js';
import { registerComponentCommands } from './components.js';
import { runCli } from './program.js';
import { registerUpCommand } from './up.js';

// `dirigent ... | head` closes our stdout early: that is the reader's choice, not an error.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0);
    throw err;
  });
}

const code = await runCli(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr }, [
  registerUpCommand,
  registerComponentCommands,
  registerBenchCommands,
  registerLoadgenCommands,
]);
// Long-running commands (up, components) keep the event loop alive and exit on a signal.
if (code !== 0) process.exit(code);
