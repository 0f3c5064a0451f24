/**
 * @module shared/guard
 * Wraps callbacks the event loop calls (timers, stream and socket events) so an exception
 * never ends the process silently: it is logged as `<component>.<kind>_failed` naming the
 * event. Only a broken invariant of our own (`AssertionError`) is rethrown: that is a bug, and
 * the process must stop rather than keep running on corrupt state.
 */
import { AssertionError } from './assert.js';
import type { Logger } from './logger.js';

export type GuardKind = 'timer' | 'callback';

/** The component whose log events name the failure: `dp.timer_failed`, `worker.callback_failed`. */
export type GuardComponent = 'dp' | 'worker' | 'cp';

export function runGuardedAs(component: GuardComponent, log: Logger, kind: GuardKind, event: string, fn: () => void): void {
  try {
    fn();
  } catch (err) {
    const fields = kind === 'timer' ? { timer: event } : { event };
    log.error(`${component}.${kind}_failed`, { ...fields, error: err instanceof Error ? err.message : String(err), stack: err instanceof Error ? err.stack : undefined });
    if (err instanceof AssertionError) throw err;
  }
}

/** The data plane's guard: failures are logged as `dp.<kind>_failed`. */
export function runGuarded(log: Logger, kind: GuardKind, event: string, fn: () => void): void {
  runGuardedAs('dp', log, kind, event, fn);
}

/** `fn` wrapped for use as a listener, guarded as the data plane's. */
export function guarded<A extends unknown[]>(log: Logger, kind: GuardKind, event: string, fn: (...args: A) => void): (...args: A) => void {
  return (...args: A) => runGuarded(log, kind, event, () => fn(...args));
}
