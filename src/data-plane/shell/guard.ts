/**
 * @module data-plane/shell/guard
 * Wraps callbacks the event loop calls (timers, stream and socket events) so an exception
 * never ends the process silently: it is logged as `dp.<what>_failed` naming the event. Only a
 * broken invariant of our own (`AssertionError`) is rethrown: that is a bug, and the process
 * must stop rather than keep running on corrupt state.
 */
import { AssertionError } from '../../shared/assert.js';
import type { Logger } from '../../shared/logger.js';

export type GuardKind = 'timer' | 'callback';

export function runGuarded(log: Logger, kind: GuardKind, event: string, fn: () => void): void {
  try {
    fn();
  } catch (err) {
    const fields = kind === 'timer' ? { timer: event } : { event };
    log.error(`dp.${kind}_failed`, { ...fields, error: err instanceof Error ? err.message : String(err), stack: err instanceof Error ? err.stack : undefined });
    if (err instanceof AssertionError) throw err;
  }
}

/** `fn` wrapped for use as a listener. */
export function guarded<A extends unknown[]>(log: Logger, kind: GuardKind, event: string, fn: (...args: A) => void): (...args: A) => void {
  return (...args: A) => runGuarded(log, kind, event, () => fn(...args));
}
