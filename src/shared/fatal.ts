/**
 * @module shared/fatal
 * The last line of defence of a component process: an exception that escapes every guard (or a
 * rejected promise nobody awaited) is logged as one structured line naming it, then the process
 * exits with `fatalExitCode` for its supervisor to restart it. Never a silent death.
 */
import type { Logger } from './logger.js';

/** EX_SOFTWARE: an internal error. */
export const fatalExitCode = 70;

export function exitLoudlyOnUncaught(log: Logger): void {
  process.on('uncaughtException', (err, origin) => {
    log.error('process.uncaught_exception', { origin, error: String(err), stack: err.stack ?? '' });
    process.exit(fatalExitCode);
  });
  process.on('unhandledRejection', (reason) => {
    const stack = reason instanceof Error ? reason.stack ?? '' : '';
    log.error('process.unhandled_rejection', { error: String(reason), stack });
    process.exit(fatalExitCode);
  });
}
