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

/**
 * The adaptive monitor. The fine timer wakes a sleeping process every loopDelayResolutionMs
 * (about 470 wakeups a second here, with libuv's millisecond clock; BENCHMARKS, "What the
 * event-loop monitor costs"). A loop that is idle cannot stall, so while it stays idle a coarse
 * timer of the same kind measures instead, at coarseResolutionMs; a check every checkMs reads
 * the loop's busy time and moves between the two. Both timers are perf_hooks' native ones: a
 * JavaScript timer as the coarse one cost more per wakeup than it saved (measured, see
 * BENCHMARKS). The price: while coarse, a stall reads short by up to coarseResolutionMs, and a
 * stall under that at the start of a busy spell may not be seen at all.
 */
export interface LoopMonitorLimits {
  /** How often the busy share is checked, in either mode. */
  checkMs: number;
  /** Resolution of the coarse timer that measures while the loop is idle. */
  coarseResolutionMs: number;
  /** A check whose loop was busy for at most this share of it counts as idle. */
  idleBusyShareMax: number;
  /** Idle checks in a row before the monitor goes coarse; one busy check turns it fine. */
  idleChecksToCoarse: number;
}

export const loopMonitorLimits: LoopMonitorLimits = Object.freeze({
  checkMs: 100,
  coarseResolutionMs: 10,
  idleBusyShareMax: 0.02,
  idleChecksToCoarse: 3,
});

export interface LoopMonitorMode {
  fine: boolean;
  /** Idle checks in a row while fine. */
  idleChecks: number;
}

export const initialLoopMonitorMode: LoopMonitorMode = Object.freeze({ fine: true, idleChecks: 0 });

/**
 * The mode after one check that found the loop busy for `busyMs` of the `elapsedMs` since the
 * previous check. Fine goes coarse after idleChecksToCoarse idle checks in a row; coarse goes
 * fine at the first busy check (a stall is busy time, so the check after one is busy).
 */
export function nextLoopMonitorMode(m: LoopMonitorMode, busyMs: number, elapsedMs: number, limits: LoopMonitorLimits = loopMonitorLimits): LoopMonitorMode {
  const busy = busyMs > limits.idleBusyShareMax * elapsedMs;
  if (!m.fine) return busy ? { fine: true, idleChecks: 0 } : m;
  if (busy) return m.idleChecks === 0 ? m : { fine: true, idleChecks: 0 };
  const idleChecks = m.idleChecks + 1;
  return idleChecks >= limits.idleChecksToCoarse ? { fine: false, idleChecks: 0 } : { fine: true, idleChecks };
}

/**
 * A coarse timer's reading as the fine timer's kind (tick intervals from which windowOf takes
 * the fine resolution): each interval shortened by the difference of the two resolutions.
 */
export function asFineReading(r: LoopDelayReading, coarseResolutionMs: number, fineResolutionMs = loopDelayResolutionMs): LoopDelayReading {
  if (r.count === 0) return r;
  const shiftNs = (coarseResolutionMs - fineResolutionMs) * 1e6;
  return { count: r.count, maxNs: Math.max(0, r.maxNs - shiftNs), p99Ns: Math.max(0, r.p99Ns - shiftNs) };
}

/** One window's reading from two parts of it (fine and coarse spells). */
export function mergeReadings(a: LoopDelayReading, b: LoopDelayReading): LoopDelayReading {
  if (a.count === 0) return b;
  if (b.count === 0) return a;
  // Exact max; the p99 of a window that changed mode is the larger of the two (an upper bound).
  return { count: a.count + b.count, maxNs: Math.max(a.maxNs, b.maxNs), p99Ns: Math.max(a.p99Ns, b.p99Ns) };
}
