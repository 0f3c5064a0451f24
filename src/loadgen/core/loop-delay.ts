/**
 * @module loadgen/core/loop-delay
 * Event-loop delay of the cluster over a bench's measured period (issue #12), from the
 * components' /metrics (shared/loop-delay): where to scrape (cluster.json), what a scrape says
 * (Prometheus text), which windows fell in the period (per process) and the summary per component
 * kind. Pure: the shell fetches and passes text in.
 *
 * A process's gauges show its last complete window, numbered by dirigent_event_loop_windows_total.
 * Window and stall counts come from the counters (exact, even if a poll is late); the max and
 * the median p99 come from the windows the polls saw (each poll that sees a new window number).
 */
import { z } from 'zod';
import { loopStallThresholdMs, type LoopDelayWindow } from '../../shared/loop-delay-window.js';
import { defaultMetricsPrefix } from '../../shared/metric-prefix.js';

export const loopDelayMetricNames = Object.freeze({
  maxSeconds: 'dirigent_event_loop_delay_max_seconds',
  p99Seconds: 'dirigent_event_loop_delay_p99_seconds',
  stallsTotal: 'dirigent_event_loop_stalls_total',
  windowsTotal: 'dirigent_event_loop_windows_total',
});

/** prom-client's GC histogram of each component kind, by the prefix its defaults carry. */
const gcHistogramNames = Object.values(defaultMetricsPrefix).map((prefix) => `${prefix}nodejs_gc_duration_seconds`);

/**
 * The query a poll sends: only what parseLoopDelayMetrics reads, so a component collects five
 * metrics rather than all of them (that cost it 1.2-2.5 ms of CPU per poll on this VM) while
 * the bench measures its loop.
 */
export const loopDelayQuery = `?${[...Object.values(loopDelayMetricNames), ...gcHistogramNames].map((n) => `name=${n}`).join('&')}`;

/** One scrape of one process: its window count, stall count and its last window. */
export interface LoopDelayScrape {
  windows: number;
  stalls: number;
  maxMs: number;
  p99Ms: number;
  /** The process's GC time since it started (prom-client's `*nodejs_gc_duration_seconds_sum`, every kind); absent when not exposed. */
  gcMs?: number;
}

/** prom-client's default GC histogram, whatever the component's prefix. */
const gcSumName = /^[a-z_]*nodejs_gc_duration_seconds_sum(\{.*\})?$/;
const gcTypeLine = /^# TYPE [a-z_]*nodejs_gc_duration_seconds histogram$/;

/** The four loop-delay samples of Prometheus exposition text; null when any is missing or bad. */
export function parseLoopDelayMetrics(text: string): LoopDelayScrape | null {
  const values = new Map<string, number>();
  let gcSeconds: number | undefined = 0;
  let sawGc = false;
  for (const line of text.split('\n')) {
    // The histogram before its first collection has its TYPE line and no samples: 0 so far.
    if (gcTypeLine.test(line)) sawGc = true;
    if (line === '' || line.startsWith('#')) continue;
    const [name, value] = line.trim().split(/\s+/);
    if (name === undefined || value === undefined) continue;
    if (gcSumName.test(name)) {
      const v = Number(value);
      gcSeconds = gcSeconds !== undefined && Number.isFinite(v) && v >= 0 ? gcSeconds + v : undefined;
      sawGc = true;
    } else {
      values.set(name, Number(value));
    }
  }
  const max = values.get(loopDelayMetricNames.maxSeconds);
  const p99 = values.get(loopDelayMetricNames.p99Seconds);
  const stalls = values.get(loopDelayMetricNames.stallsTotal);
  const windows = values.get(loopDelayMetricNames.windowsTotal);
  const seconds = (v: number | undefined): v is number => v !== undefined && Number.isFinite(v) && v >= 0;
  const count = (v: number | undefined): v is number => v !== undefined && Number.isInteger(v) && v >= 0;
  if (!seconds(max) || !seconds(p99) || !count(stalls) || !count(windows) || stalls > windows) return null;
  const scraped: LoopDelayScrape = { windows, stalls, maxMs: max * 1000, p99Ms: p99 * 1000 };
  if (sawGc && gcSeconds !== undefined) scraped.gcMs = gcSeconds * 1000;
  return scraped;
}

/** The windows one process completed during the measured period, from successive scrapes. */
export class LoopDelayTrack {
  private last: LoopDelayScrape | null = null;
  /** Counter values the current process incarnation started the period at. */
  private base = { windows: 0, stalls: 0 };
  /** Windows and stalls of earlier incarnations (the process restarted mid-run). */
  private done = { windows: 0, stalls: 0 };
  readonly seen: LoopDelayWindow[] = [];
  /** GC time over the period so far; null once a scrape lacked it (unknown). */
  private gcSumMs: number | null = 0;

