/**
 * @module shared/parent-watch
 * A process started by `dirigent up` stops when `up` is gone (its parent PID changes), so a
 * SIGKILLed `up` leaves nothing running.
 */

/** Set by `dirigent up` on its children: the PID whose exit means "stop now". */
export const parentPidEnv = 'DIRIGENT_PARENT_PID';
const parentCheckPeriodMs = 500;

export function watchParent(stop: () => void): void {
  const parent = Number(process.env[parentPidEnv] ?? 0);
  if (!parent) return;
  const timer = setInterval(() => {
    if (process.ppid !== parent) {
      clearInterval(timer);
      stop();
    }
  }, parentCheckPeriodMs);
  timer.unref();
}
