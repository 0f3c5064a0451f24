/**
 * @module loadgen/shell/loop-delay
 * Event-loop delay of every cluster component over a bench's measured period: polls the
 * /metrics URLs `dirigent up` lists in `<stateDir>/cluster.json` twice per window (so no window
 * goes unseen though polls and windows drift apart), and at the end waits for the window that
 * was running to complete. Unreadable components are null in the result; nothing here fails a
 * bench.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { request } from 'undici';
import { benchToken } from './management.js';
import { loopDelayWindowMs } from '../../shared/loop-delay-window.js';
import {
  kindSummary,
  LoopDelayTrack,
  loopDelayQuery,
  loopDelayTargets,
  parseLoopDelayMetrics,
  unknownEventLoopDelay,
  type EventLoopDelayMs,
  type LoopDelayTargets,
} from '../core/loop-delay.js';

/** Two polls per window: a window is on show for a whole window, so each one is seen. */
const pollPeriodMs = loopDelayWindowMs / 2;
/** Below the poll period, so a hung component never piles polls up. */
const scrapeTimeoutMs = 400;
/** At the end: how long to wait for the running window to complete before summarising. */
const finishWaitMsMax = loopDelayWindowMs + pollPeriodMs;

export interface LoopDelaySample {
  eventLoopDelayMs: EventLoopDelayMs;
  /** Why some component kinds are unknown, when they are. */
  note: string;
}

export interface LoopDelaySampler {
  finish(): Promise<LoopDelaySample>;
}

/** The summary fields a bench adds to its JSON. */
export function loopDelayFields(s: LoopDelaySample): { eventLoopDelayMs: EventLoopDelayMs; eventLoopDelayNote?: string } {
  return s.note === '' ? { eventLoopDelayMs: s.eventLoopDelayMs } : { eventLoopDelayMs: s.eventLoopDelayMs, eventLoopDelayNote: s.note };
}

/**
 * One scrape of every component, its answer dropped. A bench calls it before its load starts:
 * a component's first answer on the metrics path (and this process's first request to it) runs
 * code never run before, in every component at once, and the sampler's baseline scrape comes as
 * the measured period starts (see BENCHMARKS, "The bench's scrapes").
 */
export async function primeLoopDelayScrapes(stateDir: string, token = benchToken(stateDir)): Promise<void> {
  const found = await readTargets(stateDir);
  if ('note' in found) return;
  await new Poller(found.targets, token).scrapeAll();
}

/**
 * Starts polling after one baseline scrape. `token` is sent to control planes only (their
 * /metrics needs cluster.read): DIRIGENT_TOKEN, else the admin.token in stateDir, else ./.dirigent.
 */
export async function startLoopDelaySampler(
  stateDir: string,
  token = benchToken(stateDir),
): Promise<LoopDelaySampler> {
  const found = await readTargets(stateDir);
  if ('note' in found) return { finish: async () => ({ eventLoopDelayMs: unknownEventLoopDelay, note: found.note }) };
  const poller = new Poller(found.targets, token);
  await poller.scrapeAll();
  const timer = setInterval(() => void poller.scrapeAll(), pollPeriodMs);
  timer.unref();
  return {
    async finish(): Promise<LoopDelaySample> {
      clearInterval(timer);
      await poller.scrapeAll();
      await poller.untilNextWindow(finishWaitMsMax);
      return poller.summary();
    },
  };
}

async function readTargets(stateDir: string): Promise<{ targets: LoopDelayTargets } | { note: string }> {
  const path = join(stateDir, 'cluster.json');
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    return { note: `${path} not found: event-loop delay not measured` };
  }
  const targets = loopDelayTargets(text);
  if ('error' in targets) return { note: `${path}: ${targets.error}` };
  return { targets };
}

class Poller {
  private readonly tracks = new Map<string, LoopDelayTrack>();
  private readonly controlPlanes: Set<string>;
  private inflight: Promise<void> | null = null;

  constructor(private readonly targets: LoopDelayTargets, private readonly token: string) {
    const all = [...targets.controlPlane, ...targets.dataPlane, ...targets.workers];
    for (const url of all) if (url !== null) this.tracks.set(url, new LoopDelayTrack());
    this.controlPlanes = new Set(targets.controlPlane.filter((u): u is string => u !== null));
  }

  /** One scrape of every process; a scrape still running is joined, not doubled. */
  scrapeAll(): Promise<void> {
    this.inflight ??= Promise.all([...this.tracks].map(([url, track]) => this.scrape(url, track)))
      .then(() => { this.inflight = null; });
    return this.inflight;
  }

  private async scrape(url: string, track: LoopDelayTrack): Promise<void> {
    const headers: Record<string, string> = this.controlPlanes.has(url) && this.token !== '' ? { authorization: `Bearer ${this.token}` } : {};
    try {
      // undici's request, not Node's fetch: a process's first fetch loads and compiles Node's own
      // copy of undici (60 ms of CPU on this machine), and the first scrape is taken as the
      // measured window starts, where that stall would land in what is measured.
      const res = await request(url + loopDelayQuery, { headers, signal: AbortSignal.timeout(scrapeTimeoutMs) });
      const text = await res.body.text();
      const s = res.statusCode === 200 ? parseLoopDelayMetrics(text) : null;
      if (s !== null) track.observe(s);
    } catch {
      // Unreachable or slow this time: that window may still be seen by the next poll.
    }
  }

  /** Scrapes until every process read so far shows a window newer than now, or the wait ends. */
  async untilNextWindow(waitMsMax: number): Promise<void> {
    const now = new Map([...this.tracks].map(([url, t]) => [url, t.lastWindow()]));
    const deadline = performance.now() + waitMsMax;
    const pending = (): boolean => [...this.tracks].some(([url, t]) => {
      const w = now.get(url);
      return w !== null && w !== undefined && (t.lastWindow() ?? -1) <= w;
    });
    while (pending() && performance.now() < deadline) {
      await new Promise((r) => setTimeout(r, pollPeriodMs / 2));
      await this.scrapeAll();
    }
  }

  summary(): LoopDelaySample {
    const of = (urls: (string | null)[]): (LoopDelayTrack | null)[] => urls.map((u) => (u === null ? null : this.tracks.get(u) ?? null));
    const e: EventLoopDelayMs = {
      controlPlane: kindSummary(of(this.targets.controlPlane)),
      dataPlane: kindSummary(of(this.targets.dataPlane)),
      workers: kindSummary(of(this.targets.workers)),
    };
    const unknown = Object.entries(e).filter(([, v]) => v === null).map(([k]) => k);
    const noUrl = [...this.targets.controlPlane, ...this.targets.dataPlane, ...this.targets.workers].some((u) => u === null);
    const note = unknown.length === 0 ? ''
      : `event-loop delay unknown for ${unknown.join(', ')}: ${noUrl ? 'cluster.json lists no metricsUrl for some (written by an older `dirigent up`?)' : 'their /metrics did not answer with the gauges'}`;
    return { eventLoopDelayMs: e, note };
  }
}
