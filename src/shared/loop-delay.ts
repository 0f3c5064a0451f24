/**
 * @module shared/loop-delay
 * Event-loop delay of this process on a component's /metrics (issue #12): one perf_hooks
 * histogram per process (emulated workers, or tests running several components in one process,
 * share it), rotated every loopDelayWindowMs, adaptive: its fine timer runs only while the loop
 * has work (loop-delay-window, "The adaptive monitor"). Each registry that asks gets:
 *   dirigent_event_loop_delay_max_seconds   max delay of the last complete window
 *   dirigent_event_loop_delay_p99_seconds   p99 delay of the last complete window
 *   dirigent_event_loop_stalls_total        windows whose max passed loopStallThresholdMs
 *   dirigent_event_loop_windows_total       complete windows (lets a poller tell windows apart)
 * Its timers are unref'd and stop with the last registry that released the monitor.
 */
import { monitorEventLoopDelay, performance, type EventLoopUtilization, type IntervalHistogram } from 'node:perf_hooks';
import client from 'prom-client';
import {
  asFineReading,
  closeWindow,
  initialLoopDelayState,
  initialLoopMonitorMode,
  loopDelayResolutionMs,
  loopDelayWindowMs,
  loopMonitorLimits,
  mergeReadings,
  nextLoopMonitorMode,
  type LoopDelayReading,
  type LoopDelayState,
  type LoopMonitorMode,
} from './loop-delay-window.js';

interface SharedMonitor {
  /** perf_hooks' timer every loopDelayResolutionMs; enabled while the mode is fine. */
  fine: IntervalHistogram;
  /** The same every coarseResolutionMs; enabled while the mode is coarse. */
  coarse: IntervalHistogram;
  /** This window's readings from before a timer restarted (as fine readings). */
  held: LoopDelayReading;
  /** The timer of the mode just left, still enabled until the next check. */
  lingering: IntervalHistogram | null;
  mode: LoopMonitorMode;
  /** The loop's utilization and the time at the last check. */
  elu: EventLoopUtilization;
  lastCheckMs: number;
  checkTimer: NodeJS.Timeout;
  windowTimer: NodeJS.Timeout;
  state: LoopDelayState;
  users: number;
}

let shared: SharedMonitor | null = null;

const noReading: LoopDelayReading = Object.freeze({ count: 0, maxNs: 0, p99Ns: 0 });

function acquire(): SharedMonitor {
  if (shared !== null) {
    shared.users += 1;
    return shared;
  }
  const fine = monitorEventLoopDelay({ resolution: loopDelayResolutionMs });
  fine.enable();
  const m: SharedMonitor = {
    fine,
    coarse: monitorEventLoopDelay({ resolution: loopMonitorLimits.coarseResolutionMs }),
    held: noReading,
    lingering: null,
    mode: initialLoopMonitorMode,
    elu: performance.eventLoopUtilization(),
    lastCheckMs: performance.now(),
    checkTimer: setInterval(() => check(m), loopMonitorLimits.checkMs),
    windowTimer: setInterval(() => rotate(m), loopDelayWindowMs),
    state: initialLoopDelayState,
    users: 1,
  };
  // Measuring must never keep a process alive that has nothing else to do.
  m.checkTimer.unref();
  m.windowTimer.unref();
  shared = m;
  return m;
}

const readingOf = (h: IntervalHistogram): LoopDelayReading =>
  ({ count: h.count, maxNs: h.max, p99Ns: h.count > 0 ? h.percentile(99) : 0 });

/** Both timers' readings so far in this window, as fine readings. */
const windowReading = (m: SharedMonitor): LoopDelayReading =>
  mergeReadings(m.held, mergeReadings(readingOf(m.fine), asFineReading(readingOf(m.coarse), loopMonitorLimits.coarseResolutionMs)));

/** One check of the adaptive monitor: the loop's busy time since the last one sets the mode. */
function check(m: SharedMonitor): void {
  const nowMs = performance.now();
  const elu = performance.eventLoopUtilization();
  const next = nextLoopMonitorMode(m.mode, elu.active - m.elu.active, nowMs - m.lastCheckMs);
  m.elu = elu;
  m.lastCheckMs = nowMs;
  m.lingering?.disable();
  m.lingering = null;
  if (next.fine !== m.mode.fine) {
    // A timer enabled again as it was would read the whole spell it slept through as its first
    // interval: keep what it holds of this window, then restart it from a reset.
    const starting = next.fine ? m.fine : m.coarse;
    const reading = readingOf(starting);
    m.held = mergeReadings(m.held, next.fine ? reading : asFineReading(reading, loopMonitorLimits.coarseResolutionMs));
    starting.reset();
    starting.enable();
    // The other one runs until the next check: a stall that ended just before this check is
    // still owed its late tick (timers due at once run in no set order).
    m.lingering = next.fine ? m.coarse : m.fine;
  }
  m.mode = next;
}

function rotate(m: SharedMonitor): void {
  m.state = closeWindow(m.state, windowReading(m));
  m.held = noReading;
  m.fine.reset();
  m.coarse.reset();
}

function release(m: SharedMonitor): void {
  m.users -= 1;
  if (m.users > 0) return;
  clearInterval(m.checkTimer);
  clearInterval(m.windowTimer);
  m.fine.disable();
  m.coarse.disable();
  m.lingering = null;
  if (shared === m) shared = null;
}

/** Whether this process's monitor runs its fine timer now (false: coarse, the loop was idle). */
export function loopDelayMonitorFine(): boolean {
  return shared?.mode.fine ?? false;
}

/** The current state of this process's monitor; the initial state when none runs. */
export function loopDelayState(): LoopDelayState {
  return shared?.state ?? initialLoopDelayState;
}

/** How many registries hold this process's monitor; 0 when it is stopped. */
export function loopDelayMonitorUsers(): number {
  return shared?.users ?? 0;
}

/**
 * Adds the event-loop delay metrics to `registry` and starts the process's monitor if needed.
 * Returns the stop function: call it once when the component closes.
 */
export function registerLoopDelayMetrics(registry: client.Registry): () => void {
  const m = acquire();
  const seconds = (ms: number): number => ms / 1000;
  new client.Gauge({
    name: 'dirigent_event_loop_delay_max_seconds', help: 'Max event-loop delay in the last complete window', registers: [registry],
    collect() { this.set(seconds(m.state.last?.maxMs ?? 0)); },
  });
  new client.Gauge({
    name: 'dirigent_event_loop_delay_p99_seconds', help: 'p99 event-loop delay in the last complete window', registers: [registry],
    collect() { this.set(seconds(m.state.last?.p99Ms ?? 0)); },
  });
  new client.Counter({
    name: 'dirigent_event_loop_stalls_total', help: 'Windows whose max event-loop delay passed the stall threshold', registers: [registry],
    collect() { this.reset(); this.inc(m.state.stalls); },
  });
  new client.Counter({
    name: 'dirigent_event_loop_windows_total', help: 'Complete event-loop delay windows', registers: [registry],
    collect() { this.reset(); this.inc(m.state.windows); },
  });
  let released = false;
  return () => {
    if (released) return;
    released = true;
    release(m);
  };
}