  /** The first scrape is the baseline: its window ended before the period. */
  observe(s: LoopDelayScrape): void {
    const last = this.last;
    this.last = s;
    if (s.gcMs === undefined) this.gcSumMs = null;
    else if (last !== null && this.gcSumMs !== null && last.gcMs !== undefined) {
      // A sum that went back is a new process: all it has is from the period.
      this.gcSumMs += s.gcMs >= last.gcMs ? s.gcMs - last.gcMs : s.gcMs;
    }
    if (last === null) {
      this.base = { windows: s.windows, stalls: s.stalls };
      return;
    }
    if (s.windows < last.windows) {
      // Counters went back: a new process on the same port; it started from zero.
      this.done.windows += last.windows - this.base.windows;
      this.done.stalls += last.stalls - this.base.stalls;
      this.base = { windows: 0, stalls: 0 };
      if (s.windows > 0) this.seen.push({ maxMs: s.maxMs, p99Ms: s.p99Ms });
      return;
    }
    if (s.windows > last.windows) this.seen.push({ maxMs: s.maxMs, p99Ms: s.p99Ms });
  }

  /** The window count of the last scrape; null before any. */
  lastWindow(): number | null {
    return this.last?.windows ?? null;
  }

  windows(): number {
    return this.last === null ? 0 : this.done.windows + this.last.windows - this.base.windows;
  }

  stalls(): number {
    return this.last === null ? 0 : this.done.stalls + this.last.stalls - this.base.stalls;
  }

  /** GC time (ms) between the first and the last scrape; null when a scrape did not show it. */
  gcMs(): number | null {
    return this.last === null ? null : this.gcSumMs;
  }
}

/** One component kind over the measured period. */
export interface LoopDelayKindMs {
  /** Max of the window maxima seen. */
  maxMs: number;
  /** Median of the window p99s seen. */
  p99Ms: number;
  /** Windows whose max passed the stall threshold (5 ms). */
  stallWindows: number;
  /** Windows completed in the period. */
  windows: number;
  /** GC time of every process of the kind in the period, summed; null when one did not expose it. */
  gcMs: number | null;
}

export interface EventLoopDelayMs {
  controlPlane: LoopDelayKindMs | null;
  dataPlane: LoopDelayKindMs | null;
  workers: LoopDelayKindMs | null;
}

export const unknownEventLoopDelay: EventLoopDelayMs = Object.freeze({ controlPlane: null, dataPlane: null, workers: null });

/**
 * The summary of every process of one kind; null when the kind lists none or any of them gave no
 * window (unreadable, or an old cluster.json without a metrics URL: null stands for unknown, never 0).
 */
export function kindSummary(tracks: readonly (LoopDelayTrack | null)[]): LoopDelayKindMs | null {
  if (tracks.length === 0) return null;
  const seen: LoopDelayWindow[] = [];
  let stallWindows = 0;
  let windows = 0;
  let gcMs: number | null = 0;
  for (const t of tracks) {
    if (t === null || t.windows() === 0 || t.seen.length === 0) return null;
    seen.push(...t.seen);
    stallWindows += t.stalls();
    windows += t.windows();
    const g = t.gcMs();
    gcMs = gcMs === null || g === null ? null : gcMs + g;
  }
  return {
    maxMs: roundMs(Math.max(...seen.map((w) => w.maxMs))),
    p99Ms: roundMs(median(seen.map((w) => w.p99Ms))),
    stallWindows,
    windows,
    gcMs: gcMs === null ? null : roundMs(gcMs),
  };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** To the µs. */
function roundMs(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

/** Metrics URLs per kind; null for a listed process without one. */
export interface LoopDelayTargets {
  controlPlane: (string | null)[];
  dataPlane: (string | null)[];
  workers: (string | null)[];
}

const listed = z.object({ metricsUrl: z.string().optional() }).passthrough();
const clusterMetricsSchema = z.object({
  controlPlane: listed.optional(),
  controlPlanes: z.array(listed).optional(),
  dataPlanes: z.array(listed).default([]),
  workers: z.array(listed).default([]),
});

/** Where to scrape, from cluster.json; every CP replica when `controlPlanes` lists them. */
export function loopDelayTargets(clusterJson: string): LoopDelayTargets | { error: string } {
  let value: unknown;
  try {
    value = JSON.parse(clusterJson);
  } catch (e) {
    return { error: `not JSON: ${(e as Error).message}` };
  }
  const parsed = clusterMetricsSchema.safeParse(value);
  if (!parsed.success) return { error: parsed.error.issues[0]?.message ?? 'bad cluster.json' };
  const c = parsed.data;
  const url = (x: { metricsUrl?: string | undefined }): string | null => x.metricsUrl ?? null;
  const cps = c.controlPlanes && c.controlPlanes.length > 0 ? c.controlPlanes : c.controlPlane ? [c.controlPlane] : [];
  return { controlPlane: cps.map(url), dataPlane: c.dataPlanes.map(url), workers: c.workers.map(url) };
}

/** The one human line of a bench. */
export function formatLoopDelay(e: EventLoopDelayMs): string {
  const f = (k: LoopDelayKindMs | null): string => (k === null ? 'n/a'
    : `max ${k.maxMs} p99 ${k.p99Ms} stalls ${k.stallWindows}/${k.windows}${k.gcMs === null ? '' : ` gc ${k.gcMs}`}`);
  return `event-loop delay ms (stall: window max > ${loopStallThresholdMs} ms): ` +
    `control-plane ${f(e.controlPlane)}; data-plane ${f(e.dataPlane)}; workers ${f(e.workers)}`;
}
