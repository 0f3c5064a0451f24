/**
 * @module cli/supervisor-backoff
 * When `dirigent up` restarts a component that died: exponential backoff between named bounds,
 * and a run that lasted long enough counts as healthy, so the next crash starts from the minimum
 * again. Pure: times come in as arguments.
 */

export const restartBackoffMsMin = 200;
export const restartBackoffMsMax = 10_000;
/** A component that ran this long before dying was healthy: its backoff starts over. */
export const healthyRunMs = 30_000;

export interface RestartHistory {
  /** Restarts since the last healthy run. */
  restarts: number;
  startedAtMs: number;
}

export interface RestartDecision {
  restarts: number;
  backoffMs: number;
}

export function nextRestart(h: RestartHistory, exitedAtMs: number): RestartDecision {
  const streak = exitedAtMs - h.startedAtMs >= healthyRunMs ? 0 : h.restarts;
  const backoffMs = Math.min(restartBackoffMsMax, restartBackoffMsMin * 2 ** Math.min(streak, 30));
  return { restarts: streak + 1, backoffMs };
}
