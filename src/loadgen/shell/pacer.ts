/**
 * @module loadgen/shell/pacer
 * Open-loop sending: walks a precomputed, sorted schedule with ONE timer. Each tick fires
 * every send that is due (catching up after a late wake-up without shifting later sends:
 * the schedule is absolute), then re-arms the timer for the next due send. There is never one
 * timer per request. Each send's lateness (actual − scheduled) goes into a histogram, which is
 * how `bench generator` shows the generator keeps up.
 */
import { dueEnd } from '../core/schedule.js';
import { newHistogram, recordMs, type Histogram } from '../core/stats.js';

const pacerDefaults = Object.freeze({
  /** Sends fired per tick before yielding to I/O; a catch-up burst cannot starve responses. */
  sendsPerTickMax: 1000,
});

export interface OpenLoopResult {
  /** performance.now() at schedule offset 0. */
  startMs: number;
  /** performance.now() after the last send was fired. */
  lastSendMs: number;
  lateness: Histogram;
}

/**
 * Fires `fire(i, nowMs)` for every i at `startMs + scheduleMs[i]`, in order; resolves after
 * the last send. `nowMs` is the clock reading taken for that send (reuse it as the request
 * start time).
 */
export function runOpenLoop(
  scheduleMs: Float64Array,
  fire: (index: number, nowMs: number) => void,
  sendsPerTickMax: number = pacerDefaults.sendsPerTickMax,
): Promise<OpenLoopResult> {
  const lateness = newHistogram();
  const startMs = performance.now();
  let cursor = 0;
  return new Promise((resolve) => {
    const tick = (): void => {
      const end = dueEnd(scheduleMs, cursor, performance.now() - startMs, sendsPerTickMax);
      for (; cursor < end; cursor++) {
        const nowMs = performance.now();
        recordMs(lateness, nowMs - startMs - scheduleMs[cursor]);
        fire(cursor, nowMs);
      }
      if (cursor >= scheduleMs.length) {
        resolve({ startMs, lastSendMs: performance.now(), lateness });
        return;
      }
      const waitMs = scheduleMs[cursor] - (performance.now() - startMs);
      // Node timers have 1 ms resolution; a send due sooner goes on the next loop turn.
      if (waitMs <= 0) setImmediate(tick);
      else setTimeout(tick, waitMs);
    };
    tick();
  });
}
