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
 * (about 1,000 wakeups a second with libuv's clock; ~7-9 ms of CPU a second per process, 30 of
 * an idle cluster's 75; BENCHMARKS, "What the event-loop monitor costs"). A loop that is idle
 * cannot stall, so while it stays idle the fine timer is off and a coarse timer measures
 * instead: its own lateness is the delay, and the loop's busy time since the last check says
 * when work came back. The price: a stall that begins while the monitor is coarse and ends before
 * the next coarse tick (a stall under coarseCheckMs at the very start of a busy spell) is not
 * seen; one that runs past the tick reads short by at most coarseCheckMs.
 */
export interface LoopMonitorLimits {
  /** How often the fine monitor checks whether its loop went idle. */
  fineCheckMs: number;
  /** Period of the coarse timer that measures delay while the loop is idle and looks for work. */
  coarseCheckMs: number;
  /** A fine check whose loop was busy for at most this share of it counts as idle. */
  idleBusyShareMax: number;
  /** Idle fine checks in a row before the monitor goes coarse. */
  idleChecksToCoarse: number;
  /** Busy ms in one coarse check that turn the fine monitor back on. */
  wakeBusyMsMin: number;
}

export const loopMonitorLimits: LoopMonitorLimits = Object.freeze({
  fineCheckMs: 100,
  coarseCheckMs: 10,
  idleBusyShareMax: 0.02,
  idleChecksToCoarse: 3,
  wakeBusyMsMin: 1,
});

export interface LoopMonitorMode {
  fine: boolean;
  /** Idle fine checks in a row. */
  idleChecks: number;
}

export const initialLoopMonitorMode: LoopMonitorMode = Object.freeze({ fine: true, idleChecks: 0 });

/**
 * The mode after one check that found the loop busy for `busyMs` of the `elapsedMs` since the
 * previous check. Fine goes coarse after idleChecksToCoarse idle checks in a row; coarse goes
 * fine on the first check with wakeBusyMsMin of work (a late coarse tick was itself a stall,
 * and its busy time says so).
 */
export function nextLoopMonitorMode(m: LoopMonitorMode, busyMs: number, elapsedMs: number, limits: LoopMonitorLimits = loopMonitorLimits): LoopMonitorMode {
  if (!m.fine) return busyMs >= limits.wakeBusyMsMin ? { fine: true, idleChecks: 0 } : m;
  if (busyMs > limits.idleBusyShareMax * elapsedMs) return m.idleChecks === 0 ? m : { fine: true, idleChecks: 0 };
  const idleChecks = m.idleChecks + 1;
  return idleChecks >= limits.idleChecksToCoarse ? { fine: false, idleChecks: 0 } : { fine: true, idleChecks };
}

/**
 * A coarse tick as a sample of the fine histogram's kind (a tick interval in ns, from which
 * windowOf takes the fine resolution): its lateness plus the fine resolution.
 */
export function coarseSampleNs(elapsedMs: number, periodMs: number, resolutionMs = loopDelayResolutionMs): number {
  return Math.round((Math.max(0, elapsedMs - periodMs) + resolutionMs) * 1e6);
}

/** One window's reading from the fine histogram's and the coarse ticks' (a window may hold both). */
export function mergeReadings(a: LoopDelayReading, b: LoopDelayReading): LoopDelayReading {
  if (a.count === 0) return b;
  if (b.count === 0) return a;
  // Exact max; the p99 of a window that changed mode is the larger of the two (an upper bound).
  return { count: a.count + b.count, maxNs: Math.max(a.maxNs, b.maxNs), p99Ns: Math.max(a.p99Ns, b.p99Ns) };
}
