/**
 * @module shared/loop-delay
 * Event-loop delay of this process on a component's /metrics (issue #12): one perf_hooks
 * histogram per process (emulated workers, or tests running several components in one process,
 * share it), rotated every loopDelayWindowMs. Each registry that asks gets:
 *   dirigent_event_loop_delay_max_seconds   max delay of the last complete window
 *   dirigent_event_loop_delay_p99_seconds   p99 delay of the last complete window
 *   dirigent_event_loop_stalls_total        windows whose max passed loopStallThresholdMs
 *   dirigent_event_loop_windows_total       complete windows (lets a poller tell windows apart)
 * The window timer is unref'd and stops with the last registry that released the monitor.
 */
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import client from 'prom-client';
import {
  closeWindow,
  initialLoopDelayState,
  loopDelayResolutionMs,
  loopDelayWindowMs,
  type LoopDelayState,
} from './loop-delay-window.js';

interface SharedMonitor {
  histogram: IntervalHistogram;
  timer: NodeJS.Timeout;
  state: LoopDelayState;
  users: number;
}

let shared: SharedMonitor | null = null;

function acquire(): SharedMonitor {
  if (shared !== null) {
    shared.users += 1;
    return shared;
  }
  const histogram = monitorEventLoopDelay({ resolution: loopDelayResolutionMs });
  histogram.enable();
  const m: SharedMonitor = { histogram, timer: setInterval(() => rotate(m), loopDelayWindowMs), state: initialLoopDelayState, users: 1 };
  // Measuring must never keep a process alive that has nothing else to do.
  m.timer.unref();
  shared = m;
  return m;
}

function rotate(m: SharedMonitor): void {
  const h = m.histogram;
  m.state = closeWindow(m.state, { count: h.count, maxNs: h.max, p99Ns: h.count > 0 ? h.percentile(99) : 0 });
  h.reset();
}

function release(m: SharedMonitor): void {
  m.users -= 1;
  if (m.users > 0) return;
  clearInterval(m.timer);
  m.histogram.disable();
  if (shared === m) shared = null;
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
