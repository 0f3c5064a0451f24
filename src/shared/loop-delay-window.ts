/**
 * @module shared/loop-delay-window
 * The pure part of event-loop delay monitoring (issue #12): turns the histogram readings of one
 * fixed window into that window's delay (max and p99, in ms) and counts windows and stalls.
 * The shell (shared/loop-delay) owns the perf_hooks histogram and the window timer.
 */

/**
 * Sampling period of the perf_hooks histogram. Its timer records the whole interval between
 * two ticks, so a stall of d ms reads as a delay in [d - resolution, d]: at 2 ms every stall of
 * 7 ms or more crosses the 5 ms threshold, where 5 ms could read a 9 ms stall as 4 ms. Each
 * tick costs a wake-up (measured ~46 µs of CPU on the 2-core CI VM, so ~24 ms of CPU per
 * second at idle); 1 ms would double that for 1 ms of accuracy.
 */
export const loopDelayResolutionMs = 2;
/** Length of one window: gauges show the last complete one; benches poll at this grain. */
export const loopDelayWindowMs = 1_000;
/** A window whose max delay is above this stalled the loop (issue #12: "no stall over 5 ms"). */
export const loopStallThresholdMs = 5;

/** What the histogram says about one window; values in ns as perf_hooks gives them. */
export interface LoopDelayReading {
  /** Ticks recorded; 0 when the timer never fired in the window. */
  count: number;
  maxNs: number;
  p99Ns: number;
}

export interface LoopDelayWindow {
  maxMs: number;
  p99Ms: number;
}

export interface LoopDelayState {
  /** The last complete window; null before the first one ends. */
  last: LoopDelayWindow | null;
  /** Complete windows so far. */
  windows: number;
  /** Complete windows whose max delay passed the stall threshold. */
  stalls: number;
}

export const initialLoopDelayState: LoopDelayState = Object.freeze({ last: null, windows: 0, stalls: 0 });

/**
 * Delay of one window in ms: the recorded tick interval minus the resolution, never below 0.
 * Example: with resolution 2 ms, a max interval of 9_500_000 ns is a 7.5 ms delay.
 */
export function windowOf(r: LoopDelayReading, resolutionMs = loopDelayResolutionMs): LoopDelayWindow {
  if (r.count === 0) return { maxMs: 0, p99Ms: 0 };
  const delayMs = (ns: number): number => Math.max(0, ns / 1e6 - resolutionMs);
  return { maxMs: delayMs(r.maxNs), p99Ms: delayMs(r.p99Ns) };
}

/** The state after one more window ended with reading `r`. */
export function closeWindow(
  s: LoopDelayState,
  r: LoopDelayReading,
  resolutionMs = loopDelayResolutionMs,
  stallThresholdMs = loopStallThresholdMs,
): LoopDelayState {
  const last = windowOf(r, resolutionMs);
  return { last, windows: s.windows + 1, stalls: s.stalls + (last.maxMs > stallThresholdMs ? 1 : 0) };
}
